/* calib: sources and random windows (cs_source.h). */
#include "cs_source.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cs_alloc.h"
#include "cs_json.h"
#include "cs_path.h"
#include "cs_rng.h"
#include "cs_task.h"

cs_rc cs_calib_random_windows(const int32_t *stream, size_t n_stream, size_t n, size_t seq_len,
                              uint64_t seed, int32_t **tokens, size_t **offsets, cs_err *err)
{
    cs_rng rng;
    *tokens = NULL;
    *offsets = NULL;
    if (seq_len == 0 || n == 0) {
        return cs_err_set(err, CS_EINVAL, 0, "n_samples and seq_len must be positive");
    }
    if (n_stream < seq_len) {
        return cs_err_set(err, CS_EINVAL, 0,
                          "the calibration source has %zu tokens, fewer than seq_len %zu", n_stream,
                          seq_len);
    }
    *tokens = cs_alloc_array(n * seq_len, sizeof(int32_t));
    *offsets = cs_alloc_array(n, sizeof(size_t));
    if (!*tokens || !*offsets) {
        free(*tokens);
        free(*offsets);
        *tokens = NULL;
        *offsets = NULL;
        return cs_err_set(err, CS_ENOMEM, 0, "out of memory");
    }
    cs_rng_seed(&rng, seed);
    for (size_t i = 0; i < n; i++) {
        size_t off = (size_t)cs_rng_below(&rng, (uint64_t)(n_stream - seq_len + 1));
        (*offsets)[i] = off;
        memcpy(*tokens + i * seq_len, stream + off, seq_len * sizeof(int32_t));
    }
    return CS_OK;
}

/* ---- documents, pools and the overlap check ---- */

static const char *const compose_names[] = {"random_windows", "concat", "per_doc", "doc_windows",
                                            "awq_concat"};

void cs_calib_compose_opts_default(cs_calib_compose_opts *o)
{
    memset(o, 0, sizeof(*o));
    o->mode = CS_COMPOSE_RANDOM_WINDOWS;
    o->n = 128;
    o->seq_len = 2048;
    o->add_bos = true;
}

const char *cs_calib_compose_name(cs_calib_compose m)
{
    return (size_t)m < sizeof compose_names / sizeof compose_names[0] ? compose_names[m] : "?";
}

cs_rc cs_calib_compose_parse(const char *name, cs_calib_compose *out, cs_err *err)
{
    for (size_t i = 0; i < sizeof compose_names / sizeof compose_names[0]; i++) {
        if (strcmp(name, compose_names[i]) == 0) {
            *out = (cs_calib_compose)i;
            return CS_OK;
        }
    }
    return cs_err_set(err, CS_EINVAL, 0,
                      "composition '%s': expected random_windows, concat, per_doc, doc_windows or "
                      "awq_concat",
                      name);
}

/* ---- pool ---- */

static cs_rc pool_add(cs_calib_pool *p, size_t cap, size_t source, char *id, const int32_t *head,
                      size_t n_head, const int32_t *toks, size_t n_toks, cs_err *err)
{
    int32_t *t = cs_alloc_array(n_head + n_toks, sizeof(int32_t));
    if (!id || !t || p->n >= cap) {
        free(id);
        free(t);
        return cs_err_set(err, CS_ENOMEM, 0, "out of memory");
    }
    if (n_head) {
        memcpy(t, head, n_head * sizeof(int32_t));
    }
    memcpy(t + n_head, toks, n_toks * sizeof(int32_t));
    p->items[p->n++] =
            (cs_calib_item){.id = id, .tokens = t, .n_tokens = n_head + n_toks, .source = source};
    return CS_OK;
}

static char *item_id(const char *name, char fmt, size_t v)
{
    char b[48];
    snprintf(b, sizeof b, "%c%zu", fmt, v);
    return cs_calib_join_id(name, b);
}

