/* cs_sweep_int.h - the sweep parser's state and helpers, shared by cs_sweep.c (the grid, zips,
 * excludes, includes and the top level) and cs_sweep_data.c (models, data, policy and the
 * algorithm and selector values). Not part of the sweep compiler's interface (cs_sweep.h). */
#ifndef CS_COORDINATOR_SWEEP_CS_SWEEP_INT_H
#define CS_COORDINATOR_SWEEP_CS_SWEEP_INT_H

#include <stdbool.h>
#include <stddef.h>

#include "cs_json.h"
#include "cs_methods.h"
#include "cs_sweep.h"

/* ---- parser state -------------------------------------------------------------------------- */

/* Names of models, data.sources or data.eval sorted for lookups: a grid may name 100,000 models,
 * and a scan per value made that quadratic. */
typedef struct name_ref {
    const char *name;
    size_t idx;
} name_ref;

typedef struct name_index {
    name_ref *refs; /* owned, sorted by name */
    size_t len;     /* refs in use */
    size_t n;       /* entries of the table when built (a table that grew is indexed again) */
    bool built;
} name_index;

enum { NAMES_MODELS, NAMES_SOURCES, NAMES_EVALS, NAMES_AXES, NAMES_N };

typedef struct parser {
    cs_jctx c;
    cs_sweep *s;
    cs_rc oom;                 /* CS_ENOMEM once an allocation failed */
    name_index names[NAMES_N]; /* lazily built lookups */
    cJSON ***labels;           /* labels[axis][value] parsed once for exclude patterns, or NULL */
    size_t exclude_tests;      /* axis values the exclude conditions test, so far */
} parser;

/* A copy of str ("" for NULL), or NULL with p->oom set. */
char *sw_dup(parser *p, const char *str);
/* Canonical text of v (owned) or NULL after reporting why at the current path. */
char *sw_canon_of(parser *p, const cJSON *v);
/* Canonical text of the JSON string str (owned), or NULL. */
char *sw_canon_string_value(parser *p, const char *str);
/* Adds item (owned) to obj under key; p->oom on failure. */
void sw_add_or_oom(parser *p, cJSON *obj, const char *key, cJSON *item);
/* Reports "unknown <what> \"name\"" with a suggestion and the list of known names. */
void sw_unknown_name(parser *p, const cJSON *node, const char *what, const char *name,
                     const char *const *known, size_t n);
/* Index of the entry called name among the n entries of stride bytes at base (whose first member
 * is the name) of table which (NAMES_*), or SIZE_MAX: O(log n) after one sort per table. */
size_t sw_lookup_name(parser *p, int which, const void *base, size_t n, size_t stride,
                      const char *name);

/* cs_sweep_data.c */
bool sw_valid_name(const char *s);
void sw_parse_models(parser *p, const cJSON *models);
void sw_parse_data(parser *p, const cJSON *data);
void sw_parse_policy(parser *p, const cJSON *pol);
/* cs_sweep_pool.c: data.pools (after sources and eval; evals is data.eval), appended to
 * s->sources as kind "pool"; after the grid, each pool against its files and the grid's sizes
 * (data is the sweep's "data" member). */
void sw_parse_pools(parser *p, const cJSON *pools, const cJSON *evals);
void sw_check_pools(parser *p, const cJSON *data);
void sw_pool_free(cs_sweep_pool *pl);

/* Resolves an algorithm or selector value with the table (common/cs_methods.h) into val. */
bool sw_resolve_method(parser *p, const cJSON *v, cs_mfamily f, cs_axis_value *val);

#endif
