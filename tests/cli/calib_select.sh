#!/usr/bin/env bash
# calsweep-run select on the testbed: ids printed one a line, the same for a seed and different for
# another, --json with the pool record and diagnostics, self-calibration sequences of exactly
# --seq-len tokens, the overlap refusal naming both files, and clear errors (missing source file,
# bad JSON line, unknown selector key, no source); COLA, ACDM (with --reference, refused without
# it or when it overlaps --eval) and CoverCal, and --cache-dir: a second selection among 1,000
# candidates on the same model and pool forwards none of them.
n=0; fail=0
ok() { n=$((n+1)); local m; m=$(printf "%s" "$2" | tr "\n" " "); if [ "$1" = 0 ]; then echo "ok $n - $m"; else echo "not ok $n - $m"; fail=1; fi; }
R=$CALSWEEP_RUN
S=${CS_SOURCE_DIR:-.}
M=$S/sweeps/testbed/models/tb-llama
D=$S/sweeps/testbed/data
TMP=$(mktemp -d); trap 'rm -rf "$TMP"' EXIT
echo "1..28"
"$R" select --help | grep -q "usage: calsweep-run select"; ok $? "select --help"
sel() { "$R" select "$M" --source "prose=$D/corpus/prose.jsonl" --source "code=$D/corpus/code.jsonl:text" --pool 40 --seq-len 32 --n 5 "$@" 2>"$TMP/err"; }
a=$(sel --selector zipcal --seed 1); ok $? "zipcal exits 0"
[ "$(printf '%s\n' "$a" | wc -l)" = 5 ] && printf '%s\n' "$a" | grep -Eq '^(prose|code):w[0-9]+$'; ok $? "five ids NAME:wOFFSET: $a"
b=$(sel --selector zipcal --seed 1); [ "$a" = "$b" ]; ok $? "same seed, same ids"
c=$(sel --selector '{"name":"random","stratified":true}' --seed 1); d=$(sel --selector '{"name":"random","stratified":true}' --seed 2)
[ -n "$c" ] && [ "$c" != "$d" ]; ok $? "another seed, other ids"
[ "$(printf '%s\n' "$c" | grep -c '^prose:')" = 3 ]; ok $? "stratified: 3 of 5 from the first source"
grep -q "select: building a pool of 40 x 32 tokens (random_windows)" "$TMP/err"; ok $? "progress on stderr"
j=$(sel --selector '{"name":"ppl_rank","mode":"mid"}' --compose concat --json)
case "$j" in *'"composition":"concat"'*'"ids":['*'"selector":"ppl_rank"'*'"forward_s"'*) ok 0 "--json: pool record, ids, diagnostics";; *) ok 1 "--json: $j";; esac
g=$("$R" select "$M" --selector '{"name":"self_calibration","t_init":1.5,"t_final":0.5}' --n 2 --seq-len 24 2>/dev/null)
[ "$(printf '%s\n' "$g" | awk '{print NF-1}' | sort -u)" = 24 ] && printf '%s\n' "$g" | grep -q '^gen:1 1534 '; ok $? "self_calibration: 2 sequences of exactly 24 tokens starting with BOS"
T=$D/tasks
out=$("$R" select "$M" --source "t=$T/arith_mc.train.jsonl" --eval "$T/arith_mc.eval.jsonl" --eval "$T/facts_mc.eval.jsonl" --pool 8 --seq-len 16 --n 2 2>&1); ok $? "train split vs eval splits: no overlap"
{ head -n 2 "$T/arith_mc.train.jsonl"; sed -n 5p "$T/arith_mc.eval.jsonl" | sed 's/"id":"[^"]*"/"id":"copied"/'; } > "$TMP/leak.jsonl"
out=$("$R" select "$M" --source "t=$TMP/leak.jsonl" --eval "$T/arith_mc.eval.jsonl" --pool 2 --seq-len 8 --n 1 2>&1)
[ $? = 1 ] && case "$out" in *"overlaps evaluation (same text)"*"leak.jsonl:3 = "*"arith_mc.eval.jsonl:5"*) true;; *) false;; esac; ok $? "overlap refused naming both files: $out"
out=$("$R" select "$M" --source "x=$TMP/missing.jsonl" --n 1 2>&1); [ $? = 1 ] && case "$out" in *"missing.jsonl"*) true;; *) false;; esac; ok $? "missing source file: $out"
printf '{"text":"fine"}\n{"text": nope}\n' > "$TMP/bad.jsonl"
out=$("$R" select "$M" --source "x=$TMP/bad.jsonl" --n 1 2>&1); [ $? = 1 ] && case "$out" in *"bad.jsonl:2"*) true;; *) false;; esac; ok $? "bad JSON line names file:line: $out"
out=$(sel --selector '{"name":"zipcal","kap":3}' 2>&1; cat "$TMP/err"); case "$out" in *"selector.kap: unknown key"*) ok 0 "unknown selector key names the path";; *) ok 1 "unknown key: $out";; esac
a=$(sel --selector zipcal --search-limit 3 --seed 1); b=$(sel --selector '{"name":"zipcal","search_limit":3}' --seed 1)
[ -n "$a" ] && [ "$a" = "$b" ]; ok $? "a selector parameter as a flag (--search-limit, from the table) equals it in --selector's JSON"
sel --selector ppl_rank --mode median >/dev/null; rc=$?
[ $rc = 2 ] && grep -q 'selector.mode: unknown value "median" (known: low, high, mid)' "$TMP/err"; ok $? "a bad flag value: exit 2 with the sweep validator's message"
j=$(sel --selector '{"name":"cola","proj_dim":8}' --json)
[ "$(jq -c '[(.ids | length), .diag.selector, (.diag.cluster_sizes | add), .diag.stats.items_forwarded]' <<<"$j")" = '[5,"cola",40,40]' ]; ok $? "cola: 5 ids, cluster sizes over the 40 candidates, 40 items forwarded"
sel --selector acdm >/dev/null; rc=$?; out=$(cat "$TMP/err"); [ $rc = 2 ] && case "$out" in *"acdm needs --reference"*) true;; *) false;; esac; ok $? "acdm without --reference: usage error: $out"
a=$(sel --selector acdm --reference "arith=$T/arith_mc.train.jsonl" --reference "facts=$T/facts_mc.ref.jsonl" --json)
[ "$(jq -c '[(.ids | length), .diag.tasks, .diag.per_task]' <<<"$a")" = '[5,["arith","facts"],[3,2]]' ]; ok $? "acdm with a .train.jsonl and a .ref.jsonl reference: quotas 3 + 2"
sel --selector acdm --reference "arith=$T/arith_mc.eval.jsonl" --eval "$T/arith_mc.eval.jsonl" >/dev/null; rc=$?; out=$(cat "$TMP/err"); [ $rc = 1 ] && case "$out" in *"ACDM reference overlaps evaluation"*) true;; *) false;; esac
ok $? "a reference that is an --eval file is refused: $(printf '%s' "$out" | cut -c1-90)"
sel --selector covercal --reference "arith=$T/arith_mc.train.jsonl" >/dev/null; [ $? = 2 ] && grep -q "for acdm only" "$TMP/err"; ok $? "--reference with another selector: usage error"
C=$TMP/cache
big() { "$R" select "$M" --source "prose=$D/corpus/prose.jsonl" --source "code=$D/corpus/code.jsonl" --pool 1000 --seq-len 8 --n 16 --selector covercal --cache-dir "$C" --json 2>"$TMP/err"; }
x=$(big); y=$(big)
[ "$(jq -c '[.diag.stats.items_forwarded, .diag.stats.cache_writes]' <<<"$x")" = '[1000,4]' ] && [ "$(jq -c '[.diag.stats.items_forwarded, .diag.stats.forward_passes, .diag.stats.cache_hits]' <<<"$y")" = '[0,0,1]' ]
ok $? "--cache-dir: 1,000 candidates forwarded once, the second selection reads the cache"
[ "$(jq -c .ids <<<"$x")" = "$(jq -c .ids <<<"$y")" ] && [ "$(jq '.ids | length' <<<"$y")" = 16 ]; ok $? "and picks the same 16"
# a gzipped source (C4 and pile-val are published so) reads as the file it decompresses to
gzip -c "$D/corpus/prose.jsonl" >"$TMP/prose.jsonl.gz"
a=$("$R" select "$M" --source "prose=$D/corpus/prose.jsonl" --pool 40 --seq-len 32 --n 5 2>/dev/null)
b=$("$R" select "$M" --source "prose=$TMP/prose.jsonl.gz" --pool 40 --seq-len 32 --n 5 2>/dev/null)
[ -n "$a" ] && [ "$a" = "$b" ]; ok $? "a .gz source gives the same pool and picks as the plain file"
printf 'not gzip\n' >"$TMP/bad.jsonl.gz"
out=$("$R" select "$M" --source "x=$TMP/bad.jsonl.gz" --pool 4 --seq-len 8 --n 2 2>&1); rc=$?
[ $rc != 0 ] && case "$out" in *"bad.jsonl.gz: not a valid gzip file"*) true;; *) false;; esac
ok $? "a .gz file that is not gzip is refused naming it ($rc)"
out=$("$R" select "$M" --source "x=$TMP/none.jsonl.gz" --pool 4 --seq-len 8 --n 2 2>&1); rc=$?
[ $rc != 0 ] && case "$out" in *"none.jsonl.gz"*"No such file"*) true;; *) false;; esac
ok $? "a missing .gz file is named"
# the reference scripts' recipes: GPTQ's windows inside one random document, AWQ's short documents
# joined and cut
j=$("$R" select "$M" --source "prose=$D/corpus/prose.jsonl" --compose doc_windows --pool 12 --seq-len 48 --n 4 --json 2>/dev/null)
[ "$(jq '[.pool.items // .pool.n, (.ids | length), ([.ids[] | select(test("^prose:prose-[0-9]+@[0-9]+$"))] | length)]' -c <<<"$j")" = "[12,4,4]" ] && [ "$(jq -r .pool.composition <<<"$j")" = doc_windows ]
ok $? "--compose doc_windows: 12 windows named document@offset, 4 chosen"
j=$("$R" select "$M" --source "prose=$D/corpus/prose.jsonl" --compose awq_concat --pool 12 --seq-len 48 --n 4 --json 2>/dev/null)
[ "$(jq -c '[.pool.n, ([.ids[] | select(test("^prose:a[0-9]+$"))] | length)]' <<<"$j")" = "[12,4]" ] && [ "$(jq -r .pool.composition <<<"$j")" = awq_concat ]
ok $? "--compose awq_concat: 12 blocks of joined short documents, 4 chosen"
exit $fail
