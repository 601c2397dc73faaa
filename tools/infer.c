/* infer.c — `pi0 infer`: the main user command. Camera images, a prompt and a robot state in,
 * the action chunk out (through openpi's transforms for --config NAME: unnormalized, delta →
 * absolute, the robot's conversions, sliced to its action dims), with per-stage times; --raw
 * prints the model's own output instead. Also `pi0 gen-image`, a synthetic scene for demos and
 * tests. */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <stb/stb_image_write.h>

#include "cli.h"
#include "../src/common.h"
#include "../src/io/safetensors.h"

/* Parses "v1,v2,..." into out (max cap); returns the count, or -1 naming the bad value. */
static int parse_numbers(const char *s, double *out, int cap, char *bad, size_t badlen) {
    int n = 0;
    const char *p = s;
    while (*p) {
        char *end;
        errno = 0;
        double v = strtod(p, &end);
        if (end == p || errno || !isfinite(v) || (*end && *end != ',')) {
            snprintf(bad, badlen, "%.*s", (int)strcspn(p, ","), p);
            return -1;
        }
        if (n == cap) { snprintf(bad, badlen, "more than %d values", cap); return -1; }
        out[n++] = v;
        p = *end ? end + 1 : end;
    }
    return n;
}

/* v as the shortest decimal that reads back as the same double (Python's repr): the float64
 * actions exactly, without the noise digits of a fixed %.17g. */
static const char *shortest(char buf[32], double v) {
    for (int prec = 1; prec <= 17; prec++) {
        snprintf(buf, 32, "%.*g", prec, v);
        if (strtod(buf, NULL) == v) break;
    }
    return buf;
}

/* The actions, float64 (what pi0_policy_infer_f64 gives; --raw's float32 widened exactly). */
static void print_actions(const char *format, const double *a, int H, int A, int dims,
                          const pi0_timing *tm, double prep_ms, double img_ms) {
    char num[32];
    if (!strcmp(format, "json")) {
        printf("{\"actions\": [");
        for (int h = 0; h < H; h++) {
            printf("%s[", h ? ", " : "");
            for (int d = 0; d < dims; d++) printf("%s%s", d ? ", " : "", shortest(num, a[h * A + d]));
            printf("]");
        }
        printf("], \"timing_ms\": {\"preprocess\": %.3f, \"images\": %.3f, \"vision\": %.3f, "
               "\"prefix\": %.3f, \"denoise\": %.3f, \"infer\": %.3f}}\n",
               prep_ms, img_ms, tm->vision_ms, tm->prefix_ms, tm->denoise_ms, tm->total_ms);
    } else if (!strcmp(format, "csv")) {
        for (int d = 0; d < dims; d++) printf("%sa%d", d ? "," : "", d);
        printf("\n");
        for (int h = 0; h < H; h++) {
            for (int d = 0; d < dims; d++) printf("%s%s", d ? "," : "", shortest(num, a[h * A + d]));
            printf("\n");
        }
    } else {
        printf("step");
        for (int d = 0; d < dims; d++) printf(" %9s%-2d", "a", d);
        printf("\n");
        for (int h = 0; h < H; h++) {
            printf("%4d", h);
            for (int d = 0; d < dims; d++) printf(" %11.5f", a[h * A + d]);
            printf("\n");
        }
    }
}

static int is_file(const char *path) {
    FILE *f = fopen(path, "rb");
    if (f) fclose(f);
    return f != NULL;
}

/* Writes the preprocessed observation in `pi0 run`'s input format. */
static int save_inputs(const char *path, const pi0_config *c, const pi0_inputs *in, const float *noise) {
    const int64_t S = c->vision.image_size;
    st_decl d[6] = {
        {"images", DT_F32, 4, {in->num_cameras, 3, S, S}},
        {"image_masks", DT_U8, 1, {in->num_cameras}},
        {"tokens", DT_I32, 1, {c->max_token_len}},
        {"token_mask", DT_U8, 1, {c->max_token_len}},
        {"state", DT_F32, 1, {c->state_dim}},
        {"noise", DT_F32, 2, {c->action_horizon, c->action_dim}},
    };
    const void *data[6] = {in->images, in->image_masks, in->tokens, in->token_mask, in->state, noise};
    pi0_err e;
    if (st_write_file(path, d, data, 6, &e) != PI0_OK) return cli_error(2, "%s", e.msg);
    return 0;
}

