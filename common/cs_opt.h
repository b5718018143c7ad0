/* cs_opt.h - table-driven command-line options (docs/style.md R16, after curl's tool).
 *
 * One static const table of cs_opt gives both the parser and the --help text. The parser is
 * re-entrant (no getopt globals), so subcommands parse their own tables from where the parent
 * stopped. Accepted forms: --name, --name=value, --name value, -x, -x value, -xvalue, and "--"
 * to end the options. Arguments that are not options come back as CS_OPT_POSITIONAL.
 */
#ifndef CS_COMMON_CS_OPT_H
#define CS_COMMON_CS_OPT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "cs_err.h"

/* Exit codes every calsweep binary uses (docs/style.md R12); only main() picks one. */
typedef enum cs_exit {
    CS_EXIT_OK = 0,
    CS_EXIT_FAIL = 1,
    CS_EXIT_USAGE = 2,
    CS_EXIT_UNREACHABLE = 3,
} cs_exit;

typedef enum cs_opt_arg {
    CS_OPT_NONE = 0, /* a flag */
    CS_OPT_VALUE,    /* takes one value */
} cs_opt_arg;

enum { CS_OPT_POSITIONAL = -1 };

typedef struct cs_opt {
    const char *lng;     /* long name without "--" */
    char shrt;           /* short letter, or 0 */
    cs_opt_arg arg;      /* whether it takes a value */
    int id;              /* returned by cs_opt_next; >= 0 */
    const char *metavar; /* value placeholder in --help ("N", "FILE"), NULL for flags */
    const char *help;    /* one line */
} cs_opt;

typedef struct cs_opt_parser {
    int argc;
    char *const *argv;
    int i;                  /* next argv index */
    bool only_pos;          /* after "--" */
    const char *short_rest; /* remaining letters of a -abc cluster */
} cs_opt_parser;

/* Starts parsing argv[first..argc). */
void cs_opt_init(cs_opt_parser *p, int argc, char *const *argv, int first);

/* Next option: CS_OK with *id (an option id or CS_OPT_POSITIONAL) and *arg (its value or the
 * positional argument, borrowed from argv; NULL for flags); CS_ENOENT at the end; CS_EINVAL with a
 * one-line message for an unknown option, a missing value, or a value given to a flag. */
cs_rc cs_opt_next(cs_opt_parser *p, const cs_opt *table, size_t n, int *id, const char **arg,
                  cs_err *err);

/* Prints the options of table, one per line, aligned, to out. */
void cs_opt_print_help(FILE *out, const cs_opt *table, size_t n);

/* Strict number parsing: the whole string must be a number in [min, max]. CS_EINVAL/CS_ERANGE
 * with a message naming `what`. */
cs_rc cs_parse_i64(const char *s, int64_t min, int64_t max, int64_t *out, const char *what,
                   cs_err *err);
cs_rc cs_parse_double(const char *s, double *out, const char *what, cs_err *err);

/* Appends arg to list[0..*n) of at most max entries (a repeatable option); CS_ERANGE "at most MAX
 * OPTION" when full. The strings are borrowed (argv). */
cs_rc cs_opt_append(const char **list, size_t *n, size_t max, const char *arg, const char *option,
                    cs_err *err);

#endif
