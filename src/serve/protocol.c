/* protocol.c — see protocol.h. msgpack through msgpack-c (Debian libmsgpack-dev). */
#include "protocol.h"

#include <math.h>
#include <cjson/cJSON.h>
#include <msgpack.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../common.h"

/* ndarray bytes are read and written in the host's order, and openpi's are little-endian ('<'). */
_Static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__, "the wire format's arrays are little-endian");

/* ---------------------------------------------------------------- msgpack helpers */

static int key_is(const msgpack_object *k, const char *s) {
    size_t n = strlen(s);
    if (k->type == MSGPACK_OBJECT_STR) return k->via.str.size == n && !memcmp(k->via.str.ptr, s, n);
    if (k->type == MSGPACK_OBJECT_BIN) return k->via.bin.size == n && !memcmp(k->via.bin.ptr, s, n);
    return 0;
}

static const msgpack_object *map_get(const msgpack_object *m, const char *key) {
    if (!m || m->type != MSGPACK_OBJECT_MAP) return NULL;
    for (uint32_t i = 0; i < m->via.map.size; i++)
        if (key_is(&m->via.map.ptr[i].key, key)) return &m->via.map.ptr[i].val;
    return NULL;
}

/* A string or bytes object as (ptr, len). */
static int get_bytes(const msgpack_object *o, const char **p, size_t *n) {
    if (!o) return 0;
    if (o->type == MSGPACK_OBJECT_STR) { *p = o->via.str.ptr; *n = o->via.str.size; }
    else if (o->type == MSGPACK_OBJECT_BIN) { *p = o->via.bin.ptr; *n = o->via.bin.size; }
    else return 0;
    /* msgpack-c gives an empty string or bin a NULL pointer; memcpy / memchr on NULL are
     * undefined even for 0 bytes (an empty key or prompt, found by fuzz_protocol) */
    if (!*p) *p = "";
    return 1;
}

typedef enum { ND_U8, ND_F32, ND_F64, ND_I32, ND_I64, ND_BOOL } nd_type;

typedef struct {
    const char *data;
    size_t nbytes, numel;
    nd_type type;
    int ndim;
    int64_t shape[8];
} ndarray;

static size_t nd_size(nd_type t) {
    switch (t) {
    case ND_U8: case ND_BOOL: return 1;
    case ND_F32: case ND_I32: return 4;
    default: return 8;
    }
}

