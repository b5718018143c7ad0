#!/usr/bin/env bash
# The testbed's default eval suite (sweeps/testbed/data/suite, README "The default eval suite"):
# every task file holds the default limit of items; the README's task table has a row for every
# task and model, and every unquantized accuracy in it lies between 35 % and 90 %; and the
# committed models still reach the table: `calsweep-run eval --first K` on both models, unquantized
# and after RTN at 3 bits, gives on the first K items of every task an accuracy within 4 standard
# errors of the table's (full-suite) figure, where the standard error is that of the difference
# between a K-item subset's mean and the mean of all N items: sqrt(p(1 - p) (1/K - 1/N)) (about
# 1 point at K = 1500, N = 6000: a tolerance near 4 points, far below the 10-50 points that a broken
# model, tokenizer, scorer or quantizer costs), and every measured accuracy lies between 35 % and
# 90 % too. K is 1500 unquantized and 500 after RTN (300 and 150 under sanitizers).
set -u
n=0; fail=0
ok() { local m=${2//$'\n'/ | }; n=$((n+1)); if [ "$1" = 0 ]; then echo "ok $n - $m"; else echo "not ok $n - $m"; fail=1; fi; }
R=$CALSWEEP_RUN
S=$(cd "${CS_SOURCE_DIR:-.}" && pwd)
D=$S/sweeps/testbed/data/suite
README=$S/sweeps/testbed/README.md
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
tasks=(prose_state prose_role arith_chain code_output facts_recall)
models=(tb-llama tb-qwen)
K0=1500 K1=500
[ "${CS_SANITIZED:-0}" = 1 ] && K0=300 K1=150
LIMIT=6000
echo "1..$((${#tasks[@]} + 2 + 2 * 2 * ${#tasks[@]}))"

for t in "${tasks[@]}"; do
    [ "$(wc -l <"$D/$t.eval.jsonl")" = "$LIMIT" ]; ok $? "suite/$t.eval.jsonl holds the default limit of $LIMIT items"
done

# the table: rows "| task | model | unquantized | RTN 3-bit | GPTQ 3-bit |", each cell "acc ± se",
# after the line "<!-- suite-table -->" up to the next blank line
awk '/^<!-- suite-table -->$/ { on = 1; next } on && /^$/ { exit } on && /^\| [a-z_]+ \| tb-/ {
        gsub(/ /, ""); split($0, c, "|"); split(c[4], u, "±"); split(c[5], q, "±"); print c[2], c[3], u[1], q[1] }' \
    "$README" >"$tmp/table"
[ "$(wc -l <"$tmp/table")" = $((${#tasks[@]} * ${#models[@]})) ]
ok $? "the README's suite table has a row for each of the ${#tasks[@]} tasks and ${#models[@]} models"
awk '$3 < 35 || $3 > 90 { bad = bad " " $1 "/" $2 "=" $3 } END { if (bad != "") { print "out of range:" bad; exit 1 } }' "$tmp/table" >"$tmp/range"
ok $? "no unquantized accuracy of the table is below 35 % or above 90 % $(cat "$tmp/range")"

# check MODEL_DIR MODEL COLUMN K LABEL: the first K items of every task against column 3 or 4
check() {
    local args=() t
    for t in "${tasks[@]}"; do args+=(--task "$D/$t.eval.jsonl"); done
    "$R" eval "$1" "${args[@]}" --first "$4" --threads 2 --json >"$tmp/out.json" 2>"$tmp/err"
    local rc=$?
    for t in "${tasks[@]}"; do
        local want got
        want=$(awk -v t="$t" -v m="$2" -v c="$3" '$1 == t && $2 == m { print $c }' "$tmp/table")
        got=$(jq -r ".tasks[\"$t\"].acc // empty" "$tmp/out.json" 2>/dev/null)
        [ $rc = 0 ] && [ -n "$want" ] && [ -n "$got" ] && awk -v w="$want" -v g="$got" -v k="$4" -v N="$LIMIT" '
            BEGIN { p = w / 100; g *= 100; tol = 400 * sqrt(p * (1 - p) * (1 / k - 1 / N))
                    d = g - w; if (d < 0) d = -d
                    printf "%.2f vs %.2f, tolerance %.2f", g, w, tol > "/dev/stderr"
                    exit !(d <= tol && g >= 35 && g <= 90) }' 2>"$tmp/msg"
        ok $? "$2 $5, $t, first $4 items: $(cat "$tmp/msg" 2>/dev/null) points"
    done
}
for m in "${models[@]}"; do
    check "$S/sweeps/testbed/models/$m" "$m" 3 "$K0" unquantized
    "$R" quantize "$S/sweeps/testbed/models/$m" --algo rtn --bits 3 --group-size -1 --no-sym \
        --grid gptq --threads 2 --save "$tmp/$m-rtn3" >/dev/null 2>&1
    check "$tmp/$m-rtn3" "$m" 4 "$K1" "RTN 3-bit"
done
exit $fail
