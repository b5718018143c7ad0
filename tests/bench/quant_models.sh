#!/usr/bin/env bash
# Time and peak RSS of `calsweep-run quantize` on each testbed model with each algorithm
# (BENCHMARKS.md "Model quantization"). Usage: tests/bench/quant_models.sh [BUILD] [N_SAMPLES] [SEQ_LEN]
# (defaults build 128 256). Calibration: the four testbed corpora concatenated; 4 bits, groups of
# 64 (smoothquant: W8 per row + A8; sparsegpt / wanda: 50% unstructured); 2 threads.
B=${1:-build}; NS=${2:-128}; SL=${3:-256}
S=$(cd "$(dirname "$0")/../.." && pwd)
R=$B/worker/calsweep-run
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
cat "$S"/sweeps/testbed/data/corpus/*.jsonl >"$tmp/calib.jsonl"
echo "| model | algorithm | wall s | peak RSS MB | held-out ppl |"
echo "|---|---|---|---|---|"
for m in tb-llama tb-qwen; do
    for a in rtn gptq awq smoothquant sparsegpt wanda; do
        case $a in smoothquant) o=(--bits 8 --group-size -1);; sparsegpt|wanda) o=();;
                   *) o=(--bits 4 --group-size 64);; esac
        # fd 3 to /dev/null first, so that time -o does not get fd 3 (calsweep-run writes progress there)
        /usr/bin/time -f "%e %M" -o "$tmp/t" "$R" quantize "$S/sweeps/testbed/models/$m" --algo "$a" "${o[@]}" \
            --calib "$tmp/calib.jsonl" --n-samples "$NS" --seq-len "$SL" --threads 2 \
            --ppl "$S/sweeps/testbed/data/heldout.txt" >"$tmp/out" 2>/dev/null 3>/dev/null
        read -r wall rss <"$tmp/t"
        p=$(sed -n 's/^ppl: \([0-9.]*\).*/\1/p' "$tmp/out")
        echo "| $m | $a | $wall | $((rss / 1024)) | $p |"
    done
done
