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

pi0_status buffers_alloc(pi0_buffers *b, const pi0_config *c) {
    memset(b, 0, sizeof *b);
    const int n_img = pi0_config_image_tokens(c), p = c->vision.patch_size,
              S = c->vision.image_size;
    const int qd = c->vlm.num_heads * c->vlm.head_dim, kd = c->vlm.num_kv_heads * c->vlm.head_dim;
    const int maxw = MAXI(c->vision.width, MAXI(c->vlm.width, c->expert.width));
    const int maxf = MAXI(c->vision.mlp_dim, MAXI(c->vlm.mlp_dim, c->expert.mlp_dim));
    b->max_prefix = c->num_cameras * n_img + c->max_token_len;
    b->suffix_len = 1 + c->action_horizon;
    b->cap_rows = MAXI(b->max_prefix, b->suffix_len);
    const size_t R = (size_t)b->cap_rows, keys = (size_t)b->max_prefix + b->suffix_len;
    const size_t H = c->action_horizon, A = c->action_dim, We = c->expert.width;
#define ALLOC(ptr, n) ((ptr) = calloc((n), sizeof *(ptr)), (ptr) != NULL)
    int ok = ALLOC(b->x, R * maxw) && ALLOC(b->h, R * maxw) && ALLOC(b->tmp, R * maxw) &&
             ALLOC(b->q, R * MAXI(c->vision.width, qd)) && ALLOC(b->att, R * MAXI(c->vision.width, qd)) &&
             ALLOC(b->k, (size_t)n_img * c->vision.width) && ALLOC(b->v, (size_t)n_img * c->vision.width) &&
             ALLOC(b->mlp1, R * maxf) && ALLOC(b->mlp2, R * maxf) &&
             ALLOC(b->patches, (size_t)n_img * 3 * p * p) && ALLOC(b->black, (size_t)3 * S * S) &&
             ALLOC(b->kcache, (size_t)c->vlm.depth * keys * kd) &&
             ALLOC(b->vcache, (size_t)c->vlm.depth * keys * kd) && ALLOC(b->pos, R) &&
             ALLOC(b->valid, b->max_prefix) && ALLOC(b->layout_row, b->max_prefix) &&
             ALLOC(b->allowed, R * keys) && ALLOC(b->state_tok, We) && ALLOC(b->time_emb, We) &&
             ALLOC(b->act_time, H * 2 * We) && ALLOC(b->x_t, H * A) && ALLOC(b->v_t, H * A) &&
             ALLOC(b->dump, (size_t)b->max_prefix * MAXI(maxw, kd));
#undef ALLOC
    if (!ok) {
        buffers_free(b);
        return PI0_ERR_NOMEM;
    }
    for (size_t i = 0; i < (size_t)3 * S * S; i++) b->black[i] = -1.0f; /* black = 0 → −1 */
    return PI0_OK;
}

void buffers_free(pi0_buffers *b) {
    float *fl[] = {b->x, b->h, b->tmp, b->q, b->att, b->k, b->v, b->mlp1, b->mlp2, b->patches,
                   b->black, b->kcache, b->vcache, b->state_tok, b->time_emb, b->act_time,
                   b->x_t, b->v_t, b->dump};
    for (size_t i = 0; i < sizeof fl / sizeof *fl; i++) free(fl[i]);
    free(b->pos);
    free(b->valid);
    free(b->layout_row);
    free(b->allowed);
    memset(b, 0, sizeof *b);
}

/* ---------------------------------------------------------------- dumps */

/* Hands a named intermediate to the dump callback, then to the inject callback, which may
 * overwrite it in place (pi0 check feeds each component the reference's inputs that way). */
static void dump_tensor(pi0_session *s, const char *name, float *data, int rows, int cols) {
    int64_t shape[2] = {rows, cols};
    if (s->params.dump) s->params.dump(s->params.dump_user, name, data, 2, shape);
    if (s->params.inject) s->params.inject(s->params.inject_user, name, data, 2, shape);
}

/* Dumps prefix rows [n, cols] (row stride `stride`) in openpi's full prefix layout; padding
 * rows that the compact prefix dropped are zero. An inject callback's changes are copied back. */
static void dump_prefix(pi0_session *s, const char *name, float *rows, int n, int cols, int stride) {
    const int full = s->b.max_prefix;
    memset(s->b.dump, 0, (size_t)full * cols * sizeof(float));
    for (int r = 0; r < n; r++)
        memcpy(s->b.dump + (size_t)s->b.layout_row[r] * cols, rows + (size_t)r * stride,
               cols * sizeof(float));
    dump_tensor(s, name, s->b.dump, full, cols);
    if (s->params.inject) /* gather what the callback may have replaced back into the live rows */
        for (int r = 0; r < n; r++)
            memcpy(rows + (size_t)r * stride, s->b.dump + (size_t)s->b.layout_row[r] * cols,
                   cols * sizeof(float));
}

