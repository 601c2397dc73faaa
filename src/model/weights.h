/* weights.h — every π0 tensor, by checkpoint name and shape. Matrices stay in the mmapped
 * checkpoint in their stored dtype (F32/BF16/F16) and are read through pi0_mat views; vectors
 * (norm scales, biases, the position table) are converted once to float32 pi0_vec at load. Both
 * are the backend's weight handles (backend.h). */
#ifndef PI0_WEIGHTS_H
#define PI0_WEIGHTS_H

#include "../backend/backend.h"
#include "../io/safetensors.h"

typedef struct {                 /* P.vision_tower.vision_model.encoder.layers.i. */
    pi0_vec ln1_w, ln1_b;        /* layer_norm1.{weight,bias} (W)               */
    pi0_mat q, k, v, o;          /* self_attn.{q,k,v,out}_proj.weight (W, W)    */
    pi0_vec q_b, k_b, v_b, o_b;  /* self_attn.*.bias (W)                        */
    pi0_vec ln2_w, ln2_b;        /* layer_norm2.{weight,bias} (W)               */
    pi0_mat fc1, fc2;            /* mlp.fc1.weight (F, W), mlp.fc2.weight (W, F) */
    pi0_vec fc1_b, fc2_b;        /* (F), (W)                                     */
} siglip_layer;

typedef struct {
    pi0_mat patch;               /* embeddings.patch_embedding.weight (W, 3, p, p) as (W, 3·p·p) */
    pi0_vec patch_b;             /* (W)                                          */
    pi0_vec pos;                 /* embeddings.position_embedding.weight (n_tok, W) */
    siglip_layer *layers;        /* (depth)                                      */
    pi0_vec post_w, post_b;      /* post_layernorm (W)                           */
    pi0_mat proj;                /* multi_modal_projector.linear.weight (D, W)   */
    pi0_vec proj_b;              /* (D)                                          */
} siglip_weights;

typedef struct {                 /* <gemma>.layers.i.                            */
    pi0_vec in_norm;             /* input_layernorm.weight (D), zero-centred     */
    pi0_mat q, k, v, o;          /* self_attn: q (Hq·hd, D), k/v (Hkv·hd, D), o (D, Hq·hd) */
    pi0_vec post_norm;           /* post_attention_layernorm.weight (D)          */
    pi0_mat gate, up, down;      /* mlp: gate/up (F, D), down (D, F)             */
    /* π0.5 expert: adaptive norms instead of in_norm / post_norm (spec §6.2); rows [0, D) scale,
     * [D, 2D) shift, [2D, 3D) gate */
    pi0_mat in_mod, post_mod;    /* {input,post_attention}_layernorm.dense.weight (3D, D) */
    pi0_vec in_mod_b, post_mod_b;/* .dense.bias (3D)                             */
    /* gate and up as one stacked matrix [gate; up] (2F, D): one GEMM gives both halves, row m of
     * its output is [gate(h_m) | up(h_m)]. Its parts point at gate and up; backends are given
     * only the stack to prepare (weights_list), so gate and up are GEMM operands only through it. */
    pi0_mat gate_up;
    const pi0_mat *gate_up_parts[2];
} gemma_layer;

typedef struct {
    gemma_layer *layers;         /* (depth)                                      */
    pi0_vec final_norm;          /* norm.weight (D)                              */
    pi0_mat final_mod;           /* π0.5 expert: norm.dense.weight (3D, D)       */
    pi0_vec final_mod_b;         /* norm.dense.bias (3D)                         */
} gemma_weights;

typedef struct {
    siglip_weights vision;
    pi0_mat embed;               /* paligemma.lm_head.weight ≡ embed_tokens (vocab, D) */
    gemma_weights vlm, expert;
    pi0_mat state_proj;          /* (We, state_dim) */
    pi0_vec state_proj_b;
    pi0_mat action_in;           /* action_in_proj (We, A) */
    pi0_vec action_in_b;
    pi0_mat action_out;          /* action_out_proj (A, We) */
    pi0_vec action_out_b;
    pi0_mat time_in;             /* π0 action_time_mlp_in (We, 2We); π0.5 time_mlp_in (We, We) */
    pi0_vec time_in_b;
    pi0_mat time_out;            /* π0 action_time_mlp_out, π0.5 time_mlp_out (We, We) */
    pi0_vec time_out_b;
    /* π0.5: the expert's 2·depth + 1 adaRMS dense layers as one stacked matrix
     * ((2·depth + 1)·3We, We): layer l's input norm at rows 2l·3We, its post-attention norm at
     * (2l + 1)·3We, the final norm last; one GEMM per step gives every modulation. */
    pi0_mat mods;
    pi0_vec mods_b;
    const pi0_mat **mod_parts;   /* the stack's parts (owned)                    */
    float *mods_bias;            /* mods_b's data (owned)                        */
    float **owned;               /* the float32 data of every vector above       */
    int nowned;
} pi0_weights;

/* Resolves, checks (presence, dtype, shape) and binds every tensor; allocates the float32
 * vectors. `files` may hold several shards. */
pi0_status weights_bind(pi0_weights *w, const pi0_config *c, const st_file *files, int nfiles,
                        pi0_err *e);
void weights_free(pi0_weights *w, const pi0_config *c);
/* Which model the weights hold, from their names: 1 π0.5 (adaRMS expert norms or time_mlp_in,
 * no state_proj), 0 π0, -1 neither (the binding will name what is missing). */
int weights_detect_pi05(const st_file *files, int nfiles);
/* Every matrix (the token embedding included) and every vector, for a backend's prepare():
 * fills wl with malloc'd arrays (free with weights_list_free). */
pi0_status weights_list(pi0_weights *w, const pi0_config *c, pi0_weight_list *wl);
void weights_list_free(pi0_weight_list *wl);

/* Canonical key i of the released layout (for the generator): calls fn for every tensor with
 * its name, shape and kind ('m' matrix, 't' row-indexed table (token embedding), 'd' adaRMS
 * dense matrix, 'p' matrix used as part of a stack (Gemma's gate and up), 'l' LayerNorm scale, 'n' RMSNorm scale, 'b' bias or LayerNorm shift, 'g' adaRMS
 * dense bias (scale, shift, gate thirds), 'e' position table). */
typedef void (*weights_visit_fn)(void *user, const char *name, int ndim, const int64_t *shape,
                                 char kind, int fan_in);
void weights_visit(const pi0_config *c, weights_visit_fn fn, void *user);

#endif
