/* dispatch_bench.c - calsweepd's dispatch throughput: the real daemon (durable store,
 * synchronous=FULL) and W simulated workers (threads, one REQ socket each) that CLAIM and RESULT
 * jobs until none are left, on ipc:// and on tcp://127.0.0.1. Reports jobs claimed and completed
 * per second and p50/p99 claim latency; then the daemon's resident memory with Q queued jobs.
 *
 * Two load generators, each W workers with their own REQ socket and strict claim -> result ->
 * claim order: "threads" (one blocking thread per worker) and "async" (every worker a state
 * machine on nng's callbacks, no thread of its own), so that on a small machine the client's
 * thread switching does not hide the daemon's throughput. As calsweep-worker does (protocol v2),
 * each RESULT carries the claim of the worker's next job: one round trip per job after the first
 * CLAIM. With --separate 1 they send CLAIM and RESULT as two requests (protocol v1's pattern).
 * Claim latency: a request that claims (CLAIM, or RESULT with its claim) sent -> JOB received.
 *
 * With --watchers N (issue 20: a live view must not slow dispatch), each selected configuration
 * runs --rounds R times twice, alternately without and with N processes that loop
 * `calsweep --control URL watch --once; sleep 1` against the same calsweepd for the whole run
 * (the view's own rate: one WATCH a second, every pane's data in one request), and prints the
 * throughput ratio of the two, measured side by side.
 *
 *   dispatch_bench [--jobs N (20000)] [--workers W (64)] [--queued Q (1000000; 0 = skip)]
 *                  [--separate 0|1 (0)] [--only ipc-async|... (all four)]
 *                  [--watchers N (0)] [--rounds R (3)]
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <pthread.h>

#include "cs_opt.h"
#include "integration/daemon_util.h"

static bool separate; /* --separate: CLAIM and RESULT as two requests */

/* Path of the calsweep CLI (CS_BUILD_DIR/coordinator/calsweep, or $CALSWEEP). */
static void cli_path(char *buf, size_t n)
{
    const char *p = getenv("CALSWEEP");
    const char *b = getenv("CS_BUILD_DIR");
    if (p != NULL) {
        snprintf(buf, n, "%s", p);
    } else {
        snprintf(buf, n, "%s/coordinator/calsweep", b != NULL ? b : "build");
    }
}

/* Starts n processes that each run `calsweep --control URL watch --once` once a second until killed
 * (SIGKILL to their process group); returns the group's id, 0 when n is 0. The loop counts its
 * rounds and failures into dir/watch-<i>.count (one line per round: 0 or the exit code). */
static pid_t start_watchers(int64_t n, const char *control, const char *dir)
{
    char cli[512];
    if (n <= 0) {
        return 0;
    }
    cli_path(cli, sizeof cli);
    pid_t leader = fork();
    if (leader == 0) {
        setpgid(0, 0);
        for (int64_t i = 0; i < n; i++) {
            if (fork() == 0) {
                char count[600];
                snprintf(count, sizeof count, "%s/watch-%lld.count", dir, (long long)i);
                execl("/bin/sh", "sh", "-c",
                      "while :; do \"$0\" --control \"$1\" watch --once >/dev/null 2>&1; "
                      "echo $? >> \"$2\"; sleep 1; done",
                      cli, control, count, (char *)NULL);
                _exit(127);
            }
        }
        for (;;) {
            pause();
        }
    }
    setpgid(leader, leader);
    return leader;
}

/* Stops the watchers of start_watchers and prints their rounds and failures; returns false
 * when a watch failed or none answered (a failing watch would not load calsweepd). */
static bool stop_watchers(pid_t group, int64_t n, const char *dir)
{
    long rounds = 0, failed = 0;
    if (group <= 0) {
        return true;
    }
    kill(-group, SIGKILL);
    while (waitpid(group, NULL, 0) < 0 && errno == EINTR) {
    }
    for (int64_t i = 0; i < n; i++) {
        char path[600], line[32];
        snprintf(path, sizeof path, "%s/watch-%lld.count", dir, (long long)i);
        FILE *f = fopen(path, "r");
        while (f != NULL && fgets(line, sizeof line, f) != NULL) {
            rounds++;
            failed += strtol(line, NULL, 10) != 0;
        }
        if (f != NULL) {
            fclose(f);
        }
    }
    printf("     %lld watch --once loops: %ld answers, %ld failed\n", (long long)n, rounds, failed);
    return rounds > 0 && failed == 0;
}

