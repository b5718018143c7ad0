#!/usr/bin/env bash
# calsweep export's LaTeX compiles and its CSV reads back: on the fixture database
# (tests/export_fixture.c, known numbers), the --standalone table and the sensitivity preset's
# document compile with pdflatex (nonstop, halting on the first error) to one page each with no
# error in the log, as does a document that \input's a --fragment; the wide CSV imported with
# sqlite3's .import gives back the numbers of `calsweep results --json`, and the long CSV the
# fixture's numbers. pdflatex and the LaTeX packages (booktabs, multirow) come from Debian's
# texlive-latex-base, -recommended and -extra (deploy/packages.txt), installed here with apt-get
# when missing, as deploy/lib.sh's cs_install_deps does.
cd "$CS_SOURCE_DIR" || exit 1
n=0; fail=0
ok() { local m=${2//$'\n'/ | }; n=$((n+1)); if [ "$1" = 0 ]; then echo "ok $n - $m"; else echo "not ok $n - $m"; fail=1; fi; }
echo "1..9"
if ! command -v pdflatex >/dev/null 2>&1 || ! kpsewhich multirow.sty booktabs.sty >/dev/null 2>&1; then
    sudo=""; [ "$(id -u)" -ne 0 ] && sudo="sudo"
    { $sudo apt-get update -qq &&
      DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends \
          texlive-latex-base texlive-latex-recommended texlive-latex-extra; } >&2
fi
command -v pdflatex >/dev/null 2>&1 && [ "$(kpsewhich multirow.sty booktabs.sty | wc -l)" = 2 ]
ok $? "pdflatex, booktabs.sty and multirow.sty are there (texlive-latex-base, -recommended, -extra)"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
"$CS_BUILD_DIR/tests/export_fixture" "$tmp/fx.db"; ok $? "the fixture database is written"
cd "$tmp" || exit 1

# compiles NAME.tex: pdflatex exits 0, no "!" error line in the log, one page
compiles() {
    local name=$1
    timeout 120 pdflatex -interaction=nonstopmode -halt-on-error "$name.tex" >/dev/null 2>&1; local rc=$?
    [ $rc = 0 ] && ! grep -q '^!' "$name.log" && grep -q "^Output written on $name.pdf (1 page," "$name.log"
    ok $? "$name.tex compiles with pdflatex to one page without errors"
    [ $rc = 0 ] || tail -n 20 "$name.log" >&2
}
timeout 60 "$CALSWEEP" export --db fx.db fixture --format latex --standalone --percent \
    --reference selector=random --resamples 1000 -o table.tex && compiles table
timeout 60 "$CALSWEEP" export --db fx.db grid --format latex --standalone --preset sensitivity \
    -o sensitivity.tex && compiles sensitivity
timeout 60 "$CALSWEEP" export --db fx.db grid --format latex --preset selectors --percent \
    -o fragment.tex &&
    printf '%s\n' '\documentclass{article}' '\usepackage[T1]{fontenc}' '\usepackage{booktabs}' \
        '\usepackage{multirow}' '\begin{document}' '\input{fragment}' '\end{document}' >paper.tex &&
    compiles paper

# The wide CSV back through sqlite3: every average equals results --json's (same order).
timeout 60 "$CALSWEEP" export --db fx.db fixture --format csv -o wide.csv &&
    grep -v '^#' wide.csv >wide-body.csv &&
    sqlite3 :memory: '.import --csv wide-body.csv t' \
        "SELECT printf('%.12g|%.12g|%.12g', \"arc_e.acc\", \"hella_swag.acc\", average) FROM t ORDER BY rowid" >wide.sql &&
    timeout 60 "$CALSWEEP" results --db fx.db fixture --json |
        jq -r '.rows[] | [.tasks.arc_e.value, .tasks.hella_swag.value, .average.value] | @tsv' |
        awk -F'\t' '{ printf "%.12g|%.12g|%.12g\n", $1, $2, $3 }' >wide.json
ok $? "the wide CSV imports with sqlite3 .import"
[ "$(wc -l <wide.sql)" = 6 ] && cmp -s wide.sql wide.json
ok $? "its 6 rows' arc_e, hella_swag and average equal results --json ($(paste -sd' ' wide.sql))"

# The long CSV: 10 jobs x 3 metrics; job 2 (gptq random n_samples 16 seed 0) is 0.70/0.50/12.
timeout 60 "$CALSWEEP" export --db fx.db fixture --format csv-long -o long.csv &&
    grep -v '^#' long.csv >long-body.csv &&
    sqlite3 :memory: '.import --csv long-body.csv t' 'SELECT count(*) FROM t' \
        "SELECT group_concat(task || '=' || (value + 0), ' ') FROM (SELECT * FROM t WHERE job_id = '2' ORDER BY task)" \
        "SELECT \"algorithm.name\" || ' ' || selector || ' ' || n_samples || ' ' || seed FROM t WHERE job_id = '2' LIMIT 1" >long.sql
ok $? "the long CSV imports with sqlite3 .import"
[ "$(paste -sd'/' long.sql)" = "30/arc_e=0.7 hella_swag=0.5 ppl:wiki=12/gptq random 16 0" ]
ok $? "30 lines, and job 2's numbers and axes are the fixture's ($(paste -sd'/' long.sql))"
[ $fail = 0 ]
