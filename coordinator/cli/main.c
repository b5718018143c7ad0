/* calsweep - the user's command: plan, submit, status, jobs, workers, watch, logs, cancel, pause,
 * resume, retry, extend, results, export.
 *
 * Global options (the connection to calsweepd) come before the subcommand; each subcommand parses
 * the rest itself and accepts the connection options too. The subcommands are one table (name,
 * function, summary) that drives both dispatch and `help`. */
#include <stdio.h>
#include <string.h>

#include <cjson/cJSON.h>
#include <nng/nng.h>
#include <sqlite3.h>
#include <uv.h>

#include "cs_cli.h"
#include "cs_client.h"
#include "cs_config.h"
#include "cs_opt.h"

enum { OPT_HELP, OPT_VERSION };

static const cs_opt options[] = {
        {"help", 'h', CS_OPT_NONE, OPT_HELP, NULL, "show this help and exit"},
        {"version", 'V', CS_OPT_NONE, OPT_VERSION, NULL, "show versions and exit"},
};

typedef struct cs_cli_cmd {
    const char *name;
    cs_cli_cmd_fn fn;
    const char *summary;
} cs_cli_cmd;

static int cmd_help(const cs_client *base, int argc, char **argv);

static const cs_cli_cmd commands[] = {
        {"plan", cs_cmd_plan, "validate and expand a sweep file; print counts and example cells"},
        {"methods", cs_cmd_methods, "list the algorithms and selectors and their parameters"},
        {"submit", cs_cmd_submit, "send a sweep file to calsweepd and queue its jobs"},
        {"status", cs_cmd_status, "progress of every sweep (or one) and the active workers"},
        {"jobs", cs_cmd_jobs, "list jobs: state, attempt, worker, axis values"},
        {"workers", cs_cmd_workers, "list the workers and what they run"},
        {"watch", cs_cmd_watch, "the live view: sweeps, workers, failing jobs, best so far"},
        {"logs", cs_cmd_logs, "print the log of a job's attempt"},
        {"job", cs_cmd_job, "one job whole: attempts, config and the command that reruns it"},
        {"cancel", cs_cmd_cancel, "cancel a sweep or one job"},
        {"pause", cs_cmd_pause, "stop handing out a sweep's jobs"},
        {"resume", cs_cmd_resume, "hand out a paused sweep's jobs again"},
        {"retry", cs_cmd_retry, "requeue failed or lost jobs"},
        {"extend", cs_cmd_extend, "add the new cells of a changed sweep file to its sweep"},
        {"results", cs_cmd_results, "aggregate a sweep over seeds: accuracy, balance, deltas"},
        {"export", cs_cmd_export, "a sweep's results as a table: LaTeX, markdown, CSV, JSON"},
        {"plot", cs_cmd_plot, "draw a figure of a sweep's results (SVG, PDF, PNG)"},
        {"help", cmd_help, "show help for calsweep or one of its commands"},
};

#define N_COMMANDS (sizeof(commands) / sizeof(commands[0]))

static void usage(FILE *out, const cs_opt *table, size_t n)
{
    fprintf(out, "usage: calsweep [OPTIONS] COMMAND [ARGS...]\n\n"
                 "Plan and submit calibration sweeps, watch them, and export their results.\n"
                 "\ncommands:\n");
    for (size_t i = 0; i < N_COMMANDS; i++) {
        fprintf(out, "  %-10s %s\n", commands[i].name, commands[i].summary);
    }
    fprintf(out, "\noptions:\n");
    cs_opt_print_help(out, table, n);
    fprintf(out, "\n`calsweep help COMMAND` or `calsweep COMMAND --help` shows a command's "
                 "options.\n");
}

static const cs_cli_cmd *find_command(const char *name)
{
    for (size_t i = 0; i < N_COMMANDS; i++) {
        if (strcmp(commands[i].name, name) == 0) {
            return &commands[i];
        }
    }
    return NULL;
}

/* calsweep help [COMMAND] */
static int cmd_help(const cs_client *base, int argc, char **argv)
{
    const cs_cli_cmd *c;
    char *sub[] = {NULL, "--help", NULL};
    cs_opt table[CS_CLIENT_MAX_OPTIONS];
    size_t n = cs_client_options(table, options, sizeof(options) / sizeof(options[0]));
    if (argc < 2) {
        usage(stdout, table, n);
        return CS_EXIT_OK;
    }
    if (argc > 2) {
        fprintf(stderr, "calsweep help: expected one command name (see calsweep help)\n");
        return CS_EXIT_USAGE;
    }
    c = find_command(argv[1]);
    if (!c) {
        fprintf(stderr, "calsweep help: unknown command '%s' (see calsweep help)\n", argv[1]);
        return CS_EXIT_USAGE;
    }
    if (c->fn == cmd_help) {
        usage(stdout, table, n);
        return CS_EXIT_OK;
    }
    sub[0] = argv[1];
    return c->fn(base, 2, sub);
}

int main(int argc, char **argv)
{
    cs_opt_parser p;
    cs_err err = {0};
    int id;
    const char *arg;
    const cs_cli_cmd *c;
    cs_client client = {0};
    cs_opt table[CS_CLIENT_MAX_OPTIONS];
    size_t n = cs_client_options(table, options, sizeof(options) / sizeof(options[0]));
    int code;
    cs_rc rc;

    cs_opt_init(&p, argc, argv, 1);
    while ((rc = cs_opt_next(&p, table, n, &id, &arg, &err)) == CS_OK) {
        switch (id) {
        case OPT_HELP:
            usage(stdout, table, n);
            return CS_EXIT_OK;
        case OPT_VERSION:
            printf("calsweep %s (sqlite %s, nng %s, libuv %s, cJSON %s)\n", CS_VERSION,
                   sqlite3_libversion(), nng_version(), uv_version_string(), cJSON_Version());
            return CS_EXIT_OK;
        case CS_OPT_POSITIONAL:
            c = find_command(arg);
            if (!c) {
                fprintf(stderr, "calsweep: unknown command '%s' (see calsweep help)\n", arg);
                return CS_EXIT_USAGE;
            }
            /* The command sees argv from its own name on. */
            return c->fn(&client, argc - (p.i - 1), argv + (p.i - 1));
        default:
            code = cs_client_take_option(&client, id, arg, "");
            if (code != -1) {
                if (code != CS_EXIT_OK) {
                    return code;
                }
                break;
            }
            fprintf(stderr, "calsweep: unexpected argument '%s' (see --help)\n", arg);
            return CS_EXIT_USAGE;
        }
    }
    if (rc != CS_ENOENT) {
        fprintf(stderr, "calsweep: %s (see --help)\n", err.msg);
        return CS_EXIT_USAGE;
    }
    usage(stderr, table, n);
    return CS_EXIT_USAGE;
}
