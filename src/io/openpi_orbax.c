/* openpi_orbax.c — see openpi_orbax.h. Each pi0.c tensor is a strided view of one openpi array:
 * an origin (the layer, the k/v or gate/up half) plus up to 4 (dimension, source stride) pairs,
 * read in the output's C order. The mapping is openpi's convert_jax_model_to_pytorch.py's, with
 * its reshapes stated by what they mean (e.g. o_proj[d][n·H+h] = attn_vec_einsum[l][n][h][d],
 * which the script's reshape only matches for N·H = D). */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* memfd_create */
#endif
#include "openpi_orbax.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../model/config.h"

#define P "paligemma_with_expert.paligemma.model."
#define X "paligemma_with_expert.gemma_expert.model."
#define VT P "vision_tower.vision_model."

typedef struct {
    char *name;        /* the full Orbax array name */
    orbax_array a;
} op_src;

typedef struct {
    st_decl d;
    char name[192];
    int src;
    int pd;
    int64_t dim[4], stride[4], base; /* in elements of the source; at most 2 leading (block) dims */
} op_t;

struct openpi_orbax {
    orbax_ckpt *o;
    char prefix[256], suffix[16];
    op_src *srcs;
    int nsrcs;
    op_t *ops;
    int nops, capops;
    int cache_src;
    unsigned char *cache;
    pi0_config cfg;
};

int openpi_orbax_detect(const char *dir, char *out, size_t n) {
    snprintf(out, n, "%s/params", dir);
    if (orbax_is_checkpoint(out)) return 1;
    snprintf(out, n, "%s", dir);
    return orbax_is_checkpoint(out);
}

void openpi_orbax_close(openpi_orbax *m) {
    if (!m) return;
    for (int i = 0; i < m->nsrcs; i++) free(m->srcs[i].name);
    free(m->srcs);
    free(m->ops);
    free(m->cache);
    orbax_close(m->o);
    free(m);
}

static void shape_str(char *buf, size_t n, int nd, const int64_t *s) {
    size_t o = (size_t)snprintf(buf, n, "[");
    for (int i = 0; i < nd && o < n; i++) o += (size_t)snprintf(buf + o, n - o, "%s%lld", i ? ", " : "", (long long)s[i]);
    if (o < n) snprintf(buf + o, n - o, "]");
}

/* Looks up "<prefix><path><suffix>"; *a its metadata. PI0_ERR_TENSOR naming it when missing. */
static pi0_status lookup(openpi_orbax *m, const char *path, orbax_array *a, pi0_err *e) {
    char full[512];
    snprintf(full, sizeof full, "%s%s%s", m->prefix, path, m->suffix);
    for (int i = 0; i < orbax_count(m->o); i++)
        if (strcmp(orbax_name(m->o, i), full) == 0) return orbax_array_info(m->o, full, a, e);
    return pi0_fail(e, PI0_ERR_TENSOR, "%s: missing array '%s' (openpi's %s)", "orbax checkpoint", full, path);
}

static int has(openpi_orbax *m, const char *path) {
    char full[512];
    snprintf(full, sizeof full, "%s%s%s", m->prefix, path, m->suffix);
    for (int i = 0; i < orbax_count(m->o); i++)
        if (strcmp(orbax_name(m->o, i), full) == 0) return 1;
    return 0;
}

/* Adds a source array, checking its shape is exactly `want` (nd dims). */
static pi0_status src_add(openpi_orbax *m, const char *path, int nd, const int64_t *want, int *idx, pi0_err *e) {
    orbax_array a;
    FORWARD_ERR(lookup(m, path, &a, e));
    int same = a.ndim == nd;
    for (int i = 0; same && i < nd; i++) same = a.shape[i] == want[i];
    if (!same) {
        char got[128], exp[128];
        shape_str(got, sizeof got, a.ndim, a.shape);
        shape_str(exp, sizeof exp, nd, want);
        return pi0_fail(e, PI0_ERR_TENSOR, "orbax checkpoint: array '%s%s%s' has shape %s, the model's other arrays "
                        "imply %s", m->prefix, path, m->suffix, got, exp);
    }
    RETURN_ERR_IF(a.dtype != DT_F32 && a.dtype != DT_BF16 && a.dtype != DT_F16, e, PI0_ERR_TENSOR,
                  "orbax checkpoint: array '%s%s%s' has dtype %s (expected float32, bfloat16 or float16)", m->prefix,
                  path, m->suffix, dtype_name(a.dtype));
    if (m->nsrcs % 64 == 0) {
        op_src *ns = realloc(m->srcs, (size_t)(m->nsrcs + 64) * sizeof *ns);
        RETURN_ERR_IF(!ns, e, PI0_ERR_NOMEM, "out of memory");
        m->srcs = ns;
    }
    char full[512];
    snprintf(full, sizeof full, "%s%s%s", m->prefix, path, m->suffix);
    m->srcs[m->nsrcs].name = malloc(strlen(full) + 1);
    RETURN_ERR_IF(!m->srcs[m->nsrcs].name, e, PI0_ERR_NOMEM, "out of memory");
    strcpy(m->srcs[m->nsrcs].name, full);
    m->srcs[m->nsrcs].a = a;
    *idx = m->nsrcs++;
    return PI0_OK;
}

