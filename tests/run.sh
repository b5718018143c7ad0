#!/usr/bin/env bash
# The README's test command: install what is missing, build plain and sanitized (ASan+UBSan, clang,
# with libFuzzer targets), check formatting and banned functions, run every suite but bench, and end
# with one line "N passed, N failed" counted from meson's testlog.json. Exits non-zero on any failure.
#
#   tests/run.sh            everything (what CI runs)
#   tests/run.sh --quick    plain build only, no fuzzing
#   tests/run.sh --suite S  only suite S (repeatable), in both builds
set -uo pipefail
# shellcheck source=SCRIPTDIR/../deploy/lib.sh
. "$(dirname "$0")/../deploy/lib.sh"

quick=0
suites=()
while [ $# -gt 0 ]; do
    case "$1" in
        --quick) quick=1 ;;
        --suite) shift; suites+=(--suite "$1") ;;
        -h|--help) sed -n '2,9p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
        *) echo "tests/run.sh: unknown option '$1' (see --help)" >&2; exit 2 ;;
    esac
    shift
done

set -e
cs_install_deps
if [ -f "$CS_ROOT/tests/node/package-lock.json" ] &&
   { [ ! -d "$CS_ROOT/tests/node/node_modules" ] ||
     [ "$CS_ROOT/tests/node/package-lock.json" -nt "$CS_ROOT/tests/node/node_modules/.package-lock.json" ]; }; then
    cs_say "installing test tools from the npm registry (tests/node/package-lock.json)"
    (cd "$CS_ROOT/tests/node" && npm ci --no-audit --no-fund --loglevel=error >/dev/null)
fi
set +e

passed=0 failed=0 skipped=0
logs=() # the testlog.json of each build tested in this run
check() { # check NAME COMMAND...: a repository check that counts as one test
    if "${@:2}"; then passed=$((passed+1)); echo "ok - $1"; else failed=$((failed+1)); echo "FAILED - $1"; fi
}

cd "$CS_ROOT"
mapfile -t csrc < <(git ls-files --cached --others --exclude-standard -- '*.c' '*.h' | while read -r f; do [ -f "$f" ] && echo "$f"; done)
check "clang-format (.clang-format)" clang-format --dry-run -Werror "${csrc[@]}"
banned() { ! grep -nE '\b(gets|sprintf|strcpy|strcat|atoi|atof|strtok|rand)\s*\(' "${csrc[@]}"; }
check "no banned functions (docs/style.md R22)" banned

werror=()
[ "${CI:-}" = "true" ] && werror=(-Dwerror=true)

run_build() { # run_build DIR CC [meson options...]
    local dir=$1 ccomp=$2; shift 2
    if ! CC=$ccomp cs_build "$dir" "${werror[@]}" "$@"; then
        failed=$((failed+1)); echo "FAILED - build $dir"; return
    fi
    cs_say "testing $dir"
    rm -f "$dir/meson-logs/testlog.json"
    meson test -C "$dir" --no-rebuild --print-errorlogs --num-processes 2 "${suites[@]}" \
        > "$dir/meson-logs/run.txt" 2>&1
    grep -E '^ *[0-9]+/[0-9]+ ' "$dir/meson-logs/run.txt" | grep -vE ' (OK|SKIP) ' || true
    if [ -f "$dir/meson-logs/testlog.json" ]; then
        logs+=("$dir/meson-logs/testlog.json")
        read -r p f s < <(tests/summarize.sh "$dir/meson-logs/testlog.json")
        passed=$((passed+p)) failed=$((failed+f)) skipped=$((skipped+s))
        cs_say "$dir: $p passed, $f failed, $s skipped"
    else
        failed=$((failed+1)); echo "FAILED - $dir produced no testlog.json"
    fi
}

run_build build gcc
demo() { # the README's main command must keep working at every commit
    deploy/run-demo.sh > build/meson-logs/demo.txt 2>&1 || { tail -n 20 build/meson-logs/demo.txt; return 1; }
}
[ -f build/build.ninja ] && check "deploy/run-demo.sh (log: build/meson-logs/demo.txt)" demo
braces() { # docs/style.md R21: every if/else/for/while body in braces (needs the build's compile_commands.json)
    local f out=0
    for f in "${csrc[@]}"; do
        case $f in tests/node/* | *.h) continue ;; esac # a header is checked where it is included
        # gcc's flags (and CI's -Werror) are not clang's: only the braces check may fail
        if clang-tidy -p build --quiet --checks='-*,readability-braces-around-statements' \
            --extra-arg=-Wno-unknown-warning-option --extra-arg=-Wno-error \
            --header-filter="^$CS_ROOT/(common|coordinator|worker|sweeps|tests)/" \
            --warnings-as-errors='readability-braces-around-statements' "$f" \
            >build/meson-logs/braces.txt 2>&1; then :; else
            grep -m 3 'error:' build/meson-logs/braces.txt; out=1
        fi
    done
    return $out
}
[ -f build/compile_commands.json ] && check "braces on every body (clang-tidy)" braces
if [ $quick -eq 0 ]; then
    run_build build-asan clang -Db_sanitize=address,undefined -Db_lundef=false -Dfuzz=true
fi

slowest() { # the 10 slowest tests of both builds: seconds, build, name (meson's testlog.json)
    local d
    [ ${#logs[@]} -gt 0 ] || return 0
    echo "slowest tests (seconds, build, test):"
    for d in "${logs[@]}"; do
        jq -r --arg b "${d%%/*}" '"\(.duration) \($b) \(.name)"' "$d"
    done | sort -rn | head -n 10 | awk '{ t = $3; for (i = 4; i <= NF; i++) t = t " " $i;
                                          printf "  %7.1f  %-10s %s\n", $1, $2, t }'
}
slowest

# Why each failed test failed, where a CI log is all there is to read: its "not ok" lines and the
# last lines it wrote (the integration tests dump calsweepd's and the workers' logs on failure).
failures() {
    local d
    for d in "${logs[@]}"; do
        jq -r --arg b "${d%%/*}" 'select(.result != "OK" and .result != "SKIP" and
                .result != "EXPECTEDFAIL")
            | "---- \($b) \(.name): \(.result)",
              ((.stdout // "") | split("\n") | map(select(test("^not ok"))) | .[:10][]),
              ((((.stdout // "") + "\n" + (.stderr // "")) | split("\n")
                | map(select(length > 0)) | .[-40:][]) | "  | " + .)' "$d"
    done
}
[ $failed -eq 0 ] || failures

if [ $skipped -gt 0 ]; then
    echo "$passed passed, $failed failed, $skipped skipped"
else
    echo "$passed passed, $failed failed"
fi
[ $failed -eq 0 ]
