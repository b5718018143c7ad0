/* cs_agg_text.c - cs_agg_print_text: the aggregate as an aligned table. */
#include "cs_agg.h"

cs_rc cs_agg_print_text(const cJSON *agg, FILE *out, cs_err *err)
{
    (void)agg;
    (void)out;
    return cs_err_set(err, CS_ENOTSUP, 0, "results: the text table is not built yet");
}
