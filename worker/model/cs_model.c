/* cs_model.c - loading weights; see cs_model.h. */
#include "cs_model.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cs_alloc.h"
#include "cs_safetensors.h"

typedef struct model_priv {
    cs_st *st;
    float **owned;
    size_t n_owned, cap_owned;
    bool uses_map;
} model_priv;

static const char *const lin_names[CS_LIN_COUNT] = {"q_proj",    "k_proj",  "v_proj",   "o_proj",
                                                    "gate_proj", "up_proj", "down_proj"};

const char *cs_lin_name(cs_lin l)
{
    return (unsigned)l < CS_LIN_COUNT ? lin_names[l] : "?";
}

static cs_rc own(model_priv *p, float *buf, cs_err *err)
{
    if (p->n_owned == p->cap_owned) {
        size_t nc = p->cap_owned ? 2 * p->cap_owned : 64;
        float **g = cs_realloc_array(p->owned, nc, sizeof(*g));
        if (!g) {
            free(buf);
            return cs_err_set(err, CS_ENOMEM, 0, "out of memory");
        }
        p->owned = g;
        p->cap_owned = nc;
    }
    p->owned[p->n_owned++] = buf;
    return CS_OK;
}

/* Gets tensor name with shape [d0] or [d0][d1] (d1 == 0: 1-D) as f32. */
static cs_rc get_tensor(cs_model *m, const char *dir, const char *name, size_t d0, size_t d1,
                        float **out, cs_err *err)
{
    model_priv *p = m->priv;
    const cs_st_tensor *t = cs_st_find(p->st, name);
    *out = NULL;
    if (!t) {
        return cs_err_set(err, CS_ENOENT, 0, "%s: missing tensor %s", dir, name);
    }
    int nd = d1 ? 2 : 1;
    if (t->ndim != nd || (size_t)t->shape[0] != d0 || (nd == 2 && (size_t)t->shape[1] != d1)) {
        char got[96] = "";
        size_t o = 0;
        for (int i = 0; i < t->ndim && o < sizeof(got) - 24; i++) {
            o += (size_t)snprintf(got + o, sizeof(got) - o, "%s%lld", i ? ", " : "",
                                  (long long)t->shape[i]);
        }
        if (nd == 2) {
            return cs_err_set(err, CS_EPARSE, 0,
                              "%s: tensor %s has shape [%s] but config.json implies [%zu, %zu]",
                              dir, name, got, d0, d1);
        }
        return cs_err_set(err, CS_EPARSE, 0,
                          "%s: tensor %s has shape [%s] but config.json implies [%zu]", dir, name,
                          got, d0);
    }
    if (t->dtype != CS_ST_F32 && t->dtype != CS_ST_F16 && t->dtype != CS_ST_BF16) {
        return cs_err_set(err, CS_ENOTSUP, 0,
                          "%s: tensor %s has dtype %s (supported: F32, F16, BF16)", dir, name,
                          cs_st_dtype_name(t->dtype));
    }
    if (t->dtype == CS_ST_F32 && ((uintptr_t)t->data % sizeof(float)) == 0) {
        *out = (float *)(uintptr_t)t->data; /* private writable mapping */
        p->uses_map = true;
        return CS_OK;
    }
    float *buf = cs_alloc_array(t->numel ? t->numel : 1, sizeof(float));
    if (!buf) {
        return cs_err_set(err, CS_ENOMEM, 0, "%s: out of memory for %s", dir, name);
    }
    cs_rc rc = cs_st_to_f32(t, buf, err);
    if (rc != CS_OK) {
        free(buf);
        return rc;
    }
    cs_st_drop(p->st, t); /* converted: its pages of the file are not needed any more */
    rc = own(p, buf, err);
    if (rc == CS_OK) {
        *out = buf;
    }
    return rc;
}

static void rope_inv_freq(const cs_hfconfig *c, float *inv)
{
    size_t half = c->head_dim / 2;
    for (size_t i = 0; i < half; i++) {
        float e = (float)(2 * i) / (float)c->head_dim;
        float f = 1.0f / powf((float)c->rope_theta, e);
        if (c->rope_llama3) {
            double lowf = c->rope_low_freq_factor, highf = c->rope_high_freq_factor;
            double old = (double)c->rope_orig_max_pos;
            double low_wl = old / lowf, high_wl = old / highf;
            double wl = 2.0 * M_PI / (double)f;
            double g = f;
            if (wl > low_wl) {
                g = f / c->rope_factor;
            } else if (wl >= high_wl) {
                double s = (old / wl - lowf) / (highf - lowf);
                g = (1.0 - s) * f / c->rope_factor + s * f;
            }
            f = (float)g;
        }
        inv[i] = f;
    }
}

