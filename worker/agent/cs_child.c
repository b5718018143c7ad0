/* cs_child.c - see cs_child.h. */
#include "cs_child.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <fcntl.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cs_alloc.h"
#include "cs_json.h"
#include "cs_log.h"
#include "cs_path.h"
#include "cs_proto.h"
#include "cs_time.h"

extern char **environ;

#define LINE_MAX_BYTES ((size_t)64 << 10) /* longer progress lines are dropped */

struct cs_child {
    uv_loop_t *loop;
    uv_process_t proc;
    uv_pipe_t progress;
    uv_timer_t timeout;
    uv_timer_t grace;
    int n_open;     /* handles initialised and not yet closed */
    bool destroyed; /* free when n_open drops to 0 */
    bool proc_init, pipe_init, timers_init;
    bool running;
    cs_child_exit_cb cb;
    void *data;
    char *log_path;
    int64_t grace_ms;
    int64_t start_ms;
    cs_child_reason stopped_by;
    bool sigkill_sent;
    int64_t oom_before;
    /* progress */
    cs_buf line;
    bool line_overflow;
    char stage[CS_PROTO_MAX_NAME + 1];
    char detail[CS_PROTO_MAX_NAME + 1]; /* "" = none */
    int64_t done, total;
    int64_t stage_start_ms; /* monotonic: when the current (stage, detail) began */
};

int64_t cs_child_oom_kills(void)
{
    char *cg = NULL, *events = NULL, path[4096];
    int64_t n = -1;
    if (cs_path_read_file("/proc/self/cgroup", 1 << 16, &cg, NULL, NULL) != CS_OK) {
        return -1;
    }
    /* cgroup v2: the line "0::/path" */
    const char *p = strstr(cg, "0::");
    if (p != NULL && (p == cg || p[-1] == '\n')) {
        p += 3;
        size_t len = strcspn(p, "\n");
        int w = snprintf(path, sizeof path, "/sys/fs/cgroup%.*s/memory.events", (int)len, p);
        if (w > 0 && (size_t)w < sizeof path &&
            cs_path_read_file(path, 1 << 16, &events, NULL, NULL) == CS_OK) {
            const char *k = strstr(events, "oom_kill ");
            if (k != NULL && (k == events || k[-1] == '\n')) {
                char *end = NULL;
                long long v = strtoll(k + 9, &end, 10);
                if (end != k + 9 && v >= 0) {
                    n = (int64_t)v;
                }
            }
        }
    }
    free(events);
    free(cg);
    return n;
}

/* ---- the guard (a process of its own: see cs_child.h) ------------------------------------- */

/* Ends the guard as its child ended: the same signal, else the same exit status. */
static int guard_finish(int status)
{
    if (WIFSIGNALED(status)) {
        int sig = WTERMSIG(status);
        struct rlimit no_core = {0, 0};
        sigset_t one;
        setrlimit(RLIMIT_CORE, &no_core); /* the child dumped its core already, if at all */
        signal(sig, SIG_DFL);
        sigemptyset(&one);
        sigaddset(&one, sig);
        sigprocmask(SIG_UNBLOCK, &one, NULL);
        raise(sig);
        return 128 + sig;
    }
    return WIFEXITED(status) ? WEXITSTATUS(status) : 1;
}

