#!/usr/bin/env bash
# suite_measure.sh - runs the jobs behind the suite's tables in sweeps/testbed/README.md: each
# testbed model unquantized, RTN at 3 bits and GPTQ at 3 bits calibrated on each corpus, every job
# scoring the five suite tasks in full, one result.json per job.
#
#   suite_measure.sh RUNNER OUT [MODEL-CONFIG ...]
#
# RUNNER is calsweep-run; OUT/<model>-<config>/ gets job.json, result.json and stderr (a job whose
# result.json exists is not run again). MODEL is tb-llama or tb-qwen, CONFIG one of none, rtn3,
# gptq3-prose, gptq3-arith, gptq3-code, gptq3-facts (calibration seed 0), or gptq3-DOMAIN-sN for
# calibration seed N; default: every pair but the -sN ones. The algorithms are the 3-bit rows of
# sweeps/demo.json (one group per row, asymmetric, GPTQ's grid for RTN); GPTQ calibrates on 32
# random windows of 128 tokens of sweeps/testbed/data/corpus/DOMAIN.jsonl. Compare two results
# with suite_stats.sh.
set -euo pipefail
if [ $# -lt 2 ]; then
    sed -n '6,14p' "$0" | sed 's/^# \{0,1\}//' >&2
    exit 2
fi
runner=$(cd "$(dirname "$1")" && pwd)/$(basename "$1")
root=$(cd "$(dirname "$0")/../.." && pwd)
mkdir -p "$2"
out=$(cd "$2" && pwd)
shift 2
pairs=("$@")
if [ ${#pairs[@]} = 0 ]; then
    for m in tb-llama tb-qwen; do
        for c in none rtn3 gptq3-prose gptq3-arith gptq3-code gptq3-facts; do pairs+=("$m-$c"); done
    done
fi

tasks=""
for t in prose_state prose_role arith_chain code_output facts_recall; do
    tasks="$tasks${tasks:+,}\"$t\":{\"fewshot\":0,\"fewshot_path\":null,\"limit\":0,\"path\":\"sweeps/testbed/data/suite/$t.eval.jsonl\"}"
done
for pair in "${pairs[@]}"; do
    model=${pair%%-none} model=${model%%-rtn3} model=${model%%-gptq3-*}
    config=${pair#"$model"-}
    case $model in
    tb-llama) arch=llama ;;
    tb-qwen) arch=qwen2 ;;
    *) echo "suite_measure.sh: unknown model in $pair" >&2; exit 2 ;;
    esac
    cal=null n=null len=null seed=null
    case $config in
    none) algo='{"name":"none"}' ;;
    rtn3) algo='{"bits":3,"grid":"gptq","group_size":-1,"name":"rtn","sym":false}' ;;
    gptq3-prose | gptq3-arith | gptq3-code | gptq3-facts | gptq3-*-s[0-9]*)
        domain=${config#gptq3-} seed=0
        case $domain in *-s[0-9]*) seed=${domain##*-s} domain=${domain%-s*} ;; esac
        algo='{"act_order":true,"bits":3,"block_size":128,"damp":0.01,"group_size":-1,"name":"gptq","static_groups":false,"sym":false,"true_sequential":true}'
        cal="{\"selector\":{\"name\":\"random\",\"stratified\":false},\"source\":{\"kind\":\"jsonl\",\"path\":\"sweeps/testbed/data/corpus/$domain.jsonl\",\"text_field\":\"text\"}}"
        n=32 len=128 ;;
    *) echo "suite_measure.sh: unknown config in $pair" >&2; exit 2 ;;
    esac
    dir=$out/$pair
    [ -f "$dir/result.json" ] && continue
    mkdir -p "$dir"
    printf '{"algorithm":%s,"calibration":%s,"eval":{"perplexity":{},"tasks":{%s}},"extra":{},"model":{"arch":"%s","backend":"native","folder":"sweeps/testbed/models/%s"},"n_samples":%s,"seed":%s,"seq_len":%s}\n' \
        "$algo" "$cal" "$tasks" "$arch" "$model" "$n" "$seed" "$len" >"$dir/job.json"
    start=$(date +%s)
    (cd "$dir" && CALSWEEP_BASE_DIR=$root CALSWEEP_THREADS=${CALSWEEP_THREADS:-2} "$runner" job.json 3>/dev/null 2>stderr) ||
        { echo "suite_measure.sh: $pair failed: $(cat "$dir/error.json" 2>/dev/null)" >&2; exit 1; }
    echo "$pair: $(($(date +%s) - start)) s (evaluate $(jq '.timings.evaluate' "$dir/result.json") s)"
done