typedef struct wstate {
    const char *url;
    int id;
    int64_t *lat_us; /* claim latencies */
    size_t n_lat, cap;
    size_t done, errors;
} wstate;

static void *worker(void *arg)
{
    wstate *w = arg;
    char name[32];
    snprintf(name, sizeof name, "bench-%d", w->id);
    nng_socket s = dt_dial(w->url, NULL);
    if (!dt_ready(s, NULL, 10000)) {
        w->errors++;
        nng_close(s);
        return NULL;
    }
    cs_msg rep;
    uint64_t t0 = cs_time_mono_ns();
    cs_rc rc = dt_claim(s, name, NULL, 20000, &rep);
    for (;;) {
        uint64_t t1 = cs_time_mono_ns();
        if (rc != CS_OK) {
            w->errors++;
            break;
        }
        if (rep.type != CS_MSG_JOB) {
            if (rep.type == CS_MSG_ERROR) {
                w->errors++;
            }
            cs_msg_fini(&rep);
            break; /* NO_WORK: the queue is empty */
        }
        if (w->n_lat < w->cap) {
            w->lat_us[w->n_lat++] = (int64_t)((t1 - t0) / 1000);
        }
        int64_t id = rep.job.job_id, at = rep.job.attempt;
        char lease[CS_PROTO_TOKEN_LEN + 1];
        snprintf(lease, sizeof lease, "%s", rep.job.lease_token);
        cs_msg_fini(&rep);
        t0 = cs_time_mono_ns();
        if (separate) {
            rc = dt_result(s, name, lease, id, at, NULL, 20000, &rep);
            if (rc == CS_OK && rep.type == CS_MSG_ACK) {
                w->done++;
            } else {
                w->errors++;
            }
            cs_msg_fini(&rep);
            t0 = cs_time_mono_ns();
            rc = dt_claim(s, name, NULL, 20000, &rep);
            continue;
        }
        /* The result carries the claim of the next job: JOB or NO_WORK acknowledge it. */
        rc = dt_result_claim(s, id, at, name, lease, 20000, &rep);
        if (rc == CS_OK && (rep.type == CS_MSG_JOB || rep.type == CS_MSG_NO_WORK)) {
            w->done++;
        }
    }
    nng_close(s);
    return NULL;
}

/* ---- the async load generator ---- */

typedef struct actl {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int active;
} actl;

typedef struct aworker {
    wstate st;
    nng_socket s;
    nng_aio *aio;
    int phase; /* 0 claim sent, 1 claim reply awaited, 2 result sent, 3 result reply awaited */
    char name[32];
    uint64_t t0;
    actl *ctl;
} aworker;

static void a_finish(aworker *w)
{
    pthread_mutex_lock(&w->ctl->mu);
    w->ctl->active--;
    pthread_cond_signal(&w->ctl->cv);
    pthread_mutex_unlock(&w->ctl->mu);
}

static bool a_send(aworker *w, const cs_msg *m)
{
    char *text = NULL;
    size_t len = 0;
    nng_msg *msg = NULL;
    if (cs_msg_encode(m, &text, &len, NULL) != CS_OK || nng_msg_alloc(&msg, 0) != 0 ||
        nng_msg_append(msg, text, len) != 0) {
        free(text);
        if (msg) {
            nng_msg_free(msg);
        }
        return false;
    }
    free(text);
    nng_aio_set_msg(w->aio, msg);
    nng_send_aio(w->s, w->aio);
    return true;
}

static bool a_claim(aworker *w)
{
    cs_msg m;
    cs_msg_init(&m, CS_MSG_CLAIM);
    m.claim.worker = w->name;
    m.claim.instance = dt_mut(DT_INSTANCE);
    dt_caps(&m.claim.caps);
    w->phase = 0;
    w->t0 = cs_time_mono_ns();
    return a_send(w, &m);
}

