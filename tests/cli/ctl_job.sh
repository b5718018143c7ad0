#!/usr/bin/env bash
# calsweep job: one job whole (JOB_INFO) from a real calsweepd: state, attempts with worker and
# exit, the last error, --json, and the reproduce lines, which are run here with a stand-in
# calsweep-run that keeps the job.json they write (it must be the job's config) and the
# CALSWEEP_BASE_DIR they give it (the folder they were typed in). An unknown job
# is exit 1 naming it; a missing or bad job id is a usage error. The failed attempt is written
# straight into the store, as a worker's failure would leave it.
cd "$CS_SOURCE_DIR" || exit 1
n=0; fail=0
ok() { local m=${2//$'\n'/ | }; n=$((n+1)); if [ "$1" = 0 ]; then echo "ok $n - $m"; else echo "not ok $n - $m"; fail=1; fi; }
has() { case "$1" in *"$2"*) return 0;; *) return 1;; esac; }
cs() { timeout 40 "$CALSWEEP" --timeout-ms 15000 "$@"; }
sql() { timeout 20 sqlite3 "$tmp/calsweep.db" "PRAGMA busy_timeout=5000; $1" >/dev/null; }
echo "1..11"
tmp=$(mktemp -d); pid=
cleanup() { [ -n "$pid" ] && kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null; rm -rf "$tmp"; }
trap cleanup EXIT
export CALSWEEP_CONTROL="ipc://$tmp/control.sock"
unset CALSWEEP_TOKEN_FILE

timeout 120 "$CALSWEEPD" --db "$tmp/calsweep.db" --work "ipc://$tmp/work.sock" \
    --control "ipc://$tmp/control.sock" 2>"$tmp/daemon.log" &
pid=$!
for _ in $(seq 100); do [ -S "$tmp/control.sock" ] && break; sleep 0.1; done
cs submit tests/data/sweeps/product.json >/dev/null; ok $? "submit"

now=$(($(date +%s) * 1000))
sql "INSERT INTO attempt (job_id, n, worker, host, started, ended, exit_status, signal, log_path,
                          outcome, error)
     VALUES (2, 1, 'w1', 'h1', $now - 90000, $now - 30000, 1, NULL, '/w/2-1/stderr.log',
             'failed', 'oom: out of memory');
     UPDATE job SET state = 'failed', attempt = 1, state_at = $now - 30000,
            last_error = 'oom: out of memory' || char(10) || '--- log tail ---' || char(10) || 'x'
      WHERE id = 2"
out=$(cs job 2); rc=$?
[ $rc = 0 ] && printf '%s\n' "$out" | grep -Eq '^job 2  sweep product \(1\)  failed  attempt 1/[0-9]+$'
ok $? "the head line: job, sweep, state, attempt"
printf '%s\n' "$out" | grep -Eq '^  1 +w1 +h1 +(9[0-9]s|1m) ago +1m00s +failed +1 +oom: out of memory$'
ok $? "the attempt: worker, host, start, duration, outcome, exit, error"
has "$out" "error     oom: out of memory" && has "$out" "log       /w/2-1/stderr.log (calsweep logs 2)"
ok $? "the last error's first line and the log path"
has "$out" "axes      algorithm={" && has "$out" " seed=0"; ok $? "the axes"
j=$(cs job 2 --json)
[ "$(printf '%s' "$j" | jq -r '[.sweep, .state, .attempts[0].outcome, .attempts[0].exit_status,
      .attempts[0].signal, (.config | type), .created_ms > 0] | map(tostring) | join(" ")')" = \
  "product failed failed 1 null object true" ]
ok $? "--json: the job whole"

# The reproduce lines write job.json and run calsweep-run on it (a stand-in here).
mkdir -p "$tmp/bin" "$tmp/run"
# shellcheck disable=SC2016 # $1 and $CALSWEEP_BASE_DIR belong to the stand-in script, not here
printf '#!/bin/sh\ncp "$1" "%s/seen.json"\necho "$CALSWEEP_BASE_DIR" >"%s/base"\n' "$tmp" "$tmp" \
    >"$tmp/bin/calsweep-run"
chmod +x "$tmp/bin/calsweep-run"
(cd "$tmp/run" && PATH="$tmp/bin:$PATH" bash -c "$(printf '%s' "$j" | jq -r .reproduce)") &&
  [ "$(jq -cS . "$tmp/seen.json")" = "$(printf '%s' "$j" | jq -cS .config)" ] &&
  [ -f "$tmp/run/job-2/job.json" ] && [ "$(cat "$tmp/base")" = "$tmp/run" ]
ok $? "the reproduce lines write the config to job-2/job.json and run calsweep-run on it, relative paths against the folder they were typed in"

# The real calsweep-run on a testbed job (tiny sizes): the lines typed in a scratch folder, the
# config's relative paths resolved against the repository as a worker started there would.
cs submit tests/data/sweeps-results/e2e-results.json >/dev/null
id=$(cs jobs --sweep e2e-results --json --limit 2 | jq '.jobs[1].id')
mkdir -p "$tmp/real" "$tmp/rbin"
ln -sf "$CALSWEEP_RUN" "$tmp/rbin/calsweep-run"
(cd "$tmp/real" && CALSWEEP_BASE_DIR="$CS_SOURCE_DIR" PATH="$tmp/rbin:$PATH" timeout 120 \
    bash -c "$(cs job "$id" --json | jq -r .reproduce)" >"$tmp/real.log" 2>&1) &&
  jq -e '.metrics | length > 0' "$tmp/real/job-$id/result.json" >/dev/null
r=$?; why=; [ $r = 0 ] || why=": $(tail -c 300 "$tmp/real.log" 2>/dev/null)"
ok $r "the reproduce lines of a testbed job run the real calsweep-run to a result.json$why"

out=$(cs job 1); has "$out" "attempts  none yet" && has "$out" "queued"
ok $? "a job that never ran has no attempts"
out=$(cs job 999 2>&1); rc=$?
[ $rc = 1 ] && has "$out" "no job 999"; ok $? "an unknown job: exit 1 naming it ($rc)"
cs job >/dev/null 2>&1; rc1=$?; cs job x >/dev/null 2>&1; rc2=$?
[ $rc1 = 2 ] && [ $rc2 = 2 ]; ok $? "no job id or a bad one: usage error ($rc1 $rc2)"
[ $fail = 0 ]
