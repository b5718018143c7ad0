/* calsweepd - the coordinator daemon: owns the database and hands jobs to workers over nng
 * (cs_daemon.h). Options come from the environment, then --config FILE (a JSON object whose keys
 * are the long options without dashes), then the command line, each overriding the one before. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>
#include <fcntl.h>
#include <nng/nng.h>
#include <sqlite3.h>
#include <sys/file.h>
#include <unistd.h>
#include <uv.h>

#include "cs_alloc.h"
#include "cs_config.h"
#include "cs_daemon.h"
#include "cs_json.h"
#include "cs_log.h"
#include "cs_net.h"
#include "cs_opt.h"
#include "cs_path.h"

enum {
    OPT_HELP,
    OPT_VERSION,
    OPT_CONFIG,
    OPT_DB,
    OPT_WORK,
    OPT_CONTROL,
    OPT_TOKEN_FILE,
    OPT_TLS_CERT,
    OPT_TLS_KEY,
    OPT_TLS_CA,
    OPT_INSECURE,
    OPT_LEASE_S,
    OPT_CLAIM_HOLD_MS,
    OPT_REAP_MS,
    OPT_MAX_BATCH,
    OPT_CONTEXTS,
    OPT_WORKER_PRUNE_S,
    OPT_LOG_JSON,
    OPT_LOG_LEVEL,
    OPT_FOREGROUND,
};

static const cs_opt options[] = {
        {"help", 'h', CS_OPT_NONE, OPT_HELP, NULL, "show this help and exit"},
        {"version", 'V', CS_OPT_NONE, OPT_VERSION, NULL, "show versions and exit"},
        {"config", 'c', CS_OPT_VALUE, OPT_CONFIG, "FILE",
         "JSON object of options (keys: the long options without dashes)"},
        {"db", 0, CS_OPT_VALUE, OPT_DB, "PATH",
         "database (env CALSWEEP_DB; default $XDG_STATE_HOME/calsweep/calsweep.db)"},
        {"work", 0, CS_OPT_VALUE, OPT_WORK, "URL",
         "work endpoint for workers (env CALSWEEP_WORK; default ipc:// in the runtime dir)"},
        {"control", 0, CS_OPT_VALUE, OPT_CONTROL, "URL",
         "control endpoint for the CLI (env CALSWEEP_CONTROL)"},
        {"token-file", 0, CS_OPT_VALUE, OPT_TOKEN_FILE, "FILE",
         "shared token required on every request (env CALSWEEP_TOKEN_FILE; mode 0600)"},
        {"tls-cert", 0, CS_OPT_VALUE, OPT_TLS_CERT, "FILE", "server certificate (tls+tcp://)"},
        {"tls-key", 0, CS_OPT_VALUE, OPT_TLS_KEY, "FILE", "server key (tls+tcp://)"},
        {"tls-ca", 0, CS_OPT_VALUE, OPT_TLS_CA, "FILE", "CA that signs the peers' certificates"},
        {"insecure", 0, CS_OPT_NONE, OPT_INSECURE, NULL,
         "allow a non-loopback tcp:// listener without token or TLS"},
        {"lease-s", 0, CS_OPT_VALUE, OPT_LEASE_S, "N", "lease of a job in seconds (60)"},
        {"claim-hold-ms", 0, CS_OPT_VALUE, OPT_CLAIM_HOLD_MS, "N",
         "long poll of a CLAIM with nothing to run (10000; below the worker's resend 30000)"},
        {"reap-ms", 0, CS_OPT_VALUE, OPT_REAP_MS, "N", "reaper period (5000)"},
        {"max-batch", 0, CS_OPT_VALUE, OPT_MAX_BATCH, "N", "work requests per transaction (1024)"},
        {"contexts", 0, CS_OPT_VALUE, OPT_CONTEXTS, "N",
         "concurrent work requests (nng contexts, 256)"},
        {"worker-prune-s", 0, CS_OPT_VALUE, OPT_WORKER_PRUNE_S, "N",
         "forget workers not heard from for N s that run no job (3600; 0 = never)"},
        {"log-json", 0, CS_OPT_NONE, OPT_LOG_JSON, NULL, "log JSON lines"},
        {"log-level", 0, CS_OPT_VALUE, OPT_LOG_LEVEL, "L", "error, warn, info (default), debug"},
        {"foreground", 0, CS_OPT_NONE, OPT_FOREGROUND, NULL, "stay in the foreground (default)"},
};
#define N_OPTIONS (sizeof(options) / sizeof(options[0]))

typedef struct settings {
    char *db, *work, *control, *token_file, *tls_cert, *tls_key, *tls_ca, *config;
    bool insecure, log_json;
    int64_t lease_s, claim_hold_ms, reap_ms, max_batch, contexts, worker_prune_s;
    cs_log_level level;
} settings;

static void usage(FILE *out)
{
    fprintf(out, "usage: calsweepd [OPTIONS]\n\n"
                 "The calsweep coordinator: keeps sweeps and jobs in SQLite and hands jobs to\n"
                 "calsweep-worker processes over nng. Stops cleanly on SIGTERM or SIGINT.\n\n"
                 "options:\n");
    cs_opt_print_help(out, options, N_OPTIONS);
}

static cs_rc set_str(char **slot, const char *v, cs_err *err)
{
    char *c = cs_strdup(v);
    if (c == NULL) {
        return cs_err_set(err, CS_ENOMEM, 0, "options");
    }
    free(*slot);
    *slot = c;
    return CS_OK;
}

/* Applies one option (from the command line or the config file); flags take arg == NULL. */
static cs_rc apply(settings *s, int id, const char *name, const char *arg, cs_err *err)
{
    switch (id) {
    case OPT_DB:
        return set_str(&s->db, arg, err);
    case OPT_WORK:
        return set_str(&s->work, arg, err);
    case OPT_CONTROL:
        return set_str(&s->control, arg, err);
    case OPT_TOKEN_FILE:
        return set_str(&s->token_file, arg, err);
    case OPT_TLS_CERT:
        return set_str(&s->tls_cert, arg, err);
    case OPT_TLS_KEY:
        return set_str(&s->tls_key, arg, err);
    case OPT_TLS_CA:
        return set_str(&s->tls_ca, arg, err);
    case OPT_INSECURE:
        s->insecure = true;
        return CS_OK;
    case OPT_LOG_JSON:
        s->log_json = true;
        return CS_OK;
    case OPT_FOREGROUND:
        return CS_OK;
    case OPT_LEASE_S:
        return cs_parse_i64(arg, 1, CS_LIMIT_LEASE_S, &s->lease_s, name, err);
    case OPT_CLAIM_HOLD_MS:
        return cs_parse_i64(arg, 0, 29000, &s->claim_hold_ms, name, err);
    case OPT_REAP_MS:
        return cs_parse_i64(arg, 10, 3600000, &s->reap_ms, name, err);
    case OPT_MAX_BATCH:
        return cs_parse_i64(arg, 1, 1000000, &s->max_batch, name, err);
    case OPT_CONTEXTS:
        return cs_parse_i64(arg, 1, 65536, &s->contexts, name, err);
    case OPT_WORKER_PRUNE_S:
        return cs_parse_i64(arg, 0, 86400 * 365, &s->worker_prune_s, name, err);
    case OPT_LOG_LEVEL:
        if (cs_log_level_parse(arg, &s->level) != CS_OK) {
            return cs_err_set(err, CS_EINVAL, 0, "%s: unknown log level '%s'", name, arg);
        }
        return CS_OK;
    default:
        return cs_err_set(err, CS_EINVAL, 0, "%s: not allowed here", name);
    }
}

