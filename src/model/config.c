/* config.c — config.json in three dialects:
 *  - explicit (golden cases): blocks "vision", "vlm", "expert" + policy fields at top level;
 *  - openpi: "paligemma_variant", "action_expert_variant", "action_dim", "action_horizon",
 *    "max_token_len";
 *  - lerobot: "chunk_size", "max_action_dim", "max_state_dim", "num_inference_steps" /
 *    "num_steps", "tokenizer_max_length", plus the same variant names.
 * The model kind (π0 or π0.5, spec §6) is declared by "type" / "model_type" ("pi0", "pi05") or
 * "pi05": true, or (openpi's converted checkpoints say nothing) told by the weights; a declared
 * kind that disagrees with the weights is refused. Missing values fall back to the released
 * model of that kind (spec §1, §6.1: max_token_len 48 for π0, 200 for π0.5). */
#include "config.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

static const pi0_siglip_config k_so400m = {224, 14, 1152, 27, 4304, 16, 1e-6f};
static const pi0_gemma_config k_gemma_2b = {2048, 18, 16384, 8, 1, 256, 257152, 1e-6f, 10000.0};
static const pi0_gemma_config k_gemma_300m = {1024, 18, 4096, 8, 1, 256, 0, 1e-6f, 10000.0};

static int preset_sizes(pi0_config *c, const char *name);

static void config_full(pi0_config *c) {
    memset(c, 0, sizeof *c);
    c->discrete_state_input = -1; /* resolved with the kind */
    c->vision = k_so400m;
    c->vlm = k_gemma_2b;
    c->expert = k_gemma_300m;
    c->action_dim = 32;
    c->state_dim = 32;
    c->action_horizon = 50;
    c->max_token_len = -1;     /* resolved with the kind: 48 (π0) or 200 (π0.5) */
    c->num_steps = 10;
    c->num_cameras = 3;
    c->time_min_period = 4e-3;
    c->time_max_period = 4.0;
}

double pi0_flow_time(int schedule, int k, int n) {
    const double dt = -1.0 / n;
    if (schedule == PI0_FLOW_TIME_F32) return (float)(1.0 + k * dt);
    if (schedule == PI0_FLOW_TIME_F32_SUM) {
        float t = 1.0f;
        for (int i = 0; i < k; i++) t = t + (float)dt;
        return t;
    }
    return 1.0 - (double)k / n;
}

int pi0_config_image_tokens(const pi0_config *c) {
    int g = c->vision.image_size / c->vision.patch_size;
    return g * g;
}

/* Variant names: gemma_2b / gemma_300m (and their _lora twins: same shapes). */
static int gemma_variant(const char *name, pi0_gemma_config *g) {
    if (strncmp(name, "gemma_2b", 8) == 0 && (!name[8] || !strcmp(name + 8, "_lora"))) {
        *g = k_gemma_2b;
        return 1;
    }
    if (strncmp(name, "gemma_300m", 10) == 0 && (!name[10] || !strcmp(name + 10, "_lora"))) {
        *g = k_gemma_300m;
        return 1;
    }
    return 0;
}

/* Reads an integer field if present. Returns 0 on a present-but-invalid value. */
static int get_int(const cJSON *o, const char *key, int *out) {
    const cJSON *j = cJSON_GetObjectItemCaseSensitive(o, key);
    if (!j) return 1;
    if (!cJSON_IsNumber(j) || j->valuedouble != floor(j->valuedouble) ||
        fabs(j->valuedouble) > 1e9)
        return 0;
    *out = (int)j->valuedouble;
    return 1;
}

/* Reads a number field if present; 0 on a present-but-invalid value. A literal beyond double's
 * range (1e900) parses as infinity: refused, as a NaN or infinite period or theta would be. */
static int get_double(const cJSON *o, const char *key, double *out) {
    const cJSON *j = cJSON_GetObjectItemCaseSensitive(o, key);
    if (!j) return 1;
    if (!cJSON_IsNumber(j) || !isfinite(j->valuedouble)) return 0;
    *out = j->valuedouble;
    return 1;
}

static int get_float(const cJSON *o, const char *key, float *out) {
    double d = *out;
    if (!get_double(o, key, &d)) return 0;
    *out = (float)d;
    return 1;
}

