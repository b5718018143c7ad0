#!/usr/bin/env bash
# `calsweep plot --db` on a database of known numbers (tests/plot_fixture.c): the three figures in
# the three formats (PNG signature, SVG well-formed by xmllint when it is installed, PDF of one
# page with its font embedded), --format over the extension, and the refusals: rows that differ
# on a hidden axis, unknown metric, axis and --where value (each listing the valid ones, exit 1),
# an empty selection (exit 1, no file), an existing file without --force, usage errors (exit 2),
# and no temporary file left behind.
n=0; fail=0
ok() { local m=${2//$'\n'/ | }; n=$((n+1)); if [ "$1" = 0 ]; then echo "ok $n - $m"; else echo "not ok $n - $m"; fail=1; fi; }
echo "1..42"
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
db=$tmp/fx.db
plot() { "$CALSWEEP" plot --db "$db" plotfx "$@"; }

"$PLOT_FIXTURE" "$db"; ok $? "plot_fixture writes the database"

# figure name, then its options
figs=("heatmap --where selector=random"
      "nsamples --where seq_len=64 --width 6.8"
      "tasks --where seq_len=64 --where n_samples=32")
for f in "${figs[@]}"; do
    name=${f%% *}
    # shellcheck disable=SC2086 # the options split on purpose
    for ext in svg pdf png; do
        plot --figure $f -o "$tmp/$name.$ext" 2>"$tmp/err"; rc=$?
        ok $rc "$name.$ext is written $(cat "$tmp/err")"
    done
    [ "$(head -c 4 "$tmp/$name.png" | od -An -c | tr -d ' ')" = '211PNG' ]; ok $? "$name.png is a PNG"
    [ "$(grep -a -o '/Type /Page[^s]' "$tmp/$name.pdf" | wc -l)" = 1 ]; ok $? "$name.pdf has one page"
    grep -a -q '/FontFile' "$tmp/$name.pdf"; ok $? "$name.pdf embeds its font"
    if command -v xmllint >/dev/null; then
        xmllint --noout "$tmp/$name.svg"; ok $? "$name.svg is well-formed XML"
    else
        ok 0 "$name.svg: # SKIP xmllint not installed (deploy/packages.txt: libxml2-utils)"
    fi
done

plot --figure tasks --where seq_len=64 --where n_samples=32 --format png -o "$tmp/fig.out"; rc=$?
[ $rc = 0 ] && [ "$(head -c 4 "$tmp/fig.out" | od -An -c | tr -d ' ')" = '211PNG' ]
ok $? "--format png writes a PNG whatever the extension"

plot --figure tasks --series algorithm --where selector=random --where n_samples=16 \
    --where seq_len=64 -o "$tmp/alg.svg"; rc=$?
ok $rc "--series algorithm: gptq and RTN (which has no selector) in one figure"

plot -o "$tmp/h.svg" 2>"$tmp/err"; rc=$?
[ $rc = 1 ]; ok $? "rows that differ on a hidden axis: exit 1"
grep -q 'differ in selector (values: random, kmeans, zipcal); choose one with --where selector=VALUE' "$tmp/err"
ok $? "the message names the axis and its values"
[ ! -e "$tmp/h.svg" ]; ok $? "and writes no file"

plot --metric ppl --where selector=random -o "$tmp/h.svg" 2>"$tmp/err"; rc=$?
[ $rc = 1 ] && grep -q -- '--metric ppl: not for the heatmap figure; metrics: accuracy, std_ret' "$tmp/err"
ok $? "an unknown metric lists the valid ones (exit 1)"
plot --where selectr=random -o "$tmp/h.svg" 2>"$tmp/err"; rc=$?
[ $rc = 1 ] && grep -q 'no axis selectr; axes: algorithm, eval, model, n_samples, seed, selector, seq_len' "$tmp/err"
ok $? "an unknown axis lists the axes (exit 1)"
plot --where selector=randm -o "$tmp/h.svg" 2>"$tmp/err"; rc=$?
[ $rc = 1 ] && grep -q 'no row has selector=randm; values: random, kmeans, zipcal' "$tmp/err"
ok $? "an unknown value lists the values (exit 1)"
plot --figure tasks --series sel -o "$tmp/h.svg" 2>"$tmp/err"; rc=$?
[ $rc = 1 ] && grep -q 'tasks: the sweep has no axis sel' "$tmp/err"
ok $? "an unknown --series axis lists the axes (exit 1)"

plot --where selector=zipcal --where seq_len=128 -o "$tmp/e.svg" 2>"$tmp/err"; rc=$?
[ $rc = 1 ] && grep -q 'no rows to plot' "$tmp/err"; ok $? "an empty selection: exit 1 and a message"
[ ! -e "$tmp/e.svg" ]; ok $? "and no file"

plot --where selector=random -o "$tmp/heatmap.svg" 2>"$tmp/err"; rc=$?
[ $rc = 1 ] && grep -q 'heatmap.svg: exists; --force overwrites it' "$tmp/err"
ok $? "an existing file is refused without --force"
echo keep >"$tmp/k.png"
plot --where selector=kmeans -o "$tmp/k.png" 2>/dev/null
[ "$(cat "$tmp/k.png")" = keep ]; ok $? "and left as it was"
plot --where selector=kmeans --force -o "$tmp/k.png"; rc=$?
[ $rc = 0 ] && [ "$(head -c 4 "$tmp/k.png" | od -An -c | tr -d ' ')" = '211PNG' ]
ok $? "--force overwrites it"

plot --figure bars -o "$tmp/x.svg" 2>"$tmp/err"; rc=$?
[ $rc = 2 ] && grep -q 'figures: heatmap, nsamples, tasks' "$tmp/err"; ok $? "an unknown --figure: exit 2"
plot --width 50 -o "$tmp/x.svg" 2>/dev/null; [ $? = 2 ]; ok $? "--width out of range: exit 2"
plot --where selector=random -o "$tmp/x.gif" 2>"$tmp/err"; rc=$?
[ $rc = 1 ] && grep -q 'use .svg, .pdf or .png' "$tmp/err"; ok $? "an unknown extension: exit 1"
"$CALSWEEP" plot --db "$db" plotfx 2>/dev/null; [ $? = 2 ]; ok $? "no -o: exit 2"
"$CALSWEEP" plot --help | grep -q 'usage: calsweep plot'; ok $? "plot --help prints its usage"
[ -z "$(find "$tmp" -name '*.svg.*' -o -name '*.pdf.*' -o -name '*.png.*' -o -name '*.gif.*')" ]; ok $? "no temporary file is left behind"
exit $fail
