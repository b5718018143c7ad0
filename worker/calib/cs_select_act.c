/* calib: COLA, ACDM and CoverCal (cs_select_act.h). */
#include "cs_select_act.h"

#include <math.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include <cblas.h>

#include "cs_alloc.h"
#include "cs_json.h"
#include "cs_kmeans.h"
#include "cs_rng.h"
#include "cs_select.h"
#include "cs_time.h"

/* ---- COLA ---- */

cs_rc cs_cola_features(const float *mlp_mean, size_t n, size_t L, size_t H, size_t proj_dim,
                       uint64_t seed, float *z, cs_err *err)
{
    if (n == 0 || L == 0 || H == 0 || proj_dim == 0) {
        return cs_err_set(err, CS_EINVAL, 0, "cola: empty features (%zu items, %zu x %zu, %zu)", n,
                          L, H, proj_dim);
    }
    size_t D;
    if (!cs_mul_ok(L, H, &D) || D > (size_t)INT32_MAX || n > (size_t)INT32_MAX ||
        proj_dim > (size_t)INT32_MAX) {
        return cs_err_set(err, CS_ERANGE, 0, "cola: %zu x %zu x %zu features are too many", n, L,
                          H);
    }
    float *v = cs_alloc_array(n, D * sizeof(float));
    float *R = cs_alloc_array(D, proj_dim * sizeof(float));
    if (!v || !R) {
        free(v);
        free(R);
        return cs_err_set(err, CS_ENOMEM, 0, "cola: out of memory for %zu x %zu features", n, D);
    }
    for (size_t i = 0; i < n; i++) {
        for (size_t l = 0; l < L; l++) {
            const float *src = mlp_mean + (i * L + l) * H;
            float *dst = v + i * D + l * H;
            double ss = 0.0;
            for (size_t h = 0; h < H; h++) {
                ss += (double)src[h] * (double)src[h];
            }
            const double inv = 1.0 / (sqrt(ss) + CS_COLA_EPS);
            for (size_t h = 0; h < H; h++) {
                dst[h] = (float)((double)src[h] * inv);
            }
        }
    }
    cs_rng rng;
    cs_rng_seed(&rng, seed ^ CS_COLA_R_SALT);
    const double scale = 1.0 / sqrt((double)proj_dim);
    for (size_t j = 0; j < D * proj_dim; j++) {
        R[j] = (float)(cs_rng_normal(&rng) * scale);
    }
    /* z[n][proj] = v[n][D] R[D][proj] */
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)n, (int)proj_dim, (int)D, 1.0f, v,
                (int)D, R, (int)proj_dim, 0.0f, z, (int)proj_dim);
    free(v);
    free(R);
    return CS_OK;
}

/* ---- ACDM ---- */

void cs_acdm_distances(const float *s, size_t n, const float *mu, size_t T, size_t L, size_t H,
                       double *d)
{
    for (size_t i = 0; i < n; i++) {
        for (size_t t = 0; t < T; t++) {
            double acc = 0.0;
            for (size_t l = 0; l < L; l++) {
                const float *a = s + (i * L + l) * H, *b = mu + (t * L + l) * H;
                double ab = 0.0, aa = 0.0, bb = 0.0;
                for (size_t h = 0; h < H; h++) {
                    ab += (double)a[h] * (double)b[h];
                    aa += (double)a[h] * (double)a[h];
                    bb += (double)b[h] * (double)b[h];
                }
                double cs = aa > 0.0 && bb > 0.0 ? ab / (sqrt(aa) * sqrt(bb)) : 0.0;
                acc += 1.0 - cs;
            }
            d[i * T + t] = acc / (double)L;
        }
    }
}