#define INT_FIELD(obj, key, dst, where)                                                        \
    RETURN_ERR_IF(!get_int(obj, key, dst), e, PI0_ERR_CONFIG,                            \
                  "%s: field %s%s must be an integer", path, where, key)
#define FLOAT_FIELD(obj, key, dst, where)                                                      \
    RETURN_ERR_IF(!get_float(obj, key, dst), e, PI0_ERR_CONFIG,                                \
                  "%s: field %s%s must be a finite number", path, where, key)

static pi0_status parse_gemma(const cJSON *o, pi0_gemma_config *g, const char *where,
                              const char *path, pi0_err *e) {
    RETURN_ERR_IF(!cJSON_IsObject(o), e, PI0_ERR_CONFIG, "%s: field %s must be an object", path, where);
    INT_FIELD(o, "width", &g->width, where);
    INT_FIELD(o, "depth", &g->depth, where);
    INT_FIELD(o, "mlp_dim", &g->mlp_dim, where);
    INT_FIELD(o, "num_heads", &g->num_heads, where);
    INT_FIELD(o, "num_kv_heads", &g->num_kv_heads, where);
    INT_FIELD(o, "head_dim", &g->head_dim, where);
    INT_FIELD(o, "vocab_size", &g->vocab_size, where);
    FLOAT_FIELD(o, "norm_eps", &g->norm_eps, where);
    RETURN_ERR_IF(!get_double(o, "rope_theta", &g->rope_theta), e, PI0_ERR_CONFIG,
                  "%s: field %srope_theta must be a finite number", path, where);
    return PI0_OK;
}

int config_visual_features(const cJSON *root, const char **names, int cap) {
    const cJSON *feats = cJSON_GetObjectItemCaseSensitive(root, "input_features");
    int n = 0;
    if (feats) {
        if (!cJSON_IsObject(feats)) return -1;
        for (const cJSON *f = feats->child; f; f = f->next) {
            const cJSON *type = cJSON_GetObjectItemCaseSensitive(f, "type");
            if (!cJSON_IsObject(f) || !cJSON_IsString(type)) return -1;
            if (strcmp(type->valuestring, "VISUAL")) continue;
            if (n < cap) names[n] = f->string;
            n++;
        }
    }
    const cJSON *empty = cJSON_GetObjectItemCaseSensitive(root, "empty_cameras");
    if (empty) { /* lerobot adds observation.images.empty_camera_<i> slots (often listed already) */
        if (!cJSON_IsNumber(empty) || empty->valuedouble < 0 || empty->valuedouble > 16 ||
            empty->valuedouble != floor(empty->valuedouble))
            return -1;
        for (int i = 0; i < empty->valueint; i++) {
            char key[64];
            snprintf(key, sizeof key, "observation.images.empty_camera_%d", i);
            if (feats && cJSON_GetObjectItemCaseSensitive(feats, key)) continue;
            if (n < cap) names[n] = NULL; /* a slot with no feature entry */
            n++;
        }
    }
    return n;
}

/* A boolean field if present: 1 / 0, -1 when absent; -2 when present but not a boolean. */
static int get_bool(const cJSON *o, const char *key) {
    const cJSON *j = cJSON_GetObjectItemCaseSensitive(o, key);
    return !j ? -1 : cJSON_IsBool(j) ? cJSON_IsTrue(j) : -2;
}

