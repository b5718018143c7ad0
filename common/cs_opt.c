/* cs_opt.c - re-entrant option parser and help printer. */
#include "cs_opt.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

void cs_opt_init(cs_opt_parser *p, int argc, char *const *argv, int first)
{
    p->argc = argc;
    p->argv = argv;
    p->i = first;
    p->only_pos = false;
    p->short_rest = NULL;
}

static const cs_opt *find_long(const cs_opt *t, size_t n, const char *name, size_t len)
{
    for (size_t k = 0; k < n; k++) {
        if (t[k].lng && strlen(t[k].lng) == len && strncmp(t[k].lng, name, len) == 0) {
            return &t[k];
        }
    }
    return NULL;
}

static const cs_opt *find_short(const cs_opt *t, size_t n, char c)
{
    for (size_t k = 0; k < n; k++) {
        if (t[k].shrt && t[k].shrt == c) {
            return &t[k];
        }
    }
    return NULL;
}

static cs_rc take_value(cs_opt_parser *p, const char *shown, const char **arg, cs_err *err)
{
    if (p->i >= p->argc) {
        return cs_err_set(err, CS_EINVAL, 0, "option %s needs a value", shown);
    }
    *arg = p->argv[p->i++];
    return CS_OK;
}

cs_rc cs_opt_next(cs_opt_parser *p, const cs_opt *table, size_t n, int *id, const char **arg,
                  cs_err *err)
{
    const char *a;
    const cs_opt *o;
    *arg = NULL;
    if (p->short_rest && *p->short_rest) {
        char c = *p->short_rest++;
        char shown[3] = {'-', c, '\0'};
        o = find_short(table, n, c);
        if (!o) {
            return cs_err_set(err, CS_EINVAL, 0, "unknown option -%c", c);
        }
        *id = o->id;
        if (o->arg == CS_OPT_VALUE) {
            if (*p->short_rest) {
                *arg = p->short_rest;
                p->short_rest = NULL;
                return CS_OK;
            }
            p->short_rest = NULL;
            return take_value(p, shown, arg, err);
        }
        return CS_OK;
    }
    p->short_rest = NULL;
    if (p->i >= p->argc) {
        return CS_ENOENT;
    }
    a = p->argv[p->i++];
    if (p->only_pos || a[0] != '-' || a[1] == '\0') {
        *id = CS_OPT_POSITIONAL;
        *arg = a;
        return CS_OK;
    }
    if (a[1] == '-' && a[2] == '\0') {
        p->only_pos = true;
        return cs_opt_next(p, table, n, id, arg, err);
    }
    if (a[1] == '-') {
        const char *name = a + 2;
        const char *eq = strchr(name, '=');
        size_t len = eq ? (size_t)(eq - name) : strlen(name);
        o = find_long(table, n, name, len);
        if (!o) {
            return cs_err_set(err, CS_EINVAL, 0, "unknown option --%.*s", (int)len, name);
        }
        *id = o->id;
        if (o->arg == CS_OPT_NONE) {
            if (eq) {
                return cs_err_set(err, CS_EINVAL, 0, "option --%s takes no value", o->lng);
            }
            return CS_OK;
        }
        if (eq) {
            *arg = eq + 1;
            return CS_OK;
        }
        return take_value(p, a, arg, err);
    }
    p->short_rest = a + 1;
    return cs_opt_next(p, table, n, id, arg, err);
}

void cs_opt_print_help(FILE *out, const cs_opt *table, size_t n)
{
    for (size_t k = 0; k < n; k++) {
        char left[64];
        const cs_opt *o = &table[k];
        if (o->shrt) {
            snprintf(left, sizeof(left), "-%c, --%s%s%s", o->shrt, o->lng, o->metavar ? " " : "",
                     o->metavar ? o->metavar : "");
        } else {
            snprintf(left, sizeof(left), "    --%s%s%s", o->lng, o->metavar ? " " : "",
                     o->metavar ? o->metavar : "");
        }
        fprintf(out, "  %-28s %s\n", left, o->help ? o->help : "");
    }
}

cs_rc cs_parse_i64(const char *s, int64_t min, int64_t max, int64_t *out, const char *what,
                   cs_err *err)
{
    char *end = NULL;
    long long v;
    if (!s || !*s) {
        return cs_err_set(err, CS_EINVAL, 0, "%s: expected an integer, got an empty string", what);
    }
    errno = 0;
    v = strtoll(s, &end, 10);
    if (*end != '\0') {
        return cs_err_set(err, CS_EINVAL, 0, "%s: expected an integer, got '%s'", what, s);
    }
    if (errno == ERANGE || v < min || v > max) {
        return cs_err_set(err, CS_ERANGE, 0, "%s: expected %lld..%lld, got %s", what,
                          (long long)min, (long long)max, s);
    }
    *out = (int64_t)v;
    return CS_OK;
}

cs_rc cs_parse_double(const char *s, double *out, const char *what, cs_err *err)
{
    char *end = NULL;
    double v;
    if (!s || !*s) {
        return cs_err_set(err, CS_EINVAL, 0, "%s: expected a number, got an empty string", what);
    }
    errno = 0;
    v = strtod(s, &end);
    if (*end != '\0' || !isfinite(v)) {
        return cs_err_set(err, CS_EINVAL, 0, "%s: expected a finite number, got '%s'", what, s);
    }
    if (errno == ERANGE) {
        return cs_err_set(err, CS_ERANGE, 0, "%s: out of range: %s", what, s);
    }
    *out = v;
    return CS_OK;
}

cs_rc cs_opt_append(const char **list, size_t *n, size_t max, const char *arg, const char *option,
                    cs_err *err)
{
    if (*n >= max) {
        return cs_err_set(err, CS_ERANGE, 0, "at most %zu %s", max, option);
    }
    list[(*n)++] = arg;
    return CS_OK;
}
