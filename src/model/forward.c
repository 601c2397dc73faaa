/* forward.c — the π0 forward pass, written once against the backend op table, in the order
 * openpi runs it (src/openpi/models/pi0.py: embed_prefix → PaliGemma prefix pass filling the
 * KV cache → sample_actions' Euler loop over embed_suffix + action expert). Comments name the
 * openpi / PyTorch line each block mirrors. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include "model.h"

#define MAXI(a, b) ((a) > (b) ? (a) : (b))

/* ---------------------------------------------------------------- buffers */

pi0_status buffers_alloc(pi0_session *s) {
    const pi0_config *c = s->cfg;
    pi0_buffers *b = &s->b;
    pi0_dispatch *d = &s->d;
    memset(b, 0, sizeof *b);
    const int n_img = pi0_config_image_tokens(c), p = c->vision.patch_size,
              S = c->vision.image_size;
    const int qd = c->vlm.num_heads * c->vlm.head_dim, kd = c->vlm.num_kv_heads * c->vlm.head_dim;
    const int maxw = MAXI(c->vision.width, MAXI(c->vlm.width, c->expert.width));
    const int maxf = MAXI(c->vision.mlp_dim, MAXI(c->vlm.mlp_dim, c->expert.mlp_dim));
    b->max_prefix = c->num_cameras * n_img + c->max_token_len;
    b->suffix_len = c->action_horizon + (c->pi05 ? 0 : 1); /* π0 has the state token first */
    b->cap_rows = MAXI(b->max_prefix, b->suffix_len);
    b->keys = b->max_prefix + b->suffix_len;
    const size_t R = (size_t)b->cap_rows, keys = (size_t)b->keys;
    const size_t H = c->action_horizon, A = c->action_dim, We = c->expert.width;
    const size_t img = (size_t)3 * S * S, dumpn = (size_t)b->max_prefix * MAXI(maxw, kd);
#define DEV(ptr, n) ((ptr) = be_alloc(d, (size_t)(n) * sizeof *(ptr)), (ptr) != NULL)
#define HOST(ptr, n) ((ptr) = calloc((n), sizeof *(ptr)), (ptr) != NULL)
    int ok = DEV(b->x, R * maxw) && DEV(b->h, R * maxw) && DEV(b->tmp, R * maxw) &&
             DEV(b->q, R * MAXI(c->vision.width, qd)) && DEV(b->att, R * MAXI(c->vision.width, qd)) &&
             DEV(b->k, (size_t)n_img * c->vision.width) && DEV(b->v, (size_t)n_img * c->vision.width) &&
             DEV(b->mlp1, R * maxf) && DEV(b->mlp2, R * maxf) && DEV(b->img, img * c->num_cameras) &&
             DEV(b->patches, (size_t)n_img * 3 * p * p) &&
             DEV(b->kcache, (size_t)c->vlm.depth * keys * kd) &&
             DEV(b->vcache, (size_t)c->vlm.depth * keys * kd) && DEV(b->pos, R) &&
             DEV(b->ids, c->max_token_len) && DEV(b->allowed, R * keys) &&
             DEV(b->state, c->state_dim) && DEV(b->state_tok, We) && DEV(b->time_emb, We) &&
             DEV(b->act_time, H * 2 * We) && DEV(b->x_t, H * A) && DEV(b->v_t, H * A) &&
             DEV(b->rtc_prev, H * A) && DEV(b->rtc_w, H * A) && DEV(b->rtc_err, H * A) &&
             DEV(b->time_emb0, We) && DEV(b->cond0, We) && DEV(b->mods0, (size_t)(2 * c->expert.depth + 1) * 3 * We) &&
             DEV(b->cond, We) && DEV(b->mods, (size_t)(2 * c->expert.depth + 1) * 3 * We) &&
             HOST(b->black, img) && HOST(b->valid, b->max_prefix) &&
             HOST(b->layout_row, b->max_prefix) && HOST(b->pos_host, R) &&
             HOST(b->ids_host, c->max_token_len) && HOST(b->allowed_host, R * keys) &&
             HOST(b->dump, dumpn) && HOST(b->dump_rows, dumpn);
#undef DEV
#undef HOST
    if (!ok) {
        buffers_free(s);
        return PI0_ERR_NOMEM;
    }
    for (size_t i = 0; i < img; i++) b->black[i] = -1.0f; /* black = 0 → −1 */
    return PI0_OK;
}

void buffers_free(pi0_session *s) {
    pi0_buffers *b = &s->b;
    void *dev[] = {b->x, b->h, b->tmp, b->q, b->att, b->k, b->v, b->mlp1, b->mlp2, b->img,
                   b->patches, b->kcache, b->vcache, b->pos, b->ids, b->allowed, b->state,
                   b->state_tok, b->time_emb, b->act_time, b->x_t, b->v_t, b->cond, b->mods,
                   b->rtc_prev, b->rtc_w, b->rtc_err, b->time_emb0, b->cond0, b->mods0};
    for (size_t i = 0; i < sizeof dev / sizeof *dev; i++) be_free(&s->d, dev[i]);
    vjp_free(s);
    void *host[] = {b->black, b->valid, b->layout_row, b->pos_host, b->ids_host, b->allowed_host,
                    b->dump, b->dump_rows};
    for (size_t i = 0; i < sizeof host / sizeof *host; i++) free(host[i]);
    memset(b, 0, sizeof *b);
}

/* ---------------------------------------------------------------- dumps */

