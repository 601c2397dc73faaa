/* test_policy — openpi's transforms as pi0.c's named steps (src/policy/transforms.c), each
 * against values computed here from openpi's formulas (written out in the test, or evaluated by
 * numpy in float64 and pasted), and the config table's facts. The whole pipeline, config by
 * config, is tests/serve_configs.py's (through `pi0 serve`).
 *   test_policy */
#include <stdint.h>

#include "../src/policy/configs.h"
#include "../src/policy/transforms.h"
#include "test_util.h"

static double max_abs_diff(const double *a, const double *b, int n) {
    double m = 0;
    for (int i = 0; i < n; i++) m = fmax(m, fabs(a[i] - b[i]));
    return m;
}

/* transforms.make_bool_mask, its docstring's examples and openpi's masks */
static void test_mask(void) {
    uint8_t m[32];
    const struct { int dims[4]; int n; const char *want; } cases[] = {
        {{2, -2, 2}, 3, "110011"},          /* make_bool_mask(2, -2, 2) */
        {{2, 0, 2}, 3, "1111"},             /* make_bool_mask(2, 0, 2) */
        {{6, -1}, 2, "1111110"},            /* LIBERO extra_delta_transform */
        {{6, -1, 6, -1}, 4, "11111101111110"}, /* ALOHA use_delta_joint_actions */
        {{7, -1}, 2, "11111110"},           /* DROID JOINT_POSITION */
    };
    for (size_t c = 0; c < sizeof cases / sizeof *cases; c++) {
        int n = pt_make_bool_mask(cases[c].dims, cases[c].n, m, 32);
        char got[33];
        for (int i = 0; i < n && i < 32; i++) got[i] = m[i] ? '1' : '0';
        got[n > 0 ? n : 0] = 0;
        CHECK(n == (int)strlen(cases[c].want) && !strcmp(got, cases[c].want), "make_bool_mask case %zu: got %s want %s",
              c, got, cases[c].want);
    }
    const int big[2] = {40, -1};
    CHECK(pt_make_bool_mask(big, 2, m, 32) == -1, "a mask longer than the buffer must be refused");
    printf("make_bool_mask: (2,-2,2) (2,0,2) (6,-1) (6,-1,6,-1) (7,-1) as openpi's docstring and configs\n");
}

/* Normalize / Unnormalize, z-score and quantile, with openpi's padding rules */
static void test_norm(void) {
    double mean[3] = {0.5, -1.0, 2.0}, std[3] = {0.1, 2.0, 0.25}, q01[3] = {-1, 0, 1}, q99[3] = {1, 4, 1.5};
    norm_vec s = {mean, std, q01, q99, 3};
    double x[5] = {0.7, -3.0, 2.5, 9.0, -4.0}, want[5], got[5];
    /* z-score over 3 values */
    memcpy(got, x, sizeof got);
    pt_normalize(&s, 0, got, 3);
    for (int i = 0; i < 3; i++) want[i] = (x[i] - mean[i]) / (std[i] + 1e-6);
    double dz = max_abs_diff(got, want, 3);
    /* quantile */
    memcpy(got, x, sizeof got);
    pt_normalize(&s, 1, got, 3);
    for (int i = 0; i < 3; i++) want[i] = (x[i] - q01[i]) / (q99[i] - q01[i] + 1e-6) * 2.0 - 1.0;
    double dq = max_abs_diff(got, want, 3);
    /* a state shorter than the stats: openpi slices the stats (mean[..., :2]) */
    memcpy(got, x, sizeof got);
    pt_normalize(&s, 0, got, 2);
    for (int i = 0; i < 2; i++) want[i] = (x[i] - mean[i]) / (std[i] + 1e-6);
    double ds = max_abs_diff(got, want, 2);
    printf("Normalize: z-score max |diff| %.1e, quantile %.1e, shorter state %.1e\n", dz, dq, ds);
    CHECK(dz == 0 && dq == 0 && ds == 0, "normalize differs from openpi's formulas");
    /* Unnormalize of 5 values with 3 stats: z-score pads mean 0 / std 1, so the last two are
     * multiplied by (1 + 1e-6); quantile leaves them. */
    memcpy(got, x, sizeof got);
    pt_unnormalize(&s, 0, got, 5);
    for (int i = 0; i < 5; i++) want[i] = x[i] * ((i < 3 ? std[i] : 1.0) + 1e-6) + (i < 3 ? mean[i] : 0.0);
    double uz = max_abs_diff(got, want, 5);
    memcpy(got, x, sizeof got);
    pt_unnormalize(&s, 1, got, 5);
    for (int i = 0; i < 5; i++) want[i] = i < 3 ? (x[i] + 1.0) / 2.0 * (q99[i] - q01[i] + 1e-6) + q01[i] : x[i];
    double uq = max_abs_diff(got, want, 5);
    printf("Unnormalize: z-score (pad mean 0, std 1) max |diff| %.1e, quantile (rest unchanged) %.1e; 4th value: %.9f\n",
           uz, uq, got[3]);
    CHECK(uz == 0 && uq == 0, "unnormalize differs from openpi's formulas");
    pt_normalize(NULL, 0, got, 5); /* no stats: a no-op */
    CHECK(got[3] == 9.0, "normalize without stats must not change anything");
}

