/* lerobot_ckpt.c — see lerobot_ckpt.h. Formats (lerobot.md §1, §9): config.json
 * (configuration_pi0.py / configuration_pi05.py), policy_{pre,post}processor.json
 * ({"name", "steps": [{"registry_name", "config", "state_file"?}]}, processor/pipeline.py) and
 * their statistics safetensors (flat F32 tensors "<feature>.<stat>",
 * processor/normalize_processor.py); v1 keeps "normalize_inputs.buffer_<key with . → _>.<stat>"
 * tensors in model.safetensors (policies/normalize.py). */
#include <ctype.h>
#include "lerobot_ckpt.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>

#include "../model/config.h"
#include "safetensors.h"

static int file_exists(const char *path) {
    struct stat sb;
    return stat(path, &sb) == 0 && S_ISREG(sb.st_mode);
}

static cJSON *load_json(const char *path, pi0_err *e, pi0_status *st) {
    char *buf;
    size_t len;
    *st = read_file(path, 16u << 20, &buf, &len, e);
    if (*st != PI0_OK) return NULL;
    cJSON *j = cJSON_ParseWithLength(buf, len);
    free(buf);
    if (!j) *st = pi0_fail(e, PI0_ERR_FORMAT, "%s: not valid JSON", path);
    return j;
}

/* ---------------------------------------------------------------- detection */

pi0_pipeline lerobot_detect(const char *dir, lerobot_layout *layout) {
    char path[4200];
    *layout = LEROBOT_CURRENT;
    snprintf(path, sizeof path, "%s/policy_preprocessor.json", dir);
    if (file_exists(path)) return PIPELINE_LEROBOT;
    snprintf(path, sizeof path, "%s/config.json", dir);
    pi0_err e;
    pi0_status st;
    cJSON *cfg = load_json(path, &e, &st);
    const int v1_cfg = cfg && (cJSON_GetObjectItemCaseSensitive(cfg, "proj_width") ||
                               cJSON_GetObjectItemCaseSensitive(cfg, "resize_imgs_with_padding"));
    cJSON_Delete(cfg);
    int v1_keys = 0;
    snprintf(path, sizeof path, "%s/model.safetensors", dir);
    st_file f;
    if (!v1_cfg && file_exists(path) && st_open(&f, path, &e) == PI0_OK) {
        v1_keys = st_find(&f, "model.paligemma_with_expert.paligemma.language_model.model.layers.0.mlp.up_proj.weight") != NULL;
        st_close(&f);
    }
    if (v1_cfg || v1_keys) {
        *layout = LEROBOT_V1;
        return PIPELINE_LEROBOT;
    }
    return PIPELINE_OPENPI;
}

/* ---------------------------------------------------------------- statistics */

static void feature_clear(lerobot_feature_norm *f) {
    free(f->a);
    free(f->b);
    memset(f, 0, sizeof *f);
}

/* A statistic vector of n values (n = 0: take its length) from a safetensors tensor. */
static pi0_status stat_from_tensor(const st_tensor *t, int *n, float **out, const char *path, pi0_err *e) {
    RETURN_ERR_IF(t->dtype != DT_F32 && t->dtype != DT_F64 && t->dtype != DT_BF16 && t->dtype != DT_F16, e,
                  PI0_ERR_TENSOR, "%s: statistic '%s' has dtype %s (expected a float type)", path, t->name,
                  dtype_name(t->dtype));
    RETURN_ERR_IF(t->numel == 0 || t->numel > LEROBOT_MAX_DIM, e, PI0_ERR_TENSOR, "%s: statistic '%s' has %zu values",
                  path, t->name, t->numel);
    RETURN_ERR_IF(*n && (int)t->numel != *n, e, PI0_ERR_TENSOR,
                  "%s: statistic '%s' has %zu values, the feature has %d", path, t->name, t->numel, *n);
    *out = malloc(t->numel * sizeof **out);
    RETURN_ERR_IF(!*out, e, PI0_ERR_NOMEM, "out of memory");
    convert_to_f32(*out, t->data, t->dtype, t->numel);
    *n = (int)t->numel;
    return PI0_OK;
}