cs_rc cs_acdm_choose(const double *d, size_t n, size_t T, size_t n_sel, cs_acdm_mode mode,
                     size_t *out, size_t *task, double *score, cs_err *err)
{
    if (T == 0 || n_sel == 0 || n_sel > n) {
        return cs_err_set(err, CS_EINVAL, 0, "acdm: cannot choose %zu of %zu items for %zu tasks",
                          n_sel, n, T);
    }
    if (mode == CS_ACDM_QUOTA) {
        uint8_t *taken = cs_calloc_array(n, 1);
        size_t *left = cs_calloc_array(T, sizeof(size_t));
        if (!taken || !left) {
            free(taken);
            free(left);
            return cs_err_set(err, CS_ENOMEM, 0, "out of memory");
        }
        for (size_t t = 0; t < T; t++) {
            left[t] = n_sel / T + (t < n_sel % T ? 1 : 0);
        }
        size_t k = 0;
        while (k < n_sel) {
            for (size_t t = 0; t < T && k < n_sel; t++) {
                if (left[t] == 0) {
                    continue;
                }
                size_t best = SIZE_MAX;
                for (size_t i = 0; i < n; i++) {
                    if (!taken[i] && (best == SIZE_MAX || d[i * T + t] < d[best * T + t])) {
                        best = i;
                    }
                }
                taken[best] = 1;
                left[t]--;
                out[k] = best;
                task[k] = t;
                if (score) {
                    score[k] = d[best * T + t];
                }
                k++;
            }
        }
        free(taken);
        free(left);
        return CS_OK;
    }
    double *mean = cs_calloc_array(T, sizeof(double)), *sd = cs_calloc_array(T, sizeof(double));
    cs_ranked *r = cs_calloc_array(n, sizeof(cs_ranked));
    if (!mean || !sd || !r) {
        free(mean);
        free(sd);
        free(r);
        return cs_err_set(err, CS_ENOMEM, 0, "out of memory");
    }
    for (size_t t = 0; t < T; t++) {
        for (size_t i = 0; i < n; i++) {
            mean[t] += d[i * T + t];
        }
        mean[t] /= (double)n;
        for (size_t i = 0; i < n; i++) {
            double e = d[i * T + t] - mean[t];
            sd[t] += e * e;
        }
        sd[t] = sqrt(sd[t] / (double)n);
    }
    for (size_t i = 0; i < n; i++) {
        double mx = -INFINITY;
        for (size_t t = 0; t < T; t++) {
            double zt = sd[t] > 0.0 ? (d[i * T + t] - mean[t]) / sd[t] : 0.0;
            mx = zt > mx ? zt : mx;
        }
        r[i] = (cs_ranked){mx, i};
    }
    qsort(r, n, sizeof(*r), cs_ranked_cmp);
    for (size_t k = 0; k < n_sel; k++) {
        size_t i = r[k].idx, near = 0;
        for (size_t t = 1; t < T; t++) {
            near = d[i * T + t] < d[i * T + near] ? t : near;
        }
        out[k] = i;
        task[k] = near;
        if (score) {
            score[k] = r[k].key;
        }
    }
    free(mean);
    free(sd);
    free(r);
    return CS_OK;
}

/* ---- CoverCal ---- */

static int float_cmp(const void *a, const void *b)
{
    float x = *(const float *)a, y = *(const float *)b;
    return x < y ? -1 : x > y;
}

/* M[c] = the largest activation of channel c (of C = L * H) over the n items; w[c] = M[c] / the
 * median of its layer's M where that is above outlier_factor times the median (an outlier
 * channel), 0 elsewhere; n_outliers[l] (when not NULL) counts them per layer. Returns how many
 * there are in all. tmp is scratch of H floats. */
static size_t covercal_weights(const float *a, size_t n, size_t L, size_t H, double outlier_factor,
                               float *M, float *tmp, double *w, size_t *n_outliers)
{
    const size_t C = L * H;
    size_t n_out = 0;
    for (size_t i = 0; i < n; i++) {
        for (size_t c = 0; c < C; c++) {
            M[c] = a[i * C + c] > M[c] ? a[i * C + c] : M[c];
        }
    }
    for (size_t l = 0; l < L; l++) {
        memcpy(tmp, M + l * H, H * sizeof(float));
        qsort(tmp, H, sizeof(float), float_cmp);
        double med = H % 2 ? tmp[H / 2] : 0.5 * ((double)tmp[H / 2 - 1] + (double)tmp[H / 2]);
        size_t k = 0;
        for (size_t h = 0; h < H; h++) {
            double m = M[l * H + h];
            if (med > 0.0 && m > outlier_factor * med) {
                w[l * H + h] = m / med;
                k++;
            }
        }
        if (n_outliers) {
            n_outliers[l] = k;
        }
        n_out += k;
    }
    return n_out;
}

