#!/usr/bin/env bash
# summarize.sh TESTLOG.json... : count test cases from meson's testlog.json files.
# A TAP test counts each "ok"/"not ok" line (cmocka cases, not binaries); a test that failed without
# a "not ok" line (crash, timeout) counts one more failure; a test without TAP lines counts once.
# Prints "<passed> <failed> <skipped>".
set -euo pipefail
jq -rs '
  [ .[] | (.stdout // "") as $out
    | ($out | split("\n")) as $lines
    | ([ $lines[] | select(test("^ok [0-9]+")) | select(test("# (SKIP|skip)") | not) ] | length) as $ok
    | ([ $lines[] | select(test("^ok [0-9]+.*# (SKIP|skip)")) ] | length) as $skip
    | ([ $lines[] | select(test("^not ok [0-9]+")) ] | length) as $nok
    | (.result == "OK" or .result == "EXPECTEDFAIL") as $good
    | if ($ok + $nok + $skip) == 0 then
        (if .result == "SKIP" then {p:0,f:0,s:1} elif $good then {p:1,f:0,s:0} else {p:0,f:1,s:0} end)
      else
        {p:$ok, f:($nok + (if ($good | not) and $nok == 0 then 1 else 0 end)), s:$skip}
      end ]
  | "\(map(.p)|add // 0) \(map(.f)|add // 0) \(map(.s)|add // 0)"' "$@"