/* The mode's two statistics of `feature` from a stats safetensors (names "<feature>.<stat>",
 * or with prefix as v1's buffers). Missing file or tensors: *found = 0. */
static pi0_status stats_from_safetensors(lerobot_feature_norm *f, const char *path, const char *prefix,
                                         const char *feature, int *found, pi0_err *e) {
    *found = 0;
    if (!file_exists(path) || f->mode == LR_IDENTITY) return PI0_OK;
    st_file sf;
    FORWARD_ERR(st_open(&sf, path, e));
    const char *sa, *sb;
    lerobot_norm_stat_names(f->mode == LR_MIN_MAX_V1 ? LR_MIN_MAX : f->mode, &sa, &sb);
    char ka[320], kb[320];
    snprintf(ka, sizeof ka, "%s%s.%s", prefix, feature, sa);
    snprintf(kb, sizeof kb, "%s%s.%s", prefix, feature, sb);
    const st_tensor *ta = st_find(&sf, ka), *tb = st_find(&sf, kb);
    pi0_status st = PI0_OK;
    if (ta && tb) {
        st = stat_from_tensor(ta, &f->n, &f->a, path, e);
        if (st == PI0_OK) st = stat_from_tensor(tb, &f->n, &f->b, path, e);
        /* v1's released base stores ±inf placeholders: no statistics */
        for (int i = 0; st == PI0_OK && i < f->n; i++)
            if (!isfinite(f->a[i]) || !isfinite(f->b[i])) {
                free(f->a); free(f->b);
                f->a = f->b = NULL;
                st_close(&sf);
                return PI0_OK;
            }
        *found = st == PI0_OK;
    }
    st_close(&sf);
    return st;
}

/* The same from a lerobot stats.json: {"observation.state": {"mean": [...], ...}, ...}. */
static pi0_status stats_from_json(lerobot_feature_norm *f, const char *path, const char *feature, int *found,
                                  pi0_err *e) {
    *found = 0;
    if (f->mode == LR_IDENTITY) return PI0_OK;
    pi0_status st;
    cJSON *root = load_json(path, e, &st);
    if (!root) return st;
    const char *names[2];
    lerobot_norm_stat_names(f->mode == LR_MIN_MAX_V1 ? LR_MIN_MAX : f->mode, &names[0], &names[1]);
    const cJSON *fo = cJSON_GetObjectItemCaseSensitive(root, feature);
    float **dst[2] = {&f->a, &f->b};
    for (int k = 0; k < 2 && fo && st == PI0_OK; k++) {
        const cJSON *arr = cJSON_GetObjectItemCaseSensitive(fo, names[k]);
        if (!arr) { st = pi0_fail(e, PI0_ERR_FORMAT, "%s: %s.%s is missing", path, feature, names[k]); break; }
        const int n = cJSON_GetArraySize(arr);
        if (!cJSON_IsArray(arr) || n < 1 || n > LEROBOT_MAX_DIM || (f->n && n != f->n)) {
            st = pi0_fail(e, PI0_ERR_FORMAT, "%s: %s.%s must be an array of %d numbers", path, feature, names[k],
                          f->n ? f->n : n);
            break;
        }
        *dst[k] = malloc((size_t)n * sizeof(float));
        if (!*dst[k]) { st = pi0_fail(e, PI0_ERR_NOMEM, "out of memory"); break; }
        int i = 0;
        for (const cJSON *v = arr->child; v; v = v->next, i++) {
            if (!cJSON_IsNumber(v) || !isfinite(v->valuedouble) || fabs(v->valuedouble) > 3.4e38) {
                st = pi0_fail(e, PI0_ERR_FORMAT, "%s: %s.%s[%d] is not a finite float32", path, feature, names[k], i);
                break;
            }
            (*dst[k])[i] = (float)v->valuedouble;
        }
        f->n = n;
    }
    *found = st == PI0_OK && fo != NULL;
    cJSON_Delete(root);
    return st;
}

