/* vjp.c — the exact vector-Jacobian product of one denoise step's velocity, for guided real-time
 * chunking with PI0_RTC_JACOBIAN_EXACT (the RTC paper's Algorithm 1: Physical Intelligence's
 * reference implementation differentiates the guidance loss through the network).
 *
 * v_t = action_out(final_norm(expert layers(embed_suffix(x_t)))) with the prefix K/V cache held
 * fixed (the prefix does not depend on x_t). Given e [H, A], vjp_backward computes
 * (∂v_t/∂x_t)ᵀ·e by running that forward backwards, op by op, against the op table's backward
 * ops (input gradients only; no weight gradients). What it reads was kept by the taped forward
 * (forward.c, s->taping): per expert layer the residual stream at its input and after the
 * attention branch, the MLP's normed input h2 and q after RoPE; the suffix's K/V rows
 * [np, np + S) are still in each layer's KV cache; π0: action_time_mlp_in's output before its
 * silu. The step's modulations (π0.5's adaRMS scale / shift / gate) depend only on the flow
 * time, not on x_t: they are constants here. π0's state row attends to nothing that depends on
 * x_t, and its gradient (through the action rows' attention to it) is simply not used: it does
 * not depend on x_t either. Each step below names the forward line it reverses. */
#include <math.h>
#include <stdlib.h>

#include "model.h"

pi0_status vjp_alloc(pi0_session *s) {
    if (s->tape) return PI0_OK;
    const pi0_config *c = s->cfg;
    const pi0_gemma_config *g = &c->expert;
    pi0_dispatch *d = &s->d;
    const size_t S = (size_t)s->b.suffix_len, We = g->width, H = c->action_horizon, A = c->action_dim;
    const size_t qd = (size_t)g->num_heads * g->head_dim, kd = (size_t)g->num_kv_heads * g->head_dim;
    const size_t F = g->mlp_dim;
    pi0_tape *t = calloc(1, sizeof *t);
    if (!t) return PI0_ERR_NOMEM;
    s->tape = t;
    t->layers = calloc((size_t)g->depth, sizeof *t->layers);
    if (!t->layers) {
        vjp_free(s);
        return PI0_ERR_NOMEM;
    }
#define DEV(ptr, n) ((ptr) = be_alloc(d, (size_t)(n) * sizeof *(ptr)), (ptr) != NULL)
    int ok = DEV(t->x_out, S * We) && DEV(t->pre_silu, H * We) && DEV(t->dx, S * We) && DEV(t->dh, S * We) &&
             DEV(t->dn, S * We) && DEV(t->dm, S * F) && DEV(t->gu, S * 2 * F) && DEV(t->dgu, S * 2 * F) &&
             DEV(t->datt, S * qd) && DEV(t->dq, S * qd) && DEV(t->dk, S * kd) && DEV(t->dv, S * kd) &&
             DEV(t->dact, H * 2 * We) && DEV(t->dz, H * We) && DEV(t->zero, We) && DEV(t->jt_err, H * A);
    for (int l = 0; ok && l < g->depth; l++) {
        pi0_tape_layer *L = &t->layers[l];
        ok = DEV(L->x_in, S * We) && DEV(L->x_mid, S * We) && DEV(L->h2, S * We) && DEV(L->q, S * qd);
    }
#undef DEV
    if (!ok) {
        vjp_free(s);
        return PI0_ERR_NOMEM;
    }
    return PI0_OK;
}

void vjp_free(pi0_session *s) {
    pi0_tape *t = s->tape;
    if (!t) return;
    if (t->layers)
        for (int l = 0; l < s->cfg->expert.depth; l++) {
            pi0_tape_layer *L = &t->layers[l];
            float *p[] = {L->x_in, L->x_mid, L->h2, L->q};
            for (size_t i = 0; i < sizeof p / sizeof *p; i++) be_free(&s->d, p[i]);
        }
    float *p[] = {t->x_out, t->pre_silu, t->dx, t->dh, t->dn, t->dm, t->gu, t->dgu, t->datt, t->dq,
                  t->dk, t->dv, t->dact, t->dz, t->zero, t->jt_err};
    for (size_t i = 0; i < sizeof p / sizeof *p; i++) be_free(&s->d, p[i]);
    free(t->layers);
    free(t);
    s->tape = NULL;
}

/* The input gradient of gemma_norm (forward.c): RMSNorm with (1 + w), or π0.5's adaRMS with the
 * step's modulation mod ([scale | shift | gate]; only the scale multiplies x's normalised value). */
static pi0_status norm_bwd(pi0_session *s, float *dx, const float *dy, const float *x, const pi0_vec *w,
                           const float *mod, int accumulate) {
    const pi0_gemma_config *g = &s->cfg->expert;
    return op_rmsnorm_bwd(&s->d, dx, dy, x, s->b.suffix_len, g->width, mod ? NULL : w, mod, g->norm_eps,
                          accumulate);
}

/* One expert layer backwards (forward.c gemma_block, suffix pass): on entry t->dx holds the
 * gradient of the layer's output stream, on return that of its input stream. */
