/* ref.c — the reference backend: plain C loops, float32 storage, no intrinsics. It is the
 * oracle every other backend is checked against, so it favours being obviously right:
 * reductions (norm statistics, softmax sums) accumulate in double, angles are computed in
 * double. The only concession to speed is OpenMP over independent output rows / columns, which
 * does not change any result (each output element is computed by one thread, in one order). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include "host_ops.h"

/* Dot product with 8 independent partial sums (lets the compiler vectorize it). */
static float dot(const float *a, const float *b, int n) {
    float s[8] = {0};
    int i = 0;
    for (; i + 8 <= n; i += 8)
        for (int l = 0; l < 8; l++) s[l] += a[i + l] * b[i + l];
    float r = ((s[0] + s[1]) + (s[2] + s[3])) + ((s[4] + s[5]) + (s[6] + s[7]));
    for (; i < n; i++) r += a[i] * b[i];
    return r;
}

enum { REF_BLOCK = 16 }; /* weight rows converted to f32 at a time */

/* GELU, tanh approximation: 0.5·v·(1 + tanh(sqrt(2/π)·(v + 0.044715·v³))). */
static float gelu_tanh1(float v) {
    const float c = 0.7978845608028654f; /* sqrt(2/pi) */
    return 0.5f * v * (1.0f + tanhf(c * (v + 0.044715f * v * v * v)));
}

/* The epilogue on one output element: (act(acc + bias) ⊙ mul) ⊙ gate, stored or accumulated. */
static void store(float *y, float acc, const pi0_epilogue *ep, size_t idx, int n) {
    float v = acc + (ep && ep->bias ? ep->bias->data[n] : 0.0f);
    if (ep && ep->gelu) v = gelu_tanh1(v);
    if (ep && ep->mul) v *= ep->mul[idx];
    if (ep && ep->gate) v *= ep->gate[n];
    if (ep && ep->accumulate) y[idx] += v;
    else y[idx] = v;
}

/* y = epilogue(x·Wᵀ). With geglu, each block converts its rows of both halves of the stacked
 * [gate; up] W, and each output element takes the same two dot products as a gate GEMM and an
 * up GEMM would: gelu_tanh(gate) ⊙ up is the same as computing them apart. */
static pi0_status ref_matmul(const pi0_exec *ex, float *y, const float *x, int M, const pi0_mat *W,
                             const pi0_epilogue *ep) {
    const int geglu = ep && ep->geglu;
    if (geglu && !pi0_geglu_valid(ep, W)) return PI0_ERR_ARG;
    const int N = geglu ? W->rows / 2 : W->rows, K = W->cols, nblocks = (N + REF_BLOCK - 1) / REF_BLOCK;
    const size_t up = (size_t)REF_BLOCK * K; /* where a block's up rows start in wb */
    int oom = 0;
#pragma omp parallel num_threads(ex->num_threads)
    {
        float *wb = malloc((geglu ? 2 : 1) * up * sizeof *wb);
        if (!wb) {
#pragma omp atomic write
            oom = 1;
        }
#pragma omp for schedule(static)
        for (int blk = 0; blk < nblocks; blk++) {
            int n0 = blk * REF_BLOCK, nb = N - n0 < REF_BLOCK ? N - n0 : REF_BLOCK;
            if (!wb) continue; /* out of memory: reported after the loop */
            pi0_mat_rows_f32(wb, W, n0, nb);
            if (geglu) pi0_mat_rows_f32(wb + up, W, N + n0, nb);
            for (int m = 0; m < M; m++)
                for (int j = 0; j < nb; j++) {
                    const float *xr = x + (size_t)m * K, *wr = wb + (size_t)j * K;
                    float acc = dot(xr, wr, K);
                    if (geglu) acc = gelu_tanh1(acc) * dot(xr, wr + up, K);
                    store(y, acc, ep, (size_t)m * N + n0 + j, n0 + j);
                }
        }
        free(wb);
    }
    return oom ? PI0_ERR_NOMEM : PI0_OK;
}

static pi0_status ref_layernorm(const pi0_exec *ex, float *y, const float *x, int M, int D,
                                const pi0_vec *wv, const pi0_vec *bv, float eps) {
    (void)ex;
    const float *w = wv->data, *b = bv->data;
    for (int m = 0; m < M; m++) {
        const float *xr = x + (size_t)m * D;
        float *yr = y + (size_t)m * D;
        double mean = 0, var = 0;
        for (int i = 0; i < D; i++) mean += xr[i];
        mean /= D;
        for (int i = 0; i < D; i++) var += (xr[i] - mean) * (xr[i] - mean);
        var /= D;
        double inv = 1.0 / sqrt(var + eps);
        for (int i = 0; i < D; i++) yr[i] = (float)((xr[i] - mean) * inv) * w[i] + b[i];
    }
    return PI0_OK;
}

/* 1/sqrt(mean(x²) + eps) of one row, accumulated in double. */
static double rms_inv(const float *x, int D, float eps) {
    double ss = 0;
    for (int i = 0; i < D; i++) ss += (double)x[i] * x[i];
    return 1.0 / sqrt(ss / D + eps);
}

