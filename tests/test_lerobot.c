/* test_lerobot — lerobot's preprocessing against golden/lerobot (README there): the torch
 * bilinear resize-with-pad (≤ 2e-6), the five normalization modes (bit-exact: ≤ 1 ulp), the π0
 * and π0.5 prompt texts and Gemma ids (identical), the flow-time schedules (identical). Prints
 * counts and the worst differences.
 *
 *   test_lerobot GOLDEN_LEROBOT_DIR TOKENIZER.json [OPENPI_DIR LEROBOT_PI0_DIR LEROBOT_PI05_DIR TMP]
 * With the checkpoint arguments (dirs written by `pi0 gen-model`, the π0 one with
 * --relative-actions) it also checks how lerobot checkpoints are told from openpi ones and read:
 * cameras, native lengths, modes, statistics, relative-action mask, statistics overrides. */
#include <cjson/cJSON.h>

#include "../src/io/image_torch.h"
#include "../src/io/lerobot_ckpt.h"
#include "../src/io/lerobot_norm.h"
#include "../src/io/safetensors.h"
#include "test_util.h"

static cJSON *load_json(const char *dir, const char *name) {
    char path[4200], *buf;
    size_t len;
    pi0_err e;
    snprintf(path, sizeof path, "%s/%s", dir, name);
    if (read_file(path, 1u << 26, &buf, &len, &e) != PI0_OK) { CHECK(0, "%s", e.msg); return NULL; }
    cJSON *j = cJSON_ParseWithLength(buf, len);
    free(buf);
    CHECK(j != NULL, "%s: not JSON", path);
    return j;
}

static void check_resize(const char *dir) {
    char path[4200], name[64];
    pi0_err e;
    st_file f;
    snprintf(path, sizeof path, "%s/resize.safetensors", dir);
    if (st_open(&f, path, &e) != PI0_OK) { CHECK(0, "%s", e.msg); return; }
    cJSON *cases = load_json(dir, "resize_cases.json");
    int n = 0, ok = 0;
    double worst = 0;
    static float out[3 * 224 * 224], exp[3 * 224 * 224];
    for (const cJSON *c = cases ? cases->child : NULL; c; c = c->next) {
        const int i = cJSON_GetObjectItem(c, "index")->valueint;
        snprintf(name, sizeof name, "input.%d", i);
        const st_tensor *in = st_find(&f, name);
        snprintf(name, sizeof name, "expected.%d", i);
        const st_tensor *ex = st_find(&f, name);
        CHECK(in && ex && in->ndim == 3 && ex->numel == 3 * 224 * 224, "resize case %d: tensors", i);
        if (!in || !ex) continue;
        const int H = (int)in->shape[0], W = (int)in->shape[1];
        CHECK(image_resize_torch(out, in->data, W, H, (int)in->shape[2], 224, NULL, &e) == PI0_OK, "%s", e.msg);
        convert_to_f32(exp, ex->data, ex->dtype, ex->numel);
        double md = 0;
        for (size_t k = 0; k < ex->numel; k++) md = fmax(md, fabs((double)out[k] - exp[k]));
        n++;
        ok += md <= 2e-6;
        worst = fmax(worst, md);
        printf("  resize %-28s %5dx%-5d max|diff| %.3g\n", cJSON_GetObjectItem(c, "name")->valuestring, H, W, md);
        CHECK(md <= 2e-6, "resize case %d (%dx%d): max |diff| %.3g > 2e-6", i, H, W, md);
    }
    printf("resize: %d cases, %d within 2e-6, worst %.3g\n", n, ok, worst);
    CHECK(n >= 12, "only %d resize cases read", n);
    cJSON_Delete(cases);
    st_close(&f);
}

/* Reads a JSON number array into out (float32 of each double, exact for these vectors). */
static int floats(const cJSON *a, float *out, int cap) {
    int n = 0;
    for (const cJSON *v = a ? a->child : NULL; v && n < cap; v = v->next) out[n++] = (float)v->valuedouble;
    return n;
}

