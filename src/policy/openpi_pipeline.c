/* openpi_pipeline.c — openpi's pipeline (pipeline.h) for a named config (configs.c): openpi's
 * create_trained_policy (src/openpi/policies/policy_config.py) and Policy.infer
 * (policies/policy.py), step by step:
 *
 *   inputs   robot Inputs (LiberoInputs / DroidInputs / AlohaInputs: keys → image slots, the
 *            state assembled, ALOHA's adapt_to_pi), InjectDefaultPrompt, Normalize, then the
 *            model transforms (ResizeImages, TokenizePrompt, PadStatesAndActions) in obs.c;
 *   model    sample_actions with fresh noise per call (openpi splits its rng on every call);
 *   outputs  Policy.infer hands the output transforms {"state": inputs["state"], "actions"}:
 *            the state AFTER the input transforms, i.e. normalized and zero-padded to
 *            action_dim. Unnormalize (strict: "state" and "actions") maps both back, so
 *            AbsoluteActions adds the robot-space state (after AlohaInputs' conversion,
 *            normalized and unnormalized again) to the unnormalized actions on the masked dims;
 *            transforms.Group.push puts AbsoluteActions before the robot Outputs
 *            (AlohaOutputs' inverse conversion, the slice to the robot's dims). The round trip
 *            is in double, as openpi's PyTorch path runs it for a model.safetensors checkpoint
 *            (the kind pi0.c reads: torch.from_numpy keeps numpy's float64); openpi's JAX path
 *            rounds the normalized state to float32 first (jnp.asarray), which moves the added
 *            state by at most half a float32 ulp of the normalized value times the std.
 *
 * The transforms themselves are in transforms.c; this file decides which run and in what order. */
#include <dirent.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "configs.h"
#include "policy_internal.h"
#include "transforms.h"

/* openpi's side of the handle. */
typedef struct {
    const pc_config *cfg;
    pi0_norm_stats *ns;
    pi0_obs *obs;
    int adapt_to_pi;
    uint8_t mask[64];       /* AbsoluteActions' make_bool_mask */
    int mask_len;
    /* the observation being given */
    uint8_t cam_given[3];
    double *numbers[2];     /* per state key */
    int n_numbers[2];
    /* the normalized state of the last call (double, before its float32 copy went into the model) */
    double nstate[MAX_STATE];
    int n_state;
    double *work;           /* [H, A] */
    int said_sliced;        /* the note that the state's statistics are sliced was given */
} op_state;

static op_state *S(const pi0_policy *p) { return p->impl; }

/* ---------------------------------------------------------------- loading */

static const char *kind_name(int pi05) { return pi05 ? "pi0.5" : "pi0"; }

/* The model settings openpi takes from the TrainConfig's Pi0Config, not from the checkpoint
 * (a converted checkpoint's config.json records only action_dim, action_horizon and the
 * variants): they replace config.json's, as openpi would run them. */
static void apply_model_settings(pi0_policy *p, pi0_config *c) {
    const pc_config *pc = S(p)->cfg;
    if (pc->action_horizon && c->action_horizon != pc->action_horizon) {
        pp_add_warning(p, "config.json says action_horizon %d; openpi's %s uses %d (used)", c->action_horizon, pc->name,
                    pc->action_horizon);
        c->action_horizon = pc->action_horizon;
    }
    if (pc->max_token_len && c->max_token_len != pc->max_token_len) {
        pp_add_warning(p, "config.json says max_token_len %d; openpi's %s uses %d (used)", c->max_token_len, pc->name,
                    pc->max_token_len);
        c->max_token_len = pc->max_token_len;
    }
    if (pc->discrete_state_input >= 0 && c->pi05 && c->discrete_state_input != pc->discrete_state_input) {
        pp_add_warning(p, "config.json says discrete_state_input %s; openpi's %s uses %s (used)",
                    c->discrete_state_input ? "true" : "false", pc->name, pc->discrete_state_input ? "true" : "false");
        c->discrete_state_input = pc->discrete_state_input;
    }
}

