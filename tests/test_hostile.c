/* test_hostile — regression tests for hostile input (issue 8): each reproducer class that once
 * crashed a parser, made it allocate gigabytes or leak, must now be refused with an error that
 * names the file / key, and nothing may allocate more than a fixed multiple of the input's size.
 *
 *   test_hostile MODEL_DIR TOKENIZER_JSON TMP_DIR [section ...]
 *
 * MODEL_DIR is a small model (golden tiny-f32), TOKENIZER_JSON a tokenizer whose ids fit its
 * vocabulary (fuzz/corpus/tokenizer_json/small.json). Sections: ndarray, msgpack, nan, bound,
 * tokenizer, spm, image (default: all). Under AddressSanitizer the peak of live heap bytes during each call is
 * measured through the sanitizer's malloc hook and checked against the bound. */
#include <msgpack.h>
#include <stdint.h>

#include "../src/io/image.h"
#include "../src/serve/protocol.h"
#include "test_util.h"

/* ---------------------------------------------------------------- heap peak (ASan only) */

size_t __sanitizer_get_current_allocated_bytes(void) __attribute__((weak));
int __sanitizer_install_malloc_and_free_hooks(void (*m)(const volatile void *, size_t),
                                              void (*f)(const volatile void *)) __attribute__((weak));

static size_t g_peak, g_largest;

static void on_malloc(const volatile void *p, size_t n) {
    (void)p;
    size_t cur = __sanitizer_get_current_allocated_bytes();
    if (cur > g_peak) g_peak = cur;
    if (n > g_largest) g_largest = n;
}

static void on_free(const volatile void *p) { (void)p; }

static int g_hooked; /* the malloc hook is installed (AddressSanitizer build) */

static int have_hooks(void) { return g_hooked; }

/* Starts a measurement: returns the live bytes now. */
static size_t heap_begin(void) {
    if (!have_hooks()) return 0;
    g_peak = g_largest = 0;
    size_t now = __sanitizer_get_current_allocated_bytes();
    g_peak = now;
    return now;
}

/* Bytes the call added at its peak, or 0 without ASan. */
static size_t heap_growth(size_t base) { return have_hooks() && g_peak > base ? g_peak - base : 0; }

static size_t heap_now(void) { return have_hooks() ? __sanitizer_get_current_allocated_bytes() : 0; }

#define CHECK_HEAP(base, limit, what)                                                               \
    do {                                                                                            \
        size_t grew_ = heap_growth(base);                                                           \
        CHECK(grew_ <= (size_t)(limit), "%s: heap grew by %zu bytes (largest block %zu), bound %zu", \
              what, grew_, g_largest, (size_t)(limit));                                             \
    } while (0)

/* ---------------------------------------------------------------- msgpack helpers */

static void pack_str(msgpack_packer *pk, const char *s) {
    msgpack_pack_str(pk, strlen(s));
    msgpack_pack_str_body(pk, s, strlen(s));
}

static void pack_bin_key(msgpack_packer *pk, const char *s) {
    msgpack_pack_bin(pk, strlen(s));
    msgpack_pack_bin_body(pk, s, strlen(s));
}

/* An openpi ndarray with a 64-bit shape. */
static void pack_nd(msgpack_packer *pk, const void *data, size_t nbytes, const char *dtype, int ndim,
                    const uint64_t *shape) {
    msgpack_pack_map(pk, 4);
    pack_bin_key(pk, "__ndarray__");
    msgpack_pack_true(pk);
    pack_bin_key(pk, "data");
    msgpack_pack_bin(pk, nbytes);
    if (nbytes) msgpack_pack_bin_body(pk, data, nbytes);
    pack_bin_key(pk, "dtype");
    pack_str(pk, dtype);
    pack_bin_key(pk, "shape");
    msgpack_pack_array(pk, ndim);
    for (int i = 0; i < ndim; i++) msgpack_pack_uint64(pk, shape[i]);
}

static uint8_t g_img[8 * 8 * 3];

static void pack_image(msgpack_packer *pk) {
    const uint64_t sh[3] = {8, 8, 3};
    pack_nd(pk, g_img, sizeof g_img, "|u1", 3, sh);
}

/* A numeric field: either the hostile array (bad != NULL) or `n` good float32 values. */
typedef struct {
    const char *dtype;
    int ndim;
    uint64_t shape[8];
    size_t nbytes;
} bad_nd;

static void pack_field(msgpack_packer *pk, const bad_nd *bad, int n) {
    if (bad) {
        static const char zeros[64];
        pack_nd(pk, zeros, bad->nbytes, bad->dtype, bad->ndim, bad->shape);
        return;
    }
    float v[32];
    for (int i = 0; i < n; i++) v[i] = 0.01f * i;
    const uint64_t sh[1] = {(uint64_t)n};
    pack_nd(pk, v, n * sizeof(float), "<f4", 1, sh);
}

/* The robot layouts whose frames are decoded: pi0.c's presets of openpi's robots, as policies
 * on the tiny model (ALOHA's 14 action dims do not fit its 6: its keys are generic's). */
typedef enum { PRESET_GENERIC, PRESET_LIBERO, PRESET_DROID, PRESET_ALOHA } serve_preset;
static const char *const k_preset_names[4] = {"generic", "libero", "droid", "aloha"};
static const char *serve_preset_name(serve_preset p) { return k_preset_names[p]; }

