/* cmd_watch.h - the parts of `calsweep watch` (cmd_watch*.c), private to the command.
 *
 * The view is drawn from calsweepd's WATCH document (docs/watch.md) by render functions that take
 * the document and a width and append styled lines (cmd_watch_render.c); `--once` prints those
 * lines as plain text (cmd_watch.c) and the terminal view lays them out in panes with ncurses
 * (cmd_watch_tui.c), so both show the same thing. One thread; nothing here is shared.
 */
#ifndef CS_COORDINATOR_CLI_CMD_WATCH_H
#define CS_COORDINATOR_CLI_CMD_WATCH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <cjson/cJSON.h>

#include "cs_alloc.h"
#include "cs_client.h"
#include "cs_err.h"

/* How a line or a part of it is shown: a colour on a terminal, nothing in plain text. */
typedef enum cs_view_style {
    CS_VIEW_NORMAL = 0,
    CS_VIEW_TITLE, /* a pane's title line */
    CS_VIEW_DIM,   /* finished sweeps, log lines, gone workers */
    CS_VIEW_OK,    /* done counts, a busy worker */
    CS_VIEW_WARN,  /* heartbeat older than the heartbeat interval, paused */
    CS_VIEW_BAD,   /* heartbeat older than the lease, lost workers, failures */
    CS_VIEW_N_STYLES
} cs_view_style;

#define CS_VIEW_MAX_SPANS 4

/* A part of a line with its own style: bytes [at, at + len) of the text. */
typedef struct cs_view_span {
    size_t at, len;
    cs_view_style style;
} cs_view_span;

typedef struct cs_view_line {
    char *text;          /* owned, UTF-8, at most the width it was rendered for (in columns) */
    cs_view_style style; /* of the whole line */
    int item;            /* index of the element in the pane's array of the document, or -1 */
    cs_view_span spans[CS_VIEW_MAX_SPANS];
    size_t n_spans;
} cs_view_line;

/* Lines appended by the render functions. Zero-initialise; cs_view_lines_fini frees. The first
 * allocation failure sticks in rc and later appends do nothing (docs/style.md R6). */
typedef struct cs_view_lines {
    cs_view_line *v;
    size_t n, cap;
    cs_rc rc;
} cs_view_lines;

void cs_view_lines_fini(cs_view_lines *l);

/* Sort orders, cycled by `s` in the terminal view. */
enum { CS_VIEW_WORKERS_BY_NAME, CS_VIEW_WORKERS_BY_AGE, CS_VIEW_WORKERS_BY_PROGRESS };
enum { CS_VIEW_PROBLEMS_BY_TIME, CS_VIEW_PROBLEMS_BY_SWEEP };

typedef struct cs_view_opts {
    const char *filter; /* substring of sweep names, job keys, axes, worker names; NULL = all */
    int worker_sort;    /* CS_VIEW_WORKERS_BY_* */
    int problem_sort;   /* CS_VIEW_PROBLEMS_BY_* */
    int open_problem;   /* the problem (item) whose log lines are shown; -1 = every one's */
} cs_view_opts;

/* The pane titles, which the tests look for on the screen. */
#define CS_VIEW_TITLE_SWEEPS   "SWEEPS"
#define CS_VIEW_TITLE_WORKERS  "WORKERS"
#define CS_VIEW_TITLE_PROBLEMS "PROBLEMS"
#define CS_VIEW_TITLE_BEST     "BEST SO FAR"

/* Each appends its pane, title line first, to out, every line cut to width columns (>= 20).
 * The document is borrowed; lines carry the index of their element (sweeps[i], workers[i],
 * problems[i], best[i]) in item. A member that is missing or of another type shows as unknown. */
void cs_view_header(const cJSON *doc, const char *url, int width, cs_view_lines *out);
void cs_view_sweeps(const cJSON *doc, const cs_view_opts *o, int width, cs_view_lines *out);
void cs_view_workers(const cJSON *doc, const cs_view_opts *o, int width, cs_view_lines *out);
void cs_view_problems(const cJSON *doc, const cs_view_opts *o, int width, cs_view_lines *out);
void cs_view_best(const cJSON *doc, const cs_view_opts *o, int width, cs_view_lines *out);

/* The job view asks LOGS for at most this much of the end of the log each interval. */
#define CS_VIEW_LOG_BYTES (1 << 20)

/* The job view from a JOB_INFO reply and a LOGS reply (either may be NULL: not there yet). */
void cs_view_job(const cJSON *info, const cJSON *logs, int width, cs_view_lines *out);

/* Appends a line of plain text (cut to width) in style, with item; printf-like. */
void cs_view_add(cs_view_lines *l, int width, cs_view_style style, int item, const char *fmt, ...)
        CS_PRINTF(5, 6);

/* The byte length of the longest prefix of s that fits in cols columns (one per code point). */
size_t cs_view_cut(const char *s, size_t cols);

/* "name=value name=value" of a job's axes into b (cmd_status.c's form). */
void cs_view_axes(const cJSON *axes, cs_buf *b);

/* Whether the filter matches any of the strings (NULL ones skipped); an empty filter matches. */
bool cs_view_match(const char *filter, const char *a, const char *b, const char *c);

/* The keys of the terminal view, one per line (cmd_watch.c; the view's `?` and --help). */
void cs_view_help(int width, cs_view_lines *out);

/* stderr sent to a pipe while the screen belongs to the view, so that what cs_client_call
 * reports is shown on the status line, not scribbled over the screen (cmd_watch.c). Neither end
 * ever blocks: a full pipe loses messages. open leaves stderr as it is when it cannot. */
typedef struct cs_view_errpipe {
    int fd;    /* read end, -1 */
    int saved; /* the real stderr, -1 */
} cs_view_errpipe;
void cs_view_errpipe_open(cs_view_errpipe *e);
void cs_view_errpipe_close(cs_view_errpipe *e); /* puts stderr back */
/* Reads what is there; last = its last non-empty line ("" when none), cut to n bytes. */
void cs_view_errpipe_drain(cs_view_errpipe *e, char *last, size_t n);

/* The terminal view (cmd_watch_tui.c): runs until q, returns the exit code. c is the connection,
 * url its resolved address (for the "not reachable" notice), sweep NULL for all, interval_ms
 * between WATCH requests, color false for monochrome. fixed, when not NULL, is shown instead of
 * asking calsweepd for WATCH (takes ownership; a saved document, for tests of the layout). */
int cs_view_run_tui(const cs_client *c, const char *url, const char *sweep, int64_t interval_ms,
                    bool color, cJSON *fixed);

#endif
