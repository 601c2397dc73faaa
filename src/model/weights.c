/* weights.c — one walk over the π0 / π0.5 tensor list (names and shapes from the config), used to
 * bind a checkpoint (weights_bind), to list the weight handles for a backend (weights_list) and
 * to enumerate the tensors for the generator (weights_visit). */
#include "weights.h"

#include <stdio.h>
#include <stdlib.h>

#define P "paligemma_with_expert.paligemma.model."
#define X "paligemma_with_expert.gemma_expert.model."
#define VT P "vision_tower.vision_model."
#define EMBED "paligemma_with_expert.paligemma.lm_head.weight"

/* kind: 'm' matrix (a GEMM operand), 't' matrix only indexed by rows (the token embedding),
 * 'd' π0.5 adaRMS dense matrix (a GEMM operand only as part of the per-step stack, see
 * weights.h), 'p' matrix that is a GEMM operand only as part of a stack (Gemma's gate and
 * up: gate_up, see weights.h), 'e' table converted to f32, 'l' LayerNorm scale, 'n' RMSNorm
 * scale, 'b' bias / LayerNorm shift, 'g' adaRMS dense bias (scale, shift, gate). dst is a
 * pi0_mat* for 'm', 't', 'd' and 'p', a pi0_vec* otherwise. */
static int is_matrix(char kind) { return kind == 'm' || kind == 't' || kind == 'd' || kind == 'p'; }

typedef struct walker walker;
struct walker {
    pi0_status (*tensor)(walker *wk, void *dst, const char *name, int ndim, const int64_t *shape,
                         char kind, int fan_in);
};

/* A Gemma stack's tensors. With adaptive (the π0.5 expert) every RMSNorm is the adaRMS dense
 * layer `<norm>.dense` [3D, D] instead of a scale. */
static pi0_status walk_gemma(walker *wk, gemma_weights *g, const pi0_gemma_config *c,
                             const char *prefix, int adaptive) {
    char nm[256];
    const int64_t D = c->width, F = c->mlp_dim, QD = (int64_t)c->num_heads * c->head_dim,
                  KD = (int64_t)c->num_kv_heads * c->head_dim;
#define T(dst, kind, fan, ...)                                                                 \
    do {                                                                                       \
        const int64_t sh_[] = {__VA_ARGS__};                                                   \
        FORWARD_ERR(wk->tensor(wk, dst, nm, (int)(sizeof sh_ / sizeof *sh_), sh_, kind, fan)); \
    } while (0)
    for (int i = 0; i < c->depth; i++) {
        gemma_layer *L = &g->layers[i];
#define N(suffix) snprintf(nm, sizeof nm, "%slayers.%d." suffix, prefix, i)
        if (adaptive) {
            N("input_layernorm.dense.weight"); T(&L->in_mod, 'd', D, 3 * D, D);
            N("input_layernorm.dense.bias"); T(&L->in_mod_b, 'g', 0, 3 * D);
        } else {
            N("input_layernorm.weight"); T(&L->in_norm, 'n', 0, D);
        }
        N("self_attn.q_proj.weight"); T(&L->q, 'm', D, QD, D);
        N("self_attn.k_proj.weight"); T(&L->k, 'm', D, KD, D);
        N("self_attn.v_proj.weight"); T(&L->v, 'm', D, KD, D);
        N("self_attn.o_proj.weight"); T(&L->o, 'm', QD, D, QD);
        if (adaptive) {
            N("post_attention_layernorm.dense.weight"); T(&L->post_mod, 'd', D, 3 * D, D);
            N("post_attention_layernorm.dense.bias"); T(&L->post_mod_b, 'g', 0, 3 * D);
        } else {
            N("post_attention_layernorm.weight"); T(&L->post_norm, 'n', 0, D);
        }
        N("mlp.gate_proj.weight"); T(&L->gate, 'p', D, F, D);
        N("mlp.up_proj.weight"); T(&L->up, 'p', D, F, D);
        N("mlp.down_proj.weight"); T(&L->down, 'm', F, D, F);
#undef N
    }
    if (adaptive) {
        snprintf(nm, sizeof nm, "%snorm.dense.weight", prefix);
        T(&g->final_mod, 'd', D, 3 * D, D);
        snprintf(nm, sizeof nm, "%snorm.dense.bias", prefix);
        T(&g->final_mod_b, 'g', 0, 3 * D);
    } else {
        snprintf(nm, sizeof nm, "%snorm.weight", prefix);
        T(&g->final_norm, 'n', 0, D);
    }
    return PI0_OK;
}