/* The config by name, the model with its settings, tokenizer, norm stats, session and
 * observation builder. */
static pi0_status op_load(pi0_policy *p, const char *dir, const pi0_policy_params *pp) {
    op_state *o = calloc(1, sizeof *o);
    RETURN_ERR_IF(!o, &p->err, PI0_ERR_NOMEM, "out of memory");
    p->impl = o;
    snprintf(p->pipeline_name, sizeof p->pipeline_name, "openpi");
    char why[512];
    o->cfg = pc_find(pp->config, why, sizeof why);
    RETURN_ERR_IF(!o->cfg, &p->err, PI0_ERR_UNSUPPORTED, "%s", why);
    const pc_config *pc = o->cfg;
    const pc_robot_layout *rl = pc->robot;
    p->config_name = pc->name;
    o->obs = pi0_obs_create();
    RETURN_ERR_IF(!o->obs, &p->err, PI0_ERR_NOMEM, "out of memory");
    pi0_status st = pi0_model_load(p->model, dir);
    RETURN_ERR_IF(st != PI0_OK, &p->err, st, "%s", pi0_model_error(p->model));
    pi0_config *c = &p->model->cfg; /* this handle's own model: its policy settings may change */
    if (pc->model != PC_MODEL_ANY && (pc->model == PC_MODEL_PI05) != c->pi05)
        return pi0_fail(&p->err, PI0_ERR_CONFIG, "config %s is a %s policy but %s holds a %s checkpoint", pc->name,
                        kind_name(pc->model == PC_MODEL_PI05), dir, kind_name(c->pi05));
    apply_model_settings(p, c);
    RETURN_ERR_IF(c->action_dim > MAX_STATE || c->state_dim > MAX_STATE, &p->err, PI0_ERR_CONFIG,
                  "%s: action_dim %d / state_dim %d: the policy handles at most %d", dir, c->action_dim, c->state_dim,
                  MAX_STATE);

    /* What the config's transforms need from the model. */
    for (int i = 0; i < rl->n_cameras; i++)
        RETURN_ERR_IF(rl->cameras[i].required && rl->cameras[i].slot >= c->num_cameras, &p->err, PI0_ERR_CONFIG,
                      "config %s needs camera slot %s for '%s'; the model has %d camera slots", pc->name,
                      pi0_camera_name(rl->cameras[i].slot), rl->cameras[i].key, c->num_cameras);
    o->mask_len = pt_make_bool_mask(pc->delta, 4, o->mask, (int)sizeof o->mask);
    RETURN_ERR_IF(o->mask_len < 0 || o->mask_len > c->action_dim, &p->err, PI0_ERR_CONFIG,
                  "config %s: its delta-action mask is longer than the model's action_dim %d", pc->name, c->action_dim);
    o->adapt_to_pi = rl->robot == PC_ROBOT_ALOHA ? (pp->adapt_to_pi >= 0 ? pp->adapt_to_pi : pc->adapt_to_pi) : 0;
    RETURN_ERR_IF(pp->adapt_to_pi >= 0 && rl->robot != PC_ROBOT_ALOHA, &p->err, PI0_ERR_ARG,
                  "adapt_to_pi applies to ALOHA configs only, not to %s", pc->name);

    FORWARD_ERR(pp_find_tokenizer(p, dir, pp->tokenizer));
    st = pi0_tokenizer_load(p->tok, p->tok_path);
    RETURN_ERR_IF(st != PI0_OK, &p->err, st, "%s", pi0_tokenizer_error(p->tok));
    FORWARD_ERR(pp_find_norm_stats(p, S(p)->cfg, dir, pp->norm_stats));
    if (p->ns_path[0]) {
        o->ns = pi0_norm_stats_create();
        RETURN_ERR_IF(!o->ns, &p->err, PI0_ERR_NOMEM, "out of memory");
        /* openpi: use_quantile_norm = model_type != ModelType.PI0 */
        st = pi0_norm_stats_load(o->ns, p->ns_path, c->pi05);
        RETURN_ERR_IF(st != PI0_OK, &p->err, st, "%s", pi0_norm_stats_error(o->ns));
        /* Unnormalize works on the model's action_dim values of "actions" and of "state" (padded
         * to action_dim by PadStatesAndActions): statistics shorter than that are padded
         * (pad_to_dim), longer ones do not broadcast in openpi (transforms.py _unnormalize):
         * refused here rather than on every request. */
        const int sa = pi0_norm_stats_dim(o->ns, 1), ss = pi0_norm_stats_dim(o->ns, 0);
        RETURN_ERR_IF(sa > c->action_dim, &p->err, PI0_ERR_INPUT,
                      "%s: norm_stats.actions has %d values, more than the model's action_dim %d", p->ns_path, sa,
                      c->action_dim);
        RETURN_ERR_IF(ss > c->action_dim, &p->err, PI0_ERR_INPUT,
                      "%s: norm_stats.state has %d values, more than the model's action_dim %d (openpi's Unnormalize "
                      "of the padded state cannot use them)", p->ns_path, ss, c->action_dim);
    }

    /* The actions returned: the robot's Outputs slice (numpy's actions[..., :k] keeps at most
     * what there is), else the norm stats' length, else all. AlohaOutputs' conversions need 14. */
    RETURN_ERR_IF(rl->robot == PC_ROBOT_ALOHA && c->action_dim < rl->out_dims, &p->err, PI0_ERR_CONFIG,
                  "config %s converts %d action dims (AlohaOutputs); the model has action_dim %d", pc->name,
                  rl->out_dims, c->action_dim);
    int natural = rl->out_dims ? rl->out_dims : o->ns ? pi0_norm_stats_dim(o->ns, 1) : c->action_dim;
    if (natural > c->action_dim) natural = c->action_dim;
    p->out_dims = pp->action_dims > 0 ? pp->action_dims : natural;
    RETURN_ERR_IF(p->out_dims > (rl->out_dims ? natural : c->action_dim), &p->err, PI0_ERR_ARG,
                  "action dims %d exceed the %d that config %s returns%s", p->out_dims,
                  rl->out_dims ? natural : c->action_dim, pc->name, rl->out_dims ? "" : " (the model's action_dim)");

    if (pp->default_prompt || pc->default_prompt) {
        p->default_prompt = pp_dup_str(pp->default_prompt ? pp->default_prompt : pc->default_prompt);
        RETURN_ERR_IF(!p->default_prompt, &p->err, PI0_ERR_NOMEM, "out of memory");
    }
    st = pi0_session_init(p->sess, p->model, &pp->model);
    RETURN_ERR_IF(st != PI0_OK, &p->err, st, "%s", pi0_session_error(p->sess));
    st = pi0_obs_init(o->obs, p->model);
    RETURN_ERR_IF(st != PI0_OK, &p->err, st, "%s", pi0_obs_error(o->obs));
    o->work = malloc((size_t)c->action_horizon * c->action_dim * sizeof *o->work);
    RETURN_ERR_IF(!o->work, &p->err, PI0_ERR_NOMEM, "out of memory");
    return PI0_OK;
}

