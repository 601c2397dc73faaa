/* common.h — internal helpers shared by every part of libpi0: error reporting, dtypes,
 * half-precision conversion, random numbers, timing. */
#ifndef PI0_COMMON_H
#define PI0_COMMON_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "pi0.h"

/* ---- errors: a status plus a one-line message, kept by the handle ---- */
typedef struct {
    char msg[512];
} pi0_err;

/* Formats the message into e (if non-NULL) and returns `st`. */
pi0_status pi0_fail(pi0_err *e, pi0_status st, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* ---- text from outside (a request's keys, dtypes; file contents) in messages ----
 * Writes src[0..n) into dst (cap bytes, always NUL-terminated when cap > 0) as valid UTF-8:
 * well-formed UTF-8 sequences are copied, every other byte (a stray continuation byte, an
 * overlong form, a surrogate, a truncated sequence, 0xF5..0xFF) becomes the four characters
 * \xNN. printable also escapes the control characters (C0, DEL, C1) that way and a backslash as
 * \\, so that the text reads unambiguously on one line. A character that does not fit is left
 * out with everything after it and "..." marks the cut. Returns the length written. (No library
 * at hand escapes UTF-8 this way; the check follows the Unicode well-formed byte table.) */
size_t pi0_text_escape(char *dst, size_t cap, const char *src, size_t n, int printable);
/* A NUL-terminated string shown in a message: escaped as above (printable), at most about 200
 * bytes, in a buffer that lives until the end of the enclosing block. */
#define PI0_SHOW_CAP 216
const char *pi0_show(char *buf, const char *s);
#define PI0_SHOW(s) pi0_show((char[PI0_SHOW_CAP]){0}, (s))

#define RETURN_ERR_IF(cond, e, st, ...) \
    do { if (cond) return pi0_fail((e), (st), __VA_ARGS__); } while (0)
#define FORWARD_ERR(expr) \
    do { pi0_status st_ = (expr); if (st_ != PI0_OK) return st_; } while (0)

/* ---- dtypes (safetensors names) ---- */
typedef enum {
    DT_F32, DT_BF16, DT_F16, DT_F64, DT_I64, DT_I32, DT_I16, DT_I8, DT_U8, DT_BOOL, DT_COUNT
} pi0_dtype;

const char *dtype_name(pi0_dtype t);
size_t dtype_size(pi0_dtype t);
int dtype_from_name(const char *s, pi0_dtype *out); /* 1 if known */

static inline float bf16_to_f32(uint16_t h) {
    uint32_t u = (uint32_t)h << 16;
    float f;
    memcpy(&f, &u, 4);
    return f;
}
/* Round to nearest even; NaN stays NaN. */
static inline uint16_t f32_to_bf16(float f) {
    uint32_t u;
    memcpy(&u, &f, 4);
    if ((u & 0x7fffffffu) > 0x7f800000u) return (uint16_t)((u >> 16) | 0x40);
    u += 0x7fffu + ((u >> 16) & 1u);
    return (uint16_t)(u >> 16);
}
float f16_to_f32(uint16_t h);

/* Converts n elements of a float-like dtype (F32/BF16/F16/F64) to float32. */
void convert_to_f32(float *dst, const void *src, pi0_dtype t, size_t n);

/* ---- random numbers: xoshiro256** seeded by splitmix64 ---- */
typedef struct { uint64_t s[4]; } pi0_rng;
void rng_seed(pi0_rng *r, uint64_t seed);
uint64_t rng_next(pi0_rng *r);
double rng_uniform(pi0_rng *r); /* in (0, 1] */
void rng_gaussian(pi0_rng *r, float *out, size_t n);

double now_ms(void);

/* ---- checked sizes: every size computed from untrusted numbers (file headers, wire shapes,
 * image dimensions, token ids) goes through this, so that no product can wrap around ---- */
/* *out = a·b and 1 when the product fits in size_t; 0 (and *out = SIZE_MAX) when it does not. */
static inline int pi0_mul_size(size_t a, size_t b, size_t *out) {
    if (b != 0 && a > SIZE_MAX / b) {
        *out = SIZE_MAX;
        return 0;
    }
    *out = a * b;
    return 1;
}
/* *out = shape[0]·…·shape[n-1] and 1; 0 when a dimension is negative or the running product
 * overflows (a shape such as [2^40, 2^40, 0] is refused rather than read as empty). */
static inline int pi0_shape_numel(const int64_t *shape, int n, size_t *out) {
    size_t p = 1;
    for (int i = 0; i < n; i++)
        if (shape[i] < 0 || (uint64_t)shape[i] > SIZE_MAX || !pi0_mul_size(p, (size_t)shape[i], &p)) {
            *out = SIZE_MAX;
            return 0;
        }
    *out = p;
    return 1;
}

/* Reads a whole file (at most max_bytes) into a NUL-terminated malloc'd buffer. */
pi0_status read_file(const char *path, size_t max_bytes, char **out, size_t *len, pi0_err *e);

#endif