/* Decodes an openpi ndarray map; err names `key`. */
static int get_ndarray(const msgpack_object *o, const char *key, ndarray *a, char *err, size_t errlen) {
    if (!o || o->type != MSGPACK_OBJECT_MAP || !map_get(o, "__ndarray__")) {
        snprintf(err, errlen, "'%s' is not a numpy array", PI0_SHOW(key));
        return 0;
    }
    const char *dt, *data;
    size_t dtn, dn;
    const msgpack_object *shape = map_get(o, "shape");
    if (!get_bytes(map_get(o, "dtype"), &dt, &dtn) || !get_bytes(map_get(o, "data"), &data, &dn) ||
        !shape || shape->type != MSGPACK_OBJECT_ARRAY || shape->via.array.size > 8) {
        snprintf(err, errlen, "'%s': array needs dtype, data and shape", PI0_SHOW(key));
        return 0;
    }
    char d[16];
    snprintf(d, sizeof d, "%.*s", (int)(dtn < 15 ? dtn : 15), dt);
    const char *t = (d[0] == '<' || d[0] == '|' || d[0] == '=') ? d + 1 : d;
    if (!strcmp(t, "u1")) a->type = ND_U8;
    else if (!strcmp(t, "b1")) a->type = ND_BOOL;
    else if (!strcmp(t, "f4")) a->type = ND_F32;
    else if (!strcmp(t, "f8")) a->type = ND_F64;
    else if (!strcmp(t, "i4")) a->type = ND_I32;
    else if (!strcmp(t, "i8")) a->type = ND_I64;
    else {
        snprintf(err, errlen, "'%s': unsupported dtype '%s'", PI0_SHOW(key), PI0_SHOW(d));
        return 0;
    }
    a->ndim = (int)shape->via.array.size;
    for (int i = 0; i < a->ndim; i++) {
        const msgpack_object *s = &shape->via.array.ptr[i];
        if (s->type != MSGPACK_OBJECT_POSITIVE_INTEGER || s->via.u64 > (1u << 30)) {
            snprintf(err, errlen, "'%s': bad shape (dimension %d is not an integer in [0, 2^30])", PI0_SHOW(key), i);
            return 0;
        }
        a->shape[i] = (int64_t)s->via.u64;
    }
    /* The element count and byte size are checked products: a shape such as [2^30, 2^30, 2]
     * must not wrap around to match a short data field. */
    size_t nbytes;
    if (!pi0_shape_numel(a->shape, a->ndim, &a->numel) || !pi0_mul_size(a->numel, nd_size(a->type), &nbytes)) {
        char dims[160] = "";
        for (int i = 0, k = 0; i < a->ndim && k < (int)sizeof dims; i++)
            k += snprintf(dims + k, sizeof dims - k, "%s%lld", i ? ", " : "", (long long)a->shape[i]);
        snprintf(err, errlen, "'%s': shape [%s] of %s has more elements than memory can hold", PI0_SHOW(key), dims,
                 PI0_SHOW(d));
        return 0;
    }
    if (nbytes != dn) {
        snprintf(err, errlen, "'%s': %zu data bytes for shape of %zu %s elements", PI0_SHOW(key), dn, a->numel,
                 PI0_SHOW(d));
        return 0;
    }
    a->data = data;
    a->nbytes = dn;
    return 1;
}

static double nd_get(const ndarray *a, size_t i) {
    const char *p = a->data + i * nd_size(a->type);
    switch (a->type) {
    case ND_U8: case ND_BOOL: return (unsigned char)*p;
    case ND_F32: { float v; memcpy(&v, p, 4); return v; }
    case ND_F64: { double v; memcpy(&v, p, 8); return v; }
    case ND_I32: { int32_t v; memcpy(&v, p, 4); return v; }
    default: { int64_t v; memcpy(&v, p, 8); return (double)v; }
    }
}

/* Appends the numeric values of `o` (ndarray, numpy scalar, list or number) to out. */
static int get_numbers(const msgpack_object *o, const char *key, double *out, int cap, int *n, char *err,
                       size_t errlen) {
    if (!o) { snprintf(err, errlen, "missing key '%s'", PI0_SHOW(key)); return 0; }
    if (o->type == MSGPACK_OBJECT_MAP && map_get(o, "__npgeneric__")) o = map_get(o, "data");
    if (o && (o->type == MSGPACK_OBJECT_FLOAT64 || o->type == MSGPACK_OBJECT_FLOAT32 ||
              o->type == MSGPACK_OBJECT_POSITIVE_INTEGER || o->type == MSGPACK_OBJECT_NEGATIVE_INTEGER)) {
        if (*n >= cap) { snprintf(err, errlen, "'%s': too many values", PI0_SHOW(key)); return 0; }
        out[(*n)++] = o->type == MSGPACK_OBJECT_POSITIVE_INTEGER ? (double)o->via.u64
                    : o->type == MSGPACK_OBJECT_NEGATIVE_INTEGER ? (double)o->via.i64 : o->via.f64;
        return 1;
    }
    if (o && o->type == MSGPACK_OBJECT_ARRAY) {
        for (uint32_t i = 0; i < o->via.array.size; i++)
            if (!get_numbers(&o->via.array.ptr[i], key, out, cap, n, err, errlen)) return 0;
        return 1;
    }
    ndarray a;
    if (!get_ndarray(o, key, &a, err, errlen)) return 0;
    if (a.type == ND_U8 || a.type == ND_BOOL) { snprintf(err, errlen, "'%s': expected numbers, got bytes", PI0_SHOW(key)); return 0; }
    if (a.numel > (size_t)(cap - *n)) { snprintf(err, errlen, "'%s': %zu values, at most %d", PI0_SHOW(key), a.numel, cap - *n); return 0; }
    for (size_t i = 0; i < a.numel; i++) out[(*n)++] = nd_get(&a, i);
    return 1;
}