static void op_clear(pi0_policy *p) {
    op_state *o = S(p);
    memset(o->cam_given, 0, sizeof o->cam_given);
    for (int i = 0; i < 2; i++) {
        free(o->numbers[i]);
        o->numbers[i] = NULL;
        o->n_numbers[i] = 0;
    }
    if (o->obs) pi0_obs_clear(o->obs);
}

static void op_unload(pi0_policy *p) {
    op_state *o = S(p);
    if (!o) return;
    op_clear(p);
    pi0_obs_free(o->obs);
    pi0_norm_stats_free(o->ns);
    free(o->work);
    free(o);
    p->impl = NULL;
}

/* ---------------------------------------------------------------- metadata */

static void op_metadata(const pi0_policy *p, cJSON *root) {
    const pc_config *pc = S(p)->cfg;
    cJSON_AddStringToObject(root, "config", pc->name);
    if (pc->reset_pose) /* openpi's TrainConfig.policy_metadata */
        cJSON_AddItemToObject(root, "reset_pose", cJSON_CreateDoubleArray(pc_aloha_reset_pose, 6));
}

/* The pipeline as openpi composes it, for the metadata and the startup line. */
static void op_describe(const pi0_policy *p, cJSON *obj) {
    const op_state *o = S(p);
    const pc_config *pc = o->cfg;
    const pi0_config *c = pi0_model_config(p->model);
    const char *norm = !o->ns ? "none" : norm_stats_quantile(o->ns) ? "quantile" : "z-score";
    char buf[256];
    cJSON *in = cJSON_AddArrayToObject(obj, "inputs"), *out = cJSON_AddArrayToObject(obj, "outputs");
    if (pc->robot->robot == PC_ROBOT_ALOHA)
        snprintf(buf, sizeof buf, "AlohaInputs(adapt_to_pi=%s)", o->adapt_to_pi ? "True" : "False");
    else
        snprintf(buf, sizeof buf, "%s", pc->robot->inputs);
    cJSON_AddItemToArray(in, cJSON_CreateString(buf));
    snprintf(buf, sizeof buf, "Normalize(%s)", norm);
    cJSON_AddItemToArray(in, cJSON_CreateString(buf));
    if (p->default_prompt) cJSON_AddItemToArray(in, cJSON_CreateString("InjectDefaultPrompt"));
    snprintf(buf, sizeof buf, "ResizeImages(%d, %d)", c->vision.image_size, c->vision.image_size);
    cJSON_AddItemToArray(in, cJSON_CreateString(buf));
    snprintf(buf, sizeof buf, "TokenizePrompt(max_token_len=%d%s)", c->max_token_len,
             c->pi05 && c->discrete_state_input ? ", discrete_state_input=True" : "");
    cJSON_AddItemToArray(in, cJSON_CreateString(buf));
    snprintf(buf, sizeof buf, "PadStatesAndActions(%d)", c->action_dim);
    cJSON_AddItemToArray(in, cJSON_CreateString(buf));
    snprintf(buf, sizeof buf, "Unnormalize(%s)", norm);
    cJSON_AddItemToArray(out, cJSON_CreateString(buf));
    if (o->mask_len) {
        int k = snprintf(buf, sizeof buf, "AbsoluteActions(make_bool_mask(");
        for (int i = 0; i < 4 && pc->delta[i]; i++) k += snprintf(buf + k, sizeof buf - k, "%s%d", i ? ", " : "", pc->delta[i]);
        snprintf(buf + k, sizeof buf - k, "))");
        cJSON_AddItemToArray(out, cJSON_CreateString(buf));
    }
    if (pc->robot->robot == PC_ROBOT_ALOHA)
        snprintf(buf, sizeof buf, "AlohaOutputs(adapt_to_pi=%s)", o->adapt_to_pi ? "True" : "False");
    else
        snprintf(buf, sizeof buf, "%s", pc->robot->outputs);
    cJSON_AddItemToArray(out, cJSON_CreateString(buf));
    snprintf(buf, sizeof buf, "actions[..., :%d]", p->out_dims);
    cJSON_AddItemToArray(out, cJSON_CreateString(buf));
}

