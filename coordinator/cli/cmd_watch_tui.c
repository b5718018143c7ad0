/* cmd_watch_tui.c - the full-screen view of `calsweep watch` (ncurses).
 *
 * One thread and one loop: ask calsweepd for the WATCH document at most once per interval (one
 * request for every pane; JOB_INFO and LOGS instead while the job view is open), redraw at most
 * twice a second, and wait for keys with getch's timeout in between, so a key never waits for
 * more than one request and the terminal never holds up calsweepd (the requests are answered on
 * calsweepd's thread pool, and the view only reads). Requests use a short timeout (QUICK_MS) so
 * keys stay live while calsweepd is away; then the view says "calsweepd not reachable at URL,
 * retrying" and keeps asking until q.
 *
 * While the view runs, stderr goes to a pipe that the loop drains after each request: what
 * cs_client_call reports (an ERROR reply, a refused token) is shown on the status line instead of
 * scribbled over the screen. */
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <curses.h>
#include <locale.h>

#include "cmd_watch.h"
#include "cs_time.h"

#define QUICK_MS   2000 /* longest a request may hold up the keys */
#define REDRAW_MS  500  /* at most two redraws a second */
#define STATUS_MS  6000 /* how long a message stays on the status line */
#define MIN_COLS   80
#define MIN_LINES  24
#define FILTER_MAX 96
#define KEY_ESCAPE 27
#define KEY_TAB    '\t'
#define KEY_CTRL_L 12

enum { PANE_SWEEPS, PANE_WORKERS, PANE_PROBLEMS, PANE_BEST, N_PANES };
typedef enum mode { MODE_MAIN, MODE_FILTER, MODE_CONFIRM, MODE_HELP, MODE_JOB } mode;

typedef struct tui {
    cs_client c;          /* the connection, with the short timeout */
    const char *url;      /* borrowed: for the notice */
    const char *sweep;    /* borrowed: WATCH.sweep, NULL = all */
    int64_t interval_ms;  /* between requests */
    bool color;           /* colours on (a terminal without NO_COLOR that has them) */
    cJSON *doc;           /* the last WATCH document, owned; NULL before the first */
    bool fixed;           /* doc is a saved document: no WATCH requests */
    bool unreachable;     /* the last request found no calsweepd */
    char status[256];     /* the status line's message */
    int64_t status_until; /* monotonic ms when it goes */
    int64_t next_poll;    /* monotonic ms of the next request */
    int64_t last_watch;   /* monotonic ms of the last WATCH (at most one a second) */
    int64_t last_draw;    /* monotonic ms of the last redraw */
    bool dirty;           /* something changed since the last redraw */
    mode mode;
    int focus;         /* PANE_* */
    int sel[N_PANES];  /* the selected element of each pane (its index in the document), -1 */
    int top[N_PANES];  /* first body line shown of each pane */
    cs_view_opts opts; /* filter, sort orders, the open problem */
    char filter[FILTER_MAX + 1];
    int64_t confirm_id;  /* the sweep a cancel waits on y/n for */
    int64_t job_id;      /* the job view's job */
    cJSON *info, *logs;  /* its JOB_INFO and LOGS replies, owned */
    int job_top;         /* its first line shown */
    bool follow;         /* keep the end of the log on screen */
    cs_view_errpipe err; /* stderr while the screen is ours */
} tui;

static void set_status(tui *t, const char *fmt, ...) CS_PRINTF(2, 3);
static void set_status(tui *t, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(t->status, sizeof(t->status), fmt, ap);
    va_end(ap);
    t->status_until = cs_time_mono_ms() + STATUS_MS;
    t->dirty = true;
}

/* ---- requests -------------------------------------------------------------------------------- */

/* One request; *data owned on CS_EXIT_OK. Notes an unreachable calsweepd. */
static int call(tui *t, cs_msg *req, cJSON **data)
{
    int code = cs_client_call(&t->c, "watch", req, NULL, data);
    t->unreachable = code == CS_EXIT_UNREACHABLE;
    if (t->unreachable) {
        /* not the client's own text: the view retries, nobody needs to start anything here */
        char drop[8];
        cs_view_errpipe_drain(&t->err, drop, sizeof(drop));
    } else {
        char last[256];
        cs_view_errpipe_drain(&t->err, last, sizeof(last));
        if (last[0]) {
            set_status(t, "%s", last);
        }
    }
    t->dirty = true;
    return code;
}

