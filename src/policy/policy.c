/* policy.c — pi0_policy: openpi's policy for a named config (configs.c) around one model,
 * tokenizer, norm stats, session and observation builder. The pipeline is openpi's
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
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "../model/model.h"
#include "configs.h"
#include "transforms.h"

#include "policy_internal.h"

/* ---------------------------------------------------------------- small helpers */

char *pp_dup_str(const char *s) {
    if (!s) return NULL;
    size_t n = strlen(s) + 1;
    char *d = malloc(n);
    if (d) memcpy(d, s, n);
    return d;
}

int pp_is_file(const char *path) {
    struct stat sb;
    return stat(path, &sb) == 0 && S_ISREG(sb.st_mode);
}

void pp_add_warning(pi0_policy *p, const char *fmt, ...) {
    size_t k = strlen(p->warning);
    if (k && k + 2 < sizeof p->warning) { memcpy(p->warning + k, "; ", 3); k += 2; }
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(p->warning + k, sizeof p->warning - k, fmt, ap);
    va_end(ap);
}

/* A seed nobody can predict across runs, for openpi's fresh noise (jax.random.split per call). */
static uint64_t entropy_seed(const void *salt) {
    uint64_t v = 0;
    int fd = open("/dev/urandom", O_RDONLY | O_CLOEXEC);
    if (fd >= 0) {
        if (read(fd, &v, sizeof v) != (ssize_t)sizeof v) v = 0;
        close(fd);
    }
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return v ^ ((uint64_t)ts.tv_sec * 1000000007ull) ^ (uint64_t)ts.tv_nsec ^ (uint64_t)(uintptr_t)salt;
}

/* ---------------------------------------------------------------- configs */

int pi0_policy_config_count(void) { return pc_count(); }
const char *pi0_policy_config_name(int i) {
    const pc_config *c = pc_at(i);
    return c ? c->name : NULL;
}

pi0_policy_params pi0_policy_default_params(void) {
    pi0_policy_params pp;
    memset(&pp, 0, sizeof pp);
    pp.adapt_to_pi = -1;
    pp.model = pi0_default_params();
    return pp;
}

size_t pi0_policy_params_size(void) { return sizeof(pi0_policy_params); }

/* ---------------------------------------------------------------- handle */

pi0_policy *pi0_policy_create(void) { return calloc(1, sizeof(pi0_policy)); }

static void entries_clear(pi0_policy *p) {
    memset(p->cam_given, 0, sizeof p->cam_given);
    for (int i = 0; i < 2; i++) {
        free(p->numbers[i]);
        p->numbers[i] = NULL;
        p->n_numbers[i] = 0;
    }
    free(p->whole_state);
    p->whole_state = NULL;
    p->n_whole = 0;
    free(p->prompt);
    p->prompt = NULL;
    p->have_noise = 0;
    p->have_rtc = 0;
    p->consumed = 0;
    memset(p->lr_given, 0, sizeof p->lr_given);
    p->lr_ignored[0] = 0;
    if (p->obs) pi0_obs_clear(p->obs);
}

static void unload(pi0_policy *p) {
    entries_clear(p);
    pi0_obs_free(p->obs);
    pi0_session_free(p->sess);
    pi0_norm_stats_free(p->ns);
    pi0_tokenizer_free(p->tok);
    pi0_model_free(p->model);
    free(p->default_prompt);
    free(p->metadata);
    free(p->raw);
    free(p->noise);
    free(p->work);
    free(p->rtc_chunk);
    free(p->rtc_prev);
    lp_unload(p);
    pi0_err keep = p->err;
    char warn[sizeof p->warning];
    memcpy(warn, p->warning, sizeof warn);
    memset(p, 0, sizeof *p);
    p->err = keep;
    memcpy(p->warning, warn, sizeof warn);
}

void pi0_policy_free(pi0_policy *p) {
    if (!p) return;
    unload(p);
    free(p);
}

const char *pi0_policy_error(const pi0_policy *p) { return p ? p->err.msg : "no policy handle"; }
const char *pi0_policy_warning(const pi0_policy *p) { return p && p->warning[0] ? p->warning : NULL; }
const char *pi0_policy_config_resolved(const pi0_policy *p) {
    return p && p->lr ? "lerobot" : p && p->cfg ? p->cfg->name : NULL;
}
const char *pi0_policy_pipeline(const pi0_policy *p) { return p && p->loaded ? p->pipeline_name : "none"; }

const char *pi0_checkpoint_pipeline(const char *model_dir) {
    if (!model_dir) return "openpi";
    lerobot_layout l;
    if (lerobot_detect(model_dir, &l) != PIPELINE_LEROBOT) return "openpi";
    return l == LEROBOT_V1 ? "lerobot (v1)" : "lerobot (current)";
}
const char *pi0_policy_norm_stats_path(const pi0_policy *p) { return p && p->ns_path[0] ? p->ns_path : NULL; }
const char *pi0_policy_tokenizer_path(const pi0_policy *p) { return p && p->tok_path[0] ? p->tok_path : NULL; }
const pi0_config *pi0_policy_model_config(const pi0_policy *p) { return p && p->loaded ? pi0_model_config(p->model) : NULL; }
int pi0_policy_action_dims(const pi0_policy *p) { return p && p->loaded ? p->out_dims : 0; }
const char *pi0_policy_backend_info(const pi0_policy *p) { return p && p->loaded ? pi0_session_backend_info(p->sess) : "none"; }
const char *pi0_policy_metadata_json(const pi0_policy *p) { return p && p->metadata ? p->metadata : "{}"; }
pi0_policy_timing pi0_policy_last_timing(const pi0_policy *p) {
    pi0_policy_timing t;
    memset(&t, 0, sizeof t);
    return p ? p->timing : t;
}
const pi0_inputs *pi0_policy_inputs(const pi0_policy *p) { return p && p->have_last ? &p->last : NULL; }

/* ---------------------------------------------------------------- loading */