/* A camera image: uint8 HWC or CHW (1, 3 or 4 channels), or HW gray; float images in [0, 1]
 * are converted by the policy as openpi's _parse_image does. */
static pi0_status put_image(pi0_policy *p, const char *key, const msgpack_object *v, char *err, size_t errlen) {
    ndarray a;
    if (!get_ndarray(v, key, &a, err, errlen)) return PI0_ERR_INPUT;
    if (a.type != ND_U8 && a.type != ND_F32 && a.type != ND_F64) {
        snprintf(err, errlen, "image '%s' must be uint8 (or float in [0, 1])", PI0_SHOW(key));
        return PI0_ERR_INPUT;
    }
    int h, w, c, chw = 0;
    if (a.ndim == 2) { h = (int)a.shape[0]; w = (int)a.shape[1]; c = 1; }
    else if (a.ndim == 3 && (a.shape[2] == 1 || a.shape[2] == 3 || a.shape[2] == 4)) {
        h = (int)a.shape[0]; w = (int)a.shape[1]; c = (int)a.shape[2];
    } else if (a.ndim == 3 && (a.shape[0] == 1 || a.shape[0] == 3 || a.shape[0] == 4)) {
        c = (int)a.shape[0]; h = (int)a.shape[1]; w = (int)a.shape[2]; chw = 1;
    } else {
        snprintf(err, errlen, "image '%s': shape must be [H, W, C] or [C, H, W] with C in 1, 3, 4", PI0_SHOW(key));
        return PI0_ERR_INPUT;
    }
    pi0_status st;
    if (a.type == ND_U8) {
        st = pi0_policy_obs_image_u8(p, key, (const uint8_t *)a.data, w, h, c, chw);
    } else {
        /* The bytes sit anywhere in the frame: floats are read from an aligned copy. */
        const size_t esz = nd_size(a.type);
        void *aligned = NULL;
        const void *data = a.data;
        if ((uintptr_t)a.data % esz) {
            aligned = malloc(a.nbytes ? a.nbytes : 1);
            if (!aligned) { snprintf(err, errlen, "out of memory"); return PI0_ERR_NOMEM; }
            memcpy(aligned, a.data, a.nbytes);
            data = aligned;
        }
        st = a.type == ND_F32 ? pi0_policy_obs_image_f32(p, key, data, w, h, c, chw)
                              : pi0_policy_obs_image_f64(p, key, data, w, h, c, chw);
        free(aligned);
    }
    if (st != PI0_OK) snprintf(err, errlen, "%s", pi0_policy_error(p));
    return st;
}

/* ---------------------------------------------------------------- observation */

/* Walks the msgpack object in msg[0..len) without allocating anything and checks that it is one
 * complete object whose every declared size fits in the bytes that follow: a str/bin/ext length,
 * and a container's element count, counting each element that is still to come as at least one
 * byte. msgpack-c's msgpack_unpack_next allocates a container's element array from its declared
 * count before it reads a single element (a 5-byte map32 header declaring 2^28 entries asks for
 * 12 GiB), and its C API has no limit to set; after this walk, what it allocates is at most one
 * msgpack_object (24 bytes) per element actually present in the frame, and at most
 * SERVE_MAX_ELEMENTS of them. Iterative: the walk keeps only a count of pending elements, so no
 * nesting can exhaust a stack (msgpack-c refuses nesting deeper than 32 itself). */