/* Each item's covered outlier channels (its activation >= cover_frac * M[c]) as one list per item:
 * item i's are (*ch)[start[i]..start[i+1]). */
static cs_rc covercal_lists(const float *a, size_t n, size_t C, const float *M, const double *w,
                            size_t n_out, double cover_frac, size_t *start, size_t **ch_out,
                            cs_err *err)
{
    size_t *outl = cs_alloc_array(n_out ? n_out : 1, sizeof(size_t)), *ch = NULL;
    if (!outl) {
        return cs_err_set(err, CS_ENOMEM, 0, "out of memory");
    }
    size_t q = 0;
    for (size_t c = 0; c < C; c++) {
        if (w[c] > 0.0) {
            outl[q++] = c;
        }
    }
    for (size_t pass = 0; pass < 2; pass++) {
        size_t n_ch = 0;
        for (size_t i = 0; i < n; i++) {
            start[i] = n_ch;
            for (size_t j = 0; j < n_out; j++) {
                size_t c = outl[j];
                if ((double)a[i * C + c] >= cover_frac * (double)M[c]) {
                    if (pass == 1) {
                        ch[n_ch] = c;
                    }
                    n_ch++;
                }
            }
        }
        start[n] = n_ch;
        if (pass == 0) {
            ch = cs_alloc_array(n_ch ? n_ch : 1, sizeof(size_t));
            if (!ch) {
                free(outl);
                return cs_err_set(err, CS_ENOMEM, 0, "out of memory");
            }
        }
    }
    free(outl);
    *ch_out = ch;
    return CS_OK;
}

/* The lists and state of the greedy pick (cs_covercal_greedy). */
typedef struct covercal_ws {
    size_t n, C;
    const size_t *start, *ch; /* item i covers ch[start[i]..start[i+1]) */
    const double *w;          /* channel weights */
    const size_t *prio;       /* seeded tie order: lower first */
    uint8_t *cov, *taken;
} covercal_ws;

/* The item not taken with the largest weight of channels it would newly cover (ties by prio);
 * *bg = that weight. */
static size_t covercal_best(const covercal_ws *s, double *bg)
{
    size_t best = SIZE_MAX;
    *bg = 0.0;
    for (size_t i = 0; i < s->n; i++) {
        if (s->taken[i]) {
            continue;
        }
        double g = 0.0;
        for (size_t j = s->start[i]; j < s->start[i + 1]; j++) {
            g += s->cov[s->ch[j]] ? 0.0 : s->w[s->ch[j]];
        }
        if (best == SIZE_MAX || g > *bg || (g == *bg && s->prio[i] < s->prio[best])) {
            best = i;
            *bg = g;
        }
    }
    return best;
}

/* Greedy weighted coverage: n_sel picks into out[] (gains into gain[] when not NULL); when
 * nothing more can be gained, coverage starts over (counted in *n_resets). */
static void covercal_pick(covercal_ws *s, size_t n_sel, size_t *out, double *gain, size_t *n_resets)
{
    size_t n_cov = 0;
    for (size_t k = 0; k < n_sel; k++) {
        size_t best = SIZE_MAX;
        double bg = 0.0;
        for (int attempt = 0; attempt < 2; attempt++) {
            best = covercal_best(s, &bg);
            if (bg > 0.0 || n_cov == 0) {
                break;
            }
            memset(s->cov, 0, s->C); /* everything coverable is covered: start over */
            n_cov = 0;
            (*n_resets)++;
        }
        s->taken[best] = 1;
        out[k] = best;
        if (gain) {
            gain[k] = bg;
        }
        for (size_t j = s->start[best]; j < s->start[best + 1]; j++) {
            n_cov += !s->cov[s->ch[j]];
            s->cov[s->ch[j]] = 1;
        }
    }
}