/* AbsoluteActions: actions[..., :len(mask)] += where(mask, state[:len(mask)], 0) */
static void test_absolute(void) {
    enum { R = 3, D = 9 };
    double a[R * D], want[R * D], state[D];
    uint8_t mask[7];
    const int dims[2] = {6, -1};
    int ml = pt_make_bool_mask(dims, 2, mask, 7);
    for (int i = 0; i < D; i++) state[i] = 10.0 * (i + 1);
    for (int i = 0; i < R * D; i++) a[i] = want[i] = 0.01 * i;
    for (int r = 0; r < R; r++)
        for (int i = 0; i < 6; i++) want[r * D + i] += state[i]; /* dims 0..5 only: 6 is False, 7.. past the mask */
    pt_absolute_actions(a, R, D, state, mask, ml);
    double d = max_abs_diff(a, want, R * D);
    printf("AbsoluteActions(make_bool_mask(6, -1)): max |diff| %.1e; row 1: %.2f %.2f ... dim 6 %.2f dim 8 %.2f\n", d,
           a[D], a[D + 1], a[D + 6], a[D + 8]);
    CHECK(d == 0, "absolute actions differ from openpi's formula");
}

/* AlohaInputs/_decode_state and AlohaOutputs/_encode_actions with adapt_to_pi, against numpy
 * float64 evaluations of openpi's formulas. */
static void test_aloha(void) {
    double s[14], a[2 * 14];
    for (int i = 0; i < 14; i++) {
        s[i] = 0.1 * i - 0.5;
        a[i] = 0.05 * i - 0.3;
        a[14 + i] = 0.02 * i + 0.1;
    }
    s[6] = 0.5;
    s[13] = 0.9;
    const double want_s[14] = {-0.5, 0.4, 0.3, -0.19999999999999996, -0.09999999999999998, 0.0, -0.1400559217021429,
                               0.20000000000000007, -0.30000000000000004, -0.4, 0.5, 0.6000000000000001,
                               0.7000000000000002, 0.5016401573077245};
    const double want_a[28] = {
        -0.3, 0.25, 0.19999999999999998, -0.14999999999999997, -0.09999999999999998, -0.04999999999999999,
        0.5533778345878899, 0.050000000000000044, -0.10000000000000003, -0.15000000000000002, 0.2, 0.25000000000000006,
        0.3000000000000001, 0.7190739951711403, 0.1, -0.12000000000000001, -0.14, 0.16, 0.18, 0.2, 0.6575297069545045,
        0.24000000000000002, -0.26, -0.28, 0.30000000000000004, 0.32, 0.33999999999999997, 0.7238081711878046};
    pt_aloha_state_to_pi(s);
    pt_aloha_actions_from_pi(a, 2, 14);
    double ds = max_abs_diff(s, want_s, 14), da = max_abs_diff(a, want_a, 28);
    /* np.clip in the gripper's arcsin: linear positions outside the horn's reach */
    double g[14] = {0}, want_g[4] = {-1.0798655475132917, 0.945652797407483, -1.9578524277217162, 0.945652797407483};
    const double in_g[4] = {0.0, 1.0, -3.0, 5.0};
    double dg = 0;
    for (int k = 0; k < 4; k++) {
        memset(g, 0, sizeof g);
        g[6] = in_g[k];
        pt_aloha_state_to_pi(g);
        dg = fmax(dg, fabs(g[6] - want_g[k]));
    }
    printf("aloha adapt_to_pi vs numpy float64: state max |diff| %.1e, actions %.1e, clipped grippers %.1e\n", ds, da, dg);
    CHECK(ds < 1e-15 && da < 1e-15 && dg < 1e-15, "aloha conversions differ from openpi's");
}

