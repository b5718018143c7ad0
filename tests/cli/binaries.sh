#!/usr/bin/env bash
# Every binary answers --help and --version with status 0 and refuses an unknown option with 2.
n=0; fail=0
ok() { local m=${2//$'\n'/ | }; n=$((n+1)); if [ "$1" = 0 ]; then echo "ok $n - $m"; else echo "not ok $n - $m"; fail=1; fi; }
echo "1..16"
for b in "$CALSWEEPD" "$CALSWEEP" "$CALSWEEP_WORKER" "$CALSWEEP_RUN"; do
    name=$(basename "$b")
    out=$("$b" --help 2>&1); ok $? "$name --help exits 0"
    case "$out" in *usage:*) ok 0 "$name --help prints usage";; *) ok 1 "$name --help prints usage";; esac
    out=$("$b" --version 2>&1); case "$out" in "$name 0."*) ok 0 "$name --version";; *) ok 1 "$name --version: $out";; esac
    "$b" --no-such-option >/dev/null 2>&1; [ $? -eq 2 ]; ok $? "$name refuses an unknown option with 2"
done
exit $fail
