/* cs_net.c - see cs_net.h. */
#include "cs_net.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <nng/protocol/reqrep0/rep.h>
#include <nng/protocol/reqrep0/req.h>
#include <nng/supplemental/tls/tls.h>
#include <nng/supplemental/util/platform.h>
#include <stdatomic.h>
#include <sys/stat.h>

#include "cs_alloc.h"
#include "cs_log.h"
#include "cs_path.h"
#include "cs_time.h"

#define PEM_MAX ((size_t)1 << 20)

static const char *const endpoint_env[] = {"CALSWEEP_WORK", "CALSWEEP_CONTROL"};
static const char *const endpoint_file[] = {"work.sock", "control.sock"};

cs_rc cs_net_default_url(cs_net_endpoint which, char **out, cs_err *err)
{
    *out = NULL;
    if ((unsigned)which > CS_NET_CONTROL) {
        return cs_err_set(err, CS_EINVAL, 0, "unknown endpoint %d", (int)which);
    }
    const char *env = getenv(endpoint_env[which]);
    if (env != NULL && env[0] != '\0') {
        *out = cs_strdup(env);
        return *out ? CS_OK : cs_err_set(err, CS_ENOMEM, 0, "%s", endpoint_env[which]);
    }
    char *dir = NULL, *path = NULL;
    cs_rc rc = cs_path_runtime_dir(&dir, err);
    if (rc == CS_OK) {
        rc = cs_path_join(dir, endpoint_file[which], &path, err);
    }
    if (rc == CS_OK) {
        size_t n = strlen(path) + sizeof "ipc://";
        *out = malloc(n);
        if (*out == NULL) {
            rc = cs_err_set(err, CS_ENOMEM, 0, "endpoint URL");
        } else {
            snprintf(*out, n, "ipc://%s", path);
        }
    }
    free(path);
    free(dir);
    return rc;
}

typedef enum scheme { SCHEME_IPC, SCHEME_TCP, SCHEME_TLS, SCHEME_OTHER } scheme;

static scheme url_scheme(const char *url, const char **rest)
{
    static const struct {
        const char *prefix;
        scheme s;
    } known[] = {{"ipc://", SCHEME_IPC}, {"tcp://", SCHEME_TCP}, {"tls+tcp://", SCHEME_TLS}};
    for (size_t i = 0; i < sizeof known / sizeof known[0]; i++) {
        size_t n = strlen(known[i].prefix);
        if (strncmp(url, known[i].prefix, n) == 0) {
            *rest = url + n;
            return known[i].s;
        }
    }
    *rest = url;
    return SCHEME_OTHER;
}

/* Copies the host part of "host:port" or "[v6]:port" into buf; "" for a wildcard. */
static void url_host(const char *rest, char *buf, size_t cap)
{
    size_t n;
    if (rest[0] == '[') {
        const char *end = strchr(rest, ']');
        rest++;
        n = end ? (size_t)(end - rest) : strlen(rest);
    } else {
        const char *colon = strrchr(rest, ':');
        n = colon ? (size_t)(colon - rest) : strlen(rest);
    }
    if (n >= cap) {
        n = cap - 1;
    }
    memcpy(buf, rest, n);
    buf[n] = '\0';
}

static bool host_is_loopback(const char *host)
{
    return strcmp(host, "localhost") == 0 || strncmp(host, "127.", 4) == 0 ||
           strcmp(host, "::1") == 0;
}

static bool tls_complete(const cs_net_tls *tls)
{
    return tls != NULL && tls->cert != NULL && tls->key != NULL && tls->ca != NULL;
}

