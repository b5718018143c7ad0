/* cmd_watch_render.c - the panes of `calsweep watch` as styled lines, from calsweepd's WATCH
 * document (docs/watch.md), for both the terminal view and `--once` (cmd_watch.h).
 *
 * Every string from the document is shown with its control characters replaced, so a log line
 * cannot move the cursor or change colours. Times are relative to the document's now_ms
 * (calsweepd's clock), never this machine's. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cmd_watch.h"
#include "cs_time.h"

/* ---- lines ----------------------------------------------------------------------------------- */

void cs_view_lines_fini(cs_view_lines *l)
{
    if (!l) {
        return;
    }
    for (size_t i = 0; i < l->n; i++) {
        free(l->v[i].text);
    }
    free(l->v);
    memset(l, 0, sizeof(*l));
}

size_t cs_view_cut(const char *s, size_t cols)
{
    size_t i = 0, n = 0;
    while (s[i]) {
        if (((unsigned char)s[i] & 0xC0u) != 0x80u) {
            if (n == cols) {
                break;
            }
            n++;
        }
        i++;
    }
    return i;
}

/* A line being built: its text and the spans styled apart. */
typedef struct lb {
    cs_buf b;
    cs_view_span spans[CS_VIEW_MAX_SPANS];
    size_t n_spans;
    cs_rc rc;
} lb;

static void lb_vprintf(lb *x, const char *fmt, va_list ap) CS_PRINTF(2, 0);
static void lb_vprintf(lb *x, const char *fmt, va_list ap)
{
    char small[512], *big = NULL;
    va_list cp;
    int n;
    va_copy(cp, ap);
    n = vsnprintf(small, sizeof(small), fmt, cp);
    va_end(cp);
    if (n < 0) {
        return;
    }
    if ((size_t)n >= sizeof(small)) {
        big = malloc((size_t)n + 1);
        if (!big) {
            x->rc = CS_ENOMEM;
            return;
        }
        vsnprintf(big, (size_t)n + 1, fmt, ap);
    }
    if (x->rc == CS_OK) {
        x->rc = cs_buf_append(&x->b, big ? big : small, (size_t)n);
    }
    free(big);
}

static void lb_printf(lb *x, const char *fmt, ...) CS_PRINTF(2, 3);
static void lb_printf(lb *x, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    lb_vprintf(x, fmt, ap);
    va_end(ap);
}

/* Appends text styled apart (NORMAL: like lb_printf). */
static void lb_styled(lb *x, cs_view_style st, const char *fmt, ...) CS_PRINTF(3, 4);
static void lb_styled(lb *x, cs_view_style st, const char *fmt, ...)
{
    size_t at = x->b.len;
    va_list ap;
    va_start(ap, fmt);
    lb_vprintf(x, fmt, ap);
    va_end(ap);
    if (st != CS_VIEW_NORMAL && x->n_spans < CS_VIEW_MAX_SPANS && x->b.len > at) {
        x->spans[x->n_spans++] = (cs_view_span){at, x->b.len - at, st};
    }
}

/* Moves the line into l, control characters replaced, cut to width columns; resets x. */
static void lb_commit(cs_view_lines *l, lb *x, int width, cs_view_style style, int item)
{
    cs_view_line *line;
    char *text = x->b.data ? x->b.data : "";
    size_t cut;
    if (x->rc != CS_OK && l->rc == CS_OK) {
        l->rc = x->rc;
    }
    for (char *p = text; *p; p++) {
        if ((unsigned char)*p < 0x20 || *p == 0x7f) {
            *p = ' ';
        }
    }
    cut = cs_view_cut(text, width > 0 ? (size_t)width : 0);
    if (l->rc == CS_OK && l->n == l->cap) {
        size_t cap = l->cap ? 2 * l->cap : 64;
        cs_view_line *v = cs_realloc_array(l->v, cap, sizeof(*v));
        if (!v) {
            l->rc = CS_ENOMEM;
        } else {
            l->v = v;
            l->cap = cap;
        }
    }
    if (l->rc == CS_OK) {
        line = &l->v[l->n];
        memset(line, 0, sizeof(*line));
        line->text = cs_strndup(text, cut);
        if (!line->text) {
            l->rc = CS_ENOMEM;
        } else {
            line->style = style;
            line->item = item;
            for (size_t i = 0; i < x->n_spans; i++) {
                cs_view_span s = x->spans[i];
                if (s.at < cut) {
                    s.len = s.at + s.len > cut ? cut - s.at : s.len;
                    line->spans[line->n_spans++] = s;
                }
            }
            l->n++;
        }
    }
    cs_buf_fini(&x->b);
    memset(x, 0, sizeof(*x));
}

