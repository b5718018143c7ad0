/* run: `calsweep-run select` - build a calibration pool from sources and run a selector. */
#ifndef CS_WORKER_RUN_CS_SELECT_CMD_H
#define CS_WORKER_RUN_CS_SELECT_CMD_H

/* argv[1] is "select"; returns an exit code (cs_exit). */
int cs_cmd_select(int argc, char **argv);

#endif