static cs_rc join_tokens(const cs_calib_doc *d, const size_t *order, size_t n, const cs_tok *tok,
                         int32_t **ids, size_t *n_ids, cs_err *err)
{
    cs_buf all;
    cs_rc rc = CS_OK;
    cs_buf_init(&all);
    for (size_t i = 0; rc == CS_OK && i < n; i++) {
        const char *t = d[order ? order[i] : i].text;
        if ((i > 0 && cs_buf_append(&all, "\n\n", 2) != CS_OK) || cs_buf_puts(&all, t) != CS_OK) {
            rc = cs_err_set(err, CS_ENOMEM, 0, "out of memory");
        }
    }
    if (rc == CS_OK) {
        rc = cs_tok_encode(tok, all.data ? all.data : "", all.len, 0, ids, n_ids, err);
    }
    cs_buf_fini(&all);
    return rc;
}

/* doc_windows (GPTQ's C4 sampler): each sample a random document of more than L tokens and a
 * window of L tokens at a random offset in it (offset < n - L, as GPTQ's randint(0, n - L - 1));
 * id "<name>:<document id>@<offset>", a pair drawn twice is drawn again. */
static cs_rc compose_doc_windows(const cs_calib_source *src, size_t si, const char *name,
                                 const cs_calib_doc *d, size_t nd, size_t quota, const cs_tok *tok,
                                 size_t L, int32_t bos, cs_rng *rng, cs_calib_pool *p, size_t cap,
                                 cs_err *err)
{
    size_t got = 0, tries = 0, n_head = bos >= 0 ? 1 : 0;
    const size_t max_tries = 64 * quota + 4 * nd;
    cs_rc rc = CS_OK;
    while (rc == CS_OK && got < quota && tries++ < max_tries && nd > 0) {
        const cs_calib_doc *doc = &d[cs_rng_below(rng, (uint64_t)nd)];
        int32_t *ids = NULL;
        size_t n = 0;
        rc = cs_tok_encode(tok, doc->text, strlen(doc->text), 0, &ids, &n, err);
        if (rc == CS_OK && n > L) {
            size_t off = (size_t)cs_rng_below(rng, (uint64_t)(n - L));
            char at[40];
            snprintf(at, sizeof at, "@%zu", off);
            char *id = cs_calib_join_id(name, doc->id), *full = NULL;
            if (id && (full = malloc(strlen(id) + strlen(at) + 1)) != NULL) {
                memcpy(full, id, strlen(id));
                memcpy(full + strlen(id), at, strlen(at) + 1);
            }
            free(id);
            bool dup = false;
            for (size_t k = p->n - got; full && k < p->n && !dup; k++) {
                dup = strcmp(p->items[k].id, full) == 0;
            }
            if (dup) {
                free(full);
            } else {
                rc = pool_add(p, cap, si, full, &bos, n_head, ids + off, L, err);
                got += rc == CS_OK;
            }
        }
        free(ids);
    }
    if (rc == CS_OK && got < quota) {
        rc = cs_err_set(err, CS_EINVAL, 0,
                        "source '%s' (%s): found %zu distinct windows of %zu tokens inside "
                        "documents longer than that, fewer than its %zu samples (doc_windows)",
                        name, src->path, got, L, quota);
    }
    return rc;
}

/* awq_concat (AWQ's pile-val recipe): the documents in a seeded shuffled order, those of more
 * than L tokens skipped, their tokens joined with no separator and cut into samples of L tokens;
 * id "<name>:a<k>". */