void cs_view_add(cs_view_lines *l, int width, cs_view_style style, int item, const char *fmt, ...)
{
    lb x = {0};
    va_list ap;
    va_start(ap, fmt);
    lb_vprintf(&x, fmt, ap);
    va_end(ap);
    lb_commit(l, &x, width, style, item);
}

/* ---- small readers --------------------------------------------------------------------------- */

static const cJSON *item(const cJSON *o, const char *key)
{
    return cJSON_GetObjectItemCaseSensitive(o, key);
}

static bool num(const cJSON *o, const char *key, double *v)
{
    const cJSON *x = item(o, key);
    if (cJSON_IsNumber(x)) {
        *v = x->valuedouble;
        return true;
    }
    return false;
}

static int64_t i64(const cJSON *o, const char *key)
{
    return cs_client_int(o, key);
}

static const char *str(const cJSON *o, const char *key, const char *dflt)
{
    const cJSON *x = item(o, key);
    return cJSON_IsString(x) ? x->valuestring : dflt;
}

/* A duration of ms as "1h30m", whole seconds from 1 s on; "—" when unknown (< 0). */
static const char *dur(int64_t ms, char *buf, size_t n)
{
    if (ms < 0) {
        snprintf(buf, n, "\u2014");
        return buf;
    }
    return cs_time_format_duration(ms >= 1000 ? ms - ms % 1000 : ms, buf, n);
}

void cs_view_axes(const cJSON *axes, cs_buf *b)
{
    const cJSON *v;
    bool first = true;
    cJSON_ArrayForEach(v, axes)
    {
        const cJSON *name = item(v, "name"), *bits = item(v, "bits");
        if (cJSON_IsNull(v)) {
            continue;
        }
        (void)cs_buf_printf(b, "%s%s=", first ? "" : " ", v->string ? v->string : "?");
        first = false;
        if (cJSON_IsString(v)) {
            (void)cs_buf_puts(b, v->valuestring);
        } else if (cJSON_IsObject(v) && cJSON_IsString(name)) {
            (void)cs_buf_puts(b, name->valuestring);
            if (cJSON_IsNumber(bits)) {
                (void)cs_buf_printf(b, "(bits=%g)", bits->valuedouble);
            }
        } else {
            char *t = cJSON_PrintUnformatted(v);
            (void)cs_buf_puts(b, t ? t : "?");
            free(t);
        }
    }
}

bool cs_view_match(const char *filter, const char *a, const char *b, const char *c)
{
    if (!filter || !filter[0]) {
        return true;
    }
    return (a && strstr(a, filter)) || (b && strstr(b, filter)) || (c && strstr(c, filter));
}

/* The axes of o's "axes" member as text; owned, free with free() (NULL when out of memory). */
static char *axes_text(const cJSON *o)
{
    cs_buf b = {0};
    cs_view_axes(item(o, "axes"), &b);
    if (!b.data) {
        return cs_strdup("");
    }
    return cs_buf_take(&b);
}

/* ---- header ---------------------------------------------------------------------------------- */

