#!/usr/bin/env bash
# Several hosts on one machine: network namespaces joined by veth pairs (as root; skipped with the
# reason where namespaces cannot be made). calsweepd runs in one, each worker in its own, over
# tls+tcp:// with certificates made here by openssl the way deploy/README.md says. Checks: a
# sweep of the testbed completes on two workers; a worker whose certificate another CA signed is
# refused; cutting the link of the worker that runs a job makes its lease expire, and the job
# finishes on the other worker with one stored result (the cut worker's late RESULT, once its
# link is back, is refused as stale). Bounded by timeouts; namespaces and processes are removed
# on exit.
cd "$CS_SOURCE_DIR" || exit 1
n=0; fail=0
ok() { local m=${2//$'\n'/ | }; n=$((n+1)); if [ "$1" = 0 ]; then echo "ok $n - $m"; else echo "not ok $n - $m"; fail=1; fi; }
echo "1..7"
tag=cs$$
ns=("$tag-c" "$tag-1" "$tag-2" "$tag-3")
if [ "$(id -u)" != 0 ] || ! command -v ip >/dev/null || ! command -v openssl >/dev/null ||
    ! ip netns add "${ns[0]}" 2>/dev/null; then
    for _ in $(seq 8); do echo "ok - # SKIP needs root, ip and openssl, and network namespaces (ip netns add failed)"; done
    exit 0
fi
tmp=$(mktemp -d); pids=()
# shellcheck disable=SC2317 # called by the EXIT trap
cleanup() {
    local p x
    stop_all "${pids[@]}"
    for x in "${ns[@]}"; do ip netns del "$x" 2>/dev/null; done
    rm -rf "$tmp"
}
# stop_all PID...: SIGTERM, a second one after 1.2 s (a draining worker then hands its job back),
# SIGKILL for what is left after 5 s
# shellcheck disable=SC2317 # called from cleanup
stop_all() {
    local p i
    for p in "$@"; do kill -TERM "$p" 2>/dev/null; done
    sleep 1.2
    for p in "$@"; do kill -TERM "$p" 2>/dev/null; done
    for i in $(seq 50); do
        for p in "$@"; do kill -0 "$p" 2>/dev/null && break; done
        kill -0 "$p" 2>/dev/null || break
        sleep 0.1
    done
    for p in "$@"; do kill -KILL "$p" 2>/dev/null; wait "$p" 2>/dev/null; done
    : "$i"
}
trap cleanup EXIT
for x in "${ns[@]:1}"; do ip netns add "$x"; done
in_ns() { local x=$1; shift; ip netns exec "$x" "$@"; }
in_ns "${ns[0]}" ip link set lo up
# worker host k (1..3) <-> the coordinator: 10.77.k.2 <-> 10.77.k.1
for k in 1 2 3; do
    ip link add "$tag-c$k" netns "${ns[0]}" type veth peer name "$tag-w$k" netns "${ns[$k]}"
    in_ns "${ns[0]}" ip addr add "10.77.$k.1/24" dev "$tag-c$k"
    in_ns "${ns[0]}" ip link set "$tag-c$k" up
    in_ns "${ns[$k]}" ip addr add "10.77.$k.2/24" dev "$tag-w$k"
    in_ns "${ns[$k]}" ip link set "$tag-w$k" up
    in_ns "${ns[$k]}" ip link set lo up
done

# Certificates, as deploy/README.md makes them (the daemon's names every address workers dial,
# as IP and as DNS entries), and a second CA for the rogue worker.
(
    cd "$tmp" || exit 1
    key() { echo "-newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes"; }
    # shellcheck disable=SC2046 # key options as words
    openssl req -x509 $(key) -days 2 -subj "/CN=calsweep CA" -keyout ca.key -out ca.crt &&
    openssl req -x509 $(key) -days 2 -subj "/CN=other CA" -keyout other.key -out other.crt &&
    openssl req $(key) -subj "/CN=calsweepd" \
        -addext "subjectAltName=IP:10.77.1.1,DNS:10.77.1.1,IP:10.77.2.1,DNS:10.77.2.1,IP:10.77.3.1,DNS:10.77.3.1" \
        -keyout calsweepd.key -out calsweepd.csr &&
    openssl x509 -req -in calsweepd.csr -CA ca.crt -CAkey ca.key -CAcreateserial -days 2 \
        -copy_extensions copy -out calsweepd.crt &&
    openssl req $(key) -subj "/CN=worker" -keyout worker.key -out worker.csr &&
    openssl x509 -req -in worker.csr -CA ca.crt -CAkey ca.key -CAcreateserial -days 2 -out worker.crt &&
    openssl x509 -req -in worker.csr -CA other.crt -CAkey other.key -CAcreateserial -days 2 -out rogue.crt &&
    chmod 600 ./*.key
) >"$tmp/openssl.log" 2>&1
ok $? "openssl makes the CA and the certificates of deploy/README.md"

export CALSWEEP_CONTROL="ipc://$tmp/control.sock"
db="$tmp/calsweep.db"
q() { sqlite3 -readonly "$db" "$1" 2>/dev/null; }
cs() { timeout 60 "$CALSWEEP" --timeout-ms 20000 "$@"; }
tls=(--tls-cert "$tmp/worker.crt" --tls-key "$tmp/worker.key" --tls-ca "$tmp/ca.crt")
ip netns exec "${ns[0]}" timeout 600 "$CALSWEEPD" --db "$db" --work tls+tcp://0.0.0.0:5701 \
    --control "ipc://$tmp/control.sock" --tls-cert "$tmp/calsweepd.crt" --tls-key "$tmp/calsweepd.key" \
    --tls-ca "$tmp/ca.crt" --lease-s 3 --reap-ms 200 --claim-hold-ms 300 2>"$tmp/daemon.log" &
pids+=($!)
for _ in $(seq 100); do [ -S "$tmp/control.sock" ] && break; sleep 0.1; done
worker() { # k name runner model-root [extra...]
    local k=$1 name=$2 runner=$3 root=$4
    shift 4
    # (ip netns exec, not in_ns: $! must be the worker itself, for stop_all)
    ip netns exec "${ns[$k]}" "$CALSWEEP_WORKER" --coordinator "tls+tcp://10.77.$k.1:5701" \
        --name "$name" --runner "$runner" --model-root "$root" --threads 1 --no-cache \
        --work-dir "$tmp/work-$name" --heartbeat-ms 300 "$@" 2>"$tmp/$name.log" &
    pids+=($!)
}

# 1. a testbed sweep on two workers in two hosts
cs submit sweeps/cola-study-quick.json >/dev/null
worker 1 w1 "$CALSWEEP_RUN" sweeps/testbed/models "${tls[@]}"
worker 2 w2 "$CALSWEEP_RUN" sweeps/testbed/models "${tls[@]}"
total=$(q "SELECT count(*) FROM job")
for _ in $(seq 600); do
    [ "$(q "SELECT count(*) FROM job WHERE state = 'done'")" = "$total" ] && break
    sleep 0.2
done
[ "$total" -gt 0 ] && [ "$(q "SELECT count(*) FROM job WHERE state = 'done'")" = "$total" ]
ok $? "the testbed sweep ($total jobs) completes on workers in two other hosts over tls+tcp://"
[ "$(q "SELECT count(DISTINCT worker) FROM attempt")" = 2 ]
ok $? "both workers ran jobs ($(q "SELECT group_concat(worker || ':' || n, ' ') FROM (SELECT worker, count(*) AS n FROM attempt GROUP BY worker)"))"

# 2. a worker with a certificate of another CA is refused
in_ns "${ns[3]}" timeout 30 "$CALSWEEP_WORKER" --coordinator tls+tcp://10.77.3.1:5701 --name rogue \
    --model-root sweeps/testbed/models --work-dir "$tmp/work-rogue" --tls-cert "$tmp/rogue.crt" \
    --tls-key "$tmp/worker.key" --tls-ca "$tmp/ca.crt" --once 2>"$tmp/rogue.log"; rc=$?
[ $rc != 0 ] && grep -q "refused our certificate" "$tmp/rogue.log" &&
    [ "$(q "SELECT count(*) FROM worker WHERE id = 'rogue'")" = 0 ]
ok $? "a worker whose certificate another CA signed is refused (exit $rc: $(tail -n 1 "$tmp/rogue.log" | cut -c1-160))"

# 3. cut the link of the worker running a job: its lease expires and the other worker finishes it
stop_all "${pids[@]:1}"
pids=("${pids[0]}")
testrun="$CS_BUILD_DIR/tests/calsweep-testrun"
jq '.name = "hosts-cut" | .grid.test_sleep_ms = [5000] | .grid.test_i = [1]' \
    tests/data/sweeps-e2e/e2e-kill.json >"$tmp/cut.json"
cs submit "$tmp/cut.json" >/dev/null
job=$(q "SELECT j.id FROM job j JOIN sweep s ON s.id = j.sweep_id WHERE s.name = 'hosts-cut' AND j.baseline = 0")
worker 1 c1 "$testrun" tests/data/e2e-models "${tls[@]}"
for _ in $(seq 100); do [ "$(q "SELECT state FROM job WHERE id = $job")" = running ] && break; sleep 0.1; done
first=$(q "SELECT worker FROM job WHERE id = $job")
worker 2 c2 "$testrun" tests/data/e2e-models "${tls[@]}"
in_ns "${ns[1]}" ip link set "$tag-w1" down
for _ in $(seq 300); do [ "$(q "SELECT state FROM job WHERE id = $job")" = "done" ] && break; sleep 0.1; done
[ "$first" = c1 ] && [ "$(q "SELECT state || ' ' || worker FROM job WHERE id = $job")" = "done c2" ] &&
    [ "$(q "SELECT outcome FROM attempt WHERE job_id = $job AND n = 1")" = expired ]
ok $? "the link of $first cut mid-job: its lease expires and the job finishes on c2 ($(q "SELECT group_concat(n || ':' || worker || ':' || coalesce(outcome, '-'), ' ') FROM attempt WHERE job_id = $job"))"
in_ns "${ns[1]}" ip link set "$tag-w1" up
for _ in $(seq 100); do grep -q "stale\|ESTALE\|dropped" "$tmp/c1.log" && break; sleep 0.1; done
[ "$(q "SELECT count(*) FROM result WHERE job_id = $job")" = 1 ]
ok $? "one stored result: the cut worker's late report is refused once its link is back"
grep -qi "stale\|refused" "$tmp/c1.log"
ok $? "the cut worker logs its report as refused (stale lease)"
exit $fail
