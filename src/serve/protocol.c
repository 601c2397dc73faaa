/* protocol.c — see protocol.h. msgpack through msgpack-c (Debian libmsgpack-dev). */
#include "protocol.h"

#include <math.h>
#include <msgpack.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../common.h"

static const char *k_presets[] = {"generic", "libero", "droid", "aloha"};

int serve_preset_from_name(const char *name) {
    for (int i = 0; i < 4; i++)
        if (name && !strcmp(name, k_presets[i])) return i;
    return -1;
}

const char *serve_preset_name(serve_preset p) { return (unsigned)p < 4 ? k_presets[p] : "?"; }

int serve_preset_action_dims(serve_preset p) {
    switch (p) {
    case PRESET_LIBERO: return 7;
    case PRESET_DROID: return 8;
    case PRESET_ALOHA: return 14;
    default: return 0;
    }
}

/* ---------------------------------------------------------------- ALOHA adapt_to_pi */

static const float k_aloha_flip[14] = {1, -1, -1, 1, 1, 1, 1, 1, -1, -1, 1, 1, 1, 1};

static double unnormalize(double x, double lo, double hi) { return x * (hi - lo) + lo; }
static double normalize(double x, double lo, double hi) { return (x - lo) / (hi - lo); }

/* Aloha's linear gripper position → π's normalized angle (Interbotix horn geometry). */
static float gripper_to_angular(float v) {
    const double arm = 0.036, horn = 0.022;
    const double lin = unnormalize(v, 0.01844, 0.05800);
    double c = (horn * horn + lin * lin - arm * arm) / (2 * horn * lin);
    c = c < -1 ? -1 : c > 1 ? 1 : c;
    return (float)normalize(asin(c), 0.5476, 1.6296);
}

/* π's gripper angle → Aloha's normalized puppet gripper joint range. */
static float gripper_from_angular(float v) { return (float)normalize(v + 0.5476, -0.6213, 1.4910); }

void aloha_state_to_pi(float *state) {
    for (int i = 0; i < 14; i++) state[i] *= k_aloha_flip[i];
    state[6] = gripper_to_angular(state[6]);
    state[13] = gripper_to_angular(state[13]);
}

void aloha_actions_from_pi(float *actions, int rows, int stride) {
    for (int r = 0; r < rows; r++) {
        float *a = actions + (size_t)r * stride;
        for (int i = 0; i < 14; i++) a[i] *= k_aloha_flip[i];
        a[6] = gripper_from_angular(a[6]);
        a[13] = gripper_from_angular(a[13]);
    }
}

