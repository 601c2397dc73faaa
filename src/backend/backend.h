/* backend.h — the op table the model forward is written against. Every backend implements the
 * same ops with the same argument order; `ref` (ref.c) is the plain-C float32 oracle, `fast`
 * (fast.c) the accelerated CPU backend (oneDNN bf16 GEMMs, OpenMP), `cuda` (cuda/) the GPU one.
 * A backend may leave an op NULL or return PI0_ERR_UNSUPPORTED for a call: the dispatcher
 * (dispatch.c) then runs ref's op instead and counts the fallback — only for backends whose
 * memory the host can read (a device-memory backend must implement every op).
 *
 * What a backend sees: weight handles (pi0_mat, pi0_vec: a name, a shape and the checkpoint's
 * bytes, plus one slot per backend for its own prepared copy), activation buffers it allocated
 * itself (alloc / release), and the arguments of each op. It knows nothing of the model.
 * Layout conventions: activations are row-major float32 [rows, cols]; matrices are [out, in]
 * (PyTorch layout); y = x·Wᵀ. */
#ifndef PI0_BACKEND_H
#define PI0_BACKEND_H

#include "../common.h"

/* Finite stand-in for −∞ on masked attention logits (openpi's value; never −inf, so a fully
 * masked row gives a uniform softmax instead of NaN). */
#define PI0_MASK_LOGIT (-2.3819763e38f)

/* Each backend's slot in the weight handles' `prepared` arrays. */
enum { PI0_SLOT_REF, PI0_SLOT_FAST, PI0_SLOT_CUDA, PI0_SLOTS };
/* Timing points of a forward pass: start, vision done, prefix done, denoise done. */
enum { PI0_MARKS = 4 };

/* A [rows, cols] matrix in the checkpoint, in its stored dtype (F32/BF16/F16). A stacked matrix
 * (data NULL, parts != NULL) is the row-wise concatenation of nparts matrices with the same
 * cols: one GEMM computes all of them (π0.5's per-step adaRMS modulations). */
typedef struct pi0_mat {
    const void *data;
    pi0_dtype dtype;
    int rows, cols;
    const char *name;               /* checkpoint key (or a description for a stack) */
    const struct pi0_mat *const *parts;
    int nparts;
    const void *prepared[PI0_SLOTS];/* each backend's own copy, set by its prepare() */
} pi0_mat;

/* A float32 weight vector (norm scale, bias, position table), converted once at load. */
typedef struct pi0_vec {
    const float *data;
    size_t n;
    const char *name;
    const void *prepared[PI0_SLOTS];
} pi0_vec;

/* Converts rows [r0, r0+n) of W (stacked or not) to float32 into dst [n, cols]. */
void pi0_mat_rows_f32(float *dst, const pi0_mat *W, int r0, int n);

/* Every weight a backend may be asked to prepare: GEMM operands, tables only indexed by rows
 * (op embed), vectors. */
typedef struct {
    pi0_mat **mats;
    int nmats;
    pi0_mat *tables[4];
    int ntables;
    pi0_vec **vecs;
    int nvecs;
} pi0_weight_list;

/* What the forward is computing, for the statistics. */
typedef enum { COMP_VISION, COMP_PREFIX, COMP_SUFFIX, COMP_COUNT } pi0_component;
typedef enum {
    OP_MATMUL, OP_LAYERNORM, OP_RMSNORM, OP_RMSNORM_MOD, OP_GELU, OP_SILU, OP_MUL, OP_ADD,
    OP_ADD_WEIGHT, OP_ROPE, OP_ATTENTION, OP_PATCHIFY, OP_EMBED, OP_COPY_ROWS, OP_TIME_EMBED,
    OP_AXPY, OP_UPLOAD, OP_DOWNLOAD,
    /* backward ops (exact RTC guidance) */
    OP_MATMUL_DX, OP_RMSNORM_BWD, OP_GEGLU_BWD, OP_SILU_BWD, OP_ROPE_BWD, OP_ATTENTION_BWD, OP_COUNT
} pi0_op;

typedef struct {
    long calls[2];        /* [0] the session's backend, [1] ref fallback */
    double flops[2], ms[2], bytes[2];
} pi0_op_stats;

typedef struct {
    pi0_op_stats op[COMP_COUNT][OP_COUNT];
} pi0_stats;