/* Adds output tensor `name` (declared shape dshape) = source src viewed from `base` with the
 * (dim, stride) pairs. */
static pi0_status op_add(openpi_orbax *m, const char *name, int src, int dnd, const int64_t *dshape, int64_t base,
                         int pd, const int64_t *dim, const int64_t *stride, pi0_err *e) {
    if (m->nops == m->capops) {
        int cap = m->capops ? 2 * m->capops : 256;
        op_t *no = realloc(m->ops, (size_t)cap * sizeof *no);
        RETURN_ERR_IF(!no, e, PI0_ERR_NOMEM, "out of memory");
        m->ops = no;
        m->capops = cap;
    }
    op_t *op = &m->ops[m->nops++];
    memset(op, 0, sizeof *op);
    snprintf(op->name, sizeof op->name, "%s", name);
    op->src = src;
    op->d.dtype = m->srcs[src].a.dtype;
    op->d.ndim = dnd;
    memcpy(op->d.shape, dshape, (size_t)dnd * sizeof *dshape);
    op->pd = pd;
    memcpy(op->dim, dim, (size_t)pd * sizeof *dim);
    memcpy(op->stride, stride, (size_t)pd * sizeof *stride);
    op->base = base;
    return PI0_OK;
}

/* Shorthands: a contiguous copy of n elements, and the transpose of a [r, c] block (out [c, r]). */
static pi0_status op_copy(openpi_orbax *m, const char *name, int src, int dnd, const int64_t *ds, int64_t base, pi0_err *e) {
    int64_t n = 1;
    for (int i = 0; i < dnd; i++) n *= ds[i];
    const int64_t dim[1] = {n}, st[1] = {1};
    return op_add(m, name, src, dnd, ds, base, 1, dim, st, e);
}
static pi0_status op_tr(openpi_orbax *m, const char *name, int src, int64_t r, int64_t c, int64_t base, pi0_err *e) {
    const int64_t ds[2] = {c, r}, st[2] = {1, c};
    return op_add(m, name, src, 2, ds, base, 2, ds, st, e);
}

/* Every SigLIP layer's `dst`.weight (layer l of the stacked Flax kernel `src`, [in, out] per
 * layer, transposed) and `dst`.bias (layer l of `bias_src`, out values): all the weights, then all
 * the biases, so that each source array is read once, front to back. */
static pi0_status siglip_dense(openpi_orbax *m, const char *dst, int src, int bias_src, int64_t L, int64_t in,
                               int64_t out, pi0_err *e) {
    char nm[192];
    for (int64_t l = 0; l < L; l++) {
        snprintf(nm, sizeof nm, VT "encoder.layers.%lld.%s.weight", (long long)l, dst);
        FORWARD_ERR(op_tr(m, nm, src, in, out, l * in * out, e));
    }
    for (int64_t l = 0; l < L; l++) {
        snprintf(nm, sizeof nm, VT "encoder.layers.%lld.%s.bias", (long long)l, dst);
        FORWARD_ERR(op_copy(m, nm, bias_src, 1, (const int64_t[]){out}, l * out, e));
    }
    return PI0_OK;
}

/* Every Gemma layer's `norm` (input_layernorm or post_attention_layernorm) under `prefix`: its
 * RMSNorm scale (layer l of `src`, D values), or with adaptive (π0.5's expert) its adaRMS dense
 * weight (layer l of `src`, [D, 3D] per layer, transposed) and then every layer's bias (layer l
 * of `bias_src`, 3D values): each source array read once, front to back. */