/* *declared: -1 when config.json does not say which model it is, else 0 (π0) or 1 (π0.5). */
static pi0_status parse_root(pi0_config *c, const cJSON *root, const char *path, int *declared, pi0_err *e) {
    RETURN_ERR_IF(!cJSON_IsObject(root), e, PI0_ERR_CONFIG, "%s: not a JSON object", path);
    *declared = -1;
    const cJSON *type = cJSON_GetObjectItemCaseSensitive(root, "type");
    if (!type) type = cJSON_GetObjectItemCaseSensitive(root, "model_type");
    if (type) {
        const char *t = cJSON_IsString(type) ? type->valuestring : "";
        RETURN_ERR_IF(!strcmp(t, "pi0fast") || !strcmp(t, "pi0_fast") || !strcmp(t, "pi0-fast"), e,
                      PI0_ERR_UNSUPPORTED, "%s: field type \"%s\": pi0-FAST is an autoregressive model "
                      "(action tokens decoded one by one), not the flow-matching pi0 / pi0.5 that pi0.c runs",
                      path, t);
        RETURN_ERR_IF(strcmp(t, "pi0") && strcmp(t, "pi05"), e, PI0_ERR_CONFIG,
                      "%s: field type: only \"pi0\" and \"pi05\" are supported, got %s", path,
                      cJSON_IsString(type) ? t : "a non-string");
        *declared = !strcmp(t, "pi05");
    }
    const int pi05 = get_bool(root, "pi05");
    RETURN_ERR_IF(pi05 == -2, e, PI0_ERR_CONFIG, "%s: field pi05 must be true or false", path);
    RETURN_ERR_IF(pi05 >= 0 && *declared >= 0 && pi05 != *declared, e, PI0_ERR_CONFIG,
                  "%s: field pi05 = %s contradicts type \"%s\"", path, pi05 ? "true" : "false",
                  *declared ? "pi05" : "pi0");
    if (pi05 >= 0) *declared = pi05;
    const int dsi = get_bool(root, "discrete_state_input");
    RETURN_ERR_IF(dsi == -2, e, PI0_ERR_CONFIG, "%s: field discrete_state_input must be true or false", path);
    c->discrete_state_input = dsi;

    /* Variant names first, explicit blocks override them. */
    const char *vkeys[2] = {"paligemma_variant", "action_expert_variant"};
    pi0_gemma_config *vdst[2] = {&c->vlm, &c->expert};
    for (int i = 0; i < 2; i++) {
        const cJSON *v = cJSON_GetObjectItemCaseSensitive(root, vkeys[i]);
        if (!v) continue;
        RETURN_ERR_IF(!cJSON_IsString(v) || !gemma_variant(v->valuestring, vdst[i]), e,
                      PI0_ERR_CONFIG, "%s: field %s: unknown variant %s (known: gemma_2b, gemma_300m)",
                      path, vkeys[i], cJSON_IsString(v) ? v->valuestring : "(non-string)");
    }
    c->expert.vocab_size = 0;

    const cJSON *vis = cJSON_GetObjectItemCaseSensitive(root, "vision");
    if (vis) {
        RETURN_ERR_IF(!cJSON_IsObject(vis), e, PI0_ERR_CONFIG, "%s: field vision must be an object", path);
        INT_FIELD(vis, "image_size", &c->vision.image_size, "vision.");
        INT_FIELD(vis, "patch_size", &c->vision.patch_size, "vision.");
        INT_FIELD(vis, "width", &c->vision.width, "vision.");
        INT_FIELD(vis, "depth", &c->vision.depth, "vision.");
        INT_FIELD(vis, "mlp_dim", &c->vision.mlp_dim, "vision.");
        INT_FIELD(vis, "num_heads", &c->vision.num_heads, "vision.");
        FLOAT_FIELD(vis, "norm_eps", &c->vision.norm_eps, "vision.");
    }
    const cJSON *vlm = cJSON_GetObjectItemCaseSensitive(root, "vlm");
    if (vlm) FORWARD_ERR(parse_gemma(vlm, &c->vlm, "vlm.", path, e));
    const cJSON *ex = cJSON_GetObjectItemCaseSensitive(root, "expert");
    if (ex) {
        /* The expert shares the vlm's rope_theta unless it names its own. */
        c->expert.rope_theta = c->vlm.rope_theta;
        FORWARD_ERR(parse_gemma(ex, &c->expert, "expert.", path, e));
        /* π0.5's adaptive norms: conditioned on the time MLP's output, which is expert-wide. */
        const int adarms = get_bool(ex, "use_adarms");
        RETURN_ERR_IF(adarms == -2, e, PI0_ERR_CONFIG, "%s: field expert.use_adarms must be true or false", path);
        RETURN_ERR_IF(adarms >= 0 && *declared >= 0 && adarms != *declared, e, PI0_ERR_CONFIG,
                      "%s: field expert.use_adarms = %s contradicts the model type (%s)", path,
                      adarms ? "true" : "false", *declared ? "pi05" : "pi0");
        if (adarms >= 0) *declared = adarms;
        int cond = c->expert.width;
        INT_FIELD(ex, "adarms_cond_dim", &cond, "expert.");
        RETURN_ERR_IF(cond != c->expert.width, e, PI0_ERR_CONFIG,
                      "%s: field expert.adarms_cond_dim = %d must equal expert.width = %d (the condition "
                      "is the time MLP's output)", path, cond, c->expert.width);
    }

    /* Policy fields: openpi names, then lerobot aliases (openpi names win when both). */
    RETURN_ERR_IF(!get_int(root, "max_action_dim", &c->action_dim) ||
                  !get_int(root, "action_dim", &c->action_dim),
                  e, PI0_ERR_CONFIG, "%s: field action_dim must be an integer", path);
    c->state_dim = c->action_dim;
    RETURN_ERR_IF(!get_int(root, "max_state_dim", &c->state_dim) ||
                  !get_int(root, "state_dim", &c->state_dim),
                  e, PI0_ERR_CONFIG, "%s: field max_state_dim must be an integer", path);
    RETURN_ERR_IF(!get_int(root, "chunk_size", &c->action_horizon) ||
                  !get_int(root, "action_horizon", &c->action_horizon),
                  e, PI0_ERR_CONFIG, "%s: field action_horizon must be an integer", path);
    RETURN_ERR_IF(!get_int(root, "tokenizer_max_length", &c->max_token_len) ||
                  !get_int(root, "max_token_len", &c->max_token_len),
                  e, PI0_ERR_CONFIG, "%s: field max_token_len must be an integer", path);
    RETURN_ERR_IF(!get_int(root, "num_inference_steps", &c->num_steps) ||
                  !get_int(root, "num_steps", &c->num_steps),
                  e, PI0_ERR_CONFIG, "%s: field num_steps must be an integer", path);
    /* lerobot: one prefix slot per VISUAL input feature (empty_camera_<i> slots included); the
     * older v1 layout (marked by proj_width / resize_imgs_with_padding) plans n_action_steps
     * actions per chunk (lerobot.md §9.2). */
    const int nvis = config_visual_features(root, NULL, 0);
    RETURN_ERR_IF(nvis < 0, e, PI0_ERR_CONFIG, "%s: field input_features must map feature keys to objects with "
                  "a string \"type\" (and empty_cameras must be a small integer)", path);
    if (nvis > 0) c->num_cameras = nvis;
    if (cJSON_GetObjectItemCaseSensitive(root, "proj_width") ||
        cJSON_GetObjectItemCaseSensitive(root, "resize_imgs_with_padding"))
        INT_FIELD(root, "n_action_steps", &c->action_horizon, "");
    const cJSON *res = cJSON_GetObjectItemCaseSensitive(root, "image_resolution");
    if (res) {
        const cJSON *h = cJSON_GetArrayItem(res, 0), *w = cJSON_GetArrayItem(res, 1);
        RETURN_ERR_IF(!cJSON_IsArray(res) || cJSON_GetArraySize(res) != 2 || !cJSON_IsNumber(h) || !cJSON_IsNumber(w) ||
                      h->valuedouble != w->valuedouble || h->valuedouble != c->vision.image_size,
                      e, PI0_ERR_CONFIG, "%s: field image_resolution must be [%d, %d] (the SigLIP input size)", path,
                      c->vision.image_size, c->vision.image_size);
    }
    INT_FIELD(root, "num_cameras", &c->num_cameras, "");
    INT_FIELD(root, "rtc_training_max_delay", &c->rtc_training_max_delay, "");
    c->random_weights = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(root, "random_weights"));
    /* lerobot's "dtype": with bfloat16 its embed_scale is cast to the weights' dtype before the
     * multiply (lerobot.md §8): bf16(sqrt(width)), 45.25 for 2048 (config_text_embed_scale) */
    const cJSON *dtype = cJSON_GetObjectItemCaseSensitive(root, "dtype");
    c->text_embed_bf16 = cJSON_IsString(dtype) && !strcmp(dtype->valuestring, "bfloat16");
    RETURN_ERR_IF(!get_double(root, "min_period", &c->time_min_period) ||
                  !get_double(root, "max_period", &c->time_max_period) ||
                  !get_double(root, "time_min_period", &c->time_min_period) ||
                  !get_double(root, "time_max_period", &c->time_max_period), e, PI0_ERR_CONFIG,
                  "%s: fields time_min_period / time_max_period (min_period / max_period) must be finite numbers", path);
    return PI0_OK;
}