/* An observation for `preset` whose numeric field `which` (0: state / joint_position,
 * 1: gripper_position) is the hostile array. */
static void pack_obs(msgpack_sbuffer *sb, serve_preset preset, const bad_nd *bad, int which) {
    msgpack_packer pk;
    msgpack_packer_init(&pk, sb, msgpack_sbuffer_write);
    switch (preset) {
    case PRESET_LIBERO:
        msgpack_pack_map(&pk, 3);
        pack_str(&pk, "observation/image");
        pack_image(&pk);
        pack_str(&pk, "observation/state");
        pack_field(&pk, bad, 6);
        break;
    case PRESET_DROID:
        msgpack_pack_map(&pk, 4);
        pack_str(&pk, "observation/exterior_image_1_left");
        pack_image(&pk);
        pack_str(&pk, "observation/joint_position");
        pack_field(&pk, which == 0 ? bad : NULL, 5);
        pack_str(&pk, "observation/gripper_position");
        pack_field(&pk, which == 1 ? bad : NULL, 1);
        break;
    default:
        msgpack_pack_map(&pk, 3);
        pack_str(&pk, "images");
        msgpack_pack_map(&pk, 1);
        pack_str(&pk, preset == PRESET_ALOHA ? "cam_high" : "base_0_rgb");
        pack_image(&pk);
        pack_str(&pk, "state");
        pack_field(&pk, bad, preset == PRESET_ALOHA ? 14 : 6);
        break;
    }
    pack_str(&pk, "prompt");
    pack_str(&pk, "pick up the cup");
}

static pi0_policy *g_pol[4];

static pi0_status decode(serve_preset preset, const char *msg, size_t len, char *err, size_t errlen) {
    err[0] = 0;
    return serve_decode_observation(g_pol[preset], msg, len, err, errlen);
}

/* ---------------------------------------------------------------- 1. ndarray shapes */

static void test_ndarray(void) {
    printf("ndarray shapes whose element count overflows (issue 8 #1):\n");
    char err[512];
    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    /* Good requests decode, for every preset. */
    const serve_preset presets[4] = {PRESET_LIBERO, PRESET_DROID, PRESET_ALOHA, PRESET_GENERIC};
    for (int p = 0; p < 4; p++) {
        if (presets[p] == PRESET_ALOHA) continue; /* 14 state values: more than the tiny model's 6 */
        msgpack_sbuffer_clear(&sb);
        pack_obs(&sb, presets[p], NULL, 0);
        pi0_status st = decode(presets[p], sb.data, sb.size, err, sizeof err);
        CHECK(st == PI0_OK, "preset %s: a valid observation is refused: %s", serve_preset_name(presets[p]), err);
    }
    /* The reproducer: [2^30, 2^30, 2] '<f8' with no data (numel·8 wraps to 0), and
     * variants: other dtypes, a wrap to exactly 0 with 4-byte elements, 8 dims. */
    const bad_nd bads[] = {
        {"<f8", 3, {1u << 30, 1u << 30, 2}, 0},
        {"<f4", 3, {1u << 30, 1u << 30, 4}, 0},
        {"<i8", 3, {1u << 30, 1u << 30, 2}, 0},
        {"<f8", 8, {1u << 30, 1u << 30, 1u << 30, 1u << 30, 1u << 30, 1u << 30, 1u << 30, 1u << 30}, 0},
        {"<f4", 4, {1u << 16, 1u << 16, 1u << 16, 1u << 14}, 0},
        {"<f4", 2, {1u << 30, 1u << 30}, 0},
        {"<f8", 3, {1u << 31, 1, 1}, 0},
        {"<f8", 2, {UINT64_MAX, UINT64_MAX}, 0},
    };
    const struct { serve_preset p; int which; const char *key; } fields[] = {
        {PRESET_LIBERO, 0, "observation/state"},
        {PRESET_DROID, 0, "observation/joint_position"},
        {PRESET_DROID, 1, "observation/gripper_position"},
        {PRESET_GENERIC, 0, "state"},
    };
    for (size_t f = 0; f < sizeof fields / sizeof *fields; f++)
        for (size_t b = 0; b < sizeof bads / sizeof *bads; b++) {
            msgpack_sbuffer_clear(&sb);
            pack_obs(&sb, fields[f].p, &bads[b], fields[f].which);
            size_t base = heap_begin();
            pi0_status st = decode(fields[f].p, sb.data, sb.size, err, sizeof err);
            if (b == 0) printf("  %-8s %-30s -> %s\n", serve_preset_name(fields[f].p), fields[f].key, err);
            CHECK(st == PI0_ERR_INPUT && strstr(err, fields[f].key) && strstr(err, "shape"),
                  "%s %s shape #%zu: got %d '%s'", serve_preset_name(fields[f].p), fields[f].key, b, st, err);
            CHECK_HEAP(base, 1 << 20, "overflowing ndarray shape");
        }
    /* Images: uint8 and float arrays whose shapes wrap. */
    const struct { const char *dtype; uint64_t shape[3]; } bad_img[] = {
        {"|u1", {1u << 30, 1u << 30, 1u << 30}},
        {"<f4", {1u << 30, 1u << 30, 4}},
        {"<f8", {1u << 30, 1u << 30, 1u << 2}},
        {"<f4", {4, 1u << 30, 1u << 30}},
    };
    for (size_t b = 0; b < sizeof bad_img / sizeof *bad_img; b++) {
        msgpack_sbuffer_clear(&sb);
        msgpack_packer pk;
        msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
        msgpack_pack_map(&pk, 3);
        pack_str(&pk, "observation/image");
        pack_nd(&pk, "", 0, bad_img[b].dtype, 3, bad_img[b].shape);
        pack_str(&pk, "observation/state");
        pack_field(&pk, NULL, 6);
        pack_str(&pk, "prompt");
        pack_str(&pk, "x");
        size_t base = heap_begin();
        pi0_status st = decode(PRESET_LIBERO, sb.data, sb.size, err, sizeof err);
        if (b == 1) printf("  libero   observation/image (f4)         -> %s\n", err);
        CHECK(st == PI0_ERR_INPUT && strstr(err, "observation/image"), "image shape #%zu: got %d '%s'", b, st, err);
        CHECK_HEAP(base, 1 << 20, "overflowing image shape");
    }
    msgpack_sbuffer_destroy(&sb);
}

