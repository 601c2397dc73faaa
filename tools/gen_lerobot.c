/* gen_lerobot.c — the non-weight files of a random checkpoint in lerobot's current layout
 * (`pi0 gen-model --layout lerobot`; lerobot.md §1): config.json with lerobot's fields (the
 * cameras as VISUAL input features, native state and action lengths, normalization mapping;
 * the architecture's explicit blocks kept so small presets load), policy_preprocessor.json and
 * policy_postprocessor.json with the steps a lerobot π0 / π0.5 saves, and their normalizer
 * statistics as safetensors ("<feature>.<stat>", every stat lerobot writes). Random
 * statistics: tests and demos only. */
#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include "cli.h"
#include "../src/common.h"
#include "../src/io/safetensors.h"
#include "../src/model/config.h"

/* Camera feature names of a generated checkpoint, in slot order. */
static const char *k_cams[] = {"observation.images.top", "observation.images.wrist_left", "observation.images.wrist_right"};

static int write_text(const char *path, const char *text, pi0_err *e) {
    FILE *fp = fopen(path, "w");
    int ok = text && fp && fputs(text, fp) >= 0;
    if (fp && fclose(fp) != 0) ok = 0;
    if (!ok) pi0_fail(e, PI0_ERR_IO, "%s: cannot write", path);
    return ok;
}

/* Writes j (and frees it) as indented JSON to dir/name. */
static int write_json(const char *dir, const char *name, cJSON *j, pi0_err *e) {
    char path[4200], *text = cJSON_Print(j);
    cJSON_Delete(j);
    snprintf(path, sizeof path, "%s/%s", dir, name);
    int ok = write_text(path, text, e);
    free(text);
    return ok;
}

static cJSON *feature(const char *type, int n0, int n1, int n2) {
    cJSON *f = cJSON_CreateObject(), *shape = cJSON_AddArrayToObject(f, "shape");
    cJSON_AddStringToObject(f, "type", type);
    cJSON_AddItemToArray(shape, cJSON_CreateNumber(n0));
    if (n1) cJSON_AddItemToArray(shape, cJSON_CreateNumber(n1));
    if (n2) cJSON_AddItemToArray(shape, cJSON_CreateNumber(n2));
    return f;
}

static cJSON *step(const char *registry, cJSON *config, const char *state_file) {
    cJSON *s = cJSON_CreateObject();
    cJSON_AddStringToObject(s, "registry_name", registry);
    cJSON_AddItemToObject(s, "config", config ? config : cJSON_CreateObject());
    if (state_file) cJSON_AddStringToObject(s, "state_file", state_file);
    return s;
}

/* The (un)normalizer step's config: eps, the features it covers, the mode per feature type. */
static cJSON *normalizer_config(const char *mode, int with_inputs, int S, int A, int n_cams, int img) {
    cJSON *c = cJSON_CreateObject(), *feats = cJSON_CreateObject(), *map = cJSON_CreateObject();
    cJSON_AddNumberToObject(c, "eps", 1e-8);
    if (with_inputs) {
        for (int i = 0; i < n_cams && i < 3; i++) cJSON_AddItemToObject(feats, k_cams[i], feature("VISUAL", 3, img, img));
        cJSON_AddItemToObject(feats, "observation.state", feature("STATE", S, 0, 0));
    }
    cJSON_AddItemToObject(feats, "action", feature("ACTION", A, 0, 0));
    cJSON_AddItemToObject(c, "features", feats);
    cJSON_AddStringToObject(map, "VISUAL", "IDENTITY");
    cJSON_AddStringToObject(map, "STATE", mode);
    cJSON_AddStringToObject(map, "ACTION", mode);
    cJSON_AddItemToObject(c, "norm_map", map);
    return c;
}