cs_rc cs_covercal_greedy(const float *a, size_t n, size_t L, size_t H, double outlier_factor,
                         double cover_frac, uint64_t seed, size_t n_sel, size_t *out, double *gain,
                         size_t *n_resets, size_t *n_outliers, cs_err *err)
{
    if (n_sel == 0 || n_sel > n || L == 0 || H == 0) {
        return cs_err_set(err, CS_EINVAL, 0, "covercal: cannot choose %zu of %zu items", n_sel, n);
    }
    if (!(outlier_factor > 0.0) || !(cover_frac > 0.0 && cover_frac <= 1.0)) {
        return cs_err_set(err, CS_EINVAL, 0,
                          "covercal: outlier_factor %g must be > 0 and cover_frac %g in (0, 1]",
                          outlier_factor, cover_frac);
    }
    const size_t C = L * H;
    float *M = cs_calloc_array(C, sizeof(float)), *tmp = cs_alloc_array(H, sizeof(float));
    double *w = cs_calloc_array(C, sizeof(double));
    size_t *ch = NULL, *start = cs_calloc_array(n + 1, sizeof(size_t));
    size_t *prio = cs_alloc_array(n, sizeof(size_t)), *order = cs_alloc_array(n, sizeof(size_t));
    uint8_t *cov = NULL, *taken = cs_calloc_array(n, 1);
    cs_rc rc = CS_OK;
    *n_resets = 0;
    if (!M || !tmp || !w || !start || !prio || !order || !taken) {
        rc = cs_err_set(err, CS_ENOMEM, 0, "out of memory");
        goto cleanup;
    }
    size_t n_out = covercal_weights(a, n, L, H, outlier_factor, M, tmp, w, n_outliers);
    rc = covercal_lists(a, n, C, M, w, n_out, cover_frac, start, &ch, err);
    if (rc != CS_OK) {
        goto cleanup;
    }
    cov = cs_calloc_array(C, 1);
    if (!cov) {
        rc = cs_err_set(err, CS_ENOMEM, 0, "out of memory");
        goto cleanup;
    }
    /* the seeded tie order: prio[i] = rank of item i */
    cs_rng rng;
    cs_rng_seed(&rng, seed);
    for (size_t i = 0; i < n; i++) {
        order[i] = i;
    }
    cs_rng_shuffle(&rng, order, n);
    for (size_t r = 0; r < n; r++) {
        prio[order[r]] = r;
    }
    covercal_ws s = {n, C, start, ch, w, prio, cov, taken};
    covercal_pick(&s, n_sel, out, gain, n_resets);
cleanup:
    free(M);
    free(tmp);
    free(w);
    free(ch);
    free(start);
    free(prio);
    free(order);
    free(cov);
    free(taken);
    return rc;
}

/* ---- the runners (cs_select.h) ---- */

static double secs_since(uint64_t t0)
{
    return (double)(cs_time_mono_ns() - t0) * 1e-9;
}

static cs_rc oom(cs_err *err)
{
    return cs_err_set(err, CS_ENOMEM, 0, "out of memory");
}

static cs_rc times(cs_calib_selection *out, double fwd, double sel, cs_err *err)
{
    if (!cJSON_AddNumberToObject(out->diag, "forward_s", fwd) ||
        !cJSON_AddNumberToObject(out->diag, "select_s", sel)) {
        return oom(err);
    }
    return CS_OK;
}

