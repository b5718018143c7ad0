/* cs_agg.c - grouping, per-row statistics, M4 and M5, reference matching and the JSON output of
 * the results module (cs_agg.h; docs/results.md). */
#include "cs_agg.h"

#include <string.h>

void cs_agg_opts_init(cs_agg_opts *o)
{
    memset(o, 0, sizeof(*o));
    o->resamples = CS_AGG_RESAMPLES;
}

cs_rc cs_agg_run(const cs_agg_job *jobs, size_t n, const cs_agg_opts *o, cJSON **out, cs_err *err)
{
    (void)jobs;
    (void)n;
    (void)o;
    *out = NULL;
    return cs_err_set(err, CS_ENOTSUP, 0, "results: aggregation is not built yet");
}

cs_rc cs_agg_print_text(const cJSON *agg, FILE *out, cs_err *err)
{
    (void)agg;
    (void)out;
    return cs_err_set(err, CS_ENOTSUP, 0, "results: the text table is not built yet");
}
