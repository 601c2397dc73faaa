/* model.h — the internal shape of pi0_model and pi0_session, and the forward pass entry point. */
#ifndef PI0_MODEL_H
#define PI0_MODEL_H

#include <pthread.h>

#include "../backend/backend.h"
#include "config.h"
#include "weights.h"

#define PI0_MAX_SHARDS 64
#define PI0_DEFAULT_BACKEND "fast"

struct pi0_model {
    pi0_config cfg;
    int loaded;
    pthread_mutex_t prepare_lock;   /* backend weight preparation, once per backend */
    void *fast;                     /* fast backend's prepared weights (fast.c) */
    st_file files[PI0_MAX_SHARDS];
    int nfiles;
    pi0_weights w;
    pi0_err err;
};

/* Every activation buffer, allocated once at session init (llama2.c's RunState). */
typedef struct {
    int cap_rows;         /* max rows any stage has: prefix, image tokens, suffix         */
    int max_prefix;       /* num_cameras · image tokens + max_token_len                   */
    int suffix_len;       /* 1 + action_horizon                                           */
    float *x, *h, *tmp;   /* [cap_rows, max width] residual stream, normed, block output  */
    float *q, *att;       /* [cap_rows, max(vision width, Hq·hd)]                         */
    float *k, *v;         /* [cap_rows, vision width] (SigLIP only)                       */
    float *mlp1, *mlp2;   /* [cap_rows, max mlp dim]                                      */
    float *patches;       /* [image tokens, 3·p·p]                                        */
    float *black;         /* [3, S, S] of −1: an absent camera                            */
    float *kcache, *vcache; /* [depth, max_prefix + suffix_len, Hkv·hd]                   */
    int *pos;             /* [cap_rows]                                                   */
    uint8_t *valid;       /* [max_prefix] pad mask of the prefix rows                     */
    int *layout_row;      /* [max_prefix] row of each prefix token in openpi's full layout */
    uint8_t *allowed;     /* [cap_rows, max_prefix + suffix_len]                          */
    float *state_tok;     /* [expert width]                                               */
    float *time_emb;      /* [expert width]                                               */
    float *act_time;      /* [H, 2·expert width]  concat(action_in, time)                 */
    float *x_t;           /* [H, A] the flow state                                        */
    float *v_t;           /* [H, A] velocity                                              */
    float *dump;          /* [max_prefix, max width] scatter buffer for dumps             */
} pi0_buffers;

struct pi0_session {
    const pi0_model *model;
    const pi0_config *cfg;
    pi0_params params;
    pi0_dispatch d;       /* backend + execution context (threads, stats, backend state) */
    pi0_stats stats;
    pi0_buffers b;
    pi0_timing timing;
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
} pi0_item;

pi0_status pi0_forward(pi0_session *s, const pi0_item *it, float *actions, int dump);
void fast_release(pi0_model *m);                 /* frees the fast backend's weights */
const char *fast_path_name(const pi0_model *m);  /* "bf16 (...)" / "f32 (...)" */
size_t fast_weight_bytes(const pi0_model *m);
pi0_status buffers_alloc(pi0_buffers *b, const pi0_config *c);
void buffers_free(pi0_buffers *b);

#endif
