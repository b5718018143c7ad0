/* cs_floor.c - see cs_floor.h. */
#include "cs_floor.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include <cblas.h>

#include "cs_alloc.h"
#include "cs_time.h"

static const char *const stage_names[CS_STAGE_COUNT] = {"embed",   "forward", "statistics", "solve",
                                                        "search",  "clip",    "smoothing",  "rtn",
                                                        "imatrix", "evaluate"};

const char *cs_stage_name(cs_stage s)
{
    return (unsigned)s < CS_STAGE_COUNT ? stage_names[s] : "?";
}

/* Sizes of the peak measurement: products of this order are where OpenBLAS reaches its peak,
 * and a copy this large leaves every cache. */
#define PEAK_N      1024
#define PEAK_DN     1024
#define PEAK_COPY   ((size_t)32 << 20)
#define PEAK_ROUNDS 3

cs_rc cs_peak_measure(cs_peak *p, cs_err *err)
{
    const size_t n = PEAK_N, dn = PEAK_DN;
    float *a = cs_alloc_array(3 * n * n, sizeof(float));
    double *d = cs_alloc_array(3 * dn * dn, sizeof(double));
    char *src = cs_alloc_array(PEAK_COPY, 1), *dst = cs_alloc_array(PEAK_COPY, 1);
    memset(p, 0, sizeof(*p));
    p->threads = openblas_get_num_threads();
    if (!a || !d || !src || !dst) {
        cs_free_each((void *const[]){a, d, src, dst}, 4);
        return cs_err_set(err, CS_ENOMEM, 0, "out of memory for the peak measurement");
    }
    for (size_t i = 0; i < 3 * n * n; i++) {
        a[i] = (float)((i * 7919) % 1000) / 1000.0f - 0.5f;
    }
    for (size_t i = 0; i < 3 * dn * dn; i++) {
        d[i] = (double)((i * 7919) % 1000) / 1000.0 - 0.5;
    }
    memset(src, 1, PEAK_COPY);
    memset(dst, 0, PEAK_COPY); /* fault the pages in before timing */
    for (int r = 0; r < PEAK_ROUNDS; r++) {
        uint64_t t0 = cs_time_mono_ns();
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)n, (int)n, (int)n, 1.0f, a,
                    (int)n, a + n * n, (int)n, 0.0f, a + 2 * n * n, (int)n);
        uint64_t t1 = cs_time_mono_ns();
        cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)dn, (int)dn, (int)dn, 1.0, d,
                    (int)dn, d + dn * dn, (int)dn, 0.0, d + 2 * dn * dn, (int)dn);
        uint64_t t2 = cs_time_mono_ns();
        memcpy(dst, src, PEAK_COPY);
        uint64_t t3 = cs_time_mono_ns();
        double fs = 2.0 * (double)n * (double)n * (double)n / ((double)(t1 - t0 + 1) / 1e9);
        double fd = 2.0 * (double)dn * (double)dn * (double)dn / ((double)(t2 - t1 + 1) / 1e9);
        double bw = 2.0 * (double)PEAK_COPY / ((double)(t3 - t2 + 1) / 1e9);
        p->sgemm = fmax(p->sgemm, fs);
        p->dgemm = fmax(p->dgemm, fd);
        p->copy = fmax(p->copy, bw);
    }
    volatile float sink = a[2 * n * n] + (float)d[2 * dn * dn] + (float)dst[PEAK_COPY - 1];
    (void)sink;
    cs_free_each((void *const[]){a, d, src, dst}, 4);
    return CS_OK;
}

void cs_floor_init(cs_floor *f)
{
    memset(f, 0, sizeof(*f));
    for (int s = 0; s < CS_STAGE_COUNT; s++) {
        f->st[s].seconds = -1;
    }
}

/* The float32 operations of one block's parts over `tokens` tokens with `pairs` causal
 * (query, key) pairs per head. */
typedef struct block_ops {
    double qkv, att, o, gu, down;
    double wbytes; /* the block's weights */
} block_ops;