static pi0_status walk_all(walker *wk, pi0_weights *w, const pi0_config *c) {
    char nm[256];
    const pi0_siglip_config *v = &c->vision;
    const int64_t W = v->width, F = v->mlp_dim, p = v->patch_size, D = c->vlm.width,
                  We = c->expert.width, A = c->action_dim;
    siglip_weights *s = &w->vision;
#define S(str) snprintf(nm, sizeof nm, "%s", str)
    S(VT "embeddings.patch_embedding.weight"); T(&s->patch, 'm', 3 * p * p, W, 3, p, p);
    S(VT "embeddings.patch_embedding.bias"); T(&s->patch_b, 'b', 0, W);
    S(VT "embeddings.position_embedding.weight");
    T(&s->pos, 'e', W, pi0_config_image_tokens(c), W);
    for (int i = 0; i < v->depth; i++) {
        siglip_layer *L = &s->layers[i];
#define N(suffix) snprintf(nm, sizeof nm, VT "encoder.layers.%d." suffix, i)
        N("layer_norm1.weight"); T(&L->ln1_w, 'l', 0, W);
        N("layer_norm1.bias"); T(&L->ln1_b, 'b', 0, W);
        N("self_attn.q_proj.weight"); T(&L->q, 'm', W, W, W);
        N("self_attn.q_proj.bias"); T(&L->q_b, 'b', 0, W);
        N("self_attn.k_proj.weight"); T(&L->k, 'm', W, W, W);
        N("self_attn.k_proj.bias"); T(&L->k_b, 'b', 0, W);
        N("self_attn.v_proj.weight"); T(&L->v, 'm', W, W, W);
        N("self_attn.v_proj.bias"); T(&L->v_b, 'b', 0, W);
        N("self_attn.out_proj.weight"); T(&L->o, 'm', W, W, W);
        N("self_attn.out_proj.bias"); T(&L->o_b, 'b', 0, W);
        N("layer_norm2.weight"); T(&L->ln2_w, 'l', 0, W);
        N("layer_norm2.bias"); T(&L->ln2_b, 'b', 0, W);
        N("mlp.fc1.weight"); T(&L->fc1, 'm', W, F, W);
        N("mlp.fc1.bias"); T(&L->fc1_b, 'b', 0, F);
        N("mlp.fc2.weight"); T(&L->fc2, 'm', F, W, F);
        N("mlp.fc2.bias"); T(&L->fc2_b, 'b', 0, W);
#undef N
    }
    S(VT "post_layernorm.weight"); T(&s->post_w, 'l', 0, W);
    S(VT "post_layernorm.bias"); T(&s->post_b, 'b', 0, W);
    S(P "multi_modal_projector.linear.weight"); T(&s->proj, 'm', W, D, W);
    S(P "multi_modal_projector.linear.bias"); T(&s->proj_b, 'b', 0, D);
    S(EMBED); T(&w->embed, 't', D, c->vlm.vocab_size, D);
    FORWARD_ERR(walk_gemma(wk, &w->vlm, &c->vlm, P "language_model.", 0));
    FORWARD_ERR(walk_gemma(wk, &w->expert, &c->expert, X, c->pi05));
    if (!c->pi05) {
        S("state_proj.weight"); T(&w->state_proj, 'm', c->state_dim, We, c->state_dim);
        S("state_proj.bias"); T(&w->state_proj_b, 'b', 0, We);
    }
    S("action_in_proj.weight"); T(&w->action_in, 'm', A, We, A);
    S("action_in_proj.bias"); T(&w->action_in_b, 'b', 0, We);
    S("action_out_proj.weight"); T(&w->action_out, 'm', We, A, We);
    S("action_out_proj.bias"); T(&w->action_out_b, 'b', 0, A);
    if (c->pi05) { /* the time MLP feeding adaRMS (lerobot also names it action_time_mlp_*) */
        S("time_mlp_in.weight"); T(&w->time_in, 'm', We, We, We);
        S("time_mlp_in.bias"); T(&w->time_in_b, 'b', 0, We);
        S("time_mlp_out.weight"); T(&w->time_out, 'm', We, We, We);
        S("time_mlp_out.bias"); T(&w->time_out_b, 'b', 0, We);
    } else {
        S("action_time_mlp_in.weight"); T(&w->time_in, 'm', 2 * We, We, 2 * We);
        S("action_time_mlp_in.bias"); T(&w->time_in_b, 'b', 0, We);
        S("action_time_mlp_out.weight"); T(&w->time_out, 'm', We, We, We);
        S("action_time_mlp_out.bias"); T(&w->time_out_b, 'b', 0, We);
    }
#undef S
#undef T
    return PI0_OK;
}