/* ---------------------------------------------------------------- 4. msgpack element counts */

static void test_msgpack(void) {
    printf("msgpack containers declaring more elements than the frame holds (issue 8 #4):\n");
    char err[512];
    const struct { const char *label; const char *bytes; size_t len; } frames[] = {
        {"map32 of 2^28 entries", "\xdf\x10\x00\x00\x00", 5},
        {"array32 of 2^32-1", "\xdd\xff\xff\xff\xff", 5},
        {"map16 of 65535", "\xde\xff\xff", 3},
        {"array of map32", "\x91\xdf\x7f\xff\xff\xff", 6},
        {"map with array32 value", "\x81\xa1x\xdd\x01\x00\x00\x00\x01\x02", 11},
        {"str32 of 4 GiB", "\x81\xa1x\xdb\xff\xff\xff\xff", 8},
        {"bin32 past the end", "\x81\xa1x\xc6\x00\x00\x10\x00zz", 10},
        {"ext32 past the end", "\x81\xa1x\xc9\x00\x10\x00\x00\x01", 9},
        {"nested 40 deep", "\x91\x91\x91\x91\x91\x91\x91\x91\x91\x91\x91\x91\x91\x91\x91\x91\x91\x91\x91\x91"
                           "\x91\x91\x91\x91\x91\x91\x91\x91\x91\x91\x91\x91\x91\x91\x91\x91\x91\x91\x91\x91\xc0", 41},
        {"trailing bytes", "\x80\x80", 2},
        {"reserved byte 0xc1", "\x81\xa1x\xc1", 4},
    };
    for (size_t i = 0; i < sizeof frames / sizeof *frames; i++) {
        size_t base = heap_begin();
        pi0_status st = decode(PRESET_LIBERO, frames[i].bytes, frames[i].len, err, sizeof err);
        printf("  %-24s -> %s\n", frames[i].label, err);
        CHECK(st == PI0_ERR_INPUT && err[0], "%s: got %d '%s'", frames[i].label, st, err);
        /* msgpack-c allocates one object (24 bytes) per element: bounded by the frame's bytes */
        CHECK_HEAP(base, 64 * frames[i].len + (64 << 10), frames[i].label);
    }
    /* The refusal names the count and the bytes that remain. */
    decode(PRESET_LIBERO, "\xdf\x10\x00\x00\x00", 5, err, sizeof err);
    CHECK(strstr(err, "268435456") != NULL, "map32 refusal should name the declared count: '%s'", err);
    /* Empty message (an empty binary frame reaches the decoder with len 0). */
    pi0_status st = decode(PRESET_LIBERO, NULL, 0, err, sizeof err);
    printf("  %-24s -> %s\n", "empty message", err);
    CHECK(st == PI0_ERR_INPUT && strstr(err, "empty"), "empty message: got %d '%s'", st, err);
    /* Empty strings: msgpack-c gives them a NULL pointer, which memcpy / memchr must not see
     * (UBSan aborted on {"": 1} and on an empty prompt; found by fuzz_protocol). An empty key is
     * no input; an empty prompt is a prompt. */
    st = decode(PRESET_LIBERO, "\x82\xa0\x01\xa6prompt\xa0", 11, err, sizeof err);
    printf("  %-24s -> %s\n", "empty key, empty prompt", err[0] ? err : "decoded");
    CHECK(st == PI0_OK, "empty key and prompt: got %d '%s'", st, err);
}

/* ---------------------------------------------------------------- the per-frame memory bound */

/* README, "Hostile input": decoding one frame of F bytes allocates at most 60·F + 2 MiB beyond
 * the model's buffers. Measured on frames that make the decoder allocate the most per byte: a
 * gray uint8 image (3 bytes of RGB per byte), a float gray image, and msgpack made of one-byte
 * elements (msgpack-c's 24-byte objects). */
