/* eval_bench.c - the multiple-choice evaluation of a testbed model by the scorer's three paths,
 * side by side: every option's whole sequence on its own (cs_score_opts.unshared, the scorer
 * before the shared context), each item's context once with its options as continuations of the
 * cached context (items_per_pass = 1), and that for ITEMS_PER_PASS items per pair of passes (the
 * default, 16). Each round runs every path, starting with another one, so that a noisy machine
 * slows all alike. Also checks that the two shared paths give the whole-sequence path's
 * predictions and LLs within 3e-5 of max(1, |LL|). See BENCHMARKS.md "Evaluation".
 *
 * Usage: eval_bench [MODEL [LIMIT [ROUNDS [THREADS [ITEMS_PER_PASS]]]]] (defaults: tb-llama, 50
 * items per task as the demo's eval suite, 3 rounds, 2 threads, 16), run from the source root
 * (CS_SOURCE_DIR). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cblas.h>

#include "cs_model.h"
#include "cs_score.h"
#include "cs_task.h"
#include "cs_time.h"
#include "cs_tok.h"

static const char *const TASKS[] = {"arith_mc", "code_mc", "facts_mc", "prose_cause", "prose_work"};
#define N_TASKS (sizeof(TASKS) / sizeof(*TASKS))

static int die(const cs_err *err)
{
    fprintf(stderr, "eval_bench: %s\n", err->msg);
    return 1;
}

/* The scorers compared: the whole-sequence path (before), the shared context one item per pass,
 * the shared context with items batched (the default). */
#define N_WAYS 3
static const char *const WAYS[N_WAYS] = {"whole sequences", "shared, 1 item/pass",
                                         "shared, batched"};

/* Scores every task the way `way` says; *ms the wall time; s[k] each task's score (owned). */
static cs_rc run(cs_model *m, const cs_tok *tok, cs_task *t, int way, size_t per_pass, cs_score *s,
                 double *ms, cs_err *err)
{
    cs_score_opts o = {.unshared = way == 0, .items_per_pass = way == 1 ? 1 : per_pass};
    uint64_t t0 = cs_time_mono_ns();
    for (size_t k = 0; k < N_TASKS; k++) {
        cs_rc rc = cs_score_task(m, tok, &t[k], &o, &s[k], err);
        if (rc != CS_OK) {
            return rc;
        }
    }
    *ms = (double)(cs_time_mono_ns() - t0) / 1e6;
    return CS_OK;
}

/* The largest difference of an LL of a from b's, relative to max(1, |LL|) as
 * tests/unit/eval_test.c compares; *differ += the predictions that differ. */
static double ll_diff(const cs_score *a, const cs_score *b, size_t *differ)
{
    double worst = 0;
    for (size_t k = 0; k < N_TASKS; k++) {
        for (size_t j = 0; j < a[k].n_ll; j++) {
            worst = fmax(worst, fabs(a[k].ll[j] - b[k].ll[j]) / fmax(1.0, fabs(b[k].ll[j])));
        }
        for (size_t i = 0; i < a[k].n; i++) {
            *differ += a[k].pred[i] != b[k].pred[i];
        }
    }
    return worst;
}

int main(int argc, char **argv)
{
    const char *name = argc > 1 ? argv[1] : "tb-llama", *root = getenv("CS_SOURCE_DIR");
    size_t limit = argc > 2 ? strtoul(argv[2], NULL, 10) : 50;
    int rounds = argc > 3 ? (int)strtol(argv[3], NULL, 10) : 3;
    int threads = argc > 4 ? (int)strtol(argv[4], NULL, 10) : 2;
    size_t per_pass = argc > 5 ? strtoul(argv[5], NULL, 10) : 0;
    char path[1024];
    cs_model *m = NULL;
    cs_tok *tok = NULL;
    cs_task t[N_TASKS];
    cs_err err = {0};
    double best[N_WAYS], worst[N_WAYS] = {0};
    size_t items = 0, options = 0, differ[N_WAYS] = {0};
    root = root ? root : ".";
    openblas_set_num_threads(threads); /* as calsweep-run --threads does */
    snprintf(path, sizeof path, "%s/sweeps/testbed/models/%s", root, name);
    if (cs_model_load(&m, path, threads, &err) != CS_OK) {
        return die(&err);
    }
    snprintf(path, sizeof path, "%s/sweeps/testbed/models/%s/tokenizer.json", root, name);
    if (cs_tok_load(&tok, path, &err) != CS_OK) {
        return die(&err);
    }
    for (size_t k = 0; k < N_TASKS; k++) {
        snprintf(path, sizeof path, "%s/sweeps/testbed/data/tasks/%s.eval.jsonl", root, TASKS[k]);
        if (cs_task_load(&t[k], path, 0, &err) != CS_OK) {
            return die(&err);
        }
        cs_task_truncate(&t[k], limit);
        items += t[k].n;
        for (size_t i = 0; i < t[k].n; i++) {
            options += t[k].items[i].n_options;
        }
    }
    printf("eval_bench: %s, %zu tasks, %zu items, %zu options, %d threads, %d rounds\n", name,
           N_TASKS, items, options, threads, rounds);
    for (int w = 0; w < N_WAYS; w++) {
        best[w] = INFINITY;
    }
    for (int r = 0; r < rounds; r++) {
        cs_score s[N_WAYS][N_TASKS];
        double ms[N_WAYS];
        for (int v = 0; v < N_WAYS; v++) { /* each round starts with another way */
            int w = (r + v) % N_WAYS;
            if (run(m, tok, t, w, per_pass, s[w], &ms[w], &err) != CS_OK) {
                return die(&err);
            }
            best[w] = fmin(best[w], ms[w]);
        }
        printf("  round %d:", r + 1);
        for (int w = 0; w < N_WAYS; w++) {
            printf(" %s %.0f ms%s", WAYS[w], ms[w], w + 1 < N_WAYS ? "," : "\n");
        }
        for (int w = 1; w < N_WAYS; w++) {
            worst[w] = fmax(worst[w], ll_diff(s[w], s[0], &differ[w]));
        }
        for (int w = 0; w < N_WAYS; w++) {
            for (size_t k = 0; k < N_TASKS; k++) {
                cs_score_fini(&s[w][k]);
            }
        }
    }
    for (int w = 0; w < N_WAYS; w++) {
        printf("best: %-20s %6.0f ms  %5.2fx", WAYS[w], best[w], best[0] / best[w]);
        if (w > 0) {
            printf("  largest LL difference %.2g of max(1, |LL|), %zu predictions differ", worst[w],
                   differ[w]);
        }
        printf("\n");
    }
    for (size_t k = 0; k < N_TASKS; k++) {
        cs_task_fini(&t[k]);
    }
    cs_tok_destroy(tok);
    cs_model_destroy(m);
    return worst[1] <= 3e-5 && worst[2] <= 3e-5 && differ[1] + differ[2] == 0 ? 0 : 1;
}