static pi0_status gemma_norm_ops(openpi_orbax *m, const char *prefix, const char *norm, int src, int bias_src,
                                 int64_t L, int64_t D, int adaptive, pi0_err *e) {
    char nm[192];
    for (int64_t l = 0; l < L; l++) {
        snprintf(nm, sizeof nm, "%slayers.%lld.%s.%s", prefix, (long long)l, norm, adaptive ? "dense.weight" : "weight");
        if (adaptive) FORWARD_ERR(op_tr(m, nm, src, D, 3 * D, l * 3 * D * D, e));
        else FORWARD_ERR(op_copy(m, nm, src, 1, (const int64_t[]){D}, l * D, e));
    }
    for (int64_t l = 0; adaptive && l < L; l++) {
        snprintf(nm, sizeof nm, "%slayers.%lld.%s.dense.bias", prefix, (long long)l, norm);
        FORWARD_ERR(op_copy(m, nm, bias_src, 1, (const int64_t[]){3 * D}, l * 3 * D, e));
    }
    return PI0_OK;
}

#define SRC(path, idx, ...)                                                                             \
    FORWARD_ERR(src_add(m, path, (int)(sizeof((const int64_t[]){__VA_ARGS__}) / sizeof(int64_t)),      \
                        (const int64_t[]){__VA_ARGS__}, &idx, e))

/* Reads the sizes from the arrays' shapes into m->cfg. */
static pi0_status derive_config(openpi_orbax *m, pi0_err *e) {
    orbax_array a;
    pi0_config *c = &m->cfg;
    const int pi05 = has(m, "time_mlp_in.kernel");
    config_preset(c, "full", pi05);
#define NEED(path, nd)                                                                                         \
    do {                                                                                                       \
        FORWARD_ERR(lookup(m, path, &a, e));                                                                   \
        RETURN_ERR_IF(a.ndim != nd, e, PI0_ERR_TENSOR, "orbax checkpoint: array '%s%s%s' has %d dimensions, " \
                      "expected %d", m->prefix, path, m->suffix, a.ndim, nd);                                  \
        for (int i_ = 0; i_ < nd; i_++)                                                                        \
            RETURN_ERR_IF(a.shape[i_] > 1000000000 || a.shape[i_] < 1, e, PI0_ERR_TENSOR,                      \
                          "orbax checkpoint: array '%s%s%s' has an implausible shape", m->prefix, path, m->suffix); \
    } while (0)
    NEED("PaliGemma.img.embedding.kernel", 4);
    c->vision.patch_size = (int)a.shape[0];
    c->vision.width = (int)a.shape[3];
    NEED("PaliGemma.img.pos_embedding", 3);
    const int g = (int)lround(sqrt((double)a.shape[1]));
    RETURN_ERR_IF((int64_t)g * g != a.shape[1], e, PI0_ERR_TENSOR, "orbax checkpoint: img.pos_embedding holds %lld "
                  "positions, not a square grid", (long long)a.shape[1]);
    c->vision.image_size = g * c->vision.patch_size;
    NEED("PaliGemma.img.Transformer.encoderblock.MlpBlock_0.Dense_0.kernel", 3);
    c->vision.depth = (int)a.shape[0];
    c->vision.mlp_dim = (int)a.shape[2];
    NEED("PaliGemma.img.Transformer.encoderblock.MultiHeadDotProductAttention_0.query.kernel", 4);
    c->vision.num_heads = (int)a.shape[2];
    NEED("PaliGemma.llm.embedder.input_embedding", 2);
    c->vlm.vocab_size = (int)a.shape[0];
    c->vlm.width = (int)a.shape[1];
    for (int x = 0; x < 2; x++) {
        pi0_gemma_config *gc = x ? &c->expert : &c->vlm;
        const char *sfx = x ? "_1" : "";
        char p[160];
        snprintf(p, sizeof p, "PaliGemma.llm.layers.attn.q_einsum%s.w", sfx);
        if (has(m, p)) {
            NEED(p, 4);
            gc->depth = (int)a.shape[0];
            gc->num_heads = (int)a.shape[1];
            gc->width = (int)a.shape[2];
            gc->head_dim = (int)a.shape[3];
            snprintf(p, sizeof p, "PaliGemma.llm.layers.attn.kv_einsum%s.w", sfx);
            NEED(p, 5);
            gc->num_kv_heads = (int)a.shape[2];
        } else { /* qkv_einsum: as many key/value heads as query heads */
            snprintf(p, sizeof p, "PaliGemma.llm.layers.attn.qkv_einsum%s.w", sfx);
            NEED(p, 5);
            gc->depth = (int)a.shape[0];
            gc->num_heads = gc->num_kv_heads = (int)a.shape[2];
            gc->width = (int)a.shape[3];
            gc->head_dim = (int)a.shape[4];
        }
        snprintf(p, sizeof p, "PaliGemma.llm.layers.mlp%s.gating_einsum", sfx);
        NEED(p, 4);
        gc->mlp_dim = (int)a.shape[3];
    }
    c->expert.vocab_size = 0;
    NEED("action_in_proj.kernel", 2);
    c->action_dim = (int)a.shape[0];
    c->state_dim = c->action_dim;
    if (!pi05) {
        NEED("state_proj.kernel", 2);
        c->state_dim = (int)a.shape[0];
    }
#undef NEED
    RETURN_ERR_IF(c->vision.num_heads <= 0 || c->vision.width % c->vision.num_heads, e, PI0_ERR_TENSOR,
                  "orbax checkpoint: SigLIP width %d is not a multiple of its %d heads", c->vision.width,
                  c->vision.num_heads);
    return config_validate(c, "orbax checkpoint (sizes from the array shapes)", e);
}

