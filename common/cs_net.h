/* cs_net.h - the nng sockets of calsweep: endpoints, listen/dial with mutual TLS, the shared token.
 *
 * Endpoints (docs/architecture.md): the daemon listens on a work endpoint (workers, REP) and a
 * control endpoint (CLI, REP). Defaults are ipc:// sockets in the private runtime folder
 * ($XDG_RUNTIME_DIR/calsweep, mode 0700; the socket itself 0600); CALSWEEP_WORK and
 * CALSWEEP_CONTROL override them. Remote workers use tcp:// with a shared token (checked on every
 * request, in constant time) or tls+tcp:// with mutual TLS (CA, certificate and key files).
 *
 * The daemon refuses (cs_net_check_listen) a non-loopback tcp:// listener without a token unless
 * insecure, and a tls+tcp:// one without all three TLS files.
 */
#ifndef CS_COMMON_CS_NET_H
#define CS_COMMON_CS_NET_H

#include <stdbool.h>

#include <nng/nng.h>

#include "cs_err.h"
#include "cs_proto.h"

typedef enum cs_net_endpoint {
    CS_NET_WORK = 0,
    CS_NET_CONTROL,
} cs_net_endpoint;

/* Files for tls+tcp:// (PEM). All NULL = no TLS. The daemon needs cert, key and ca and requires
 * the peer's certificate; a worker or CLI needs ca (to check the daemon) and cert+key (its own). */
typedef struct cs_net_tls {
    const char *cert;
    const char *key;
    const char *ca;
} cs_net_tls;

/* The URL of an endpoint: the environment (CALSWEEP_WORK / CALSWEEP_CONTROL) or
 * ipc://<runtime dir>/calsweep/{work,control}.sock. Creates nothing. *out owned. */
cs_rc cs_net_default_url(cs_net_endpoint which, char **out, cs_err *err);

/* Whether the daemon may listen on url: a known scheme (ipc, tcp, tls+tcp); tcp on a non-loopback
 * address needs have_token or insecure; tls+tcp needs tls->cert, key and ca. CS_EAUTH/CS_EINVAL
 * with a message naming the URL and the option to add. */
cs_rc cs_net_check_listen(const char *url, bool have_token, const cs_net_tls *tls, bool insecure,
                          cs_err *err);

/* Opens a REP socket listening on url. For ipc:// the parent folder is created private (0700)
 * and the socket file made 0600. For tls+tcp:// a server TLS config with required peer
 * authentication. The receive limit is above CS_PROTO_MAX_BYTES. */
cs_rc cs_net_listen(nng_socket *sock, const char *url, const cs_net_tls *tls, cs_err *err);
/* Known problem of nng 1.5.2 (Debian 12), not worked around: a peer that connects and goes away
 * during the SP handshake can make the listener stop accepting for good (the transport fails the
 * socket's pending accept with NNG_ECLOSED, which the core takes as "listener closed"). Our own
 * clients avoid it (calsweep encodes a request before dialing); see docs/running.md. */

/* Opens a REQ socket dialing url asynchronously (nng reconnects on its own when the daemon
 * restarts). resend_ms: the REQ resend time (0 = nng's default). tls may be NULL. */
cs_rc cs_net_dial(nng_socket *sock, const char *url, const cs_net_tls *tls, int resend_ms,
                  cs_err *err);

/* After a request over tls+tcp:// got no answer: says what failed in the TLS handshake, from up
 * to three test connections (each completes the SP handshake before it closes): the full check;
 * the certificate chain without the name; no check of calsweepd's certificate at all. CS_OK when
 * url is not tls+tcp://, the handshake works, or nothing answers (not a TLS problem); CS_EAUTH with
 * a message naming what failed otherwise: calsweepd's certificate does not name the host, is not
 * signed by the CA of tls->ca, or calsweepd refused ours. An IP address is matched only against
 * the DNS names of the certificate (mbedTLS 2.28 of Debian 12 ignores IP entries of
 * subjectAltName): the message says to list it as DNS:ADDRESS. Blocks up to about 3 timeout_ms. */
cs_rc cs_net_tls_diagnose(const char *url, const cs_net_tls *tls, int timeout_ms, cs_err *err);

/* Logs a warning for the TLS handshakes that failed on the tls+tcp:// listeners of sock since the
 * last call (nng counts them; it tells neither the peer nor the reason). *seen: the count logged
 * so far, 0 at first. Nothing for other transports. One thread per seen. */
void cs_net_tls_log_failures(nng_socket sock, uint64_t *seen);

/* Reads a token file: its first line, trailing whitespace removed. Refuses a file that group or
 * others may read (CS_EAUTH naming the file and `chmod 600`), an empty token, or one longer than
 * CS_PROTO_MAX_NAME. *out owned. */
cs_rc cs_net_token_load(const char *path, char **out, cs_err *err);

/* Constant-time comparison (time depends only on the length of expected). got may be NULL. */
bool cs_net_token_eq(const char *expected, const char *got);

/* One synchronous request and reply on a REQ socket: encodes req, sends it, waits at most
 * timeout_ms for the reply and decodes it into rep (cs_msg_fini it). CS_ETIMEDOUT when no reply
 * came, CS_ENET for other nng errors, decode errors as cs_msg_decode reports them. */
cs_rc cs_net_call(nng_socket sock, const cs_msg *req, cs_msg *rep, int timeout_ms, cs_err *err);

/* The same for a request that may take long (a big SUBMIT): waits up to timeout_ms for the reply,
 * but gives up with CS_ENET ("... closed the connection ...") once the socket has had no
 * connection for dead_ms: calsweepd died and did not come back. When it comes back within
 * dead_ms, nng sends the request again on the new connection (so such a request must be
 * idempotent, as SUBMIT is). Polls the socket's nng statistics; where they are not available it
 * waits the whole timeout_ms, as cs_net_call does. Blocks; any thread. */
cs_rc cs_net_call_watch(nng_socket sock, const cs_msg *req, cs_msg *rep, int timeout_ms,
                        int dead_ms, cs_err *err);

#endif