void serve_output_transform(const serve_config *cfg, float *actions, int rows, int stride) {
    if (cfg->preset == PRESET_ALOHA && cfg->aloha_adapt_to_pi && stride >= 14) aloha_actions_from_pi(actions, rows, stride);
}

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
    if (o->type == MSGPACK_OBJECT_STR) { *p = o->via.str.ptr; *n = o->via.str.size; return 1; }
    if (o->type == MSGPACK_OBJECT_BIN) { *p = o->via.bin.ptr; *n = o->via.bin.size; return 1; }
    return 0;
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
        snprintf(err, errlen, "'%s' is not a numpy array", key);
        return 0;
    }
    const char *dt, *data;
    size_t dtn, dn;
    const msgpack_object *shape = map_get(o, "shape");
    if (!get_bytes(map_get(o, "dtype"), &dt, &dtn) || !get_bytes(map_get(o, "data"), &data, &dn) ||
        !shape || shape->type != MSGPACK_OBJECT_ARRAY || shape->via.array.size > 8) {
        snprintf(err, errlen, "'%s': array needs dtype, data and shape", key);
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
        snprintf(err, errlen, "'%s': unsupported dtype '%s'", key, d);
        return 0;
    }
    a->ndim = (int)shape->via.array.size;
    for (int i = 0; i < a->ndim; i++) {
        const msgpack_object *s = &shape->via.array.ptr[i];
        if (s->type != MSGPACK_OBJECT_POSITIVE_INTEGER || s->via.u64 > (1u << 30)) {
            snprintf(err, errlen, "'%s': bad shape (dimension %d is not an integer in [0, 2^30])", key, i);
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
        snprintf(err, errlen, "'%s': shape [%s] of %s has more elements than memory can hold", key, dims, d);
        return 0;
    }
    if (nbytes != dn) {
        snprintf(err, errlen, "'%s': %zu data bytes for shape of %zu %s elements", key, dn, a->numel, d);
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
static int get_numbers(const msgpack_object *o, const char *key, float *out, int cap, int *n, char *err,
                       size_t errlen) {
    if (!o) { snprintf(err, errlen, "missing key '%s'", key); return 0; }
    if (o->type == MSGPACK_OBJECT_MAP && map_get(o, "__npgeneric__")) o = map_get(o, "data");
    if (o && (o->type == MSGPACK_OBJECT_FLOAT64 || o->type == MSGPACK_OBJECT_FLOAT32 ||
              o->type == MSGPACK_OBJECT_POSITIVE_INTEGER || o->type == MSGPACK_OBJECT_NEGATIVE_INTEGER)) {
        if (*n >= cap) { snprintf(err, errlen, "'%s': too many values", key); return 0; }
        out[(*n)++] = o->type == MSGPACK_OBJECT_POSITIVE_INTEGER ? (float)o->via.u64
                    : o->type == MSGPACK_OBJECT_NEGATIVE_INTEGER ? (float)o->via.i64 : (float)o->via.f64;
        return 1;
    }
    if (o && o->type == MSGPACK_OBJECT_ARRAY) {
        for (uint32_t i = 0; i < o->via.array.size; i++)
            if (!get_numbers(&o->via.array.ptr[i], key, out, cap, n, err, errlen)) return 0;
        return 1;
    }
    ndarray a;
    if (!get_ndarray(o, key, &a, err, errlen)) return 0;
    if (a.type == ND_U8 || a.type == ND_BOOL) { snprintf(err, errlen, "'%s': expected numbers, got bytes", key); return 0; }
    if (a.numel > (size_t)(cap - *n)) { snprintf(err, errlen, "'%s': %zu values, at most %d", key, a.numel, cap - *n); return 0; }
    for (size_t i = 0; i < a.numel; i++) out[(*n)++] = (float)nd_get(&a, i);
    return 1;
}

/* A camera image: uint8 HWC or CHW (1, 3 or 4 channels), or HW gray. */
static pi0_status put_image(pi0_obs *o, const char *camera, const msgpack_object *v, const char *key,
                            char *err, size_t errlen) {
    ndarray a;
    if (!get_ndarray(v, key, &a, err, errlen)) return PI0_ERR_INPUT;
    if (a.type != ND_U8 && a.type != ND_F32 && a.type != ND_F64) {
        snprintf(err, errlen, "image '%s' must be uint8 (or float in [0, 1])", key);
        return PI0_ERR_INPUT;
    }
    int h, w, c, chw = 0;
    if (a.ndim == 2) { h = (int)a.shape[0]; w = (int)a.shape[1]; c = 1; }
    else if (a.ndim == 3 && (a.shape[2] == 1 || a.shape[2] == 3 || a.shape[2] == 4)) {
        h = (int)a.shape[0]; w = (int)a.shape[1]; c = (int)a.shape[2];
    } else if (a.ndim == 3 && (a.shape[0] == 1 || a.shape[0] == 3 || a.shape[0] == 4)) {
        c = (int)a.shape[0]; h = (int)a.shape[1]; w = (int)a.shape[2]; chw = 1;
    } else {
        snprintf(err, errlen, "image '%s': shape must be [H, W, C] or [C, H, W] with C in 1, 3, 4", key);
        return PI0_ERR_INPUT;
    }
    uint8_t *conv = NULL;
    const uint8_t *px = (const uint8_t *)a.data;
    if (a.type != ND_U8) { /* openpi: (255 * image).astype(uint8) */
        conv = malloc(a.numel);
        if (!conv) { snprintf(err, errlen, "out of memory"); return PI0_ERR_NOMEM; }
        for (size_t i = 0; i < a.numel; i++) {
            double v = 255.0 * nd_get(&a, i);
            if (!isfinite(v)) { /* NaN has no uint8 value: converting it is undefined behaviour */
                snprintf(err, errlen, "image '%s': element %zu is %s, not a finite number", key, i,
                         isnan(v) ? "NaN" : "infinite");
                free(conv);
                return PI0_ERR_INPUT;
            }
            conv[i] = (uint8_t)(v <= 0 ? 0 : v >= 255 ? 255 : v);
        }
        px = conv;
    }
    pi0_status st = pi0_obs_set_image_u8(o, camera, px, w, h, c, chw);
    free(conv);
    if (st != PI0_OK) snprintf(err, errlen, "image '%s': %s", key, pi0_obs_error(o));
    return st;
}

/* ---------------------------------------------------------------- observation */

typedef struct {
    const char *key, *camera;
} cam_key;

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

pi0_status serve_decode_observation(const serve_config *cfg, const char *msg, size_t len, pi0_obs *o,
                                    char *err, size_t errlen) {
    char why[256];
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
        goto done;
    }
    const msgpack_object *root = &u.data;
    if (root->type != MSGPACK_OBJECT_MAP) {
        snprintf(err, errlen, "the observation must be a msgpack map");
        goto done;
    }
    pi0_obs_clear(o);
    /* Cameras, per preset: the observation key and the π0 camera slot it feeds. */
    static const cam_key libero[] = {{"observation/image", "base_0_rgb"},
                                     {"observation/wrist_image", "left_wrist_0_rgb"}};
    static const cam_key droid[] = {{"observation/exterior_image_1_left", "base_0_rgb"},
                                    {"observation/wrist_image_left", "left_wrist_0_rgb"}};
    static const cam_key aloha[] = {{"cam_high", "base_0_rgb"}, {"cam_left_wrist", "left_wrist_0_rgb"},
                                    {"cam_right_wrist", "right_wrist_0_rgb"}};
    static const cam_key generic[] = {{"base_0_rgb", "base_0_rgb"}, {"left_wrist_0_rgb", "left_wrist_0_rgb"},
                                      {"right_wrist_0_rgb", "right_wrist_0_rgb"}};
    const cam_key *cams = generic;
    int ncam = 3;
    const msgpack_object *images = root;
    switch (cfg->preset) {
    case PRESET_LIBERO: cams = libero; ncam = 2; break;
    case PRESET_DROID: cams = droid; ncam = 2; break;
    case PRESET_ALOHA: cams = aloha; images = map_get(root, "images"); break;
    case PRESET_GENERIC: images = map_get(root, "images"); break;
    }
    if (!images || images->type != MSGPACK_OBJECT_MAP) {
        snprintf(err, errlen, "missing key 'images' (a map of camera name to uint8 array)");
        goto done;
    }
    if (cfg->preset == PRESET_ALOHA) { /* openpi: every camera must be known; cam_high is required */
        for (uint32_t i = 0; i < images->via.map.size; i++) {
            const msgpack_object *k = &images->via.map.ptr[i].key;
            if (!key_is(k, "cam_high") && !key_is(k, "cam_low") && !key_is(k, "cam_left_wrist") &&
                !key_is(k, "cam_right_wrist")) {
                const char *kp = "";
                size_t kn = 0;
                get_bytes(k, &kp, &kn);
                snprintf(err, errlen, "unknown camera 'images/%.*s' (expected cam_high, cam_low, cam_left_wrist, "
                         "cam_right_wrist)", (int)(kn < 64 ? kn : 64), kp);
                goto done;
            }
        }
        if (!map_get(images, "cam_high")) {
            snprintf(err, errlen, "missing key 'images/cam_high'");
            goto done;
        }
    }
    int n_given = 0;
    for (int i = 0; i < ncam; i++) {
        const msgpack_object *v = map_get(images, cams[i].key);
        if (!v) continue; /* absent camera: black and masked, as openpi */
        if ((st = put_image(o, cams[i].camera, v, cams[i].key, err, errlen)) != PI0_OK) goto done;
        n_given++;
    }
    st = PI0_ERR_INPUT;
    if (!n_given) {
        snprintf(err, errlen, "no camera image found (preset %s expects '%s')", serve_preset_name(cfg->preset), cams[0].key);
        goto done;
    }
    /* State. */
    float state[4096];
    int ns = 0;
    if (cfg->preset == PRESET_DROID) {
        if (!get_numbers(map_get(root, "observation/joint_position"), "observation/joint_position", state, 4096, &ns, err, errlen) ||
            !get_numbers(map_get(root, "observation/gripper_position"), "observation/gripper_position", state, 4096, &ns, err, errlen))
            goto done;
    } else {
        const char *skey = cfg->preset == PRESET_LIBERO ? "observation/state" : "state";
        if (!get_numbers(map_get(root, skey), skey, state, 4096, &ns, err, errlen)) goto done;
    }
    if (cfg->preset == PRESET_ALOHA && cfg->aloha_adapt_to_pi) {
        if (ns != 14) {
            snprintf(err, errlen, "'state' has %d values; the aloha preset expects 14", ns);
            goto done;
        }
        aloha_state_to_pi(state); /* AlohaInputs runs before normalization */
    }
    if ((st = pi0_obs_set_state(o, state, ns, cfg->norm_stats)) != PI0_OK) {
        snprintf(err, errlen, "%s", pi0_obs_error(o));
        goto done;
    }
    /* Prompt. */
    const char *p;
    size_t pn;
    char prompt[8192];
    const msgpack_object *po = map_get(root, "prompt");
    if (po && po->type == MSGPACK_OBJECT_MAP && map_get(po, "__npgeneric__")) po = map_get(po, "data");
    if (get_bytes(po, &p, &pn)) {
        snprintf(prompt, sizeof prompt, "%.*s", (int)(pn < sizeof prompt - 1 ? pn : sizeof prompt - 1), p);
    } else if (!po && cfg->default_prompt) {
        snprintf(prompt, sizeof prompt, "%s", cfg->default_prompt);
    } else {
        st = PI0_ERR_INPUT;
        snprintf(err, errlen, po ? "'prompt' must be a string" : "missing key 'prompt' (and no --default-prompt)");
        goto done;
    }
    if ((st = pi0_obs_set_prompt(o, cfg->tokenizer, prompt)) != PI0_OK) snprintf(err, errlen, "%s", pi0_obs_error(o));
done:
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

int serve_encode_reply(serve_buf *b, const float *actions, int rows, int stride, int dims, double infer_ms,
                       double prev_total_ms, double policy_ms) {
    msgpack_packer pk;
    b->size = 0;
    msgpack_packer_init(&pk, b, buf_write);
    msgpack_pack_map(&pk, 3);
    pack_str(&pk, "actions");
    msgpack_pack_map(&pk, 4);
    pack_bin_key(&pk, "__ndarray__");
    msgpack_pack_true(&pk);
    pack_bin_key(&pk, "data");
    msgpack_pack_bin(&pk, (size_t)rows * dims * 4);
    for (int r = 0; r < rows; r++) msgpack_pack_bin_body(&pk, actions + (size_t)r * stride, (size_t)dims * 4);
    pack_bin_key(&pk, "dtype");
    pack_str(&pk, "<f4");
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
    return b->data ? 0 : -1;
}

int serve_encode_metadata(serve_buf *b, const pi0_config *c, serve_preset p, int dims, const char *backend) {
    msgpack_packer pk;
    b->size = 0;
    msgpack_packer_init(&pk, b, buf_write);
    msgpack_pack_map(&pk, 6);
    pack_str(&pk, "model");
    pack_str(&pk, "pi0");
    pack_str(&pk, "server");
    pack_str(&pk, "pi0.c");
    pack_str(&pk, "preset");
    pack_str(&pk, serve_preset_name(p));
    pack_str(&pk, "action_horizon");
    msgpack_pack_int(&pk, c->action_horizon);
    pack_str(&pk, "action_dim");
    msgpack_pack_int(&pk, dims);
    pack_str(&pk, "backend");
    pack_str(&pk, backend);
    return b->data ? 0 : -1;
}