void cs_view_header(const cJSON *doc, const char *url, int width, cs_view_lines *out)
{
    const cJSON *sw, *w;
    int64_t active = 0, n_sweeps = 0, running = 0, queued = 0, busy = 0, idle = 0, lost = 0;
    int64_t now = i64(doc, "now_ms");
    char clock[CS_TIME_ISO_LEN] = "--";
    cJSON_ArrayForEach(sw, item(doc, "sweeps"))
    {
        const cJSON *c = item(sw, "counts");
        n_sweeps++;
        active += strcmp(str(sw, "state", ""), "active") == 0;
        running += i64(c, "running");
        queued += i64(c, "queued");
    }
    cJSON_ArrayForEach(w, item(doc, "workers"))
    {
        const char *st = str(w, "state", "");
        busy += strcmp(st, "busy") == 0;
        idle += strcmp(st, "idle") == 0;
        lost += strcmp(st, "lost") == 0;
    }
    if (now > 0 && cs_time_format_iso(now, clock, NULL) == CS_OK && strlen(clock) >= 19) {
        memmove(clock, clock + 11, 8); /* "2026-12-07T14:20:03..." -> "14:20:03" */
        clock[8] = '\0';
    }
    cs_view_add(out, width, CS_VIEW_TITLE, -1,
                "%s UTC  %lld sweeps (%lld active)  %lld running  %lld queued  workers: %lld busy "
                "%lld idle %lld lost  %lld problems  %s",
                clock, (long long)n_sweeps, (long long)active, (long long)running,
                (long long)queued, (long long)busy, (long long)idle, (long long)lost,
                (long long)i64(doc, "problems_total"), url ? url : "");
}

/* ---- sweeps ---------------------------------------------------------------------------------- */

static const char *const count_keys[] = {"queued",     "running", "done", "cached",
                                         "retry_wait", "failed",  "lost", "cancelled"};
static const char *const count_abbr[] = {"q", "r", "d", "c", "rt", "f", "l", "x"};
#define N_COUNTS (sizeof(count_keys) / sizeof(count_keys[0]))

static void sweep_line(const cJSON *sw, int idx, int wname, int width, cs_view_lines *out)
{
    const cJSON *c = item(sw, "counts");
    const char *state = str(sw, "state", "?");
    bool finished = strcmp(state, "done") == 0 || strcmp(state, "cancelled") == 0;
    int64_t total = i64(sw, "total"), fin = 0;
    double rate, eta;
    char bar[21], b1[40], b2[40];
    int bw = width >= 120 ? 20 : 8;
    lb x = {0};
    for (size_t i = 0; i < N_COUNTS; i++) {
        if (i != 0 && i != 1 && i != 4) {
            fin += i64(c, count_keys[i]);
        }
    }
    lb_printf(&x, "%-*lld %-*.*s ", width >= 120 ? 3 : 1, (long long)i64(sw, "id"), wname, wname,
              str(sw, "name", "?"));
    lb_styled(&x, strcmp(state, "paused") == 0 ? CS_VIEW_WARN : CS_VIEW_NORMAL, "%-*s",
              width >= 120 || finished ? 9 : 7, state);
    if (!finished) {
        lb_printf(&x, "[%s] %3d%%", cs_client_bar(fin, total, bar, (size_t)bw),
                  total > 0 ? (int)(100 * fin / total) : 0);
    }
    lb_printf(&x, " %lld/%lld", (long long)fin, (long long)total);
    if (!finished) {
        if (num(sw, "rate_per_h", &rate)) {
            lb_printf(&x, " %.1f/h", rate);
        } else {
            lb_printf(&x, " \u2014/h");
        }
        lb_printf(&x, " ETA %-*s", width >= 120 ? 6 : 0,
                  dur(num(sw, "eta_s", &eta) ? (int64_t)(eta * 1000) : -1, b1, sizeof(b1)));
    } else {
        lb_printf(&x, " in %s", dur(i64(sw, "updated_ms") - i64(sw, "created_ms"), b2, sizeof(b2)));
    }
    for (size_t i = 0; i < N_COUNTS; i++) {
        int64_t v = i64(c, count_keys[i]);
        bool bad = v > 0 &&
                   (strcmp(count_keys[i], "failed") == 0 || strcmp(count_keys[i], "lost") == 0);
        lb_styled(&x, bad && !finished ? CS_VIEW_BAD : CS_VIEW_NORMAL, " %s%lld", count_abbr[i],
                  (long long)v);
    }
    lb_commit(out, &x, width, finished ? CS_VIEW_DIM : CS_VIEW_NORMAL, idx);
}

