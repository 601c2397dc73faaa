/* host_ops.c — see host_ops.h. */
#include "host_ops.h"

#include <math.h>

void pi0_mat_rows_f32(float *dst, const pi0_mat *W, int r0, int n) {
    if (!W->parts) {
        const size_t off = (size_t)r0 * W->cols;
        convert_to_f32(dst, (const char *)W->data + off * dtype_size(W->dtype), W->dtype, (size_t)n * W->cols);
        return;
    }
    int base = 0; /* a stack: each row range goes to the part that holds it */
    for (int i = 0; i < W->nparts && n > 0; i++) {
        const pi0_mat *P = W->parts[i];
        if (r0 < base + P->rows) {
            const int k = base + P->rows - r0 < n ? base + P->rows - r0 : n;
            pi0_mat_rows_f32(dst, P, r0 - base, k);
            dst += (size_t)k * W->cols;
            r0 += k;
            n -= k;
        }
        base += P->rows;
    }
}

pi0_status host_patchify(const pi0_exec *ex, float *patches, const float *img, int C, int S, int p) {
    (void)ex;
    const int g = S / p;
    for (int py = 0; py < g; py++)
        for (int px = 0; px < g; px++) {
            float *out = patches + ((size_t)py * g + px) * C * p * p;
            for (int ch = 0; ch < C; ch++)
                for (int ky = 0; ky < p; ky++)
                    for (int kx = 0; kx < p; kx++)
                        *out++ = img[((size_t)ch * S + py * p + ky) * S + px * p + kx];
        }
    return PI0_OK;
}

pi0_status host_embed(const pi0_exec *ex, float *out, const pi0_mat *E, const int32_t *ids, int n,
                      float scale) {
    (void)ex;
    const int D = E->cols;
    for (int i = 0; i < n; i++) {
        float *row = out + (size_t)i * D;
        if (ids[i] < 0 || ids[i] >= E->rows) {
            memset(row, 0, (size_t)D * sizeof *row);
            continue;
        }
        pi0_mat_rows_f32(row, E, ids[i], 1);
        for (int d = 0; d < D; d++) row[d] *= scale;
    }
    return PI0_OK;
}

pi0_status host_copy_rows(const pi0_exec *ex, float *dst, size_t dst_stride, const float *src,
                          size_t src_stride, int rows, int cols) {
    (void)ex;
    for (int r = 0; r < rows; r++)
        memmove(dst + r * dst_stride, src + r * src_stride, (size_t)cols * sizeof(float));
    return PI0_OK;
}

pi0_status host_time_embed(const pi0_exec *ex, float *out, double t, int d, double min_period,
                           double max_period) {
    (void)ex;
    const int half = d / 2;
    for (int i = 0; i < half; i++) {
        double f = half > 1 ? (double)i / (half - 1) : 0.0;
        double period = min_period * pow(max_period / min_period, f);
        double arg = t * 2.0 * M_PI / period;
        out[i] = (float)sin(arg);
        out[half + i] = (float)cos(arg);
    }
    return PI0_OK;
}

pi0_status host_axpy(const pi0_exec *ex, float *x, const float *v, float alpha, size_t n) {
    (void)ex;
    for (size_t i = 0; i < n; i++) x[i] += alpha * v[i];
    return PI0_OK;
}

pi0_status host_add_weight(const pi0_exec *ex, float *x, const pi0_vec *w, size_t n) {
    (void)ex;
    if (n > w->n) return PI0_ERR_ARG;
    for (size_t i = 0; i < n; i++) x[i] += w->data[i];
    return PI0_OK;
}
