/* cmd_status.c - the read commands: `calsweep status [SWEEP]`, `jobs`, `workers`, `logs JOB`.
 * Text for people (aligned tables, a progress bar per sweep), --json for scripts (the reply data
 * of calsweepd as it is). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cs_cli.h"
#include "cs_time.h"

enum { OPT_JSON, OPT_SWEEP, OPT_STATE, OPT_LIMIT, OPT_OFFSET, OPT_ATTEMPT, OPT_TAIL };

static const cs_opt json_option = {"json",   0,    CS_OPT_NONE,
                                   OPT_JSON, NULL, "print calsweepd's reply as one JSON object"};

/* ---- status ---------------------------------------------------------------------------------- */

typedef struct status_args {
    const char *sweep;
    bool json;
} status_args;

static int status_opt(void *ctx, int id, const char *arg)
{
    status_args *a = ctx;
    if (id == OPT_JSON) {
        a->json = true;
        return CS_EXIT_OK;
    }
    if (a->sweep) {
        fprintf(stderr, "calsweep status: expected at most one sweep, got '%s' and '%s'\n",
                a->sweep, arg);
        return CS_EXIT_USAGE;
    }
    a->sweep = arg;
    return CS_EXIT_OK;
}

/* The state a person reads: calsweepd's sweep state, except that a sweep with nothing left to
 * run ("done") whose finished jobs all failed or were lost is "failed". */
static const char *shown_state(const cJSON *sw, int64_t ok, int64_t bad)
{
    const char *state = cs_client_str(sw, "state");
    return strcmp(state, "done") == 0 && ok == 0 && bad > 0 ? "failed" : state;
}

static void print_status(const cJSON *d)
{
    static const char *const states[] = {"queued", "running", "retry_wait", "done",
                                         "failed", "lost",    "cancelled"};
    static const char *const heads[] = {"QUEUED", "RUNNING", "RETRY",    "DONE",
                                        "FAILED", "LOST",    "CANCELLED"};
    const cJSON *sweeps = cJSON_GetObjectItemCaseSensitive(d, "sweeps"), *sw;
    int width = 4;
    char bar[21];

    cJSON_ArrayForEach(sw, sweeps)
    {
        int n = (int)strlen(cs_client_str(sw, "name"));
        width = n > width ? n : width;
    }
    if (cJSON_GetArraySize(sweeps) == 0) {
        printf("no sweeps yet (submit one: calsweep submit FILE)\n");
    } else {
        printf("%-4s %-*s %-9s %4s  %-27s %14s", "ID", width, "NAME", "STATE", "PRI", "PROGRESS",
               "FINISHED/TOTAL");
        for (size_t i = 0; i < sizeof(heads) / sizeof(heads[0]); i++) {
            printf(" %*s", (int)strlen(heads[i]) > 6 ? (int)strlen(heads[i]) : 6, heads[i]);
        }
        printf("\n");
    }
    cJSON_ArrayForEach(sw, sweeps)
    {
        const cJSON *c = cJSON_GetObjectItemCaseSensitive(sw, "counts");
        int64_t total = cs_client_int(sw, "total");
        int64_t ok = cs_client_int(c, "done") + cs_client_int(c, "cached");
        int64_t bad = cs_client_int(c, "failed") + cs_client_int(c, "lost");
        /* Progress counts every job that will not run again, whatever its outcome. */
        int64_t finished = ok + bad + cs_client_int(c, "cancelled");
        char frac[32];
        if (total == 0) {
            for (size_t i = 0; i < sizeof(states) / sizeof(states[0]); i++) {
                total += cs_client_int(c, states[i]);
            }
            total += cs_client_int(c, "cached");
        }
        snprintf(frac, sizeof(frac), "%lld/%lld", (long long)finished, (long long)total);
        printf("%-4lld %-*s %-9s %4lld  [%s] %3d%% %14s", (long long)cs_client_int(sw, "id"), width,
               cs_client_str(sw, "name"), shown_state(sw, ok, bad),
               (long long)cs_client_int(sw, "priority"), cs_client_bar(finished, total, bar, 20),
               total > 0 ? (int)(100 * finished / total) : 0, frac);
        for (size_t i = 0; i < sizeof(states) / sizeof(states[0]); i++) {
            int64_t v = cs_client_int(c, states[i]);
            if (strcmp(states[i], "done") == 0) {
                v = ok;
            }
            printf(" %*lld", (int)strlen(heads[i]) > 6 ? (int)strlen(heads[i]) : 6, (long long)v);
        }
        printf("\n");
        if (cs_client_int(c, "cached") > 0) {
            printf("     %-*s (%lld of the done jobs reused cached results)\n", width, "",
                   (long long)cs_client_int(c, "cached"));
        }
        if (bad > 0) {
            printf("     %-*s (%lld failed, %lld lost: calsweep jobs --sweep %lld --state "
                   "failed)\n",
                   width, "", (long long)cs_client_int(c, "failed"),
                   (long long)cs_client_int(c, "lost"), (long long)cs_client_int(sw, "id"));
        }
    }
    printf("workers: %lld active\n", (long long)cs_client_int(d, "workers"));
}

