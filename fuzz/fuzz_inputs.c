/* fuzz_inputs — inputs_read (pi0 run's observation file) against the tiny model's config, the
 * shapes of the golden tiny-f32 case. */
#include "../src/io/inputs.h"
#include "../src/model/config.h"
#include "fuzz_util.h"

volatile float g_sink;

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    static pi0_config c;
    static int init;
    if (!init) { config_preset(&c, "tiny", 0); init = 1; }
    pi0_input_buf b;
    pi0_err e;
    if (inputs_read(&b, fuzz_file(data, size), &c, &e) != PI0_OK) return 0;
    /* every buffer holds what pi0_inputs says it does */
    const size_t S = (size_t)c.vision.image_size, n = (size_t)b.in.batch;
    float s = 0;
    for (size_t i = 0; i < n * b.in.num_cameras * 3 * S * S; i++) s += b.in.images[i];
    for (size_t i = 0; i < n * c.state_dim; i++) s += b.in.state[i];
    for (size_t i = 0; i < n * c.max_token_len; i++) s += (float)b.in.tokens[i] + b.in.token_mask[i];
    if (b.in.image_masks) for (size_t i = 0; i < n * b.in.num_cameras; i++) s += b.in.image_masks[i];
    if (b.in.noise) for (size_t i = 0; i < n * c.action_horizon * c.action_dim; i++) s += b.in.noise[i];
    g_sink = s;
    inputs_free(&b);
    return 0;
}