cs_rc cs_net_check_listen(const char *url, bool have_token, const cs_net_tls *tls, bool insecure,
                          cs_err *err)
{
    const char *rest;
    char host[256];
    switch (url_scheme(url, &rest)) {
    case SCHEME_IPC:
        if (rest[0] != '/') {
            return cs_err_set(err, CS_EINVAL, 0, "%s: an ipc:// endpoint needs an absolute path",
                              url);
        }
        return CS_OK;
    case SCHEME_TLS:
        if (!tls_complete(tls)) {
            return cs_err_set(err, CS_EAUTH, 0,
                              "%s: tls+tcp:// needs --tls-cert, --tls-key and --tls-ca", url);
        }
        return CS_OK;
    case SCHEME_TCP:
        url_host(rest, host, sizeof host);
        if (host_is_loopback(host) || have_token || insecure) {
            return CS_OK;
        }
        return cs_err_set(err, CS_EAUTH, 0,
                          "%s: refusing to listen on a non-loopback address without "
                          "authentication; add --token-file, use tls+tcp:// with --tls-cert/"
                          "--tls-key/--tls-ca, or pass --insecure",
                          url);
    case SCHEME_OTHER:
        break;
    }
    return cs_err_set(err, CS_EINVAL, 0,
                      "%s: unknown endpoint scheme (expected ipc://, tcp:// or tls+tcp://)", url);
}

static cs_rc nng_fail(cs_err *err, int rv, const char *what, const char *url)
{
    return cs_err_nng(err, rv, CS_ENET, "%s %s", what, url);
}

/* A TLS config from the files of tls; server: require the peer's certificate. */
static cs_rc tls_config(const cs_net_tls *tls, bool server, const char *host, nng_tls_config **out,
                        cs_err *err)
{
    char *cert = NULL, *key = NULL, *ca = NULL;
    nng_tls_config *cfg = NULL;
    cs_rc rc = CS_OK;
    int rv;
    *out = NULL;
    if (server && !tls_complete(tls)) {
        return cs_err_set(err, CS_EAUTH, 0, "TLS needs a certificate, a key and a CA");
    }
    if (tls->ca == NULL) {
        return cs_err_set(err, CS_EAUTH, 0, "TLS needs --tls-ca to check the peer");
    }
    if ((tls->cert == NULL) != (tls->key == NULL)) {
        return cs_err_set(err, CS_EINVAL, 0, "--tls-cert and --tls-key go together");
    }
    if ((rc = cs_path_read_file(tls->ca, PEM_MAX, &ca, NULL, err)) != CS_OK) {
        goto cleanup;
    }
    if (tls->cert != NULL &&
        ((rc = cs_path_read_file(tls->cert, PEM_MAX, &cert, NULL, err)) != CS_OK ||
         (rc = cs_path_read_file(tls->key, PEM_MAX, &key, NULL, err)) != CS_OK)) {
        goto cleanup;
    }
    if ((rv = nng_tls_config_alloc(&cfg, server ? NNG_TLS_MODE_SERVER : NNG_TLS_MODE_CLIENT))) {
        rc = nng_fail(err, rv, "TLS config for", host ? host : "listener");
        goto cleanup;
    }
    if ((rv = nng_tls_config_ca_chain(cfg, ca, NULL)) != 0) {
        rc = cs_err_nng(err, rv, CS_EAUTH, "%s: not a usable CA certificate", tls->ca);
        goto cleanup;
    }
    if (cert != NULL && (rv = nng_tls_config_own_cert(cfg, cert, key, NULL)) != 0) {
        rc = cs_err_nng(err, rv, CS_EAUTH, "%s, %s: not a usable certificate and key", tls->cert,
                        tls->key);
        goto cleanup;
    }
    if ((rv = nng_tls_config_auth_mode(cfg, NNG_TLS_AUTH_MODE_REQUIRED)) != 0 ||
        (host != NULL && host[0] != '\0' && (rv = nng_tls_config_server_name(cfg, host)) != 0)) {
        rc = nng_fail(err, rv, "TLS config for", host ? host : "listener");
        goto cleanup;
    }
    *out = cfg;
    cfg = NULL;
cleanup:
    if (cfg != NULL) {
        nng_tls_config_free(cfg);
    }
    free(cert);
    free(key);
    free(ca);
    return rc;
}

