#!/usr/bin/env bash
# The README's main command: install what is missing, build, and run the demo sweep for real.
#
# What it does: prints the versions, checks the shipped sweeps (`calsweep plan`), then starts a
# private calsweepd (sockets and database in a temporary folder) and one calsweep-worker, submits
# sweeps/demo.json (both testbed models, RTN, GPTQ, AWQ at 4 and 3 bits and SmoothQuant+GPTQ,
# plus the unquantized baselines), shows the progress, and ends with `calsweep results demo`:
# held-out perplexity, accuracy per task and on average, delta, retention and balance against the
# unquantized model, then the same against RTN (--reference algorithm=rtn). Everything it starts
# is stopped on exit. CALSWEEP_DEMO_KEEP=1 keeps the folder (database, job folders, logs).
set -euo pipefail
# shellcheck source=SCRIPTDIR/lib.sh
. "$(dirname "$0")/lib.sh"
cs_install_deps
cs_build build
B="$CS_ROOT/build"
cd "$CS_ROOT" # sweep files name testbed paths relative to the repository root

cs_say "versions"
"$B/coordinator/calsweepd" --version
"$B/coordinator/calsweep" --version
"$B/worker/calsweep-worker" --version
"$B/worker/calsweep-run" --version

for s in sweeps/gptq-nsamples-seqlen.json sweeps/selectors-compare.json sweeps/demo.json; do
    cs_say "calsweep plan $s"
    "$B/coordinator/calsweep" plan "$s" | head -4
done

dir=$(mktemp -d /tmp/calsweep-demo.XXXXXX)
dpid='' wpid=''
stop() {
    if [ -n "$wpid" ] && kill "$wpid" 2>/dev/null; then wait "$wpid" 2>/dev/null || true; fi
    if [ -n "$dpid" ] && kill "$dpid" 2>/dev/null; then wait "$dpid" 2>/dev/null || true; fi
    if [ "${CALSWEEP_DEMO_KEEP:-0}" = 1 ]; then echo "kept: $dir"; else rm -rf "$dir"; fi
}
trap stop EXIT
export CALSWEEP_CONTROL="ipc://$dir/control.sock" CALSWEEP_WORK="ipc://$dir/work.sock"
cs_say "starting calsweepd and one worker (logs in $dir)"
"$B/coordinator/calsweepd" --db "$dir/calsweep.db" 2>"$dir/calsweepd.log" &
dpid=$!
for _ in $(seq 100); do [ -S "$dir/control.sock" ] && break; sleep 0.1; done
"$B/worker/calsweep-worker" --model-root sweeps/testbed/models --threads 2 \
    --work-dir "$dir/work" --cache-dir "$dir/cache" 2>"$dir/worker.log" &
wpid=$!

cs_say "calsweep submit sweeps/demo.json"
"$B/coordinator/calsweep" submit sweeps/demo.json
start=$(date +%s)
last=-1
while :; do
    st=$("$B/coordinator/calsweep" status --json demo)
    read -r total finished failed <<<"$(jq -r '.sweeps[0].counts as $c | [([$c[]] | add), (($c.done // 0) + ($c.cached // 0) + ($c.failed // 0) + ($c.lost // 0) + ($c.cancelled // 0)), (($c.failed // 0) + ($c.lost // 0))] | @tsv' <<<"$st")"
    if [ "$finished" != "$last" ]; then
        printf '  %d/%d jobs finished, %d failed, %ds\n' "$finished" "$total" "$failed" $(( $(date +%s) - start )) >&2
        last=$finished
    fi
    [ "$finished" -ge "$total" ] && break
    if [ -z "${shown_watch:-}" ] && [ $((finished * 2)) -ge "$total" ]; then
        cs_say "halfway: calsweep watch --once demo (the live view's panes as text; calsweep watch is the full-screen view)"
        "$B/coordinator/calsweep" watch --once demo
        shown_watch=1
    fi
    if ! kill -0 "$wpid" 2>/dev/null || ! kill -0 "$dpid" 2>/dev/null; then
        cs_say "calsweepd or the worker stopped; see $dir/*.log"; CALSWEEP_DEMO_KEEP=1; exit 1
    fi
    sleep 2
done
"$B/coordinator/calsweep" status demo

cs_say "calsweep results demo (per row: the mean over its jobs of each task's headline metric, held-out perplexity, the average accuracy and its delta, retention and balance against the unquantized model)"
"$B/coordinator/calsweep" results demo
cs_say "calsweep results demo --reference algorithm=rtn (the calibrated methods against RTN with the same bits and model; paired bootstrap 95 % CI, Holm-adjusted)"
"$B/coordinator/calsweep" results demo --reference algorithm=rtn

cs_say "calsweep export demo --preset selectors --percent (the paper's table; also --format latex|csv|json)"
"$B/coordinator/calsweep" export demo --preset selectors --percent
# Both presets' tables hold the numbers of `calsweep results --json`, which groups as they do (by
# every axis but seed): the JSON row by row, the CSV's cells as a set (selectors: its average
# column; sensitivity: the seq_len columns' averages; columns counted from the end of the line,
# since the quoted labels in front may hold commas).
rows='[.rows[] | {v: .values, a: .average.value, t: (.tasks | map_values(.value))}] | sort_by(.v | tostring)'
"$B/coordinator/calsweep" results demo --json >"$dir/results.json" || {
    cs_say "calsweep results --json failed"; CALSWEEP_DEMO_KEEP=1; exit 1; }
for p in selectors:average sensitivity:seq_len=; do
    IFS=: read -r preset col <<<"$p"
    if ! "$B/coordinator/calsweep" export demo --preset "$preset" --format json >"$dir/$preset.json" ||
        ! "$B/coordinator/calsweep" export demo --preset "$preset" --format csv >"$dir/$preset.csv" ||
        ! cp "$dir/results.json" "$dir/$preset.results.json"; then
        cs_say "calsweep export --preset $preset failed"; CALSWEEP_DEMO_KEEP=1; exit 1
    fi
    csv=$(grep -v '^#' "$dir/$preset.csv" | awk -F, -v col="$col" '
        NR == 1 { for (i = 1; i <= NF; i++) if (index($i, col) == 1 && $i !~ /\.std$/) keep[NF - i] = 1; next }
        { for (d in keep) if ($(NF - d) != "") printf "%.9f\n", $(NF - d) }' | sort)
    res=$(jq -r --arg p "$preset" '.rows[] | select($p == "selectors" or .values.seq_len != null)
        | .average.value // empty' "$dir/$preset.results.json" | awk '{ printf "%.9f\n", $1 }' | sort)
    if ! diff <(jq -S "$rows" "$dir/$preset.json") <(jq -S "$rows" "$dir/$preset.results.json") >/dev/null ||
        [ -z "$csv" ] || [ "$csv" != "$res" ] ||
        ! head -n 1 "$dir/$preset.csv" | grep -q "^# calsweep export: sweep demo (id [1-9]"; then
        cs_say "calsweep export --preset $preset: its numbers differ from calsweep results --json (folder kept)"
        CALSWEEP_DEMO_KEEP=1
        exit 1
    fi
    echo "  --preset $preset: $(wc -l <<<"$csv") table cells equal calsweep results --json"
done
n_failed=$("$B/coordinator/calsweep" jobs --json --sweep demo --state failed | jq '.total')
if [ "$n_failed" != 0 ]; then
    cs_say "$n_failed jobs failed: calsweep jobs --state failed; calsweep logs JOB (folder kept)"
    CALSWEEP_DEMO_KEEP=1
    exit 1
fi