static pi0_status alloc_layers(pi0_weights *w, const pi0_config *c, pi0_err *e) {
    w->vision.layers = calloc(c->vision.depth, sizeof *w->vision.layers);
    w->vlm.layers = calloc(c->vlm.depth, sizeof *w->vlm.layers);
    w->expert.layers = calloc(c->expert.depth, sizeof *w->expert.layers);
    RETURN_ERR_IF(!w->vision.layers || !w->vlm.layers || !w->expert.layers, e, PI0_ERR_NOMEM,
                  "out of memory");
    return PI0_OK;
}

/* ---------------------------------------------------------------- binding */

typedef struct {
    walker base;
    const st_file *files;
    int nfiles;
    pi0_err *e;
    float **owned;     /* every float32 vector allocated, freed by weights_free */
    int nowned, capowned;
} binder;

/* Names under which a canonical key may be stored: as is, with a "model." prefix (lerobot
 * fine-tunes), in the lerobot v1 layout, for the token embedding embed_tokens, and for π0.5's
 * time_mlp_{in,out} lerobot's action_time_mlp_{in,out} (the shape, [We, We] against π0's
 * [We, 2We], tells them apart). */
static int key_variants(const char *name, char out[8][320]) {
    static const char *pg = "paligemma_with_expert.paligemma.";
    char base[4][320];
    int nb = 0;
    snprintf(base[nb++], 320, "%s", name);
    if (strcmp(name, EMBED) == 0) {
        snprintf(base[nb++], 320, P "language_model.embed_tokens.weight");
        snprintf(base[nb++], 320, "%slanguage_model.lm_head.weight", pg);
        snprintf(base[nb++], 320, "%slanguage_model.model.embed_tokens.weight", pg);
    } else if (strncmp(name, P "language_model.", strlen(P "language_model.")) == 0) {
        snprintf(base[nb++], 320, "%slanguage_model.model.%s", pg,
                 name + strlen(P "language_model."));
    } else if (strncmp(name, P, strlen(P)) == 0) {
        snprintf(base[nb++], 320, "%s%s", pg, name + strlen(P));
    } else if (strncmp(name, "time_mlp_", 9) == 0) {
        snprintf(base[nb++], 320, "action_%.300s", name);
    }
    int n = 0;
    for (int i = 0; i < nb; i++) {
        snprintf(out[n++], 320, "%.300s", base[i]);
        snprintf(out[n++], 320, "model.%.300s", base[i]);
    }
    return n;
}

