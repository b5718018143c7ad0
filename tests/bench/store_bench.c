/* store_bench.c - benchmarks of the job store (meson test --benchmark --suite bench).
 *
 * (a) Expanding and inserting a ~1,000,000-job sweep with the real parser and expander
 *     (cs_sweep_parse + cs_expand, run ahead on a second thread by cs_prefetch as the daemon
 *     does), in one transaction: wall time, CPU time and peak RSS.
 * (b) Claim + complete throughput with synchronous=FULL: batches of B claims and B results per
 *     transaction (group commit, as the daemon does), against the 1M-job database of (a); and,
 *     for contrast, one transaction per operation.
 *
 * (c) Memory: peak RSS (VmHWM) of the whole process after the submit (expander included), and
 *     the store's own cost with the 1M jobs queued: the database is closed and reopened (as a
 *     restarted coordinator would), then RSS (VmRSS) and SQLite's heap (sqlite3_memory_used and
 *     its high-water mark) are read before and after the claims of (b).
 *
 * Usage: store_bench [DIR] [insert]. DIR (default /tmp) holds the scratch database, which is
 * removed at the end; "insert" runs (a) only. Prints one "bench: key value unit" line per
 * measurement.
 */
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <malloc.h>
#include <sqlite3.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cs_expand.h"
#include "cs_prefetch.h"
#include "cs_store.h"
#include "cs_sweep.h"
#include "cs_time.h"

/* 4 algorithms x 6 n_samples x 5 seq_len x 8333 seeds = 999,960 cells + 1 baseline. */
static const char sweep_1m[] =
        "{\"name\":\"bench-1m\",\"models\":{\"m\":{\"folder\":\"sweeps/testbed/model\"}},"
        "\"data\":{\"sources\":{\"c4\":{\"kind\":\"jsonl\",\"path\":\"c4.jsonl\"}},"
        "\"eval\":{\"default\":{\"tasks\":{\"arc\":{\"path\":\"arc.jsonl\"}},\"limit\":200}}},"
        "\"grid\":{\"algorithm\":[{\"name\":\"gptq\",\"bits\":4},{\"name\":\"gptq\",\"bits\":3},"
        "{\"name\":\"awq\",\"bits\":4},{\"name\":\"awq\",\"bits\":3}],"
        "\"n_samples\":{\"range\":[16,512],\"scale\":\"log2\"},"
        "\"seq_len\":[64,128,256,512,1024],\"seed\":{\"range\":[0,8332]}}}";

/* CPU time of the process (user + system), ms: on this shared machine a steadier measure than
 * the wall clock. */
static int64_t cpu_ms(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (int64_t)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1000 +
           (ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1000;
}

static double peak_rss_mb(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)ru.ru_maxrss / 1024.0; /* Linux: KiB */
}

/* A "VmRSS:" / "VmHWM:" line of /proc/self/status, in MB; -1 if unreadable. */
static double proc_mb(const char *field)
{
    FILE *f = fopen("/proc/self/status", "r");
    char line[256];
    size_t n = strlen(field);
    double mb = -1;
    if (!f) {
        return -1;
    }
    while (fgets(line, sizeof(line), f)) {
        if (strncmp(line, field, n) == 0) {
            mb = strtod(line + n, NULL) / 1024.0;
            break;
        }
    }
    fclose(f);
    return mb;
}

/* Resets the process's peak RSS (VmHWM) and SQLite's heap high-water mark. */
static void reset_peaks(void)
{
    FILE *f = fopen("/proc/self/clear_refs", "w");
    if (f) {
        fputs("5", f);
        fclose(f);
    }
    sqlite3_memory_highwater(1);
}

static void print_mem(const char *when)
{
    printf("bench: rss_%s %.1f MB (VmRSS; peak since reset %.1f MB; sqlite heap %.1f MB, its "
           "peak %.1f MB)\n",
           when, proc_mb("VmRSS:"), proc_mb("VmHWM:"), (double)sqlite3_memory_used() / 1e6,
           (double)sqlite3_memory_highwater(0) / 1e6);
}

static void remove_db(const char *path)
{
    char p[600];
    unlink(path);
    snprintf(p, sizeof(p), "%s-wal", path);
    unlink(p);
    snprintf(p, sizeof(p), "%s-shm", path);
    unlink(p);
}