/* Fills what depends on the model kind: π0.5 (spec §6.1) has max_token_len 200 and
 * discrete_state_input true by default. */
static void resolve_kind(pi0_config *c, int pi05) {
    c->pi05 = pi05;
    if (c->max_token_len == -1) c->max_token_len = pi05 ? 200 : 48;
    if (c->discrete_state_input < 0) c->discrete_state_input = pi05;
}

float config_text_embed_scale(const pi0_config *c) {
    const float root = sqrtf((float)c->vlm.width);
    return c->text_embed_bf16 ? bf16_to_f32(f32_to_bf16(root)) : root;
}

pi0_status config_parse_for(pi0_config *c, const char *json, size_t len, const char *path, int weights_pi05,
                            const char *weights_path, pi0_err *e) {
    config_full(c);
    cJSON *root = cJSON_ParseWithLength(json, len);
    RETURN_ERR_IF(!root, e, PI0_ERR_CONFIG, "%s: not valid JSON", path);
    int declared = -1;
    pi0_status st = parse_root(c, root, path, &declared, e);
    cJSON_Delete(root);
    FORWARD_ERR(st);
    static const char *kind[2] = {"pi0 (state_proj, action_time_mlp_*)",
                                  "pi0.5 (time_mlp_in/out, adaptive expert norms '.dense', no state_proj)"};
    RETURN_ERR_IF(weights_pi05 >= 0 && declared >= 0 && weights_pi05 != declared, e, PI0_ERR_CONFIG,
                  "%s says the model is %s, but the weights in %s are %s: config and checkpoint do not match",
                  path, declared ? "pi0.5" : "pi0", weights_path ? weights_path : "the checkpoint",
                  kind[weights_pi05]);
    resolve_kind(c, declared >= 0 ? declared : weights_pi05 >= 0 ? weights_pi05 : 0);
    return config_validate(c, path, e);
}