static pi0_status layer_bwd(pi0_session *s, int l, int np, const float *mod_in, const float *mod_post) {
    const pi0_gemma_config *g = &s->cfg->expert;
    const gemma_layer *L = &s->model->w.expert.layers[l];
    const pi0_tape_layer *T = &s->tape->layers[l];
    pi0_tape *t = s->tape;
    pi0_dispatch *d = &s->d;
    pi0_buffers *b = &s->b;
    const int S = b->suffix_len, D = g->width, F = g->mlp_dim;
    /* gemma_mlp: x += down(gelu_tanh(gate(h2)) ⊙ up(h2)) (⊙ the post gate, π0.5) */
    FORWARD_ERR(op_matmul_dx(d, t->dm, t->dx, S, &L->down, mod_post ? mod_post + 2 * D : NULL, 0));
    FORWARD_ERR(op_matmul(d, t->gu, T->h2, S, &L->gate_up, NULL)); /* [gate | up](h2), recomputed */
    FORWARD_ERR(op_geglu_bwd(d, t->dgu, t->dm, t->gu, S, F));
    FORWARD_ERR(op_matmul_dx(d, t->dh, t->dgu, S, &L->gate_up, NULL, 0));
    /* h2 = gemma_norm(x_mid, post_norm | mod_post); the stream's own path adds to dx */
    FORWARD_ERR(norm_bwd(s, t->dx, t->dh, T->x_mid, &L->post_norm, mod_post, 1));
    /* x += o(att) (⊙ the input gate, π0.5) */
    FORWARD_ERR(op_matmul_dx(d, t->datt, t->dx, S, &L->o, mod_in ? mod_in + 2 * D : NULL, 0));
    /* att = attention(q, cache rows [0, np + S)): the prefix rows [0, np) are held fixed */
    const float *kc = cache_layer(s, b->kcache, l), *vc = cache_layer(s, b->vcache, l);
    FORWARD_ERR(op_attention_bwd(d, t->dq, t->dk, t->dv, t->datt, T->q, kc, vc, S, np + S, np, g->num_heads,
                                 g->num_kv_heads, g->head_dim, b->allowed, 1.0f / sqrtf((float)g->head_dim)));
    /* RoPE on q and on the suffix's k (same positions b->pos) */
    FORWARD_ERR(op_rope_bwd(d, t->dq, S, g->num_heads, g->head_dim, b->pos, g->rope_theta));
    FORWARD_ERR(op_rope_bwd(d, t->dk, S, g->num_kv_heads, g->head_dim, b->pos, g->rope_theta));
    /* q, k, v = h·W{q,k,v}ᵀ */
    FORWARD_ERR(op_matmul_dx(d, t->dh, t->dq, S, &L->q, NULL, 0));
    FORWARD_ERR(op_matmul_dx(d, t->dh, t->dk, S, &L->k, NULL, 1));
    FORWARD_ERR(op_matmul_dx(d, t->dh, t->dv, S, &L->v, NULL, 1));
    /* h = gemma_norm(x_in, in_norm | mod_in) */
    return norm_bwd(s, t->dx, t->dh, T->x_in, &L->in_norm, mod_in, 1);
}

pi0_status vjp_backward(pi0_session *s, int np, const float *dvt, float *dxt) {
    const pi0_config *c = s->cfg;
    const pi0_weights *w = &s->model->w;
    const pi0_gemma_config *g = &c->expert;
    pi0_dispatch *d = &s->d;
    pi0_buffers *b = &s->b;
    pi0_tape *t = s->tape;
    const int S = b->suffix_len, We = g->width, H = c->action_horizon, first = S - H, D3 = 3 * We;
    const float *mods = c->pi05 ? b->mods : NULL; /* the step's modulations, constants here */
    if (!t) return PI0_ERR_ARG;
    /* denoise_step: v_t = h[first:]·action_outᵀ + b; the state row (π0) does not reach v_t */
    if (first > 0) FORWARD_ERR(op_copy_rows(d, t->dn, We, t->zero, 0, first, We));
    FORWARD_ERR(op_matmul_dx(d, t->dn + (size_t)first * We, dvt, H, &w->action_out, NULL, 0));
    /* h = final norm(stream) */
    FORWARD_ERR(norm_bwd(s, t->dx, t->dn, t->x_out, &w->expert.final_norm,
                         mods ? mods + (size_t)2 * g->depth * D3 : NULL, 0));
    for (int l = g->depth - 1; l >= 0; l--)
        FORWARD_ERR(layer_bwd(s, l, np, mods ? mods + (size_t)(2 * l) * D3 : NULL,
                              mods ? mods + (size_t)(2 * l + 1) * D3 : NULL));
    const float *dy = t->dx + (size_t)first * We; /* the action rows of the suffix embedding */
    if (c->pi05) /* embed_suffix_pi05: y = x_t·action_inᵀ + b */
        return op_matmul_dx(d, dxt, dy, H, &w->action_in, NULL, 0);
    /* embed_suffix (π0): y = time_out(silu(time_in(concat[action_in(x_t), time_emb]))) */
    FORWARD_ERR(op_matmul_dx(d, t->dz, dy, H, &w->time_out, NULL, 0));
    FORWARD_ERR(op_silu_bwd(d, t->dz, t->pre_silu, (size_t)H * We));
    FORWARD_ERR(op_matmul_dx(d, t->dact, t->dz, H, &w->time_in, NULL, 0));
    FORWARD_ERR(op_copy_rows(d, t->dz, We, t->dact, 2 * We, H, We)); /* the action_in half */
    return op_matmul_dx(d, dxt, t->dz, H, &w->action_in, NULL, 0);
}
