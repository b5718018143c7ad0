/* cmd_watch.c - `calsweep watch [SWEEP]`: the live view of calsweepd's sweeps, workers, failing
 * jobs and best groups so far. On a terminal it is the full-screen view of cmd_watch_tui.c; with
 * --once, or when stdout is not a terminal, it prints the same panes once as text (colours only on
 * a terminal, never with NO_COLOR) and exits. Both draw calsweepd's WATCH document
 * (docs/watch.md) with the render functions of cmd_watch_render.c. */
#include "cmd_watch.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <fcntl.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include "cs_alloc.h"
#include "cs_cli.h"

enum { OPT_ONCE, OPT_SWEEP, OPT_INTERVAL, OPT_FROM };

typedef struct watch_args {
    const char *sweep;
    const char *from; /* a saved WATCH document instead of calsweepd (tests of the layout) */
    int64_t interval_s;
    bool once;
} watch_args;

static int watch_opt(void *ctx, int id, const char *arg)
{
    watch_args *a = ctx;
    cs_err err = {0};
    switch (id) {
    case OPT_ONCE:
        a->once = true;
        return CS_EXIT_OK;
    case OPT_INTERVAL:
        if (cs_parse_i64(arg, 1, 3600, &a->interval_s, "--interval", &err) == CS_OK) {
            return CS_EXIT_OK;
        }
        break;
    case OPT_FROM:
        a->from = arg;
        return CS_EXIT_OK;
    default: /* --sweep NAME or the positional */
        if (a->sweep && strcmp(a->sweep, arg) != 0) {
            cs_err_set(&err, CS_EINVAL, 0, "expected one sweep, got '%s' and '%s'", a->sweep, arg);
            break;
        }
        a->sweep = arg;
        return CS_EXIT_OK;
    }
    fprintf(stderr, "calsweep watch: %s (see calsweep watch --help)\n", err.msg);
    return CS_EXIT_USAGE;
}

/* ---- pieces of the terminal view ------------------------------------------------------------ */

void cs_view_help(int width, cs_view_lines *out)
{
    static const char *const help[] = {
            "keys of the terminal view:",
            "  Tab, Shift-Tab   move between the panes (sweeps, workers, problems, best)",
            "  j k, arrows      select in the pane",
            "  p, r             pause, resume the selected sweep",
            "  c                cancel the selected sweep (asks y/n)",
            "  R                retry the selected sweep's failed and lost jobs",
            "  /                filter: sweep names, job keys, axes, worker names",
            "  s                sort the workers (name, heartbeat age, progress) or the problems",
            "                   (newest first, by sweep)",
            "  Enter            the job view of the selected worker's job or problem: config,",
            "                   attempts, the log (F follows it), how to reproduce it",
            "  Esc, q           back; q in the main view quits",
            "  ?                this help",
            "Heartbeat ages turn yellow past the workers' heartbeat interval and red past the",
            "lease. Counts: q queued r running d done c cached rt retry f failed l lost x",
            "cancelled.",
    };
    for (size_t i = 0; i < sizeof(help) / sizeof(help[0]); i++) {
        cs_view_add(out, width, i == 0 ? CS_VIEW_TITLE : CS_VIEW_NORMAL, -1, "%s", help[i]);
    }
}

void cs_view_errpipe_open(cs_view_errpipe *e)
{
    int fds[2];
    e->fd = e->saved = -1;
    fflush(stderr);
    if (pipe(fds) != 0) {
        return;
    }
    e->saved = dup(STDERR_FILENO);
    if (e->saved < 0 || dup2(fds[1], STDERR_FILENO) < 0) {
        close(fds[0]);
        close(fds[1]);
        if (e->saved >= 0) {
            close(e->saved);
        }
        e->saved = -1;
        return;
    }
    close(fds[1]);
    (void)fcntl(fds[0], F_SETFL, O_NONBLOCK);
    (void)fcntl(STDERR_FILENO, F_SETFL, fcntl(STDERR_FILENO, F_GETFL) | O_NONBLOCK);
    e->fd = fds[0];
}

void cs_view_errpipe_close(cs_view_errpipe *e)
{
    fflush(stderr);
    if (e->saved >= 0) {
        dup2(e->saved, STDERR_FILENO);
        close(e->saved);
    }
    if (e->fd >= 0) {
        close(e->fd);
    }
    e->fd = e->saved = -1;
}

