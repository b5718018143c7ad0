/* cs_client.c - see cs_client.h. */
#include "cs_client.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sys/stat.h>

#include "cs_alloc.h"
#include "cs_cli.h"

static const cs_opt client_options[CS_CLIENT_N_OPTIONS] = {
        {"control", 0, CS_OPT_VALUE, CS_CLIENT_OPT_CONTROL, "URL",
         "calsweepd's control endpoint (env CALSWEEP_CONTROL)"},
        {"token-file", 0, CS_OPT_VALUE, CS_CLIENT_OPT_TOKEN_FILE, "FILE",
         "shared token, first line (env CALSWEEP_TOKEN_FILE)"},
        {"tls-cert", 0, CS_OPT_VALUE, CS_CLIENT_OPT_TLS_CERT, "FILE",
         "client certificate (PEM) for tls+tcp://"},
        {"tls-key", 0, CS_OPT_VALUE, CS_CLIENT_OPT_TLS_KEY, "FILE", "its private key (PEM)"},
        {"tls-ca", 0, CS_OPT_VALUE, CS_CLIENT_OPT_TLS_CA, "FILE",
         "CA that signed calsweepd's certificate (PEM)"},
        {"timeout-ms", 0, CS_OPT_VALUE, CS_CLIENT_OPT_TIMEOUT_MS, "N",
         "wait at most N ms for calsweepd (5000)"},
};

size_t cs_client_options(cs_opt *out, const cs_opt *own, size_t n_own)
{
    size_t n = 0;
    for (size_t i = 0; i < n_own && n < CS_CLIENT_MAX_OPTIONS; i++) {
        out[n++] = own[i];
    }
    for (size_t i = 0; i < CS_CLIENT_N_OPTIONS && n < CS_CLIENT_MAX_OPTIONS; i++) {
        out[n++] = client_options[i];
    }
    return n;
}

int cs_client_take_option(cs_client *c, int id, const char *arg, const char *cmd)
{
    cs_err err = {0};
    int64_t v;
    switch (id) {
    case CS_CLIENT_OPT_CONTROL:
        c->control = arg;
        return CS_EXIT_OK;
    case CS_CLIENT_OPT_TOKEN_FILE:
        c->token_file = arg;
        return CS_EXIT_OK;
    case CS_CLIENT_OPT_TLS_CERT:
        c->tls.cert = arg;
        return CS_EXIT_OK;
    case CS_CLIENT_OPT_TLS_KEY:
        c->tls.key = arg;
        return CS_EXIT_OK;
    case CS_CLIENT_OPT_TLS_CA:
        c->tls.ca = arg;
        return CS_EXIT_OK;
    case CS_CLIENT_OPT_TIMEOUT_MS:
        if (cs_parse_i64(arg, 1, 3600000, &v, "--timeout-ms", &err) != CS_OK) {
            fprintf(stderr, "calsweep %s: %s\n", cmd, err.msg);
            return CS_EXIT_USAGE;
        }
        c->timeout_ms = (int)v;
        return CS_EXIT_OK;
    default:
        return -1;
    }
}

static int unreachable(const char *url)
{
    fprintf(stderr, "calsweepd is not running at %s; start it with: calsweepd &\n", url);
    return CS_EXIT_UNREACHABLE;
}

/* No answer in time: either nothing listens (nng dials in the background) or the daemon is busy. */
static int no_answer(const char *url, int timeout_ms)
{
    fprintf(stderr,
            "calsweepd is not running at %s, or did not answer within %.1f s (--timeout-ms); "
            "start it with: calsweepd &\n",
            url, timeout_ms / 1000.0);
    return CS_EXIT_UNREACHABLE;
}

/* No reply: over tls+tcp:// a failed TLS handshake is told as what it is (exit 1), not as a
 * calsweepd that is not running. */
