/* test_masking — padding must not leak into the actions:
 *  - a masked camera's pixels and a padded token's id can change: actions stay bit-identical;
 *  - a camera with image_mask = false gives the actions of leaving it out of the prefix;
 *  - the compact prefix and openpi's full padded layout give identical actions;
 * and the counter-checks that make those meaningful (a valid pixel / token does change them),
 * seeded noise, batching, and input validation. Uses golden/small-bf16 and pi05-small-bf16
 * (camera 2 masked, padded tokens). For π0.5 the `state` input must change nothing (the model
 * reads the state only as text in the prompt). */
#include "../src/io/inputs.h"
#include "test_util.h"

static pi0_model *g_model;
static const pi0_config *g_cfg;
static const char *g_backend = "ref";

/* Runs the policy; returns the status, actions into out. */
static pi0_status run(const pi0_inputs *in, int compact, float *out, char *err, size_t errlen) {
    pi0_params p = pi0_default_params();
    p.compact_prefix = compact;
    p.backend = g_backend;
    pi0_session *s = pi0_session_create();
    pi0_status st = pi0_session_init(s, g_model, &p);
    if (st == PI0_OK) st = pi0_session_infer(s, in, out);
    if (err) snprintf(err, errlen, "%s", pi0_session_error(s));
    pi0_session_free(s);
    return st;
}

static int same(const float *a, const float *b, size_t n) { return memcmp(a, b, n * sizeof *a) == 0; }