/* Creates and starts a listener for url on sock (the ipc folder exists). */
static cs_rc start_listener(nng_socket sock, const char *url, scheme sc, const cs_net_tls *tls,
                            nng_listener *out, cs_err *err)
{
    nng_listener l;
    nng_tls_config *cfg = NULL;
    cs_rc rc;
    int rv;
    if ((rv = nng_listener_create(&l, sock, url)) != 0) {
        return nng_fail(err, rv, "listen on", url);
    }
    if (sc == SCHEME_IPC && (rv = nng_listener_set_int(l, NNG_OPT_IPC_PERMISSIONS, 0600)) != 0) {
        rc = nng_fail(err, rv, "set permissions of", url);
        goto fail;
    }
    if (sc == SCHEME_TLS) {
        if ((rc = tls_config(tls, true, NULL, &cfg, err)) != CS_OK) {
            goto fail;
        }
        rv = nng_listener_set_ptr(l, NNG_OPT_TLS_CONFIG, cfg);
        nng_tls_config_free(cfg); /* the listener holds its own reference */
        if (rv != 0) {
            rc = nng_fail(err, rv, "TLS on", url);
            goto fail;
        }
    }
    if ((rv = nng_listener_start(l, 0)) != 0) {
        rc = nng_fail(err, rv, "listen on", url);
        goto fail;
    }
    if (out != NULL) {
        *out = l;
    }
    return CS_OK;
fail:
    nng_listener_close(l);
    return rc;
}

cs_rc cs_net_listen(nng_socket *sock, const char *url, const cs_net_tls *tls, cs_err *err)
{
    const char *rest;
    scheme sc = url_scheme(url, &rest);
    cs_rc rc = CS_OK;
    int rv;
    if (sc == SCHEME_OTHER) {
        return cs_err_set(err, CS_EINVAL, 0, "%s: unknown endpoint scheme", url);
    }
    if (sc == SCHEME_IPC) {
        char *dir = cs_strdup(rest);
        char *slash = dir ? strrchr(dir, '/') : NULL;
        if (dir == NULL) {
            return cs_err_set(err, CS_ENOMEM, 0, "%s", url);
        }
        if (slash != NULL && slash != dir) {
            *slash = '\0';
            rc = cs_path_mkdir_p(dir, 0700, err);
        }
        free(dir);
        if (rc != CS_OK) {
            return rc;
        }
    }
    if ((rv = nng_rep0_open(sock)) != 0) {
        return nng_fail(err, rv, "open REP socket for", url);
    }
    if ((rv = nng_socket_set_size(*sock, NNG_OPT_RECVMAXSZ, CS_LIMIT_MSG_RECV_BYTES)) != 0) {
        rc = nng_fail(err, rv, "listen on", url);
        goto fail;
    }
    if ((rc = start_listener(*sock, url, sc, tls, NULL, err)) != CS_OK) {
        goto fail;
    }
    return CS_OK;
fail:
    nng_close(*sock);
    *sock = (nng_socket)NNG_SOCKET_INITIALIZER;
    return rc;
}