void cs_view_sweeps(const cJSON *doc, const cs_view_opts *o, int width, cs_view_lines *out)
{
    const cJSON *sw;
    int wname = 4, idx = 0, shown = 0;
    cJSON_ArrayForEach(sw, item(doc, "sweeps"))
    {
        int n = (int)strlen(str(sw, "name", ""));
        wname = n > wname ? n : wname;
    }
    wname = wname > 24 ? 24 : wname;
    cs_view_add(out, width, CS_VIEW_TITLE, -1,
                "%s  (finished/total, jobs/h over the last %llds, ETA; q queued r running d done "
                "c cached rt retry f failed l lost x cancelled)",
                CS_VIEW_TITLE_SWEEPS,
                (long long)(i64(cJSON_GetArrayItem(item(doc, "sweeps"), 0), "rate_window_s")));
    cJSON_ArrayForEach(sw, item(doc, "sweeps"))
    {
        if (cs_view_match(o->filter, str(sw, "name", ""), NULL, NULL)) {
            sweep_line(sw, idx, wname, width, out);
            shown++;
        }
        idx++;
    }
    if (shown == 0) {
        cs_view_add(out, width, CS_VIEW_DIM, -1, "  %s",
                    idx == 0 ? "no sweeps yet (submit one: calsweep submit FILE)"
                             : "no sweep matches the filter");
    }
}

/* ---- workers --------------------------------------------------------------------------------- */

/* "evaluate arith_mc 300/1000 (41s)" into buf; "" without progress. The time in the stage is
 * its stage_ms plus since_ms, the age of the heartbeat that reported it (so it runs on between
 * heartbeats). */
static const char *progress_text(const cJSON *p, int64_t since_ms, char *buf, size_t n)
{
    double done = 0, total = 0, ms = 0;
    char d[40];
    int k;
    buf[0] = '\0';
    if (!cJSON_IsObject(p)) {
        return buf;
    }
    k = snprintf(buf, n, "%s", str(p, "stage", "?"));
    if (cJSON_IsString(item(p, "detail")) && k >= 0 && (size_t)k < n) {
        k += snprintf(buf + k, n - (size_t)k, " %s", str(p, "detail", ""));
    }
    if (num(p, "total", &total) && total > 0 && num(p, "done", &done) && k >= 0 && (size_t)k < n) {
        k += snprintf(buf + k, n - (size_t)k, " %.0f/%.0f", done, total);
    }
    if (num(p, "stage_ms", &ms) && ms > 0 && k >= 0 && (size_t)k < n) {
        snprintf(buf + k, n - (size_t)k, " (%s)",
                 dur((int64_t)ms + (since_ms > 0 ? since_ms : 0), d, sizeof(d)));
    }
    return buf;
}

static double progress_fraction(const cJSON *w)
{
    const cJSON *p = item(item(w, "job"), "progress");
    double done = 0, total = 0;
    if (num(p, "total", &total) && total > 0 && num(p, "done", &done)) {
        return done / total;
    }
    return cJSON_IsObject(p) ? 0.0 : -1.0;
}

typedef struct sorted {
    const cJSON *o;
    int idx;
    int mode;
    double key; /* age or progress (workers) */
} sorted;