/* ---------------------------------------------------------------- observation entries */

typedef enum { K_NONE, K_CAMERA, K_STATE, K_PROMPT, K_ACCEPTED } key_what;

/* What `key` is to the config; *index: the camera or state key's index. */
static key_what classify(const pi0_policy *p, const char *key, int *index) {
    const pc_robot_layout *rl = S(p)->cfg->robot;
    *index = -1;
    if (!strcmp(key, "prompt")) return K_PROMPT;
    for (int i = 0; i < rl->n_cameras; i++)
        if (!strcmp(key, rl->cameras[i].key)) { *index = i; return K_CAMERA; }
    for (int i = 0; i < rl->n_state_keys; i++)
        if (!strcmp(key, rl->state_keys[i])) { *index = i; return K_STATE; }
    if (rl->ignored[0] && !strcmp(key, rl->ignored[0])) return K_ACCEPTED;
    return K_NONE;
}

static int in_camera_group(const pi0_policy *p, const char *key) {
    const char *g = S(p)->cfg->robot->camera_group;
    return g && !strncmp(key, g, strlen(g));
}

/* "a, b, c": the config's camera keys (and accepted extras) for messages. */
static void camera_list(const pi0_policy *p, char *buf, size_t n) {
    const pc_robot_layout *rl = S(p)->cfg->robot;
    size_t k = 0;
    buf[0] = 0;
    for (int i = 0; i < rl->n_cameras && k < n; i++)
        k += snprintf(buf + k, n - k, "%s%s%s", i ? ", " : "", rl->cameras[i].key, rl->cameras[i].required ? " (required)" : "");
    if (rl->ignored[0] && k < n) snprintf(buf + k, n - k, ", %s (ignored)", rl->ignored[0]);
}