static cs_rc load_config(settings *s, const char *path, cs_err *err)
{
    cJSON *root = NULL;
    cs_rc rc = cs_json_parse_file(path, 1 << 20, &root, err);
    if (rc != CS_OK) {
        return rc;
    }
    if (!cJSON_IsObject(root)) {
        rc = cs_err_set(err, CS_EINVAL, 0, "%s: expected a JSON object", path);
        goto cleanup;
    }
    const cJSON *v;
    cJSON_ArrayForEach(v, root)
    {
        const cs_opt *o = NULL;
        char num[64];
        const char *arg = NULL;
        for (size_t i = 0; i < N_OPTIONS; i++) {
            if (strcmp(options[i].lng, v->string) == 0) {
                o = &options[i];
            }
        }
        if (o == NULL || o->id == OPT_HELP || o->id == OPT_VERSION || o->id == OPT_CONFIG) {
            rc = cs_err_set(err, CS_EINVAL, 0, "%s: %s: unknown option", path, v->string);
            goto cleanup;
        }
        if (o->arg == CS_OPT_NONE) {
            if (!cJSON_IsBool(v)) {
                rc = cs_err_set(err, CS_EINVAL, 0, "%s: %s: expected true or false", path,
                                v->string);
                goto cleanup;
            }
            if (cJSON_IsFalse(v)) {
                continue;
            }
        } else if (cJSON_IsString(v)) {
            arg = v->valuestring;
        } else if (cJSON_IsNumber(v) && v->valuedouble == (double)(int64_t)v->valuedouble) {
            snprintf(num, sizeof num, "%lld", (long long)v->valuedouble);
            arg = num;
        } else {
            rc = cs_err_set(err, CS_EINVAL, 0, "%s: %s: expected a string or an integer", path,
                            v->string);
            goto cleanup;
        }
        char name[96];
        snprintf(name, sizeof name, "%s: %s", path, o->lng);
        if ((rc = apply(s, o->id, name, arg, err)) != CS_OK) {
            goto cleanup;
        }
    }
cleanup:
    cJSON_Delete(root);
    return rc;
}

