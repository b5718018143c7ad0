/* cs_plan_report.h - the plan report: the JSON object `calsweep plan --json` prints (cmd_plan.c)
 * and the daemon's PLAN answers (cs_control.c), built in one place.
 *
 * The object: {"sweep", "spec_hash", "jobs", "baselines", "grid_cells", "excluded", "included",
 * "duplicates", "cached", "axes": {name: [{"value", "text", "jobs"}...]...},
 * "examples": [{"key", "baseline", "axes", "config"}...]}. Per axis the grid values come first, in
 * order (listed even when every cell with them is excluded), then the values only includes give
 * and "does not apply" (value null, text "n/a"), in the order first seen; an include value equal
 * to a grid value counts with it.
 */
#ifndef CS_COORDINATOR_SWEEP_CS_PLAN_REPORT_H
#define CS_COORDINATOR_SWEEP_CS_PLAN_REPORT_H

#include <stdbool.h>
#include <stddef.h>

#include <cjson/cJSON.h>

#include "cs_err.h"
#include "cs_expand.h"
#include "cs_sweep.h"

/* Whether a job key already has a good result (*hit); an error stops the report. */
typedef cs_rc (*cs_plan_cached_fn)(void *ctx, const char *key, bool *hit, cs_err *err);

typedef struct cs_plan_report_opts {
    size_t n_examples;        /* example cells kept (the first ones) */
    cs_plan_cached_fn cached; /* NULL: not checked, "cached" is null */
    void *cached_ctx;
    bool raw_texts; /* examples' axes and config as the cells' texts (cJSON_Raw, printed as they
                       are); false: parsed (a text that is not JSON becomes null) */
} cs_plan_report_opts;

/* Expands e (created from sw, not yet read) to its end and builds the report. *out owned
 * (cJSON_Delete), NULL on error. Errors of the expander and of o->cached are passed on;
 * CS_ENOMEM names "plan report". */
cs_rc cs_plan_report_build(const cs_sweep *sw, cs_expander *e, const cs_plan_report_opts *o,
                           cJSON **out, cs_err *err);

#endif