/* What one recorded graph ran, added to the statistics at each replay. */
typedef struct {
    uint64_t key;
    int used;
    pi0_stats ops;
} pi0_graph_stats;
enum { PI0_GRAPH_STATS = 16 };

typedef struct {
    int num_threads;      /* >= 1 */
    void *ctx;            /* backend-private per-session state (fast: oneDNN stream, scratch) */
    const void *weights;  /* the backend's prepared-weights handle for this model (or NULL) */
    pi0_component comp;   /* set by the forward pass */
    pi0_stats *stats;     /* NULL = not collected */
} pi0_exec;

/* Fused epilogue of a matmul: y (=|+=) (act(x·Wᵀ + bias) ⊙ mul) ⊙ gate.
 * With geglu (Gemma's MLP), W is a stacked [gate (F rows); up (F rows)] matrix (2F rows) and
 * the product of its two halves replaces act(x·Wᵀ + bias): y [M, F] (=|+=)
 * (gelu_tanh(x·gateᵀ) ⊙ (x·upᵀ)) ⊙ gate — one GEMM for both projections. bias, gelu and mul must
 * be unset then (PI0_ERR_ARG otherwise), N in the fields below is F. */
typedef struct {
    const pi0_vec *bias;  /* [N] or NULL */
    int gelu;             /* GELU(tanh) after the bias */
    const float *mul;     /* [M, N] elementwise factor after the activation, or NULL */
    const float *gate;    /* [N] factor broadcast over the rows (π0.5 gated residual), or NULL */
    int accumulate;       /* 1: y += result (residual); 0: y = result */
    int geglu;            /* W = [gate; up]: y = gelu_tanh(x·gateᵀ) ⊙ (x·upᵀ), see above */
    /* 1: until y is written again, it is read only as the x of later matmuls (all of it, or row
     * ranges of it), never by another op or the host. A backend may then keep y only as its GEMM
     * operand (cuda: bf16) and leave the float32 y unwritten; ref and fast ignore it. Not with
     * accumulate (that reads y). */
    int gemm_input;
} pi0_epilogue;

/* A geglu epilogue's preconditions: no bias, GELU or mul, and W's rows split in two halves. */
static inline int pi0_geglu_valid(const pi0_epilogue *ep, const pi0_mat *W) {
    return !ep->bias && !ep->gelu && !ep->mul && W->rows > 0 && W->rows % 2 == 0;
}

/* Activation pointers (float *, int32_t *, uint8_t *) below are buffers from the backend's
 * alloc(); weights are handles. Sizes are element counts unless named `bytes`. */
