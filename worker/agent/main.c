/* calsweep-worker - the worker agent: asks calsweepd for jobs and runs each in a child process
 * (cs_agent.h). Options are one table (docs/style.md R16); the runner contract is in
 * docs/running.md.
 */
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>
#include <nng/nng.h>
#include <unistd.h>
#include <uv.h>

#include "cs_agent.h"
#include "cs_alloc.h"
#include "cs_child.h"
#include "cs_config.h"
#include "cs_log.h"
#include "cs_net.h"
#include "cs_opt.h"
#include "cs_path.h"

enum {
    OPT_HELP,
    OPT_VERSION,
    OPT_COORDINATOR,
    OPT_NAME,
    OPT_MODEL_ROOT,
    OPT_DATA_ROOT,
    OPT_THREADS,
    OPT_MEM_MB,
    OPT_RUNNER,
    OPT_EXEC_TEMPLATE,
    OPT_WORK_DIR,
    OPT_CACHE_DIR,
    OPT_NO_CACHE,
    OPT_TOKEN_FILE,
    OPT_TLS_CERT,
    OPT_TLS_KEY,
    OPT_TLS_CA,
    OPT_HEARTBEAT_MS,
    OPT_ONCE,
    OPT_MAX_JOBS,
    OPT_DRAIN,
    OPT_RELEASE,
    OPT_KILL_GRACE_MS,
    OPT_DRAIN_S,
    OPT_LOG_JSON,
    OPT_LOG_LEVEL,
};

static const cs_opt options[] = {
        {"coordinator", 'c', CS_OPT_VALUE, OPT_COORDINATOR, "URL",
         "work endpoint of calsweepd (env CALSWEEP_WORK; default ipc://$XDG_RUNTIME_DIR/...)"},
        {"name", 'n', CS_OPT_VALUE, OPT_NAME, "S", "worker name (default host-pid)"},
        {"model-root", 'm', CS_OPT_VALUE, OPT_MODEL_ROOT, "DIR",
         "folder of model folders (with config.json); repeatable. Model folders of jobs must "
         "lie inside one"},
        {"data-root", 'd', CS_OPT_VALUE, OPT_DATA_ROOT, "DIR",
         "folder that jobs may read data files from (sources, eval tasks, texts); repeatable "
         "(default: the folder the worker runs in)"},
        {"threads", 't', CS_OPT_VALUE, OPT_THREADS, "N", "CPU threads offered (default: all)"},
        {"mem-mb", 0, CS_OPT_VALUE, OPT_MEM_MB, "N", "memory offered in MiB (default: physical)"},
        {"runner", 0, CS_OPT_VALUE, OPT_RUNNER, "PATH",
         "job runner (default: calsweep-run next to this binary)"},
        {"exec-template", 0, CS_OPT_VALUE, OPT_EXEC_TEMPLATE, "S",
         "shell command for jobs whose model's backend is \"exec\" (run as sh -c S "
         "calsweep-exec job.json in the attempt folder); without it the worker runs only "
         "native jobs"},
        {"work-dir", 'w', CS_OPT_VALUE, OPT_WORK_DIR, "DIR",
         "per-attempt folders (default $XDG_STATE_HOME/calsweep/work)"},
        {"cache-dir", 0, CS_OPT_VALUE, OPT_CACHE_DIR, "DIR",
         "what jobs share, e.g. the selectors' pool statistics (default "
         "$XDG_STATE_HOME/calsweep/cache; the runner gets it as CALSWEEP_CACHE_DIR)"},
        {"no-cache", 0, CS_OPT_NONE, OPT_NO_CACHE, NULL, "run jobs without a cache"},
        {"token-file", 0, CS_OPT_VALUE, OPT_TOKEN_FILE, "F",
         "shared token file (env CALSWEEP_TOKEN_FILE)"},
        {"tls-cert", 0, CS_OPT_VALUE, OPT_TLS_CERT, "F", "client certificate (tls+tcp://)"},
        {"tls-key", 0, CS_OPT_VALUE, OPT_TLS_KEY, "F", "client key (tls+tcp://)"},
        {"tls-ca", 0, CS_OPT_VALUE, OPT_TLS_CA, "F", "CA that signed the daemon (tls+tcp://)"},
        {"heartbeat-ms", 0, CS_OPT_VALUE, OPT_HEARTBEAT_MS, "N",
         "heartbeat interval (default 3000)"},
        {"once", 0, CS_OPT_NONE, OPT_ONCE, NULL, "ask for work once, run at most one job, exit"},
        {"max-jobs", 0, CS_OPT_VALUE, OPT_MAX_JOBS, "N", "exit after N jobs"},
        {"drain", 0, CS_OPT_NONE, OPT_DRAIN, NULL,
         "on SIGTERM finish the current job, then exit (default)"},
        {"release", 0, CS_OPT_NONE, OPT_RELEASE, NULL,
         "on SIGTERM stop the current job and hand it back"},
        {"drain-s", 0, CS_OPT_VALUE, OPT_DRAIN_S, "N",
         "draining: hand the job back if it has not finished N s after SIGTERM (0 = wait)"},
        {"kill-grace-ms", 0, CS_OPT_VALUE, OPT_KILL_GRACE_MS, "N",
         "SIGTERM to SIGKILL delay when stopping a job (default 5000)"},
        {"log-json", 0, CS_OPT_NONE, OPT_LOG_JSON, NULL, "log JSON lines"},
        {"log-level", 0, CS_OPT_VALUE, OPT_LOG_LEVEL, "L", "error|warn|info|debug|trace"},
        {"help", 'h', CS_OPT_NONE, OPT_HELP, NULL, "show this help and exit"},
        {"version", 'V', CS_OPT_NONE, OPT_VERSION, NULL, "show versions and exit"},
};
#define N_OPTIONS (sizeof(options) / sizeof(options[0]))
#define MAX_ROOTS 64

