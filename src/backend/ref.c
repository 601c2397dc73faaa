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

/* Rotary embedding in place, split halves; sign −1 rotates by −angle (the transpose, for
 * rope_bwd). Angles in double; sin·sign is exact, so both directions use the same values. */
static void rope_rotate(float *x, int M, int n_heads, int hd, const int32_t *pos, double theta, float sign) {
    const int half = hd / 2;
    for (int m = 0; m < M; m++)
        for (int i = 0; i < half; i++) {
            double ang = pos[m] / pow(theta, 2.0 * i / hd);
            float c = (float)cos(ang), s = sign * (float)sin(ang);
            for (int h = 0; h < n_heads; h++) {
                float *r = x + (size_t)m * n_heads * hd + (size_t)h * hd;
                float x1 = r[i], x2 = r[i + half];
                r[i] = x1 * c - x2 * s;
                r[i + half] = x2 * c + x1 * s;
            }
        }
}

static pi0_status ref_rope(const pi0_exec *ex, float *x, int M, int n_heads, int hd, const int32_t *pos,
                           double theta) {
    (void)ex;
    rope_rotate(x, M, n_heads, hd, pos, theta, 1.0f);
    return PI0_OK;
}

/* One query row's attention probabilities p[Nk] from its scaled query qs[hd] and the keys of its
 * kv head (kh: row j at kh + j·kw); ar the row's mask (NULL = all allowed). */
static void softmax_row(float *p, const float *qs, const float *kh, int Nk, int kw, int hd, const uint8_t *ar) {
    float mx = PI0_MASK_LOGIT;
    for (int j = 0; j < Nk; j++) {
        p[j] = (!ar || ar[j]) ? dot(qs, kh + (size_t)j * kw, hd) : PI0_MASK_LOGIT;
        if (p[j] > mx) mx = p[j];
    }
    double sum = 0;
    for (int j = 0; j < Nk; j++) {
        p[j] = expf(p[j] - mx);
        sum += p[j];
    }
    for (int j = 0; j < Nk; j++) p[j] = (float)(p[j] / sum);
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
            softmax_row(logit, qs, k + (size_t)kh * hd, Nk, kw, hd, allowed ? allowed + (size_t)i * Nk : NULL);
            float *o = out + (size_t)i * qw + (size_t)h * hd;
            for (int d = 0; d < hd; d++) o[d] = 0.0f;
            for (int j = 0; j < Nk; j++) {
                float p = logit[j];
                const float *vr = v + (size_t)j * kw + (size_t)kh * hd;
                for (int d = 0; d < hd; d++) o[d] += p * vr[d];
            }
        }
    }
    free(logit);
    free(qs);
    return PI0_OK;
}

/* ---------------------------------------------------------------- backward ops */

/* dx[M,K] (=|+=) (dy ⊙ gate)·W, summed in double over n in order: W converted to f32 a block of
 * rows at a time (as ref_matmul reads it), each block's products spread over the rows of dx. */
static pi0_status ref_matmul_dx(const pi0_exec *ex, float *dx, const float *dy, int M, const pi0_mat *W,
                                const float *gate, int accumulate) {
    const int N = W->rows, K = W->cols;
    float *wb = malloc((size_t)REF_BLOCK * K * sizeof *wb);
    double *acc = calloc((size_t)M * K, sizeof *acc);
    if (!wb || !acc) {
        free(wb);
        free(acc);
        return PI0_ERR_NOMEM;
    }
    for (int n0 = 0; n0 < N; n0 += REF_BLOCK) {
        const int nb = N - n0 < REF_BLOCK ? N - n0 : REF_BLOCK;
        pi0_mat_rows_f32(wb, W, n0, nb);
#pragma omp parallel for num_threads(ex->num_threads) schedule(static)
        for (int m = 0; m < M; m++)
            for (int j = 0; j < nb; j++) {
                const double g = dy[(size_t)m * N + n0 + j] * (gate ? gate[n0 + j] : 1.0f);
                const float *wr = wb + (size_t)j * K;
                double *ar = acc + (size_t)m * K;
                for (int k = 0; k < K; k++) ar[k] += g * wr[k];
            }
    }
    for (size_t i = 0; i < (size_t)M * K; i++) dx[i] = (float)(accumulate ? dx[i] + acc[i] : acc[i]);
    free(wb);
    free(acc);
    return PI0_OK;
}

/* Per row: g = dy ⊙ factor, r = 1/sqrt(mean(x²) + eps), dx (=|+=) r·g − x·r³·mean(g ⊙ x). */
static pi0_status ref_rmsnorm_bwd(const pi0_exec *ex, float *dx, const float *dy, const float *x, int M,
                                  int D, const pi0_vec *wv, const float *mod, float eps, int accumulate) {
    (void)ex;
    const float *f = wv ? wv->data : mod;
    for (int m = 0; m < M; m++) {
        const float *xr = x + (size_t)m * D, *dyr = dy + (size_t)m * D;
        float *dxr = dx + (size_t)m * D;
        const double r = rms_inv(xr, D, eps);
        double gx = 0;
        for (int i = 0; i < D; i++) gx += (double)dyr[i] * (1.0f + f[i]) * xr[i];
        const double c = r * r * r * gx / D;
        for (int i = 0; i < D; i++) {
            const float v = (float)(r * (dyr[i] * (1.0f + f[i])) - xr[i] * c);
            dxr[i] = accumulate ? dxr[i] + v : v;
        }
    }
    return PI0_OK;
}

/* d/dv of gelu_tanh1: with u = c·(v + 0.044715·v³), t = tanh(u),
 * 0.5·(1 + t) + 0.5·v·(1 − t²)·c·(1 + 3·0.044715·v²). */
