/* norm_stats.h — the library's own view of a loaded norm_stats.json: the statistics in double,
 * as openpi reads them (numpy float64 arrays from JSON), for the policy's Normalize /
 * Unnormalize steps (src/policy/transforms.c). */
#ifndef PI0_NORM_STATS_H
#define PI0_NORM_STATS_H

#include "../common.h"

typedef struct {
    double *mean, *std, *q01, *q99; /* each NULL when the file does not give it */
    int n;                          /* 0 = absent */
} norm_vec;

/* The state (actions = 0) or action (actions = 1) statistics; NULL for a NULL handle. */
const norm_vec *norm_stats_vec(const pi0_norm_stats *ns, int actions);
/* 1 when loaded for quantile normalization (every openpi model type but π0). */
int norm_stats_quantile(const pi0_norm_stats *ns);

#endif
