/* common.c — errors, dtypes, half-precision conversion, RNG, clock. */
#include "common.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <stdio.h>
#include <time.h>

/* The length of the well-formed UTF-8 sequence at s (n bytes left), 0 if there is none. */
static size_t utf8_seq(const unsigned char *s, size_t n) {
    const unsigned c = s[0];
    size_t len;
    unsigned lo = 0x80, hi = 0xBF; /* the allowed range of the second byte */
    if (c < 0x80) return 1;
    if (c >= 0xC2 && c <= 0xDF) len = 2;
    else if (c >= 0xE0 && c <= 0xEF) {
        len = 3;
        if (c == 0xE0) lo = 0xA0;      /* overlong */
        if (c == 0xED) hi = 0x9F;      /* surrogates */
    } else if (c >= 0xF0 && c <= 0xF4) {
        len = 4;
        if (c == 0xF0) lo = 0x90;      /* overlong */
        if (c == 0xF4) hi = 0x8F;      /* past U+10FFFF */
    } else {
        return 0;
    }
    if (n < len || s[1] < lo || s[1] > hi) return 0;
    for (size_t i = 2; i < len; i++)
        if (s[i] < 0x80 || s[i] > 0xBF) return 0;
    return len;
}

size_t pi0_text_escape(char *dst, size_t cap, const char *src, size_t n, int printable) {
    if (!cap) return 0;
    const unsigned char *s = (const unsigned char *)src;
    size_t k = 0, i = 0;
    while (i < n) {
        char piece[8];
        size_t len = utf8_seq(s + i, n - i), plen;
        const unsigned c = s[i];
        const int control = c < 0x20 || c == 0x7F || (c == 0xC2 && len == 2 && s[i + 1] < 0xA0);
        if (len && !(printable && (control || c == '\\'))) {
            memcpy(piece, s + i, len);
            plen = len;
        } else if (len && c == '\\') {
            memcpy(piece, "\\\\", 2);
            plen = 2;
        } else { /* one byte; the bytes after it are looked at anew */
            len = 1;
            plen = (size_t)snprintf(piece, sizeof piece, "\\x%02x", c);
        }
        /* room for this piece, and for "..." if more follows */
        const size_t tail = i + len < n ? 3 : 0;
        if (k + plen + tail + 1 > cap) {
            if (k + 4 <= cap) { memcpy(dst + k, "...", 3); k += 3; }
            break;
        }
        memcpy(dst + k, piece, plen);
        k += plen;
        i += len;
    }
    dst[k] = 0;
    return k;
}

const char *pi0_show(char *buf, const char *s) {
    if (!s) s = "(null)";
    pi0_text_escape(buf, PI0_SHOW_CAP, s, strlen(s), 1);
    return buf;
}

pi0_status pi0_fail(pi0_err *e, pi0_status st, const char *fmt, ...) {
    if (e) {
        va_list ap;
        va_start(ap, fmt);
        const int n = vsnprintf(e->msg, sizeof e->msg, fmt, ap);
        va_end(ap);
        /* cut short: drop a character the cut split, so that the message stays UTF-8 */
        if (n >= (int)sizeof e->msg) {
            size_t k = sizeof e->msg - 1;
            size_t start = k;
            while (start > 0 && k - start < 4 && ((unsigned char)e->msg[start - 1] & 0xC0) == 0x80) start--;
            const unsigned char *lead = start > 0 ? (const unsigned char *)e->msg + start - 1 : NULL;
            if (lead && *lead >= 0xC0 && !utf8_seq(lead, k - start + 1)) e->msg[start - 1] = 0;
        }
    }
    return st;
}

const char *pi0_status_str(pi0_status s) {
    switch (s) {
    case PI0_OK: return "ok";
    case PI0_ERR_ARG: return "invalid argument";
    case PI0_ERR_IO: return "i/o error";
    case PI0_ERR_FORMAT: return "malformed file";
    case PI0_ERR_CONFIG: return "bad config";
    case PI0_ERR_TENSOR: return "bad tensor";
    case PI0_ERR_INPUT: return "bad input";
    case PI0_ERR_NOMEM: return "out of memory";
    case PI0_ERR_UNSUPPORTED: return "unsupported";
    case PI0_ERR_DEVICE: return "device error";
    }
    return "unknown status";
}

static const struct { const char *name; size_t size; } k_dtypes[DT_COUNT] = {
    [DT_F32] = {"F32", 4}, [DT_BF16] = {"BF16", 2}, [DT_F16] = {"F16", 2},
    [DT_F64] = {"F64", 8}, [DT_I64] = {"I64", 8},   [DT_I32] = {"I32", 4},
    [DT_I16] = {"I16", 2}, [DT_I8] = {"I8", 1},     [DT_U8] = {"U8", 1},
    [DT_BOOL] = {"BOOL", 1},
};

