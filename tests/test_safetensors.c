/* test_safetensors — hostile-input tests for the safetensors reader, the writer round trip,
 * config parsing in its three dialects, and checkpoint loading: missing / misshapen tensors,
 * bad config values, and the key and dtype variants real checkpoints use. Every malformed file
 * is written by the test; each must give its specific error (and, under ASan/UBSan, no crash or
 * out-of-bounds read).
 *
 *   test_safetensors GOLDEN_DIR TMP_DIR */
#include <sys/stat.h>
#include <unistd.h>

#include "../src/io/inputs.h"
#include "../src/model/config.h"
#include "test_util.h"

static char g_tmp[4096];

/* Writes 8-byte length + header text + data_len bytes of data (0x3f...). */
static const char *write_raw(const char *name, uint64_t declared_len, const char *header,
                             size_t data_len) {
    static char path[4200];
    snprintf(path, sizeof path, "%s/%s", g_tmp, name);
    FILE *fp = fopen(path, "wb");
    unsigned char len8[8];
    for (int i = 0; i < 8; i++) len8[i] = (unsigned char)(declared_len >> (8 * i));
    if (declared_len != UINT64_MAX) fwrite(len8, 1, 8, fp);
    fputs(header, fp);
    for (size_t i = 0; i < data_len; i++) fputc(0x3f, fp);
    fclose(fp);
    return path;
}

static void expect_bad(const char *label, const char *path, pi0_status want, const char *needle) {
    st_file f;
    pi0_err e = {{0}};
    pi0_status st = st_open(&f, path, &e);
    printf("  %-28s -> %s: %s\n", label, pi0_status_str(st), e.msg);
    CHECK(st == want, "%s: status %s, expected %s", label, pi0_status_str(st), pi0_status_str(want));
    CHECK(strstr(e.msg, needle) != NULL, "%s: message '%s' lacks '%s'", label, e.msg, needle);
    CHECK(strstr(e.msg, path) != NULL, "%s: message does not name the file", label);
    st_close(&f);
}

static void bad_header(const char *label, const char *header, size_t data_len, const char *needle) {
    char name[64];
    snprintf(name, sizeof name, "bad_%d.safetensors", g_pass + g_fail);
    const char *p = write_raw(name, strlen(header), header, data_len);
    expect_bad(label, p, PI0_ERR_FORMAT, needle);
}

