/* lerobot_norm.h — lerobot's normalization (spec lerobot.md §3, processor/normalize_processor.py):
 * five modes, float32 arithmetic in lerobot's order, eps = float32(1e-8) only where the range is
 * zero (and added to std in MEAN_STD's forward direction), no clipping. Not openpi's formulas
 * (norm_stats.c: z-score and quantiles with 1e-6). */
#ifndef PI0_LEROBOT_NORM_H
#define PI0_LEROBOT_NORM_H

#include "../common.h"

/* LR_MIN_MAX_V1: lerobot ≤ v0.3.3's min-max, (x − min)/(max − min + 1e-8)·2 − 1, inverse
 * (x + 1)/2·(max − min) + min (lerobot.md §9.2). */
typedef enum { LR_IDENTITY, LR_MEAN_STD, LR_MIN_MAX, LR_QUANTILES, LR_QUANTILE10, LR_MIN_MAX_V1 } lerobot_norm_mode;

/* "IDENTITY", "MEAN_STD", ...; -1 if unknown. */
int lerobot_norm_mode_from_name(const char *name);
const char *lerobot_norm_mode_name(lerobot_norm_mode m);
/* The two statistics a mode reads ("mean", "std" / "min", "max" / "q01", "q99" / "q10", "q90"). */
void lerobot_norm_stat_names(lerobot_norm_mode m, const char **a, const char **b);

/* In place on x[0..n): forward (normalize) or inverse, with the mode's two stat vectors a, b
 * (mean/std, min/max, lo/hi quantiles) of length n. */
void lerobot_normalize(lerobot_norm_mode m, int inverse, float *x, int n, const float *a, const float *b);

#endif