int cs_child_guard_main(int argc, char **argv)
{
    sigset_t set, old;
    siginfo_t si;
    struct timespec tick = {1, 0};
    char *end = NULL;
    int k = 3, status = 0;

    if (argc < 5 || strcmp(argv[1], CS_CHILD_GUARD_FLAG) != 0 || strcmp(argv[3], "--") != 0) {
        fprintf(stderr, "usage: %s %s WORKER_PID -- PROGRAM [ARGS]\n", argv[0],
                CS_CHILD_GUARD_FLAG);
        return 2;
    }
    long worker = strtol(argv[2], &end, 10);
    if (end == argv[2] || *end != '\0' || worker <= 1) {
        fprintf(stderr, "%s: bad worker pid '%s'\n", CS_CHILD_GUARD_FLAG, argv[2]);
        return 2;
    }
    /* SIGUSR1 says the worker died. Every signal we wait for is blocked first, so none is lost
     * between here and the wait. */
    sigemptyset(&set);
    sigaddset(&set, SIGUSR1);
    sigaddset(&set, SIGCHLD);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGHUP);
    sigprocmask(SIG_BLOCK, &set, &old);
    if (prctl(PR_SET_PDEATHSIG, SIGUSR1) != 0 || getppid() != (pid_t)worker) {
        return 1; /* the worker died before the prctl: run nothing */
    }
    pid_t pid = fork();
    if (pid < 0) {
        fprintf(stderr, "%s: fork: %s\n", CS_CHILD_GUARD_FLAG, strerror(errno));
        return 127;
    }
    if (pid == 0) {
        sigprocmask(SIG_SETMASK, &old, NULL);
        execvp(argv[k + 1], argv + k + 1);
        fprintf(stderr, "cannot start %s: %s\n", argv[k + 1], strerror(errno));
        _exit(127);
    }
    for (;;) {
        int sig = sigtimedwait(&set, &si, &tick);
        pid_t w = waitpid(pid, &status, WNOHANG);
        if (w == pid) {
            return guard_finish(status);
        }
        if (sig == SIGUSR1 || getppid() != (pid_t)worker) {
            /* the worker is gone: the job's whole process group goes too (ourselves last) */
            kill(0, SIGKILL);
            return 1;
        }
        /* SIGTERM, SIGINT, SIGHUP: the worker signals the whole group, so the child has it
         * too; we wait for the child to end. */
    }
}

cs_rc cs_child_create(uv_loop_t *loop, cs_child **out, cs_err *err)
{
    cs_child *c = calloc(1, sizeof *c);
    *out = NULL;
    if (c == NULL) {
        return cs_err_set(err, CS_ENOMEM, 0, "child");
    }
    c->loop = loop;
    snprintf(c->stage, sizeof c->stage, "starting");
    c->stage_start_ms = cs_time_mono_ms();
    *out = c;
    return CS_OK;
}

static void on_close(uv_handle_t *h)
{
    cs_child *c = h->data;
    c->n_open--;
    if (c->destroyed && c->n_open == 0) {
        cs_buf_fini(&c->line);
        free(c->log_path);
        free(c);
    }
}

static void close_handle(cs_child *c, uv_handle_t *h)
{
    if (!uv_is_closing(h)) {
        uv_close(h, on_close);
    }
    (void)c;
}

static void signal_group(cs_child *c, int sig)
{
    if (!c->running) {
        return;
    }
    /* The child is a session leader (UV_PROCESS_DETACHED): signal its whole group, so an exec
     * command's own children stop too. */
    if (kill(-c->proc.pid, sig) != 0) {
        uv_process_kill(&c->proc, sig);
    }
}

/* What a progress line's stage works on: its "task", else its "step" (strings), else "layer"
 * when it has a "layer" member; "" when none (or the name is too long). Borrowed from doc. */
static const char *line_detail(const cJSON *doc)
{
    static const char *const keys[] = {"task", "step"};
    for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++) {
        const cJSON *v = cJSON_GetObjectItemCaseSensitive(doc, keys[i]);
        if (cJSON_IsString(v) && v->valuestring[0] != '\0' &&
            strlen(v->valuestring) <= CS_PROTO_MAX_NAME) {
            return v->valuestring;
        }
    }
    return cJSON_GetObjectItemCaseSensitive(doc, "layer") ? "layer" : "";
}

/* Parses one progress line; malformed lines are logged at debug level and ignored. A line whose
 * stage differs from the current one resets done and total; a new (stage, detail) restarts the
 * stage clock. */