static void test_reader(const char *golden) {
    printf("safetensors reader, malformed files:\n");
    const char *p = write_raw("empty.safetensors", UINT64_MAX, "", 0);
    expect_bad("empty file", p, PI0_ERR_FORMAT, "too short");
    p = write_raw("hdr_past_eof.safetensors", 1000, "{}", 0);
    expect_bad("header length past EOF", p, PI0_ERR_FORMAT, "past the end of the file");
    p = write_raw("hdr_huge.safetensors", UINT64_MAX - 3, "{}", 0);
    expect_bad("header length 2^64-4", p, PI0_ERR_FORMAT, "past the end of the file");
    bad_header("invalid JSON", "{\"a\": {\"dtype\": ", 0, "not valid JSON");
    bad_header("header not an object", "[1, 2]", 0, "not a JSON object");
    bad_header("unknown dtype", "{\"a\":{\"dtype\":\"Q8\",\"shape\":[2],\"data_offsets\":[0,2]}}", 2,
               "unknown dtype 'Q8'");
    bad_header("missing dtype", "{\"a\":{\"shape\":[2],\"data_offsets\":[0,8]}}", 8, "missing dtype");
    bad_header("negative dim", "{\"a\":{\"dtype\":\"F32\",\"shape\":[-2],\"data_offsets\":[0,8]}}", 8,
               "shape[0]");
    bad_header("fractional dim", "{\"a\":{\"dtype\":\"F32\",\"shape\":[2.5],\"data_offsets\":[0,8]}}", 8,
               "shape[0]");
    bad_header("overflowing shape",
               "{\"a\":{\"dtype\":\"F32\",\"shape\":[4294967296,4294967296,4294967296],\"data_offsets\":[0,8]}}",
               8, "overflows");
    bad_header("offsets overlapping",
               "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
               "\"b\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[4,12]}}", 12, "overlap");
    bad_header("offsets out of range", "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}",
               4, "past the end of the data area");
    bad_header("offsets reversed", "{\"a\":{\"dtype\":\"F32\",\"shape\":[0],\"data_offsets\":[8,0]}}", 8,
               "reversed");
    bad_header("offsets not a pair", "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0]}}", 8,
               "data_offsets");
    bad_header("size mismatch", "{\"a\":{\"dtype\":\"F32\",\"shape\":[3],\"data_offsets\":[0,8]}}", 8,
               "needs 12 bytes");
    bad_header("duplicate name",
               "{\"a\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[0,1]},"
               "\"a\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[1,2]}}", 2, "twice");
    bad_header("entry not an object", "{\"a\": 5}", 0, "not an object");
    bad_header("metadata not an object", "{\"__metadata__\": 5}", 0, "__metadata__");

    /* Truncated copy of a real checkpoint. */
    char src[4200], dst[4200];
    snprintf(src, sizeof src, "%s/tiny-f32/model.safetensors", golden);
    snprintf(dst, sizeof dst, "%s/truncated.safetensors", g_tmp);
    FILE *in = fopen(src, "rb"), *out = fopen(dst, "wb");
    CHECK(in && out, "cannot open %s or create %s", src, dst);
    if (in && out) {
        fseek(in, 0, SEEK_END);
        long size = ftell(in);
        fseek(in, 0, SEEK_SET);
        for (long i = 0; i < size - 100; i++) fputc(fgetc(in), out);
    }
    if (in) fclose(in);
    if (out) fclose(out);
    if (in && out) expect_bad("truncated data", dst, PI0_ERR_FORMAT, "truncated");
    snprintf(dst, sizeof dst, "%s/no_such_file.safetensors", g_tmp);
    expect_bad("missing file", dst, PI0_ERR_IO, "cannot open");

    /* Valid: metadata, a zero-size tensor, and the writer's round trip. */
    const float v[3] = {1.5f, -2.25f, 3.0f};
    const uint16_t h[2] = {0x3f80, 0xc000}; /* bf16 1.0, -2.0 */
    st_decl decls[3] = {{.name = "w", .dtype = DT_F32, .ndim = 2, .shape = {1, 3}},
                        {.name = "h", .dtype = DT_BF16, .ndim = 1, .shape = {2}},
                        {.name = "z", .dtype = DT_F32, .ndim = 2, .shape = {0, 4}}};
    const void *data[3] = {v, h, v};
    snprintf(dst, sizeof dst, "%s/roundtrip.safetensors", g_tmp);
    pi0_err e;
    CHECK(st_write_file(dst, decls, data, 3, &e) == PI0_OK, "write: %s", e.msg);
    st_file f;
    CHECK(st_open(&f, dst, &e) == PI0_OK, "reopen: %s", e.msg);
    const st_tensor *w = st_find(&f, "w"), *hh = st_find(&f, "h"), *z = st_find(&f, "z");
    CHECK(w && w->ndim == 2 && w->shape[1] == 3 && !memcmp(w->data, v, 12), "round trip of w");
    float hf[2];
    if (hh) convert_to_f32(hf, hh->data, hh->dtype, 2);
    CHECK(hh && hf[0] == 1.0f && hf[1] == -2.0f, "round trip of bf16 h");
    CHECK(z && z->numel == 0, "zero-size tensor");
    CHECK(st_find(&f, "nope") == NULL, "lookup of an absent name");
    st_close(&f);
    CHECK(access(dst, F_OK) == 0, "written file exists");
    char tmpname[4300];
    snprintf(tmpname, sizeof tmpname, "%s.tmp", dst);
    CHECK(access(tmpname, F_OK) != 0, "temp file removed after the rename");
    const char *meta = "{\"__metadata__\":{\"format\":\"pt\"},"
                       "\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}";
    p = write_raw("meta.safetensors", strlen(meta), meta, 8);
    CHECK(st_open(&f, p, &e) == PI0_OK && f.count == 1 && st_find(&f, "a"), "__metadata__ rejected: %s", e.msg);
    st_close(&f);
}

/* ---------------------------------------------------------------- configs */

static void expect_config(const char *label, const char *json, pi0_status want, const char *needle) {
    pi0_config c;
    pi0_err e = {{0}};
    pi0_status st = config_parse(&c, json, strlen(json), "config.json", &e);
    printf("  %-28s -> %s: %s\n", label, pi0_status_str(st), e.msg);
    CHECK(st == want, "%s: status %s", label, pi0_status_str(st));
    CHECK(!needle || strstr(e.msg, needle), "%s: message '%s' lacks '%s'", label, e.msg, needle);
}

