/* calsweep-run - runs one job in-process: load model, calibrate, quantize, evaluate, result.json.
 * This build answers --help and --version; the engine arrives with steps 4 to 7. */
#include <stdio.h>

#include <cblas.h>
#include <utf8proc.h>

#include "cs_config.h"
#include "cs_opt.h"

enum { OPT_HELP, OPT_VERSION };

static const cs_opt options[] = {
        {"help", 'h', CS_OPT_NONE, OPT_HELP, NULL, "show this help and exit"},
        {"version", 'V', CS_OPT_NONE, OPT_VERSION, NULL, "show versions and exit"},
};

static void usage(FILE *out)
{
    fprintf(out, "usage: calsweep-run [OPTIONS] job.json\n\n"
                 "Runs one calsweep job in this process and writes result.json.\n\noptions:\n");
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
            printf("calsweep-run %s (OpenBLAS %s, utf8proc %s)\n", CS_VERSION,
                   openblas_get_config(), utf8proc_version());
            return CS_EXIT_OK;
        default:
            fprintf(stderr, "calsweep-run: unexpected argument '%s' (see --help)\n", arg);
            return CS_EXIT_USAGE;
        }
    }
    if (rc != CS_ENOENT) {
        fprintf(stderr, "calsweep-run: %s (see --help)\n", err.msg);
        return CS_EXIT_USAGE;
    }
    fprintf(stderr, "calsweep-run: the engine is not built yet (steps 4-7)\n");
    return CS_EXIT_FAIL;
}