static int sorted_cmp(const void *a, const void *b)
{
    const sorted *x = a, *y = b;
    int c = 0;
    if (x->mode == 1) { /* larger key first */
        c = x->key < y->key ? 1 : x->key > y->key ? -1 : 0;
    } else if (x->mode == 2) { /* by sweep name */
        c = strcmp(str(x->o, "sweep", ""), str(y->o, "sweep", ""));
    }
    return c != 0 ? c : x->idx - y->idx;
}

/* The elements of arr in the order asked: mode 0 as they come, 1 by key descending, 2 by sweep.
 * Returns owned (free) or NULL when out of memory; *n their count. */
static sorted *sort_items(const cJSON *arr, int mode, bool workers_by_age, size_t *n)
{
    size_t cnt = (size_t)cJSON_GetArraySize(arr), i = 0;
    sorted *v = cs_alloc_array(cnt, sizeof(*v));
    const cJSON *e;
    *n = 0;
    if (!v) {
        return NULL;
    }
    cJSON_ArrayForEach(e, arr)
    {
        v[i] = (sorted){e, (int)i, mode, 0.0};
        if (mode == 1) {
            v[i].key = workers_by_age ? (double)i64(e, "heartbeat_age_ms") : progress_fraction(e);
        }
        i++;
    }
    qsort(v, cnt, sizeof(*v), sorted_cmp);
    *n = cnt;
    return v;
}

static void worker_line(const cJSON *doc, const cJSON *w, int idx, int width, cs_view_lines *out)
{
    static const int narrow[] = {12, 10}, wide[] = {20, 16};
    const int *cw = width >= 120 ? wide : narrow;
    const cJSON *job = item(w, "job");
    const char *state = str(w, "state", "?");
    int64_t age = i64(w, "heartbeat_age_ms"), now = i64(doc, "now_ms");
    cs_view_style age_st = age > i64(doc, "lease_ms")       ? CS_VIEW_BAD
                           : age > i64(doc, "heartbeat_ms") ? CS_VIEW_WARN
                                                            : CS_VIEW_NORMAL;
    char where[64], jb[40], prog[160], t1[40], t2[40];
    char *axes = NULL;
    lb x = {0};
    snprintf(where, sizeof(where), "%s:%s", str(w, "host", "-"), str(w, "slot", "-"));
    lb_printf(&x, "%-*.*s %-*.*s ", cw[0], cw[0], str(w, "name", "?"), cw[1], cw[1], where);
    lb_styled(&x, strcmp(state, "lost") == 0 ? CS_VIEW_BAD : CS_VIEW_NORMAL, "%-4s", state);
    lb_printf(&x, " ");
    lb_styled(&x, strcmp(state, "gone") == 0 ? CS_VIEW_NORMAL : age_st, "%6s",
              dur(age, t2, sizeof(t2)));
    if (cJSON_IsObject(job)) {
        snprintf(jb, sizeof(jb), "#%lld %.6s", (long long)i64(job, "id"), str(job, "key", ""));
        lb_printf(
                &x, " %-11s %6s %-*s", jb,
                dur(i64(job, "started_ms") > 0 ? now - i64(job, "started_ms") : -1, t1, sizeof(t1)),
                width >= 120 ? 34 : 0,
                progress_text(item(job, "progress"), age, prog, sizeof(prog)));
        axes = axes_text(job);
    } else {
        lb_printf(&x, " -");
    }
    if (axes) {
        lb_printf(&x, "  %s", axes);
    }
    free(axes);
    lb_commit(out, &x, width, strcmp(state, "gone") == 0 ? CS_VIEW_DIM : CS_VIEW_NORMAL, idx);
}

