#!/usr/bin/env bash
# The control commands against a real calsweepd (temporary ipc sockets and database): submit,
# status, jobs, workers, logs, pause/resume, cancel, retry, extend, their --json output (checked
# with jq), refusals (exit 1), usage errors (exit 2) and an unreachable daemon (exit 3).
# Every command is bounded by `timeout`; the daemon is stopped on exit.
cd "$CS_SOURCE_DIR" || exit 1
n=0; fail=0
ok() { local m=${2//$'\n'/ | }; n=$((n+1)); if [ "$1" = 0 ]; then echo "ok $n - $m"; else echo "not ok $n - $m"; fail=1; fi; }
has() { case "$1" in *"$2"*) return 0;; *) return 1;; esac; }
# A loaded CI machine may stall the daemon's fsyncs for seconds: wait longer than the default.
cs() { timeout 40 "$CALSWEEP" --timeout-ms 15000 "$@"; }
echo "1..53"
tmp=$(mktemp -d); pid=
cleanup() { [ -n "$pid" ] && kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null; rm -rf "$tmp"; }
trap cleanup EXIT
export CALSWEEP_CONTROL="ipc://$tmp/control.sock"
unset CALSWEEP_TOKEN_FILE

# ---- no daemon --------------------------------------------------------------------------------
cs status >/dev/null 2>"$tmp/err"; rc=$?
[ $rc = 3 ]; ok $? "status without a daemon exits 3"
grep -qF "calsweepd is not running at ipc://$tmp/control.sock; start it with: calsweepd &" "$tmp/err"
ok $? "and says how to start it"
cs --control tcp://127.0.0.1:9 --timeout-ms 300 jobs >/dev/null 2>"$tmp/err"; rc=$?
[ $rc = 3 ]; ok $? "a tcp endpoint nobody listens on exits 3 within --timeout-ms"
start=$(date +%s)
cs --control tcp://127.0.0.1:9 --timeout-ms 300 submit tests/data/sweeps/product.json >/dev/null 2>"$tmp/err"; rc=$?
[ $rc = 3 ] && [ $(( $(date +%s) - start )) -lt 10 ] && grep -q "calsweepd is not running" "$tmp/err"
ok $? "submit (which may wait long for its reply) still exits 3 within --timeout-ms without a daemon"
cs status a b >/dev/null 2>&1; [ $? = 2 ]; ok $? "status with two sweeps exits 2"
cs cancel >/dev/null 2>&1; [ $? = 2 ]; ok $? "cancel without a sweep or --job exits 2"
cs retry product >/dev/null 2>&1; [ $? = 2 ]; ok $? "retry without --failed/--lost exits 2"
cs jobs --limit 0 >/dev/null 2>&1; [ $? = 2 ]; ok $? "jobs --limit 0 exits 2"
cs logs >/dev/null 2>&1; [ $? = 2 ]; ok $? "logs without a job exits 2"
ok=0; for c in submit status jobs workers logs cancel pause resume retry extend; do
    cs "$c" --help | grep -q "usage: calsweep $c" || ok=1
done
ok $ok "every control command has --help"

# ---- a daemon ---------------------------------------------------------------------------------
timeout 120 "$CALSWEEPD" --db "$tmp/calsweep.db" --work "ipc://$tmp/work.sock" \
    --control "ipc://$tmp/control.sock" --reap-ms 200 2>"$tmp/daemon.log" &
pid=$!
for _ in $(seq 100); do [ -S "$tmp/control.sock" ] && break; sleep 0.1; done
[ -S "$tmp/control.sock" ]; ok $? "calsweepd listens on the control socket"

out=$(cs submit tests/data/sweeps/product.json 2>"$tmp/err"); rc=$?
ok $rc "submit exits 0"
has "$out" "submitted sweep product (id 1): 9 jobs, 9 queued, 0 cached, 1 baseline"; ok $? "submit prints the counts"
out=$(cs submit tests/data/sweeps/product.json 2>"$tmp/err"); rc=$?
[ $rc = 0 ] && has "$out" "sweep product was already stored with this content (id 1): 9 jobs; nothing was added"
ok $? "the same file again (as nng resends it after a daemon restart) exits 0 naming the stored sweep"
sed 's/"seed": \[0, 1\]/"seed": [0, 3]/' tests/data/sweeps/product.json >"$tmp/product-other.json"
cs submit "$tmp/product-other.json" >/dev/null 2>"$tmp/err"; rc=$?
[ $rc = 1 ] && grep -q "calsweep submit: .*already exists" "$tmp/err"; ok $? "another file under a live sweep's name exits 1 with a message"
cs submit tests/data/sweeps-bad/many-errors.json >/dev/null 2>"$tmp/err"; rc=$?
[ $rc = 1 ]; ok $? "an invalid sweep exits 1"
[ "$(grep -c 'many-errors.json: error: ' "$tmp/err")" = 8 ]; ok $? "every validation error is printed, one per line"
grep -q 'many-errors.json: error: gird: unknown key' "$tmp/err"; ok $? "errors name the file and the JSON path"
cs submit "$tmp/nonexistent.json" >/dev/null 2>&1; [ $? = 1 ]; ok $? "a missing file exits 1"