static pi0_status plan_gemma(openpi_orbax *m, const pi0_gemma_config *g, const char *sfx, const char *prefix,
                             int adaptive, pi0_err *e) {
    const int64_t L = g->depth, D = g->width, N = g->num_heads, K = g->num_kv_heads, H = g->head_dim, F = g->mlp_dim;
    char p[192], nm[192];
    int q, kv, o, gate, lin, n1, n2, n1b = -1, n2b = -1, fin, finb = -1;
    int qkv = 0;
    snprintf(p, sizeof p, "PaliGemma.llm.layers.attn.q_einsum%s.w", sfx);
    if (has(m, p)) {
        SRC(p, q, L, N, D, H);
        snprintf(p, sizeof p, "PaliGemma.llm.layers.attn.kv_einsum%s.w", sfx);
        SRC(p, kv, L, 2, K, D, H);
    } else {
        snprintf(p, sizeof p, "PaliGemma.llm.layers.attn.qkv_einsum%s.w", sfx);
        SRC(p, q, L, 3, N, D, H);
        kv = q;
        qkv = 1;
    }
    snprintf(p, sizeof p, "PaliGemma.llm.layers.attn.attn_vec_einsum%s.w", sfx);
    SRC(p, o, L, N, H, D);
    snprintf(p, sizeof p, "PaliGemma.llm.layers.mlp%s.gating_einsum", sfx);
    SRC(p, gate, L, 2, D, F);
    snprintf(p, sizeof p, "PaliGemma.llm.layers.mlp%s.linear", sfx);
    SRC(p, lin, L, F, D);
    if (adaptive) {
        snprintf(p, sizeof p, "PaliGemma.llm.layers.pre_attention_norm%s.Dense_0.kernel", sfx);
        SRC(p, n1, L, D, 3 * D);
        snprintf(p, sizeof p, "PaliGemma.llm.layers.pre_attention_norm%s.Dense_0.bias", sfx);
        SRC(p, n1b, L, 3 * D);
        snprintf(p, sizeof p, "PaliGemma.llm.layers.pre_ffw_norm%s.Dense_0.kernel", sfx);
        SRC(p, n2, L, D, 3 * D);
        snprintf(p, sizeof p, "PaliGemma.llm.layers.pre_ffw_norm%s.Dense_0.bias", sfx);
        SRC(p, n2b, L, 3 * D);
        snprintf(p, sizeof p, "PaliGemma.llm.final_norm%s.Dense_0.kernel", sfx);
        SRC(p, fin, D, 3 * D);
        snprintf(p, sizeof p, "PaliGemma.llm.final_norm%s.Dense_0.bias", sfx);
        SRC(p, finb, 3 * D);
    } else {
        snprintf(p, sizeof p, "PaliGemma.llm.layers.pre_attention_norm%s.scale", sfx);
        SRC(p, n1, L, D);
        snprintf(p, sizeof p, "PaliGemma.llm.layers.pre_ffw_norm%s.scale", sfx);
        SRC(p, n2, L, D);
        snprintf(p, sizeof p, "PaliGemma.llm.final_norm%s.scale", sfx);
        SRC(p, fin, D);
    }
    /* q[n·H+h][d] = q_einsum[l][n][d][h]; k/v[k·H+h][d] = kv_einsum[l][0|1][k][d][h] */
    const int64_t qdim[3] = {N, H, D}, qst[3] = {D * H, 1, H}, kdim[3] = {K, H, D}, kst[3] = {D * H, 1, H};
    for (int64_t l = 0; l < L; l++) {
#define NM(s) snprintf(nm, sizeof nm, "%slayers.%lld." s, prefix, (long long)l)
        NM("self_attn.q_proj.weight");
        FORWARD_ERR(op_add(m, nm, q, 2, (const int64_t[]){N * H, D}, qkv ? l * 3 * N * D * H : l * N * D * H, 3, qdim, qst, e));
    }
    for (int64_t l = 0; l < L; l++) {
        const int64_t b0 = qkv ? (l * 3 + 1) * K * D * H : l * 2 * K * D * H, b1 = b0 + K * D * H;
        NM("self_attn.k_proj.weight");
        FORWARD_ERR(op_add(m, nm, kv, 2, (const int64_t[]){K * H, D}, b0, 3, kdim, kst, e));
        NM("self_attn.v_proj.weight");
        FORWARD_ERR(op_add(m, nm, kv, 2, (const int64_t[]){K * H, D}, b1, 3, kdim, kst, e));
    }
    for (int64_t l = 0; l < L; l++) { NM("self_attn.o_proj.weight"); FORWARD_ERR(op_tr(m, nm, o, N * H, D, l * N * H * D, e)); }
    for (int64_t l = 0; l < L; l++) {
        NM("mlp.gate_proj.weight"); FORWARD_ERR(op_tr(m, nm, gate, D, F, l * 2 * D * F, e));
        NM("mlp.up_proj.weight"); FORWARD_ERR(op_tr(m, nm, gate, D, F, (l * 2 + 1) * D * F, e));
    }
    for (int64_t l = 0; l < L; l++) { NM("mlp.down_proj.weight"); FORWARD_ERR(op_tr(m, nm, lin, F, D, l * F * D, e)); }
    FORWARD_ERR(gemma_norm_ops(m, prefix, "input_layernorm", n1, n1b, L, D, adaptive, e));
    FORWARD_ERR(gemma_norm_ops(m, prefix, "post_attention_layernorm", n2, n2b, L, D, adaptive, e));
#undef NM
    if (adaptive) {
        snprintf(nm, sizeof nm, "%snorm.dense.weight", prefix);
        FORWARD_ERR(op_tr(m, nm, fin, D, 3 * D, 0, e));
        snprintf(nm, sizeof nm, "%snorm.dense.bias", prefix);
        FORWARD_ERR(op_copy(m, nm, finb, 1, (const int64_t[]){3 * D}, 0, e));
    } else {
        snprintf(nm, sizeof nm, "%snorm.weight", prefix);
        FORWARD_ERR(op_copy(m, nm, fin, 1, (const int64_t[]){D}, 0, e));
    }
    return PI0_OK;
}