/* Hands a named intermediate (backend memory) to the dump callback, then to the inject
 * callback, which may overwrite it (pi0 check feeds each component the reference's inputs that
 * way): the host copy is then written back. rows 0 means a vector of cols values. */
static pi0_status dump_tensor(pi0_session *s, const char *name, float *data, int rows, int cols) {
    const size_t bytes = (size_t)(rows ? rows : 1) * cols * sizeof(float);
    const int ndim = rows ? 2 : 1;
    int64_t shape[2] = {rows, cols};
    const int64_t *sh = rows ? shape : shape + 1;
    FORWARD_ERR(op_download(&s->d, s->b.dump, data, bytes));
    if (s->params.dump) s->params.dump(s->params.dump_user, name, s->b.dump, ndim, sh);
    if (!s->params.inject) return PI0_OK;
    s->params.inject(s->params.inject_user, name, s->b.dump, ndim, sh);
    return op_upload(&s->d, data, s->b.dump, bytes);
}

/* Dumps prefix rows [n, cols] in openpi's full prefix layout; padding rows that the compact
 * prefix dropped are zero. An inject callback's changes are copied back into the live rows. */
static pi0_status dump_prefix(pi0_session *s, const char *name, float *rows, int n, int cols) {
    pi0_buffers *b = &s->b;
    const int full = b->max_prefix;
    const size_t row_bytes = (size_t)cols * sizeof(float);
    int64_t shape[2] = {full, cols};
    FORWARD_ERR(op_download(&s->d, b->dump_rows, rows, n * row_bytes));
    memset(b->dump, 0, full * row_bytes);
    for (int r = 0; r < n; r++)
        memcpy(b->dump + (size_t)b->layout_row[r] * cols, b->dump_rows + (size_t)r * cols, row_bytes);
    if (s->params.dump) s->params.dump(s->params.dump_user, name, b->dump, 2, shape);
    if (!s->params.inject) return PI0_OK;
    s->params.inject(s->params.inject_user, name, b->dump, 2, shape);
    for (int r = 0; r < n; r++)
        memcpy(b->dump_rows + (size_t)r * cols, b->dump + (size_t)b->layout_row[r] * cols, row_bytes);
    return op_upload(&s->d, rows, b->dump_rows, n * row_bytes);
}

/* A tensor of zeros under `name` (a masked camera's embedding in the compact prefix). */
static void dump_zeros(pi0_session *s, const char *name, int rows, int cols) {
    int64_t shape[2] = {rows, cols};
    memset(s->b.dump, 0, (size_t)rows * cols * sizeof(float));
    if (s->params.dump) s->params.dump(s->params.dump_user, name, s->b.dump, 2, shape);
    if (s->params.inject) s->params.inject(s->params.inject_user, name, s->b.dump, 2, shape);
}

/* ---------------------------------------------------------------- SigLIP */

/* SiglipVisionEmbeddings.forward: patch_embedding(pixel_values) + position_embedding. The conv
 * (kernel = stride = p) is a matmul over the image's patches. */
static pi0_status siglip_embed(pi0_session *s, const float *img, float *x) {
    const pi0_siglip_config *v = &s->cfg->vision;
    const siglip_weights *w = &s->model->w.vision;
    const int n = pi0_config_image_tokens(s->cfg);
    FORWARD_ERR(op_patchify(&s->d, s->b.patches, img, 3, v->image_size, v->patch_size));
    pi0_epilogue ep = {.bias = &w->patch_b};
    FORWARD_ERR(op_matmul(&s->d, x, s->b.patches, n, &w->patch, &ep));
    return op_add_weight(&s->d, x, &w->pos, (size_t)n * v->width);
}

/* SiglipEncoderLayer.forward: x += attn(LN1(x)); x += mlp(LN2(x)). */
static pi0_status siglip_block(pi0_session *s, const siglip_layer *L, float *x, int n) {
    const pi0_siglip_config *v = &s->cfg->vision;
    pi0_dispatch *d = &s->d;
    pi0_buffers *b = &s->b;
    const int W = v->width, hd = W / v->num_heads;
    FORWARD_ERR(op_layernorm(d, b->h, x, n, W, &L->ln1_w, &L->ln1_b, v->norm_eps));
    FORWARD_ERR(op_matmul(d, b->q, b->h, n, &L->q, &(pi0_epilogue){.bias = &L->q_b}));
    FORWARD_ERR(op_matmul(d, b->k, b->h, n, &L->k, &(pi0_epilogue){.bias = &L->k_b}));
    FORWARD_ERR(op_matmul(d, b->v, b->h, n, &L->v, &(pi0_epilogue){.bias = &L->v_b}));
    FORWARD_ERR(op_attention(d, b->att, b->q, b->k, b->v, n, n, v->num_heads, v->num_heads, hd,
                             NULL, 1.0f / sqrtf((float)hd)));
    /* x += out_proj(att) */
    FORWARD_ERR(op_matmul(d, x, b->att, n, &L->o, &(pi0_epilogue){.bias = &L->o_b, .accumulate = 1}));
    FORWARD_ERR(op_layernorm(d, b->h, x, n, W, &L->ln2_w, &L->ln2_b, v->norm_eps));
    /* x += fc2(gelu_tanh(fc1(h))) */
    FORWARD_ERR(op_matmul(d, b->mlp1, b->h, n, &L->fc1, &(pi0_epilogue){.bias = &L->fc1_b, .gelu = 1, .gemm_input = 1}));
    return op_matmul(d, x, b->mlp1, n, &L->fc2, &(pi0_epilogue){.bias = &L->fc2_b, .accumulate = 1});
}

