/* fuzz_protocol — one WebSocket frame of `pi0 serve`: the openpi observation decoder for every
 * preset (with and without ALOHA's adapt_to_pi), against the golden tiny model's shapes, a small
 * tokenizer whose ids fit that model, and norm stats for its 6-dim state. */
#include <stdio.h>
#include <stdlib.h>

#include "../src/serve/protocol.h"

#ifndef PI0_FUZZ_MODEL
#define PI0_FUZZ_MODEL "../shared/golden/tiny-f32"
#endif
#ifndef PI0_FUZZ_TOKENIZER
#define PI0_FUZZ_TOKENIZER "fuzz/corpus/tokenizer_json/small.json"
#endif
#ifndef PI0_FUZZ_NORM_STATS
#define PI0_FUZZ_NORM_STATS "fuzz/corpus/norm_stats/state6.json"
#endif

static pi0_model *g_model;
static pi0_tokenizer *g_tok;
static pi0_norm_stats *g_ns;
static pi0_obs *g_obs;

static const char *env_or(const char *name, const char *def) {
    const char *v = getenv(name);
    return v && *v ? v : def;
}

int LLVMFuzzerInitialize(int *argc, char ***argv) {
    (void)argc; (void)argv;
    const char *model = env_or("PI0_FUZZ_MODEL", PI0_FUZZ_MODEL), *tok = env_or("PI0_FUZZ_TOKENIZER", PI0_FUZZ_TOKENIZER),
               *ns = env_or("PI0_FUZZ_NORM_STATS", PI0_FUZZ_NORM_STATS);
    g_model = pi0_model_create();
    g_tok = pi0_tokenizer_create();
    g_ns = pi0_norm_stats_create();
    g_obs = pi0_obs_create();
    if (pi0_model_load(g_model, model) != PI0_OK || pi0_tokenizer_load(g_tok, tok) != PI0_OK ||
        pi0_norm_stats_load(g_ns, ns, 0) != PI0_OK || pi0_obs_init(g_obs, g_model) != PI0_OK) {
        fprintf(stderr, "fuzz_protocol: setup failed (%s | %s | %s); set PI0_FUZZ_MODEL / PI0_FUZZ_TOKENIZER / "
                "PI0_FUZZ_NORM_STATS\n", pi0_model_error(g_model), pi0_tokenizer_error(g_tok),
                pi0_norm_stats_error(g_ns));
        exit(1);
    }
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    char err[512];
    for (int p = 0; p < 4; p++)
        for (int variant = 0; variant < 2; variant++) {
            if (variant && p != PRESET_ALOHA && p != PRESET_LIBERO) continue;
            /* libero: with and without norm stats; aloha: with and without adapt_to_pi */
            serve_config cfg = {(serve_preset)p, p == PRESET_DROID ? "default prompt" : NULL, g_tok,
                                p == PRESET_LIBERO && variant ? NULL : g_ns, !variant};
            if (serve_decode_observation(&cfg, (const char *)data, size, g_obs, err, sizeof err) == PI0_OK) {
                const pi0_inputs *in = pi0_obs_inputs(g_obs);
                if (!in) abort(); /* decode succeeded: the observation must be complete */
            } else if (!err[0]) {
                abort(); /* every refusal says why */
            }
        }
    return 0;
}
