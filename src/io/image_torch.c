/* image_torch.c — see image_torch.h. Written by hand: the engine must reproduce PyTorch's
 * float32 arithmetic (UpSampleKernel.cpp's separable 2-tap blend, area_pixel_compute_source_index)
 * to the golden vectors' 2e-6, which no C image library does. This file is compiled without
 * floating-point contraction (CMake: -ffp-contract=off): fusing s·(d + 0.5) − 0.5 moves the
 * source index, and lerobot's CPU reference rounds twice. */
#include "image_torch.h"

#include <math.h>
#include <stdlib.h>

/* One axis: for each output index, the two source indices and their weights. */
typedef struct {
    int *i0, *i1;
    float *l0, *l1;
} axis_taps;

static int taps_init(axis_taps *a, int n, int m) {
    a->i0 = malloc((size_t)m * sizeof *a->i0);
    a->i1 = malloc((size_t)m * sizeof *a->i1);
    a->l0 = malloc((size_t)m * sizeof *a->l0);
    a->l1 = malloc((size_t)m * sizeof *a->l1);
    if (!a->i0 || !a->i1 || !a->l0 || !a->l1) return 0;
    const float s = (float)n / (float)m; /* float32 division, as torch's scale */
    for (int d = 0; d < m; d++) {
        if (n == m) { /* an axis that keeps its length is copied */
            a->i0[d] = a->i1[d] = d;
            a->l0[d] = 1.0f;
            a->l1[d] = 0.0f;
            continue;
        }
        float src = s * ((float)d + 0.5f);
        src = src - 0.5f; /* two roundings, never fused */
        if (src < 0.0f) src = 0.0f;
        int i0 = (int)floorf(src);
        if (i0 > n - 1) i0 = n - 1;
        float l1 = src - (float)i0;
        l1 = l1 < 0.0f ? 0.0f : l1 > 1.0f ? 1.0f : l1;
        a->i0[d] = i0;
        a->i1[d] = i0 + (i0 < n - 1 ? 1 : 0);
        a->l1[d] = l1;
        a->l0[d] = 1.0f - l1;
    }
    return 1;
}

static void taps_free(axis_taps *a) {
    free(a->i0);
    free(a->i1);
    free(a->l0);
    free(a->l1);
}

/* The resize from either pixel type: u8 (read as float32(u8) / 255, lerobot's conversion) or
 * f32 (used as is); exactly one is non-NULL. */
static pi0_status resize(float *out, const uint8_t *u8, const float *f32, int W, int H, int C, int R,
                         const torch_resize_opts *opts, pi0_err *e) {
    RETURN_ERR_IF(!out || (!u8 && !f32) || W < 1 || H < 1 || R < 1, e, PI0_ERR_INPUT, "image: bad size %dx%d", W, H);
    RETURN_ERR_IF(C != 1 && C != 3 && C != 4, e, PI0_ERR_INPUT, "image has %d channels (expected 1, 3 or 4)", C);
    const torch_resize_opts def = {0.0f, 0.0f, 0};
    if (!opts) opts = &def;
    int h = R, w = R;
    if (H != R || W != R) {
        const double ratio = fmax((double)W / R, (double)H / R);
        h = (int)(H / ratio);
        w = (int)(W / ratio);
        if (h < 1) h = 1; /* torch refuses a zero side; a 1-pixel band is the useful answer */
        if (w < 1) w = 1;
    }
    const int top = opts->top_left ? 0 : (R - h) / 2, left = opts->top_left ? 0 : (R - w) / 2;
    const size_t plane = (size_t)R * R;
    for (size_t i = 0; i < 3 * plane; i++) out[i] = opts->pad * 2.0f - 1.0f;
    axis_taps ax = {0}, ay = {0};
    if (!taps_init(&ax, W, w) || !taps_init(&ay, H, h)) {
        taps_free(&ax);
        taps_free(&ay);
        return pi0_fail(e, PI0_ERR_NOMEM, "out of memory");
    }
    const int resized = H != R || W != R;
    for (int ch = 0; ch < 3; ch++) {
        const int sc = C == 1 ? 0 : ch; /* gray → RGB; alpha dropped */
        float *o = out + (size_t)ch * plane;
#define PX(y, x) (u8 ? (float)u8[((size_t)(y) * W + (x)) * C + sc] / 255.0f : f32[((size_t)(y) * W + (x)) * C + sc])
        for (int y = 0; y < h; y++)
            for (int x = 0; x < w; x++) {
                float v;
                if (!resized) {
                    v = PX(y, x);
                } else {
                    const int y0 = ay.i0[y], y1 = ay.i1[y], x0 = ax.i0[x], x1 = ax.i1[x];
                    const float t0 = ax.l0[x] * PX(y0, x0) + ax.l1[x] * PX(y0, x1);
                    const float t1 = ax.l0[x] * PX(y1, x0) + ax.l1[x] * PX(y1, x1);
                    v = ay.l0[y] * t0 + ay.l1[y] * t1;
                    v = v < opts->clamp_lo ? opts->clamp_lo : v > 1.0f ? 1.0f : v;
                }
                o[(size_t)(top + y) * R + left + x] = v * 2.0f - 1.0f;
            }
#undef PX
    }
    taps_free(&ax);
    taps_free(&ay);
    return PI0_OK;
}

pi0_status image_resize_torch(float *out, const uint8_t *hwc, int W, int H, int C, int R,
                              const torch_resize_opts *opts, pi0_err *e) {
    return resize(out, hwc, NULL, W, H, C, R, opts, e);
}

pi0_status image_resize_torch_f32(float *out, const float *hwc, int W, int H, int C, int R,
                                  const torch_resize_opts *opts, pi0_err *e) {
    return resize(out, NULL, hwc, W, H, C, R, opts, e);
}
