/* transforms.c — see transforms.h. Each function mirrors one openpi transform (named in its
 * comment); the formulas are openpi's, the code is pi0.c's. */
#include "transforms.h"

#include <math.h>

int pt_make_bool_mask(const int *dims, int n_dims, uint8_t *mask, int cap) {
    int n = 0;
    for (int i = 0; i < n_dims; i++) {
        const int k = dims[i] > 0 ? dims[i] : -dims[i];
        if (k > cap - n) return -1;
        for (int j = 0; j < k; j++) mask[n++] = dims[i] > 0;
    }
    return n;
}

/* transforms.Normalize._normalize / _normalize_quantile */
void pt_normalize(const norm_vec *s, int quantile, double *x, int n) {
    if (!s) return;
    for (int i = 0; i < n && i < s->n; i++)
        x[i] = quantile ? (x[i] - s->q01[i]) / (s->q99[i] - s->q01[i] + 1e-6) * 2.0 - 1.0
                        : (x[i] - s->mean[i]) / (s->std[i] + 1e-6);
}

/* transforms.Unnormalize._unnormalize (pad_to_dim: mean with 0.0, std with 1.0) /
 * _unnormalize_quantile (the dims past q01's length concatenated unchanged) */
void pt_unnormalize(const norm_vec *s, int quantile, double *x, int n) {
    if (!s) return;
    for (int i = 0; i < n; i++) {
        if (i < s->n)
            x[i] = quantile ? (x[i] + 1.0) / 2.0 * (s->q99[i] - s->q01[i] + 1e-6) + s->q01[i]
                            : x[i] * (s->std[i] + 1e-6) + s->mean[i];
        else if (!quantile)
            x[i] = x[i] * (1.0 + 1e-6) + 0.0;
    }
}

/* transforms.AbsoluteActions */
void pt_absolute_actions(double *actions, int rows, int stride, const double *state, const uint8_t *mask,
                         int mask_len) {
    for (int r = 0; r < rows; r++)
        for (int i = 0; i < mask_len && i < stride; i++)
            if (mask[i]) actions[(size_t)r * stride + i] += state[i];
}

/* ---------------------------------------------------------------- aloha_policy.py */

/* _joint_flip_mask */
static const double k_aloha_flip[14] = {1, -1, -1, 1, 1, 1, 1, 1, -1, -1, 1, 1, 1, 1};

static double aloha_unnormalize(double x, double lo, double hi) { return x * (hi - lo) + lo; }
static double aloha_normalize(double x, double lo, double hi) { return (x - lo) / (hi - lo); }

/* _gripper_to_angular: Aloha's linear gripper position (PUPPET_GRIPPER_POSITION_OPEN/CLOSED)
 * through the inverse of Interbotix's angular → linear horn geometry, normalized to π's range. */
static double gripper_to_angular(double v) {
    const double arm = 0.036, horn = 0.022;
    const double lin = aloha_unnormalize(v, 0.01844, 0.05800);
    double c = (horn * horn + lin * lin - arm * arm) / (2 * horn * lin);
    c = c < -1 ? -1 : c > 1 ? 1 : c; /* np.clip */
    return aloha_normalize(asin(c), 0.5476, 1.6296);
}

/* _gripper_from_angular: π's gripper angle to Aloha's PUPPET_GRIPPER_JOINT range. */
static double gripper_from_angular(double v) { return aloha_normalize(v + 0.5476, -0.6213, 1.4910); }

/* _decode_state(adapt_to_pi=True) */
void pt_aloha_state_to_pi(double *state) {
    for (int i = 0; i < 14; i++) state[i] *= k_aloha_flip[i];
    state[6] = gripper_to_angular(state[6]);
    state[13] = gripper_to_angular(state[13]);
}

/* _encode_actions(adapt_to_pi=True) on actions[:, :14] */
void pt_aloha_actions_from_pi(double *actions, int rows, int stride) {
    for (int r = 0; r < rows; r++) {
        double *a = actions + (size_t)r * stride;
        for (int i = 0; i < 14; i++) a[i] *= k_aloha_flip[i];
        a[6] = gripper_from_angular(a[6]);
        a[13] = gripper_from_angular(a[13]);
    }
}

/* ---------------------------------------------------------------- _parse_image */

static uint8_t clamp_u8(double v) { return (uint8_t)(v <= 0 ? 0 : v >= 255 ? 255 : v); }

long pt_image_f32_to_u8(const float *x, size_t n, uint8_t *out) {
    for (size_t i = 0; i < n; i++) {
        if (!isfinite(x[i])) return (long)i;
        out[i] = clamp_u8(255.0f * x[i]); /* numpy: a float32 array times a Python int stays float32 */
    }
    return -1;
}

long pt_image_f64_to_u8(const double *x, size_t n, uint8_t *out) {
    for (size_t i = 0; i < n; i++) {
        if (!isfinite(x[i])) return (long)i;
        out[i] = clamp_u8(255.0 * x[i]);
    }
    return -1;
}

/* ---------------------------------------------------------------- lerobot v1 (lerobot.md §9.2) */

/* modeling_pi0.py (≤ v0.3.3) _pi_aloha_decode_state / _pi_aloha_encode_actions, float32 as its
 * torch code: lerobot's own constants, not openpi's (its gripper maps differ). */
static const int k_v1_flip[4] = {1, 2, 8, 9};

static float v1_gripper_to_angular(float v) {
    const float g = v * (0.058f - 0.01844f) + 0.01844f;
    float c = (0.022f * 0.022f + g * g - 0.036f * 0.036f) / (2.0f * 0.022f * g);
    c = c < -1.0f ? -1.0f : c > 1.0f ? 1.0f : c;
    return (asinf(c) - 0.4f) / 1.1f;
}

void lt_aloha_v1_state(float *state) {
    for (int i = 0; i < 4; i++) state[k_v1_flip[i]] = -state[k_v1_flip[i]];
    state[6] = v1_gripper_to_angular(state[6]);
    state[13] = v1_gripper_to_angular(state[13]);
}

void lt_aloha_v1_actions(float *actions, int rows, int stride) {
    for (int r = 0; r < rows; r++) {
        float *a = actions + (size_t)r * stride;
        for (int i = 0; i < 4; i++) a[k_v1_flip[i]] = -a[k_v1_flip[i]];
        a[6] = ((a[6] * 1.1f + 0.4f) + 0.6213f) / 2.1123f;
        a[13] = ((a[13] * 1.1f + 0.4f) + 0.6213f) / 2.1123f;
    }
}