void cs_view_errpipe_drain(cs_view_errpipe *e, char *last, size_t n)
{
    char buf[2048];
    ssize_t got;
    last[0] = '\0';
    fflush(stderr);
    while (e->fd >= 0 && (got = read(e->fd, buf, sizeof(buf) - 1)) > 0) {
        char *p = buf, *nl;
        buf[got] = '\0';
        while ((nl = strchr(p, '\n')) != NULL) {
            if (nl > p) {
                snprintf(last, n, "%.*s", (int)(nl - p), p);
            }
            p = nl + 1;
        }
        if (*p) {
            snprintf(last, n, "%s", p);
        }
    }
}

/* ---- the command ----------------------------------------------------------------------------- */

/* ANSI SGR parameters of each style, for --once on a terminal. */
static const char *const sgr[CS_VIEW_N_STYLES] = {"0", "1", "2", "32", "33", "31"};

static void print_line(const cs_view_line *line, bool color)
{
    size_t at = 0;
    if (!color) {
        printf("%s\n", line->text);
        return;
    }
    printf("\033[%sm", sgr[line->style]);
    for (size_t i = 0; i < line->n_spans; i++) {
        const cs_view_span *s = &line->spans[i];
        printf("%.*s\033[%sm%.*s\033[0;%sm", (int)(s->at - at), line->text + at, sgr[s->style],
               (int)s->len, line->text + s->at, sgr[line->style]);
        at = s->at + s->len;
    }
    printf("%s\033[0m\n", line->text + at);
}

/* The panes of doc, printed once; CS_EXIT_FAIL when out of memory. */
static int print_once(const cJSON *doc, const char *url, int width, bool color)
{
    cs_view_opts o = {.open_problem = -1};
    cs_view_lines l = {0};
    int code = CS_EXIT_OK;
    cs_view_header(doc, url, width, &l);
    cs_view_add(&l, width, CS_VIEW_NORMAL, -1, "%s", "");
    cs_view_sweeps(doc, &o, width, &l);
    cs_view_add(&l, width, CS_VIEW_NORMAL, -1, "%s", "");
    cs_view_workers(doc, &o, width, &l);
    cs_view_add(&l, width, CS_VIEW_NORMAL, -1, "%s", "");
    cs_view_problems(doc, &o, width, &l);
    cs_view_add(&l, width, CS_VIEW_NORMAL, -1, "%s", "");
    cs_view_best(doc, &o, width, &l);
    if (l.rc != CS_OK) {
        fprintf(stderr, "calsweep watch: out of memory\n");
        code = CS_EXIT_FAIL;
    } else {
        for (size_t i = 0; i < l.n; i++) {
            print_line(&l.v[i], color);
        }
    }
    cs_view_lines_fini(&l);
    return code;
}

/* Reads a saved WATCH document; CS_EXIT_FAIL with a message naming the file. */
static int load_from(const char *path, cJSON **doc)
{
    FILE *f = fopen(path, "rb");
    cs_buf b = {0};
    char chunk[4096];
    size_t n;
    if (!f) {
        fprintf(stderr, "calsweep watch: --from %s: cannot open it\n", path);
        return CS_EXIT_FAIL;
    }
    while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0) {
        if (cs_buf_append(&b, chunk, n) != CS_OK) {
            break;
        }
    }
    fclose(f);
    *doc = b.data ? cJSON_Parse(b.data) : NULL;
    cs_buf_fini(&b);
    if (!cJSON_IsObject(*doc)) {
        fprintf(stderr, "calsweep watch: --from %s: not a JSON object\n", path);
        cJSON_Delete(*doc);
        *doc = NULL;
        return CS_EXIT_FAIL;
    }
    return CS_EXIT_OK;
}

/* Whether calsweepd knows the sweep (by name or id): CS_EXIT_FAIL after
 * "calsweep watch: no sweep 'x' (known: a, b)" when it does not; the call's code when calsweepd
 * does not answer. */
static int check_sweep(const cs_client *c, const char *ref)
{
    const cJSON *sw;
    cJSON *d = NULL;
    cs_msg req;
    cs_buf known = {0};
    int code;
    cs_msg_init(&req, CS_MSG_STATUS);
    code = cs_client_call(c, "watch", &req, NULL, &d);
    if (code != CS_EXIT_OK) {
        return code;
    }
    code = CS_EXIT_FAIL;
    cJSON_ArrayForEach(sw, cJSON_GetObjectItemCaseSensitive(d, "sweeps"))
    {
        char id[32];
        snprintf(id, sizeof(id), "%lld", (long long)cs_client_int(sw, "id"));
        if (strcmp(cs_client_str(sw, "name"), ref) == 0 || strcmp(id, ref) == 0) {
            code = CS_EXIT_OK;
        }
        (void)cs_buf_printf(&known, "%s%s", known.len ? ", " : "", cs_client_str(sw, "name"));
    }
    if (code != CS_EXIT_OK) {
        fprintf(stderr, "calsweep watch: no sweep '%s' (known: %s)\n", ref,
                known.len ? known.data : "none yet");
    }
    cs_buf_fini(&known);
    cJSON_Delete(d);
    return code;
}

