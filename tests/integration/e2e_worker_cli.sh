#!/usr/bin/env bash
# calsweep-worker's command line: bad values exit 2 naming the option, an unusable endpoint or
# token file is refused with a clear message, and --once against a daemon with nothing to do
# exits 0 at once. Bounded by timeouts.
cd "$CS_SOURCE_DIR" || exit 1
n=0; fail=0
ok() { local m=${2//$'\n'/ | }; n=$((n+1)); if [ "$1" = 0 ]; then echo "ok $n - $m"; else echo "not ok $n - $m"; fail=1; fi; }
has() { case "$1" in *"$2"*) return 0;; *) return 1;; esac; }
w() { timeout 20 "$CALSWEEP_WORKER" "$@"; }
echo "1..18"
tmp=$(mktemp -d); pid=
trap '[ -n "$pid" ] && kill "$pid" 2>/dev/null; wait 2>/dev/null; rm -rf "$tmp"' EXIT

out=$(w --heartbeat-ms 5 2>&1); rc=$?
[ $rc = 2 ] && has "$out" "heartbeat-ms"; ok $? "--heartbeat-ms 5 is refused with 2 ($out)"
out=$(w --max-jobs many 2>&1); rc=$?
[ $rc = 2 ] && has "$out" "max-jobs"; ok $? "--max-jobs many is refused with 2"
out=$(w --coordinator bogus://x --work-dir "$tmp/w" 2>&1); rc=$?
[ $rc = 1 ] && has "$out" "unknown endpoint scheme"; ok $? "an unknown scheme is refused"
out=$(w --coordinator tls+tcp://localhost:1 --work-dir "$tmp/w" 2>&1); rc=$?
[ $rc = 1 ] && has "$out" "tls-ca"; ok $? "tls+tcp:// without --tls-ca is refused"
printf 'tok\n' > "$tmp/token"; chmod 644 "$tmp/token"
out=$(w --token-file "$tmp/token" --work-dir "$tmp/w" 2>&1); rc=$?
[ $rc = 2 ] && has "$out" "chmod 600"; ok $? "a readable token file is refused"

timeout 60 "$CALSWEEPD" --db "$tmp/calsweep.db" --work "ipc://$tmp/work.sock" \
    --control "ipc://$tmp/control.sock" --claim-hold-ms 200 --reap-ms 200 2>"$tmp/daemon.log" &
pid=$!
for _ in $(seq 100); do [ -S "$tmp/work.sock" ] && break; sleep 0.1; done
start=$(date +%s%N)
out=$(w --coordinator "ipc://$tmp/work.sock" --once --name lone --work-dir "$tmp/w" 2>&1); rc=$?
ms=$(( ($(date +%s%N) - start) / 1000000 ))
[ $rc = 0 ]; ok $? "--once with nothing to do exits 0"
[ $ms -lt 5000 ]; ok $? "... within 5 s ($ms ms)"
has "$out" "registered with ipc://$tmp/work.sock as lone"; ok $? "it registered under its --name"

# SIGTERM with --release: the running job is stopped and handed back at once; with --drain
# (the default) the job is finished first.
export CALSWEEP_CONTROL="ipc://$tmp/control.sock"
timeout 20 "$CALSWEEP" submit tests/data/sweeps-e2e/e2e-kill.json >/dev/null
running() { sqlite3 -readonly "$tmp/calsweep.db" "SELECT count(*) FROM job WHERE state = 'running' AND baseline = 0 AND worker = '$1'" 2>/dev/null; }
# (no timeout(1) wrapper: the worker must see exactly our one SIGTERM)
"$CALSWEEP_WORKER" --coordinator "ipc://$tmp/work.sock" --name rel --release \
    --model-root tests/data/e2e-models --runner "$CS_BUILD_DIR/tests/calsweep-testrun" \
    --work-dir "$tmp/w" --heartbeat-ms 200 --kill-grace-ms 300 2>"$tmp/rel.log" &
wp=$!
for _ in $(seq 100); do [ "$(running rel)" = 1 ] && break; sleep 0.1; done
start=$(date +%s%N); kill -TERM $wp; wait $wp; rc=$?
ms=$(( ($(date +%s%N) - start) / 1000000 ))
[ $rc = 0 ] && [ $ms -lt 1400 ]; ok $? "--release: exits 0 at once ($ms ms) though its job sleeps 1.5 s"
queued() { sqlite3 -readonly "$tmp/calsweep.db" "SELECT count(*) FROM job WHERE state = 'queued' AND baseline = 0" 2>/dev/null; }
for _ in $(seq 100); do [ "$(queued)" = 3 ] && break; sleep 0.1; done
[ "$(queued)" = 3 ]; ok $? "the released job is queued again"
"$CALSWEEP_WORKER" --coordinator "ipc://$tmp/work.sock" --name dr \
    --model-root tests/data/e2e-models --runner "$CS_BUILD_DIR/tests/calsweep-testrun" \
    --work-dir "$tmp/w2" --heartbeat-ms 200 2>"$tmp/dr.log" &
wp=$!
for _ in $(seq 100); do [ "$(running dr)" = 1 ] && break; sleep 0.1; done
kill -TERM $wp; sleep 0.2; kill -TERM $wp; wait $wp; rc=$?
[ $rc = 0 ]; ok $? "--drain: exits 0 after its job (a second SIGTERM within 1 s does not release it)"
[ "$(sqlite3 -readonly "$tmp/calsweep.db" "SELECT count(*) FROM job WHERE state = 'done' AND baseline = 0")" = 1 ]
ok $? "the drained job is done"

# --drain-s: a drained worker whose job outlives the deadline hands it back; calsweepd queues it
# at once (long before its lease would expire) and gives the attempt back, so another worker
# runs it although the sweep allows one attempt.
timeout 20 "$CALSWEEP" submit tests/data/sweeps-e2e/e2e-drain.json >/dev/null
dq() { sqlite3 -readonly "$tmp/calsweep.db" "$1" 2>/dev/null; }
djob=$(dq "SELECT j.id FROM job j JOIN sweep s ON s.id = j.sweep_id WHERE s.name = 'e2e-drain' AND j.baseline = 0")
"$CALSWEEP_WORKER" --coordinator "ipc://$tmp/work.sock" --name dd --drain-s 1 \
    --model-root tests/data/e2e-models --runner "$CS_BUILD_DIR/tests/calsweep-testrun" \
    --work-dir "$tmp/w3" --heartbeat-ms 200 --kill-grace-ms 300 2>"$tmp/dd.log" &
wp=$!
for _ in $(seq 100); do [ "$(dq "SELECT state FROM job WHERE id = $djob")" = running ] && break; sleep 0.1; done
start=$(date +%s%N); kill -TERM $wp; wait $wp; rc=$?
ms=$(( ($(date +%s%N) - start) / 1000000 ))
[ $rc = 0 ] && [ $ms -ge 900 ] && [ $ms -lt 3000 ]
ok $? "--drain-s 1: the worker waits 1 s for its 6 s job, then hands it back and exits ($ms ms)"
[ "$(dq "SELECT state FROM job WHERE id = $djob")" = queued ]
ok $? "the handed-back job is queued again at once, not when its lease expires"
[ "$(dq "SELECT outcome || ' ' || worker FROM attempt WHERE job_id = $djob AND n = 1")" = "released dd" ]
ok $? "its attempt ended as released"
"$CALSWEEP_WORKER" --coordinator "ipc://$tmp/work.sock" --name d2 --max-jobs 1 \
    --model-root tests/data/e2e-models --runner "$CS_BUILD_DIR/tests/calsweep-testrun" \
    --work-dir "$tmp/w4" --heartbeat-ms 200 2>"$tmp/d2.log" &
wp=$!
for _ in $(seq 200); do [ "$(dq "SELECT state FROM job WHERE id = $djob")" = 'done' ] && break; sleep 0.1; done
[ "$(dq "SELECT state FROM job WHERE id = $djob")" = 'done' ]
ok $? "another worker finishes it, though the sweep allows one attempt"
[ "$(dq "SELECT outcome || ' ' || worker FROM attempt WHERE job_id = $djob AND n = 2")" = "done d2" ]
ok $? "the second attempt is the other worker's"
[ "$(dq "SELECT max_attempts - attempt FROM job_row WHERE id = $djob")" = 0 ]
ok $? "the released attempt is not counted (max_attempts grew by one)"
kill -TERM $wp 2>/dev/null; wait $wp 2>/dev/null
[ $fail = 0 ] || { echo "# $out"; for f in "$tmp"/*.log; do echo "# $f"; tail -n 8 "$f" | sed 's/^/# /'; done; sed 's/^/# /' "$tmp/daemon.log" | tail -10; }
[ $fail = 0 ]