static pi0_status plan(openpi_orbax *m, pi0_err *e) {
    const pi0_config *c = &m->cfg;
    const int64_t W = c->vision.width, F = c->vision.mlp_dim, p = c->vision.patch_size, Lv = c->vision.depth,
                  T = pi0_config_image_tokens(c), h = c->vision.num_heads, hd = W / h, D = c->vlm.width,
                  V = c->vlm.vocab_size;
    int s, sb;
    char nm[192];
#define EB "PaliGemma.img.Transformer.encoderblock."
    SRC("PaliGemma.img.embedding.kernel", s, p, p, 3, W);
    /* patch[w][c][i][j] = kernel[i][j][c][w] */
    FORWARD_ERR(op_add(m, VT "embeddings.patch_embedding.weight", s, 4, (const int64_t[]){W, 3, p, p}, 0, 4,
                       (const int64_t[]){W, 3, p, p}, (const int64_t[]){1, W, 3 * W * p, 3 * W}, e));
    SRC("PaliGemma.img.embedding.bias", s, W);
    FORWARD_ERR(op_copy(m, VT "embeddings.patch_embedding.bias", s, 1, (const int64_t[]){W}, 0, e));
    SRC("PaliGemma.img.pos_embedding", s, 1, T, W);
    FORWARD_ERR(op_copy(m, VT "embeddings.position_embedding.weight", s, 2, (const int64_t[]){T, W}, 0, e));
    static const char *ln[4][2] = {{"LayerNorm_0.scale", "layer_norm1.weight"}, {"LayerNorm_0.bias", "layer_norm1.bias"},
                                   {"LayerNorm_1.scale", "layer_norm2.weight"}, {"LayerNorm_1.bias", "layer_norm2.bias"}};
    for (int k = 0; k < 4; k++) {
        char path[192];
        snprintf(path, sizeof path, EB "%s", ln[k][0]);
        SRC(path, s, Lv, W);
        for (int64_t l = 0; l < Lv; l++) {
            snprintf(nm, sizeof nm, VT "encoder.layers.%lld.%s", (long long)l, ln[k][1]);
            FORWARD_ERR(op_copy(m, nm, s, 1, (const int64_t[]){W}, l * W, e));
        }
    }
    static const char *att[3][2] = {{"query", "self_attn.q_proj"}, {"key", "self_attn.k_proj"},
                                    {"value", "self_attn.v_proj"}};
    for (int k = 0; k < 3; k++) {
        char path[192];
        snprintf(path, sizeof path, EB "MultiHeadDotProductAttention_0.%s.kernel", att[k][0]);
        SRC(path, s, Lv, W, h, hd);
        snprintf(path, sizeof path, EB "MultiHeadDotProductAttention_0.%s.bias", att[k][0]);
        SRC(path, sb, Lv, h, hd);
        FORWARD_ERR(siglip_dense(m, att[k][1], s, sb, Lv, W, W, e));
    }
    SRC(EB "MultiHeadDotProductAttention_0.out.kernel", s, Lv, h, hd, W);
    SRC(EB "MultiHeadDotProductAttention_0.out.bias", sb, Lv, W);
    FORWARD_ERR(siglip_dense(m, "self_attn.out_proj", s, sb, Lv, W, W, e));
    SRC(EB "MlpBlock_0.Dense_0.kernel", s, Lv, W, F);
    SRC(EB "MlpBlock_0.Dense_0.bias", sb, Lv, F);
    FORWARD_ERR(siglip_dense(m, "mlp.fc1", s, sb, Lv, W, F, e));
    SRC(EB "MlpBlock_0.Dense_1.kernel", s, Lv, F, W);
    SRC(EB "MlpBlock_0.Dense_1.bias", sb, Lv, W);
    FORWARD_ERR(siglip_dense(m, "mlp.fc2", s, sb, Lv, F, W, e));
#undef EB
    SRC("PaliGemma.img.Transformer.encoder_norm.scale", s, W);
    FORWARD_ERR(op_copy(m, VT "post_layernorm.weight", s, 1, (const int64_t[]){W}, 0, e));
    SRC("PaliGemma.img.Transformer.encoder_norm.bias", s, W);
    FORWARD_ERR(op_copy(m, VT "post_layernorm.bias", s, 1, (const int64_t[]){W}, 0, e));
    SRC("PaliGemma.img.head.kernel", s, W, D);
    FORWARD_ERR(op_tr(m, P "multi_modal_projector.linear.weight", s, W, D, 0, e));
    SRC("PaliGemma.img.head.bias", s, D);
    FORWARD_ERR(op_copy(m, P "multi_modal_projector.linear.bias", s, 1, (const int64_t[]){D}, 0, e));
    SRC("PaliGemma.llm.embedder.input_embedding", s, V, D);
    FORWARD_ERR(op_copy(m, "paligemma_with_expert.paligemma.lm_head.weight", s, 2, (const int64_t[]){V, D}, 0, e));
    FORWARD_ERR(plan_gemma(m, &c->vlm, "", P "language_model.", 0, e));
    FORWARD_ERR(plan_gemma(m, &c->expert, "_1", X, c->pi05, e));
    const int64_t We = c->expert.width, A = c->action_dim;
    typedef struct { const char *name; int64_t in, out; } proj;
    proj pr[5];
    int np = 0;
    pr[np++] = (proj){"action_in_proj", A, We};
    pr[np++] = (proj){"action_out_proj", We, A};
    if (c->pi05) {
        pr[np++] = (proj){"time_mlp_in", We, We};
        pr[np++] = (proj){"time_mlp_out", We, We};
    } else {
        pr[np++] = (proj){"state_proj", c->state_dim, We};
        pr[np++] = (proj){"action_time_mlp_in", 2 * We, We};
        pr[np++] = (proj){"action_time_mlp_out", We, We};
    }
    for (int i = 0; i < np; i++) {
        char path[96];
        snprintf(path, sizeof path, "%s.kernel", pr[i].name);
        SRC(path, s, pr[i].in, pr[i].out);
        snprintf(nm, sizeof nm, "%s.weight", pr[i].name);
        FORWARD_ERR(op_tr(m, nm, s, pr[i].in, pr[i].out, 0, e));
        snprintf(path, sizeof path, "%s.bias", pr[i].name);
        SRC(path, s, pr[i].out);
        snprintf(nm, sizeof nm, "%s.bias", pr[i].name);
        FORWARD_ERR(op_copy(m, nm, s, 1, (const int64_t[]){pr[i].out}, 0, e));
    }
    for (int i = 0; i < m->nops; i++) m->ops[i].d.name = m->ops[i].name;
    return PI0_OK;
}

