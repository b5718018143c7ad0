/* eval: task files (cs_task.h). */
#include "cs_task.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cs_alloc.h"
#include "cs_json.h"
#include "cs_path.h"
#include "cs_rng.h"

/* The length of a JSON syntax message msg[0..) up to the first quote at or after skip (what
 * follows a quote quotes the text of the file), without a trailing " near" and ' ', ':'. */
static size_t unquoted_len(const char *msg, size_t skip)
{
    size_t keep = skip + strcspn(msg + skip, "'\"");
    while (keep > skip && (msg[keep - 1] == ' ' || msg[keep - 1] == ':')) {
        keep--;
    }
    if (keep >= skip + 5 && strncmp(msg + keep - 5, " near", 5) == 0) {
        keep -= 5;
    }
    return keep;
}

/* The length of a schema message msg[0..) without its ", got <value>" tail (the value is the
 * file's text; the keys and the expectation named before it are ours). */
static size_t without_value_len(const char *msg)
{
    const char *got = strstr(msg, ", got ");
    return got ? (size_t)(got - msg) : strlen(msg);
}

cs_rc cs_task_parse_line(const char *p, size_t n, const char *name, cJSON **out, cs_err *err)
{
    cs_err e = {0};
    cs_rc rc = cs_json_parse(p, n, name, out, &e);
    if (rc == CS_OK) {
        return CS_OK;
    }
    size_t skip = strncmp(e.msg, name, strlen(name)) == 0 ? strlen(name) : 0;
    return cs_err_set(err, rc, e.cause, "%.*s", (int)unquoted_len(e.msg, skip), e.msg);
}

#define TASK_MAX_FILE ((size_t)1 << 30)

const char *cs_task_kind_name(cs_task_kind k)
{
    switch (k) {
    case CS_TASK_MC:
        return "multiple choice";
    case CS_TASK_MULTI:
        return "multiple input";
    case CS_TASK_GEN:
        return "generation";
    case CS_TASK_REF:
        return "reference";
    }
    return "?";
}

static void item_fini(cs_task_item *it)
{
    free(it->id);
    free(it->text);
    free(it->answer);
    for (size_t i = 0; i < it->n_options; i++) {
        free(it->options[i]);
    }
    free(it->options);
    memset(it, 0, sizeof(*it));
}

void cs_task_fini(cs_task *t)
{
    if (!t) {
        return;
    }
    for (size_t i = 0; i < t->n; i++) {
        item_fini(&t->items[i]);
    }
    free(t->items);
    free(t->path);
    free(t->name);
    memset(t, 0, sizeof(*t));
}

void cs_task_truncate(cs_task *t, size_t n)
{
    for (size_t i = n; i < t->n; i++) {
        item_fini(&t->items[i]);
    }
    if (n < t->n) {
        t->n = n;
    }
}

static cs_task_kind kind_of(const cJSON *o)
{
    if (cJSON_GetObjectItemCaseSensitive(o, "choices")) {
        return CS_TASK_MC;
    }
    if (cJSON_GetObjectItemCaseSensitive(o, "contexts")) {
        return CS_TASK_MULTI;
    }
    if (cJSON_GetObjectItemCaseSensitive(o, "prompt")) {
        return CS_TASK_GEN;
    }
    return CS_TASK_REF;
}

