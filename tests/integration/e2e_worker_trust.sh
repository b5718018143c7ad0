#!/usr/bin/env bash
# calsweep-worker and calsweep-run under a hostile or careless sweep file, end to end (calsweepd,
# calsweep-worker, `calsweep`):
# - paths: a sweep naming /etc/passwd, or a symlink out of the worker's --data-root, as a data
#   file fails bad_input naming the path, and no byte of the file reaches error.json, the stored
#   error, `calsweep jobs` or `calsweep logs`;
# - a failed attempt records its log file, so `calsweep logs` shows it;
# - a model whose weights are all NaN: its baseline fails bad_input naming the metric, not done
#   with "ppl": null;
# Bounded by timeouts.
cd "$CS_SOURCE_DIR" || exit 1
n=0; fail=0
ok() { n=$((n+1)); if [ "$1" = 0 ]; then echo "ok $n - $2"; else echo "not ok $n - $2"; fail=1; fi; }
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
tmp=$(mktemp -d); pid=; wp=
cleanup() {
    for p in $wp $pid; do kill -9 "$p" 2>/dev/null; wait "$p" 2>/dev/null; done
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
hostile h-link sweeps/testbed/data/tasks/arith_mc.eval.jsonl "$tmp/data/notes.txt" >"$tmp/h-link.json"
worker wpath --model-root sweeps/testbed/models --data-root "$tmp/data" --data-root sweeps/testbed/data
cs submit "$tmp/h-abs.json" >/dev/null && cs submit "$tmp/h-link.json" >/dev/null
ok $? "submit two sweeps naming /etc/passwd and a symlink to it as data files"
wait_for 60 h-abs '.failed == 1' && wait_for 60 h-link '.failed == 1'
ok $? "their jobs fail"
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
all="$err_abs$err_link$jobs_out$logs_out$errs$(q 'SELECT error FROM attempt')"
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

kill "$pid"; wait "$pid"; pid=
[ "$(sqlite3 "$tmp/calsweep.db" 'PRAGMA integrity_check')" = ok ] || fail=1
[ $fail = 0 ] || { for f in "$tmp"/*.log; do echo "# $f"; tail -n 15 "$f" | sed 's/^/# /'; done; }
echo "1..$n"
[ $fail = 0 ]
