/* cs_agg_cmp.c - the reference row of each row (--reference AXIS=VALUE), the pairing of their
 * jobs and items, the paired bootstraps (on 2 threads) and the Holm adjustment of the table
 * (cs_agg.h; docs/results.md "Reference", "Significance").
 *
 * Pairing: when both rows have several seeds, the units are the pairs of jobs with equal seeds
 * (both rows must have the same seeds) and the bootstrap resamples units, then items; otherwise
 * (one side has one job: a calibration-free method, the baseline) there is one unit, all jobs of
 * both sides, and an item's difference is mean(row's outcomes) - mean(reference's outcomes).
 * Items pair only when every job involved scored the same sample (equal "sample" hashes).
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include <pthread.h>

#include "cs_agg.h"
#include "cs_agg_int.h"
#include "cs_alloc.h"
#include "cs_canon.h"

/* Whether axis value v matches the user's text: its name, its label form as the table shows it
 * ("random(stratified=false)"), its canonical JSON or its JSON value. */
static bool value_matches(const cJSON *v, const char *text, const cJSON *parsed)
{
    char buf[256];
    if (v == NULL || cJSON_IsNull(v)) {
        return false;
    }
    if (strcmp(ag_value_name(v, buf, sizeof(buf)), text) == 0) {
        return true;
    }
    if (parsed != NULL && cJSON_Compare(v, parsed, true)) {
        return true;
    }
    cs_buf b = {0};
    bool eq = cs_canon_append(v, &b, NULL) == CS_OK && strcmp(b.data, text) == 0;
    b.len = 0;
    eq = eq || (ag_value_text(v, &b) == CS_OK && strcmp(b.data, text) == 0);
    cs_buf_fini(&b);
    return eq;
}

/* Whether the members that both objects x and y have, "name" aside, are equal (true for
 * non-objects). */
static bool shared_params_equal(const cJSON *x, const cJSON *y)
{
    if (!cJSON_IsObject(x) || !cJSON_IsObject(y)) {
        return true;
    }
    for (const cJSON *m = x->child; m != NULL; m = m->next) {
        const cJSON *o = cJSON_GetObjectItemCaseSensitive(y, m->string);
        if (strcmp(m->string, "name") != 0 && o != NULL && !cJSON_Compare(m, o, true)) {
            return false;
        }
    }
    return true;
}

static const cJSON *row_value(const ag *a, const ag_row *r, size_t axis)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(r->axes, a->axes[axis]);
    return v != NULL && !cJSON_IsNull(v) ? v : NULL;
}

/* The rows that match the reference value, indexed for the lookup of each row's candidates: a
 * candidate's null grouping axes are wildcards, so candidates are grouped by their pattern of
 * null axes, and within a pattern hashed by their other values (canonical JSON). A row then costs
 * one lookup per pattern instead of a pass over every row. */
typedef struct ref_index {
    bool *pat; /* [n_pat][n_gax]: axis i is a wildcard (null) for the pattern's rows */
    size_t n_pat;
    char **key; /* open addressing, NULL = empty; several rows may share a key */
    size_t *row;
    size_t cap;
} ref_index;

static void ref_index_fini(ref_index *x)
{
    for (size_t i = 0; i < x->cap && x->key != NULL; i++) {
        free(x->key[i]);
    }
    free(x->key);
    free(x->row);
    free(x->pat);
}

static uint64_t hash_str(const char *s)
{
    uint64_t h = 0xcbf29ce484222325ull;
    for (; *s != '\0'; s++) {
        h = (h ^ (unsigned char)*s) * 0x100000001b3ull;
    }
    return h;
}

/* The key of row r under pattern p: p, then the canonical values of the axes p does not leave
 * open (the reference axis aside). */