/* ---------------------------------------------------------------- config.json */

static int json_int(const cJSON *o, const char *key, int dflt) {
    const cJSON *j = cJSON_GetObjectItemCaseSensitive(o, key);
    return cJSON_IsNumber(j) && j->valuedouble == floor(j->valuedouble) && fabs(j->valuedouble) < 1e9 ? j->valueint : dflt;
}

/* shape[0] of a feature in input_features / output_features, 0 if absent. */
static int shape0(const cJSON *cfg, const char *group, const char *key) {
    const cJSON *f = cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(cfg, group), key);
    const cJSON *d = cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(f, "shape"), 0);
    return cJSON_IsNumber(d) && d->valuedouble >= 1 && d->valuedouble <= LEROBOT_MAX_DIM ? d->valueint : 0;
}

/* normalization_mapping / norm_map {"STATE": "MEAN_STD", ...}: the mode for a feature type. */
static pi0_status norm_mode(const cJSON *map, const char *type, lerobot_norm_mode dflt, lerobot_norm_mode *out,
                            const char *path, pi0_err *e) {
    const cJSON *m = cJSON_GetObjectItemCaseSensitive(map, type);
    *out = dflt;
    if (!m) return PI0_OK;
    const int mode = cJSON_IsString(m) ? lerobot_norm_mode_from_name(m->valuestring) : -1;
    RETURN_ERR_IF(mode < 0 || mode == LR_MIN_MAX_V1, e, PI0_ERR_CONFIG,
                  "%s: normalization mode for %s must be IDENTITY, MEAN_STD, MIN_MAX, QUANTILES or QUANTILE10", path,
                  type);
    *out = (lerobot_norm_mode)mode;
    return PI0_OK;
}

/* Whether token occurs in name, ignoring ASCII case (lerobot lowercases both: _build_mask). */
static int contains_ci(const char *name, const char *token) {
    for (const char *p = name; *p; p++) {
        size_t i = 0;
        while (token[i] && p[i] && tolower((unsigned char)p[i]) == tolower((unsigned char)token[i])) i++;
        if (!token[i]) return 1;
    }
    return 0;
}

/* Relative actions (lerobot.md §5.2): dim j is relative unless names[j] contains a token of
 * exclude (default ["gripper"]), case-insensitively; no names ⇒ every dim. */
static void relative_mask(lerobot_spec *s, const cJSON *names, const cJSON *exclude) {
    const int A = s->action_dim > 0 ? s->action_dim : LEROBOT_MAX_DIM;
    for (int j = 0; j < A && j < LEROBOT_MAX_DIM; j++) {
        const cJSON *nm = cJSON_IsArray(names) ? cJSON_GetArrayItem(names, j) : NULL;
        int rel = 1;
        if (cJSON_IsString(nm)) {
            if (!exclude) rel = !contains_ci(nm->valuestring, "gripper");
            for (const cJSON *x = cJSON_IsArray(exclude) ? exclude->child : NULL; x; x = x->next)
                if (cJSON_IsString(x) && x->valuestring[0] && contains_ci(nm->valuestring, x->valuestring)) rel = 0;
        }
        s->relative_mask[j] = (uint8_t)rel;
    }
}

/* ---------------------------------------------------------------- processor files */

/* The step of a pipeline JSON with this registry name (and its index), or NULL. */
static const cJSON *find_step(const cJSON *pipe, const char *registry, int *index) {
    int i = 0;
    for (const cJSON *st = cJSON_GetObjectItemCaseSensitive(pipe, "steps") ? cJSON_GetObjectItemCaseSensitive(pipe, "steps")->child : NULL;
         st; st = st->next, i++) {
        const cJSON *r = cJSON_GetObjectItemCaseSensitive(st, "registry_name");
        if (cJSON_IsString(r) && !strcmp(r->valuestring, registry)) {
            *index = i;
            return st;
        }
    }
    return NULL;
}