static void check_normalize(const char *dir) {
    cJSON *root = load_json(dir, "normalize.json");
    if (!root) return;
    CHECK(fabs(cJSON_GetObjectItem(root, "eps")->valuedouble - 1e-8) < 1e-20, "eps is not 1e-8");
    int n = 0, exact = 0, worst_ulp = 0;
    for (const cJSON *c = cJSON_GetObjectItem(root, "cases")->child; c; c = c->next) {
        const char *mode = cJSON_GetObjectItem(c, "mode")->valuestring;
        const char *dirn = cJSON_GetObjectItem(c, "direction")->valuestring;
        const char *feat = cJSON_GetObjectItem(c, "feature")->valuestring;
        const int m = lerobot_norm_mode_from_name(mode);
        CHECK(m > 0, "unknown mode %s", mode);
        const char *sa, *sb;
        lerobot_norm_stat_names((lerobot_norm_mode)m, &sa, &sb);
        char ka[128], kb[128];
        snprintf(ka, sizeof ka, "%s.%s", feat, sa);
        snprintf(kb, sizeof kb, "%s.%s", feat, sb);
        const cJSON *stats = cJSON_GetObjectItem(c, "stats");
        float a[64], b[64], x[64], want[64];
        const int na = floats(cJSON_GetObjectItem(stats, ka), a, 64), nb = floats(cJSON_GetObjectItem(stats, kb), b, 64);
        const int nx = floats(cJSON_GetObjectItem(c, "input"), x, 64), nw = floats(cJSON_GetObjectItem(c, "expected"), want, 64);
        CHECK(na == nx && nb == nx && nw == nx, "case %d: lengths", n);
        lerobot_normalize((lerobot_norm_mode)m, !strcmp(dirn, "inverse"), x, nx, a, b);
        int ulp = 0;
        for (int i = 0; i < nx; i++) {
            int32_t u, v;
            memcpy(&u, &x[i], 4);
            memcpy(&v, &want[i], 4);
            const int d = abs(u - v);
            if (d > ulp) ulp = d;
        }
        exact += ulp == 0;
        if (ulp > worst_ulp) worst_ulp = ulp;
        CHECK(ulp <= 1, "normalize case %d (%s %s): %d ulp off", n, mode, dirn, ulp);
        n++;
    }
    printf("normalize: %d cases, %d bit-exact, worst %d ulp\n", n, exact, worst_ulp);
    CHECK(n == 32, "expected 32 normalization cases, read %d", n);
    cJSON_Delete(root);
}

static void check_prompts(const char *dir, const char *tok_path) {
    char path[4200], *buf;
    size_t len;
    pi0_err e;
    pi0_tokenizer *t = pi0_tokenizer_create();
    CHECK(pi0_tokenizer_load(t, tok_path) == PI0_OK, "%s", pi0_tokenizer_error(t));
    snprintf(path, sizeof path, "%s/prompts.jsonl", dir);
    if (read_file(path, 1u << 24, &buf, &len, &e) != PI0_OK) { CHECK(0, "%s", e.msg); pi0_tokenizer_free(t); return; }
    int n = 0, texts = 0, ids_ok = 0;
    for (char *line = strtok(buf, "\n"); line; line = strtok(NULL, "\n")) {
        cJSON *j = cJSON_Parse(line);
        const char *model = cJSON_GetObjectItem(j, "model")->valuestring;
        const char *task = cJSON_GetObjectItem(j, "task")->valuestring;
        const char *want = cJSON_GetObjectItem(j, "text")->valuestring;
        char *text = NULL;
        if (!strcmp(model, "pi0")) {
            CHECK(pi0_prompt_text_lerobot_pi0(task, &text) == PI0_OK, "prompt %d", n);
        } else {
            float s[64] = {0};
            int ns = floats(cJSON_GetObjectItem(j, "state"), s, 64);
            if (!strcmp(cJSON_GetObjectItem(j, "layout")->valuestring, "v0.4")) ns = 32; /* zero-padded first */
            CHECK(pi0_prompt_text_pi05(task, s, ns, &text) == PI0_OK, "prompt %d", n);
        }
        n++;
        const int same = text && !strcmp(text, want);
        texts += same;
        CHECK(same, "prompt %d (%s): text\n    got      %s\n    expected %s", n, model, text ? text : "-", want);
        int32_t tok[1024];
        uint8_t mask[1024];
        int nv = 0, tr = 0;
        CHECK(text && pi0_tokenize_text(t, text, 1024, tok, mask, &nv, &tr) == PI0_OK, "prompt %d: tokenize", n);
        const cJSON *ids = cJSON_GetObjectItem(j, "ids");
        int ok = nv == cJSON_GetArraySize(ids), i = 0;
        for (const cJSON *v = ids->child; v && ok; v = v->next, i++) ok = tok[i] == v->valueint;
        ids_ok += ok;
        CHECK(ok, "prompt %d (%s): ids differ (%d tokens, expected %d)", n, model, nv, cJSON_GetArraySize(ids));
        free(text);
        cJSON_Delete(j);
    }
    printf("prompts: %d vectors, %d identical texts, %d identical id lists\n", n, texts, ids_ok);
    CHECK(n >= 30, "only %d prompt vectors", n);
    free(buf);
    pi0_tokenizer_free(t);
}