static void a_cb(void *arg)
{
    aworker *w = arg;
    int rv = nng_aio_result(w->aio);
    if (rv != 0) {
        if (w->phase == 0 || w->phase == 2) {
            nng_msg_free(nng_aio_get_msg(w->aio));
        }
        w->st.errors++;
        a_finish(w);
        return;
    }
    if (w->phase == 0 || w->phase == 2) { /* sent: wait for the reply */
        w->phase++;
        nng_recv_aio(w->s, w->aio);
        return;
    }
    nng_msg *in = nng_aio_get_msg(w->aio);
    cs_msg rep;
    cs_rc rc = cs_msg_decode(nng_msg_body(in), nng_msg_len(in), &rep, NULL);
    nng_msg_free(in);
    if (rc != CS_OK) {
        w->st.errors++;
        a_finish(w);
        return;
    }
    if (w->phase == 3 && !separate) {
        /* The reply to a RESULT with its claim: stored, and JOB or NO_WORK for the claim. */
        if (rep.type == CS_MSG_JOB || rep.type == CS_MSG_NO_WORK) {
            w->st.done++;
        } else {
            w->st.errors++;
            cs_msg_fini(&rep);
            a_finish(w);
            return;
        }
        w->phase = 1;
    }
    if (w->phase == 1) {
        if (rep.type != CS_MSG_JOB) { /* NO_WORK: the queue is empty */
            if (rep.type == CS_MSG_ERROR) {
                w->st.errors++;
            }
            cs_msg_fini(&rep);
            a_finish(w);
            return;
        }
        if (w->st.n_lat < w->st.cap) {
            w->st.lat_us[w->st.n_lat++] = (int64_t)((cs_time_mono_ns() - w->t0) / 1000);
        }
        cs_msg m;
        cs_msg_init(&m, CS_MSG_RESULT);
        m.result.worker = w->name;
        m.result.lease_token = rep.job.lease_token;
        m.result.job_id = rep.job.job_id;
        m.result.attempt = rep.job.attempt;
        dt_fill_result(&m.result.result);
        if (!separate) {
            m.result.claim.worker = w->name;
            m.result.claim.instance = dt_mut(DT_INSTANCE);
            dt_caps(&m.result.claim.caps);
        }
        w->phase = 2;
        w->t0 = cs_time_mono_ns();
        bool sent = a_send(w, &m); /* encodes m, which borrows rep's lease token */
        cs_msg_fini(&rep);
        if (!sent) {
            w->st.errors++;
            a_finish(w);
        }
        return;
    }
    if (rep.type == CS_MSG_ACK) {
        w->st.done++;
    } else {
        w->st.errors++;
    }
    cs_msg_fini(&rep);
    if (!a_claim(w)) {
        w->st.errors++;
        a_finish(w);
    }
}

/* Runs the W async workers until every one got NO_WORK (or an error). */
static void run_async(wstate *ws, int64_t workers)
{
    actl ctl = {.active = (int)workers};
    aworker *aw = calloc((size_t)workers, sizeof *aw);
    pthread_mutex_init(&ctl.mu, NULL);
    pthread_cond_init(&ctl.cv, NULL);
    for (int64_t i = 0; i < workers; i++) {
        aworker *w = &aw[i];
        w->st = ws[i];
        w->ctl = &ctl;
        snprintf(w->name, sizeof w->name, "bench-%d", w->st.id);
        w->s = dt_dial(w->st.url, NULL);
        nng_aio_alloc(&w->aio, a_cb, w);
        nng_aio_set_timeout(w->aio, 20000);
    }
    for (int64_t i = 0; i < workers; i++) {
        if (!dt_ready(aw[i].s, NULL, 10000) || !a_claim(&aw[i])) {
            aw[i].st.errors++;
            a_finish(&aw[i]);
        }
    }
    pthread_mutex_lock(&ctl.mu);
    while (ctl.active > 0) {
        pthread_cond_wait(&ctl.cv, &ctl.mu);
    }
    pthread_mutex_unlock(&ctl.mu);
    for (int64_t i = 0; i < workers; i++) {
        nng_aio_free(aw[i].aio);
        nng_close(aw[i].s);
        ws[i] = aw[i].st;
    }
    free(aw);
}

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

static int64_t rss_kb(pid_t pid, const char *field)
{
    char path[64], line[256];
    int64_t v = -1;
    snprintf(path, sizeof path, "/proc/%d/status", (int)pid);
    FILE *f = fopen(path, "r");
    if (f == NULL) {
        return -1;
    }
    size_t n = strlen(field);
    while (fgets(line, sizeof line, f) != NULL) {
        if (strncmp(line, field, n) == 0 && line[n] == ':') {
            v = strtoll(line + n + 1, NULL, 10);
        }
    }
    fclose(f);
    return v;
}

/* Jobs per second of the last run() (for the --watchers ratio). */
static double last_rate;