static cs_rc index_key(const ag *a, const ref_index *x, size_t r, size_t p, cs_buf *b)
{
    b->len = 0;
    cs_rc rc = cs_buf_printf(b, "%zu", p);
    for (size_t i = 0; i < a->n_gax && rc == CS_OK; i++) {
        if (a->gax[i] == a->ref_axis || x->pat[p * a->n_gax + i]) {
            continue;
        }
        const cJSON *v = row_value(a, &a->rows[r], a->gax[i]);
        rc = cs_buf_putc(b, '\x1f');
        if (rc == CS_OK) {
            rc = v == NULL ? cs_buf_puts(b, "null") : cs_canon_append(v, b, NULL);
        }
    }
    return rc;
}

static cs_rc index_add(const ag *a, ref_index *x, size_t c, cs_buf *b)
{
    bool *mine = cs_alloc_array(a->n_gax + 1, sizeof(*mine));
    if (mine == NULL) {
        return CS_ENOMEM;
    }
    for (size_t i = 0; i < a->n_gax; i++) {
        mine[i] = a->gax[i] == a->ref_axis || row_value(a, &a->rows[c], a->gax[i]) == NULL;
    }
    size_t p = 0;
    while (p < x->n_pat && memcmp(&x->pat[p * a->n_gax], mine, a->n_gax * sizeof(*mine)) != 0) {
        p++;
    }
    if (p == x->n_pat) {
        bool *np = cs_realloc_array(x->pat, (x->n_pat + 1) * (a->n_gax + 1), sizeof(*np));
        if (np == NULL) {
            free(mine);
            return CS_ENOMEM;
        }
        x->pat = np;
        memcpy(&np[p * a->n_gax], mine, a->n_gax * sizeof(*mine));
        x->n_pat++;
    }
    free(mine);
    cs_rc rc = index_key(a, x, c, p, b);
    size_t slot = (size_t)(hash_str(b->data) & (x->cap - 1));
    while (rc == CS_OK && x->key[slot] != NULL) {
        slot = (slot + 1) & (x->cap - 1);
    }
    if (rc == CS_OK) {
        x->key[slot] = cs_strdup(b->data);
        x->row[slot] = c;
        rc = x->key[slot] == NULL ? CS_ENOMEM : CS_OK;
    }
    return rc;
}

static int size_cmp(const void *x, const void *y)
{
    size_t a = *(const size_t *)x, b = *(const size_t *)y;
    return (a > b) - (a < b);
}

/* Candidate reference rows of row r (in row order): the indexed rows whose values on every other
 * grouping axis equal r's or are null. */
static cs_rc candidates(const ag *a, const ref_index *x, size_t r, size_t *out, size_t *n,
                        cs_buf *b)
{
    *n = 0;
    for (size_t p = 0; p < x->n_pat; p++) {
        cs_rc rc = index_key(a, x, r, p, b);
        if (rc != CS_OK) {
            return rc;
        }
        for (size_t slot = (size_t)(hash_str(b->data) & (x->cap - 1)); x->key[slot] != NULL;
             slot = (slot + 1) & (x->cap - 1)) {
            if (strcmp(x->key[slot], b->data) == 0 && x->row[slot] != r) {
                out[(*n)++] = x->row[slot];
            }
        }
    }
    qsort(out, *n, sizeof(*out), size_cmp);
    return CS_OK;
}

typedef struct text_at {
    char *text;
    size_t at;
} text_at;

static int text_at_cmp(const void *x, const void *y)
{
    const text_at *a = x, *b = y;
    int c = strcmp(a->text, b->text);
    return c != 0 ? c : (a->at > b->at) - (a->at < b->at);
}

static int at_cmp(const void *x, const void *y)
{
    const text_at *a = x, *b = y;
    return (a->at > b->at) - (a->at < b->at);
}

/* Every value of the reference axis in its label form (what --reference takes), once each, in
 * the order of the rows, for the message of a value that matches no row. */