const char *dtype_name(pi0_dtype t) { return t < DT_COUNT ? k_dtypes[t].name : "?"; }
size_t dtype_size(pi0_dtype t) { return t < DT_COUNT ? k_dtypes[t].size : 0; }

int dtype_from_name(const char *s, pi0_dtype *out) {
    for (int i = 0; i < DT_COUNT; i++)
        if (strcmp(s, k_dtypes[i].name) == 0) { *out = (pi0_dtype)i; return 1; }
    return 0;
}

float f16_to_f32(uint16_t h) {
    uint32_t sign = (uint32_t)(h >> 15) << 31, exp = (h >> 10) & 0x1f, man = h & 0x3ff, u;
    if (exp == 0) {
        if (man == 0) {
            u = sign;
        } else { /* subnormal: renormalize */
            int e = -1;
            do { man <<= 1; e++; } while (!(man & 0x400));
            u = sign | (uint32_t)(127 - 15 - e) << 23 | (man & 0x3ff) << 13;
        }
    } else if (exp == 31) {
        u = sign | 0x7f800000u | man << 13;
    } else {
        u = sign | (exp + 127 - 15) << 23 | man << 13;
    }
    float f;
    memcpy(&f, &u, 4);
    return f;
}

void convert_to_f32(float *dst, const void *src, pi0_dtype t, size_t n) {
    const unsigned char *p = src;
    switch (t) {
    case DT_F32: memcpy(dst, src, n * 4); break;
    case DT_BF16:
        for (size_t i = 0; i < n; i++) { uint16_t h; memcpy(&h, p + 2 * i, 2); dst[i] = bf16_to_f32(h); }
        break;
    case DT_F16:
        for (size_t i = 0; i < n; i++) { uint16_t h; memcpy(&h, p + 2 * i, 2); dst[i] = f16_to_f32(h); }
        break;
    case DT_F64:
        for (size_t i = 0; i < n; i++) { double d; memcpy(&d, p + 8 * i, 8); dst[i] = (float)d; }
        break;
    default:
        for (size_t i = 0; i < n; i++) dst[i] = 0.0f; /* callers check dtypes first */
    }
}

/* splitmix64 expands the seed; xoshiro256** (Blackman & Vigna) generates. Written here
 * because the exact sequence is part of the documented API (pi0_gaussian). */
static uint64_t splitmix64(uint64_t *x) {
    uint64_t z = (*x += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

void rng_seed(pi0_rng *r, uint64_t seed) {
    for (int i = 0; i < 4; i++) r->s[i] = splitmix64(&seed);
}

static inline uint64_t rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }

uint64_t rng_next(pi0_rng *r) {
    uint64_t *s = r->s, result = rotl(s[1] * 5, 7) * 9, t = s[1] << 17;
    s[2] ^= s[0]; s[3] ^= s[1]; s[1] ^= s[2]; s[0] ^= s[3];
    s[2] ^= t; s[3] = rotl(s[3], 45);
    return result;
}

double rng_uniform(pi0_rng *r) { return ((rng_next(r) >> 11) + 1) * 0x1.0p-53; }

void rng_gaussian(pi0_rng *r, float *out, size_t n) {
    for (size_t i = 0; i < n; i += 2) {
        double u1 = rng_uniform(r), u2 = rng_uniform(r);
        double rad = sqrt(-2.0 * log(u1)), th = 2.0 * M_PI * u2;
        out[i] = (float)(rad * cos(th));
        if (i + 1 < n) out[i + 1] = (float)(rad * sin(th));
    }
}

void pi0_gaussian(uint64_t seed, float *out, size_t n) {
    pi0_rng r;
    rng_seed(&r, seed);
    rng_gaussian(&r, out, n);
}

double now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

pi0_status read_file(const char *path, size_t max_bytes, char **out, size_t *len, pi0_err *e) {
    *out = NULL;
    FILE *fp = fopen(path, "rb");
    RETURN_ERR_IF(!fp, e, PI0_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    long size = fseek(fp, 0, SEEK_END) == 0 ? ftell(fp) : -1;
    if (size < 0 || (size_t)size > max_bytes) {
        fclose(fp);
        return pi0_fail(e, size < 0 ? PI0_ERR_IO : PI0_ERR_FORMAT, size < 0 ? "%s: cannot read" : "%s: larger than %zu bytes",
                        path, max_bytes);
    }
    rewind(fp);
    char *buf = malloc((size_t)size + 1);
    int ok = buf && fread(buf, 1, (size_t)size, fp) == (size_t)size;
    fclose(fp);
    if (!ok) {
        free(buf);
        return pi0_fail(e, buf ? PI0_ERR_IO : PI0_ERR_NOMEM, "%s: cannot read", path);
    }
    buf[size] = 0;
    *out = buf;
    if (len) *len = (size_t)size;
    return PI0_OK;
}