static cs_rc compose_awq(const cs_calib_source *src, size_t si, const char *name,
                         const cs_calib_doc *d, const size_t *order, size_t nd, size_t quota,
                         const cs_tok *tok, size_t L, int32_t bos, cs_calib_pool *p, size_t cap,
                         cs_err *err)
{
    size_t n_head = bos >= 0 ? 1 : 0, len = 0, need = quota * L;
    int32_t *all = cs_alloc_array(need ? need : 1, sizeof(int32_t));
    cs_rc rc = all ? CS_OK : cs_err_set(err, CS_ENOMEM, 0, "out of memory");
    for (size_t i = 0; rc == CS_OK && i < nd && len < need; i++) {
        const cs_calib_doc *doc = &d[order[i]];
        int32_t *ids = NULL;
        size_t n = 0;
        rc = cs_tok_encode(tok, doc->text, strlen(doc->text), 0, &ids, &n, err);
        if (rc == CS_OK && n <= L) {
            size_t take = n < need - len ? n : need - len;
            memcpy(all + len, ids, take * sizeof(int32_t));
            len += take;
        }
        free(ids);
    }
    if (rc == CS_OK && len < need) {
        rc = cs_err_set(err, CS_EINVAL, 0,
                        "source '%s' (%s): its documents of at most %zu tokens hold %zu tokens, "
                        "fewer than %zu samples x %zu (awq_concat)",
                        name, src->path, L, len, quota, L);
    }
    for (size_t k = 0; rc == CS_OK && k < quota; k++) {
        rc = pool_add(p, cap, si, item_id(name, 'a', k), &bos, n_head, all + k * L, L, err);
    }
    free(all);
    return rc;
}

static cs_rc compose_source(const cs_calib_source *src, size_t si, const char *name,
                            const cs_calib_doc *d, size_t nd, size_t quota, const cs_tok *tok,
                            const cs_calib_compose_opts *o, cs_calib_pool *p, size_t cap,
                            cs_err *err)
{
    int32_t bos = o->add_bos ? cs_tok_bos(tok) : -1;
    size_t n_head = bos >= 0 ? 1 : 0, L = o->seq_len - n_head;
    int32_t *stream = NULL;
    size_t n_stream = 0, *order = NULL;
    cs_rng rng;
    cs_rc rc = CS_OK;
    /* one stream per source and seed: the seed mixed with the source index */
    cs_rng_seed(&rng, o->seed ^ (UINT64_C(0x9e3779b97f4a7c15) * (si + 1)));
    if (quota == 0) {
        return CS_OK;
    }
    if (o->mode != CS_COMPOSE_RANDOM_WINDOWS) {
        order = cs_alloc_array(nd, sizeof(size_t));
        if (!order) {
            return cs_err_set(err, CS_ENOMEM, 0, "out of memory");
        }
        for (size_t i = 0; i < nd; i++) {
            order[i] = i;
        }
        cs_rng_shuffle(&rng, order, nd);
    }
    if (o->mode == CS_COMPOSE_DOC_WINDOWS || o->mode == CS_COMPOSE_AWQ_CONCAT) {
        rc = o->mode == CS_COMPOSE_DOC_WINDOWS
                     ? compose_doc_windows(src, si, name, d, nd, quota, tok, L, bos, &rng, p, cap,
                                           err)
                     : compose_awq(src, si, name, d, order, nd, quota, tok, L, bos, p, cap, err);
        free(order);
        return rc;
    }
    if (o->mode == CS_COMPOSE_PER_DOC) {
        size_t got = 0;
        for (size_t i = 0; rc == CS_OK && i < nd && got < quota; i++) {
            const cs_calib_doc *doc = &d[order[i]];
            rc = cs_tok_encode(tok, doc->text, strlen(doc->text), 0, &stream, &n_stream, err);
            if (rc == CS_OK && n_stream >= L) {
                rc = pool_add(p, cap, si, cs_calib_join_id(name, doc->id), &bos, n_head, stream, L,
                              err);
                got++;
            }
            free(stream);
            stream = NULL;
        }
        if (rc == CS_OK && got < quota) {
            rc = cs_err_set(err, CS_EINVAL, 0,
                            "source '%s' (%s): %zu documents have at least %zu tokens, fewer than "
                            "its %zu samples (per_doc skips shorter documents)",
                            name, src->path, got, L, quota);
        }
        free(order);
        return rc;
    }
    rc = join_tokens(d, order, nd, tok, &stream, &n_stream, err);
    if (rc == CS_OK && o->mode == CS_COMPOSE_CONCAT) {
        if (n_stream < quota * L) {
            rc = cs_err_set(err, CS_EINVAL, 0,
                            "source '%s' (%s): %zu tokens, fewer than %zu samples x %zu tokens",
                            name, src->path, n_stream, quota, L);
        }
        for (size_t k = 0; rc == CS_OK && k < quota; k++) {
            rc = pool_add(p, cap, si, item_id(name, 'c', k), &bos, n_head, stream + k * L, L, err);
        }
    } else if (rc == CS_OK) {
        size_t n_off = n_stream >= L ? n_stream - L + 1 : 0;
        size_t *offs = cs_alloc_array(quota, sizeof(size_t));
        if (n_off < quota) {
            rc = cs_err_set(err, CS_EINVAL, 0,
                            "source '%s' (%s): %zu tokens give %zu distinct windows of %zu tokens, "
                            "fewer than its %zu samples",
                            name, src->path, n_stream, n_off, L, quota);
        } else if (!offs) {
            rc = cs_err_set(err, CS_ENOMEM, 0, "out of memory");
        }
        for (size_t k = 0; rc == CS_OK && k < quota; k++) {
            size_t off;
            bool dup;
            do { /* distinct offsets, so ids stay unique */
                off = (size_t)cs_rng_below(&rng, (uint64_t)n_off);
                dup = false;
                for (size_t j = 0; j < k && !dup; j++) {
                    dup = offs[j] == off;
                }
            } while (dup);
            offs[k] = off;
            rc = pool_add(p, cap, si, item_id(name, 'w', off), &bos, n_head, stream + off, L, err);
        }
        free(offs);
    }
    free(stream);
    free(order);
    return rc;
}

