/* image.c — see image.h. Decoding is stb_image (stb_image_fenced.c: PNG, JPEG, BMP; bounded
 * allocations), behind the checks below: the format from the file's signature, the dimensions
 * from its header, and the JPEG Huffman tables stb would overflow, all before decoding. The
 * resampler is written by hand because openpi's actions depend on PIL's exact pixels, and no C
 * library reproduces PIL's fixed-point bilinear filter; it follows Pillow's Resample.c semantics
 * (not its code). */
#include "image.h"

#include <limits.h>
#include <math.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>

#include "stb_image_fenced.h"

void rgb_image_free(rgb_image *im) {
    if (!im) return;
    free(im->rgb);
    memset(im, 0, sizeof *im);
}

static pi0_status image_alloc(rgb_image *im, int w, int h, pi0_err *e) {
    size_t pixels, bytes;
    RETURN_ERR_IF(w <= 0 || h <= 0 || !pi0_mul_size((size_t)w, (size_t)h, &pixels) ||
                      !pi0_mul_size(pixels, 3, &bytes), e, PI0_ERR_INPUT, "image size %dx%d is out of range", w, h);
    im->width = w;
    im->height = h;
    im->rgb = malloc(bytes + 1);
    RETURN_ERR_IF(!im->rgb, e, PI0_ERR_NOMEM, "out of memory for a %dx%d image", w, h);
    return PI0_OK;
}

enum {
    MAX_SIDE = 1 << 15,          /* pixels per side */
    MAX_PIXELS = 1 << 26,        /* 64 Mpixel (8192x8192): more than any camera sends */
};
#define MAX_FILE_BYTES ((size_t)256 << 20)

typedef enum { FMT_PNG, FMT_JPEG, FMT_BMP } image_format;

/* The most pixels a well-formed file of each format can describe per byte of file: PNG's
 * deflate expands at most 1032:1 and a pixel takes at least 1 bit (8256); every 8x8 JPEG block of
 * the full-resolution component needs at least one bit for its DC coefficient (512); BMP (not
 * compressed in stb) at least 1 bit per pixel (8). A header that declares more pixels than that
 * is corrupt or truncated, and decoders fill the missing pixels with zeros: refused before any
 * pixel is allocated. */
static const size_t k_pixels_per_byte[3] = {8256, 512, 8};
static const char *const k_format_name[3] = {"PNG", "JPEG", "BMP"};

/* stb's reason for a failure, printable (for an unknown PNG chunk it quotes the file's bytes). */
static const char *stb_reason(char *buf, size_t n) {
    const char *r = fenced_stbi_failure_reason();
    size_t k = 0;
    for (; r && r[k] && k + 1 < n; k++) buf[k] = r[k] >= 0x20 && r[k] < 0x7f ? r[k] : '?';
    buf[k] = 0;
    return buf;
}

static int sniff_format(const unsigned char *p, size_t n, image_format *f) {
    if (n >= 8 && !memcmp(p, "\x89PNG\r\n\x1a\n", 8)) { *f = FMT_PNG; return 1; }
    if (n >= 3 && p[0] == 0xff && p[1] == 0xd8 && p[2] == 0xff) { *f = FMT_JPEG; return 1; }
    if (n >= 2 && p[0] == 'B' && p[1] == 'M') { *f = FMT_BMP; return 1; }
    return 0;
}

/* Two JPEG inputs make stb 2.27 index its Huffman tables out of bounds, and Debian's header cannot
 * be patched, so such files are refused here:
 *  - a table whose 16 counts add up to more than 256 codes (a DHT segment can declare 16 x 255):
 *    stb copies the code lengths and symbols into arrays of 257 and 256 entries unchecked;
 *  - a scan that uses a table no DHT segment defined before it: stb decodes with whatever its
 *    (uninitialised) table holds and reads symbols at negative indexes.
 * And a JPEG of more than MAX_JPEG_SCANS scans is refused: each scan costs a pass over every
 * block of the image, so a small file of many tiny scans takes seconds (encoders write at most a
 * few dozen). Walks the marker segments as stb reads them (segment lengths between markers,
 * entropy-coded data up to the next 0xFF that starts a marker; bytes past the end read as 0, as
 * in stb), and checks every DHT table and every scan in stb's order. Writes the reason to why. */
