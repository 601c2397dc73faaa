/* backend.h — the op table the model forward is written against. Every backend implements the
 * same ops with the same argument order; `ref` (ref.c) is the plain-C float32 oracle, `fast`
 * (fast.c) the accelerated CPU backend (oneDNN bf16 GEMMs, OpenMP). A backend may leave an op
 * NULL or return PI0_ERR_UNSUPPORTED for a call: the dispatcher (dispatch.c) then runs ref's
 * op instead and counts the fallback.
 * Layout conventions: activations are row-major float32 [rows, cols]; weights are pi0_mat
 * [out, in] in the checkpoint's dtype; y = x·Wᵀ. */
#ifndef PI0_BACKEND_H
#define PI0_BACKEND_H

#include "../model/weights.h"

/* Finite stand-in for −∞ on masked attention logits (openpi's value; never −inf, so a fully
 * masked row gives a uniform softmax instead of NaN). */
#define PI0_MASK_LOGIT (-2.3819763e38f)

/* What the forward is computing, for the statistics. */
typedef enum { COMP_VISION, COMP_PREFIX, COMP_SUFFIX, COMP_COUNT } pi0_component;
typedef enum {
    OP_MATMUL, OP_LAYERNORM, OP_RMSNORM, OP_GELU, OP_SILU, OP_MUL, OP_ADD, OP_ROPE, OP_ATTENTION,
    OP_COUNT
} pi0_op;

typedef struct {
    long calls[2];        /* [0] the session's backend, [1] ref fallback */
    double flops[2], ms[2];
} pi0_op_stats;

typedef struct {
    pi0_op_stats op[COMP_COUNT][OP_COUNT];
} pi0_stats;

typedef struct {
    int num_threads;      /* >= 1 */
    void *ctx;            /* backend-private per-session state (fast: oneDNN stream, scratch) */
    pi0_component comp;   /* set by the forward pass */
    pi0_stats *stats;     /* NULL = not collected */
} pi0_exec;

/* Fused epilogue of a matmul: y (=|+=) act(x·Wᵀ + bias) ⊙ mul. */
typedef struct {
    const float *bias;    /* [N] or NULL */
    int gelu;             /* GELU(tanh) after the bias */
    const float *mul;     /* [M, N] elementwise factor after the activation, or NULL */
    int accumulate;       /* 1: y += result (residual); 0: y = result */
} pi0_epilogue;

typedef struct pi0_model pi0_model_t;

typedef struct pi0_backend {
    const char *name;
    /* Per-model preparation (e.g. weight reorder), called once before the first session. */
    pi0_status (*prepare)(pi0_model_t *m, pi0_err *e);
    /* Per-session state in ex->ctx. */
    pi0_status (*session_init)(pi0_exec *ex, const pi0_config *c, pi0_err *e);
    void (*session_free)(pi0_exec *ex);
    /* y[M,N] (=|+=) epilogue(x[M,K]·Wᵀ); W is [N, K]. y may not alias x or ep->mul. */
    pi0_status (*matmul)(const pi0_exec *ex, float *y, const float *x, int M, const pi0_mat *W,
                         const pi0_epilogue *ep);
    /* y = (x − mean)/sqrt(var + eps)·w + b, per row of width D. y may equal x. */
    pi0_status (*layernorm)(const pi0_exec *ex, float *y, const float *x, int M, int D,
                            const float *w, const float *b, float eps);
    /* Gemma RMSNorm: y = x/sqrt(mean(x²) + eps)·(1 + w). y may equal x. */
    pi0_status (*rmsnorm)(const pi0_exec *ex, float *y, const float *x, int M, int D,
                          const float *w, float eps);
    pi0_status (*gelu_tanh)(const pi0_exec *ex, float *x, size_t n);     /* in place */
    pi0_status (*silu)(const pi0_exec *ex, float *x, size_t n);          /* in place */
    pi0_status (*mul)(const pi0_exec *ex, float *x, const float *y, size_t n); /* x ⊙= y */
    pi0_status (*add)(const pi0_exec *ex, float *x, const float *y, size_t n); /* x += y */
    /* Rotary embedding, split halves, in place on x [M, n_heads·head_dim] at positions pos[M]. */
    pi0_status (*rope)(const pi0_exec *ex, float *x, int M, int n_heads, int head_dim,
                       const int *pos, double theta);
    /* out[M, Hq·hd] = softmax((q·scale)·kᵀ masked)·v with q [M, Hq·hd], k/v [Nk, Hkv·hd];
     * query head h reads kv head h / (Hq/Hkv). allowed [M, Nk] (1 = may attend), NULL = all. */
    pi0_status (*attention)(const pi0_exec *ex, float *out, const float *q, const float *k,
                            const float *v, int M, int Nk, int Hq, int Hkv, int hd,
                            const uint8_t *allowed, float scale);
} pi0_backend;

extern const pi0_backend pi0_backend_ref;
extern const pi0_backend pi0_backend_fast;

/* Backend by name ("ref", "fast"); NULL if unknown or not built. */
const pi0_backend *pi0_backend_find(const char *name);

/* ---- dispatch: run an op on the session's backend, falling back to ref, with statistics ---- */
typedef struct {
    const pi0_backend *be;
    pi0_exec ex;
} pi0_dispatch;

pi0_status op_matmul(pi0_dispatch *d, float *y, const float *x, int M, const pi0_mat *W,
                     const pi0_epilogue *ep);
pi0_status op_layernorm(pi0_dispatch *d, float *y, const float *x, int M, int D, const float *w,
                        const float *b, float eps);
pi0_status op_rmsnorm(pi0_dispatch *d, float *y, const float *x, int M, int D, const float *w, float eps);
pi0_status op_gelu(pi0_dispatch *d, float *x, size_t n);
pi0_status op_silu(pi0_dispatch *d, float *x, size_t n);
pi0_status op_mul(pi0_dispatch *d, float *x, const float *y, size_t n);
pi0_status op_add(pi0_dispatch *d, float *x, const float *y, size_t n);
pi0_status op_rope(pi0_dispatch *d, float *x, int M, int n_heads, int hd, const int *pos, double theta);
pi0_status op_attention(pi0_dispatch *d, float *out, const float *q, const float *k, const float *v,
                        int M, int Nk, int Hq, int Hkv, int hd, const uint8_t *allowed, float scale);

const char *pi0_op_name(pi0_op op);
const char *pi0_component_name(pi0_component c);

#endif