/* PaliGemma get_image_features: vision tower → post_layernorm → multi_modal_projector.
 * Writes the camera's tokens [n_tok, vlm width] to out (no √width scaling on image tokens). */
static pi0_status embed_image(pi0_session *s, const float *img, float *out, int cam, int dump) {
    const pi0_siglip_config *v = &s->cfg->vision;
    const siglip_weights *w = &s->model->w.vision;
    const int n = pi0_config_image_tokens(s->cfg);
    float *x = s->b.mlp2; /* the vision residual stream; mlp2 is free during SigLIP */
    char name[32];
    s->d.ex.comp = COMP_VISION;
    FORWARD_ERR(siglip_embed(s, img, x));
    if (dump) {
        snprintf(name, sizeof name, "vision_patch.%d", cam);
        FORWARD_ERR(dump_tensor(s, name, x, n, v->width));
    }
    for (int l = 0; l < v->depth; l++) {
        FORWARD_ERR(siglip_block(s, &w->layers[l], x, n));
        if (dump && l == 0) {
            snprintf(name, sizeof name, "vision_block0.%d", cam);
            FORWARD_ERR(dump_tensor(s, name, x, n, v->width));
        }
    }
    FORWARD_ERR(op_layernorm(&s->d, x, x, n, v->width, &w->post_w, &w->post_b, v->norm_eps));
    return op_matmul(&s->d, out, x, n, &w->proj, &(pi0_epilogue){.bias = &w->proj_b});
}

/* ---------------------------------------------------------------- prefix */

/* Runs fn(s, arg) as one recorded graph of the backend's, keyed by `key` (CUDA graphs: the first
 * call with a key runs eagerly, the second is recorded, later ones replay it; see denoise). The
 * ops in fn must depend only on the key and on device buffers filled before the call. */
static pi0_status graphed(pi0_session *s, uint64_t key, int dump, pi0_status (*fn)(pi0_session *, void *),
                          void *arg) {
    int replayed = 0, rerun = 0;
    if (!dump) FORWARD_ERR(op_graph_begin(&s->d, key, &replayed));
    if (replayed) return PI0_OK;
    FORWARD_ERR(fn(s, arg));
    if (dump) return PI0_OK;
    FORWARD_ERR(op_graph_end(&s->d, key, &rerun)); /* recorded (and launched), or run again */
    return rerun ? fn(s, arg) : PI0_OK;
}

/* pi0.py embed_prefix: [cam0 tokens, cam1, cam2, text tokens·√width] with the pad mask, then
 * make_attn_mask (all ar = 0 → attend to every valid token) and positions = cumsum(pad) − 1.
 * With compact_prefix, masked cameras and padded tokens are left out: they are never attended
 * to and do not advance positions, so every valid row computes exactly the same values.
 * Everything the observation sets goes up first (images, token ids, positions, mask); the
 * device work (SigLIP per camera, token embedding: embed_prefix_ops) then depends only on the
 * layout, so it runs as one graph per layout (the cameras present, the text length).
 * Sets *allowed to the prefix mask in backend memory, or NULL when every row is valid. */
typedef struct {
    const pi0_item *it;
    int dump;
} prefix_args;

static pi0_status embed_prefix_ops(pi0_session *s, void *arg) {
    const prefix_args *a = arg;
    const pi0_config *c = s->cfg;
    pi0_buffers *b = &s->b;
    const int C = c->num_cameras, n_img = pi0_config_image_tokens(c), D = c->vlm.width;
    const int S = c->vision.image_size, compact = s->params.compact_prefix, dump = a->dump;
    char name[32];
    int row = 0;
    s->d.ex.comp = COMP_VISION;
    for (int cam = 0; cam < C; cam++) {
        const int valid = cam < a->it->num_cameras && (!a->it->image_masks || a->it->image_masks[cam]);
        snprintf(name, sizeof name, "img_emb.%d", cam);
        if (compact && !valid) {
            if (dump) dump_zeros(s, name, n_img, D); /* a masked camera's embedding is padding */
            continue;
        }
        FORWARD_ERR(embed_image(s, b->img + (size_t)cam * 3 * S * S, b->x + (size_t)row * D, cam, dump));
        if (dump) FORWARD_ERR(dump_tensor(s, name, b->x + (size_t)row * D, n_img, D));
        row += n_img;
    }
    s->d.ex.comp = COMP_PREFIX;
    const int text0 = row;
    for (int i = 0; i < c->max_token_len; i++) row += !compact || a->it->token_mask[i] != 0;
    if (row > text0)
        FORWARD_ERR(op_embed(&s->d, b->x + (size_t)text0 * D, &s->model->w.embed, b->ids, row - text0,
                             config_text_embed_scale(c)));
    if (dump) FORWARD_ERR(dump_prefix(s, "prefix_emb", b->x, row, D));
    return PI0_OK;
}

