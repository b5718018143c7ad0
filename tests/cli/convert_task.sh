#!/usr/bin/env bash
# calsweep-run convert-task: the rows of each format under tests/data/convert/ (*.rows.jsonl, in
# the datasets' published layout, with the awkward cases) become byte for byte the task files
# written by hand from lm-evaluation-harness's templates (*.want.jsonl); --task; --split-train
# (disjoint, seeded, the reference texts); and every bad input refused with exit 1 naming
# file:line and the field, with nothing written (usage errors exit 2). Scoring the converted
# files: tests/cli/convert_eval.sh.
n=0; fail=0
ok() { n=$((n+1)); local m; m=$(printf "%s" "$2" | tr "\n" " "); if [ "$1" = 0 ]; then echo "ok $n - $m"; else echo "not ok $n - $m"; fail=1; fi; }
R=$CALSWEEP_RUN
S=${CS_SOURCE_DIR:-.}
D=$S/tests/data/convert
TMP=$(mktemp -d); trap 'rm -rf "$TMP"' EXIT
formats="arc hellaswag piqa winogrande boolq mmlu gsm8k"
echo "1..52"

help=$("$R" convert-task --help); ok $? "convert-task --help exits 0"
missing=""; for f in $formats; do grep -q "^  $f " <<<"$help" || missing="$missing $f"; done
grep -q "usage: calsweep-run convert-task FORMAT IN OUT" <<<"$help" && [ -z "$missing" ]; ok $? "--help: usage and every format${missing:+, lacks$missing}"
"$R" --help | grep -q "calsweep-run convert-task FORMAT IN OUT"; ok $? "calsweep-run --help names convert-task"

# 1. each format, byte for byte
for f in $formats; do
    out=$("$R" convert-task "$f" "$D/$f.rows.jsonl" "$TMP/$f.jsonl" 2>&1) && cmp "$D/$f.want.jsonl" "$TMP/$f.jsonl" >&2
    ok $? "$f: the hand-written items, byte for byte: $out"
done
"$R" convert-task arc "$D/arc.rows.jsonl" "$TMP/arcc.jsonl" --task arc_challenge >/dev/null &&
    sed -e 's/"id":"arc-/"id":"arc_challenge-/' -e 's/"task":"arc"/"task":"arc_challenge"/' "$D/arc.want.jsonl" | cmp - "$TMP/arcc.jsonl" >&2
ok $? "--task arc_challenge: the items' task and id prefix"

# --split-train: N drawn rows go to STEM.train.jsonl and STEM.ref.jsonl, the rest to OUT
mkdir -p "$TMP/s"
"$R" convert-task hellaswag "$D/hellaswag.rows.jsonl" "$TMP/s/hs.eval.jsonl" --split-train 2 --seed 7 >"$TMP/s.out"; ok $? "--split-train 2 exits 0"
[ -f "$TMP/s/hs.train.jsonl" ] && [ -f "$TMP/s/hs.ref.jsonl" ] && [ "$(wc -l <"$TMP/s/hs.eval.jsonl") $(wc -l <"$TMP/s/hs.train.jsonl") $(wc -l <"$TMP/s/hs.ref.jsonl")" = "2 2 2" ]
ok $? "hs.eval.jsonl 2 items, hs.train.jsonl 2, hs.ref.jsonl 2 (STEM drops .eval): $(cd "$TMP/s" && echo *)"
cat "$TMP/s/hs.eval.jsonl" "$TMP/s/hs.train.jsonl" | sort | cmp - <(sort "$D/hellaswag.want.jsonl") >&2
ok $? "eval and train items are the whole conversion, each row once"
[ "$(jq -r .id "$TMP/s/hs.train.jsonl")" = "$(jq -r .id "$TMP/s/hs.ref.jsonl")" ] &&
    [ "$(jq -r '.context + " " + .choices[.gold]' "$TMP/s/hs.train.jsonl")" = "$(jq -r .text "$TMP/s/hs.ref.jsonl")" ] &&
    [ "$(jq -c 'keys_unsorted' "$TMP/s/hs.ref.jsonl" | sort -u)" = '["id","task","text"]' ]
ok $? "reference items: the train ids, text = context + \" \" + gold choice"
cp -r "$TMP/s" "$TMP/s1"
"$R" convert-task hellaswag "$D/hellaswag.rows.jsonl" "$TMP/s/hs.eval.jsonl" --split-train 2 --seed 7 >/dev/null && diff -r "$TMP/s" "$TMP/s1" >&2
ok $? "the same seed draws the same rows"
draws=""; for seed in 0 1 2 3 4 5; do
    "$R" convert-task hellaswag "$D/hellaswag.rows.jsonl" "$TMP/d.jsonl" --split-train 2 --seed $seed >/dev/null
    draws="$draws$(jq -r .id "$TMP/d.train.jsonl" | tr '\n' ,) "
