/* cmd_job.c - `calsweep job ID [--json]`: one job whole (JOB_INFO): its state, axes, progress,
 * last error, attempts with worker and exit, its config, and the shell lines that reproduce it on
 * one machine. Text for people, --json for scripts (calsweepd's reply data as it is). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cs_cli.h"
#include "cs_time.h"

enum { OPT_JSON };

typedef struct job_args {
    int64_t job;
    bool json;
} job_args;

static int job_opt(void *ctx, int id, const char *arg)
{
    job_args *a = ctx;
    cs_err err = {0};
    cs_rc rc = CS_OK;
    if (id == OPT_JSON) {
        a->json = true;
    } else if (a->job) {
        rc = cs_err_set(&err, CS_EINVAL, 0, "expected one job id, got another: '%s'", arg);
    } else {
        rc = cs_parse_i64(arg, 1, INT64_C(1) << 53, &a->job, "JOB", &err);
    }
    if (rc != CS_OK) {
        fprintf(stderr, "calsweep job: %s (see calsweep job --help)\n", err.msg);
        return CS_EXIT_USAGE;
    }
    return CS_EXIT_OK;
}

/* "name=value ..." of an axes object: strings bare, other values as compact JSON. */
static void print_axes(const cJSON *axes)
{
    const cJSON *v;
    cJSON_ArrayForEach(v, axes)
    {
        char *text = cJSON_IsString(v) ? NULL : cJSON_PrintUnformatted(v);
        printf(" %s=%s", v->string, cJSON_IsString(v) ? v->valuestring : text ? text : "?");
        free(text);
    }
    putchar('\n');
}

/* "1m30s", "4.2s" for a duration in ms. */
static const char *duration(int64_t ms, char *buf, size_t n)
{
    if (ms < 60000) {
        snprintf(buf, n, "%.1fs", (double)ms / 1000.0);
    } else if (ms < 3600000) {
        snprintf(buf, n, "%lldm%02llds", (long long)(ms / 60000), (long long)(ms % 60000 / 1000));
    } else {
        snprintf(buf, n, "%lldh%02lldm", (long long)(ms / 3600000),
                 (long long)(ms % 3600000 / 60000));
    }
    return buf;
}

static void print_progress(const cJSON *p)
{
    if (!cJSON_IsObject(p) || cs_client_str(p, "stage")[0] == '\0') {
        return;
    }
    const char *detail = cs_client_str(p, "detail");
    printf("progress  %s%s%s %lld/%lld", cs_client_str(p, "stage"), detail[0] ? " " : "", detail,
           (long long)cs_client_int(p, "done"), (long long)cs_client_int(p, "total"));
    if (cs_client_int(p, "stage_ms") > 0) {
        char b[32];
        printf(" (%s)", duration(cs_client_int(p, "stage_ms"), b, sizeof b));
    }
    putchar('\n');
}

static void print_attempts(const cJSON *list, int64_t job, int64_t now)
{
    const cJSON *a;
    if (cJSON_GetArraySize(list) == 0) {
        printf("attempts  none yet\n");
        return;
    }
    printf("attempts\n  %-3s %-20s %-12s %-10s %-9s %-10s %-6s %s\n", "N", "WORKER", "HOST",
           "STARTED", "TOOK", "OUTCOME", "EXIT", "ERROR");
    cJSON_ArrayForEach(a, list)
    {
        char ago[32], took[32], exit_text[32] = "-";
        int64_t started = cs_client_int(a, "started_ms"), ended = cs_client_int(a, "ended_ms");
        const char *outcome = cs_client_str(a, "outcome"), *error = cs_client_str(a, "error");
        if (cs_client_int(a, "signal") > 0) {
            snprintf(exit_text, sizeof exit_text, "sig%lld", (long long)cs_client_int(a, "signal"));
        } else if (cJSON_IsNumber(cJSON_GetObjectItemCaseSensitive(a, "exit_status"))) {
            snprintf(exit_text, sizeof exit_text, "%lld",
                     (long long)cs_client_int(a, "exit_status"));
        }
        printf("  %-3lld %-20s %-12s %-10s %-9s %-10s %-6s %.*s\n",
               (long long)cs_client_int(a, "n"), cs_client_str(a, "worker"),
               cs_client_str(a, "host")[0] ? cs_client_str(a, "host") : "-",
               cs_client_ago(started, now, ago, sizeof ago),
               duration((ended ? ended : now) - started, took, sizeof took),
               outcome[0] ? outcome : "running", exit_text, (int)strcspn(error, "\n"), error);
    }
    const cJSON *last = cJSON_GetArrayItem(list, cJSON_GetArraySize(list) - 1);
    if (cs_client_str(last, "log_path")[0]) {
        printf("log       %s (calsweep logs %lld)\n", cs_client_str(last, "log_path"),
               (long long)job);
    }
}