static void test_configs(void) {
    printf("config.json dialects and bad values:\n");
    pi0_config c;
    pi0_err e;
    const char *lerobot = "{\"type\":\"pi0\",\"chunk_size\":50,\"n_action_steps\":50,\"max_state_dim\":32,"
                          "\"max_action_dim\":32,\"tokenizer_max_length\":48,\"num_steps\":10,"
                          "\"paligemma_variant\":\"gemma_2b\",\"action_expert_variant\":\"gemma_300m\"}";
    CHECK(config_parse(&c, lerobot, strlen(lerobot), "lerobot", &e) == PI0_OK, "lerobot: %s", e.msg);
    CHECK(c.vlm.width == 2048 && c.vlm.mlp_dim == 16384 && c.expert.width == 1024 &&
              c.expert.mlp_dim == 4096 && c.vision.width == 1152 && c.vision.depth == 27 &&
              c.action_horizon == 50 && c.action_dim == 32 && c.max_token_len == 48 &&
              c.num_steps == 10 && c.vlm.vocab_size == 257152 && c.expert.head_dim == 256,
          "lerobot config mapped to wrong dimensions");
    CHECK(config_text_embed_scale(&c) == sqrtf(2048.0f), "float32 lerobot: text embedding scale %.9g, want sqrt(2048)",
          config_text_embed_scale(&c));
    /* lerobot with "dtype": "bfloat16" casts sqrt(2048) to bf16 before scaling token embeddings */
    const char *lr_bf16 = "{\"type\":\"pi0\",\"dtype\":\"bfloat16\",\"paligemma_variant\":\"gemma_2b\","
                          "\"action_expert_variant\":\"gemma_300m\"}";
    CHECK(config_parse(&c, lr_bf16, strlen(lr_bf16), "lerobot bf16", &e) == PI0_OK, "lerobot bf16: %s", e.msg);
    CHECK(config_text_embed_scale(&c) == 45.25f, "bf16 lerobot: text embedding scale %.9g, want 45.25",
          config_text_embed_scale(&c));
    const char *openpi = "{\"action_dim\":24,\"action_horizon\":10,\"max_token_len\":64,"
                         "\"paligemma_variant\":\"gemma_2b_lora\",\"action_expert_variant\":\"gemma_300m\","
                         "\"num_inference_steps\":5}";
    CHECK(config_parse(&c, openpi, strlen(openpi), "openpi", &e) == PI0_OK, "openpi: %s", e.msg);
    CHECK(c.action_dim == 24 && c.state_dim == 24 && c.action_horizon == 10 && c.max_token_len == 64 &&
              c.num_steps == 5 && c.vlm.width == 2048, "openpi config mapped wrongly");
    const char *expl = "{\"paligemma_variant\":\"gemma_2b\",\"vlm\":{\"width\":64,\"depth\":2,"
                       "\"mlp_dim\":32,\"num_heads\":8,\"num_kv_heads\":1,\"head_dim\":256,"
                       "\"vocab_size\":100,\"rope_theta\":500.0},\"expert\":{\"width\":32,\"depth\":2,"
                       "\"mlp_dim\":16,\"num_heads\":8,\"num_kv_heads\":1,\"head_dim\":256},"
                       "\"time_min_period\":0.01}";
    CHECK(config_parse(&c, expl, strlen(expl), "explicit", &e) == PI0_OK, "explicit: %s", e.msg);
    CHECK(c.vlm.width == 64 && c.vlm.rope_theta == 500.0 && c.expert.rope_theta == 500.0 &&
              c.time_min_period == 0.01 && c.expert.vocab_size == 0,
          "explicit fields must win over variant names");
    expect_config("not JSON", "{\"vlm\": ", PI0_ERR_CONFIG, "not valid JSON");
    expect_config("unknown variant", "{\"paligemma_variant\":\"gemma_7b\"}", PI0_ERR_CONFIG, "gemma_7b");
    expect_config("other model type", "{\"type\":\"smolvla\"}", PI0_ERR_CONFIG, "smolvla");
    expect_config("pi0-FAST refused by name", "{\"type\":\"pi0fast\"}", PI0_ERR_UNSUPPORTED, "autoregressive");
    expect_config("pi05 contradicts type", "{\"type\":\"pi0\",\"pi05\":true}", PI0_ERR_CONFIG, "contradicts");
    {
        pi0_config c5;
        pi0_err e5 = {{0}};
        const char *lr05 = "{\"type\":\"pi05\",\"chunk_size\":10,\"min_period\":0.002,\"max_period\":8.0}";
        CHECK(config_parse(&c5, lr05, strlen(lr05), "lerobot pi05", &e5) == PI0_OK && c5.pi05 &&
                  c5.max_token_len == 200 && c5.discrete_state_input && c5.action_horizon == 10 &&
                  c5.time_min_period == 0.002 && c5.time_max_period == 8.0,
              "lerobot pi05 config: defaults (max_token_len 200, discrete state) and periods: %s", e5.msg);
    }
    expect_config("depth 0", "{\"vlm\":{\"depth\":0},\"expert\":{\"depth\":0}}", PI0_ERR_CONFIG, "vlm.depth");
    expect_config("string width", "{\"vlm\":{\"width\":\"big\"}}", PI0_ERR_CONFIG, "vlm.width");
    expect_config("expert heads differ", "{\"expert\":{\"num_heads\":4}}", PI0_ERR_CONFIG, "must equal");
    expect_config("kv heads not dividing", "{\"vlm\":{\"num_kv_heads\":3},\"expert\":{\"num_kv_heads\":3}}",
                  PI0_ERR_CONFIG, "num_kv_heads");
    expect_config("image not multiple of patch", "{\"vision\":{\"image_size\":225}}", PI0_ERR_CONFIG,
                  "image_size");
    expect_config("odd head_dim", "{\"vlm\":{\"head_dim\":7},\"expert\":{\"head_dim\":7}}", PI0_ERR_CONFIG,
                  "head_dim");
    expect_config("negative eps", "{\"vision\":{\"norm_eps\":-1}}", PI0_ERR_CONFIG, "norm_eps");
    expect_config("horizon 0", "{\"action_horizon\":0}", PI0_ERR_CONFIG, "action_horizon");
    /* found by fuzz_config: literals beyond double's range parse as infinity */
    expect_config("rope_theta 1e900", "{\"vlm\":{\"rope_theta\":1e900}}", PI0_ERR_CONFIG, "vlm.rope_theta");
    expect_config("time period -1e999", "{\"time_max_period\":-1e999}", PI0_ERR_CONFIG, "time_max_period");
    expect_config("norm_eps 1e400", "{\"vision\":{\"norm_eps\":1e400}}", PI0_ERR_CONFIG, "vision.norm_eps");
}

