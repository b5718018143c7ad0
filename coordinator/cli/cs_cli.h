/* cs_cli.h - the subcommands of `calsweep`, dispatched from cli/main.c's table.
 *
 * Each subcommand receives argv starting at its own name (argv[0] = "plan"), parses its options
 * with cs_opt from argv[1], prints its own --help, and returns a cs_exit code: CS_EXIT_USAGE (2)
 * for usage errors, CS_EXIT_FAIL (1) when the work fails.
 */
#ifndef CS_COORDINATOR_CLI_CS_CLI_H
#define CS_COORDINATOR_CLI_CS_CLI_H

typedef int (*cs_cli_cmd_fn)(int argc, char **argv);

/* calsweep plan FILE [--json] [--limit N] [--db PATH] [--examples N] (cmd_plan.c) */
int cs_cmd_plan(int argc, char **argv);

#endif