done
[ "$(tr ' ' '\n' <<<"$draws" | sort -u | grep -c .)" -gt 1 ]; ok $? "other seeds draw other rows: $draws"
"$R" convert-task gsm8k "$D/gsm8k.rows.jsonl" "$TMP/g.jsonl" --split-train 1 >/dev/null &&
    [ "$(jq -r '.prompt + " " + .answer' "$TMP/g.train.jsonl")" = "$(jq -r .text "$TMP/g.ref.jsonl")" ]
ok $? "generation: reference text = prompt + \" \" + answer"
"$R" convert-task winogrande "$D/winogrande.rows.jsonl" "$TMP/w.jsonl" --split-train 1 >/dev/null &&
    [ "$(jq -r '.contexts[.gold] + " " + .continuation' "$TMP/w.train.jsonl")" = "$(jq -r .text "$TMP/w.ref.jsonl")" ]
ok $? "multiple input: reference text = the gold context + \" \" + continuation"

# 2. bad input: exit 1, file:line and the field, nothing written
bad() { # FORMAT CONTENT WANT... : refused naming rows.jsonl:LINE and each WANT, OUT not created
    local f=$1 content=$2 w out rc good=0
    shift 2
    printf '%s' "$content" >"$TMP/rows.jsonl"
    rm -f "$TMP/out.jsonl"
    out=$("$R" convert-task "$f" "$TMP/rows.jsonl" "$TMP/out.jsonl" 2>&1); rc=$?
    for w in "$@"; do case "$out" in *"$w"*) ;; *) good=1;; esac; done
    [ $rc = 1 ] && [ $good = 0 ] && [ ! -e "$TMP/out.jsonl" ] && ! compgen -G "$TMP/.out.jsonl.*" >/dev/null
    ok $? "$f, exit $rc: $out"
}
arc1='{"question": "q", "choices": {"text": ["a", "b"], "label": ["A", "B"]}, "answerKey": "B"}'
bad arc "$arc1"$'\n''{"question": "q", "choices": {"text": ["a", "b"], "label": ["A", "B"]}}'$'\n' "rows.jsonl:2: missing field \"answerKey\" (arc rows have question, choices, answerKey)"
bad arc "$arc1"$'\n\n''{"question": 42, "choices": {"text": ["a", "b"], "label": ["A", "B"]}, "answerKey": "A"}' "rows.jsonl:3: question: expected a string, got 42"
bad arc '{"question": "q", "choices": {"text": ["a", "b"], "label": ["A", "B"]}, "answerKey": "E"}' "rows.jsonl:1: answerKey: not one of choices.label"
bad arc '{"question": "q", "choices": {"text": ["a", "b", "c"], "label": ["1", "2"]}, "answerKey": "1"}' "rows.jsonl:1: choices.label: has 2 labels for 3 texts"
bad arc '{"question": "q", "choices": {"text": ["a", 7], "label": ["A", "B"]}, "answerKey": "A"}' "rows.jsonl:1: choices.text[1]: expected a string, got 7"
bad arc '{"question": "q", "choices": ["a", "b"], "answerKey": "A"}' "rows.jsonl:1: choices: expected an object, got an array"
bad arc "$(head -n 1 "$D/hellaswag.rows.jsonl")" "rows.jsonl:1: missing fields \"question\", \"choices\", \"answerKey\"" "the row has the fields of hellaswag rows (try: calsweep-run convert-task hellaswag"
bad mmlu "$(head -n 1 "$D/arc.rows.jsonl")" "rows.jsonl:1: missing fields \"subject\", \"answer\"" "the row has the fields of arc rows"
bad hellaswag "$(sed 's/"label": "3"/"label": "7"/' <(head -n 1 "$D/hellaswag.rows.jsonl"))" 'rows.jsonl:1: label: expected a label "0".."3"'
bad hellaswag "$(sed 's/"label": "3"/"label": ""/' <(head -n 1 "$D/hellaswag.rows.jsonl"))" 'rows.jsonl:1: label: empty (the rows of a test split have no labels)'
bad hellaswag '{"activity_label": "a", "ctx_a": "b", "ctx_b": "c", "endings": "d", "label": "0"}' "rows.jsonl:1: endings: expected an array, got a string"
bad piqa '{"goal": "g", "sol1": "a", "sol2": "b", "label": -1}' "rows.jsonl:1: label: expected an integer in 0..1, got -1"
bad winogrande '{"sentence": "No blank here.", "option1": "a", "option2": "b", "answer": "1"}' 'rows.jsonl:1: sentence: has no blank "_"'
bad winogrande '{"sentence": "A _ b.", "option1": "a", "option2": "b", "answer": "3"}' 'rows.jsonl:1: answer: expected a label "1".."2"'
bad boolq '{"passage": "p", "question": "q", "label": "yes"}' "rows.jsonl:1: label: expected an integer in 0..1, got a string"
bad mmlu '{"question": "q", "subject": "s", "choices": ["a", "b", "c"], "answer": 0}' "rows.jsonl:1: choices: has 3 strings, expected 4"
bad mmlu '{"question": "q", "subject": "s", "choices": ["a", "b", "c", "d"], "answer": "SECRET-B"}' "rows.jsonl:1: answer: expected an integer in 0..3, got a string"
case "$("$R" convert-task mmlu "$TMP/rows.jsonl" "$TMP/out.jsonl" 2>&1)" in *SECRET*) ok 1 "a refused string value is not shown";; *) ok 0 "a refused string value is not shown";; esac
bad gsm8k '{"question": "q", "answer": "It is 12."}' 'rows.jsonl:1: answer: has no final "#### <number>"'
bad gsm8k '{"question": "q", "answer": "#### 1"}'$'\n''{"question": "q", "answer": nope}' "rows.jsonl:2:"
bad gsm8k '[1, 2]' "rows.jsonl:1: row: expected an object, got an array"
bad piqa $'\n\n' "rows.jsonl: no rows"
printf '%s\n' "$arc1" >"$TMP/rows.jsonl"; printf 'old\n' >"$TMP/keep.jsonl"
printf '%s\n%s\n' "$arc1" '{"question": 1}' >"$TMP/rows2.jsonl"
"$R" convert-task arc "$TMP/rows2.jsonl" "$TMP/keep.jsonl" 2>/dev/null; [ $? = 1 ] && [ "$(cat "$TMP/keep.jsonl")" = old ]
ok $? "a bad row leaves an existing OUT as it was"
out=$("$R" convert-task arc "$TMP/rows2.jsonl" "$TMP/k.eval.jsonl" --split-train 1 2>&1); [ $? = 1 ] && [ ! -e "$TMP/k.train.jsonl" ] && [ ! -e "$TMP/k.ref.jsonl" ] && [ ! -e "$TMP/k.eval.jsonl" ]
ok $? "with --split-train neither sibling is written either: $out"
out=$("$R" convert-task arc "$D/arc.rows.jsonl" "$TMP/x.jsonl" --split-train 3 2>&1); [ $? = 1 ] && case "$out" in *"has 3 rows: --split-train 3 leaves none to evaluate"*) true;; *) false;; esac && [ ! -e "$TMP/x.jsonl" ]
ok $? "--split-train of every row: $out"
out=$("$R" convert-task arc "$TMP/none.jsonl" "$TMP/x.jsonl" 2>&1); [ $? = 1 ] && case "$out" in *"none.jsonl: No such file"*) true;; *) false;; esac
ok $? "missing IN: $out"