/* An array of strings (at least min_n of them) into *out / *n. */
static cs_rc string_array(cs_jctx *c, const cJSON *o, const char *key, size_t min_n, char ***out,
                          size_t *n)
{
    const cJSON *arr = NULL, *v;
    size_t i = 0;
    cs_rc rc = cs_json_req_array(c, o, key, &arr);
    if (rc != CS_OK) {
        return rc;
    }
    size_t len = (size_t)cJSON_GetArraySize(arr);
    cs_jpath_push_key(&c->path, key);
    if (len < min_n) {
        rc = cs_jctx_error(c, arr, NULL, "expected at least %zu strings, got %zu", min_n, len);
        cs_jpath_pop(&c->path);
        return rc;
    }
    *out = len ? cs_calloc_array(len, sizeof(char *)) : NULL;
    if (len && !*out) {
        cs_jpath_pop(&c->path);
        return CS_ENOMEM;
    }
    cJSON_ArrayForEach(v, arr)
    {
        const char *s = NULL;
        cs_jpath_push_index(&c->path, i);
        rc = cs_json_as_string(c, v, &s);
        cs_jpath_pop(&c->path);
        if (rc != CS_OK) {
            break;
        }
        if (!((*out)[i] = cs_strdup(s))) {
            rc = CS_ENOMEM;
            break;
        }
        i++;
    }
    *n = i;
    cs_jpath_pop(&c->path);
    return rc;
}

static cs_rc dup_field(cs_jctx *c, const cJSON *o, const char *key, char **out)
{
    const char *s = NULL;
    cs_rc rc = cs_json_req_string(c, o, key, &s);
    if (rc != CS_OK) {
        return rc;
    }
    *out = cs_strdup(s);
    return *out ? CS_OK : CS_ENOMEM;
}

static cs_rc parse_item(cs_task *t, const cJSON *o, cs_task_item *it, cs_err *err)
{
    cs_jctx c;
    const char *task = NULL;
    int64_t gold = 0;
    cs_rc rc;
    cs_task_kind k = kind_of(o);

    cs_jctx_init(&c, NULL, err);
    if ((rc = cs_json_as_object(&c, o)) != CS_OK || (rc = dup_field(&c, o, "id", &it->id)) ||
        (rc = cs_json_req_string(&c, o, "task", &task)) != CS_OK) {
        return rc;
    }
    if (t->n == 0) {
        t->kind = k;
        if (!(t->name = cs_strdup(task))) {
            return CS_ENOMEM;
        }
    } else if (k != t->kind) {
        return cs_err_set(err, CS_ESCHEMA, 0, "a %s item in a file of %s items",
                          cs_task_kind_name(k), cs_task_kind_name(t->kind));
    } else if (strcmp(task, t->name) != 0) {
        return cs_err_set(err, CS_ESCHEMA, 0, "task: not the task of the earlier items (line %zu)",
                          t->items[0].line);
    }
    switch (k) {
    case CS_TASK_MC:
    case CS_TASK_MULTI:
        if ((rc = dup_field(&c, o, k == CS_TASK_MC ? "context" : "continuation", &it->text)) ||
            (rc = string_array(&c, o, k == CS_TASK_MC ? "choices" : "contexts", 2, &it->options,
                               &it->n_options)) != CS_OK ||
            (rc = cs_json_req_int(&c, o, "gold", 0, (int64_t)it->n_options - 1, &gold)) != CS_OK) {
            return rc;
        }
        it->gold = (int)gold;
        break;
    case CS_TASK_GEN:
        if ((rc = dup_field(&c, o, "prompt", &it->text)) != CS_OK ||
            (rc = dup_field(&c, o, "answer", &it->answer)) != CS_OK) {
            return rc;
        }
        if (cJSON_GetObjectItemCaseSensitive(o, "stop") &&
            (rc = string_array(&c, o, "stop", 0, &it->options, &it->n_options)) != CS_OK) {
            return rc;
        }
        break;
    case CS_TASK_REF:
        if ((rc = dup_field(&c, o, "text", &it->text)) != CS_OK) {
            return rc;
        }
        break;
    }
    return CS_OK;
}

