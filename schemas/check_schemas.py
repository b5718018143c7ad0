#!/usr/bin/env python3
"""Development check (needs python3-jsonschema and a built calsweep): the shipped and test sweeps
validate against sweep.schema.json, and every job config `calsweep plan --json` prints for them
validates against job.schema.json. Usage: schemas/check_schemas.py BUILD_DIR (from the repo root).
The C validator (coordinator/sweep/cs_sweep.c) checks more than the schema can (references, zip
lengths, exclude axes); the files in tests/data/sweeps-bad are mostly schema-valid on purpose."""
import glob
import json
import subprocess
import sys

import jsonschema

build = sys.argv[1] if len(sys.argv) > 1 else "build"
sweep_v = jsonschema.Draft202012Validator(json.load(open("schemas/sweep.schema.json")))
job_v = jsonschema.Draft202012Validator(json.load(open("schemas/job.schema.json")))
failed = 0
files = sorted(glob.glob("sweeps/*.json") + glob.glob("tests/data/sweeps/*.json"))
for f in files:
    for e in sweep_v.iter_errors(json.load(open(f))):
        print(f"{f}: {e.json_path}: {e.message[:200]}")
        failed += 1
    out = subprocess.run([f"{build}/coordinator/calsweep", "plan", "--json", "--examples", "1000", f],
                         capture_output=True, text=True, check=True).stdout
    for ex in json.loads(out)["examples"]:
        for e in job_v.iter_errors(ex["config"]):
            print(f"{f}: job {ex['key'][:12]}: {e.json_path}: {e.message[:200]}")
            failed += 1
print(f"{len(files)} sweeps checked, {failed} problems")
sys.exit(1 if failed else 0)
