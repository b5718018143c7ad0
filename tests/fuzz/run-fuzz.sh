#!/usr/bin/env bash
# run-fuzz.sh TARGET SEEDS WORKDIR SECONDS: run a libFuzzer target for a bounded time, keeping new
# inputs in WORKDIR; any crash, leak or timeout fails the test and leaves its input in WORKDIR.
set -u
target=$1 seeds=$2 work=$3 secs=$4
mkdir -p "$work/corpus"
# libFuzzer exits 77 on a crash by default, which meson counts as a skip: make it a failure.
exec "$target" -max_total_time="$secs" -timeout=10 -rss_limit_mb=2048 -max_len=65536 \
    -error_exitcode=1 -timeout_exitcode=1 \
    -print_final_stats=1 -artifact_prefix="$work/" "$work/corpus" "$seeds"
