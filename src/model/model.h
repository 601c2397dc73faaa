/* model.h — the internal shape of pi0_model and pi0_session, and the forward pass entry point. */
#ifndef PI0_MODEL_H
#define PI0_MODEL_H

#include <pthread.h>

#include "../backend/backend.h"
#include "config.h"
#include "weights.h"

#define PI0_MAX_SHARDS 64

struct pi0_model {
    pi0_config cfg;
    int loaded;
    pthread_mutex_t prepare_lock;   /* backend weight preparation, once per backend */
    void *prepared[PI0_SLOTS];      /* each backend's prepared-weights handle (prepare()) */
    const pi0_backend *preparer[PI0_SLOTS];
    pi0_weight_list wl;             /* every weight handle, as handed to prepare() */
    st_file files[PI0_MAX_SHARDS];
    int nfiles;
    pi0_weights w;
    pi0_err err;
};

/* Every activation buffer, allocated once at session init by the session's backend (llama2.c's
 * RunState). Pointers marked [dev] are backend memory (device memory for a GPU backend): the
 * forward only passes them to ops. The rest is host bookkeeping. */
typedef struct {
    int cap_rows;         /* max rows any stage has: prefix, image tokens, suffix         */
    int max_prefix;       /* num_cameras · image tokens + max_token_len                   */
    int suffix_len;       /* suffix rows: 1 + action_horizon (π0), action_horizon (π0.5)  */
    int keys;             /* max_prefix + suffix_len: rows of a layer's K/V cache         */
    /* [dev] */
    float *x, *h, *tmp;   /* [cap_rows, max width] residual stream, normed, block output  */
    float *q, *att;       /* [cap_rows, max(vision width, Hq·hd)]                         */
    float *k, *v;         /* [image tokens, vision width] (SigLIP only)                   */
    float *mlp1, *mlp2;   /* [cap_rows, max mlp dim]                                      */
    float *img;           /* [3, S, S] the camera being embedded                          */
    float *patches;       /* [image tokens, 3·p·p]                                        */
    float *kcache, *vcache; /* [depth, keys, Hkv·hd]                                      */
    int32_t *pos;         /* [cap_rows]                                                   */
    int32_t *ids;         /* [max_token_len] prompt token ids of the compact/full prefix  */
    uint8_t *allowed;     /* [cap_rows, keys] attention mask                              */
    float *state;         /* [state_dim]                                                  */
    float *state_tok;     /* [expert width]                                               */
    float *time_emb;      /* [expert width]                                               */
    float *act_time;      /* [H, 2·expert width]  concat(action_in, time)                 */
    float *cond;          /* [expert width] π0.5: the adaRMS condition of the step         */
    float *mods;          /* [(2·depth + 1)·3·expert width] π0.5: every modulation of the step */
    float *x_t;           /* [H, A] the flow state                                        */
    float *v_t;           /* [H, A] velocity                                              */
    float *rtc_prev;      /* [H, A] RTC: the previous chunk's leftover, zero-padded          */
    float *rtc_w;         /* [H, A] RTC: its prefix weight, repeated along each row          */
    float *rtc_err;       /* [H, A] RTC: x1 − prev, then its weighted error                  */
    float *time_emb0, *cond0; /* [expert width] training-time RTC: flow time 0 (clean rows)  */
    float *mods0;         /* π0.5 training-time RTC: the modulations of flow time 0          */
    /* host */
    float *black;         /* [3, S, S] of −1: an absent camera                            */
    uint8_t *valid;       /* [max_prefix] pad mask of the prefix rows                     */
    int *layout_row;      /* [max_prefix] row of each prefix token in openpi's full layout */
    int32_t *pos_host, *ids_host;   /* staging for pos / ids                              */
    uint8_t *allowed_host;          /* staging for allowed                                */
    float *dump;          /* [max_prefix, max width] host copy of a dumped tensor          */
    float *dump_rows;     /* [max_prefix, max width] its rows before scattering           */
} pi0_buffers;