cs_rc cs_net_dial(nng_socket *sock, const char *url, const cs_net_tls *tls, int resend_ms,
                  cs_err *err)
{
    const char *rest;
    scheme sc = url_scheme(url, &rest);
    nng_dialer d;
    nng_tls_config *cfg = NULL;
    cs_rc rc = CS_OK;
    int rv;
    if (sc == SCHEME_OTHER) {
        return cs_err_set(err, CS_EINVAL, 0, "%s: unknown endpoint scheme", url);
    }
    if ((rv = nng_req0_open(sock)) != 0) {
        return nng_fail(err, rv, "open REQ socket for", url);
    }
    if ((rv = nng_socket_set_size(*sock, NNG_OPT_RECVMAXSZ, CS_LIMIT_MSG_RECV_BYTES)) != 0 ||
        (resend_ms > 0 &&
         (rv = nng_socket_set_ms(*sock, NNG_OPT_REQ_RESENDTIME, (nng_duration)resend_ms)) != 0) ||
        (rv = nng_socket_set_ms(*sock, NNG_OPT_RECONNMINT, 100)) != 0 ||
        (rv = nng_socket_set_ms(*sock, NNG_OPT_RECONNMAXT, 2000)) != 0 ||
        (rv = nng_dialer_create(&d, *sock, url)) != 0) {
        rc = nng_fail(err, rv, "dial", url);
        goto fail;
    }
    if (sc == SCHEME_TLS) {
        char host[256];
        if (tls == NULL) {
            rc = cs_err_set(err, CS_EAUTH, 0,
                            "%s: tls+tcp:// needs --tls-ca (and --tls-cert, "
                            "--tls-key for the daemon to accept us)",
                            url);
            goto fail;
        }
        url_host(rest, host, sizeof host);
        if ((rc = tls_config(tls, false, host, &cfg, err)) != CS_OK) {
            goto fail;
        }
        rv = nng_dialer_set_ptr(d, NNG_OPT_TLS_CONFIG, cfg);
        nng_tls_config_free(cfg);
        if (rv != 0) {
            rc = nng_fail(err, rv, "TLS on", url);
            goto fail;
        }
    }
    if ((rv = nng_dialer_start(d, NNG_FLAG_NONBLOCK)) != 0) {
        rc = nng_fail(err, rv, "dial", url);
        goto fail;
    }
    return CS_OK;
fail:
    nng_close(*sock);
    *sock = (nng_socket)NNG_SOCKET_INITIALIZER;
    return rc;
}

cs_rc cs_net_token_load(const char *path, char **out, cs_err *err)
{
    struct stat st;
    char *text = NULL;
    *out = NULL;
    if (stat(path, &st) != 0) {
        return cs_err_errno(err, errno, "%s", path);
    }
    if ((st.st_mode & 077) != 0) {
        return cs_err_set(err, CS_EAUTH, 0,
                          "%s: a token file must not be readable by others (chmod 600 %s)", path,
                          path);
    }
    cs_rc rc = cs_path_read_file(path, 4096, &text, NULL, err);
    if (rc != CS_OK) {
        return rc;
    }
    size_t n = strcspn(text, "\n");
    while (n > 0 && (text[n - 1] == ' ' || text[n - 1] == '\t' || text[n - 1] == '\r')) {
        n--;
    }
    text[n] = '\0';
    if (n == 0) {
        free(text);
        return cs_err_set(err, CS_EAUTH, 0, "%s: the token is empty", path);
    }
    if (n > CS_PROTO_MAX_NAME) {
        free(text);
        return cs_err_set(err, CS_EAUTH, 0, "%s: the token is longer than %d bytes", path,
                          CS_PROTO_MAX_NAME);
    }
    *out = text;
    return CS_OK;
}

bool cs_net_token_eq(const char *expected, const char *got)
{
    if (expected == NULL) {
        return false;
    }
    size_t n = strlen(expected);
    size_t m = got != NULL ? strnlen(got, n + 1) : n + 1;
    unsigned diff = (unsigned)(m != n);
    for (size_t i = 0; i < n; i++) {
        unsigned char g = (got != NULL && i < m) ? (unsigned char)got[i] : 0;
        diff |= (unsigned)((unsigned char)expected[i] ^ g);
    }
    return diff == 0;
}

