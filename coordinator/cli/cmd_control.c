/* cmd_control.c - the commands that change a sweep: `calsweep cancel SWEEP | --job ID`,
 * `pause SWEEP`, `resume SWEEP`, `retry [SWEEP] --failed|--lost`. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cs_cli.h"

enum { OPT_JSON, OPT_JOB, OPT_FAILED, OPT_LOST };

typedef struct ctl_args {
    const char *cmd;
    const char *sweep;
    int64_t job;
    bool failed, lost, json;
} ctl_args;

static int ctl_opt(void *ctx, int id, const char *arg)
{
    ctl_args *a = ctx;
    cs_err err = {0};
    bool *flag = id == OPT_JSON     ? &a->json
                 : id == OPT_FAILED ? &a->failed
                 : id == OPT_LOST   ? &a->lost
                                    : NULL;
    if (flag) {
        *flag = true;
    } else if (id == OPT_JOB) {
        if (cs_parse_i64(arg, 1, INT64_C(1) << 53, &a->job, "--job", &err) != CS_OK) {
            fprintf(stderr, "calsweep %s: %s\n", a->cmd, err.msg);
            return CS_EXIT_USAGE;
        }
    } else if (a->sweep) {
        fprintf(stderr, "calsweep %s: expected one sweep, got '%s' and '%s'\n", a->cmd, a->sweep,
                arg);
        return CS_EXIT_USAGE;
    } else {
        a->sweep = arg;
    }
    return CS_EXIT_OK;
}

static const cs_opt json_opt = {"json",   0,    CS_OPT_NONE,
                                OPT_JSON, NULL, "print calsweepd's reply as one JSON object"};

int cs_cmd_cancel(const cs_client *base, int argc, char **argv)
{
    static const char usage[] =
            "usage: calsweep cancel [OPTIONS] SWEEP\n"
            "       calsweep cancel [OPTIONS] --job ID\n\n"
            "Cancels a whole sweep (name or id; it hands out nothing more) or one job. Queued\n"
            "jobs are cancelled at once; running ones stop at their next heartbeat.\n";
    static const cs_opt own[] = {
            {"job", 0, CS_OPT_VALUE, OPT_JOB, "ID", "cancel only this job"},
            {"json", 0, CS_OPT_NONE, OPT_JSON, NULL, "print calsweepd's reply as one JSON object"},
    };
    ctl_args a = {.cmd = "cancel"};
    cs_client c;
    cs_msg req;
    cJSON *d = NULL;
    bool done;
    int code = cs_cli_parse(base, &c, "cancel", usage, argc, argv, own, 2, ctl_opt, &a, &done);
    if (code != CS_EXIT_OK || done) {
        return code;
    }
    if ((a.sweep == NULL) == (a.job == 0)) {
        fprintf(stderr,
                "calsweep cancel: name a sweep or --job ID, not %s (see calsweep cancel "
                "--help)\n",
                a.sweep ? "both" : "neither");
        return CS_EXIT_USAGE;
    }
    cs_msg_init(&req, CS_MSG_CANCEL);
    req.cancel.sweep = cs_client_borrow(a.sweep);
    req.cancel.job = a.job;
    code = cs_client_call(&c, "cancel", &req, NULL, &d);
    if (code == CS_EXIT_OK && a.json) {
        code = cs_client_print_json(d, "cancel");
    } else if (code == CS_EXIT_OK) {
        printf("cancelled %lld job%s", (long long)cs_client_int(d, "cancelled"),
               cs_client_int(d, "cancelled") == 1 ? "" : "s");
        if (cs_client_int(d, "running") > 0) {
            printf("; %lld running job%s will stop at the next heartbeat",
                   (long long)cs_client_int(d, "running"),
                   cs_client_int(d, "running") == 1 ? "" : "s");
        }
        printf("\n");
    }
    cJSON_Delete(d);
    return code;
}

static int pause_resume(const cs_client *base, int argc, char **argv, bool pause)
{
    static const char pause_usage[] =
            "usage: calsweep pause [OPTIONS] SWEEP\n\n"
            "Stops handing out the queued jobs of SWEEP (name or id); running jobs go on.\n"
            "`calsweep resume SWEEP` undoes it.\n";
    static const char resume_usage[] = "usage: calsweep resume [OPTIONS] SWEEP\n\n"
                                       "Hands out the jobs of a paused SWEEP (name or id) again.\n";
    const char *cmd = pause ? "pause" : "resume";
    ctl_args a = {.cmd = cmd};
    cs_client c;
    cs_msg req;
    cJSON *d = NULL;
    bool done;
    int code = cs_cli_parse(base, &c, cmd, pause ? pause_usage : resume_usage, argc, argv,
                            &json_opt, 1, ctl_opt, &a, &done);
    if (code != CS_EXIT_OK || done) {
        return code;
    }
    if (!a.sweep) {
        fprintf(stderr, "calsweep %s: expected a sweep (see calsweep %s --help)\n", cmd, cmd);
        return CS_EXIT_USAGE;
    }
    cs_msg_init(&req, pause ? CS_MSG_PAUSE : CS_MSG_RESUME);
    req.pause.sweep = cs_client_borrow(a.sweep);
    code = cs_client_call(&c, cmd, &req, NULL, &d);
    if (code == CS_EXIT_OK && a.json) {
        code = cs_client_print_json(d, cmd);
    } else if (code == CS_EXIT_OK) {
        printf("sweep %s (id %lld): %s\n", a.sweep, (long long)cs_client_int(d, "sweep_id"),
               cs_client_str(d, "state"));
    }
    cJSON_Delete(d);
    return code;
}

int cs_cmd_pause(const cs_client *base, int argc, char **argv)
{
    return pause_resume(base, argc, argv, true);
}

int cs_cmd_resume(const cs_client *base, int argc, char **argv)
{
    return pause_resume(base, argc, argv, false);
}

int cs_cmd_retry(const cs_client *base, int argc, char **argv)
{
    static const char usage[] =
            "usage: calsweep retry [OPTIONS] [SWEEP] --failed|--lost\n\n"
            "Puts failed and/or lost jobs (of SWEEP, or of every sweep) back in the queue with a\n"
            "fresh set of attempts.\n";
    static const cs_opt own[] = {
            {"failed", 0, CS_OPT_NONE, OPT_FAILED, NULL, "retry the failed jobs"},
            {"lost", 0, CS_OPT_NONE, OPT_LOST, NULL, "retry the lost jobs (no attempts left)"},
            {"json", 0, CS_OPT_NONE, OPT_JSON, NULL, "print calsweepd's reply as one JSON object"},
    };
    ctl_args a = {.cmd = "retry"};
    cs_client c;
    cs_msg req;
    cJSON *d = NULL;
    bool done;
    int code = cs_cli_parse(base, &c, "retry", usage, argc, argv, own, 3, ctl_opt, &a, &done);
    if (code != CS_EXIT_OK || done) {
        return code;
    }
    if (!a.failed && !a.lost) {
        fprintf(stderr, "calsweep retry: say which jobs: --failed, --lost or both (see calsweep "
                        "retry --help)\n");
        return CS_EXIT_USAGE;
    }
    cs_msg_init(&req, CS_MSG_RETRY);
    req.retry.sweep = cs_client_borrow(a.sweep);
    req.retry.failed = a.failed;
    req.retry.lost = a.lost;
    code = cs_client_call(&c, "retry", &req, NULL, &d);
    if (code == CS_EXIT_OK && a.json) {
        code = cs_client_print_json(d, "retry");
    } else if (code == CS_EXIT_OK) {
        printf("requeued %lld job%s\n", (long long)cs_client_int(d, "requeued"),
               cs_client_int(d, "requeued") == 1 ? "" : "s");
    }
    cJSON_Delete(d);
    return code;
}