static pi0_status embed_prefix(pi0_session *s, const pi0_item *it, int *n_rows, const uint8_t **allowed,
                               int dump) {
    const pi0_config *c = s->cfg;
    pi0_buffers *b = &s->b;
    const int C = c->num_cameras, n_img = pi0_config_image_tokens(c);
    const int S = c->vision.image_size, compact = s->params.compact_prefix;
    int row = 0;
    uint64_t cams = 0;
    s->d.ex.comp = COMP_VISION;
    for (int cam = 0; cam < C; cam++) {
        const int given = cam < it->num_cameras;
        const int valid = given && (!it->image_masks || it->image_masks[cam]);
        if (compact && !valid) continue;
        const float *img = given ? it->images + (size_t)cam * 3 * S * S : b->black;
        FORWARD_ERR(op_upload(&s->d, b->img + (size_t)cam * 3 * S * S, img, (size_t)3 * S * S * sizeof(float)));
        for (int t = 0; t < n_img; t++) {
            b->valid[row + t] = (uint8_t)valid;
            b->layout_row[row + t] = cam * n_img + t;
        }
        cams |= (uint64_t)1 << cam;
        row += n_img;
    }
    /* embed_language_tokens: embedding row × sqrt(width) (lerobot bf16: its bf16 rounding); an id outside the vocabulary (only
     * possible on a padded token of the full layout) gives a zero row. */
    const int text0 = row;
    for (int i = 0; i < c->max_token_len; i++) {
        const int valid = it->token_mask[i] != 0;
        if (compact && !valid) continue;
        b->ids_host[row - text0] = it->tokens[i];
        b->valid[row] = (uint8_t)valid;
        b->layout_row[row] = C * n_img + i;
        row++;
    }
    s->d.ex.comp = COMP_PREFIX;
    if (row > text0)
        FORWARD_ERR(op_upload(&s->d, b->ids, b->ids_host, (size_t)(row - text0) * sizeof(int32_t)));
    *n_rows = row;
    int cum = 0, all_valid = 1;
    for (int r = 0; r < row; r++) {
        cum += b->valid[r];
        b->pos_host[r] = cum - 1;
        all_valid &= b->valid[r];
    }
    FORWARD_ERR(op_upload(&s->d, b->pos, b->pos_host, (size_t)row * sizeof(int32_t)));
    *allowed = NULL;
    if (!all_valid) {
        for (int i = 0; i < row; i++)
            for (int j = 0; j < row; j++) b->allowed_host[(size_t)i * row + j] = b->valid[i] && b->valid[j];
        FORWARD_ERR(op_upload(&s->d, b->allowed, b->allowed_host, (size_t)row * row));
        *allowed = b->allowed;
    }
    /* the layout: which cameras, how many text rows (key tag 1 in the top bits) */
    const uint64_t key = (uint64_t)1 << 62 | cams << 32 | (uint64_t)(row - text0);
    prefix_args a = {it, dump};
    return graphed(s, key, dump, embed_prefix_ops, &a);
}

/* ---------------------------------------------------------------- Gemma */

/* Row stride of one layer's K/V cache: the prefix rows, then room for the suffix. */
float *cache_layer(pi0_session *s, float *cache, int l) {
    const pi0_gemma_config *g = &s->cfg->vlm;
    return cache + (size_t)l * s->b.keys * g->num_kv_heads * g->head_dim;
}

/* Gemma MLP (gemma.py FeedForward): x += down(gelu_tanh(gate(h)) ⊙ up(h)), the residual branch
 * multiplied by `gate` [D] when given (π0.5's gated residual). */
/* π0.5 with training-time RTC: the first s->rtc_frozen suffix rows take the modulations of flow
 * time 0 (b->mods0, laid out as b->mods), the others the step's. */
static int frozen_rows(const pi0_session *s, const float *mod) { return mod ? s->rtc_frozen : 0; }
static const float *mod_clean(const pi0_session *s, const float *mod) { return s->b.mods0 + (mod - s->b.mods); }

/* y[n, W.rows] += (x·Wᵀ) ⊙ gate (rows split between the clean and the step's gates, as above). */
static pi0_status matmul_gated(pi0_session *s, float *y, const float *x, int n, const pi0_mat *W, const float *gate) {
    const int f = frozen_rows(s, gate);
    if (f > 0) {
        FORWARD_ERR(op_matmul(&s->d, y, x, f, W, &(pi0_epilogue){.gate = mod_clean(s, gate), .accumulate = 1}));
        y += (size_t)f * W->rows, x += (size_t)f * W->cols, n -= f;
    }
    return op_matmul(&s->d, y, x, n, W, &(pi0_epilogue){.gate = gate, .accumulate = 1});
}

static pi0_status gemma_mlp(pi0_session *s, const gemma_layer *L, const float *h, int n, float *x,
                            const float *gate) {
    /* gate and up as one GEMM over the stacked [gate; up] matrix, the GeGLU product fused; its
     * output is read only by the down projection (gemm_input) */
    FORWARD_ERR(op_matmul(&s->d, s->b.mlp1, h, n, &L->gate_up, &(pi0_epilogue){.geglu = 1, .gemm_input = 1}));
    return matmul_gated(s, x, s->b.mlp1, n, &L->down, gate);
}

/* Gemma RMSNorm (1 + w), or with mod (π0.5's adaRMS, gemma_pytorch.py / gemma.py RMSNorm with
 * cond): rms(x)·(1 + scale) + shift with [scale | shift | gate] = mod. */
static pi0_status gemma_norm(pi0_session *s, float *y, const float *x, int n, const pi0_gemma_config *g,
                             const pi0_vec *w, const float *mod) {
    const int f = frozen_rows(s, mod);
    if (f > 0) {
        FORWARD_ERR(op_rmsnorm_mod(&s->d, y, x, f, g->width, mod_clean(s, mod), g->norm_eps));
        y += (size_t)f * g->width, x += (size_t)f * g->width, n -= f;
    }
    if (mod) return op_rmsnorm_mod(&s->d, y, x, n, g->width, mod, g->norm_eps);
    return op_rmsnorm(&s->d, y, x, n, g->width, w, g->norm_eps);
}

