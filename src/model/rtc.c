/* rtc.c — real-time chunking's scalars, as lerobot computes them (policies/rtc/modeling_rtc.py):
 * the prefix-weight schedules and the guidance weight, in float32 operation by operation (this
 * file is compiled with -ffp-contract=off). The guided Euler step itself is in forward.c. */
#include <math.h>
#include <string.h>

#include "model.h"

static const char *const k_schedules[] = {"ZEROS", "ONES", "LINEAR", "EXP"};

pi0_rtc pi0_rtc_default(void) {
    return (pi0_rtc){.prev = NULL, .prev_rows = 0, .prev_dims = 0, .inference_delay = 0,
                     .execution_horizon = 10, .schedule = PI0_RTC_LINEAR, .max_guidance_weight = 10.0f,
                     .jacobian = PI0_RTC_JACOBIAN_LEROBOT, .mode = PI0_RTC_GUIDED};
}

int pi0_rtc_schedule_from_name(const char *name) {
    for (int i = 0; name && i < 4; i++)
        if (!strcmp(name, k_schedules[i])) return i;
    return -1;
}

const char *pi0_rtc_schedule_name(int schedule) {
    return schedule >= 0 && schedule < 4 ? k_schedules[schedule] : NULL;
}

int pi0_rtc_jacobian_from_name(const char *name) {
    if (name && !strcmp(name, "lerobot")) return PI0_RTC_JACOBIAN_LEROBOT;
    if (name && !strcmp(name, "exact")) return PI0_RTC_JACOBIAN_EXACT;
    return -1;
}

/* torch.linspace(1, 0, steps)[i] for float32 on the CPU: step = (end − start)/(steps − 1) in
 * float, start + step·i for the first half, end − step·(steps − 1 − i) for the second. */
static float linspace_1_0(int i, int steps) {
    const float step = (0.0f - 1.0f) / (float)(steps - 1);
    return i < steps / 2 ? 1.0f + step * (float)i : 0.0f - step * (float)(steps - 1 - i);
}

pi0_status pi0_rtc_prefix_weights(int schedule, int delay, int horizon, int total, float *w) {
    if (!w || total < 1 || delay < 0 || horizon < 0 || schedule < PI0_RTC_ZEROS || schedule > PI0_RTC_EXP)
        return PI0_ERR_ARG;
    const int start = delay < horizon ? delay : horizon, end = horizon; /* start = min(start, end) */
    if (schedule == PI0_RTC_ZEROS || schedule == PI0_RTC_ONES) {
        /* ZEROS: zeros, weights[:start] = 1; ONES: ones, weights[end:] = 0 */
        for (int i = 0; i < total; i++) w[i] = schedule == PI0_RTC_ZEROS ? (float)(i < start) : (float)(i < end);
        return PI0_OK;
    }
    /* _linweights: linspace(1, 0, n + 2)[1:-1] with n = total − max(total − end, 0) − start, empty
     * when end <= start or n <= 0; then total − end trailing zeros and min(start, total) leading
     * ones, concatenated (their lengths add up to total whenever end <= total). */
    const int skip = total - end > 0 ? total - end : 0, n = total - skip - start;
    const int nlin = (end <= start || n <= 0) ? 0 : n, nzero = total - end > 0 ? total - end : 0;
    const int nones = start < total ? start : total;
    if (nones + nlin + nzero != total) return PI0_ERR_ARG; /* horizon past the chunk: lerobot's sizes differ */
    int k = 0;
    for (int i = 0; i < nones; i++) w[k++] = 1.0f;
    for (int i = 0; i < nlin; i++) {
        float x = linspace_1_0(i + 1, nlin + 2);
        /* EXP: x · expm1(x) / (e − 1), the divisor a Python float taken as float32 */
        if (schedule == PI0_RTC_EXP) x = x * (expm1f(x) / (float)(2.718281828459045 - 1.0));
        w[k++] = x;
    }
    for (int i = 0; i < nzero; i++) w[k++] = 0.0f;
    return PI0_OK;
}

/* tau = 1 − time in Python floats (time = 1.0 + k·dt, dt = −1.0/n), then float32 tensors:
 *   inv_r2 = ((1−τ)² + τ²)/(1−τ)²;  c = nan_to_num((1−τ)/τ, posinf = max);
 *   g = min(nan_to_num(c·inv_r2, posinf = max), max). */
float pi0_rtc_guidance_weight(int k, int n, float max_guidance_weight) {
    const double time = 1.0 + (double)k * (-1.0 / (double)n);
    const float tau = (float)(1.0 - time), one_m = 1.0f - tau, sq = one_m * one_m;
    const float inv_r2 = (sq + tau * tau) / sq;
    float c = one_m / tau;
    if (isnan(c)) c = 0.0f;
    else if (isinf(c)) c = c > 0 ? max_guidance_weight : -3.4028235e38f;
    float g = c * inv_r2;
    if (isnan(g)) g = 0.0f;
    else if (isinf(g)) g = g > 0 ? max_guidance_weight : -3.4028235e38f;
    return g < max_guidance_weight ? g : max_guidance_weight;
}