int serve_check_msgpack(const char *msg, size_t len, char *err, size_t errlen) {
    const unsigned char *p = (const unsigned char *)msg;
    if (len == 0) { snprintf(err, errlen, "empty message (expected one msgpack map)"); return 0; }
    size_t i = 0, pending = 1, elements = 0;
    while (pending > 0) {
        if (i >= len) {
            snprintf(err, errlen, "the message ends inside a msgpack object (%zu elements missing; truncated?)", pending);
            return 0;
        }
        pending--;
        if (++elements > SERVE_MAX_ELEMENTS) {
            snprintf(err, errlen, "the message holds more than %d msgpack elements", SERVE_MAX_ELEMENTS);
            return 0;
        }
        const unsigned c = p[i++];
        int len_bytes = 0, count_bytes = 0, pairs = 0;
        uint64_t skip = 0, count = 0;
        const char *what = "";
        if (c <= 0x7f || c >= 0xe0 || c == 0xc0 || c == 0xc2 || c == 0xc3) {
            /* fixint, nil, bool: no payload */
        } else if (c <= 0x8f) { count = c & 0x0f; pairs = 1; what = "map";
        } else if (c <= 0x9f) { count = c & 0x0f; what = "array";
        } else if (c <= 0xbf) { skip = c & 0x1f;
        } else if (c == 0xc1) {
            snprintf(err, errlen, "byte 0x%02x at offset %zu is not valid msgpack", c, i - 1);
            return 0;
        } else if (c <= 0xc6) { len_bytes = 1 << (c - 0xc4);                 /* bin 8/16/32 */
        } else if (c <= 0xc9) { len_bytes = 1 << (c - 0xc7); skip = 1;       /* ext 8/16/32 + type */
        } else if (c == 0xca) { skip = 4;
        } else if (c == 0xcb) { skip = 8;
        } else if (c <= 0xcf) { skip = 1u << (c - 0xcc);                     /* uint 8..64 */
        } else if (c <= 0xd3) { skip = 1u << (c - 0xd0);                     /* int 8..64 */
        } else if (c <= 0xd8) { skip = 1 + (1u << (c - 0xd4));               /* fixext 1..16 */
        } else if (c <= 0xdb) { len_bytes = 1 << (c - 0xd9);                 /* str 8/16/32 */
        } else if (c <= 0xdd) { count_bytes = c == 0xdc ? 2 : 4; what = "array";
        } else {                count_bytes = c == 0xde ? 2 : 4; what = "map"; pairs = 1; }
        const int field = len_bytes + count_bytes;
        if ((size_t)field > len - i) {
            snprintf(err, errlen, "the message ends inside a msgpack header at offset %zu (truncated?)", i - 1);
            return 0;
        }
        uint64_t v = 0;
        for (int k = 0; k < field; k++) v = v << 8 | p[i + k];
        i += field;
        if (len_bytes) skip += v;
        if (count_bytes) count = v;
        if (skip > len - i) {
            snprintf(err, errlen, "a msgpack value at offset %zu declares %llu bytes but only %zu follow", i - 1 - field,
                     (unsigned long long)skip, len - i);
            return 0;
        }
        i += (size_t)skip;
        const uint64_t items = pairs ? 2 * count : count;
        if (items > len - i || pending + items > len - i) {
            snprintf(err, errlen, "a msgpack %s declares %llu %s but only %zu bytes follow", what, (unsigned long long)count,
                     pairs ? "entries" : "elements", len - i);
            return 0;
        }
        pending += (size_t)items;
    }
    if (i != len) {
        snprintf(err, errlen, "%zu trailing bytes after the msgpack object (expected exactly one object)", len - i);
        return 0;
    }
    return 1;
}

#define SERVE_MAX_KEY 256  /* a flattened key ("images/cam_high") longer than this is refused */
#define SERVE_MAX_DEPTH 8

static int is_array_map(const msgpack_object *o) {
    return o->type == MSGPACK_OBJECT_MAP && (map_get(o, "__ndarray__") || map_get(o, "__npgeneric__"));
}

