/* cs_export_value.c - axis values as the exports show and match them (cs_export.h): the display
 * form ("gptq(bits=4)") and the matching rule of --where, which is --reference's
 * (docs/results.md "Reference rows") and also takes the short labels the tables show. */
#include <stdlib.h>
#include <string.h>

#include "cs_export.h"
#include "cs_export_table.h"

/* Appends a JSON value's canonical text (cJSON's unformatted print). */
static cs_rc put_json(cs_buf *b, const cJSON *v)
{
    char *t = cJSON_PrintUnformatted(v);
    if (!t) {
        return CS_ENOMEM;
    }
    cs_rc rc = cs_buf_puts(b, t);
    cJSON_free(t);
    return rc;
}

cs_rc cs_export_value_text(cs_buf *b, const cJSON *v)
{
    const cJSON *name = cJSON_IsObject(v) ? cJSON_GetObjectItemCaseSensitive(v, "name") : NULL;
    cs_rc rc = CS_OK;
    bool first = true;
    if (!v || cJSON_IsNull(v)) {
        return CS_OK;
    }
    if (cJSON_IsString(v)) {
        return cs_buf_puts(b, v->valuestring);
    }
    if (!cJSON_IsString(name)) {
        return put_json(b, v);
    }
    rc = cs_buf_puts(b, name->valuestring);
    for (const cJSON *m = v->child; m && rc == CS_OK; m = m->next) {
        if (m == name) {
            continue;
        }
        rc = cs_buf_printf(b, "%s%s=", first ? "(" : ",", m->string);
        if (rc == CS_OK) {
            rc = cJSON_IsString(m) ? cs_buf_puts(b, m->valuestring) : put_json(b, m);
        }
        first = false;
    }
    if (rc == CS_OK && !first) {
        rc = cs_buf_putc(b, ')');
    }
    return rc;
}

/* Whether text is v's display form or canonical JSON. */
static bool text_is(const cJSON *v, const char *text)
{
    cs_buf b = {0};
    bool same = cs_export_value_text(&b, v) == CS_OK && b.data && strcmp(b.data, text) == 0;
    cs_buf_fini(&b);
    if (!same) {
        char *t = cJSON_PrintUnformatted(v);
        same = t && strcmp(t, text) == 0;
        cJSON_free(t);
    }
    return same;
}

/* Whether text is a short label of v, "NAME(k=v,...)": v's name, and each listed member's value
 * as the labels show it (a string as is, else its JSON). Members not listed may be anything. */
static bool short_is(const cJSON *v, const char *text)
{
    const cJSON *name = cJSON_GetObjectItemCaseSensitive(v, "name");
    const char *open = strchr(text, '(');
    size_t len = strlen(text);
    bool ok;
    if (!cJSON_IsString(name) || !open || len < 2 || text[len - 1] != ')' ||
        strlen(name->valuestring) != (size_t)(open - text) ||
        strncmp(name->valuestring, text, (size_t)(open - text)) != 0) {
        return false;
    }
    char *list = cs_strndup(open + 1, (size_t)(text + len - 1 - (open + 1)));
    ok = list != NULL && *list != '\0';
    for (char *p = list, *next; ok && p; p = next) {
        char *eq = strchr(p, '=');
        next = strchr(p, ',');
        if (next) {
            *next++ = '\0';
        }
        if (!eq || (next && eq > next)) {
            ok = false;
            break;
        }
        *eq = '\0';
        const cJSON *m = cJSON_GetObjectItemCaseSensitive(v, p);
        cs_buf b = {0};
        ok = m &&
             (cJSON_IsString(m) ? cs_buf_puts(&b, m->valuestring) : put_json(&b, m)) == CS_OK &&
             strcmp(b.data ? b.data : "", eq + 1) == 0;
        cs_buf_fini(&b);
    }
    free(list);
    return ok;
}

bool cs_export_value_matches(const cJSON *v, const char *text)
{
    const cJSON *name = cJSON_IsObject(v) ? cJSON_GetObjectItemCaseSensitive(v, "name") : NULL;
    cJSON *parsed = NULL;
    bool same;
    if (!v || cJSON_IsNull(v) || !text) {
        return false;
    }
    if (cJSON_IsString(v) && strcmp(v->valuestring, text) == 0) {
        return true;
    }
    if (cJSON_IsString(name) && strcmp(name->valuestring, text) == 0) {
        return true;
    }
    if (text_is(v, text) || short_is(v, text)) {
        return true;
    }
    parsed = cJSON_Parse(text);
    same = parsed && cJSON_Compare(v, parsed, true);
    cJSON_Delete(parsed);
    return same;
}

cJSON *ex_value_diffs(const cJSON *const *values, size_t n)
{
    cJSON *d = cs_agg_value_diffs(values, n);
    for (size_t i = 0; i < n && d; i++) {
        const cJSON *name = cJSON_GetObjectItemCaseSensitive(values[i], "name");
        cJSON *keys = cJSON_IsString(name) ? cJSON_GetObjectItemCaseSensitive(d, name->valuestring)
                                           : NULL;
        if (keys && cJSON_GetObjectItemCaseSensitive(values[i], "bits") &&
            !cJSON_GetObjectItemCaseSensitive(keys, "bits") &&
            !cJSON_AddTrueToObject(keys, "bits")) {
            cJSON_Delete(d);
            return NULL;
        }
    }
    return d;
}