int cs_cmd_status(const cs_client *base, int argc, char **argv)
{
    static const char usage[] =
            "usage: calsweep status [OPTIONS] [SWEEP]\n\n"
            "Shows every sweep (or one, by name or id): its state (a sweep with nothing left to\n"
            "run whose jobs all failed or were lost shows as failed), a progress bar of the jobs\n"
            "finished (done, cached, failed, lost or cancelled), the jobs per state, and how\n"
            "many workers are active.\n";
    status_args a = {0};
    cs_client c;
    cs_msg req;
    cJSON *d = NULL;
    bool done;
    int code = cs_cli_parse(base, &c, "status", usage, argc, argv, &json_option, 1, status_opt, &a,
                            &done);
    if (code != CS_EXIT_OK || done) {
        return code;
    }
    cs_msg_init(&req, CS_MSG_STATUS);
    req.status.sweep = cs_client_borrow(a.sweep);
    code = cs_client_call(&c, "status", &req, NULL, &d);
    if (code == CS_EXIT_OK) {
        if (a.json) {
            code = cs_client_print_json(d, "status");
        } else {
            print_status(d);
        }
    }
    cJSON_Delete(d);
    return code;
}

/* ---- jobs ------------------------------------------------------------------------------------ */

typedef struct jobs_args {
    const char *sweep, *state;
    int64_t limit, offset;
    bool json;
} jobs_args;

static int jobs_opt(void *ctx, int id, const char *arg)
{
    jobs_args *a = ctx;
    cs_err err = {0};
    switch (id) {
    case OPT_JSON:
        a->json = true;
        return CS_EXIT_OK;
    case OPT_SWEEP:
        a->sweep = arg;
        return CS_EXIT_OK;
    case OPT_STATE:
        a->state = arg;
        return CS_EXIT_OK;
    case OPT_LIMIT:
        if (cs_parse_i64(arg, 1, 100000, &a->limit, "--limit", &err) == CS_OK) {
            return CS_EXIT_OK;
        }
        break;
    case OPT_OFFSET:
        if (cs_parse_i64(arg, 0, INT64_C(1) << 53, &a->offset, "--offset", &err) == CS_OK) {
            return CS_EXIT_OK;
        }
        break;
    default:
        cs_err_set(&err, CS_EINVAL, 0, "unexpected argument '%s'", arg);
        break;
    }
    fprintf(stderr, "calsweep jobs: %s (see calsweep jobs --help)\n", err.msg);
    return CS_EXIT_USAGE;
}

/* The axes of a job as "name=value name=value": objects with a "name" (algorithm, selector) as
 * their name and bit width, axes that do not apply (null) left out. */