st=$(cs status --json); rc=$?
ok $rc "status --json exits 0"
[ "$(jq -r '.sweeps[0].name, .sweeps[0].state, .sweeps[0].counts.queued, .workers' <<<"$st" | tr '\n' ' ')" = "product active 9 0 " ]
ok $? "status --json: name, state, queued, workers"
out=$(cs status product); rc=$?
[ $rc = 0 ] && printf '%s\n' "$out" | grep -Eq '^1 +product +active .*0% +0/9'; ok $? "status prints a row with progress"
cs status nosuch >/dev/null 2>"$tmp/err"; rc=$?
[ $rc = 1 ] && grep -q "no sweep 'nosuch'" "$tmp/err"; ok $? "status of an unknown sweep exits 1 naming it"

[ "$(cs jobs --json --sweep product --state queued | jq '.total')" = 9 ]; ok $? "jobs --json --state queued: 9"
[ "$(cs jobs --json --limit 2 --offset 1 | jq '[.jobs[].id] | join(",")' -r)" = "2,3" ]; ok $? "jobs --limit/--offset page"
out=$(cs jobs --limit 3); [ "$(printf '%s\n' "$out" | grep -c ' queued ')" = 3 ] && has "$out" "3 of 9 jobs shown"
ok $? "jobs prints a table and the count"
cs jobs --state sleeping >/dev/null 2>"$tmp/err"; rc=$?
[ $rc = 1 ] && grep -q "sleeping" "$tmp/err"; ok $? "jobs with a bad state exits 1 naming it"

[ "$(cs workers --json | jq '.workers | length')" = 0 ]; ok $? "workers --json: none yet"

out=$(cs pause product) && has "$out" "paused"; ok $? "pause"
[ "$(cs status --json 1 | jq -r '.sweeps[0].state')" = paused ]; ok $? "status shows the sweep paused (by id)"
out=$(cs resume product) && has "$out" "active"; ok $? "resume"
cs resume product >/dev/null 2>&1; [ $? = 1 ]; ok $? "resume of an active sweep exits 1"

out=$(cs cancel --job 1) && has "$out" "cancelled 1 job"; ok $? "cancel --job"
[ "$(cs jobs --json --state cancelled | jq '.jobs[0].id')" = 1 ]; ok $? "jobs shows job 1 cancelled"

# A failed job (written straight into the store, as a worker's permanent failure would end).
timeout 20 sqlite3 "$tmp/calsweep.db" "PRAGMA busy_timeout=5000; UPDATE job SET state='failed', state_at=1 WHERE id=2" >/dev/null
[ "$(cs jobs --json --state failed | jq '.total')" = 1 ]; ok $? "jobs shows the failed job"
out=$(cs retry product --failed) && has "$out" "requeued 1 job"; ok $? "retry --failed requeues it"
[ "$(cs jobs --json --state failed | jq '.total')" = 0 ] && [ "$(cs jobs --json --state queued | jq '.total')" = 8 ]
ok $? "jobs shows it queued again"

sed 's/"seed": \[0, 1\]/"seed": [0, 2]/' tests/data/sweeps/product.json >"$tmp/product.json"
out=$(cs extend product "$tmp/product.json") && has "$out" "4 jobs added (0 cached), 5 already there"
ok $? "extend adds the new cells"
[ "$(cs status --json product | jq '.sweeps[0].total')" = 13 ]; ok $? "status counts them"

out=$(cs logs 3 2>&1); ok $? "logs of a job that never ran exits 0"
cs logs 999 >/dev/null 2>"$tmp/err"; rc=$?
[ $rc = 1 ] && grep -q "no job 999" "$tmp/err"; ok $? "logs of an unknown job exits 1"