int cmd_infer(int argc, char **argv) {
    const char *model_dir = NULL, *prompt = NULL, *state_s = NULL, *noise_path = NULL, *format = "table", *save = NULL;
    char keys[16][256];
    const char *files[16], *key_ptrs[16];
    int n_img = 0, raw = 0;
    pi0_policy_params pp = pi0_policy_default_params();
    pp.fixed_seed = 1; /* a command line is reproducible: seed 0 unless --seed */
    for (int i = 0; i < argc; i += 2) { /* an option and its value */
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (cli_is_help(a)) return cli_help("infer");
        if (!strcmp(a, "--raw")) { raw = 1; i--; continue; } /* flags: no value */
        if (!strcmp(a, "--model")) model_dir = v;
        else if (!strcmp(a, "--config") || !strcmp(a, "--preset")) pp.config = v;
        else if (!strcmp(a, "--image")) {
            if (!v) return cli_usage_error("infer: option '%s' needs a value", a);
            const char *eq = strchr(v, '=');
            if (!eq || eq == v || !eq[1] || eq - v >= 200)
                return cli_usage_error("infer: --image wants KEY=FILE, got '%s'", v);
            if (n_img == 16) return cli_usage_error("infer: too many --image options");
            snprintf(keys[n_img], sizeof keys[n_img], "%.*s", (int)(eq - v), v);
            for (int j = 0; j < n_img; j++)
                if (!strcmp(keys[j], keys[n_img]))
                    return cli_usage_error("infer: --image %s= is given twice (one file per camera)", keys[j]);
            key_ptrs[n_img] = keys[n_img];
            files[n_img++] = eq + 1;
        } else if (!strcmp(a, "--prompt")) prompt = v;
        else if (!strcmp(a, "--state")) state_s = v;
        else if (!strcmp(a, "--norm-stats")) pp.norm_stats = v;
        else if (!strcmp(a, "--action-dims")) { if (cli_parse_int("infer", a, v, 1, 1024, &pp.action_dims)) return 1; }
        else if (!strcmp(a, "--seed")) { if (cli_parse_u64("infer", a, v, &pp.seed)) return 1; }
        else if (!strcmp(a, "--noise")) noise_path = v;
        else if (!strcmp(a, "--format")) format = v;
        else if (!strcmp(a, "--backend")) pp.model.backend = v;
        else if (!strcmp(a, "--threads")) { if (cli_parse_int("infer", a, v, 1, 1024, &pp.model.num_threads)) return 1; }
        else if (!strcmp(a, "--tokenizer")) pp.tokenizer = v;
        else if (!strcmp(a, "--pipeline")) pp.pipeline = v;
        else if (!strcmp(a, "--lerobot-version")) pp.lerobot_version = v;
        else if (!strcmp(a, "--save-inputs")) save = v;
        else if (!strcmp(a, "--adapt-to-pi")) {
            if (!v || (strcmp(v, "true") && strcmp(v, "false"))) return cli_usage_error("infer: --adapt-to-pi true|false");
            pp.adapt_to_pi = !strcmp(v, "true");
        }
        else return cli_usage_error("infer: unknown option '%s'", a);
        if (!v) return cli_usage_error("infer: option '%s' needs a value", a);
    }
    if (!model_dir || !state_s)
        return cli_usage_error("infer needs --model DIR and --state v1,v2,... (and --prompt TEXT unless the config has a "
                               "default prompt)");
    if (strcmp(format, "table") && strcmp(format, "json") && strcmp(format, "csv"))
        return cli_usage_error("infer: --format must be table, json or csv, not '%s'", format);

    int rc = 0;
    char buf[4200];
    double state[4096];
    float *noise = NULL, *raw_out = NULL;
    double *actions = NULL;
    pi0_policy *p = pi0_policy_create();
    if (!p) return cli_error(2, "out of memory");
    int n_state = parse_numbers(state_s, state, 4096, buf, sizeof buf);
    if (n_state <= 0) { rc = cli_error(2, "--state: '%s' is not a number", n_state < 0 ? buf : state_s); goto done; }
    /* Everything checkable without the weights, before the load (which takes seconds or minutes). */
    const pi0_policy_plan plan = {key_ptrs, files, n_img, n_state, prompt ? 1 : 0};
    if (pi0_policy_check(p, model_dir, &pp, &plan) != PI0_OK) { rc = cli_error(2, "%s", pi0_policy_error(p)); goto done; }
    if (noise_path && !is_file(noise_path)) { rc = cli_error(2, "--noise %s: no such file", noise_path); goto done; }
    double t0 = now_ms();
    if (pi0_policy_load(p, model_dir, &pp) != PI0_OK) { rc = cli_error(2, "%s", pi0_policy_error(p)); goto done; }
    const pi0_config *c = pi0_policy_model_config(p);
    if (c->random_weights)
        fprintf(stderr, "pi0: note: %s holds RANDOM weights (pi0 gen-model): the actions are meaningless\n", model_dir);
    cli_policy_report("pi0", p, model_dir);
    double t1 = now_ms();
    for (int i = 0; i < n_img; i++) {
        const char *key = pi0_policy_image_key(p, keys[i], buf, sizeof buf);
        if (pi0_policy_obs_image_file(p, key, files[i]) != PI0_OK) { rc = cli_error(2, "%s", pi0_policy_error(p)); goto done; }
    }
    double t2 = now_ms();
    if (pi0_policy_obs_state(p, state, n_state) != PI0_OK ||
        (prompt && pi0_policy_obs_text(p, "prompt", prompt) != PI0_OK)) {
        rc = cli_error(2, "%s", pi0_policy_error(p));
        goto done;
    }
    const int H = c->action_horizon, A = c->action_dim;
    noise = malloc((size_t)H * A * sizeof *noise);
    actions = malloc((size_t)H * A * sizeof *actions);
    raw_out = malloc((size_t)H * A * sizeof *raw_out);
    if (!noise || !actions || !raw_out) { rc = cli_error(2, "out of memory"); goto done; }
    if (noise_path) {
        pi0_err e;
        st_file nf;
        if (st_open(&nf, noise_path, &e) != PI0_OK) { rc = cli_error(2, "%s", e.msg); goto done; }
        const st_tensor *nt = st_find(&nf, "noise");
        if (!nt || nt->numel != (size_t)H * A || (nt->dtype != DT_F32 && nt->dtype != DT_BF16 && nt->dtype != DT_F16)) {
            rc = cli_error(2, "%s: needs a float tensor 'noise' with %d x %d values", noise_path, H, A);
            st_close(&nf);
            goto done;
        }
        convert_to_f32(noise, nt->data, nt->dtype, nt->numel);
        st_close(&nf);
        if (pi0_policy_obs_noise(p, noise, H, A) != PI0_OK) { rc = cli_error(2, "%s", pi0_policy_error(p)); goto done; }
    }
    int rows = 0, dims = 0;
    if (pi0_policy_infer_f64(p, actions, (size_t)H * A, &rows, &dims) != PI0_OK) { rc = cli_error(2, "%s", pi0_policy_error(p)); goto done; }
    if (pi0_policy_warning(p)) fprintf(stderr, "pi0: warning: %s\n", cli_words(pi0_policy_warning(p), buf, sizeof buf));
    if (save) {
        const pi0_inputs *in = pi0_policy_inputs(p);
        if ((rc = save_inputs(save, c, in, in->noise))) goto done;
    }
    if (raw && pi0_policy_raw_actions(p, raw_out, (size_t)H * A, &rows, &dims) != PI0_OK) {
        rc = cli_error(2, "no raw actions");
        goto done;
    }
    if (raw)
        for (size_t i = 0; i < (size_t)rows * dims; i++) actions[i] = raw_out[i];
    const pi0_policy_timing tm = pi0_policy_last_timing(p);
    print_actions(format, actions, rows, dims, dims, &tm.model, tm.preprocess_ms, t2 - t1);
    fprintf(stderr, "pi0: %s: load %.1f ms, images %.1f ms, preprocess %.2f ms, vision %.1f ms, prefix %.1f ms, "
            "denoise %.1f ms (%d steps), model %.1f ms, postprocess %.3f ms (config %s, pipeline %s%s)\n", pi0_policy_backend_info(p),
            t1 - t0, t2 - t1, tm.preprocess_ms, tm.model.vision_ms, tm.model.prefix_ms, tm.model.denoise_ms, c->num_steps,
            tm.model_ms, tm.postprocess_ms, pi0_policy_config_resolved(p), pi0_policy_pipeline(p), raw ? "; --raw: the model's output" : "");
done:
    free(noise);
    free(actions);
    free(raw_out);
    pi0_policy_free(p);
    return rc;
}