static block_ops block_terms(const cs_hfconfig *c, double tokens, double pairs)
{
    const double H = (double)c->hidden, qd = (double)(c->n_heads * c->head_dim);
    const double kvd = (double)(c->n_kv_heads * c->head_dim), inter = (double)c->intermediate;
    block_ops b;
    b.qkv = 2.0 * tokens * H * (qd + 2.0 * kvd);
    b.att = 4.0 * pairs * (double)c->head_dim * (double)c->n_heads;
    b.o = 2.0 * tokens * qd * H;
    b.gu = 4.0 * tokens * H * inter;
    b.down = 2.0 * tokens * inter * H;
    b.wbytes = 4.0 * (H * (qd + 2.0 * kvd) + qd * H + 3.0 * H * inter);
    return b;
}

static double block_full(const block_ops *b)
{
    return b->qkv + b->att + b->o + b->gu + b->down;
}

/* Adds `passes` block passes that each stop after `ops` operations to stage s. */
static void add_pass(cs_floor *f, cs_stage s, double ops, double passes, const block_ops *b,
                     double act_bytes)
{
    f->st[s].f32 += ops * passes;
    f->st[s].bytes += (b->wbytes + act_bytes) * passes;
}

void cs_floor_quant(cs_floor *f, const cs_hfconfig *c, const cs_pipe_params *p, size_t n_samples,
                    size_t seq_len)
{
    const double L = (double)c->n_layers, H = (double)c->hidden;
    const double qd = (double)(c->n_heads * c->head_dim), inter = (double)c->intermediate;
    const double N = (double)n_samples * (double)seq_len;
    const double pairs = (double)n_samples * (double)seq_len * ((double)seq_len + 1) / 2;
    const block_ops b = block_terms(c, N, pairs);
    const double full = block_full(&b), act = 8.0 * N * H; /* hidden states read and written */
    const double s1 = b.qkv + b.att, s2 = s1 + b.o, s3 = s2 + b.gu;
    const double ins[4] = {H, qd, H, inter}; /* the inputs of the groups q/k/v, o, gate/up, down */
    const double wparams = b.wbytes / 4.0;

    if (p->algo == CS_PIPE_RTN || (p->algo == CS_PIPE_SMOOTHQUANT && p->sq_rtn)) {
        f->st[CS_STAGE_RTN].bytes += 8.0 * wparams * L;
        if (p->algo == CS_PIPE_SMOOTHQUANT && p->smooth) {
            f->st[CS_STAGE_EMBED].bytes += act;
            add_pass(f, CS_STAGE_SMOOTH, full, L, &b, act);
        }
        return;
    }
    f->st[CS_STAGE_EMBED].bytes += act; /* rows of the embedding read, hidden states written */
    switch (p->algo) {
    case CS_PIPE_GPTQ:
    case CS_PIPE_SMOOTHQUANT:
    case CS_PIPE_SPARSEGPT:
    case CS_PIPE_WANDA: {
        if (p->algo == CS_PIPE_SMOOTHQUANT && p->smooth) {
            add_pass(f, CS_STAGE_SMOOTH, full, L, &b, act); /* the FP trajectory's act_max */
        }
        /* the statistics passes stop at the input of the last group they collect; then one
         * pass gives the next block's input */
        double stats_pass = p->true_sequential ? (0.0 + s1 + s2 + s3) : s3;
        add_pass(f, CS_STAGE_FORWARD, stats_pass + full, L, &b, act);
        for (int g = 0; g < 4; g++) {
            if (p->algo == CS_PIPE_WANDA) { /* per-column sums of squares */
                f->st[CS_STAGE_STATS].f64 += 2.0 * N * ins[g] * L;
            } else { /* X^T X of the group's input, one triangle */
                f->st[CS_STAGE_STATS].f64 += N * ins[g] * (ins[g] + 1) * L;
                f->st[CS_STAGE_SOLVE].f64 += 2.0 / 3.0 * ins[g] * ins[g] * ins[g] * L;
            }
        }
        if (p->algo == CS_PIPE_WANDA) { /* |W| * norm and each row's selection */
            f->st[CS_STAGE_SOLVE].bytes += 8.0 * wparams * L;
        } else { /* each linear's column sweep: rows x in^2 multiply-adds halved */
            const double sweep = (qd + 2.0 * (double)(c->n_kv_heads * c->head_dim)) * H * H +
                                 H * qd * qd + 2.0 * inter * H * H + H * inter * inter;
            f->st[CS_STAGE_SOLVE].f32 += sweep * L;
        }
        break;
    }
    case CS_PIPE_AWQ: {
        const double grid = (double)(p->awq.n_grid ? p->awq.n_grid : 20) + 1.0; /* + reference */
        add_pass(f, CS_STAGE_FORWARD, full, L, &b, act); /* the FP pass: inputs and output */
        double module = (s1 + b.o) + (b.gu + b.down) + b.down;
        if (c->n_kv_heads == c->n_heads) {
            module += b.o; /* v -> o, where v's output is o's input */
        }
        f->st[CS_STAGE_SEARCH].f32 += grid * module * L;
        f->st[CS_STAGE_SEARCH].bytes += grid * b.wbytes * 2.0 * L; /* weights quantized per try */
        if (p->awq_clip) {
            double tok = (double)(p->awq.clip_tokens ? p->awq.clip_tokens : 512);
            double step = floor(N / tok) > 1 ? floor(N / tok) : 1;
            double nc = ceil(N / step), cand = (double)(p->awq.clip_grid ? p->awq.clip_grid : 20);
            cand = floor(cand / 2) + 1; /* the candidates and the unclipped reference */
            /* v, o, gate, up, down: each output once per candidate on nc tokens */
            double w = (double)(c->n_kv_heads * c->head_dim) * H + qd * H + 3.0 * H * inter;
            f->st[CS_STAGE_CLIP].f32 += 2.0 * cand * nc * w * L;
        }
        f->st[CS_STAGE_RTN].bytes += 8.0 * wparams * L;
        break;
    }
    case CS_PIPE_IMATRIX: {
        double chunk = (double)(p->imx_chunk ? p->imx_chunk : 512);
        chunk = chunk < (double)seq_len ? chunk : (double)seq_len;
        const block_ops bc = block_terms(c, N, N * (chunk + 1) / 2);
        add_pass(f, CS_STAGE_FORWARD, block_full(&bc), L, &bc, act);
        for (int g = 0; g < 4; g++) {
            f->st[CS_STAGE_STATS].f64 += 2.0 * N * ins[g] * L;
        }
        f->st[CS_STAGE_IMATRIX].bytes += 8.0 * wparams * L;
        break;
    }
    default:
        break;
    }
}