pi0_status openpi_orbax_open(openpi_orbax **out, const char *params_dir, pi0_config *cfg, pi0_err *e) {
    *out = NULL;
    openpi_orbax *m = calloc(1, sizeof *m);
    RETURN_ERR_IF(!m, e, PI0_ERR_NOMEM, "out of memory");
    m->cache_src = -1;
    pi0_status st = orbax_open(&m->o, params_dir, e);
    if (st == PI0_OK) {
        /* openpi's tree: "[params.]PaliGemma.img.embedding.kernel[.value]" */
        static const char *anchor = "PaliGemma.img.embedding.kernel";
        int found = 0;
        for (int i = 0; i < orbax_count(m->o) && !found; i++) {
            const char *n = orbax_name(m->o, i), *at = strstr(n, anchor);
            if (!at || (at != n && at[-1] != '.')) continue;
            const char *rest = at + strlen(anchor);
            if (*rest && strcmp(rest, ".value") != 0) continue;
            snprintf(m->prefix, sizeof m->prefix, "%.*s", (int)(at - n), n);
            snprintf(m->suffix, sizeof m->suffix, "%s", rest);
            found = 1;
        }
        if (!found)
            st = pi0_fail(e, PI0_ERR_TENSOR, "%s: not an openpi π0 / π0.5 checkpoint: no array "
                          "'params.PaliGemma.img.embedding.kernel' among its %d arrays", params_dir, orbax_count(m->o));
    }
    if (st == PI0_OK) st = derive_config(m, e);
    if (st == PI0_OK) st = plan(m, e);
    if (st != PI0_OK) { openpi_orbax_close(m); return st; }
    if (cfg) *cfg = m->cfg;
    *out = m;
    return PI0_OK;
}

