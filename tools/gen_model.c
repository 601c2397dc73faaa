/* gen_model.c — `pi0 gen-model`: a random π0 checkpoint in the released key layout, scaled like
 * the golden cases (matrices ~N(0, 1/fan_in), embedding tables ~N(0, 1), biases ~N(0, 0.05²),
 * LayerNorm scales 1 + N(0, 0.1²), Gemma RMSNorm scales N(0, 0.1²) around their neutral 0).
 * The file is written streaming, one tensor chunk at a time, so the full 3.3 B-parameter model
 * never sits in memory. */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>

#include "cli.h"
#include "../src/io/safetensors.h"
#include "../src/model/config.h"
#include "../src/model/weights.h"

typedef struct {
    const char *prefix;   /* prepended to every key ("model." for lerobot's layout) */
    st_decl *decls;
    char **names;
    char *kinds;
    int *fan_in;
    int n, cap;
    pi0_dtype dtype;
} gen_list;

static void collect(void *user, const char *name, int ndim, const int64_t *shape, char kind, int fan_in) {
    gen_list *g = user;
    if (g->n == g->cap) {
        g->cap = g->cap ? 2 * g->cap : 512;
        g->decls = realloc(g->decls, g->cap * sizeof *g->decls);
        g->names = realloc(g->names, g->cap * sizeof *g->names);
        g->kinds = realloc(g->kinds, g->cap);
        g->fan_in = realloc(g->fan_in, g->cap * sizeof *g->fan_in);
        if (!g->decls || !g->names || !g->kinds || !g->fan_in) { fprintf(stderr, "pi0: out of memory\n"); exit(1); }
    }
    size_t len = strlen(g->prefix) + strlen(name) + 1;
    g->names[g->n] = malloc(len);
    if (g->names[g->n]) snprintf(g->names[g->n], len, "%s%s", g->prefix, name);
    st_decl *d = &g->decls[g->n];
    d->name = g->names[g->n];
    d->dtype = g->dtype;
    d->ndim = ndim;
    memcpy(d->shape, shape, ndim * sizeof *shape);
    g->kinds[g->n] = kind;
    g->fan_in[g->n] = fan_in;
    g->n++;
}

static pi0_status write_tensor(st_writer *w, const st_decl *d, char kind, int fan_in, pi0_rng *rng,
                               pi0_err *e) {
    enum { CHUNK = 1 << 20 };
    static float buf[CHUNK];
    static uint16_t half[CHUNK];
    size_t n = st_decl_nbytes(d) / dtype_size(d->dtype);
    float scale = 1.0f, shift = 0.0f;
    switch (kind) {
    case 'm': case 'p': case 't': scale = 1.0f / sqrtf((float)fan_in); break;
    case 'd': scale = 0.1f / sqrtf((float)fan_in); break; /* adaRMS dense: small modulations */
    case 'e': scale = 1.0f; break;
    case 'b': scale = 0.05f; break;
    case 'l': scale = 0.1f; shift = 1.0f; break;
    case 'n': scale = 0.1f; break;
    }
    for (size_t done = 0; done < n;) {
        size_t k = n - done < CHUNK ? n - done : CHUNK;
        rng_gaussian(rng, buf, k);
        for (size_t i = 0; i < k; i++) buf[i] = buf[i] * scale + shift;
        if (kind == 'g') /* adaRMS bias [scale | shift | gate]: the gate third near 1 */
            for (size_t i = 0; i < k; i++) buf[i] = buf[i] * 0.05f + ((done + i) >= 2 * n / 3 ? 1.0f : 0.0f);
        if (d->dtype == DT_BF16) {
            for (size_t i = 0; i < k; i++) half[i] = f32_to_bf16(buf[i]);
            FORWARD_ERR(st_writer_write(w, half, k * 2, e));
        } else {
            FORWARD_ERR(st_writer_write(w, buf, k * 4, e));
        }
        done += k;
    }
    return PI0_OK;
}

pi0_status gen_lerobot_files(const pi0_config *c, const char *out, int S, int A, int relative, uint64_t seed,
                             pi0_err *e); /* gen_lerobot.c */