typedef struct pi0_backend {
    const char *name;
    int slot;             /* PI0_SLOT_* */
    int host_memory;      /* 1: alloc() returns host memory (ref may stand in for declined ops) */

    /* ---- model: prepare its own copy of the weights once (e.g. reorder, upload) ---- */
    pi0_status (*prepare)(const pi0_weight_list *wl, void **handle, pi0_err *e);
    void (*release)(void *handle, const pi0_weight_list *wl);  /* clears what prepare set */
    /* One line: the path chosen ("bf16 (AVX512-BF16, oneDNN)"); handle may be NULL. */
    void (*describe)(const void *handle, char *buf, size_t n);

    /* ---- session ---- */
    pi0_status (*session_init)(pi0_exec *ex, const pi0_config *c, pi0_err *e);
    void (*session_free)(pi0_exec *ex);
    /* NULL alloc/release/upload/download/sync: host calloc / free / memcpy / nothing. */
    void *(*alloc)(const pi0_exec *ex, size_t bytes);          /* zeroed */
    void (*free)(const pi0_exec *ex, void *p);
    pi0_status (*upload)(const pi0_exec *ex, void *dst, const void *src, size_t bytes);
    pi0_status (*download)(const pi0_exec *ex, void *dst, const void *src, size_t bytes);
    pi0_status (*sync)(const pi0_exec *ex);                    /* wait for queued work */
    /* The message behind the last failed op of this session (e.g. a CUDA error), or NULL. */
    const char *(*last_error)(const pi0_exec *ex);
    /* Optional, for asynchronous backends. mark(i) records timing point i (< PI0_MARKS) in the
     * queue; elapsed_ms(i, j) is the time between two marks once they completed (CUDA events). */
    pi0_status (*mark)(const pi0_exec *ex, int i);
    double (*elapsed_ms)(const pi0_exec *ex, int i, int j);
    /* Optional: record the ops between graph_begin and graph_end once per key and replay them
     * afterwards (CUDA graphs). graph_begin sets *replayed = 1 when it launched a recorded
     * graph (the caller then skips those ops); graph_end sets *rerun = 1 when recording failed
     * and the ops it saw did not run. */
    pi0_status (*graph_begin)(const pi0_exec *ex, uint64_t key, int *replayed);
    pi0_status (*graph_end)(const pi0_exec *ex, uint64_t key, int *rerun);
    /* Optional: the device's ceilings measured now, and its memory in use. */
    pi0_status (*measure)(const pi0_exec *ex, double *gemm_flops_per_s, double *copy_bytes_per_s,
                          double *mem_used_bytes, double *mem_total_bytes);

    /* ---- ops ---- */
    /* y[M,N] (=|+=) epilogue(x[M,K]·Wᵀ); W is [N, K] (with ep->geglu: W [2N, K], see
     * pi0_epilogue). y may not alias x, ep->mul or ep->gate. */
    pi0_status (*matmul)(const pi0_exec *ex, float *y, const float *x, int M, const pi0_mat *W,
                         const pi0_epilogue *ep);
    /* y = (x − mean)/sqrt(var + eps)·w + b, per row of width D. y may equal x. */
    pi0_status (*layernorm)(const pi0_exec *ex, float *y, const float *x, int M, int D,
                            const pi0_vec *w, const pi0_vec *b, float eps);
    /* Gemma RMSNorm: y = x/sqrt(mean(x²) + eps)·(1 + w). y may equal x. */
    pi0_status (*rmsnorm)(const pi0_exec *ex, float *y, const float *x, int M, int D,
                          const pi0_vec *w, float eps);
    /* Adaptive RMSNorm (π0.5): y = x/sqrt(mean(x²) + eps)·(1 + scale) + shift, with scale =
     * mod[0, D) and shift = mod[D, 2D) the same for every row. y may equal x. */
    pi0_status (*rmsnorm_mod)(const pi0_exec *ex, float *y, const float *x, int M, int D,
                              const float *mod, float eps);
    pi0_status (*gelu_tanh)(const pi0_exec *ex, float *x, size_t n);     /* in place */
    pi0_status (*silu)(const pi0_exec *ex, float *x, size_t n);          /* in place */
    pi0_status (*mul)(const pi0_exec *ex, float *x, const float *y, size_t n); /* x ⊙= y */
    pi0_status (*add)(const pi0_exec *ex, float *x, const float *y, size_t n); /* x += y */
    pi0_status (*add_weight)(const pi0_exec *ex, float *x, const pi0_vec *w, size_t n); /* x += w */
    /* Rotary embedding, split halves, in place on x [M, n_heads·head_dim] at positions pos[M]. */
    pi0_status (*rope)(const pi0_exec *ex, float *x, int M, int n_heads, int head_dim,
                       const int32_t *pos, double theta);
    /* out[M, Hq·hd] = softmax((q·scale)·kᵀ masked)·v with q [M, Hq·hd], k/v [Nk, Hkv·hd];
     * query head h reads kv head h / (Hq/Hkv). allowed [M, Nk] (1 = may attend), NULL = all. */
    pi0_status (*attention)(const pi0_exec *ex, float *out, const float *q, const float *k,
                            const float *v, int M, int Nk, int Hq, int Hkv, int hd,
                            const uint8_t *allowed, float scale);
    /* Conv2d(C→W, kernel p, stride p) as a matmul's input: image [C, S, S] → patches
     * [(S/p)², C·p·p] in (channel, ky, kx) order, tokens row-major over the patch grid. */
    pi0_status (*patchify)(const pi0_exec *ex, float *patches, const float *img, int C, int S, int p);
    /* out[i, :] = E[ids[i], :]·scale for i < n (ids checked by the caller). */
    pi0_status (*embed)(const pi0_exec *ex, float *out, const pi0_mat *E, const int32_t *ids, int n,
                        float scale);
    /* dst[r, 0:cols] = src[r, 0:cols] for r < rows, with row strides in floats; src_stride 0
     * repeats one source row. */
    pi0_status (*copy_rows)(const pi0_exec *ex, float *dst, size_t dst_stride, const float *src,
                            size_t src_stride, int rows, int cols);
    /* Sinusoidal embedding of t (openpi posemb_sincos): f = linspace(0, 1, d/2),
     * period = min·(max/min)^f, out = [sin(t·2π/period), cos(t·2π/period)], arguments in double. */
    pi0_status (*time_embed)(const pi0_exec *ex, float *out, double t, int d, double min_period,
                             double max_period);
    pi0_status (*axpy)(const pi0_exec *ex, float *x, const float *v, float alpha, size_t n); /* x += α·v */

    /* ---- backward ops: input gradients only (no weight gradients), for the exact
     * vector-Jacobian product of guided real-time chunking through the action expert. Each takes
     * the gradient of the forward op's output (dy) and what the forward op read, and writes the
     * gradient of its input. ---- */
    /* dx[M,K] (=|+=) (dy[M,N] ⊙ gate)·W with W [N, K] (stacked or not): the input gradient of
     * y = (x·Wᵀ) ⊙ gate. gate [N] broadcast over rows, NULL = none. dx may not alias dy. */
    pi0_status (*matmul_dx)(const pi0_exec *ex, float *dx, const float *dy, int M, const pi0_mat *W,
                            const float *gate, int accumulate);
    /* Input gradient of rmsnorm (w != NULL: factor 1 + w) or rmsnorm_mod (w NULL: factor
     * 1 + mod[0, D); the shift does not depend on x), per row of x [M, D]:
     *     g = dy ⊙ factor, r = 1/sqrt(mean(x²) + eps),  dx (=|+=) r·g − x·r³·mean(g ⊙ x).
     * dx may not alias dy or x. */
    pi0_status (*rmsnorm_bwd)(const pi0_exec *ex, float *dx, const float *dy, const float *x, int M,
                              int D, const pi0_vec *w, const float *mod, float eps, int accumulate);
    /* GeGLU, m = gelu_tanh(g) ⊙ u with gu [M, 2F] holding row by row [g | u] (the output of the
     * stacked [gate; up] GEMM): dgu[M, 2F] = [dm ⊙ u ⊙ gelu_tanh'(g) | dm ⊙ gelu_tanh(g)]. */
    pi0_status (*geglu_bwd)(const pi0_exec *ex, float *dgu, const float *dm, const float *gu, int M, int F);
    /* dx ⊙= silu'(x_in) elementwise, x_in the forward op's input: dx holds dy on entry. */
    pi0_status (*silu_bwd)(const pi0_exec *ex, float *dx, const float *x_in, size_t n);
    /* Input gradient of rope, in place on dx [M, n_heads·head_dim]: the transposed rotation
     * (angle −θ) at the same positions. */
    pi0_status (*rope_bwd)(const pi0_exec *ex, float *dx, int M, int n_heads, int head_dim,
                           const int32_t *pos, double theta);
    /* Gradients of attention's inputs, given dout [M, Hq·hd] and the forward op's q, k, v, M, Nk,
     * Hq, Hkv, hd, allowed and scale (the probabilities are recomputed): dq [M, Hq·hd]; dk, dv
     * [Nk − k0, Hkv·hd] for key/value rows [k0, Nk) only (rows before k0 are held fixed: the
     * prefix cache), each kv head summing its query heads. Overwrites dq, dk, dv. */
    pi0_status (*attention_bwd)(const pi0_exec *ex, float *dq, float *dk, float *dv, const float *dout,
                                const float *q, const float *k, const float *v, int M, int Nk, int k0,
                                int Hq, int Hkv, int hd, const uint8_t *allowed, float scale);
} pi0_backend;

