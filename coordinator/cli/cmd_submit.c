/* cmd_submit.c - `calsweep submit FILE [--force]` and `calsweep extend SWEEP FILE`: send a sweep
 * file to calsweepd, which validates it (every error is printed, one per line, naming its path),
 * expands it into jobs and stores them in one transaction. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cs_canon.h"
#include "cs_cli.h"
#include "cs_json.h"
#include "cs_limits.h"
#include "cs_path.h"

enum { OPT_FORCE, OPT_JSON };

typedef struct submit_args {
    const char *cmd;
    const char *pos[2];
    size_t n_pos, want_pos;
    bool force, json;
} submit_args;

static int submit_opt(void *ctx, int id, const char *arg)
{
    submit_args *a = ctx;
    switch (id) {
    case OPT_FORCE:
        a->force = true;
        return CS_EXIT_OK;
    case OPT_JSON:
        a->json = true;
        return CS_EXIT_OK;
    default:
        if (a->n_pos == a->want_pos) {
            fprintf(stderr, "calsweep %s: unexpected argument '%s' (see calsweep %s --help)\n",
                    a->cmd, arg, a->cmd);
            return CS_EXIT_USAGE;
        }
        a->pos[a->n_pos++] = arg;
        return CS_EXIT_OK;
    }
}

/* The sweep file's text (owned), or NULL after printing why. It is sent as written (the codec
 * only drops whitespace): the order of its axes and models is the order of its jobs, which
 * canonical JSON would sort away. The sizes are those calsweepd (and plan) accept, so a sweep
 * that passes here fits in the SUBMIT message. */
static char *load_sweep(const char *cmd, const char *path)
{
    cJSON *tree = NULL;
    char *text = NULL, *canon = NULL;
    size_t len = 0, canon_len = 0;
    cs_err err = {0};
    if (cs_path_read_file(path, CS_LIMIT_SWEEP_BYTES, &text, &len, &err) != CS_OK ||
        cs_json_parse(text, len, path, &tree, &err) != CS_OK ||
        cs_canon_string(tree, &canon, &canon_len, &err) != CS_OK) {
        fprintf(stderr, "calsweep %s: %s\n", cmd, err.msg);
        free(text);
        text = NULL;
    } else if (canon_len > CS_LIMIT_SWEEP_BYTES) {
        fprintf(stderr,
                "calsweep %s: %s: the sweep's canonical JSON is %zu bytes, above the limit of "
                "%zu\n",
                cmd, path, canon_len, CS_LIMIT_SWEEP_BYTES);
        free(text);
        text = NULL;
    } else if (!cJSON_IsObject(tree)) {
        fprintf(stderr, "calsweep %s: %s: expected a JSON object (a sweep file)\n", cmd, path);
        free(text);
        text = NULL;
    }
    free(canon);
    cJSON_Delete(tree);
    return text;
}

static void print_warnings(const cJSON *d, const char *file)
{
    const cJSON *w;
    cJSON_ArrayForEach(w, cJSON_GetObjectItemCaseSensitive(d, "warnings"))
    {
        if (cJSON_IsString(w)) {
            fprintf(stderr, "%s: warning: %s\n", file, w->valuestring);
        }
    }
}

