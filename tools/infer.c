/* infer.c — `pi0 infer`: the main user command. Camera images, a prompt and a robot state in,
 * the action chunk out (unnormalized, sliced to the robot's action dims), with per-stage times.
 * Also `pi0 gen-image`, a synthetic scene for demos and tests. */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <stb/stb_image_write.h>

#include "cli.h"
#include "../src/common.h"
#include "../src/io/safetensors.h"

/* Parses "v1,v2,..." into out (max cap); returns the count, or -1 naming the bad value. */
static int parse_floats(const char *s, float *out, int cap, char *bad, size_t badlen) {
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
        out[n++] = (float)v;
        p = *end ? end + 1 : end;
    }
    return n;
}

static void print_actions(const char *format, const float *a, int H, int A, int dims,
                          const pi0_timing *tm, double tok_ms, double img_ms) {
    if (!strcmp(format, "json")) {
        printf("{\"actions\": [");
        for (int h = 0; h < H; h++) {
            printf("%s[", h ? ", " : "");
            for (int d = 0; d < dims; d++) printf("%s%.9g", d ? ", " : "", a[h * A + d]);
            printf("]");
        }
        printf("], \"timing_ms\": {\"tokenize\": %.3f, \"images\": %.3f, \"vision\": %.3f, "
               "\"prefix\": %.3f, \"denoise\": %.3f, \"infer\": %.3f}}\n",
               tok_ms, img_ms, tm->vision_ms, tm->prefix_ms, tm->denoise_ms, tm->total_ms);
    } else if (!strcmp(format, "csv")) {
        for (int d = 0; d < dims; d++) printf("%sa%d", d ? "," : "", d);
        printf("\n");
        for (int h = 0; h < H; h++) {
            for (int d = 0; d < dims; d++) printf("%s%.9g", d ? "," : "", a[h * A + d]);
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
    const char *model_dir = NULL, *prompt = NULL, *state_s = NULL, *ns_path = NULL,
               *noise_path = NULL, *format = "table", *tok_flag = NULL, *save = NULL;
    char cams[16][64];
    const char *files[16];
    int n_img = 0, action_dims = 0;
    uint64_t seed = 0;
    pi0_params p = pi0_default_params();
    for (int i = 0; i < argc; i += 2) { /* an option and its value */
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (cli_is_help(a)) return cli_help("infer");
        if (!strcmp(a, "--model")) model_dir = v;
        else if (!strcmp(a, "--image")) {
            if (!v) return cli_usage_error("infer: option '%s' needs a value", a);
            const char *eq = strchr(v, '=');
            if (!eq || eq == v || !eq[1]) return cli_usage_error("infer: --image wants CAMERA=FILE, got '%s'", v);
            if (n_img == 16) return cli_usage_error("infer: too many --image options");
            snprintf(cams[n_img], sizeof cams[n_img], "%.*s", (int)(eq - v), v);
            files[n_img++] = eq + 1;
        } else if (!strcmp(a, "--prompt")) prompt = v;
        else if (!strcmp(a, "--state")) state_s = v;
        else if (!strcmp(a, "--norm-stats")) ns_path = v;
        else if (!strcmp(a, "--action-dims")) { if (cli_parse_int("infer", a, v, 1, 1024, &action_dims)) return 1; }
        else if (!strcmp(a, "--seed")) { if (cli_parse_u64("infer", a, v, &seed)) return 1; }
        else if (!strcmp(a, "--noise")) noise_path = v;
        else if (!strcmp(a, "--format")) format = v;
        else if (!strcmp(a, "--backend")) p.backend = v;
        else if (!strcmp(a, "--threads")) { if (cli_parse_int("infer", a, v, 1, 1024, &p.num_threads)) return 1; }
        else if (!strcmp(a, "--tokenizer")) tok_flag = v;
        else if (!strcmp(a, "--save-inputs")) save = v;
        else return cli_usage_error("infer: unknown option '%s'", a);
        if (!v) return cli_usage_error("infer: option '%s' needs a value", a);
    }
    if (!model_dir || !prompt || !state_s)
        return cli_usage_error("infer needs --model DIR, --prompt TEXT and --state v1,v2,...");
    if (strcmp(format, "table") && strcmp(format, "json") && strcmp(format, "csv"))
        return cli_usage_error("infer: --format must be table, json or csv, not '%s'", format);

    int rc = 0;
    char buf[4200];
    float state[4096], *noise = NULL, *actions = NULL;
    pi0_model *m = pi0_model_create();
    pi0_tokenizer *t = pi0_tokenizer_create();
    pi0_norm_stats *ns = NULL;
    pi0_obs *o = pi0_obs_create();
    pi0_session *s = pi0_session_create();
    if (!m || !t || !o || !s) { rc = cli_error(2, "out of memory"); goto done; }

    int n_state = parse_floats(state_s, state, 4096, buf, sizeof buf);
    if (n_state <= 0) { rc = cli_error(2, "--state: '%s' is not a number", n_state < 0 ? buf : state_s); goto done; }
    for (int i = 0; i < n_img; i++)
        if (pi0_camera_index(cams[i]) < 0) {
            rc = cli_error(2, "unknown camera '%s' (cameras: base_0_rgb, left_wrist_0_rgb, right_wrist_0_rgb)", cams[i]);
            goto done;
        }
    if (pi0_model_load(m, model_dir) != PI0_OK) { rc = cli_error(2, "%s", pi0_model_error(m)); goto done; }
    const pi0_config *c = pi0_model_config(m);
    if (c->random_weights)
        fprintf(stderr, "pi0: note: %s holds RANDOM weights (pi0 gen-model): the actions are meaningless\n", model_dir);
    const char *tok_path = tok_flag ? tok_flag : cli_find_tokenizer(model_dir, buf, sizeof buf);
    if (!tok_path) {
        rc = cli_error(2, "no tokenizer: pass --tokenizer FILE, put tokenizer.json beside the model, or set "
                       "PI0_TOKENIZER (scripts/fetch_tokenizer.sh fetches one into .tok/tokenizer.json)");
        goto done;
    }
    double t0 = now_ms();
    if (pi0_tokenizer_load(t, tok_path) != PI0_OK) { rc = cli_error(2, "%s", pi0_tokenizer_error(t)); goto done; }
    if ((rc = cli_load_norm_stats(model_dir, ns_path, "pi0", c->pi05, &ns))) goto done;
    if (pi0_obs_init(o, m) != PI0_OK) { rc = cli_error(2, "%s", pi0_obs_error(o)); goto done; }
    double t1 = now_ms();
    if (pi0_obs_set_prompt(o, t, prompt) != PI0_OK) { rc = cli_error(2, "%s", pi0_obs_error(o)); goto done; }
    if (pi0_obs_set_state(o, state, n_state, ns) != PI0_OK) { rc = cli_error(2, "%s", pi0_obs_error(o)); goto done; }
    const pi0_inputs *ready = pi0_obs_inputs(o); /* π0.5: the prompt is tokenized with the state here */
    if (!ready) { rc = cli_error(2, "%s", pi0_obs_error(o)); goto done; }
    if (pi0_obs_warning(o)) fprintf(stderr, "pi0: warning: %s\n", pi0_obs_warning(o));
    double t2 = now_ms();
    for (int i = 0; i < n_img; i++)
        if (pi0_obs_set_image_file(o, cams[i], files[i]) != PI0_OK) { rc = cli_error(2, "%s", pi0_obs_error(o)); goto done; }
    double t3 = now_ms();
    pi0_inputs in = *ready;

    const int H = c->action_horizon, A = c->action_dim;
    noise = malloc((size_t)H * A * sizeof *noise);
    actions = malloc((size_t)H * A * sizeof *actions);
    if (!noise || !actions) { rc = cli_error(2, "out of memory"); goto done; }
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
    } else {
        pi0_gaussian(seed, noise, (size_t)H * A);
    }
    in.noise = noise;
    if (save && (rc = save_inputs(save, c, &in, noise))) goto done;
    if (pi0_session_init(s, m, &p) != PI0_OK) { rc = cli_error(2, "%s", pi0_session_error(s)); goto done; }
    if (pi0_session_infer(s, &in, actions) != PI0_OK) { rc = cli_error(2, "%s", pi0_session_error(s)); goto done; }
    pi0_norm_stats_unnormalize_actions(ns, actions, H, A);
    int dims = action_dims > 0 ? action_dims : (ns ? pi0_norm_stats_dim(ns, 1) : A);
    if (dims > A) { rc = cli_error(2, "--action-dims %d exceeds the model's action_dim %d", dims, A); goto done; }
    pi0_timing tm = pi0_session_timing(s);
    print_actions(format, actions, H, A, dims, &tm, t2 - t1, t3 - t2);
    fprintf(stderr, "pi0: %s backend: tokenizer load %.1f ms, tokenize %.2f ms, images %.1f ms, vision %.1f ms, "
            "prefix %.1f ms, denoise %.1f ms (%d steps), infer total %.1f ms\n", pi0_session_backend(s),
            t1 - t0, t2 - t1, t3 - t2, tm.vision_ms, tm.prefix_ms, tm.denoise_ms, c->num_steps, tm.total_ms);
done:
    free(noise);
    free(actions);
    pi0_session_free(s);
    pi0_obs_free(o);
    pi0_norm_stats_free(ns);
    pi0_tokenizer_free(t);
    pi0_model_free(m);
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
