/* calsweep methods [NAME] [--json]: the table of algorithms and selectors (common/cs_methods.h),
 * readable or as JSON. schemas/methods.json is the --json output, from which
 * schemas/gen_schemas.py builds the JSON Schemas (tests/cli/methods.sh checks they agree). */
#include <stdio.h>
#include <stdlib.h>

#include "cs_cli.h"
#include "cs_methods.h"
#include "cs_opt.h"

enum { OPT_HELP, OPT_JSON };

static const cs_opt methods_options[] = {
        {"help", 'h', CS_OPT_NONE, OPT_HELP, NULL, "show this help and exit"},
        {"json", 0, CS_OPT_NONE, OPT_JSON, NULL, "print the whole table as JSON"},
};
#define N_METHODS_OPTIONS (sizeof(methods_options) / sizeof(methods_options[0]))

static void methods_usage(FILE *out)
{
    fprintf(out, "usage: calsweep methods [NAME] [--json]\n\n"
                 "Lists the algorithms and selectors a sweep can name, each parameter with its\n"
                 "type, bounds and default (NAME: only that one). Parameters marked\n"
                 "[calsweep-run only] are taken by calsweep-run quantize / select, not by sweep\n"
                 "files.\n\noptions:\n");
    cs_opt_print_help(out, methods_options, N_METHODS_OPTIONS);
}

static int print_json(void)
{
    cJSON *o = cs_methods_json();
    char *text = o ? cJSON_Print(o) : NULL;
    cJSON_Delete(o);
    if (!text) {
        fprintf(stderr, "calsweep methods: out of memory\n");
        return CS_EXIT_FAIL;
    }
    printf("%s\n", text);
    free(text);
    return CS_EXIT_OK;
}

int cs_cmd_methods(const cs_client *base, int argc, char **argv)
{
    cs_opt_parser p;
    cs_err err = {0};
    const char *arg, *name = NULL;
    bool json = false;
    int id;
    cs_rc rc;

    (void)base; /* the table is built in: no calsweepd needed */
    cs_opt_init(&p, argc, argv, 1);
    while ((rc = cs_opt_next(&p, methods_options, N_METHODS_OPTIONS, &id, &arg, &err)) == CS_OK) {
        if (id == OPT_HELP) {
            methods_usage(stdout);
            return CS_EXIT_OK;
        }
        if (id == OPT_JSON) {
            json = true;
        } else if (!name) {
            name = arg;
        } else {
            fprintf(stderr, "calsweep methods: expected at most one name, got '%s' and '%s'\n",
                    name, arg);
            return CS_EXIT_USAGE;
        }
    }
    if (rc != CS_ENOENT) {
        fprintf(stderr, "calsweep methods: %s (see --help)\n", err.msg);
        return CS_EXIT_USAGE;
    }
    if (json) {
        return print_json();
    }
    if (cs_methods_print(stdout, name) != CS_OK) {
        fprintf(stderr, "calsweep methods: no algorithm or selector is called '%s'\n", name);
        return CS_EXIT_USAGE;
    }
    return CS_EXIT_OK;
}
