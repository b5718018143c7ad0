/* calib: the activation-based selectors COLA (S5), ACDM (S6) and CoverCal (S8), split into the
 * statistics (cs_pstat.h: one forward pass, cached) and the selection on explicit statistics
 * (these functions, exposed for tests and benchmarks; pure: no I/O, no model).
 *
 * COLA stage 3: v_l = the item's mlp_mean at layer l, divided by (|v_l| + 1e-8), concatenated over
 * layers (D = n_layers * hidden); z = v R / sqrt(proj_dim), R[D][proj_dim] i.i.d. N(0, 1) drawn
 * row by row from cs_rng seeded with seed ^ CS_COLA_R_SALT; k-means (cs_kmeans.h) with k = n on z
 * (seeded with seed); the member nearest each cluster's center, in cluster order.
 *
 * ACDM: s_l(x) = in_mean or in_absmean (cs_pstat.h) of item x; centroid mu_{t,l} = mean of s_l
 * over the reference sample R_t of task t; d_t(x) = mean over l of (1 - cos(s_l(x), mu_{t,l}))
 * (cos = 0 when either vector is zero). Quota mode: task t gets floor(n/T) slots plus one for the
 * first n mod T tasks; tasks take turns in task order, each taking its nearest unselected item
 * (ties to the lower index) until its slots are used. Minimax mode: z_t = (d_t - mean_P d_t) /
 * std_P d_t (population std; z = 0 when std = 0); the n items with the smallest max_t z_t (ties
 * to the lower index), each attributed to its nearest task.
 *
 * CoverCal: a[i][l][h] = in_absmax; M = max over the pool per (l, h); med_l = median of M over
 * the channels of layer l (the mean of the two middle values for an even count). Channel (l, h)
 * is an outlier when med_l > 0 and M > outlier_factor * med_l; its weight is M / med_l. Item i
 * covers an outlier channel when a[i][l][h] >= cover_frac * M. Greedy: add the unselected item
 * whose covered, not yet covered outlier channels weigh the most; ties go to the item first in a
 * seeded random order (cs_rng_shuffle of 0..n-1 under seed). When no unselected item adds weight
 * and something is covered, coverage resets to nothing (a reset) and the step repeats; when still
 * none adds weight (nothing left covers an outlier), the tie rule alone decides.
 */
#ifndef CS_WORKER_CALIB_CS_SELECT_ACT_H
#define CS_WORKER_CALIB_CS_SELECT_ACT_H

#include <stddef.h>
#include <stdint.h>

#include "cs_err.h"
#include "cs_methods.h"

#define CS_COLA_EPS    1e-8
#define CS_COLA_R_SALT UINT64_C(0xc01a5eedc01a5eed)

/* cs_acdm_stat and cs_acdm_mode: common/cs_methods.h (the table of selector parameters). */

/* z[n][proj_dim] from mlp_mean[n][L][H] as above. CS_EINVAL for zero sizes, CS_ENOMEM. */
cs_rc cs_cola_features(const float *mlp_mean, size_t n, size_t L, size_t H, size_t proj_dim,
                       uint64_t seed, float *z, cs_err *err);

/* d[n][T] as above, from s[n][L][H] and mu[T][L][H]. */
void cs_acdm_distances(const float *s, size_t n, const float *mu, size_t T, size_t L, size_t H,
                       double *d);

/* Chooses n_sel of the n items by d[n][T] in `mode`: out[n_sel] item indices in pick order,
 * task[n_sel] the task each pick is attributed to (quota: whose turn; minimax: the nearest),
 * score (NULL or [n_sel]): quota d_task(item), minimax max_t z_t(item). CS_EINVAL when n_sel > n,
 * T == 0 or n_sel == 0; CS_ENOMEM. */
cs_rc cs_acdm_choose(const double *d, size_t n, size_t T, size_t n_sel, cs_acdm_mode mode,
                     size_t *out, size_t *task, double *score, cs_err *err);

/* CoverCal's greedy cover on a[n][L][H]: out[n_sel] in pick order, gain (NULL or [n_sel]) the
 * weight each pick added, *n_resets, and n_outliers (NULL or [L]) outlier channels per layer.
 * CS_EINVAL when n_sel > n or n_sel == 0 or a parameter is out of range (outlier_factor <= 0,
 * cover_frac not in (0, 1]); CS_ENOMEM. */
cs_rc cs_covercal_greedy(const float *a, size_t n, size_t L, size_t H, double outlier_factor,
                         double cover_frac, uint64_t seed, size_t n_sel, size_t *out, double *gain,
                         size_t *n_resets, size_t *n_outliers, cs_err *err);

#endif
