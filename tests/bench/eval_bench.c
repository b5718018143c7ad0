/* eval_bench.c - the multiple-choice evaluation of a testbed model, the shared-context scorer
 * (the default: each item's context once, the options as continuations of its key/value cache)
 * against every option's whole sequence on its own (cs_score_opts.unshared, the scorer before
 * it), side by side: the rounds alternate the two so that a noisy machine slows both alike. Also
 * checks that the two give the same predictions and LLs within 3e-5 of max(1, |LL|), as
 * tests/unit/eval_test.c does. See
 * BENCHMARKS.md
 * "Evaluation".
 *
 * Usage: eval_bench [MODEL [LIMIT [ROUNDS [THREADS]]]] (defaults: tb-llama, 50 items per task as
 * the demo's eval suite, 3 rounds, 2 threads), run from the source root (CS_SOURCE_DIR). */
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

/* Scores every task; *ms the wall time; s[k] each task's score (owned). */
static cs_rc run(cs_model *m, const cs_tok *tok, cs_task *t, bool unshared, cs_score *s, double *ms,
                 cs_err *err)
{
    cs_score_opts o = {.unshared = unshared};
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

int main(int argc, char **argv)
{
    const char *name = argc > 1 ? argv[1] : "tb-llama", *root = getenv("CS_SOURCE_DIR");
    size_t limit = argc > 2 ? strtoul(argv[2], NULL, 10) : 50;
    int rounds = argc > 3 ? (int)strtol(argv[3], NULL, 10) : 3;
    int threads = argc > 4 ? (int)strtol(argv[4], NULL, 10) : 2;
    char path[1024];
    cs_model *m = NULL;
    cs_tok *tok = NULL;
    cs_task t[N_TASKS];
    cs_err err = {0};
    double best[2] = {INFINITY, INFINITY}, worst_ll = 0;
    size_t items = 0, options = 0, differ = 0;
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
    for (int r = 0; r < rounds; r++) {
        cs_score s[2][N_TASKS];
        double ms[2];
        for (int v = 0; v < 2; v++) { /* unshared first in even rounds, shared first in odd */
            int which = (r + v) % 2;
            if (run(m, tok, t, which == 0, s[which], &ms[which], &err) != CS_OK) {
                return die(&err);
            }
            best[which] = fmin(best[which], ms[which]);
        }
        printf("  round %d: unshared %.0f ms, shared %.0f ms (%.2fx)\n", r + 1, ms[0], ms[1],
               ms[0] / ms[1]);
        for (size_t k = 0; k < N_TASKS; k++) {
            for (size_t j = 0; j < s[0][k].n_ll; j++) {
                /* relative to max(1, |LL|), as tests/unit/eval_test.c compares */
                worst_ll = fmax(worst_ll, fabs(s[0][k].ll[j] - s[1][k].ll[j]) /
                                                  fmax(1.0, fabs(s[0][k].ll[j])));
            }
            for (size_t i = 0; i < s[0][k].n; i++) {
                differ += s[0][k].pred[i] != s[1][k].pred[i];
            }
            cs_score_fini(&s[0][k]);
            cs_score_fini(&s[1][k]);
        }
    }
    printf("best: unshared %.0f ms, shared %.0f ms: %.2fx faster; largest LL difference %.2g "
           "(of max(1, |LL|)), "
           "%zu predictions differ\n",
           best[0], best[1], best[0] / best[1], worst_ll, differ);
    for (size_t k = 0; k < N_TASKS; k++) {
        cs_task_fini(&t[k]);
    }
    cs_tok_destroy(tok);
    cs_model_destroy(m);
    return worst_ll <= 3e-5 && differ == 0 ? 0 : 1;
}