static pi0_status refuse_unknown(pi0_policy *p, const char *key) {
    char cams[512];
    camera_list(p, cams, sizeof cams);
    return pi0_fail(&p->err, PI0_ERR_INPUT, "unknown camera '%s' (config %s accepts %s)", PI0_SHOW(key), S(p)->cfg->name,
                    cams);
}

static int op_camera_kind(const pi0_policy *p, const char *key) { return pp_camera_kind(S(p)->cfg, NULL, key); }

static int op_key_kind(pi0_policy *p, const char *key) {
    int idx;
    switch (classify(p, key, &idx)) {
    case K_PROMPT: return PI0_KEY_TEXT;
    case K_CAMERA: return PI0_KEY_IMAGE;
    case K_STATE: return PI0_KEY_NUMBERS;
    case K_ACCEPTED: return PI0_KEY_IGNORED;
    default: break;
    }
    if (in_camera_group(p, key)) { /* AlohaInputs: images must be a subset of EXPECTED_CAMERAS */
        refuse_unknown(p, key);
        return PI0_KEY_REFUSED;
    }
    return PI0_KEY_IGNORED;
}

/* The camera slot for an image key; *slot = -1 for an accepted, unused camera (ALOHA's cam_low). */
static pi0_status image_slot(pi0_policy *p, const char *key, int *slot) {
    int idx;
    key_what w = classify(p, key, &idx);
    *slot = -1;
    if (w == K_ACCEPTED) return PI0_OK;
    if (w != K_CAMERA) return refuse_unknown(p, key);
    *slot = S(p)->cfg->robot->cameras[idx].slot;
    return PI0_OK;
}

static pi0_status place_u8(pi0_policy *p, const char *key, int slot, const uint8_t *data, int w, int h, int c, int chw) {
    op_state *o = S(p);
    if (pi0_obs_set_image_u8(o->obs, pi0_camera_name(slot), data, w, h, c, chw) != PI0_OK)
        return pi0_fail(&p->err, PI0_ERR_INPUT, "image '%s': %s", PI0_SHOW(key), pi0_obs_error(o->obs));
    o->cam_given[slot] = 1;
    return PI0_OK;
}

/* Element count of a w x h x c image, checked. */
static pi0_status image_numel(pi0_policy *p, const char *key, int w, int h, int c, size_t *n) {
    RETURN_ERR_IF(w <= 0 || h <= 0 || (c != 1 && c != 3 && c != 4), &p->err, PI0_ERR_INPUT,
                  "image '%s': %d x %d with %d channels (want a positive size and 1, 3 or 4 channels)", PI0_SHOW(key), w, h, c);
    size_t wh;
    RETURN_ERR_IF(!pi0_mul_size((size_t)w, (size_t)h, &wh) || !pi0_mul_size(wh, (size_t)c, n), &p->err, PI0_ERR_INPUT,
                  "image '%s': %d x %d x %d elements do not fit in memory", PI0_SHOW(key), w, h, c);
    return PI0_OK;
}