/* Names source i of pool: pool->sources[i] = its name, or PREFIX<i> when it has none; a name
 * already taken is an error (what: the error's subject). */
static cs_rc name_source(cs_calib_pool *pool, const cs_calib_source *src, size_t i,
                         const char *prefix, const char *what, cs_err *err)
{
    char def[32];
    cs_rc rc = CS_OK;
    snprintf(def, sizeof def, "%s%zu", prefix, i);
    const char *name = src->name ? src->name : def;
    for (size_t j = 0; j < i; j++) {
        if (strcmp(pool->sources[j], name) == 0) {
            rc = cs_err_set(err, CS_EINVAL, 0, "%s: two sources named '%s'", what, name);
        }
    }
    pool->sources[i] = cs_strdup(name);
    pool->n_sources = i + 1;
    if (rc == CS_OK && !pool->sources[i]) {
        rc = cs_err_set(err, CS_ENOMEM, 0, "out of memory");
    }
    return rc;
}

cs_rc cs_calib_pool_build(const cs_calib_source *src, size_t n_src, const cs_tok *tok,
                          const cs_calib_compose_opts *o, cs_calib_pool *pool, cs_err *err)
{
    cs_rc rc = CS_OK;
    size_t fixed = 0, n_share = 0;
    memset(pool, 0, sizeof(*pool));
    if (n_src == 0 || o->n == 0 || o->seq_len < 2) {
        return cs_err_set(err, CS_EINVAL, 0,
                          "calibration: need at least one source, n >= 1 and seq_len >= 2");
    }
    if ((size_t)o->mode > CS_COMPOSE_AWQ_CONCAT) {
        return cs_err_set(err, CS_EINVAL, 0, "calibration: unknown composition %d", (int)o->mode);
    }
    for (size_t i = 0; i < n_src; i++) {
        fixed += src[i].quota;
        n_share += src[i].quota == 0;
    }
    if (fixed > o->n || (fixed < o->n && n_share == 0)) {
        return cs_err_set(err, CS_EINVAL, 0,
                          "calibration: the source quotas add up to %zu, not n_samples %zu", fixed,
                          o->n);
    }
    pool->items = cs_alloc_array(o->n, sizeof(cs_calib_item));
    pool->sources = cs_alloc_array(n_src, sizeof(char *));
    if (!pool->items || !pool->sources) {
        cs_calib_pool_fini(pool);
        return cs_err_set(err, CS_ENOMEM, 0, "out of memory");
    }
    pool->seq_len = o->seq_len;
    size_t rest = o->n - fixed, k_share = 0;
    for (size_t i = 0; rc == CS_OK && i < n_src; i++) {
        rc = name_source(pool, &src[i], i, "src", "calibration", err);
        const char *name = pool->sources[i];
        size_t quota = src[i].quota;
        if (quota == 0) {
            quota = rest / n_share + (k_share < rest % n_share ? 1 : 0);
            k_share++;
        }
        cs_calib_doc *d = NULL;
        size_t nd = 0;
        if (rc == CS_OK) {
            rc = cs_calib_source_docs(&src[i], &d, &nd, err);
        }
        if (rc == CS_OK) {
            rc = compose_source(&src[i], i, name, d, nd, quota, tok, o, pool, o->n, err);
        }
        cs_calib_docs_destroy(d, nd);
    }
    if (rc != CS_OK) {
        cs_calib_pool_fini(pool);
    }
    return rc;
}

