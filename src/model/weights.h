/* weights.h — every π0 tensor, by checkpoint name and shape. Matrices stay in the mmapped
 * checkpoint in their stored dtype (F32/BF16/F16) and are read through pi0_mat views; vectors
 * (norm scales, biases) are converted once to float32 at load. */
#ifndef PI0_WEIGHTS_H
#define PI0_WEIGHTS_H

#include "../io/safetensors.h"

/* A [rows, cols] matrix in the checkpoint (PyTorch layout: weight = [out, in]). */
typedef struct {
    const void *data;
    pi0_dtype dtype;
    int rows, cols;
    const char *name;   /* checkpoint key it came from */
    const void *prepared; /* the fast backend's reordered copy (fast.c), NULL if none */
} pi0_mat;

typedef struct {                 /* P.vision_tower.vision_model.encoder.layers.i. */
    float *ln1_w, *ln1_b;        /* layer_norm1.{weight,bias} (W)               */
    pi0_mat q, k, v, o;          /* self_attn.{q,k,v,out}_proj.weight (W, W)    */
    float *q_b, *k_b, *v_b, *o_b;/* self_attn.*.bias (W)                         */
    float *ln2_w, *ln2_b;        /* layer_norm2.{weight,bias} (W)               */
    pi0_mat fc1, fc2;            /* mlp.fc1.weight (F, W), mlp.fc2.weight (W, F) */
    float *fc1_b, *fc2_b;        /* (F), (W)                                     */
} siglip_layer;

typedef struct {
    pi0_mat patch;               /* embeddings.patch_embedding.weight (W, 3, p, p) as (W, 3·p·p) */
    float *patch_b;              /* (W)                                          */
    float *pos;                  /* embeddings.position_embedding.weight (n_tok, W) */
    siglip_layer *layers;        /* (depth)                                      */
    float *post_w, *post_b;      /* post_layernorm (W)                           */
    pi0_mat proj;                /* multi_modal_projector.linear.weight (D, W)   */
    float *proj_b;               /* (D)                                          */
} siglip_weights;

typedef struct {                 /* <gemma>.layers.i.                            */
    float *in_norm;              /* input_layernorm.weight (D), zero-centred     */
    pi0_mat q, k, v, o;          /* self_attn: q (Hq·hd, D), k/v (Hkv·hd, D), o (D, Hq·hd) */
    float *post_norm;            /* post_attention_layernorm.weight (D)          */
    pi0_mat gate, up, down;      /* mlp: gate/up (F, D), down (D, F)             */
} gemma_layer;

typedef struct {
    gemma_layer *layers;         /* (depth)                                      */
    float *final_norm;           /* norm.weight (D)                              */
} gemma_weights;

typedef struct {
    siglip_weights vision;
    pi0_mat embed;               /* paligemma.lm_head.weight ≡ embed_tokens (vocab, D) */
    gemma_weights vlm, expert;
    pi0_mat state_proj;          /* (We, state_dim) */
    float *state_proj_b;
    pi0_mat action_in;           /* action_in_proj (We, A) */
    float *action_in_b;
    pi0_mat action_out;          /* action_out_proj (A, We) */
    float *action_out_b;
    pi0_mat time_in;             /* action_time_mlp_in (We, 2We) */
    float *time_in_b;
    pi0_mat time_out;            /* action_time_mlp_out (We, We) */
    float *time_out_b;
    float **owned;               /* every float32 vector above, for weights_free */
    int nowned;
} pi0_weights;

/* Resolves, checks (presence, dtype, shape) and binds every tensor; allocates the float32
 * vectors. `files` may hold several shards. */
pi0_status weights_bind(pi0_weights *w, const pi0_config *c, const st_file *files, int nfiles,
                        pi0_err *e);
void weights_free(pi0_weights *w, const pi0_config *c);
/* Every matrix used as a GEMM operand (all but the token embedding, which is only indexed):
 * writes up to cap pointers to out (out may be NULL when cap is 0), returns how many there are. */
int weights_matrices(pi0_weights *w, const pi0_config *c, pi0_mat **out, int cap);

/* Canonical key i of the released layout (for the generator): calls fn for every tensor with
 * its name, shape and kind ('m' matrix, 'l' LayerNorm scale, 'n' RMSNorm scale, 'b' bias or
 * LayerNorm shift, 'e' embedding / position table). */
typedef void (*weights_visit_fn)(void *user, const char *name, int ndim, const int64_t *shape,
                                 char kind, int fan_in);
void weights_visit(const pi0_config *c, weights_visit_fn fn, void *user);

#endif
