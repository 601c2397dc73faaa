/* image.c — see image.h. Decoding is stb_image (Debian libstb-dev). The resampler is written
 * by hand because openpi's actions depend on PIL's exact pixels, and no C library reproduces
 * PIL's fixed-point bilinear filter; it follows Pillow's Resample.c semantics (not its code). */
#include "image.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <stb/stb_image.h>

void rgb_image_free(rgb_image *im) {
    if (!im) return;
    free(im->rgb);
    memset(im, 0, sizeof *im);
}

static pi0_status image_alloc(rgb_image *im, int w, int h, pi0_err *e) {
    im->width = w;
    im->height = h;
    im->rgb = malloc((size_t)w * h * 3 + 1);
    RETURN_ERR_IF(!im->rgb, e, PI0_ERR_NOMEM, "out of memory for a %dx%d image", w, h);
    return PI0_OK;
}

enum { MAX_SIDE = 1 << 15 };

pi0_status image_decode_file(rgb_image *out, const char *path, pi0_err *e) {
    memset(out, 0, sizeof *out);
    FILE *fp = fopen(path, "rb");
    RETURN_ERR_IF(!fp, e, PI0_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    int w, h, c;
    unsigned char *px = stbi_load_from_file(fp, &w, &h, &c, 3);
    fclose(fp);
    RETURN_ERR_IF(!px, e, PI0_ERR_INPUT, "%s: cannot decode image: %s", path, stbi_failure_reason());
    if (w <= 0 || h <= 0 || w > MAX_SIDE || h > MAX_SIDE) {
        stbi_image_free(px);
        return pi0_fail(e, PI0_ERR_INPUT, "%s: image size %dx%d is out of range", path, w, h);
    }
    pi0_status st = image_alloc(out, w, h, e);
    if (st == PI0_OK) memcpy(out->rgb, px, (size_t)w * h * 3);
    stbi_image_free(px);
    return st;
}

pi0_status image_from_u8(rgb_image *out, const uint8_t *data, int w, int h, int channels, int chw,
                         pi0_err *e) {
    memset(out, 0, sizeof *out);
    RETURN_ERR_IF(!data, e, PI0_ERR_INPUT, "image data is NULL");
    RETURN_ERR_IF(w <= 0 || h <= 0 || w > MAX_SIDE || h > MAX_SIDE, e, PI0_ERR_INPUT,
                  "image size %dx%d is out of range", w, h);
    RETURN_ERR_IF(channels != 1 && channels != 3 && channels != 4, e, PI0_ERR_INPUT,
                  "image has %d channels (expected 1, 3 or 4)", channels);
    FORWARD_ERR(image_alloc(out, w, h, e));
    const size_t plane = (size_t)w * h;
    for (size_t p = 0; p < plane; p++)
        for (int ch = 0; ch < 3; ch++) {
            int src_ch = channels == 1 ? 0 : ch;
            out->rgb[p * 3 + ch] = chw ? data[src_ch * plane + p] : data[p * channels + src_ch];
        }
    return PI0_OK;
}

/* ---------------------------------------------------------------- PIL-exact bilinear */

#define PRECISION_BITS (32 - 8 - 2)

/* Per output index: first input index, count, and `ksize` fixed-point weights. */
typedef struct {
    int ksize;
    int *bounds; /* [out, 2] */
    int32_t *k;  /* [out, ksize] */
} coeffs;

static double triangle(double x) {
    if (x < 0) x = -x;
    return x < 1.0 ? 1.0 - x : 0.0;
}

static int precompute(coeffs *c, int in_size, int out_size) {
    const double scale = (double)in_size / out_size;
    const double filterscale = scale < 1.0 ? 1.0 : scale;
    const double support = 1.0 * filterscale, ss = 1.0 / filterscale;
    c->ksize = (int)ceil(support) * 2 + 1;
    c->bounds = malloc((size_t)out_size * 2 * sizeof *c->bounds);
    c->k = calloc((size_t)out_size * c->ksize, sizeof *c->k);
    double *w = malloc((size_t)c->ksize * sizeof *w);
    if (!c->bounds || !c->k || !w) { free(w); return 0; }
    for (int xx = 0; xx < out_size; xx++) {
        const double center = (xx + 0.5) * scale;
        int xmin = (int)(center - support + 0.5), xmax = (int)(center + support + 0.5);
        if (xmin < 0) xmin = 0;
        if (xmax > in_size) xmax = in_size;
        xmax -= xmin;
        double ww = 0.0;
        for (int x = 0; x < xmax; x++) {
            w[x] = triangle((x + xmin - center + 0.5) * ss);
            ww += w[x];
        }
        int32_t *k = c->k + (size_t)xx * c->ksize;
        for (int x = 0; x < xmax; x++) {
            double v = ww != 0.0 ? w[x] / ww : w[x];
            k[x] = (int32_t)(v < 0 ? -0.5 + v * (1 << PRECISION_BITS) : 0.5 + v * (1 << PRECISION_BITS));
        }
        c->bounds[xx * 2] = xmin;
        c->bounds[xx * 2 + 1] = xmax;
    }
    free(w);
    return 1;
}

static void coeffs_free(coeffs *c) {
    free(c->bounds);
    free(c->k);
}

static uint8_t clip8(int32_t v) {
    v >>= PRECISION_BITS;
    return (uint8_t)(v < 0 ? 0 : v > 255 ? 255 : v);
}

/* One separable pass: along x when horizontal, else along y. */
static void resample_pass(const rgb_image *in, rgb_image *out, const coeffs *c, int horizontal) {
    for (int y = 0; y < out->height; y++)
        for (int x = 0; x < out->width; x++) {
            const int o = horizontal ? x : y;
            const int xmin = c->bounds[o * 2], n = c->bounds[o * 2 + 1];
            const int32_t *k = c->k + (size_t)o * c->ksize;
            for (int ch = 0; ch < 3; ch++) {
                int32_t acc = 1 << (PRECISION_BITS - 1);
                for (int i = 0; i < n; i++) {
                    const int sx = horizontal ? xmin + i : x, sy = horizontal ? y : xmin + i;
                    acc += in->rgb[((size_t)sy * in->width + sx) * 3 + ch] * k[i];
                }
                out->rgb[((size_t)y * out->width + x) * 3 + ch] = clip8(acc);
            }
        }
}

pi0_status image_resize_bilinear(rgb_image *out, const rgb_image *in, int width, int height, pi0_err *e) {
    memset(out, 0, sizeof *out);
    RETURN_ERR_IF(width <= 0 || height <= 0, e, PI0_ERR_ARG, "resize to %dx%d", width, height);
    rgb_image cur = *in, tmp = {0};
    pi0_status st = PI0_OK;
    coeffs ch = {0}, cv = {0};
    if (width != in->width) {
        if (!precompute(&ch, in->width, width)) { st = pi0_fail(e, PI0_ERR_NOMEM, "out of memory"); goto done; }
        if ((st = image_alloc(&tmp, width, in->height, e)) != PI0_OK) goto done;
        resample_pass(in, &tmp, &ch, 1);
        cur = tmp;
    }
    if ((st = image_alloc(out, width, height, e)) != PI0_OK) goto done;
    if (height != in->height) {
        if (!precompute(&cv, in->height, height)) { st = pi0_fail(e, PI0_ERR_NOMEM, "out of memory"); goto done; }
        resample_pass(&cur, out, &cv, 0);
    } else {
        memcpy(out->rgb, cur.rgb, (size_t)width * height * 3);
    }
done:
    coeffs_free(&ch);
    coeffs_free(&cv);
    rgb_image_free(&tmp);
    if (st != PI0_OK) rgb_image_free(out);
    return st;
}

pi0_status image_resize_with_pad(rgb_image *out, const rgb_image *in, int size, pi0_err *e) {
    memset(out, 0, sizeof *out);
    FORWARD_ERR(image_alloc(out, size, size, e));
    if (in->width == size && in->height == size) {
        memcpy(out->rgb, in->rgb, (size_t)size * size * 3);
        return PI0_OK;
    }
    const double ratio = fmax((double)in->width / size, (double)in->height / size);
    int rh = (int)(in->height / ratio), rw = (int)(in->width / ratio);
    if (rh < 1) rh = 1; /* PIL refuses a zero side; a 1-pixel band is the useful answer */
    if (rw < 1) rw = 1;
    rgb_image r;
    pi0_status st = image_resize_bilinear(&r, in, rw, rh, e);
    if (st != PI0_OK) { rgb_image_free(out); return st; }
    const int ph = (size - rh) / 2 > 0 ? (size - rh) / 2 : 0, pw = (size - rw) / 2 > 0 ? (size - rw) / 2 : 0;
    memset(out->rgb, 0, (size_t)size * size * 3);
    for (int y = 0; y < rh && y + ph < size; y++)
        memcpy(out->rgb + ((size_t)(y + ph) * size + pw) * 3, r.rgb + (size_t)y * rw * 3,
               (size_t)(rw < size - pw ? rw : size - pw) * 3);
    rgb_image_free(&r);
    return PI0_OK;
}

void image_to_model(const rgb_image *im, float *chw) {
    const size_t plane = (size_t)im->width * im->height;
    for (size_t p = 0; p < plane; p++)
        for (int c = 0; c < 3; c++) chw[c * plane + p] = (float)im->rgb[p * 3 + c] / 255.0f * 2.0f - 1.0f;
}