void cs_floor_eval(cs_floor *f, const cs_hfconfig *c, const cs_fwd_count *n)
{
    const block_ops b = block_terms(c, n->tokens, n->attn_pairs);
    const double H = (double)c->hidden, V = (double)c->vocab;
    f->st[CS_STAGE_EVAL].f32 += block_full(&b) * (double)c->n_layers + 2.0 * n->head_rows * H * V;
}

void cs_floor_set_times(cs_floor *f, const cs_pipe_timing *t)
{
    const double v[] = {t->embed, t->forward, t->stats, t->solve,  t->search,
                        t->clip,  t->smooth,  t->rtn,   t->imatrix};
    for (size_t s = 0; s < sizeof(v) / sizeof(v[0]); s++) {
        const cs_stage_work *w = &f->st[s];
        if (v[s] > 0 || w->f32 > 0 || w->f64 > 0 || w->bytes > 0) {
            f->st[s].seconds = v[s];
        }
    }
}

double cs_floor_seconds(const cs_stage_work *s, const cs_peak *p)
{
    double t = 0;
    if (s->f32 > 0 && p->sgemm > 0) {
        t += s->f32 / p->sgemm;
    }
    if (s->f64 > 0 && p->dgemm > 0) {
        t += s->f64 / p->dgemm;
    }
    if (s->bytes > 0 && p->copy > 0) {
        t = fmax(t, s->bytes / p->copy);
    }
    return t;
}