/* Asks for the next request as soon as one second since the last WATCH allows. */
static void poll_soon(tui *t)
{
    t->next_poll = t->last_watch + 1000;
}

static void poll_watch(tui *t)
{
    cs_msg req;
    cJSON *d = NULL;
    t->last_watch = cs_time_mono_ms();
    cs_msg_init(&req, CS_MSG_WATCH);
    req.watch.sweep = cs_client_borrow(t->sweep);
    if (call(t, &req, &d) == CS_EXIT_OK && cJSON_IsObject(d)) {
        cJSON_Delete(t->doc);
        t->doc = d;
        return;
    }
    cJSON_Delete(d);
}

static void poll_job(tui *t)
{
    cs_msg req;
    cJSON *d = NULL;
    cs_msg_init(&req, CS_MSG_JOB_INFO);
    req.job_info.job_id = t->job_id;
    if (call(t, &req, &d) == CS_EXIT_OK) {
        cJSON_Delete(t->info);
        t->info = d;
        d = NULL;
    }
    cJSON_Delete(d);
    d = NULL;
    if (t->unreachable) {
        return;
    }
    cs_msg_init(&req, CS_MSG_LOGS);
    req.logs.job_id = t->job_id;
    req.logs.tail = CS_VIEW_LOG_BYTES;
    if (call(t, &req, &d) == CS_EXIT_OK) {
        cJSON_Delete(t->logs);
        t->logs = d;
        d = NULL;
    }
    cJSON_Delete(d);
}

/* A control request on the selected sweep (PAUSE, RESUME, CANCEL, RETRY); says how it went. */
static void act(tui *t, cs_msg_type type, int64_t sweep_id, const char *what)
{
    char ref[32];
    cs_msg req;
    cJSON *d = NULL;
    snprintf(ref, sizeof(ref), "%lld", (long long)sweep_id);
    cs_msg_init(&req, type);
    switch (type) {
    case CS_MSG_CANCEL:
        req.cancel.sweep = ref;
        break;
    case CS_MSG_RETRY:
        req.retry.sweep = ref;
        req.retry.failed = true;
        req.retry.lost = true;
        break;
    default:
        req.pause.sweep = ref;
        break;
    }
    if (call(t, &req, &d) == CS_EXIT_OK) {
        if (type == CS_MSG_RETRY) {
            set_status(t, "sweep %s: requeued %lld job(s)", ref,
                       (long long)cs_client_int(d, "requeued"));
        } else if (type == CS_MSG_CANCEL) {
            set_status(t, "sweep %s: cancelled %lld job(s)", ref,
                       (long long)cs_client_int(d, "cancelled"));
        } else {
            set_status(t, "sweep %s: %s", ref, cs_client_str(d, "state"));
        }
    } else if (t->unreachable) {
        set_status(t, "%s: calsweepd not reachable at %s", what, t->url);
    }
    cJSON_Delete(d);
    poll_soon(t);
}

/* ---- panes ----------------------------------------------------------------------------------- */

static void render_pane(const tui *t, int p, int width, cs_view_lines *l)
{
    cs_view_opts o = t->opts;
    o.open_problem = t->sel[PANE_PROBLEMS] >= 0 ? t->sel[PANE_PROBLEMS] : INT_MAX; /* none */
    switch (p) {
    case PANE_SWEEPS:
        cs_view_sweeps(t->doc, &o, width, l);
        break;
    case PANE_WORKERS:
        cs_view_workers(t->doc, &o, width, l);
        break;
    case PANE_PROBLEMS:
        cs_view_problems(t->doc, &o, width, l);
        break;
    default:
        cs_view_best(t->doc, &o, width, l);
        break;
    }
}

static attr_t style_attr(const tui *t, cs_view_style s)
{
    static const short pair[CS_VIEW_N_STYLES] = {0, 4, 0, 1, 2, 3};
    attr_t a = s == CS_VIEW_TITLE ? A_BOLD : s == CS_VIEW_DIM ? A_DIM : A_NORMAL;
    if (t->color && pair[s] > 0) {
        a |= COLOR_PAIR(pair[s]);
    } else if (s == CS_VIEW_BAD || s == CS_VIEW_WARN) {
        a |= A_BOLD;
    }
    return a;
}