/* Random statistics for observation.state [S] and action [A]: every stat lerobot saves. */
static int write_stats(const char *path, int S, int A, pi0_rng *rng, pi0_err *e) {
    static const char *stats[] = {"mean", "std", "min", "max", "q01", "q99", "q10", "q90"};
    enum { NS = 8 };
    st_decl d[2 * NS];
    const void *data[2 * NS];
    char names[2 * NS][64];
    float *buf = malloc((size_t)2 * NS * (S > A ? S : A) * sizeof *buf);
    if (!buf) return pi0_fail(e, PI0_ERR_NOMEM, "out of memory") == PI0_OK;
    for (int f = 0; f < 2; f++) {
        const int n = f ? A : S;
        for (int j = 0; j < n; j++) {
            float z[2];
            rng_gaussian(rng, z, 2);
            const float mean = z[0], std = 0.5f + 1.5f * (float)rng_uniform(rng);
            const float v[NS] = {mean, std, mean - 3 * std, mean + 3 * std, mean - 2.3f * std, mean + 2.3f * std,
                                 mean - 1.28f * std, mean + 1.28f * std};
            for (int k = 0; k < NS; k++) buf[(size_t)(f * NS + k) * (S > A ? S : A) + j] = v[k];
        }
        for (int k = 0; k < NS; k++) {
            const int i = f * NS + k;
            snprintf(names[i], sizeof names[i], "%s.%s", f ? "action" : "observation.state", stats[k]);
            d[i] = (st_decl){.name = names[i], .dtype = DT_F32, .ndim = 1, .shape = {n}};
            data[i] = buf + (size_t)i * (S > A ? S : A);
        }
    }
    const int ok = st_write_file(path, d, data, 2 * NS, e) == PI0_OK;
    free(buf);
    return ok;
}

