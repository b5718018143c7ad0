#!/usr/bin/env bash
# calsweep and calsweepd over tls+tcp:// on an IP address, with certificates made by openssl at
# test time: a server certificate that lists the address as a DNS name too is served; one that
# lists it only as IP:ADDRESS (which mbedTLS 2.28 does not match) is refused with a message that
# says so; a client certificate of another CA, a wrong --tls-ca and no client certificate each
# get a message naming what failed (exit 1, not "calsweepd is not running"), and calsweepd logs
# the failed handshakes. A worker whose handshake fails exits 1 naming the cause instead of
# retrying in silence. Every command is bounded by `timeout`; the daemons are stopped on exit.
cd "$CS_SOURCE_DIR" || exit 1
n=0; fail=0
ok() { local m=${2//$'\n'/ | }; n=$((n+1)); if [ "$1" = 0 ]; then echo "ok $n - $m"; else echo "not ok $n - $m"; fail=1; fi; }
echo "1..12"
tmp=$(mktemp -d); pid=
cleanup() { [ -n "$pid" ] && kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null; rm -rf "$tmp"; }
trap cleanup EXIT
unset CALSWEEP_TOKEN_FILE CALSWEEP_CONTROL
# Below Linux's ephemeral range (32768..60999), where concurrent tests' outgoing connections
# take their local ports; two ports that nothing listens on (bash's /dev/tcp connects only to a
# listener).
port=$((10000 + $$ % 11000 * 2))
while (exec 3<>/dev/tcp/127.0.0.1/$port) 2>/dev/null || (exec 3<>/dev/tcp/127.0.0.1/$((port + 1))) 2>/dev/null; do
    port=$((port + 2))
done
url="tls+tcp://127.0.0.1:$port"
( cd "$tmp" &&
  openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj /CN=test-ca -keyout ca.key -out ca.crt &&
  openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj /CN=evil-ca -keyout evil.key -out evil.crt &&
  openssl req -newkey rsa:2048 -nodes -subj /CN=calsweepd -keyout server.key -out server.csr &&
  printf 'subjectAltName=IP:127.0.0.1,DNS:127.0.0.1\n' >both.ext &&
  printf 'subjectAltName=IP:127.0.0.1\n' >ip.ext &&
  openssl x509 -req -in server.csr -CA ca.crt -CAkey ca.key -CAcreateserial -days 2 -extfile both.ext -out both.crt &&
  openssl x509 -req -in server.csr -CA ca.crt -CAkey ca.key -CAcreateserial -days 2 -extfile ip.ext -out ip.crt &&
  openssl req -newkey rsa:2048 -nodes -subj /CN=cli -keyout client.key -out client.csr &&
  openssl x509 -req -in client.csr -CA ca.crt -CAkey ca.key -CAcreateserial -days 2 -out client.crt &&
  openssl x509 -req -in client.csr -CA evil.crt -CAkey evil.key -CAcreateserial -days 2 -out bad.crt
) >"$tmp/openssl.log" 2>&1 || { cat "$tmp/openssl.log" >&2; exit 1; }

start() { # server certificate
    timeout 120 "$CALSWEEPD" --db "$tmp/$1.db" --work "ipc://$tmp/work.sock" --control "$url" \
        --tls-cert "$tmp/$1.crt" --tls-key "$tmp/server.key" --tls-ca "$tmp/ca.crt" --reap-ms 200 \
        2>"$tmp/$1.log" &
    pid=$!
    for _ in $(seq 100); do grep -q "calsweepd listening" "$tmp/$1.log" && break; sleep 0.1; done
}
stop() { kill "$pid"; wait "$pid"; pid=; }
cs() { timeout 40 "$CALSWEEP" --control "$url" --timeout-ms 3000 "$@"; }
good=(--tls-cert "$tmp/client.crt" --tls-key "$tmp/client.key" --tls-ca "$tmp/ca.crt")

start both
cs "${good[@]}" status >/dev/null 2>"$tmp/err"; ok $? "an IP endpoint whose certificate lists the address as IP and DNS name is served"
cs --tls-cert "$tmp/bad.crt" --tls-key "$tmp/client.key" --tls-ca "$tmp/ca.crt" status >/dev/null 2>"$tmp/err"; rc=$?
[ $rc = 1 ] && grep -qF "calsweep status: TLS with $url failed: calsweepd refused our certificate $tmp/bad.crt" "$tmp/err"
ok $? "a client certificate of another CA: exit 1, calsweepd refused it"
cs --tls-cert "$tmp/client.crt" --tls-key "$tmp/client.key" --tls-ca "$tmp/evil.crt" status >/dev/null 2>"$tmp/err"; rc=$?
[ $rc = 1 ] && grep -qF "calsweepd's certificate is not signed by the CA of --tls-ca $tmp/evil.crt" "$tmp/err"
ok $? "a wrong --tls-ca: exit 1, naming it"
cs --tls-ca "$tmp/ca.crt" status >/dev/null 2>"$tmp/err"; rc=$?
[ $rc = 1 ] && grep -qF "calsweepd requires a client certificate (--tls-cert and --tls-key)" "$tmp/err"
ok $? "no client certificate: exit 1, saying one is required"
! grep -q "not running" "$tmp/err"; ok $? "never 'calsweepd is not running'"
for _ in $(seq 50); do grep -q "TLS handshake" "$tmp/both.log" && break; sleep 0.1; done
grep " warn " "$tmp/both.log" | grep -F "$url: " | grep -qE ": [0-9]+ TLS handshakes? failed"
ok $? "calsweepd logs the failed handshakes"
stop

start ip
cs "${good[@]}" status >/dev/null 2>"$tmp/err"; rc=$?
[ $rc = 1 ]; ok $? "a certificate that lists the address only as IP: exit 1"
grep -qF "calsweepd's certificate does not name 127.0.0.1 as a DNS name (mbedTLS 2.28 ignores IP:127.0.0.1 in subjectAltName; add DNS:127.0.0.1)" "$tmp/err"
ok $? "with a message that says why and what to add"
for _ in $(seq 50); do grep -q "TLS handshake" "$tmp/ip.log" && break; sleep 0.1; done
grep -q "TLS handshake" "$tmp/ip.log"; ok $? "calsweepd logs that handshake too"
stop

# A worker on a tls+tcp:// work endpoint with a wrong --tls-ca: it says why and gives up.
wurl="tls+tcp://127.0.0.1:$((port + 1))"
timeout 120 "$CALSWEEPD" --db "$tmp/w.db" --work "$wurl" --control "ipc://$tmp/control.sock" \
    --tls-cert "$tmp/both.crt" --tls-key "$tmp/server.key" --tls-ca "$tmp/ca.crt" --reap-ms 200 \
    2>"$tmp/w.log" &
pid=$!
for _ in $(seq 100); do grep -q "calsweepd listening" "$tmp/w.log" && break; sleep 0.1; done
worker() { timeout 60 "$CALSWEEP_WORKER" --coordinator "$wurl" --name w1 --model-root "$tmp" \
    --work-dir "$tmp/work" --tls-cert "$tmp/client.crt" --tls-key "$tmp/client.key" "$@"; }
worker --tls-ca "$tmp/evil.crt" 2>"$tmp/worker.err"; rc=$?
[ $rc = 1 ]; ok $? "a worker whose TLS handshake fails exits 1 (not retrying forever)"
grep -qF "TLS with $wurl failed: calsweepd's certificate is not signed by the CA of --tls-ca $tmp/evil.crt" "$tmp/worker.err"
ok $? "and says what failed"
worker --tls-ca "$tmp/ca.crt" --once 2>"$tmp/worker-good.err" &
wp=$!
for _ in $(seq 100); do grep -q "registered with" "$tmp/worker-good.err" && break; sleep 0.1; done
grep -q "registered with $wurl" "$tmp/worker-good.err"; ok $? "a worker with the right CA registers over TLS"
kill "$wp" 2>/dev/null; wait "$wp" 2>/dev/null
stop
[ $fail = 0 ]