static const st_tensor *find_tensor(const st_file *files, int nfiles, const char *name, const char **file) {
    char cand[8][320];
    int n = key_variants(name, cand);
    for (int i = 0; i < n; i++)
        for (int f = 0; f < nfiles; f++) {
            const st_tensor *t = st_find(&files[f], cand[i]);
            if (t) { *file = files[f].path; return t; }
        }
    return NULL;
}

static void shape_str(char *buf, size_t n, int ndim, const int64_t *shape) {
    size_t o = 0;
    o += snprintf(buf + o, n - o, "[");
    for (int i = 0; i < ndim && o < n; i++)
        o += snprintf(buf + o, n - o, "%s%lld", i ? ", " : "", (long long)shape[i]);
    if (o < n) snprintf(buf + o, n - o, "]");
}

static pi0_status bind_tensor(walker *wk, void *dst, const char *name, int ndim,
                              const int64_t *shape, char kind, int fan_in) {
    (void)fan_in;
    binder *b = (binder *)wk;
    const char *file = b->files[0].path;
    const st_tensor *t = find_tensor(b->files, b->nfiles, name, &file);
    RETURN_ERR_IF(!t, b->e, PI0_ERR_TENSOR, "%s: missing tensor '%s'", file, name);
    RETURN_ERR_IF(t->dtype != DT_F32 && t->dtype != DT_BF16 && t->dtype != DT_F16, b->e,
                  PI0_ERR_TENSOR, "%s: tensor '%s' has dtype %s (expected F32, BF16 or F16)",
                  file, t->name, dtype_name(t->dtype));
    int same = t->ndim == ndim;
    for (int i = 0; same && i < ndim; i++) same = t->shape[i] == shape[i];
    if (!same) {
        char got[128], want[128];
        shape_str(got, sizeof got, t->ndim, t->shape);
        shape_str(want, sizeof want, ndim, shape);
        return pi0_fail(b->e, PI0_ERR_TENSOR,
                        "%s: tensor '%s' has shape %s, config.json implies %s", file, t->name,
                        got, want);
    }
    if (is_matrix(kind)) {
        pi0_mat *m = dst;
        m->data = t->data;
        m->dtype = t->dtype;
        m->rows = (int)shape[0];
        m->cols = (int)(t->numel / (shape[0] ? shape[0] : 1));
        m->name = t->name;
        return PI0_OK;
    }
    if (b->nowned == b->capowned) {
        int cap = b->capowned ? 2 * b->capowned : 256;
        float **no = realloc(b->owned, cap * sizeof *no);
        RETURN_ERR_IF(!no, b->e, PI0_ERR_NOMEM, "out of memory");
        b->owned = no;
        b->capowned = cap;
    }
    float *v = malloc(t->numel * sizeof *v + 1);
    RETURN_ERR_IF(!v, b->e, PI0_ERR_NOMEM, "out of memory");
    b->owned[b->nowned++] = v;
    convert_to_f32(v, t->data, t->dtype, t->numel);
    pi0_vec *vec = dst;
    vec->data = v;
    vec->n = t->numel;
    vec->name = t->name;
    return PI0_OK;
}

/* π0.5: the 2·depth + 1 adaRMS dense layers of the expert as one stacked matrix (layer l's
 * input norm, its post-attention norm, ..., the final norm) with their biases concatenated, so
 * that one GEMM per denoise step computes every modulation. The stack points at the bound
 * parts; the bias is a new vector. */
