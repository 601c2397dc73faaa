/* test_util.h — tiny test harness: CHECK counts and reports, tensor comparison prints max |diff|
 * and PCC, and every test binary ends with "N passed, N failed" and a non-zero exit on failure. */
#ifndef PI0_TEST_UTIL_H
#define PI0_TEST_UTIL_H

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int g_pass, g_fail;

#define CHECK(cond, ...)                                                    \
    do {                                                                    \
        if (cond) {                                                         \
            g_pass++;                                                       \
        } else {                                                            \
            g_fail++;                                                       \
            printf("FAIL %s:%d: ", __FILE__, __LINE__);                     \
            printf(__VA_ARGS__);                                            \
            printf("\n");                                                   \
        }                                                                   \
    } while (0)

static inline int test_summary(void) {
    printf("%d passed, %d failed\n", g_pass, g_fail);
    return g_fail ? 1 : 0;
}

/* Pearson correlation of a and b over n elements (rows where use[r] != 0 if use given, with
 * `cols` elements per row). Also returns max |a-b|, max |a| and whether any value is NaN. */
typedef struct {
    double pcc, max_diff, max_ref;
    int nan, n;
} cmp_result;

static inline cmp_result compare(const float *ref, const float *got, int rows, int cols,
                                 const unsigned char *use) {
    cmp_result r = {0};
    double ma = 0, mb = 0;
    for (int pass = 0; pass < 2; pass++) {
        double saa = 0, sbb = 0, sab = 0, sa = 0, sb = 0;
        r.n = 0;
        for (int i = 0; i < rows; i++) {
            if (use && !use[i]) continue;
            for (int j = 0; j < cols; j++) {
                double a = ref[(size_t)i * cols + j], b = got[(size_t)i * cols + j];
                if (pass == 0) {
                    if (isnan(a) || isnan(b)) r.nan = 1;
                    if (fabs(a - b) > r.max_diff) r.max_diff = fabs(a - b);
                    if (fabs(a) > r.max_ref) r.max_ref = fabs(a);
                    sa += a; sb += b;
                } else {
                    saa += (a - ma) * (a - ma); sbb += (b - mb) * (b - mb); sab += (a - ma) * (b - mb);
                }
                r.n++;
            }
        }
        if (pass == 0) { ma = r.n ? sa / r.n : 0; mb = r.n ? sb / r.n : 0; }
        else r.pcc = (saa > 0 && sbb > 0) ? sab / sqrt(saa * sbb) : (r.max_diff == 0 ? 1.0 : 0.0);
    }
    return r;
}

#endif