cs_rc cs_select_cola(const cs_select_params *p, const cs_calib_pool *pool, cs_model *m,
                     cs_pstat_ctx *stats, cs_select_progress progress, void *pctx,
                     cs_calib_selection *out, cs_err *err)
{
    const size_t n = pool->n, k = p->n;
    cs_pstats st = {0};
    cs_km_result km = {0};
    float *z = NULL;
    size_t *mem = NULL;
    double *md = NULL;
    uint64_t t0 = cs_time_mono_ns();
    cs_rc rc = cs_pstat_get(stats, m, pool, CS_PSTAT_BIT(CS_PSTAT_MLP_MEAN), p->batch, progress,
                            pctx, &st, err);
    if (rc != CS_OK) {
        return rc;
    }
    double fwd = secs_since(t0);
    t0 = cs_time_mono_ns();
    z = cs_alloc_array(n, p->proj_dim * sizeof(float));
    mem = cs_alloc_array(k, sizeof(size_t));
    md = cs_alloc_array(k, sizeof(double));
    out->index = cs_alloc_array(k, sizeof(size_t));
    if (!z || !mem || !md || !out->index) {
        rc = oom(err);
        goto cleanup;
    }
    if ((rc = cs_cola_features(st.v[CS_PSTAT_MLP_MEAN], n, st.n_layers, st.hidden, p->proj_dim,
                               p->seed, z, err)) != CS_OK) {
        goto cleanup;
    }
    cs_km_params kp = {
            .k = k, .n_init = p->n_init, .max_iter = p->max_iter, .tol = p->tol, .seed = p->seed};
    if ((rc = cs_km_fit(z, n, p->proj_dim, &kp, &km, err)) != CS_OK) {
        goto cleanup;
    }
    cs_km_nearest_members(z, &km, mem, md);
    size_t w = 0;
    for (size_t c = 0; c < k; c++) {
        if (mem[c] != SIZE_MAX) {
            out->index[w] = mem[c];
            md[w++] = md[c];
        }
    }
    if (w < k) { /* the empty-cluster rule of cs_kmeans.h makes this impossible for n >= k */
        rc = cs_err_set(err, CS_EINTERNAL, 0, "cola: %zu of %zu clusters are empty", k - w, k);
        goto cleanup;
    }
    out->n = k;
    double sel = secs_since(t0);
    if (!cJSON_AddNumberToObject(out->diag, "dim", (double)(st.n_layers * st.hidden)) ||
        !cs_json_add(out->diag, "cluster_sizes", cs_json_size_array(km.size, k)) ||
        !cJSON_AddNumberToObject(out->diag, "inertia", km.inertia) ||
        !cs_json_add(out->diag, "restart_inertia",
                     cs_json_double_array(km.restart_inertia, km.n_init)) ||
        !cs_json_add(out->diag, "restart_iterations",
                     cs_json_size_array(km.restart_iter, km.n_init)) ||
        !cJSON_AddNumberToObject(out->diag, "best_restart", (double)km.best) ||
        !cs_json_add(out->diag, "distances", cs_json_double_array(md, k))) {
        rc = oom(err);
        goto cleanup;
    }
    rc = times(out, fwd, sel, err);
cleanup:
    cs_pstats_fini(&st);
    cs_km_result_fini(&km);
    free(z);
    free(mem);
    free(md);
    return rc;
}

/* A reference item whose tokens equal a pool item's: the reference must be disjoint from P. */
static cs_rc check_disjoint(const cs_calib_pool *pool, const cs_calib_pool *ref, cs_err *err)
{
    for (size_t r = 0; r < ref->n; r++) {
        const cs_calib_item *a = &ref->items[r];
        for (size_t i = 0; i < pool->n; i++) {
            const cs_calib_item *b = &pool->items[i];
            if (a->n_tokens == b->n_tokens &&
                memcmp(a->tokens, b->tokens, a->n_tokens * sizeof(int32_t)) == 0) {
                return cs_err_set(err, CS_EINVAL, 0,
                                  "acdm: reference item '%s' is the pool's candidate '%s' (the "
                                  "reference must be disjoint from the pool)",
                                  a->id, b->id);
            }
        }
    }
    return CS_OK;
}

/* The centroid of each reference task t in mu[t * LH ..]: the mean statistic (sr->v[kind]) of a
 * seeded sample of n_ref of its items; each task's record ("task", "items", "used") goes to refs.
 * idx is scratch of reference->n entries. */
static cs_rc acdm_centroids(const cs_select_params *p, const cs_calib_pool *reference,
                            const cs_pstats *sr, cs_pstat_kind kind, size_t LH, size_t *idx,
                            float *mu, cJSON *refs, cs_err *err)
{
    const size_t T = reference->n_sources;
    double *acc = cs_alloc_array(LH, sizeof(double));
    cs_rc rc = CS_OK;
    if (!acc) {
        return oom(err);
    }
    cs_rng rng;
    cs_rng_seed(&rng, p->seed);
    for (size_t t = 0; t < T && rc == CS_OK; t++) {
        size_t k = 0;
        for (size_t r = 0; r < reference->n; r++) {
            if (reference->items[r].source == t) {
                idx[k++] = r;
            }
        }
        if (k == 0) {
            rc = cs_err_set(err, CS_EINVAL, 0, "acdm: reference task '%s' has no items",
                            reference->sources[t]);
            break;
        }
        cs_rng_shuffle(&rng, idx, k);
        size_t use = p->n_ref < k ? p->n_ref : k;
        memset(acc, 0, LH * sizeof(double));
        cJSON *o = cJSON_CreateObject(), *ids = cJSON_CreateArray();
        bool ok = o && cJSON_AddItemToArray(refs, o);
        if (!ok) {
            cJSON_Delete(o);
        }
        ok = ok && ids && cJSON_AddItemToObject(o, "used", ids);
        if (!ok && o) {
            cJSON_Delete(ids);
        }
        ok = ok && cJSON_AddStringToObject(o, "task", reference->sources[t]) &&
             cJSON_AddNumberToObject(o, "items", (double)k);
        for (size_t u = 0; ok && u < use; u++) {
            const float *v = sr->v[kind] + idx[u] * LH;
            for (size_t j = 0; j < LH; j++) {
                acc[j] += (double)v[j];
            }
            cJSON *s = cJSON_CreateString(reference->items[idx[u]].id);
            ok = s && cJSON_AddItemToArray(ids, s);
            if (!ok) {
                cJSON_Delete(s);
            }
        }
        if (!ok) {
            rc = oom(err);
            break;
        }
        for (size_t j = 0; j < LH; j++) {
            mu[t * LH + j] = (float)(acc[j] / (double)use);
        }
    }
    free(acc);
    return rc;
}