/* One Gemma block over n rows of x (gemma.py Block / PaliGemmaWithExpert layer loop):
 *   h = RMSNorm(x); q,k,v = h·W; RoPE(q, k); the layer's K/V go to the cache at row k0;
 *   x += o(attention(q, cache rows [0, k0 + n))); x += mlp(RMSNorm(x)).
 * π0.5's expert passes mod_in / mod_post ([scale | shift | gate], 3D each): adaptive norms, and
 * each residual branch multiplied by its gate. With kv_only, stops after writing K/V (the
 * prefix's last layer: nothing else reaches the actions). With tp (exact RTC guidance, suffix
 * only), keeps what the backward reads (vjp.c): q and the MLP's input are written into the tape
 * instead of b->q / b->h (the same ops), the stream is copied at the input and after attention. */
static pi0_status gemma_block(pi0_session *s, const gemma_layer *L, const pi0_gemma_config *g,
                              int l, float *x, int n, int k0, const uint8_t *allowed, int kv_only,
                              const float *mod_in, const float *mod_post, const pi0_tape_layer *tp) {
    pi0_dispatch *d = &s->d;
    pi0_buffers *b = &s->b;
    const int D = g->width, kd = g->num_kv_heads * g->head_dim;
    float *kc = cache_layer(s, b->kcache, l), *vc = cache_layer(s, b->vcache, l);
    float *q = tp ? tp->q : b->q, *h2 = tp ? tp->h2 : b->h;
    if (tp) FORWARD_ERR(op_copy_rows(d, tp->x_in, D, x, D, n, D));
    FORWARD_ERR(gemma_norm(s, b->h, x, n, g, &L->in_norm, mod_in));
    FORWARD_ERR(op_matmul(d, kc + (size_t)k0 * kd, b->h, n, &L->k, NULL));
    FORWARD_ERR(op_matmul(d, vc + (size_t)k0 * kd, b->h, n, &L->v, NULL));
    FORWARD_ERR(op_rope(d, kc + (size_t)k0 * kd, n, g->num_kv_heads, g->head_dim, b->pos, g->rope_theta));
    if (kv_only) return PI0_OK;
    FORWARD_ERR(op_matmul(d, q, b->h, n, &L->q, NULL));
    FORWARD_ERR(op_rope(d, q, n, g->num_heads, g->head_dim, b->pos, g->rope_theta));
    FORWARD_ERR(op_attention(d, b->att, q, kc, vc, n, k0 + n, g->num_heads, g->num_kv_heads,
                             g->head_dim, allowed, 1.0f / sqrtf((float)g->head_dim)));
    /* x += o(att) (·gate) */
    if (mod_in) FORWARD_ERR(matmul_gated(s, x, b->att, n, &L->o, mod_in + 2 * D));
    else FORWARD_ERR(op_matmul(d, x, b->att, n, &L->o, &(pi0_epilogue){.accumulate = 1}));
    if (tp) FORWARD_ERR(op_copy_rows(d, tp->x_mid, D, x, D, n, D));
    FORWARD_ERR(gemma_norm(s, h2, x, n, g, &L->post_norm, mod_post));
    return gemma_mlp(s, L, h2, n, x, mod_post ? mod_post + 2 * D : NULL);
}

/* pi0.py sample_actions: the prefix pass with the VLM weights, filling the KV cache. */
static pi0_status prefix_pass_ops(pi0_session *s, int np, const uint8_t *allowed, int dump);
typedef struct {
    int np, dump;
    const uint8_t *allowed;
} pass_args;
static pi0_status prefix_pass_fn(pi0_session *s, void *arg) {
    const pass_args *a = arg;
    return prefix_pass_ops(s, a->np, a->allowed, a->dump);
}
/* One graph per (prefix length, masked or not): key tag 2 in the top bits. */
static pi0_status prefix_pass(pi0_session *s, int np, const uint8_t *allowed, int dump) {
    pass_args a = {np, dump, allowed};
    return graphed(s, (uint64_t)2 << 62 | (uint64_t)(allowed != NULL) << 32 | (uint64_t)np, dump, prefix_pass_fn,
                   &a);
}
static pi0_status prefix_pass_ops(pi0_session *s, int np, const uint8_t *allowed, int dump) {
    const pi0_gemma_config *g = &s->cfg->vlm;
    const int kd = g->num_kv_heads * g->head_dim;
    char name[32];
    s->d.ex.comp = COMP_PREFIX;
    for (int l = 0; l < g->depth; l++) {
        FORWARD_ERR(gemma_block(s, &s->model->w.vlm.layers[l], g, l, s->b.x, np, 0, allowed,
                                l == g->depth - 1, NULL, NULL, NULL));
        if (dump && l == 0 && g->depth > 1) FORWARD_ERR(dump_prefix(s, "vlm_layer0", s->b.x, np, g->width));
        if (dump) {
            snprintf(name, sizeof name, "prefix_k.%d", l);
            FORWARD_ERR(dump_prefix(s, name, cache_layer(s, s->b.kcache, l), np, kd));
            snprintf(name, sizeof name, "prefix_v.%d", l);
            FORWARD_ERR(dump_prefix(s, name, cache_layer(s, s->b.vcache, l), np, kd));
        }
    }
    return PI0_OK;
}

/* ---------------------------------------------------------------- suffix */

/* pi0.py embed_suffix for one step: y = [state_tok; action_time_mlp_out(silu(
 * action_time_mlp_in(concat[action_in_proj(x_t), time_emb])))]. */