static void test_bound(void) {
    printf("heap per frame (bound 60 x frame + 2 MiB):\n");
    char err[512];
    for (int kind = 0; kind < 4; kind++) {
        msgpack_sbuffer sb;
        msgpack_sbuffer_init(&sb);
        msgpack_packer pk;
        msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
        msgpack_pack_map(&pk, kind == 3 ? 4 : 3);
        pack_str(&pk, "observation/image");
        const char *label;
        if (kind == 0) { /* gray uint8, 1024 x 512 */
            static uint8_t gray[512 * 1024];
            for (size_t i = 0; i < sizeof gray; i++) gray[i] = (uint8_t)(i * 31);
            const uint64_t sh[2] = {512, 1024};
            pack_nd(&pk, gray, sizeof gray, "|u1", 2, sh);
            label = "gray uint8 1024x512";
        } else if (kind == 1) { /* float gray, 256 x 256 */
            static float fg[256 * 256];
            for (size_t i = 0; i < 256 * 256; i++) fg[i] = (float)(i % 97) / 96.0f;
            const uint64_t sh[3] = {256, 256, 1};
            pack_nd(&pk, fg, sizeof fg, "<f4", 3, sh);
            label = "float32 gray 256x256";
        } else if (kind == 2) { /* tall strip: the resampler's widest filter */
            static uint8_t strip[32768 * 3];
            const uint64_t sh[3] = {32768, 1, 3};
            pack_nd(&pk, strip, sizeof strip, "|u1", 3, sh);
            label = "uint8 strip 1x32768";
        } else { /* 200000 one-byte msgpack elements under an extra key */
            pack_image(&pk);
            pack_str(&pk, "extra");
            msgpack_pack_array(&pk, 200000);
            for (int i = 0; i < 200000; i++) msgpack_pack_nil(&pk);
            label = "200000 msgpack nils";
        }
        pack_str(&pk, "observation/state");
        pack_field(&pk, NULL, 6);
        pack_str(&pk, "prompt");
        pack_str(&pk, "pick up the cup");
        size_t base = heap_begin();
        pi0_status st = decode(PRESET_LIBERO, sb.data, sb.size, err, sizeof err);
        size_t grew = heap_growth(base);
        printf("  %-22s frame %8zu bytes: heap +%9zu bytes (%.1f x frame)\n", label, sb.size, grew,
               (double)grew / sb.size);
        CHECK(st == PI0_OK, "%s: %s", label, err);
        CHECK_HEAP(base, 60 * sb.size + (2 << 20), label);
        msgpack_sbuffer_destroy(&sb);
    }
}

/* ---------------------------------------------------------------- 6a. NaN in float images */

static void test_nan(void) {
    printf("non-finite values in float images (issue 8 #6):\n");
    char err[512];
    const float bad_vals[3] = {NAN, INFINITY, -INFINITY};
    const char *names[3] = {"NaN", "+inf", "-inf"};
    for (int k = 0; k < 2 * 3; k++) {
        int f64 = k >= 3;
        float img32[4 * 4 * 3];
        double img64[4 * 4 * 3];
        for (int i = 0; i < 48; i++) img32[i] = 0.5f, img64[i] = 0.5;
        img32[17] = bad_vals[k % 3];
        img64[17] = bad_vals[k % 3];
        msgpack_sbuffer sb;
        msgpack_sbuffer_init(&sb);
        msgpack_packer pk;
        msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
        msgpack_pack_map(&pk, 3);
        pack_str(&pk, "observation/image");
        const uint64_t sh[3] = {4, 4, 3};
        if (f64) pack_nd(&pk, img64, sizeof img64, "<f8", 3, sh);
        else pack_nd(&pk, img32, sizeof img32, "<f4", 3, sh);
        pack_str(&pk, "observation/state");
        pack_field(&pk, NULL, 6);
        pack_str(&pk, "prompt");
        pack_str(&pk, "x");
        pi0_status st = decode(PRESET_LIBERO, sb.data, sb.size, err, sizeof err);
        printf("  %s image with %-4s -> %s\n", f64 ? "f8" : "f4", names[k % 3], err);
        CHECK(st == PI0_ERR_INPUT && strstr(err, "observation/image") && strstr(err, "finite"),
              "%s in a float image: got %d '%s'", names[k % 3], st, err);
        msgpack_sbuffer_destroy(&sb);
    }
    /* A float image in [0, 1] is still accepted. */
    float ok[4 * 4 * 3];
    for (int i = 0; i < 48; i++) ok[i] = i / 47.0f;
    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    msgpack_packer pk;
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    msgpack_pack_map(&pk, 3);
    pack_str(&pk, "observation/image");
    const uint64_t sh[3] = {4, 4, 3};
    pack_nd(&pk, ok, sizeof ok, "<f4", 3, sh);
    pack_str(&pk, "observation/state");
    pack_field(&pk, NULL, 6);
    pack_str(&pk, "prompt");
    pack_str(&pk, "x");
    CHECK(decode(PRESET_LIBERO, sb.data, sb.size, err, sizeof err) == PI0_OK, "float image in [0, 1]: %s", err);
    msgpack_sbuffer_destroy(&sb);
}

/* ---------------------------------------------------------------- 2. tokenizer.json ids */

static char g_tmp[4096];

static const char *write_tmp(const char *name, const void *data, size_t n) {
    static char path[4200];
    snprintf(path, sizeof path, "%s/%s", g_tmp, name);
    FILE *fp = fopen(path, "wb");
    if (!fp) { printf("FAIL: cannot write %s\n", path); exit(1); }
    if (n) fwrite(data, 1, n, fp);
    fclose(fp);
    return path;
}