/* ---------------------------------------------------------------- SigLIP */

/* Conv2d(3→W, kernel p, stride p) as a matmul: image [3, S, S] → patches [n_tok, 3·p·p] in
 * (channel, ky, kx) order, tokens row-major over the patch grid. */
static void siglip_patchify(const pi0_siglip_config *v, const float *img, float *patches) {
    const int S = v->image_size, p = v->patch_size, g = S / p;
    for (int py = 0; py < g; py++)
        for (int px = 0; px < g; px++) {
            float *out = patches + ((size_t)py * g + px) * 3 * p * p;
            for (int ch = 0; ch < 3; ch++)
                for (int ky = 0; ky < p; ky++)
                    for (int kx = 0; kx < p; kx++)
                        *out++ = img[((size_t)ch * S + py * p + ky) * S + px * p + kx];
        }
}

/* SiglipVisionEmbeddings.forward: patch_embedding(pixel_values) + position_embedding. */
static pi0_status siglip_embed(pi0_session *s, const float *img, float *x) {
    const pi0_siglip_config *v = &s->cfg->vision;
    const siglip_weights *w = &s->model->w.vision;
    const int n = pi0_config_image_tokens(s->cfg);
    siglip_patchify(v, img, s->b.patches);
    pi0_epilogue ep = {.bias = w->patch_b};
    FORWARD_ERR(op_matmul(&s->d, x, s->b.patches, n, &w->patch, &ep));
    return op_add(&s->d, x, w->pos, (size_t)n * v->width);
}

/* SiglipEncoderLayer.forward: x += attn(LN1(x)); x += mlp(LN2(x)). */
static pi0_status siglip_block(pi0_session *s, const siglip_layer *L, float *x, int n) {
    const pi0_siglip_config *v = &s->cfg->vision;
    pi0_dispatch *d = &s->d;
    pi0_buffers *b = &s->b;
    const int W = v->width, hd = W / v->num_heads;
    FORWARD_ERR(op_layernorm(d, b->h, x, n, W, L->ln1_w, L->ln1_b, v->norm_eps));
    FORWARD_ERR(op_matmul(d, b->q, b->h, n, &L->q, &(pi0_epilogue){.bias = L->q_b}));
    FORWARD_ERR(op_matmul(d, b->k, b->h, n, &L->k, &(pi0_epilogue){.bias = L->k_b}));
    FORWARD_ERR(op_matmul(d, b->v, b->h, n, &L->v, &(pi0_epilogue){.bias = L->v_b}));
    FORWARD_ERR(op_attention(d, b->att, b->q, b->k, b->v, n, n, v->num_heads, v->num_heads, hd,
                             NULL, 1.0f / sqrtf((float)hd)));
    /* x += out_proj(att) */
    FORWARD_ERR(op_matmul(d, x, b->att, n, &L->o, &(pi0_epilogue){.bias = L->o_b, .accumulate = 1}));
    FORWARD_ERR(op_layernorm(d, b->h, x, n, W, L->ln2_w, L->ln2_b, v->norm_eps));
    /* x += fc2(gelu_tanh(fc1(h))) */
    FORWARD_ERR(op_matmul(d, b->mlp1, b->h, n, &L->fc1, &(pi0_epilogue){.bias = L->fc1_b, .gelu = 1}));
    return op_matmul(d, x, b->mlp1, n, &L->fc2, &(pi0_epilogue){.bias = L->fc2_b, .accumulate = 1});
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
        dump_tensor(s, name, x, n, v->width);
    }
    for (int l = 0; l < v->depth; l++) {
        FORWARD_ERR(siglip_block(s, &w->layers[l], x, n));
        if (dump && l == 0) {
            snprintf(name, sizeof name, "vision_block0.%d", cam);
            dump_tensor(s, name, x, n, v->width);
        }
    }
    FORWARD_ERR(op_layernorm(&s->d, x, x, n, v->width, w->post_w, w->post_b, v->norm_eps));
    return op_matmul(&s->d, out, x, n, &w->proj, &(pi0_epilogue){.bias = w->proj_b});
}

/* ---------------------------------------------------------------- prefix */

