#!/usr/bin/env bash
# The committed testbed data (sweeps/testbed/data) is exactly what testbed-gen writes from its
# default seed: regenerate it into the build folder and compare every file byte for byte, the
# default eval suite (data/suite, drawn last from a stream of its own) included.
set -u
src="$CS_SOURCE_DIR/sweeps/testbed/data"
out="$CS_BUILD_DIR/testbed-data.$$"
n=0; fail=0
ok() { local m=${2//$'\n'/ | }; n=$((n+1)); if [ "$1" = 0 ]; then echo "ok $n - $m"; else echo "not ok $n - $m"; fail=1; fi; }
rm -rf "$out"
files=$(cd "$src" && find . -type f | LC_ALL=C sort)
count=$(printf '%s\n' "$files" | grep -c .)
echo "1..$((count + 7))"
"$TESTBED_GEN" --out "$out" >/dev/null 2>"$out.err"; ok $? "testbed-gen exits 0"
grep -q "disjoint" "$out/SUMMARY.txt" 2>/dev/null; ok $? "the summary states the splits are disjoint"
grep -q "no item repeats another; no arithmetic question or program of the suite occurs in the corpora" \
    "$out/suite/SUMMARY.txt" 2>/dev/null
ok $? "the suite's summary states its items distinct and out of the corpora"
[ "$(printf '%s\n' "$files" | grep -c '^\./suite/.*\.eval\.jsonl$')" = 5 ]; ok $? "the committed suite has its 5 task files"
gen=$(cd "$out" 2>/dev/null && find . -type f | LC_ALL=C sort)
[ "$gen" = "$files" ]; ok $? "the same $count files are written"
for f in $files; do
    cmp -s "$src/$f" "$out/$f"; ok $? "$f is identical"
done
# a different seed gives different data (the seed is really used), the suite included
"$TESTBED_GEN" --out "$out.s2" --seed 7 >/dev/null 2>&1 && ! cmp -s "$out.s2/heldout.txt" "$src/heldout.txt"
ok $? "another seed gives another held-out text"
[ -f "$out.s2/suite/arith_chain.eval.jsonl" ] && ! cmp -s "$out.s2/suite/arith_chain.eval.jsonl" "$src/suite/arith_chain.eval.jsonl"
ok $? "and another suite"
rm -rf "$out" "$out.s2" "$out.err"
exit $fail