static void expect_tok_error(const char *label, const char *name, const char *text, const char *needle) {
    const char *path = write_tmp(name, text, strlen(text));
    pi0_tokenizer *t = pi0_tokenizer_create();
    size_t base = heap_begin();
    pi0_status st = pi0_tokenizer_load(t, path);
    printf("  %-30s -> %s\n", label, pi0_tokenizer_error(t));
    CHECK(st == PI0_ERR_FORMAT && strstr(pi0_tokenizer_error(t), needle) && strstr(pi0_tokenizer_error(t), path),
          "%s: got %d '%s'", label, st, pi0_tokenizer_error(t));
    /* cJSON's tree is a few hundred bytes per value: far below 1 MiB for these files */
    CHECK_HEAP(base, 1 << 20, label);
    pi0_tokenizer_free(t);
}

static void test_tokenizer(void) {
    printf("tokenizer.json ids outside the file's vocabulary (issue 8 #2):\n");
    const char *head = "{\"model\":{\"type\":\"BPE\",\"vocab\":{\"<bos>\":0,\"a\":1,\"b\":2},\"merges\":[]},";
    char text[512];
    const char *bad_added[] = {"100000000", "99999999", "4294967296", "1e300", "-1", "2.5", "4", "\"7\""};
    for (size_t i = 0; i < sizeof bad_added / sizeof *bad_added; i++) {
        snprintf(text, sizeof text, "%s\"added_tokens\":[{\"id\":%s,\"content\":\"<x>\",\"special\":true}]}", head,
                 bad_added[i]);
        char label[64];
        snprintf(label, sizeof label, "added token id %s", bad_added[i]);
        expect_tok_error(label, "tok_added.json", text, "added_tokens");
    }
    /* The 66-byte file: one vocab id near 1e8 asked for a 2.4 GB piece table. */
    expect_tok_error("vocab id 99999999 (66 bytes)", "tok_vocab.json",
                     "{\"model\":{\"type\":\"BPE\",\"vocab\":{\"a\":99999999},\"merges\":[]}}", "vocab");
    expect_tok_error("vocab id 3 of 3 entries", "tok_vocab3.json",
                     "{\"model\":{\"type\":\"BPE\",\"vocab\":{\"a\":0,\"b\":1,\"c\":3},\"merges\":[]}}", "vocab");
    expect_tok_error("vocab id 1.5", "tok_vocab_frac.json",
                     "{\"model\":{\"type\":\"BPE\",\"vocab\":{\"a\":1.5},\"merges\":[]}}", "vocab");
    /* A sparse but in-range table still loads: an added token right after the vocabulary. */
    snprintf(text, sizeof text, "%s\"added_tokens\":[{\"id\":3,\"content\":\"<x>\",\"special\":true}]}", head);
    const char *path = write_tmp("tok_ok.json", text, strlen(text));
    pi0_tokenizer *t = pi0_tokenizer_create();
    CHECK(pi0_tokenizer_load(t, path) == PI0_OK && pi0_tokenizer_vocab_size(t) == 4, "in-range added token: %s",
          pi0_tokenizer_error(t));
    pi0_tokenizer_free(t);
}

/* ---------------------------------------------------------------- 6b. SentencePiece piece leak */

static void test_spm(void) {
    printf("malformed SentencePiece pieces (issue 8 #6):\n");
    /* TrainerSpec{model_type: BPE} + a piece {piece: "ab", <field with wire type 7>}: the
     * piece's string was allocated before the bad field was seen, and leaked. */
    const unsigned char models[][16] = {
        {0x12, 0x02, 0x18, 0x02, 0x0a, 0x05, 0x0a, 0x02, 'a', 'b', 0x0f},
        {0x12, 0x02, 0x18, 0x02, 0x0a, 0x06, 0x0a, 0x02, 'a', 'b', 0x15, 0x00},     /* fixed32 cut short */
        {0x12, 0x02, 0x18, 0x02, 0x0a, 0x05, 0x0a, 0x02, 'a', 'b', 0x18},           /* varint cut short */
        {0x12, 0x02, 0x18, 0x02, 0x0a, 0x04, 0x0a, 0x02, 'a', 'b', 0x0a, 0x01, 'c'}, /* 2nd piece: no str */
    };
    const size_t lens[] = {11, 12, 11, 13};
    for (int i = 0; i < 4; i++) {
        char name[32];
        snprintf(name, sizeof name, "bad_%d.model", i);
        const char *path = write_tmp(name, models[i], lens[i]);
        size_t before = heap_now();
        pi0_tokenizer *t = pi0_tokenizer_create();
        pi0_status st = pi0_tokenizer_load(t, path);
        printf("  model #%d -> %s\n", i, pi0_tokenizer_error(t));
        CHECK(st == PI0_ERR_FORMAT && strstr(pi0_tokenizer_error(t), path), "malformed piece #%d: got %d '%s'", i,
              st, pi0_tokenizer_error(t));
        pi0_tokenizer_free(t);
        size_t after = heap_now();
        CHECK(after <= before, "malformed piece #%d: %zu bytes still allocated after free (leak)", i, after - before);
    }
}

/* ---------------------------------------------------------------- 3. image bombs */