enum { MAX_JPEG_SCANS = 100 };

static int jpeg_tables_ok(const unsigned char *p, size_t n, char *why, size_t whylen) {
#define AT(k) ((k) < n ? p[k] : 0)
    int defined[2][4] = {{0}}, progressive = -1, scans = 0;
    size_t i = 2;
    for (;;) {
        while (i < n && p[i] != 0xff) i++;   /* entropy-coded data, or bytes stb skips */
        while (i < n && p[i] == 0xff) i++;   /* fill bytes */
        if (i >= n) return 1;
        const unsigned m = p[i++];
        if (m == 0x00 || m == 0x01 || m == 0xd8 || (m >= 0xd0 && m <= 0xd7)) continue; /* no length */
        if (m == 0xd9) return 1;                                                       /* EOI */
        const size_t len = (size_t)AT(i) << 8 | AT(i + 1);
        if (m == 0xc4) { /* DHT: tables of [class << 4 | id][16 counts][symbols], read as stb reads them */
            size_t k = i + 2;
            long left = (long)len - 2;
            while (left > 0 && k < n) {
                const unsigned tc = AT(k) >> 4, th = AT(k) & 15;
                if (tc > 1 || th > 3) return 1; /* stb refuses the file */
                int total = 0;
                for (size_t j = k + 1; j <= k + 16; j++) total += AT(j);
                if (total > 256) {
                    snprintf(why, whylen, "Huffman table %s%u declares %d codes (at most 256)", tc ? "AC" : "DC", th,
                             total);
                    return 0;
                }
                defined[tc][th] = 1;
                k += 17 + (size_t)total;
                left -= 17 + total;
            }
        } else if ((m == 0xc0 || m == 0xc1 || m == 0xc2) && progressive < 0) {
            progressive = m == 0xc2;
        } else if (m == 0xda) { /* SOS: [Ns] [component, DC table << 4 | AC table] x Ns [Ss] [Se] [Ah << 4 | Al] */
            if (++scans > MAX_JPEG_SCANS) {
                snprintf(why, whylen, "more than %d scans", MAX_JPEG_SCANS);
                return 0;
            }
            const unsigned ns = AT(i + 2), ss = AT(i + 3 + 2 * ns), ah = AT(i + 5 + 2 * ns) >> 4;
            for (unsigned c = 0; c < ns && c < 4; c++) {
                const unsigned td = AT(i + 4 + 2 * c) >> 4, ta = AT(i + 4 + 2 * c) & 15;
                const int use_dc = progressive != 1 || (ss == 0 && ah == 0), use_ac = progressive != 1 || ss > 0;
                if ((use_dc && td <= 3 && !defined[0][td]) || (use_ac && ta <= 3 && !defined[1][ta])) {
                    snprintf(why, whylen, "a scan uses Huffman table %s%u, which no DHT segment defined before it",
                             use_dc && td <= 3 && !defined[0][td] ? "DC" : "AC",
                             use_dc && td <= 3 && !defined[0][td] ? td : ta);
                    return 0;
                }
            }
        }
        i += len;
    }
#undef AT
}

