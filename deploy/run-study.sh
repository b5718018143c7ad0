#!/usr/bin/env bash
# Runs one sweep to the end on this machine and keeps its database, for the tables and figures
# of docs/findings.md: `deploy/run-study.sh sweeps/acdm-study.json /tmp/acdm-study`.
#
# Installs what is missing and builds (as deploy/run-demo.sh), starts a private calsweepd (its
# database OUT/calsweep.db, sockets in OUT) and one calsweep-worker (--threads, default 2; the
# statistics cache in OUT/cache, shared by the jobs of one pool), submits SWEEP, prints progress
# every minute, and stops both when every job has finished. A second run on the same OUT finds
# the finished jobs in the database and runs only the rest. Afterwards read the results with
# `calsweep results NAME --db OUT/calsweep.db` (and export, plot), no daemon needed.
set -euo pipefail
# shellcheck source=deploy/lib.sh
. "$(dirname "$0")/lib.sh"

usage() { echo "usage: deploy/run-study.sh SWEEP OUT [--threads N]" >&2; exit 2; }
[ $# -ge 2 ] || usage
sweep=$1 out=$2 threads=2
shift 2
while [ $# -gt 0 ]; do
    case "$1" in
        --threads) [ $# -ge 2 ] || usage; threads=$2; shift 2 ;;
        *) usage ;;
    esac
done
[ -f "$sweep" ] || { echo "run-study: $sweep: no such sweep file" >&2; exit 2; }
sweep=$(cd "$(dirname "$sweep")" && pwd)/$(basename "$sweep")
mkdir -p "$out"
out=$(cd "$out" && pwd)

cs_install_deps
cs_build build
B="$CS_ROOT/build"
cd "$CS_ROOT" # sweep files name testbed paths relative to the repository root
name=$(jq -r .name "$sweep")

dpid='' wpid=''
stop() {
    local p
    for p in "$wpid" "$dpid"; do
        if [ -n "$p" ] && kill "$p" 2>/dev/null; then
            wait "$p" 2>/dev/null || true
        fi
    done
}
trap stop EXIT
export CALSWEEP_CONTROL="ipc://$out/control.sock" CALSWEEP_WORK="ipc://$out/work.sock"
rm -f "$out/control.sock" "$out/work.sock"
"$B/coordinator/calsweep" plan "$sweep" | head -8
"$B/coordinator/calsweepd" --db "$out/calsweep.db" 2>>"$out/calsweepd.log" &
dpid=$!
for _ in $(seq 100); do [ -S "$out/control.sock" ] && break; sleep 0.1; done
"$B/coordinator/calsweep" submit "$sweep" >/dev/null 2>&1 || true # already there: resumes
"$B/worker/calsweep-worker" --model-root sweeps/testbed/models --threads "$threads" \
    --work-dir "$out/work" --cache-dir "$out/cache" 2>>"$out/worker.log" &
wpid=$!

start=$(date +%s)
last=
while :; do
    st=$("$B/coordinator/calsweep" status --json "$name")
    read -r total finished failed <<<"$(jq -r '.sweeps[0].counts as $c | [([$c[]] | add), (($c.done // 0) + ($c.cached // 0) + ($c.failed // 0) + ($c.lost // 0) + ($c.cancelled // 0)), (($c.failed // 0) + ($c.lost // 0))] | @tsv' <<<"$st")"
    now=$(date +%s)
    if [ "$finished" != "$last" ] && { [ -z "$last" ] || [ $(( (now - start) % 60 )) -lt 5 ] || [ "$finished" -ge "$total" ]; }; then
        printf '  %d/%d jobs finished, %d failed, %ds\n' "$finished" "$total" "$failed" $((now - start)) >&2
        last=$finished
    fi
    [ "$finished" -ge "$total" ] && break
    if ! kill -0 "$wpid" 2>/dev/null || ! kill -0 "$dpid" 2>/dev/null; then
        cs_say "calsweepd or the worker stopped; see $out/*.log"
        exit 1
    fi
    sleep 5
done
cs_say "$name: $finished jobs in $(( $(date +%s) - start )) s; database $out/calsweep.db"
