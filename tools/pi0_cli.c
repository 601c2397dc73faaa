/* pi0_cli.c — the `pi0` command: subcommand dispatch and `pi0 run`. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <dirent.h>
#include <sys/stat.h>

#include "cli.h"
#include "../src/io/inputs.h"

int cli_error(int code, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    fputs("pi0: error: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    return code;
}

int cli_usage_error(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    fputs("pi0: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputs(" (see 'pi0 help')\n", stderr);
    va_end(ap);
    return 1;
}

const char *cli_find_tokenizer(const char *model, char *buf, size_t n) {
    const char *names[] = {"tokenizer.json", "tokenizer.model", "paligemma_tokenizer.model"};
    struct stat sb;
    for (int i = 0; i < 3; i++) {
        snprintf(buf, n, "%s/%s", model, names[i]);
        if (stat(buf, &sb) == 0 && S_ISREG(sb.st_mode)) return buf;
    }
    const char *env = getenv("PI0_TOKENIZER");
    return env && *env ? env : NULL;
}

int cli_find_norm_stats(const char *model, char *buf, size_t n) {
    struct stat sb;
    snprintf(buf, n, "%s/norm_stats.json", model);
    if (stat(buf, &sb) == 0 && S_ISREG(sb.st_mode)) return 1;
    /* openpi's converted checkpoints carry assets/<asset_id>/norm_stats.json */
    char dir[4200];
    snprintf(dir, sizeof dir, "%s/assets", model);
    DIR *d = opendir(dir);
    int found = 0;
    for (struct dirent *de; d && (de = readdir(d));) {
        if (de->d_name[0] == '.') continue;
        char cand[8400];
        snprintf(cand, sizeof cand, "%s/%s/norm_stats.json", dir, de->d_name);
        if (stat(cand, &sb) == 0 && S_ISREG(sb.st_mode)) {
            if (!found) snprintf(buf, n, "%s", cand);
            found++;
        }
    }
    if (d) closedir(d);
    return found;
}

int cli_load_norm_stats(const char *model, const char *path, const char *who, int quantile,
                        pi0_norm_stats **out) {
    char buf[4200];
    *out = NULL;
    if (!path) {
        int found = cli_find_norm_stats(model, buf, sizeof buf);
        if (found > 1)
            return cli_error(2, "%s holds norm stats for %d robots (assets/*/norm_stats.json): choose one with "
                             "--norm-stats", model, found);
        if (!found) return 0;
        path = buf;
        fprintf(stderr, "%s: using norm stats %s (%s)\n", who, path, quantile ? "quantile" : "z-score");
    }
    *out = pi0_norm_stats_create();
    if (!*out || pi0_norm_stats_load(*out, path, quantile) != PI0_OK) return cli_error(2, "%s", pi0_norm_stats_error(*out));
    return 0;
}