static void settings_fini(settings *s)
{
    free(s->db);
    free(s->work);
    free(s->control);
    free(s->token_file);
    free(s->tls_cert);
    free(s->tls_key);
    free(s->tls_ca);
    free(s->config);
}

/* Defaults and the environment. */
static cs_rc settings_defaults(settings *s, cs_err *err)
{
    cs_rc rc;
    const char *env;
    s->lease_s = 60;
    s->claim_hold_ms = 10000;
    s->reap_ms = 5000;
    s->max_batch = 1024;
    s->contexts = 256;
    s->worker_prune_s = 3600;
    s->level = CS_LOG_INFO;
    if ((rc = cs_net_default_url(CS_NET_WORK, &s->work, err)) != CS_OK ||
        (rc = cs_net_default_url(CS_NET_CONTROL, &s->control, err)) != CS_OK) {
        return rc;
    }
    if ((env = getenv("CALSWEEP_TOKEN_FILE")) != NULL && env[0] != '\0' &&
        (rc = set_str(&s->token_file, env, err)) != CS_OK) {
        return rc;
    }
    if ((env = getenv("CALSWEEP_DB")) != NULL && env[0] != '\0') {
        return set_str(&s->db, env, err);
    }
    return CS_OK;
}

/* Takes the exclusive lock of the database: flock on DB.lock next to it, held until exit (the
 * descriptor is not inherited by children). A second calsweepd on the same database is refused
 * here, naming the file and the pid written in it; readers (calsweep plan --db, exports) open the
 * database read-only and never look at the lock. Returns the descriptor, or -1 after printing
 * why. */
static int lock_db(const char *db)
{
    char *path = NULL, pid[32] = "";
    size_t n = strlen(db) + sizeof ".lock";
    ssize_t got;
    int fd = -1;
    path = malloc(n);
    if (path == NULL) {
        fprintf(stderr, "calsweepd: out of memory\n");
        return -1;
    }
    snprintf(path, n, "%s.lock", db);
    fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (fd < 0) {
        fprintf(stderr, "calsweepd: %s: cannot create the lock file of the database: %s\n", path,
                strerror(errno));
        goto fail;
    }
    if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
        int e = errno;
        got = pread(fd, pid, sizeof pid - 1, 0);
        pid[got > 0 ? strcspn(pid, "\n") : 0] = '\0';
        if (e == EWOULDBLOCK) {
            fprintf(stderr,
                    "calsweepd: %s is in use by another calsweepd%s%s%s (it holds %s); stop "
                    "it first, or give this one another --db\n",
                    db, pid[0] ? " (pid " : "", pid, pid[0] ? ")" : "", path);
        } else {
            fprintf(stderr, "calsweepd: %s: cannot lock: %s\n", path, strerror(e));
        }
        goto fail;
    }
    snprintf(pid, sizeof pid, "%ld\n", (long)getpid());
    if (ftruncate(fd, 0) != 0 || pwrite(fd, pid, strlen(pid), 0) < 0) {
        fprintf(stderr, "calsweepd: %s: cannot write: %s\n", path, strerror(errno));
        goto fail;
    }
    free(path);
    return fd;
fail:
    if (fd >= 0) {
        close(fd);
    }
    free(path);
    return -1;
}

