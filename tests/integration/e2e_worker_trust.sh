#!/usr/bin/env bash
# calsweep-worker and calsweep-run under a hostile or careless sweep file, end to end (calsweepd,
# calsweep-worker, `calsweep`):
# - paths: a sweep naming /etc/passwd, or a symlink out of the worker's --data-root, as a data
#   file fails bad_input naming the path, and no byte of the file reaches error.json, the stored
#   error, `calsweep jobs` or `calsweep logs`;
# - a failed attempt records its log file, so `calsweep logs` shows it;
# - a model whose weights are all NaN: its baseline fails bad_input naming the metric, not done
#   with "ppl": null;
# - the exec backend: a sweep saying "backend": "exec" is never handed to a worker without an
#   --exec-template, and a worker with one runs that command (a script that records that it ran
#   and writes result.json), not calsweep-run; a command template in the sweep is refused;
# - the job dies with its worker: SIGKILL a worker while its runner (or an exec command and its
#   own children) sleeps, and the job's whole process group is gone within a few seconds;
# Bounded by timeouts.
cd "$CS_SOURCE_DIR" || exit 1
n=0; fail=0
ok() { local m=${2//$'\n'/ | }; n=$((n+1)); if [ "$1" = 0 ]; then echo "ok $n - $m"; else echo "not ok $n - $m"; fail=1; fi; }
cs() { timeout 40 "$CALSWEEP" --timeout-ms 15000 "$@"; }
q() { sqlite3 -readonly "$tmp/calsweep.db" "$1" 2>/dev/null; }
# wait_for SECONDS SWEEP JQ-CONDITION-ON-COUNTS
wait_for() {
    local s=$1 sw=$2 f=$3
    for _ in $(seq $((s * 10))); do
        [ "$(cs status "$sw" --json 2>/dev/null | jq -r ".sweeps[0].counts | $f" 2>/dev/null)" = true ] && return 0
        sleep 0.1
    done
    return 1
}
tmp=$(cd "$(mktemp -d)" && pwd -P); pid=; wp=
cleanup() {
    for p in $wp $pid; do kill -9 "$p" 2>/dev/null; wait "$p" 2>/dev/null; done
    if [ -f "$tmp/groups" ]; then
        while read -r g; do kill -9 -- "-$g" 2>/dev/null; done <"$tmp/groups"
    fi
    rm -rf "$tmp"
}
trap cleanup EXIT
export CALSWEEP_CONTROL="ipc://$tmp/control.sock"
unset CALSWEEP_TOKEN_FILE
timeout 200 "$CALSWEEPD" --db "$tmp/calsweep.db" --work "ipc://$tmp/work.sock" \
    --control "$CALSWEEP_CONTROL" --reap-ms 200 --claim-hold-ms 200 --lease-s 20 \
    2>"$tmp/daemon.log" &
pid=$!
for _ in $(seq 100); do [ -S "$tmp/control.sock" ] && break; sleep 0.1; done
# worker NAME [OPTIONS]: one calsweep-worker in the background, its pid in $wp
worker() {
    local name=$1; shift
    timeout 200 "$CALSWEEP_WORKER" --coordinator "ipc://$tmp/work.sock" --name "$name" \
        --work-dir "$tmp/work-$name" --heartbeat-ms 200 --kill-grace-ms 300 --threads 1 \
        --no-cache "$@" 2>"$tmp/$name.log" &
    wp=$!
}
stop_worker() { kill "$wp" 2>/dev/null; wait "$wp" 2>/dev/null; wp=; }

# ---- hostile paths --------------------------------------------------------------------------
secret=$(head -c 24 /etc/passwd)
mkdir -p "$tmp/data"
ln -s /etc/passwd "$tmp/data/notes.txt"
cp sweeps/testbed/data/heldout.txt "$tmp/data/heldout.txt"
hostile() { # NAME TASK-PATH PPL-PATH
    cat <<JSON
{"name": "$1", "models": {"m": {"folder": "sweeps/testbed/models/tb-llama"}},
 "data": {"sources": {"c": {"kind": "text", "path": "$tmp/data/heldout.txt"}},
          "eval": {"default": {"tasks": {"t": {"path": "$2"}},
                               "perplexity": {"p": {"path": "$3", "seq_len": 64}}}}},
 "grid": {"algorithm": ["none"]}, "policy": {"max_attempts": 1}}
JSON
}
hostile h-abs /etc/passwd "$tmp/data/heldout.txt" >"$tmp/h-abs.json"
hostile h-src sweeps/testbed/data/tasks/arith_mc.eval.jsonl "$tmp/data/heldout.txt" |
    jq -c '.name = "h-src" | .data.sources.c = {"kind": "jsonl", "path": "/etc/passwd"} |
           .grid = {"algorithm": [{"name": "gptq", "bits": 4, "group_size": 32}], "n_samples": [4], "seq_len": [32]}' >"$tmp/h-src.json"
hostile h-link sweeps/testbed/data/tasks/arith_mc.eval.jsonl "$tmp/data/notes.txt" >"$tmp/h-link.json"
worker wpath --model-root sweeps/testbed/models --data-root "$tmp/data" --data-root sweeps/testbed/data
cs submit "$tmp/h-abs.json" >/dev/null && cs submit "$tmp/h-link.json" >/dev/null
ok $? "submit two sweeps naming /etc/passwd and a symlink to it as data files"
wait_for 60 h-abs '.failed == 1' && wait_for 60 h-link '.failed == 1'
ok $? "their jobs fail"
cs submit "$tmp/h-src.json" >/dev/null && wait_for 60 h-src '.failed == 1'
err_src=$(q "SELECT j.last_error FROM job j JOIN sweep s ON s.id = j.sweep_id WHERE s.name = 'h-src' AND j.state = 'failed'")
case "$err_src" in bad_input:*"calibration.source.path: /etc/passwd is outside the allowed roots"*) true;; *) false;; esac
ok $? "/etc/passwd as the calibration source: bad_input naming it ($(echo "$err_src" | head -1))"
err_abs=$(q "SELECT j.last_error FROM job j JOIN sweep s ON s.id = j.sweep_id WHERE s.name = 'h-abs'")
err_link=$(q "SELECT j.last_error FROM job j JOIN sweep s ON s.id = j.sweep_id WHERE s.name = 'h-link'")
case "$err_abs" in bad_input:*"eval.tasks.t.path: /etc/passwd is outside the allowed roots ("*"$tmp/data"*) true;; *) false;; esac
ok $? "an absolute path outside the data roots: bad_input naming the path and the roots ($(echo "$err_abs" | head -1))"
case "$err_link" in bad_input:*"eval.perplexity.p.path: $tmp/data/notes.txt is outside the allowed roots"*) true;; *) false;; esac
ok $? "a symlink out of a data root: bad_input naming the path ($(echo "$err_link" | head -1))"
jobs_out=$(cs jobs --json 2>&1); logs_out=$(for s in h-abs h-link; do
    id=$(q "SELECT j.id FROM job j JOIN sweep s ON s.id = j.sweep_id WHERE s.name = '$s'")
    cs logs "$id" 2>&1; done)