/* pi0.py embed_prefix: [cam0 tokens, cam1, cam2, text tokens·√width] with the pad mask, then
 * make_attn_mask (all ar = 0 → attend to every valid token) and positions = cumsum(pad) − 1.
 * With compact_prefix, masked cameras and padded tokens are left out: they are never attended
 * to and do not advance positions, so every valid row computes exactly the same values. */
static pi0_status embed_prefix(pi0_session *s, const pi0_item *it, int *n_rows, int dump) {
    const pi0_config *c = s->cfg;
    pi0_buffers *b = &s->b;
    const int C = c->num_cameras, n_img = pi0_config_image_tokens(c), D = c->vlm.width;
    const int S = c->vision.image_size, compact = s->params.compact_prefix;
    char name[32];
    int row = 0;
    for (int cam = 0; cam < C; cam++) {
        const int given = cam < it->num_cameras;
        const int valid = given && (!it->image_masks || it->image_masks[cam]);
        if (compact && !valid) {
            if (dump) { /* a masked camera's embedding is padding: dumped as zeros */
                memset(b->dump, 0, (size_t)n_img * D * sizeof(float));
                snprintf(name, sizeof name, "img_emb.%d", cam);
                dump_tensor(s, name, b->dump, n_img, D);
            }
            continue;
        }
        const float *img = given ? it->images + (size_t)cam * 3 * S * S : b->black;
        FORWARD_ERR(embed_image(s, img, b->x + (size_t)row * D, cam, dump));
        if (dump) {
            snprintf(name, sizeof name, "img_emb.%d", cam);
            dump_tensor(s, name, b->x + (size_t)row * D, n_img, D);
        }
        for (int t = 0; t < n_img; t++) {
            b->valid[row + t] = (uint8_t)valid;
            b->layout_row[row + t] = cam * n_img + t;
        }
        row += n_img;
    }
    /* embed_language_tokens: embedding row × sqrt(width). */
    const pi0_mat *E = &s->model->w.embed;
    const float scale = sqrtf((float)D);
    for (int i = 0; i < c->max_token_len; i++) {
        const int valid = it->token_mask[i] != 0, id = it->tokens[i];
        if (compact && !valid) continue;
        float *xr = b->x + (size_t)row * D;
        if (id >= 0 && id < E->rows) {
            convert_to_f32(xr, (const char *)E->data + (size_t)id * D * dtype_size(E->dtype),
                           E->dtype, D);
            for (int d = 0; d < D; d++) xr[d] *= scale;
        } else { /* only reachable for padded tokens in the full layout */
            memset(xr, 0, D * sizeof *xr);
        }
        b->valid[row] = (uint8_t)valid;
        b->layout_row[row] = C * n_img + i;
        row++;
    }
    *n_rows = row;
    if (dump) dump_prefix(s, "prefix_emb", b->x, row, D, D);
    int cum = 0;
    for (int r = 0; r < row; r++) {
        cum += b->valid[r];
        b->pos[r] = cum - 1;
    }
    for (int i = 0; i < row; i++)
        for (int j = 0; j < row; j++) b->allowed[(size_t)i * row + j] = b->valid[i] && b->valid[j];
    return PI0_OK;
}

/* ---------------------------------------------------------------- Gemma */

/* Row stride of one layer's K/V cache: the prefix rows, then room for the suffix. */
static float *cache_layer(pi0_session *s, float *cache, int l) {
    const pi0_gemma_config *g = &s->cfg->vlm;
    return cache + (size_t)l * (s->b.max_prefix + s->b.suffix_len) * g->num_kv_heads * g->head_dim;
}

/* Gemma MLP (gemma.py FeedForward): x += down(gelu_tanh(gate(h)) ⊙ up(h)). */
static pi0_status gemma_mlp(pi0_session *s, const gemma_layer *L, const float *h, int n, float *x) {
    FORWARD_ERR(op_matmul(&s->d, s->b.mlp2, h, n, &L->up, NULL));
    FORWARD_ERR(op_matmul(&s->d, s->b.mlp1, h, n, &L->gate, &(pi0_epilogue){.gelu = 1, .mul = s->b.mlp2}));
    return op_matmul(&s->d, x, s->b.mlp1, n, &L->down, &(pi0_epilogue){.accumulate = 1});
}

/* One Gemma block over n rows of x (gemma.py Block / PaliGemmaWithExpert layer loop):
 *   h = RMSNorm(x); q,k,v = h·W; RoPE(q, k); the layer's K/V go to the cache at row k0;
 *   x += o(attention(q, cache rows [0, k0 + n))); x += mlp(RMSNorm(x)).
 * With kv_only, stops after writing K/V (the prefix's last layer: nothing else reaches the
 * actions). */