pi0_status image_decode_memory(rgb_image *out, const void *data, size_t size, const char *name, pi0_err *e) {
    memset(out, 0, sizeof *out);
    const unsigned char *p = data;
    image_format fmt;
    RETURN_ERR_IF(!p || !sniff_format(p, size, &fmt), e, PI0_ERR_INPUT,
                  "%s: cannot decode image: unsupported image format (pi0 reads PNG, JPEG and BMP)", name);
    RETURN_ERR_IF(size > MAX_FILE_BYTES || size > INT_MAX, e, PI0_ERR_INPUT,
                  "%s: cannot decode image: %zu bytes is more than the %zu an image may take", name, size,
                  MAX_FILE_BYTES);
    char why[128];
    RETURN_ERR_IF(fmt == FMT_JPEG && !jpeg_tables_ok(p, size, why, sizeof why), e, PI0_ERR_INPUT,
                  "%s: cannot decode image: corrupt JPEG: %s", name, why);
    /* Dimensions from the header alone, before anything is decoded. */
    int w = 0, h = 0, c = 0;
    if (!fenced_stbi_info(p, (int)size, &w, &h, &c)) {
        /* stb's header check refuses PNGs of more than 2^30 bytes without saying why */
        const uint32_t pw = fmt == FMT_PNG && size >= 24 ? (uint32_t)p[16] << 24 | p[17] << 16 | p[18] << 8 | p[19] : 0;
        const uint32_t ph = fmt == FMT_PNG && size >= 24 ? (uint32_t)p[20] << 24 | p[21] << 16 | p[22] << 8 | p[23] : 0;
        RETURN_ERR_IF(pw > MAX_SIDE || ph > MAX_SIDE || (uint64_t)pw * ph > MAX_PIXELS, e, PI0_ERR_INPUT,
                      "%s: PNG image size %ux%u is too large (at most %d pixels per side and %d megapixels)",
                      name, (unsigned)pw, (unsigned)ph, MAX_SIDE, MAX_PIXELS >> 20);
        return pi0_fail(e, PI0_ERR_INPUT, "%s: cannot decode image: not a valid %s header (%s)", name,
                        k_format_name[fmt], stb_reason(why, sizeof why));
    }
    if (fmt == FMT_BMP && h < 0 && h != INT_MIN) h = -h; /* a top-down BMP: negative height */
    RETURN_ERR_IF(w <= 0 || h <= 0, e, PI0_ERR_INPUT, "%s: %s image size %dx%d is invalid", name,
                  k_format_name[fmt], w, h);
    size_t pixels, min_bytes, budget;
    pi0_mul_size((size_t)w, (size_t)h, &pixels); /* both <= INT_MAX: cannot overflow */
    RETURN_ERR_IF(w > MAX_SIDE || h > MAX_SIDE || pixels > MAX_PIXELS, e, PI0_ERR_INPUT,
                  "%s: %s image size %dx%d is too large (at most %d pixels per side and %d megapixels)",
                  name, k_format_name[fmt], w, h, MAX_SIDE, MAX_PIXELS >> 20);
    min_bytes = (pixels + k_pixels_per_byte[fmt] - 1) / k_pixels_per_byte[fmt];
    RETURN_ERR_IF(size < min_bytes, e, PI0_ERR_INPUT,
                  "%s: %s image size %dx%d is too large for its %zu-byte file (at least %zu bytes; "
                  "corrupt, truncated or a decompression bomb)", name, k_format_name[fmt], w, h, size, min_bytes);
    /* What stb may hold while decoding: the file's data copied once more (PNG's IDAT, grown by
     * doubling), 24 bytes per pixel (16-bit RGBA PNG: raw + unfiltered + converted; progressive
     * JPEG: coefficients + planes + output) and 1 MiB of tables. */
    budget = 2 * size + 24 * pixels + ((size_t)1 << 20);
    int w2 = 0, h2 = 0, c2 = 0, over = 0;
    unsigned char *px = fenced_stbi_load(p, (int)size, &w2, &h2, &c2, 3, budget, &over);
    RETURN_ERR_IF(!px && over, e, PI0_ERR_INPUT, "%s: cannot decode image: %s %dx%d needs more memory "
                  "than %zu bytes (corrupt data or a decompression bomb)", name, k_format_name[fmt], w, h, budget);
    RETURN_ERR_IF(!px, e, PI0_ERR_INPUT, "%s: cannot decode image: %s", name, stb_reason(why, sizeof why));
    pi0_status st = PI0_OK;
    if (w2 != w || h2 != h)
        st = pi0_fail(e, PI0_ERR_INPUT, "%s: cannot decode image: header says %dx%d, data %dx%d", name, w, h, w2, h2);
    else if ((st = image_alloc(out, w, h, e)) == PI0_OK)
        memcpy(out->rgb, px, pixels * 3);
    fenced_stbi_free(px);
    return st;
}

pi0_status image_decode_file(rgb_image *out, const char *path, pi0_err *e) {
    memset(out, 0, sizeof *out);
    char *buf;
    size_t size;
    FORWARD_ERR(read_file(path, MAX_FILE_BYTES, &buf, &size, e));
    pi0_status st = image_decode_memory(out, buf, size, path, e);
    free(buf);
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