/* ---------------------------------------------------------------- checkpoints */

typedef enum { EDIT_NONE, EDIT_DROP, EDIT_RESHAPE, EDIT_F16, EDIT_BF16 } edit_kind;

/* Copies golden case `from` (tiny-f32, pi05-tiny-f32) into TMP/name with every key passed
 * through rename() and the tensor `target` edited; config.json is copied, or replaced by `config`
 * when given. */
static void make_model_from(const char *golden, const char *from, const char *name,
                            const char *(*rename)(const char *), const char *target, edit_kind edit,
                            const char *config) {
    char src[4200], dir[4200], path[4300];
    snprintf(dir, sizeof dir, "%s/%s", g_tmp, name);
    mkdir(dir, 0755);
    snprintf(src, sizeof src, "%s/%s/model.safetensors", golden, from);
    st_file f;
    pi0_err e;
    if (st_open(&f, src, &e) != PI0_OK) { CHECK(0, "%s", e.msg); return; }
    st_decl *decls = calloc(f.count, sizeof *decls);
    const void **data = calloc(f.count, sizeof *data);
    void **owned = calloc(f.count, sizeof *owned);
    int n = 0;
    for (int i = 0; i < f.count; i++) {
        const st_tensor *t = &f.tensors[i];
        int hit = target && strcmp(t->name, target) == 0;
        if (hit && edit == EDIT_DROP) continue;
        st_decl *d = &decls[n];
        d->name = rename ? strdup(rename(t->name)) : strdup(t->name);
        d->dtype = t->dtype;
        d->ndim = t->ndim;
        memcpy(d->shape, t->shape, sizeof d->shape);
        data[n] = t->data;
        if (hit && edit == EDIT_RESHAPE) { d->shape[0] = t->shape[1]; d->shape[1] = t->shape[0]; }
        if (hit && (edit == EDIT_F16 || edit == EDIT_BF16)) {
            uint16_t *hbuf = owned[n] = malloc(t->numel * 2);
            const float *fv = t->data;
            for (size_t k = 0; k < t->numel; k++) {
                if (edit == EDIT_BF16) { hbuf[k] = f32_to_bf16(fv[k]); continue; }
                _Float16 hv = (_Float16)fv[k]; /* gcc's native half type, test-only */
                memcpy(&hbuf[k], &hv, 2);
            }
            d->dtype = edit == EDIT_F16 ? DT_F16 : DT_BF16;
            data[n] = hbuf;
        }
        n++;
    }
    snprintf(path, sizeof path, "%s/model.safetensors", dir);
    CHECK(st_write_file(path, decls, data, n, &e) == PI0_OK, "write %s: %s", path, e.msg);
    for (int i = 0; i < n; i++) { free((char *)decls[i].name); free(owned[i]); }
    free(decls); free(data); free(owned);
    st_close(&f);

    snprintf(path, sizeof path, "%s/config.json", dir);
    FILE *out = fopen(path, "w");
    CHECK(out != NULL, "cannot create %s", path);
    if (!out) return;
    if (config) {
        fputs(config, out);
    } else {
        snprintf(src, sizeof src, "%s/%s/config.json", golden, from);
        FILE *in = fopen(src, "rb");
        CHECK(in != NULL, "cannot open %s", src);
        for (int ch; in && (ch = fgetc(in)) != EOF;) fputc(ch, out);
        if (in) fclose(in);
    }
    fclose(out);
}

