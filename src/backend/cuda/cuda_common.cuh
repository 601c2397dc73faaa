/* cuda_common.cuh — shared by the cuda backend's files: the per-session state, the prepared
 * weights, and the checks that turn a CUDA / cuBLASLt failure into a pi0_status with a message
 * kept in the session (reported by the backend's last_error). CUDA C++ lives only in this
 * directory; the rest of pi0.c sees the C op table (backend.h). */
#ifndef PI0_CUDA_COMMON_CUH
#define PI0_CUDA_COMMON_CUH

#include <cublasLt.h>
#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include <cstdint>
#include <cstdio>

extern "C" {
#include "../backend.h"
}

/* A weight matrix on the device: bf16 [N, K] row-major (the checkpoint's [out, in]). */
struct cuda_mat {
    __nv_bfloat16 *w;
    int N, K;
};

/* A weight vector on the device, float32. */
struct cuda_vec {
    float *v;
    size_t n;
};

/* Every device allocation of a model's prepared weights (freed by release). */
struct cuda_weights {
    void **ptrs;
    int n, cap;
    size_t bytes;
    cuda_mat *mats;
    cuda_vec *vecs;
    char device[128];
    int unfused;            /* GEMM plans made without their fused epilogue (no cuBLASLt algorithm) */
    char unfused_first[64]; /* the first such shape, for describe() */
};

enum { CUDA_GEMM_SLOTS = 512, CUDA_ATT_SLOTS = 64, CUDA_ATT_BWD_SLOTS = 24 };

/* A cuBLASLt matmul set up for one shape and epilogue, reused on every call with that key. */
struct cuda_gemm_plan {
    unsigned long long key[4];
    int used;
    int fused;  /* 0: no algorithm had the epilogue; the plan is the plain GEMM */
    cublasLtMatmulDesc_t desc;
    cublasLtMatrixLayout_t a, b, c;
    cublasLtMatmulAlgo_t algo;
};

/* A recorded denoise loop (CUDA graph), replayed while its key (the prefix length) repeats. */
struct cuda_graph {
    unsigned long long key, last_use;
    cudaGraphExec_t exec;
};
enum { CUDA_GRAPHS = 16 };

/* bf16 copy of a K or V an attention with one kv head reads (the packed layout is then the
 * source's own, [rows, hd]), kept per source buffer (a layer's cache) so that rows converted once
 * are not converted again: rows [0, valid) of buf hold bf16 of the source's rows. A write into
 * the source truncates valid to the rows before it (cuda_xb_wrote); graph boundaries, failures
 * and alloc/free set it to 0. */
struct cuda_kv_mirror {
    const float *src;
    size_t row;          /* floats per row (hd) */
    size_t valid;        /* rows of buf that hold bf16(src rows) */
    __nv_bfloat16 *buf;
};
enum { CUDA_KV_MIRRORS = 128 };