extern const pi0_backend pi0_backend_ref;
#ifdef PI0_HAVE_FAST
extern const pi0_backend pi0_backend_fast;
#endif
#ifdef PI0_HAVE_CUDA
extern const pi0_backend pi0_backend_cuda;
#endif

/* Backend by name ("ref", "fast", "cuda"); NULL if unknown or not built. */
const pi0_backend *pi0_backend_find(const char *name);
/* Comma-separated names of the backends in this build. */
const char *pi0_backend_names(void);
/* The default backend: cuda when built and a GPU is present, else fast when built, else ref. */
const pi0_backend *pi0_backend_default(void);

/* ---- dispatch: run an op on the session's backend, falling back to ref, with statistics ---- */
typedef struct {
    const pi0_backend *be;
    pi0_exec ex;
    pi0_err *err;         /* where a refused op is explained */
    pi0_stats at_capture; /* statistics when the graph being recorded began */
    pi0_graph_stats graphs[PI0_GRAPH_STATS];
} pi0_dispatch;

void *be_alloc(pi0_dispatch *d, size_t bytes);
void be_free(pi0_dispatch *d, void *p);
pi0_status op_upload(pi0_dispatch *d, void *dst, const void *src, size_t bytes);
pi0_status op_download(pi0_dispatch *d, void *dst, const void *src, size_t bytes);
pi0_status op_sync(pi0_dispatch *d);
/* Timing point i (host clock, or the backend's events); ms between two points after a sync. */
pi0_status op_mark(pi0_dispatch *d, int i, double host_ms[PI0_MARKS]);
double op_elapsed_ms(pi0_dispatch *d, int i, int j, const double host_ms[PI0_MARKS]);
/* Graph recording around a run of ops (no-ops for backends without it); see the table. */
pi0_status op_graph_begin(pi0_dispatch *d, uint64_t key, int *replayed);
pi0_status op_graph_end(pi0_dispatch *d, uint64_t key, int *rerun);