static int run(const char *label, bool tcp, bool async, int64_t jobs, int64_t workers,
               int64_t watchers)
{
    dt_env e;
    dt_env_init(&e);
    if (tcp) {
        snprintf(e.work, sizeof e.work, "tcp://127.0.0.1:%d", 30000 + (int)(getpid() % 20000));
    }
    int64_t t_sub = cs_time_mono_ms();
    dt_submit(e.db, "bench", 0, (size_t)jobs, 3);
    t_sub = cs_time_mono_ms() - t_sub;
    const char *extra[] = {"--claim-hold-ms", "200", "--log-level", "info", NULL};
    dt_start(&e, extra);
    nng_socket probe = dt_dial(e.work, NULL);
    if (!dt_ready(probe, NULL, 10000)) {
        fprintf(stderr, "daemon did not start\n");
        return 1;
    }
    nng_close(probe);
    pid_t wgroup = start_watchers(watchers, e.control, e.dir);
    if (watchers > 0) {
        usleep(300000); /* the loops are running before the workers start */
    }

    wstate *ws = calloc((size_t)workers, sizeof *ws);
    pthread_t *th = calloc((size_t)workers, sizeof *th);
    for (int64_t i = 0; i < workers; i++) {
        ws[i].url = e.work;
        ws[i].id = (int)i;
        ws[i].cap = (size_t)jobs;
        ws[i].lat_us = calloc((size_t)jobs, sizeof(int64_t));
    }
    uint64_t t0 = cs_time_mono_ns();
    if (async) {
        run_async(ws, workers);
    } else {
        for (int64_t i = 0; i < workers; i++) {
            pthread_create(&th[i], NULL, worker, &ws[i]);
        }
        for (int64_t i = 0; i < workers; i++) {
            pthread_join(th[i], NULL);
        }
    }
    double secs = (double)(cs_time_mono_ns() - t0) / 1e9;
    bool watch_ok = stop_watchers(wgroup, watchers, e.dir);
    int64_t rss = rss_kb(e.pid, "VmHWM");
    size_t done = 0, errors = 0, n = 0;
    for (int64_t i = 0; i < workers; i++) {
        done += ws[i].done;
        errors += ws[i].errors;
        n += ws[i].n_lat;
    }
    int64_t *all = calloc(n + 1, sizeof *all);
    size_t k = 0;
    for (int64_t i = 0; i < workers; i++) {
        memcpy(all + k, ws[i].lat_us, ws[i].n_lat * sizeof *all);
        k += ws[i].n_lat;
        free(ws[i].lat_us);
    }
    qsort(all, n, sizeof *all, cmp_i64);
    kill(e.pid, SIGTERM);
    int st = dt_wait(e.pid, 20000);
    int64_t stored = dt_sql_int(e.db, "SELECT count(*) FROM result");
    last_rate = (double)done / secs;
    printf("%-4s %-7s workers %lld%s: %zu jobs claimed+completed in %.2f s = %.0f jobs/s; claim "
           "latency "
           "p50 %.2f ms, p99 %.2f ms; errors %zu; results stored %lld; daemon peak RSS %lld KB; "
           "exit %d; (submit %lld ms)\n",
           label, async ? "async" : "threads", (long long)workers,
           watchers > 0 ? " + watch loops" : "", done, secs, (double)done / secs,
           n ? (double)all[n / 2] / 1000.0 : 0.0, n ? (double)all[(n * 99) / 100] / 1000.0 : 0.0,
           errors, (long long)stored, (long long)rss,
           st >= 0 && WIFEXITED(st) ? WEXITSTATUS(st) : -1, (long long)t_sub);
    fflush(stdout);
    free(all);
    free(ws);
    free(th);
    dt_env_fini(&e);
    return (stored == jobs && errors == 0 && watch_ok) ? 0 : 1;
}