static cs_rc no_value_error(const ag *a)
{
    text_at *v = cs_calloc_array(a->n_rows + 1, sizeof(*v));
    cs_buf b = {0};
    size_t n = 0, shown = 0;
    for (size_t r = 0; v != NULL && r < a->n_rows; r++) {
        const cJSON *x = row_value(a, &a->rows[r], a->ref_axis);
        b.len = 0;
        if (x != NULL && ag_value_text(x, &b) == CS_OK) {
            v[n] = (text_at){cs_strdup(b.data), r};
            n += v[n].text != NULL;
        }
    }
    qsort(v, n, sizeof(*v), text_at_cmp); /* the first row of each text, then by row */
    size_t m = 0;
    for (size_t i = 0; i < n; i++) {
        if (m > 0 && strcmp(v[m - 1].text, v[i].text) == 0) {
            free(v[i].text);
        } else {
            v[m++] = v[i];
        }
    }
    qsort(v, m, sizeof(*v), at_cmp);
    b.len = 0;
    for (size_t i = 0; i < m; i++) {
        cs_buf_printf(&b, "%s%s", shown++ ? ", " : "", v[i].text);
        free(v[i].text);
    }
    free(v);
    cs_err_set(a->err, CS_EINVAL, 0, "--reference %s=%s: no row has %s=%s; values: %s",
               a->o.ref_axis, a->o.ref_value, a->o.ref_axis, a->o.ref_value,
               shown > 0 ? b.data : "(none)");
    cs_buf_fini(&b);
    return CS_EINVAL;
}

/* Indexes the rows that match (match[r]); a baseline too (--reference algorithm=none). */
static cs_rc index_build(const ag *a, const bool *match, ref_index *x)
{
    x->cap = 16;
    while (x->cap < 2 * a->n_rows) {
        x->cap *= 2;
    }
    x->key = cs_calloc_array(x->cap, sizeof(*x->key));
    x->row = cs_alloc_array(x->cap, sizeof(*x->row));
    cs_buf b = {0};
    cs_rc rc = x->key == NULL || x->row == NULL ? CS_ENOMEM : CS_OK;
    for (size_t c = 0; c < a->n_rows && rc == CS_OK; c++) {
        if (match[c]) {
            rc = index_add(a, x, c, &b);
        }
    }
    cs_buf_fini(&b);
    return rc;
}

/* The reference of row r: a single candidate, or the one candidate sharing r's parameters. A row
 * without one is flagged no_reference with its candidates (docs/results.md "Reference rows"). */
static cs_rc pick_ref(ag *a, const ref_index *x, size_t r, size_t *cand, cs_buf *b)
{
    ag_row *row = &a->rows[r];
    const cJSON *rv = row_value(a, row, a->ref_axis);
    size_t n = 0;
    if (candidates(a, x, r, cand, &n, b) != CS_OK) {
        return cs_err_set(a->err, CS_ENOMEM, 0, "results: reference rows");
    }
    if (n > 1) {
        size_t w = 0;
        for (size_t i = 0; i < n; i++) {
            if (shared_params_equal(rv, row_value(a, &a->rows[cand[i]], a->ref_axis))) {
                cand[w++] = cand[i];
            }
        }
        n = w > 0 ? w : n;
    }
    if (n != 1) {
        row->flags |= AG_F_NO_REF;
        row->no_ref = n == 0 ? "no_candidate" : "several_candidates";
        row->n_no_ref_cand = n;
        row->no_ref_cand = n > 0 ? cs_alloc_array(n, sizeof(*row->no_ref_cand)) : NULL;
        if (n > 0 && row->no_ref_cand == NULL) {
            return cs_err_set(a->err, CS_ENOMEM, 0, "results: reference candidates");
        }
        if (n > 0) {
            memcpy(row->no_ref_cand, cand, n * sizeof(*cand));
        }
        return CS_OK;
    }
    row->ref = cand[0];
    return CS_OK;
}

