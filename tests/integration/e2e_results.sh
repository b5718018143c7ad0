#!/usr/bin/env bash
# `calsweep results` end to end: a sweep of 2 algorithms x 2 selectors x 3 seeds (plus the
# unquantized baseline) on the testbed model, tiny sizes, run by calsweepd and a real
# calsweep-worker with calsweep-run. The aggregate (through calsweepd, and with --db) must match a
# recomputation from the stored per-job metrics done here with sqlite3 and jq: per group and task
# the seeds, mean and population std of every metric, the average accuracy of the headline
# metrics (arith's is acc_norm, set in the sweep), retention, delta, std_ret, worst_drop, min_ret
# and std_acc against the baseline (M4, M5). Also: results while nothing ran yet (partial), the
# item outcomes stored once (tables item_outcome and item_value, not in the result json), bad
# input (exit 1 naming the value and the choices), and calsweepd answering other requests while a
# RESULTS of 400,001 jobs runs. Bounded by timeouts; everything started is stopped on exit.
cd "$CS_SOURCE_DIR" || exit 1
n=0; fail=0
ok() { local m=${2//$'\n'/ | }; n=$((n+1)); if [ "$1" = 0 ]; then echo "ok $n - $m"; else echo "not ok $n - $m"; fail=1; fi; }
has() { case "$1" in *"$2"*) return 0;; *) return 1;; esac; }
tmp=$(mktemp -d); dpid='' wpid=''
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

timeout 900 "$CALSWEEPD" --db "$db" --work "ipc://$tmp/work.sock" --control "ipc://$tmp/control.sock" \
    --claim-hold-ms 200 --reap-ms 200 2>"$tmp/daemon.log" &
dpid=$!
for _ in $(seq 100); do [ -S "$tmp/control.sock" ] && break; sleep 0.1; done
cs submit tests/data/sweeps-results/e2e-results.json >/dev/null; ok $? "the sweep is submitted"

# Before any job ran: an aggregate with every job unfinished, each row flagged partial.
out=$(cs results e2e-results --json --resamples 0); rc=$?
[ $rc = 0 ] && [ "$(jq '[.rows[].jobs.unfinished] | add' <<<"$out")" = 13 ] &&
    [ "$(jq '[.rows[] | select(.flags | index("partial"))] | length' <<<"$out")" = 5 ]
ok $? "results while the sweep runs: 13 unfinished jobs, 5 rows flagged partial"

timeout 600 "$CALSWEEP_WORKER" --coordinator "ipc://$tmp/work.sock" --name w1 \
    --model-root sweeps/testbed/models --threads 2 --work-dir "$tmp/work" --cache-dir "$tmp/cache" \
    --heartbeat-ms 500 2>"$tmp/worker.log" &
wpid=$!
for _ in $(seq 1200); do
    [ "$(q "SELECT count(*) FROM job WHERE state IN ('done','failed','lost','cancelled')")" = 13 ] && break
    if ! kill -0 "$dpid" 2>/dev/null || ! kill -0 "$wpid" 2>/dev/null; then break; fi # one died: fail now
    sleep 0.5
done
[ "$(q "SELECT count(*) FROM job WHERE state = 'done'")" = 13 ]; ok $? "all 13 jobs are done"