static int run_queued(int64_t queued)
{
    dt_env e;
    dt_env_init(&e);
    int64_t t_sub = cs_time_mono_ms();
    dt_submit(e.db, "big", 0, (size_t)queued, 3);
    t_sub = cs_time_mono_ms() - t_sub;
    const char *extra[] = {"--claim-hold-ms", "200", "--log-level", "info", NULL};
    dt_start(&e, extra);
    nng_socket s = dt_dial(e.work, NULL);
    if (!dt_ready(s, NULL, 30000)) {
        fprintf(stderr, "daemon did not start\n");
        return 1;
    }
    /* Claim and complete some jobs so the claim path has run over the big queue. */
    uint64_t t0 = cs_time_mono_ns();
    int done = 0;
    for (int i = 0; i < 2000; i++) {
        cs_msg rep;
        if (dt_claim(s, "one", NULL, 20000, &rep) != CS_OK || rep.type != CS_MSG_JOB) {
            cs_msg_fini(&rep);
            break;
        }
        int64_t id = rep.job.job_id, at = rep.job.attempt;
        char lease[CS_PROTO_TOKEN_LEN + 1];
        snprintf(lease, sizeof lease, "%s", rep.job.lease_token);
        cs_msg_fini(&rep);
        if (dt_result(s, "one", lease, id, at, NULL, 20000, &rep) == CS_OK &&
            rep.type == CS_MSG_ACK) {
            done++;
        }
        cs_msg_fini(&rep);
    }
    double secs = (double)(cs_time_mono_ns() - t0) / 1e9;
    printf("queued %lld jobs (submit %.1f s): one worker claimed+completed %d in %.2f s "
           "(%.0f jobs/s); daemon RSS %lld KB, peak %lld KB\n",
           (long long)queued, (double)t_sub / 1000.0, done, secs, (double)done / secs,
           (long long)rss_kb(e.pid, "VmRSS"), (long long)rss_kb(e.pid, "VmHWM"));
    fflush(stdout);
    nng_close(s);
    kill(e.pid, SIGTERM);
    dt_wait(e.pid, 20000);
    dt_env_fini(&e);
    return done == 2000 ? 0 : 1;
}

int main(int argc, char **argv)
{
    int64_t jobs = 20000, workers = 64, queued = 1000000, sep = 0, watchers = 0, rounds = 3;
    const char *only = NULL;
    cs_err err = {0};
    for (int i = 1; i + 1 < argc; i += 2) {
        if (strcmp(argv[i], "--only") == 0) {
            only = argv[i + 1];
            continue;
        }
        int64_t *slot = strcmp(argv[i], "--jobs") == 0       ? &jobs
                        : strcmp(argv[i], "--workers") == 0  ? &workers
                        : strcmp(argv[i], "--queued") == 0   ? &queued
                        : strcmp(argv[i], "--separate") == 0 ? &sep
                        : strcmp(argv[i], "--watchers") == 0 ? &watchers
                        : strcmp(argv[i], "--rounds") == 0   ? &rounds
                                                             : NULL;
        if (slot == NULL || cs_parse_i64(argv[i + 1], 0, 100000000, slot, argv[i], &err) != CS_OK) {
            fprintf(stderr,
                    "usage: dispatch_bench [--jobs N] [--workers W] [--queued Q] [--separate 0|1]"
                    " [--only ipc-threads|ipc-async|tcp-threads|tcp-async] [--watchers N]"
                    " [--rounds R] %s\n",
                    err.msg);
            return 2;
        }
    }
    separate = sep != 0;
    printf("%s\n", separate ? "CLAIM and RESULT as two requests (--separate 1)"
                            : "each RESULT carries the next CLAIM (protocol v2)");
    int rc = 0;
    static const char *const names[] = {"ipc-threads", "ipc-async", "tcp-threads", "tcp-async"};
    for (int k = 0; k < 4; k++) {
        if (only != NULL && strcmp(only, names[k]) != 0) {
            continue;
        }
        if (watchers == 0) {
            rc |= run(k < 2 ? "ipc" : "tcp", k >= 2, k % 2 == 1, jobs, workers, 0);
            continue;
        }
        /* Side by side: without and with the watch loops, alternately, R rounds. */
        double sum[2] = {0, 0}, lo = 1e300, hi = 0;
        for (int64_t r = 0; r < (rounds > 0 ? rounds : 1); r++) {
            double pair[2];
            for (int with = 0; with < 2; with++) {
                rc |= run(k < 2 ? "ipc" : "tcp", k >= 2, k % 2 == 1, jobs, workers,
                          with ? watchers : 0);
                pair[with] = last_rate;
                sum[with] += last_rate;
            }
            double ratio = pair[1] / pair[0];
            lo = ratio < lo ? ratio : lo;
            hi = ratio > hi ? ratio : hi;
        }
        printf("%s: with %lld watch loops / without = %.3f (mean of %lld rounds; per round "
               "%.3f..%.3f)\n",
               names[k], (long long)watchers, sum[1] / sum[0], (long long)rounds, lo, hi);
    }
    if (queued > 0) {
        rc |= run_queued(queued);
    }
    return rc;
}