int openpi_orbax_count(const openpi_orbax *m) { return m ? m->nops : 0; }
const st_decl *openpi_orbax_decl(const openpi_orbax *m, int i) { return &m->ops[i].d; }

pi0_status openpi_orbax_produce(openpi_orbax *m, int i, void *dst, pi0_err *e) {
    const op_t *op = &m->ops[i];
    const op_src *s = &m->srcs[op->src];
    if (m->cache_src != op->src) {
        free(m->cache);
        m->cache = NULL;
        m->cache_src = -1;
        m->cache = malloc(s->a.nbytes ? s->a.nbytes : 1);
        RETURN_ERR_IF(!m->cache, e, PI0_ERR_NOMEM, "array '%s': out of memory (%zu bytes)", s->name, s->a.nbytes);
        FORWARD_ERR(orbax_array_read(m->o, s->name, m->cache, s->a.nbytes, e));
        m->cache_src = op->src;
    }
    const size_t es = dtype_size(s->a.dtype);
    const unsigned char *src = m->cache;
    unsigned char *o = dst;
    if (op->pd == 1) { /* contiguous */
        memcpy(o, src + (size_t)op->base * es, (size_t)op->dim[0] * es);
        return PI0_OK;
    }
    /* Leading dimensions index blocks; the last two are copied in 32 x 32 tiles, so that a
     * transposed read stays within a few cache lines. Every index is inside the source: the
     * shapes were checked against the plan. */
    const int nb = op->pd - 2;
    const int64_t R = op->dim[nb], C = op->dim[nb + 1], sr = op->stride[nb], sc = op->stride[nb + 1];
    int64_t idx[2] = {0, 0}, blocks = 1;
    for (int d = 0; d < nb; d++) blocks *= op->dim[d];
    for (int64_t b = 0; b < blocks; b++) {
        int64_t off = op->base;
        for (int d = 0; d < nb; d++) off += idx[d] * op->stride[d];
        for (int64_t i0 = 0; i0 < R; i0 += 32)
            for (int64_t j0 = 0; j0 < C; j0 += 32) {
                const int64_t i1 = i0 + 32 < R ? i0 + 32 : R, j1 = j0 + 32 < C ? j0 + 32 : C;
                if (es == 2) {
                    const uint16_t *sp = (const uint16_t *)src + off;
                    uint16_t *dp = (uint16_t *)o;
                    for (int64_t i = i0; i < i1; i++)
                        for (int64_t j = j0; j < j1; j++) dp[i * C + j] = sp[i * sr + j * sc];
                } else {
                    const uint32_t *sp = (const uint32_t *)src + off;
                    uint32_t *dp = (uint32_t *)o;
                    for (int64_t i = i0; i < i1; i++)
                        for (int64_t j = j0; j < j1; j++) dp[i * C + j] = sp[i * sr + j * sc];
                }
            }
        o += (size_t)(R * C) * es;
        for (int d = nb - 1; d >= 0; d--) {
            if (++idx[d] < op->dim[d]) break;
            idx[d] = 0;
        }
    }
    return PI0_OK;
}

