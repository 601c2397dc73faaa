/* cuda_kernels.cu — the cuda backend's kernels other than the GEMM: norms, RoPE, attention,
 * elementwise ops and the data-movement ops. Each launcher has the op table's signature (the
 * names match ref.c's) and runs on the session's stream.
 *
 * First version: one straightforward kernel per op, written to be obviously right (float32
 * arithmetic as the spec asks for norms, RoPE, softmax; angles in double as ref). Fusion
 * (flash attention, norm + bf16 rounding) comes after `pi0 check --backend cuda` has passed on
 * a GPU. */
#include "cuda_common.cuh"

#include <cmath>

namespace {

constexpr int kThreads = 256;

/* ---------------------------------------------------------------- reductions */

__device__ float warp_sum(float v) {
    for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
    return v;
}

__device__ float warp_max(float v) {
    for (int o = 16; o > 0; o >>= 1) v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, o));
    return v;
}

/* Sum over the block (blockDim.x a multiple of 32, ≤ 1024); every thread gets the result. */
__device__ float block_sum(float v, float *scratch) {
    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, nw = blockDim.x >> 5;
    v = warp_sum(v);
    __syncthreads(); /* scratch may still be read from a previous reduction */
    if (lane == 0) scratch[warp] = v;
    __syncthreads();
    v = lane < nw ? scratch[lane] : 0.0f;
    return warp_sum(v);
}

__device__ float block_max(float v, float *scratch) {
    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, nw = blockDim.x >> 5;
    v = warp_max(v);
    __syncthreads();
    if (lane == 0) scratch[warp] = v;
    __syncthreads();
    v = lane < nw ? scratch[lane] : PI0_MASK_LOGIT;
    return warp_max(v);
}

__device__ float gelu_tanh1(float v) {
    return 0.5f * v * (1.0f + tanhf(0.7978845608028654f * (v + 0.044715f * v * v * v)));
}

/* ---------------------------------------------------------------- norms (one block per row) */

/* yb (or NULL): the output also as bf16, for the GEMM that reads it (rounded from the same float
 * as the stored one, so exactly what a separate conversion would give). */
__global__ void layernorm_kernel(float *y, __nv_bfloat16 *yb, const float *x, int D, const float *w, const float *b,
                                 float eps) {
    __shared__ float scratch[32];
    const float *xr = x + (size_t)blockIdx.x * D;
    float *yr = y + (size_t)blockIdx.x * D;
    __nv_bfloat16 *ybr = yb ? yb + (size_t)blockIdx.x * D : nullptr;
    float s = 0.0f;
    for (int i = threadIdx.x; i < D; i += blockDim.x) s += xr[i];
    const float mean = block_sum(s, scratch) / D;
    float v = 0.0f;
    for (int i = threadIdx.x; i < D; i += blockDim.x) v += (xr[i] - mean) * (xr[i] - mean);
    const float inv = rsqrtf(block_sum(v, scratch) / D + eps);
    for (int i = threadIdx.x; i < D; i += blockDim.x) {
        const float o = (xr[i] - mean) * inv * w[i] + b[i];
        yr[i] = o;
        if (ybr) ybr[i] = __float2bfloat16_rn(o);
    }
}

/* Gemma RMSNorm (1 + w), or adaRMS with mod = [scale | shift] when w is NULL. */
__global__ void rmsnorm_kernel(float *y, __nv_bfloat16 *yb, const float *x, int D, const float *w, const float *mod,
                               float eps) {
    __shared__ float scratch[32];
    const float *xr = x + (size_t)blockIdx.x * D;
    float *yr = y + (size_t)blockIdx.x * D;
    __nv_bfloat16 *ybr = yb ? yb + (size_t)blockIdx.x * D : nullptr;
    float ss = 0.0f;
    for (int i = threadIdx.x; i < D; i += blockDim.x) ss += xr[i] * xr[i];
    const float inv = rsqrtf(block_sum(ss, scratch) / D + eps);
    for (int i = threadIdx.x; i < D; i += blockDim.x) {
        const float o = w ? xr[i] * inv * (1.0f + w[i]) : xr[i] * inv * (1.0f + mod[i]) + mod[D + i];
        yr[i] = o;
        if (ybr) ybr[i] = __float2bfloat16_rn(o);
    }
}