errs=$(cat "$tmp"/work-wpath/*/error.json 2>/dev/null)
[ -n "$errs" ] && [ -n "$logs_out" ]; ok $? "error.json and the logs are there to look at"
all="$err_abs$err_link$err_src$jobs_out$logs_out$errs$(q 'SELECT error FROM attempt')"
case "$all" in *"$secret"*|*"root:x:"*) false;; *) true;; esac
ok $? "no text of /etc/passwd in error.json, the stored errors, calsweep jobs or calsweep logs"
# a failed attempt records its log file: calsweep logs reads it on this machine
id=$(q "SELECT j.id FROM job j JOIN sweep s ON s.id = j.sweep_id WHERE s.name = 'h-abs'")
lp=$(q "SELECT log_path FROM attempt WHERE job_id = $id")
out=$(cs logs "$id" 2>&1)
[ "$lp" = "$tmp/work-wpath/$id-1/stderr.log" ]; ok $? "the failed attempt's log path is stored ($lp)"
case "$out" in *"not readable here"*) false;; *"calsweep-run: evaluate: eval.tasks.t.path"*) true;; *) false;; esac
ok $? "calsweep logs shows the failed attempt's log: $(echo "$out" | grep -m1 'calsweep-run:')"
stop_worker

# ---- non-finite metrics ---------------------------------------------------------------------
# tb-llama with every weight byte 0xFF: each bf16 weight is NaN
mkdir -p "$tmp/models/nan"
cp sweeps/testbed/models/tb-llama/*.json "$tmp/models/nan/"
st=sweeps/testbed/models/tb-llama/model.safetensors
hl=$(od -An -t u8 -N8 "$st" | tr -d ' ')
{ head -c $((8 + hl)) "$st"; head -c $(($(stat -c %s "$st") - 8 - hl)) /dev/zero | tr '\0' '\377'; } >"$tmp/models/nan/model.safetensors"
cat >"$tmp/nan.json" <<JSON
{"name": "nan", "models": {"m": {"folder": "$tmp/models/nan"}},
 "data": {"sources": {"c": {"kind": "text", "path": "sweeps/testbed/data/heldout.txt"}},
          "eval": {"default": {"perplexity": {"p": {"path": "sweeps/testbed/data/heldout.txt", "seq_len": 64}}}}},
 "grid": {"algorithm": ["none"]}, "policy": {"max_attempts": 1}}
JSON
worker wnan --model-root "$tmp/models"
cs submit "$tmp/nan.json" >/dev/null && wait_for 60 nan '.failed == 1'
ok $? "the baseline of an all-NaN model fails"
err_nan=$(q "SELECT j.last_error FROM job j JOIN sweep s ON s.id = j.sweep_id WHERE s.name = 'nan'")
case "$err_nan" in "bad_input: metrics.ppl:p.ppl is NaN"*) true;; *) false;; esac
ok $? "... as bad_input naming the metric ($(echo "$err_nan" | head -1))"
[ "$(jq -r '.kind + " " + .message' "$tmp"/work-wnan/*/error.json | cut -c1-35)" = "bad_input metrics.ppl:p.ppl is NaN:" ] &&
    [ "$(q "SELECT count(*) FROM result r JOIN job j ON j.id = r.job_id JOIN sweep s ON s.id = j.sweep_id WHERE s.name = 'nan'")" = 0 ] &&
    ! ls "$tmp"/work-wnan/*/result.json >/dev/null 2>&1
ok $? "error.json says so; no result.json, no stored result"
stop_worker

# ---- the exec backend ----------------------------------------------------------------------
mkdir -p "$tmp/marks"
cat >"$tmp/exec.sh" <<SH
#!/bin/sh
# the test's exec backend: records that it ran, then writes result.json (the runner contract)
echo "exec.sh: job \$CALSWEEP_JOB_ID attempt \$CALSWEEP_ATTEMPT with \$1" >&2
[ -f "\$1" ] || exit 3
touch "$tmp/marks/ran-\$CALSWEEP_JOB_ID"
printf '{"version":1,"metrics":{"exec":{"value":4242}},"calibration":null,"timings":{"total":0.1},"peak_rss_mb":1,"engine_version":"exec-test/1","host":"h"}\n' >result.json
SH
chmod +x "$tmp/exec.sh"
sweep_tiny() { # NAME BACKEND-JSON
    cat <<JSON
{"name": "$1", "models": {"tiny": {"folder": "tests/data/e2e-models/tiny", "backend": $2}},
 "data": {"sources": {"c": {"kind": "jsonl", "path": "tests/data/e2e-models/none.jsonl"}},
          "eval": {"default": {"tasks": {"t": {"path": "tests/data/e2e-models/none.jsonl"}}}}},
 "grid": {"algorithm": ["rtn"], "test_i": [1, 2]}, "policy": {"max_attempts": 1}}
JSON
}
sweep_tiny x-exec '"exec"' >"$tmp/x-exec.json"
sweep_tiny x-native '"native"' >"$tmp/x-native.json"
sweep_tiny x-tmpl '{"exec": "false"}' >"$tmp/x-tmpl.json"
out=$(cs submit "$tmp/x-tmpl.json" 2>&1); rc=$?
[ $rc = 1 ] && case "$out" in *'models.tiny.backend: expected "native" or "exec", got an object: a command template in a sweep file is not run'*) true;; *) false;; esac
ok $? "a command template in the sweep file is refused: $(echo "$out" | head -1)"
testrun="$CS_BUILD_DIR/tests/calsweep-testrun"
worker wn --model-root tests/data/e2e-models --runner "$testrun"
cs submit "$tmp/x-exec.json" >/dev/null && cs submit "$tmp/x-native.json" >/dev/null
wait_for 30 x-native '.done == 3'; ok $? "a worker without --exec-template runs the native sweep"
sleep 1
[ "$(cs status x-exec --json | jq -r '.sweeps[0].counts.queued')" = 3 ] &&
    [ "$(q "SELECT count(*) FROM attempt a JOIN job j ON j.id = a.job_id JOIN sweep s ON s.id = j.sweep_id WHERE s.name = 'x-exec'")" = 0 ]
ok $? "... and is never handed a job of the exec sweep (3 queued, no attempt)"
wnp=$wp
worker wx --model-root tests/data/e2e-models --runner "$testrun" --exec-template "$tmp/exec.sh \"\$1\""
wait_for 30 x-exec '.done == 3'; ok $? "a worker with --exec-template runs the exec sweep"
[ "$(find "$tmp/marks" -mindepth 1 -maxdepth 1 | wc -l)" = 3 ] &&
    [ "$(q "SELECT count(*) FROM attempt a JOIN job j ON j.id = a.job_id JOIN sweep s ON s.id = j.sweep_id WHERE s.name = 'x-exec' AND a.worker = 'wx'")" = 3 ]
ok $? "through the script: 3 marker files, every attempt on wx"
[ "$(q "SELECT count(*) FROM metric m JOIN job j ON j.id = m.job_id JOIN sweep s ON s.id = j.sweep_id WHERE s.name = 'x-exec' AND m.task = 'exec' AND m.value = 4242")" = 3 ] &&
    [ "$(q "SELECT count(*) FROM result r JOIN job j ON j.id = r.job_id JOIN sweep s ON s.id = j.sweep_id WHERE s.name = 'x-exec' AND json_extract(r.json, '$.engine_version') = 'exec-test/1'")" = 3 ]
ok $? "the stored results are the script's (metric exec.value 4242, engine exec-test/1)"
stop_worker; wp=$wnp; stop_worker
# calsweep-run itself refuses an exec job rather than run it natively
mkdir -p "$tmp/run-exec"
wx_jobs=("$tmp"/work-wx/*/job.json)
jq -c '.model.backend = "exec"' "${wx_jobs[0]}" >"$tmp/run-exec/job.json"
(cd "$tmp/run-exec" && "$CALSWEEP_RUN" job.json 2>/dev/null); rc=$?
[ $rc = 1 ] && [ "$(jq -r .kind "$tmp/run-exec/error.json")" = bad_input ] &&
    jq -r .message "$tmp/run-exec/error.json" | grep -q 'model.backend is "exec": calsweep-run runs only "native" jobs'