static void usage(FILE *fp) {
    fputs("usage: pi0 <command> [options]\n"
          "\n"
          "commands:\n"
          "  infer      --model DIR --prompt TEXT --state v1,v2,... [--image CAMERA=FILE ...]\n"
          "             [--norm-stats FILE] [--action-dims N] [--seed N] [--noise FILE]\n"
          "             [--format table|json|csv] [--tokenizer FILE] [--backend fast|ref] [--threads N]\n"
          "             [--save-inputs FILE]\n"
          "             run the policy on one observation; cameras: base_0_rgb, left_wrist_0_rgb,\n"
          "             right_wrist_0_rgb (missing ones are black and masked)\n"
          "  run        --model DIR --inputs FILE.safetensors --out FILE.safetensors\n"
          "             [--backend fast|ref] [--threads N] [--seed N] [--dump] [--full-prefix]\n"
          "             run the policy on preprocessed inputs (names as in golden/*/inputs);\n"
          "             writes 'actions' [H, A] (and every intermediate with --dump)\n"
          "  serve      --model DIR [--port 8000] [--host 127.0.0.1] [--preset libero|droid|aloha|generic]\n"
          "             [--norm-stats FILE] [--default-prompt TEXT] [--tokenizer FILE] [--seed N]\n"
          "             [--action-dims N] [--max-message-mb 64] [--adapt-to-pi true|false]\n"
          "             [--backend NAME] [--threads N]\n"
          "             openpi-compatible WebSocket policy server (GET /healthz answers OK)\n"
          "  gen-model  --config tiny|small|demo|full|FILE.json --out DIR [--dtype f32|bf16] [--seed N] [--pi05]\n"
          "             write a random-weight checkpoint (for tests and benchmarks)\n"
          "  gen-image  --out FILE.png [--width W --height H]   a synthetic tabletop scene\n"
          "  check      --model DIR [--inputs FILE] [--cameras N] [--tokens N]\n"
          "             ref vs fast, component by component (PCC, max |diff|); exit 2 on failure\n"
          "  verify     --model DIR [--cameras N] [--tokens N] [--backend NAME]\n"
          "             which backend ran every op of a real run: calls, FLOPs, time, fallbacks\n"
          "  bench      --model DIR [--cameras 1|2|3] [--runs N] [--tokens N] [--small DIR]\n"
          "             per-stage median time, GFLOP/s, fraction of measured peak, peak RSS\n"
          "  help       this text\n",
          fp);
}

/* ---------------------------------------------------------------- dumps */

typedef struct {
    st_decl *decls;
    float **data;
    int n, cap;
    int failed;
} dump_list;

static void on_dump(void *user, const char *name, const float *data, int ndim, const int64_t *shape) {
    dump_list *d = user;
    if (d->failed) return;
    if (d->n == d->cap) {
        int cap = d->cap ? 2 * d->cap : 64;
        st_decl *nd = realloc(d->decls, cap * sizeof *nd);
        if (nd) d->decls = nd;
        float **ndata = realloc(d->data, cap * sizeof *ndata);
        if (ndata) d->data = ndata;
        if (!nd || !ndata) { d->failed = 1; return; }
        d->cap = cap;
    }
    st_decl *dc = &d->decls[d->n];
    dc->name = strdup(name);
    dc->dtype = DT_F32;
    dc->ndim = ndim;
    size_t n = 1;
    for (int i = 0; i < ndim; i++) n *= (size_t)(dc->shape[i] = shape[i]);
    d->data[d->n] = malloc(n * sizeof(float));
    if (!dc->name || !d->data[d->n]) { free((char *)dc->name); free(d->data[d->n]); d->failed = 1; return; }
    memcpy(d->data[d->n], data, n * sizeof(float));
    d->n++;
}

static void dump_list_free(dump_list *d) {
    for (int i = 0; i < d->n; i++) { free((char *)d->decls[i].name); free(d->data[i]); }
    free(d->decls);
    free(d->data);
}

