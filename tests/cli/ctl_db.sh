#!/usr/bin/env bash
# calsweepd and its database: a second calsweepd on the same database is refused (naming the
# database, the lock file and the first daemon's pid) while the CLI's read-only access still works;
# a database file calsweepd may not write is refused at start, naming the file, before anything
# listens. Every command is bounded by `timeout`; the daemons are stopped on exit.
cd "$CS_SOURCE_DIR" || exit 1
n=0; fail=0
ok() { local m=${2//$'\n'/ | }; n=$((n+1)); if [ "$1" = 0 ]; then echo "ok $n - $m"; else echo "not ok $n - $m"; fail=1; fi; }
echo "1..9"
tmp=$(mktemp -d); pid=
cleanup() { [ -n "$pid" ] && kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null; rm -rf "$tmp"; }
trap cleanup EXIT
unset CALSWEEP_TOKEN_FILE CALSWEEP_DB
db="$tmp/calsweep.db"

timeout 120 "$CALSWEEPD" --db "$db" --work "ipc://$tmp/work.sock" --control "ipc://$tmp/control.sock" \
    2>"$tmp/daemon.log" &
pid=$!
for _ in $(seq 100); do [ -S "$tmp/control.sock" ] && break; sleep 0.1; done
[ -S "$tmp/control.sock" ]; ok $? "the first calsweepd listens"
timeout 40 "$CALSWEEP" --control "ipc://$tmp/control.sock" --timeout-ms 15000 submit \
    tests/data/sweeps/product.json >/dev/null; ok $? "and stores a sweep"

timeout 20 "$CALSWEEPD" --db "$db" --work "ipc://$tmp/work2.sock" --control "ipc://$tmp/control2.sock" \
    2>"$tmp/second.log"; rc=$?
[ $rc = 1 ]; ok $? "a second calsweepd on the same database exits 1"
dpid=$(head -n1 "$db.lock")
[ "$(cat "/proc/$dpid/comm" 2>/dev/null)" = calsweepd ] &&
    grep -qF "calsweepd: $db is in use by another calsweepd (pid $dpid) (it holds $db.lock)" "$tmp/second.log"
ok $? "naming the database, the first daemon's pid and the lock file"
[ ! -e "$tmp/control2.sock" ]; ok $? "and listens on nothing"
out=$(timeout 40 "$CALSWEEP" plan --db "$db" tests/data/sweeps/product.json 2>&1); rc=$?
[ $rc = 0 ] && case "$out" in *cached*) true;; *) false;; esac
ok $? "calsweep plan --db still reads the database of the running daemon"
kill "$pid"; wait "$pid"; pid=

# A database file calsweepd may not write. root writes any file: run calsweepd as nobody there.
rm -f "$db.lock" "$db-wal" "$db-shm"
chmod 444 "$db"; chmod 777 "$tmp"
as_user() { if [ "$(id -u)" = 0 ]; then setpriv --reuid=65534 --regid=65534 --clear-groups "$@"; else "$@"; fi; }
as_user timeout 20 "$CALSWEEPD" --db "$db" --work "ipc://$tmp/work3.sock" \
    --control "ipc://$tmp/control3.sock" 2>"$tmp/ro.log"; rc=$?
[ $rc = 1 ]; ok $? "a read-only database file: calsweepd exits 1 at start"
grep -qF "$db: the database file is read-only" "$tmp/ro.log"; ok $? "naming the file"
[ ! -e "$tmp/control3.sock" ]; ok $? "before it listens"
[ $fail = 0 ]