/* One leaf the config reads, by what the policy says it is. */
static pi0_status put_leaf(pi0_policy *p, const char *key, int kind, const msgpack_object *v, char *err, size_t errlen) {
    if (kind == PI0_KEY_IMAGE) return put_image(p, key, v, err, errlen);
    if (kind == PI0_KEY_NUMBERS) {
        double *vals = malloc(SERVE_MAX_STATE * sizeof *vals);
        if (!vals) { snprintf(err, errlen, "out of memory"); return PI0_ERR_NOMEM; }
        int n = 0;
        pi0_status st = PI0_ERR_INPUT;
        if (get_numbers(v, key, vals, SERVE_MAX_STATE, &n, err, errlen)) {
            st = pi0_policy_obs_numbers(p, key, vals, n);
            if (st != PI0_OK) snprintf(err, errlen, "%s", pi0_policy_error(p));
        }
        free(vals);
        return st;
    }
    /* the prompt: a string, bytes, or a numpy string scalar */
    if (v->type == MSGPACK_OBJECT_MAP && map_get(v, "__npgeneric__")) v = map_get(v, "data");
    const char *s;
    size_t n;
    if (!get_bytes(v, &s, &n)) {
        snprintf(err, errlen, "'%s' must be a string", PI0_SHOW(key));
        return PI0_ERR_INPUT;
    }
    char *text = malloc(n + 1);
    if (!text) { snprintf(err, errlen, "out of memory"); return PI0_ERR_NOMEM; }
    memcpy(text, s, n);
    text[n] = 0;
    pi0_status st = pi0_policy_obs_text(p, key, text);
    if (st != PI0_OK) snprintf(err, errlen, "%s", pi0_policy_error(p));
    free(text);
    return st;
}

/* An integer field of the "rtc" map (a number with an integral value in [lo, hi]). */
static int rtc_int(const msgpack_object *rtc, const char *key, int lo, int hi, int *out, char *err, size_t errlen) {
    const msgpack_object *o = map_get(rtc, key);
    if (!o) return 1;
    double vals[1] = {0};
    int n = 0;
    const int ok = get_numbers(o, key, vals, 1, &n, err, errlen) && n == 1;
    const double v = vals[0];
    if (!ok || v != floor(v) || v < lo || v > hi) {
        snprintf(err, errlen, "'rtc/%s' must be an integer in [%d, %d]", key, lo, hi);
        return 0;
    }
    *out = (int)v;
    return 1;
}