static void check_case(const char *golden, const char *name) {
    char dir[4096], path[4200], err[512];
    snprintf(dir, sizeof dir, "%s/%s", golden, name);
    printf("%s, backend %s\n", name, g_backend);
    g_model = pi0_model_create();
    if (pi0_model_load(g_model, dir) != PI0_OK) {
        CHECK(0, "load: %s", pi0_model_error(g_model));
        pi0_model_free(g_model);
        return;
    }
    g_cfg = pi0_model_config(g_model);
    pi0_input_buf buf;
    pi0_err e;
    snprintf(path, sizeof path, "%s/inputs.safetensors", dir);
    if (inputs_read(&buf, path, g_cfg, &e) != PI0_OK) { CHECK(0, "%s", e.msg); pi0_model_free(g_model); return; }
    pi0_inputs in = buf.in;
    const size_t HA = (size_t)g_cfg->action_horizon * g_cfg->action_dim;
    const size_t img = 3 * (size_t)g_cfg->vision.image_size * g_cfg->vision.image_size;
    CHECK(in.num_cameras == 3 && in.image_masks[2] == 0 && in.token_mask[11] == 0,
          "golden small-bf16 no longer has a masked camera 2 and padded tokens");

    float base[2][4096], out[4096];
    for (int compact = 0; compact < 2; compact++)
        CHECK(run(&in, compact, base[compact], err, sizeof err) == PI0_OK, "run: %s", err);
    CHECK(same(base[0], base[1], HA), "compact and full prefix layouts differ");

    /* A masked camera's pixels do not matter. */
    float *images = malloc(3 * img * sizeof *images);
    memcpy(images, in.images, 3 * img * sizeof *images);
    pi0_inputs mod = in;
    mod.images = images;
    for (size_t i = 0; i < img; i++) images[2 * img + i] = (float)((i * 7919) % 255) / 127.5f - 1.0f;
    for (int compact = 0; compact < 2; compact++) {
        CHECK(run(&mod, compact, out, NULL, 0) == PI0_OK, "run");
        CHECK(same(out, base[compact], HA), "masked camera pixels changed the actions (compact=%d)", compact);
    }
    /* ... but a valid camera's pixels do. */
    images[img / 2] += 0.5f;
    CHECK(run(&mod, 1, out, NULL, 0) == PI0_OK && !same(out, base[1], HA),
          "changing a valid camera's pixel left the actions unchanged");
    memcpy(images, in.images, 3 * img * sizeof *images);

    /* Padded token ids do not matter; a valid token id does. */
    int32_t tokens[64];
    memcpy(tokens, in.tokens, g_cfg->max_token_len * sizeof *tokens);
    mod = in;
    mod.tokens = tokens;
    for (int i = 0; i < g_cfg->max_token_len; i++)
        if (!in.token_mask[i]) tokens[i] = (i * 37 + 11) % g_cfg->vlm.vocab_size;
    for (int compact = 0; compact < 2; compact++) {
        CHECK(run(&mod, compact, out, NULL, 0) == PI0_OK, "run");
        CHECK(same(out, base[compact], HA), "padded token ids changed the actions (compact=%d)", compact);
    }
    tokens[1] = (tokens[1] + 1) % g_cfg->vlm.vocab_size;
    CHECK(run(&mod, 1, out, NULL, 0) == PI0_OK && !same(out, base[1], HA),
          "changing a valid token left the actions unchanged");

    /* image_mask = false (full openpi layout: the camera runs, its tokens are padding) equals
     * leaving the camera out of the observation altogether. */
    mod = in;
    mod.num_cameras = 2;
    for (int compact = 0; compact < 2; compact++) {
        CHECK(run(&mod, compact, out, NULL, 0) == PI0_OK, "run without camera 2");
        CHECK(same(out, base[0], HA), "leaving camera 2 out differs from masking it (compact=%d)", compact);
    }
    /* ... and unmasking it changes the actions. */
    uint8_t masks[3] = {1, 1, 1};
    mod = in;
    mod.image_masks = masks;
    CHECK(run(&mod, 1, out, NULL, 0) == PI0_OK && !same(out, base[1], HA),
          "unmasking camera 2 left the actions unchanged");

    /* Seeded noise: reproducible, seed-dependent, ~N(0, 1). */
    float a[4096], b[4096];
    mod = in;
    mod.noise = NULL;
    mod.seed = 7;
    CHECK(run(&mod, 1, a, NULL, 0) == PI0_OK && run(&mod, 1, b, NULL, 0) == PI0_OK && same(a, b, HA),
          "same seed gave different actions");
    mod.seed = 8;
    CHECK(run(&mod, 1, b, NULL, 0) == PI0_OK && !same(a, b, HA), "different seeds gave the same actions");
    enum { NG = 100000 };
    float *g = malloc(NG * sizeof *g);
    pi0_gaussian(123, g, NG);
    double mean = 0, var = 0;
    for (int i = 0; i < NG; i++) mean += g[i];
    mean /= NG;
    for (int i = 0; i < NG; i++) var += (g[i] - mean) * (g[i] - mean);
    var /= NG;
    printf("pi0_gaussian: mean %.4f var %.4f over %d samples\n", mean, var, NG);
    CHECK(fabs(mean) < 0.02 && fabs(var - 1) < 0.02, "pi0_gaussian is not N(0,1): mean %g var %g", mean, var);
    free(g);

    /* Batch of 2: item 0 is the golden observation, item 1 a modified one. */
    {
        const int L = g_cfg->max_token_len, SD = g_cfg->state_dim;
        float *bimg = malloc(2 * 3 * img * sizeof *bimg), bstate[2 * 64], bnoise[2 * 4096];
        int32_t btok[2 * 64];
        uint8_t btm[2 * 64], bmask[6];
        for (int k = 0; k < 2; k++) {
            memcpy(bimg + k * 3 * img, in.images, 3 * img * sizeof *bimg);
            memcpy(btok + k * L, in.tokens, L * sizeof *btok);
            memcpy(btm + k * L, in.token_mask, L);
            memcpy(bstate + k * SD, in.state, SD * sizeof *bstate);
            memcpy(bnoise + k * HA, in.noise, HA * sizeof *bnoise);
            memcpy(bmask + k * 3, in.image_masks, 3);
        }
        bstate[SD] += 1.0f;
        pi0_inputs bi = {.batch = 2, .num_cameras = 3, .images = bimg, .image_masks = bmask,
                         .tokens = btok, .token_mask = btm, .state = bstate, .noise = bnoise};
        float bout[2 * 4096];
        CHECK(run(&bi, 1, bout, err, sizeof err) == PI0_OK, "batch run: %s", err);
        CHECK(same(bout, base[1], HA), "batch item 0 differs from the single run");
        if (g_cfg->pi05) /* π0.5 reads no continuous state */
            CHECK(same(bout + HA, base[1], HA), "pi0.5: the state input changed the actions");
        else
            CHECK(!same(bout + HA, base[1], HA), "batch item 1 ignored its own state");
        free(bimg);
    }
    if (g_cfg->pi05) { /* no state at all is fine, and NaN in it is ignored */
        mod = in;
        mod.state = NULL;
        CHECK(run(&mod, 1, out, err, sizeof err) == PI0_OK && same(out, base[1], HA),
              "pi0.5 without a state input: %s", err);
    }

    /* Bad inputs are refused with a message naming the field. */
    int32_t badtok[64];
    memcpy(badtok, in.tokens, g_cfg->max_token_len * sizeof *badtok);
    badtok[2] = g_cfg->vlm.vocab_size;
    mod = in;
    mod.tokens = badtok;
    CHECK(run(&mod, 1, out, err, sizeof err) == PI0_ERR_INPUT && strstr(err, "tokens"),
          "out-of-vocabulary token: got '%s'", err);
    float badstate[64];
    memcpy(badstate, in.state, g_cfg->state_dim * sizeof *badstate);
    badstate[3] = NAN;
    mod = in;
    mod.state = badstate;
    if (g_cfg->pi05)
        CHECK(run(&mod, 1, out, err, sizeof err) == PI0_OK && same(out, base[1], HA),
              "pi0.5: a NaN in the unused state input: '%s'", err);
    else
        CHECK(run(&mod, 1, out, err, sizeof err) == PI0_ERR_INPUT && strstr(err, "state"),
              "NaN state: got '%s'", err);
    mod = in;
    mod.num_cameras = 4;
    CHECK(run(&mod, 1, out, err, sizeof err) == PI0_ERR_INPUT && strstr(err, "num_cameras"),
          "too many cameras: got '%s'", err);
    mod = in;
    mod.batch = 0;
    CHECK(run(&mod, 1, out, err, sizeof err) == PI0_ERR_INPUT && strstr(err, "batch"),
          "batch 0: got '%s'", err);
    pi0_params p = pi0_default_params();
    p.num_threads = 100000;
    {
        pi0_session *ts = pi0_session_create();
        CHECK(pi0_session_init(ts, g_model, &p) == PI0_ERR_ARG && strstr(pi0_session_error(ts), "num_threads"),
              "num_threads 100000: got '%s'", pi0_session_error(ts));
        pi0_session_free(ts);
    }
    p = pi0_default_params();
    p.backend = "nonesuch";
    pi0_session *s = pi0_session_create();
    CHECK(pi0_session_init(s, g_model, &p) == PI0_ERR_UNSUPPORTED && strstr(pi0_session_error(s), "nonesuch"),
          "unknown backend: got '%s'", pi0_session_error(s));
    CHECK(pi0_session_infer(s, &in, out) == PI0_ERR_ARG, "infer on an uninitialised session");
    pi0_session_free(s);

    free(images);
    inputs_free(&buf);
    pi0_model_free(g_model);
}

int main(int argc, char **argv) {
    if (argc < 2) { fprintf(stderr, "usage: test_masking GOLDEN_DIR [BACKEND]\n"); return 2; }
    if (argc > 2) g_backend = argv[2];
    check_case(argv[1], "small-bf16");
    check_case(argv[1], "pi05-small-bf16");
    return test_summary();
}