void cs_view_workers(const cJSON *doc, const cs_view_opts *o, int width, cs_view_lines *out)
{
    static const char *const sorts[] = {"busy first, by name", "by heartbeat age", "by progress"};
    const cJSON *arr = item(doc, "workers");
    int mode = o->worker_sort == CS_VIEW_WORKERS_BY_NAME ? 0 : 1;
    size_t n = 0, shown = 0;
    sorted *v = sort_items(arr, mode, o->worker_sort == CS_VIEW_WORKERS_BY_AGE, &n);
    cs_view_add(out, width, CS_VIEW_TITLE, -1,
                "%s  (host:slot state heartbeat-age job time-in-job progress axes; %s)",
                CS_VIEW_TITLE_WORKERS, sorts[o->worker_sort % 3]);
    if (!v && cJSON_GetArraySize(arr) > 0) {
        out->rc = CS_ENOMEM;
        return;
    }
    for (size_t i = 0; i < n; i++) {
        const cJSON *job = item(v[i].o, "job");
        char *axes = axes_text(job);
        if (cs_view_match(o->filter, str(v[i].o, "name", ""), str(job, "key", NULL), axes)) {
            worker_line(doc, v[i].o, v[i].idx, width, out);
            shown++;
        }
        free(axes);
    }
    if (shown == 0) {
        cs_view_add(out, width, CS_VIEW_DIM, -1, "  %s",
                    n == 0 ? "no workers yet (start one: calsweep-worker --model-root DIR)"
                           : "no worker matches the filter");
    }
    free(v);
}

/* ---- problems -------------------------------------------------------------------------------- */

static void problem_lines(const cJSON *p, int idx, bool open, int width, cs_view_lines *out)
{
    const char *state = str(p, "state", "?");
    char *axes = axes_text(p);
    const cJSON *line;
    lb x = {0};
    lb_printf(&x, "#%-5lld %-12.12s ", (long long)i64(p, "id"), str(p, "sweep", "?"));
    lb_styled(&x, strcmp(state, "retry_wait") == 0 ? CS_VIEW_WARN : CS_VIEW_BAD, "%-10s", state);
    lb_printf(&x, " %lld/%lld %-8.8s %s", (long long)i64(p, "attempt"),
              (long long)i64(p, "max_attempts"), str(p, "kind", "-"), str(p, "error", ""));
    lb_commit(out, &x, width, CS_VIEW_NORMAL, idx);
    if (open) {
        cs_view_add(out, width, CS_VIEW_DIM, idx, "       key %.12s  %s", str(p, "key", ""),
                    axes ? axes : "");
        cJSON_ArrayForEach(line, item(p, "log"))
        {
            if (cJSON_IsString(line)) {
                cs_view_add(out, width, CS_VIEW_DIM, idx, "       | %s", line->valuestring);
            }
        }
    }
    free(axes);
}

void cs_view_problems(const cJSON *doc, const cs_view_opts *o, int width, cs_view_lines *out)
{
    const cJSON *arr = item(doc, "problems");
    size_t n = 0, shown = 0;
    sorted *v = sort_items(arr, o->problem_sort == CS_VIEW_PROBLEMS_BY_SWEEP ? 2 : 0, false, &n);
    cs_view_add(out, width, CS_VIEW_TITLE, -1,
                "%s  %d of %lld  (failed, lost, retry_wait; attempt kind error; %s)",
                CS_VIEW_TITLE_PROBLEMS, cJSON_GetArraySize(arr),
                (long long)i64(doc, "problems_total"),
                o->problem_sort == CS_VIEW_PROBLEMS_BY_SWEEP ? "by sweep" : "newest first");
    if (!v && cJSON_GetArraySize(arr) > 0) {
        out->rc = CS_ENOMEM;
        return;
    }
    for (size_t i = 0; i < n; i++) {
        char *axes = axes_text(v[i].o);
        if (cs_view_match(o->filter, str(v[i].o, "sweep", ""), str(v[i].o, "key", NULL), axes)) {
            problem_lines(v[i].o, v[i].idx, o->open_problem < 0 || o->open_problem == v[i].idx,
                          width, out);
            shown++;
        }
        free(axes);
    }
    if (shown == 0) {
        cs_view_add(out, width, CS_VIEW_DIM, -1, "  %s",
                    n == 0 ? "no failed, lost or waiting jobs" : "no problem matches the filter");
    }
    free(v);
}