/* The "rtc" map of a request into r (lerobot's RTC request; see protocol.h). */
static pi0_status decode_rtc(const msgpack_object *o, serve_rtc *r, char *err, size_t errlen) {
    r->present = 1;
    r->req = pi0_policy_rtc_default();
    if (o->type != MSGPACK_OBJECT_MAP) {
        snprintf(err, errlen, "'rtc' must be a map {executed, inference_delay, ...}");
        return PI0_ERR_INPUT;
    }
    static const char *known[] = {"executed", "inference_delay", "execution_horizon", "schedule",
                                  "max_guidance_weight", "jacobian"};
    for (uint32_t i = 0; i < o->via.map.size; i++) {
        int ok = 0;
        for (size_t k = 0; k < sizeof known / sizeof *known; k++) ok |= key_is(&o->via.map.ptr[i].key, known[k]);
        if (!ok) {
            const char *k;
            size_t kn;
            if (!get_bytes(&o->via.map.ptr[i].key, &k, &kn)) k = "?", kn = 1;
            snprintf(err, errlen, "'rtc/%.*s' is unknown (rtc takes executed, inference_delay, execution_horizon, "
                     "schedule, max_guidance_weight, jacobian)", (int)(kn < 64 ? kn : 64), k);
            return PI0_ERR_INPUT;
        }
    }
    if (!map_get(o, "executed")) {
        snprintf(err, errlen, "'rtc/executed' is missing (rows of the last chunk executed since it was sent)");
        return PI0_ERR_INPUT;
    }
    /* "inference_delay": an integer, or "auto" (the server estimates it; see serve.c) */
    const msgpack_object *dl = map_get(o, "inference_delay");
    const char *dp;
    size_t dn;
    r->delay = !dl ? SERVE_DELAY_ABSENT : get_bytes(dl, &dp, &dn) && dn == 4 && !memcmp(dp, "auto", 4)
                                              ? SERVE_DELAY_AUTO : SERVE_DELAY_GIVEN;
    if (!rtc_int(o, "executed", -1, 1 << 20, &r->req.executed, err, errlen)) return PI0_ERR_INPUT;
    if (r->delay == SERVE_DELAY_GIVEN && !rtc_int(o, "inference_delay", 0, 1 << 20, &r->req.inference_delay, err, errlen)) {
        snprintf(err, errlen, "'rtc/inference_delay' must be an integer in [0, %d] or \"auto\"", 1 << 20);
        return PI0_ERR_INPUT;
    }
    if (!rtc_int(o, "execution_horizon", 1, 1 << 20, &r->req.execution_horizon, err, errlen)) return PI0_ERR_INPUT;
    const msgpack_object *sched = map_get(o, "schedule");
    if (sched) {
        const char *sp;
        size_t sn;
        char name[16] = "";
        if (get_bytes(sched, &sp, &sn) && sn < sizeof name) memcpy(name, sp, sn), name[sn] = 0;
        r->req.schedule = pi0_rtc_schedule_from_name(name);
        if (r->req.schedule < 0) {
            snprintf(err, errlen, "'rtc/schedule' must be one of \"ZEROS\", \"ONES\", \"LINEAR\", \"EXP\"");
            return PI0_ERR_INPUT;
        }
    }
    const msgpack_object *w = map_get(o, "max_guidance_weight");
    if (w) {
        double v[1];
        int n = 0;
        if (!get_numbers(w, "rtc/max_guidance_weight", v, 1, &n, err, errlen) || n != 1 || !(v[0] > 0) ||
            !(v[0] < 3.0e38)) {
            snprintf(err, errlen, "'rtc/max_guidance_weight' must be a positive number");
            return PI0_ERR_INPUT;
        }
        r->req.max_guidance_weight = (float)v[0];
    }
    const msgpack_object *jac = map_get(o, "jacobian");
    if (jac) {
        const char *jp;
        size_t jn;
        char name[16] = "";
        if (get_bytes(jac, &jp, &jn) && jn < sizeof name && !memchr(jp, 0, jn)) memcpy(name, jp, jn), name[jn] = 0;
        r->req.jacobian = pi0_rtc_jacobian_from_name(name);
        if (r->req.jacobian < 0) {
            snprintf(err, errlen, "'rtc/jacobian' must be \"lerobot\" or \"exact\"");
            return PI0_ERR_INPUT;
        }
    }
    return PI0_OK;
}

/* Every entry of map m whose flattened key ('/'-joined, as openpi's flatten_dict) the config
 * reads; maps that are not numpy arrays are walked into. */
static pi0_status decode_map(pi0_policy *p, const msgpack_object *m, char *path, size_t plen, int depth,
                             serve_rtc *rtc, char *err, size_t errlen) {
    for (uint32_t i = 0; i < m->via.map.size; i++) {
        const char *k;
        size_t kn;
        if (!get_bytes(&m->via.map.ptr[i].key, &k, &kn)) continue; /* a non-string key is no input */
        if (plen + 1 + kn > SERVE_MAX_KEY) {
            char head[64];
            pi0_text_escape(head, sizeof head, k, kn < 48 ? kn : 48, 1);
            snprintf(err, errlen, "a key of more than %d bytes ('%s%s%s...'): no config reads such a key",
                     SERVE_MAX_KEY, PI0_SHOW(path), plen ? "/" : "", head);
            return PI0_ERR_INPUT;
        }
        size_t len = plen;
        if (len) path[len++] = '/';
        memcpy(path + len, k, kn);
        len += kn;
        path[len] = 0;
        if (memchr(k, 0, kn)) { /* a NUL inside a key: no config reads such a key */
            path[plen] = 0;
            continue;
        }
        const msgpack_object *v = &m->via.map.ptr[i].val;
        if (rtc && depth == 0 && !strcmp(path, "rtc")) {
            path[plen] = 0;
            FORWARD_ERR(decode_rtc(v, rtc, err, errlen));
            continue;
        }
        const int kind = pi0_policy_key_kind(p, path);
        pi0_status st = PI0_OK;
        if (kind == PI0_KEY_REFUSED) {
            snprintf(err, errlen, "%s", pi0_policy_error(p));
            st = PI0_ERR_INPUT;
        } else if (kind != PI0_KEY_IGNORED) {
            st = put_leaf(p, path, kind, v, err, errlen);
        } else if (v->type == MSGPACK_OBJECT_MAP && !is_array_map(v)) {
            if (depth >= SERVE_MAX_DEPTH) {
                snprintf(err, errlen, "'%s': maps nested deeper than %d", PI0_SHOW(path), SERVE_MAX_DEPTH);
                st = PI0_ERR_INPUT;
            } else {
                st = decode_map(p, v, path, len, depth + 1, NULL, err, errlen);
            }
        }
        path[plen] = 0;
        if (st != PI0_OK) return st;
    }
    return PI0_OK;
}