static void draw_line(const tui *t, int y, const cs_view_line *line, attr_t extra)
{
    size_t at = 0;
    move(y, 0);
    attrset(style_attr(t, line->style) | extra);
    for (size_t i = 0; i < line->n_spans; i++) {
        const cs_view_span *s = &line->spans[i];
        addnstr(line->text + at, (int)(s->at - at));
        attrset(style_attr(t, s->style) | extra);
        addnstr(line->text + s->at, (int)s->len);
        attrset(style_attr(t, line->style) | extra);
        at = s->at + s->len;
    }
    addstr(line->text + at);
    if (extra) {
        for (int x = getcurx(stdscr); x < COLS; x++) {
            addch(' ');
        }
    }
    attrset(A_NORMAL);
}

/* The element after (delta > 0) or before (delta < 0) cur among the pane's lines, cur itself at
 * either end or for delta 0; the first element when cur is not shown; -1 when there is none. */
static int step_item(const cs_view_lines *l, int cur, int delta)
{
    int first = -1, prev = -1, last = -1;
    bool at_cur = false;
    for (size_t i = 0; i < l->n; i++) {
        int it = l->v[i].item;
        if (it < 0 || it == last) {
            continue;
        }
        if (at_cur) {
            return it;
        }
        if (it == cur) {
            if (delta <= 0) {
                return delta < 0 && prev >= 0 ? prev : cur;
            }
            at_cur = true;
        }
        first = first < 0 ? it : first;
        prev = last = it;
    }
    return at_cur ? cur : first;
}

/* Keeps the pane's selection on an element it shows, and on screen in its h - 1 body lines. */
static void fix_selection(tui *t, int p, const cs_view_lines *l, int h)
{
    int first = -1;
    t->sel[p] = step_item(l, t->sel[p], 0);
    for (size_t i = 1; i < l->n && first < 0; i++) {
        first = l->v[i].item == t->sel[p] && t->sel[p] >= 0 ? (int)i - 1 : -1;
    }
    if (first >= 0 && first < t->top[p]) {
        t->top[p] = first;
    } else if (first >= 0 && first >= t->top[p] + h - 1) {
        t->top[p] = first - (h - 2);
    }
    if (t->top[p] > (int)l->n - h) {
        t->top[p] = (int)l->n - h > 0 ? (int)l->n - h : 0;
    }
    if (t->top[p] < 0) {
        t->top[p] = 0;
    }
}

/* Heights of the panes in avail lines: each at least its title and two lines (or all it has),
 * then one line at a time to those that have more. */
static void layout(const cs_view_lines *l, int avail, int *h)
{
    int used = 0;
    bool more = true;
    for (int p = 0; p < N_PANES; p++) {
        h[p] = (int)l[p].n < 3 ? (int)l[p].n : 3;
        used += h[p];
    }
    while (used < avail && more) {
        more = false;
        for (int p = 0; p < N_PANES && used < avail; p++) {
            if (h[p] < (int)l[p].n) {
                h[p]++;
                used++;
                more = true;
            }
        }
    }
}

/* The keys, most wanted first; the short form fits the 79 columns of an 80-column terminal. */
static const char keys_line[] = "? help  q quit  p pause  r resume  c cancel  R retry failed  "
                                "/ filter  s sort  Tab pane  j/k select  Enter job";
static const char keys_short[] = "?help q quit p/r pause/resume c cancel R retry /filter s sort "
                                 "Tab Enter";

static void draw_footer(tui *t)
{
    cs_view_lines l = {0};
    int w = COLS - 1;
    if (t->mode == MODE_FILTER) {
        cs_view_add(&l, w, CS_VIEW_WARN, -1, "filter: %s_   (Enter keeps it, Esc clears it)",
                    t->filter);
    } else if (t->mode == MODE_CONFIRM) {
        cs_view_add(&l, w, CS_VIEW_BAD, -1,
                    "cancel sweep %lld and all its queued and running jobs? y/n",
                    (long long)t->confirm_id);
    } else {
        cs_view_add(&l, w, t->status[0] ? CS_VIEW_WARN : CS_VIEW_DIM, -1, "%s%s%s%s",
                    t->filter[0] ? "[filter: " : "", t->filter, t->filter[0] ? "]  " : "",
                    t->status[0]                      ? t->status
                    : w >= (int)sizeof(keys_line) - 1 ? keys_line
                                                      : keys_short);
    }
    if (l.n > 0) {
        draw_line(t, LINES - 1, &l.v[0], A_NORMAL);
    }
    cs_view_lines_fini(&l);
}