cs_rc cs_net_call(nng_socket sock, const cs_msg *req, cs_msg *rep, int timeout_ms, cs_err *err)
{
    char *buf = NULL;
    size_t len = 0;
    void *in = NULL;
    size_t in_len = 0;
    int rv;
    cs_msg_init(rep, CS_MSG_ERROR);
    cs_rc rc = cs_msg_encode(req, &buf, &len, err);
    if (rc != CS_OK) {
        return rc;
    }
    /* A connection reset before the reply (the daemon restarted, or dropped the connection)
     * sends the request once more, within the same time budget. */
    int64_t end = cs_time_mono_ms() + timeout_ms;
    for (int attempt = 0;; attempt++) {
        int64_t left = end - cs_time_mono_ms();
        if (left < 1) {
            left = 1;
        }
        if ((rv = nng_socket_set_ms(sock, NNG_OPT_SENDTIMEO, (nng_duration)left)) != 0 ||
            (rv = nng_socket_set_ms(sock, NNG_OPT_RECVTIMEO, (nng_duration)left)) != 0 ||
            (rv = nng_send(sock, buf, len, 0)) != 0 ||
            (rv = nng_recv(sock, &in, &in_len, NNG_FLAG_ALLOC)) != 0) {
            if (rv == NNG_ECONNRESET && attempt == 0 && cs_time_mono_ms() < end) {
                continue;
            }
            free(buf);
            return nng_fail(err, rv, "request", cs_msg_type_name(req->type));
        }
        break;
    }
    free(buf);
    rc = cs_msg_decode(in, in_len, rep, err);
    nng_free(in, in_len);
    return rc;
}

/* The number of connections (pipes) of sock, or -1 when nng's statistics do not say. */
static int64_t socket_pipes(nng_socket sock)
{
    nng_stat *all = NULL, *mine, *pipes;
    int64_t n = -1;
    if (nng_stats_get(&all) != 0) {
        return -1;
    }
    mine = nng_stat_find_socket(all, sock);
    pipes = mine != NULL ? nng_stat_find(mine, "pipes") : NULL;
    if (pipes != NULL) {
        n = (int64_t)nng_stat_value(pipes);
    }
    nng_stats_free(all);
    return n;
}

static void call_done(void *arg)
{
    atomic_store((atomic_int *)arg, 1);
}

cs_rc cs_net_call_watch(nng_socket sock, const cs_msg *req, cs_msg *rep, int timeout_ms,
                        int dead_ms, cs_err *err)
{
    char *buf = NULL;
    size_t len = 0;
    nng_aio *aio = NULL;
    nng_msg *in = NULL;
    atomic_int done = 0;
    int64_t down_since = 0, now;
    bool dead = false;
    int rv;
    cs_msg_init(rep, CS_MSG_ERROR);
    cs_rc rc = cs_msg_encode(req, &buf, &len, err);
    if (rc != CS_OK) {
        return rc;
    }
    int poll_ms = dead_ms / 10 < 10 ? 10 : dead_ms / 10 > 100 ? 100 : dead_ms / 10;
    if ((rv = nng_socket_set_ms(sock, NNG_OPT_SENDTIMEO, (nng_duration)timeout_ms)) != 0 ||
        (rv = nng_send(sock, buf, len, 0)) != 0 ||
        (rv = nng_aio_alloc(&aio, call_done, &done)) != 0) {
        free(buf);
        return nng_fail(err, rv, "request", cs_msg_type_name(req->type));
    }
    free(buf);
    nng_aio_set_timeout(aio, (nng_duration)timeout_ms);
    nng_recv_aio(sock, aio);
    while (!atomic_load(&done)) {
        nng_msleep((nng_duration)poll_ms);
        if (atomic_load(&done)) {
            break;
        }
        now = cs_time_mono_ms();
        if (socket_pipes(sock) != 0) {
            down_since = 0;
        } else if (down_since == 0) {
            down_since = now;
        } else if (now - down_since >= dead_ms) {
            dead = true;
            nng_aio_cancel(aio);
            break;
        }
    }
    nng_aio_wait(aio);
    rv = nng_aio_result(aio);
    if (rv == 0) {
        in = nng_aio_get_msg(aio);
    }
    nng_aio_free(aio);
    if (dead && in == NULL) {
        return cs_err_set(err, CS_ENET, NNG_ECLOSED,
                          "request %s: the peer closed the connection and did not come back "
                          "within %d ms",
                          cs_msg_type_name(req->type), dead_ms);
    }
    if (in == NULL) {
        return nng_fail(err, rv, "request", cs_msg_type_name(req->type));
    }
    rc = cs_msg_decode(nng_msg_body(in), nng_msg_len(in), rep, err);
    nng_msg_free(in);
    return rc;
}