pi0_status gen_lerobot_files(const pi0_config *c, const char *out, int S, int A, int relative, uint64_t seed,
                             pi0_err *e) {
    const char *mode = c->pi05 ? "QUANTILES" : "MEAN_STD";
    const int img = c->vision.image_size, ncam = c->num_cameras < 3 ? c->num_cameras : 3;
    /* config.json: the explicit architecture plus lerobot's fields */
    char *base = config_to_json(c);
    cJSON *cfg = base ? cJSON_Parse(base) : NULL;
    free(base);
    RETURN_ERR_IF(!cfg, e, PI0_ERR_NOMEM, "out of memory");
    cJSON_DeleteItemFromObject(cfg, "num_cameras"); /* lerobot: the VISUAL features say it */
    cJSON_AddNumberToObject(cfg, "chunk_size", c->action_horizon);
    cJSON_AddNumberToObject(cfg, "n_action_steps", c->action_horizon);
    cJSON_AddNumberToObject(cfg, "max_state_dim", c->state_dim);
    cJSON_AddNumberToObject(cfg, "max_action_dim", c->action_dim);
    cJSON_AddNumberToObject(cfg, "num_inference_steps", c->num_steps);
    cJSON_AddNumberToObject(cfg, "tokenizer_max_length", c->max_token_len);
    cJSON_AddNumberToObject(cfg, "min_period", c->time_min_period);
    cJSON_AddNumberToObject(cfg, "max_period", c->time_max_period);
    cJSON_AddStringToObject(cfg, "dtype", "float32");
    cJSON *res = cJSON_AddArrayToObject(cfg, "image_resolution");
    cJSON_AddItemToArray(res, cJSON_CreateNumber(img));
    cJSON_AddItemToArray(res, cJSON_CreateNumber(img));
    cJSON *in = cJSON_AddObjectToObject(cfg, "input_features"), *outf = cJSON_AddObjectToObject(cfg, "output_features");
    for (int i = 0; i < ncam; i++) cJSON_AddItemToObject(in, k_cams[i], feature("VISUAL", 3, img, img));
    cJSON_AddItemToObject(in, "observation.state", feature("STATE", S, 0, 0));
    cJSON_AddItemToObject(outf, "action", feature("ACTION", A, 0, 0));
    cJSON *nm = cJSON_AddObjectToObject(cfg, "normalization_mapping");
    cJSON_AddStringToObject(nm, "VISUAL", "IDENTITY");
    cJSON_AddStringToObject(nm, "STATE", mode);
    cJSON_AddStringToObject(nm, "ACTION", mode);
    cJSON_AddBoolToObject(cfg, "use_relative_actions", relative);
    cJSON *excl = cJSON_AddArrayToObject(cfg, "relative_exclude_joints");
    cJSON_AddItemToArray(excl, cJSON_CreateString("gripper"));
    cJSON *names = cJSON_AddArrayToObject(cfg, "action_feature_names");
    for (int j = 0; j < A; j++) {
        char n[32];
        snprintf(n, sizeof n, j == A - 1 ? "gripper" : "joint_%d", j);
        cJSON_AddItemToArray(names, cJSON_CreateString(n));
    }
    /* the relative-actions step's config (lerobot reads these from the step, not config.json) */
    cJSON *rel = cJSON_CreateObject();
    cJSON_AddBoolToObject(rel, "enabled", relative);
    cJSON_AddItemToObject(rel, "exclude_joints", cJSON_Duplicate(excl, 1));
    cJSON_AddItemToObject(rel, "action_names", cJSON_Duplicate(names, 1));
    if (!write_json(out, "config.json", cfg, e)) { cJSON_Delete(rel); return PI0_ERR_IO; }
    /* the processor files, steps as lerobot 0.6's make_pi0_pre_post_processors /
     * make_pi05_pre_post_processors save them (lerobot/policies/pi0/processor_pi0.py,
     * pi05/processor_pi05.py): the relative-actions step before the normalizer (it caches the raw
     * state), with its exclude_joints and action_names; π0.5 normalizes before writing the state */
    cJSON *pre = cJSON_CreateObject(), *steps = cJSON_AddArrayToObject(pre, "steps");
    cJSON_AddStringToObject(pre, "name", "policy_preprocessor");
    cJSON *rename = cJSON_CreateObject();
    cJSON_AddObjectToObject(rename, "rename_map");
    cJSON_AddItemToArray(steps, step("rename_observations_processor", rename, NULL));
    cJSON_AddItemToArray(steps, step("to_batch_processor", NULL, NULL));
    cJSON *tok = cJSON_CreateObject();
    cJSON_AddNumberToObject(tok, "max_length", c->max_token_len);
    cJSON_AddStringToObject(tok, "padding", "max_length");
    cJSON_AddStringToObject(tok, "padding_side", "right");
    cJSON_AddBoolToObject(tok, "truncation", 1);
    cJSON_AddStringToObject(tok, "tokenizer_name", "google/paligemma-3b-pt-224");
    if (c->pi05) {
        cJSON_AddItemToArray(steps, step("relative_actions_processor", rel, NULL));
        cJSON_AddItemToArray(steps, step("normalizer_processor", normalizer_config(mode, 1, S, A, ncam, img),
                                         "policy_preprocessor_step_3_normalizer_processor.safetensors"));
        cJSON_AddItemToArray(steps, step("pi05_prepare_state_tokenizer_processor_step", NULL, NULL));
        cJSON_AddItemToArray(steps, step("tokenizer_processor", tok, NULL));
        cJSON_AddItemToArray(steps, step("device_processor", NULL, NULL));
    } else {
        cJSON_AddItemToArray(steps, step("pi0_new_line_processor", NULL, NULL));
        cJSON_AddItemToArray(steps, step("tokenizer_processor", tok, NULL));
        cJSON_AddItemToArray(steps, step("device_processor", NULL, NULL));
        cJSON_AddItemToArray(steps, step("relative_actions_processor", rel, NULL));
        cJSON_AddItemToArray(steps, step("normalizer_processor", normalizer_config(mode, 1, S, A, ncam, img),
                                         "policy_preprocessor_step_6_normalizer_processor.safetensors"));
    }
    if (!write_json(out, "policy_preprocessor.json", pre, e)) return PI0_ERR_IO;
    cJSON *post = cJSON_CreateObject();
    steps = cJSON_AddArrayToObject(post, "steps");
    cJSON_AddStringToObject(post, "name", "policy_postprocessor");
    cJSON_AddItemToArray(steps, step("unnormalizer_processor", normalizer_config(mode, 0, S, A, ncam, img),
                                     "policy_postprocessor_step_0_unnormalizer_processor.safetensors"));
    cJSON *abs = cJSON_CreateObject();
    cJSON_AddBoolToObject(abs, "enabled", relative);
    cJSON_AddItemToArray(steps, step("absolute_actions_processor", abs, NULL));
    cJSON_AddItemToArray(steps, step("device_processor", NULL, NULL));
    if (!write_json(out, "policy_postprocessor.json", post, e)) return PI0_ERR_IO;
    /* the same random statistics in both files, as lerobot saves the dataset's */
    pi0_rng rng;
    char pre_stats[4200], post_stats[4200];
    snprintf(pre_stats, sizeof pre_stats, "%s/%s", out,
             c->pi05 ? "policy_preprocessor_step_3_normalizer_processor.safetensors"
                     : "policy_preprocessor_step_6_normalizer_processor.safetensors");
    snprintf(post_stats, sizeof post_stats, "%s/policy_postprocessor_step_0_unnormalizer_processor.safetensors", out);
    rng_seed(&rng, seed ^ 0x5eed5eedull);
    if (!write_stats(pre_stats, S, A, &rng, e)) return PI0_ERR_IO;
    rng_seed(&rng, seed ^ 0x5eed5eedull);
    if (!write_stats(post_stats, S, A, &rng, e)) return PI0_ERR_IO;
    return PI0_OK;
}