# The per-item outcomes are stored once: in item_outcome (bitsets) and item_value (float arrays),
# one row per task and outcome array of each result.json's "items", never in the stored result
# json.
want=$(cat "$tmp"/work/*/result.json | jq -s '[.[] | (.items // {})[] | keys[] | select(. != "n" and . != "sample")] | length')
got=$(q "SELECT (SELECT count(*) FROM item_outcome) + (SELECT count(*) FROM item_value)")
[ "$want" = "$got" ]; ok $? "item_outcome and item_value hold every outcome array of the results ($got of $want)"
[ "$(q "SELECT count(*) FROM item_value WHERE metric NOT IN ('margin', 'window_loss')")" = 0 ] &&
    [ "$(q "SELECT count(*) FROM item_outcome WHERE metric IN ('margin', 'window_loss')")" = 0 ]
ok $? "bitsets in item_outcome, float arrays in item_value"
[ "$(q "SELECT count(*) FROM result WHERE json_extract(json, '\$.items') IS NOT NULL")" = 0 ]
ok $? "the stored result json has no items"

# The aggregate, through calsweepd and from the database directly.
cs results e2e-results --json --resamples 200 | jq -S . >"$tmp/agg.json"; rc=$?
[ $rc = 0 ] && [ "$(jq '.rows | length' "$tmp/agg.json")" = 5 ]; ok $? "results --json: 5 rows"
cs results e2e-results --db "$db" --json --resamples 200 | jq -S . >"$tmp/agg_db.json"
cmp -s "$tmp/agg.json" "$tmp/agg_db.json"; ok $? "--db gives the same aggregate as calsweepd"
[ "$(jq -r '.tasks[] | select(.name == "arith") | .headline' "$tmp/agg.json")" = acc_norm ] &&
    [ "$(jq -r '.tasks[] | select(.name == "facts") | .headline' "$tmp/agg.json")" = acc ]
ok $? "the headline metrics come from the sweep (arith acc_norm, facts acc)"

# The recomputation: every stored metric of every done job, grouped by algorithm and selector.
q -json "SELECT json_extract(j.axes, '\$.algorithm.name') AS alg,
                coalesce(json_extract(j.axes, '\$.selector.name'), '-') AS sel,
                j.baseline AS base, json_extract(j.axes, '\$.seed') AS seed,
                m.task AS task, m.metric AS metric, m.value AS v
           FROM job j JOIN metric m ON m.result_id = j.result_id
          WHERE j.state = 'done'" >"$tmp/metrics.json"
jq '[group_by([.alg, .sel, .task, .metric])[] |
     (map(.v) | add / length) as $mean |
     {alg: .[0].alg, sel: .[0].sel, base: .[0].base, task: .[0].task, metric: .[0].metric,
      n: length, seeds: (map(.seed) | sort), mean: $mean,
      std: ((map((.v - $mean) * (.v - $mean)) | add / length) | sqrt)}]' \
    "$tmp/metrics.json" >"$tmp/expect.json"
[ "$(jq '[.[] | select(.base == 0)] | length' "$tmp/expect.json")" = 32 ]
ok $? "the recomputation has 4 groups x 8 metrics"
jq -e --slurpfile e "$tmp/expect.json" '
    def row($a; $s): .rows[] | select(.baseline | not)
        | select(.values.algorithm.name == $a and .values.selector.name == $s);
    . as $agg | [$e[0][] | select(.base == 0) as $x | $agg | row($x.alg; $x.sel) as $r
     | $r.tasks[$x.task].metrics[$x.metric] as $g
     | select($g != null and $g.n == $x.n and $r.n_seeds == 3 and $r.jobs.seeds == $x.seeds
              and (($g.mean - $x.mean) | fabs) < 1e-9 and (($g.std - $x.std) | fabs) < 1e-9)]
    | length == 32' "$tmp/agg.json" >/dev/null
ok $? "per group and task: 3 seeds, the mean and population std of every metric match"

# M4 and M5 against the baseline, from the recomputed means of the headline metrics.
jq -e --slurpfile e "$tmp/expect.json" '
    def mean($x; $t; $m): [$e[0][] | select(.alg == $x.alg and .sel == $x.sel and .task == $t
                                             and .metric == $m)][0].mean;
    def pstd(a): (a | add / length) as $m | (a | map((. - $m) * (. - $m)) | add / length) | sqrt;
    def close(a; b): ((a - b) | fabs) < 1e-9;
    ([$e[0][] | select(.base == 1)][0]) as $b
    | [mean($b; "arith"; "acc_norm"), mean($b; "facts"; "acc")] as $f
    | [$e[0][] | select(.base == 0) | {alg, sel}] | unique | map(. as $x
        | [mean($x; "arith"; "acc_norm"), mean($x; "facts"; "acc")] as $qv
        | [$qv[0] / $f[0], $qv[1] / $f[1]] as $ret
        | ($qv | add / 2) as $avg
        | [$ARGS.named.agg.rows[] | select(.baseline | not)
           | select(.values.algorithm.name == $x.alg and .values.selector.name == $x.sel)][0] as $r
        | close($r.average.value; $avg)
          and close($r.vs_baseline.average.delta; $avg - ($f | add / 2))
          and close($r.vs_baseline.tasks.arith.retention; $ret[0])
          and close($r.vs_baseline.tasks.facts.retention; $ret[1])
          and close($r.vs_baseline.tasks.arith.delta; $qv[0] - $f[0])
          and close($r.vs_baseline.balance.std_ret; pstd($ret))
          and close($r.vs_baseline.balance.min_ret; $ret | min)
          and close($r.vs_baseline.balance.worst_drop; [$f[0] - $qv[0], $f[1] - $qv[1]] | max)
          and close($r.vs_baseline.balance.std_acc; pstd($qv)))
    | length == 4 and all' --argjson agg "$(cat "$tmp/agg.json")" -n >/dev/null
ok $? "average accuracy, retention, delta, std_ret, min_ret, worst_drop and std_acc match"

out=$(cs results e2e-results --resamples 200); rc=$?
[ $rc = 0 ] && has "$out" "arith:acc_norm" && has "$out" "baseline"; ok $? "the text table"
# The text table comes from the slim aggregate (RESULTS slim), calsweepd's as --db's.
[ "$out" = "$(cs results e2e-results --db "$db" --resamples 200)" ]
ok $? "the text table through calsweepd is the one read with --db"
out=$(cs results e2e-results --reference selector=random --by algorithm,selector --resamples 200) &&
    [ "$out" = "$(cs results e2e-results --db "$db" --reference selector=random \
    --by algorithm,selector --resamples 200)" ] && has "$out" "reference selector=random"
ok $? "... and with a reference"
out=$(cs results e2e-results --reference selector=random --by algorithm,selector --json --resamples 200); rc=$?
[ $rc = 0 ] && [ "$(jq '[.rows[] | select(.vs_reference != null)] | length' <<<"$out")" = 2 ]
ok $? "--reference selector=random compares the 2 zipcal rows"
# Every job scored the same item sample (result.json version 2), so the comparisons are tested:
# the delta is the difference of the recomputed means, inside its interval, with p in [0, 1].
jq -e --slurpfile e "$tmp/expect.json" '
    def mean($a; $s; $t; $m): [$e[0][] | select(.alg == $a and .sel == $s and .task == $t
                                               and .metric == $m)][0].mean;
    [.rows[] | select(.vs_reference != null) | .values.algorithm.name as $a
     | .vs_reference.tasks as $c
     | [["arith", "acc_norm"], ["facts", "acc"]][] as [$t, $m] | $c[$t]
     | .tested and .ci != null and .ci[0] <= .delta and .delta <= .ci[1]
       and .p >= 0 and .p <= 1 and .p_holm >= .p
       and ((.delta - (mean($a; "zipcal"; $t; $m) - mean($a; "random"; $t; $m))) | fabs) < 1e-9]
    | length == 4 and all' <<<"$out" >/dev/null
ok $? "... paired over items and seeds: delta = the difference of the means, inside its CI, p in [0, 1]"

# Bad input: exit 1, naming the value and the choices.
out=$(cs results nosuch 2>&1); rc=$?
[ $rc = 1 ] && has "$out" "no sweep 'nosuch'" && has "$out" "e2e-results"; ok $? "an unknown sweep ($out)"
out=$(cs results e2e-results --db "$db" --by bogus 2>&1); rc=$?
[ $rc = 1 ] && has "$out" "bogus" && has "$out" "selector"; ok $? "an unknown --by axis ($out)"
out=$(cs results e2e-results --task nope 2>&1); rc=$?
[ $rc = 1 ] && has "$out" "nope" && has "$out" "arith"; ok $? "an unknown --task ($out)"
out=$(cs results e2e-results --reference algorithm=rtn 2>&1); rc=$?
[ $rc = 1 ] && has "$out" "rtn" && has "$out" "gptq"; ok $? "a reference matching no row ($out)"
out=$(cs results e2e-results --reference algorithm 2>&1); rc=$?
[ $rc = 1 ] && has "$out" "AXIS=VALUE"; ok $? "a reference without a value ($out)"

# RESULTS runs off calsweepd's loop thread: while it aggregates a large sweep, other requests are
# answered. The worker is stopped first (it would claim the big sweep's jobs). STATUS is sent
# once RESULTS is under way; on the loop thread it would wait for the whole aggregate, so it must
# come back in less than half the time RESULTS still needs (the text table's reply is the slim
# aggregate, so the RESULTS client ends right after its reply).
kill "$wpid" 2>/dev/null; wait "$wpid" 2>/dev/null; wpid=
jq '.name = "big" | .grid.seed = [range(0; 1000)] | .grid.n_samples = [range(1; 101)]' \
    tests/data/sweeps-results/e2e-results.json >"$tmp/big.json"
cs submit "$tmp/big.json" >/dev/null; ok $? "a sweep of 400,001 jobs is submitted"
( cs results big --resamples 0 >"$tmp/big.out" 2>"$tmp/big.err"; echo $? >"$tmp/big.rc"
  date +%s%N >"$tmp/big.end" ) &
rpid=$!
sleep 0.15
ts=$(date +%s%N); cs status --json >/dev/null; st=$?; t1=$(date +%s%N)
wait "$rpid"
t2=$(cat "$tmp/big.end")
rows=$(grep -c '^algorithm=\|^baseline' "$tmp/big.out")
[ $st = 0 ] && [ "$(cat "$tmp/big.rc")" = 0 ] && [ "$rows" = 401 ] && [ $(( (t1 - ts) * 2 )) -lt $(( t2 - ts )) ]
ok $? "STATUS is answered while RESULTS aggregates 400,001 jobs (STATUS in $(( (t1 - ts) / 1000000 )) ms, RESULTS done $(( (t2 - ts) / 1000000 )) ms after it was sent; $rows rows$(head -c 300 "$tmp/big.err"))"

echo "1..$n"
[ $fail = 0 ] || { sed 's/^/# /' "$tmp/daemon.log" | tail -10; sed 's/^/# /' "$tmp/worker.log" | tail -10; }
[ $fail = 0 ]