static void put16le(unsigned char *p, unsigned v) { p[0] = v & 255; p[1] = v >> 8; }
static void put32le(unsigned char *p, uint32_t v) { for (int i = 0; i < 4; i++) p[i] = (v >> (8 * i)) & 255; }
static void put32be(unsigned char *p, uint32_t v) { for (int i = 0; i < 4; i++) p[i] = (v >> (24 - 8 * i)) & 255; }

static void expect_image(const char *label, const char *name, const void *data, size_t n, const char *needle,
                         size_t heap_limit) {
    const char *path = write_tmp(name, data, n);
    pi0_err e = {{0}};
    rgb_image im = {0};
    size_t base = heap_begin();
    double t0 = now_ms();
    pi0_status st = image_decode_file(&im, path, &e);
    double ms = now_ms() - t0;
    printf("  %-30s %7zu bytes, %6.1f ms -> %s\n", label, n, ms, st == PI0_OK ? "decoded" : e.msg);
    if (needle)
        CHECK(st == PI0_ERR_INPUT && strstr(e.msg, needle) && strstr(e.msg, path), "%s: got %d '%s'", label, st,
              e.msg);
    else
        CHECK(st == PI0_OK, "%s: a valid image is refused: %s", label, e.msg);
    CHECK_HEAP(base, heap_limit, label);
    rgb_image_free(&im);
}

/* A PNG: IHDR (w, h, 8-bit, color type ct) + one IDAT + IEND (CRCs are not checked by decoders
 * that skip them; stb_image does not read them). */
static size_t make_png(unsigned char *out, uint32_t w, uint32_t h, int ct, const unsigned char *idat, size_t idat_len) {
    size_t k = 0;
    memcpy(out, "\x89PNG\r\n\x1a\n", 8);
    k = 8;
    put32be(out + k, 13); memcpy(out + k + 4, "IHDR", 4); k += 8;
    put32be(out + k, w); put32be(out + k + 4, h); k += 8;
    out[k++] = 8; out[k++] = (unsigned char)ct; out[k++] = 0; out[k++] = 0; out[k++] = 0;
    put32be(out + k, 0); k += 4;
    put32be(out + k, (uint32_t)idat_len); memcpy(out + k + 4, "IDAT", 4); k += 8;
    memcpy(out + k, idat, idat_len); k += idat_len;
    put32be(out + k, 0); k += 4;
    put32be(out + k, 0); memcpy(out + k + 4, "IEND", 4); k += 8;
    put32be(out + k, 0); k += 4;
    return k;
}

/* A deflate bit writer (LSB first; Huffman codes are emitted MSB first). */
typedef struct { unsigned char *p; size_t n; unsigned bit; } bits;
static void put_bits(bits *b, uint32_t v, int n) {
    for (int i = 0; i < n; i++) {
        if (b->bit == 0) b->p[b->n] = 0;
        b->p[b->n] |= ((v >> i) & 1) << b->bit;
        if (++b->bit == 8) { b->bit = 0; b->n++; }
    }
}
static void put_code(bits *b, uint32_t code, int n) { /* Huffman code, MSB first */
    for (int i = n - 1; i >= 0; i--) put_bits(b, (code >> i) & 1, 1);
}

/* zlib stream of one fixed-Huffman block: a literal 0, then `pairs` copies of 258 bytes. */
static size_t zlib_zeros(unsigned char *out, size_t pairs) {
    out[0] = 0x78; out[1] = 0x01;
    bits b = {out + 2, 0, 0};
    put_bits(&b, 1, 1); put_bits(&b, 1, 2);       /* BFINAL, BTYPE = fixed */
    put_code(&b, 0x30, 8);                        /* literal 0 */
    for (size_t i = 0; i < pairs; i++) {
        put_code(&b, 0xc5, 8);                    /* length code 285: 258 bytes */
        put_code(&b, 0, 5);                       /* distance code 0: distance 1 */
    }
    put_code(&b, 0, 7);                           /* end of block */
    size_t n = 2 + b.n + (b.bit ? 1 : 0);
    memset(out + n, 0, 4);                        /* adler32 (not checked) */
    return n + 4;
}

/* A baseline grayscale JPEG w×h whose Huffman tables give every 8×8 block a 2-bit code (DC 0,
 * EOB), followed by `scan` zero bytes of entropy-coded data. dht_extra > 0 declares that many
 * extra codes of length 16 in the AC table (more than the 256 a table can hold); the scan uses
 * the tables sos_tables (DC << 4 | AC; the file defines DC0 and AC0). */