static pi0_status stack_modulations(pi0_weights *w, const pi0_config *c, binder *b) {
    const int L = c->expert.depth, n = 2 * L + 1, D3 = 3 * c->expert.width;
    w->mod_parts = malloc((size_t)n * sizeof *w->mod_parts);
    float *bias = malloc((size_t)n * D3 * sizeof *bias);
    if (!w->mod_parts || !bias) { free(bias); return pi0_fail(b->e, PI0_ERR_NOMEM, "out of memory"); }
    for (int i = 0; i < n; i++) {
        const gemma_layer *Ly = &w->expert.layers[i / 2];
        const pi0_mat *m = i == 2 * L ? &w->expert.final_mod : i % 2 ? &Ly->post_mod : &Ly->in_mod;
        const pi0_vec *v = i == 2 * L ? &w->expert.final_mod_b : i % 2 ? &Ly->post_mod_b : &Ly->in_mod_b;
        w->mod_parts[i] = m;
        memcpy(bias + (size_t)i * D3, v->data, (size_t)D3 * sizeof *bias);
    }
    w->mods = (pi0_mat){.dtype = DT_F32, .rows = n * D3, .cols = c->expert.width,
                        .name = "expert adaRMS modulations (every *norm.dense, stacked)",
                        .parts = w->mod_parts, .nparts = n};
    w->mods_b = (pi0_vec){.data = bias, .n = (size_t)n * D3, .name = "expert adaRMS modulation biases"};
    w->mods_bias = bias;
    return PI0_OK;
}

/* Each Gemma layer's gate and up projections as one stacked matrix (see weights.h). */
static void stack_gate_up(gemma_weights *g, const pi0_gemma_config *c) {
    for (int i = 0; i < c->depth; i++) {
        gemma_layer *L = &g->layers[i];
        L->gate_up_parts[0] = &L->gate;
        L->gate_up_parts[1] = &L->up;
        L->gate_up = (pi0_mat){.dtype = L->gate.dtype, .rows = 2 * c->mlp_dim, .cols = c->width,
                               .name = "mlp.gate_proj and mlp.up_proj (stacked)",
                               .parts = L->gate_up_parts, .nparts = 2};
    }
}

pi0_status weights_bind(pi0_weights *w, const pi0_config *c, const st_file *files, int nfiles,
                        pi0_err *e) {
    memset(w, 0, sizeof *w);
    FORWARD_ERR(alloc_layers(w, c, e));
    binder b = {{bind_tensor}, files, nfiles, e, NULL, 0, 0};
    pi0_status st = walk_all(&b.base, w, c);
    if (st == PI0_OK && c->pi05) st = stack_modulations(w, c, &b);
    if (st == PI0_OK) {
        stack_gate_up(&w->vlm, &c->vlm);
        stack_gate_up(&w->expert, &c->expert);
    }
    w->owned = b.owned;
    w->nowned = b.nowned;
    if (st != PI0_OK) weights_free(w, c);
    return st;
}

/* A tensor stored under exactly `name` or "model." + name (no other alias), or NULL. */
static const st_tensor *find_exact(const st_file *files, int nfiles, const char *name) {
    char prefixed[320];
    snprintf(prefixed, sizeof prefixed, "model.%.300s", name);
    for (int f = 0; f < nfiles; f++) {
        const st_tensor *t = st_find(&files[f], name);
        if (t || (t = st_find(&files[f], prefixed))) return t;
    }
    return NULL;
}

int weights_detect_pi05(const st_file *files, int nfiles) {
    if (find_exact(files, nfiles, X "layers.0.input_layernorm.dense.weight") ||
        find_exact(files, nfiles, "time_mlp_in.weight"))
        return 1;
    const st_tensor *t = find_exact(files, nfiles, "action_time_mlp_in.weight");
    const int has_state_proj = find_exact(files, nfiles, "state_proj.weight") != NULL;
    /* lerobot's π0.5 may name its time MLP action_time_mlp_in: square there, [We, 2We] in π0 */
    if (t && t->ndim == 2 && t->shape[0] == t->shape[1] && !has_state_proj) return 1;
    return t || has_state_proj ? 0 : -1;
}

void weights_free(pi0_weights *w, const pi0_config *c) {
    (void)c;
    if (!w) return;
    for (int i = 0; i < w->nowned; i++) free(w->owned[i]);
    free(w->owned);
    free(w->mods_bias);
    free(w->mod_parts);
    free(w->vision.layers);
    free(w->vlm.layers);
    free(w->expert.layers);
    memset(w, 0, sizeof *w);
}