cJSON *cs_calib_pool_describe(const cs_calib_pool *pool, const cs_calib_source *src, size_t n_src,
                              const cs_calib_compose_opts *o)
{
    cJSON *j = cJSON_CreateObject(), *arr = cJSON_AddArrayToObject(j, "sources");
    if (!arr || !cJSON_AddStringToObject(j, "composition", cs_calib_compose_name(o->mode)) ||
        !cJSON_AddNumberToObject(j, "n", (double)pool->n) ||
        !cJSON_AddNumberToObject(j, "seq_len", (double)pool->seq_len) ||
        !cJSON_AddNumberToObject(j, "seed", (double)o->seed) ||
        !cJSON_AddBoolToObject(j, "add_bos", o->add_bos)) {
        cJSON_Delete(j);
        return NULL;
    }
    for (size_t i = 0; i < n_src && i < pool->n_sources; i++) {
        cJSON *s = cJSON_CreateObject();
        size_t cnt = 0;
        for (size_t k = 0; k < pool->n; k++) {
            cnt += pool->items[k].source == i;
        }
        if (!s || !cJSON_AddItemToArray(arr, s) ||
            !cJSON_AddStringToObject(s, "name", pool->sources[i]) ||
            !cJSON_AddStringToObject(s, "kind", src[i].kind) ||
            !cJSON_AddStringToObject(s, "path", src[i].path) ||
            (src[i].text_field && !cJSON_AddStringToObject(s, "field", src[i].text_field)) ||
            (strcmp(src[i].kind, "task") == 0 &&
             !cJSON_AddStringToObject(s, "format",
                                      src[i].format == CS_CALIB_FMT_QA ? "qa" : "text")) ||
            !cJSON_AddNumberToObject(s, "items", (double)cnt)) {
            cJSON_Delete(j);
            return NULL;
        }
    }
    return j;
}

cs_rc cs_calib_source_tokens(const cs_calib_source *src, const cs_tok *tok, int32_t **ids,
                             size_t *n, cs_err *err)
{
    cs_calib_doc *docs = NULL;
    size_t n_docs = 0;
    cs_buf all;
    cs_rc rc = cs_calib_source_docs(src, &docs, &n_docs, err);
    *ids = NULL;
    *n = 0;
    cs_buf_init(&all);
    for (size_t i = 0; rc == CS_OK && i < n_docs; i++) {
        if ((all.len > 0 && cs_buf_append(&all, "\n\n", 2) != CS_OK) ||
            cs_buf_append(&all, docs[i].text, strlen(docs[i].text)) != CS_OK) {
            rc = cs_err_set(err, CS_ENOMEM, 0, "out of memory");
        }
    }
    if (rc == CS_OK) {
        rc = cs_tok_encode(tok, all.data ? all.data : "", all.len, 0, ids, n, err);
    }
    cs_buf_fini(&all);
    cs_calib_docs_destroy(docs, n_docs);
    return rc;
}

