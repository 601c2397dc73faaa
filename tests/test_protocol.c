/* test_protocol — the serve wire format without a network: an ALOHA observation (nested
 * "images" map, float CHW image) decoded into a policy's entries, ALOHA's camera rules (an
 * unknown camera refused while decoding, a missing cam_high refused by the policy, cam_low
 * ignored), the reply encoding and the metadata's JSON → msgpack encoding read back with msgpack-c.
 *   test_protocol MODEL_DIR TOKENIZER */
#include <msgpack.h>

#include "../src/common.h"
#include "../src/serve/protocol.h"
#include "test_util.h"

/* Python's bytes.decode("utf-8") in C: well-formed UTF-8 only (no overlongs, surrogates, or
 * code points past U+10FFFF). */
static int utf8_valid(const char *str) {
    const unsigned char *s = (const unsigned char *)str;
    while (*s) {
        unsigned c = *s, n = c < 0x80 ? 0 : c >= 0xC2 && c <= 0xDF ? 1 : c >= 0xE0 && c <= 0xEF ? 2
                              : c >= 0xF0 && c <= 0xF4 ? 3 : 9;
        if (n == 9) return 0;
        unsigned cp = n ? c & (0x3F >> n) : c;
        for (unsigned i = 1; i <= n; i++) {
            if ((s[i] & 0xC0) != 0x80) return 0;
            cp = cp << 6 | (s[i] & 0x3F);
        }
        if ((n == 2 && cp < 0x800) || (n == 3 && (cp < 0x10000 || cp > 0x10FFFF)) || (cp >= 0xD800 && cp <= 0xDFFF))
            return 0;
        s += n + 1;
    }
    return 1;
}

static void pack_str(msgpack_packer *pk, const char *s) {
    msgpack_pack_str(pk, strlen(s));
    msgpack_pack_str_body(pk, s, strlen(s));
}

static void pack_bin_key(msgpack_packer *pk, const char *s) {
    msgpack_pack_bin(pk, strlen(s));
    msgpack_pack_bin_body(pk, s, strlen(s));
}

/* An openpi ndarray map. */
static void pack_nd(msgpack_packer *pk, const void *data, size_t nbytes, const char *dtype, int ndim, const int *shape) {
    msgpack_pack_map(pk, 4);
    pack_bin_key(pk, "__ndarray__");
    msgpack_pack_true(pk);
    pack_bin_key(pk, "data");
    msgpack_pack_bin(pk, nbytes);
    msgpack_pack_bin_body(pk, data, nbytes);
    pack_bin_key(pk, "dtype");
    pack_str(pk, dtype);
    pack_bin_key(pk, "shape");
    msgpack_pack_array(pk, ndim);
    for (int i = 0; i < ndim; i++) msgpack_pack_int(pk, shape[i]);
}

/* {"images": {cam: float CHW [3, 8, 8], ...}, "state": f4[14], "prompt": "..."} */
static void pack_aloha(msgpack_sbuffer *sb, const char *const *cams, int ncam, const float *state) {
    static float img[3 * 8 * 8];
    for (int i = 0; i < 3 * 8 * 8; i++) img[i] = (float)(i % 64) / 63.0f;
    msgpack_packer pk;
    msgpack_packer_init(&pk, sb, msgpack_sbuffer_write);
    msgpack_pack_map(&pk, 3);
    pack_str(&pk, "images");
    msgpack_pack_map(&pk, ncam);
    for (int c = 0; c < ncam; c++) {
        pack_str(&pk, cams[c]);
        int ishape[3] = {3, 8, 8};
        pack_nd(&pk, img, sizeof img, "<f4", 3, ishape);
    }
    pack_str(&pk, "state");
    int sshape[1] = {14};
    pack_nd(&pk, state, 14 * sizeof(float), "<f4", 1, sshape);
    pack_str(&pk, "prompt");
    pack_str(&pk, "fold the towel");
}

static int g_rows, g_dims;
static float g_actions[64 * 32];

static pi0_status decode_and_infer(pi0_policy *p, const char *const *cams, int ncam, const float *st, char *err,
                                   size_t errlen, int *decoded) {
    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    pack_aloha(&sb, cams, ncam, st);
    pi0_status rc = serve_decode_observation(p, sb.data, sb.size, err, errlen);
    msgpack_sbuffer_destroy(&sb);
    *decoded = rc == PI0_OK;
    if (rc != PI0_OK) return rc;
    rc = pi0_policy_infer(p, g_actions, sizeof g_actions / sizeof *g_actions, &g_rows, &g_dims);
    if (rc != PI0_OK) snprintf(err, errlen, "%s", pi0_policy_error(p));
    return rc;
}

