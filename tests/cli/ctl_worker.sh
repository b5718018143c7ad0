#!/usr/bin/env bash
# The control commands with a real calsweepd and a real calsweep-worker running the test runner
# (tests/calsweep-testrun): failed jobs, their logs from the attempt's log file, retry --failed,
# workers, cached jobs on a second submit, and cancelling a running job. Bounded by timeouts.
cd "$CS_SOURCE_DIR" || exit 1
n=0; fail=0
ok() { local m=${2//$'\n'/ | }; n=$((n+1)); if [ "$1" = 0 ]; then echo "ok $n - $m"; else echo "not ok $n - $m"; fail=1; fi; }
has() { case "$1" in *"$2"*) return 0;; *) return 1;; esac; }
# A loaded CI machine may stall the daemon's fsyncs for seconds: wait longer than the default.
cs() { timeout 40 "$CALSWEEP" --timeout-ms 15000 "$@"; }
# wait_for SECONDS JQ-FILTER ARGS...: polls `calsweep ARGS --json` until the filter prints true.
wait_for() {
    local s=$1 f=$2; shift 2
    for _ in $(seq $((s * 10))); do
        [ "$(cs "$@" --json 2>/dev/null | jq -r "$f" 2>/dev/null)" = true ] && return 0
        sleep 0.1
    done
    return 1
}
echo "1..19"
tmp=$(mktemp -d); pid=; wpid=
cleanup() {
    [ -n "$wpid" ] && kill "$wpid" 2>/dev/null && wait "$wpid" 2>/dev/null
    [ -n "$pid" ] && kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null
    rm -rf "$tmp"
}
trap cleanup EXIT
export CALSWEEP_CONTROL="ipc://$tmp/control.sock"
unset CALSWEEP_TOKEN_FILE

timeout 150 "$CALSWEEPD" --db "$tmp/calsweep.db" --work "ipc://$tmp/work.sock" \
    --control "ipc://$tmp/control.sock" --reap-ms 200 --claim-hold-ms 200 2>"$tmp/daemon.log" &
pid=$!
for _ in $(seq 100); do [ -S "$tmp/control.sock" ] && break; sleep 0.1; done
timeout 150 "$CALSWEEP_WORKER" --coordinator "ipc://$tmp/work.sock" --name w1 \
    --model-root tests/data/e2e-models --runner "$CS_BUILD_DIR/tests/calsweep-testrun" \
    --work-dir "$tmp/work" --heartbeat-ms 200 --kill-grace-ms 500 --threads 1 2>"$tmp/worker.log" &
wpid=$!

out=$(cs submit tests/data/sweeps-ctl/ctl-retry.json); ok $? "submit"
wait_for 30 '.sweeps[0].counts.failed == 3 and .sweeps[0].counts.done == 1' status ctl-retry
ok $? "three jobs fail, the baseline is done"
[ "$(cs workers --json | jq -r '.workers[0].name')" = w1 ]; ok $? "workers lists the worker"
cs workers | grep -Eq '^w1 '; ok $? "workers prints a row"
cs workers | grep -Eq '^w1 .* active '; ok $? "a worker that talks to calsweepd is active"

job=$(cs jobs --json --state failed --limit 1 | jq '.jobs[0].id')
lg=$(cs logs --json "$job"); ok $? "logs --json of a failed job"
has "$(jq -r '.log' <<<"$lg")" "testrun: failing on demand"
ok $? "logs of a failed attempt shows its log"
[ "$(cs logs --tail 5 "$job" | wc -c)" -le 6 ]; ok $? "logs --tail cuts the log"

out=$(cs retry ctl-retry --failed); has "$out" "requeued 3 jobs"; ok $? "retry --failed requeues the three jobs"
wait_for 30 '.sweeps[0].counts.done == 4' status ctl-retry; ok $? "they succeed on their second attempt"
cs status ctl-retry | grep -Eq '\[#{20}\] 100% +4/4'; ok $? "status shows a full bar and 100%"
has "$(cs logs --attempt 2 "$job")" "testrun: done"; ok $? "logs --attempt 2 shows the second attempt"
lg=$(cs logs --json --attempt 1 "$job")
[ "$(jq -r '.source' <<<"$lg")" = file ] && has "$(jq -r '.log' <<<"$lg")" "failing on demand"
ok $? "logs --attempt 1 reads the first attempt's log file"

out=$(cs submit tests/data/sweeps-ctl/ctl-sleep.json); has "$out" "2 jobs, 1 queued, 1 cached"
ok $? "a second sweep reuses the cached baseline"
wait_for 30 '.total == 1' jobs --sweep ctl-sleep --state running; ok $? "its long job runs"
sj=$(cs jobs --json --sweep ctl-sleep --state running | jq '.jobs[0].id')
out=$(cs cancel --job "$sj"); has "$out" "1 running job will stop at the next heartbeat"; ok $? "cancel a running job"
wait_for 30 '.total == 1' jobs --sweep ctl-sleep --state cancelled; ok $? "the running job ends cancelled"

kill "$wpid"; wait "$wpid"; wpid=
# its BYE may still be on its way when a loaded machine lets the shell go on first
wait_for 10 '[.workers[] | select(.name == "w1") | .active] == [false]' workers &&
    cs workers | grep -Eq '^w1 .* gone '; ok $? "a worker that said goodbye is gone"
kill "$pid"; wait "$pid"; rc=$?; pid=
[ $rc = 0 ]; ok $? "calsweepd stops cleanly"
[ $fail = 0 ] || { echo "# daemon log:"; sed 's/^/# /' "$tmp/daemon.log" | tail -20; echo "# worker log:"; sed 's/^/# /' "$tmp/worker.log" | tail -20; }
[ $fail = 0 ]
