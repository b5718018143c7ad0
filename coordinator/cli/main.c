/* calsweep - the user's command: submit, plan, status, watch, export.
 *
 * Global options come before the subcommand; each subcommand parses the rest itself. The
 * subcommands are one table (name, function, summary) that drives both dispatch and `help`. */
#include <stdio.h>
#include <string.h>

#include <cjson/cJSON.h>
#include <nng/nng.h>
#include <sqlite3.h>
#include <uv.h>

#include "cs_cli.h"
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

static int cmd_help(int argc, char **argv);

static const cs_cli_cmd commands[] = {
        {"plan", cs_cmd_plan, "validate and expand a sweep file; print counts and example cells"},
        {"help", cmd_help, "show help for calsweep or one of its commands"},
};

#define N_COMMANDS (sizeof(commands) / sizeof(commands[0]))

static void usage(FILE *out)
{
    fprintf(out, "usage: calsweep [OPTIONS] COMMAND [ARGS...]\n\n"
                 "Plan and submit calibration sweeps, watch them, and export their results.\n"
                 "\ncommands:\n");
    for (size_t i = 0; i < N_COMMANDS; i++) {
        fprintf(out, "  %-10s %s\n", commands[i].name, commands[i].summary);
    }
    fprintf(out, "\noptions:\n");
    cs_opt_print_help(out, options, sizeof(options) / sizeof(options[0]));
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
static int cmd_help(int argc, char **argv)
{
    const cs_cli_cmd *c;
    char *sub[] = {NULL, "--help", NULL};
    if (argc < 2) {
        usage(stdout);
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
        usage(stdout);
        return CS_EXIT_OK;
    }
    sub[0] = argv[1];
    return c->fn(2, sub);
}

int main(int argc, char **argv)
{
    cs_opt_parser p;
    cs_err err = {0};
    int id;
    const char *arg;
    const cs_cli_cmd *c;
    cs_rc rc;

    cs_opt_init(&p, argc, argv, 1);
    while ((rc = cs_opt_next(&p, options, sizeof(options) / sizeof(options[0]), &id, &arg, &err)) ==
           CS_OK) {
        switch (id) {
        case OPT_HELP:
            usage(stdout);
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
            return c->fn(argc - (p.i - 1), argv + (p.i - 1));
        default:
            fprintf(stderr, "calsweep: unexpected argument '%s' (see --help)\n", arg);
            return CS_EXIT_USAGE;
        }
    }
    if (rc != CS_ENOENT) {
        fprintf(stderr, "calsweep: %s (see --help)\n", err.msg);
        return CS_EXIT_USAGE;
    }
    usage(stderr);
    return CS_EXIT_USAGE;
}
