/* calsweep-worker - the worker agent: asks calsweepd for jobs and runs each in a child process
 * (cs_agent.h). Options are one table (STYLE.md R16); the runner contract is in docs/running.md.
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
    for (size_t i = 0; i < N_OPTIONS; i++)
        if (options[i].id == id)
            return options[i].lng;
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
    if (uv_exepath(exe, &n) != 0)
        return cs_strdup("calsweep-run");
    char *slash = strrchr(exe, '/');
    if (slash == NULL)
        return cs_strdup("calsweep-run");
    *slash = '\0';
    char *out = NULL;
    if (cs_path_join(exe, "calsweep-run", &out, NULL) != CS_OK)
        return NULL;
    return out;
}

int main(int argc, char **argv)
{
    cs_opt_parser p;
    cs_err err = {0};
    int id, code = CS_EXIT_FAIL;
    const char *arg;
    const char *roots[MAX_ROOTS], *data_roots[MAX_ROOTS];
    const char *token_file = NULL, *log_level = NULL;
    char *url = NULL, *name = NULL, *runner = NULL, *work_dir = NULL, *token = NULL;
    char *cache_dir = NULL, *guard = NULL;
    bool no_cache = false;
    char host[256] = "localhost";
    bool log_json = false;
    cs_agent *a = NULL;
    cs_agent_cfg cfg = {0};
    int64_t v;
    cs_rc rc;

    cfg.threads = sysconf(_SC_NPROCESSORS_ONLN) > 0 ? sysconf(_SC_NPROCESSORS_ONLN) : 1;
    long pages = sysconf(_SC_PHYS_PAGES), psize = sysconf(_SC_PAGESIZE);
    cfg.mem_mb = pages > 0 && psize > 0 ? (int64_t)pages / (1048576 / psize) : 0;
    cfg.heartbeat_ms = 3000;
    cfg.kill_grace_ms = 5000;
    cfg.handle_signals = true;
    cfg.model_root = roots;
    cfg.data_root = data_roots;

    if (argc >= 2 && strcmp(argv[1], CS_CHILD_GUARD_FLAG) == 0)
        return cs_child_guard_main(argc, argv);
    cs_opt_init(&p, argc, argv, 1);
    while ((rc = cs_opt_next(&p, options, N_OPTIONS, &id, &arg, &err)) == CS_OK) {
        switch (id) {
        case OPT_HELP:
            usage(stdout);
            return CS_EXIT_OK;
        case OPT_VERSION:
            printf("calsweep-worker %s (nng %s, libuv %s, cJSON %s)\n", CS_VERSION, nng_version(),
                   uv_version_string(), cJSON_Version());
            return CS_EXIT_OK;
        case OPT_COORDINATOR:
            cfg.coordinator = arg;
            break;
        case OPT_NAME:
            cfg.name = arg;
            break;
        case OPT_MODEL_ROOT:
            if (cfg.n_model_root >= MAX_ROOTS) {
                fprintf(stderr, "calsweep-worker: at most %d --model-root\n", MAX_ROOTS);
                return CS_EXIT_USAGE;
            }
            roots[cfg.n_model_root++] = arg;
            break;
        case OPT_DATA_ROOT:
            if (cfg.n_data_root >= MAX_ROOTS) {
                fprintf(stderr, "calsweep-worker: at most %d --data-root\n", MAX_ROOTS);
                return CS_EXIT_USAGE;
            }
            data_roots[cfg.n_data_root++] = arg;
            break;
        case OPT_THREADS:
        case OPT_MEM_MB:
        case OPT_HEARTBEAT_MS:
        case OPT_MAX_JOBS:
        case OPT_KILL_GRACE_MS: {
            int64_t min = id == OPT_THREADS ? 1 : id == OPT_HEARTBEAT_MS ? 10 : 0;
            if (cs_parse_i64(arg, min, INT64_C(1) << 40, &v, opt_name(id), &err) != CS_OK) {
                fprintf(stderr, "calsweep-worker: --%s\n", err.msg);
                return CS_EXIT_USAGE;
            }
            if (id == OPT_THREADS)
                cfg.threads = v;
            else if (id == OPT_MEM_MB)
                cfg.mem_mb = v;
            else if (id == OPT_HEARTBEAT_MS)
                cfg.heartbeat_ms = v;
            else if (id == OPT_MAX_JOBS)
                cfg.max_jobs = v;
            else
                cfg.kill_grace_ms = v;
            break;
        }
        case OPT_RUNNER:
            cfg.runner = arg;
            break;
        case OPT_EXEC_TEMPLATE:
            cfg.exec_template = arg;
            break;
        case OPT_WORK_DIR:
            cfg.work_dir = arg;
            break;
        case OPT_CACHE_DIR:
            cfg.cache_dir = arg;
            break;
        case OPT_NO_CACHE:
            no_cache = true;
            break;
        case OPT_TOKEN_FILE:
            token_file = arg;
            break;
        case OPT_TLS_CERT:
            cfg.tls.cert = arg;
            break;
        case OPT_TLS_KEY:
            cfg.tls.key = arg;
            break;
        case OPT_TLS_CA:
            cfg.tls.ca = arg;
            break;
        case OPT_ONCE:
            cfg.once = true;
            break;
        case OPT_DRAIN:
            cfg.release_on_term = false;
            break;
        case OPT_RELEASE:
            cfg.release_on_term = true;
            break;
        case OPT_LOG_JSON:
            log_json = true;
            break;
        case OPT_LOG_LEVEL:
            log_level = arg;
            break;
        default:
            fprintf(stderr, "calsweep-worker: unexpected argument '%s' (see --help)\n", arg);
            return CS_EXIT_USAGE;
        }
    }
    if (rc != CS_ENOENT) {
        fprintf(stderr, "calsweep-worker: %s (see --help)\n", err.msg);
        return CS_EXIT_USAGE;
    }
    cs_log_level level = CS_LOG_INFO;
    if (log_level != NULL && cs_log_level_parse(log_level, &level) != CS_OK) {
        fprintf(stderr, "calsweep-worker: --log-level: unknown level '%s'\n", log_level);
        return CS_EXIT_USAGE;
    }
    cs_log_setup(level, log_json, NULL);
    signal(SIGPIPE, SIG_IGN); /* a vanished peer is an error return, never a death */

    if (gethostname(host, sizeof host) != 0 || host[0] == '\0')
        snprintf(host, sizeof host, "localhost");
    host[sizeof host - 1] = '\0';
    if (cfg.name == NULL) {
        size_t n = strlen(host) + 32;
        name = malloc(n);
        if (name == NULL)
            goto cleanup;
        snprintf(name, n, "%s-%ld", host, (long)getpid());
        cfg.name = name;
    }
    cfg.host = host;
    if (cfg.coordinator == NULL) {
        if (cs_net_default_url(CS_NET_WORK, &url, &err) != CS_OK) {
            fprintf(stderr, "calsweep-worker: %s\n", err.msg);
            goto cleanup;
        }
        cfg.coordinator = url;
    }
    if (cfg.runner == NULL) {
        runner = default_runner();
        cfg.runner = runner;
    }
    guard = own_exe();
    if (guard == NULL)
        cs_log(CS_LOG_WARN, "cannot find this program's path: jobs will not die with the worker");
    cfg.guard = guard;
    if (cfg.work_dir == NULL) {
        char *state = NULL;
        if (cs_path_state_dir(true, &state, &err) != CS_OK ||
            cs_path_join(state, "work", &work_dir, &err) != CS_OK) {
            free(state);
            fprintf(stderr, "calsweep-worker: %s\n", err.msg);
            goto cleanup;
        }
        free(state);
        cfg.work_dir = work_dir;
    }
    if (no_cache) {
        cfg.cache_dir = NULL;
    } else if (cfg.cache_dir == NULL) {
        char *state = NULL;
        if (cs_path_state_dir(true, &state, &err) != CS_OK ||
            cs_path_join(state, "cache", &cache_dir, &err) != CS_OK) {
            free(state);
            fprintf(stderr, "calsweep-worker: %s\n", err.msg);
            goto cleanup;
        }
        free(state);
        cfg.cache_dir = cache_dir;
    }
    if (token_file == NULL)
        token_file = getenv("CALSWEEP_TOKEN_FILE");
    if (token_file != NULL && token_file[0] != '\0') {
        if (cs_net_token_load(token_file, &token, &err) != CS_OK) {
            fprintf(stderr, "calsweep-worker: --token-file: %s\n", err.msg);
            code = CS_EXIT_USAGE;
            goto cleanup;
        }
        cfg.token = token;
    }
    if (cs_agent_create(&cfg, &a, &err) != CS_OK) {
        fprintf(stderr, "calsweep-worker: %s\n", err.msg);
        goto cleanup;
    }
    if (cs_agent_run(a, &err) != CS_OK) {
        fprintf(stderr, "calsweep-worker: %s\n", err.msg);
        goto cleanup;
    }
    cs_agent_stats st;
    cs_agent_get_stats(a, &st);
    cs_log(CS_LOG_INFO,
           "exiting: %" PRId64 " jobs started, %" PRId64 " results, %" PRId64 " fails, %" PRId64
           " dropped",
           st.jobs_started, st.results, st.fails, st.dropped);
    code = CS_EXIT_OK;
cleanup:
    cs_agent_destroy(a);
    free(url);
    free(name);
    free(runner);
    free(guard);
    free(work_dir);
    free(cache_dir);
    free(token);
    return code;
}