static const char *opt_name(int id)
{
    for (size_t i = 0; i < N_OPTIONS; i++) {
        if (options[i].id == id) {
            return options[i].lng;
        }
    }
    return "?";
}

static void usage(FILE *out)
{
    fprintf(out, "usage: calsweep-worker [OPTIONS]\n\n"
                 "Registers with calsweepd, claims jobs, runs calsweep-run (or an exec command)\n"
                 "per job and reports progress and results.\n\noptions:\n");
    cs_opt_print_help(out, options, N_OPTIONS);
}

/* Our own binary: it guards each job (cs_child.h), so a job dies with its worker. */
static char *own_exe(void)
{
    char exe[4096];
    size_t n = sizeof exe;
    return uv_exepath(exe, &n) == 0 ? cs_strdup(exe) : NULL;
}

/* The runner next to our own binary. */
static char *default_runner(void)
{
    char exe[4096];
    size_t n = sizeof exe;
    if (uv_exepath(exe, &n) != 0) {
        return cs_strdup("calsweep-run");
    }
    char *slash = strrchr(exe, '/');
    if (slash == NULL) {
        return cs_strdup("calsweep-run");
    }
    *slash = '\0';
    char *out = NULL;
    if (cs_path_join(exe, "calsweep-run", &out, NULL) != CS_OK) {
        return NULL;
    }
    return out;
}

/* What the command line says: cfg (its roots point into roots and data_roots), and the options
 * main acts on itself. */
typedef struct worker_args {
    cs_agent_cfg cfg;
    const char *roots[MAX_ROOTS], *data_roots[MAX_ROOTS];
    const char *token_file, *log_level;
    bool no_cache, log_json;
} worker_args;

/* Strings main allocates for cfg, freed at exit. */
typedef struct worker_owned {
    char *url, *name, *runner, *work_dir, *token, *cache_dir, *guard;
} worker_owned;

/* The defaults the options start from: all the machine's CPUs and memory. */
static void args_init(worker_args *w)
{
    memset(w, 0, sizeof *w);
    cs_agent_cfg *cfg = &w->cfg;
    cfg->threads = sysconf(_SC_NPROCESSORS_ONLN) > 0 ? sysconf(_SC_NPROCESSORS_ONLN) : 1;
    long pages = sysconf(_SC_PHYS_PAGES), psize = sysconf(_SC_PAGESIZE);
    cfg->mem_mb = pages > 0 && psize > 0 ? (int64_t)pages / (1048576 / psize) : 0;
    cfg->heartbeat_ms = 3000;
    cfg->kill_grace_ms = 5000;
    cfg->handle_signals = true;
    cfg->model_root = w->roots;
    cfg->data_root = w->data_roots;
}

/* A numeric option into its field of cfg; false (after saying why) when it is out of range. */
static bool int_option(cs_agent_cfg *cfg, int id, const char *arg)
{
    int64_t min = id == OPT_THREADS ? 1 : id == OPT_HEARTBEAT_MS ? 10 : 0, v;
    cs_err err = {0};
    if (cs_parse_i64(arg, min, INT64_C(1) << 40, &v, opt_name(id), &err) != CS_OK) {
        fprintf(stderr, "calsweep-worker: --%s\n", err.msg);
        return false;
    }
    int64_t *dst = id == OPT_THREADS        ? &cfg->threads
                   : id == OPT_MEM_MB       ? &cfg->mem_mb
                   : id == OPT_HEARTBEAT_MS ? &cfg->heartbeat_ms
                   : id == OPT_MAX_JOBS     ? &cfg->max_jobs
                   : id == OPT_DRAIN_S      ? &cfg->drain_s
                                            : &cfg->kill_grace_ms;
    *dst = v;
    return true;
}

