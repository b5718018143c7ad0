/* calsweep-worker - the worker agent: asks calsweepd for jobs and runs each in a child process.
 * This build answers --help and --version; the daemon proper arrives with step 3. */
#include <stdio.h>
#include <string.h>

#include <cjson/cJSON.h>
#include <nng/nng.h>
#include <uv.h>

#include "cs_config.h"
#include "cs_opt.h"

enum { OPT_HELP, OPT_VERSION };

static const cs_opt options[] = {
        {"help", 'h', CS_OPT_NONE, OPT_HELP, NULL, "show this help and exit"},
        {"version", 'V', CS_OPT_NONE, OPT_VERSION, NULL, "show versions and exit"},
};

static void usage(FILE *out)
{
    fprintf(out, "usage: calsweep-worker [OPTIONS]\n\n"
                 "Registers with calsweepd, claims jobs, runs calsweep-run (or an exec command)\n"
                 "per job and reports progress and results.\n\noptions:\n");
    cs_opt_print_help(out, options, sizeof(options) / sizeof(options[0]));
}

int main(int argc, char **argv)
{
    cs_opt_parser p;
    cs_err err = {0};
    int id;
    const char *arg;
    cs_rc rc;

    cs_opt_init(&p, argc, argv, 1);
    while ((rc = cs_opt_next(&p, options, sizeof(options) / sizeof(options[0]), &id, &arg, &err)) ==
           CS_OK) {
        switch (id) {
        case OPT_HELP:
            usage(stdout);
            return CS_EXIT_OK;
        case OPT_VERSION:
            printf("calsweep-worker %s (nng %s, libuv %s, cJSON %s)\n", CS_VERSION, nng_version(),
                   uv_version_string(), cJSON_Version());
            return CS_EXIT_OK;
        default:
            fprintf(stderr, "calsweep-worker: unexpected argument '%s' (see --help)\n", arg);
            return CS_EXIT_USAGE;
        }
    }
    if (rc != CS_ENOENT) {
        fprintf(stderr, "calsweep-worker: %s (see --help)\n", err.msg);
        return CS_EXIT_USAGE;
    }
    fprintf(stderr, "calsweep-worker: the agent is not built yet (step 3)\n");
    return CS_EXIT_FAIL;
}