# usage errors: exit 2
usage() { # WANT ARGS...
    local want=$1 out rc
    shift
    out=$("$R" convert-task "$@" 2>&1); rc=$?
    [ $rc = 2 ] && case "$out" in *"$want"*) true;; *) false;; esac; ok $? "usage, exit $rc: $out"
}
usage "unknown format 'arcx' (one of arc, hellaswag, piqa, winogrande, boolq, mmlu, gsm8k)" arcx "$D/arc.rows.jsonl" "$TMP/x.jsonl"
usage "expected FORMAT IN OUT" arc "$D/arc.rows.jsonl"
usage "unexpected argument 'extra'" arc "$D/arc.rows.jsonl" "$TMP/x.jsonl" extra
usage "--seed is for --split-train" arc "$D/arc.rows.jsonl" "$TMP/x.jsonl" --seed 3
usage "--task 'a b'" arc "$D/arc.rows.jsonl" "$TMP/x.jsonl" --task 'a b'
cp "$D/arc.rows.jsonl" "$TMP/same.jsonl"
usage "is the input file" arc "$TMP/same.jsonl" "$TMP/same.jsonl"
[ ! -e "$TMP/x.jsonl" ] && cmp -s "$D/arc.rows.jsonl" "$TMP/same.jsonl"; ok $? "usage errors write nothing"
exit $fail