int cmd_run(int argc, char **argv) {
    const char *model_dir = NULL, *inputs_path = NULL, *out_path = NULL;
    pi0_params p = pi0_default_params();
    int dump = 0;
    unsigned long long seed = 0;
    for (int i = 0; i < argc; i++) {
        if (!strcmp(argv[i], "--model") && i + 1 < argc) model_dir = argv[++i];
        else if (!strcmp(argv[i], "--inputs") && i + 1 < argc) inputs_path = argv[++i];
        else if (!strcmp(argv[i], "--out") && i + 1 < argc) out_path = argv[++i];
        else if (!strcmp(argv[i], "--backend") && i + 1 < argc) p.backend = argv[++i];
        else if (!strcmp(argv[i], "--threads") && i + 1 < argc) p.num_threads = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--seed") && i + 1 < argc) seed = strtoull(argv[++i], NULL, 10);
        else if (!strcmp(argv[i], "--dump")) dump = 1;
        else if (!strcmp(argv[i], "--full-prefix")) p.compact_prefix = 0;
        else return cli_usage_error("run: unknown or incomplete option '%s'", argv[i]);
    }
    if (!model_dir || !inputs_path || !out_path)
        return cli_usage_error("run needs --model DIR --inputs FILE --out FILE");

    int rc = 0;
    pi0_model *m = pi0_model_create();
    pi0_session *s = pi0_session_create();
    dump_list dl = {0};
    pi0_input_buf in = {0};
    float *actions = NULL;
    if (!m || !s) { rc = cli_error(2, "out of memory"); goto done; }
    if (pi0_model_load(m, model_dir) != PI0_OK) { rc = cli_error(2, "%s", pi0_model_error(m)); goto done; }
    const pi0_config *c = pi0_model_config(m);
    if (dump) { p.dump = on_dump; p.dump_user = &dl; }
    if (pi0_session_init(s, m, &p) != PI0_OK) { rc = cli_error(2, "%s", pi0_session_error(s)); goto done; }

    pi0_err e;
    if (inputs_read(&in, inputs_path, c, &e) != PI0_OK) { rc = cli_error(2, "%s", e.msg); goto done; }
    in.in.seed = seed;
    const int batch = in.in.batch;
    const size_t HA = (size_t)c->action_horizon * c->action_dim;
    actions = malloc((size_t)batch * HA * sizeof *actions);
    if (!actions) { rc = cli_error(2, "out of memory"); goto done; }
    if (pi0_session_infer(s, &in.in, actions) != PI0_OK) { rc = cli_error(2, "%s", pi0_session_error(s)); goto done; }
    if (dl.failed) { rc = cli_error(2, "out of memory while collecting --dump tensors"); goto done; }

    /* Output: actions first, then the dumps. */
    int n = dl.n + 1;
    st_decl *decls = calloc(n, sizeof *decls);
    const void **data = calloc(n, sizeof *data);
    if (!decls || !data) { free(decls); free(data); rc = cli_error(2, "out of memory"); goto done; }
    decls[0] = (st_decl){.name = "actions", .dtype = DT_F32, .ndim = batch > 1 ? 3 : 2};
    int64_t sh[3] = {batch, c->action_horizon, c->action_dim};
    memcpy(decls[0].shape, batch > 1 ? sh : sh + 1, decls[0].ndim * sizeof(int64_t));
    data[0] = actions;
    for (int i = 0; i < dl.n; i++) { decls[i + 1] = dl.decls[i]; data[i + 1] = dl.data[i]; }
    if (st_write_file(out_path, decls, data, n, &e) != PI0_OK) rc = cli_error(2, "%s", e.msg);
    free(decls);
    free(data);
    if (!rc) {
        pi0_timing tm = pi0_session_timing(s);
        fprintf(stderr, "pi0: %s backend, batch %d: vision %.1f ms, prefix %.1f ms, denoise %.1f ms, "
                "total %.1f ms → %s\n", pi0_session_backend(s), batch, tm.vision_ms, tm.prefix_ms,
                tm.denoise_ms, tm.total_ms, out_path);
    }
done:
    inputs_free(&in);
    dump_list_free(&dl);
    free(actions);
    pi0_session_free(s);
    pi0_model_free(m);
    return rc;
}

int main(int argc, char **argv) {
    if (argc < 2 || !strcmp(argv[1], "help") || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) {
        usage(argc < 2 ? stderr : stdout);
        return argc < 2 ? 1 : 0;
    }
    if (!strcmp(argv[1], "run")) return cmd_run(argc - 2, argv + 2);
    if (!strcmp(argv[1], "gen-model")) return cmd_gen_model(argc - 2, argv + 2);
    if (!strcmp(argv[1], "infer")) return cmd_infer(argc - 2, argv + 2);
    if (!strcmp(argv[1], "gen-image")) return cmd_gen_image(argc - 2, argv + 2);
    if (!strcmp(argv[1], "bench")) return cmd_bench(argc - 2, argv + 2);
    if (!strcmp(argv[1], "verify")) return cmd_verify(argc - 2, argv + 2);
    if (!strcmp(argv[1], "check")) return cmd_check(argc - 2, argv + 2);
    if (!strcmp(argv[1], "serve")) return cmd_serve(argc - 2, argv + 2);
    return cli_usage_error("unknown command '%s'", argv[1]);
}