out=$(cs cancel product) && has "$out" "cancelled 12 jobs"; ok $? "cancel a sweep"
[ "$(cs status --json product 2>/dev/null | jq -r '.sweeps[0].state')" != active ] && \
    [ "$(cs status --json 1 | jq -r '.sweeps[0].state')" = cancelled ]; ok $? "the sweep is cancelled"

# A bulk submit leaves its WAL checkpoint to the daemon, which does it once nobody is asking.
out=$(cs submit tests/data/sweeps-ctl/ctl-bulk.json); rc=$?
[ $rc = 0 ] && has "$out" "5001 jobs"; ok $? "a 5,000-job sweep is submitted"
for _ in $(seq 50); do grep -q "checkpointed the write-ahead log" "$tmp/daemon.log" && break; sleep 0.2; done
grep -q "checkpointed the write-ahead log of a bulk submit" "$tmp/daemon.log"
ok $? "the idle daemon checkpoints the write-ahead log of the bulk submit"

# plan and calsweepd resolve a sweep the same way: an ACDM sweep whose task sources, models and
# grid axes are not written in sorted order gets plan --json's keys, in plan's (written) order.
cat >"$tmp/order.json" <<'EOF'
{"name": "order",
 "models": {"zz": {"folder": "sweeps/testbed/models/tb-qwen"}, "aa": {"folder": "sweeps/testbed/models/tb-llama"}},
 "data": {"sources": {"prose": {"kind": "jsonl", "path": "sweeps/testbed/data/corpus/prose.jsonl"},
                      "zt": {"kind": "task", "path": "sweeps/testbed/data/tasks/arith_mc.train.jsonl"},
                      "at": {"kind": "task", "path": "sweeps/testbed/data/tasks/code_mc.train.jsonl"}},
          "eval": {"default": {"perplexity": {"g": {"path": "sweeps/testbed/data/heldout.txt"}}}}},
 "grid": {"seq_len": [256, 128], "algorithm": ["gptq", "awq"], "selector": ["acdm"], "source": ["prose"]}}
EOF
"$CALSWEEP" plan --json --examples 1000 "$tmp/order.json" | jq -r '.examples[].key' >"$tmp/plan.keys"
cs submit "$tmp/order.json" >/dev/null; ok $? "an ACDM sweep is submitted"
cs jobs --json --sweep order --limit 1000 | jq -r '.jobs | sort_by(.id) | .[].key' >"$tmp/daemon.keys"
[ "$(wc -l <"$tmp/plan.keys")" = 10 ] && cmp -s "$tmp/plan.keys" "$tmp/daemon.keys"
ok $? "calsweepd stores plan --json's keys, in plan's order"

kill "$pid"; wait "$pid"; rc=$?; pid=
[ $rc = 0 ]; ok $? "calsweepd stops cleanly on SIGTERM"

# ---- a daemon that wants a token ----------------------------------------------------------------
printf 'secret-%s\n' "$RANDOM$RANDOM" >"$tmp/token"; chmod 600 "$tmp/token"
printf 'wrong\n' >"$tmp/wrong"; chmod 600 "$tmp/wrong"
timeout 120 "$CALSWEEPD" --db "$tmp/auth.db" --work "ipc://$tmp/work2.sock" \
    --control "ipc://$tmp/control2.sock" --token-file "$tmp/token" 2>"$tmp/daemon2.log" &
pid=$!
for _ in $(seq 100); do [ -S "$tmp/control2.sock" ] && break; sleep 0.1; done
export CALSWEEP_CONTROL="ipc://$tmp/control2.sock"
cs status >/dev/null 2>"$tmp/err"; rc=$?
[ $rc = 1 ] && grep -q "authentication failed" "$tmp/err"; ok $? "without the token: exit 1, authentication failed"
cs --token-file "$tmp/wrong" status >/dev/null 2>"$tmp/err"; rc=$?
[ $rc = 1 ] && grep -q "authentication failed" "$tmp/err"; ok $? "a wrong token: exit 1"
cs --token-file "$tmp/token" status >/dev/null; ok $? "--token-file before the command"
CALSWEEP_TOKEN_FILE="$tmp/token" cs status --json | jq -e '.sweeps == []' >/dev/null; ok $? "CALSWEEP_TOKEN_FILE"
chmod 644 "$tmp/token"
cs status --token-file "$tmp/token" >/dev/null 2>"$tmp/err"; rc=$?
[ $rc = 1 ] && grep -q "chmod 600" "$tmp/err"; ok $? "a token file others can read is refused"
[ $fail = 0 ]