static void print_job(const cJSON *d)
{
    int64_t now = cs_time_wall_ms();
    char ago[32];
    const char *err = cs_client_str(d, "last_error");
    char *config = cJSON_Print(cJSON_GetObjectItemCaseSensitive(d, "config"));
    printf("job %lld  sweep %s (%lld)  %s  attempt %lld/%lld\n", (long long)cs_client_int(d, "id"),
           cs_client_str(d, "sweep"), (long long)cs_client_int(d, "sweep_id"),
           cs_client_str(d, "state"), (long long)cs_client_int(d, "attempt"),
           (long long)cs_client_int(d, "max_attempts"));
    printf("key       %s\naxes     ", cs_client_str(d, "key"));
    print_axes(cJSON_GetObjectItemCaseSensitive(d, "axes"));
    printf("updated   %s", cs_client_ago(cs_client_int(d, "updated_ms"), now, ago, sizeof ago));
    printf(" (created %s)\n", cs_client_ago(cs_client_int(d, "created_ms"), now, ago, sizeof ago));
    print_progress(cJSON_GetObjectItemCaseSensitive(d, "progress"));
    if (err[0]) {
        printf("error     %.*s\n", (int)strcspn(err, "\n"), err);
    }
    print_attempts(cJSON_GetObjectItemCaseSensitive(d, "attempts"), cs_client_int(d, "id"), now);
    printf("\nconfig\n%s\n\nreproduce on one machine\n%s", config ? config : "{}",
           cs_client_str(d, "reproduce"));
    free(config);
}

int cs_cmd_job(const cs_client *base, int argc, char **argv)
{
    static const char usage[] =
            "usage: calsweep job [OPTIONS] JOB\n\n"
            "Prints one job whole: state, axes, progress, last error, every attempt with its\n"
            "worker and exit, the config, and the shell lines that rerun it on one machine.\n";
    static const cs_opt own[] = {
            {"json", 0, CS_OPT_NONE, OPT_JSON, NULL, "print calsweepd's reply as one JSON object"},
    };
    job_args a = {0};
    cs_client c;
    cs_msg req;
    cJSON *d = NULL;
    bool done;
    int code = cs_cli_parse(base, &c, "job", usage, argc, argv, own, sizeof(own) / sizeof(own[0]),
                            job_opt, &a, &done);
    if (code != CS_EXIT_OK || done) {
        return code;
    }
    if (a.job == 0) {
        fprintf(stderr, "calsweep job: expected a job id (see calsweep jobs)\n");
        return CS_EXIT_USAGE;
    }
    cs_msg_init(&req, CS_MSG_JOB_INFO);
    req.job_info.job_id = a.job;
    code = cs_client_call(&c, "job", &req, NULL, &d);
    if (code == CS_EXIT_OK && a.json) {
        code = cs_client_print_json(d, "job");
    } else if (code == CS_EXIT_OK) {
        print_job(d);
    }
    cJSON_Delete(d);
    return code;
}
