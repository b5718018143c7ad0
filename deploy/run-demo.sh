#!/usr/bin/env bash
# The README's main command: install what is missing, build, and run the demo.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
cs_install_deps
cs_build build
B="$CS_ROOT/build"
for b in calsweepd calsweep calsweep-worker calsweep-run; do
    "$B/$(case $b in calsweepd) echo coordinator;; calsweep) echo coordinator/cli;; calsweep-worker) echo worker/agent;; calsweep-run) echo worker/run;; esac)/$b" --version
done
echo "not built yet: the demo sweep (coordinator, workers and engine arrive in later steps)"
