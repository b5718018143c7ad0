#!/usr/bin/env bash
# `calsweep plot` without --db: calsweepd answers the RESULTS message and the figure is the one
# --db draws from the same database (byte for byte); an unreachable calsweepd exits 3 and writes
# nothing. Every command is bounded by `timeout`; the daemon is stopped on exit.
n=0; fail=0
ok() { local m=${2//$'\n'/ | }; n=$((n+1)); if [ "$1" = 0 ]; then echo "ok $n - $m"; else echo "not ok $n - $m"; fail=1; fi; }
echo "1..7"
tmp=$(mktemp -d); pid=
# shellcheck disable=SC2317 # called by the EXIT trap only
cleanup() { [ -n "$pid" ] && kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null; rm -rf "$tmp"; }
trap cleanup EXIT
unset CALSWEEP_TOKEN_FILE CALSWEEP_DB
db="$tmp/fx.db"
ctl="ipc://$tmp/control.sock"

"$PLOT_FIXTURE" "$db"; ok $? "plot_fixture writes the database"
timeout 120 "$CALSWEEPD" --db "$db" --work "ipc://$tmp/work.sock" --control "$ctl" \
    2>"$tmp/daemon.log" &
pid=$!
for _ in $(seq 100); do [ -S "$tmp/control.sock" ] && break; sleep 0.1; done
[ -S "$tmp/control.sock" ]; ok $? "calsweepd listens"

for fig in "heatmap --where selector=random" "nsamples --where seq_len=64"; do
    name=${fig%% *}
    # shellcheck disable=SC2086 # the options split on purpose
    timeout 40 "$CALSWEEP" --control "$ctl" --timeout-ms 15000 plot plotfx --figure $fig \
        -o "$tmp/$name-daemon.png" 2>"$tmp/err" &&
        timeout 40 "$CALSWEEP" plot --db "$db" plotfx --figure $fig -o "$tmp/$name-db.png" &&
        cmp -s "$tmp/$name-daemon.png" "$tmp/$name-db.png"
    ok $? "$name from calsweepd is the one from --db $(cat "$tmp/err")"
done
timeout 40 "$CALSWEEP" --control "$ctl" --timeout-ms 15000 plot plotfx -o "$tmp/x.svg" 2>"$tmp/err"; rc=$?
[ $rc = 1 ] && grep -q 'differ in selector' "$tmp/err"; ok $? "a refusal through calsweepd: exit 1 with the message"
kill "$pid"; wait "$pid"; pid=

timeout 40 "$CALSWEEP" --control "$ctl" --timeout-ms 500 plot plotfx -o "$tmp/y.svg" 2>/dev/null; rc=$?
[ $rc = 3 ]; ok $? "calsweepd unreachable: exit 3"
[ ! -e "$tmp/y.svg" ]; ok $? "and no file"
exit $fail