static pi0_status embed_suffix(pi0_session *s, double t, float *y) {
    const pi0_config *c = s->cfg;
    const pi0_weights *w = &s->model->w;
    pi0_dispatch *d = &s->d;
    pi0_buffers *b = &s->b;
    const int H = c->action_horizon, We = c->expert.width;
    FORWARD_ERR(op_matmul(d, b->tmp, b->x_t, H, &w->action_in, &(pi0_epilogue){.bias = &w->action_in_b}));
    FORWARD_ERR(op_time_embed(d, b->time_emb, t, We, c->time_min_period, c->time_max_period));
    FORWARD_ERR(op_copy_rows(d, b->act_time, 2 * We, b->tmp, We, H, We));          /* actions first */
    const int f = s->rtc_frozen; /* training-time RTC: the frozen rows' own time, 0 (clean) */
    if (f > 0) {
        FORWARD_ERR(op_time_embed(d, b->time_emb0, 0.0, We, c->time_min_period, c->time_max_period));
        FORWARD_ERR(op_copy_rows(d, b->act_time + We, 2 * We, b->time_emb0, 0, f, We));
    }
    FORWARD_ERR(op_copy_rows(d, b->act_time + (size_t)f * 2 * We + We, 2 * We, b->time_emb, 0, H - f, We)); /* then time */
    FORWARD_ERR(op_matmul(d, b->tmp, b->act_time, H, &w->time_in, &(pi0_epilogue){.bias = &w->time_in_b}));
    if (s->taping) FORWARD_ERR(op_copy_rows(d, s->tape->pre_silu, We, b->tmp, We, H, We)); /* silu's input (vjp.c) */
    FORWARD_ERR(op_silu(d, b->tmp, (size_t)H * We));
    FORWARD_ERR(op_copy_rows(d, y, We, b->state_tok, We, 1, We));
    return op_matmul(d, y + We, b->tmp, H, &w->time_out, &(pi0_epilogue){.bias = &w->time_out_b});
}

/* pi0.py embed_suffix, π0.5 (spec §6.4): the flow time conditions every expert norm.
 *   c = silu(time_mlp_out(silu(time_mlp_in(time_emb))))      the adaRMS condition [We]
 *   mods = [every *norm.dense(c)]                             one stacked GEMM, once per step
 *   y = action_in_proj(x_t)                                   [H, We], no state token */
static pi0_status embed_suffix_pi05(pi0_session *s, double t, float *y, int step, int dump) {
    const pi0_config *c = s->cfg;
    const pi0_weights *w = &s->model->w;
    pi0_dispatch *d = &s->d;
    pi0_buffers *b = &s->b;
    const int H = c->action_horizon, We = c->expert.width;
    char name[32];
    FORWARD_ERR(op_time_embed(d, b->time_emb, t, We, c->time_min_period, c->time_max_period));
    FORWARD_ERR(op_matmul(d, b->tmp, b->time_emb, 1, &w->time_in, &(pi0_epilogue){.bias = &w->time_in_b}));
    FORWARD_ERR(op_silu(d, b->tmp, (size_t)We));
    FORWARD_ERR(op_matmul(d, b->cond, b->tmp, 1, &w->time_out, &(pi0_epilogue){.bias = &w->time_out_b}));
    FORWARD_ERR(op_silu(d, b->cond, (size_t)We));
    if (dump) {
        snprintf(name, sizeof name, "adarms_cond.%d", step);
        FORWARD_ERR(dump_tensor(s, name, b->cond, 0, We));
    }
    FORWARD_ERR(op_matmul(d, b->mods, b->cond, 1, &w->mods, &(pi0_epilogue){.bias = &w->mods_b}));
    if (s->rtc_frozen > 0) { /* training-time RTC: the modulations of flow time 0 for the frozen rows */
        FORWARD_ERR(op_time_embed(d, b->time_emb0, 0.0, We, c->time_min_period, c->time_max_period));
        FORWARD_ERR(op_matmul(d, b->tmp, b->time_emb0, 1, &w->time_in, &(pi0_epilogue){.bias = &w->time_in_b}));
        FORWARD_ERR(op_silu(d, b->tmp, (size_t)We));
        FORWARD_ERR(op_matmul(d, b->cond0, b->tmp, 1, &w->time_out, &(pi0_epilogue){.bias = &w->time_out_b}));
        FORWARD_ERR(op_silu(d, b->cond0, (size_t)We));
        FORWARD_ERR(op_matmul(d, b->mods0, b->cond0, 1, &w->mods, &(pi0_epilogue){.bias = &w->mods_b}));
    }
    return op_matmul(d, y, b->x_t, H, &w->action_in, &(pi0_epilogue){.bias = &w->action_in_b});
}

/* Suffix attention (make_attn_mask): every row sees the valid prefix. π0 (ar = [1, 1, 0…]): the
 * state row sees itself, action rows see the state and every action. π0.5 (ar = [1, 0…]): the
 * action rows see each other. Positions continue after the valid prefix. */
static pi0_status suffix_mask_and_positions(pi0_session *s, int np) {
    pi0_buffers *b = &s->b;
    const int S = b->suffix_len, keys = np + S, pi05 = s->cfg->pi05;
    int n_valid = 0;
    for (int j = 0; j < np; j++) n_valid += b->valid[j];
    for (int i = 0; i < S; i++) {
        uint8_t *row = b->allowed_host + (size_t)i * keys;
        for (int j = 0; j < np; j++) row[j] = b->valid[j];
        for (int j = 0; j < S; j++) row[np + j] = pi05 || i > 0 || j == 0;
        b->pos_host[i] = n_valid + i;
    }
    FORWARD_ERR(op_upload(&s->d, b->allowed, b->allowed_host, (size_t)S * keys));
    return op_upload(&s->d, b->pos, b->pos_host, (size_t)S * sizeof(int32_t));
}