pi0_status config_parse(pi0_config *c, const char *json, size_t len, const char *path, pi0_err *e) {
    return config_parse_for(c, json, len, path, -1, NULL, e);
}

pi0_status config_load_for(pi0_config *c, const char *path, int weights_pi05, const char *weights_path,
                           pi0_err *e) {
    char *buf;
    size_t len;
    FORWARD_ERR(read_file(path, 16u << 20, &buf, &len, e));
    pi0_status st = config_parse_for(c, buf, len, path, weights_pi05, weights_path, e);
    free(buf);
    return st;
}

pi0_status config_load(pi0_config *c, const char *path, pi0_err *e) {
    return config_load_for(c, path, -1, NULL, e);
}

int config_declared_kind(const char *path) {
    char *buf;
    size_t len;
    pi0_err e;
    if (read_file(path, 16u << 20, &buf, &len, &e) != PI0_OK) return -1;
    cJSON *root = cJSON_ParseWithLength(buf, len);
    free(buf);
    if (!root) return -1;
    pi0_config c;
    config_full(&c);
    int declared = -1;
    const pi0_status st = parse_root(&c, root, path, &declared, &e);
    cJSON_Delete(root);
    return st == PI0_OK ? declared : -1;
}

#define CHECK_RANGE(val, lo, hi, name)                                                         \
    RETURN_ERR_IF((val) < (lo) || (val) > (hi), e, PI0_ERR_CONFIG,                             \
                  "%s: field %s = %d out of range [%d, %d]", path, name, (int)(val), (int)(lo), (int)(hi))

static pi0_status validate_gemma(const pi0_gemma_config *g, const char *w, const char *path, pi0_err *e) {
    char name[64];
#define G(field, lo, hi) snprintf(name, sizeof name, "%s" #field, w); CHECK_RANGE(g->field, lo, hi, name)
    G(width, 1, 65536);
    G(depth, 1, 1024);
    G(mlp_dim, 1, 1 << 20);
    G(num_heads, 1, 1024);
    G(num_kv_heads, 1, 1024);
    G(head_dim, 2, 4096);
#undef G
    RETURN_ERR_IF(g->head_dim % 2, e, PI0_ERR_CONFIG, "%s: field %shead_dim = %d must be even (RoPE)",
                  path, w, g->head_dim);
    RETURN_ERR_IF(g->num_heads % g->num_kv_heads, e, PI0_ERR_CONFIG,
                  "%s: field %snum_heads = %d is not a multiple of num_kv_heads = %d", path, w,
                  g->num_heads, g->num_kv_heads);
    RETURN_ERR_IF(!(g->norm_eps > 0 && g->norm_eps < 1), e, PI0_ERR_CONFIG,
                  "%s: field %snorm_eps = %g out of range (0, 1)", path, w, g->norm_eps);
    RETURN_ERR_IF(!(g->rope_theta > 1), e, PI0_ERR_CONFIG,
                  "%s: field %srope_theta = %g must be > 1", path, w, g->rope_theta);
    return PI0_OK;
}