static void check_sampling(const char *dir) {
    cJSON *root = load_json(dir, "sampling.json");
    if (!root) return;
    int n = 0, ok = 0;
    for (const cJSON *c = root->child; c; c = c->next) {
        const int steps = atoi(c->string);
        CHECK((float)cJSON_GetObjectItem(c, "dt_float32")->valuedouble == (float)(-1.0 / steps), "dt_float32 (%d)", steps);
        for (const cJSON *s = cJSON_GetObjectItem(c, "steps")->child; s; s = s->next) {
            const int k = cJSON_GetObjectItem(s, "k")->valueint;
            const double lt = cJSON_GetObjectItem(s, "lerobot_t")->valuedouble, ot = cJSON_GetObjectItem(s, "openpi_t")->valuedouble;
            const double gl = pi0_flow_time(PI0_FLOW_TIME_F32, k, steps), go = pi0_flow_time(PI0_FLOW_TIME_F32_SUM, k, steps);
            n++;
            ok += gl == lt && go == ot;
            CHECK(gl == lt, "%d steps, k %d: float32(1 + k dt) = %.9g, expected %.9g", steps, k, gl, lt);
            CHECK(go == ot, "%d steps, k %d: float32 accumulation = %.9g, expected %.9g", steps, k, go, ot);
        }
    }
    printf("flow times: %d steps, %d identical (both schedules)\n", n, ok);
    CHECK(n >= 15, "only %d steps read", n);
    cJSON_Delete(root);
}

/* The statistics tensor `name` of a safetensors file, for comparison. */
static int read_stat(const char *path, const char *name, float *out, int cap) {
    st_file f;
    pi0_err e;
    if (st_open(&f, path, &e) != PI0_OK) return 0;
    const st_tensor *t = st_find(&f, name);
    int n = t && (int)t->numel <= cap ? (int)t->numel : 0;
    if (n) convert_to_f32(out, t->data, t->dtype, t->numel);
    st_close(&f);
    return n;
}

static void write_file(const char *path, const char *text) {
    FILE *fp = fopen(path, "w");
    if (fp) { fputs(text, fp); fclose(fp); }
}