/* Row 0: the header, or what keeps it from being one. */
static void draw_header(tui *t)
{
    cs_view_lines l = {0};
    if (t->unreachable) {
        cs_view_add(&l, COLS, CS_VIEW_BAD, -1, "calsweepd not reachable at %s, retrying", t->url);
    } else if (!t->doc) {
        cs_view_add(&l, COLS, CS_VIEW_DIM, -1, "asking calsweepd at %s ...", t->url);
    } else {
        cs_view_header(t->doc, t->url, COLS, &l);
    }
    if (l.n > 0) {
        draw_line(t, 0, &l.v[0], A_NORMAL);
    }
    cs_view_lines_fini(&l);
}

static void draw_main(tui *t)
{
    cs_view_lines l[N_PANES];
    int h[N_PANES], y = 1;
    memset(l, 0, sizeof(l));
    draw_header(t);
    for (int p = 0; p < N_PANES && t->doc; p++) {
        render_pane(t, p, COLS, &l[p]);
    }
    if (t->doc) {
        layout(l, LINES - 2, h);
    }
    for (int p = 0; p < N_PANES && t->doc; p++) {
        if (h[p] == 0) {
            continue;
        }
        fix_selection(t, p, &l[p], h[p]);
        draw_line(t, y, &l[p].v[0], p == t->focus ? A_UNDERLINE : A_NORMAL);
        for (int i = 1; i < h[p] && t->top[p] + i < (int)l[p].n; i++) {
            const cs_view_line *line = &l[p].v[t->top[p] + i];
            bool sel = line->item >= 0 && line->item == t->sel[p];
            draw_line(t, y + i, line, sel ? (p == t->focus ? A_REVERSE : A_BOLD) : A_NORMAL);
        }
        y += h[p];
    }
    for (int p = 0; p < N_PANES; p++) {
        cs_view_lines_fini(&l[p]);
    }
    draw_footer(t);
}

static void draw_job(tui *t)
{
    cs_view_lines l = {0}, top = {0};
    int body = LINES - 2;
    cs_view_job(t->info, t->logs, COLS, &l);
    if (t->follow || t->job_top > (int)l.n - body) {
        t->job_top = (int)l.n - body;
    }
    if (t->job_top < 0) {
        t->job_top = 0;
    }
    cs_view_add(&top, COLS, CS_VIEW_TITLE, -1,
                "job %lld   j/k PgUp/PgDn g/G scroll   F follow the log (%s)   Esc or q back",
                (long long)t->job_id, t->follow ? "on" : "off");
    if (t->unreachable) {
        cs_view_add(&top, COLS, CS_VIEW_BAD, -1, "calsweepd not reachable at %s, retrying", t->url);
    }
    draw_line(t, 0, &top.v[top.n - 1], A_NORMAL);
    for (int i = 0; i < body && t->job_top + i < (int)l.n; i++) {
        draw_line(t, 1 + i, &l.v[t->job_top + i], A_NORMAL);
    }
    draw_footer(t);
    cs_view_lines_fini(&top);
    cs_view_lines_fini(&l);
}

static void draw_help(tui *t)
{
    cs_view_lines l = {0};
    cs_view_help(COLS, &l);
    for (size_t i = 0; i < l.n && (int)i < LINES; i++) {
        draw_line(t, (int)i, &l.v[i], A_NORMAL);
    }
    cs_view_lines_fini(&l);
}

static void draw(tui *t)
{
    erase();
    if (COLS < MIN_COLS || LINES < MIN_LINES) {
        char msg[96];
        snprintf(msg, sizeof(msg), "terminal too small (%dx%d): calsweep watch needs %dx%d", COLS,
                 LINES, MIN_COLS, MIN_LINES);
        mvaddnstr(0, 0, msg, COLS);
    } else if (t->mode == MODE_HELP) {
        draw_help(t);
    } else if (t->mode == MODE_JOB) {
        draw_job(t);
    } else {
        draw_main(t);
    }
    refresh();
}

/* ---- keys ------------------------------------------------------------------------------------ */

static const cJSON *doc_array(const tui *t, int p)
{
    static const char *const names[N_PANES] = {"sweeps", "workers", "problems", "best"};
    return cJSON_GetObjectItemCaseSensitive(t->doc, names[p]);
}

static void move_selection(tui *t, int delta)
{
    cs_view_lines l = {0};
    render_pane(t, t->focus, COLS, &l);
    t->sel[t->focus] = step_item(&l, t->sel[t->focus], delta);
    cs_view_lines_fini(&l);
}