static size_t make_jpeg(unsigned char *out, unsigned w, unsigned h, size_t scan, int dht_extra, int sos_tables) {
    size_t k = 0;
    out[k++] = 0xff; out[k++] = 0xd8;
    out[k++] = 0xff; out[k++] = 0xdb; out[k++] = 0; out[k++] = 67; out[k++] = 0;
    for (int i = 0; i < 64; i++) out[k++] = 1;
    out[k++] = 0xff; out[k++] = 0xc0; out[k++] = 0; out[k++] = 11; out[k++] = 8;
    out[k++] = h >> 8; out[k++] = h & 255; out[k++] = w >> 8; out[k++] = w & 255;
    out[k++] = 1; out[k++] = 1; out[k++] = 0x11; out[k++] = 0;
    for (int tc = 0; tc < 2; tc++) {
        int extra = tc ? dht_extra : 0;
        int counts[16] = {1};
        int rest = extra;
        for (int l = 15; l >= 8 && rest > 0; l--) { int c = rest > 255 ? 255 : rest; counts[l] = c; rest -= c; }
        int n = 1 + extra - rest, L = 2 + 1 + 16 + n;
        out[k++] = 0xff; out[k++] = 0xc4; out[k++] = L >> 8; out[k++] = L & 255;
        out[k++] = (unsigned char)(tc << 4);
        for (int i = 0; i < 16; i++) out[k++] = (unsigned char)counts[i];
        for (int i = 0; i < n; i++) out[k++] = (unsigned char)(i == 0 ? 0 : (i & 0xff) ? i & 0xff : 1);
    }
    out[k++] = 0xff; out[k++] = 0xda; out[k++] = 0; out[k++] = 8; out[k++] = 1; out[k++] = 1;
    out[k++] = (unsigned char)sos_tables;
    out[k++] = 0; out[k++] = 63; out[k++] = 0;
    memset(out + k, 0, scan);
    k += scan;
    out[k++] = 0xff; out[k++] = 0xd9;
    return k;
}

static size_t make_bmp(unsigned char *out, int w, int h, int bpp, size_t pixel_bytes) {
    memset(out, 0, 54 + pixel_bytes);
    out[0] = 'B'; out[1] = 'M';
    put32le(out + 2, (uint32_t)(54 + pixel_bytes));
    put32le(out + 10, 54);
    put32le(out + 14, 40);
    put32le(out + 18, (uint32_t)w);
    put32le(out + 22, (uint32_t)h);
    put16le(out + 26, 1);
    put16le(out + 28, (unsigned)bpp);
    return 54 + pixel_bytes;
}

static void test_image(void) {
    printf("image bombs and malformed images (issue 8 #3):\n");
    static unsigned char buf[1 << 20];
    /* Valid small images still decode. */
    size_t n = make_jpeg(buf, 16, 16, 16, 0, 0x00);
    expect_image("valid 16x16 JPEG", "ok.jpg", buf, n, NULL, 1 << 20);
    n = make_bmp(buf, 2, 2, 24, 16);
    expect_image("valid 2x2 BMP", "ok.bmp", buf, n, NULL, 1 << 20);
    /* The 30-byte TGA: RLE header declaring 20000x20000, one packet, then nothing: decoders that
     * read zeros past the end fill 1.2 GB. */
    unsigned char tga[30] = {0};
    tga[2] = 10;
    put16le(tga + 12, 20000);
    put16le(tga + 14, 20000);
    tga[16] = 24;
    tga[18] = 0xff;
    expect_image("TGA 20000x20000 in 30 bytes", "bomb.tga", tga, sizeof tga, "unsupported image format", 1 << 20);
    /* PNG declaring 30000x30000 with a tiny IDAT. */
    unsigned char z[32];
    size_t zn = zlib_zeros(z, 0);
    n = make_png(buf, 30000, 30000, 2, z, zn);
    expect_image("PNG 30000x30000 in 60 bytes", "bomb_dims.png", buf, n, "too large", 1 << 20);
    n = make_png(buf, 4000, 4000, 2, z, zn);
    expect_image("PNG 4000x4000 in 60 bytes", "bomb_ratio.png", buf, n, "too large for", 1 << 20);
    /* PNG at the side limit but far too many pixels for any camera. */
    n = make_png(buf, 32768, 32768, 0, z, zn);
    expect_image("PNG 32768x32768", "bomb_max.png", buf, n, "too large", 1 << 20);
    n = make_png(buf, 40000, 8, 0, z, zn);
    expect_image("PNG 40000x8 (side > 32768)", "bomb_side.png", buf, n, "too large", 1 << 20);
    /* Zlib bomb: a 64x64 gray PNG whose IDAT inflates to ~48 MB. */
    static unsigned char zb[400000];
    zn = zlib_zeros(zb, (48u << 20) / 258);
    n = make_png(buf, 64, 64, 0, zb, zn);
    expect_image("PNG zlib bomb (64x64, 48 MB)", "bomb_zlib.png", buf, n, "more memory", 8u << 20);
    /* JPEG declaring 30000x30000 with 8 bytes of scan data. */
    n = make_jpeg(buf, 30000, 30000, 8, 0, 0x00);
    expect_image("JPEG 30000x30000 in 160 bytes", "bomb.jpg", buf, n, "too large", 1 << 20);
    n = make_jpeg(buf, 4000, 4000, 8, 0, 0x00);
    expect_image("JPEG 4000x4000 in 160 bytes", "bomb_ratio.jpg", buf, n, "too large for", 1 << 20);
    /* JPEG whose Huffman table declares 300 codes (at most 256 symbols exist). */
    n = make_jpeg(buf, 16, 16, 16, 300, 0x00);
    expect_image("JPEG Huffman table of 301 codes", "bad_dht.jpg", buf, n, "declares 301 codes", 1 << 20);
    /* JPEG of 101 scans: each one is a pass over every block. */
    n = make_jpeg(buf, 16, 16, 16, 0, 0x00) - 2;
    for (int sc = 0; sc < 100; sc++) {
        static const unsigned char sos[12] = {0xff, 0xda, 0, 8, 1, 1, 0, 0, 63, 0, 0, 0};
        memcpy(buf + n, sos, sizeof sos);
        n += sizeof sos;
    }
    buf[n++] = 0xff;
    buf[n++] = 0xd9;
    expect_image("JPEG of 101 scans", "many_scans.jpg", buf, n, "more than 100 scans", 1 << 20);
    /* JPEG whose scan uses AC table 1, which it never defines (found by fuzz_image). */
    n = make_jpeg(buf, 16, 16, 16, 0, 0x01);
    expect_image("JPEG scan with undefined table", "undef_table.jpg", buf, n, "no DHT segment defined", 1 << 20);
    /* BMP declaring 16000x16000, 24-bit, with 16 bytes of pixels. */
    n = make_bmp(buf, 16000, 16000, 24, 16);
    expect_image("BMP 16000x16000 in 70 bytes", "bomb.bmp", buf, n, "too large", 1 << 20);
    n = make_bmp(buf, 4000, -4000, 24, 16);
    expect_image("BMP 4000x-4000 in 70 bytes", "bomb_td.bmp", buf, n, "too large for", 1 << 20);
    /* A PNG whose first IDAT chunk is empty (stb computes NULL + 0 there; found by fuzz_image),
     * then the pixels in a stored deflate block: decodes to exactly those pixels. */
    {
        static const unsigned char rows[6] = {0, 10, 20, 0, 30, 40}; /* filter byte + 2 pixels, twice */
        unsigned char idat[32] = {0x78, 0x01, 0x01, 6, 0, 0xf9, 0xff};
        memcpy(idat + 7, rows, 6);
        unsigned char *q = buf + make_png(buf, 2, 2, 0, idat, 0); /* IHDR + empty IDAT + IEND */
        q -= 12;                                                   /* drop IEND, append the data */
        put32be(q, 13 + 4); memcpy(q + 4, "IDAT", 4); memcpy(q + 8, idat, 13); memset(q + 21, 0, 4);
        put32be(q + 25, 0); put32be(q + 29, 0); memcpy(q + 33, "IEND", 4); put32be(q + 37, 0);
        n = (size_t)(q + 41 - buf);
        const char *path = write_tmp("empty_idat.png", buf, n);
        pi0_err e = {{0}};
        rgb_image im = {0};
        pi0_status st = image_decode_file(&im, path, &e);
        printf("  %-30s %7zu bytes -> %s\n", "PNG with an empty first IDAT", n, st == PI0_OK ? "decoded" : e.msg);
        CHECK(st == PI0_OK && im.width == 2 && im.height == 2 && im.rgb[3] == 20 && im.rgb[6] == 30 && im.rgb[11] == 40,
              "PNG with an empty first IDAT: %d '%s'", st, e.msg);
        rgb_image_free(&im);
    }
    /* PNM whose width overflows a 32-bit int; GIF; an empty file. */
    const char *pnm = "P6\n99999999999 1\n255\n\x01\x02\x03";
    expect_image("PNM width 99999999999", "bad.ppm", pnm, strlen(pnm), "unsupported image format", 1 << 20);
    const char *gif = "GIF89a\x10\x00\x10\x00\x00\x00\x00;";
    expect_image("GIF", "x.gif", gif, 14, "unsupported image format", 1 << 20);
}