/* ---------------------------------------------------------------- listing */

typedef struct {
    walker base;
    pi0_weight_list *wl;
    int capm, capv;
} lister;

/* Appends p to the growable pointer array arr of n entries (capacity cap). */
#define PUSH_PTR(arr, n, cap, p)                                                    \
    do {                                                                            \
        if ((n) == (cap)) {                                                         \
            int nc_ = (cap) ? 2 * (cap) : 256;                                      \
            void *na_ = realloc((arr), nc_ * sizeof *(arr));                        \
            if (!na_) return PI0_ERR_NOMEM;                                         \
            (arr) = na_;                                                            \
            (cap) = nc_;                                                            \
        }                                                                           \
        (arr)[(n)++] = (p);                                                         \
    } while (0)

static pi0_status list_tensor(walker *wk, void *dst, const char *name, int ndim,
                              const int64_t *shape, char kind, int fan_in) {
    (void)name; (void)ndim; (void)shape; (void)fan_in;
    lister *l = (lister *)wk;
    pi0_weight_list *wl = l->wl;
    /* used only through a stack (stack_modulations, stack_gate_up), listed below: a backend
     * prepares each weight once */
    if (kind == 'd' || kind == 'g' || kind == 'p') return PI0_OK;
    if (kind == 't') {
        if (wl->ntables == (int)(sizeof wl->tables / sizeof *wl->tables)) return PI0_ERR_ARG;
        wl->tables[wl->ntables++] = dst;
        return PI0_OK;
    }
    if (kind == 'm') PUSH_PTR(wl->mats, wl->nmats, l->capm, dst);
    else PUSH_PTR(wl->vecs, wl->nvecs, l->capv, dst);
    return PI0_OK;
}

pi0_status weights_list(pi0_weights *w, const pi0_config *c, pi0_weight_list *wl) {
    memset(wl, 0, sizeof *wl);
    if (!w->vision.layers || !w->vlm.layers || !w->expert.layers) return PI0_ERR_ARG;
    lister l = {{list_tensor}, wl, 0, 0};
    pi0_status st = walk_all(&l.base, w, c);
    if (st == PI0_OK && c->pi05) st = list_tensor(&l.base, &w->mods, "", 0, NULL, 'm', 0);
    if (st == PI0_OK && c->pi05) st = list_tensor(&l.base, &w->mods_b, "", 0, NULL, 'b', 0);
    for (int i = 0; st == PI0_OK && i < c->vlm.depth; i++)
        st = list_tensor(&l.base, &w->vlm.layers[i].gate_up, "", 0, NULL, 'm', 0);
    for (int i = 0; st == PI0_OK && i < c->expert.depth; i++)
        st = list_tensor(&l.base, &w->expert.layers[i].gate_up, "", 0, NULL, 'm', 0);
    if (st != PI0_OK) weights_list_free(wl);
    return st;
}

void weights_list_free(pi0_weight_list *wl) {
    free(wl->mats);
    free(wl->vecs);
    memset(wl, 0, sizeof *wl);
}

/* ---------------------------------------------------------------- visiting */

typedef struct {
    walker base;
    weights_visit_fn fn;
    void *user;
} visitor;

static pi0_status visit_tensor(walker *wk, void *dst, const char *name, int ndim,
                               const int64_t *shape, char kind, int fan_in) {
    (void)dst;
    visitor *v = (visitor *)wk;
    v->fn(v->user, name, ndim, shape, kind, fan_in);
    return PI0_OK;
}

void weights_visit(const pi0_config *c, weights_visit_fn fn, void *user) {
    pi0_weights w;
    memset(&w, 0, sizeof w);
    if (alloc_layers(&w, c, NULL) == PI0_OK) {
        visitor v = {{visit_tensor}, fn, user};
        walk_all(&v.base, &w, c);
    }
    weights_free(&w, c);
}
