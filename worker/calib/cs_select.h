/* calib: the calibration-data selectors (docs/specs/selectors-and-metrics.md S1-S8).
 *
 * Every selector is deterministic for a given seed and reports its choice as a
 * cs_calib_selection: indices into the pool (random, zipcal, ppl_rank, cola, acdm, covercal) or
 * generated sequences (self_calibration, self_gen), and diagnostics (cs_calib_selection.diag, a
 * JSON object with at least "selector", the parameters, "forward_s" and "select_s"; the selectors
 * that read pool statistics add "stats": where each statistic came from and how many forward
 * passes, items and tokens this run cost).
 *
 * - random (S1): n distinct indices drawn uniformly; stratified: n split evenly over the pool's
 *   sources (remainder to the first), drawn within each source.
 * - self_calibration (S2): each sequence starts with BOS alone; step i samples at t_i = t_init + (i
 * / n_sched)(t_final - t_init) for i <= n_sched, then t_final (t = 0: argmax); on EOS, BOS is
 *   appended and a fresh generation starts (the key/value cache is reset, i restarts at 0) until
 *   the sequence has exactly seq_len tokens. Ids "gen:<k>".
 * - self_gen (S3): prefix_texts pool items (a seeded shuffle) give prefixes of prefix_tokens text
 *   tokens (after
 *   BOS, which is kept when the item starts with it); each is continued up to seq_len tokens in all
 *   with temperature / top-k / top-p / repetition penalty, stopping at EOS; generations whose
 *   perplexity is >= the ppl_quantile quantile (linear interpolation, numpy's default) are dropped;
 *   n survivors are drawn at random. Ids "gen:<k>", diag records each one's prefix item and ppl.
 * - zipcal (S4): each token id maps to its decoded piece, lowercased, with spaces and BPE space
 *   marks stripped (special tokens and empty strings skipped); greedy max coverage of these
 *   strings over the items: each step searches all remaining items, or a random `search_limit` of
 * them when more remain, and picks the largest |C_i \ covered|, ties to the larger |C_i|, then the
 * lower index. With several sources: n per source, then k-center greedy (first center the first
 *   chosen item, squared L2) on mean input embeddings down to n.
 * - ppl_rank (S7): the mean next-token NLL of each item under the model (cs_pstat.h "nll"); mode
 * low keeps the n lowest, high the n highest, mid the n nearest the median (ties to the lower
 * index).
 * - cola (S5), acdm (S6), covercal (S8): cs_select_act.h. ACDM needs the reference items of its
 *   tasks (cs_select_env.reference: one pool source per task, every item of the task's reference
 *   file); from each task it uses n_ref of them (a seeded sample; all when fewer), refuses a
 *   reference item whose tokens equal a pool item's, and records the ids it used.
 * The pool statistics (ppl_rank, cola, acdm, covercal) come from cs_pstat_get with the context of
 * cs_select_env.stats (the worker's cache), so a second selection on the same model and pool
 * costs no forward pass. ACDM, CoverCal and ppl_rank depend on the seed through the pool (and ACDM
 * through its reference sample, CoverCal through its tie order); COLA through its projection and
 * k-means.
 */
#ifndef CS_WORKER_CALIB_CS_SELECT_H
#define CS_WORKER_CALIB_CS_SELECT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <cjson/cJSON.h>

#include "cs_calib.h"
#include "cs_err.h"
#include "cs_methods.h"
#include "cs_model.h"
#include "cs_pstat.h"
#include "cs_select_act.h"
#include "cs_tok.h"

/* cs_sel_kind, cs_ppl_mode and cs_select_params (every parameter of S1-S8 with the spec's
 * default) are defined with the table of selectors in common/cs_methods.h. */

/* The selector's name in the table: "random", "self_calibration", "self_gen", "zipcal",
 * "ppl_rank", "cola", "acdm", "covercal". */
const char *cs_select_name(cs_sel_kind k);

/* The spec's defaults for selector kind (n 128, seed 0; zipcal's L = 128 is the pool's seq_len). */
void cs_select_params_default(cs_select_params *p, cs_sel_kind kind);