struct cuda_session {
    cudaStream_t stream;
    cudaEvent_t marks[PI0_MARKS];
    cuda_graph graphs[CUDA_GRAPHS];
    uint64_t warmed[CUDA_GRAPHS]; /* keys already run once without recording (ring) */
    int n_warmed;
    unsigned long long uses;
    int capturing, graphs_off;
    cublasLtHandle_t lt;
    void *workspace;
    size_t workspace_bytes;
    __nv_bfloat16 *xb;   /* GEMM inputs rounded to bf16 */
    size_t xb_cap;
    /* xb holds bf16(xb_src[0, xb_n)) when xb_src is set: written by the op that produced those
     * floats (a norm, an unfused epilogue) or by the last GEMM's own conversion, so the GEMMs
     * that read the same activation (q/k/v, gate/up, down) skip the conversion pass. Host-side
     * bookkeeping in stream order: every op that writes device memory overlapping it drops it
     * (cuda_xb_wrote), as do graph boundaries and failures. */
    const float *xb_src;
    size_t xb_n;
    /* the same for att_q: RoPE writes q [M, heads·hd] also as bf16 there, which is the packed
     * layout of the attention's Q when there is one kv head (Gemma), so its pack pass is skipped */
    const float *att_q_src;
    size_t att_q_n;
    cuda_kv_mirror kv[CUDA_KV_MIRRORS];
    int n_kv, next_kv;   /* mirrors allocated (kv_pool), the next one to reuse */
    size_t kv_cap;       /* elements of each mirror */
    __nv_bfloat16 *kv_pool;
    /* a GEMM output that only GEMMs read (epilogue gemm_input), written by cuBLASLt in bf16 only:
     * yb holds bf16(yb_src[0, yb_n)), the float32 yb_src is never written; tracked as xb */
    __nv_bfloat16 *yb;
    size_t yb_cap;
    const float *yb_src;
    size_t yb_n;
    float *tmp;          /* GEMM output before an epilogue the library does not fuse ([M, 2F] for GeGLU) */
    size_t tmp_cap;
    cuda_gemm_plan *plans;
    /* attention on tensor cores: Q, K, V as bf16 per kv head, the logits (f32) and the
     * probabilities (bf16), sized at init for the largest attention of the model */
    __nv_bfloat16 *att_q, *att_k, *att_v, *att_p;
    float *att_s;
    size_t att_q_cap, att_kv_cap, att_s_cap;
    cuda_gemm_plan *att_plans;
    cuda_gemm_plan *att_bwd_plans; /* the attention backward's f32 GEMMs (cuda_attention_bwd) */
    int max_smem;        /* dynamic shared memory a block may use */
    char err[256];
};

/* Records the failure of `what` in the session and returns PI0_ERR_DEVICE. */
pi0_status cuda_fail(const pi0_exec *ex, const char *what, const char *why);

