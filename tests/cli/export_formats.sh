#!/usr/bin/env bash
# calsweep export on the fixture database (tests/export_fixture.c, known numbers): every format
# matches its golden file in tests/data/export/ byte for byte (the commands run in a temporary
# folder with a relative --db, so the reproducibility comment is the same everywhere); bad input
# exits 1 naming the valid choices and writes no file; -o needs --force to replace a file and
# leaves no temporary file behind. Regenerate the goldens with CS_EXPORT_REGEN=1 (and review them).
cd "$CS_SOURCE_DIR" || exit 1
n=0; fail=0
ok() { local m=${2//$'\n'/ | }; n=$((n+1)); if [ "$1" = 0 ]; then echo "ok $n - $m"; else echo "not ok $n - $m"; fail=1; fi; }
echo "1..22"
gold="$CS_SOURCE_DIR/tests/data/export"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
"$CS_BUILD_DIR/tests/export_fixture" "$tmp/fx.db"; ok $? "the fixture database is written"
cd "$tmp" || exit 1

# golden NAME ARGS...: the export with ARGS equals tests/data/export/NAME
golden() {
    local name=$1; shift
    timeout 60 "$CALSWEEP" export --db fx.db fixture "$@" >"$name" 2>"$name.err"; local rc=$?
    if [ "${CS_EXPORT_REGEN:-0}" = 1 ]; then cp "$name" "$gold/$name"; fi
    [ $rc = 0 ] && cmp -s "$name" "$gold/$name"
    ok $? "export $* matches $name"
    [ $rc = 0 ] || cat "$name.err" >&2
}
golden table.md
golden table-percent.md --percent
golden table.csv --format csv
golden table-long.csv --format csv-long
golden table.json --format json
golden sensitivity.md --cols n_samples --where algorithm=gptq --percent --digits 2
golden reference.csv --format csv --reference selector=random --resamples 1000 --percent
golden table.tex --format latex --percent --reference selector=random --resamples 1000
golden standalone.tex --format latex --standalone --rows algorithm,selector,n_samples --digits 2

# bad ARGS -- MESSAGE: exit 1, the message on stderr, no output file
bad() {
    local args=() msg
    while [ "$1" != -- ]; do args+=("$1"); shift; done; msg=$2
    rm -f out.md
    out=$(timeout 60 "$CALSWEEP" export --db fx.db fixture "${args[@]}" -o out.md 2>&1); local rc=$?
    [ $rc = 1 ] && [ "$out" = "$msg" ] && [ ! -e out.md ]
    ok $? "export ${args[*]}: exit 1, '$msg', no file (got $rc: $out)"
}
bad --rows algo -- "calsweep export: --rows algo: no such axis; axes: algorithm, eval, model, n_samples, seed, selector"
bad --where selectr=random -- "calsweep export: --where selectr=random: no such axis; axes: algorithm, eval, model, n_samples, selector"
bad --cols nsamples -- "calsweep export: --cols nsamples: no such axis; axes: algorithm, eval, model, n_samples, selector"
bad --metric accc -- "calsweep export: --metric accc: no task has it; metrics: acc, ppl"
bad --where selector=randm -- "calsweep export: --where selector=randm: no row has it; values: random, k_means"
bad --where selector=random --where algorithm=rtn -- "calsweep export: no row matches every --where"
bad --format csv-long --where sed=1 -- "calsweep export: --where sed=1: no such axis; axes: algorithm, eval, model, n_samples, selector, seed"

# -o: an existing file needs --force; the write goes through a temporary file
echo keep >out.md
timeout 60 "$CALSWEEP" export --db fx.db fixture -o out.md 2>err.txt; rc=$?
[ $rc = 1 ] && [ "$(cat out.md)" = keep ] &&
    grep -qxF "calsweep export: out.md exists (use --force to overwrite it)" err.txt
ok $? "an existing -o file is kept without --force, exit 1"
timeout 60 "$CALSWEEP" export --db fx.db fixture -o out.md --force; rc=$?
[ $rc = 0 ] && cmp -s <(tail -n +2 out.md) <(tail -n +2 "$gold/table.md") &&
    grep -qF -- "command: calsweep export --db fx.db fixture -o out.md --force -->" out.md
ok $? "--force replaces it with the export, its command in the comment"
[ -z "$(find . -mindepth 1 -maxdepth 1 \( -name '.*' -o -name '*.tmp.*' \))" ] &&
    [ "$(find . -mindepth 1 -maxdepth 1 | wc -l)" -gt 3 ]
ok $? "no temporary file is left (cs_path_write_atomic writes .out.md.XXXXXX)"
timeout 60 "$CALSWEEP" export --db fx.db fixture -o nodir/out.md 2>err.txt; rc=$?
[ $rc = 1 ] && grep -qxF "calsweep export: create temporary file for nodir/out.md: No such file or directory" err.txt
ok $? "a folder that does not exist: exit 1, naming the file"

timeout 60 "$CALSWEEP" export --db fx.db fixture --format tex 2>err.txt; rc=$?
[ $rc = 2 ] && grep -qF "formats: markdown, csv, csv-long, json, latex" err.txt; ok $? "an unknown format is a usage error listing the formats"
[ $fail = 0 ]