static void print_axes(const cJSON *axes)
{
    const cJSON *v;
    bool first = true;
    cJSON_ArrayForEach(v, axes)
    {
        const cJSON *name = cJSON_GetObjectItemCaseSensitive(v, "name");
        const cJSON *bits = cJSON_GetObjectItemCaseSensitive(v, "bits");
        if (cJSON_IsNull(v)) {
            continue;
        }
        printf("%s%s=", first ? "" : " ", v->string);
        first = false;
        if (cJSON_IsString(v)) {
            printf("%s", v->valuestring);
        } else if (cJSON_IsObject(v) && cJSON_IsString(name)) {
            printf("%s", name->valuestring);
            if (cJSON_IsNumber(bits)) {
                printf("(bits=%g)", bits->valuedouble);
            }
        } else {
            char *t = cJSON_PrintUnformatted(v);
            printf("%s", t ? t : "?");
            free(t);
        }
    }
}

/* The LAST ERROR column of calsweep jobs: "kind: reason" as calsweepd stores it, its first line
 * only, cut to JOBS_ERROR_WIDTH characters (the whole text: calsweep jobs --json, calsweep logs).
 */
#define JOBS_ERROR_WIDTH 40

/* Fills cell (JOBS_ERROR_CELL bytes) from the error text; "-" when there is none. Counts
 * characters, not bytes, and never cuts a UTF-8 sequence. */
#define JOBS_ERROR_CELL (4 * JOBS_ERROR_WIDTH + 1)
static const char *error_cell(const char *text, char *cell)
{
    size_t n = strcspn(text, "\r\n"), chars = 0, cut = n;
    bool more = text[n] != '\0' && text[n + strspn(text + n, "\r\n")] != '\0';
    if (n == 0) {
        snprintf(cell, JOBS_ERROR_CELL, "-");
        return cell;
    }
    for (size_t i = 0; i < n; i++) {
        if (((unsigned char)text[i] & 0xC0u) != 0x80u) {
            if (chars == JOBS_ERROR_WIDTH - 3) {
                cut = i;
            }
            chars++;
        }
    }
    if (chars > JOBS_ERROR_WIDTH || more) {
        snprintf(cell, JOBS_ERROR_CELL, "%.*s...", (int)cut, text);
    } else {
        snprintf(cell, JOBS_ERROR_CELL, "%.*s", (int)n, text);
    }
    return cell;
}

/* The PROGRESS column of calsweep jobs and calsweep workers, from a reply row's progress
 * ({stage, detail, done, total, stage_ms}, see README.md "Control replies"): "stage [detail]
 * [done/total] [(time in the stage)]", e.g. "quantize layer 7/24 (12 s)", "evaluate arith_mc
 * 300/1000 (41 s)"; "-" when the row has none. */
#define PROGRESS_CELL 160
static const char *progress_cell(const cJSON *row, char *cell)
{
    const cJSON *p = cJSON_GetObjectItemCaseSensitive(row, "progress");
    const char *detail = cs_client_str(p, "detail");
    int64_t done = cs_client_int(p, "done"), total = cs_client_int(p, "total");
    int64_t s = cs_client_int(p, "stage_ms") / 1000;
    size_t n;
    if (!cJSON_IsObject(p)) {
        snprintf(cell, PROGRESS_CELL, "-");
        return cell;
    }
    n = (size_t)snprintf(cell, PROGRESS_CELL, "%.64s%s%.64s", cs_client_str(p, "stage"),
                         detail[0] ? " " : "", detail);
    if (n < PROGRESS_CELL && (total > 0 || done > 0)) {
        n += (size_t)snprintf(cell + n, PROGRESS_CELL - n, total > 0 ? " %lld/%lld" : " %lld",
                              (long long)done, (long long)total);
    }
    if (n < PROGRESS_CELL && cs_client_int(p, "stage_ms") > 0) {
        snprintf(cell + n, PROGRESS_CELL - n,
                 s < 120    ? " (%lld s)"
                 : s < 7200 ? " (%lld min)"
                            : " (%lld h)",
                 (long long)(s < 120    ? s
                             : s < 7200 ? s / 60
                                        : s / 3600));
    }
    return cell;
}

