#!/usr/bin/env bash
# The README's main command: install what is missing, build, and run the demo.
#
# What the demo does today: prints the versions of the four binaries, then checks and expands the
# shipped sweeps on the bundled testbed (`calsweep plan`). Running the demo sweep end to end needs
# the job runner (`calsweep-run JOB.json`: calibrate, quantize, evaluate), which is not built yet.
set -euo pipefail
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

for s in sweeps/gptq-nsamples-seqlen.json sweeps/selectors-compare.json; do
    cs_say "calsweep plan $s"
    "$B/coordinator/calsweep" plan "$s"
done

echo "not built yet: running the demo sweep (needs calsweep-run JOB.json: calibration, quantization, evaluation)"