/* The statistics file of a (un)normalizer step: its state_file, else the name lerobot derives. */
static void step_state_file(char *out, size_t n, const char *dir, const cJSON *step, const char *pipe_name,
                            int index, const char *registry) {
    const cJSON *sf = cJSON_GetObjectItemCaseSensitive(step, "state_file");
    if (cJSON_IsString(sf) && !strchr(sf->valuestring, '/'))
        snprintf(out, n, "%s/%s", dir, sf->valuestring);
    else
        snprintf(out, n, "%s/%s_step_%d_%s.safetensors", dir, pipe_name, index, registry);
}

/* A (un)normalizer step: mode for `type` from its norm_map; the feature is normalized only if
 * its features lists it and its statistics hold it. */
static pi0_status read_normalizer(lerobot_feature_norm *f, const char *dir, const char *pipe_path, const cJSON *pipe,
                                  const char *pipe_name, const char *registry, const char *feature, const char *type,
                                  int *have_stats, pi0_err *e) {
    int index = 0;
    *have_stats = 0;
    const cJSON *step = find_step(pipe, registry, &index);
    if (!step) return PI0_OK;
    const cJSON *cfg = cJSON_GetObjectItemCaseSensitive(step, "config");
    lerobot_norm_mode mode;
    FORWARD_ERR(norm_mode(cJSON_GetObjectItemCaseSensitive(cfg, "norm_map"), type, LR_IDENTITY, &mode, pipe_path, e));
    const cJSON *feats = cJSON_GetObjectItemCaseSensitive(cfg, "features");
    if (!cJSON_GetObjectItemCaseSensitive(feats, feature)) mode = LR_IDENTITY;
    f->mode = mode;
    char path[4400];
    step_state_file(path, sizeof path, dir, step, pipe_name, index, registry);
    return stats_from_safetensors(f, path, "", feature, have_stats, e);
}

/* ---------------------------------------------------------------- spec */

void lerobot_spec_free(lerobot_spec *s) {
    feature_clear(&s->state);
    feature_clear(&s->action);
    memset(s, 0, sizeof *s);
}

/* Statistics of the wrong length (lerobot.md §5.1: refuse). */
static pi0_status check_dim(const lerobot_feature_norm *f, int dim, const char *what, const char *dir, pi0_err *e) {
    RETURN_ERR_IF(f->a && dim && f->n != dim, e, PI0_ERR_TENSOR,
                  "%s: %s statistics have %d values but the feature has %d", dir, what, f->n, dim);
    return PI0_OK;
}

/* rtc_config (lerobot's RTCConfig, draccus-serialized; null or absent: its defaults): the
 * defaults of a guided RTC request. RTCConfig's own check (max_guidance_weight > 0) is kept. */