/* Keeps `limit` items chosen with seed, in file order. */
static cs_rc subsample(cs_task *t, size_t limit, uint64_t seed, cs_err *err)
{
    size_t *idx = cs_alloc_array(t->n, sizeof(size_t));
    cs_task_item *keep = cs_alloc_array(limit, sizeof(cs_task_item));
    bool *chosen = cs_calloc_array(t->n, sizeof(bool));
    cs_rng rng;
    if (!idx || !keep || !chosen) {
        free(idx);
        free(keep);
        free(chosen);
        return cs_err_set(err, CS_ENOMEM, 0, "out of memory");
    }
    for (size_t i = 0; i < t->n; i++) {
        idx[i] = i;
    }
    cs_rng_seed(&rng, seed);
    cs_rng_shuffle(&rng, idx, t->n);
    for (size_t i = 0; i < limit; i++) {
        chosen[idx[i]] = true;
    }
    size_t k = 0;
    for (size_t i = 0; i < t->n; i++) {
        if (chosen[i]) {
            keep[k++] = t->items[i];
        } else {
            item_fini(&t->items[i]);
        }
    }
    free(t->items);
    t->items = keep;
    t->n = limit;
    free(idx);
    free(chosen);
    return CS_OK;
}

cs_rc cs_task_load(cs_task *t, const char *path, size_t limit, cs_err *err)
{
    return cs_task_load_seeded(t, path, limit, CS_TASK_LIMIT_SEED, err);
}

cs_rc cs_task_load_seeded(cs_task *t, const char *path, size_t limit, uint64_t seed, cs_err *err)
{
    char *text = NULL;
    size_t len = 0;
    cs_rc rc;

    memset(t, 0, sizeof(*t));
    if ((rc = cs_path_read_file(path, TASK_MAX_FILE, &text, &len, err)) != CS_OK) {
        return rc;
    }
    rc = cs_task_parse(t, path, text, len, limit, seed, err);
    free(text);
    return rc;
}

cs_rc cs_task_parse(cs_task *t, const char *path, const char *text, size_t len, size_t limit,
                    uint64_t seed, cs_err *err)
{
    char name[512];
    size_t cap = 0, line = 0;
    cs_rc rc;

    memset(t, 0, sizeof(*t));
    if (!(t->path = cs_strdup(path))) {
        rc = cs_err_set(err, CS_ENOMEM, 0, "out of memory");
        goto fail;
    }
    for (const char *p = text, *end = text + len; p < end;) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        size_t n = nl ? (size_t)(nl - p) : (size_t)(end - p);
        cJSON *o = NULL;
        cs_err e = {0};
        line++;
        if (n == 0 || (n == 1 && p[0] == '\r')) {
            p += n + 1;
            continue;
        }
        snprintf(name, sizeof name, "%s:%zu", path, line);
        if ((rc = cs_task_parse_line(p, n, name, &o, err)) != CS_OK) {
            goto fail;
        }
        if (t->n == cap) {
            size_t ncap = cap ? cap * 2 : 64;
            cs_task_item *ni = cs_realloc_array(t->items, ncap, sizeof(*ni));
            if (!ni) {
                cJSON_Delete(o);
                rc = cs_err_set(err, CS_ENOMEM, 0, "out of memory");
                goto fail;
            }
            t->items = ni;
            cap = ncap;
        }
        cs_task_item *it = &t->items[t->n];
        memset(it, 0, sizeof(*it));
        it->line = line;
        rc = parse_item(t, o, it, &e);
        cJSON_Delete(o);
        if (rc != CS_OK) {
            item_fini(it);
            rc = cs_err_set(err, rc == CS_ENOMEM ? CS_ENOMEM : CS_ESCHEMA, 0, "%s: %.*s", name,
                            e.msg[0] ? (int)without_value_len(e.msg) : (int)strlen(cs_rc_str(rc)),
                            e.msg[0] ? e.msg : cs_rc_str(rc));
            goto fail;
        }
        for (size_t i = 0; i < t->n; i++) {
            if (strcmp(t->items[i].id, it->id) == 0) {
                rc = cs_err_set(err, CS_ESCHEMA, 0, "%s: its id is already used on line %zu", name,
                                t->items[i].line);
                item_fini(it);
                goto fail;
            }
        }
        t->n++;
        p += n + 1;
    }
    if (t->n == 0) {
        rc = cs_err_set(err, CS_EINVAL, 0, "%s: no items", path);
        goto fail;
    }
    if (limit > 0 && t->n > limit && (rc = subsample(t, limit, seed, err)) != CS_OK) {
        goto fail;
    }
    return CS_OK;