/* The selected sweep's id, 0 when none (and says so). */
static int64_t selected_sweep(tui *t)
{
    const cJSON *sw = cJSON_GetArrayItem(doc_array(t, PANE_SWEEPS), t->sel[PANE_SWEEPS]);
    if (!sw || t->sel[PANE_SWEEPS] < 0) {
        set_status(t, "no sweep selected (select one in the sweeps pane)");
        return 0;
    }
    return cs_client_int(sw, "id");
}

static void open_job(tui *t)
{
    const cJSON *e = cJSON_GetArrayItem(doc_array(t, t->focus), t->sel[t->focus]);
    int64_t id = 0;
    if (e && t->focus == PANE_PROBLEMS) {
        id = cs_client_int(e, "id");
    } else if (e && t->focus == PANE_WORKERS) {
        id = cs_client_int(cJSON_GetObjectItemCaseSensitive(e, "job"), "id");
    }
    if (id <= 0) {
        set_status(t, "Enter opens a job: select a busy worker or a problem first");
        return;
    }
    t->job_id = id;
    t->job_top = 0;
    t->follow = false;
    cJSON_Delete(t->info);
    cJSON_Delete(t->logs);
    t->info = t->logs = NULL;
    t->mode = MODE_JOB;
    t->next_poll = 0; /* JOB_INFO and LOGS: the view's only requests while it is open */
}

static void key_filter(tui *t, int ch)
{
    size_t n = strlen(t->filter);
    if (ch == '\n' || ch == KEY_ENTER) {
        t->mode = MODE_MAIN;
    } else if (ch == KEY_ESCAPE) {
        t->filter[0] = '\0';
        t->mode = MODE_MAIN;
    } else if ((ch == KEY_BACKSPACE || ch == 127 || ch == 8) && n > 0) {
        t->filter[n - 1] = '\0';
    } else if (ch >= 0x20 && ch < 0x7f && n < FILTER_MAX) {
        t->filter[n] = (char)ch;
        t->filter[n + 1] = '\0';
    }
    t->opts.filter = t->filter;
}

static void key_job(tui *t, int ch)
{
    int page = LINES - 3 > 1 ? LINES - 3 : 1;
    int step = ch == 'k' || ch == KEY_UP      ? -1
               : ch == 'j' || ch == KEY_DOWN  ? 1
               : ch == KEY_PPAGE              ? -page
               : ch == KEY_NPAGE || ch == ' ' ? page
               : ch == 'g' || ch == KEY_HOME  ? -(1 << 28)
               : ch == 'G' || ch == KEY_END   ? (1 << 28)
                                              : 0;
    if (ch == KEY_ESCAPE || ch == 'q') {
        t->mode = MODE_MAIN;
        poll_soon(t);
    } else if (ch == 'F' || ch == 'f') {
        t->follow = !t->follow;
    } else if (step != 0) {
        t->follow = false;
        t->job_top = step < -(1 << 20) ? 0 : step > (1 << 20) ? (1 << 28) : t->job_top + step;
    }
}

/* The main view's keys; returns true on q. */
static bool key_main(tui *t, int ch)
{
    int64_t id;
    switch (ch) {
    case 'q':
        return true;
    case KEY_TAB:
        t->focus = (t->focus + 1) % N_PANES;
        break;
    case KEY_BTAB:
        t->focus = (t->focus + N_PANES - 1) % N_PANES;
        break;
    case 'j':
    case KEY_DOWN:
        move_selection(t, 1);
        break;
    case 'k':
    case KEY_UP:
        move_selection(t, -1);
        break;
    case 'p':
    case 'r':
        if ((id = selected_sweep(t)) > 0) {
            act(t, ch == 'p' ? CS_MSG_PAUSE : CS_MSG_RESUME, id, ch == 'p' ? "pause" : "resume");
        }
        break;
    case 'R':
        if ((id = selected_sweep(t)) > 0) {
            act(t, CS_MSG_RETRY, id, "retry");
        }
        break;
    case 'c':
        if ((id = selected_sweep(t)) > 0) {
            t->confirm_id = id;
            t->mode = MODE_CONFIRM;
        }
        break;
    case '/':
        t->mode = MODE_FILTER;
        break;
    case 's':
        if (t->focus == PANE_WORKERS) {
            t->opts.worker_sort = (t->opts.worker_sort + 1) % 3;
        } else if (t->focus == PANE_PROBLEMS) {
            t->opts.problem_sort = (t->opts.problem_sort + 1) % 2;
        } else {
            set_status(t, "s sorts the workers and the problems (Tab to one of them)");
        }
        break;
    case '?':
        t->mode = MODE_HELP;
        break;
    case '\n':
    case KEY_ENTER:
        open_job(t);
        break;
    case KEY_ESCAPE:
        t->filter[0] = '\0';
        break;
    default:
        break;
    }
    return false;
}