/* ACDM's diagnostics: the task names, each chosen item's distances to the T centroids (d, n x T),
 * the task each was chosen for, the count per task (per, T zeroed entries) and the scores. */
static cs_rc acdm_diag(const cs_select_params *p, const cs_calib_pool *reference, const double *d,
                       const size_t *task, const double *score, size_t *per,
                       cs_calib_selection *out, cs_err *err)
{
    const size_t T = reference->n_sources;
    cJSON *names = cJSON_CreateArray(), *dt = cJSON_CreateArray();
    bool ok = cs_json_add(out->diag, "tasks", names) && cs_json_add(out->diag, "d", dt);
    for (size_t t = 0; ok && t < T; t++) {
        cJSON *s = cJSON_CreateString(reference->sources[t]);
        ok = s && cJSON_AddItemToArray(names, s);
        if (!ok) {
            cJSON_Delete(s);
        }
    }
    for (size_t k = 0; ok && k < p->n; k++) {
        per[task[k]]++;
        cJSON *row = cs_json_double_array(d + out->index[k] * T, T);
        ok = row && cJSON_AddItemToArray(dt, row);
        if (!ok) {
            cJSON_Delete(row);
        }
    }
    if (!ok || !cs_json_add(out->diag, "task_of", cs_json_size_array(task, p->n)) ||
        !cs_json_add(out->diag, "per_task", cs_json_size_array(per, T)) ||
        !cs_json_add(out->diag, "score", cs_json_double_array(score, p->n))) {
        return oom(err);
    }
    return CS_OK;
}

/* ACDM's progress: the reference items' forward passes report as step "reference", so that a
 * watcher tells them from the pool's ("forward"). */
typedef struct ref_progress {
    cs_select_progress fn;
    void *ctx;
} ref_progress;

static void on_ref_progress(void *ctx, const char *stage, size_t done, size_t total)
{
    const ref_progress *r = ctx;
    (void)stage;
    r->fn(r->ctx, "reference", done, total);
}