static float gelu_tanh1_grad(float v) {
    const float c = 0.7978845608028654f; /* sqrt(2/pi) */
    const float t = tanhf(c * (v + 0.044715f * v * v * v));
    return 0.5f * (1.0f + t) + 0.5f * v * (1.0f - t * t) * c * (1.0f + 3.0f * 0.044715f * v * v);
}

static pi0_status ref_geglu_bwd(const pi0_exec *ex, float *dgu, const float *dm, const float *gu, int M, int F) {
    (void)ex;
    for (int m = 0; m < M; m++) {
        const float *g = gu + (size_t)m * 2 * F, *u = g + F, *d = dm + (size_t)m * F;
        float *dg = dgu + (size_t)m * 2 * F, *du = dg + F;
        for (int i = 0; i < F; i++) {
            dg[i] = d[i] * u[i] * gelu_tanh1_grad(g[i]);
            du[i] = d[i] * gelu_tanh1(g[i]);
        }
    }
    return PI0_OK;
}

/* silu'(x) = σ(x)·(1 + x·(1 − σ(x))). */
static pi0_status ref_silu_bwd(const pi0_exec *ex, float *dx, const float *x_in, size_t n) {
    (void)ex;
    for (size_t i = 0; i < n; i++) {
        const float s = 1.0f / (1.0f + expf(-x_in[i]));
        dx[i] *= s * (1.0f + x_in[i] * (1.0f - s));
    }
    return PI0_OK;
}

/* The transpose of ref_rope's rotation: the same angles, rotated by −angle. */
static pi0_status ref_rope_bwd(const pi0_exec *ex, float *dx, int M, int n_heads, int hd, const int32_t *pos,
                               double theta) {
    (void)ex;
    rope_rotate(dx, M, n_heads, hd, pos, theta, -1.0f);
    return PI0_OK;
}

/* Recomputes each query row's probabilities exactly as ref_attention does, then
 *   dv_j += p_j·do,  dp_j = do·v_j,  ds_j = p_j·(dp_j − Σ p·dp)  (allowed entries only: a masked
 *   logit is a constant),  dq = scale·Σ ds_j·k_j,  dk_j += ds_j·(q·scale),
 * dk, dv for key rows j >= k0 only. Accumulation in double. */
static pi0_status ref_attention_bwd(const pi0_exec *ex, float *dq, float *dk, float *dv, const float *dout,
                                    const float *q, const float *k, const float *v, int M, int Nk, int k0,
                                    int Hq, int Hkv, int hd, const uint8_t *allowed, float scale) {
    (void)ex;
    const int group = Hq / Hkv, qw = Hq * hd, kw = Hkv * hd, nk = Nk - k0;
    float *p = malloc((size_t)Nk * sizeof *p), *qs = malloc((size_t)hd * sizeof *qs);
    double *ds = malloc((size_t)Nk * sizeof *ds), *acc = malloc((size_t)hd * sizeof *acc);
    double *gk = calloc((size_t)nk * kw + 1, sizeof *gk), *gv = calloc((size_t)nk * kw + 1, sizeof *gv);
    if (!p || !qs || !ds || !acc || !gk || !gv) {
        free(p); free(qs); free(ds); free(acc); free(gk); free(gv);
        return PI0_ERR_NOMEM;
    }
    for (int h = 0; h < Hq; h++) {
        const int kh = h / group;
        for (int i = 0; i < M; i++) {
            const float *qr = q + (size_t)i * qw + (size_t)h * hd, *dor = dout + (size_t)i * qw + (size_t)h * hd;
            const uint8_t *ar = allowed ? allowed + (size_t)i * Nk : NULL;
            for (int d = 0; d < hd; d++) qs[d] = qr[d] * scale;
            softmax_row(p, qs, k + (size_t)kh * hd, Nk, kw, hd, ar);
            double pdp = 0;
            for (int j = 0; j < Nk; j++) {
                const float *vr = v + (size_t)j * kw + (size_t)kh * hd;
                double dp = 0;
                for (int d = 0; d < hd; d++) dp += (double)dor[d] * vr[d];
                ds[j] = dp;
                pdp += p[j] * dp;
            }
            for (int d = 0; d < hd; d++) acc[d] = 0;
            for (int j = 0; j < Nk; j++) {
                ds[j] = (!ar || ar[j]) ? p[j] * (ds[j] - pdp) : 0.0;
                const float *kr = k + (size_t)j * kw + (size_t)kh * hd;
                for (int d = 0; d < hd; d++) acc[d] += ds[j] * kr[d];
                if (j < k0) continue;
                double *gkr = gk + (size_t)(j - k0) * kw + (size_t)kh * hd;
                double *gvr = gv + (size_t)(j - k0) * kw + (size_t)kh * hd;
                for (int d = 0; d < hd; d++) {
                    gkr[d] += ds[j] * qs[d];
                    gvr[d] += (double)p[j] * dor[d];
                }
            }
            float *dqr = dq + (size_t)i * qw + (size_t)h * hd;
            for (int d = 0; d < hd; d++) dqr[d] = (float)(acc[d] * scale);
        }
    }
    for (size_t i = 0; i < (size_t)nk * kw; i++) {
        dk[i] = (float)gk[i];
        dv[i] = (float)gv[i];
    }
    free(p); free(qs); free(ds); free(acc); free(gk); free(gv);
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
    .matmul_dx = ref_matmul_dx,
    .rmsnorm_bwd = ref_rmsnorm_bwd,
    .geglu_bwd = ref_geglu_bwd,
    .silu_bwd = ref_silu_bwd,
    .rope_bwd = ref_rope_bwd,
    .attention_bwd = ref_attention_bwd,
};