static void check_checkpoints(const char *openpi, const char *lr0, const char *lr05, const char *tmp) {
    lerobot_layout lay;
    pi0_err e;
    CHECK(lerobot_detect(openpi, &lay) == PIPELINE_OPENPI, "%s: detected as lerobot", openpi);
    CHECK(lerobot_detect(lr0, &lay) == PIPELINE_LEROBOT && lay == LEROBOT_CURRENT, "%s: not detected as lerobot", lr0);
    lerobot_spec s;
    CHECK(lerobot_spec_load(&s, lr0, LEROBOT_CURRENT, NULL, &e) == PI0_OK, "%s", e.msg);
    printf("lerobot pi0: %d cameras (%s, %s, %s), S %d, A %d, state %s, action %s, relative %d mask",
           s.n_cameras, s.cameras[0], s.cameras[1], s.cameras[2], s.state_dim, s.action_dim,
           lerobot_norm_mode_name(s.state.mode), lerobot_norm_mode_name(s.action.mode), s.relative);
    for (int j = 0; j < s.action_dim; j++) printf(" %d", s.relative_mask[j]);
    printf("\n");
    CHECK(s.n_cameras == 3 && !strcmp(s.cameras[0], "observation.images.top") &&
              !strcmp(s.cameras[2], "observation.images.wrist_right"), "cameras from input_features, in order");
    CHECK(s.state_dim == 7 && s.action_dim == 7 && !s.pi05 && s.state.mode == LR_MEAN_STD && s.action.mode == LR_MEAN_STD,
          "pi0: S, A, MEAN_STD");
    CHECK(s.relative && s.relative_mask[0] && s.relative_mask[5] && !s.relative_mask[6], "relative mask excludes the gripper");
    char path[4200];
    float want[64];
    snprintf(path, sizeof path, "%s/policy_preprocessor_step_6_normalizer_processor.safetensors", lr0);
    int n = read_stat(path, "observation.state.std", want, 64);
    CHECK(n == 7 && s.state.n == 7 && !memcmp(want, s.state.b, 7 * sizeof(float)), "state std read from the normalizer file");
    snprintf(path, sizeof path, "%s/policy_postprocessor_step_0_unnormalizer_processor.safetensors", lr0);
    n = read_stat(path, "action.mean", want, 64);
    CHECK(n == 7 && s.action.n == 7 && !memcmp(want, s.action.a, 7 * sizeof(float)), "action mean read from the unnormalizer file");
    lerobot_spec_free(&s);
    CHECK(lerobot_spec_load(&s, lr05, LEROBOT_CURRENT, NULL, &e) == PI0_OK, "%s", e.msg);
    CHECK(s.pi05 && s.state.mode == LR_QUANTILES && s.action.mode == LR_QUANTILES && s.n_cameras >= 1 && !s.relative,
          "pi05: QUANTILES, no relative actions");
    lerobot_spec_free(&s);
    /* statistics given by the user replace the checkpoint's; a wrong length is refused */
    snprintf(path, sizeof path, "%s/stats.json", tmp);
    write_file(path, "{\"observation.state\": {\"mean\": [1,2,3,4,5,6,7], \"std\": [2,2,2,2,2,2,2]},"
                     " \"action\": {\"mean\": [0,0,0,0,0,0,0], \"std\": [3,3,3,3,3,3,3]}}");
    CHECK(lerobot_spec_load(&s, lr0, LEROBOT_CURRENT, path, &e) == PI0_OK && s.state.a[6] == 7.0f && s.action.b[0] == 3.0f,
          "stats.json override: %s", e.msg);
    lerobot_spec_free(&s);
    write_file(path, "{\"observation.state\": {\"mean\": [1,2,3], \"std\": [2,2,2]}}");
    pi0_status st = lerobot_spec_load(&s, lr0, LEROBOT_CURRENT, path, &e);
    printf("  short stats.json -> %s: %s\n", pi0_status_str(st), e.msg);
    CHECK(st != PI0_OK && strstr(e.msg, "3 values"), "stats of the wrong length refused: %s", e.msg);
    /* no statistics at all (as lerobot's released bases): identity, with a warning */
    snprintf(path, sizeof path, "%s/policy_preprocessor_step_6_normalizer_processor.safetensors", lr0);
    char moved[4300];
    snprintf(moved, sizeof moved, "%s.away", path);
    rename(path, moved);
    CHECK(lerobot_spec_load(&s, lr0, LEROBOT_CURRENT, NULL, &e) == PI0_OK && s.state.mode == LR_IDENTITY &&
              s.action.mode == LR_MEAN_STD && strstr(s.warning, "observation.state"),
          "missing state statistics: identity with a warning ('%s')", s.warning);
    lerobot_spec_free(&s);
    rename(moved, path);
}

int main(int argc, char **argv) {
    if (argc < 3) {
        fprintf(stderr, "usage: test_lerobot GOLDEN_LEROBOT_DIR TOKENIZER.json [OPENPI_DIR LR_PI0_DIR LR_PI05_DIR TMP]\n");
        return 2;
    }
    check_resize(argv[1]);
    check_normalize(argv[1]);
    check_prompts(argv[1], argv[2]);
    check_sampling(argv[1]);
    if (argc >= 7) check_checkpoints(argv[3], argv[4], argv[5], argv[6]);
    return test_summary();
}