pi0_status op_matmul(pi0_dispatch *d, float *y, const float *x, int M, const pi0_mat *W,
                     const pi0_epilogue *ep);
pi0_status op_layernorm(pi0_dispatch *d, float *y, const float *x, int M, int D, const pi0_vec *w,
                        const pi0_vec *b, float eps);
pi0_status op_rmsnorm(pi0_dispatch *d, float *y, const float *x, int M, int D, const pi0_vec *w,
                      float eps);
pi0_status op_rmsnorm_mod(pi0_dispatch *d, float *y, const float *x, int M, int D, const float *mod,
                          float eps);
pi0_status op_gelu(pi0_dispatch *d, float *x, size_t n);
pi0_status op_silu(pi0_dispatch *d, float *x, size_t n);
pi0_status op_mul(pi0_dispatch *d, float *x, const float *y, size_t n);
pi0_status op_add(pi0_dispatch *d, float *x, const float *y, size_t n);
pi0_status op_add_weight(pi0_dispatch *d, float *x, const pi0_vec *w, size_t n);
pi0_status op_rope(pi0_dispatch *d, float *x, int M, int n_heads, int hd, const int32_t *pos,
                   double theta);
pi0_status op_attention(pi0_dispatch *d, float *out, const float *q, const float *k, const float *v,
                        int M, int Nk, int Hq, int Hkv, int hd, const uint8_t *allowed, float scale);
pi0_status op_patchify(pi0_dispatch *d, float *patches, const float *img, int C, int S, int p);
pi0_status op_embed(pi0_dispatch *d, float *out, const pi0_mat *E, const int32_t *ids, int n, float scale);
pi0_status op_copy_rows(pi0_dispatch *d, float *dst, size_t dst_stride, const float *src,
                        size_t src_stride, int rows, int cols);
pi0_status op_time_embed(pi0_dispatch *d, float *out, double t, int dim, double min_period,
                         double max_period);
pi0_status op_axpy(pi0_dispatch *d, float *x, const float *v, float alpha, size_t n);
pi0_status op_matmul_dx(pi0_dispatch *d, float *dx, const float *dy, int M, const pi0_mat *W,
                        const float *gate, int accumulate);
pi0_status op_rmsnorm_bwd(pi0_dispatch *d, float *dx, const float *dy, const float *x, int M, int D,
                          const pi0_vec *w, const float *mod, float eps, int accumulate);
pi0_status op_geglu_bwd(pi0_dispatch *d, float *dgu, const float *dm, const float *gu, int M, int F);
pi0_status op_silu_bwd(pi0_dispatch *d, float *dx, const float *x_in, size_t n);
pi0_status op_rope_bwd(pi0_dispatch *d, float *dx, int M, int n_heads, int hd, const int32_t *pos,
                       double theta);
pi0_status op_attention_bwd(pi0_dispatch *d, float *dq, float *dk, float *dv, const float *dout,
                            const float *q, const float *k, const float *v, int M, int Nk, int k0, int Hq,
                            int Hkv, int hd, const uint8_t *allowed, float scale);

const char *pi0_op_name(pi0_op op);
const char *pi0_component_name(pi0_component c);

#endif