cs_rc ag_find_refs(ag *a)
{
    if (a->ref_axis == AG_NONE) {
        return CS_OK;
    }
    cJSON *parsed = cJSON_Parse(a->o.ref_value);
    size_t *cand = cs_alloc_array(a->n_rows, sizeof(*cand));
    bool *match = cs_calloc_array(a->n_rows, sizeof(*match));
    ref_index x = {0};
    cs_buf b = {0};
    cs_rc rc = cand == NULL || match == NULL ? CS_ENOMEM : CS_OK;
    bool any = false;
    for (size_t r = 0; r < a->n_rows && rc == CS_OK; r++) {
        match[r] = value_matches(row_value(a, &a->rows[r], a->ref_axis), a->o.ref_value, parsed);
        any = any || match[r];
    }
    if (rc == CS_OK) {
        rc = index_build(a, match, &x);
    }
    if (rc == CS_ENOMEM) {
        cs_err_set(a->err, CS_ENOMEM, 0, "results: reference rows of %zu rows", a->n_rows);
    } else if (!any && a->n_rows > 0) {
        rc = no_value_error(a);
    }
    for (size_t r = 0; r < a->n_rows && rc == CS_OK; r++) {
        const ag_row *row = &a->rows[r];
        if (row->baseline || match[r] || row_value(a, row, a->ref_axis) == NULL) {
            continue; /* the baseline, the references, rows the axis does not apply to */
        }
        rc = pick_ref(a, &x, r, cand, &b);
    }
    ref_index_fini(&x);
    cs_buf_fini(&b);
    free(cand);
    free(match);
    cJSON_Delete(parsed);
    return rc;
}

/* The jobs of one comparison: units of paired jobs (seed pairs), or one unit of all jobs. */
typedef struct pairing {
    const char *reason; /* not testable: a literal */
    size_t n_units;
    size_t kr, kc;         /* jobs per unit of the row and of the reference */
    const cs_agg_job **rj; /* [n_units * kr] */
    const cs_agg_job **cj; /* [n_units * kc] */
} pairing;

static void pairing_fini(pairing *p)
{
    free(p->rj);
    free(p->cj);
}

static cs_rc make_pairing(const ag *a, const ag_row *r, const ag_row *c, pairing *p, cs_err *err)
{
    memset(p, 0, sizeof(*p));
    if ((r->flags | c->flags) & AG_F_UNTESTABLE) {
        p->reason = "flagged";
        return CS_OK;
    }
    if (r->n_done == 0 || c->n_done == 0) {
        p->reason = "no_jobs";
        return CS_OK;
    }
    p->rj = cs_alloc_array(r->n_done, sizeof(*p->rj));
    p->cj = cs_alloc_array(c->n_done, sizeof(*p->cj));
    if (p->rj == NULL || p->cj == NULL) {
        return cs_err_set(err, CS_ENOMEM, 0, "results: pairing");
    }
    bool by_seed = r->n_done > 1 && c->n_done > 1;
    p->n_units = by_seed ? r->n_done : 1;
    p->kr = by_seed ? 1 : r->n_done;
    p->kc = by_seed ? 1 : c->n_done;
    if (by_seed && r->n_done != c->n_done) {
        p->reason = "seeds_unpaired";
        return CS_OK;
    }
    for (size_t i = 0; i < r->n_done; i++) {
        p->rj[i] = &a->jobs[r->jobs[i]]; /* flags checked: every job is done */
    }
    for (size_t i = 0; i < c->n_done; i++) {
        size_t pick = i;
        for (size_t k = 0; by_seed && k < c->n_jobs; k++) {
            pick = k;
            if (a->seed[c->jobs[k]] != NULL && a->seed[r->jobs[i]] != NULL &&
                strcmp(a->seed[c->jobs[k]], a->seed[r->jobs[i]]) == 0) {
                break;
            }
            pick = AG_NONE;
        }
        if (pick == AG_NONE) {
            p->reason = "seeds_unpaired";
            return CS_OK;
        }
        p->cj[i] = &a->jobs[c->jobs[pick]];
    }
    return CS_OK;
}

/* A little-endian word read with memcpy as the host's (item i is bit i of the word). */
static uint64_t le64(uint64_t w)
{
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
    return __builtin_bswap64(w);
#else
    return w;
#endif
}

/* The histogram of unit u on task t (headline metric m) into cell, with room for
 * (kr + 1) * (kc + 1) categories at counts/values. Returns NULL or the reason it is untestable. */