static void make_model(const char *golden, const char *name, const char *(*rename)(const char *),
                       const char *target, edit_kind edit, const char *config) {
    make_model_from(golden, "tiny-f32", name, rename, target, edit, config);
}

static float g_ref_actions[4096];
static pi0_input_buf g_inputs;

/* Loads TMP/name; when it loads, runs it on the golden inputs and returns the PCC against the
 * unmodified model's actions (bitwise equal → also sets *identical). */
static pi0_status load_and_run(const char *name, char *msg, size_t msglen, double *pcc, int *identical) {
    char dir[4200];
    snprintf(dir, sizeof dir, "%s/%s", g_tmp, name);
    pi0_model *m = pi0_model_create();
    pi0_status st = pi0_model_load(m, dir);
    snprintf(msg, msglen, "%s", pi0_model_error(m));
    if (st == PI0_OK && pcc) {
        const pi0_config *c = pi0_model_config(m);
        pi0_session *s = pi0_session_create();
        float out[4096];
        pi0_params p = pi0_default_params();
        p.backend = "ref"; /* the oracle: renamed keys must give bit-identical actions */
        st = pi0_session_init(s, m, &p);
        if (st == PI0_OK) st = pi0_session_infer(s, &g_inputs.in, out);
        const int HA = c->action_horizon * c->action_dim;
        cmp_result r = compare(g_ref_actions, out, 1, HA, NULL);
        *pcc = r.pcc;
        *identical = memcmp(out, g_ref_actions, HA * sizeof(float)) == 0;
        pi0_session_free(s);
    }
    pi0_model_free(m);
    return st;
}

static void expect_load_error(const char *name, pi0_status want, const char *needle) {
    char msg[512];
    pi0_status st = load_and_run(name, msg, sizeof msg, NULL, NULL);
    printf("  %-28s -> %s: %s\n", name, pi0_status_str(st), msg);
    CHECK(st == want, "%s: status %s, expected %s", name, pi0_status_str(st), pi0_status_str(want));
    CHECK(strstr(msg, needle) != NULL, "%s: message '%s' lacks '%s'", name, msg, needle);
}

static const char *add_model_prefix(const char *k) {
    static char buf[512];
    snprintf(buf, sizeof buf, "model.%s", k);
    return buf;
}

/* lerobot v1: paligemma.model.language_model.X → paligemma.language_model.model.X,
 * paligemma.model.Y → paligemma.Y, paligemma.lm_head → paligemma.language_model.lm_head. */