static pi0_status gemma_block(pi0_session *s, const gemma_layer *L, const pi0_gemma_config *g,
                              int l, float *x, int n, int k0, const uint8_t *allowed, int kv_only) {
    pi0_dispatch *d = &s->d;
    pi0_buffers *b = &s->b;
    const int D = g->width, kd = g->num_kv_heads * g->head_dim;
    float *kc = cache_layer(s, b->kcache, l), *vc = cache_layer(s, b->vcache, l);
    FORWARD_ERR(op_rmsnorm(d, b->h, x, n, D, L->in_norm, g->norm_eps));
    FORWARD_ERR(op_matmul(d, kc + (size_t)k0 * kd, b->h, n, &L->k, NULL));
    FORWARD_ERR(op_matmul(d, vc + (size_t)k0 * kd, b->h, n, &L->v, NULL));
    FORWARD_ERR(op_rope(d, kc + (size_t)k0 * kd, n, g->num_kv_heads, g->head_dim, b->pos, g->rope_theta));
    if (kv_only) return PI0_OK;
    FORWARD_ERR(op_matmul(d, b->q, b->h, n, &L->q, NULL));
    FORWARD_ERR(op_rope(d, b->q, n, g->num_heads, g->head_dim, b->pos, g->rope_theta));
    FORWARD_ERR(op_attention(d, b->att, b->q, kc, vc, n, k0 + n, g->num_heads, g->num_kv_heads,
                             g->head_dim, allowed, 1.0f / sqrtf((float)g->head_dim)));
    FORWARD_ERR(op_matmul(d, x, b->att, n, &L->o, &(pi0_epilogue){.accumulate = 1})); /* x += o(att) */
    FORWARD_ERR(op_rmsnorm(d, b->h, x, n, D, L->post_norm, g->norm_eps));
    return gemma_mlp(s, L, b->h, n, x);
}

/* pi0.py sample_actions: the prefix pass with the VLM weights, filling the KV cache. */
static pi0_status prefix_pass(pi0_session *s, int np, int dump) {
    const pi0_gemma_config *g = &s->cfg->vlm;
    const int kd = g->num_kv_heads * g->head_dim;
    char name[32];
    s->d.ex.comp = COMP_PREFIX;
    for (int l = 0; l < g->depth; l++) {
        FORWARD_ERR(gemma_block(s, &s->model->w.vlm.layers[l], g, l, s->b.x, np, 0, s->b.allowed,
                                l == g->depth - 1));
        if (dump && l == 0 && g->depth > 1) dump_prefix(s, "vlm_layer0", s->b.x, np, g->width, g->width);
        if (dump) {
            snprintf(name, sizeof name, "prefix_k.%d", l);
            dump_prefix(s, name, cache_layer(s, s->b.kcache, l), np, kd, kd);
            snprintf(name, sizeof name, "prefix_v.%d", l);
            dump_prefix(s, name, cache_layer(s, s->b.vcache, l), np, kd, kd);
        }
    }
    return PI0_OK;
}

/* ---------------------------------------------------------------- suffix */

/* pi0.py posemb_sincos: f = linspace(0, 1, d/2); period = min·(max/min)^f;
 * [sin(t·2π/period), cos(t·2π/period)]. */
static void time_embedding(double t, int d, double min_p, double max_p, float *out) {
    const int half = d / 2;
    for (int i = 0; i < half; i++) {
        double f = half > 1 ? (double)i / (half - 1) : 0.0;
        double period = min_p * pow(max_p / min_p, f);
        double arg = t * 2.0 * M_PI / period;
        out[i] = (float)sin(arg);
        out[half + i] = (float)cos(arg);
    }
}

/* pi0.py embed_suffix for one step: y = [state_tok; action_time_mlp_out(silu(
 * action_time_mlp_in(concat[action_in_proj(x_t), time_emb])))]. */
static pi0_status embed_suffix(pi0_session *s, double t, float *y) {
    const pi0_config *c = s->cfg;
    const pi0_weights *w = &s->model->w;
    pi0_buffers *b = &s->b;
    const int H = c->action_horizon, We = c->expert.width;
    FORWARD_ERR(op_matmul(&s->d, b->tmp, b->x_t, H, &w->action_in, &(pi0_epilogue){.bias = w->action_in_b}));
    time_embedding(t, We, c->time_min_period, c->time_max_period, b->time_emb);
    for (int r = 0; r < H; r++) {
        memcpy(b->act_time + (size_t)r * 2 * We, b->tmp + (size_t)r * We, We * sizeof(float));
        memcpy(b->act_time + (size_t)r * 2 * We + We, b->time_emb, We * sizeof(float));
    }
    FORWARD_ERR(op_matmul(&s->d, b->tmp, b->act_time, H, &w->time_in, &(pi0_epilogue){.bias = w->time_in_b}));
    FORWARD_ERR(op_silu(&s->d, b->tmp, (size_t)H * We));
    memcpy(y, b->state_tok, We * sizeof(float));
    return op_matmul(&s->d, y + We, b->tmp, H, &w->time_out, &(pi0_epilogue){.bias = w->time_out_b});
}