cs_rc cs_select_acdm(const cs_select_params *p, const cs_calib_pool *pool,
                     const cs_calib_pool *reference, cs_model *m, cs_pstat_ctx *stats,
                     cs_select_progress progress, void *pctx, cs_calib_selection *out, cs_err *err)
{
    const size_t n = pool->n, T = reference->n_sources;
    const cs_pstat_kind kind =
            p->acdm_stat == CS_ACDM_ABSMEAN ? CS_PSTAT_IN_ABSMEAN : CS_PSTAT_IN_MEAN;
    cs_pstats sp = {0}, sr = {0};
    float *mu = NULL;
    double *d = NULL, *score = NULL;
    size_t *task = NULL, *idx = NULL, *per = NULL;
    cJSON *refs = NULL;
    cs_rc rc;
    if (T == 0) {
        return cs_err_set(err, CS_EINVAL, 0, "acdm: no reference tasks");
    }
    if ((rc = check_disjoint(pool, reference, err)) != CS_OK) {
        return rc;
    }
    ref_progress rp = {progress, pctx};
    uint64_t t0 = cs_time_mono_ns();
    if ((rc = cs_pstat_get(stats, m, pool, CS_PSTAT_BIT(kind), p->batch, progress, pctx, &sp,
                           err)) != CS_OK ||
        (rc = cs_pstat_get(stats, m, reference, CS_PSTAT_BIT(kind), p->batch,
                           progress ? on_ref_progress : NULL, &rp, &sr, err)) != CS_OK) {
        goto cleanup;
    }
    double fwd = secs_since(t0);
    t0 = cs_time_mono_ns();
    const size_t L = sp.n_layers, H = sp.hidden, LH = L * H;
    mu = cs_calloc_array(T, LH * sizeof(float));
    d = cs_alloc_array(n, T * sizeof(double));
    score = cs_alloc_array(p->n, sizeof(double));
    task = cs_alloc_array(p->n, sizeof(size_t));
    idx = cs_alloc_array(reference->n, sizeof(size_t));
    per = cs_calloc_array(T, sizeof(size_t));
    out->index = cs_alloc_array(p->n, sizeof(size_t));
    refs = cJSON_CreateArray();
    if (!mu || !d || !score || !task || !idx || !per || !out->index || !refs ||
        !cJSON_AddItemToObject(out->diag, "reference", refs)) {
        if (refs && !cJSON_GetObjectItem(out->diag, "reference")) {
            cJSON_Delete(refs);
        }
        rc = oom(err);
        goto cleanup;
    }
    /* centroids: a seeded sample of n_ref items of each task */
    if ((rc = acdm_centroids(p, reference, &sr, kind, LH, idx, mu, refs, err)) != CS_OK) {
        goto cleanup;
    }
    cs_acdm_distances(sp.v[kind], n, mu, T, L, H, d);
    if ((rc = cs_acdm_choose(d, n, T, p->n, p->acdm_mode, out->index, task, score, err)) != CS_OK) {
        goto cleanup;
    }
    out->n = p->n;
    double sel = secs_since(t0);
    if ((rc = acdm_diag(p, reference, d, task, score, per, out, err)) == CS_OK) {
        rc = times(out, fwd, sel, err);
    }
cleanup:
    cs_pstats_fini(&sp);
    cs_pstats_fini(&sr);
    free(mu);
    free(d);
    free(score);
    free(task);
    free(idx);
    free(per);
    return rc;
}

cs_rc cs_select_covercal(const cs_select_params *p, const cs_calib_pool *pool, cs_model *m,
                         cs_pstat_ctx *stats, cs_select_progress progress, void *pctx,
                         cs_calib_selection *out, cs_err *err)
{
    cs_pstats st = {0};
    double *gain = NULL;
    size_t *nout = NULL, resets = 0;
    uint64_t t0 = cs_time_mono_ns();
    cs_rc rc = cs_pstat_get(stats, m, pool, CS_PSTAT_BIT(CS_PSTAT_IN_ABSMAX), p->batch, progress,
                            pctx, &st, err);
    if (rc != CS_OK) {
        return rc;
    }
    double fwd = secs_since(t0);
    t0 = cs_time_mono_ns();
    gain = cs_alloc_array(p->n, sizeof(double));
    nout = cs_alloc_array(st.n_layers, sizeof(size_t));
    out->index = cs_alloc_array(p->n, sizeof(size_t));
    if (!gain || !nout || !out->index) {
        rc = oom(err);
        goto cleanup;
    }
    if ((rc = cs_covercal_greedy(st.v[CS_PSTAT_IN_ABSMAX], pool->n, st.n_layers, st.hidden,
                                 p->outlier_factor, p->cover_frac, p->seed, p->n, out->index, gain,
                                 &resets, nout, err)) != CS_OK) {
        goto cleanup;
    }
    out->n = p->n;
    double sel = secs_since(t0);
    if (!cs_json_add(out->diag, "outlier_channels", cs_json_size_array(nout, st.n_layers)) ||
        !cs_json_add(out->diag, "gain", cs_json_double_array(gain, p->n)) ||
        !cJSON_AddNumberToObject(out->diag, "resets", (double)resets)) {
        rc = oom(err);
        goto cleanup;
    }
    rc = times(out, fwd, sel, err);
cleanup:
    cs_pstats_fini(&st);
    free(gain);
    free(nout);
    return rc;
}