static int fail(const char *what, const cs_err *err)
{
    fprintf(stderr, "store_bench: %s: %s\n", what, err->msg);
    return 1;
}

/* (a) */
static int bench_insert(const char *db_path, cs_store **out)
{
    cs_sweep *sw = NULL;
    cs_expander *e = NULL;
    cs_prefetch *pf = NULL;
    cs_expand_opts opts = {.max_jobs = 2000000};
    cs_expand_counts ec;
    cs_store_submit_counts c;
    cs_sweep_meta meta;
    cs_store *s = NULL;
    cs_cell cell;
    cs_err err = {0};
    struct stat stbuf;
    size_t n = 0;
    int64_t t0, t_expand, t_total, t_ckpt, c0, c_expand, c_total;

    if (cs_sweep_parse(sweep_1m, sizeof(sweep_1m) - 1, "bench", &sw, NULL, &err) != CS_OK) {
        return fail("parse", &err);
    }
    /* Expansion alone, for the breakdown. */
    t0 = cs_time_mono_ms();
    c0 = cpu_ms();
    if (cs_expand_create(sw, &opts, &e, &err) != CS_OK) {
        return fail("expand", &err);
    }
    while (cs_expand_next(e, &cell, &err) == CS_OK) {
        n++;
    }
    cs_expand_destroy(e);
    t_expand = cs_time_mono_ms() - t0;
    c_expand = cpu_ms() - c0;
    printf("bench: expand_only_cells %zu\n", n);
    printf("bench: expand_only_ms %lld ms (cpu %lld ms)\n", (long long)t_expand,
           (long long)c_expand);

    t0 = cs_time_mono_ms();
    c0 = cpu_ms();
    if (cs_store_open(db_path, &s, &err) != CS_OK) {
        return fail("open", &err);
    }
    if (cs_expand_create(sw, &opts, &e, &err) != CS_OK) {
        return fail("expand", &err);
    }
    meta.name = sw->name;
    meta.spec = sw->spec;
    meta.spec_hash = sw->spec_hash;
    meta.policy = sw->policy;
    /* As the daemon does (cs_control.c): the expansion on a second thread, ahead of the insert. */
    if (cs_prefetch_start(cs_expand_next, e, &pf, &err) != CS_OK) {
        return fail("prefetch", &err);
    }
    if (cs_store_submit(s, &meta, cs_prefetch_next, pf, false, cs_time_wall_ms(), &c, &err) !=
        CS_OK) {
        return fail("submit", &err);
    }
    t_total = cs_time_mono_ms() - t0;
    c_total = cpu_ms() - c0;
    t0 = cs_time_mono_ms();
    if (cs_store_checkpoint(s, &err) != CS_OK) {
        return fail("checkpoint", &err);
    }
    t_ckpt = cs_time_mono_ms() - t0;
    cs_prefetch_destroy(pf);
    cs_expand_get_counts(e, &ec);
    cs_expand_destroy(e);
    cs_sweep_destroy(sw);
    stat(db_path, &stbuf);
    printf("bench: insert_jobs %zu\n", c.inserted);
    printf("bench: insert_total_ms %lld ms (expand + insert + durable commit, one transaction; "
           "cpu %lld ms)\n",
           (long long)t_total, (long long)c_total);
    printf("bench: insert_rate %.0f jobs/s\n", (double)c.inserted * 1000.0 / (double)t_total);
    printf("bench: checkpoint_after_insert_ms %lld ms (cs_store_checkpoint, the deferred copy of "
           "the WAL into the database file)\n",
           (long long)t_ckpt);
    printf("bench: insert_plus_checkpoint_ms %lld ms\n", (long long)(t_total + t_ckpt));
    printf("bench: insert_peak_rss %.1f MB (VmHWM, whole process: expander included)\n",
           proc_mb("VmHWM:"));
    printf("bench: db_size_after_insert %.1f MB (main file, after the checkpoint)\n",
           (double)stbuf.st_size / 1e6);
    *out = s;
    return 0;
}