static const char *fill_cell(const pairing *p, size_t u, const char *task, const char *m,
                             cs_agg_hist *cell, uint32_t *counts, double *values)
{
    const cs_agg_outcome *first = NULL;
    size_t k_all = p->kr + p->kc;
    for (size_t k = 0; k < k_all; k++) {
        const cs_agg_job *j = k < p->kr ? p->rj[u * p->kr + k] : p->cj[u * p->kc + k - p->kr];
        const cs_agg_outcome *o = ag_outcome(j, task, m);
        if (o == NULL || o->bits == NULL || o->n == 0) {
            return "no_items";
        }
        if (first != NULL && (o->n != first->n || o->sample == NULL || first->sample == NULL ||
                              strcmp(o->sample, first->sample) != 0)) {
            return "unpaired";
        }
        first = first != NULL ? first : o;
    }
    size_t n = first->n, n_cat = (p->kr + 1) * (p->kc + 1);
    memset(counts, 0, n_cat * sizeof(*counts));
    cell->n_cat = n_cat;
    cell->count = counts;
    cell->value = values;
    for (size_t s = 0; s <= p->kr; s++) {
        for (size_t t = 0; t <= p->kc; t++) {
            values[s * (p->kc + 1) + t] = (double)s / (double)p->kr - (double)t / (double)p->kc;
        }
    }
    if (p->kr == 1 && p->kc == 1) {
        const uint8_t *x = ag_outcome(p->rj[u], task, m)->bits;
        const uint8_t *y = ag_outcome(p->cj[u], task, m)->bits;
        size_t plus = 0, minus = 0, both = 0;
        for (size_t i = 0; i < n; i += 64) { /* 64 items a word; the last word masked */
            uint64_t xw = 0, yw = 0, mask = n - i >= 64 ? ~0ull : (1ull << (n - i)) - 1;
            memcpy(&xw, &x[i / 8], n - i >= 64 ? 8 : (n - i + 7) / 8);
            memcpy(&yw, &y[i / 8], n - i >= 64 ? 8 : (n - i + 7) / 8);
            xw = le64(xw) & mask;
            yw = le64(yw) & mask;
            plus += (size_t)__builtin_popcountll(xw & ~yw);
            minus += (size_t)__builtin_popcountll(yw & ~xw);
            both += (size_t)__builtin_popcountll(xw & yw);
        }
        counts[2] = (uint32_t)plus;  /* s 1, t 0: +1 */
        counts[1] = (uint32_t)minus; /* s 0, t 1: -1 */
        counts[3] = (uint32_t)both;
        counts[0] = (uint32_t)(n - plus - minus - both);
        return NULL;
    }
    for (size_t i = 0; i < n; i++) {
        size_t s = 0, t = 0;
        for (size_t k = 0; k < p->kr; k++) {
            const uint8_t *b = ag_outcome(p->rj[u * p->kr + k], task, m)->bits;
            s += (b[i >> 3] >> (i & 7)) & 1u;
        }
        for (size_t k = 0; k < p->kc; k++) {
            const uint8_t *b = ag_outcome(p->cj[u * p->kc + k], task, m)->bits;
            t += (b[i >> 3] >> (i & 7)) & 1u;
        }
        counts[s * (p->kc + 1) + t]++;
    }
    return NULL;
}

/* Fills comparison c (task c->task, or the average) from the pairing; sets c->reason when it
 * cannot be tested. */