pi0_status config_validate(const pi0_config *c, const char *path, pi0_err *e) {
    const pi0_siglip_config *v = &c->vision;
    CHECK_RANGE(v->patch_size, 1, 1024, "vision.patch_size");
    CHECK_RANGE(v->image_size, v->patch_size, 8192, "vision.image_size");
    RETURN_ERR_IF(v->image_size % v->patch_size, e, PI0_ERR_CONFIG,
                  "%s: field vision.image_size = %d is not a multiple of patch_size = %d", path,
                  v->image_size, v->patch_size);
    CHECK_RANGE(v->width, 1, 65536, "vision.width");
    CHECK_RANGE(v->depth, 1, 1024, "vision.depth");
    CHECK_RANGE(v->mlp_dim, 1, 1 << 20, "vision.mlp_dim");
    CHECK_RANGE(v->num_heads, 1, 1024, "vision.num_heads");
    RETURN_ERR_IF(v->width % v->num_heads, e, PI0_ERR_CONFIG,
                  "%s: field vision.width = %d is not a multiple of vision.num_heads = %d", path,
                  v->width, v->num_heads);
    RETURN_ERR_IF(!(v->norm_eps > 0 && v->norm_eps < 1), e, PI0_ERR_CONFIG,
                  "%s: field vision.norm_eps = %g out of range (0, 1)", path, v->norm_eps);
    FORWARD_ERR(validate_gemma(&c->vlm, "vlm.", path, e));
    FORWARD_ERR(validate_gemma(&c->expert, "expert.", path, e));
    CHECK_RANGE(c->vlm.vocab_size, 1, 1 << 24, "vlm.vocab_size");
    RETURN_ERR_IF(c->expert.depth != c->vlm.depth || c->expert.num_heads != c->vlm.num_heads ||
                      c->expert.num_kv_heads != c->vlm.num_kv_heads ||
                      c->expert.head_dim != c->vlm.head_dim,
                  e, PI0_ERR_CONFIG,
                  "%s: expert depth/num_heads/num_kv_heads/head_dim (%d/%d/%d/%d) must equal the "
                  "vlm's (%d/%d/%d/%d)", path, c->expert.depth, c->expert.num_heads,
                  c->expert.num_kv_heads, c->expert.head_dim, c->vlm.depth, c->vlm.num_heads,
                  c->vlm.num_kv_heads, c->vlm.head_dim);
    RETURN_ERR_IF(c->expert.width % 2, e, PI0_ERR_CONFIG,
                  "%s: field expert.width = %d must be even (sinusoidal time embedding)", path,
                  c->expert.width);
    CHECK_RANGE(c->action_dim, 1, 4096, "action_dim");
    CHECK_RANGE(c->state_dim, 1, 4096, "state_dim");
    CHECK_RANGE(c->action_horizon, 1, 4096, "action_horizon");
    CHECK_RANGE(c->max_token_len, 1, 8192, "max_token_len");
    CHECK_RANGE(c->num_steps, 1, 10000, "num_steps");
    CHECK_RANGE(c->num_cameras, 1, 16, "num_cameras");
    RETURN_ERR_IF(c->rtc_training_max_delay < 0 || c->rtc_training_max_delay >= c->action_horizon, e, PI0_ERR_CONFIG,
                  "%s: field rtc_training_max_delay = %d must satisfy 0 <= delay < action_horizon (%d)", path,
                  c->rtc_training_max_delay, c->action_horizon);
    RETURN_ERR_IF(!(c->time_min_period > 0 && c->time_max_period > 0), e, PI0_ERR_CONFIG,
                  "%s: fields time_min_period / time_max_period must be > 0", path);
    return PI0_OK;
}

int config_preset(pi0_config *c, const char *name, int pi05) {
    config_full(c);
    const int found = preset_sizes(c, name);
    if (found) resolve_kind(c, pi05);
    return found;
}

