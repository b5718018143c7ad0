#!/usr/bin/env bash
# `calsweep plan`: counts, example cells, --json, refusals with counts, usage errors (exit 2),
# validation errors (exit 1, every message on stderr), and that it writes nothing.
cd "$CS_SOURCE_DIR" || exit 1
n=0; fail=0
ok() { local m=${2//$'\n'/ | }; n=$((n+1)); if [ "$1" = 0 ]; then echo "ok $n - $m"; else echo "not ok $n - $m"; fail=1; fi; }
has() { case "$1" in *"$2"*) return 0;; *) return 1;; esac; }
echo "1..32"
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT

out=$("$CALSWEEP" plan tests/data/sweeps/exclude.json 2>"$tmp/err"); rc=$?
ok $rc "plan exits 0 on a valid sweep"
has "$out" "sweep exclude: 4 jobs (3 cells + 1 baselines)"; ok $? "plan prints the total"
has "$out" "grid: 6 cells, 3 excluded, 0 included, 0 duplicates removed"; ok $? "plan prints the grid counts"
printf '%s\n' "$out" | grep -Eq '^    awq +2$'; ok $? "plan counts jobs per axis value (awq 2)"
printf '%s\n' "$out" | grep -Eq '^    gptq +1$'; ok $? "plan counts jobs per axis value (gptq 1)"
has "$out" "cached: not checked (no --db)"; ok $? "plan says the cache was not checked"
[ "$(printf '%s\n' "$out" | grep -c '^  [0-9a-f]\{12\}')" = 4 ]; ok $? "plan shows example cells"
grep -q 'warning: data.sources.c4.path: file does not exist on this machine: c4.jsonl' "$tmp/err"
ok $? "plan warns about a data file missing here, naming its JSON path and the file"
grep -q 'warning: data.eval.default.tasks.arc.path: file does not exist on this machine: arc.jsonl' "$tmp/err"
ok $? "plan warns about an eval file missing here"
mkdir -p "$tmp/here/tests/data" && touch "$tmp/here/c4.jsonl" "$tmp/here/arc.jsonl"
(cd "$tmp/here" && "$CALSWEEP" plan "$CS_SOURCE_DIR/tests/data/sweeps/exclude.json" >/dev/null 2>"$tmp/err")
[ ! -s "$tmp/err" ]; ok $? "no warnings for a clean sweep whose files exist"

out=$("$CALSWEEP" plan --examples 1 --json tests/data/sweeps/seeds.json); rc=$?
ok $rc "plan --json exits 0"
has "$out" '"jobs":5,"baselines":1,"grid_cells":6,"excluded":0,"included":0,"duplicates":2,"cached":null'
ok $? "plan --json gives the counts"
[ "$(printf '%s' "$out" | grep -o '"key":"[0-9a-f]\{64\}"' | wc -l)" = 1 ]; ok $? "plan --json --examples 1 gives one example with a key"

"$CALSWEEP" plan --limit 8 tests/data/sweeps/product.json >/dev/null 2>"$tmp/err"; rc=$?
[ $rc = 1 ]; ok $? "plan refuses a sweep over --limit with exit 1"
grep -q "up to 9 jobs (8 grid cells - 0 excluded + 0 included + 1 baselines), more than the limit of 8" "$tmp/err"
ok $? "the refusal gives the counts"

"$CALSWEEP" plan tests/data/sweeps-bad/many-errors.json >/dev/null 2>"$tmp/err"; rc=$?
[ $rc = 1 ]; ok $? "plan exits 1 on an invalid sweep"
[ "$(grep -c ': error: ' "$tmp/err")" = 8 ]; ok $? "plan reports all 8 errors at once"
grep -q 'many-errors.json: error: gird: unknown key (did you mean "grid"?)' "$tmp/err"; ok $? "errors name the file and the JSON path"

"$CALSWEEP" plan >/dev/null 2>&1; [ $? = 2 ]; ok $? "plan without a file exits 2"
"$CALSWEEP" plan --bogus x.json >/dev/null 2>&1; [ $? = 2 ]; ok $? "plan with an unknown option exits 2"
"$CALSWEEP" plan --help | grep -q 'usage: calsweep plan'; ok $? "plan --help prints its usage"
"$CALSWEEP" help plan | grep -q 'usage: calsweep plan'; ok $? "calsweep help plan prints the same"
"$CALSWEEP" frobnicate >/dev/null 2>&1; [ $? = 2 ]; ok $? "an unknown command exits 2"

"$CALSWEEP" plan --db "$tmp/none.db" tests/data/sweeps/zip.json >/dev/null 2>&1
[ $? = 1 ] && [ ! -e "$tmp/none.db" ]; ok $? "plan --db never creates a database"
# One size limit for plan, submit and the protocol (common/cs_limits.h): a file over 4 MiB, and a
# smaller one whose canonical JSON (1e15 written out in full) is over it, are refused by both,
# before any daemon is asked (submit used to read up to 16 MiB).
python3 - "$tmp" <<'PY'
import json, sys
d = json.load(open("tests/data/sweeps/product.json"))
d["description"] = "x" * (5 << 20)
json.dump(d, open(sys.argv[1] + "/big.json", "w"))
d["description"] = "x"
d["grid"]["x"] = [[10 ** 15] * 300000]
open(sys.argv[1] + "/canon.json", "w").write(json.dumps(d).replace("1000000000000000", "1e15"))
PY
export CALSWEEP_CONTROL="ipc://$tmp/nobody.sock"
for cmd in plan submit; do
    "$CALSWEEP" $cmd "$tmp/big.json" >/dev/null 2>"$tmp/err"; rc=$?
    [ $rc = 1 ] && grep -q "big.json: [0-9]* bytes is larger than the limit of 4194304" "$tmp/err"
    ok $? "$cmd refuses a sweep file over 4 MiB with exit 1"
    "$CALSWEEP" $cmd "$tmp/canon.json" >/dev/null 2>"$tmp/err"; rc=$?
    [ $rc = 1 ] && grep -q "canonical JSON is [0-9]* bytes, above the limit of 4194304" "$tmp/err"
    ok $? "$cmd refuses a sweep whose canonical JSON is over 4 MiB"
done

# a union of sub-grids (tests/data/sweeps/grids.json): per sub-grid counts, the shared cell once
out=$("$CALSWEEP" plan tests/data/sweeps/grids.json 2>/dev/null); rc=$?
ok $rc "plan exits 0 on a union of sub-grids"
has "$out" "grids.selectors: 3 jobs (2 more shared with an earlier sub-grid); 4 cells, 0 excluded"
ok $? "plan reports each sub-grid, with the jobs it shares with an earlier one"
printf '%s\n' "$out" | grep -Eq '^    selectors +3$'; ok $? "the sub-grid's name is an axis (grid: selectors 3)"
jq '.grids.sensitivity.exclude = [{"n_samples": [16, 32]}]' tests/data/sweeps/grids.json >"$tmp/empty-grid.json"
"$CALSWEEP" plan "$tmp/empty-grid.json" >/dev/null 2>"$tmp/err"; rc=$?
[ $rc = 1 ] && grep -q "grids.sensitivity: the sweep expands to 0 jobs" "$tmp/err"
ok $? "a sub-grid that expands to nothing is refused, naming it"

exit $fail
