/* run: `calsweep-run convert-task` - published benchmark rows (JSON lines with a dataset's own
 * fields) into calsweep task files, with lm-evaluation-harness's prompt templates (docs/tasks.md).
 */
#ifndef CS_WORKER_RUN_CS_CONVERT_CMD_H
#define CS_WORKER_RUN_CS_CONVERT_CMD_H

/* argv[1] is "convert-task"; returns an exit code (cs_exit): 0, 1 for a bad input file or a
 * failed write (nothing is written then), 2 for bad usage (an unknown FORMAT among them). */
int cs_cmd_convert(int argc, char **argv);

#endif
