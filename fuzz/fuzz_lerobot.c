/* fuzz_lerobot — a lerobot checkpoint's description (io/lerobot_ckpt.c): config.json, the
 * processor JSONs and a caller's stats.json. The input is split at NUL bytes into
 *   config.json \0 policy_preprocessor.json \0 policy_postprocessor.json \0 stats.json
 * (missing parts: the file is absent), written into a scratch checkpoint directory that also
 * holds a valid statistics file, stats.safetensors (observation.state.* of 6 values, action.* of
 * 5), which the processor steps may name as their state_file. Each input is read as every layout,
 * with and without the stats.json override; what loads must be self-consistent. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../src/io/lerobot_ckpt.h"
#include "../src/io/safetensors.h"

static char g_dir[64];

static void put(const char *name, const uint8_t *data, size_t n, int present) {
    char path[128];
    snprintf(path, sizeof path, "%s/%s", g_dir, name);
    if (!present) {
        unlink(path);
        return;
    }
    FILE *f = fopen(path, "wb");
    if (!f || (n && fwrite(data, 1, n, f) != n) || fclose(f) != 0) { perror(path); abort(); }
}

int LLVMFuzzerInitialize(int *argc, char ***argv) {
    (void)argc;
    (void)argv;
    snprintf(g_dir, sizeof g_dir, "/tmp/pi0-fuzz-lerobot-XXXXXX");
    if (!mkdtemp(g_dir)) { perror("mkdtemp"); abort(); }
    static const char *stats[] = {"mean", "std", "min", "max", "q01", "q99", "q10", "q90"};
    st_decl d[16];
    float v[16][6];
    const void *data[16];
    for (int i = 0; i < 16; i++) {
        const int state = i < 8;
        snprintf((char *)(d[i].name = malloc(64)), 64, "%s.%s", state ? "observation.state" : "action", stats[i % 8]);
        d[i].dtype = DT_F32;
        d[i].ndim = 1;
        d[i].shape[0] = state ? 6 : 5;
        for (int k = 0; k < 6; k++) v[i][k] = (float)(i % 8 >= 2 && i % 2 ? 1 + k : 0.5 * k - 1);
        data[i] = v[i];
    }
    char path[128];
    snprintf(path, sizeof path, "%s/stats.safetensors", g_dir);
    pi0_err e;
    if (st_write_file(path, d, data, 16, &e) != PI0_OK) { fprintf(stderr, "%s\n", e.msg); abort(); }
    for (int i = 0; i < 16; i++) free((void *)d[i].name);
    return 0;
}

static void check(const lerobot_spec *s) {
    if (s->n_cameras < 0 || s->n_cameras > LEROBOT_MAX_CAMERAS) abort();
    for (int i = 0; i < s->n_cameras; i++)
        if (!memchr(s->cameras[i], 0, LEROBOT_KEY)) abort();
    const lerobot_feature_norm *f[2] = {&s->state, &s->action};
    const int dim[2] = {s->state_dim, s->action_dim};
    for (int k = 0; k < 2; k++) {
        if (f[k]->mode == LR_IDENTITY) continue;
        if (!f[k]->a || !f[k]->b || f[k]->n < 1 || f[k]->n > LEROBOT_MAX_DIM) abort();
        if (dim[k] && f[k]->n != dim[k]) abort(); /* refused at load otherwise */
        volatile float sum = 0; /* every statistic readable */
        for (int i = 0; i < f[k]->n; i++) sum += f[k]->a[i] + f[k]->b[i];
        (void)sum;
    }
    if (s->n_renames < 0 || s->n_renames > LEROBOT_MAX_RENAMES) abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    static const char *names[4] = {"config.json", "policy_preprocessor.json", "policy_postprocessor.json", "stats.json"};
    size_t start = 0;
    for (int part = 0; part < 4; part++) {
        const uint8_t *nul = start <= size ? memchr(data + start, 0, size - start) : NULL;
        const size_t end = nul ? (size_t)(nul - data) : size;
        put(names[part], data + start, start <= size ? end - start : 0, start <= size);
        start = end + 1;
    }
    char stats_json[128];
    snprintf(stats_json, sizeof stats_json, "%s/stats.json", g_dir);
    lerobot_layout detected;
    (void)lerobot_detect(g_dir, &detected);
    for (int layout = LEROBOT_CURRENT; layout <= LEROBOT_V1; layout++)
        for (int over = 0; over < 2; over++) {
            lerobot_spec s;
            pi0_err e;
            e.msg[0] = 0;
            if (lerobot_spec_load(&s, g_dir, (lerobot_layout)layout, over ? stats_json : NULL, &e) == PI0_OK) {
                check(&s);
                lerobot_spec_free(&s);
            } else if (!e.msg[0]) {
                abort(); /* every refusal says why */
            }
        }
    return 0;
}
