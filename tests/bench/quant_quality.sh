#!/usr/bin/env bash
# Held-out perplexity of RTN, GPTQ and AWQ with the same bits and groups on both testbed models
# (BENCHMARKS.md "Model quantization"). Usage: tests/bench/quant_quality.sh [BUILD] [HELDOUT]
# (defaults: build, sweeps/testbed/data/heldout_long.txt). Calibration: 32 windows of 128 tokens
# of the four testbed corpora, seed 0, 2 threads. RTN is on GPTQ's grid (asymmetric, min/max
# including 0); GPTQ is asymmetric with act_order; AWQ is the reference default (duo scaling,
# clip search). Prints a Markdown table; a bold figure is below RTN's.
B=${1:-build}
S=$(cd "$(dirname "$0")/../.." && pwd)
H=${2:-$S/sweeps/testbed/data/heldout_long.txt}
R=$B/worker/calsweep-run
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
cat "$S"/sweeps/testbed/data/corpus/*.jsonl >"$tmp/calib.jsonl"
ppl() { # model-dir algo bits group
    if [ "$2" = none ]; then
        "$R" ppl "$1" --data "$H" --seq-len 256 --threads 2 2>/dev/null
    else
        "$R" quantize "$1" --algo "$2" --bits "$3" --group-size "$4" --calib "$tmp/calib.jsonl" \
            --n-samples 32 --seq-len 128 --threads 2 --ppl "$H" 2>/dev/null 3>/dev/null
    fi | sed -n 's/^ppl: \([0-9.]*\).*/\1/p'
}
bold() { awk -v x="$1" -v r="$2" 'BEGIN { if (x < r) printf "**%s**", x; else printf "%s", x }'; }
echo "| model | float | bits | group | RTN | GPTQ | AWQ |"
echo "|---|---|---|---|---|---|---|"
for m in tb-llama tb-qwen; do
    d=$S/sweeps/testbed/models/$m
    f=$(ppl "$d" none)
    for cfg in "4 128" "3 128" "4 64" "3 64" "4 -1" "3 -1"; do
        # shellcheck disable=SC2086 # split "BITS GROUP" into $1 $2 on purpose
        set -- $cfg
        r=$(ppl "$d" '{"name":"rtn","grid":"gptq"}' "$1" "$2")
        g=$(ppl "$d" '{"name":"gptq","sym":false}' "$1" "$2")
        a=$(ppl "$d" awq "$1" "$2")
        grp=$2; [ "$grp" = -1 ] && grp="per row"
        echo "| $m | $f | $1 | $grp | $r | $(bold "$g" "$r") | $(bold "$a" "$r") |"
    done
done
