/* fuzz_norm_stats — norm_stats.json in z-score and quantile mode; stats that load are applied to a
 * state and an action chunk longer and shorter than the stats. */
#include "fuzz_util.h"
#include "pi0.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    const char *path = fuzz_file(data, size);
    for (int quantile = 0; quantile < 2; quantile++) {
        pi0_norm_stats *ns = pi0_norm_stats_create();
        if (pi0_norm_stats_load(ns, path, quantile) == PI0_OK) {
            float state[64] = {0}, actions[4 * 40] = {0};
            pi0_norm_stats_normalize_state(ns, state, 64);
            pi0_norm_stats_normalize_state(ns, state, 3);
            pi0_norm_stats_unnormalize_actions(ns, actions, 4, 40);
            if (pi0_norm_stats_dim(ns, 0) <= 0 || pi0_norm_stats_dim(ns, 1) <= 0) abort();
        }
        pi0_norm_stats_free(ns);
    }
    return 0;
}
