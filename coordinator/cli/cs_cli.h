/* cs_cli.h - the subcommands of `calsweep`, dispatched from cli/main.c's table.
 *
 * Each subcommand receives the connection options given before it (base) and argv starting at
 * its own name (argv[0] = "plan"), parses its options with cs_opt from argv[1], prints its own
 * --help, and returns a cs_exit code: CS_EXIT_USAGE (2) for usage errors, CS_EXIT_FAIL (1) when
 * the work fails, CS_EXIT_UNREACHABLE (3) when calsweepd does not answer.
 */
#ifndef CS_COORDINATOR_CLI_CS_CLI_H
#define CS_COORDINATOR_CLI_CS_CLI_H

#include "cs_client.h"

typedef int (*cs_cli_cmd_fn)(const cs_client *base, int argc, char **argv);

/* calsweep plan FILE [--json] [--limit N] [--db PATH] [--examples N] (cmd_plan.c) */
int cs_cmd_plan(const cs_client *base, int argc, char **argv);

/* calsweep methods [NAME] [--json]: the table of algorithms and selectors (cmd_methods.c) */
int cs_cmd_methods(const cs_client *base, int argc, char **argv);

/* calsweep submit FILE [--force] [--json]; calsweep extend SWEEP FILE [--json] (cmd_submit.c) */
int cs_cmd_submit(const cs_client *base, int argc, char **argv);
int cs_cmd_extend(const cs_client *base, int argc, char **argv);

/* calsweep status [SWEEP], jobs, workers, logs JOB (cmd_status.c) */
int cs_cmd_status(const cs_client *base, int argc, char **argv);
int cs_cmd_jobs(const cs_client *base, int argc, char **argv);
int cs_cmd_workers(const cs_client *base, int argc, char **argv);
int cs_cmd_logs(const cs_client *base, int argc, char **argv);

/* calsweep job JOB [--json]: one job whole, its attempts and how to rerun it (cmd_job.c) */
int cs_cmd_job(const cs_client *base, int argc, char **argv);

/* calsweep watch [SWEEP] [--once] [--interval S]: the live view (cmd_watch.c) */
int cs_cmd_watch(const cs_client *base, int argc, char **argv);

/* calsweep cancel, pause, resume, retry (cmd_control.c) */
int cs_cmd_cancel(const cs_client *base, int argc, char **argv);
int cs_cmd_pause(const cs_client *base, int argc, char **argv);
int cs_cmd_resume(const cs_client *base, int argc, char **argv);
int cs_cmd_retry(const cs_client *base, int argc, char **argv);

/* calsweep results SWEEP [--db PATH] [--by AXES] [--metric M] [--reference AXIS=VALUE]
 * [--task T]... [--json] [--resamples N] [--seed N] (cmd_results.c) */
int cs_cmd_results(const cs_client *base, int argc, char **argv);

/* calsweep export SWEEP [--db PATH] [--format F] [--rows AXES] [--cols tasks|AXIS] ...
 * (cmd_export.c) */
int cs_cmd_export(const cs_client *base, int argc, char **argv);
/* calsweep plot SWEEP -o FILE [--db PATH] [--figure F] [--metric M] [--where AXIS=VALUE]...
 * [--format F] [--width IN] [--dpi N] [--force] (cmd_plot.c) */
int cs_cmd_plot(const cs_client *base, int argc, char **argv);

/* Shared by the control subcommands: parses argv[1..] with own options, -h/--help and the
 * connection options into *c (a copy of base). For each own option or positional calls
 * fn(ctx, id, arg) (id CS_OPT_POSITIONAL for positionals), which returns CS_EXIT_OK to go on or
 * an exit code to stop with. --help prints "usage" then the options, and sets *done. Returns
 * CS_EXIT_OK or the exit code to stop with (usage errors print "calsweep CMD: ..."). */
typedef int (*cs_cli_opt_fn)(void *ctx, int id, const char *arg);
int cs_cli_parse(const cs_client *base, cs_client *c, const char *cmd, const char *usage, int argc,
                 char **argv, const cs_opt *own, size_t n_own, cs_cli_opt_fn fn, void *ctx,
                 bool *done);

#endif