/* A synthetic tabletop: grey table, a red and a blue block, a green bowl, soft shading. */
int cmd_gen_image(int argc, char **argv) {
    const char *out = NULL;
    int w = 320, h = 240;
    for (int i = 0; i < argc; i += 2) { /* an option and its value */
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (cli_is_help(a)) return cli_help("gen-image");
        if (!strcmp(a, "--out")) out = v;
        else if (!strcmp(a, "--width")) { if (cli_parse_int("gen-image", a, v, 1, 8192, &w)) return 1; }
        else if (!strcmp(a, "--height")) { if (cli_parse_int("gen-image", a, v, 1, 8192, &h)) return 1; }
        else return cli_usage_error("gen-image: unknown option '%s'", a);
        if (!v) return cli_usage_error("gen-image: option '%s' needs a value", a);
    }
    if (!out) return cli_usage_error("gen-image needs --out FILE.png [--width W --height H]");
    unsigned char *px = malloc((size_t)w * h * 3);
    if (!px) return cli_error(2, "out of memory");
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++) {
            double u = (double)x / w, v = (double)y / h, shade = 0.75 + 0.25 * v;
            int r = (int)(150 * shade), g = (int)(140 * shade), b = (int)(130 * shade);
            if (v < 0.35) { r = 90; g = 110; b = 140; }                                  /* wall */
            if (fabs(u - 0.3) < 0.07 && fabs(v - 0.6) < 0.07) { r = 200; g = 40; b = 40; } /* red block */
            if (fabs(u - 0.5) < 0.05 && fabs(v - 0.7) < 0.05) { r = 40; g = 60; b = 190; } /* blue block */
            if (hypot(u - 0.72, (v - 0.62) * 1.6) < 0.09) { r = 50; g = 160; b = 70; }     /* bowl */
            unsigned char *q = px + ((size_t)y * w + x) * 3;
            q[0] = (unsigned char)r; q[1] = (unsigned char)g; q[2] = (unsigned char)b;
        }
    int ok = stbi_write_png(out, w, h, 3, px, w * 3);
    free(px);
    if (!ok) return cli_error(2, "%s: cannot write PNG", out);
    return 0;
}