/* The control URL as the connection resolves it, for the notices; owned (free). */
static char *resolve_url(const cs_client *c)
{
    char *url = NULL;
    if (c->control && c->control[0]) {
        return cs_strdup(c->control);
    }
    if (cs_net_default_url(CS_NET_CONTROL, &url, NULL) != CS_OK) {
        return cs_strdup("the default control socket");
    }
    return url;
}

/* The width of the text output: the terminal's, else $COLUMNS, else 160. */
static int text_width(void)
{
    struct winsize ws;
    const char *cols = getenv("COLUMNS");
    int64_t v;
    if (isatty(STDOUT_FILENO) && ioctl(STDOUT_FILENO, TIOCGWINSZ, &ws) == 0 && ws.ws_col >= 20) {
        return ws.ws_col;
    }
    if (cols && cs_parse_i64(cols, 20, 1000, &v, "COLUMNS", NULL) == CS_OK) {
        return (int)v;
    }
    return 160;
}

int cs_cmd_watch(const cs_client *base, int argc, char **argv)
{
    static const char usage[] =
            "usage: calsweep watch [OPTIONS] [SWEEP]\n\n"
            "The live view of calsweepd: every sweep (or one) with its progress, rate and ETA, "
            "the\n"
            "workers and what they run, failing and lost jobs with their last log lines, and the\n"
            "best groups so far. On a terminal it redraws until q (? lists the keys); with "
            "--once,\n"
            "or when stdout is not a terminal, it prints the same panes once as text. Colours "
            "only\n"
            "on a terminal, never when NO_COLOR is set.\n";
    static const cs_opt own[] = {
            {"once", 0, CS_OPT_NONE, OPT_ONCE, NULL, "print the panes once as text and exit"},
            {"sweep", 0, CS_OPT_VALUE, OPT_SWEEP, "SWEEP", "only this sweep (name or id)"},
            {"interval", 0, CS_OPT_VALUE, OPT_INTERVAL, "S", "ask calsweepd every S seconds (1)"},
            {"from", 0, CS_OPT_VALUE, OPT_FROM, "FILE",
             "show a saved WATCH document instead of asking calsweepd (for tests)"},
    };
    watch_args a = {.interval_s = 1};
    const char *nc = getenv("NO_COLOR");
    bool color = !(nc && nc[0]), done;
    cs_client c;
    cs_msg req;
    cJSON *d = NULL;
    char *url = NULL;
    int code = cs_cli_parse(base, &c, "watch", usage, argc, argv, own, sizeof(own) / sizeof(own[0]),
                            watch_opt, &a, &done);
    if (done) {
        cs_view_lines keys = {0};
        cs_view_help(100, &keys);
        for (size_t i = 0; i < keys.n; i++) {
            printf("%s%s\n", i == 0 ? "\n" : "", keys.v[i].text);
        }
        cs_view_lines_fini(&keys);
    }
    if (code != CS_EXIT_OK || done) {
        return code;
    }
    url = resolve_url(&c);
    if (a.from) {
        code = load_from(a.from, &d);
        if (code == CS_EXIT_OK && !a.once && isatty(STDOUT_FILENO)) {
            code = cs_view_run_tui(&c, url, NULL, a.interval_s * 1000, color, d);
            free(url);
            return code;
        }
    } else if (a.once || !isatty(STDOUT_FILENO)) {
        code = a.sweep ? check_sweep(&c, a.sweep) : CS_EXIT_OK;
        if (code == CS_EXIT_OK) {
            cs_msg_init(&req, CS_MSG_WATCH);
            req.watch.sweep = cs_client_borrow(a.sweep);
            code = cs_client_call(&c, "watch", &req, NULL, &d);
        }
    } else {
        code = a.sweep ? check_sweep(&c, a.sweep) : CS_EXIT_OK;
        /* calsweepd not there yet: the view says so and keeps asking */
        if (code == CS_EXIT_OK || code == CS_EXIT_UNREACHABLE) {
            code = cs_view_run_tui(&c, url, a.sweep, a.interval_s * 1000, color, NULL);
        }
        free(url);
        return code;
    }
    if (code == CS_EXIT_OK) {
        code = print_once(d, url, text_width(), color && isatty(STDOUT_FILENO));
    }
    cJSON_Delete(d);
    free(url);
    return code;
}
