#!/usr/bin/env bash
# calsweep-worker's command line: bad values exit 2 naming the option, an unusable endpoint or
# token file is refused with a clear message, and --once against a daemon with nothing to do
# exits 0 at once. Bounded by timeouts.
cd "$CS_SOURCE_DIR" || exit 1
n=0; fail=0
ok() { n=$((n+1)); if [ "$1" = 0 ]; then echo "ok $n - $2"; else echo "not ok $n - $2"; fail=1; fi; }
has() { case "$1" in *"$2"*) return 0;; *) return 1;; esac; }
w() { timeout 20 "$CALSWEEP_WORKER" "$@"; }
echo "1..8"
tmp=$(mktemp -d); pid=
trap '[ -n "$pid" ] && kill "$pid" 2>/dev/null; wait 2>/dev/null; rm -rf "$tmp"' EXIT

out=$(w --heartbeat-ms 5 2>&1); rc=$?
[ $rc = 2 ] && has "$out" "heartbeat-ms"; ok $? "--heartbeat-ms 5 is refused with 2 ($out)"
out=$(w --max-jobs many 2>&1); rc=$?
[ $rc = 2 ] && has "$out" "max-jobs"; ok $? "--max-jobs many is refused with 2"
out=$(w --coordinator bogus://x --work-dir "$tmp/w" 2>&1); rc=$?
[ $rc = 1 ] && has "$out" "unknown endpoint scheme"; ok $? "an unknown scheme is refused"
out=$(w --coordinator tls+tcp://localhost:1 --work-dir "$tmp/w" 2>&1); rc=$?
[ $rc = 1 ] && has "$out" "tls-ca"; ok $? "tls+tcp:// without --tls-ca is refused"
printf 'tok\n' > "$tmp/token"; chmod 644 "$tmp/token"
out=$(w --token-file "$tmp/token" --work-dir "$tmp/w" 2>&1); rc=$?
[ $rc = 2 ] && has "$out" "chmod 600"; ok $? "a readable token file is refused"

timeout 60 "$CALSWEEPD" --db "$tmp/calsweep.db" --work "ipc://$tmp/work.sock" \
    --control "ipc://$tmp/control.sock" --claim-hold-ms 200 2>"$tmp/daemon.log" &
pid=$!
for _ in $(seq 100); do [ -S "$tmp/work.sock" ] && break; sleep 0.1; done
start=$(date +%s%N)
out=$(w --coordinator "ipc://$tmp/work.sock" --once --name lone --work-dir "$tmp/w" 2>&1); rc=$?
ms=$(( ($(date +%s%N) - start) / 1000000 ))
[ $rc = 0 ]; ok $? "--once with nothing to do exits 0"
[ $ms -lt 5000 ]; ok $? "... within 5 s ($ms ms)"
has "$out" "registered with ipc://$tmp/work.sock as lone"; ok $? "it registered under its --name"
[ $fail = 0 ] || { echo "# $out"; sed 's/^/# /' "$tmp/daemon.log" | tail -10; }
[ $fail = 0 ]