/* uint8 as given; float images as openpi's _parse_image converts them. */
static pi0_status op_image(pi0_policy *p, const char *key, const void *data, int type, int w, int h, int c, int chw) {
    int slot;
    FORWARD_ERR(image_slot(p, key, &slot));
    if (slot < 0) return PI0_OK;
    if (type == PP_U8) return place_u8(p, key, slot, data, w, h, c, chw);
    size_t n;
    FORWARD_ERR(image_numel(p, key, w, h, c, &n));
    RETURN_ERR_IF(!data, &p->err, PI0_ERR_ARG, "image '%s': data is NULL", PI0_SHOW(key));
    uint8_t *u8 = malloc(n);
    RETURN_ERR_IF(!u8, &p->err, PI0_ERR_NOMEM, "image '%s': out of memory for %zu bytes", PI0_SHOW(key), n);
    const int f64 = type == PP_F64;
    long bad = f64 ? pt_image_f64_to_u8(data, n, u8) : pt_image_f32_to_u8(data, n, u8);
    pi0_status st = PI0_OK;
    if (bad >= 0) { /* a NaN has no uint8 value: converting it is undefined behaviour */
        const double v = f64 ? ((const double *)data)[bad] : ((const float *)data)[bad];
        st = pi0_fail(&p->err, PI0_ERR_INPUT, "image '%s': element %ld is %s, not a finite number", PI0_SHOW(key), bad,
                      isnan(v) ? "NaN" : "infinite");
    } else {
        st = place_u8(p, key, slot, u8, w, h, c, chw);
    }
    free(u8);
    return st;
}

static pi0_status op_image_file(pi0_policy *p, const char *key, const char *path) {
    op_state *o = S(p);
    int slot;
    FORWARD_ERR(image_slot(p, key, &slot));
    if (slot < 0) return PI0_OK;
    if (pi0_obs_set_image_file(o->obs, pi0_camera_name(slot), path) != PI0_OK)
        return pi0_fail(&p->err, PI0_ERR_INPUT, "image '%s': %s", PI0_SHOW(key), pi0_obs_error(o->obs));
    o->cam_given[slot] = 1;
    return PI0_OK;
}

static pi0_status op_numbers(pi0_policy *p, const char *key, const double *values, int n) {
    op_state *o = S(p);
    int idx;
    if (classify(p, key, &idx) != K_STATE) {
        const pc_robot_layout *rl = o->cfg->robot;
        return pi0_fail(&p->err, PI0_ERR_INPUT, "'%s' is not a state key of config %s (its state: %s%s%s)", PI0_SHOW(key),
                        o->cfg->name, rl->state_keys[0], rl->n_state_keys > 1 ? " + " : "",
                        rl->n_state_keys > 1 ? rl->state_keys[1] : "");
    }
    return pp_copy_numbers(p, key, values, n, &o->numbers[idx], &o->n_numbers[idx]);
}

static pi0_status op_text(pi0_policy *p, const char *key, const char *text) {
    int idx;
    RETURN_ERR_IF(classify(p, key, &idx) != K_PROMPT, &p->err, PI0_ERR_INPUT,
                  "'%s' is not a text input of config %s (the prompt is 'prompt')", PI0_SHOW(key), S(p)->cfg->name);
    return pp_set_prompt(p, "prompt", text);
}

/* ---------------------------------------------------------------- inference */

/* The robot Inputs' state: the whole state if given, else the state keys concatenated in order
 * (DroidInputs: joint_position, then gripper_position, a scalar made 1-D). */