/* The widest PROGRESS cell of a reply's rows (at least the heading's). */
static int progress_width(const cJSON *rows)
{
    const cJSON *r;
    char cell[PROGRESS_CELL];
    int w = (int)strlen("PROGRESS");
    cJSON_ArrayForEach(r, rows)
    {
        int n = (int)strlen(progress_cell(r, cell));
        w = n > w ? n : w;
    }
    return w;
}

static void print_jobs(const cJSON *d)
{
    const cJSON *jobs = cJSON_GetObjectItemCaseSensitive(d, "jobs"), *j;
    int64_t now = cs_time_wall_ms();
    int wworker = 6, wprog = progress_width(jobs);
    char ago[32];

    cJSON_ArrayForEach(j, jobs)
    {
        int n = (int)strlen(cs_client_str(j, "worker"));
        wworker = n > wworker ? n : wworker;
    }
    if (cJSON_GetArraySize(jobs) > 0) {
        printf("%-6s %-5s %-10s %3s %-*s %-9s %-*s %-*s %-12s %s\n", "ID", "SWEEP", "STATE", "ATT",
               wworker, "WORKER", "UPDATED", wprog, "PROGRESS", JOBS_ERROR_WIDTH, "LAST ERROR",
               "KEY", "AXES");
    }
    cJSON_ArrayForEach(j, jobs)
    {
        const char *w = cs_client_str(j, "worker");
        char error[JOBS_ERROR_CELL], prog[PROGRESS_CELL];
        printf("%-6lld %-5lld %-10s %3lld %-*s %-9s %-*s %-*s %-12.12s ",
               (long long)cs_client_int(j, "id"), (long long)cs_client_int(j, "sweep_id"),
               cs_client_str(j, "state"), (long long)cs_client_int(j, "attempt"), wworker,
               w[0] ? w : "-", cs_client_ago(cs_client_int(j, "updated_ms"), now, ago, sizeof(ago)),
               wprog, progress_cell(j, prog), JOBS_ERROR_WIDTH,
               error_cell(cs_client_str(j, "last_error"), error), cs_client_str(j, "key"));
        print_axes(cJSON_GetObjectItemCaseSensitive(j, "axes"));
        printf("\n");
    }
    printf("%d of %lld jobs shown\n", cJSON_GetArraySize(jobs),
           (long long)cs_client_int(d, "total"));
}

int cs_cmd_jobs(const cs_client *base, int argc, char **argv)
{
    static const char usage[] =
            "usage: calsweep jobs [OPTIONS]\n\n"
            "Lists jobs, oldest first: id, sweep id, state, attempt, worker, last change, the\n"
            "running job's progress (stage, what it works on, done/total, time in the stage),\n"
            "last error (kind and first line of the reason; see calsweep logs for all of it), key\n"
            "and axis values. States: queued, running, retry_wait, done, failed, lost, cancelled,\n"
            "cached.\n";
    static const cs_opt own[] = {
            {"sweep", 0, CS_OPT_VALUE, OPT_SWEEP, "SWEEP", "only this sweep (name or id)"},
            {"state", 0, CS_OPT_VALUE, OPT_STATE, "STATE", "only jobs in this state"},
            {"limit", 0, CS_OPT_VALUE, OPT_LIMIT, "N", "at most N jobs (100)"},
            {"offset", 0, CS_OPT_VALUE, OPT_OFFSET, "N", "skip the first N jobs (0)"},
            {"json", 0, CS_OPT_NONE, OPT_JSON, NULL, "print calsweepd's reply as one JSON object"},
    };
    jobs_args a = {.limit = 100};
    cs_client c;
    cs_msg req;
    cJSON *d = NULL;
    bool done;
    int code = cs_cli_parse(base, &c, "jobs", usage, argc, argv, own, sizeof(own) / sizeof(own[0]),
                            jobs_opt, &a, &done);
    if (code != CS_EXIT_OK || done) {
        return code;
    }
    cs_msg_init(&req, CS_MSG_JOBS);
    req.jobs.sweep = cs_client_borrow(a.sweep);
    req.jobs.state = cs_client_borrow(a.state);
    req.jobs.limit = a.limit;
    req.jobs.offset = a.offset;
    code = cs_client_call(&c, "jobs", &req, NULL, &d);
    if (code == CS_EXIT_OK) {
        if (a.json) {
            code = cs_client_print_json(d, "jobs");
        } else {
            print_jobs(d);
        }
    }
    cJSON_Delete(d);
    return code;
}