static int cmp_tensor(const void *a, const void *b) {
    return strcmp(((const st_tensor *)a)->name, ((const st_tensor *)b)->name);
}

pi0_status openpi_orbax_load(st_file *f, const char *params_dir, pi0_config *cfg, pi0_err *e) {
    memset(f, 0, sizeof *f);
    openpi_orbax *m;
    FORWARD_ERR(openpi_orbax_open(&m, params_dir, cfg, e));
    pi0_status st = PI0_OK;
    size_t total = 0;
    for (int i = 0; i < m->nops; i++) total += (st_decl_nbytes(&m->ops[i].d) + 63) & ~(size_t)63;
    f->path = malloc(strlen(params_dir) + 1);
    f->tensors = calloc((size_t)m->nops, sizeof *f->tensors);
    if (!f->path || !f->tensors) { st = pi0_fail(e, PI0_ERR_NOMEM, "out of memory"); goto done; }
    strcpy(f->path, params_dir);
    /* Shared memory-file pages, not anonymous ones: a backend that has copied a matrix gives its
     * pages back (madvise DONTNEED, as for a checkpoint file), and they must read back intact. */
    int fd = memfd_create("pi0-orbax-weights", MFD_CLOEXEC);
    void *map = MAP_FAILED;
    if (fd >= 0 && ftruncate(fd, (off_t)(total ? total : 1)) == 0)
        map = mmap(NULL, total ? total : 1, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    const int err = errno;
    if (fd >= 0) close(fd);
    if (map == MAP_FAILED) {
        st = pi0_fail(e, PI0_ERR_NOMEM, "%s: cannot allocate %zu bytes for the weights: %s", params_dir, total,
                      strerror(err));
        goto done;
    }
    f->map = map;
    f->size = total ? total : 1;
    size_t off = 0;
    for (int i = 0; i < m->nops && st == PI0_OK; i++) {
        const st_decl *d = &m->ops[i].d;
        st_tensor *t = &f->tensors[i];
        t->name = malloc(strlen(d->name) + 1);
        if (!t->name) { st = pi0_fail(e, PI0_ERR_NOMEM, "out of memory"); break; }
        strcpy(t->name, d->name);
        f->count = i + 1;
        t->dtype = d->dtype;
        t->ndim = d->ndim;
        memcpy(t->shape, d->shape, sizeof t->shape);
        t->nbytes = st_decl_nbytes(d);
        t->numel = t->nbytes / dtype_size(d->dtype);
        t->data = (unsigned char *)map + off;
        st = openpi_orbax_produce(m, i, (unsigned char *)map + off, e);
        off += (t->nbytes + 63) & ~(size_t)63;
    }
    if (st == PI0_OK) {
        qsort(f->tensors, (size_t)f->count, sizeof *f->tensors, cmp_tensor);
        mprotect(map, f->size, PROT_READ);
    }
done:
    openpi_orbax_close(m);
    if (st != PI0_OK) st_close(f);
    return st;
}
