/* calsweepd - the coordinator daemon: owns the database, expands sweeps, leases jobs to workers.
 * This build answers --help and --version; the daemon proper arrives with step 3. */
#include <stdio.h>
#include <string.h>

#include <cjson/cJSON.h>
#include <nng/nng.h>
#include <sqlite3.h>
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
    fprintf(out, "usage: calsweepd [OPTIONS]\n\n"
                 "The calsweep coordinator: keeps sweeps and jobs in SQLite and hands jobs to\n"
                 "calsweep-worker processes over nng.\n\noptions:\n");
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
            printf("calsweepd %s (sqlite %s, nng %s, libuv %s, cJSON %s)\n", CS_VERSION,
                   sqlite3_libversion(), nng_version(), uv_version_string(), cJSON_Version());
            return CS_EXIT_OK;
        default:
            fprintf(stderr, "calsweepd: unexpected argument '%s' (see --help)\n", arg);
            return CS_EXIT_USAGE;
        }
    }
    if (rc != CS_ENOENT) {
        fprintf(stderr, "calsweepd: %s (see --help)\n", err.msg);
        return CS_EXIT_USAGE;
    }
    fprintf(stderr, "calsweepd: the daemon is not built yet (step 3)\n");
    return CS_EXIT_FAIL;
}