/* ---- workers --------------------------------------------------------------------------------- */

static int json_only_opt(void *ctx, int id, const char *arg)
{
    if (id == OPT_JSON) {
        *(bool *)ctx = true;
        return CS_EXIT_OK;
    }
    fprintf(stderr, "calsweep: unexpected argument '%s' (see --help)\n", arg);
    return CS_EXIT_USAGE;
}

int cs_cmd_workers(const cs_client *base, int argc, char **argv)
{
    static const char usage[] =
            "usage: calsweep workers [OPTIONS]\n\n"
            "Lists the workers calsweepd has heard from: name, host, state, when it was last\n"
            "heard from, the job it runs and that job's progress (stage, what it works on,\n"
            "done/total, time in the stage). A worker is active when calsweepd heard from it\n"
            "recently and it has not said goodbye; calsweepd forgets idle workers after\n"
            "--worker-prune-s.\n";
    const cJSON *w;
    int64_t now = cs_time_wall_ms();
    bool json = false, done;
    cs_client c;
    cs_msg req;
    cJSON *d = NULL;
    char ago[32];
    int wname = 6, whost = 4;
    int code = cs_cli_parse(base, &c, "workers", usage, argc, argv, &json_option, 1, json_only_opt,
                            &json, &done);
    if (code != CS_EXIT_OK || done) {
        return code;
    }
    cs_msg_init(&req, CS_MSG_WORKERS);
    code = cs_client_call(&c, "workers", &req, NULL, &d);
    if (code == CS_EXIT_OK && json) {
        code = cs_client_print_json(d, "workers");
    } else if (code == CS_EXIT_OK) {
        const cJSON *list = cJSON_GetObjectItemCaseSensitive(d, "workers");
        cJSON_ArrayForEach(w, list)
        {
            int n = (int)strlen(cs_client_str(w, "name")),
                h = (int)strlen(cs_client_str(w, "host"));
            wname = n > wname ? n : wname;
            whost = h > whost ? h : whost;
        }
        if (cJSON_GetArraySize(list) == 0) {
            printf("no workers yet (start one: calsweep-worker --model-root DIR)\n");
        } else {
            printf("%-*s %-*s %-6s %-10s %-6s %s\n", wname, "WORKER", whost, "HOST", "STATE",
                   "LAST SEEN", "JOB", "PROGRESS");
        }
        cJSON_ArrayForEach(w, list)
        {
            const cJSON *job = cJSON_GetObjectItemCaseSensitive(w, "job_id");
            char jb[32] = "idle", prog[PROGRESS_CELL];
            if (cJSON_IsNumber(job)) {
                snprintf(jb, sizeof(jb), "%lld", (long long)job->valuedouble);
            }
            printf("%-*s %-*s %-6s %-10s %-6s %s\n", wname, cs_client_str(w, "name"), whost,
                   cs_client_str(w, "host"),
                   cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(w, "active")) ? "active" : "gone",
                   cs_client_ago(cs_client_int(w, "last_seen_ms"), now, ago, sizeof(ago)), jb,
                   progress_cell(w, prog));
        }
    }
    cJSON_Delete(d);
    return code;
}