/* ---- best so far ----------------------------------------------------------------------------- */

void cs_view_best(const cJSON *doc, const cs_view_opts *o, int width, cs_view_lines *out)
{
    const cJSON *b, *row;
    int idx = 0, shown = 0;
    int64_t now = i64(doc, "now_ms");
    char ago[32];
    cs_view_add(out, width, CS_VIEW_TITLE, -1,
                "%s  (mean \u00b1 std over seeds, n seeds; "
                "* = not every seed done yet)",
                CS_VIEW_TITLE_BEST);
    cJSON_ArrayForEach(b, item(doc, "best"))
    {
        int rank = 1;
        if (!cs_view_match(o->filter, str(b, "sweep", ""), NULL, NULL)) {
            idx++;
            continue;
        }
        cs_view_add(out, width, CS_VIEW_NORMAL, idx, "%s: %s over %lld jobs (from %s, %s)",
                    str(b, "sweep", "?"), str(b, "metric", "?"), (long long)i64(b, "jobs"),
                    str(b, "source", "?"),
                    cs_client_ago(i64(b, "computed_ms"), now, ago, sizeof(ago)));
        cJSON_ArrayForEach(row, item(b, "rows"))
        {
            double mean = 0, sd = 0;
            char std[32] = "     \u2014";
            lb x = {0};
            if (num(row, "std", &sd)) {
                snprintf(std, sizeof(std), "%.4f", sd);
            }
            lb_printf(&x, "  %2d. ", rank++);
            if (num(row, "mean", &mean)) {
                lb_styled(&x, CS_VIEW_OK, "%.4f", mean);
            } else {
                lb_printf(&x, "     ?");
            }
            lb_printf(&x, " \u00b1 %s  n=%-2lld%s %s", std, (long long)i64(row, "n"),
                      cJSON_IsFalse(item(row, "complete")) ? "*" : " ", str(row, "label", "?"));
            lb_commit(out, &x, width, CS_VIEW_NORMAL, idx);
        }
        if (rank == 1) {
            cs_view_add(out, width, CS_VIEW_DIM, idx, "   no group has a score yet");
        }
        shown++;
        idx++;
    }
    if (shown == 0) {
        cs_view_add(out, width, CS_VIEW_DIM, -1, "  %s",
                    idx == 0 ? "no done jobs yet" : "no sweep matches the filter");
    }
}

/* ---- the job view ---------------------------------------------------------------------------- */

/* Appends text one line per line of it, in style, each with prefix, long lines wrapped at width
 * (so a command or a log line is there whole); a tab indents by two spaces and is one space
 * after the indentation (cJSON_Print's "key":<tab>value). */
static void add_text(cs_view_lines *out, int width, cs_view_style st, const char *prefix,
                     const char *text)
{
    size_t cols = width > (int)strlen(prefix) + 10 ? (size_t)width - strlen(prefix) : 10;
    while (text && *text) {
        size_t n = strcspn(text, "\n");
        bool lead = true;
        const char *p;
        lb x = {0};
        for (size_t i = 0; i < n; i++) {
            lead = lead && text[i] == '\t';
            lb_printf(&x, "%.*s", text[i] == '\t' && lead ? 2 : 1,
                      text[i] == '\t' ? "  " : text + i);
        }
        p = x.b.data ? x.b.data : "";
        do {
            size_t cut = cs_view_cut(p, cols);
            cs_view_add(out, width, st, -1, "%s%.*s", prefix, (int)cut, p);
            p += cut;
        } while (*p);
        if (x.rc != CS_OK && out->rc == CS_OK) {
            out->rc = x.rc;
        }
        cs_buf_fini(&x.b);
        text += n + (text[n] == '\n');
    }
}