static int no_reply(const char *cmd, const char *url, const cs_net_tls *tls, int timeout_ms,
                    cs_rc rc)
{
    cs_err err = {0};
    if (tls != NULL && cs_net_tls_diagnose(url, tls, timeout_ms, &err) != CS_OK) {
        fprintf(stderr, "calsweep %s: %s\n", cmd, err.msg);
        return CS_EXIT_FAIL;
    }
    return rc == CS_ETIMEDOUT ? no_answer(url, timeout_ms) : unreachable(url);
}

/* Prints an ERROR reply: a schema error one diagnostic per line. */
static void print_error(const char *cmd, const char *source, const cs_msg_error *e)
{
    const char *p = e->message ? e->message : "";
    if (e->code == CS_ESCHEMA && strchr(p, '\n')) {
        size_t lines = 0;
        while (*p) {
            const char *nl = strchr(p, '\n');
            size_t n = nl ? (size_t)(nl - p) : strlen(p);
            fprintf(stderr, "%s%serror: %.*s\n", source ? source : "", source ? ": " : "", (int)n,
                    p);
            p += n + (nl != NULL);
            lines++;
        }
        fprintf(stderr, "calsweep %s: %s%s%zu errors; nothing was changed\n", cmd,
                source ? source : "", source ? ": " : "", lines);
        return;
    }
    fprintf(stderr, "calsweep %s: %s%s%s\n", cmd, source ? source : "", source ? ": " : "",
            p[0] ? p : cs_rc_str(e->code));
}

/* Resolves the control URL (--control or the default) into *url and loads the token, if any, into
 * *token and req->token; refuses a request that cannot be encoded (an unknown --state, ...)
 * before dialing. Returns CS_EXIT_OK or the exit code, after printing why. */
static int prepare(const cs_client *c, const char *cmd, cs_msg *req, char **url, char **token)
{
    const char *token_file = c->token_file ? c->token_file : getenv("CALSWEEP_TOKEN_FILE");
    cs_err err = {0};
    cs_rc rc;
    if (c->control && c->control[0]) {
        *url = cs_strdup(c->control);
        rc = *url ? CS_OK : cs_err_set(&err, CS_ENOMEM, 0, "out of memory");
    } else {
        rc = cs_net_default_url(CS_NET_CONTROL, url, &err);
    }
    if (rc != CS_OK) {
        fprintf(stderr, "calsweep %s: %s\n", cmd, err.msg);
        return CS_EXIT_FAIL;
    }
    if (token_file && token_file[0]) {
        if (cs_net_token_load(token_file, token, &err) != CS_OK) {
            fprintf(stderr, "calsweep %s: %s\n", cmd, err.msg);
            return CS_EXIT_FAIL;
        }
        req->token = *token;
    }
    char *text = NULL;
    size_t len = 0;
    if (cs_msg_encode(req, &text, &len, &err) != CS_OK) {
        fprintf(stderr, "calsweep %s: %s\n", cmd, err.msg);
        return CS_EXIT_FAIL;
    }
    free(text);
    return CS_EXIT_OK;
}

/* A request that may take long_ms (> timeout): a cheap request first (no answer within the
 * timeout means calsweepd is not there; it carries token), then req watched for up to long_ms.
 * Returns CS_EXIT_OK with *rc and *rep the call's result, or the exit code to stop with after
 * printing why. */
static int call_watched(nng_socket sock, const char *cmd, const char *url, const cs_net_tls *tls,
                        char *token, cs_msg *req, cs_msg *rep, int long_ms, int timeout, cs_rc *rc,
                        cs_err *err)
{
    cs_msg ping;
    cs_msg_init(&ping, CS_MSG_WORKERS);
    ping.token = token;
    *rc = cs_net_call(sock, &ping, rep, timeout, err);
    if (*rc == CS_ETIMEDOUT || *rc == CS_ENET) {
        return no_reply(cmd, url, tls, timeout, *rc);
    }
    if (*rc == CS_OK && rep->type == CS_MSG_ERROR) {
        print_error(cmd, NULL, &rep->error);
        return CS_EXIT_FAIL;
    }
    cs_msg_fini(rep);
    memset(rep, 0, sizeof(*rep));
    *rc = cs_net_call_watch(sock, req, rep, long_ms, timeout, err);
    if (*rc == CS_ENET) {
        fprintf(stderr,
                "calsweep %s: calsweepd at %s went away while handling the request and did "
                "not come back within %.1f s (--timeout-ms); it may or may not have been "
                "done: once calsweepd runs again, see calsweep status (sending the same sweep "
                "file again is safe)\n",
                cmd, url, timeout / 1000.0);
        return CS_EXIT_UNREACHABLE;
    }
    if (*rc == CS_ETIMEDOUT) {
        fprintf(stderr,
                "calsweep %s: calsweepd at %s did not answer within %d s; it may still be "
                "working on it: see calsweep status\n",
                cmd, url, long_ms / 1000);
        return CS_EXIT_FAIL;
    }
    return CS_EXIT_OK;
}