fail:
    cs_task_fini(t);
    return rc;
}

/* ---- few-shot ------------------------------------------------------------------------------ */

/* The text of one shot: what its gold answer looks like when scored. */
static cs_rc shot_text(const cs_task *shots, const cs_task_item *s, cs_buf *b)
{
    switch (shots->kind) {
    case CS_TASK_MC:
        return cs_buf_printf(b, "%s %s", s->text, s->options[s->gold]);
    case CS_TASK_MULTI:
        return cs_buf_printf(b, "%s %s", s->options[s->gold], s->text);
    case CS_TASK_GEN:
        return cs_buf_printf(b, "%s %s", s->text, s->answer);
    case CS_TASK_REF:
        break;
    }
    return CS_EINVAL;
}

/* *field = prefix + *field. */
static cs_rc prepend(char **field, const char *prefix, size_t n)
{
    size_t len = strlen(*field);
    char *s = cs_alloc_array(n + len + 1, 1);
    if (!s) {
        return CS_ENOMEM;
    }
    if (n > 0) {
        memcpy(s, prefix, n);
    }
    memcpy(s + n, *field, len + 1);
    free(*field);
    *field = s;
    return CS_OK;
}

cs_rc cs_task_fewshot(cs_task *t, const char *shots_path, size_t k, const char *description,
                      cs_err *err)
{
    cs_task shots = {0};
    cs_buf pre;
    cs_rc rc;

    cs_buf_init(&pre);
    if (k == 0) {
        return CS_OK;
    }
    if (t->kind == CS_TASK_REF) {
        return cs_err_set(err, CS_EINVAL, 0, "%s: reference items take no few-shot prompt",
                          t->path);
    }
    if ((rc = cs_task_load(&shots, shots_path, 0, err)) != CS_OK) {
        return rc;
    }
    if (shots.kind != t->kind) {
        rc = cs_err_set(err, CS_ESCHEMA, 0, "%s: %s shots for a task of %s items (%s)", shots_path,
                        cs_task_kind_name(shots.kind), cs_task_kind_name(t->kind), t->path);
        goto out;
    }
    for (size_t i = 0; i < t->n; i++) {
        cs_task_item *it = &t->items[i];
        size_t used = 0;
        pre.len = 0;
        if (pre.data) {
            pre.data[0] = '\0';
        }
        if (description && (rc = cs_buf_printf(&pre, "%s", description)) != CS_OK) {
            goto oom;
        }
        for (size_t j = 0; j < shots.n && used < k; j++) {
            if (strcmp(shots.items[j].id, it->id) == 0) {
                continue;
            }
            if ((rc = shot_text(&shots, &shots.items[j], &pre)) != CS_OK ||
                (rc = cs_buf_append(&pre, "\n\n", 2)) != CS_OK) {
                goto oom;
            }
            used++;
        }
        if (used < k) {
            rc = cs_err_set(err, CS_EINVAL, 0,
                            "%s: %zu shots asked, the file has %zu for the item on line %zu of %s",
                            shots_path, k, used, it->line, t->path);
            goto out;
        }
        if (t->kind == CS_TASK_MULTI) {
            for (size_t j = 0; j < it->n_options; j++) {
                if ((rc = prepend(&it->options[j], pre.data, pre.len)) != CS_OK) {
                    goto oom;
                }
            }
        } else if ((rc = prepend(&it->text, pre.data, pre.len)) != CS_OK) {
            goto oom;
        }
    }
    rc = CS_OK;
    goto out;
oom:
    rc = cs_err_set(err, CS_ENOMEM, 0, "out of memory");
out:
    cs_buf_fini(&pre);
    cs_task_fini(&shots);
    return rc;
}