/* The sizes of a named preset (kind-independent). */
static int preset_sizes(pi0_config *c, const char *name) {
    if (strcmp(name, "full") == 0) return 1;
    /* tiny and small mirror the golden cases' sizes (golden/tiny-f32, golden/small-bf16). */
    if (strcmp(name, "tiny") == 0) {
        c->vision = (pi0_siglip_config){28, 14, 24, 2, 40, 4, 1e-6f};
        c->vlm = (pi0_gemma_config){48, 2, 96, 4, 1, 16, 300, 1e-6f, 10000.0};
        c->expert = (pi0_gemma_config){32, 2, 64, 4, 1, 16, 0, 1e-6f, 10000.0};
        c->action_dim = c->state_dim = 6;
        c->action_horizon = 5;
        c->max_token_len = 8;
        c->num_steps = 3;
        c->num_cameras = 2;
        return 1;
    }
    if (strcmp(name, "demo") == 0) { /* real tokenizer vocabulary and image size, tiny widths */
        c->vision = (pi0_siglip_config){224, 14, 64, 2, 128, 4, 1e-6f};
        c->vlm = (pi0_gemma_config){64, 2, 128, 4, 1, 32, 257152, 1e-6f, 10000.0};
        c->expert = (pi0_gemma_config){48, 2, 96, 4, 1, 32, 0, 1e-6f, 10000.0};
        return 1;
    }
    if (strcmp(name, "small") == 0) {
        c->vision = (pi0_siglip_config){56, 14, 48, 3, 80, 4, 1e-6f};
        c->vlm = (pi0_gemma_config){64, 3, 128, 4, 1, 32, 512, 1e-6f, 10000.0};
        c->expert = (pi0_gemma_config){40, 3, 72, 4, 1, 32, 0, 1e-6f, 10000.0};
        c->action_dim = c->state_dim = 8;
        c->action_horizon = 7;
        c->max_token_len = 12;
        c->num_steps = 10;
        c->num_cameras = 3;
        return 1;
    }
    return 0;
}

char *config_to_json(const pi0_config *c) {
    char *buf = malloc(4096);
    if (!buf) return NULL;
    const pi0_siglip_config *v = &c->vision;
    const pi0_gemma_config *g = &c->vlm, *x = &c->expert;
    snprintf(buf, 4096,
             "{\n \"type\": \"%s\",\n \"discrete_state_input\": %s,\n \"random_weights\": %s,\n"
             " \"action_dim\": %d,\n \"state_dim\": %d,\n"
             " \"action_horizon\": %d,\n \"max_token_len\": %d,\n \"num_steps\": %d,\n"
             " \"num_cameras\": %d,\n \"time_min_period\": %.17g,\n \"time_max_period\": %.17g,\n"
             " \"vision\": {\"image_size\": %d, \"patch_size\": %d, \"width\": %d, \"depth\": %d, "
             "\"mlp_dim\": %d, \"num_heads\": %d, \"norm_eps\": %.9g},\n"
             " \"vlm\": {\"width\": %d, \"depth\": %d, \"mlp_dim\": %d, \"num_heads\": %d, "
             "\"num_kv_heads\": %d, \"head_dim\": %d, \"vocab_size\": %d, \"norm_eps\": %.9g, "
             "\"rope_theta\": %.17g},\n"
             " \"expert\": {\"width\": %d, \"depth\": %d, \"mlp_dim\": %d, \"num_heads\": %d, "
             "\"num_kv_heads\": %d, \"head_dim\": %d, \"norm_eps\": %.9g, \"rope_theta\": %.17g%s}\n}\n",
             c->pi05 ? "pi05" : "pi0", c->discrete_state_input ? "true" : "false", c->random_weights ? "true" : "false", c->action_dim, c->state_dim, c->action_horizon, c->max_token_len, c->num_steps,
             c->num_cameras, c->time_min_period, c->time_max_period, v->image_size, v->patch_size,
             v->width, v->depth, v->mlp_dim, v->num_heads, v->norm_eps, g->width, g->depth,
             g->mlp_dim, g->num_heads, g->num_kv_heads, g->head_dim, g->vocab_size, g->norm_eps,
             g->rope_theta, x->width, x->depth, x->mlp_dim, x->num_heads, x->num_kv_heads,
             x->head_dim, x->norm_eps, x->rope_theta, c->pi05 ? ", \"use_adarms\": true" : "");
    return buf;
}