/* ---------------------------------------------------------------- elementwise */

__global__ void gelu_kernel(float *x, size_t n) {
    const size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (i < n) x[i] = gelu_tanh1(x[i]);
}

__global__ void silu_kernel(float *x, size_t n) {
    const size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (i < n) x[i] = x[i] / (1.0f + expf(-x[i]));
}

__global__ void mul_kernel(float *x, const float *y, size_t n) {
    const size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (i < n) x[i] *= y[i];
}

__global__ void add_kernel(float *x, const float *y, size_t n) {
    const size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (i < n) x[i] += y[i];
}

__global__ void axpy_kernel(float *x, const float *v, float alpha, size_t n) {
    const size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (i < n) x[i] += alpha * v[i];
}

__global__ void to_bf16_kernel(__nv_bfloat16 *dst, const float *src, size_t n) {
    const size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (i < n) dst[i] = __float2bfloat16_rn(src[i]);
}

/* y (=|+=) (act(t + bias) ⊙ mul) ⊙ gate over [M, N]: what the GEMM's own epilogue does not fuse. */
__global__ void epilogue_kernel(float *y, __nv_bfloat16 *yb, const float *t, const float *bias, int gelu,
                                const float *mul, const float *gate, int accumulate, int M, int N) {
    const size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= (size_t)M * N) return;
    const int n = (int)(i % N);
    float v = t[i] + (bias ? bias[n] : 0.0f);
    if (gelu) v = gelu_tanh1(v);
    if (mul) v *= mul[i];
    if (gate) v *= gate[n];
    v = accumulate ? y[i] + v : v;
    y[i] = v;
    if (yb) yb[i] = __float2bfloat16_rn(v);
}

/* GeGLU over the stacked GEMM's output t [M, 2F] (row m: [gate | up]), as epilogue_kernel. */
__global__ void geglu_kernel(float *y, __nv_bfloat16 *yb, const float *t, const float *gate, int accumulate, int M,
                             int F) {
    const size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= (size_t)M * F) return;
    const int n = (int)(i % F);
    const float *tr = t + (i / F) * 2 * F;
    float v = gelu_tanh1(tr[n]) * tr[F + n];
    if (gate) v *= gate[n];
    if (y) {
        v = accumulate ? y[i] + v : v;
        y[i] = v;
    }
    if (yb) yb[i] = __float2bfloat16_rn(v);
}

/* ---------------------------------------------------------------- RoPE */

