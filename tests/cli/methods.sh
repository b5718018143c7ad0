#!/usr/bin/env bash
# `calsweep methods`: the table of algorithms and selectors (common/cs_methods.c), readable and as
# JSON. schemas/methods.json must be exactly `calsweep methods --json` (schemas/gen_schemas.py
# builds the JSON Schemas from it), so the table, the committed JSON and the schemas cannot
# drift; calsweep-run quantize's flags come from the same table.
cd "$CS_SOURCE_DIR" || exit 1
n=0; fail=0
ok() { local m=${2//$'\n'/ | }; n=$((n+1)); if [ "$1" = 0 ]; then echo "ok $n - $m"; else echo "not ok $n - $m"; fail=1; fi; }
echo "1..7"
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT

"$CALSWEEP" methods --json >"$tmp/methods.json"; ok $? "methods --json exits 0"
cmp -s "$tmp/methods.json" schemas/methods.json
ok $? "schemas/methods.json is calsweep methods --json (regenerate: calsweep methods --json > schemas/methods.json; cd schemas && python3 gen_schemas.py)"
out=$("$CALSWEEP" methods gptq); rc=$?
[ $rc = 0 ] && case "$out" in *"algorithm gptq"*"bits"*"integer in 2..8 (default 4)"*"damp"*"(0, 1]"*) true;; *) false;; esac
ok $? "methods gptq: one line per parameter with bounds and default"
out=$("$CALSWEEP" methods smoothquant)
case "$out" in *"act_bits"*"integer in 2..8"*"weights"*"(default gptq)"*"smooth "*"[calsweep-run only]"*) true;; *) false;; esac
ok $? "methods smoothquant: act_bits 2..8, weights gptq by default, engine-only parameters marked"
"$CALSWEEP" methods kmeans >/dev/null 2>"$tmp/err"; rc=$?
[ $rc = 2 ] && grep -q "no algorithm or selector is called 'kmeans'" "$tmp/err"; ok $? "an unknown name: exit 2"
"$CALSWEEP" methods | grep -q "^selector zipcal" ; ok $? "methods without a name lists every algorithm and selector"
help=$("$CALSWEEP_RUN" quantize --help)
miss=$(jq -r '.algorithms[].params[] | select(.type != "task_sources") | .key | gsub("_"; "-")' schemas/methods.json |
    sort -u | while read -r k; do case "$help" in *"--$k "*) ;; *) echo "$k";; esac; done)
[ -z "$miss" ]; ok $? "calsweep-run quantize --help lists a flag for every algorithm parameter of the table${miss:+ (missing: $miss)}"
exit $fail
