#!/usr/bin/env bash
# The man pages: the four generated from the programs' --help (deploy/man/gen-man.sh, at build
# time) and calsweep-sweep(5), written by hand. Each renders with `man -l` and groff finds nothing
# to warn about; every option a program's --help prints (and each subcommand's) is in its page;
# calsweep-sweep(5) names every key of schemas/sweep.schema.json (the algorithms' and selectors'
# parameters excepted: `calsweep methods` and calsweep-run(1) list those).
cd "$CS_SOURCE_DIR" || exit 1
n=0; fail=0
ok() { local m=${2//$'\n'/ | }; n=$((n+1)); if [ "$1" = 0 ]; then echo "ok $n - $m"; else echo "not ok $n - $m"; fail=1; fi; }
M=$CS_BUILD_DIR/deploy/man
echo "1..14"
if ! command -v man >/dev/null || ! command -v groff >/dev/null; then
    for _ in $(seq 14); do echo "ok - # SKIP man or groff is not installed"; done
    exit 0
fi

# options of PROGRAM [SUB]'s --help: every --long and -s name at the start of an option line
opts() { "$@" --help 2>&1 | grep -oE '^  +(-[a-zA-Z], )?--[a-z0-9-]+' | grep -oE -- '--[a-z0-9-]+|^ +-[a-zA-Z]' | tr -d ' '; }
# the page's text as written (roff's \- is a -)
src() { sed 's/\\-/-/g' "$1"; }

check() { # page program [sub...]
    local page=$1 prog=$2 missing=() o sub
    shift 2
    out=$(MANWIDTH=100 man -l "$page" 2>&1); rc=$?
    [ $rc = 0 ] && [ -n "$out" ]; ok $? "$(basename "$page") renders with man -l"
    warn=$(groff -man -ww -z "$page" 2>&1)
    [ -z "$warn" ]; ok $? "$(basename "$page"): groff warns about nothing ${warn:0:200}"
    for o in $(opts "$prog"); do src "$page" | grep -q -- "$o" || missing+=("$o"); done
    for sub in "$@"; do
        for o in $(opts "$prog" "$sub"); do src "$page" | grep -q -- "$o" || missing+=("$sub $o"); done
    done
    [ ${#missing[@]} = 0 ]; ok $? "$(basename "$page") has every option of --help${*:+ and of $*} ${missing[*]}"
}
subs=$("$CALSWEEP" --help | awk '/^commands:$/ {c = 1; next} c && /^  [a-z]/ {print $1} c && /^$/ {c = 0}' | grep -v '^help$')
# shellcheck disable=SC2086 # one word per subcommand
check "$M/calsweep.1" "$CALSWEEP" $subs
check "$M/calsweepd.8" "$CALSWEEPD"
check "$M/calsweep-worker.8" "$CALSWEEP_WORKER"
check "$M/calsweep-run.1" "$CALSWEEP_RUN" info tokenize ppl generate quantize eval select convert-task

page=deploy/man/calsweep-sweep.5
MANWIDTH=100 man -l "$page" >/dev/null 2>&1; ok $? "calsweep-sweep.5 renders with man -l"
missing=()
for k in $(jq -r '[paths(objects) as $p | select($p[-1] == "properties")
        | select(($p | index("algorithm")) == null and ($p | index("selector")) == null)
        | getpath($p) | keys[]] | unique | .[]' schemas/sweep.schema.json); do
    grep -qF "\\fB$k\\fR" "$page" || missing+=("$k")
done
[ ${#missing[@]} = 0 ]; ok $? "calsweep-sweep.5 names every key of sweep.schema.json ${missing[*]}"
exit $fail
