/* fuzz_config — config.json in its three dialects; a config that parses is printed back and
 * parsed again, and must give the same numbers. */
#include <stdlib.h>

#include "../src/model/config.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    pi0_config c, c2;
    pi0_err e;
    if (config_parse(&c, (const char *)data, size, "config.json", &e) != PI0_OK) return 0;
    char *json = config_to_json(&c);
    if (!json) return 0;
    if (config_parse(&c2, json, strlen(json), "round trip", &e) != PI0_OK) abort();
    if (c2.action_dim != c.action_dim || c2.vlm.width != c.vlm.width || c2.num_cameras != c.num_cameras) abort();
    free(json);
    return 0;
}