static cs_rc prepare(const ag *a, const pairing *p, ag_cmp *c, cs_err *err)
{
    if (p->reason != NULL) {
        c->reason = p->reason;
        return CS_OK;
    }
    bool avg = c->task == a->n_tasks;
    if (!avg && a->tasks[c->task].ppl) {
        c->reason = "perplexity";
        return CS_OK;
    }
    size_t nt = avg ? a->n_avg : 1, n_cat = (p->kr + 1) * (p->kc + 1);
    size_t n_cells = p->n_units * nt;
    c->cells = cs_calloc_array(n_cells, sizeof(*c->cells));
    c->counts = cs_calloc_array(n_cells * n_cat, sizeof(*c->counts));
    c->values = cs_calloc_array(n_cells * n_cat, sizeof(*c->values));
    if (c->cells == NULL || c->counts == NULL || c->values == NULL) {
        return cs_err_set(err, CS_ENOMEM, 0, "results: bootstrap cells");
    }
    c->n_units = p->n_units;
    c->n_cells_tasks = nt;
    for (size_t u = 0; u < p->n_units && c->reason == NULL; u++) {
        size_t ti = 0;
        for (size_t t = 0; t < a->n_tasks && c->reason == NULL; t++) {
            if ((avg && !a->tasks[t].in_avg) || (!avg && t != c->task)) {
                continue;
            }
            size_t ci = u * nt + ti++;
            c->reason = fill_cell(p, u, a->tasks[t].name, a->tasks[t].headline, &c->cells[ci],
                                  &c->counts[ci * n_cat], &c->values[ci * n_cat]);
        }
    }
    return CS_OK;
}

/* Why the average of a row cannot be tested: the pairing's reason, or that of its first
 * accuracy task that cannot (g: the row's task comparisons). NULL when every one can. */
static const char *avg_reason(const ag *a, const pairing *p, const ag_cmp *g)
{
    if (p->reason != NULL) {
        return p->reason;
    }
    for (size_t t = 0; t < a->n_tasks; t++) {
        if (a->tasks[t].in_avg && g[t].reason != NULL) {
            return g[t].reason;
        }
    }
    return NULL;
}

static void cmp_free_cells(ag_cmp *c)
{
    free(c->cells);
    free(c->counts);
    free(c->values);
    c->cells = NULL;
    c->counts = NULL;
    c->values = NULL;
}

void ag_cmps_fini(ag *a)
{
    for (size_t i = 0; i < a->n_cmps; i++) {
        cmp_free_cells(&a->cmps[i]);
    }
    free(a->cmps);
    a->cmps = NULL;
    a->n_cmps = 0;
}

static uint64_t fnv(const char *s, uint64_t h)
{
    for (; *s != '\0'; s++) {
        h = (h ^ (unsigned char)*s) * 0x100000001b3ull;
    }
    return h;
}

#define BOOT_THREADS 16 /* at most */

typedef struct boot_work {
    ag *a;
    const size_t *rows; /* the rows with a reference: rows[first], rows[first + step], ... */
    size_t first, step, n_rows;
    bool *unpaired;           /* [n_rows of a]: the row's comparison found unpaired samples */
    cs_agg_boot_cache *cache; /* the thread's: laws shared by the rows it runs */
    cs_rc rc;
    cs_err err;
} boot_work;

/* The bootstraps of one row: its comparisons g[0..n_tasks) (tasks) and g[n_tasks] (the
 * average), all from the same resamples (cs_agg_boot_tasks). */
static cs_rc boot_row(const ag *a, ag_cmp *g, size_t resamples, cs_agg_boot_cache *cache,
                      cs_err *err)
{
    size_t n = 0, per_row = a->n_tasks + (a->n_avg > 0);
    ag_cmp *avg = a->n_avg > 0 ? &g[a->n_tasks] : NULL;
    const cs_agg_hist **cells = cs_alloc_array(per_row, sizeof(*cells));
    uint64_t *seeds = cs_alloc_array(per_row, sizeof(*seeds));
    size_t *which = cs_alloc_array(per_row, sizeof(*which));
    cs_agg_ci *out = cs_alloc_array(per_row + 1, sizeof(*out));
    cs_rc rc = cells == NULL || seeds == NULL || which == NULL || out == NULL ? CS_ENOMEM : CS_OK;
    for (size_t t = 0; t < a->n_tasks && rc == CS_OK; t++) {
        if (g[t].reason == NULL) {
            cells[n] = g[t].cells;
            seeds[n] = g[t].seed;
            which[n++] = t;
        }
    }
    bool with_avg = avg != NULL && avg->reason == NULL;
    if (rc == CS_OK && n > 0) {
        /* the units are those of the row's pairing: every task's cells have the same count */
        rc = cs_agg_boot_tasks(cells, g[which[0]].n_units, n, with_avg, resamples,
                               with_avg ? avg->seed : g[which[0]].seed ^ 0x9e3779b97f4a7c15ull,
                               seeds, cache, out, err);
    }
    for (size_t i = 0; i < n && rc == CS_OK; i++) {
        g[which[i]].ci = out[i];
    }
    if (rc == CS_OK && with_avg) {
        avg->ci = out[n];
    }
    cs_free_each((void *const[]){(void *)cells, seeds, which, out}, 4);
    if (rc == CS_ENOMEM && err != NULL && err->rc != CS_ENOMEM) {
        cs_err_set(err, CS_ENOMEM, 0, "results: bootstrap of a row");
    }
    return rc;
}

