#!/usr/bin/env bash
# `calsweep watch --once` (and watch with no terminal on stdout) against a real calsweepd and a
# real calsweep-worker (tests/cli/watch_lib.sh): the panes' counts and worker line agree with
# `calsweep status --json` and `calsweep workers --json`, the failed jobs are listed as problems,
# colours only on a terminal and never with NO_COLOR, --sweep, an unknown sweep (exit 1), no
# calsweepd (exit 3), bad options (exit 2), and the layout of a saved document at 80 columns.
# shellcheck source=SCRIPTDIR/watch_lib.sh
source "$(dirname "$0")/watch_lib.sh"
export LC_ALL=C.UTF-8 # ${#line} counts characters
echo "1..19"
watch_setup

# The counts are read before and after the view; they hold still while watch-slow's job sleeps.
before=$(counts_of watch-slow)
out=$(cs watch --once); rc=$?
after=$(counts_of watch-slow)
[ $rc = 0 ]; ok $? "watch --once exits 0"
has "$out" SWEEPS && has "$out" WORKERS && has "$out" PROBLEMS && has "$out" "BEST SO FAR"
ok $? "it prints the four panes"
[ "$before" = "$after" ] && printf '%s\n' "$out" | grep -Eq "^[0-9]+ +watch-slow +active .* $before\$"
ok $? "the watch-slow line has the counts of calsweep status ($before)"
printf '%s\n' "$out" | grep -Eq "^[0-9]+ +watch-fail +done .* $(counts_of watch-fail)\$"
ok $? "the finished watch-fail is one line with its counts ($(counts_of watch-fail))"
wj=$(cs workers --json)
job=$(jq -r '.workers[0].job_id' <<<"$wj")
key=$(cs jobs --json --sweep watch-slow --state running | jq -r '.jobs[0].key')
printf '%s\n' "$out" | grep -Eq "^w1 +[^ ]+ +busy +[^ ]+ +#$job ${key:0:6} "
ok $? "the worker line: w1, busy, job #$job ${key:0:6} (calsweep workers --json; seen: $(grep '^w1 ' <<<"$out"))"
has "$out" "rtn" && has "$out" "test_i="; ok $? "and the job's axes"
fj=$(cs jobs --json --sweep watch-fail --state failed | jq -r '.jobs[].id' | sort -n | tr '\n' ' ')
bad=0
for j in $fj; do printf '%s\n' "$out" | grep -Eq "^#$j +watch-fail +failed +1/1 " || bad=1; done
[ -n "$fj" ] && [ $bad = 0 ]; ok $? "the failed jobs are problems ($fj)"
has "$out" "| testrun: failing on demand"; ok $? "with their last log lines"
[ "$(cs watch | grep -c SWEEPS)" = 1 ]; ok $? "stdout not a terminal: the text once, like --once"

# Colours: escape sequences only on a terminal, never with NO_COLOR (script(1) gives a terminal).
if command -v script >/dev/null; then
    tty_out=$(COLUMNS=120 script -qec "$CALSWEEP watch --once" /dev/null)
    has "$tty_out" $'\033[' ; ok $? "colours on a terminal"
    tty_out=$(NO_COLOR=1 COLUMNS=120 script -qec "$CALSWEEP watch --once" /dev/null)
    ! has "$tty_out" $'\033['; ok $? "none with NO_COLOR"
else
    echo "ok $((n+1)) # SKIP script(1) missing"; echo "ok $((n+2)) # SKIP script(1) missing"; n=$((n+2))
fi
! has "$out" $'\033['; ok $? "none when stdout is not a terminal"

out=$(cs watch --once watch-slow)
has "$out" watch-slow && ! has "$out" "watch-fail "; ok $? "watch --once SWEEP shows that sweep only"
out=$(cs watch --once --sweep nope 2>&1); rc=$?
[ $rc = 1 ] && [ "$out" = "calsweep watch: no sweep 'nope' (known: watch-fail, watch-slow)" ]
ok $? "an unknown sweep: exit 1 and the known ones ($rc: $out)"
out=$(CALSWEEP_CONTROL="ipc://$tmp/none.sock" "$CALSWEEP" watch --once 2>&1); rc=$?
[ $rc = 3 ] && has "$out" "ipc://$tmp/none.sock"; ok $? "no calsweepd: exit 3 naming the URL ($rc)"
"$CALSWEEP" watch --once --interval 0 2>/dev/null; [ $? = 2 ]; ok $? "--interval 0 is a usage error"

# The layout of a saved document (tests/data/watch/sample.json) at 80 columns: nothing wider.
out=$(COLUMNS=80 "$CALSWEEP" watch --from tests/data/watch/sample.json)
wide=0; while IFS= read -r line; do [ ${#line} -gt 80 ] && wide=1; done <<<"$out"
[ $wide = 0 ] &&
    printf '%s\n' "$out" | grep -Eq '^3 demo +active +\[#####\.\.\.\] +64% 77/120 42.0/h ETA 1h q40 r2 ' &&
    printf '%s\n' "$out" | grep -Eq '^node7-1234 +node7:gpu0 busy +25s #42 3f2a1b +16m40s evaluate arith_mc 300/100' &&
    has "$out" "| out of memory [31m"
ok $? "a saved document at 80 columns: lines fit, control characters replaced"
# The stage's clock runs on between heartbeats: stage_ms 41.25 s + the heartbeat's age 25 s.
out=$(COLUMNS=160 "$CALSWEEP" watch --from tests/data/watch/sample.json)
has "$out" "evaluate arith_mc 300/1000 (1m6s)"
ok $? "the time in the stage is stage_ms plus the heartbeat's age"
watch_report
[ $fail = 0 ]