static pi0_status robot_state(pi0_policy *p, double *state, int *n) {
    const op_state *o = S(p);
    const pc_robot_layout *rl = o->cfg->robot;
    *n = 0;
    if (p->whole_state) {
        memcpy(state, p->whole_state, (size_t)p->n_whole * sizeof *state);
        *n = p->n_whole;
        return PI0_OK;
    }
    for (int i = 0; i < rl->n_state_keys; i++) {
        RETURN_ERR_IF(!o->numbers[i], &p->err, PI0_ERR_INPUT, "missing key '%s' (config %s reads the state from %s%s%s)",
                      rl->state_keys[i], o->cfg->name, rl->state_keys[0], rl->n_state_keys > 1 ? " + " : "",
                      rl->n_state_keys > 1 ? rl->state_keys[1] : "");
        RETURN_ERR_IF(*n + o->n_numbers[i] > MAX_STATE, &p->err, PI0_ERR_INPUT, "the state has more than %d values",
                      MAX_STATE);
        memcpy(state + *n, o->numbers[i], (size_t)o->n_numbers[i] * sizeof *state);
        *n += o->n_numbers[i];
    }
    return PI0_OK;
}

/* Everything before the model: the inputs it runs on, in p->last. */
static pi0_status op_inputs(pi0_policy *p) {
    op_state *o = S(p);
    const pc_config *pc = o->cfg;
    const pc_robot_layout *rl = pc->robot;
    const pi0_config *c = pi0_model_config(p->model);
    double *state = o->nstate;
    int *n_state = &o->n_state;
    *n_state = 0;
    /* Robot Inputs: the cameras it reads (a missing required key raises in openpi). */
    int given = 0;
    for (int i = 0; i < rl->n_cameras; i++) {
        const pc_camera *cam = &rl->cameras[i];
        given += o->cam_given[cam->slot];
        RETURN_ERR_IF(cam->required && !o->cam_given[cam->slot], &p->err, PI0_ERR_INPUT,
                      "missing key '%s' (a camera config %s requires)", cam->key, pc->name);
    }
    if (given < rl->min_cameras) {
        char cams[512];
        camera_list(p, cams, sizeof cams);
        return pi0_fail(&p->err, PI0_ERR_INPUT, "no camera image found (config %s expects %s)", pc->name, cams);
    }
    FORWARD_ERR(robot_state(p, state, n_state));
    if (rl->robot == PC_ROBOT_ALOHA && o->adapt_to_pi) { /* AlohaInputs → _decode_state */
        RETURN_ERR_IF(*n_state != rl->state_len, &p->err, PI0_ERR_INPUT,
                      "'state' has %d values; config %s (adapt_to_pi) expects %d", *n_state, pc->name, rl->state_len);
        pt_aloha_state_to_pi(state);
    }
    /* Normalize: openpi slices the statistics to the state's length (transforms.py _normalize:
     * mean[..., : x.shape[-1]], likewise std, q01, q99); shorter statistics do not broadcast. */
    RETURN_ERR_IF(*n_state > c->state_dim, &p->err, PI0_ERR_INPUT, "state has %d values; this model takes 1 to %d",
                  *n_state, c->state_dim);
    const int ns_dim = pi0_norm_stats_dim(o->ns, 0);
    RETURN_ERR_IF(o->ns && ns_dim < *n_state, &p->err, PI0_ERR_INPUT,
                  "state has %d values but norm_stats.state only %d", *n_state, ns_dim);
    if (o->ns && ns_dim > *n_state && !o->said_sliced) { /* said once per policy */
        o->said_sliced = 1;
        pp_add_warning(p, "norm_stats.state has %d values and the state %d: the first %d statistics are used, as "
                       "openpi's Normalize slices them", ns_dim, *n_state, *n_state);
    }
    pt_normalize(norm_stats_vec(o->ns, 0), norm_stats_quantile(o->ns), state, *n_state);
    /* Model transforms: the state enters the model as float32 (openpi's jnp.asarray), padded. */
    float fstate[MAX_STATE];
    for (int i = 0; i < *n_state; i++) {
        fstate[i] = (float)state[i];
        RETURN_ERR_IF(!isfinite(fstate[i]), &p->err, PI0_ERR_INPUT, "state[%d] is not finite after normalization", i);
    }
    if (pi0_obs_set_state(o->obs, fstate, *n_state, NULL) != PI0_OK)
        return pi0_fail(&p->err, PI0_ERR_INPUT, "%s", pi0_obs_error(o->obs));
    /* InjectDefaultPrompt (the server's --default-prompt first, then the config's), TokenizePrompt. */
    const char *prompt = p->prompt ? p->prompt : p->default_prompt;
    RETURN_ERR_IF(!prompt, &p->err, PI0_ERR_INPUT, "missing key 'prompt' (config %s has no default prompt: send one, "
                  "or give default_prompt=TEXT)", pc->name);
    if (pi0_obs_set_prompt(o->obs, p->tok, prompt) != PI0_OK)
        return pi0_fail(&p->err, PI0_ERR_INPUT, "%s", pi0_obs_error(o->obs));
    const pi0_inputs *in = pi0_obs_inputs(o->obs); /* π0.5: the prompt with the discretized state */
    if (!in) return pi0_fail(&p->err, PI0_ERR_INPUT, "%s", pi0_obs_error(o->obs));
    if (pi0_obs_warning(o->obs)) pp_add_warning(p, "%s", pi0_obs_warning(o->obs));
    p->last = *in;
    return PI0_OK;
}

