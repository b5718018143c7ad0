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

#define SOURCE_MAX_FILE ((size_t)1 << 30)

static cs_rc add_doc(cs_buf *all, const char *text, size_t len, cs_err *err)
{
    if ((all->len > 0 && cs_buf_append(all, "\n\n", 2) != CS_OK) ||
        cs_buf_append(all, text, len) != CS_OK) {
        return cs_err_set(err, CS_ENOMEM, 0, "out of memory");
    }
    return CS_OK;
}

static cs_rc read_jsonl(const cs_calib_source *src, cs_buf *all, cs_err *err)
{
    const char *field = src->text_field ? src->text_field : "text";
    char *text = NULL, name[512];
    size_t len = 0, line = 0;
    cs_rc rc = cs_path_read_file(src->path, SOURCE_MAX_FILE, &text, &len, err);
    for (char *p = text, *end = text ? text + len : NULL; rc == CS_OK && p < end;) {
        char *nl = memchr(p, '\n', (size_t)(end - p));
        size_t n = nl ? (size_t)(nl - p) : (size_t)(end - p);
        cJSON *o = NULL;
        line++;
        if (n > 0) {
            snprintf(name, sizeof name, "%s:%zu", src->path, line);
            rc = cs_json_parse(p, n, name, &o, err);
            const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, field);
            if (rc == CS_OK && !cJSON_IsString(v)) {
                rc = cs_err_set(err, CS_ESCHEMA, 0, "%s: %s: expected a string", name, field);
            }
            if (rc == CS_OK) {
                rc = add_doc(all, v->valuestring, strlen(v->valuestring), err);
            }
            cJSON_Delete(o);
        }
        p += n + 1;
    }
    free(text);
    return rc;
}

static cs_rc read_text(const cs_calib_source *src, cs_buf *all, cs_err *err)
{
    char *text = NULL;
    size_t len = 0;
    cs_rc rc = cs_path_read_file(src->path, SOURCE_MAX_FILE, &text, &len, err);
    if (rc == CS_OK) {
        rc = add_doc(all, text, len, err);
    }
    free(text);
    return rc;
}

static cs_rc read_task(const cs_calib_source *src, cs_buf *all, cs_err *err)
{
    cs_task t;
    cs_rc rc = cs_task_load(&t, src->path, 0, err);
    for (size_t i = 0; rc == CS_OK && i < t.n; i++) {
        const cs_task_item *it = &t.items[i];
        cs_buf doc;
        cs_buf_init(&doc);
        const char *tail = t.kind == CS_TASK_MC      ? it->options[it->gold]
                           : t.kind == CS_TASK_GEN   ? it->answer
                           : t.kind == CS_TASK_MULTI ? it->options[it->gold]
                                                     : NULL;
        if (t.kind == CS_TASK_MULTI) {
            rc = cs_buf_printf(&doc, "%s %s", it->options[it->gold], it->text);
        } else if (tail) {
            rc = cs_buf_printf(&doc, "%s %s", it->text, tail);
        } else {
            rc = cs_buf_printf(&doc, "%s", it->text);
        }
        rc = rc == CS_OK ? add_doc(all, doc.data, doc.len, err)
                         : cs_err_set(err, CS_ENOMEM, 0, "out of memory");
        cs_buf_fini(&doc);
    }
    cs_task_free(&t);
    return rc;
}

cs_rc cs_calib_source_tokens(const cs_calib_source *src, const cs_tok *tok, int32_t **ids,
                             size_t *n, cs_err *err)
{
    cs_buf all;
    cs_rc rc;
    cs_buf_init(&all);
    *ids = NULL;
    *n = 0;
    if (strcmp(src->kind, "jsonl") == 0) {
        rc = read_jsonl(src, &all, err);
    } else if (strcmp(src->kind, "text") == 0) {
        rc = read_text(src, &all, err);
    } else if (strcmp(src->kind, "task") == 0) {
        rc = read_task(src, &all, err);
    } else {
        rc = cs_err_set(err, CS_EINVAL, 0, "calibration.source.kind: '%s' (jsonl, text, task)",
                        src->kind);
    }
    if (rc == CS_OK) {
        rc = cs_tok_encode(tok, all.data ? all.data : "", all.len, 0, ids, n, err);
    }
    cs_buf_fini(&all);
    return rc;
}

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
