#!/usr/bin/env bash
# Runs the tests whose floating-point results pass through BLAS/LAPACK once per OpenBLAS core type
# (OPENBLAS_CORETYPE, the kernels OpenBLAS 0.3.21's dynamic-arch build would pick on other CPUs)
# and prints a Markdown table: core type, the core OpenBLAS reports, passed / failed tests, seconds.
# Not run by `meson test` or CI (tests and CI never set OPENBLAS_CORETYPE: some machines need their
# own setting). A core type the CPU lacks is reported as OpenBLAS's fallback. BENCHMARKS.md
# "Tests on every OpenBLAS core type" has the table for one machine.
#
#   tests/bench/coretypes.sh [BUILD] [--cli] [--model] [CORE...]
#     BUILD  a configured build directory (default build); --cli adds the CLI tests that compare
#            numbers, --model quant_model (about 10 minutes per core type on 2 cores)
set -uo pipefail
B=build cli=0 model=0 cores=()
for a in "$@"; do
    case $a in --cli) cli=1 ;; --model) model=1 ;; -h|--help) sed -n '2,11p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
               *) if [ -d "$a" ]; then B=$a; else cores+=("$a"); fi ;; esac
done
[ ${#cores[@]} -gt 0 ] || cores=(Prescott Core2 Nehalem Sandybridge Haswell Zen SkylakeX Cooperlake)
tests=(tol quant_ref quant_gptq quant_sparse quant_smooth_awq quant_quantizer quant_pipeline
       quant_imatrix engine_ref engine_model engine_kernels engine_testbed eval testbed_ref
       calib_data calib_act kmeans)
[ $cli = 1 ] && tests+=(engine_run run_job quant_awq quant_imatrix_cli calib_select select_jobs)
[ $model = 1 ] && tests+=(quant_model)
S=$(cd "$(dirname "$0")/../.." && pwd)
probe=$B/tests/tol_test
[ -x "$probe" ] || { echo "coretypes.sh: $probe not built (ninja -C $B)" >&2; exit 2; }
echo "| OPENBLAS_CORETYPE | OpenBLAS core | passed | failed | s | failures |"
echo "|---|---|---|---|---|---|"
bad=0
for ct in "${cores[@]}"; do
    core=$(OPENBLAS_VERBOSE=2 OPENBLAS_CORETYPE=$ct CS_SOURCE_DIR=$S "$probe" 2>&1 |
           sed -n 's/^Core: //p' | head -n 1)
    t0=$(date +%s)
    OPENBLAS_CORETYPE=$ct meson test -C "$B" --no-rebuild "${tests[@]}" >"$B/meson-logs/coretype-$ct.txt" 2>&1
    rc=$?
    t1=$(date +%s)
    read -r p f _ < <("$S/tests/summarize.sh" "$B/meson-logs/testlog.json")
    [ $rc != 0 ] && [ "$f" = 0 ] && f="meson test exited $rc"
    failed=$(jq -r 'select(.result != "OK" and .result != "SKIP") | .name' "$B/meson-logs/testlog.json" |
             tr '\n' ' ')
    cp "$B/meson-logs/testlog.json" "$B/meson-logs/testlog-coretype-$ct.json"
    echo "| $ct | ${core:-?} | $p | $f | $((t1 - t0)) | ${failed:--} |"
    [ "$f" = 0 ] || bad=1
done
exit $bad