#define CUDA_TRY(ex, call)                                                                  \
    do {                                                                                    \
        cudaError_t e_ = (call);                                                            \
        if (e_ != cudaSuccess) return cuda_fail((ex), #call, cudaGetErrorString(e_));       \
    } while (0)
/* After a kernel launch: a bad configuration shows up here, a fault at the next sync. */
#define CUDA_LAUNCHED(ex, name)                                                             \
    do {                                                                                    \
        cudaError_t e_ = cudaGetLastError();                                                \
        if (e_ != cudaSuccess) return cuda_fail((ex), name, cudaGetErrorString(e_));        \
    } while (0)
#define LT_TRY(ex, call)                                                                    \
    do {                                                                                    \
        cublasStatus_t s_ = (call);                                                         \
        if (s_ != CUBLAS_STATUS_SUCCESS) return cuda_fail((ex), #call, cublasLtGetStatusString(s_)); \
    } while (0)

static inline cuda_session *cuda_ctx(const pi0_exec *ex) { return (cuda_session *)ex->ctx; }
static inline const cuda_mat *cuda_mat_of(const pi0_mat *W) {
    return (const cuda_mat *)W->prepared[PI0_SLOT_CUDA];
}
static inline const float *cuda_vec_of(const pi0_vec *v) {
    return v ? ((const cuda_vec *)v->prepared[PI0_SLOT_CUDA])->v : nullptr;
}
/* An op is about to write [p, p + bytes): the bf16 copy of an overlapping activation is stale. */
static inline void cuda_xb_wrote(cuda_session *cs, const void *p, size_t bytes) {
    if (!cs) return;
    const uintptr_t a = (uintptr_t)p, b = (uintptr_t)cs->xb_src, c = (uintptr_t)cs->att_q_src,
                    d = (uintptr_t)cs->yb_src;
    if (cs->xb_src && a < b + cs->xb_n * sizeof(float) && b < a + bytes) cs->xb_src = nullptr;
    if (cs->att_q_src && a < c + cs->att_q_n * sizeof(float) && c < a + bytes) cs->att_q_src = nullptr;
    if (cs->yb_src && a < d + cs->yb_n * sizeof(float) && d < a + bytes) cs->yb_src = nullptr;
    for (int i = 0; i < cs->n_kv; i++) {
        cuda_kv_mirror *m = &cs->kv[i];
        const uintptr_t s = (uintptr_t)m->src, rb = m->row * sizeof(float);
        if (m->src && m->valid && a < s + m->valid * rb && s < a + bytes) m->valid = a <= s ? 0 : (a - s) / rb;
    }
}
/* No bf16 copy is known to hold anything (graph boundaries, failures, alloc/free). */
static inline void cuda_xb_forget(cuda_session *cs) {
    if (!cs) return;
    cs->xb_src = cs->att_q_src = cs->yb_src = nullptr;
    for (int i = 0; i < cs->n_kv; i++) cs->kv[i].valid = 0;
}
/* buf + the offset of x [n] in src [src_n] (x may be rows of it), or NULL when it is not inside. */
static inline const __nv_bfloat16 *cuda_bf16_range(const __nv_bfloat16 *buf, const float *src, size_t src_n,
                                                   const float *x, size_t n) {
    const uintptr_t a = (uintptr_t)x, b = (uintptr_t)src;
    if (!src || a < b || (a - b) % sizeof(float)) return nullptr;
    const size_t off = (a - b) / sizeof(float);
    return off <= src_n && n <= src_n - off ? buf + off : nullptr;
}
/* The bf16 copy of x [n] for a GEMM's input (x may be a range of what xb or yb holds: rows of
 * it), or NULL when neither holds it. */
static inline const __nv_bfloat16 *cuda_xb_of(const cuda_session *cs, const float *x, size_t n) {
    const __nv_bfloat16 *p = cuda_bf16_range(cs->xb, cs->xb_src, cs->xb_n, x, n);
    return p ? p : cuda_bf16_range(cs->yb, cs->yb_src, cs->yb_n, x, n);
}
static inline unsigned blocks_for(size_t n, unsigned threads) { return (unsigned)((n + threads - 1) / threads); }

/* ---- ops (cuda_kernels.cu, cuda_matmul.cu), with the op table's signatures ---- */
pi0_status cuda_matmul(const pi0_exec *ex, float *y, const float *x, int M, const pi0_mat *W,
                       const pi0_epilogue *ep);
pi0_status cuda_layernorm(const pi0_exec *ex, float *y, const float *x, int M, int D, const pi0_vec *w,
                          const pi0_vec *b, float eps);
pi0_status cuda_rmsnorm(const pi0_exec *ex, float *y, const float *x, int M, int D, const pi0_vec *w, float eps);
pi0_status cuda_rmsnorm_mod(const pi0_exec *ex, float *y, const float *x, int M, int D, const float *mod,
                            float eps);
pi0_status cuda_gelu(const pi0_exec *ex, float *x, size_t n);
pi0_status cuda_silu(const pi0_exec *ex, float *x, size_t n);
pi0_status cuda_mul(const pi0_exec *ex, float *x, const float *y, size_t n);
pi0_status cuda_add(const pi0_exec *ex, float *x, const float *y, size_t n);
pi0_status cuda_add_weight(const pi0_exec *ex, float *x, const pi0_vec *w, size_t n);
pi0_status cuda_rope(const pi0_exec *ex, float *x, int M, int n_heads, int hd, const int32_t *pos, double theta);
pi0_status cuda_attention(const pi0_exec *ex, float *out, const float *q, const float *k, const float *v,
                          int M, int Nk, int Hq, int Hkv, int hd, const uint8_t *allowed, float scale);
pi0_status cuda_patchify(const pi0_exec *ex, float *patches, const float *img, int C, int S, int p);
pi0_status cuda_embed(const pi0_exec *ex, float *out, const pi0_mat *E, const int32_t *ids, int n, float scale);
pi0_status cuda_copy_rows(const pi0_exec *ex, float *dst, size_t dst_stride, const float *src, size_t src_stride,
                          int rows, int cols);
pi0_status cuda_time_embed(const pi0_exec *ex, float *out, double t, int d, double min_period, double max_period);
pi0_status cuda_axpy(const pi0_exec *ex, float *x, const float *v, float alpha, size_t n);

/* backward ops (exact RTC guidance) */
pi0_status cuda_matmul_dx(const pi0_exec *ex, float *dx, const float *dy, int M, const pi0_mat *W, const float *gate,
                          int accumulate);
pi0_status cuda_rmsnorm_bwd(const pi0_exec *ex, float *dx, const float *dy, const float *x, int M, int D,
                            const pi0_vec *w, const float *mod, float eps, int accumulate);
pi0_status cuda_geglu_bwd(const pi0_exec *ex, float *dgu, const float *dm, const float *gu, int M, int F);
pi0_status cuda_silu_bwd(const pi0_exec *ex, float *dx, const float *x_in, size_t n);
pi0_status cuda_rope_bwd(const pi0_exec *ex, float *dx, int M, int n_heads, int hd, const int32_t *pos, double theta);
pi0_status cuda_attention_bwd(const pi0_exec *ex, float *dq, float *dk, float *dv, const float *dout,
                              const float *q, const float *k, const float *v, int M, int Nk, int k0, int Hq,
                              int Hkv, int hd, const uint8_t *allowed, float scale);

/* Kernels the matmul needs from cuda_kernels.cu. */
pi0_status cuda_to_bf16(const pi0_exec *ex, __nv_bfloat16 *dst, const float *src, size_t n);
/* bf16(dy ⊙ gate) [M, N] (gate [N] or NULL), matmul_dx's GEMM operand. */
pi0_status cuda_gate_to_bf16(const pi0_exec *ex, __nv_bfloat16 *dst, const float *dy, const float *gate, int M,
                             int N);
/* y (=|+=) ... as the epilogue; yb (or NULL) receives bf16(y) too. */
pi0_status cuda_epilogue(const pi0_exec *ex, float *y, __nv_bfloat16 *yb, const float *t, const float *bias,
                         int gelu, const float *mul, const float *gate, int accumulate, int M, int N);
/* GeGLU after the stacked [gate; up] GEMM: y [M, F] (=|+=) (gelu_tanh(t[:, :F]) ⊙ t[:, F:]) ⊙ gate
 * from t [M, 2F]; yb (or NULL) receives bf16(y) too; y NULL (not accumulating): only yb. */
pi0_status cuda_geglu(const pi0_exec *ex, float *y, __nv_bfloat16 *yb, const float *t, const float *gate,
                      int accumulate, int M, int F);
/* Attention's pieces (cuda_kernels.cu) for the tensor-core path in cuda_matmul.cu. */
pi0_status cuda_pack_heads(const pi0_exec *ex, __nv_bfloat16 *dst, const float *src, int rows, int G, int Hkv,
                           int hd);
pi0_status cuda_mask_softmax(const pi0_exec *ex, __nv_bfloat16 *p, const float *s, int rows, int R, int G, int Nk,
                             int ld, const uint8_t *allowed);
pi0_status cuda_attention_scalar(const pi0_exec *ex, float *out, const float *q, const float *k, const float *v,
                                 int M, int Nk, int Hq, int Hkv, int hd, const uint8_t *allowed, float scale);
/* The attention backward's pieces (cuda_kernels.cu) for the cuBLASLt path in cuda_matmul.cu. */
pi0_status cuda_attention_bwd_softmax(const pi0_exec *ex, float *S, const float *dP, float *dS_suf, float *P_suf,
                                      int rows, int G, int Nk, int ld, int k0, int ls, const uint8_t *allowed);
pi0_status cuda_attention_bwd_scalar(const pi0_exec *ex, float *dq, float *dk, float *dv, const float *dout,
                                     const float *q, const float *k, const float *v, int M, int Nk, int k0, int Hq,
                                     int Hkv, int hd, const uint8_t *allowed, float scale);

#endif