ok $? "calsweep-run refuses a job whose backend is exec: $(jq -r .message "$tmp/run-exec/error.json")"

# ---- the job dies with its worker -------------------------------------------------------------
# (the test runner sleeps 10 minutes in 10 steps: no progress write, so no SIGPIPE, in the test)
# From /proc (no ps needed): "PID STATE PPID PGRP" of every process
procs() {
    local f st
    for f in /proc/[0-9]*/stat; do
        st=$(cat "$f" 2>/dev/null) || continue
        # shellcheck disable=SC2086 # split the fields after "(comm)" into $1 $2 $3 on purpose
        set -- ${st##*) }
        echo "${f//[^0-9]/} $1 $2 $3"
    done
}
child_of() { procs | awk -v p="$1" '$3 == p { print $1; exit }'; }
group_of() { procs | awk -v p="$1" '$1 == p { print $4 }'; }
alive_in() { procs | awk -v g="$1" '$4 == g && $2 != "Z" { n++ } END { print n + 0 }'; }
sweep_tiny k-native '"native"' | jq -c '.name = "k-native" | .grid.test_sleep_ms = [600000] | .grid.test_i = [1]' >"$tmp/k-native.json"
sweep_tiny k-exec '"exec"' | jq -c '.name = "k-exec" | .grid.test_sleep_ms = [60000] | .grid.test_i = [1]' >"$tmp/k-exec.json"
cat >"$tmp/slow.sh" <<'SH'
#!/bin/sh
# an exec backend that starts a child of its own and waits: the whole group must die
sleep 60 &
wait
SH
chmod +x "$tmp/slow.sh"
kill_test() { # NAME SWEEP [WORKER OPTIONS]: SIGKILL the worker while its job runs
    local name=$1 sweep=$2; shift 2
    "$CALSWEEP_WORKER" --coordinator "ipc://$tmp/work.sock" --name "$name" \
        --work-dir "$tmp/work-$name" --heartbeat-ms 200 --threads 1 --no-cache \
        --model-root tests/data/e2e-models --runner "$testrun" "$@" 2>"$tmp/$name.log" &
    wp=$!
    cs submit "$tmp/$sweep.json" >/dev/null
    wait_for 30 "$sweep" '.running == 1'
    local child="" g="" n=0
    for _ in $(seq 100); do
        child=$(child_of "$wp")
        g=$(group_of "$child")
        n=$(alive_in "$g")
        [ -n "$g" ] && [ "$n" -ge 2 ] && break
        sleep 0.1
    done
    [ -n "$g" ] && echo "$g" >>"$tmp/groups" # for the cleanup, should the test fail
    kill -9 "$wp"; wait "$wp" 2>/dev/null; wp=
    for _ in $(seq 50); do [ "$(alive_in "$g")" = 0 ] && break; sleep 0.1; done
    echo "$n $(alive_in "$g")"
}
r=$(kill_test knat k-native)
[ "${r#* }" = 0 ] && [ "${r% *}" -ge 2 ]
ok $? "SIGKILL of a worker: its runner is gone within 5 s (processes in the job's group before/after: $r)"
r=$(kill_test kexec k-exec --exec-template "$tmp/slow.sh")
[ "${r#* }" = 0 ] && [ "${r% *}" -ge 3 ]
ok $? "... and an exec command with a child of its own: the whole group is gone (before/after: $r)"

# a runner that cannot be started is still named as such (the guard starts, the runner would not)
sweep_tiny s-spawn '"native"' | jq -c '.name = "s-spawn" | .grid.test_i = [7]' >"$tmp/s-spawn.json"
worker wspawn --model-root tests/data/e2e-models --runner /nonexistent/calsweep-run
cs submit "$tmp/s-spawn.json" >/dev/null && wait_for 30 s-spawn '.failed == 1'
err_spawn=$(q "SELECT j.last_error FROM job j JOIN sweep s ON s.id = j.sweep_id WHERE s.name = 's-spawn' AND j.state = 'failed'")
case "$err_spawn" in "spawn: cannot start /nonexistent/calsweep-run: "*) true;; *) false;; esac
ok $? "a runner that does not exist fails spawn naming it ($(echo "$err_spawn" | head -1))"
stop_worker

kill "$pid"; wait "$pid"; pid=
[ "$(sqlite3 "$tmp/calsweep.db" 'PRAGMA integrity_check')" = ok ] || fail=1
[ $fail = 0 ] || { for f in "$tmp"/*.log; do echo "# $f"; tail -n 15 "$f" | sed 's/^/# /'; done; }
echo "1..$n"
[ $fail = 0 ]