/* Row r's comparisons g (made by ag_compare): the pairing of its jobs with its reference's,
 * the cells of every task, why a comparison cannot be tested, and the bootstraps. */
static cs_rc compare_row(const ag *a, size_t r, ag_cmp *g, bool *unpaired, cs_agg_boot_cache *cache,
                         cs_err *err)
{
    size_t per_row = a->n_tasks + (a->n_avg > 0);
    pairing p;
    cs_rc rc = make_pairing(a, &a->rows[r], &a->rows[a->rows[r].ref], &p, err);
    for (size_t t = 0; t < per_row && rc == CS_OK; t++) {
        ag_cmp *c = &g[t];
        rc = c->task < a->n_tasks ? prepare(a, &p, c, err) : CS_OK;
        if (c->task == a->n_tasks) {
            c->reason = avg_reason(a, &p, g);
        }
        if (c->reason == NULL && isnan(c->delta)) {
            c->reason = "no_value";
        }
        if (c->reason == NULL && a->o.resamples == 0) {
            c->reason = "no_bootstrap";
        }
        if (c->reason != NULL && strcmp(c->reason, "unpaired") == 0) {
            *unpaired = true;
        }
        if (c->reason != NULL) {
            cmp_free_cells(c);
        }
    }
    pairing_fini(&p);
    if (rc == CS_OK && a->o.resamples > 0) {
        rc = boot_row(a, g, a->o.resamples, cache, err);
    }
    for (size_t k = 0; k < per_row; k++) {
        cmp_free_cells(&g[k]);
    }
    return rc;
}

static void *boot_thread(void *arg)
{
    boot_work *w = arg;
    size_t per_row = w->a->n_tasks + (w->a->n_avg > 0);
    for (size_t i = w->first; i < w->n_rows && w->rc == CS_OK; i += w->step) {
        size_t r = w->rows[i];
        w->rc = compare_row(w->a, r, &w->a->cmps[i * per_row], &w->unpaired[r], w->cache, &w->err);
    }
    return NULL;
}

/* The comparisons of the rows rows[0..n) (each has per_row in a->cmps, in that order), split
 * over the threads by row: each row has its own seeds, so the results do not depend on the
 * number of threads, and a thread writes only its rows' comparisons and unpaired flags. */