static pi0_status ref_rmsnorm(const pi0_exec *ex, float *y, const float *x, int M, int D,
                              const pi0_vec *wv, float eps) {
    (void)ex;
    const float *w = wv->data;
    for (int m = 0; m < M; m++) {
        const float *xr = x + (size_t)m * D;
        float *yr = y + (size_t)m * D;
        const double inv = rms_inv(xr, D, eps);
        for (int i = 0; i < D; i++) yr[i] = (float)(xr[i] * inv) * (1.0f + w[i]);
    }
    return PI0_OK;
}

static pi0_status ref_rmsnorm_mod(const pi0_exec *ex, float *y, const float *x, int M, int D,
                                  const float *mod, float eps) {
    (void)ex;
    const float *scale = mod, *shift = mod + D;
    for (int m = 0; m < M; m++) {
        const float *xr = x + (size_t)m * D;
        float *yr = y + (size_t)m * D;
        const double inv = rms_inv(xr, D, eps);
        for (int i = 0; i < D; i++) yr[i] = (float)(xr[i] * inv) * (1.0f + scale[i]) + shift[i];
    }
    return PI0_OK;
}

static pi0_status ref_gelu_tanh(const pi0_exec *ex, float *x, size_t n) {
    (void)ex;
    for (size_t i = 0; i < n; i++) x[i] = gelu_tanh1(x[i]);
    return PI0_OK;
}

static pi0_status ref_silu(const pi0_exec *ex, float *x, size_t n) {
    (void)ex;
    for (size_t i = 0; i < n; i++) x[i] = x[i] / (1.0f + expf(-x[i]));
    return PI0_OK;
}

static pi0_status ref_mul(const pi0_exec *ex, float *x, const float *y, size_t n) {
    (void)ex;
    for (size_t i = 0; i < n; i++) x[i] *= y[i];
    return PI0_OK;
}

static pi0_status ref_add(const pi0_exec *ex, float *x, const float *y, size_t n) {
    (void)ex;
    for (size_t i = 0; i < n; i++) x[i] += y[i];
    return PI0_OK;
}

static pi0_status ref_rope(const pi0_exec *ex, float *x, int M, int n_heads, int hd, const int32_t *pos,
                           double theta) {
    (void)ex;
    const int half = hd / 2;
    for (int m = 0; m < M; m++)
        for (int i = 0; i < half; i++) {
            double ang = pos[m] / pow(theta, 2.0 * i / hd);
            float c = (float)cos(ang), s = (float)sin(ang);
            for (int h = 0; h < n_heads; h++) {
                float *r = x + (size_t)m * n_heads * hd + (size_t)h * hd;
                float x1 = r[i], x2 = r[i + half];
                r[i] = x1 * c - x2 * s;
                r[i + half] = x2 * c + x1 * s;
            }
        }
    return PI0_OK;
}

static pi0_status ref_attention(const pi0_exec *ex, float *out, const float *q, const float *k,
                                const float *v, int M, int Nk, int Hq, int Hkv, int hd,
                                const uint8_t *allowed, float scale) {
    (void)ex;
    float *logit = malloc((size_t)Nk * sizeof *logit), *qs = malloc((size_t)hd * sizeof *qs);
    if (!logit || !qs) {
        free(logit);
        free(qs);
        return PI0_ERR_NOMEM;
    }
    const int group = Hq / Hkv, qw = Hq * hd, kw = Hkv * hd;
    for (int h = 0; h < Hq; h++) {
        const int kh = h / group;
        for (int i = 0; i < M; i++) {
            const float *qr = q + (size_t)i * qw + (size_t)h * hd;
            for (int d = 0; d < hd; d++) qs[d] = qr[d] * scale;
            float mx = PI0_MASK_LOGIT;
            for (int j = 0; j < Nk; j++) {
                logit[j] = (!allowed || allowed[(size_t)i * Nk + j])
                               ? dot(qs, k + (size_t)j * kw + (size_t)kh * hd, hd)
                               : PI0_MASK_LOGIT;
                if (logit[j] > mx) mx = logit[j];
            }
            double sum = 0;
            for (int j = 0; j < Nk; j++) {
                logit[j] = expf(logit[j] - mx);
                sum += logit[j];
            }
            float *o = out + (size_t)i * qw + (size_t)h * hd;
            for (int d = 0; d < hd; d++) o[d] = 0.0f;
            for (int j = 0; j < Nk; j++) {
                float p = (float)(logit[j] / sum);
                const float *vr = v + (size_t)j * kw + (size_t)kh * hd;
                for (int d = 0; d < hd; d++) o[d] += p * vr[d];
            }
        }
    }
    free(logit);
    free(qs);
    return PI0_OK;
}

static void ref_describe(const void *handle, char *buf, size_t n) {
    (void)handle;
    snprintf(buf, n, "float32 reference");
}

const pi0_backend pi0_backend_ref = {
    .name = "ref",
    .slot = PI0_SLOT_REF,
    .host_memory = 1,
    .describe = ref_describe,
    .matmul = ref_matmul,
    .layernorm = ref_layernorm,
    .rmsnorm = ref_rmsnorm,
    .rmsnorm_mod = ref_rmsnorm_mod,
    .gelu_tanh = ref_gelu_tanh,
    .silu = ref_silu,
    .mul = ref_mul,
    .add = ref_add,
    .add_weight = host_add_weight,
    .rope = ref_rope,
    .attention = ref_attention,
    .patchify = host_patchify,
    .embed = host_embed,
    .copy_rows = host_copy_rows,
    .time_embed = host_time_embed,
    .axpy = host_axpy,
};