/* Suffix attention (make_attn_mask with ar = [1, 1, 0…]): every row sees the valid prefix; the
 * state row sees itself; action rows see the state and every action. */
static void suffix_mask_and_positions(pi0_session *s, int np) {
    pi0_buffers *b = &s->b;
    const int S = b->suffix_len, keys = np + S;
    int n_valid = 0;
    for (int j = 0; j < np; j++) n_valid += b->valid[j];
    for (int i = 0; i < S; i++) {
        uint8_t *row = b->allowed + (size_t)i * keys;
        for (int j = 0; j < np; j++) row[j] = b->valid[j];
        for (int j = 0; j < S; j++) row[np + j] = i == 0 ? j == 0 : 1;
        b->pos[i] = n_valid + i;
    }
}

/* One Euler step's velocity (pi0.py sample_actions step()): suffix through the expert layers
 * against the cached prefix, final norm, action_out_proj on the action rows. */
static pi0_status denoise_step(pi0_session *s, int np, double t, int step, int dump) {
    const pi0_config *c = s->cfg;
    const pi0_weights *w = &s->model->w;
    const pi0_gemma_config *g = &c->expert;
    pi0_buffers *b = &s->b;
    const int S = b->suffix_len, We = g->width;
    float *y = b->x; /* the prefix stream is no longer needed: the cache holds its K/V */
    char name[32];
    FORWARD_ERR(embed_suffix(s, t, y));
    if (dump) {
        snprintf(name, sizeof name, "suffix_emb.%d", step);
        dump_tensor(s, name, y, S, We);
    }
    for (int l = 0; l < g->depth; l++) {
        FORWARD_ERR(gemma_block(s, &w->expert.layers[l], g, l, y, S, np, b->allowed, 0));
        if (dump && l == 0) {
            snprintf(name, sizeof name, "expert_layer0.%d", step);
            dump_tensor(s, name, y, S, We);
        }
    }
    FORWARD_ERR(op_rmsnorm(&s->d, b->h, y, S, We, w->expert.final_norm, g->norm_eps));
    FORWARD_ERR(op_matmul(&s->d, b->v_t, b->h + We, S - 1, &w->action_out, &(pi0_epilogue){.bias = w->action_out_b}));
    if (dump) {
        snprintf(name, sizeof name, "v_t.%d", step);
        dump_tensor(s, name, b->v_t, S - 1, c->action_dim);
    }
    return PI0_OK;
}

/* ---------------------------------------------------------------- policy */

pi0_status pi0_forward(pi0_session *s, const pi0_item *it, float *actions, int dump) {
    const pi0_config *c = s->cfg;
    const pi0_weights *w = &s->model->w;
    pi0_buffers *b = &s->b;
    const size_t HA = (size_t)c->action_horizon * c->action_dim;
    double t0 = now_ms();
    int np = 0;
    FORWARD_ERR(embed_prefix(s, it, &np, dump));
    double t1 = now_ms();
    FORWARD_ERR(prefix_pass(s, np, dump));
    double t2 = now_ms();

    /* The state token is the same at every step: computed once. */
    s->d.ex.comp = COMP_SUFFIX;
    FORWARD_ERR(op_matmul(&s->d, b->state_tok, it->state, 1, &w->state_proj, &(pi0_epilogue){.bias = w->state_proj_b}));
    suffix_mask_and_positions(s, np);
    memcpy(b->x_t, it->noise, HA * sizeof(float));
    const float dt = -1.0f / (float)c->num_steps;
    for (int step = 0; step < c->num_steps; step++) {
        const double t = 1.0 - (double)step / c->num_steps;
        FORWARD_ERR(denoise_step(s, np, t, step, dump));
        for (size_t i = 0; i < HA; i++) b->x_t[i] += dt * b->v_t[i]; /* x_t + dt·v_t */
    }
    memcpy(actions, b->x_t, HA * sizeof(float));
    double t3 = now_ms();
    s->timing.vision_ms += t1 - t0; /* embed_prefix is dominated by SigLIP */
    s->timing.prefix_ms += t2 - t1;
    s->timing.denoise_ms += t3 - t2;
    return PI0_OK;
}
