#!/usr/bin/env bash
# calsweep-run quantize --algo imatrix (llama.cpp's importance-matrix Q4_0 / Q4_K, simulated): on
# both testbed models it runs end to end and stays close to the float model's held-out perplexity
# (4-bit blocks of 32 barely move the testbed models, so no ordering against RTN is asserted here:
# tests/unit/quant_imatrix_test.c checks the weighted errors); Q4_K falls back to Q5_0 on layers
# whose input width is not a multiple of 256 (on tb-qwen every linear but down_proj, 128 inputs) and
# says so;
# --type / --chunk equal the JSON object's keys; the chunk size reaches the engine; --save writes
# every parameter and the per-layer types to quantization_config.json and reloads with the same
# perplexity; bad parameters exit 2 naming the key, a calibration too short for one chunk exits 1.
n=0; fail=0
ok() { local m=${2//$'\n'/ | }; n=$((n+1)); if [ "$1" = 0 ]; then echo "ok $n - $m"; else echo "not ok $n - $m"; fail=1; fi; }
R=$CALSWEEP_RUN
S=$(cd "${CS_SOURCE_DIR:-.}" && pwd)
M=$S/sweeps/testbed/models; D=$S/sweeps/testbed/data
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
cat "$D"/corpus/*.jsonl >"$tmp/calib.jsonl"
num() { sed -n "s/^$1: \([0-9.]*\).*/\1/p"; }
quant() { # model out-dir [options]: quantizes with 32 windows of 128 tokens, saves, prints ppl
    local m=$1 o=$2; shift 2
    "$R" quantize "$M/$m" --calib "$tmp/calib.jsonl" --n-samples 32 --seq-len 128 --threads 2 \
        --ppl "$D/heldout.txt" --save "$o" "$@" 2>"$o.err" | num ppl
}
echo "1..15"
for model in tb-llama tb-qwen; do
    f=$("$R" ppl "$M/$model" --data "$D/heldout.txt" --seq-len 256 --threads 2 2>/dev/null | num ppl)
    for t in q4_0 q4_k; do
        p=$(quant $model "$tmp/$model-$t" --algo imatrix --type $t)
        awk -v p="$p" -v f="$f" 'BEGIN { exit !(p > 0 && f > 0 && p < 1.05 * f) }'
        ok $? "$model imatrix $t: ppl $p, float $f"
    done
done

c=$tmp/tb-qwen-q4_k/quantization_config.json
jq -e '.parameters | .name == "imatrix" and .type == "q4_k" and .chunk == 512 and .trajectory == "fp" and .super_block == 256' "$c" >/dev/null
ok $? "quantization_config.json: every parameter (type, chunk, trajectory, super-block)"
[ "$(jq -r '[.layers[] | select(.linear == "down_proj") | .type + (.fallback | tostring)] | unique | join(",")' "$c")" = "q4_kfalse" ] &&
    [ "$(jq -r '[.layers[] | select(.linear != "down_proj") | .type + (.fallback | tostring)] | unique | join(",")' "$c")" = "q5_0true" ]
ok $? "tb-qwen q4_k: down_proj (256 inputs) is q4_k, the other linears (128 inputs) fall back to q5_0"
grep -q "were quantized as q5_0" "$tmp/tb-qwen-q4_k.err"; ok $? "and the fallback is logged"
jq -e '(.timing.imatrix > 0) and (.timing.stats > 0) and (.timing.solve == 0) and (.layers | length == 21) and all(.layers[]; .tokens == 4096 and .loss >= 0)' "$c" >/dev/null
ok $? "timing.imatrix, and 21 layers with 4096 tokens counted each"
p2=$("$R" ppl "$tmp/tb-qwen-q4_k" --data "$D/heldout.txt" --seq-len 256 --threads 2 2>/dev/null | num ppl)
p1=$(quant tb-qwen "$tmp/json" --algo '{"name":"imatrix","type":"q4_k","chunk":512}')
[ -n "$p2" ] && [ "$p1" = "$p2" ]; ok $? "the saved folder reloads with the same ppl ($p2)"
cmp -s "$tmp/json/model.safetensors" "$tmp/tb-qwen-q4_k/model.safetensors"
ok $? "the JSON object gives the same weights as --type q4_k"
quant tb-qwen "$tmp/c32" --algo imatrix --type q4_k --chunk 32 >/dev/null
! cmp -s "$tmp/c32/model.safetensors" "$tmp/tb-qwen-q4_k/model.safetensors" &&
    jq -e '.parameters.chunk == 32' "$tmp/c32/quantization_config.json" >/dev/null
ok $? "--chunk 32 reaches the engine (other statistics, other weights)"

bad() { # expected-rc pattern args...: exit code and message
    local want=$1 pat=$2; shift 2
    "$R" quantize "$M/tb-qwen" --calib "$tmp/calib.jsonl" --n-samples 4 --seq-len 64 "$@" >/dev/null 2>"$tmp/err"
    local rc=$?
    [ $rc = "$want" ] && grep -q -- "$pat" "$tmp/err"
}
bad 2 "algorithm.bits: unknown key" --algo imatrix --bits 4; ok $? "--bits with imatrix: exit 2, algorithm.bits named"
bad 2 "algorithm.type: unknown value \"q8_0\"" --algo imatrix --type q8_0; ok $? "--type q8_0: exit 2, algorithm.type named"
bad 2 "algorithm.chunk" --algo '{"name":"imatrix","chunk":8}'; ok $? "chunk 8: exit 2, algorithm.chunk named"
bad 1 "no chunk of at least 16 tokens" --algo imatrix --seq-len 12; ok $? "12-token windows: exit 1, no chunk of 16 tokens"
exit $fail