static cs_rc run_rows(ag *a, const size_t *rows, size_t n, bool *unpaired)
{
    unsigned nt = a->o.threads == 0 ? 2 : a->o.threads;
    nt = nt > BOOT_THREADS ? BOOT_THREADS : nt;
    nt = n < nt ? (unsigned)(n > 0 ? n : 1) : nt;
    boot_work w[BOOT_THREADS];
    pthread_t th[BOOT_THREADS];
    bool started[BOOT_THREADS] = {false};
    cs_rc rc = CS_OK;
    for (unsigned k = 0; k < nt; k++) {
        w[k] = (boot_work){.a = a,
                           .rows = rows,
                           .first = k,
                           .step = nt,
                           .n_rows = n,
                           .unpaired = unpaired,
                           .cache = cs_agg_boot_cache_new()};
        rc = w[k].cache == NULL ? CS_ENOMEM : rc;
    }
    for (unsigned k = 1; k < nt && rc == CS_OK; k++) {
        started[k] = pthread_create(&th[k], NULL, boot_thread, &w[k]) == 0;
    }
    if (rc == CS_OK) {
        boot_thread(&w[0]);
    }
    for (unsigned k = 1; k < nt && rc == CS_OK; k++) {
        if (started[k]) {
            pthread_join(th[k], NULL);
        } else {
            boot_thread(&w[k]);
        }
    }
    for (unsigned k = 0; k < nt; k++) {
        cs_agg_boot_cache_destroy(w[k].cache);
        if (rc == CS_OK && w[k].rc != CS_OK) {
            rc = cs_err_set(a->err, w[k].rc, 0, "%s", w[k].err.msg);
        }
    }
    return rc == CS_ENOMEM && (a->err == NULL || a->err->rc != CS_ENOMEM)
                   ? cs_err_set(a->err, CS_ENOMEM, 0, "results: bootstrap threads")
                   : rc;
}

static cs_rc holm(ag *a)
{
    double *p = cs_alloc_array(a->n_cmps, sizeof(*p));
    if (p == NULL) {
        return cs_err_set(a->err, CS_ENOMEM, 0, "results: %zu comparisons", a->n_cmps);
    }
    size_t m = 0;
    for (size_t i = 0; i < a->n_cmps; i++) {
        if (a->cmps[i].reason == NULL) {
            p[m++] = a->cmps[i].ci.p;
        }
    }
    cs_rc rc = cs_agg_holm(p, m, p, a->err);
    m = 0;
    for (size_t i = 0; i < a->n_cmps && rc == CS_OK; i++) {
        if (a->cmps[i].reason == NULL) {
            a->cmps[i].p_holm = p[m++];
        }
    }
    free(p);
    return rc;
}

cs_rc ag_compare(ag *a)
{
    size_t per_row = a->n_tasks + (a->n_avg > 0), n = 0;
    for (size_t r = 0; r < a->n_rows; r++) {
        n += a->rows[r].ref != AG_NONE;
    }
    a->cmps = cs_calloc_array(n * per_row, sizeof(*a->cmps));
    size_t *rows = cs_alloc_array(n + 1, sizeof(*rows));
    bool *unpaired = cs_calloc_array(a->n_rows + 1, sizeof(*unpaired));
    if (a->cmps == NULL || rows == NULL || unpaired == NULL) {
        cs_free_each((void *const[]){rows, unpaired}, 2);
        return cs_err_set(a->err, CS_ENOMEM, 0, "results: %zu comparisons", n * per_row);
    }
    n = 0;
    for (size_t r = 0; r < a->n_rows; r++) {
        const ag_row *row = &a->rows[r];
        if (row->ref == AG_NONE) {
            continue;
        }
        const ag_row *ref = &a->rows[row->ref];
        rows[n++] = r;
        for (size_t t = 0; t < per_row; t++) {
            size_t task = t < a->n_tasks ? t : a->n_tasks;
            double x = task < a->n_tasks ? row->head[task] : row->avg;
            double y = task < a->n_tasks ? ref->head[task] : ref->avg;
            const char *name = task < a->n_tasks ? a->tasks[task].name : "average";
            ag_cmp *c = &a->cmps[a->n_cmps++];
            *c = (ag_cmp){.row = r, .ref = row->ref, .task = task, .delta = x - y};
            c->delta = isnan(x) || isnan(y) ? NAN : c->delta;
            c->seed = fnv(name, fnv(ref->key, fnv(row->key, 0xcbf29ce484222325ull ^ a->o.seed)));
        }
    }
    cs_rc rc = n > 0 ? run_rows(a, rows, n, unpaired) : CS_OK;
    for (size_t r = 0; r < a->n_rows && rc == CS_OK; r++) {
        a->rows[r].flags |= unpaired[r] ? AG_F_UNPAIRED : 0;
    }
    cs_free_each((void *const[]){rows, unpaired}, 2);
    if (rc == CS_OK) {
        rc = holm(a);
    }
    return rc;
}
