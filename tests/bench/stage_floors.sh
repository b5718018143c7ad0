#!/usr/bin/env bash
# Each stage of a testbed job against its arithmetic floor, before and after (BENCHMARKS.md
# "Stages against their floors"): the demo's job (32 x 128 calibration tokens of the prose corpus,
# the five multiple-choice tasks at 50 items each, held-out perplexity of heldout_long.txt in
# windows of 256, 2 threads) with each algorithm, run by two calsweep-run binaries alternately,
# ROUNDS times each; each cell is the best (smallest) time. The floors come from the AFTER
# binary's result.json (extra.profile, worker/pipeline/cs_floor.h); the BEFORE binary may predate
# the profile: its stage times are read from extra.quant_timing and timings.evaluate.
#
#   tests/bench/stage_floors.sh AFTER_RUN [BEFORE_RUN] [MODEL] [ROUNDS] [ALGOS...]
#     AFTER_RUN, BEFORE_RUN   calsweep-run binaries (BEFORE_RUN "" or absent: after only)
#     MODEL                   tb-llama (default) or tb-qwen
#     ALGOS                   JSON algorithm objects (default: GPTQ 4-bit per row, AWQ 4-bit g64)
#   Run from the source root. Needs jq.
set -euo pipefail
S=$(cd "$(dirname "$0")/../.." && pwd)
after=$(realpath "$1"); before=${2:-}; model=${3:-tb-llama}; rounds=${4:-3}
shift $(( $# < 4 ? $# : 4 ))
[ -z "$before" ] || before=$(realpath "$before")
algos=("$@")
[ ${#algos[@]} -gt 0 ] || algos=('{"name":"gptq","bits":4,"group_size":-1,"sym":false}'
                                 '{"name":"awq","bits":4,"group_size":64}')
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
tasks='{'
for t in prose_cause prose_work arith_mc code_mc facts_mc; do
    tasks+="\"$t\":{\"path\":\"sweeps/testbed/data/tasks/$t.eval.jsonl\",\"limit\":50},"
done
tasks="${tasks%,}}"
cal='{"selector":{"name":"random","stratified":false},"source":{"kind":"jsonl","path":"sweeps/testbed/data/corpus/prose.jsonl","text_field":"text"}}'
# stage times of a result.json as "stage seconds" lines (quant_timing's keys renamed as `time:`)
stages() {
    jq -r '(.extra.quant_timing // {} | to_entries[] | select(.value > 0)
            | "\(.key | sub("^stats$"; "statistics") | sub("^smooth$"; "smoothing")) \(.value)"),
           "evaluate \(.timings.evaluate)", "total \(.timings.total)"' "$1"
}
echo "# $(date -u +%FT%TZ) $(uname -n), $(nproc) cores, $(lscpu | sed -n 's/^Model name: *//p'), load $(cut -d' ' -f1-3 /proc/loadavg), OPENBLAS_CORETYPE=${OPENBLAS_CORETYPE:-unset}, $model, best of $rounds"
for algo in "${algos[@]}"; do
    d=$tmp/job; mkdir -p "$d"
    printf '{"algorithm":%s,"calibration":%s,"n_samples":32,"seq_len":128,"seed":0,"eval":{"perplexity":{"heldout":{"max_windows":0,"path":"sweeps/testbed/data/heldout_long.txt","seq_len":256}},"tasks":%s},"extra":{},"model":{"arch":"%s","backend":"native","folder":"sweeps/testbed/models/%s"}}\n' \
        "$algo" "$cal" "$tasks" "$(case $model in tb-qwen) echo qwen2;; *) echo llama;; esac)" "$model" >"$d/job.json"
    : >"$tmp/b.txt"; : >"$tmp/a.txt"
    for _ in $(seq "$rounds"); do
        for which in before after; do
            bin=$after; [ $which = after ] || bin=$before
            [ -n "$bin" ] || continue
            (cd "$d" && rm -f result.json && CALSWEEP_BASE_DIR=$S CALSWEEP_THREADS=2 "$bin" job.json 3>/dev/null 2>/dev/null) ||
                { echo "stage_floors: $which failed on $algo" >&2; exit 1; }
            stages "$d/result.json" >>"$tmp/${which:0:1}.txt"
            [ $which = before ] || cp "$d/result.json" "$tmp/after.json"
        done
    done
    echo
    echo "$algo: $(jq -r '.extra.profile.peak | "sgemm \(.sgemm_gflops * 10 | round / 10) GFLOP/s, dgemm \(.dgemm_gflops * 10 | round / 10) GFLOP/s, copy \(.copy_gbps * 10 | round / 10) GB/s"' "$tmp/after.json")"
    echo "| stage | work (GFLOP f32 / f64, GB) | floor s | before s | ratio | after s | ratio |"
    echo "|---|---|---|---|---|---|---|"
    jq -r '.extra.profile.stages[] | "\(.stage) \(.gflop_f32) \(.gflop_f64) \(.gbytes) \(.floor_s)"' "$tmp/after.json" >"$tmp/f.txt"
    awk -v B="$tmp/b.txt" -v A="$tmp/a.txt" '
        function best(file, st,   line, f, v) { v = -1
            while ((getline line < file) > 0) { split(line, f, " "); if (f[1] == st && (v < 0 || f[2] < v)) v = f[2] }
            close(file); return v }
        function cell(v) { return v < 0 ? "-" : sprintf("%.3f", v) }
        function ratio(v, fl) { return v < 0 || fl <= 0 ? "-" : sprintf("%.1fx", v / fl) }
        { b = best(B, $1); a = best(A, $1)
          printf "| %s | %.2f / %.2f, %.3f | %.4f | %s | %s | %s | %s |\n", $1, $2, $3, $4, $5, cell(b), ratio(b, $5), cell(a), ratio(a, $5) }
        END { b = best(B, "total"); a = best(A, "total"); printf "| whole job | | | %s | | %s | |\n", cell(b), cell(a) }' "$tmp/f.txt"
done