static const char *v1_layout(const char *k) {
    static char buf[512];
    const char *pg = "paligemma_with_expert.paligemma.";
    const char *lm = "paligemma_with_expert.paligemma.model.language_model.";
    const char *pm = "paligemma_with_expert.paligemma.model.";
    if (!strncmp(k, lm, strlen(lm))) snprintf(buf, sizeof buf, "%slanguage_model.model.%s", pg, k + strlen(lm));
    else if (!strncmp(k, pm, strlen(pm))) snprintf(buf, sizeof buf, "%s%s", pg, k + strlen(pm));
    else if (!strcmp(k, "paligemma_with_expert.paligemma.lm_head.weight"))
        snprintf(buf, sizeof buf, "%slanguage_model.lm_head.weight", pg);
    else snprintf(buf, sizeof buf, "model.%s", k);
    return buf;
}

static const char *embed_tokens_name(const char *k) {
    if (!strcmp(k, "paligemma_with_expert.paligemma.lm_head.weight"))
        return "paligemma_with_expert.paligemma.model.language_model.embed_tokens.weight";
    return k;
}

/* lerobot's π0.5 names: "model." prefix, time MLP saved as action_time_mlp_{in,out}. */
static const char *lerobot_pi05_names(const char *k) {
    static char buf[512];
    snprintf(buf, sizeof buf, "model.%s%s", strncmp(k, "time_mlp_", 9) ? "" : "action_", k);
    return buf;
}

/* The tiny config's sizes with nothing that says pi0 or pi0.5 (as openpi's converted checkpoints). */
static const char *k_silent_config =
    "{\"action_dim\":6,\"action_horizon\":5,\"max_token_len\":8,\"num_steps\":3,\"num_cameras\":2,"
    "\"vision\":{\"image_size\":28,\"patch_size\":14,\"width\":24,\"depth\":2,\"mlp_dim\":40,\"num_heads\":4},"
    "\"vlm\":{\"width\":48,\"depth\":2,\"mlp_dim\":96,\"num_heads\":4,\"num_kv_heads\":1,\"head_dim\":16,\"vocab_size\":300},"
    "\"expert\":{\"width\":32,\"depth\":2,\"mlp_dim\":64,\"num_heads\":4,\"num_kv_heads\":1,\"head_dim\":16}}";

/* Runs TMP/name (or a golden case dir) on `in` with ref; 0 if it does not load or run. */
static int run_actions(const char *dir, const pi0_inputs *in, float *out, char *msg, size_t msglen) {
    pi0_model *m = pi0_model_create();
    pi0_session *s = pi0_session_create();
    pi0_params p = pi0_default_params();
    p.backend = "ref";
    int ok = pi0_model_load(m, dir) == PI0_OK;
    snprintf(msg, msglen, "%s", pi0_model_error(m));
    if (ok) {
        ok = pi0_session_init(s, m, &p) == PI0_OK && pi0_session_infer(s, in, out) == PI0_OK;
        if (!ok) snprintf(msg, msglen, "%s", pi0_session_error(s));
    }
    pi0_session_free(s);
    pi0_model_free(m);
    return ok;
}

/* π0.5: detected from config.json or from the weights; a config that disagrees with the weights
 * is refused, naming both; lerobot's names load bit-identically. */
