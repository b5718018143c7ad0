#!/usr/bin/env bash
# The five-task evaluation of a testbed model by two calsweep-run binaries, side by side
# (BENCHMARKS.md "Evaluation"): `calsweep-run eval MODEL --task ... --limit 50 --threads 2 --json`
# on the five multiple-choice tasks, alternating the binaries ROUNDS times; prints each run's wall
# time, the best of each, their ratio, and whether the two printed the same metrics (every
# accuracy, to the digit).
#
#   tests/bench/eval_compare.sh AFTER_RUN BEFORE_RUN [MODEL] [ROUNDS] [LIMIT]
#   Run from the source root. Needs jq.
set -euo pipefail
S=$(cd "$(dirname "$0")/../.." && pwd)
after=$(realpath "$1"); before=$(realpath "$2"); model=${3:-tb-llama}; rounds=${4:-5}; limit=${5:-50}
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
args=()
for t in arith_mc code_mc facts_mc prose_cause prose_work; do
    args+=(--task "$S/sweeps/testbed/data/tasks/$t.eval.jsonl")
done
echo "# $(date -u +%FT%TZ) $(uname -n), $(nproc) cores, $(lscpu | sed -n 's/^Model name: *//p'), load $(cut -d' ' -f1-3 /proc/loadavg), OPENBLAS_CORETYPE=${OPENBLAS_CORETYPE:-unset}, $model, $limit items per task, 2 threads"
for r in $(seq "$rounds"); do
    line="round $r:"
    for which in before after; do
        bin=$after; [ $which = after ] || bin=$before
        t0=$(date +%s%N)
        "$bin" eval "$S/sweeps/testbed/models/$model" "${args[@]}" --limit "$limit" --threads 2 --json \
            >"$tmp/$which.json" 2>/dev/null
        ms=$(( ($(date +%s%N) - t0) / 1000000 ))
        echo "$ms" >>"$tmp/$which.ms"
        line+=" $which $ms ms"
    done
    echo "$line"
    jq -S .tasks "$tmp/before.json" >"$tmp/b.txt"; jq -S .tasks "$tmp/after.json" >"$tmp/a.txt"
    cmp -s "$tmp/a.txt" "$tmp/b.txt" || { echo "the two binaries print different metrics:"; diff "$tmp/b.txt" "$tmp/a.txt" | head; exit 1; }
done
b=$(sort -n "$tmp/before.ms" | head -1); a=$(sort -n "$tmp/after.ms" | head -1)
echo "best: before $b ms, after $a ms: $(awk -v b="$b" -v a="$a" 'BEGIN { printf "%.2f", b / a }')x faster; the same metrics in every round"
