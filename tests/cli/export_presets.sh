#!/usr/bin/env bash
# calsweep export --preset on the fixture database's sweep "grid" (tests/export_fixture.c: two
# models, gptq x n_samples x seq_len x selector x seed, rtn and the baselines): the presets match
# their golden files (one table per model; per algorithm and model), every number of their CSV
# equals `calsweep results --json` grouped the same way, and a preset on a sweep without its axes
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

# name of an algorithm value as the CSV shows it ("gptq(bits=4)" -> "gptq")
jq_rows='.rows[] | [(.values.algorithm | if type == "object" then .name else . end),
         (.values.selector // ""), (.values.model // ""), (.values.n_samples // "" | tostring),
         (.values.seq_len // "" | tostring), .tasks.arc_e.value, .tasks.hella_swag.value,
         .average.value] | @tsv'

# selectors: algorithm,selector,model,seeds,arc_e.acc,arc_e.acc.std,hella_swag.acc,...,average,...
timeout 60 "$CALSWEEP" export --db fx.db grid --preset selectors --format csv >sel.csv &&
timeout 60 "$CALSWEEP" results --db fx.db grid --json --by algorithm,selector,model,eval |
    jq -r "$jq_rows" >sel.tsv
ok $? "the selectors preset and results --json --by algorithm,selector,model,eval run"
grep -v '^#' sel.csv | awk -F, 'NR > 1 { sub(/\(.*/, "", $1); print $1 "|" $2 "|" $3, $5, $7, $11 }' |
    sort >sel.export
awk -F'\t' '{ print $1 "|" $2 "|" $3, $6, $7, $8 }' sel.tsv | sort >sel.results
[ "$(wc -l <sel.export)" = 8 ] &&
    join sel.export sel.results | awk '{ for (i = 2; i <= 4; i++) if (($i - $(i+3))^2 > 1e-18) bad = 1 }
                                      END { exit bad || NR != 8 }'
ok $? "its 8 rows x (arc_e, hella_swag, average) equal results --json"

# sensitivity: algorithm,model,n_samples,seq_len=64,seq_len=64.std,seq_len=128,seq_len=128.std
timeout 60 "$CALSWEEP" export --db fx.db grid --preset sensitivity --format csv >sens.csv &&
timeout 60 "$CALSWEEP" results --db fx.db grid --json --by algorithm,model,eval,n_samples,seq_len |
    jq -r "$jq_rows" >sens.tsv
ok $? "the sensitivity preset and results --json --by algorithm,model,eval,n_samples,seq_len run"
grep -v '^#' sens.csv | awk -F, 'NR == 1 { for (i = 4; i <= NF; i++) if ($i !~ /std/) { sub(/seq_len=/, "", $i); col[i] = $i } next }
    { sub(/\(.*/, "", $1); for (i in col) print $1 "|" $2 "|" $3 "|" col[i], $i }' | sort >sens.export
awk -F'\t' '$5 != "" { print $1 "|" $3 "|" $4 "|" $5, $8 }' sens.tsv | sort >sens.results
[ "$(wc -l <sens.export)" = 8 ] &&
    join sens.export sens.results | awk '{ if (($2 - $3)^2 > 1e-18) bad = 1 } END { exit bad || NR != 8 }'
ok $? "its 8 cells (2 models x 2 n_samples x 2 seq_len) equal the averages of results --json"

out=$(timeout 60 "$CALSWEEP" export --db fx.db fixture --preset sensitivity -o s.md 2>&1); rc=$?
[ $rc = 1 ] && [ ! -e s.md ] && [ "$out" = "calsweep export: --preset sensitivity: axis seq_len: no such axis; axes: algorithm, eval, model, n_samples, seed, selector" ]
ok $? "a sweep without seq_len: exit 1, naming the axis and the sweep's axes, no file ($out)"
[ $fail = 0 ]
