/* calib: k-means (Lloyd) with k-means++ seeding and restarts, for COLA's stage 3 (S5).
 *
 * cs_km_fit clusters n points of dim dimensions into k clusters, n_init times from seeds drawn
 * one after another from one cs_rng stream (seeded with params.seed), and keeps the restart with
 * the smallest inertia (the earlier on a tie). One restart:
 *   1. k-means++ seeding: the first center is a uniform point; each next center is point i with
 *      probability D(i)^2 / sum D^2 (D = distance to the nearest center chosen so far; the first i
 *      whose running sum of D^2 exceeds u * sum, u uniform in [0, 1)). When every D is 0 (fewer
 *      distinct points than k), the next center is a uniform point.
 *   2. Up to max_iter Lloyd steps. Assign: each point to its nearest center (squared L2; ties to
 *      the lower cluster index). Empty clusters: each, in index order, takes the point farthest
 *      from its assigned center among the points whose cluster has more than one member (ties to
 *      the lower point index); so when n >= k no cluster is ever empty. Update: each center is the
 *      mean of its members. Stop when the assignment did not change, or when the squared shift
 *      of the centers (sum over clusters) is <= tol * mean per-dimension variance of the data
 *      (population variance; sklearn's rule).
 *   The result's labels are the last assignment and its centers the means of those labels.
 * The assign step's distances come from one BLAS dgemm per step (|x|^2 - 2 x.c + |c|^2, in
 * double). Degenerate input has defined behaviour: k > n, k == 0, dim == 0, n_init == 0 or
 * max_iter == 0 are CS_EINVAL; duplicate points are fine (see above).
 */
#ifndef CS_WORKER_CALIB_CS_KMEANS_H
#define CS_WORKER_CALIB_CS_KMEANS_H

#include <stddef.h>
#include <stdint.h>

#include "cs_err.h"

typedef struct cs_km_params {
    size_t k;        /* clusters */
    size_t n_init;   /* restarts (10) */
    size_t max_iter; /* Lloyd steps per restart (300) */
    double tol;      /* relative tolerance (1e-4) */
    uint64_t seed;
} cs_km_params;

typedef struct cs_km_result {
    size_t n, dim, k, n_init;
    double *centers;         /* [k][dim], owned */
    size_t *label;           /* [n]: cluster of each point */
    size_t *size;            /* [k]: members per cluster */
    double inertia;          /* sum of squared distances to the assigned centers */
    size_t best;             /* the restart kept */
    double *restart_inertia; /* [n_init] */
    size_t *restart_iter;    /* [n_init]: Lloyd steps run */
} cs_km_result;

/* k = 128, n_init 10, max_iter 300, tol 1e-4, seed 0. */
void cs_km_params_default(cs_km_params *p);

/* Clusters x[n][dim] (row-major, borrowed). *out is zeroed first; free with cs_km_result_fini
 * (also after an error). CS_EINVAL for the degenerate parameters above, CS_ENOMEM. */
cs_rc cs_km_fit(const float *x, size_t n, size_t dim, const cs_km_params *p, cs_km_result *out,
                cs_err *err);

/* For each cluster c, the member nearest its center: member[c] (SIZE_MAX for an empty cluster)
 * and dist[c] its squared distance (INFINITY when empty); both [k], required. x is the data
 * cs_km_fit clustered. Ties to the lower point index. */
void cs_km_nearest_members(const float *x, const cs_km_result *r, size_t *member, double *dist);

/* NULL-safe; leaves *r zeroed. */
void cs_km_result_fini(cs_km_result *r);

#endif
