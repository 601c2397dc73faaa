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

/* One thread per (row, head, i < hd/2); the angle pos / θ^(2i/hd) in double, as ref. sign −1: the
 * transposed rotation (angle −θ), RoPE's input gradient. */
__global__ void rope_kernel(float *x, __nv_bfloat16 *xb, int M, int n_heads, int hd, const int32_t *pos,
                            double theta, float sign) {
    const int half = hd / 2;
    const size_t idx = (size_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (idx >= (size_t)M * n_heads * half) return;
    const int i = (int)(idx % half), h = (int)((idx / half) % n_heads), m = (int)(idx / ((size_t)half * n_heads));
    const double ang = pos[m] / pow(theta, 2.0 * i / hd);
    const float c = (float)cos(ang), s = sign * (float)sin(ang);
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

/* Logit j of row sr under the mask row ar (NULL = all allowed), and the row's softmax: the max and
 * 1/sum over the block, so that probability j is expf(masked_logit(j) − mx)·inv. */
__device__ float masked_logit(const float *sr, const uint8_t *ar, int j) {
    return !ar || ar[j] ? sr[j] : PI0_MASK_LOGIT;
}

__device__ void masked_softmax_row(const float *sr, const uint8_t *ar, int Nk, float *scratch, float *mx_out,
                                   float *inv_out) {
    float mx = PI0_MASK_LOGIT;
    for (int j = threadIdx.x; j < Nk; j += blockDim.x) mx = fmaxf(mx, masked_logit(sr, ar, j));
    mx = block_max(mx, scratch);
    float sum = 0.0f;
    for (int j = threadIdx.x; j < Nk; j += blockDim.x) sum += expf(masked_logit(sr, ar, j) - mx);
    *mx_out = mx;
    *inv_out = 1.0f / block_sum(sum, scratch);
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
    float mx, inv;
    masked_softmax_row(sr, ar, Nk, scratch, &mx, &inv);
    for (int j = threadIdx.x; j < Nk; j += blockDim.x) pr[j] = __float2bfloat16_rn(expf(masked_logit(sr, ar, j) - mx) * inv);
}

/* ---------------------------------------------------------------- backward (exact RTC guidance)
 *
 * Input gradients of the forward ops above, in float32, each a fixed-order computation (no atomics):
 * a recorded graph replays bit-identically. */

/* rmsnorm / adaRMS backward, one block per row: g = dy ⊙ factor, r = 1/sqrt(mean(x²) + eps),
 * dx (=|+=) r·g − x·r³·mean(g ⊙ x); factor = 1 + w, or 1 + mod[0, D) when w is NULL. */
__global__ void rmsnorm_bwd_kernel(float *dx, const float *dy, const float *x, int D, const float *w,
                                   const float *mod, float eps, int accumulate) {
    __shared__ float scratch[32];
    const size_t off = (size_t)blockIdx.x * D;
    const float *xr = x + off, *dyr = dy + off;
    float *dxr = dx + off;
    const float *f = w ? w : mod;
    float ss = 0.0f, gx = 0.0f;
    for (int i = threadIdx.x; i < D; i += blockDim.x) {
        ss += xr[i] * xr[i];
        gx += dyr[i] * (1.0f + f[i]) * xr[i];
    }
    const float r = rsqrtf(block_sum(ss, scratch) / D + eps);
    const float c = r * r * r * (block_sum(gx, scratch) / D);
    for (int i = threadIdx.x; i < D; i += blockDim.x) {
        const float o = r * (dyr[i] * (1.0f + f[i])) - xr[i] * c;
        dxr[i] = accumulate ? dxr[i] + o : o;
    }
}

/* GeGLU backward, one thread per (row, i < F): gu row = [g | u], m = gelu_tanh(g)·u.
 * gelu_tanh'(g) = 0.5·(1 + t) + 0.5·g·(1 − t²)·c·(1 + 3a·g²), t = tanh(c·(g + a·g³)). */
__global__ void geglu_bwd_kernel(float *dgu, const float *dm, const float *gu, int M, int F) {
    const size_t idx = (size_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (idx >= (size_t)M * F) return;
    const size_t m = idx / F, i = idx % F, gi = m * 2 * F + i, ui = gi + F;
    const float c = 0.7978845608028654f, a = 0.044715f;
    const float g = gu[gi], u = gu[ui], d = dm[idx];
    const float t = tanhf(c * (g + a * g * g * g));
    const float gelu = 0.5f * g * (1.0f + t);
    const float dgelu = 0.5f * (1.0f + t) + 0.5f * g * (1.0f - t * t) * c * (1.0f + 3.0f * a * g * g);
    dgu[gi] = d * u * dgelu; /* both inputs read before either output: dgu may be gu */
    dgu[ui] = d * gelu;
}

/* dx ⊙= silu'(x) = s·(1 + x·(1 − s)), s = sigmoid(x). */
__global__ void silu_bwd_kernel(float *dx, const float *x, size_t n) {
    const size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= n) return;
    const float s = 1.0f / (1.0f + expf(-x[i]));
    dx[i] *= s * (1.0f + x[i] * (1.0f - s));
}

/* matmul_dx's operand: bf16(dy ⊙ gate) [M, N], gate [N] broadcast over rows (NULL = none). */
__global__ void gate_to_bf16_kernel(__nv_bfloat16 *dst, const float *dy, const float *gate, int M, int N) {
    const size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= (size_t)M * N) return;
    dst[i] = __float2bfloat16_rn(gate ? dy[i] * gate[i % N] : dy[i]);
}

/* Attention backward, part 1: one block per (query row i, query head h), one warp per key for the
 * dot products (lanes over the head dim, then a warp sum). Recomputes the logits and the softmax
 * (as attention_kernel: f32, openpi's finite mask value) into P [Hq][M][Nk], then
 * dP_ij = dout_i·v_j, D_i = Σ_j P_ij·dP_ij, dS_ij = P_ij·(dP_ij − D_i) into dS [Hq][M][Nk]
 * (0 where masked: a masked logit is a constant), and dq_i = scale·Σ_j dS_ij·k_j.
 * The rows of P and dS are the block's own: global memory, so no shared-memory limit on Nk.
 * Dynamic shared memory: 2·hd floats (scale·q_i and dout_i). */
__global__ void attention_bwd_q_kernel(float *dq, float *P, float *dS, const float *dout, const float *q,
                                       const float *k, const float *v, int M, int Nk, int Hq, int Hkv, int hd,
                                       const uint8_t *allowed, float scale) {
    extern __shared__ float smem[];
    __shared__ float scratch[32];
    float *qs = smem, *ds = smem + hd;
    const int i = blockIdx.x, h = blockIdx.y, kh = h / (Hq / Hkv);
    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, nw = blockDim.x >> 5;
    const int qw = Hq * hd, kw = Hkv * hd;
    const size_t row = ((size_t)h * M + i) * Nk, qo = (size_t)i * qw + (size_t)h * hd;
    const uint8_t *ar = allowed ? allowed + (size_t)i * Nk : nullptr;
    float *Pr = P + row, *dSr = dS + row;
    for (int d = threadIdx.x; d < hd; d += blockDim.x) {
        qs[d] = q[qo + d] * scale;
        ds[d] = dout[qo + d];
    }
    __syncthreads();
    /* logits into P, dP into dS; every warp runs the same number of rounds (and shuffles) */
    for (int j0 = 0; j0 < Nk; j0 += nw) {
        const int j = j0 + warp;
        float l = 0.0f, dp = 0.0f;
        if (j < Nk) {
            const float *kr = k + (size_t)j * kw + (size_t)kh * hd, *vr = v + (size_t)j * kw + (size_t)kh * hd;
            for (int d = lane; d < hd; d += 32) {
                l += qs[d] * kr[d];
                dp += ds[d] * vr[d];
            }
        }
        l = warp_sum(l);
        dp = warp_sum(dp);
        if (lane == 0 && j < Nk) {
            Pr[j] = !ar || ar[j] ? l : PI0_MASK_LOGIT;
            dSr[j] = dp;
        }
    }
    __syncthreads();
    float mx, inv; /* the logits in Pr are masked already */
    masked_softmax_row(Pr, nullptr, Nk, scratch, &mx, &inv);
    float pd = 0.0f;
    for (int j = threadIdx.x; j < Nk; j += blockDim.x) {
        const float p = expf(Pr[j] - mx) * inv;
        Pr[j] = p;
        pd += p * dSr[j];
    }
    const float Di = block_sum(pd, scratch);
    for (int j = threadIdx.x; j < Nk; j += blockDim.x)
        dSr[j] = !ar || ar[j] ? Pr[j] * (dSr[j] - Di) : 0.0f;
    __syncthreads();
    for (int d = threadIdx.x; d < hd; d += blockDim.x) {
        float acc = 0.0f;
        for (int j = 0; j < Nk; j++) acc += dSr[j] * k[(size_t)j * kw + (size_t)kh * hd + d];
        dq[qo + d] = acc * scale;
    }
}

/* Attention backward, part 2: one block per (key row k0 + j, kv head kh), threads over the head
 * dim: dk = scale·Σ_{h of the group} Σ_i dS_hij·q_ih, dv = Σ_h Σ_i P_hij·dout_ih, summed in a
 * fixed order. */
__global__ void attention_bwd_kv_kernel(float *dk, float *dv, const float *P, const float *dS, const float *dout,
                                        const float *q, int M, int Nk, int k0, int Hq, int Hkv, int hd, float scale) {
    const int j = k0 + blockIdx.x, kh = blockIdx.y, G = Hq / Hkv;
    const int qw = Hq * hd, kw = Hkv * hd;
    for (int d = threadIdx.x; d < hd; d += blockDim.x) {
        float ak = 0.0f, av = 0.0f;
        for (int h = kh * G; h < (kh + 1) * G; h++)
            for (int i = 0; i < M; i++) {
                const size_t pj = ((size_t)h * M + i) * Nk + j, o = (size_t)i * qw + (size_t)h * hd + d;
                ak += dS[pj] * q[o];
                av += P[pj] * dout[o];
            }
        const size_t out = (size_t)blockIdx.x * kw + (size_t)kh * hd + d;
        dk[out] = ak * scale;
        dv[out] = av;
    }
}

/* Attention backward on cuBLASLt (cuda_matmul.cu), the step between the GEMMs: one block per row t
 * of S [R, ld] (R = M·G rows, query row i = t / G), dP [R, ld] beside it. P = softmax(mask(S)) as
 * mask_softmax_kernel computes it (f32), D = Σ_j P_j·dP_j, dS = P ⊙ (dP − D) (0 where masked) over
 * S in place, and the columns [k0, Nk) of dS and P also compact into dS_suf, P_suf [R, ls]. */
__global__ void attention_bwd_softmax_kernel(float *S, const float *dP, float *dS_suf, float *P_suf, int G, int Nk,
                                             int ld, int k0, int ls, const uint8_t *allowed) {
    __shared__ float scratch[32];
    const size_t t = blockIdx.x;
    const int i = (int)(t / G);
    float *sr = S + t * ld;
    const float *dpr = dP + t * ld;
    const uint8_t *ar = allowed ? allowed + (size_t)i * Nk : nullptr;
    float mx, inv;
    masked_softmax_row(sr, ar, Nk, scratch, &mx, &inv);
    float pd = 0.0f;
    for (int j = threadIdx.x; j < Nk; j += blockDim.x) pd += expf(masked_logit(sr, ar, j) - mx) * inv * dpr[j];
    const float D = block_sum(pd, scratch);
    for (int j = threadIdx.x; j < Nk; j += blockDim.x) { /* each thread its own j: S read, then overwritten */
        const float p = expf(masked_logit(sr, ar, j) - mx) * inv, ds = !ar || ar[j] ? p * (dpr[j] - D) : 0.0f;
        sr[j] = ds;
        if (j >= k0) {
            dS_suf[t * ls + (j - k0)] = ds;
            P_suf[t * ls + (j - k0)] = p;
        }
    }
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
    ELEMENTWISE(rope_kernel, (size_t)M * n_heads * (hd / 2), x, xb, M, n_heads, hd, pos, theta, 1.0f);
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

/* ---------------------------------------------------------------- backward launchers */

pi0_status cuda_rmsnorm_bwd(const pi0_exec *ex, float *dx, const float *dy, const float *x, int M, int D,
                            const pi0_vec *w, const float *mod, float eps, int accumulate) {
    if (M <= 0) return PI0_OK;
    if (!w && !mod) return PI0_ERR_ARG;
    cuda_xb_wrote(cuda_ctx(ex), dx, (size_t)M * D * sizeof *dx);
    rmsnorm_bwd_kernel<<<M, kThreads, 0, cuda_ctx(ex)->stream>>>(dx, dy, x, D, w ? cuda_vec_of(w) : nullptr, mod,
                                                                  eps, accumulate);
    CUDA_LAUNCHED(ex, "rmsnorm_bwd_kernel");
    return PI0_OK;
}

pi0_status cuda_geglu_bwd(const pi0_exec *ex, float *dgu, const float *dm, const float *gu, int M, int F) {
    cuda_xb_wrote(cuda_ctx(ex), dgu, (size_t)M * 2 * F * sizeof *dgu);
    ELEMENTWISE(geglu_bwd_kernel, (size_t)M * F, dgu, dm, gu, M, F);
}

pi0_status cuda_silu_bwd(const pi0_exec *ex, float *dx, const float *x_in, size_t n) {
    cuda_xb_wrote(cuda_ctx(ex), dx, n * sizeof *dx);
    ELEMENTWISE(silu_bwd_kernel, n, dx, x_in, n);
}

pi0_status cuda_rope_bwd(const pi0_exec *ex, float *dx, int M, int n_heads, int hd, const int32_t *pos,
                         double theta) {
    cuda_xb_wrote(cuda_ctx(ex), dx, (size_t)M * n_heads * hd * sizeof *dx);
    ELEMENTWISE(rope_kernel, (size_t)M * n_heads * (hd / 2), dx, nullptr, M, n_heads, hd, pos, theta, -1.0f);
}

pi0_status cuda_gate_to_bf16(const pi0_exec *ex, __nv_bfloat16 *dst, const float *dy, const float *gate, int M,
                             int N) {
    ELEMENTWISE(gate_to_bf16_kernel, (size_t)M * N, dst, dy, gate, M, N);
}

pi0_status cuda_attention_bwd_softmax(const pi0_exec *ex, float *S, const float *dP, float *dS_suf, float *P_suf,
                                      int rows, int G, int Nk, int ld, int k0, int ls, const uint8_t *allowed) {
    if (rows <= 0) return PI0_OK;
    attention_bwd_softmax_kernel<<<rows, kThreads, 0, cuda_ctx(ex)->stream>>>(S, dP, dS_suf, P_suf, G, Nk, ld, k0, ls,
                                                                              allowed);
    CUDA_LAUNCHED(ex, "attention_bwd_softmax_kernel");
    return PI0_OK;
}

/* The kernels-only attention backward (any head layout; cuda_attention_bwd in cuda_matmul.cu takes
 * cuBLASLt where it can). P and dS [Hq][M][Nk] f32 live in the session's scratch: att_s (the
 * attention's logits) and tmp (the GEMM's pre-epilogue output), both free between ops. */
pi0_status cuda_attention_bwd_scalar(const pi0_exec *ex, float *dq, float *dk, float *dv, const float *dout,
                                     const float *q, const float *k, const float *v, int M, int Nk, int k0, int Hq,
                                     int Hkv, int hd, const uint8_t *allowed, float scale) {
    cuda_session *cs = cuda_ctx(ex);
    if (M <= 0 || Nk <= 0) return PI0_OK;
    if (Hkv <= 0 || Hq % Hkv || k0 < 0 || k0 > Nk) return PI0_ERR_ARG;
    const size_t np = (size_t)Hq * M * Nk, smem = 2 * (size_t)hd * sizeof(float);
    if (np > cs->att_s_cap || np > cs->tmp_cap || smem + 32 * sizeof(float) > (size_t)cs->max_smem) {
        char why[160];
        snprintf(why, sizeof why, "%d query rows x %d heads x %d keys (head dim %d) exceed the session's scratch", M,
                 Hq, Nk, hd);
        return cuda_fail(ex, "attention_bwd", why);
    }
    cuda_xb_wrote(cs, dq, (size_t)M * Hq * hd * sizeof *dq);
    cuda_xb_wrote(cs, dk, (size_t)(Nk - k0) * Hkv * hd * sizeof *dk);
    cuda_xb_wrote(cs, dv, (size_t)(Nk - k0) * Hkv * hd * sizeof *dv);
    attention_bwd_q_kernel<<<dim3((unsigned)M, (unsigned)Hq), kThreads, smem, cs->stream>>>(
        dq, cs->att_s, cs->tmp, dout, q, k, v, M, Nk, Hq, Hkv, hd, allowed, scale);
    CUDA_LAUNCHED(ex, "attention_bwd_q_kernel");
    if (k0 == Nk) return PI0_OK;
    attention_bwd_kv_kernel<<<dim3((unsigned)(Nk - k0), (unsigned)Hkv), 128, 0, cs->stream>>>(
        dk, dv, cs->att_s, cs->tmp, dout, q, M, Nk, k0, Hq, Hkv, hd, scale);
    CUDA_LAUNCHED(ex, "attention_bwd_kv_kernel");
    return PI0_OK;
}