/* Exact RTC guidance (vjp.c): what one expert layer's forward keeps for the backward [dev]. */
typedef struct {
    float *x_in;          /* [S, We] the residual stream at the layer's input            */
    float *x_mid;         /* [S, We] after the attention branch was added                 */
    float *h2;            /* [S, We] the post-attention norm's output (the MLP's input)    */
    float *q;             /* [S, Hq·hd] q after RoPE (the suffix K/V are in the KV cache)  */
} pi0_tape_layer;

/* The tape of one denoise step plus the backward's scratch, allocated on the first exact-RTC
 * call of a session (vjp_alloc) through its backend [dev]. S = suffix rows. */
typedef struct {
    pi0_tape_layer *layers; /* host array [expert depth]                                  */
    float *x_out;         /* [S, We] the stream after the last layer (the final norm's input) */
    float *pre_silu;      /* [H, We] π0: action_time_mlp_in's output before its silu       */
    float *dx, *dh, *dn;  /* [S, We] d(stream), d(normed input), d(final norm output)      */
    float *dm;            /* [S, F]  d(gelu(gate) ⊙ up)                                    */
    float *gu, *dgu;      /* [S, 2F] the recomputed [gate | up] GEMM output, its gradient  */
    float *datt, *dq;     /* [S, Hq·hd]                                                    */
    float *dk, *dv;       /* [S, Hkv·hd] the suffix's own K/V rows                         */
    float *dact;          /* [H, 2We] π0: d(concat[action_in(x_t), time])                  */
    float *dz;            /* [H, We]  π0: d(action_time_mlp_in output), d(action_in output) */
    float *zero;          /* [We] zeros (the gradient of rows that do not reach v_t)        */
    float *jt_err;        /* [H, A] (∂v_t/∂x_t)ᵀ·e                                         */
} pi0_tape;

struct pi0_session {
    const pi0_model *model;
    const pi0_config *cfg;
    pi0_params params;
    pi0_dispatch d;       /* backend + execution context (threads, stats, backend state) */
    pi0_stats stats;
    pi0_buffers b;
    pi0_timing timing;
    int rtc_frozen;       /* training-time RTC in this forward: suffix action rows given flow time 0 */
    pi0_tape *tape;       /* exact RTC guidance: allocated on first use (vjp_alloc), else NULL */
    int taping;           /* this denoise step records its tape (exact RTC guidance)      */
    pi0_err err;
};

/* Runs the policy for one batch item: images [num_cameras_given, 3, S, S] etc. as in pi0_inputs
 * with the batch dimension removed; noise [H, A]; writes actions [H, A]. */
typedef struct {
    int num_cameras;
    const float *images;
    const uint8_t *image_masks;
    const int32_t *tokens;
    const uint8_t *token_mask;
    const float *state;
    const float *noise;
    /* guided RTC (NULL: none): leftover and row weights, host [H, A] each (zero-padded) */
    const float *rtc_prev, *rtc_w;
    float rtc_max_weight;
    int rtc_trained;      /* training-time RTC (rtc_w unused): rtc_frozen rows of x_t frozen to rtc_prev */
    int rtc_frozen;
    int rtc_exact;        /* guided RTC with the exact vector-Jacobian product (vjp.c)      */
} pi0_item;

pi0_status pi0_forward(pi0_session *s, const pi0_item *it, float *actions, int dump);
/* Allocates every buffer through the session's backend (s->d must be set up). */
pi0_status buffers_alloc(pi0_session *s);
void buffers_free(pi0_session *s);
/* Row 0 of layer l's K or V cache. */
float *cache_layer(pi0_session *s, float *cache, int l);

/* Exact RTC guidance (vjp.c). vjp_alloc: the tape and scratch, once per session (no-op when
 * already there); vjp_free: releases them. vjp_backward: after a taped denoise step, dxt[H, A] =
 * (∂v_t/∂x_t)ᵀ·dvt through the action expert with the prefix K/V held fixed. */
pi0_status vjp_alloc(pi0_session *s);
void vjp_free(pi0_session *s);
pi0_status vjp_backward(pi0_session *s, int np, const float *dvt, float *dxt);

#endif