/* ---- logs ------------------------------------------------------------------------------------ */

typedef struct logs_args {
    int64_t job, attempt, tail;
    bool json;
} logs_args;

static int logs_opt(void *ctx, int id, const char *arg)
{
    logs_args *a = ctx;
    cs_err err = {0};
    cs_rc rc = CS_OK;
    switch (id) {
    case OPT_JSON:
        a->json = true;
        break;
    case OPT_ATTEMPT:
        rc = cs_parse_i64(arg, 1, 1000000, &a->attempt, "--attempt", &err);
        break;
    case OPT_TAIL:
        rc = cs_parse_i64(arg, 0, INT64_C(1) << 40, &a->tail, "--tail", &err);
        break;
    default:
        if (a->job) {
            rc = cs_err_set(&err, CS_EINVAL, 0, "expected one job id, got another: '%s'", arg);
        } else {
            rc = cs_parse_i64(arg, 1, INT64_C(1) << 53, &a->job, "JOB", &err);
        }
        break;
    }
    if (rc != CS_OK) {
        fprintf(stderr, "calsweep logs: %s (see calsweep logs --help)\n", err.msg);
        return CS_EXIT_USAGE;
    }
    return CS_EXIT_OK;
}

int cs_cmd_logs(const cs_client *base, int argc, char **argv)
{
    static const char usage[] =
            "usage: calsweep logs [OPTIONS] JOB\n\n"
            "Prints the log (stderr) of a job's attempt: the log file when calsweepd can read it,\n"
            "otherwise the last lines the worker sent with its heartbeats.\n";
    static const cs_opt own[] = {
            {"attempt", 0, CS_OPT_VALUE, OPT_ATTEMPT, "N", "this attempt (default: the latest)"},
            {"tail", 0, CS_OPT_VALUE, OPT_TAIL, "BYTES", "only the last BYTES bytes (0 = all)"},
            {"json", 0, CS_OPT_NONE, OPT_JSON, NULL, "print calsweepd's reply as one JSON object"},
    };
    logs_args a = {0};
    cs_client c;
    cs_msg req;
    cJSON *d = NULL;
    bool done;
    int code = cs_cli_parse(base, &c, "logs", usage, argc, argv, own, sizeof(own) / sizeof(own[0]),
                            logs_opt, &a, &done);
    if (code != CS_EXIT_OK || done) {
        return code;
    }
    if (a.job == 0) {
        fprintf(stderr, "calsweep logs: expected a job id (see calsweep jobs)\n");
        return CS_EXIT_USAGE;
    }
    cs_msg_init(&req, CS_MSG_LOGS);
    req.logs.job_id = a.job;
    req.logs.attempt = a.attempt;
    req.logs.tail = a.tail;
    code = cs_client_call(&c, "logs", &req, NULL, &d);
    if (code == CS_EXIT_OK && a.json) {
        code = cs_client_print_json(d, "logs");
    } else if (code == CS_EXIT_OK) {
        const char *log = cs_client_str(d, "log");
        if (cs_client_int(d, "attempt") == 0) {
            fprintf(stderr, "calsweep logs: job %lld has not started yet\n", (long long)a.job);
        } else if (strcmp(cs_client_str(d, "source"), "file") != 0) {
            fprintf(stderr,
                    "calsweep logs: job %lld attempt %lld: log file not readable here; the last "
                    "lines the worker sent:\n",
                    (long long)a.job, (long long)cs_client_int(d, "attempt"));
        }
        fputs(log, stdout);
        if (log[0] && log[strlen(log) - 1] != '\n') {
            putchar('\n');
        }
    }
    cJSON_Delete(d);
    return code;
}
