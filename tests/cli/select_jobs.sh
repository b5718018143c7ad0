#!/usr/bin/env bash
# The COLA and ACDM jobs of sweeps/selectors-compare.json, as `calsweep plan` resolves them (made
# small: n_samples 4 of 16 candidates, 16 tokens, 3 items per task), run by calsweep-run with a
# shared cache folder (CALSWEEP_CACHE_DIR, what calsweep-worker --cache-dir passes): they exit 0,
# their result.json validates and records ids and diagnostics, and forward passes are counted:
# the second job on the same model and pool forwards nothing, ACDM after COLA forwards only its
# reference items, and a COLA selection among 1,000 candidates runs once for two jobs. A corrupt
# cache entry is ignored with a warning and recomputed; without a cache nothing is cached; an
# ACDM reference that overlaps the evaluation split or the calibration source is refused.
n=0; fail=0
ok() { n=$((n+1)); local m; m=$(printf "%s" "$2" | tr "\n" " "); if [ "$1" = 0 ]; then echo "ok $n - $m"; else echo "not ok $n - $m"; fail=1; fi; }
R=$CALSWEEP_RUN
S=$(cd "${CS_SOURCE_DIR:-.}" && pwd)
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
validate() { node "$S/tests/node/validate-file.js" "$S/schemas/result.schema.json" "$1"; }
echo "1..22"

(cd "$S" && "$CALSWEEP" plan sweeps/selectors-compare.json --json --examples 100) >"$tmp/plan.json"
[ "$(jq '[.examples[] | select(.config.calibration.selector.name == "cola" or .config.calibration.selector.name == "acdm")] | length' "$tmp/plan.json")" = 12 ]
ok $? "calsweep plan resolves the 12 COLA and ACDM cells of selectors-compare.json"
# cell SELECTOR ALGORITHM [jq filter]: the cell's job config, made small
cell() {
    jq -c --arg s "$1" --arg a "$2" "[.examples[] | select(.config.calibration.selector.name == \$s and .config.algorithm.name == \$a and .config.seed == 1)][0].config | .n_samples = 4 | .seq_len = 16 | .eval.tasks |= with_entries(.value.limit = 3) | .eval.perplexity.general.max_windows = 1 | ${3:-.}" "$tmp/plan.json"
}
# run DIR [no-cache]: the job of DIR/job.json in DIR
run() {
    if [ "$2" = no-cache ]; then
        (cd "$1" && rm -f result.json error.json && env -u CALSWEEP_CACHE_DIR CALSWEEP_BASE_DIR="$S" CALSWEEP_THREADS=2 "$R" job.json 2>stderr)
    else
        (cd "$1" && rm -f result.json error.json && CALSWEEP_BASE_DIR="$S" CALSWEEP_CACHE_DIR="$tmp/cache" CALSWEEP_THREADS=2 "$R" job.json 2>stderr)
    fi
}
job() { mkdir -p "$tmp/$1"; cell "$2" "$3" "$4" >"$tmp/$1/job.json"; run "$tmp/$1" "$5"; }
st() { jq -r ".calibration.details.stats.$2" "$tmp/$1/result.json"; }
ids() { jq -c '.calibration.sample_ids' "$tmp/$1/result.json"; }

job cola-gptq cola gptq; ok $? "the COLA x GPTQ cell exits 0"
validate "$tmp/cola-gptq/result.json"; ok $? "its result.json validates"
[ "$(jq -c '[.calibration.selector, (.calibration.sample_ids | length), .calibration.details.pool, .calibration.details.params.proj_dim, (.calibration.details.cluster_sizes | add), (.calibration.details.distances | length)]' "$tmp/cola-gptq/result.json")" = '["cola",4,16,32,16,4]' ]
ok $? "it records 4 ids among 16 candidates, proj_dim 32 from the sweep, cluster sizes and distances"
[ "$(st cola-gptq items_forwarded) $(st cola-gptq cache_writes)" = "16 4" ]
ok $? "it forwarded the 16 candidates once and cached 4 statistics: $(st cola-gptq items_forwarded) $(st cola-gptq cache_writes)"
job cola-awq cola awq; ok $? "the COLA x AWQ cell exits 0"
[ "$(st cola-awq items_forwarded) $(st cola-awq forward_passes) $(st cola-awq cache_hits)" = "0 0 1" ]
ok $? "same model and pool: no forward pass, one cache hit: $(st cola-awq items_forwarded) $(st cola-awq forward_passes) $(st cola-awq cache_hits)"
[ "$(ids cola-awq)" = "$(ids cola-gptq)" ]; ok $? "and the same calibration set: $(ids cola-awq)"