/* One thread per (row, head, i < hd/2); the angle pos / θ^(2i/hd) in double, as ref. */
__global__ void rope_kernel(float *x, __nv_bfloat16 *xb, int M, int n_heads, int hd, const int32_t *pos,
                            double theta) {
    const int half = hd / 2;
    const size_t idx = (size_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (idx >= (size_t)M * n_heads * half) return;
    const int i = (int)(idx % half), h = (int)((idx / half) % n_heads), m = (int)(idx / ((size_t)half * n_heads));
    const double ang = pos[m] / pow(theta, 2.0 * i / hd);
    const float c = (float)cos(ang), s = (float)sin(ang);
    float *r = x + (size_t)m * n_heads * hd + (size_t)h * hd;
    const float x1 = r[i], x2 = r[i + half];
    const float o1 = x1 * c - x2 * s, o2 = x2 * c + x1 * s;
    r[i] = o1;
    r[i + half] = o2;
    if (xb) { /* the same layout in bf16, for the attention that reads it */
        __nv_bfloat16 *rb = xb + (size_t)m * n_heads * hd + (size_t)h * hd;
        rb[i] = __float2bfloat16_rn(o1);
        rb[i + half] = __float2bfloat16_rn(o2);
    }
}

/* ---------------------------------------------------------------- attention */

/* One block per (query row, query head): logits over every key in shared memory, a float32
 * softmax with openpi's finite mask value, then probs·v. Dynamic shared memory: Nk + hd floats. */
__global__ void attention_kernel(float *out, const float *q, const float *k, const float *v, int Nk, int Hq,
                                 int Hkv, int hd, const uint8_t *allowed, float scale) {
    extern __shared__ float smem[];
    __shared__ float scratch[32];
    float *logit = smem, *qs = smem + Nk;
    const int i = blockIdx.x, h = blockIdx.y, kh = h / (Hq / Hkv);
    const int qw = Hq * hd, kw = Hkv * hd;
    const float *qr = q + (size_t)i * qw + (size_t)h * hd;
    for (int d = threadIdx.x; d < hd; d += blockDim.x) qs[d] = qr[d] * scale;
    __syncthreads();
    float mx = PI0_MASK_LOGIT;
    for (int j = threadIdx.x; j < Nk; j += blockDim.x) {
        float l = PI0_MASK_LOGIT;
        if (!allowed || allowed[(size_t)i * Nk + j]) {
            const float *kr = k + (size_t)j * kw + (size_t)kh * hd;
            l = 0.0f;
            for (int d = 0; d < hd; d++) l += qs[d] * kr[d];
        }
        logit[j] = l;
        mx = fmaxf(mx, l);
    }
    mx = block_max(mx, scratch);
    float sum = 0.0f;
    for (int j = threadIdx.x; j < Nk; j += blockDim.x) {
        const float e = expf(logit[j] - mx);
        logit[j] = e;
        sum += e;
    }
    const float inv = 1.0f / block_sum(sum, scratch); /* block_sum's barriers publish logit[] */
    float *o = out + (size_t)i * qw + (size_t)h * hd;
    for (int d = threadIdx.x; d < hd; d += blockDim.x) {
        float acc = 0.0f;
        for (int j = 0; j < Nk; j++) acc += logit[j] * v[(size_t)j * kw + (size_t)kh * hd + d];
        o[d] = acc * inv;
    }
}

/* q, k or v [rows, (Hkv·G)·hd] float32 → bf16 packed per kv head, [Hkv][rows·G][hd]: row
 * i·G + hl of head group g is query head g·G + hl of row i (GQA folded into the GEMM rows). */
__global__ void pack_heads_kernel(__nv_bfloat16 *dst, const float *src, int rows, int G, int Hkv, int hd) {
    const size_t idx = (size_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (idx >= (size_t)Hkv * rows * G * hd) return;
    const int d = (int)(idx % hd);
    size_t t = idx / hd;
    const int hl = (int)(t % G);
    t /= G;
    const int i = (int)(t % rows), g = (int)(t / rows);
    dst[idx] = __float2bfloat16_rn(src[(size_t)i * Hkv * G * hd + (size_t)(g * G + hl) * hd + d]);
}

/* One block per logits row t of s [Hkv·R, ld] (R = M·G rows per kv head, query row i = (t % R) / G):
 * the mask, then a float32 softmax with openpi's finite mask value (as attention_kernel), written
 * as bf16 probabilities for the P·V GEMM. */
__global__ void mask_softmax_kernel(__nv_bfloat16 *p, const float *s, int R, int G, int Nk, int ld,
                                    const uint8_t *allowed) {
    __shared__ float scratch[32];
    const size_t t = blockIdx.x;
    const int i = (int)(t % R) / G;
    const float *sr = s + t * ld;
    __nv_bfloat16 *pr = p + t * ld;
    const uint8_t *ar = allowed ? allowed + (size_t)i * Nk : nullptr;
    float mx = PI0_MASK_LOGIT;
    for (int j = threadIdx.x; j < Nk; j += blockDim.x) mx = fmaxf(mx, !ar || ar[j] ? sr[j] : PI0_MASK_LOGIT);
    mx = block_max(mx, scratch);
    float sum = 0.0f;
    for (int j = threadIdx.x; j < Nk; j += blockDim.x) sum += expf((!ar || ar[j] ? sr[j] : PI0_MASK_LOGIT) - mx);
    const float inv = 1.0f / block_sum(sum, scratch);
    for (int j = threadIdx.x; j < Nk; j += blockDim.x)
        pr[j] = __float2bfloat16_rn(expf((!ar || ar[j] ? sr[j] : PI0_MASK_LOGIT) - mx) * inv);
}

/* ---------------------------------------------------------------- data movement */

__global__ void patchify_kernel(float *patches, const float *img, int C, int S, int p) {
    const int g = S / p, row = C * p * p;
    const size_t idx = (size_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (idx >= (size_t)g * g * row) return;
    const int e = (int)(idx % row), tok = (int)(idx / row);
    const int ch = e / (p * p), ky = (e / p) % p, kx = e % p, py = tok / g, px = tok % g;
    patches[idx] = img[((size_t)ch * S + py * p + ky) * S + px * p + kx];
}

__global__ void embed_kernel(float *out, const __nv_bfloat16 *E, int rows, int D, const int32_t *ids, int n,
                             float scale) {
    const size_t idx = (size_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (idx >= (size_t)n * D) return;
    const int i = (int)(idx / D), d = (int)(idx % D), id = ids[i];
    out[idx] = id >= 0 && id < rows ? __bfloat162float(E[(size_t)id * D + d]) * scale : 0.0f;
}

__global__ void copy_rows_kernel(float *dst, size_t dst_stride, const float *src, size_t src_stride, int rows,
                                 int cols) {
    const size_t idx = (size_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (idx >= (size_t)rows * cols) return;
    const size_t r = idx / cols, c = idx % cols;
    dst[r * dst_stride + c] = src[r * src_stride + c];
}

__global__ void time_embed_kernel(float *out, double t, int d, double min_period, double max_period) {
    const int half = d / 2, i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= half) return;
    const double f = half > 1 ? (double)i / (half - 1) : 0.0;
    const double period = min_period * pow(max_period / min_period, f);
    const double arg = t * 2.0 * M_PI / period;
    out[i] = (float)sin(arg);
    out[half + i] = (float)cos(arg);
}

} // namespace

/* ---------------------------------------------------------------- launchers */

#define ELEMENTWISE(kernel, n, ...)                                                            \
    do {                                                                                       \
        if ((n) == 0) return PI0_OK;                                                           \
        kernel<<<blocks_for((n), kThreads), kThreads, 0, cuda_ctx(ex)->stream>>>(__VA_ARGS__); \
        CUDA_LAUNCHED(ex, #kernel);                                                            \
        return PI0_OK;                                                                         \
    } while (0)

/* A norm's output [n] is about to be written: it is also written as bf16 into the session's GEMM
 * input (xb) when it fits, so the GEMMs that follow read it without a conversion pass. */
static __nv_bfloat16 *xb_for_output(const pi0_exec *ex, const float *y, size_t n) {
    cuda_session *cs = cuda_ctx(ex);
    cuda_xb_wrote(cs, y, n * sizeof(float));
    if (n > cs->xb_cap) return nullptr;
    cs->xb_src = y;
    cs->xb_n = n;
    return cs->xb;
}

pi0_status cuda_layernorm(const pi0_exec *ex, float *y, const float *x, int M, int D, const pi0_vec *w,
                          const pi0_vec *b, float eps) {
    if (M <= 0) return PI0_OK;
    __nv_bfloat16 *yb = xb_for_output(ex, y, (size_t)M * D);
    layernorm_kernel<<<M, kThreads, 0, cuda_ctx(ex)->stream>>>(y, yb, x, D, cuda_vec_of(w), cuda_vec_of(b), eps);
    CUDA_LAUNCHED(ex, "layernorm_kernel");
    return PI0_OK;
}

pi0_status cuda_rmsnorm(const pi0_exec *ex, float *y, const float *x, int M, int D, const pi0_vec *w, float eps) {
    if (M <= 0) return PI0_OK;
    __nv_bfloat16 *yb = xb_for_output(ex, y, (size_t)M * D);
    rmsnorm_kernel<<<M, kThreads, 0, cuda_ctx(ex)->stream>>>(y, yb, x, D, cuda_vec_of(w), nullptr, eps);
    CUDA_LAUNCHED(ex, "rmsnorm_kernel");
    return PI0_OK;
}

pi0_status cuda_rmsnorm_mod(const pi0_exec *ex, float *y, const float *x, int M, int D, const float *mod,
                            float eps) {
    if (M <= 0) return PI0_OK;
    __nv_bfloat16 *yb = xb_for_output(ex, y, (size_t)M * D);
    rmsnorm_kernel<<<M, kThreads, 0, cuda_ctx(ex)->stream>>>(y, yb, x, D, nullptr, mod, eps);
    CUDA_LAUNCHED(ex, "rmsnorm_kernel (adaRMS)");
    return PI0_OK;
}

pi0_status cuda_gelu(const pi0_exec *ex, float *x, size_t n) {
    cuda_xb_wrote(cuda_ctx(ex), x, n * sizeof *x);
    ELEMENTWISE(gelu_kernel, n, x, n);
}
pi0_status cuda_silu(const pi0_exec *ex, float *x, size_t n) {
    cuda_xb_wrote(cuda_ctx(ex), x, n * sizeof *x);
    ELEMENTWISE(silu_kernel, n, x, n);
}
pi0_status cuda_mul(const pi0_exec *ex, float *x, const float *y, size_t n) {
    cuda_xb_wrote(cuda_ctx(ex), x, n * sizeof *x);
    ELEMENTWISE(mul_kernel, n, x, y, n);
}
pi0_status cuda_add(const pi0_exec *ex, float *x, const float *y, size_t n) {
    cuda_xb_wrote(cuda_ctx(ex), x, n * sizeof *x);
    ELEMENTWISE(add_kernel, n, x, y, n);
}
pi0_status cuda_axpy(const pi0_exec *ex, float *x, const float *v, float alpha, size_t n) {
    cuda_xb_wrote(cuda_ctx(ex), x, n * sizeof *x);
    ELEMENTWISE(axpy_kernel, n, x, v, alpha, n);
}
pi0_status cuda_add_weight(const pi0_exec *ex, float *x, const pi0_vec *w, size_t n) {
    if (n > w->n) return PI0_ERR_ARG;
    cuda_xb_wrote(cuda_ctx(ex), x, n * sizeof *x);
    ELEMENTWISE(add_kernel, n, x, cuda_vec_of(w), n);
}
pi0_status cuda_to_bf16(const pi0_exec *ex, __nv_bfloat16 *dst, const float *src, size_t n) {
    ELEMENTWISE(to_bf16_kernel, n, dst, src, n);
}
pi0_status cuda_epilogue(const pi0_exec *ex, float *y, __nv_bfloat16 *yb, const float *t, const float *bias,
                         int gelu, const float *mul, const float *gate, int accumulate, int M, int N) {
    ELEMENTWISE(epilogue_kernel, (size_t)M * N, y, yb, t, bias, gelu, mul, gate, accumulate, M, N);
}
pi0_status cuda_geglu(const pi0_exec *ex, float *y, __nv_bfloat16 *yb, const float *t, const float *gate,
                      int accumulate, int M, int F) {
    ELEMENTWISE(geglu_kernel, (size_t)M * F, y, yb, t, gate, accumulate, M, F);
}

pi0_status cuda_rope(const pi0_exec *ex, float *x, int M, int n_heads, int hd, const int32_t *pos, double theta) {
    cuda_session *cs = cuda_ctx(ex);
    const size_t n = (size_t)M * n_heads * hd;
    cuda_xb_wrote(cs, x, n * sizeof *x);
    __nv_bfloat16 *xb = nullptr;
    if (n <= cs->att_q_cap && hd % 2 == 0) { /* the rotated values also as bf16 into att_q */
        xb = cs->att_q;
        cs->att_q_src = x;
        cs->att_q_n = n;
    }
    ELEMENTWISE(rope_kernel, (size_t)M * n_heads * (hd / 2), x, xb, M, n_heads, hd, pos, theta);
}

pi0_status cuda_pack_heads(const pi0_exec *ex, __nv_bfloat16 *dst, const float *src, int rows, int G, int Hkv,
                           int hd) {
    ELEMENTWISE(pack_heads_kernel, (size_t)Hkv * rows * G * hd, dst, src, rows, G, Hkv, hd);
}

pi0_status cuda_mask_softmax(const pi0_exec *ex, __nv_bfloat16 *p, const float *s, int rows, int R, int G, int Nk,
                             int ld, const uint8_t *allowed) {
    if (rows <= 0) return PI0_OK;
    mask_softmax_kernel<<<rows, kThreads, 0, cuda_ctx(ex)->stream>>>(p, s, R, G, Nk, ld, allowed);
    CUDA_LAUNCHED(ex, "mask_softmax_kernel");
    return PI0_OK;
}

pi0_status cuda_attention_scalar(const pi0_exec *ex, float *out, const float *q, const float *k, const float *v,
                                 int M, int Nk, int Hq, int Hkv, int hd, const uint8_t *allowed, float scale) {
    if (M <= 0) return PI0_OK;
    const size_t smem = ((size_t)Nk + hd) * sizeof(float);
    if (smem + 32 * sizeof(float) > (size_t)cuda_ctx(ex)->max_smem) { /* + the kernel's static scratch[32] */
        char why[128];
        snprintf(why, sizeof why, "%d keys need %zu bytes of shared memory, the device allows %d", Nk, smem,
                 cuda_ctx(ex)->max_smem);
        return cuda_fail(ex, "attention_kernel", why);
    }
    dim3 grid((unsigned)M, (unsigned)Hq);
    attention_kernel<<<grid, 128, smem, cuda_ctx(ex)->stream>>>(out, q, k, v, Nk, Hq, Hkv, hd, allowed, scale);
    CUDA_LAUNCHED(ex, "attention_kernel");
    return PI0_OK;
}

pi0_status cuda_patchify(const pi0_exec *ex, float *patches, const float *img, int C, int S, int p) {
    cuda_xb_wrote(cuda_ctx(ex), patches, (size_t)(S / p) * (S / p) * C * p * p * sizeof *patches);
    ELEMENTWISE(patchify_kernel, (size_t)(S / p) * (S / p) * C * p * p, patches, img, C, S, p);
}

pi0_status cuda_embed(const pi0_exec *ex, float *out, const pi0_mat *E, const int32_t *ids, int n, float scale) {
    const cuda_mat *m = cuda_mat_of(E);
    cuda_xb_wrote(cuda_ctx(ex), out, (size_t)n * m->K * sizeof *out);
    ELEMENTWISE(embed_kernel, (size_t)n * m->K, out, m->w, m->N, m->K, ids, n, scale);
}

pi0_status cuda_copy_rows(const pi0_exec *ex, float *dst, size_t dst_stride, const float *src, size_t src_stride,
                          int rows, int cols) {
    if (rows > 0) cuda_xb_wrote(cuda_ctx(ex), dst, ((size_t)(rows - 1) * dst_stride + cols) * sizeof *dst);
    ELEMENTWISE(copy_rows_kernel, (size_t)rows * cols, dst, dst_stride, src, src_stride, rows, cols);
}

pi0_status cuda_time_embed(const pi0_exec *ex, float *out, double t, int d, double min_period, double max_period) {
    cuda_xb_wrote(cuda_ctx(ex), out, (size_t)(d / 2) * 2 * sizeof *out);
    ELEMENTWISE(time_embed_kernel, (size_t)(d / 2), out, t, d, min_period, max_period);
}
