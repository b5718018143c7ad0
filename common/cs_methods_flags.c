/* cs_methods_flags.c - command-line flags derived from the table of methods (cs_methods.h):
 * calsweep-run quantize and select take every parameter of their family as --KEY VALUE. */
#include <stdio.h>
#include <string.h>

#include "cs_methods.h"

/* "gptq true, smoothquant true": the methods of f that take key, each with its default. */
static void defaults_of(cs_mfamily f, const char *key, char *buf, size_t cap)
{
    size_t n, used = 0;
    const cs_method *t = cs_methods(f, &n);
    buf[0] = '\0';
    for (size_t i = 0; i < n; i++) {
        for (size_t k = 0; k < t[i].n_params; k++) {
            char def[48];
            if (strcmp(t[i].params[k].key, key) == 0 && used + 1 < cap) {
                cs_mparam_default_text(&t[i].params[k], def, sizeof def);
                int w = snprintf(buf + used, cap - used, "%s%s %s", used ? ", " : "", t[i].name,
                                 def);
                used += w > 0 ? (size_t)w : 0;
            }
        }
    }
}

/* Whether every row of f with p's key has p's type, bounds and choices. */
static bool same_everywhere(cs_mfamily f, const cs_mparam *p)
{
    size_t n;
    const cs_method *t = cs_methods(f, &n);
    for (size_t i = 0; i < n; i++) {
        for (size_t k = 0; k < t[i].n_params; k++) {
            const cs_mparam *q = &t[i].params[k];
            if (strcmp(q->key, p->key) == 0 &&
                (q->type != p->type || q->choices != p->choices || q->min != p->min ||
                 q->max != p->max || q->excl_min != p->excl_min)) {
                return false;
            }
        }
    }
    return true;
}

/* key with '_' written '-', after prefix. */
static void flag_name(char *buf, size_t cap, const char *prefix, const char *key)
{
    snprintf(buf, cap, "%s%s", prefix, key);
    for (char *c = buf; *c; c++) {
        *c = *c == '_' ? '-' : *c;
    }
}

static void add_flag(cs_mflags *fl, const cs_mparam *p)
{
    char defs[200], desc[144];
    cs_mflag *f = &fl->keys[fl->n_keys];
    for (size_t i = 0; i < fl->n_keys; i++) {
        if (strcmp(fl->keys[i].p->key, p->key) == 0) {
            return;
        }
    }
    if (fl->n_keys == CS_MFLAGS_MAX || p->type == CS_MT_TASKS) {
        return;
    }
    f->p = p;
    f->value = NULL;
    flag_name(f->lng, sizeof f->lng, "", p->key);
    flag_name(f->no, sizeof f->no, "no-", p->key);
    defaults_of(fl->family, p->key, defs, sizeof defs);
    if (same_everywhere(fl->family, p)) {
        cs_mparam_describe(p, desc, sizeof desc);
    } else {
        snprintf(desc, sizeof desc, "each method's own (calsweep methods NAME)");
    }
    snprintf(f->help, sizeof f->help, "%s; default %s", desc, defs);
    bool b = p->type == CS_MT_BOOL;
    fl->opts[fl->n_opts++] = (cs_opt){
            f->lng,         0,      b ? CS_OPT_NONE : CS_OPT_VALUE, fl->id_base + (int)fl->n_keys,
            b ? NULL : "V", f->help};
    if (b) {
        fl->opts[fl->n_opts++] =
                (cs_opt){f->no,       0,
                         CS_OPT_NONE, fl->id_base + CS_MFLAGS_MAX + (int)fl->n_keys,
                         NULL,        "sets it to false"};
    }
    fl->n_keys++;
}

void cs_mflags_init(cs_mflags *fl, cs_mfamily f, const cs_opt *base, size_t n_base, int id_base)
{
    size_t n;
    const cs_method *t = cs_methods(f, &n);
    memset(fl, 0, sizeof(*fl));
    fl->family = f;
    fl->id_base = id_base;
    for (size_t i = 0; i < n_base && i < CS_MFLAGS_BASE_MAX; i++) {
        fl->opts[fl->n_opts++] = base[i];
    }
    for (size_t i = 0; i < n; i++) {
        for (size_t k = 0; k < t[i].n_params; k++) {
            add_flag(fl, &t[i].params[k]);
        }
    }
}

bool cs_mflags_take(cs_mflags *fl, int id, const char *arg)
{
    int k = id - fl->id_base;
    if (k >= CS_MFLAGS_MAX && k < CS_MFLAGS_MAX + (int)fl->n_keys) {
        fl->keys[k - CS_MFLAGS_MAX].value = "false";
        return true;
    }
    if (k >= 0 && k < (int)fl->n_keys) {
        fl->keys[k].value = arg ? arg : "true";
        return true;
    }
    return false;
}

/* A flag's value as JSON: a boolean, a number for a numeric parameter (text that is not a number
 * stays a string, so the table names the parameter and what it expected), else a string. */
static cJSON *flag_value(const cs_mflag *f)
{
    double d;
    if (f->p->type == CS_MT_BOOL) {
        return cJSON_CreateBool(strcmp(f->value, "true") == 0);
    }
    if (f->p->type != CS_MT_ENUM && cs_parse_double(f->value, &d, f->p->key, NULL) == CS_OK) {
        return cJSON_CreateNumber(d);
    }
    return cJSON_CreateString(f->value);
}

cs_rc cs_mflags_apply(const cs_mflags *fl, const char *value, const char *what, cJSON **out,
                      cs_err *err)
{
    cs_rc rc = CS_OK;
    if (value[0] == '{') {
        rc = cs_json_parse(value, strlen(value), what, out, err);
    } else {
        *out = cJSON_CreateObject();
        if (!*out || !cJSON_AddStringToObject(*out, "name", value)) {
            rc = cs_err_set(err, CS_ENOMEM, 0, "out of memory");
        }
    }
    for (size_t i = 0; rc == CS_OK && cJSON_IsObject(*out) && i < fl->n_keys; i++) {
        if (fl->keys[i].value) {
            cJSON_DeleteItemFromObjectCaseSensitive(*out, fl->keys[i].p->key);
            if (!cs_json_add(*out, fl->keys[i].p->key, flag_value(&fl->keys[i]))) {
                rc = cs_err_set(err, CS_ENOMEM, 0, "out of memory");
            }
        }
    }
    return rc;
}
