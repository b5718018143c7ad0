/* calib: the shared pool and selection types (cs_calib.h). */
#include "cs_calib.h"

#include <stdlib.h>
#include <string.h>

static void item_fini(cs_calib_item *it)
{
    free(it->id);
    free(it->tokens);
}

void cs_calib_pool_fini(cs_calib_pool *p)
{
    if (!p) {
        return;
    }
    for (size_t i = 0; i < p->n; i++) {
        item_fini(&p->items[i]);
    }
    for (size_t i = 0; i < p->n_sources; i++) {
        free(p->sources[i]);
    }
    free(p->items);
    free(p->sources);
    memset(p, 0, sizeof(*p));
}

void cs_calib_selection_fini(cs_calib_selection *s)
{
    if (!s) {
        return;
    }
    if (s->generated) {
        for (size_t i = 0; i < s->n; i++) {
            item_fini(&s->generated[i]);
        }
    }
    free(s->generated);
    free(s->index);
    cJSON_Delete(s->diag);
    memset(s, 0, sizeof(*s));
}