/* ---- TLS failures ---------------------------------------------------------------------------- */

/* One test connection to url: TLS handshake with cfg, then the SP header of a REQ peer sent and
 * calsweepd's read (so its listener never sees a peer leave mid-handshake). 0 or an nng error. */
static int tls_probe(const char *url, nng_tls_config *cfg, int timeout_ms)
{
    static const uint8_t req_header[8] = {0, 'S', 'P', 0, 0, 0x30, 0, 0};
    uint8_t hdr[8], got[8];
    nng_stream_dialer *d = NULL;
    nng_stream *st = NULL;
    nng_aio *aio = NULL;
    nng_iov iov;
    int rv;
    memcpy(hdr, req_header, sizeof hdr);
    if ((rv = nng_stream_dialer_alloc(&d, url)) != 0 ||
        (rv = nng_stream_dialer_set_ptr(d, NNG_OPT_TLS_CONFIG, cfg)) != 0 ||
        (rv = nng_aio_alloc(&aio, NULL, NULL)) != 0) {
        goto out;
    }
    nng_aio_set_timeout(aio, (nng_duration)timeout_ms);
    nng_stream_dialer_dial(d, aio);
    nng_aio_wait(aio);
    if ((rv = nng_aio_result(aio)) != 0) {
        goto out;
    }
    st = nng_aio_get_output(aio, 0);
    for (int dir = 0; dir < 2; dir++) {
        size_t done = 0;
        while (done < sizeof hdr) {
            iov.iov_buf = (dir == 0 ? hdr : got) + done;
            iov.iov_len = sizeof hdr - done;
            if ((rv = nng_aio_set_iov(aio, 1, &iov)) != 0) {
                goto out;
            }
            if (dir == 0) {
                nng_stream_send(st, aio);
            } else {
                nng_stream_recv(st, aio);
            }
            nng_aio_wait(aio);
            if ((rv = nng_aio_result(aio)) != 0) {
                goto out;
            }
            done += nng_aio_count(aio);
        }
    }
out:
    if (st != NULL) {
        nng_stream_close(st);
        nng_stream_free(st);
    }
    nng_aio_free(aio);
    nng_stream_dialer_free(d);
    return rv;
}

/* A handshake failure, as opposed to nothing answering at all. */
static bool tls_failed(int rv)
{
    return rv == NNG_ECRYPTO || rv == NNG_EPEERAUTH || rv == NNG_ECONNSHUT || rv == NNG_ECLOSED ||
           rv == NNG_ECONNRESET || rv == NNG_ECONNABORTED;
}

static bool host_is_address(const char *host)
{
    return host[0] != '\0' &&
           (strchr(host, ':') != NULL || strspn(host, "0123456789.") == strlen(host));
}