/* The exit code of a call that returned rc and rep; *data = the OK reply's data (owned). */
static int take_reply(const char *cmd, const char *url, const char *source, const cs_net_tls *tls,
                      int timeout, cs_rc rc, const cs_msg *rep, const cs_err *err, cJSON **data)
{
    if (rc == CS_ETIMEDOUT || rc == CS_ENET) {
        return no_reply(cmd, url, tls, timeout, rc);
    }
    if (rc != CS_OK) {
        fprintf(stderr, "calsweep %s: bad reply from %s: %s\n", cmd, url, err->msg);
        return CS_EXIT_FAIL;
    }
    if (rep->type == CS_MSG_ERROR) {
        print_error(cmd, source, &rep->error);
        return CS_EXIT_FAIL;
    }
    if (rep->type != CS_MSG_OK) {
        fprintf(stderr, "calsweep %s: unexpected %s reply from %s\n", cmd,
                cs_msg_type_name(rep->type), url);
        return CS_EXIT_FAIL;
    }
    *data = rep->ok.data ? cJSON_Parse(rep->ok.data) : cJSON_CreateNull();
    if (!*data) {
        fprintf(stderr, "calsweep %s: bad reply data from %s\n", cmd, url);
        return CS_EXIT_FAIL;
    }
    return CS_EXIT_OK;
}

int cs_client_call(const cs_client *c, const char *cmd, cs_msg *req, const char *source,
                   cJSON **data)
{
    return cs_client_call_long(c, cmd, req, source, 0, data);
}

int cs_client_call_long(const cs_client *c, const char *cmd, cs_msg *req, const char *source,
                        int long_ms, cJSON **data)
{
    char *url = NULL, *token = NULL;
    const cs_net_tls *tls = c->tls.ca || c->tls.cert || c->tls.key ? &c->tls : NULL;
    int timeout = c->timeout_ms > 0 ? c->timeout_ms : CS_CLIENT_DEFAULT_TIMEOUT_MS;
    nng_socket sock = NNG_SOCKET_INITIALIZER;
    bool open = false;
    cs_msg rep;
    cs_err err = {0};
    struct stat st;
    int code;
    cs_rc rc;

    *data = NULL;
    memset(&rep, 0, sizeof(rep));
    code = prepare(c, cmd, req, &url, &token);
    if (code != CS_EXIT_OK) {
        goto out;
    }
    /* An ipc socket that is not there: no daemon, no need to wait for the timeout. */
    if (strncmp(url, "ipc://", 6) == 0 && stat(url + 6, &st) != 0) {
        code = unreachable(url);
        goto out;
    }
    /* No timed resend while a big SUBMIT is stored. After a reconnect (calsweepd restarted) nng
     * sends the request again: SUBMIT of a stored sweep returns it, EXTEND adds nothing twice. */
    if (cs_net_dial(&sock, url, tls, (long_ms > timeout ? long_ms : timeout) + 1000, &err) !=
        CS_OK) {
        if (err.rc == CS_EINVAL || err.rc == CS_EAUTH || err.rc == CS_ENOMEM) {
            fprintf(stderr, "calsweep %s: %s\n", cmd, err.msg);
            code = CS_EXIT_FAIL;
        } else {
            code = unreachable(url);
        }
        goto out;
    }
    open = true;
    if (long_ms > timeout) {
        code = call_watched(sock, cmd, url, tls, token, req, &rep, long_ms, timeout, &rc, &err);
        if (code != CS_EXIT_OK) {
            goto out;
        }
    } else {
        rc = cs_net_call(sock, req, &rep, timeout, &err);
    }
    code = take_reply(cmd, url, source, tls, timeout, rc, &rep, &err, data);
out:
    req->token = NULL;
    cs_msg_fini(&rep);
    if (open) {
        nng_close(sock);
    }
    free(token);
    free(url);
    return code;
}

