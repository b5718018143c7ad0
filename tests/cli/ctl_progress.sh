#!/usr/bin/env bash
# Step 11: a runner's progress lines (fd 3) travel with the worker's heartbeats to calsweepd and
# show in calsweep jobs and calsweep workers: a PROGRESS column ("quantize layer 7/24",
# "evaluate arith_mc 300/1000 (2 s)") and, with --json, the progress object {stage, detail, done,
# total, stage_ms} and heartbeat_at_ms. A real calsweepd and a real calsweep-worker; the runner is
# a script that writes progress lines and waits for the test's go-ahead. Bounded by timeouts.
cd "$CS_SOURCE_DIR" || exit 1
n=0; fail=0
ok() { local m=${2//$'\n'/ | }; n=$((n+1)); if [ "$1" = 0 ]; then echo "ok $n - $m"; else echo "not ok $n - $m"; fail=1; fi; }
has() { case "$1" in *"$2"*) return 0;; *) return 1;; esac; }
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
echo "1..14"
tmp=$(mktemp -d); pid=; wpid=
cleanup() {
    touch "$tmp/go1" "$tmp/go2"
    [ -n "$wpid" ] && kill "$wpid" 2>/dev/null && wait "$wpid" 2>/dev/null
    [ -n "$pid" ] && kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null
    rm -rf "$tmp"
}
trap cleanup EXIT
export CALSWEEP_CONTROL="ipc://$tmp/control.sock"
unset CALSWEEP_TOKEN_FILE

# The runner: a quantize line, then (after go1) an evaluate line naming its task; after go2 a
# result. Each wait is bounded (60 s).
cat >"$tmp/runner.sh" <<RUNNER
#!/usr/bin/env bash
echo '{"stage":"quantize","layer":6,"done":7,"total":24}' >&3
for _ in \$(seq 600); do [ -e "$tmp/go1" ] && break; sleep 0.1; done
echo '{"stage":"evaluate","task":"arith_mc","done":300,"total":1000}' >&3
for _ in \$(seq 600); do [ -e "$tmp/go2" ] && break; sleep 0.1; done
printf '{"metrics":{"t":{"acc":0.5}}}' >result.json
RUNNER
chmod +x "$tmp/runner.sh"

timeout 150 "$CALSWEEPD" --db "$tmp/calsweep.db" --work "ipc://$tmp/work.sock" \
    --control "ipc://$tmp/control.sock" --reap-ms 200 --claim-hold-ms 200 2>"$tmp/daemon.log" &
pid=$!
for _ in $(seq 100); do [ -S "$tmp/control.sock" ] && break; sleep 0.1; done
timeout 150 "$CALSWEEP_WORKER" --coordinator "ipc://$tmp/work.sock" --name w1 \
    --model-root tests/data/e2e-models --runner "$tmp/runner.sh" \
    --work-dir "$tmp/work" --heartbeat-ms 200 --kill-grace-ms 500 --threads 1 2>"$tmp/worker.log" &
wpid=$!

cs submit tests/data/sweeps-ctl/ctl-sleep.json >/dev/null; ok $? "submit"
wait_for 30 '.jobs[0].progress.stage == "quantize"' jobs --state running
ok $? "the runner's quantize line reaches calsweepd"
js=$(cs jobs --json --state running)
[ "$(jq -c '.jobs[0].progress | {stage, detail, done, total}' <<<"$js")" = \
  '{"stage":"quantize","detail":"layer","done":7,"total":24}' ]
ok $? "jobs --json: stage quantize, detail layer, 7/24"
[ "$(jq '.jobs[0].progress.stage_ms >= 1 and (.jobs[0].progress | has("log_tail") | not)' <<<"$js")" = true ]
ok $? "jobs --json: stage_ms, no log_tail"
[ "$(jq '.jobs[0].heartbeat_at_ms > 0' <<<"$js")" = true ]; ok $? "jobs --json: heartbeat_at_ms"
out=$(cs jobs --state running)
has "$out" "PROGRESS"; ok $? "jobs has a PROGRESS column"
has "$out" " quantize layer 7/24 ("; ok $? "jobs shows 'quantize layer 7/24 (N s)': $out"
ws=$(cs workers --json)
[ "$(jq -c '.workers[0] | [.name, .progress.stage, .progress.detail, .progress.done, .progress.total, .heartbeat_at_ms > 0]' <<<"$ws")" = \
  '["w1","quantize","layer",7,24,true]' ]
ok $? "workers --json: the running job's progress and heartbeat_at_ms"
out=$(cs workers)
printf '%s\n' "$out" | grep -Eq '^WORKER .* PROGRESS$'; ok $? "workers has a PROGRESS column: $out"
printf '%s\n' "$out" | grep -Eq '^w1 .* quantize layer 7/24 \([0-9]+ s\)$'; ok $? "workers shows the progress"

touch "$tmp/go1"
wait_for 30 '.jobs[0].progress.detail == "arith_mc"' jobs --state running
ok $? "the evaluate line names its task"
sleep 1.2 # the stage clock restarted with the new (stage, detail): at least a second now
js=$(cs jobs --json --state running)
[ "$(jq -c '.jobs[0].progress | [.stage, .detail, .done, .total, .stage_ms >= 1000]' <<<"$js")" = \
  '["evaluate","arith_mc",300,1000,true]' ]
ok $? "jobs --json: evaluate arith_mc 300/1000, stage_ms counts"
out=$(cs jobs --state running)
printf '%s\n' "$out" | grep -Eq ' evaluate arith_mc 300/1000 \([0-9]+ s\) '; ok $? "jobs shows 'evaluate arith_mc 300/1000 (N s)': $out"

touch "$tmp/go2"
# the job and its baseline
wait_for 30 '.sweeps[0].counts.done == 2' status ctl-sleep && printf '%s\n' "$(cs workers)" | grep -Eq '^w1 .* idle +-$'
ok $? "all done: the worker is idle, no progress"
[ $fail = 0 ]