/* The tokenizer: the override, else beside the model, else $PI0_TOKENIZER. */
pi0_status pp_find_tokenizer(pi0_policy *p, const char *dir, const char *override) {
    if (override) {
        snprintf(p->tok_path, sizeof p->tok_path, "%s", override);
        return PI0_OK;
    }
    /* lerobot's recent saves keep the PaliGemma tokenizer in DIR/tokenizer/ */
    static const char *names[] = {"tokenizer.json", "tokenizer.model", "paligemma_tokenizer.model",
                                  "tokenizer/tokenizer.json", "tokenizer/tokenizer.model"};
    for (int i = 0; i < 5; i++) {
        snprintf(p->tok_path, sizeof p->tok_path, "%s/%s", dir, names[i]);
        if (pp_is_file(p->tok_path)) return PI0_OK;
    }
    const char *env = getenv("PI0_TOKENIZER");
    if (env && *env) {
        snprintf(p->tok_path, sizeof p->tok_path, "%s", env);
        return PI0_OK;
    }
    p->tok_path[0] = 0;
    return pi0_fail(&p->err, PI0_ERR_IO,
                    "no tokenizer: pass one (--tokenizer FILE), put tokenizer.json beside the model, or set "
                    "PI0_TOKENIZER (scripts/fetch_tokenizer.sh fetches one into .tok/tokenizer.json)");
}

/* The norm stats file: the override; an openpi config's assets/<asset_id>/norm_stats.json (as
 * openpi's create_trained_policy loads it from the checkpoint), then DIR/norm_stats.json; for
 * presets DIR/norm_stats.json, else the only assets/<x>/norm_stats.json, else none. */
static pi0_status find_norm_stats(pi0_policy *p, const char *dir, const char *override) {
    p->ns_path[0] = 0;
    if (override) {
        snprintf(p->ns_path, sizeof p->ns_path, "%s", override);
        return PI0_OK;
    }
    if (p->cfg->asset_id) {
        snprintf(p->ns_path, sizeof p->ns_path, "%s/assets/%s/norm_stats.json", dir, p->cfg->asset_id);
        if (pp_is_file(p->ns_path)) return PI0_OK;
        snprintf(p->ns_path, sizeof p->ns_path, "%s/norm_stats.json", dir);
        if (pp_is_file(p->ns_path)) return PI0_OK;
        p->ns_path[0] = 0;
        return pi0_fail(&p->err, PI0_ERR_IO,
                        "config %s reads its norm stats from %s/assets/%s/norm_stats.json (openpi's asset id '%s'), "
                        "which is missing (nor is there a %s/norm_stats.json): give the file (--norm-stats FILE)",
                        p->cfg->name, dir, p->cfg->asset_id, p->cfg->asset_id, dir);
    }
    snprintf(p->ns_path, sizeof p->ns_path, "%s/norm_stats.json", dir);
    if (pp_is_file(p->ns_path)) return PI0_OK;
    p->ns_path[0] = 0;
    char assets[PATH_CAP + 16];
    snprintf(assets, sizeof assets, "%s/assets", dir);
    DIR *d = opendir(assets);
    int found = 0;
    for (struct dirent *de; d && (de = readdir(d));) {
        if (de->d_name[0] == '.') continue;
        char cand[PATH_CAP];
        const int len = snprintf(cand, sizeof cand, "%s/%s/norm_stats.json", assets, de->d_name);
        if (len > 0 && len < (int)sizeof cand && pp_is_file(cand)) {
            if (!found) memcpy(p->ns_path, cand, (size_t)len + 1);
            found++;
        }
    }
    if (d) closedir(d);
    if (found > 1) {
        p->ns_path[0] = 0;
        return pi0_fail(&p->err, PI0_ERR_INPUT,
                        "%s holds norm stats for %d robots (assets/*/norm_stats.json): choose one with --norm-stats, "
                        "or use an openpi config name (--config), which knows its asset id", dir, found);
    }
    return PI0_OK;
}

static const char *kind_name(int pi05) { return pi05 ? "pi0.5" : "pi0"; }

/* The model settings openpi takes from the TrainConfig's Pi0Config, not from the checkpoint
 * (a converted checkpoint's config.json records only action_dim, action_horizon and the
 * variants): they replace config.json's, as openpi would run them. */