int cs_client_print_json(const cJSON *data, const char *cmd)
{
    char *text = cJSON_PrintUnformatted(data);
    if (!text) {
        fprintf(stderr, "calsweep %s: out of memory\n", cmd);
        return CS_EXIT_FAIL;
    }
    printf("%s\n", text);
    free(text);
    return CS_EXIT_OK;
}

int64_t cs_client_int(const cJSON *o, const char *key)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    return cJSON_IsNumber(v) ? (int64_t)v->valuedouble : 0;
}

const char *cs_client_str(const cJSON *o, const char *key)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    return cJSON_IsString(v) ? v->valuestring : "";
}

const char *cs_client_ago(int64_t ms, int64_t now, char *buf, size_t n)
{
    int64_t s = (now - ms) / 1000;
    if (ms <= 0) {
        snprintf(buf, n, "-");
    } else if (s < 0) {
        snprintf(buf, n, "now");
    } else if (s < 120) {
        snprintf(buf, n, "%llds ago", (long long)s);
    } else if (s < 7200) {
        snprintf(buf, n, "%lldm ago", (long long)(s / 60));
    } else if (s < 172800) {
        snprintf(buf, n, "%lldh ago", (long long)(s / 3600));
    } else {
        snprintf(buf, n, "%lldd ago", (long long)(s / 86400));
    }
    return buf;
}

const char *cs_client_bar(int64_t done, int64_t total, char *buf, size_t width)
{
    size_t full = total > 0 ? (size_t)((double)done / (double)total * (double)width + 0.5) : 0;
    if (full > width) {
        full = width;
    }
    for (size_t i = 0; i < width; i++) {
        buf[i] = i < full ? '#' : '.';
    }
    buf[width] = '\0';
    return buf;
}

/* ---- option parsing of the control subcommands (cs_cli.h) ------------------------------------ */

enum { CLI_OPT_HELP = CS_CLIENT_OPT_BASE + 50 };

int cs_cli_parse(const cs_client *base, cs_client *c, const char *cmd, const char *usage, int argc,
                 char **argv, const cs_opt *own, size_t n_own, cs_cli_opt_fn fn, void *ctx,
                 bool *done)
{
    static const cs_opt help = {"help",       'h',  CS_OPT_NONE,
                                CLI_OPT_HELP, NULL, "show this help and exit"};
    cs_opt table[CS_CLIENT_MAX_OPTIONS];
    cs_opt_parser p;
    cs_err err = {0};
    const char *arg;
    size_t n;
    int id, code;
    cs_rc rc;

    *c = *base;
    *done = false;
    n = cs_client_options(table + 1, own, n_own) + 1;
    table[0] = help;
    cs_opt_init(&p, argc, argv, 1);
    while ((rc = cs_opt_next(&p, table, n, &id, &arg, &err)) == CS_OK) {
        if (id == CLI_OPT_HELP) {
            printf("%s\noptions:\n", usage);
            cs_opt_print_help(stdout, table, n);
            *done = true;
            return CS_EXIT_OK;
        }
        code = cs_client_take_option(c, id, arg, cmd);
        if (code == -1) {
            code = fn(ctx, id, arg);
        }
        if (code != CS_EXIT_OK) {
            return code;
        }
    }
    if (rc != CS_ENOENT) {
        fprintf(stderr, "calsweep %s: %s (see calsweep %s --help)\n", cmd, err.msg, cmd);
        return CS_EXIT_USAGE;
    }
    return CS_EXIT_OK;
}