static void progress_line(cs_child *c, const char *text, size_t len)
{
    cJSON *doc = NULL;
    while (len > 0 && (text[len - 1] == '\r' || text[len - 1] == ' ')) {
        len--;
    }
    if (len == 0) {
        return;
    }
    if (cs_json_parse(text, len, "fd 3", &doc, NULL) != CS_OK || !cJSON_IsObject(doc)) {
        cs_log(CS_LOG_DEBUG, "child %d: progress line is not a JSON object", (int)c->proc.pid);
        cJSON_Delete(doc);
        return;
    }
    const cJSON *st = cJSON_GetObjectItemCaseSensitive(doc, "stage");
    const cJSON *d = cJSON_GetObjectItemCaseSensitive(doc, "done");
    const cJSON *t = cJSON_GetObjectItemCaseSensitive(doc, "total");
    bool stage_ok = cJSON_IsString(st) && st->valuestring[0] != '\0' &&
                    strlen(st->valuestring) <= CS_PROTO_MAX_NAME;
    if (stage_ok) {
        const char *detail = line_detail(doc);
        bool new_stage = strcmp(st->valuestring, c->stage) != 0;
        if (new_stage) {
            c->done = 0;
            c->total = 0;
        }
        if (new_stage || strcmp(detail, c->detail) != 0) {
            c->stage_start_ms = cs_time_mono_ms();
        }
        snprintf(c->stage, sizeof c->stage, "%s", st->valuestring);
        snprintf(c->detail, sizeof c->detail, "%s", detail);
    }
    if (cJSON_IsNumber(d) && d->valuedouble >= 0 && d->valuedouble < 9e15) {
        c->done = (int64_t)d->valuedouble;
    }
    if (cJSON_IsNumber(t) && t->valuedouble >= 0 && t->valuedouble < 9e15) {
        c->total = (int64_t)t->valuedouble;
    }
    cJSON_Delete(doc);
}

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    (void)h;
    (void)suggested;
    buf->base = malloc(4096);
    buf->len = buf->base ? 4096 : 0;
}

static void on_read(uv_stream_t *s, ssize_t n, const uv_buf_t *buf)
{
    cs_child *c = s->data;
    if (n < 0) {
        uv_read_stop(s);
        free(buf->base);
        return;
    }
    for (ssize_t i = 0; i < n; i++) {
        char ch = buf->base[i];
        if (ch == '\n') {
            if (!c->line_overflow && c->line.len > 0) {
                progress_line(c, c->line.data, c->line.len);
            }
            c->line.len = 0;
            c->line_overflow = false;
        } else if (c->line.len >= LINE_MAX_BYTES || c->line_overflow) {
            c->line_overflow = true;
        } else if (cs_buf_putc(&c->line, ch) != CS_OK) {
            c->line_overflow = true;
        }
    }
    free(buf->base);
}

static void on_grace(uv_timer_t *t)
{
    cs_child *c = t->data;
    if (c->running) {
        cs_log(CS_LOG_WARN, "child %d did not stop within %lld ms of SIGTERM: SIGKILL",
               (int)c->proc.pid, (long long)c->grace_ms);
        c->sigkill_sent = true;
        signal_group(c, SIGKILL);
    }
}

void cs_child_stop(cs_child *c, cs_child_reason why)
{
    if (c == NULL || !c->running || c->stopped_by != CS_CHILD_STOP_NONE) {
        return;
    }
    c->stopped_by = why;
    signal_group(c, SIGTERM);
    if (c->grace_ms <= 0) {
        c->sigkill_sent = true;
        signal_group(c, SIGKILL);
        return;
    }
    uv_timer_start(&c->grace, on_grace, (uint64_t)c->grace_ms, 0);
}

static void on_timeout(uv_timer_t *t)
{
    cs_child *c = t->data;
    cs_log(CS_LOG_WARN, "child %d: job timeout reached, stopping it", (int)c->proc.pid);
    cs_child_stop(c, CS_CHILD_STOP_TIMEOUT);
}

static void on_exit_cb(uv_process_t *p, int64_t exit_status, int term_signal)
{
    cs_child *c = p->data;
    cs_child_outcome o = {0};
    c->running = false;
    uv_timer_stop(&c->timeout);
    uv_timer_stop(&c->grace);
    o.exit_status = term_signal != 0 ? -1 : exit_status;
    o.signal = term_signal;
    o.stopped_by = c->stopped_by;
    o.sigkill_sent = c->sigkill_sent;
    o.oom_before = c->oom_before;
    o.oom_after = cs_child_oom_kills();
    o.oom = term_signal == SIGKILL && !c->sigkill_sent && o.oom_before >= 0 &&
            o.oom_after > o.oom_before;
    o.elapsed_ms = cs_time_mono_ms() - c->start_ms;
    if (c->cb != NULL) {
        c->cb(c, &o, c->data);
    }
}

/* environ plus extra, where extra replaces entries of the same name. Returns owned array of
 * borrowed strings. */
