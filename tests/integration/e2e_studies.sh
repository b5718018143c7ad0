#!/usr/bin/env bash
# The papers' studies end to end: the quick variants of sweeps/acdm-study.json (a union of two
# sub-grids over a pool mixed from four domains; ACDM against the task references, COLA,
# ZipCal, self-calibration) and sweeps/cola-study.json (domain pools, one with reasoning chains
# in COLA's QA format; SparseGPT and GPTQ) submitted to calsweepd and run by a real
# calsweep-worker with calsweep-run. Every job must finish; results group by the sub-grid (the
# label axis "grid") and by pool; result.json records each pool with the items each source gave.
# Bounded by timeouts; everything started is stopped on exit.
cd "$CS_SOURCE_DIR" || exit 1
n=0; fail=0
ok() { local m=${2//$'\n'/ | }; n=$((n+1)); if [ "$1" = 0 ]; then echo "ok $n - $m"; else echo "not ok $n - $m"; fail=1; fi; }
tmp=$(mktemp -d); dpid='' wpid=''
# shellcheck disable=SC2317 # called by the EXIT trap only
cleanup() {
    [ -n "$wpid" ] && kill "$wpid" 2>/dev/null && wait "$wpid" 2>/dev/null
    [ -n "$dpid" ] && kill "$dpid" 2>/dev/null && wait "$dpid" 2>/dev/null
    rm -rf "$tmp"
}
trap cleanup EXIT
unset CALSWEEP_TOKEN_FILE
export CALSWEEP_CONTROL="ipc://$tmp/control.sock"
db="$tmp/calsweep.db"
cs() { timeout 120 "$CALSWEEP" --timeout-ms 20000 "$@"; }
q() { sqlite3 -readonly "$db" "$@"; }
echo "1..9"

timeout 1500 "$CALSWEEPD" --db "$db" --work "ipc://$tmp/work.sock" --control "ipc://$tmp/control.sock" \
    --claim-hold-ms 200 --reap-ms 200 2>"$tmp/daemon.log" &
dpid=$!
for _ in $(seq 100); do [ -S "$tmp/control.sock" ] && break; sleep 0.1; done
cs submit sweeps/acdm-study-quick.json >/dev/null && cs submit sweeps/cola-study-quick.json >/dev/null
ok $? "both quick studies are submitted"
total=$(q "SELECT count(*) FROM job")
[ "$total" -ge 18 ]; ok $? "they hold $total jobs"

timeout 1400 "$CALSWEEP_WORKER" --coordinator "ipc://$tmp/work.sock" --name w1 \
    --model-root sweeps/testbed/models --threads 2 --work-dir "$tmp/work" --cache-dir "$tmp/cache" \
    --heartbeat-ms 500 2>"$tmp/worker.log" &
wpid=$!
for _ in $(seq 2600); do
    [ "$(q "SELECT count(*) FROM job WHERE state IN ('done','failed','lost','cancelled')")" = "$total" ] && break
    if ! kill -0 "$dpid" 2>/dev/null || ! kill -0 "$wpid" 2>/dev/null; then break; fi # one died: fail now
    sleep 0.5
done
done_n=$(q "SELECT count(*) FROM job WHERE state = 'done'")
[ "$done_n" = "$total" ]; ok $? "every job is done ($done_n of $total)"
[ "$done_n" = "$total" ] || { q "SELECT state, last_error FROM job WHERE state != 'done'" | head -5; tail -20 "$tmp/worker.log"; }

out=$(cs results acdm-study-quick --by grid --json --resamples 0); rc=$?
[ $rc = 0 ] && [ "$(jq -r '[.rows[] | .values.grid // empty] | unique | join(",")' <<<"$out")" = "selectors,sensitivity" ]
ok $? "results group acdm-study-quick by its sub-grids (the label axis grid)"
out=$(cs results cola-study-quick --by source --json --resamples 0); rc=$?
[ $rc = 0 ] && [ "$(jq -r '[.rows[] | .values.source // empty] | unique | join(",")' <<<"$out")" = "arith_pool,code_pool" ]
ok $? "results group cola-study-quick by pool"

r=$(grep -l '"selector": *"acdm"\|"selector":"acdm"' "$tmp"/work/*/result.json | head -1)
[ -n "$r" ] && jq -e '.calibration.pool.sources | map(.name) == ["arith", "code", "facts", "prose"]' "$r" >/dev/null
ok $? "an ACDM job's result.json records the mixed pool's four sources"
r=$(grep -l '"arith_gen_train"' "$tmp"/work/*/result.json | head -1)
[ -n "$r" ] && jq -e '[.calibration.pool.sources[] | select(.name == "arith_gen_train") | .format] == ["qa"] and (.calibration.sample_ids | length == 8)' "$r" >/dev/null
ok $? "a job on the arithmetic pool records its reasoning chains as qa items and 8 chosen ids"
r=$(grep -l '"selector": *"cola"\|"selector":"cola"' "$tmp"/work/*/result.json | head -1)
[ -n "$r" ] && jq -e '.calibration.pool.n == 32' "$r" >/dev/null
ok $? "a COLA job chose from a pool of 4 x n_samples = 32 items"
head=$(cs export acdm-study-quick --format csv 2>/dev/null | grep -v '^#' | head -1)
case "$head" in algorithm,grid,*) true;; *) false;; esac; ok $? "the export's columns include the sub-grid ($head)"
exit $fail
