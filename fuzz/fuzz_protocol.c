/* fuzz_protocol — one WebSocket frame of `pi0 serve`: the openpi observation decoder and, when a
 * frame decodes, the policy's whole pipeline (robot inputs, normalization, the model, output
 * transforms) for pi0.c's generic, libero and droid presets with and without norm stats, against
 * the golden tiny model's shapes, a small tokenizer whose ids fit that model, and norm stats for
 * its 6-dim state. */
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

#define N_POLICIES 4
static pi0_policy *g_pol[N_POLICIES];
static float g_actions[4096];

static const char *env_or(const char *name, const char *def) {
    const char *v = getenv(name);
    return v && *v ? v : def;
}

int LLVMFuzzerInitialize(int *argc, char ***argv) {
    (void)argc; (void)argv;
    const char *model = env_or("PI0_FUZZ_MODEL", PI0_FUZZ_MODEL), *tok = env_or("PI0_FUZZ_TOKENIZER", PI0_FUZZ_TOKENIZER),
               *ns = env_or("PI0_FUZZ_NORM_STATS", PI0_FUZZ_NORM_STATS);
    /* generic and libero with norm stats, droid with a default prompt, libero without norm stats */
    const char *configs[N_POLICIES] = {"generic", "libero", "droid", "libero"};
    for (int i = 0; i < N_POLICIES; i++) {
        pi0_policy_params pp = pi0_policy_default_params();
        pp.config = configs[i];
        pp.tokenizer = tok;
        pp.norm_stats = i < 2 ? ns : NULL;
        pp.default_prompt = i == 2 ? "default prompt" : NULL;
        pp.fixed_seed = 1;
        pp.model.backend = "ref";
        pp.model.num_threads = 1;
        g_pol[i] = pi0_policy_create();
        if (!g_pol[i] || pi0_policy_load(g_pol[i], model, &pp) != PI0_OK) {
            fprintf(stderr, "fuzz_protocol: setup failed (%s); set PI0_FUZZ_MODEL / PI0_FUZZ_TOKENIZER / "
                    "PI0_FUZZ_NORM_STATS\n", pi0_policy_error(g_pol[i]));
            exit(1);
        }
    }
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    char err[512];
    /* Every policy decodes the frame; one of them (by the frame's size) also runs it through the
     * model and the output transforms, which cost far more than decoding. */
    const int run = (int)(size % N_POLICIES);
    for (int i = 0; i < N_POLICIES; i++) {
        if (serve_decode_observation(g_pol[i], (const char *)data, size, err, sizeof err) == PI0_OK) {
            int rows, dims;
            if (i == run &&
                pi0_policy_infer(g_pol[i], g_actions, sizeof g_actions / sizeof *g_actions, &rows, &dims) != PI0_OK &&
                !pi0_policy_error(g_pol[i])[0])
                abort(); /* every refusal says why */
        } else if (!err[0]) {
            abort(); /* every refusal says why */
        }
    }
    return 0;
}