/* Handles one key; returns true when the view should end. */
static bool on_key(tui *t, int ch)
{
    t->dirty = true;
    if (ch == KEY_RESIZE || ch == KEY_CTRL_L) {
        clearok(curscr, TRUE);
        return false;
    }
    switch (t->mode) {
    case MODE_FILTER:
        key_filter(t, ch);
        return false;
    case MODE_CONFIRM:
        t->mode = MODE_MAIN;
        if (ch == 'y' || ch == 'Y') {
            act(t, CS_MSG_CANCEL, t->confirm_id, "cancel");
        } else {
            set_status(t, "not cancelled");
        }
        return false;
    case MODE_HELP:
        t->mode = MODE_MAIN;
        return false;
    case MODE_JOB:
        key_job(t, ch);
        return false;
    default:
        return key_main(t, ch);
    }
}

/* ---- the loop -------------------------------------------------------------------------------- */

static void start_colors(tui *t)
{
    if (!t->color || !has_colors() || start_color() == ERR) {
        t->color = false;
        return;
    }
    (void)use_default_colors();
    init_pair(1, COLOR_GREEN, -1);
    init_pair(2, COLOR_YELLOW, -1);
    init_pair(3, COLOR_RED, -1);
    init_pair(4, COLOR_CYAN, -1);
}

static void loop(tui *t)
{
    bool quit = false;
    while (!quit) {
        int64_t now = cs_time_mono_ms(), wait;
        int ch;
        if (now >= t->next_poll) {
            if (t->mode == MODE_JOB) {
                poll_job(t);
            } else if (!t->fixed) {
                poll_watch(t);
            }
            now = cs_time_mono_ms();
            t->next_poll = now + t->interval_ms;
        }
        if (t->status_until > 0 && now >= t->status_until) {
            t->status[0] = '\0';
            t->status_until = 0;
            t->dirty = true;
        }
        if (t->dirty && now - t->last_draw >= REDRAW_MS) {
            draw(t);
            t->last_draw = now;
            t->dirty = false;
        }
        wait = t->next_poll - now;
        if (t->dirty && t->last_draw + REDRAW_MS - now < wait) {
            wait = t->last_draw + REDRAW_MS - now;
        }
        timeout((int)(wait < 10 ? 10 : wait > 1000 ? 1000 : wait));
        ch = getch();
        if (ch != ERR) {
            quit = on_key(t, ch);
        }
    }
}

int cs_view_run_tui(const cs_client *c, const char *url, const char *sweep, int64_t interval_ms,
                    bool color, cJSON *fixed)
{
    tui t;
    SCREEN *scr;
    memset(&t, 0, sizeof(t));
    t.doc = fixed;
    t.fixed = fixed != NULL;
    t.c = *c;
    if (t.c.timeout_ms <= 0 || t.c.timeout_ms > QUICK_MS) {
        t.c.timeout_ms = QUICK_MS;
    }
    t.url = url;
    t.sweep = sweep;
    t.interval_ms = interval_ms < 1000 ? 1000 : interval_ms;
    t.color = color;
    t.opts.open_problem = -1;
    for (int p = 0; p < N_PANES; p++) {
        t.sel[p] = -1;
    }
    setlocale(LC_ALL, "");
    scr = newterm(NULL, stdout, stdin);
    if (!scr) {
        fprintf(stderr, "calsweep watch: cannot use the terminal (TERM=%s); try --once\n",
                getenv("TERM") ? getenv("TERM") : "");
        cJSON_Delete(fixed);
        return CS_EXIT_FAIL;
    }
    cs_view_errpipe_open(&t.err);
    cbreak();
    noecho();
    keypad(stdscr, TRUE);
    (void)curs_set(0);
    set_escdelay(100);
    start_colors(&t);
    t.dirty = true;
    loop(&t);
    endwin();
    delscreen(scr);
    cs_view_errpipe_close(&t.err);
    cJSON_Delete(t.doc);
    cJSON_Delete(t.info);
    cJSON_Delete(t.logs);
    return CS_EXIT_OK;
}