cs_rc cs_net_tls_diagnose(const char *url, const cs_net_tls *tls, int timeout_ms, cs_err *err)
{
    const char *rest;
    char host[256];
    nng_tls_config *cfg = NULL;
    cs_err e = {0};
    int rv;
    if (url_scheme(url, &rest) != SCHEME_TLS || tls == NULL || tls->ca == NULL) {
        return CS_OK;
    }
    url_host(rest, host, sizeof host);
    /* 1: as calsweep connects. */
    if (tls_config(tls, false, host, &cfg, &e) != CS_OK) {
        return CS_OK;
    }
    rv = tls_probe(url, cfg, timeout_ms);
    nng_tls_config_free(cfg);
    if (!tls_failed(rv)) {
        return CS_OK;
    }
    cs_log(CS_LOG_DEBUG, "%s: TLS handshake: %s", url, nng_strerror(rv));
    /* 2: the chain only, not the name. */
    if (tls_config(tls, false, NULL, &cfg, &e) != CS_OK) {
        return CS_OK;
    }
    rv = tls_probe(url, cfg, timeout_ms);
    nng_tls_config_free(cfg);
    if (rv == 0) {
        if (host_is_address(host)) {
            return cs_err_set(err, CS_EAUTH, 0,
                              "TLS with %s failed: calsweepd's certificate does not name %s as a "
                              "DNS name (mbedTLS 2.28 ignores IP:%s in subjectAltName; add "
                              "DNS:%s)",
                              url, host, host, host);
        }
        return cs_err_set(err, CS_EAUTH, 0,
                          "TLS with %s failed: calsweepd's certificate does not name %s (connect "
                          "by a name its subjectAltName lists)",
                          url, host);
    }
    /* 3: no check of calsweepd's certificate: does calsweepd accept ours? */
    if (tls_config(tls, false, NULL, &cfg, &e) != CS_OK) {
        return CS_OK;
    }
    rv = nng_tls_config_auth_mode(cfg, NNG_TLS_AUTH_MODE_NONE);
    if (rv == 0) {
        rv = tls_probe(url, cfg, timeout_ms);
    }
    nng_tls_config_free(cfg);
    if (rv == 0) {
        return cs_err_set(err, CS_EAUTH, 0,
                          "TLS with %s failed: calsweepd's certificate is not signed by the CA "
                          "of --tls-ca %s",
                          url, tls->ca);
    }
    if (tls->cert == NULL) {
        return cs_err_set(err, CS_EAUTH, 0,
                          "TLS with %s failed: calsweepd requires a client certificate "
                          "(--tls-cert and --tls-key)",
                          url);
    }
    return cs_err_set(err, CS_EAUTH, 0,
                      "TLS with %s failed: calsweepd refused our certificate %s (not signed by "
                      "the CA of its --tls-ca?)",
                      url, tls->cert);
}

/* The sum of the "auth" counters of the listeners (or dialers) of socket id in the scope list. */
static uint64_t auth_failures(nng_stat *root, const char *kind, int id, const char **url)
{
    uint64_t n = 0;
    for (nng_stat *s = nng_stat_child(root); s != NULL; s = nng_stat_next(s)) {
        nng_stat *sock, *auth, *u;
        if (strcmp(nng_stat_name(s), kind) != 0) {
            continue;
        }
        sock = nng_stat_find(s, "socket");
        auth = nng_stat_find(s, "auth");
        u = nng_stat_find(s, "url");
        if (sock == NULL || auth == NULL || (int)nng_stat_value(sock) != id) {
            continue;
        }
        if (u != NULL && nng_stat_type(u) == NNG_STAT_STRING && url != NULL) {
            *url = nng_stat_string(u);
        }
        n += nng_stat_value(auth);
    }
    return n;
}

void cs_net_tls_log_failures(nng_socket sock, uint64_t *seen)
{
    nng_stat *all = NULL;
    const char *url = NULL;
    uint64_t n;
    if (nng_stats_get(&all) != 0) {
        return;
    }
    n = auth_failures(all, "listener", nng_socket_id(sock), &url);
    if (url != NULL && strncmp(url, "tls+tcp://", 10) == 0 && n > *seen) {
        cs_log(CS_LOG_WARN,
               "%s: %llu TLS handshake%s failed (a peer whose certificate is not signed by "
               "--tls-ca, that sent none, or that does not accept ours)",
               url, (unsigned long long)(n - *seen), n - *seen == 1 ? "" : "s");
    }
    if (n > *seen) {
        *seen = n;
    }
    nng_stats_free(all);
}