/* A root option (--model-root, --data-root) appended to its list; false when the list is full. */
static bool root_option(const char **list, size_t *n, const char *arg, const char *opt)
{
    if (*n >= MAX_ROOTS) {
        fprintf(stderr, "calsweep-worker: at most %d --%s\n", MAX_ROOTS, opt);
        return false;
    }
    list[(*n)++] = arg;
    return true;
}

/* One option into w: -1 to go on, or the exit code (--help, --version, a bad value). */
static int one_option(worker_args *w, int id, const char *arg)
{
    cs_agent_cfg *cfg = &w->cfg;
    switch (id) {
    case OPT_HELP:
        usage(stdout);
        return CS_EXIT_OK;
    case OPT_VERSION:
        printf("calsweep-worker %s (nng %s, libuv %s, cJSON %s)\n", CS_VERSION, nng_version(),
               uv_version_string(), cJSON_Version());
        return CS_EXIT_OK;
    case OPT_MODEL_ROOT:
        return root_option(w->roots, &cfg->n_model_root, arg, "model-root") ? -1 : CS_EXIT_USAGE;
    case OPT_DATA_ROOT:
        return root_option(w->data_roots, &cfg->n_data_root, arg, "data-root") ? -1 : CS_EXIT_USAGE;
    case OPT_THREADS:
    case OPT_MEM_MB:
    case OPT_HEARTBEAT_MS:
    case OPT_MAX_JOBS:
    case OPT_KILL_GRACE_MS:
    case OPT_DRAIN_S:
        return int_option(cfg, id, arg) ? -1 : CS_EXIT_USAGE;
    case OPT_COORDINATOR:
        cfg->coordinator = arg;
        return -1;
    case OPT_NAME:
        cfg->name = arg;
        return -1;
    case OPT_RUNNER:
        cfg->runner = arg;
        return -1;
    case OPT_EXEC_TEMPLATE:
        cfg->exec_template = arg;
        return -1;
    case OPT_WORK_DIR:
        cfg->work_dir = arg;
        return -1;
    case OPT_CACHE_DIR:
        cfg->cache_dir = arg;
        return -1;
    case OPT_NO_CACHE:
        w->no_cache = true;
        return -1;
    case OPT_TOKEN_FILE:
        w->token_file = arg;
        return -1;
    case OPT_TLS_CERT:
        cfg->tls.cert = arg;
        return -1;
    case OPT_TLS_KEY:
        cfg->tls.key = arg;
        return -1;
    case OPT_TLS_CA:
        cfg->tls.ca = arg;
        return -1;
    case OPT_ONCE:
        cfg->once = true;
        return -1;
    case OPT_DRAIN:
    case OPT_RELEASE:
        cfg->release_on_term = id == OPT_RELEASE;
        return -1;
    case OPT_LOG_JSON:
        w->log_json = true;
        return -1;
    case OPT_LOG_LEVEL:
        w->log_level = arg;
        return -1;
    default:
        fprintf(stderr, "calsweep-worker: unexpected argument '%s' (see --help)\n", arg);
        return CS_EXIT_USAGE;
    }
}

/* The command line into w, and the log set up: -1 to go on, or the exit code. */
static int parse_args(int argc, char **argv, worker_args *w)
{
    cs_opt_parser p;
    cs_err err = {0};
    const char *arg;
    int id, code = -1;
    cs_rc rc;
    cs_opt_init(&p, argc, argv, 1);
    while (code < 0 && (rc = cs_opt_next(&p, options, N_OPTIONS, &id, &arg, &err)) == CS_OK) {
        code = one_option(w, id, arg);
    }
    if (code >= 0) {
        return code;
    }
    if (rc != CS_ENOENT) {
        fprintf(stderr, "calsweep-worker: %s (see --help)\n", err.msg);
        return CS_EXIT_USAGE;
    }
    cs_log_level level = CS_LOG_INFO;
    if (w->log_level != NULL && cs_log_level_parse(w->log_level, &level) != CS_OK) {
        fprintf(stderr, "calsweep-worker: --log-level: unknown level '%s'\n", w->log_level);
        return CS_EXIT_USAGE;
    }
    cs_log_setup(level, w->log_json, NULL);
    return -1;
}