int cmd_gen_model(int argc, char **argv) {
    const char *cfg_name = NULL, *out = NULL, *dtype = "f32", *layout = "openpi";
    uint64_t seed = 0;
    int pi05 = 0, relative = 0, assets = 0, S = 0, A = 0;
    for (int i = 0; i < argc; i += 2) { /* an option and its value */
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (cli_is_help(a)) return cli_help("gen-model");
        if (!strcmp(a, "--pi05")) { pi05 = 1; i--; continue; } /* flags: no value */
        if (!strcmp(a, "--relative-actions")) { relative = 1; i--; continue; }
        if (!strcmp(a, "--assets")) { assets = 1; i--; continue; }
        if (!strcmp(a, "--layout")) layout = v;
        else if (!strcmp(a, "--state-dim")) { if (cli_parse_int("gen-model", a, v, 1, 4096, &S)) return 1; }
        else if (!strcmp(a, "--action-dim")) { if (cli_parse_int("gen-model", a, v, 1, 4096, &A)) return 1; }
        else if (!strcmp(a, "--config")) cfg_name = v;
        else if (!strcmp(a, "--out")) out = v;
        else if (!strcmp(a, "--dtype")) dtype = v;
        else if (!strcmp(a, "--seed")) { if (cli_parse_u64("gen-model", a, v, &seed)) return 1; }
        else return cli_usage_error("gen-model: unknown option '%s'", a);
        if (!v) return cli_usage_error("gen-model: option '%s' needs a value", a);
    }
    if (!cfg_name || !out)
        return cli_usage_error("gen-model needs --config tiny|small|demo|full|FILE.json and --out DIR [--pi05]");
    if (strcmp(dtype, "f32") && strcmp(dtype, "bf16"))
        return cli_usage_error("gen-model: --dtype must be f32 or bf16, not '%s'", dtype);
    if (strcmp(layout, "openpi") && strcmp(layout, "lerobot"))
        return cli_usage_error("gen-model: --layout must be openpi or lerobot, not '%s'", layout);
    const int lerobot = !strcmp(layout, "lerobot");
    if (lerobot && assets) return cli_usage_error("gen-model: --assets goes with --layout openpi");
    if (!lerobot && (S || A || relative))
        return cli_usage_error("gen-model: --state-dim, --action-dim and --relative-actions go with --layout lerobot");
    pi0_config c;
    pi0_err e = {{0}};
    if (!config_preset(&c, cfg_name, pi05)) {
        if (config_load(&c, cfg_name, &e) != PI0_OK) return cli_error(2, "%s", e.msg);
        if (pi05 && !c.pi05) return cli_error(2, "%s describes a pi0 model; --pi05 contradicts it", cfg_name);
    }
    c.random_weights = 1;
    if (mkdir(out, 0755) != 0 && errno != EEXIST)
        return cli_error(2, "%s: cannot create directory: %s", out, strerror(errno));

    if (!S) S = c.state_dim < 7 ? c.state_dim : 7; /* the robot's native lengths (lerobot) */
    if (!A) A = c.action_dim < 7 ? c.action_dim : 7;
    if (S > c.state_dim || A > c.action_dim)
        return cli_error(2, "--state-dim %d / --action-dim %d exceed the model's %d / %d", S, A, c.state_dim, c.action_dim);
    gen_list g = {0};
    g.prefix = lerobot ? "model." : ""; /* lerobot saves the policy's "model." submodule */
    g.dtype = strcmp(dtype, "bf16") == 0 ? DT_BF16 : DT_F32;
    weights_visit(&c, collect, &g);
    char path[4096];
    snprintf(path, sizeof path, "%s/model.safetensors", out);
    st_writer *w;
    pi0_status st = st_writer_open(&w, path, g.decls, g.n, &e);
    pi0_rng rng;
    rng_seed(&rng, seed);
    for (int i = 0; st == PI0_OK && i < g.n; i++) {
        st = write_tensor(w, &g.decls[i], g.kinds[i], g.fan_in[i], &rng, &e);
        if (st != PI0_OK) st_writer_abort(w);
    }
    if (st == PI0_OK) st = st_writer_finish(w, &e);
    double params = 0;
    for (int i = 0; i < g.n; i++) params += (double)(st_decl_nbytes(&g.decls[i]) / dtype_size(g.dtype));
    for (int i = 0; i < g.n; i++) free(g.names[i]);
    free(g.names); free(g.decls); free(g.kinds); free(g.fan_in);
    if (st != PI0_OK) return cli_error(2, "%s", e.msg);

    if (lerobot) {
        if (gen_lerobot_files(&c, out, S, A, relative, seed, &e) != PI0_OK) return cli_error(2, "%s", e.msg);
    } else {
        char *json = config_to_json(&c);
        snprintf(path, sizeof path, "%s/config.json", out);
        FILE *fp = fopen(path, "w");
        int ok = json && fp && fputs(json, fp) >= 0;
        if (fp && fclose(fp) != 0) ok = 0;
        free(json);
        if (!ok) return cli_error(2, "%s: cannot write", path);
        if (assets && gen_asset_norm_stats(out, c.state_dim, c.action_dim) != 0) return 2;
    }
    fprintf(stderr, "pi0: wrote %s (%s, %s layout, %.3f B parameters, %s, seed %llu): random weights, for tests "
            "and benchmarks only\n", out, c.pi05 ? "pi0.5" : "pi0", layout, params / 1e9, dtype, (unsigned long long)seed);
    return 0;
}
