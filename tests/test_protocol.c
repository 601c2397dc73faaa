/* test_protocol — the serve wire format without a network: ALOHA's adapt_to_pi conversions
 * against values computed from openpi's formulas (Python, float64), the aloha preset's camera
 * rules, float CHW images, and the reply encoding read back with msgpack-c.
 *   test_protocol MODEL_DIR TOKENIZER */
#include <msgpack.h>

#include "../src/serve/protocol.h"
#include "test_util.h"

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

/* {"images": {cam: float CHW [3, 8, 8]}, "state": f4[14], "prompt": "..."} */
static void pack_aloha(msgpack_sbuffer *sb, const char *cam, const float *state) {
    static float img[3 * 8 * 8];
    for (int i = 0; i < 3 * 8 * 8; i++) img[i] = (float)(i % 64) / 63.0f;
    msgpack_packer pk;
    msgpack_packer_init(&pk, sb, msgpack_sbuffer_write);
    msgpack_pack_map(&pk, 3);
    pack_str(&pk, "images");
    msgpack_pack_map(&pk, 1);
    pack_str(&pk, cam);
    int ishape[3] = {3, 8, 8};
    pack_nd(&pk, img, sizeof img, "<f4", 3, ishape);
    pack_str(&pk, "state");
    int sshape[1] = {14};
    pack_nd(&pk, state, 14 * sizeof(float), "<f4", 1, sshape);
    pack_str(&pk, "prompt");
    pack_str(&pk, "fold the towel");
}

int main(int argc, char **argv) {
    if (argc < 3) { fprintf(stderr, "usage: test_protocol MODEL_DIR TOKENIZER\n"); return 2; }
    /* adapt_to_pi, numbers from openpi's aloha_policy formulas evaluated in float64 */
    float s[14], a[14];
    for (int i = 0; i < 14; i++) { s[i] = 0.1f * i - 0.5f; a[i] = 0.05f * i - 0.3f; }
    s[6] = 0.5f;
    s[13] = 0.9f;
    const float want_s[14] = {-0.5f, 0.4f, 0.3f, -0.2f, -0.1f, 0.0f, -0.1400559f, 0.2f, -0.3f, -0.4f, 0.5f, 0.6f, 0.7f, 0.5016402f};
    const float want_a[14] = {-0.3f, 0.25f, 0.2f, -0.15f, -0.1f, -0.05f, 0.5533778f, 0.05f, -0.1f, -0.15f, 0.2f, 0.25f, 0.3f, 0.719074f};
    aloha_state_to_pi(s);
    aloha_actions_from_pi(a, 1, 14);
    double es = 0, ea = 0;
    for (int i = 0; i < 14; i++) {
        es = fmax(es, fabs(s[i] - want_s[i]));
        ea = fmax(ea, fabs(a[i] - want_a[i]));
    }
    printf("aloha adapt_to_pi: state max |diff| %.2e, actions max |diff| %.2e vs openpi's formulas\n", es, ea);
    CHECK(es < 1e-5 && ea < 1e-5, "aloha conversions differ from openpi");

    /* Decoding with the aloha preset. */
    pi0_model *m = pi0_model_create();
    pi0_tokenizer *t = pi0_tokenizer_create();
    pi0_obs *o = pi0_obs_create();
    CHECK(pi0_model_load(m, argv[1]) == PI0_OK, "%s", pi0_model_error(m));
    CHECK(pi0_tokenizer_load(t, argv[2]) == PI0_OK, "%s", pi0_tokenizer_error(t));
    CHECK(pi0_obs_init(o, m) == PI0_OK, "%s", pi0_obs_error(o));
    if (g_fail) return test_summary();
    serve_config cfg = {PRESET_ALOHA, NULL, t, NULL, 1};
    float st[14];
    for (int i = 0; i < 14; i++) st[i] = 0.1f * i - 0.5f;
    st[6] = 0.5f;
    st[13] = 0.9f;
    char err[256] = "";
    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    pack_aloha(&sb, "cam_high", st);
    pi0_status rc = serve_decode_observation(&cfg, sb.data, sb.size, o, err, sizeof err);
    CHECK(rc == PI0_OK, "aloha observation refused: %s", err);
    const pi0_inputs *in = pi0_obs_inputs(o);
    CHECK(in && in->image_masks[0] == 1 && in->image_masks[1] == 0 && in->image_masks[2] == 0,
          "cam_high must fill base_0_rgb only");
    CHECK(in && fabsf(in->state[6] - want_s[6]) < 1e-5f && fabsf(in->state[1] - want_s[1]) < 1e-6f,
          "aloha state not converted before use");
    msgpack_sbuffer_clear(&sb);
    pack_aloha(&sb, "cam_front", st);
    rc = serve_decode_observation(&cfg, sb.data, sb.size, o, err, sizeof err);
    printf("  unknown aloha camera -> %s\n", err);
    CHECK(rc == PI0_ERR_INPUT && strstr(err, "cam_front"), "unknown camera: %s", err);
    msgpack_sbuffer_clear(&sb);
    pack_aloha(&sb, "cam_left_wrist", st);
    rc = serve_decode_observation(&cfg, sb.data, sb.size, o, err, sizeof err);
    printf("  aloha without cam_high -> %s\n", err);
    CHECK(rc == PI0_ERR_INPUT && strstr(err, "cam_high"), "missing cam_high: %s", err);
    msgpack_sbuffer_destroy(&sb);

    /* A reply reads back as openpi's numpy map. */
    float acts[2 * 3] = {1, 2, 3, 4, 5, 6};
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
    float back[4];
    if (ok && data->type == MSGPACK_OBJECT_BIN && data->via.bin.size == 16) memcpy(back, data->via.bin.ptr, 16);
    else ok = 0;
    CHECK(ok && back[0] == 1 && back[1] == 2 && back[2] == 4 && back[3] == 5,
          "reply actions must be the first 2 dims of each row, ndarray keys as bytes");
    msgpack_unpacked_destroy(&u);
    serve_buf_free(&b);
    pi0_obs_free(o);
    pi0_tokenizer_free(t);
    pi0_model_free(m);
    return test_summary();
}