static void job_attempts(const cJSON *info, int width, cs_view_lines *out)
{
    const cJSON *a;
    char t1[CS_TIME_ISO_LEN], t2[40], ex[40];
    cs_view_add(out, width, CS_VIEW_TITLE, -1,
                "ATTEMPTS  (n worker host started took outcome exit error)");
    cJSON_ArrayForEach(a, item(info, "attempts"))
    {
        int64_t s = i64(a, "started_ms"), e = i64(a, "ended_ms");
        if (s <= 0 || cs_time_format_iso(s, t1, NULL) != CS_OK) {
            snprintf(t1, sizeof(t1), "-");
        }
        if (cJSON_IsNumber(item(a, "signal"))) {
            snprintf(ex, sizeof(ex), "signal %lld", (long long)i64(a, "signal"));
        } else if (cJSON_IsNumber(item(a, "exit_status"))) {
            snprintf(ex, sizeof(ex), "exit %lld", (long long)i64(a, "exit_status"));
        } else {
            snprintf(ex, sizeof(ex), "-");
        }
        cs_view_add(out, width, CS_VIEW_NORMAL, -1, "  %-2lld %-16s %-10s %-24s %-8s %-10s %-9s %s",
                    (long long)i64(a, "n"), str(a, "worker", "-"), str(a, "host", "-"), t1,
                    e > 0 && s > 0 ? dur(e - s, t2, sizeof(t2)) : "-", str(a, "outcome", "running"),
                    ex, str(a, "error", ""));
    }
}

void cs_view_job(const cJSON *info, const cJSON *logs, int width, cs_view_lines *out)
{
    char prog[160], *axes = NULL;
    if (!info) {
        cs_view_add(out, width, CS_VIEW_DIM, -1, "loading the job ...");
        return;
    }
    axes = axes_text(info);
    cs_view_add(out, width, CS_VIEW_TITLE, -1, "JOB %lld  sweep %s (%lld)  %s  attempt %lld/%lld",
                (long long)i64(info, "id"), str(info, "sweep", "?"),
                (long long)i64(info, "sweep_id"), str(info, "state", "?"),
                (long long)i64(info, "attempt"), (long long)i64(info, "max_attempts"));
    cs_view_add(out, width, CS_VIEW_NORMAL, -1, "key   %s", str(info, "key", "?"));
    cs_view_add(out, width, CS_VIEW_NORMAL, -1, "axes  %s", axes ? axes : "");
    if (cJSON_IsObject(item(info, "progress"))) {
        cs_view_add(out, width, CS_VIEW_NORMAL, -1, "now   %s",
                    progress_text(item(info, "progress"), 0, prog, sizeof(prog)));
    }
    add_text(out, width, CS_VIEW_BAD, "error ", str(info, "last_error", NULL));
    job_attempts(info, width, out);
    cs_view_add(out, width, CS_VIEW_TITLE, -1,
                "REPRODUCE  (on one machine: the job's config written out, then run)");
    add_text(out, width, CS_VIEW_NORMAL, "  ", str(info, "reproduce", "-"));
    if (!logs) {
        cs_view_add(out, width, CS_VIEW_TITLE, -1, "LOG  (loading)");
    } else {
        cs_view_add(out, width, CS_VIEW_TITLE, -1, "LOG  attempt %lld (%s%s)",
                    (long long)i64(logs, "attempt"),
                    strlen(str(logs, "log", "")) >= CS_VIEW_LOG_BYTES ? "its last MiB, " : "",
                    strcmp(str(logs, "source", ""), "file") == 0
                            ? "log file"
                            : "the last lines the worker sent");
        add_text(out, width, CS_VIEW_NORMAL, "", str(logs, "log", ""));
    }
    free(axes);
}