/* Parses a selector value (a name, or {"name": "zipcal", "search_limit": 500, ...}) found at path
 * (for errors, e.g. "calibration.selector") with the table (cs_method_resolve; engine: also the
 * engine-only "batch"): the first problem is CS_ESCHEMA naming "<path>.<key>", as the sweep
 * validator words it. p->n, p->seed and p->seq_len are kept (the job's, or the command's). */
cs_rc cs_select_params_parse(const cJSON *obj, const char *path, bool engine, cs_select_params *p,
                             cs_err *err);

/* Same from a bare name ("zipcal") or JSON text ("{\"name\":\"zipcal\",\"search_limit\":16}"),
 * engine-only parameters allowed. */
cs_rc cs_select_params_parse_str(const char *s, cs_select_params *p, cs_err *err);

/* The parameters as JSON (every key, for result.json); NULL on no memory. */
cJSON *cs_select_params_json(const cs_select_params *p);

/* Progress callback: done of total units (items scored, sequences generated). */
typedef void (*cs_select_progress)(void *ctx, const char *stage, size_t done, size_t total);

/* What a selector may need beyond the pool; every pointer borrowed, each may be NULL. */
typedef struct cs_select_env {
    const cs_calib_pool *reference; /* acdm: the reference items, one source per task */
    cs_pstat_ctx *stats;            /* pool statistics: cache and counters (NULL: no cache) */
} cs_select_env;

/* Runs selector p->kind. m and tok may be NULL for random and single-source zipcal (tok is
 * needed by zipcal; m by every other one except random). *out is zeroed first; free with
 * cs_calib_selection_fini. CS_EINVAL when the pool has fewer than n items (or a stratum fewer
 * than its share), and for acdm without reference items or with a reference item equal to a
 * pool item. env may be NULL. */
cs_rc cs_select_run_env(const cs_select_params *p, const cs_calib_pool *pool, cs_model *m,
                        const cs_tok *tok, const cs_select_env *env, cs_select_progress progress,
                        void *pctx, cs_calib_selection *out, cs_err *err);

/* cs_select_run_env without an environment (no cache; acdm cannot run). */
cs_rc cs_select_run(const cs_select_params *p, const cs_calib_pool *pool, cs_model *m,
                    const cs_tok *tok, cs_select_progress progress, void *pctx,
                    cs_calib_selection *out, cs_err *err);

/* ZipCal's greedy rule on explicit sets (exposed for tests): sets[i][0..set_n[i]) are sorted,
 * distinct class ids below n_classes. Picks n of the n_items (n <= n_items) into out[0..n); gain
 * (NULL or [n]) receives each pick's new coverage. Uses rng only when more than cap remain. */
cs_rc cs_zipcal_greedy(const uint32_t *const *sets, const size_t *set_n, size_t n_items,
                       size_t n_classes, size_t n, size_t cap, uint64_t seed, size_t *out,
                       size_t *gain, cs_err *err);

/* k-center greedy (first center = row 0, squared L2) on x[n_rows][dim]: k row indices into out. */
cs_rc cs_kcenter_greedy(const float *x, size_t n_rows, size_t dim, size_t k, size_t *out,
                        cs_err *err);

/* The activation selectors' runners (cs_select_act.c), called by cs_select_run_env with a
 * diagnostics object already holding "selector" and "params"; stats is never NULL. */
cs_rc cs_select_cola(const cs_select_params *p, const cs_calib_pool *pool, cs_model *m,
                     cs_pstat_ctx *stats, cs_select_progress progress, void *pctx,
                     cs_calib_selection *out, cs_err *err);
cs_rc cs_select_acdm(const cs_select_params *p, const cs_calib_pool *pool,
                     const cs_calib_pool *reference, cs_model *m, cs_pstat_ctx *stats,
                     cs_select_progress progress, void *pctx, cs_calib_selection *out, cs_err *err);
cs_rc cs_select_covercal(const cs_select_params *p, const cs_calib_pool *pool, cs_model *m,
                         cs_pstat_ctx *stats, cs_select_progress progress, void *pctx,
                         cs_calib_selection *out, cs_err *err);

/* A score and the candidate it belongs to; cs_ranked_cmp (for qsort) orders by key, then by
 * index, so ties rank the same way on every machine. Shared by the selectors that rank. */
typedef struct cs_ranked {
    double key;
    size_t idx;
} cs_ranked;

int cs_ranked_cmp(const void *a, const void *b);

#endif
