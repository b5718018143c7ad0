#!/usr/bin/env bash
# rules.sh - the size and naming rules of docs/style.md that a script can check, as TAP.
#
#   R25  no function body over 120 lines, outside the kernels that mirror a published reference
#        loop line by line (EXEMPT below, each with its reason in a comment at the function)
#   R26  no product .c file over 1,500 lines
#   R2   every product header's guard is CS_ + its path, upper-cased (worker/quant/cs_gptq.h ->
#        CS_WORKER_QUANT_CS_GPTQ_H)
#   R3   destructors are *_destroy (object its constructor allocated), *_fini (struct the caller
#        owns), *_close (handle); no *_free in a product header but cs_free* of common/cs_alloc.h
#        (which frees memory, not an object)
#   docs no file names a place outside the repository (the design notes live in docs/)
#   sh   shellcheck -x (default severity: style and info too) finds nothing in the tracked shell
#        scripts of deploy/, tests/ and .ci/ (*.sh, or a sh/bash/dash/ksh #! line); a deliberate
#        idiom carries "# shellcheck disable=SCxxxx # reason" on its line. Skipped (TAP SKIP)
#        without shellcheck or when SOURCE_DIR is not the top of a git work tree.
#
# A function is what clang-format writes: a line that is only "{" opens a body, the next line
# that is only "}" closes it. Usage: rules.sh [SOURCE_DIR] (default $CS_SOURCE_DIR, then .).
set -u
src=${1:-${CS_SOURCE_DIR:-.}}
cd "$src" || { echo "Bail out! no source tree at $src"; exit 1; }

FUNC_MAX=120
FILE_MAX=1500
EXEMPT=" cs_gptq_quantize cs_sparsegpt_prune "
product_dirs=(common coordinator worker sweeps/testbed/gen)

n=0
failed=0
ok() { n=$((n + 1)); echo "ok $n - $1"; }
not_ok() {
    n=$((n + 1)); failed=$((failed + 1)); echo "not ok $n - $1"
    printf '%s\n' "$2" | sed 's/^/# /'
}
check() { # NAME OUTPUT: passes when OUTPUT is empty
    if [ -z "$2" ]; then ok "$1"; else not_ok "$1" "$2"; fi
}

# Prints "FILE:LINE NAME LENGTH" for every function body longer than $2 lines in file $1.
long_functions() {
    awk -v max="$2" -v exempt="$EXEMPT" -v file="$1" '
        /^\{$/ { start = FNR; name = sig; next }
        /^\}/ && start { len = FNR - start + 1
                         if (len > max && index(exempt, " " name " ") == 0)
                             printf "%s:%d %s %d lines\n", file, start, name, len
                         start = 0; next }
        !start && match($0, /[A-Za-z_][A-Za-z0-9_]*\(/) {
            sig = substr($0, RSTART, RLENGTH - 1) }' "$1"
}

mapfile -t cfiles < <(find "${product_dirs[@]}" -name '*.c' | sort)
mapfile -t hfiles < <(find "${product_dirs[@]}" -name '*.h' | sort)

check "R25: no product function over $FUNC_MAX lines (${#cfiles[@]} files)" \
    "$(for f in "${cfiles[@]}"; do long_functions "$f" "$FUNC_MAX"; done)"

check "R26: no product .c file over $FILE_MAX lines" \
    "$(for f in "${cfiles[@]}"; do l=$(wc -l <"$f"); [ "$l" -le "$FILE_MAX" ] || echo "$f: $l lines"; done)"

guard_errors() {
    local f want got
    for f in "${hfiles[@]}"; do
        want=CS_$(printf '%s' "${f%.h}_H" | tr 'a-z/.-' 'A-Z___')
        got=$(awk '/^#ifndef /{print $2; exit}' "$f")
        [ "$got" = "$want" ] || echo "$f: guard $got, want $want"
        grep -q "^#define $want\$" "$f" || echo "$f: no #define $want"
    done
}
check "R2: every product header guard is CS_<PATH>_H (${#hfiles[@]} headers)" "$(guard_errors)"

check "R3: no *_free destructor in a product header (use _destroy, _fini or _close)" \
    "$(grep -nE '^(void|cs_rc|int) cs_[a-z0-9_]+_free\(' "${hfiles[@]}" | grep -v 'common/cs_alloc.h')"

# The design notes were once beside the repository; every reference now points into docs/.
outside_refs() {
    grep -rnE '\.\./shared|(^|[^/a-z_])(ARCHITECTURE|STYLE)\.md|/work/(shared|main|wt|\.library|\.mirror)/' \
        --include='*.c' --include='*.h' --include='*.py' --include='*.sh' --include='*.md' \
        --include='*.build' --include='*.sql' --include='*.mjs' --include='*.js' \
        "${product_dirs[@]}" schemas tests deploy docs README.md BENCHMARKS.md meson.build \
        2>/dev/null | grep -v '^tests/cli/rules.sh:' | grep -v node_modules
}
check "no file names a place outside the repository" "$(outside_refs)"

# The shell scripts git tracks under deploy/, tests/ and .ci/: by name (*.sh, sourced ones
# included) or by a #! line naming sh, bash, dash or ksh (.ci/run, a future *.sbatch).
shell_scripts() {
    local f
    git ls-files -- deploy tests .ci | while IFS= read -r f; do
        [ -f "$f" ] || continue
        case "$f" in
            *.sh) echo "$f" ;;
            *) head -n 1 "$f" | grep -qE '^#!.*[/[:space:]](ba|da|k)?sh([[:space:]]|$)' && echo "$f" ;;
        esac
    done
}
sc_name="shellcheck accepts every shell script in deploy/ and tests/"
if ! command -v shellcheck >/dev/null 2>&1; then
    n=$((n + 1)); echo "ok $n - $sc_name # SKIP shellcheck is not installed (apt-get install shellcheck)"
elif [ "$(git rev-parse --show-toplevel 2>/dev/null)" != "$(pwd -P)" ]; then
    n=$((n + 1)); echo "ok $n - $sc_name # SKIP $src is not a git work tree (the scripts are found with git ls-files)"
else
    mapfile -t scripts < <(shell_scripts)
    if [ ${#scripts[@]} -eq 0 ]; then
        not_ok "$sc_name" "git ls-files found no shell script under deploy/, tests/ or .ci/"
    else
        sc_out=$(shellcheck -x -f gcc -- "${scripts[@]}" 2>&1) || sc_rc=$?
        [ "${sc_rc:-0}" -eq 0 ] || [ -n "$sc_out" ] || sc_out="shellcheck exited ${sc_rc}"
        check "$sc_name" "$sc_out"
    fi
fi

# The checks can fail: each finds its fault in a file made to have it.
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
{
    echo 'static int too_long(void)'
    echo '{'
    for _ in $(seq 1 130); do echo '    x++;'; done
    echo '}'
    echo 'cs_rc cs_gptq_quantize(float *w)'
    echo '{'
    for _ in $(seq 1 130); do echo '    x++;'; done
    echo '}'
} >"$tmp/t.c"
got=$(long_functions "$tmp/t.c" "$FUNC_MAX")
if [ "$got" = "$tmp/t.c:2 too_long 132 lines" ]; then
    ok "the function check finds a 132-line body and passes the exempt kernel"
else
    not_ok "the function check finds a 132-line body and passes the exempt kernel" "got: $got"
fi

echo "1..$n"
[ "$failed" -eq 0 ]