static void test_pi05_checkpoints(const char *golden) {
    printf("pi0 / pi0.5 detection:\n");
    char path[4200], msg[512];
    pi0_err e;
    pi0_input_buf in = {0};
    static float ref[4096], got[4096];
    snprintf(path, sizeof path, "%s/pi05-tiny-f32/inputs.safetensors", golden);
    pi0_config c05;
    snprintf(msg, sizeof msg, "%s/pi05-tiny-f32/config.json", golden);
    CHECK(config_load(&c05, msg, &e) == PI0_OK && c05.pi05 == 1 && c05.discrete_state_input == 1,
          "pi05 golden config: %s", e.msg);
    CHECK(inputs_read(&in, path, &c05, &e) == PI0_OK, "%s", e.msg);
    snprintf(path, sizeof path, "%s/pi05-tiny-f32", golden);
    CHECK(run_actions(path, &in.in, ref, msg, sizeof msg), "pi05 golden: %s", msg);
    const int HA = c05.action_horizon * c05.action_dim;
    struct { const char *name, *from; const char *(*rename)(const char *); const char *config; } ok[] = {
        {"pi05_as_is", "pi05-tiny-f32", NULL, NULL},
        {"pi05_silent_config", "pi05-tiny-f32", NULL, k_silent_config},
        {"pi05_lerobot_names", "pi05-tiny-f32", lerobot_pi05_names, NULL},
    };
    for (size_t i = 0; i < sizeof ok / sizeof *ok; i++) {
        make_model_from(golden, ok[i].from, ok[i].name, ok[i].rename, NULL, EDIT_NONE, ok[i].config);
        snprintf(path, sizeof path, "%s/%s", g_tmp, ok[i].name);
        int ran = run_actions(path, &in.in, got, msg, sizeof msg);
        int same = ran && !memcmp(got, ref, HA * sizeof(float));
        printf("  %-28s -> %s\n", ok[i].name, ran ? (same ? "pi0.5, bit-identical actions" : "DIFFERENT actions") : msg);
        CHECK(same, "%s: %s", ok[i].name, ran ? "actions differ from the golden model's" : msg);
    }
    /* a π0 checkpoint with a silent config still loads as π0 */
    make_model(golden, "pi0_silent_config", NULL, NULL, EDIT_NONE, k_silent_config);
    snprintf(path, sizeof path, "%s/pi0_silent_config", g_tmp);
    pi0_model *m = pi0_model_create();
    CHECK(pi0_model_load(m, path) == PI0_OK && pi0_model_config(m)->pi05 == 0, "pi0 with a silent config: %s",
          pi0_model_error(m));
    pi0_model_free(m);
    /* the golden π0.5 config says "type": "pi05"; π0 weights under it, and π0.5 weights under a
     * config that says pi0, are refused */
    snprintf(msg, sizeof msg, "%s/pi05-tiny-f32/config.json", golden);
    char cfg05[4096] = "";
    FILE *fp = fopen(msg, "rb");
    if (fp) { size_t n = fread(cfg05, 1, sizeof cfg05 - 1, fp); cfg05[n] = 0; fclose(fp); }
    make_model(golden, "pi0_weights_pi05_config", NULL, NULL, EDIT_NONE, cfg05);
    expect_load_error("pi0_weights_pi05_config", PI0_ERR_CONFIG, "says the model is pi0.5, but the weights");
    make_model_from(golden, "pi05-tiny-f32", "pi05_weights_pi0_config", NULL, NULL, EDIT_NONE,
                    "{\"type\":\"pi0\",\"action_dim\":6,\"action_horizon\":5,\"max_token_len\":8,"
                    "\"num_steps\":3,\"num_cameras\":2}");
    expect_load_error("pi05_weights_pi0_config", PI0_ERR_CONFIG, "are pi0.5 (time_mlp_in/out");
    make_model_from(golden, "pi05-tiny-f32", "pi05_missing_dense", NULL,
                    "paligemma_with_expert.gemma_expert.model.layers.1.post_attention_layernorm.dense.weight",
                    EDIT_DROP, NULL);
    expect_load_error("pi05_missing_dense", PI0_ERR_TENSOR,
                      "missing tensor 'paligemma_with_expert.gemma_expert.model.layers.1.post_attention_layernorm.dense.weight'");
    inputs_free(&in);
}

