#!/usr/bin/env bash
# The runner's progress on fd 3 (docs/architecture.md "The job runner contract"): every long
# stage reports as it goes, with totals. A GPTQ job calibrated by ACDM and one by COLA (the cells
# of sweeps/selectors-compare.json as `calsweep plan` resolves them, made small), run by
# calsweep-run with fd 3 captured: the stages come in order (load, quantize, calibrate: the
# selector's forward passes over the pool and ACDM's over its reference items, quantize: one line
# per layer, evaluate: perplexity per window, each task per item); within a stage and what it
# works on the counts only grow and never pass their total, and every counted step ends at its
# total. The perplexity counted window by window is the same number as before (to the bit).
n=0; fail=0
ok() { local m=${2//$'\n'/ | }; n=$((n+1)); if [ "$1" = 0 ]; then echo "ok $n - $m"; else echo "not ok $n - $m"; fail=1; fi; }
R=$CALSWEEP_RUN
S=$(cd "${CS_SOURCE_DIR:-.}" && pwd)
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
echo "1..18"

(cd "$S" && "$CALSWEEP" plan sweeps/selectors-compare.json --json --examples 100) >"$tmp/plan.json"
# cell SELECTOR: the GPTQ cell's job config, made small (8 of 32 candidates of 16 tokens, 3
# perplexity windows, 12 items of arith, 3 of the other tasks); with NONE, the baseline cell
# (algorithm none) with all 14 perplexity windows
cell() {
    jq -c --arg s "$1" '[.examples[] | select(.config.calibration.selector.name == $s and .config.algorithm.name == "gptq" and .config.seed == 1)][0].config | .n_samples = 8 | .seq_len = 16 | .eval.tasks |= with_entries(.value.limit = 3) | .eval.tasks.arith.limit = 12 | .eval.perplexity.general.max_windows = 3 | if $none != "" then .algorithm = {"name": "none"} | .eval.perplexity.general.max_windows = 0 else . end' --arg none "${2:-}" "$tmp/plan.json"
}
run() { # DIR SELECTOR [NONE]: the cell's job in DIR, progress to DIR/progress
    mkdir -p "$1" && cell "$2" "${3:-}" >"$1/job.json" &&
        (cd "$1" && env -u CALSWEEP_CACHE_DIR CALSWEEP_BASE_DIR="$S" CALSWEEP_THREADS=2 "$R" job.json 3>progress 2>stderr)
}
# The progress lines with what each works on: d = task, else step, else "layer", else "".
lines() { jq -c '{stage, d: (.task // .step // (if has("layer") then "layer" else "" end)), done, total}' "$1/progress"; }
# The stages in the order they come, each run of lines once.
stages() { lines "$1" | jq -r .stage | uniq | tr '\n' ' '; }
# Every line has 0 <= done <= total and total >= 1; consecutive lines of one (stage, d) keep
# their total and never go back.
sane() {
    lines "$1" | jq -s -e '(all(.[]; .total >= 1 and .done >= 0 and .done <= .total)) and
        ([range(1; length) as $i | .[$i - 1] as $a | .[$i] as $b
          | select($a.stage == $b.stage and $a.d == $b.d)
          | ($b.done >= $a.done and $b.total == $a.total)] | all)' >/dev/null
}
# last DIR STAGE D: "done/total" of the last line of (STAGE, D)
last() { lines "$1" | jq -r --arg s "$2" --arg d "$3" 'select(.stage == $s and .d == $d) | "\(.done)/\(.total)"' | tail -n 1; }
# dones DIR STAGE D: the done counts of (STAGE, D), space-separated
dones() { lines "$1" | jq -r --arg s "$2" --arg d "$3" 'select(.stage == $s and .d == $d) | .done' | tr '\n' ' '; }

for sel in acdm cola; do
    d=$tmp/$sel
    run "$d" "$sel"; ok $? "a GPTQ job calibrated by $sel exits 0"
    [ "$(stages "$d")" = "load quantize calibrate quantize evaluate " ]; ok $? "$sel: stages in order: $(stages "$d")"
    sane "$d"; ok $? "$sel: counts grow within a stage and its subject, never past their total"
    [ "$(last "$d" calibrate forward)" = 32/32 ]; ok $? "$sel: the pool's forward passes count to 32/32: $(last "$d" calibrate forward)"
    L=$(jq .num_hidden_layers "$S/sweeps/testbed/models/tb-llama/config.json")
    want=$(seq 0 "$L" | tr '\n' ' ')
    [ "$(dones "$d" quantize layer)" = "$want" ] && [ "$(last "$d" quantize layer)" = "$L/$L" ]
    ok $? "$sel: quantize reports every layer: $(dones "$d" quantize layer)(want $want)"
    [ "$(dones "$d" evaluate general)" = "0 3 " ] && [ "$(last "$d" evaluate general)" = 3/3 ]
    ok $? "$sel: perplexity counts its 3 windows: $(dones "$d" evaluate general)"
    [ "$(last "$d" evaluate arith)" = 12/12 ] && [ "$(dones "$d" evaluate arith)" = "0 10 12 " ]
    ok $? "$sel: a task counts its items: $(dones "$d" evaluate arith)"
done
last "$tmp/acdm" calibrate reference | awk -F/ '$1 == $2 && $2 > 0 { ok = 1 } END { exit !ok }'
ok $? "acdm: its reference items' forward passes count as step reference: $(last "$tmp/acdm" calibrate reference)"

# Perplexity counted window by window (4 per forward pass, as cs_model_ppl batches them): the
# same value as the whole text in one call (calsweep-run ppl prints it to 6 places).
d=$tmp/none
run "$d" cola none; ok $? "the baseline job exits 0"
[ "$(dones "$d" evaluate general)" = "0 4 8 12 14 " ]; ok $? "its 14 perplexity windows count 4 by 4: $(dones "$d" evaluate general)"
p=$(jq -r '.metrics["ppl:general"].ppl' "$d/result.json")
want=$("$R" ppl "$S/sweeps/testbed/models/tb-llama" --data "$S/sweeps/testbed/data/heldout.txt" --seq-len 256 --threads 2 --batch 4 2>/dev/null | sed -n 's/^ppl: //p')
[ "$(awk -v p="$p" 'BEGIN { printf "%.6f", p }')" = "$want" ]; ok $? "its perplexity $p is calsweep-run ppl's $want"
[ $fail = 0 ]