static pi0_status rtc_config(lerobot_spec *s, const cJSON *rtc, const char *cfg_path, pi0_err *e) {
    const pi0_rtc d = pi0_rtc_default();
    s->rtc_enabled = 0, s->rtc_schedule = d.schedule, s->rtc_horizon = d.execution_horizon;
    s->rtc_weight = d.max_guidance_weight;
    if (!cJSON_IsObject(rtc)) return PI0_OK;
    s->rtc_enabled = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(rtc, "enabled"));
    const cJSON *sched = cJSON_GetObjectItemCaseSensitive(rtc, "prefix_attention_schedule");
    if (sched) {
        s->rtc_schedule = cJSON_IsString(sched) ? pi0_rtc_schedule_from_name(sched->valuestring) : -1;
        RETURN_ERR_IF(s->rtc_schedule < 0, e, PI0_ERR_CONFIG,
                      "%s: rtc_config.prefix_attention_schedule is none of ZEROS, ONES, LINEAR, EXP", cfg_path);
    }
    const cJSON *w = cJSON_GetObjectItemCaseSensitive(rtc, "max_guidance_weight");
    if (w) {
        RETURN_ERR_IF(!cJSON_IsNumber(w) || !(w->valuedouble > 0) || !(w->valuedouble < 3.0e38), e, PI0_ERR_CONFIG,
                      "%s: rtc_config.max_guidance_weight must be a positive number", cfg_path);
        s->rtc_weight = (float)w->valuedouble;
    }
    const cJSON *h = cJSON_GetObjectItemCaseSensitive(rtc, "execution_horizon");
    if (h) {
        RETURN_ERR_IF(!cJSON_IsNumber(h) || h->valuedouble < 1 || h->valuedouble > 1e6 ||
                          h->valuedouble != (double)(int)h->valuedouble,
                      e, PI0_ERR_CONFIG, "%s: rtc_config.execution_horizon must be a positive integer", cfg_path);
        s->rtc_horizon = (int)h->valuedouble;
    }
    return PI0_OK;
}

