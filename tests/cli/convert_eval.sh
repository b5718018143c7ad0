#!/usr/bin/env bash
# The task files calsweep-run convert-task writes, scored by calsweep-run eval on tb-llama: every
# format as its rules say (the item count, and the metric keys of its kind: multiple choice for
# ARC, HellaSwag, PIQA, BoolQ and MMLU, multiple input for WinoGrande, generation with exact match
# for GSM8K, whose worked answers give their "#### N" as the gold number), and a --split-train's
# files taken by select's acdm as reference items disjoint from the evaluation file. That the
# log-likelihood a WinoGrande item compares is its continuation's after each context:
# test_converted_winogrande in tests/unit/eval_test.c.
n=0; fail=0
ok() { n=$((n+1)); local m; m=$(printf "%s" "$2" | tr "\n" " "); if [ "$1" = 0 ]; then echo "ok $n - $m"; else echo "not ok $n - $m"; fail=1; fi; }
R=$CALSWEEP_RUN
S=${CS_SOURCE_DIR:-.}
M=$S/sweeps/testbed/models/tb-llama
D=$S/tests/data/convert
TMP=$(mktemp -d); trap 'rm -rf "$TMP"' EXIT
echo "1..13"

tasks=()
for f in arc hellaswag piqa winogrande boolq mmlu gsm8k; do
    "$R" convert-task "$f" "$D/$f.rows.jsonl" "$TMP/$f.jsonl" >/dev/null || echo "# convert-task $f failed"
    tasks+=(--task "$TMP/$f.jsonl")
done
j=$("$R" eval "$M" "${tasks[@]}" --max-new 48 --threads 2 --json 2>"$TMP/err"); ok $? "eval of the seven converted files exits 0 $(tail -n 3 "$TMP/err")"

mc='["acc","acc_bytes","acc_norm","acc_norm_stderr","acc_stderr","n"]'
for t in arc:3 hellaswag:4 piqa:2 boolq:3 mmlu:2; do
    got=$(jq -c --arg t "${t%:*}" '.tasks[$t] | [.n, (keys | sort)]' <<<"$j")
    [ "$got" = "[${t#*:},$mc]" ]; ok $? "${t%:*}: multiple choice, ${t#*:} items: $got"
done
got=$(jq -c '.tasks.winogrande | [.n, (keys | sort)]' <<<"$j")
[ "$got" = '[4,["acc","acc_stderr","n"]]' ]; ok $? "winogrande: multiple input (acc only), 4 items: $got"
got=$(jq -c '.tasks.gsm8k | [.n, (keys | sort)]' <<<"$j")
[ "$got" = '[4,["exact_match","exact_match_flex","exact_match_stderr","n"]]' ]; ok $? "gsm8k: generation, exact match, 4 items: $got"
em=$(jq '.tasks.gsm8k.exact_match' <<<"$j")
awk -v e="$em" 'BEGIN { exit !(e >= 0.5) }'; ok $? "gsm8k: the two testbed-style sums are right against their worked answers' #### N (exact_match $em >= 0.5)"

# every WinoGrande item is one decision between its two contexts: the flipped gold scores 1 - acc
jq -c '.gold = 1 - .gold' "$TMP/winogrande.jsonl" >"$TMP/flip.jsonl"
a=$(jq '.tasks.winogrande.acc' <<<"$j")
b=$("$R" eval "$M" --task "$TMP/flip.jsonl" --json 2>/dev/null | jq '.tasks.winogrande.acc')
awk -v a="$a" -v b="$b" 'BEGIN { d = a + b - 1; exit !(d < 1e-12 && d > -1e-12) }'; ok $? "winogrande: flipped gold gives 1 - acc ($a, $b)"

# --split-train: the reference side feeds acdm and does not overlap the evaluation file
"$R" convert-task arc "$D/arc.rows.jsonl" "$TMP/arc.eval.jsonl" --split-train 1 >/dev/null
sel() { "$R" select "$M" --source "prose=$S/sweeps/testbed/data/corpus/prose.jsonl" --pool 40 --seq-len 32 --n 4 --selector acdm --json "$@" 2>"$TMP/err"; }
got=$(sel --reference "arc=$TMP/arc.ref.jsonl" --eval "$TMP/arc.eval.jsonl" | jq -c '[(.ids | length), .diag.tasks]')
[ "$got" = '[4,["arc"]]' ]; ok $? "acdm takes arc.ref.jsonl as arc's reference, disjoint from arc.eval.jsonl: $got $(tail -n 1 "$TMP/err")"
got=$(sel --reference "arc=$TMP/arc.train.jsonl" --eval "$TMP/arc.eval.jsonl" | jq -c '[(.ids | length), .diag.tasks]')
[ "$got" = '[4,["arc"]]' ]; ok $? "and arc.train.jsonl: $got"
sel --reference "arc=$TMP/arc.jsonl" --eval "$TMP/arc.eval.jsonl" >/dev/null; [ $? = 1 ] && grep -q "ACDM reference overlaps evaluation" "$TMP/err"
ok $? "while the whole conversion overlaps it: $(cat "$TMP/err")"
exit $fail
