#!/usr/bin/env bash
# deploy/: the systemd units pass `systemd-analyze verify` (their programs pointed at this build);
# the Kubernetes manifests parse as YAML and name only the image, Secret and volume claims that
# deploy/README.md explains; every option the units, the Slurm scripts and the manifests give
# calsweep-worker or calsweepd is one the program accepts; the exec template of deploy/README.md,
# copied from it verbatim, runs a job of an exec sweep through calsweepd and a worker (the
# job.json/result.json contract); the container image builds where podman or docker works.
# Tools that are missing make their checks skip with the reason.
cd "$CS_SOURCE_DIR" || exit 1
n=0; fail=0
ok() { local m=${2//$'\n'/ | }; n=$((n+1)); if [ "$1" = 0 ]; then echo "ok $n - $m"; else echo "not ok $n - $m"; fail=1; fi; }
skip() { n=$((n+1)); echo "ok $n - # SKIP $1"; }
tmp=$(mktemp -d); dpid='' wpid=''
# shellcheck disable=SC2317 # called by the EXIT trap
cleanup() {
    local p
    for p in "$wpid" "$dpid"; do
        if [ -n "$p" ] && kill "$p" 2>/dev/null; then wait "$p" 2>/dev/null; fi
    done
    rm -rf "$tmp"
}
trap cleanup EXIT
echo "1..9"

# systemd
if command -v systemd-analyze >/dev/null; then
    sed "s|/usr/local/bin/calsweepd|$CALSWEEPD|" deploy/systemd/calsweepd.service >"$tmp/calsweepd.service"
    sed "s|/usr/local/bin/calsweep-worker|$CALSWEEP_WORKER|" deploy/systemd/calsweep-worker@.service >"$tmp/calsweep-worker@0.service"
    out=$(systemd-analyze verify --man=no "$tmp/calsweepd.service" "$tmp/calsweep-worker@0.service" 2>&1); rc=$?
    [ $rc = 0 ] && [ -z "$out" ]; ok $? "systemd-analyze verify accepts both units ${out:0:300}"
else
    skip "systemd-analyze is not installed"
fi

# options given to the programs by the deployment files, each accepted by the program: the
# ExecStart lines of the units, the Slurm scripts' worker command (from "calsweep-worker --" to
# its "--log-json"), the manifests' command arrays
opts_of() { "$1" --help 2>&1 | grep -oE -- '--[a-z0-9-]+' | sort -u; }
k8s_cmd() { # the options of the manifests' containers whose command is $1
    node -e '
        const Y = require(process.argv[1]), fs = require("fs");
        for (const f of process.argv.slice(3))
            for (const d of Y.parseAllDocuments(fs.readFileSync(f, "utf8"))) {
                const walk = (o) => { if (o && typeof o === "object") {
                    if (Array.isArray(o.command) && o.command[0] === process.argv[2])
                        console.log(o.command.filter((x) => /^--/.test(x)).join("\n"));
                    Object.values(o).forEach(walk); } };
                walk(d.toJS());
            }' "$CS_SOURCE_DIR/tests/node/node_modules/yaml" "$1" deploy/k8s/*.yaml 2>/dev/null
}
used_worker=$( { grep -h '^ExecStart=' deploy/systemd/calsweep-worker@.service
    awk '/calsweep-worker --/,/--log-json/' deploy/slurm/*.sbatch; k8s_cmd calsweep-worker; } |
    grep -oE -- '--[a-z0-9-]+' | sort -u)
missing=$(comm -23 <(echo "$used_worker") <(opts_of "$CALSWEEP_WORKER") | tr '\n' ' ')
[ "$(wc -w <<<"$used_worker")" -ge 10 ] && [ -z "$missing" ]
ok $? "every calsweep-worker option the deployment files use exists ($(wc -w <<<"$used_worker") options) $missing"
used_d=$( { grep -h '^ExecStart=' deploy/systemd/calsweepd.service; k8s_cmd calsweepd; } |
    grep -oE -- '--[a-z0-9-]+' | sort -u)
missing=$(comm -23 <(echo "$used_d") <(opts_of "$CALSWEEPD") | tr '\n' ' ')
[ "$(wc -w <<<"$used_d")" -ge 5 ] && [ -z "$missing" ]
ok $? "every calsweepd option the deployment files use exists ($(wc -w <<<"$used_d") options) $missing"
bad=''
for f in deploy/slurm/*.sbatch; do bash -n "$f" || bad="$bad $f"; done
[ -z "$bad" ]; ok $? "the Slurm scripts parse$bad"

# Kubernetes
Y="$CS_SOURCE_DIR/tests/node/node_modules/yaml"
if command -v node >/dev/null && [ -d "$Y" ]; then
    out=$(node -e '
        const Y = require(process.argv[1]), fs = require("fs");
        const seen = {image: new Set(), secret: new Set(), claim: new Set()};
        const walk = (o) => { if (o && typeof o === "object") for (const [k, v] of Object.entries(o)) {
            if (k === "image") seen.image.add(v);
            if (k === "secretName") seen.secret.add(v);
            if (k === "claimName") seen.claim.add(v);
            walk(v); } };
        let bad = 0;
        for (const f of process.argv.slice(2)) {
            for (const d of Y.parseAllDocuments(fs.readFileSync(f, "utf8"))) {
                if (d.errors.length) { console.log(f + ": " + d.errors[0].message); bad++; continue; }
                const o = d.toJS();
                if (!o.apiVersion || !o.kind || !o.metadata) { console.log(f + ": a document without apiVersion, kind, metadata"); bad++; }
                walk(o);
            } }
        for (const k of Object.keys(seen)) console.log(k + " " + [...seen[k]].join(" "));
        process.exit(bad ? 1 : 0);' "$Y" deploy/k8s/*.yaml 2>&1); rc=$?
    ok $rc "the Kubernetes manifests parse as YAML, each document with apiVersion, kind and metadata"
    names=$(sed -n 's/^[a-z]* //p' <<<"$out" | tr ' ' '\n' | grep -v '^$')
    unexplained=$(for x in $names; do grep -qF -- "$x" deploy/README.md || echo "$x"; done)
    [ -n "$names" ] && [ -z "$unexplained" ]
    ok $? "deploy/README.md explains every image, Secret and claim they name ($(tr '\n' ' ' <<<"$names"))${unexplained:+ missing: $unexplained}"
else
    skip "node or its yaml package is missing (tests/run.sh installs them)"
    skip "node or its yaml package is missing"
fi

# The exec template of deploy/README.md, verbatim, on an exec sweep of the testbed
template=$(grep -oE -- "--exec-template '[^']+'" deploy/README.md | head -1 | sed -E "s/^--exec-template '(.*)'$/\\1/")
[ -n "$template" ]; ok $? "deploy/README.md gives an exec template ($template)"
jq '.name = "deploy-exec" | .models["tb-qwen"].backend = "exec"' sweeps/cola-study-quick.json |
    jq '.grid = {"algorithm": ["rtn"]} | .data.eval.default.limit = 5' >"$tmp/exec.json"
export CALSWEEP_CONTROL="ipc://$tmp/control.sock"
timeout 300 "$CALSWEEPD" --db "$tmp/db" --work "ipc://$tmp/work.sock" --control "ipc://$tmp/control.sock" \
    --claim-hold-ms 200 --reap-ms 200 2>"$tmp/daemon.log" &
dpid=$!
for _ in $(seq 100); do [ -S "$tmp/control.sock" ] && break; sleep 0.1; done
timeout 20 "$CALSWEEP" submit "$tmp/exec.json" >/dev/null
PATH="$(dirname "$CALSWEEP_RUN"):$PATH" timeout 280 "$CALSWEEP_WORKER" --coordinator "ipc://$tmp/work.sock" \
    --name ex --model-root sweeps/testbed/models --threads 2 --work-dir "$tmp/work" --no-cache \
    --heartbeat-ms 500 --exec-template "$template" 2>"$tmp/worker.log" &
wpid=$!
q() { sqlite3 -readonly "$tmp/db" "$1" 2>/dev/null; }
for _ in $(seq 600); do
    [ "$(q "SELECT count(*) FROM job WHERE state IN ('done','failed','lost')")" = 2 ] && break
    sleep 0.2
done
[ "$(q "SELECT count(*) FROM job WHERE state = 'done'")" = 2 ] &&
    [ "$(q "SELECT count(*) FROM result WHERE json_extract(json, '\$.engine_version') LIKE 'calsweep%'")" = 2 ]
ok $? "through it, the worker runs both jobs of an exec sweep and calsweepd stores calsweep-run's results"

# The container image
if command -v podman >/dev/null && podman info >/dev/null 2>&1; then b=podman
elif command -v docker >/dev/null && timeout 10 docker info >/dev/null 2>&1; then b=docker
else b=; fi
if [ -n "$b" ] && [ "${CS_CONTAINER_BUILD:-1}" = 1 ]; then
    timeout 1800 "$b" build -q -t calsweep-test -f deploy/container/Containerfile . >"$tmp/build.log" 2>&1 &&
        "$b" run --rm calsweep-test calsweep plan /srv/sweeps/demo.json >/dev/null 2>&1
    ok $? "the image builds with $b and runs calsweep plan inside"
else
    skip "no working podman or docker here (docker info fails: no daemon), so the image is not built"
fi
exit $fail