/* ---------------------------------------------------------------- main */

static int want(int argc, char **argv, const char *name) {
    if (argc <= 4) return 1;
    for (int i = 4; i < argc; i++)
        if (!strcmp(argv[i], name)) return 1;
    return 0;
}

int main(int argc, char **argv) {
    if (argc < 4) {
        fprintf(stderr, "usage: test_hostile MODEL_DIR TOKENIZER_JSON TMP_DIR [section ...]\n");
        return 2;
    }
    setvbuf(stdout, NULL, _IOLBF, 0); /* keep the lines printed before a sanitizer report */
    snprintf(g_tmp, sizeof g_tmp, "%s", argv[3]);
    g_hooked = __sanitizer_get_current_allocated_bytes && __sanitizer_install_malloc_and_free_hooks &&
               __sanitizer_install_malloc_and_free_hooks(on_malloc, on_free);
    if (!g_hooked)
        printf("(not an AddressSanitizer build: heap bounds are not measured)\n");
    for (size_t i = 0; i < sizeof g_img; i++) g_img[i] = (uint8_t)(i * 7);
    for (int i = 0; i < 3; i++) { /* generic, libero, droid */
        pi0_policy_params pp = pi0_policy_default_params();
        pp.config = k_preset_names[i];
        pp.tokenizer = argv[2];
        g_pol[i] = pi0_policy_create();
        CHECK(pi0_policy_load(g_pol[i], argv[1], &pp) == PI0_OK, "%s: %s", pp.config, pi0_policy_error(g_pol[i]));
    }
    if (g_fail) return test_summary();
    if (want(argc, argv, "ndarray")) test_ndarray();
    if (want(argc, argv, "msgpack")) test_msgpack();
    if (want(argc, argv, "nan")) test_nan();
    if (want(argc, argv, "bound")) test_bound();
    if (want(argc, argv, "tokenizer")) test_tokenizer();
    if (want(argc, argv, "spm")) test_spm();
    if (want(argc, argv, "image")) test_image();
    for (int i = 0; i < 4; i++) pi0_policy_free(g_pol[i]);
    return test_summary();
}