/* One Euler step's velocity (pi0.py sample_actions step()): suffix through the expert layers
 * against the cached prefix, final norm, action_out_proj on the action rows. */
static pi0_status denoise_step(pi0_session *s, int np, double t, int step, int dump) {
    const pi0_config *c = s->cfg;
    const pi0_weights *w = &s->model->w;
    const pi0_gemma_config *g = &c->expert;
    pi0_buffers *b = &s->b;
    const int S = b->suffix_len, We = g->width, first = S - c->action_horizon, D3 = 3 * We;
    float *y = b->x; /* the prefix stream is no longer needed: the cache holds its K/V */
    const float *mods = c->pi05 ? b->mods : NULL; /* π0.5: [layer l: in, post][final], 3We each */
    char name[32];
    FORWARD_ERR(c->pi05 ? embed_suffix_pi05(s, t, y, step, dump) : embed_suffix(s, t, y));
    if (dump) {
        snprintf(name, sizeof name, "suffix_emb.%d", step);
        FORWARD_ERR(dump_tensor(s, name, y, S, We));
    }
    for (int l = 0; l < g->depth; l++) {
        FORWARD_ERR(gemma_block(s, &w->expert.layers[l], g, l, y, S, np, b->allowed, 0,
                                mods ? mods + (size_t)(2 * l) * D3 : NULL,
                                mods ? mods + (size_t)(2 * l + 1) * D3 : NULL,
                                s->taping ? &s->tape->layers[l] : NULL));
        if (dump && l == 0) {
            snprintf(name, sizeof name, "expert_layer0.%d", step);
            FORWARD_ERR(dump_tensor(s, name, y, S, We));
        }
    }
    if (s->taping) FORWARD_ERR(op_copy_rows(&s->d, s->tape->x_out, We, y, We, S, We)); /* the final norm's input */
    /* the final norm (π0.5: adaptive, its gate unused), then action_out_proj on the action rows */
    FORWARD_ERR(gemma_norm(s, b->h, y, S, g, &w->expert.final_norm, mods ? mods + (size_t)2 * g->depth * D3 : NULL));
    FORWARD_ERR(op_matmul(&s->d, b->v_t, b->h + (size_t)first * We, c->action_horizon, &w->action_out,
                          &(pi0_epilogue){.bias = &w->action_out_b}));
    if (dump) {
        snprintf(name, sizeof name, "v_t.%d", step);
        FORWARD_ERR(dump_tensor(s, name, b->v_t, c->action_horizon, c->action_dim));
    }
    return PI0_OK;
}

/* ---------------------------------------------------------------- policy */

/* Guided RTC on the step's velocity (lerobot's RTCProcessor.denoise_step: see include/pi0.h), with
 * time = 1 + k·dt in double as lerobot's loop has it. lerobot computes x1 = x_t − time·v_t,
 * err = (prev − x1)⊙w, correction = autograd.grad(x1, x_t, err), v_t − g·correction; here with
 * e = −err (negation is exact, so every rounding is lerobot's):
 *     e = (x_t + (−time)·v_t) − prev = x1 − prev;   e ⊙= w
 *   lerobot's Jacobian (it takes v_t before enabling gradients on x_t: the VJP is the identity):
 *     correction = err                                 v_t += g·e
 *   exact (jacobian = exact; the VJP through the action expert, vjp.c):
 *     correction = Jᵀerr = err − time·(∂v_t/∂x_t)ᵀ·err  e += (−time)·(∂v_t/∂x_t)ᵀ·e;  v_t += g·e
 * which is v_t − g·correction. A dump gives lerobot's correction as rtc_correction.k. */
static pi0_status rtc_guide(pi0_session *s, int np, int step, float max_weight, int exact, int dump) {
    const pi0_config *c = s->cfg;
    pi0_dispatch *d = &s->d;
    pi0_buffers *b = &s->b;
    const int H = c->action_horizon, A = c->action_dim;
    const size_t HA = (size_t)H * A;
    const double time = 1.0 + (double)step * (-1.0 / (double)c->num_steps);
    FORWARD_ERR(op_copy_rows(d, b->rtc_err, A, b->x_t, A, H, A));
    FORWARD_ERR(op_axpy(d, b->rtc_err, b->v_t, -(float)time, HA));
    FORWARD_ERR(op_axpy(d, b->rtc_err, b->rtc_prev, -1.0f, HA));
    FORWARD_ERR(op_mul(d, b->rtc_err, b->rtc_w, HA));
    if (exact) {
        FORWARD_ERR(vjp_backward(s, np, b->rtc_err, s->tape->jt_err));
        FORWARD_ERR(op_axpy(d, b->rtc_err, s->tape->jt_err, -(float)time, HA));
    }
    const float g = pi0_rtc_guidance_weight(step, c->num_steps, max_weight);
    if (dump) { /* the correction −e, in place (e − 2e: exact); then v_t += (−g)·(−e), the same bits */
        char name[32];
        snprintf(name, sizeof name, "rtc_correction.%d", step);
        FORWARD_ERR(op_axpy(d, b->rtc_err, b->rtc_err, -2.0f, HA));
        FORWARD_ERR(dump_tensor(s, name, b->rtc_err, H, A));
    }
    return op_axpy(d, b->v_t, b->rtc_err, dump ? -g : g, HA);
}

