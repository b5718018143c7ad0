/* cs_client.h - what the control subcommands of `calsweep` share: the connection options
 * (--control, --token-file, --tls-*, --timeout-ms, given before or after the subcommand), one
 * synchronous request to calsweepd, and small helpers for aligned text output.
 *
 * Exit codes (cs_opt.h): 0 ok, 1 the daemon refused or the work failed, 2 usage, 3 calsweepd
 * unreachable ("calsweepd is not running at URL; start it with: calsweepd &").
 */
#ifndef CS_COORDINATOR_CLI_CS_CLIENT_H
#define CS_COORDINATOR_CLI_CS_CLIENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <cjson/cJSON.h>

#include "cs_net.h"
#include "cs_opt.h"
#include "cs_proto.h"

#define CS_CLIENT_DEFAULT_TIMEOUT_MS 5000

/* Connection settings; NULL strings mean "the environment, then the default". */
typedef struct cs_client {
    const char *control;    /* --control URL, env CALSWEEP_CONTROL */
    const char *token_file; /* --token-file F, env CALSWEEP_TOKEN_FILE */
    cs_net_tls tls;         /* --tls-cert/--tls-key/--tls-ca */
    int timeout_ms;         /* --timeout-ms N; 0 = CS_CLIENT_DEFAULT_TIMEOUT_MS */
} cs_client;

/* Option ids of the connection options; a command's own ids stay below CS_CLIENT_OPT_BASE. */
enum {
    CS_CLIENT_OPT_BASE = 100,
    CS_CLIENT_OPT_CONTROL = CS_CLIENT_OPT_BASE,
    CS_CLIENT_OPT_TOKEN_FILE,
    CS_CLIENT_OPT_TLS_CERT,
    CS_CLIENT_OPT_TLS_KEY,
    CS_CLIENT_OPT_TLS_CA,
    CS_CLIENT_OPT_TIMEOUT_MS,
};
#define CS_CLIENT_N_OPTIONS   6
#define CS_CLIENT_MAX_OPTIONS 32 /* a command's own options + the connection options */

/* Copies own[0..n_own) followed by the connection options into out (CS_CLIENT_MAX_OPTIONS
 * entries); returns the count. */
size_t cs_client_options(cs_opt *out, const cs_opt *own, size_t n_own);

/* Applies a connection option: CS_EXIT_OK when id is one (value stored), CS_EXIT_USAGE for a bad
 * value (message printed, prefixed with cmd), -1 when id is not a connection option. */
int cs_client_take_option(cs_client *c, int id, const char *arg, const char *cmd);

/* Sends req (token filled in here) and waits for the reply. CS_EXIT_OK with *data = the parsed
 * OK data (owned, cJSON_Delete; a JSON null when the reply had none); otherwise prints
 * "calsweep CMD: ..." to stderr and returns CS_EXIT_FAIL (ERROR reply, bad token file, failed TLS
 * handshake: what failed, cs_net_tls_diagnose, ...) or
 * CS_EXIT_UNREACHABLE. A CS_ESCHEMA message is printed one line per diagnostic, prefixed with
 * source when it is not NULL. */
int cs_client_call(const cs_client *c, const char *cmd, cs_msg *req, const char *source,
                   cJSON **data);

/* A request built for sending only borrows its strings (cs_msg_encode never writes them, and the
 * request is never cs_msg_fini'd), so an argv string may be pointed at. */
static inline char *cs_client_borrow(const char *s)
{
    return (char *)(uintptr_t)s;
}

/* The same for a request that may take long (SUBMIT, EXTEND of a big sweep): a cheap request
 * first tells whether calsweepd answers within the timeout (CS_EXIT_UNREACHABLE otherwise), then
 * req may take up to long_ms (a timeout then is CS_EXIT_FAIL: calsweepd may still be working). */
#define CS_CLIENT_LONG_MS 600000
int cs_client_call_long(const cs_client *c, const char *cmd, cs_msg *req, const char *source,
                        int long_ms, cJSON **data);

/* Prints data as one line of JSON to stdout. */
int cs_client_print_json(const cJSON *data, const char *cmd);

/* Getters for reply data; 0 / "" / NULL when absent or of another type. */
int64_t cs_client_int(const cJSON *o, const char *key);
const char *cs_client_str(const cJSON *o, const char *key);

/* "12s ago", "3m ago", "2h ago", "4d ago" (or "-" for 0) into buf. */
const char *cs_client_ago(int64_t ms, int64_t now, char *buf, size_t n);

/* A progress bar of width cells for done/total into buf (width+1 bytes at least). */
const char *cs_client_bar(int64_t done, int64_t total, char *buf, size_t width);

#endif