/* <state folder>/sub into *out (the state folder is created). */
static cs_rc state_subdir(const char *sub, char **out, cs_err *err)
{
    char *state = NULL;
    cs_rc rc = cs_path_state_dir(true, &state, err);
    if (rc == CS_OK) {
        rc = cs_path_join(state, sub, out, err);
    }
    free(state);
    return rc;
}

/* The defaults of what the command line left out: name, coordinator, runner, guard, work and
 * cache folders, token. -1 to go on, or the exit code (after saying why). */
static int fill_defaults(worker_args *w, worker_owned *o, const char *host)
{
    cs_agent_cfg *cfg = &w->cfg;
    cs_err err = {0};
    if (cfg->name == NULL) {
        size_t n = strlen(host) + 32;
        if ((o->name = malloc(n)) == NULL) {
            return CS_EXIT_FAIL;
        }
        snprintf(o->name, n, "%s-%ld", host, (long)getpid());
        cfg->name = o->name;
    }
    cfg->host = host;
    if (cfg->coordinator == NULL && cs_net_default_url(CS_NET_WORK, &o->url, &err) != CS_OK) {
        fprintf(stderr, "calsweep-worker: %s\n", err.msg);
        return CS_EXIT_FAIL;
    }
    if (cfg->coordinator == NULL) {
        cfg->coordinator = o->url;
    }
    if (cfg->runner == NULL) {
        o->runner = default_runner();
        cfg->runner = o->runner;
    }
    o->guard = own_exe();
    if (o->guard == NULL) {
        cs_log(CS_LOG_WARN, "cannot find this program's path: jobs will not die with the worker");
    }
    cfg->guard = o->guard;
    if ((cfg->work_dir == NULL && state_subdir("work", &o->work_dir, &err) != CS_OK) ||
        (!w->no_cache && cfg->cache_dir == NULL &&
         state_subdir("cache", &o->cache_dir, &err) != CS_OK)) {
        fprintf(stderr, "calsweep-worker: %s\n", err.msg);
        return CS_EXIT_FAIL;
    }
    if (cfg->work_dir == NULL) {
        cfg->work_dir = o->work_dir;
    }
    cfg->cache_dir = w->no_cache ? NULL : cfg->cache_dir != NULL ? cfg->cache_dir : o->cache_dir;
    const char *token_file = w->token_file != NULL ? w->token_file : getenv("CALSWEEP_TOKEN_FILE");
    if (token_file != NULL && token_file[0] != '\0') {
        if (cs_net_token_load(token_file, &o->token, &err) != CS_OK) {
            fprintf(stderr, "calsweep-worker: --token-file: %s\n", err.msg);
            return CS_EXIT_USAGE;
        }
        cfg->token = o->token;
    }
    return -1;
}

int main(int argc, char **argv)
{
    cs_err err = {0};
    char host[256] = "localhost";
    worker_args w;
    worker_owned o = {0};
    cs_agent *a = NULL;

    if (argc >= 2 && strcmp(argv[1], CS_CHILD_GUARD_FLAG) == 0) {
        return cs_child_guard_main(argc, argv);
    }
    args_init(&w);
    int code = parse_args(argc, argv, &w);
    if (code >= 0) {
        return code;
    }
    signal(SIGPIPE, SIG_IGN); /* a vanished peer is an error return, never a death */
    if (gethostname(host, sizeof host) != 0 || host[0] == '\0') {
        snprintf(host, sizeof host, "localhost");
    }
    host[sizeof host - 1] = '\0';
    code = fill_defaults(&w, &o, host);
    if (code < 0) {
        code = CS_EXIT_FAIL;
        if (cs_agent_create(&w.cfg, &a, &err) != CS_OK || cs_agent_run(a, &err) != CS_OK) {
            fprintf(stderr, "calsweep-worker: %s\n", err.msg);
        } else {
            cs_agent_stats st;
            cs_agent_get_stats(a, &st);
            cs_log(CS_LOG_INFO,
                   "exiting: %" PRId64 " jobs started, %" PRId64 " results, %" PRId64
                   " fails, %" PRId64 " dropped",
                   st.jobs_started, st.results, st.fails, st.dropped);
            code = CS_EXIT_OK;
        }
    }
    cs_agent_destroy(a);
    char *owned[] = {o.url, o.name, o.runner, o.guard, o.work_dir, o.cache_dir, o.token};
    for (size_t i = 0; i < sizeof owned / sizeof owned[0]; i++) {
        free(owned[i]);
    }
    return code;
}
