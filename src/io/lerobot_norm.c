/* lerobot_norm.c — see lerobot_norm.h. Every expression is evaluated left to right in float32,
 * exactly as lerobot writes it (the golden vectors expect bit-exact results). */
#include "lerobot_norm.h"

static const char *k_modes[] = {"IDENTITY", "MEAN_STD", "MIN_MAX", "QUANTILES", "QUANTILE10", "MIN_MAX (v1)"};

int lerobot_norm_mode_from_name(const char *name) {
    for (int i = 0; name && i < 5; i++)
        if (!strcmp(name, k_modes[i])) return i;
    return -1;
}

const char *lerobot_norm_mode_name(lerobot_norm_mode m) { return (unsigned)m < 6 ? k_modes[m] : "?"; }

void lerobot_norm_stat_names(lerobot_norm_mode m, const char **a, const char **b) {
    static const char *names[6][2] = {{NULL, NULL}, {"mean", "std"}, {"min", "max"}, {"q01", "q99"}, {"q10", "q90"},
                                      {"min", "max"}};
    *a = (unsigned)m < 6 ? names[m][0] : NULL;
    *b = (unsigned)m < 6 ? names[m][1] : NULL;
}

void lerobot_normalize(lerobot_norm_mode m, int inverse, float *x, int n, const float *a, const float *b) {
    const float eps = 1e-8f;
    for (int i = 0; i < n && m != LR_IDENTITY; i++) {
        if (m == LR_MEAN_STD) { /* a = mean, b = std */
            x[i] = inverse ? x[i] * b[i] + a[i] : (x[i] - a[i]) / (b[i] + eps);
            continue;
        }
        if (m == LR_MIN_MAX_V1) { /* eps always added forward, never inverse */
            x[i] = inverse ? (x[i] + 1.0f) / 2.0f * (b[i] - a[i]) + a[i] : (x[i] - a[i]) / (b[i] - a[i] + eps) * 2.0f - 1.0f;
            continue;
        }
        float d = b[i] - a[i]; /* max − min, q99 − q01, q90 − q10 */
        if (d == 0.0f) d = eps;
        if (m == LR_MIN_MAX)
            x[i] = inverse ? (x[i] + 1.0f) / 2.0f * d + a[i] : 2.0f * (x[i] - a[i]) / d - 1.0f;
        else /* QUANTILES, QUANTILE10 */
            x[i] = inverse ? (x[i] + 1.0f) * d / 2.0f + a[i] : 2.0f * (x[i] - a[i]) / d - 1.0f;
    }
}
