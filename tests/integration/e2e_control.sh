#!/usr/bin/env bash
# End to end through the user's command: calsweepd, two calsweep-worker processes running the
# TEST runner (tests/calsweep-testrun), and `calsweep` for pause/resume of a running sweep, cancel
# of a whole sweep while two of its jobs run, and retry --failed of jobs whose runner was
# SIGKILLed. Checks through `calsweep status/jobs --json` and the sqlite3 CLI. Bounded by timeouts.
cd "$CS_SOURCE_DIR" || exit 1
n=0; fail=0
ok() { local m=${2//$'\n'/ | }; n=$((n+1)); if [ "$1" = 0 ]; then echo "ok $n - $m"; else echo "not ok $n - $m"; fail=1; fi; }
# A loaded CI machine may stall the daemon's fsyncs for seconds: wait longer than the default.
cs() { timeout 40 "$CALSWEEP" --timeout-ms 15000 "$@"; }
q() { sqlite3 -readonly "$tmp/calsweep.db" "$1" 2>/dev/null; }
count() { cs status "$1" --json 2>/dev/null | jq -r ".sweeps[0].counts.$2" 2>/dev/null; }
# wait_for SECONDS SWEEP JQ-CONDITION-ON-COUNTS
wait_for() {
    local s=$1 sw=$2 f=$3
    for _ in $(seq $((s * 10))); do
        [ "$(cs status "$sw" --json 2>/dev/null | jq -r ".sweeps[0].counts | $f" 2>/dev/null)" = true ] && return 0
        sleep 0.1
    done
    return 1
}
echo "1..14"
tmp=$(mktemp -d); pid=; w1=; w2=
cleanup() {
    for p in $w1 $w2 $pid; do kill -9 "$p" 2>/dev/null; wait "$p" 2>/dev/null; done
    rm -rf "$tmp"
}
trap cleanup EXIT
export CALSWEEP_CONTROL="ipc://$tmp/control.sock"
unset CALSWEEP_TOKEN_FILE
timeout 200 "$CALSWEEPD" --db "$tmp/calsweep.db" --work "ipc://$tmp/work.sock" \
    --control "$CALSWEEP_CONTROL" --reap-ms 200 --claim-hold-ms 200 --lease-s 20 \
    2>"$tmp/daemon.log" &
pid=$!
for _ in $(seq 100); do [ -S "$tmp/control.sock" ] && break; sleep 0.1; done
worker() {
    timeout 200 "$CALSWEEP_WORKER" --coordinator "ipc://$tmp/work.sock" --name "$1" \
        --model-root tests/data/e2e-models --runner "$CS_BUILD_DIR/tests/calsweep-testrun" \
        --work-dir "$tmp/work-$1" --heartbeat-ms 200 --kill-grace-ms 300 --threads 1 \
        2>"$tmp/$1.log" &
}
worker w1; w1=$!
worker w2; w2=$!

# pause / resume while the workers run the sweep
cs submit tests/data/sweeps-e2e/e2e-pause.json >/dev/null; ok $? "submit e2e-pause (20 jobs)"
wait_for 30 e2e-pause '.done >= 3'; ok $? "the workers make progress"
cs pause e2e-pause >/dev/null; ok $? "pause"
wait_for 10 e2e-pause '.running == 0'; ok $? "the running jobs finish, no new ones start"
d1=$(count e2e-pause 'done'); sleep 1.5; d2=$(count e2e-pause 'done'); qd=$(count e2e-pause queued)
[ "$d1" = "$d2" ] && [ "$qd" -gt 0 ]; ok $? "paused: nothing more is done ($d1 = $d2, $qd queued)"
cs resume e2e-pause >/dev/null; ok $? "resume"
wait_for 60 e2e-pause '.done == 20'; ok $? "after resume the sweep completes"
[ "$(q "SELECT count(*) FROM result r JOIN job j ON j.id = r.job_id JOIN sweep s ON s.id = j.sweep_id WHERE s.name = 'e2e-pause'")" = 20 ]
ok $? "exactly 20 results"

# cancel a whole sweep while two of its jobs run (each would sleep 20 s)
cs submit tests/data/sweeps-e2e/e2e-cancel.json >/dev/null
wait_for 30 e2e-cancel '.running == 2'; ok $? "two slow jobs run"
t0=$(date +%s)
cs cancel e2e-cancel >/dev/null; ok $? "cancel the sweep"
# a cancelled sweep's name is free again, so look at it in the database
left() { q "SELECT count(*) FROM job j JOIN sweep s ON s.id = j.sweep_id WHERE s.name = 'e2e-cancel' AND j.state IN ('running', 'queued')"; }
for _ in $(seq 150); do [ "$(left)" = 0 ] && break; sleep 0.1; done
[ "$(left)" = 0 ]; ok $? "nothing runs or waits any more"
[ $(( $(date +%s) - t0 )) -lt 10 ] && [ "$(q "SELECT count(*) FROM attempt a JOIN job j ON j.id = a.job_id JOIN sweep s ON s.id = j.sweep_id WHERE s.name = 'e2e-cancel' AND a.outcome = 'cancelled'")" -ge 2 ]
ok $? "the two running attempts were stopped and recorded cancelled"

# retry --failed: one attempt allowed, the runner SIGKILLs itself on attempt 1
cs submit tests/data/sweeps-e2e/e2e-failed.json >/dev/null
wait_for 30 e2e-failed '.failed == 3'; ok $? "three jobs fail (runner killed by a signal)"
# (its baseline is cached: the e2e-pause sweep computed the same one)
cs retry e2e-failed --failed >/dev/null && wait_for 30 e2e-failed '.done == 3 and .failed == 0'
ok $? "retry --failed: they succeed on attempt 2"

kill "$w1" "$w2"; wait "$w1" "$w2"; w1=; w2=
kill "$pid"; wait "$pid"; pid=
[ "$(sqlite3 "$tmp/calsweep.db" 'PRAGMA integrity_check')" = ok ] || fail=1
[ $fail = 0 ] || { for f in "$tmp"/*.log; do echo "# $f"; tail -n 15 "$f" | sed 's/^/# /'; done; }
[ $fail = 0 ]
