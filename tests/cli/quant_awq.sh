#!/usr/bin/env bash
# calsweep-run quantize, the output side (AWQ against RTN is in quant_model.sh): SmoothQuant+GPTQ
# (W8A8) runs end to end; --save writes a folder that loads back with the same perplexity, with
# quantization_config.json (parameters, the calibration file's SHA-256, RTN fallbacks); fd 3
# receives one JSON line per block; bad options exit 2 with the option named.
n=0; fail=0
ok() { local m=${2//$'\n'/ | }; n=$((n+1)); if [ "$1" = 0 ]; then echo "ok $n - $m"; else echo "not ok $n - $m"; fail=1; fi; }
R=$CALSWEEP_RUN
S=$(cd "${CS_SOURCE_DIR:-.}" && pwd)
M=$S/sweeps/testbed/models; D=$S/sweeps/testbed/data
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
cat "$D"/corpus/*.jsonl >"$tmp/calib.jsonl"
ppl() { # model algo bits group [more options]
    local m=$1 a=$2 b=$3 g=$4; shift 4
    "$R" quantize "$M/$m" --algo "$a" --bits "$b" --group-size "$g" --calib "$tmp/calib.jsonl" \
        --n-samples 32 --seq-len 128 --threads 2 --ppl "$D/heldout.txt" "$@" 2>"$tmp/err" |
        sed -n 's/^ppl: \([0-9.]*\).*/\1/p'
}
echo "1..10"
s=$(ppl tb-qwen smoothquant 8 -1)
awk -v s="$s" 'BEGIN { exit !(s > 1 && s < 1.70) }'; ok $? "smoothquant W8A8 on tb-qwen: ppl $s"

q=$(ppl tb-qwen gptq 3 32 --save "$tmp/q" 3>"$tmp/fd3")
p2=$("$R" ppl "$tmp/q" --data "$D/heldout.txt" --seq-len 256 --threads 2 2>/dev/null |
    sed -n 's/^ppl: \([0-9.]*\).*/\1/p')
[ -n "$q" ] && [ "$q" = "$p2" ]; ok $? "saved GPTQ folder reloads with the same ppl ($q, $p2)"
sha=$(sha256sum "$tmp/calib.jsonl" | cut -d' ' -f1)
grep -q "\"sha256\":[[:space:]]*\"$sha\"" "$tmp/q/quantization_config.json"
ok $? "quantization_config.json records the calibration SHA-256"
grep -q '"rtn_fallback_layers"' "$tmp/q/quantization_config.json" &&
    grep -q '"damp":[[:space:]]*0.01' "$tmp/q/quantization_config.json"
ok $? "quantization_config.json records the parameters and the RTN fallbacks"
[ -f "$tmp/q/tokenizer.json" ] && [ -f "$tmp/q/config.json" ] && [ -f "$tmp/q/model.safetensors" ]
ok $? "the saved folder has config, tokenizer and weights"
[ "$(wc -l <"$tmp/fd3")" = 3 ] && grep -q '{"stage":"quantize","layer":2,"done":3,"total":3}' "$tmp/fd3"
ok $? "fd 3: one JSON line per block"
"$R" quantize "$M/tb-qwen" --algo awq --trajectory sideways --calib "$tmp/calib.jsonl" \
    >/dev/null 2>"$tmp/err"; rc=$?
[ $rc = 2 ] && grep -q "algorithm.trajectory" "$tmp/err"; ok $? "--trajectory sideways: exit 2, named"
"$R" quantize "$M/tb-qwen" --algo wanda --pattern 4:2 --calib "$tmp/calib.jsonl" >/dev/null 2>"$tmp/err"
rc=$?
[ $rc = 2 ] && grep -q "algorithm.pattern: unknown value \"4:2\"" "$tmp/err"; ok $? "--pattern 4:2: exit 2, named"
"$R" quantize "$M/tb-qwen" --algo rtn --alpha 0.5 >/dev/null 2>"$tmp/err"; rc=$?
[ $rc = 2 ] && grep -q "alpha" "$tmp/err"; ok $? "--alpha with rtn: exit 2, named"
"$R" quantize "$M/tb-qwen" --algo rtn --act-order >/dev/null 2>"$tmp/err"; rc=$?
[ $rc = 2 ] && grep -q "act_order" "$tmp/err"; ok $? "--act-order with rtn: exit 2, named"
exit $fail
