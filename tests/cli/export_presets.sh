#!/usr/bin/env bash
# calsweep export --preset on the fixture database's sweep "grid" (tests/export_fixture.c: two
# models, gptq x n_samples x seq_len x selector x seed, rtn and the baselines): the presets match
# their golden files (one table per model; per algorithm and model), every number of their CSV
# equals `calsweep results --json` (both group by every axis but seed, so no row pools the grid's
# n_samples or seq_len), and a preset on a sweep without its axes
# exits 1 naming the axis. Regenerate the goldens with CS_EXPORT_REGEN=1 (and review them).
cd "$CS_SOURCE_DIR" || exit 1
n=0; fail=0
ok() { local m=${2//$'\n'/ | }; n=$((n+1)); if [ "$1" = 0 ]; then echo "ok $n - $m"; else echo "not ok $n - $m"; fail=1; fi; }
echo "1..9"
gold="$CS_SOURCE_DIR/tests/data/export"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
"$CS_BUILD_DIR/tests/export_fixture" "$tmp/fx.db"; ok $? "the fixture database is written"
cd "$tmp" || exit 1

golden() {
    local name=$1; shift
    timeout 60 "$CALSWEEP" export --db fx.db grid "$@" >"$name" 2>"$name.err"; local rc=$?
    if [ "${CS_EXPORT_REGEN:-0}" = 1 ]; then cp "$name" "$gold/$name"; fi
    [ $rc = 0 ] && cmp -s "$name" "$gold/$name"
    ok $? "export grid $* matches $name"
    [ $rc = 0 ] || cat "$name.err" >&2
}
golden selectors.md --preset selectors --percent
golden sensitivity-preset.md --preset sensitivity --percent --digits 2
golden sensitivity-preset.tex --preset sensitivity --format latex --standalone --percent

# The presets group by every axis but seed, as `calsweep results` does by default; their CSV is
# read by its header's names (col NAME...: those columns of every data line, "|"-joined).
col() {
    awk -F, -v want="$*" 'BEGIN { n = split(want, w, " ") } /^#/ { next }
        !h { for (i = 1; i <= NF; i++) at[$i] = i; h = 1; next }
        { line = ""; for (k = 1; k <= n; k++) line = line (k > 1 ? "|" : "") (w[k] in at ? $(at[w[k]]) : "?"); print line }'
}
jq_rows='.rows[] | [(.values.algorithm | if type == "object" then "\(.name)(bits=\(.bits))" else . end),
         (.values.selector // ""), (.values.model // ""), (.values.n_samples // "" | tostring),
         (.values.seq_len // "" | tostring), .tasks.arc_e.value, .tasks.hella_swag.value,
         .average.value] | join("|")'
# numbers compared to 1e-9: the CSV prints ten significant digits
same() { join -t ' ' "$1" "$2" | awk -v want="$3" '{ n = split($2, a, "|"); split($3, b, "|")
    for (i = 1; i <= n; i++) if ((a[i] - b[i])^2 > 1e-18) bad = 1 } END { exit bad || NR != want }'; }

# selectors: a row per algorithm x selector x n_samples x seq_len (the grid varies both) per model
timeout 60 "$CALSWEEP" export --db fx.db grid --preset selectors --format csv >sel.csv &&
timeout 60 "$CALSWEEP" results --db fx.db grid --json | jq -r "$jq_rows" >sel.txt
ok $? "the selectors preset and results --json run"
col algorithm selector model n_samples seq_len arc_e.acc hella_swag.acc average <sel.csv |
    awk -F'|' '{ print $1 "|" $2 "|" $3 "|" $4 "|" $5 " " $6 "|" $7 "|" $8 }' | sed 's/^none(bits=null)/none/' |
    sort >sel.export
awk -F'|' '{ sub(/\(bits=null\)/, "", $1); print $1 "|" $2 "|" $3 "|" $4 "|" $5 " " $6 "|" $7 "|" $8 }' sel.txt |
    sort >sel.results
[ "$(wc -l <sel.export)" = 20 ] && same sel.export sel.results 20
ok $? "its 20 rows x (arc_e, hella_swag, average) equal results --json, none pooled"

# sensitivity: cells seq_len=64 and seq_len=128 of rows n_samples x selector, per algorithm, model
timeout 60 "$CALSWEEP" export --db fx.db grid --preset sensitivity --format csv >sens.csv
ok $? "the sensitivity preset runs"
for q in 64 128; do
    col algorithm model selector n_samples "seq_len=$q" <sens.csv |
        awk -F'|' -v q=$q '{ print $1 "|" $3 "|" $2 "|" $4 "|" q " " $5 }'
done | sort >sens.export
awk -F'|' '$5 != "" { print $1 "|" $2 "|" $3 "|" $4 "|" $5 " " $8 }' sel.txt | sort >sens.results
[ "$(wc -l <sens.export)" = 16 ] && same sens.export sens.results 16
ok $? "its 16 cells (2 models x 2 n_samples x 2 selectors x 2 seq_len) equal the averages of results --json"

out=$(timeout 60 "$CALSWEEP" export --db fx.db fixture --preset sensitivity -o s.md 2>&1); rc=$?
[ $rc = 1 ] && [ ! -e s.md ] && [ "$out" = "calsweep export: --preset sensitivity: axis seq_len: no such axis; axes: algorithm, eval, model, n_samples, seed, selector" ]
ok $? "a sweep without seq_len: exit 1, naming the axis and the sweep's axes, no file ($out)"
[ $fail = 0 ]