/* Everything after the model, on the raw actions in p->raw and the normalized state of the call. */
static pi0_status op_outputs(pi0_policy *p, double *out) {
    op_state *o = S(p);
    const pc_robot_layout *rl = o->cfg->robot;
    const pi0_config *c = pi0_model_config(p->model);
    const int H = c->action_horizon, A = c->action_dim, n = o->n_state;
    /* outputs = {"state": the padded normalized state, "actions": the model's} */
    double state[MAX_STATE] = {0};
    for (int i = 0; i < n; i++) state[i] = o->nstate[i];
    double *act = o->work;
    for (size_t i = 0; i < (size_t)H * A; i++) act[i] = p->raw[i];
    /* Unnormalize (strict: both keys) */
    const int q = norm_stats_quantile(o->ns);
    pt_unnormalize(norm_stats_vec(o->ns, 0), q, state, A > n ? A : n);
    for (int r = 0; r < H; r++) pt_unnormalize(norm_stats_vec(o->ns, 1), q, act + (size_t)r * A, A);
    /* AbsoluteActions (delta configs) */
    if (o->mask_len) pt_absolute_actions(act, H, A, state, o->mask, o->mask_len);
    /* Robot Outputs: AlohaOutputs (actions[:, :14], adapt_to_pi's inverse); the slice. */
    if (rl->robot == PC_ROBOT_ALOHA && o->adapt_to_pi) pt_aloha_actions_from_pi(act, H, A);
    const int D = p->out_dims;
    for (int r = 0; r < H; r++)
        for (int d = 0; d < D; d++) out[(size_t)r * D + d] = act[(size_t)r * A + d];
    return PI0_OK;
}

const pp_pipeline pp_openpi_pipeline = {
    .name = "openpi",
    .state_key = "state",
    .load = op_load,
    .unload = op_unload,
    .clear = op_clear,
    .key_kind = op_key_kind,
    .camera_kind = op_camera_kind,
    .image = op_image,
    .image_file = op_image_file,
    .numbers = op_numbers,
    .text = op_text,
    .inputs = op_inputs,
    .outputs = op_outputs,
    .relative_action = NULL, /* openpi's delta configs add the chunk's own state */
    .rtc_defaults = NULL,    /* openpi has no rtc_config: RTCConfig's defaults, every action dim */
    .metadata = op_metadata,
    .describe = op_describe,
};