int cs_cmd_submit(const cs_client *base, int argc, char **argv)
{
    static const char usage[] =
            "usage: calsweep submit [OPTIONS] FILE\n\n"
            "Sends the sweep FILE to calsweepd, which validates it, expands it into jobs and\n"
            "queues them (jobs whose result is already known become cached). Check it first\n"
            "without a daemon with `calsweep plan FILE`.\n";
    static const cs_opt own[] = {
            {"force", 0, CS_OPT_NONE, OPT_FORCE, NULL, "run every job, even those cached"},
            {"json", 0, CS_OPT_NONE, OPT_JSON, NULL, "print calsweepd's reply as one JSON object"},
    };
    submit_args a = {.cmd = "submit", .want_pos = 1};
    cs_client c;
    cs_msg req;
    cJSON *d = NULL;
    char *doc;
    bool done;
    int code = cs_cli_parse(base, &c, "submit", usage, argc, argv, own,
                            sizeof(own) / sizeof(own[0]), submit_opt, &a, &done);
    if (code != CS_EXIT_OK || done) {
        return code;
    }
    if (a.n_pos != 1) {
        fprintf(stderr, "calsweep submit: expected a sweep file (see calsweep submit --help)\n");
        return CS_EXIT_USAGE;
    }
    doc = load_sweep("submit", a.pos[0]);
    if (!doc) {
        return CS_EXIT_FAIL;
    }
    cs_msg_init(&req, CS_MSG_SUBMIT);
    req.submit.sweep = doc;
    req.submit.force = a.force;
    code = cs_client_call_long(&c, "submit", &req, a.pos[0], CS_CLIENT_LONG_MS, &d);
    if (code == CS_EXIT_OK) {
        print_warnings(d, a.pos[0]);
        if (a.json) {
            code = cs_client_print_json(d, "submit");
        } else if (cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(d, "already_stored"))) {
            /* A resend (calsweepd restarted while answering) or the same file again. */
            printf("sweep %s was already stored with this content (id %lld): %lld jobs; nothing "
                   "was added\n",
                   cs_client_str(d, "name"), (long long)cs_client_int(d, "sweep_id"),
                   (long long)cs_client_int(d, "jobs"));
            printf("follow it with: calsweep status %s\n", cs_client_str(d, "name"));
        } else {
            printf("submitted sweep %s (id %lld): %lld jobs, %lld queued, %lld cached, %lld "
                   "baseline%s\n",
                   cs_client_str(d, "name"), (long long)cs_client_int(d, "sweep_id"),
                   (long long)cs_client_int(d, "jobs"), (long long)cs_client_int(d, "queued"),
                   (long long)cs_client_int(d, "cached"), (long long)cs_client_int(d, "baselines"),
                   cs_client_int(d, "baselines") == 1 ? "" : "s");
            printf("follow it with: calsweep status %s\n", cs_client_str(d, "name"));
        }
    }
    cJSON_Delete(d);
    free(doc);
    return code;
}

int cs_cmd_extend(const cs_client *base, int argc, char **argv)
{
    static const char usage[] =
            "usage: calsweep extend [OPTIONS] SWEEP FILE\n\n"
            "Adds to the sweep SWEEP (name or id) the jobs of FILE it does not have yet, e.g.\n"
            "after adding values to an axis. FILE must describe the same sweep (same name);\n"
            "jobs already there are left as they are.\n";
    static const cs_opt own[] = {
            {"json", 0, CS_OPT_NONE, OPT_JSON, NULL, "print calsweepd's reply as one JSON object"},
    };
    submit_args a = {.cmd = "extend", .want_pos = 2};
    cs_client c;
    cs_msg req;
    cJSON *d = NULL;
    char *doc;
    bool done;
    int code = cs_cli_parse(base, &c, "extend", usage, argc, argv, own, 1, submit_opt, &a, &done);
    if (code != CS_EXIT_OK || done) {
        return code;
    }
    if (a.n_pos != 2) {
        fprintf(stderr, "calsweep extend: expected a sweep and a sweep file (see calsweep extend "
                        "--help)\n");
        return CS_EXIT_USAGE;
    }
    doc = load_sweep("extend", a.pos[1]);
    if (!doc) {
        return CS_EXIT_FAIL;
    }
    cs_msg_init(&req, CS_MSG_EXTEND);
    req.extend.sweep_id = a.pos[0];
    req.extend.sweep = doc;
    code = cs_client_call_long(&c, "extend", &req, a.pos[1], CS_CLIENT_LONG_MS, &d);
    if (code == CS_EXIT_OK) {
        if (a.json) {
            code = cs_client_print_json(d, "extend");
        } else {
            printf("extended sweep %s (id %lld): %lld jobs added (%lld cached), %lld already "
                   "there\n",
                   a.pos[0], (long long)cs_client_int(d, "sweep_id"),
                   (long long)cs_client_int(d, "added"), (long long)cs_client_int(d, "cached"),
                   (long long)cs_client_int(d, "existing"));
        }
    }
    cJSON_Delete(d);
    free(doc);
    return code;
}