pi0_status serve_decode_observation(pi0_policy *p, const char *msg, size_t len, char *err, size_t errlen) {
    return serve_decode_request(p, msg, len, NULL, err, errlen);
}

pi0_status serve_decode_request(pi0_policy *p, const char *msg, size_t len, serve_rtc *rtc, char *err,
                                size_t errlen) {
    char why[256];
    if (rtc) memset(rtc, 0, sizeof *rtc);
    err[0] = 0;
    pi0_policy_obs_clear(p);
    if (!serve_check_msgpack(msg, len, why, sizeof why)) {
        snprintf(err, errlen, "the message is not one valid msgpack object: %s", why);
        return PI0_ERR_INPUT;
    }
    msgpack_unpacked u;
    msgpack_unpacked_init(&u);
    size_t off = 0;
    pi0_status st = PI0_ERR_INPUT;
    if (msgpack_unpack_next(&u, msg, len, &off) != MSGPACK_UNPACK_SUCCESS || off != len) {
        snprintf(err, errlen, "the message is not one valid msgpack object");
    } else if (u.data.type != MSGPACK_OBJECT_MAP) {
        snprintf(err, errlen, "the observation must be a msgpack map");
    } else {
        char path[SERVE_MAX_KEY + 2];
        path[0] = 0;
        st = decode_map(p, &u.data, path, 0, 0, rtc, err, errlen);
    }
    if (st != PI0_OK) pi0_policy_obs_clear(p);
    msgpack_unpacked_destroy(&u);
    return st;
}

/* ---------------------------------------------------------------- replies */

static int buf_write(void *data, const char *p, size_t n) {
    serve_buf *b = data;
    if (b->size + n > b->alloc) {
        size_t a = b->alloc ? b->alloc : 1024;
        while (a < b->size + n) a *= 2;
        char *nd = realloc(b->data, a);
        if (!nd) return -1;
        b->data = nd;
        b->alloc = a;
    }
    memcpy(b->data + b->size, p, n);
    b->size += n;
    return 0;
}

void serve_buf_free(serve_buf *b) {
    free(b->data);
    memset(b, 0, sizeof *b);
}

static void pack_str(msgpack_packer *pk, const char *s) {
    msgpack_pack_str(pk, strlen(s));
    msgpack_pack_str_body(pk, s, strlen(s));
}

/* numpy's packer writes the ndarray keys as bytes: the Python client looks them up as b"...". */
static void pack_bin_key(msgpack_packer *pk, const char *s) {
    msgpack_pack_bin(pk, strlen(s));
    msgpack_pack_bin_body(pk, s, strlen(s));
}

int serve_encode_reply(serve_buf *b, const double *actions, int rows, int stride, int dims, double infer_ms,
                       double prev_total_ms, double policy_ms) {
    return serve_encode_reply_rtc(b, actions, rows, stride, dims, infer_ms, prev_total_ms, policy_ms, NULL);
}

