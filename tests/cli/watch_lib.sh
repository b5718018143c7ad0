# shellcheck shell=bash
# Sourced by tests/cli/watch_once.sh and watch_tmux.sh: TAP helpers and a real calsweepd with a
# real calsweep-worker (the test runner, tests/calsweep-testrun, on tests/data/e2e-models) that
# has run tests/data/watch/watch-fail.json (two jobs failed, the sweep done) and is running
# watch-slow.json (one job at a time for 60 s each, so the counts hold still while a test reads
# the view). Bounded by timeouts; cleans up on exit.
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
# The counts of a sweep as the view writes them, from `calsweep status --json`.
counts_of() {
    cs status "$1" --json | jq -r '.sweeps[0].counts | "q\(.queued) r\(.running) d\(.done) c\(.cached) rt\(.retry_wait) f\(.failed) l\(.lost) x\(.cancelled)"'
}
tmp=$(mktemp -d); pid=; wpid=
watch_cleanup() {
    # a worker stops only once its job has ended: cancel the 60 s ones first
    [ -n "$pid" ] && timeout 10 "$CALSWEEP" cancel watch-slow >/dev/null 2>&1
    [ -n "$wpid" ] && kill "$wpid" 2>/dev/null && wait "$wpid" 2>/dev/null
    [ -n "$pid" ] && kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null
    rm -rf "$tmp"
}
trap watch_cleanup EXIT
export CALSWEEP_CONTROL="ipc://$tmp/control.sock"
unset CALSWEEP_TOKEN_FILE NO_COLOR

# Starts calsweepd and the worker, runs watch-fail to its end and starts watch-slow. Returns 1
# (after a "not ok") when that does not happen in time.
watch_setup() {
    timeout 300 "$CALSWEEPD" --db "$tmp/calsweep.db" --work "ipc://$tmp/work.sock" \
        --control "ipc://$tmp/control.sock" --reap-ms 200 --claim-hold-ms 200 \
        2>"$tmp/daemon.log" &
    pid=$!
    for _ in $(seq 100); do [ -S "$tmp/control.sock" ] && break; sleep 0.1; done
    timeout 300 "$CALSWEEP_WORKER" --coordinator "ipc://$tmp/work.sock" --name w1 \
        --model-root tests/data/e2e-models --runner "$CS_BUILD_DIR/tests/calsweep-testrun" \
        --work-dir "$tmp/work" --heartbeat-ms 200 --kill-grace-ms 500 --threads 1 \
        2>"$tmp/worker.log" &
    wpid=$!
    cs submit tests/data/watch/watch-fail.json >/dev/null &&
        wait_for 30 '.sweeps[0].counts.failed == 2 and .sweeps[0].state == "done"' \
            status watch-fail &&
        cs submit tests/data/watch/watch-slow.json >/dev/null &&
        wait_for 30 '.sweeps[0].counts.running == 1 and .sweeps[0].counts.queued == 3' \
            status watch-slow
    ok $? "calsweepd, a worker, watch-fail done with 2 failures, watch-slow running"
}

# Prints the logs of calsweepd and the worker as TAP comments when something failed.
watch_report() {
    [ $fail = 0 ] || { for f in "$tmp"/*.log; do echo "# $f"; tail -n 15 "$f" | sed 's/^/# /'; done; }
}