cs_rc cs_calib_ref_pool_build(const cs_calib_source *src, size_t n_src, const cs_tok *tok,
                              size_t seq_len, bool add_bos, cs_calib_pool *pool, cs_err *err)
{
    int32_t bos = add_bos ? cs_tok_bos(tok) : -1;
    size_t n_head = bos >= 0 ? 1 : 0, cap = 0;
    cs_rc rc = CS_OK;
    memset(pool, 0, sizeof(*pool));
    if (n_src == 0 || seq_len <= n_head) {
        return cs_err_set(err, CS_EINVAL, 0,
                          "reference items: need at least one source and seq_len > %zu", n_head);
    }
    if (!(pool->sources = cs_calloc_array(n_src, sizeof(char *)))) {
        return cs_err_set(err, CS_ENOMEM, 0, "out of memory");
    }
    pool->seq_len = seq_len;
    for (size_t i = 0; rc == CS_OK && i < n_src; i++) {
        rc = name_source(pool, &src[i], i, "ref", "reference items", err);
        const char *name = pool->sources[i];
        cs_calib_doc *d = NULL;
        size_t nd = 0, got = 0;
        if (rc == CS_OK) {
            rc = cs_calib_source_docs(&src[i], &d, &nd, err);
        }
        if (rc == CS_OK && pool->n + nd > cap) {
            size_t nc = pool->n + nd;
            cs_calib_item *ni = cs_realloc_array(pool->items, nc ? nc : 1, sizeof(cs_calib_item));
            if (!ni) {
                rc = cs_err_set(err, CS_ENOMEM, 0, "out of memory");
            } else {
                pool->items = ni;
                cap = nc;
            }
        }
        for (size_t k = 0; rc == CS_OK && k < nd; k++) {
            int32_t *ids = NULL;
            size_t n_ids = 0;
            rc = cs_tok_encode(tok, d[k].text, strlen(d[k].text), 0, &ids, &n_ids, err);
            if (rc == CS_OK && n_ids > 0) {
                size_t keep = n_ids < seq_len - n_head ? n_ids : seq_len - n_head;
                rc = pool_add(pool, cap, i, cs_calib_join_id(name, d[k].id), &bos, n_head, ids,
                              keep, err);
                got++;
            }
            free(ids);
        }
        if (rc == CS_OK && got == 0) {
            rc = cs_err_set(err, CS_EINVAL, 0, "reference source '%s' (%s) has no items", name,
                            src[i].path);
        }
        cs_calib_docs_destroy(d, nd);
    }
    if (rc != CS_OK) {
        cs_calib_pool_fini(pool);
    }
    return rc;
}

cs_rc cs_calib_acdm_reference(const cs_calib_source *ref, size_t n_ref, const cs_calib_source *src,
                              size_t n_src, const char *const *evals, size_t n_evals,
                              const cs_tok *tok, size_t seq_len, bool add_bos, cs_calib_pool *pool,
                              cs_err *err)
{
    const char **rp = cs_calloc_array(n_ref + 1, sizeof(char *));
    cs_rc rc = CS_OK;
    if (!rp) {
        return cs_err_set(err, CS_ENOMEM, 0, "out of memory");
    }
    for (size_t i = 0; i < n_ref; i++) {
        rp[i] = ref[i].path;
    }
    if (n_evals > 0) {
        rc = cs_calib_check_disjoint(ref, n_ref, evals, n_evals, "ACDM reference", "evaluation",
                                     err);
    }
    if (rc == CS_OK) {
        rc = cs_calib_check_disjoint(src, n_src, rp, n_ref, "calibration", "ACDM reference", err);
    }
    free(rp);
    if (rc == CS_OK) {
        rc = cs_calib_ref_pool_build(ref, n_ref, tok, seq_len, add_bos, pool, err);
    }
    return rc;
}