int main(int argc, char **argv) {
    if (argc < 3) { fprintf(stderr, "usage: test_protocol MODEL_DIR TOKENIZER\n"); return 2; }
    pi0_policy *p = pi0_policy_create();
    pi0_policy_params pp = pi0_policy_default_params();
    pp.config = "aloha";
    pp.tokenizer = argv[2];
    pp.fixed_seed = 1;
    CHECK(pi0_policy_load(p, argv[1], &pp) == PI0_OK, "load: %s", pi0_policy_error(p));
    if (g_fail) return test_summary();

    float st[14];
    for (int i = 0; i < 14; i++) st[i] = 0.1f * i - 0.5f;
    st[6] = 0.5f;
    st[13] = 0.9f;
    char err[512] = "";
    int decoded;
    /* cam_high fills base_0_rgb only; cam_low is accepted and unused; the state is converted to
     * π's space (no norm stats: the model sees it as given) before the model. */
    const char *const high_low[2] = {"cam_high", "cam_low"};
    pi0_status rc = decode_and_infer(p, high_low, 2, st, err, sizeof err, &decoded);
    CHECK(rc == PI0_OK, "aloha observation refused: %s", err);
    const pi0_inputs *in = pi0_policy_inputs(p);
    CHECK(in && in->image_masks[0] == 1 && in->image_masks[1] == 0 && in->image_masks[2] == 0,
          "cam_high must fill base_0_rgb only (cam_low ignored)");
    /* openpi's _decode_state in float64: flip of dim 1, _gripper_to_angular(0.5) = -0.1400559 */
    CHECK(in && fabsf(in->state[6] - -0.1400559f) < 1e-5f && fabsf(in->state[1] - 0.4f) < 1e-6f,
          "aloha state not converted before use: state[1] %g state[6] %g", in ? in->state[1] : 0, in ? in->state[6] : 0);
    CHECK(g_rows == 50 && g_dims == 14, "aloha actions are %d x %d, want 50 x 14", g_rows, g_dims);
    printf("  aloha: cam_high + cam_low decoded and answered: %d x %d actions, state[6] %.7f\n", g_rows, g_dims,
           in ? in->state[6] : 0);

    const char *const front[1] = {"cam_front"};
    rc = decode_and_infer(p, front, 1, st, err, sizeof err, &decoded);
    printf("  unknown aloha camera -> %s\n", err);
    CHECK(rc == PI0_ERR_INPUT && !decoded && strstr(err, "unknown camera 'images/cam_front'"), "unknown camera: %s", err);
    /* A key that is not UTF-8 (b"\\xff\\xfe" from a client) is shown escaped: the message stays
     * valid UTF-8 for the WebSocket text frame. */
    const char *const bad[1] = {"\xff\xfe"};
    rc = decode_and_infer(p, bad, 1, st, err, sizeof err, &decoded);
    printf("  camera key b'\\xff\\xfe' -> %s\n", err);
    CHECK(rc == PI0_ERR_INPUT && strstr(err, "unknown camera 'images/\\xff\\xfe'") && utf8_valid(err),
          "a key of invalid UTF-8 must be shown escaped: %s", err);
    /* pi0_text_escape: what stays, what is escaped, where it cuts. */
    static const struct { const char *in, *printable, *valid; } cases[] = {
        {"|u\xff", "|u\\xff", "|u\\xff"},
        {"caf\xc3\xa9 \xcf\x80", "caf\xc3\xa9 \xcf\x80", "caf\xc3\xa9 \xcf\x80"},         /* é π kept */
        {"\xc3(\xe2\x82", "\\xc3(\\xe2\\x82", "\\xc3(\\xe2\\x82"},                 /* cut sequences */
        {"\xc0\xaf\xed\xa0\x80\xf4\x90\x80\x80", "\\xc0\\xaf\\xed\\xa0\\x80\\xf4\\x90\\x80\\x80",
         "\\xc0\\xaf\\xed\\xa0\\x80\\xf4\\x90\\x80\\x80"},                              /* overlong, surrogate, > U+10FFFF */
        {"a\nb\\c\x7f", "a\\x0ab\\\\c\\x7f", "a\nb\\c\x7f"},                           /* controls: printable only */
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        char out[128], out2[128];
        pi0_text_escape(out, sizeof out, cases[i].in, strlen(cases[i].in), 1);
        pi0_text_escape(out2, sizeof out2, cases[i].in, strlen(cases[i].in), 0);
        CHECK(!strcmp(out, cases[i].printable) && !strcmp(out2, cases[i].valid) && utf8_valid(out) && utf8_valid(out2),
              "escape case %zu: got '%s' / '%s'", i, out, out2);
    }
    char cut[11];
    pi0_text_escape(cut, sizeof cut, "abcd\xcf\x80\xcf\x80xyz", 13, 1);
    CHECK(!strcmp(cut, "abcd\xcf\x80...") && utf8_valid(cut), "a cut keeps whole characters: '%s'", cut);
    printf("  pi0_text_escape: %zu cases and a cut inside a character\n", sizeof cases / sizeof *cases);
    const char *const left[1] = {"cam_left_wrist"};
    rc = decode_and_infer(p, left, 1, st, err, sizeof err, &decoded);
    printf("  aloha without cam_high -> %s\n", err);
    CHECK(rc == PI0_ERR_INPUT && decoded && strstr(err, "missing key 'images/cam_high'"), "missing cam_high: %s", err);

    /* A reply reads back as openpi's numpy map, float64 as openpi's server sends (values that
     * a float would round: 0.1, 1/3). */
    double acts[2 * 3] = {0.1, 1.0 / 3.0, 3, 4, 5e-300, 6};
    serve_buf b = {0};
    CHECK(serve_encode_reply(&b, acts, 2, 3, 2, 1.5, -1, 1.0) == 0, "encode");
    msgpack_unpacked u;
    msgpack_unpacked_init(&u);
    size_t off = 0;
    CHECK(msgpack_unpack_next(&u, b.data, b.size, &off) == MSGPACK_UNPACK_SUCCESS, "reply is msgpack");
    const msgpack_object *root = &u.data;
    int ok = root->type == MSGPACK_OBJECT_MAP && root->via.map.size == 3;
    const msgpack_object *arr = ok ? &root->via.map.ptr[0].val : NULL;
    ok = ok && arr->type == MSGPACK_OBJECT_MAP && arr->via.map.ptr[0].key.type == MSGPACK_OBJECT_BIN;
    const msgpack_object *data = ok ? &arr->via.map.ptr[1].val : NULL;
    const msgpack_object *dtype = ok ? &arr->via.map.ptr[2].val : NULL;
    double back[4];
    if (ok && data->type == MSGPACK_OBJECT_BIN && data->via.bin.size == 32) memcpy(back, data->via.bin.ptr, 32);
    else ok = 0;
    ok = ok && dtype->type == MSGPACK_OBJECT_STR && dtype->via.str.size == 3 && !memcmp(dtype->via.str.ptr, "<f8", 3);
    CHECK(ok && back[0] == 0.1 && back[1] == 1.0 / 3.0 && back[2] == 4 && back[3] == 5e-300,
          "reply actions must be the first 2 dims of each row as '<f8' (exact doubles), ndarray keys as bytes");
    printf("  reply: actions '<f8' [2, 2], 0.1 and 1/3 exact\n");
    msgpack_unpacked_destroy(&u);

    /* The metadata: JSON → msgpack, integral numbers as integers (as Python packs ints). */
    CHECK(serve_encode_json(&b, "{\"reset_pose\": [0, -1.5, 1.5, 0, 0, 0], \"config\": \"pi0_aloha\", "
                                "\"t\": {\"n\": 50}}") == 0, "metadata encodes");
    msgpack_unpacked_init(&u);
    off = 0;
    ok = msgpack_unpack_next(&u, b.data, b.size, &off) == MSGPACK_UNPACK_SUCCESS && u.data.type == MSGPACK_OBJECT_MAP &&
         u.data.via.map.size == 3;
    const msgpack_object *rp = ok ? &u.data.via.map.ptr[0].val : NULL;
    ok = ok && rp->type == MSGPACK_OBJECT_ARRAY && rp->via.array.size == 6 &&
         rp->via.array.ptr[0].type == MSGPACK_OBJECT_POSITIVE_INTEGER &&
         rp->via.array.ptr[1].type == MSGPACK_OBJECT_FLOAT64 && rp->via.array.ptr[1].via.f64 == -1.5;
    const msgpack_object *t = ok ? &u.data.via.map.ptr[2].val : NULL;
    ok = ok && t->type == MSGPACK_OBJECT_MAP && t->via.map.ptr[0].val.type == MSGPACK_OBJECT_POSITIVE_INTEGER &&
         t->via.map.ptr[0].val.via.u64 == 50;
    CHECK(ok, "metadata JSON must read back as a msgpack map with reset_pose [0, -1.5, ...] and nested ints");
    CHECK(serve_encode_json(&b, "{not json") != 0, "bad JSON must be refused");
    msgpack_unpacked_destroy(&u);
    serve_buf_free(&b);

    /* The policy's own metadata encodes (a preset has no reset_pose). */
    CHECK(serve_encode_json(&b, pi0_policy_metadata_json(p)) == 0, "policy metadata encodes: %s", pi0_policy_metadata_json(p));
    CHECK(!strstr(pi0_policy_metadata_json(p), "reset_pose"), "the aloha preset sends no reset_pose");
    printf("  metadata: %s\n", pi0_policy_metadata_json(p));
    serve_buf_free(&b);
    pi0_policy_free(p);
    return test_summary();
}