/* _parse_image: (255 * x).astype(uint8) in the array's precision */
static void test_image(void) {
    float f[256 + 4];
    double d[256 + 4];
    uint8_t u[260], v[260];
    for (int k = 0; k < 256; k++) { f[k] = (float)(k / 255.0); d[k] = k / 255.0; }
    f[256] = 0.99999f; d[256] = 0.999999;  /* 254.99745 → 254, 254.99974 → 254 */
    f[257] = -0.5f; d[257] = -0.5;         /* clamped to 0 */
    f[258] = 1.5f; d[258] = 1.5;           /* clamped to 255 */
    f[259] = 0.5f; d[259] = 0.5;           /* 127.5 → 127 */
    CHECK(pt_image_f32_to_u8(f, 260, u) == -1 && pt_image_f64_to_u8(d, 260, v) == -1, "finite images");
    int ok = 1;
    for (int k = 0; k < 256; k++) ok &= u[k] == k && v[k] == k;
    ok &= u[256] == 254 && v[256] == 254 && u[257] == 0 && u[258] == 255 && u[259] == 127 && v[259] == 127;
    printf("_parse_image: k/255 -> k for every k (float32 and float64), truncation, clamping: %s\n", ok ? "ok" : "WRONG");
    CHECK(ok, "float image conversion differs from numpy's");
    f[100] = NAN;
    d[7] = INFINITY;
    CHECK(pt_image_f32_to_u8(f, 260, u) == 100 && pt_image_f64_to_u8(d, 260, v) == 7, "NaN / inf must be found");
}

/* The table: a few facts per kind, as openpi's config.py states them. */
static void test_table(void) {
    char why[512];
    const pc_config *c = pc_find("pi0_aloha_towel", why, sizeof why);
    CHECK(c && c->model == PC_MODEL_PI0 && c->robot->robot == PC_ROBOT_ALOHA && c->delta[0] == 6 && c->delta[1] == -1 &&
          c->delta[2] == 6 && c->delta[3] == -1 && c->reset_pose && !strcmp(c->default_prompt, "fold the towel") &&
          !strcmp(c->asset_id, "trossen"), "pi0_aloha_towel");
    c = pc_find("pi0_libero", why, sizeof why);
    CHECK(c && c->delta[0] == 6 && c->delta[1] == -1 && !c->delta[2] && !strcmp(c->asset_id, "physical-intelligence/libero")
          && c->robot->out_dims == 7 && !c->reset_pose, "pi0_libero");
    c = pc_find("pi05_libero", why, sizeof why);
    CHECK(c && c->model == PC_MODEL_PI05 && !c->delta[0] && c->action_horizon == 10 && c->discrete_state_input == 0,
          "pi05_libero");
    c = pc_find("pi0_droid", why, sizeof why);
    CHECK(c && c->action_horizon == 10 && c->robot->n_state_keys == 2 && c->robot->out_dims == 8 && !c->delta[0], "pi0_droid");
    c = pc_find("pi0_aloha_pen_uncap", why, sizeof why);
    CHECK(c && !c->reset_pose && !strcmp(c->default_prompt, "uncap the pen"), "pi0_aloha_pen_uncap has no metadata");
    c = pc_find("pi0_aloha_sim", why, sizeof why);
    CHECK(c && !c->delta[0] && !strcmp(c->asset_id, "lerobot/aloha_sim_transfer_cube_human"), "pi0_aloha_sim");
    c = pc_find("pi0_fast_droid", why, sizeof why);
    printf("  pi0_fast_droid -> %s\n", why);
    CHECK(!c && strstr(why, "pi0-FAST"), "pi0-FAST must be refused by name: %s", why);
    c = pc_find("pi0_libro", why, sizeof why);
    printf("  pi0_libro -> %s\n", why);
    CHECK(!c && strstr(why, "did you mean 'pi0_libero'"), "unknown names get the closest: %s", why);
    int n = 0;
    for (int i = 0; i < pc_count(); i++) n += !pc_at(i)->preset;
    printf("config table: %d openpi configs, %d pi0.c presets\n", n, pc_count() - n);
}

int main(int argc, char **argv) {
    (void)argc;
    (void)argv;
    test_mask();
    test_norm();
    test_absolute();
    test_aloha();
    test_image();
    test_table();
    return test_summary();
}