static void apply_model_settings(pi0_policy *p, pi0_config *c) {
    const pc_config *pc = p->cfg;
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

/* The pipeline as openpi composes it, for the metadata and the startup line. */
static void describe_transforms(const pi0_policy *p, cJSON *obj) {
    const pc_config *pc = p->cfg;
    const pi0_config *c = pi0_model_config(p->model);
    const char *norm = !p->ns ? "none" : norm_stats_quantile(p->ns) ? "quantile" : "z-score";
    char buf[256];
    cJSON *in = cJSON_AddArrayToObject(obj, "inputs"), *out = cJSON_AddArrayToObject(obj, "outputs");
    if (pc->robot->robot == PC_ROBOT_ALOHA)
        snprintf(buf, sizeof buf, "AlohaInputs(adapt_to_pi=%s)", p->adapt_to_pi ? "True" : "False");
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
    if (p->mask_len) {
        int k = snprintf(buf, sizeof buf, "AbsoluteActions(make_bool_mask(");
        for (int i = 0; i < 4 && pc->delta[i]; i++) k += snprintf(buf + k, sizeof buf - k, "%s%d", i ? ", " : "", pc->delta[i]);
        snprintf(buf + k, sizeof buf - k, "))");
        cJSON_AddItemToArray(out, cJSON_CreateString(buf));
    }
    if (pc->robot->robot == PC_ROBOT_ALOHA)
        snprintf(buf, sizeof buf, "AlohaOutputs(adapt_to_pi=%s)", p->adapt_to_pi ? "True" : "False");
    else
        snprintf(buf, sizeof buf, "%s", pc->robot->outputs);
    cJSON_AddItemToArray(out, cJSON_CreateString(buf));
    snprintf(buf, sizeof buf, "actions[..., :%d]", p->out_dims);
    cJSON_AddItemToArray(out, cJSON_CreateString(buf));
}

static pi0_status build_metadata(pi0_policy *p) {
    const pi0_config *c = pi0_model_config(p->model);
    cJSON *root = cJSON_CreateObject();
    RETURN_ERR_IF(!root, &p->err, PI0_ERR_NOMEM, "out of memory");
    if (!p->lr && p->cfg->reset_pose) /* openpi's TrainConfig.policy_metadata */
        cJSON_AddItemToObject(root, "reset_pose", cJSON_CreateDoubleArray(pc_aloha_reset_pose, 6));
    cJSON_AddStringToObject(root, "model", c->pi05 ? "pi05" : "pi0");
    cJSON_AddStringToObject(root, "server", "pi0.c");
    if (!p->lr) cJSON_AddStringToObject(root, "config", p->cfg->name);
    cJSON_AddStringToObject(root, "pipeline", p->lr ? "lerobot" : "openpi");
    cJSON_AddNumberToObject(root, "action_horizon", c->action_horizon);
    cJSON_AddNumberToObject(root, "action_dim", p->out_dims);
    if (p->lr) lp_metadata(p, root); /* layout, n_action_steps, cameras, state_dim */
    cJSON_AddStringToObject(root, "backend", pi0_session_backend_info(p->sess));
    cJSON *tr = cJSON_AddObjectToObject(root, "transforms");
    if (p->lr) lp_describe(p, tr);
    else describe_transforms(p, tr);
    p->metadata = cJSON_PrintUnformatted(root);
    cJSON_Delete(root);
    RETURN_ERR_IF(!p->metadata, &p->err, PI0_ERR_NOMEM, "out of memory");
    return PI0_OK;
}

/* openpi's or lerobot's pipeline, and lerobot's layout: the caller's choice, else the files'. */
static pi0_status choose_pipeline(pi0_policy *p, const char *dir, const pi0_policy_params *pp, int *lerobot,
                                  lerobot_layout *layout) {
    const char *pl = pp->pipeline, *ver = pp->lerobot_version;
    RETURN_ERR_IF(pl && strcmp(pl, "auto") && strcmp(pl, "openpi") && strcmp(pl, "lerobot"), &p->err, PI0_ERR_ARG,
                  "pipeline '%.100s': want auto, openpi or lerobot", pl);
    RETURN_ERR_IF(ver && strcmp(ver, "current") && strcmp(ver, "v0.4") && strcmp(ver, "v1"), &p->err, PI0_ERR_ARG,
                  "lerobot version '%.100s': want current, v0.4 or v1", ver);
    const int detected = lerobot_detect(dir, layout) == PIPELINE_LEROBOT;
    *lerobot = pl && !strcmp(pl, "lerobot") ? 1 : pl && !strcmp(pl, "openpi") ? 0 : detected;
    RETURN_ERR_IF(ver && !*lerobot, &p->err, PI0_ERR_ARG,
                  "a lerobot version (%s) was given but %s runs openpi's pipeline (add --pipeline lerobot)", ver, dir);
    if (ver) *layout = !strcmp(ver, "v1") ? LEROBOT_V1 : !strcmp(ver, "v0.4") ? LEROBOT_V04 : LEROBOT_CURRENT;
    snprintf(p->pipeline_name, sizeof p->pipeline_name, "openpi");
    return PI0_OK;
}

/* openpi's side of loading: the config by name, the model with its settings, tokenizer, norm
 * stats, session and observation builder. */
static pi0_status load_openpi(pi0_policy *p, const char *dir, const pi0_policy_params *pp) {
    char why[512];
    p->cfg = pc_find(pp->config, why, sizeof why);
    RETURN_ERR_IF(!p->cfg, &p->err, PI0_ERR_UNSUPPORTED, "%s", why);
    const pc_config *pc = p->cfg;
    const pc_robot_layout *rl = pc->robot;
    p->model = pi0_model_create();
    p->tok = pi0_tokenizer_create();
    p->sess = pi0_session_create();
    p->obs = pi0_obs_create();
    RETURN_ERR_IF(!p->model || !p->tok || !p->sess || !p->obs, &p->err, PI0_ERR_NOMEM, "out of memory");
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
    p->mask_len = pt_make_bool_mask(pc->delta, 4, p->mask, (int)sizeof p->mask);
    RETURN_ERR_IF(p->mask_len < 0 || p->mask_len > c->action_dim, &p->err, PI0_ERR_CONFIG,
                  "config %s: its delta-action mask is longer than the model's action_dim %d", pc->name, c->action_dim);
    p->adapt_to_pi = rl->robot == PC_ROBOT_ALOHA ? (pp->adapt_to_pi >= 0 ? pp->adapt_to_pi : pc->adapt_to_pi) : 0;
    RETURN_ERR_IF(pp->adapt_to_pi >= 0 && rl->robot != PC_ROBOT_ALOHA, &p->err, PI0_ERR_ARG,
                  "adapt_to_pi applies to ALOHA configs only, not to %s", pc->name);

    FORWARD_ERR(pp_find_tokenizer(p, dir, pp->tokenizer));
    st = pi0_tokenizer_load(p->tok, p->tok_path);
    RETURN_ERR_IF(st != PI0_OK, &p->err, st, "%s", pi0_tokenizer_error(p->tok));
    FORWARD_ERR(find_norm_stats(p, dir, pp->norm_stats));
    if (p->ns_path[0]) {
        p->ns = pi0_norm_stats_create();
        RETURN_ERR_IF(!p->ns, &p->err, PI0_ERR_NOMEM, "out of memory");
        /* openpi: use_quantile_norm = model_type != ModelType.PI0 */
        st = pi0_norm_stats_load(p->ns, p->ns_path, c->pi05);
        RETURN_ERR_IF(st != PI0_OK, &p->err, st, "%s", pi0_norm_stats_error(p->ns));
        const int sa = pi0_norm_stats_dim(p->ns, 1);
        RETURN_ERR_IF(sa > c->action_dim, &p->err, PI0_ERR_INPUT,
                      "%s: norm_stats.actions has %d values, more than the model's action_dim %d", p->ns_path, sa,
                      c->action_dim);
    }

    /* The actions returned: the robot's Outputs slice (numpy's actions[..., :k] keeps at most
     * what there is), else the norm stats' length, else all. AlohaOutputs' conversions need 14. */
    RETURN_ERR_IF(rl->robot == PC_ROBOT_ALOHA && c->action_dim < rl->out_dims, &p->err, PI0_ERR_CONFIG,
                  "config %s converts %d action dims (AlohaOutputs); the model has action_dim %d", pc->name,
                  rl->out_dims, c->action_dim);
    int natural = rl->out_dims ? rl->out_dims : p->ns ? pi0_norm_stats_dim(p->ns, 1) : c->action_dim;
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
    st = pi0_obs_init(p->obs, p->model);
    RETURN_ERR_IF(st != PI0_OK, &p->err, st, "%s", pi0_obs_error(p->obs));
    return PI0_OK;
}

/* The pipeline's own loading, then what both share: the chunk buffers, the noise seeds and the
 * metadata. */
static pi0_status load(pi0_policy *p, const char *dir, const pi0_policy_params *pp) {
    RETURN_ERR_IF(!dir, &p->err, PI0_ERR_ARG, "model directory is NULL");
    int lerobot = 0;
    lerobot_layout layout = LEROBOT_CURRENT;
    FORWARD_ERR(choose_pipeline(p, dir, pp, &lerobot, &layout));
    FORWARD_ERR(lerobot ? lp_load(p, dir, pp, layout) : load_openpi(p, dir, pp));
    const pi0_config *c = pi0_model_config(p->model);
    const size_t HA = (size_t)c->action_horizon * c->action_dim;
    p->raw = malloc(HA * sizeof *p->raw);
    p->noise = malloc(HA * sizeof *p->noise);
    p->work = malloc(HA * sizeof *p->work);
    p->rtc_chunk = malloc(HA * sizeof *p->rtc_chunk);
    p->rtc_prev = malloc(HA * sizeof *p->rtc_prev);
    RETURN_ERR_IF(!p->raw || !p->noise || !p->work || !p->rtc_chunk || !p->rtc_prev, &p->err, PI0_ERR_NOMEM,
                  "out of memory");
    p->rtc_dims = p->lr && p->lr->action_dim > 0 ? p->lr->action_dim : c->action_dim;
    p->last_rtc = pi0_policy_rtc_default();
    p->fixed_seed = pp->fixed_seed;
    p->seed = pp->seed;
    p->seed_base = entropy_seed(p);
    return build_metadata(p);
}

pi0_status pi0_policy_load(pi0_policy *p, const char *model_dir, const pi0_policy_params *params) {
    if (!p) return PI0_ERR_ARG;
    unload(p);
    p->err.msg[0] = 0;
    p->warning[0] = 0;
    const pi0_policy_params pp = params ? *params : pi0_policy_default_params();
    pi0_status st = load(p, model_dir, &pp);
    if (st != PI0_OK) {
        unload(p);
        return st;
    }
    p->loaded = 1;
    return PI0_OK;
}

/* ---------------------------------------------------------------- observation entries */

typedef enum { K_NONE, K_CAMERA, K_STATE, K_PROMPT, K_ACCEPTED } key_what;

/* What `key` is to the config; *index: the camera or state key's index. */
static key_what classify(const pi0_policy *p, const char *key, int *index) {
    const pc_robot_layout *rl = p->cfg->robot;
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
    const char *g = p->cfg->robot->camera_group;
    return g && !strncmp(key, g, strlen(g));
}

/* "a, b, c": the config's camera keys (and accepted extras) for messages. */
static void camera_list(const pi0_policy *p, char *buf, size_t n) {
    const pc_robot_layout *rl = p->cfg->robot;
    size_t k = 0;
    buf[0] = 0;
    for (int i = 0; i < rl->n_cameras && k < n; i++)
        k += snprintf(buf + k, n - k, "%s%s%s", i ? ", " : "", rl->cameras[i].key, rl->cameras[i].required ? " (required)" : "");
    if (rl->ignored[0] && k < n) snprintf(buf + k, n - k, ", %s (ignored)", rl->ignored[0]);
}

static pi0_status refuse_unknown(pi0_policy *p, const char *key) {
    char cams[512];
    camera_list(p, cams, sizeof cams);
    return pi0_fail(&p->err, PI0_ERR_INPUT, "unknown camera '%.200s' (config %s accepts %s)", key, p->cfg->name, cams);
}

/* Entries given after an infer call start a new observation. */
static pi0_status begin_entry(pi0_policy *p, const char *key) {
    RETURN_ERR_IF(!p->loaded, &p->err, PI0_ERR_ARG, "policy is not loaded");
    RETURN_ERR_IF(!key, &p->err, PI0_ERR_ARG, "observation key is NULL");
    if (p->consumed) entries_clear(p);
    return PI0_OK;
}

int pi0_policy_key_kind(pi0_policy *p, const char *key) {
    if (!p || !p->loaded || !key) return PI0_KEY_IGNORED;
    if (p->lr) return lp_key_kind(p, key);
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

void pi0_policy_obs_clear(pi0_policy *p) {
    if (p) entries_clear(p);
}

/* The camera slot for an image key; *slot = -1 for an accepted, unused camera (ALOHA's cam_low). */
static pi0_status image_slot(pi0_policy *p, const char *key, int *slot) {
    FORWARD_ERR(begin_entry(p, key));
    int idx;
    key_what w = classify(p, key, &idx);
    *slot = -1;
    if (w == K_ACCEPTED) return PI0_OK;
    if (w != K_CAMERA) {
        if (in_camera_group(p, key)) return refuse_unknown(p, key);
        char cams[512];
        camera_list(p, cams, sizeof cams);
        return pi0_fail(&p->err, PI0_ERR_INPUT, "unknown camera '%.200s' (config %s accepts %s)", key,
                        p->cfg->name, cams);
    }
    *slot = p->cfg->robot->cameras[idx].slot;
    return PI0_OK;
}

static pi0_status place_u8(pi0_policy *p, const char *key, int slot, const uint8_t *data, int w, int h, int c, int chw) {
    if (pi0_obs_set_image_u8(p->obs, pi0_camera_name(slot), data, w, h, c, chw) != PI0_OK)
        return pi0_fail(&p->err, PI0_ERR_INPUT, "image '%.200s': %s", key, pi0_obs_error(p->obs));
    p->cam_given[slot] = 1;
    return PI0_OK;
}

/* Element count of a w x h x c image, checked. */
static pi0_status image_numel(pi0_policy *p, const char *key, int w, int h, int c, size_t *n) {
    RETURN_ERR_IF(w <= 0 || h <= 0 || (c != 1 && c != 3 && c != 4), &p->err, PI0_ERR_INPUT,
                  "image '%.200s': %d x %d with %d channels (want a positive size and 1, 3 or 4 channels)", key, w, h, c);
    size_t wh;
    RETURN_ERR_IF(!pi0_mul_size((size_t)w, (size_t)h, &wh) || !pi0_mul_size(wh, (size_t)c, n), &p->err, PI0_ERR_INPUT,
                  "image '%.200s': %d x %d x %d elements do not fit in memory", key, w, h, c);
    return PI0_OK;
}

pi0_status pi0_policy_obs_image_u8(pi0_policy *p, const char *key, const uint8_t *data, int width, int height,
                                   int channels, int chw) {
    if (!p) return PI0_ERR_ARG;
    FORWARD_ERR(begin_entry(p, key));
    if (p->lr) return lp_image(p, key, data, LP_U8, width, height, channels, chw);
    int slot;
    FORWARD_ERR(image_slot(p, key, &slot));
    if (slot < 0) return PI0_OK;
    return place_u8(p, key, slot, data, width, height, channels, chw);
}

static pi0_status image_float(pi0_policy *p, const char *key, const void *data, int f64, int w, int h, int c, int chw) {
    if (!p) return PI0_ERR_ARG;
    FORWARD_ERR(begin_entry(p, key));
    if (p->lr) return lp_image(p, key, data, f64 ? LP_F64 : LP_F32, w, h, c, chw);
    int slot;
    size_t n;
    FORWARD_ERR(image_slot(p, key, &slot));
    if (slot < 0) return PI0_OK;
    FORWARD_ERR(image_numel(p, key, w, h, c, &n));
    RETURN_ERR_IF(!data, &p->err, PI0_ERR_ARG, "image '%.200s': data is NULL", key);
    uint8_t *u8 = malloc(n);
    RETURN_ERR_IF(!u8, &p->err, PI0_ERR_NOMEM, "image '%.200s': out of memory for %zu bytes", key, n);
    long bad = f64 ? pt_image_f64_to_u8(data, n, u8) : pt_image_f32_to_u8(data, n, u8);
    pi0_status st = PI0_OK;
    if (bad >= 0) { /* a NaN has no uint8 value: converting it is undefined behaviour */
        const double v = f64 ? ((const double *)data)[bad] : ((const float *)data)[bad];
        st = pi0_fail(&p->err, PI0_ERR_INPUT, "image '%.200s': element %ld is %s, not a finite number", key, bad,
                      isnan(v) ? "NaN" : "infinite");
    } else {
        st = place_u8(p, key, slot, u8, w, h, c, chw);
    }
    free(u8);
    return st;
}

pi0_status pi0_policy_obs_image_f32(pi0_policy *p, const char *key, const float *data, int width, int height,
                                    int channels, int chw) {
    return image_float(p, key, data, 0, width, height, channels, chw);
}

pi0_status pi0_policy_obs_image_f64(pi0_policy *p, const char *key, const double *data, int width, int height,
                                    int channels, int chw) {
    return image_float(p, key, data, 1, width, height, channels, chw);
}

pi0_status pi0_policy_obs_image_file(pi0_policy *p, const char *key, const char *path) {
    if (!p) return PI0_ERR_ARG;
    FORWARD_ERR(begin_entry(p, key));
    if (p->lr) return lp_image_file(p, key, path);
    int slot;
    FORWARD_ERR(image_slot(p, key, &slot));
    if (slot < 0) return PI0_OK;
    if (pi0_obs_set_image_file(p->obs, pi0_camera_name(slot), path) != PI0_OK)
        return pi0_fail(&p->err, PI0_ERR_INPUT, "image '%.200s': %s", key, pi0_obs_error(p->obs));
    p->cam_given[slot] = 1;
    return PI0_OK;
}

pi0_status pp_copy_numbers(pi0_policy *p, const char *what, const double *v, int n, double **out, int *nout) {
    RETURN_ERR_IF(n < 1 || n > MAX_STATE || !v, &p->err, PI0_ERR_INPUT, "'%.200s' has %d values (want 1 to %d)", what, n,
                  MAX_STATE);
    for (int i = 0; i < n; i++)
        RETURN_ERR_IF(!isfinite(v[i]), &p->err, PI0_ERR_INPUT, "'%.200s'[%d] is not a finite number", what, i);
    double *d = malloc((size_t)n * sizeof *d);
    RETURN_ERR_IF(!d, &p->err, PI0_ERR_NOMEM, "out of memory");
    memcpy(d, v, (size_t)n * sizeof *d);
    free(*out);
    *out = d;
    *nout = n;
    return PI0_OK;
}

pi0_status pi0_policy_obs_numbers(pi0_policy *p, const char *key, const double *values, int n) {
    if (!p) return PI0_ERR_ARG;
    FORWARD_ERR(begin_entry(p, key));
    if (p->lr) return lp_numbers(p, key, values, n);
    int idx;
    if (classify(p, key, &idx) != K_STATE) {
        const pc_robot_layout *rl = p->cfg->robot;
        return pi0_fail(&p->err, PI0_ERR_INPUT, "'%.200s' is not a state key of config %s (its state: %s%s%s)", key,
                        p->cfg->name, rl->state_keys[0], rl->n_state_keys > 1 ? " + " : "",
                        rl->n_state_keys > 1 ? rl->state_keys[1] : "");
    }
    return pp_copy_numbers(p, key, values, n, &p->numbers[idx], &p->n_numbers[idx]);
}

pi0_status pi0_policy_obs_state(pi0_policy *p, const double *values, int n) {
    if (!p) return PI0_ERR_ARG;
    FORWARD_ERR(begin_entry(p, "state"));
    if (p->lr) return lp_numbers(p, "observation.state", values, n);
    return pp_copy_numbers(p, "state", values, n, &p->whole_state, &p->n_whole);
}

pi0_status pi0_policy_obs_text(pi0_policy *p, const char *key, const char *text) {
    if (!p) return PI0_ERR_ARG;
    FORWARD_ERR(begin_entry(p, key));
    if (p->lr) return lp_text(p, key, text);
    int idx;
    RETURN_ERR_IF(classify(p, key, &idx) != K_PROMPT, &p->err, PI0_ERR_INPUT,
                  "'%.200s' is not a text input of config %s (the prompt is 'prompt')", key, p->cfg->name);
    RETURN_ERR_IF(!text, &p->err, PI0_ERR_ARG, "'prompt' is NULL");
    char *d = pp_dup_str(text);
    RETURN_ERR_IF(!d, &p->err, PI0_ERR_NOMEM, "out of memory");
    free(p->prompt);
    p->prompt = d;
    return PI0_OK;
}

pi0_status pi0_policy_obs_noise(pi0_policy *p, const float *noise, int rows, int dims) {
    if (!p) return PI0_ERR_ARG;
    FORWARD_ERR(begin_entry(p, "noise"));
    const pi0_config *c = pi0_model_config(p->model);
    RETURN_ERR_IF(!noise || rows != c->action_horizon || dims != c->action_dim, &p->err, PI0_ERR_INPUT,
                  "noise is %d x %d; the model takes %d x %d (action_horizon x action_dim)", rows, dims,
                  c->action_horizon, c->action_dim);
    const size_t n = (size_t)rows * dims;
    for (size_t i = 0; i < n; i++)
        RETURN_ERR_IF(!isfinite(noise[i]), &p->err, PI0_ERR_INPUT, "noise element %zu is not finite", i);
    memcpy(p->noise, noise, n * sizeof *p->noise);
    p->have_noise = 1;
    return PI0_OK;
}

pi0_policy_rtc pi0_policy_rtc_default(void) {
    return (pi0_policy_rtc){.executed = -1, .inference_delay = 0, .execution_horizon = 0, .schedule = -1,
                            .max_guidance_weight = 0.0f, .chunk = NULL, .chunk_rows = 0};
}

pi0_policy_rtc pi0_policy_last_rtc(const pi0_policy *p) {
    return p && p->loaded ? p->last_rtc : pi0_policy_rtc_default();
}

/* The request checked, its defaults resolved (the checkpoint's rtc_config, else RTCConfig's),
 * and its chunk copied: the policy's own last chunk is overwritten by the call it guides. */
pi0_status pi0_policy_obs_rtc(pi0_policy *p, const pi0_policy_rtc *r) {
    if (!p) return PI0_ERR_ARG;
    FORWARD_ERR(begin_entry(p, "rtc"));
    RETURN_ERR_IF(!r, &p->err, PI0_ERR_ARG, "rtc request is NULL");
    const pi0_config *c = pi0_model_config(p->model);
    const int H = c->action_horizon, A = c->action_dim;
    pi0_policy_rtc q = *r;
    if (q.executed < 0) {
        p->have_rtc = 0;
        return PI0_OK;
    }
    const pi0_rtc d = pi0_rtc_default();
    if (q.schedule < 0) q.schedule = p->lr ? p->lr->rtc_schedule : d.schedule;
    if (q.execution_horizon == 0) q.execution_horizon = p->lr ? p->lr->rtc_horizon : d.execution_horizon;
    if (q.max_guidance_weight == 0.0f) q.max_guidance_weight = p->lr ? p->lr->rtc_weight : d.max_guidance_weight;
    RETURN_ERR_IF(!pi0_rtc_schedule_name(q.schedule), &p->err, PI0_ERR_INPUT,
                  "rtc schedule %d is none of ZEROS (0), ONES (1), LINEAR (2), EXP (3)", q.schedule);
    RETURN_ERR_IF(q.execution_horizon < 1, &p->err, PI0_ERR_INPUT, "rtc execution_horizon = %d (must be >= 1)",
                  q.execution_horizon);
    RETURN_ERR_IF(!(q.max_guidance_weight > 0) || !isfinite(q.max_guidance_weight), &p->err, PI0_ERR_INPUT,
                  "rtc max_guidance_weight = %g (must be positive and finite)", (double)q.max_guidance_weight);
    RETURN_ERR_IF(q.inference_delay < 0 || q.inference_delay > H, &p->err, PI0_ERR_INPUT,
                  "rtc inference_delay = %d (0..%d: the chunk's rows)", q.inference_delay, H);
    int rows = H;
    if (q.chunk) {
        RETURN_ERR_IF(q.chunk_rows < 1 || q.chunk_rows > H, &p->err, PI0_ERR_INPUT,
                      "rtc chunk has %d rows (1..%d, as pi0_policy_raw_actions gives it)", q.chunk_rows, H);
        rows = q.chunk_rows;
        for (size_t i = 0; i < (size_t)rows * A; i++)
            RETURN_ERR_IF(!isfinite(q.chunk[i]), &p->err, PI0_ERR_INPUT, "rtc chunk element %zu is not finite", i);
        memcpy(p->rtc_chunk, q.chunk, (size_t)rows * A * sizeof *p->rtc_chunk);
    } else {
        RETURN_ERR_IF(!p->have_raw, &p->err, PI0_ERR_INPUT,
                      "rtc: executed = %d but this policy has returned no chunk yet (send executed -1 first)",
                      q.executed);
        memcpy(p->rtc_chunk, p->raw, (size_t)H * A * sizeof *p->rtc_chunk);
    }
    RETURN_ERR_IF(q.executed >= rows, &p->err, PI0_ERR_INPUT,
                  "rtc executed = %d: the previous chunk has %d rows, nothing of it is left", q.executed, rows);
    q.chunk = NULL;
    q.chunk_rows = rows;
    p->rtc = q;
    p->have_rtc = 1;
    return PI0_OK;
}

/* ---------------------------------------------------------------- inference */

/* The robot Inputs' state: the whole state if given, else the state keys concatenated in order
 * (DroidInputs: joint_position, then gripper_position, a scalar made 1-D). */
static pi0_status robot_state(pi0_policy *p, double *state, int *n) {
    const pc_robot_layout *rl = p->cfg->robot;
    *n = 0;
    if (p->whole_state) {
        memcpy(state, p->whole_state, (size_t)p->n_whole * sizeof *state);
        *n = p->n_whole;
        return PI0_OK;
    }
    for (int i = 0; i < rl->n_state_keys; i++) {
        RETURN_ERR_IF(!p->numbers[i], &p->err, PI0_ERR_INPUT, "missing key '%s' (config %s reads the state from %s%s%s)",
                      rl->state_keys[i], p->cfg->name, rl->state_keys[0], rl->n_state_keys > 1 ? " + " : "",
                      rl->n_state_keys > 1 ? rl->state_keys[1] : "");
        RETURN_ERR_IF(*n + p->n_numbers[i] > MAX_STATE, &p->err, PI0_ERR_INPUT, "the state has more than %d values",
                      MAX_STATE);
        memcpy(state + *n, p->numbers[i], (size_t)p->n_numbers[i] * sizeof *state);
        *n += p->n_numbers[i];
    }
    return PI0_OK;
}

/* The noise of this call into p->last: given, a fixed seed, or fresh on every call (openpi
 * splits its rng per call). */
void pp_take_noise(pi0_policy *p) {
    const pi0_config *c = pi0_model_config(p->model);
    if (p->have_noise) {
        p->timing.seed = 0;
    } else {
        p->timing.seed = p->fixed_seed ? p->seed : p->seed_base + 0x9E3779B97F4A7C15ull * ++p->calls;
        pi0_gaussian(p->timing.seed, p->noise, (size_t)c->action_horizon * c->action_dim);
    }
    p->last.noise = p->noise;
    p->last.seed = p->timing.seed;
    p->have_last = 1;
}

/* Everything before the model: the inputs it runs on, in p->last. */
static pi0_status run_inputs(pi0_policy *p, double *state, int *n_state) {
    const pc_config *pc = p->cfg;
    const pc_robot_layout *rl = pc->robot;
    const pi0_config *c = pi0_model_config(p->model);
    /* Robot Inputs: the cameras it reads (a missing required key raises in openpi). */
    int given = 0;
    for (int i = 0; i < rl->n_cameras; i++) {
        const pc_camera *cam = &rl->cameras[i];
        given += p->cam_given[cam->slot];
        RETURN_ERR_IF(cam->required && !p->cam_given[cam->slot], &p->err, PI0_ERR_INPUT,
                      "missing key '%s' (a camera config %s requires)", cam->key, pc->name);
    }
    if (given < rl->min_cameras) {
        char cams[512];
        camera_list(p, cams, sizeof cams);
        return pi0_fail(&p->err, PI0_ERR_INPUT, "no camera image found (config %s expects %s)", pc->name, cams);
    }
    FORWARD_ERR(robot_state(p, state, n_state));
    if (rl->robot == PC_ROBOT_ALOHA && p->adapt_to_pi) { /* AlohaInputs → _decode_state */
        RETURN_ERR_IF(*n_state != rl->state_len, &p->err, PI0_ERR_INPUT,
                      "'state' has %d values; config %s (adapt_to_pi) expects %d", *n_state, pc->name, rl->state_len);
        pt_aloha_state_to_pi(state);
    }
    /* Normalize (openpi slices the stats to the state's length; pi0.c wants them equal). */
    RETURN_ERR_IF(*n_state > c->state_dim, &p->err, PI0_ERR_INPUT, "state has %d values; this model takes 1 to %d",
                  *n_state, c->state_dim);
    const int ns_dim = pi0_norm_stats_dim(p->ns, 0);
    RETURN_ERR_IF(p->ns && ns_dim != *n_state, &p->err, PI0_ERR_INPUT, "state has %d values but norm_stats.state has %d",
                  *n_state, ns_dim);
    pt_normalize(norm_stats_vec(p->ns, 0), norm_stats_quantile(p->ns), state, *n_state);
    /* Model transforms: the state enters the model as float32 (openpi's jnp.asarray), padded. */
    float fstate[MAX_STATE];
    for (int i = 0; i < *n_state; i++) {
        fstate[i] = (float)state[i];
        RETURN_ERR_IF(!isfinite(fstate[i]), &p->err, PI0_ERR_INPUT, "state[%d] is not finite after normalization", i);
    }
    if (pi0_obs_set_state(p->obs, fstate, *n_state, NULL) != PI0_OK)
        return pi0_fail(&p->err, PI0_ERR_INPUT, "%s", pi0_obs_error(p->obs));
    /* InjectDefaultPrompt (the server's --default-prompt first, then the config's), TokenizePrompt. */
    const char *prompt = p->prompt ? p->prompt : p->default_prompt;
    RETURN_ERR_IF(!prompt, &p->err, PI0_ERR_INPUT, "missing key 'prompt' (config %s has no default prompt; give one "
                  "with --default-prompt)", pc->name);
    if (pi0_obs_set_prompt(p->obs, p->tok, prompt) != PI0_OK)
        return pi0_fail(&p->err, PI0_ERR_INPUT, "%s", pi0_obs_error(p->obs));
    const pi0_inputs *in = pi0_obs_inputs(p->obs); /* π0.5: the prompt with the discretized state */
    if (!in) return pi0_fail(&p->err, PI0_ERR_INPUT, "%s", pi0_obs_error(p->obs));
    if (pi0_obs_warning(p->obs)) pp_add_warning(p, "%s", pi0_obs_warning(p->obs));
    p->last = *in;
    pp_take_noise(p);
    return PI0_OK;
}

/* Everything after the model, on the raw actions in p->raw; nstate: the normalized state of n
 * values (double, before its float32 copy went into the model). */
static pi0_status run_outputs(pi0_policy *p, const double *nstate, int n, float *out, size_t cap, int *rows,
                              int *dims) {
    const pc_robot_layout *rl = p->cfg->robot;
    const pi0_config *c = pi0_model_config(p->model);
    const int H = c->action_horizon, A = c->action_dim;
    /* outputs = {"state": the padded normalized state, "actions": the model's} */
    double state[MAX_STATE] = {0};
    for (int i = 0; i < n; i++) state[i] = nstate[i];
    double *act = p->work;
    for (size_t i = 0; i < (size_t)H * A; i++) act[i] = p->raw[i];
    /* Unnormalize (strict: both keys) */
    const int q = norm_stats_quantile(p->ns);
    pt_unnormalize(norm_stats_vec(p->ns, 0), q, state, A > n ? A : n);
    for (int r = 0; r < H; r++) pt_unnormalize(norm_stats_vec(p->ns, 1), q, act + (size_t)r * A, A);
    /* AbsoluteActions (delta configs) */
    if (p->mask_len) pt_absolute_actions(act, H, A, state, p->mask, p->mask_len);
    /* Robot Outputs: AlohaOutputs (actions[:, :14], adapt_to_pi's inverse); the slice. */
    if (rl->robot == PC_ROBOT_ALOHA && p->adapt_to_pi) pt_aloha_actions_from_pi(act, H, A);
    const int D = p->out_dims;
    RETURN_ERR_IF(!out || cap < (size_t)H * D, &p->err, PI0_ERR_ARG,
                  "actions buffer holds %zu floats; the chunk has %d x %d", cap, H, D);
    for (int r = 0; r < H; r++)
        for (int d = 0; d < D; d++) out[(size_t)r * D + d] = (float)act[(size_t)r * A + d];
    *rows = H;
    *dims = D;
    return PI0_OK;
}

pi0_status pi0_policy_infer(pi0_policy *p, float *actions, size_t cap, int *rows, int *dims) {
    if (!p) return PI0_ERR_ARG;
    RETURN_ERR_IF(!p->loaded, &p->err, PI0_ERR_ARG, "policy is not loaded");
    RETURN_ERR_IF(!rows || !dims, &p->err, PI0_ERR_ARG, "rows / dims is NULL");
    if (p->consumed) entries_clear(p); /* an infer with nothing given since the last one */
    p->err.msg[0] = 0;
    p->warning[0] = 0;
    p->have_raw = 0;
    p->have_last = 0;
    memset(&p->timing, 0, sizeof p->timing);
    const double t0 = now_ms();
    double state[MAX_STATE];
    int n = 0;
    pi0_status st = p->lr ? lp_run_inputs(p) : run_inputs(p, state, &n);
    const double t1 = now_ms();
    pi0_rtc rtc = pi0_rtc_default();
    p->last_rtc = pi0_policy_rtc_default();
    if (st == PI0_OK && p->have_rtc) { /* the leftover: rows [executed, rows) of the chunk, rtc_dims wide */
        const int A = pi0_model_config(p->model)->action_dim, left = p->rtc.chunk_rows - p->rtc.executed;
        for (int r = 0; r < left; r++)
            memcpy(p->rtc_prev + (size_t)r * p->rtc_dims, p->rtc_chunk + (size_t)(p->rtc.executed + r) * A,
                   (size_t)p->rtc_dims * sizeof *p->rtc_prev);
        rtc.prev = p->rtc_prev, rtc.prev_rows = left, rtc.prev_dims = p->rtc_dims;
        rtc.inference_delay = p->rtc.inference_delay, rtc.execution_horizon = p->rtc.execution_horizon;
        rtc.schedule = p->rtc.schedule, rtc.max_guidance_weight = p->rtc.max_guidance_weight;
        /* a checkpoint trained with RTC conditions on the frozen prefix instead of being guided */
        rtc.mode = pi0_model_config(p->model)->rtc_training_max_delay > 0 ? PI0_RTC_TRAINED : PI0_RTC_GUIDED;
        p->last_rtc = p->rtc;
    }
    if (st == PI0_OK && (st = pi0_session_infer_rtc(p->sess, &p->last, &rtc, p->raw)) != PI0_OK)
        pi0_fail(&p->err, st, "%s", pi0_session_error(p->sess));
    const double t2 = now_ms();
    if (st == PI0_OK) {
        p->have_raw = 1;
        st = p->lr ? lp_run_outputs(p, actions, cap, rows, dims) : run_outputs(p, state, n, actions, cap, rows, dims);
    }
    const double t3 = now_ms();
    p->timing.preprocess_ms = t1 - t0;
    p->timing.model_ms = t2 - t1;
    p->timing.postprocess_ms = t3 - t2;
    p->timing.total_ms = t3 - t0;
    p->timing.model = pi0_session_timing(p->sess);
    p->consumed = 1; /* openpi takes a whole observation per call */
    return st;
}

pi0_status pi0_policy_relative_action(pi0_policy *p, int row, const double *state, int n, float *out, size_t cap) {
    if (!p) return PI0_ERR_ARG;
    RETURN_ERR_IF(!p->loaded, &p->err, PI0_ERR_ARG, "policy is not loaded");
    RETURN_ERR_IF(!p->lr, &p->err, PI0_ERR_UNSUPPORTED,
                  "per-step relative actions are lerobot's; openpi's delta configs add the chunk's own state");
    return lp_relative_action(p, row, state, n, out, cap);
}

pi0_status pi0_policy_raw_actions(const pi0_policy *p, float *out, size_t cap, int *rows, int *dims) {
    if (!p || !rows || !dims) return PI0_ERR_ARG;
    *rows = *dims = 0;
    if (!p->have_raw) return PI0_ERR_ARG;
    const pi0_config *c = pi0_model_config(p->model);
    const size_t HA = (size_t)c->action_horizon * c->action_dim;
    *rows = c->action_horizon;
    *dims = c->action_dim;
    if (!out || cap < HA) return PI0_ERR_ARG;
    memcpy(out, p->raw, HA * sizeof *out);
    return PI0_OK;
}