cs_rc cs_model_load(cs_model **out, const char *dir, int n_threads, cs_err *err)
{
    cs_rc rc;
    char name[256];
    *out = NULL;
    cs_model *m = calloc(1, sizeof(*m));
    model_priv *p = calloc(1, sizeof(*p));
    if (!m || !p) {
        free(m);
        free(p);
        return cs_err_set(err, CS_ENOMEM, 0, "out of memory");
    }
    m->priv = p;
    m->n_threads = n_threads < 1 ? 1 : n_threads;
    rc = cs_hfconfig_load(&m->cfg, dir, err);
    if (rc != CS_OK) {
        goto cleanup;
    }
    const cs_hfconfig *c = &m->cfg;
    rc = cs_st_open_dir(&p->st, dir, err);
    if (rc != CS_OK) {
        goto cleanup;
    }
    m->layers = cs_calloc_array(c->n_layers, sizeof(*m->layers));
    m->inv_freq = cs_alloc_array(c->head_dim / 2, sizeof(float));
    if (!m->layers || !m->inv_freq) {
        rc = cs_err_set(err, CS_ENOMEM, 0, "out of memory");
        goto cleanup;
    }
    rope_inv_freq(c, m->inv_freq);
    size_t H = c->hidden, qd = c->n_heads * c->head_dim, kvd = c->n_kv_heads * c->head_dim;
    size_t ni = c->intermediate;
    rc = get_tensor(m, dir, "model.embed_tokens.weight", c->vocab, H, &m->embed, err);
    if (rc != CS_OK) {
        goto cleanup;
    }
    rc = get_tensor(m, dir, "model.norm.weight", H, 0, &m->final_norm, err);
    if (rc != CS_OK) {
        goto cleanup;
    }
    m->lm_head.out = c->vocab;
    m->lm_head.in = H;
    if (c->tie_embeddings) {
        m->lm_head.w = m->embed;
    } else {
        rc = get_tensor(m, dir, "lm_head.weight", c->vocab, H, &m->lm_head.w, err);
        if (rc != CS_OK) {
            goto cleanup;
        }
    }
    const size_t dims[CS_LIN_COUNT][2] = {{qd, H}, {kvd, H}, {kvd, H}, {H, qd},
                                          {ni, H}, {ni, H},  {H, ni}};
    for (size_t l = 0; l < c->n_layers; l++) {
        cs_layer *L = &m->layers[l];
        snprintf(name, sizeof(name), "model.layers.%zu.input_layernorm.weight", l);
        rc = get_tensor(m, dir, name, H, 0, &L->attn_norm, err);
        if (rc != CS_OK) {
            goto cleanup;
        }
        snprintf(name, sizeof(name), "model.layers.%zu.post_attention_layernorm.weight", l);
        rc = get_tensor(m, dir, name, H, 0, &L->mlp_norm, err);
        if (rc != CS_OK) {
            goto cleanup;
        }
        for (int k = 0; k < CS_LIN_COUNT; k++) {
            const char *part = k < CS_LIN_GATE ? "self_attn" : "mlp";
            cs_linear *lin = &L->lin[k];
            lin->out = dims[k][0];
            lin->in = dims[k][1];
            snprintf(name, sizeof(name), "model.layers.%zu.%s.%s.weight", l, part, lin_names[k]);
            rc = get_tensor(m, dir, name, lin->out, lin->in, &lin->w, err);
            if (rc != CS_OK) {
                goto cleanup;
            }
            if (c->attn_bias && k <= CS_LIN_V) {
                snprintf(name, sizeof(name), "model.layers.%zu.%s.%s.bias", l, part, lin_names[k]);
                rc = get_tensor(m, dir, name, lin->out, 0, &lin->b, err);
                if (rc != CS_OK) {
                    goto cleanup;
                }
            }
        }
    }
    if (!p->uses_map) {
        cs_st_unmap(p->st);
    }
    *out = m;
    m = NULL;
cleanup:
    cs_model_destroy(m);
    return rc;
}

void cs_model_destroy(cs_model *m)
{
    if (!m) {
        return;
    }
    model_priv *p = m->priv;
    cs_model_release_workspace(m);
    if (p) {
        for (size_t i = 0; i < p->n_owned; i++) {
            free(p->owned[i]);
        }
        free(p->owned);
        cs_st_close(p->st);
        free(p);
    }
    free(m->layers);
    free(m->inv_freq);
    free(m);
}

cs_linear *cs_model_linear(cs_model *m, size_t layer, cs_lin lin)
{
    if (layer >= m->cfg.n_layers || (unsigned)lin >= CS_LIN_COUNT) {
        return NULL;
    }
    return &m->layers[layer].lin[lin];
}

size_t cs_model_params(const cs_model *m)
{
    const cs_hfconfig *c = &m->cfg;
    size_t n = c->vocab * c->hidden * (c->tie_embeddings ? 1 : 2) + c->hidden;
    for (size_t l = 0; l < c->n_layers; l++) {
        n += 2 * c->hidden;
        for (int k = 0; k < CS_LIN_COUNT; k++) {
            const cs_linear *lin = &m->layers[l].lin[k];
            n += lin->out * lin->in + (lin->b ? lin->out : 0);
        }
    }
    return n;
}

size_t cs_model_weight_bytes(const cs_model *m)
{
    return cs_model_params(m) * sizeof(float);
}
