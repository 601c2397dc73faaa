/* backend.h — the op table the model forward is written against. Every backend implements the
 * same ops with the same argument order; `ref` (ref.c) is the plain-C float32 oracle.
 * Layout conventions: activations are row-major float32 [rows, cols]; weights are pi0_mat
 * [out, in] in the checkpoint's dtype; y = x·Wᵀ. */
#ifndef PI0_BACKEND_H
#define PI0_BACKEND_H

#include "../model/weights.h"

/* Finite stand-in for −∞ on masked attention logits (openpi's value; never −inf, so a fully
 * masked row gives a uniform softmax instead of NaN). */
#define PI0_MASK_LOGIT (-2.3819763e38f)

typedef struct {
    int num_threads;   /* >= 1 */
} pi0_exec;

typedef struct pi0_backend {
    const char *name;
    /* y[M,N] = x[M,K]·Wᵀ + bias (bias may be NULL); W is [N, K]. */
    void (*matmul)(const pi0_exec *ex, float *y, const float *x, int M, const pi0_mat *W,
                   const float *bias);
    /* y = (x − mean)/sqrt(var + eps)·w + b, per row of width D. y may equal x. */
    void (*layernorm)(const pi0_exec *ex, float *y, const float *x, int M, int D, const float *w,
                      const float *b, float eps);
    /* Gemma RMSNorm: y = x/sqrt(mean(x²) + eps)·(1 + w). y may equal x. */
    void (*rmsnorm)(const pi0_exec *ex, float *y, const float *x, int M, int D, const float *w,
                    float eps);
    void (*gelu_tanh)(const pi0_exec *ex, float *x, size_t n);      /* in place */
    void (*silu)(const pi0_exec *ex, float *x, size_t n);           /* in place */
    void (*mul)(const pi0_exec *ex, float *x, const float *y, size_t n); /* x ⊙= y */
    void (*add)(const pi0_exec *ex, float *x, const float *y, size_t n); /* x += y */
    /* Rotary embedding, split halves, in place on x [M, n_heads·head_dim] at positions pos[M]. */
    void (*rope)(const pi0_exec *ex, float *x, int M, int n_heads, int head_dim, const int *pos,
                 double theta);
    /* out[M, Hq·hd] = softmax((q·scale)·kᵀ masked)·v with q [M, Hq·hd], k/v [Nk, Hkv·hd];
     * query head h reads kv head h / (Hq/Hkv). allowed [M, Nk] (1 = may attend), NULL = all. */
    pi0_status (*attention)(const pi0_exec *ex, float *out, const float *q, const float *k,
                            const float *v, int M, int Nk, int Hq, int Hkv, int hd,
                            const uint8_t *allowed, float scale);
} pi0_backend;

extern const pi0_backend pi0_backend_ref;

#endif