int serve_encode_reply_rtc(serve_buf *b, const double *actions, int rows, int stride, int dims, double infer_ms,
                           double prev_total_ms, double policy_ms, const serve_rtc_estimate *est) {
    msgpack_packer pk;
    b->size = 0;
    msgpack_packer_init(&pk, b, buf_write);
    msgpack_pack_map(&pk, est ? 4 : 3);
    pack_str(&pk, "actions");
    msgpack_pack_map(&pk, 4);
    pack_bin_key(&pk, "__ndarray__");
    msgpack_pack_true(&pk);
    pack_bin_key(&pk, "data");
    msgpack_pack_bin(&pk, (size_t)rows * dims * 8); /* little-endian doubles: x86-64 and aarch64 hosts */
    for (int r = 0; r < rows; r++) msgpack_pack_bin_body(&pk, actions + (size_t)r * stride, (size_t)dims * 8);
    pack_bin_key(&pk, "dtype");
    pack_str(&pk, "<f8");
    pack_bin_key(&pk, "shape");
    msgpack_pack_array(&pk, 2);
    msgpack_pack_int(&pk, rows);
    msgpack_pack_int(&pk, dims);
    pack_str(&pk, "server_timing");
    msgpack_pack_map(&pk, prev_total_ms >= 0 ? 2 : 1);
    pack_str(&pk, "infer_ms");
    msgpack_pack_double(&pk, infer_ms);
    if (prev_total_ms >= 0) {
        pack_str(&pk, "prev_total_ms");
        msgpack_pack_double(&pk, prev_total_ms);
    }
    pack_str(&pk, "policy_timing");
    msgpack_pack_map(&pk, 1);
    pack_str(&pk, "infer_ms");
    msgpack_pack_double(&pk, policy_ms);
    if (est) {
        pack_str(&pk, "rtc");
        msgpack_pack_map(&pk, 4);
        pack_str(&pk, "inference_delay");
        msgpack_pack_int(&pk, est->inference_delay);
        pack_str(&pk, "estimated_delay");
        msgpack_pack_int(&pk, est->estimated_delay);
        pack_str(&pk, "latency_ms");
        msgpack_pack_double(&pk, est->latency_ms);
        pack_str(&pk, "control_hz");
        msgpack_pack_double(&pk, est->control_hz);
    }
    return b->data ? 0 : -1;
}

static void pack_json(msgpack_packer *pk, const cJSON *j) {
    if (cJSON_IsObject(j)) {
        int n = 0;
        for (const cJSON *c = j->child; c; c = c->next) n++;
        msgpack_pack_map(pk, n);
        for (const cJSON *c = j->child; c; c = c->next) {
            pack_str(pk, c->string ? c->string : "");
            pack_json(pk, c);
        }
    } else if (cJSON_IsArray(j)) {
        msgpack_pack_array(pk, cJSON_GetArraySize(j));
        for (const cJSON *c = j->child; c; c = c->next) pack_json(pk, c);
    } else if (cJSON_IsString(j)) {
        pack_str(pk, j->valuestring);
    } else if (cJSON_IsNumber(j)) { /* integral values as integers, as Python's packer writes ints */
        const double v = j->valuedouble;
        if (v == floor(v) && fabs(v) < 9.0e15) msgpack_pack_int64(pk, (int64_t)v);
        else msgpack_pack_double(pk, v);
    } else if (cJSON_IsBool(j)) {
        if (cJSON_IsTrue(j)) msgpack_pack_true(pk); else msgpack_pack_false(pk);
    } else {
        msgpack_pack_nil(pk);
    }
}

int serve_encode_json(serve_buf *b, const char *json) {
    cJSON *root = cJSON_Parse(json);
    if (!root) return -1;
    msgpack_packer pk;
    b->size = 0;
    msgpack_packer_init(&pk, b, buf_write);
    pack_json(&pk, root);
    cJSON_Delete(root);
    return b->data ? 0 : -1;
}