static char **build_env(const char *const *extra)
{
    size_t n_env = 0, n_extra = 0, k = 0;
    while (environ != NULL && environ[n_env] != NULL) {
        n_env++;
    }
    while (extra != NULL && extra[n_extra] != NULL) {
        n_extra++;
    }
    char **env = cs_calloc_array(n_env + n_extra + 1, sizeof *env);
    if (env == NULL) {
        return NULL;
    }
    for (size_t i = 0; i < n_env; i++) {
        bool replaced = false;
        for (size_t j = 0; j < n_extra && !replaced; j++) {
            size_t eq = strcspn(extra[j], "=");
            replaced = strncmp(environ[i], extra[j], eq + 1) == 0;
        }
        if (!replaced) {
            env[k++] = environ[i];
        }
    }
    for (size_t j = 0; j < n_extra; j++) {
        env[k++] = (char *)(uintptr_t)extra[j];
    }
    env[k] = NULL;
    return env;
}

cs_rc cs_child_start(cs_child *c, const cs_child_spec *spec, cs_child_exit_cb cb, void *data,
                     cs_err *err)
{
    uv_process_options_t opts;
    uv_stdio_container_t stdio[4];
    char **env = NULL, **gargv = NULL;
    char ppid[32];
    int log_fd = -1, rv;
    cs_rc rc = CS_OK;

    if (c->running || c->proc_init) {
        return cs_err_set(err, CS_ESTATE, 0, "child already started");
    }
    if ((rc = cs_path_join(spec->dir, "stderr.log", &c->log_path, err)) != CS_OK) {
        return rc;
    }
    log_fd = open(c->log_path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    if (log_fd < 0) {
        return cs_err_errno(err, errno, "%s", c->log_path);
    }
    env = build_env(spec->env);
    if (env == NULL) {
        rc = cs_err_set(err, CS_ENOMEM, 0, "child environment");
        goto cleanup;
    }
    if (!c->timers_init) {
        uv_timer_init(c->loop, &c->timeout);
        uv_timer_init(c->loop, &c->grace);
        c->timeout.data = c;
        c->grace.data = c;
        c->n_open += 2;
        c->timers_init = true;
    }
    uv_pipe_init(c->loop, &c->progress, 0);
    c->progress.data = c;
    c->pipe_init = true;
    c->n_open++;

    memset(&opts, 0, sizeof opts);
    memset(stdio, 0, sizeof stdio);
    stdio[0].flags = UV_IGNORE;
    stdio[1].flags = UV_INHERIT_FD;
    stdio[1].data.fd = log_fd;
    stdio[2].flags = UV_INHERIT_FD;
    stdio[2].data.fd = log_fd;
    stdio[3].flags = UV_CREATE_PIPE | UV_WRITABLE_PIPE;
    stdio[3].data.stream = (uv_stream_t *)&c->progress;
    opts.exit_cb = on_exit_cb;
    opts.file = spec->argv[0];
    opts.args = (char **)(uintptr_t)spec->argv;
    if (spec->guard != NULL && strchr(spec->argv[0], '/') != NULL &&
        access(spec->argv[0], X_OK) != 0) {
        /* the guard would start, and only its child fail: say it now, as uv_spawn would */
        int e = errno;
        rc = cs_err_set(err,
                        e == ENOENT   ? CS_ENOENT
                        : e == EACCES ? CS_EAUTH
                                      : CS_EIO,
                        e, "cannot start %s: %s", spec->argv[0], strerror(e));
        goto cleanup;
    }
    if (spec->guard != NULL) {
        size_t n = 0;
        while (spec->argv[n] != NULL) {
            n++;
        }
        gargv = cs_calloc_array(n + 5, sizeof *gargv);
        if (gargv == NULL) {
            rc = cs_err_set(err, CS_ENOMEM, 0, "child arguments");
            goto cleanup;
        }
        snprintf(ppid, sizeof ppid, "%ld", (long)getpid());
        gargv[0] = (char *)(uintptr_t)spec->guard;
        gargv[1] = (char *)(uintptr_t)CS_CHILD_GUARD_FLAG;
        gargv[2] = ppid;
        gargv[3] = (char *)(uintptr_t) "--";
        for (size_t i = 0; i < n; i++) {
            gargv[4 + i] = (char *)(uintptr_t)spec->argv[i];
        }
        opts.file = spec->guard;
        opts.args = gargv;
    }
    opts.env = env;
    opts.cwd = spec->dir;
    opts.flags = UV_PROCESS_DETACHED;
    opts.stdio_count = 4;
    opts.stdio = stdio;
    c->proc.data = c;
    c->cb = cb;
    c->data = data;
    c->grace_ms = spec->kill_grace_ms;
    c->oom_before = cs_child_oom_kills();
    c->start_ms = cs_time_mono_ms();
    c->stage_start_ms = c->start_ms;
    rv = uv_spawn(c->loop, &c->proc, &opts);
    c->proc_init = true;
    c->n_open++;
    if (rv != 0) {
        rc = cs_err_uv(err, rv, "cannot start %s", opts.file);
        goto cleanup;
    }
    c->running = true;
    uv_read_start((uv_stream_t *)&c->progress, on_alloc, on_read);
    if (spec->timeout_ms > 0) {
        uv_timer_start(&c->timeout, on_timeout, (uint64_t)spec->timeout_ms, 0);
    }
cleanup:
    if (log_fd >= 0) {
        close(log_fd);
    }
    free(env);
    free(gargv);
    return rc;
}

const char *cs_child_stage(const cs_child *c)
{
    return c->stage;
}

const char *cs_child_detail(const cs_child *c)
{
    return c->detail[0] != '\0' ? c->detail : NULL;
}

int64_t cs_child_stage_ms(const cs_child *c)
{
    int64_t ms = cs_time_mono_ms() - c->stage_start_ms;
    return ms >= 1 ? ms : 1;
}

int64_t cs_child_done(const cs_child *c)
{
    return c->done;
}

int64_t cs_child_total(const cs_child *c)
{
    return c->total;
}

bool cs_child_running(const cs_child *c)
{
    return c != NULL && c->running;
}

int cs_child_pid(const cs_child *c)
{
    return c != NULL && c->running ? c->proc.pid : 0;
}

const char *cs_child_log_path(const cs_child *c)
{
    return c->log_path;
}

char *cs_child_log_tail(const char *log_path, size_t max_bytes)
{
    char *buf = NULL, *out = NULL;
    int fd = log_path != NULL ? open(log_path, O_RDONLY | O_CLOEXEC) : -1;
    struct stat st;
    if (fd < 0) {
        return cs_strdup("");
    }
    if (fstat(fd, &st) != 0 || st.st_size <= 0) {
        close(fd);
        return cs_strdup("");
    }
    if (max_bytes > CS_PROTO_MAX_TEXT) {
        max_bytes = CS_PROTO_MAX_TEXT;
    }
    size_t size = (size_t)st.st_size;
    size_t want = size < max_bytes ? size : max_bytes;
    off_t at = (off_t)(size - want);
    buf = malloc(want + 1);
    if (buf == NULL) {
        close(fd);
        return NULL;
    }
    ssize_t got = pread(fd, buf, want, at);
    close(fd);
    if (got < 0) {
        got = 0;
    }
    size_t start = 0, len = (size_t)got;
    if (at > 0) {
        /* cut at the first line start inside the window when there is one */
        const char *nl = memchr(buf, '\n', len);
        if (nl != NULL && (size_t)(nl - buf) + 1 < len) {
            start = (size_t)(nl - buf) + 1;
        }
    }
    out = cs_proto_log_tail(buf + start, len - start);
    free(buf);
    return out;
}

void cs_child_destroy(cs_child *c)
{
    if (c == NULL) {
        return;
    }
    if (c->running) {
        c->sigkill_sent = true;
        signal_group(c, SIGKILL);
        c->running = false;
    }
    c->cb = NULL;
    c->destroyed = true;
    if (c->proc_init) {
        close_handle(c, (uv_handle_t *)&c->proc);
    }
    if (c->pipe_init) {
        close_handle(c, (uv_handle_t *)&c->progress);
    }
    if (c->timers_init) {
        close_handle(c, (uv_handle_t *)&c->timeout);
        close_handle(c, (uv_handle_t *)&c->grace);
    }
    if (c->n_open == 0) {
        cs_buf_fini(&c->line);
        free(c->log_path);
        free(c);
    }
}