n_ref=$(cat "$S/sweeps/testbed/data/tasks/arith_mc.train.jsonl" "$S/sweeps/testbed/data/tasks/facts_mc.train.jsonl" | grep -c .)
job acdm-gptq acdm gptq; ok $? "the ACDM x GPTQ cell exits 0"
validate "$tmp/acdm-gptq/result.json"; ok $? "its result.json validates"
[ "$(jq -c '[.calibration.details.per_task, .calibration.details.tasks, [.calibration.details.reference_sources[].path], [.calibration.details.reference[].used | length], (.calibration.details.d | length)]' "$tmp/acdm-gptq/result.json")" = '[[2,2],["arith_mc.train","facts_mc.train"],["sweeps/testbed/data/tasks/arith_mc.train.jsonl","sweeps/testbed/data/tasks/facts_mc.train.jsonl"],[64,64],4]' ]
ok $? "it records the quotas 2 + 2, the reference files, the 64 reference ids used per task, d_t of each pick"
[ "$(st acdm-gptq items_forwarded) $(st acdm-gptq cache_hits)" = "$n_ref 1" ]
ok $? "after COLA, ACDM forwards only its $n_ref reference items (the pool's statistics are cached): $(st acdm-gptq items_forwarded) $(st acdm-gptq cache_hits)"
job acdm-awq acdm awq; ok $? "the ACDM x AWQ cell exits 0"
[ "$(st acdm-awq items_forwarded) $(st acdm-awq cache_hits)" = "0 2" ] && [ "$(ids acdm-awq)" = "$(ids acdm-gptq)" ]
ok $? "and forwards nothing: pool and reference statistics come from the cache"

# 1,000 candidates (n_samples 250, 8 tokens each), a cheap algorithm; a second job on the same pool
W='.algorithm = {"name": "wanda", "sparsity": 0.5, "pattern": "unstructured"} | .n_samples = 250 | .seq_len = 8'
job big1 cola gptq "$W"; ok $? "a COLA job choosing 250 of 1,000 candidates exits 0"
[ "$(jq '.calibration.details.pool' "$tmp/big1/result.json") $(st big1 items_forwarded)" = "1000 1000" ]
ok $? "it forwards the 1,000 candidates once: $(st big1 items_forwarded)"
job big2 cola gptq "$W | .algorithm.sparsity = 0.4" &&
    [ "$(st big2 items_forwarded) $(st big2 forward_passes)" = "0 0" ] && [ "$(ids big2)" = "$(ids big1)" ]
ok $? "a second job with the same model and pool forwards none of them: $(st big2 items_forwarded)"

# a corrupt cache is never trusted; without a cache nothing is cached
for f in "$tmp"/cache/*.bin; do printf 'X' | dd of="$f" bs=1 seek=150 conv=notrunc 2>/dev/null; done
run "$tmp/cola-awq"; rc=$?
[ $rc = 0 ] && grep -q "cache: ignoring .*checksum mismatch" "$tmp/cola-awq/stderr" && [ "$(st cola-awq items_forwarded)" = 16 ] && [ "$(ids cola-awq)" = "$(ids cola-gptq)" ]
ok $? "corrupt cache entries are ignored with a warning and recomputed, with the same result"
job nocache cola gptq "" no-cache &&
    [ "$(st nocache cache)" = null ] && [ "$(st nocache items_forwarded)" = 16 ]
ok $? "without CALSWEEP_CACHE_DIR: no cache, the candidates are forwarded"

# ACDM's reference must be disjoint from the evaluation split and from the calibration source
job leak acdm gptq '.calibration.selector.reference[0].path = "sweeps/testbed/data/tasks/arith_mc.eval.jsonl"'
[ $? = 1 ] && [ "$(jq -r .kind "$tmp/leak/error.json")" = bad_input ] && jq -r .message "$tmp/leak/error.json" | grep -q "ACDM reference overlaps evaluation"
ok $? "a reference from the evaluation split is refused: $(jq -r .message "$tmp/leak/error.json" 2>/dev/null | cut -c1-110)"
job self acdm gptq '.calibration.source = {"kind": "task", "path": "sweeps/testbed/data/tasks/facts_mc.train.jsonl"}'
[ $? = 1 ] && jq -r .message "$tmp/self/error.json" | grep -q "calibration overlaps ACDM reference"
ok $? "a reference that is the calibration source is refused: $(jq -r .message "$tmp/self/error.json" 2>/dev/null | cut -c1-110)"
job noref acdm gptq 'del(.calibration.selector.reference)'
[ $? = 1 ] && jq -r .message "$tmp/noref/error.json" | grep -q "calibration.selector.reference"
ok $? "ACDM without reference sources is refused naming the field"
exit $fail
