#!/usr/bin/env bash
# What calsweep status and calsweep jobs tell about failures: a sweep with nothing left to run
# whose jobs all failed shows as failed with its progress at 100 % (finished jobs count, whatever
# their outcome), one partly failed says how many failed, and calsweep jobs has a LAST ERROR
# column (kind and first line of the reason, cut to 40 characters; --json has the text). The
# failures are written straight into the store, as a worker's permanent failures would end.
cd "$CS_SOURCE_DIR" || exit 1
n=0; fail=0
ok() { local m=${2//$'\n'/ | }; n=$((n+1)); if [ "$1" = 0 ]; then echo "ok $n - $m"; else echo "not ok $n - $m"; fail=1; fi; }
has() { case "$1" in *"$2"*) return 0;; *) return 1;; esac; }
cs() { timeout 40 "$CALSWEEP" --timeout-ms 15000 "$@"; }
sql() { timeout 20 sqlite3 "$tmp/calsweep.db" "PRAGMA busy_timeout=5000; $1" >/dev/null; }
echo "1..9"
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

# Every job failed: calsweepd's state is done (nothing left to run).
long="runner: exit 1: the model file is truncated at byte 4096 of 8192, expected more"
sql "UPDATE job SET state = 'failed', last_error = '$long' || char(10) || 'second line';
     UPDATE sweep SET state = 'done'"
out=$(cs status product); rc=$?
[ $rc = 0 ] && printf '%s\n' "$out" | grep -Eq '^1 +product +failed .*100% +9/9 '
ok $? "a done sweep whose jobs all failed shows failed, 100 %, 9/9 finished"
has "$out" "(9 failed, 0 lost: calsweep jobs --sweep 1 --state failed)"; ok $? "and says how many failed"
out=$(cs jobs --limit 1); rc=$?
[ $rc = 0 ] && has "$out" "LAST ERROR"; ok $? "jobs has a LAST ERROR column"
has "$out" " runner: exit 1: the model file is tru... "; ok $? "cut to 40 characters"
[ "$(cs jobs --json --limit 1 | jq -r '.jobs[0].last_error')" = "$long
second line" ]; ok $? "jobs --json has the whole error"

# Some done, some failed; a short error with a second line.
sql "UPDATE job SET state = 'done', last_error = NULL WHERE id > 3;
     UPDATE job SET last_error = 'oom' || char(10) || 'killed' WHERE id = 1"
out=$(cs status product)
printf '%s\n' "$out" | grep -Eq '^1 +product +done .*100% +9/9 ' && has "$out" "(3 failed, 0 lost"
ok $? "a partly failed sweep shows done and how many failed"
out=$(cs jobs --limit 4)
printf '%s\n' "$out" | grep -Eq '^1 .* oom\.\.\. ' && printf '%s\n' "$out" | grep -Eq '^4 .* done .* - '
ok $? "the first line of an error, '-' without one"
sql "UPDATE job SET state = 'queued'; UPDATE sweep SET state = 'active'"
printf '%s\n' "$(cs status product)" | grep -Eq '^1 +product +active .*0% +0/9 '
ok $? "a queued sweep is at 0 %"
[ $fail = 0 ]
