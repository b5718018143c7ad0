#!/usr/bin/env bash
# `calsweep watch` in a terminal: runs it in tmux (a private server, 120 x 40) against a real
# calsweepd and a real calsweep-worker (tests/cli/watch_lib.sh), reads the screen with
# `tmux capture-pane`, and checks the counts and the worker line against `calsweep status --json`
# and `calsweep workers --json`; p / r / c (with its y/n) / R act on the selected sweep (checked
# through the CLI); / filters; s sorts; the job view (Enter); resizes to 80 x 24 and back keep every pane title on
# screen; 60 x 20 shows the one-line notice; q exits 0 and gives the terminal back; with no
# calsweepd the view says so and keeps retrying. Skips when tmux is missing.
if ! command -v tmux >/dev/null; then echo "1..0 # SKIP tmux is not installed"; exit 0; fi
# shellcheck source=SCRIPTDIR/watch_lib.sh
source "$(dirname "$0")/watch_lib.sh"
sock="cs-watch-$$"
T() { tmux -L "$sock" -f /dev/null "$@"; }
trap 'T kill-server 2>/dev/null; watch_cleanup' EXIT
screen() { T capture-pane -p -t "$1"; }
# wait_screen SECONDS SESSION TEXT...: until every TEXT is on the screen.
wait_screen() {
    local s=$1 w=$2; shift 2
    for _ in $(seq $((s * 10))); do
        local scr all=0
        scr=$(screen "$w")
        for t in "$@"; do has "$scr" "$t" || all=1; done
        [ $all = 0 ] && return 0
        sleep 0.1
    done
    screen "$w" | sed 's/^/# screen: /'
    return 1
}
titles=(SWEEPS WORKERS PROBLEMS "BEST SO FAR")
# start SESSION CONTROL-URL: calsweep watch in a new 120 x 40 session; its exit code goes to
# $tmp/SESSION.rc, then the shell prints "after-watch" and waits.
start() {
    T new-session -d -s "$1" -x 120 -y 40 \
        "CALSWEEP_CONTROL='$2' '$CALSWEEP' watch; echo \$? > '$tmp/$1.rc'; echo after-watch; sleep 120"
}
echo "1..24"
watch_setup

start w "$CALSWEEP_CONTROL"
wait_screen 10 w "${titles[@]}" "watch-slow"; ok $? "the view shows its four panes"
before=$(counts_of watch-slow); sleep 1.2
scr=$(screen w); after=$(counts_of watch-slow)
[ "$before" = "$after" ] && printf '%s\n' "$scr" | grep -Eq "^[0-9]+ +watch-slow +active .* $before *\$"
ok $? "the watch-slow line has the counts of calsweep status ($before)"
printf '%s\n' "$scr" | grep -Eq "^[0-9]+ +watch-fail +done .* $(counts_of watch-fail) *\$"
ok $? "the finished watch-fail line has its counts"
job=$(cs workers --json | jq -r '.workers[0].job_id')
key=$(cs jobs --json --sweep watch-slow --state running | jq -r '.jobs[0].key')
printf '%s\n' "$scr" | grep -Eq "^w1 +[^ ]+ +busy +[^ ]+ +#$job ${key:0:6} "
ok $? "the worker line: w1 busy #$job ${key:0:6} (calsweep workers --json)"

# The sweeps are listed by id: watch-fail first, then watch-slow.
T send-keys -t w j p
wait_for 5 '.sweeps[0].state == "paused"' status watch-slow; ok $? "j then p pauses watch-slow"
wait_screen 5 w "watch-slow paused"; ok $? "the view shows it paused"
T send-keys -t w r
wait_for 5 '.sweeps[0].state == "active"' status watch-slow; ok $? "r resumes it"

T resize-window -t w -x 80 -y 24
wait_screen 5 w "${titles[@]}" "watch-slow" "w1 "; ok $? "at 80 x 24 every pane is still on screen"
wait_screen 10 w "?help" "q quit"; ok $? "at 80 x 24 the keys line fits (once r's message is gone)"
T resize-window -t w -x 60 -y 20
wait_screen 5 w "terminal too small (60x20): calsweep watch needs 80x24"; ok $? "60 x 20: the notice"
T resize-window -t w -x 120 -y 40
wait_screen 5 w "${titles[@]}" "watch-slow"; ok $? "back at 120 x 40 every pane is there"

T send-keys -t w / watch-f Enter
wait_screen 5 w "watch-fail done" "[filter: watch-f]" "no worker matches the filter" &&
    ! has "$(screen w)" "watch-slow active"
ok $? "/ filters the sweeps by name"
T send-keys -t w Escape
wait_screen 5 w "watch-slow active"; ok $? "Esc clears the filter"
T send-keys -t w '?'
wait_screen 5 w "keys of the terminal view"; ok $? "? shows the keys"
T send-keys -t w x Tab Enter
wait_screen 8 w "JOB $job" "ATTEMPTS" "REPRODUCE" "cat > job.json" "calsweep-run" '"test_sleep_ms": 60000'
ok $? "Tab to the workers, Enter: the job view of job $job, its attempts, its config and how to run it"
T send-keys -t w F
wait_screen 8 w "LOG" "testrun: job $job" "follow the log (on)"; ok $? "F follows its log"
T send-keys -t w Escape
wait_screen 5 w "${titles[@]}"; ok $? "Esc goes back"
T send-keys -t w s
wait_screen 5 w "by heartbeat age)" && T send-keys -t w s s &&
    wait_screen 5 w "busy first, by name)"
ok $? "s cycles the workers' sort order"

T send-keys -t w BTab k R
wait_for 8 '.sweeps[0].counts.failed == 0' status watch-fail; ok $? "R retries watch-fail's failed jobs"
T send-keys -t w j c n
sleep 1.5; [ "$(cs status watch-slow --json | jq -r '.sweeps[0].state')" = active ]
ok $? "c then n cancels nothing"
T send-keys -t w c y
wait_for 5 '.sweeps[] | select(.name == "watch-slow") | .state == "cancelled"' status
ok $? "c then y cancels watch-slow"

T send-keys -t w q
wait_screen 5 w after-watch && [ "$(cat "$tmp/w.rc")" = 0 ] && ! has "$(screen w)" SWEEPS &&
    [ "$(T display -p -t w '#{alternate_on}')" = 0 ]
ok $? "q exits 0 and gives the terminal back"

start down "ipc://$tmp/none.sock"
wait_screen 8 down "calsweepd not reachable at ipc://$tmp/none.sock, retrying" &&
    sleep 1.5 && has "$(screen down)" "not reachable" && T send-keys -t down q &&
    wait_screen 5 down after-watch && [ "$(cat "$tmp/down.rc")" = 0 ]
ok $? "no calsweepd: the view says so, keeps retrying, q exits 0"
watch_report
[ $fail = 0 ]