static void test_checkpoints(const char *golden) {
    printf("checkpoint loading:\n");
    char path[4200], msg[512];
    pi0_err e;
    {   /* reference actions of the unmodified golden model */
        snprintf(path, sizeof path, "%s/tiny-f32", golden);
        pi0_model *m = pi0_model_create();
        const int loaded = pi0_model_load(m, path) == PI0_OK;
        CHECK(loaded, "%s", pi0_model_error(m));
        if (!loaded) { pi0_model_free(m); return; }
        snprintf(path, sizeof path, "%s/tiny-f32/inputs.safetensors", golden);
        CHECK(inputs_read(&g_inputs, path, pi0_model_config(m), &e) == PI0_OK, "%s", e.msg);
        pi0_session *s = pi0_session_create();
        pi0_params p = pi0_default_params();
        p.backend = "ref";
        CHECK(pi0_session_init(s, m, &p) == PI0_OK && pi0_session_infer(s, &g_inputs.in, g_ref_actions) == PI0_OK,
              "reference run: %s", pi0_session_error(s));
        pi0_session_free(s);
        pi0_model_free(m);
    }
    const char *vlm_q = "paligemma_with_expert.paligemma.model.language_model.layers.0.self_attn.q_proj.weight";
    make_model(golden, "missing_tensor", NULL, "state_proj.bias", EDIT_DROP, NULL);
    expect_load_error("missing_tensor", PI0_ERR_TENSOR, "missing tensor 'state_proj.bias'");
    make_model(golden, "wrong_shape", NULL, "action_in_proj.weight", EDIT_RESHAPE, NULL);
    expect_load_error("wrong_shape", PI0_ERR_TENSOR, "'action_in_proj.weight' has shape [6, 32]");
    make_model(golden, "config_width_mismatch", NULL, NULL, EDIT_NONE,
               "{\"action_dim\":6,\"action_horizon\":5,\"max_token_len\":8,\"num_steps\":3,\"num_cameras\":2,"
               "\"vision\":{\"image_size\":28,\"patch_size\":14,\"width\":24,\"depth\":2,\"mlp_dim\":40,\"num_heads\":4},"
               "\"vlm\":{\"width\":64,\"depth\":2,\"mlp_dim\":96,\"num_heads\":4,\"num_kv_heads\":1,\"head_dim\":16,\"vocab_size\":300},"
               "\"expert\":{\"width\":32,\"depth\":2,\"mlp_dim\":64,\"num_heads\":4,\"num_kv_heads\":1,\"head_dim\":16}}");
    expect_load_error("config_width_mismatch", PI0_ERR_TENSOR, "config.json implies");
    make_model(golden, "config_bad_value", NULL, NULL, EDIT_NONE, "{\"vision\":{\"patch_size\":0}}");
    expect_load_error("config_bad_value", PI0_ERR_CONFIG, "vision.patch_size");
    make_model(golden, "config_not_json", NULL, NULL, EDIT_NONE, "{oops");
    expect_load_error("config_not_json", PI0_ERR_CONFIG, "not valid JSON");
    snprintf(path, sizeof path, "%s/config_not_json/config.json", g_tmp);
    unlink(path);
    expect_load_error("config_not_json", PI0_ERR_IO, "config.json");
    snprintf(path, sizeof path, "%s/missing_tensor/model.safetensors", g_tmp);
    {
        pi0_model *m = pi0_model_create();
        CHECK(pi0_model_load(m, "/nonexistent/dir") == PI0_ERR_IO, "nonexistent path");
        CHECK(pi0_model_config(m) == NULL, "config of an unloaded model");
        pi0_model_free(m);
    }

    struct { const char *name; const char *(*rename)(const char *); const char *target; edit_kind edit; int exact; } ok[] = {
        {"prefix_model", add_model_prefix, NULL, EDIT_NONE, 1},
        {"lerobot_v1", v1_layout, NULL, EDIT_NONE, 1},
        {"embed_tokens", embed_tokens_name, NULL, EDIT_NONE, 1},
        {"mixed_f16", NULL, vlm_q, EDIT_F16, 0},
        {"mixed_bf16", NULL, "action_time_mlp_in.bias", EDIT_BF16, 0},
    };
    for (size_t i = 0; i < sizeof ok / sizeof *ok; i++) {
        make_model(golden, ok[i].name, ok[i].rename, ok[i].target, ok[i].edit, NULL);
        double pcc = 0;
        int identical = 0;
        pi0_status st = load_and_run(ok[i].name, msg, sizeof msg, &pcc, &identical);
        printf("  %-28s -> %s, actions PCC %.7f vs original%s\n", ok[i].name, pi0_status_str(st), pcc,
               identical ? " (bit-identical)" : "");
        CHECK(st == PI0_OK, "%s: %s", ok[i].name, msg);
        CHECK(ok[i].exact ? identical : (pcc > 0.9999 && !identical),
              "%s: actions PCC %.7f identical=%d", ok[i].name, pcc, identical);
    }
    inputs_free(&g_inputs);
}

int main(int argc, char **argv) {
    if (argc < 3) { fprintf(stderr, "usage: test_safetensors GOLDEN_DIR TMP_DIR\n"); return 2; }
    snprintf(g_tmp, sizeof g_tmp, "%s", argv[2]);
    mkdir(g_tmp, 0755);
    test_reader(argv[1]);
    test_configs();
    test_checkpoints(argv[1]);
    test_pi05_checkpoints(argv[1]);
    return test_summary();
}