static pi0_status spec_load(lerobot_spec *s, const char *dir, lerobot_layout layout, const char *stats_path,
                            cJSON *cfg, const char *cfg_path, pi0_err *e) {
    const cJSON *type = cJSON_GetObjectItemCaseSensitive(cfg, "type");
    s->pi05 = cJSON_IsString(type) && !strcmp(type->valuestring, "pi05");
    /* cameras: the VISUAL input features, config order */
    const char *names[LEROBOT_MAX_CAMERAS];
    const int nc = config_visual_features(cfg, names, LEROBOT_MAX_CAMERAS);
    RETURN_ERR_IF(nc < 0 || nc > LEROBOT_MAX_CAMERAS, e, PI0_ERR_CONFIG, "%s: input_features: %d cameras (1..%d)",
                  cfg_path, nc, LEROBOT_MAX_CAMERAS);
    for (int i = 0, empty = 0; i < nc; i++) {
        if (names[i]) snprintf(s->cameras[i], LEROBOT_KEY, "%s", names[i]);
        else snprintf(s->cameras[i], LEROBOT_KEY, "observation.images.empty_camera_%d", empty);
        if (!names[i] || strstr(names[i], "empty_camera")) empty++;
    }
    s->n_cameras = nc;
    s->state_dim = shape0(cfg, "input_features", "observation.state");
    s->action_dim = shape0(cfg, "output_features", "action");
    s->n_action_steps = json_int(cfg, "n_action_steps", 0);
    s->max_state_dim = json_int(cfg, "max_state_dim", 32);
    if (layout == LEROBOT_V1) {
        RETURN_ERR_IF(cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(cfg, "use_delta_joint_actions_aloha")), e,
                      PI0_ERR_UNSUPPORTED, "%s: use_delta_joint_actions_aloha is true, which lerobot v1 itself "
                      "never implemented (it raises); not supported", cfg_path);
        s->aloha_v1 = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(cfg, "adapt_to_pi_aloha"));
    }
    /* π0.5 options that change the graph (lerobot.md §1.1): out of scope, refused by name */
    static const char *graph_options[] = {"use_visual_memory", "use_proprioceptive_memory"};
    for (int i = 0; i < 2; i++)
        RETURN_ERR_IF(cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(cfg, graph_options[i])), e, PI0_ERR_UNSUPPORTED,
                      "%s: %s is true: that π0.5 variant changes the model's graph and is not supported", cfg_path,
                      graph_options[i]);
    FORWARD_ERR(rtc_config(s, cJSON_GetObjectItemCaseSensitive(cfg, "rtc_config"), cfg_path, e));
    s->max_length = json_int(cfg, "tokenizer_max_length", 0);
    const cJSON *mapping = cJSON_GetObjectItemCaseSensitive(cfg, "normalization_mapping");
    /* relative actions (≥ v0.5.1), from config.json; the processor step, when present, decides */
    const cJSON *rel_names = cJSON_GetObjectItemCaseSensitive(cfg, "action_feature_names");
    const cJSON *rel_excl = cJSON_GetObjectItemCaseSensitive(cfg, "relative_exclude_joints");
    s->relative = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(cfg, "use_relative_actions"));
    int have_state = 0, have_action = 0;
    char path[4400];
    if (layout == LEROBOT_V1) { /* statistics inside model.safetensors; modes from config.json */
        lerobot_norm_mode sm, am;
        FORWARD_ERR(norm_mode(mapping, "STATE", LR_MEAN_STD, &sm, cfg_path, e));
        FORWARD_ERR(norm_mode(mapping, "ACTION", LR_MEAN_STD, &am, cfg_path, e));
        s->state.mode = sm == LR_MIN_MAX ? LR_MIN_MAX_V1 : sm;
        s->action.mode = am == LR_MIN_MAX ? LR_MIN_MAX_V1 : am;
        snprintf(path, sizeof path, "%s/model.safetensors", dir);
        FORWARD_ERR(stats_from_safetensors(&s->state, path, "normalize_inputs.buffer_", "observation_state", &have_state, e));
        FORWARD_ERR(stats_from_safetensors(&s->action, path, "unnormalize_outputs.buffer_", "action", &have_action, e));
    } else {
        snprintf(path, sizeof path, "%s/policy_preprocessor.json", dir);
        pi0_status st;
        cJSON *pre = load_json(path, e, &st);
        if (!pre) return st;
        char post_path[4400];
        snprintf(post_path, sizeof post_path, "%s/policy_postprocessor.json", dir);
        cJSON *post = file_exists(post_path) ? load_json(post_path, e, &st) : NULL;
        if (file_exists(post_path) && !post) { cJSON_Delete(pre); return st; }
        int idx;
        const cJSON *step;
        if ((step = find_step(pre, "rename_observations_processor", &idx))) {
            const cJSON *map = cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(step, "config"), "rename_map");
            for (const cJSON *r = cJSON_IsObject(map) ? map->child : NULL; r && s->n_renames < LEROBOT_MAX_RENAMES; r = r->next)
                if (cJSON_IsString(r)) {
                    snprintf(s->rename_from[s->n_renames], LEROBOT_KEY, "%s", r->string);
                    snprintf(s->rename_to[s->n_renames], LEROBOT_KEY, "%s", r->valuestring);
                    s->n_renames++;
                }
        }
        if ((step = find_step(pre, "tokenizer_processor", &idx)))
            s->max_length = json_int(cJSON_GetObjectItemCaseSensitive(step, "config"), "max_length", s->max_length);
        if ((step = find_step(pre, "relative_actions_processor", &idx)) ||
            (step = find_step(pre, "delta_actions_processor", &idx))) {
            const cJSON *c = cJSON_GetObjectItemCaseSensitive(step, "config");
            s->relative = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(c, "enabled"));
            /* lerobot builds the step from its saved config alone: a field it lacks takes the
             * dataclass default (exclude_joints [], action_names None: every dim relative), not
             * config.json's (processor/relative_action_processor.py RelativeActionsProcessorStep) */
            rel_excl = cJSON_GetObjectItemCaseSensitive(c, "exclude_joints");
            rel_names = cJSON_GetObjectItemCaseSensitive(c, "action_names");
            if (!rel_excl) rel_excl = rel_names = NULL;
        }
        relative_mask(s, rel_names, rel_excl); /* before pre (which they may point into) is freed */
        if (post && (step = find_step(post, "absolute_actions_processor", &idx)) &&
            !cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(step, "config"), "enabled")))
            s->relative = 0;
        st = read_normalizer(&s->state, dir, path, pre, "policy_preprocessor", "normalizer_processor",
                             "observation.state", "STATE", &have_state, e);
        if (st == PI0_OK && post)
            st = read_normalizer(&s->action, dir, post_path, post, "policy_postprocessor", "unnormalizer_processor",
                                 "action", "ACTION", &have_action, e);
        cJSON_Delete(pre);
        cJSON_Delete(post);
        FORWARD_ERR(st);
    }
    if (layout == LEROBOT_V1) relative_mask(s, rel_names, rel_excl);
    /* caller-supplied statistics replace the checkpoint's */
    if (stats_path) {
        const int json = strlen(stats_path) > 5 && !strcmp(stats_path + strlen(stats_path) - 5, ".json");
        lerobot_norm_mode sm = s->state.mode, am = s->action.mode;
        if (sm == LR_IDENTITY && layout != LEROBOT_V1) FORWARD_ERR(norm_mode(mapping, "STATE", LR_IDENTITY, &sm, cfg_path, e));
        if (am == LR_IDENTITY && layout != LEROBOT_V1) FORWARD_ERR(norm_mode(mapping, "ACTION", LR_IDENTITY, &am, cfg_path, e));
        feature_clear(&s->state);
        feature_clear(&s->action);
        s->state.mode = sm;
        s->action.mode = am;
        RETURN_ERR_IF(!file_exists(stats_path), e, PI0_ERR_IO, "%s: cannot open", stats_path);
        if (json) {
            FORWARD_ERR(stats_from_json(&s->state, stats_path, "observation.state", &have_state, e));
            FORWARD_ERR(stats_from_json(&s->action, stats_path, "action", &have_action, e));
        } else {
            FORWARD_ERR(stats_from_safetensors(&s->state, stats_path, "", "observation.state", &have_state, e));
            FORWARD_ERR(stats_from_safetensors(&s->action, stats_path, "", "action", &have_action, e));
        }
    }
    /* a feature without statistics is not normalized (lerobot: `key not in self._tensor_stats`) */
    if (!have_state) { feature_clear(&s->state); s->state.mode = LR_IDENTITY; }
    if (!have_action) { feature_clear(&s->action); s->action.mode = LR_IDENTITY; }
    if (!s->state_dim) s->state_dim = s->state.n;
    if (!s->action_dim) s->action_dim = s->action.n;
    FORWARD_ERR(check_dim(&s->state, s->state_dim, "observation.state", dir, e));
    FORWARD_ERR(check_dim(&s->action, s->action_dim, "action", dir, e));
    /* lerobot adds state[..., :A] on an A-long mask: a shorter state is a shape error there
     * (processor/relative_action_processor.py to_absolute_actions), so refuse it at load */
    RETURN_ERR_IF(s->relative && s->state_dim > 0 && s->state_dim < s->action_dim, e, PI0_ERR_CONFIG,
                  "%s: use_relative_actions with a %d-value state and %d action dims: lerobot makes actions "
                  "absolute with state[:%d], which this state cannot cover",
                  dir, s->state_dim, s->action_dim, s->action_dim);
    if (!have_state && !have_action)
        snprintf(s->warning, sizeof s->warning,
                 "%s has no normalization statistics: states are used as given and actions stay in the model's "
                 "space (give lerobot's stats with norm_stats=FILE)", dir);
    else if (!have_state || !have_action)
        snprintf(s->warning, sizeof s->warning, "%s has no statistics for %s: it is not normalized", dir,
                 have_state ? "action" : "observation.state");
    return PI0_OK;
}

pi0_status lerobot_spec_load(lerobot_spec *s, const char *dir, lerobot_layout layout, const char *stats_path,
                             pi0_err *e) {
    memset(s, 0, sizeof *s);
    s->layout = layout;
    char path[4200];
    snprintf(path, sizeof path, "%s/config.json", dir);
    pi0_status st;
    cJSON *cfg = load_json(path, e, &st);
    if (!cfg) return st;
    st = spec_load(s, dir, layout, stats_path, cfg, path, e);
    cJSON_Delete(cfg);
    if (st != PI0_OK) lerobot_spec_free(s);
    return st;
}