/* (b): rounds of `batch` claims + `batch` results, one transaction per round when group. */
static int bench_claim(cs_store *s, size_t batch, size_t jobs, bool group, const char *label)
{
    static const char result_json[] =
            "{\"metrics\":{\"arc\":{\"acc\":0.512,\"acc_norm\":0.55,\"stderr\":0.011}},"
            "\"timings\":{\"calibrate\":1.2,\"quantize\":30.5,\"eval\":12.25},\"peak_mb\":2048,"
            "\"engine\":\"calsweep-engine/0.1.0\",\"host\":\"bench\",\"samples\":[1,5,9,12]}";
    cs_store_metric m[3] = {{"arc", "acc", 0.512, 0.011, 200},
                            {"arc", "acc_norm", 0.55, 0.011, 200},
                            {"ppl:c4", "ppl", 12.5, NAN, 4096}};
    cs_store_claim *held = calloc(batch, sizeof(*held));
    cs_err err = {0};
    char worker[32];
    size_t done = 0;
    int64_t t0, now = cs_time_wall_ms(), dt;

    if (!held) {
        return 1;
    }
    t0 = cs_time_mono_ms();
    while (done < jobs) {
        size_t k = batch < jobs - done ? batch : jobs - done;
        if (group && cs_store_begin(s, &err) != CS_OK) {
            return fail("begin", &err);
        }
        for (size_t i = 0; i < k; i++) {
            cs_store_caps caps = {.worker = worker, .host = "bench", .native = true, .mem_mb = -1};
            snprintf(worker, sizeof(worker), "%s-%zu", label, i);
            if (cs_store_claim_job(s, &caps, 60000, now, &held[i], &err) != CS_OK) {
                return fail("claim", &err);
            }
        }
        for (size_t i = 0; i < k; i++) {
            snprintf(worker, sizeof(worker), "%s-%zu", label, i);
            if (cs_store_heartbeat(s, held[i].job_id, held[i].attempt, worker, held[i].lease_token,
                                   60000, NULL, now, NULL, &err) != CS_OK ||
                cs_store_result(s, held[i].job_id, held[i].attempt, worker, held[i].lease_token,
                                result_json, m, 3, NULL, now, NULL, &err) != CS_OK) {
                return fail("result", &err);
            }
            cs_store_claim_fini(&held[i]);
        }
        if (group && cs_store_commit(s, &err) != CS_OK) {
            return fail("commit", &err);
        }
        done += k;
        now++;
    }
    dt = cs_time_mono_ms() - t0;
    printf("bench: claim_complete_%s %.0f jobs/s (%zu jobs, batch %zu, claim+heartbeat+result "
           "per job, %s)\n",
           label, (double)jobs * 1000.0 / (double)(dt > 0 ? dt : 1), jobs, batch,
           group ? "one transaction per batch" : "one transaction per operation");
    free(held);
    return 0;
}

int main(int argc, char **argv)
{
    const char *dir = argc > 1 ? argv[1] : "/tmp";
    bool insert_only = argc > 2 && strcmp(argv[2], "insert") == 0;
    char path[512];
    cs_store *s = NULL;
    cs_err err = {0};
    int rc;

    snprintf(path, sizeof(path), "%s/cs_store_bench.%ld.sqlite", dir, (long)getpid());
    remove_db(path);
    rc = bench_insert(path, &s);
    if (rc == 0 && insert_only) {
        cs_store_close(s);
        remove_db(path);
        return 0;
    }
    if (rc == 0) {
        /* The store's own memory with 1M queued jobs: reopen, as a restarted coordinator. */
        cs_store_close(s);
        s = NULL;
        malloc_trim(0);
        reset_peaks();
        if (cs_store_open(path, &s, &err) != CS_OK) {
            rc = fail("reopen", &err);
        } else {
            print_mem("reopened_1m_queued");
        }
    }
    if (rc == 0) {
        rc = bench_claim(s, 256, 50000, true, "group256");
    }
    if (rc == 0) {
        rc = bench_claim(s, 64, 20000, true, "group64");
    }
    if (rc == 0) {
        rc = bench_claim(s, 1, 1000, false, "single");
    }
    print_mem("after_claims");
    if (rc == 0) {
        cs_store_counts counts;
        if (cs_store_count(s, 0, &counts, &err) == CS_OK) {
            printf("bench: final_done %zu of %zu\n", counts.n[CS_JOB_DONE], counts.total);
        }
    }
    print_mem("after_count_all");
    printf("bench: peak_rss_end %.1f MB (ru_maxrss; reset with the peaks after the reopen)\n",
           peak_rss_mb());
    cs_store_close(s);
    remove_db(path);
    return rc;
}