static bool stage_shown(const cs_stage_work *w)
{
    return w->seconds >= 0 || w->f32 > 0 || w->f64 > 0 || w->bytes > 0;
}

cJSON *cs_floor_json(const cs_floor *f, const cs_peak *p)
{
    cJSON *o = cJSON_CreateObject(), *pk = cJSON_CreateObject(), *arr = cJSON_CreateArray();
    bool ok = o && pk && arr;
    if (ok) {
        cJSON_AddItemToObject(o, "peak", pk);
        cJSON_AddItemToObject(o, "stages", arr);
        ok = cJSON_AddNumberToObject(pk, "sgemm_gflops", p->sgemm / 1e9) &&
             cJSON_AddNumberToObject(pk, "dgemm_gflops", p->dgemm / 1e9) &&
             cJSON_AddNumberToObject(pk, "copy_gbps", p->copy / 1e9) &&
             cJSON_AddNumberToObject(pk, "threads", p->threads);
    } else {
        cJSON_Delete(pk);
        cJSON_Delete(arr);
    }
    for (int s = 0; ok && s < CS_STAGE_COUNT; s++) {
        const cs_stage_work *w = &f->st[s];
        if (!stage_shown(w)) {
            continue;
        }
        double fl = cs_floor_seconds(w, p);
        cJSON *e = cJSON_CreateObject();
        ok = e && cJSON_AddItemToArray(arr, e) &&
             cJSON_AddStringToObject(e, "stage", cs_stage_name((cs_stage)s)) &&
             (w->seconds >= 0 ? cJSON_AddNumberToObject(e, "seconds", w->seconds)
                              : cJSON_AddNullToObject(e, "seconds")) &&
             cJSON_AddNumberToObject(e, "gflop_f32", w->f32 / 1e9) &&
             cJSON_AddNumberToObject(e, "gflop_f64", w->f64 / 1e9) &&
             cJSON_AddNumberToObject(e, "gbytes", w->bytes / 1e9) &&
             cJSON_AddNumberToObject(e, "floor_s", fl) &&
             (fl > 0 && w->seconds >= 0 ? cJSON_AddNumberToObject(e, "ratio", w->seconds / fl)
                                        : cJSON_AddNullToObject(e, "ratio"));
    }
    if (!ok) {
        cJSON_Delete(o);
        return NULL;
    }
    return o;
}

void cs_floor_print(FILE *out, const cs_floor *f, const cs_peak *p)
{
    fprintf(out,
            "profile: %d threads; peaks measured here: sgemm %.1f GFLOP/s, dgemm %.1f GFLOP/s, "
            "copy %.1f GB/s\n",
            p->threads, p->sgemm / 1e9, p->dgemm / 1e9, p->copy / 1e9);
    fprintf(out, "  %-10s %10s %12s %12s %9s %10s %8s\n", "stage", "seconds", "GFLOP f32",
            "GFLOP f64", "GB", "floor s", "ratio");
    for (int s = 0; s < CS_STAGE_COUNT; s++) {
        const cs_stage_work *w = &f->st[s];
        if (!stage_shown(w)) {
            continue;
        }
        double fl = cs_floor_seconds(w, p);
        char sec[32] = "-", ratio[32] = "-";
        if (w->seconds >= 0) {
            snprintf(sec, sizeof sec, "%.3f", w->seconds);
        }
        if (w->seconds >= 0 && fl > 0) {
            snprintf(ratio, sizeof ratio, "%.2fx", w->seconds / fl);
        }
        fprintf(out, "  %-10s %10s %12.2f %12.2f %9.3f %10.4f %8s\n", cs_stage_name((cs_stage)s),
                sec, w->f32 / 1e9, w->f64 / 1e9, w->bytes / 1e9, fl, ratio);
    }
}