/* The Euler loop (pi0.py sample_actions): every step's velocity, x_t += dt·v_t. Its op sequence
 * and buffers are the same for every call with the same prefix length (and RTC guidance weight
 * and Jacobian), so a backend may record it once and replay it (CUDA graphs): keyed by those. */
static pi0_status denoise(pi0_session *s, int np, const pi0_item *it, int dump) {
    const pi0_config *c = s->cfg;
    pi0_dispatch *d = &s->d;
    const size_t HA = (size_t)c->action_horizon * c->action_dim;
    const float dt = -1.0f / (float)c->num_steps;
    const int A = c->action_dim, frozen = it->rtc_prev && it->rtc_trained ? it->rtc_frozen : 0;
    const int rtc = it->rtc_prev != NULL && !it->rtc_trained; /* guided */
    const int exact = rtc && it->rtc_exact; /* with the exact VJP (never with frozen rows) */
    uint32_t wbits = 0;
    memcpy(&wbits, &it->rtc_max_weight, sizeof wbits);
    /* apart from the prefix graphs' keys (tags 1, 2 in bits 62-63): a guided key has bit 31 (text
     * rows never reach it), a positive weight's sign bit leaves bit 63 clear, frozen < H; the
     * exact Jacobian bit 29 */
    const uint64_t key = (uint64_t)np | (rtc ? (1ull << 31) | ((uint64_t)wbits << 32) : 0) |
                         (frozen ? (1ull << 30) | ((uint64_t)frozen << 32) : 0) | (exact ? 1ull << 29 : 0);
    int replayed = 0, rerun = 0;
    if (exact && frozen) return PI0_ERR_ARG; /* refused by the API: frozen rows are not differentiated */
    if (exact) FORWARD_ERR(vjp_alloc(s)); /* before any graph is recorded */
    s->rtc_frozen = frozen;
    s->taping = exact;
    if (rtc || frozen) FORWARD_ERR(op_upload(d, s->b.rtc_prev, it->rtc_prev, HA * sizeof(float)));
    if (rtc) FORWARD_ERR(op_upload(d, s->b.rtc_w, it->rtc_w, HA * sizeof(float)));
    if (!dump) FORWARD_ERR(op_graph_begin(d, key, &replayed));
    if (replayed) return PI0_OK;
    for (int pass = 0; pass < 2; pass++) {
        for (int step = 0; step < c->num_steps; step++) {
            const double t = pi0_flow_time(s->params.flow_time, step, c->num_steps); /* double: §6.5 */
            if (frozen) FORWARD_ERR(op_copy_rows(d, s->b.x_t, A, s->b.rtc_prev, A, frozen, A)); /* the prefix */
            FORWARD_ERR(denoise_step(s, np, t, step, dump));
            if (rtc) FORWARD_ERR(rtc_guide(s, np, step, it->rtc_max_weight, exact, dump));
            FORWARD_ERR(op_axpy(d, s->b.x_t, s->b.v_t, dt, HA)); /* x_t + dt·v_t */
        }
        if (frozen) FORWARD_ERR(op_copy_rows(d, s->b.x_t, A, s->b.rtc_prev, A, frozen, A)); /* returned exactly */
        if (dump || pass) break;
        FORWARD_ERR(op_graph_end(d, key, &rerun)); /* recorded (and launched), or run again */
        if (!rerun) break;
    }
    return PI0_OK;
}

pi0_status pi0_forward(pi0_session *s, const pi0_item *it, float *actions, int dump) {
    const pi0_config *c = s->cfg;
    const pi0_weights *w = &s->model->w;
    pi0_dispatch *d = &s->d;
    pi0_buffers *b = &s->b;
    const size_t HA = (size_t)c->action_horizon * c->action_dim;
    double host[PI0_MARKS];
    int np = 0;
    const uint8_t *prefix_allowed = NULL;
    FORWARD_ERR(op_mark(d, 0, host));
    FORWARD_ERR(embed_prefix(s, it, &np, &prefix_allowed, dump));
    FORWARD_ERR(op_mark(d, 1, host));
    FORWARD_ERR(prefix_pass(s, np, prefix_allowed, dump));
    FORWARD_ERR(op_mark(d, 2, host));

    /* π0: the state token is the same at every step: computed once. (π0.5 reads the state only
     * as text in the prompt.) */
    d->ex.comp = COMP_SUFFIX;
    if (!c->pi05) {
        FORWARD_ERR(op_upload(d, b->state, it->state, (size_t)c->state_dim * sizeof(float)));
        FORWARD_ERR(op_matmul(d, b->state_tok, b->state, 1, &w->state_proj,
                              &(pi0_epilogue){.bias = &w->state_proj_b}));
    }
    FORWARD_ERR(suffix_mask_and_positions(s, np));
    FORWARD_ERR(op_upload(d, b->x_t, it->noise, HA * sizeof(float)));
    FORWARD_ERR(denoise(s, np, it, dump));
    FORWARD_ERR(op_mark(d, 3, host));
    FORWARD_ERR(op_download(d, actions, b->x_t, HA * sizeof(float))); /* waits for the queue */
    s->timing.vision_ms += op_elapsed_ms(d, 0, 1, host); /* embed_prefix is dominated by SigLIP */
    s->timing.prefix_ms += op_elapsed_ms(d, 1, 2, host);
    s->timing.denoise_ms += op_elapsed_ms(d, 2, 3, host);
    return PI0_OK;
}