static int serve(settings *s)
{
    cs_err err = {0};
    char *token = NULL, *dir = NULL;
    cs_daemon *d = NULL;
    int code = CS_EXIT_FAIL, lock = -1;
    if (s->db == NULL) {
        if (cs_path_state_dir(true, &dir, &err) != CS_OK ||
            cs_path_join(dir, "calsweep.db", &s->db, &err) != CS_OK) {
            fprintf(stderr, "calsweepd: %s\n", err.msg);
            goto cleanup;
        }
    }
    lock = lock_db(s->db);
    if (lock < 0) {
        goto cleanup;
    }
    if (s->token_file != NULL && cs_net_token_load(s->token_file, &token, &err) != CS_OK) {
        fprintf(stderr, "calsweepd: %s\n", err.msg);
        goto cleanup;
    }
    cs_daemon_opts o;
    cs_daemon_opts_default(&o);
    o.db = s->db;
    o.work_url = s->work;
    o.control_url = s->control;
    o.token = token;
    o.tls.cert = s->tls_cert;
    o.tls.key = s->tls_key;
    o.tls.ca = s->tls_ca;
    o.insecure = s->insecure;
    o.lease_s = s->lease_s;
    o.claim_hold_ms = s->claim_hold_ms;
    o.reap_ms = s->reap_ms;
    o.max_batch = s->max_batch;
    o.n_work_ctx = (int)s->contexts;
    o.worker_prune_s = s->worker_prune_s;
    o.signals = true;
    if (cs_daemon_open(&o, &d, &err) != CS_OK) {
        cs_log(CS_LOG_ERROR, "%s", err.msg);
        fprintf(stderr, "calsweepd: %s\n", err.msg);
        goto cleanup;
    }
    if (cs_daemon_run(d, &err) != CS_OK) {
        fprintf(stderr, "calsweepd: %s\n", err.msg);
        goto cleanup;
    }
    code = CS_EXIT_OK;
cleanup:
    cs_daemon_close(d);
    if (lock >= 0) {
        close(lock); /* after the store is closed: the lock outlives every write */
    }
    free(token);
    free(dir);
    return code;
}

int main(int argc, char **argv)
{
    cs_opt_parser p;
    cs_err err = {0};
    settings s = {0};
    int id, code = CS_EXIT_USAGE;
    const char *arg;
    cs_rc rc;

    /* First pass: --help, --version and --config (read before the other flags apply). */
    cs_opt_init(&p, argc, argv, 1);
    while ((rc = cs_opt_next(&p, options, N_OPTIONS, &id, &arg, &err)) == CS_OK) {
        if (id == OPT_HELP) {
            usage(stdout);
            return CS_EXIT_OK;
        }
        if (id == OPT_VERSION) {
            printf("calsweepd %s (sqlite %s, nng %s, libuv %s, cJSON %s)\n", CS_VERSION,
                   sqlite3_libversion(), nng_version(), uv_version_string(), cJSON_Version());
            return CS_EXIT_OK;
        }
        if (id == CS_OPT_POSITIONAL) {
            fprintf(stderr, "calsweepd: unexpected argument '%s' (see --help)\n", arg);
            return CS_EXIT_USAGE;
        }
        if (id == OPT_CONFIG && set_str(&s.config, arg, &err) != CS_OK) {
            goto fail;
        }
    }
    if (rc != CS_ENOENT) {
        goto fail;
    }
    if (settings_defaults(&s, &err) != CS_OK) {
        fprintf(stderr, "calsweepd: %s\n", err.msg);
        code = CS_EXIT_FAIL;
        goto out;
    }
    if (s.config != NULL && load_config(&s, s.config, &err) != CS_OK) {
        goto fail;
    }
    cs_opt_init(&p, argc, argv, 1);
    while ((rc = cs_opt_next(&p, options, N_OPTIONS, &id, &arg, &err)) == CS_OK) {
        char name[64];
        if (id == OPT_CONFIG) {
            continue;
        }
        snprintf(name, sizeof name, "--%s", options[id].lng);
        if (apply(&s, id, name, arg, &err) != CS_OK) {
            goto fail;
        }
    }
    if (rc != CS_ENOENT) {
        goto fail;
    }
    cs_log_setup(s.level, s.log_json, NULL);
    code = serve(&s);
    goto out;
fail:
    fprintf(stderr, "calsweepd: %s (see --help)\n", err.msg);
    code = CS_EXIT_USAGE;
out:
    settings_fini(&s);
    return code;
}
