/* lerobot_pipeline.c — lerobot's pre- and postprocessing (spec lerobot.md) on the policy handle,
 * for checkpoints saved by Hugging Face lerobot. What the checkpoint says (cameras, lengths,
 * normalization modes and statistics, relative actions, renames) is read by io/lerobot_ckpt.c;
 * this file applies it as small steps, in lerobot's order:
 *
 *   inputs   rename_map → cameras by feature key (torch's bilinear resize-with-pad, present
 *            cameras first in config order, missing ones masked) → state [v1 ALOHA] →
 *            normalize (lerobot_norm.c: float32, eps 1e-8) → π0: zero-padded to max_state_dim /
 *            π0.5: digitized into the prompt → prompt (π0: task + "\n"; π0.5: "Task: ...,
 *            State: ...;\nAction: ") → tokenized in one call ([bos] + ids, padded to max_length)
 *   model    noise [chunk_size, max_action_dim]; flow time float32(1 + k·dt) (v1: accumulated)
 *   outputs  slice to the action feature's A dims → unnormalize → [relative: + the raw state on
 *            the mask] → [v1 ALOHA]
 *
 * The slice and the relative → absolute step are openpi's (transforms.c) with lerobot's mask. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "../io/image.h"
#include "../io/image_torch.h"
#include "../io/lerobot_ckpt.h"
#include "policy_internal.h"
#include "transforms.h"

/* lerobot's side of the handle. */
typedef struct {
    lerobot_spec spec;
    float *cam;               /* [n_cameras, 3, R, R]: each given camera, preprocessed */
    uint8_t given[LEROBOT_MAX_CAMERAS];
    float *images;            /* [n_cameras, 3, R, R]: the model's slots (present first) */
    uint8_t masks[LEROBOT_MAX_CAMERAS];
    int32_t *tokens;          /* [max_token_len] */
    uint8_t *token_mask;
    float *state;             /* [state_dim]: normalized, zero-padded */
    float raw_state[MAX_STATE]; /* the raw state of the last call (relative actions) */
    int n_state;
    char ignored[320];        /* image keys of this observation that are no camera of the checkpoint */
} lp_state;

static lp_state *L(const pi0_policy *p) { return p->impl; }

static const char *layout_name(lerobot_layout l) {
    return l == LEROBOT_V1 ? "v1" : l == LEROBOT_V04 ? "v0.4" : "current";
}

/* The resize of a layout (lerobot.md §4.2, §9.1, §9.2). */
static torch_resize_opts resize_opts(const lerobot_spec *s) {
    torch_resize_opts o = {0.0f, 0.0f, 0};
    if (s->layout == LEROBOT_V04) o.pad = o.clamp_lo = -1.0f;
    if (s->layout == LEROBOT_V1) o.top_left = 1;
    return o;
}

/* ---------------------------------------------------------------- loading */

static void lp_describe(const pi0_policy *p, cJSON *obj) {
    const lerobot_spec *s = &L(p)->spec;
    const pi0_config *c = pi0_model_config(p->model);
    char buf[256];
    cJSON *in = cJSON_AddArrayToObject(obj, "inputs"), *out = cJSON_AddArrayToObject(obj, "outputs");
    if (s->n_renames) cJSON_AddItemToArray(in, cJSON_CreateString("rename_observations_processor"));
    snprintf(buf, sizeof buf, "normalizer_processor(STATE: %s, eps=1e-8)", lerobot_norm_mode_name(s->state.mode));
    cJSON_AddItemToArray(in, cJSON_CreateString(buf));
    snprintf(buf, sizeof buf, "resize_with_pad_torch(%d, pad=%s%s)", c->vision.image_size,
             s->layout == LEROBOT_V04 ? "-3" : "-1", s->layout == LEROBOT_V1 ? ", top-left" : "");
    cJSON_AddItemToArray(in, cJSON_CreateString(buf));
    snprintf(buf, sizeof buf, "%s(max_length=%d)", c->pi05 ? "pi05 prompt (normalized state digitized)" : "task + \"\\n\"",
             c->max_token_len);
    cJSON_AddItemToArray(in, cJSON_CreateString(buf));
    snprintf(buf, sizeof buf, "actions[..., :%d]", s->action_dim);
    cJSON_AddItemToArray(out, cJSON_CreateString(buf));
    snprintf(buf, sizeof buf, "unnormalizer_processor(ACTION: %s)", lerobot_norm_mode_name(s->action.mode));
    cJSON_AddItemToArray(out, cJSON_CreateString(buf));
    if (s->relative) cJSON_AddItemToArray(out, cJSON_CreateString("absolute_actions_processor (+ raw state)"));
    if (s->aloha_v1) cJSON_AddItemToArray(out, cJSON_CreateString("aloha (adapt_to_pi_aloha)"));
}

static void lp_metadata(const pi0_policy *p, cJSON *root) {
    const pi0_config *c = pi0_model_config(p->model);
    const lerobot_spec *s = &L(p)->spec;
    cJSON_AddStringToObject(root, "lerobot_version", layout_name(s->layout));
    cJSON_AddNumberToObject(root, "n_action_steps", s->n_action_steps ? s->n_action_steps : c->action_horizon);
    cJSON *cams = cJSON_AddArrayToObject(root, "cameras");
    for (int i = 0; i < s->n_cameras; i++) cJSON_AddItemToArray(cams, cJSON_CreateString(s->cameras[i]));
    cJSON_AddNumberToObject(root, "state_dim", s->state_dim);
}

/* The layout: the caller's (pp->lerobot_version), else the files'. */
static lerobot_layout choose_layout(const char *dir, const pi0_policy_params *pp) {
    const char *ver = pp->lerobot_version;
    lerobot_layout layout = LEROBOT_CURRENT;
    if (ver) return !strcmp(ver, "v1") ? LEROBOT_V1 : !strcmp(ver, "v0.4") ? LEROBOT_V04 : LEROBOT_CURRENT;
    if (lerobot_detect(dir, &layout) != PIPELINE_LEROBOT) layout = LEROBOT_CURRENT;
    return layout;
}

static pi0_status lp_load(pi0_policy *p, const char *dir, const pi0_policy_params *pp) {
    lp_state *l = calloc(1, sizeof *l);
    RETURN_ERR_IF(!l, &p->err, PI0_ERR_NOMEM, "out of memory");
    p->impl = l;
    p->config_name = "lerobot";
    const lerobot_layout layout = choose_layout(dir, pp);
    FORWARD_ERR(pp_lerobot_refusals(p, dir, pp));
    FORWARD_ERR(lerobot_spec_load(&l->spec, dir, layout, pp->norm_stats, &p->err));
    lerobot_spec *s = &l->spec;
    snprintf(p->pipeline_name, sizeof p->pipeline_name, "lerobot (%s)", layout_name(layout));
    if (s->warning[0]) pp_add_warning(p, "%s", s->warning);
    if (pp->norm_stats) snprintf(p->ns_path, sizeof p->ns_path, "%s", pp->norm_stats);

    pi0_status st = pi0_model_load(p->model, dir);
    RETURN_ERR_IF(st != PI0_OK, &p->err, st, "%s", pi0_model_error(p->model));
    pi0_config *c = &p->model->cfg; /* this handle's own model */
    RETURN_ERR_IF(s->pi05 != c->pi05 && s->layout != LEROBOT_V1, &p->err, PI0_ERR_CONFIG,
                  "%s: config.json says type %s but the weights are a %s model", dir, s->pi05 ? "pi05" : "pi0",
                  c->pi05 ? "pi0.5" : "pi0");
    /* the tokenizer step's max_length is what lerobot pads to */
    if (s->max_length > 0 && s->max_length != c->max_token_len) {
        RETURN_ERR_IF(s->max_length > 4096, &p->err, PI0_ERR_CONFIG, "%s: tokenizer max_length %d (at most 4096)", dir,
                      s->max_length);
        c->max_token_len = s->max_length;
    }
    RETURN_ERR_IF(s->n_cameras < 1, &p->err, PI0_ERR_CONFIG,
                  "%s/config.json lists no camera (input_features of type VISUAL)", dir);
    RETURN_ERR_IF(s->n_cameras != c->num_cameras, &p->err, PI0_ERR_CONFIG,
                  "%s: %d cameras in input_features but the model was read with %d", dir, s->n_cameras, c->num_cameras);
    RETURN_ERR_IF(s->max_state_dim < 1 || s->max_state_dim > MAX_STATE, &p->err, PI0_ERR_CONFIG,
                  "%s/config.json: max_state_dim %d (1..%d)", dir, s->max_state_dim, MAX_STATE);
    RETURN_ERR_IF(!c->pi05 && s->state_dim > c->state_dim, &p->err, PI0_ERR_CONFIG,
                  "%s: observation.state has %d values, more than max_state_dim %d", dir, s->state_dim, c->state_dim);
    RETURN_ERR_IF(s->state_dim > s->max_state_dim, &p->err, PI0_ERR_CONFIG,
                  "%s: observation.state has %d values, more than max_state_dim %d", dir, s->state_dim,
                  s->max_state_dim);
    RETURN_ERR_IF(c->action_dim > MAX_STATE || c->state_dim > MAX_STATE, &p->err, PI0_ERR_CONFIG,
                  "%s: max_action_dim %d / max_state_dim %d: the policy handles at most %d", dir, c->action_dim,
                  c->state_dim, MAX_STATE);
    if (!s->action_dim) s->action_dim = c->action_dim; /* v1 without features or stats: all dims */
    RETURN_ERR_IF(s->action_dim > c->action_dim, &p->err, PI0_ERR_CONFIG,
                  "%s: the action feature has %d values, more than max_action_dim %d", dir, s->action_dim,
                  c->action_dim);
    RETURN_ERR_IF(s->aloha_v1 && (s->action_dim < 14 || (s->state_dim && s->state_dim < 14)), &p->err, PI0_ERR_CONFIG,
                  "%s: adapt_to_pi_aloha converts 14 dims; state has %d and actions %d", dir, s->state_dim,
                  s->action_dim);
    p->out_dims = pp->action_dims > 0 ? pp->action_dims : s->action_dim;
    RETURN_ERR_IF(p->out_dims > s->action_dim, &p->err, PI0_ERR_ARG,
                  "action dims %d exceed the checkpoint's action feature (%d values)", p->out_dims, s->action_dim);

    FORWARD_ERR(pp_find_tokenizer(p, dir, pp->tokenizer));
    st = pi0_tokenizer_load(p->tok, p->tok_path);
    RETURN_ERR_IF(st != PI0_OK, &p->err, st, "%s", pi0_tokenizer_error(p->tok));
    if (pp->default_prompt) {
        p->default_prompt = pp_dup_str(pp->default_prompt);
        RETURN_ERR_IF(!p->default_prompt, &p->err, PI0_ERR_NOMEM, "out of memory");
    }
    /* lerobot's flow time (lerobot.md §7): current and v0.4.3+ float32(1 + k·dt), v1 accumulated */
    pi0_params mp = pp->model;
    mp.flow_time = s->layout == LEROBOT_V1 ? PI0_FLOW_TIME_F32_SUM : PI0_FLOW_TIME_F32;
    st = pi0_session_init(p->sess, p->model, &mp);
    RETURN_ERR_IF(st != PI0_OK, &p->err, st, "%s", pi0_session_error(p->sess));

    const size_t R = (size_t)c->vision.image_size, img = 3 * R * R, N = (size_t)s->n_cameras;
    l->cam = malloc(N * img * sizeof *l->cam);
    l->images = malloc(N * img * sizeof *l->images);
    l->tokens = calloc((size_t)c->max_token_len, sizeof *l->tokens);
    l->token_mask = calloc((size_t)c->max_token_len, 1);
    l->state = calloc((size_t)(c->state_dim > 0 ? c->state_dim : 1), sizeof *l->state);
    RETURN_ERR_IF(!l->cam || !l->images || !l->tokens || !l->token_mask || !l->state, &p->err, PI0_ERR_NOMEM,
                  "out of memory");
    return PI0_OK;
}

static void lp_unload(pi0_policy *p) {
    lp_state *l = L(p);
    if (!l) return;
    lerobot_spec_free(&l->spec);
    free(l->cam);
    free(l->images);
    free(l->tokens);
    free(l->token_mask);
    free(l->state);
    free(l);
    p->impl = NULL;
}

static void lp_clear(pi0_policy *p) {
    lp_state *l = L(p);
    memset(l->given, 0, sizeof l->given);
    l->ignored[0] = 0;
}

/* ---------------------------------------------------------------- observation entries */

typedef enum { LK_NONE, LK_CAMERA, LK_STATE, LK_PROMPT, LK_OTHER_CAMERA } lk_what;

/* The caller's key after rename_map (lerobot applies it before anything else). */
static const char *renamed(const lerobot_spec *s, const char *key) {
    for (int i = 0; i < s->n_renames; i++)
        if (!strcmp(key, s->rename_from[i])) return s->rename_to[i];
    return key;
}

static lk_what classify(const pi0_policy *p, const char *key, int *index) {
    const lerobot_spec *s = &L(p)->spec;
    key = renamed(s, key);
    *index = -1;
    if (!strcmp(key, "task") || !strcmp(key, "prompt")) return LK_PROMPT;
    if (!strcmp(key, "observation.state")) return LK_STATE;
    for (int i = 0; i < s->n_cameras; i++)
        if (!strcmp(key, s->cameras[i])) { *index = i; return LK_CAMERA; }
    if (!strncmp(key, "observation.images.", 19) || !strncmp(key, "observation.image", 17)) return LK_OTHER_CAMERA;
    return LK_NONE;
}

static void camera_list(const pi0_policy *p, char *buf, size_t n) {
    size_t k = 0;
    buf[0] = 0;
    for (int i = 0; i < L(p)->spec.n_cameras && k < n; i++)
        k += snprintf(buf + k, n - k, "%s%s", i ? ", " : "", L(p)->spec.cameras[i]);
}

static int lp_camera_kind(const pi0_policy *p, const char *key) { return pp_camera_kind(NULL, &L(p)->spec, key); }

static int lp_key_kind(pi0_policy *p, const char *key) {
    int idx;
    switch (classify(p, key, &idx)) {
    case LK_PROMPT: return PI0_KEY_TEXT;
    case LK_CAMERA: return PI0_KEY_IMAGE;
    case LK_STATE: return PI0_KEY_NUMBERS;
    default: return PI0_KEY_IGNORED;
    }
}

/* The camera index of an image key; -1 for an image this checkpoint has no camera for (lerobot
 * ignores it: so does the engine, with a warning naming it). */
static pi0_status camera_of(pi0_policy *p, const char *key, int *cam) {
    int idx;
    const lk_what w = classify(p, key, &idx);
    *cam = idx;
    if (w == LK_CAMERA) return PI0_OK;
    char cams[1024];
    camera_list(p, cams, sizeof cams);
    if (w == LK_OTHER_CAMERA) { /* named in the warning of the infer call */
        const size_t k = strlen(L(p)->ignored);
        snprintf(L(p)->ignored + k, sizeof L(p)->ignored - k, "%s'%s'", k ? ", " : "", PI0_SHOW(key));
        return PI0_OK;
    }
    return pi0_fail(&p->err, PI0_ERR_INPUT, "'%s' is not an image input of this lerobot checkpoint (cameras: %s)",
                    PI0_SHOW(key), cams);
}

/* Converts a float frame (HWC or CHW, channels 1/3/4) to float HWC, refusing values lerobot would
 * silently misread (outside [0, 1], NaN, inf). */
static pi0_status float_hwc(pi0_policy *p, const char *key, const void *data, int type, int w, int h, int ch, int chw,
                            float **out) {
    size_t n;
    RETURN_ERR_IF(!pi0_mul_size((size_t)w * (size_t)h, (size_t)ch, &n), &p->err, PI0_ERR_INPUT,
                  "image '%s': %d x %d x %d is too large", PI0_SHOW(key), w, h, ch);
    float *x = malloc(n * sizeof *x);
    RETURN_ERR_IF(!x, &p->err, PI0_ERR_NOMEM, "image '%s': out of memory", PI0_SHOW(key));
    for (size_t i = 0; i < n; i++) {
        const double v = type == PP_F64 ? ((const double *)data)[i] : ((const float *)data)[i];
        if (!(v >= 0.0 && v <= 1.0)) {
            free(x);
            return pi0_fail(&p->err, PI0_ERR_INPUT,
                            "image '%s': element %zu is %g; lerobot's float images are in [0, 1] (or give uint8)",
                            PI0_SHOW(key), i, v);
        }
        size_t dst = i;
        if (chw) { /* planar [C, H, W] → [H, W, C] */
            const size_t plane = (size_t)w * h, c = i / plane, px = i % plane;
            dst = px * ch + c;
        }
        x[dst] = (float)v;
    }
    *out = x;
    return PI0_OK;
}

static pi0_status lp_image(pi0_policy *p, const char *key, const void *data, int type, int w, int h, int ch, int chw) {
    int cam;
    FORWARD_ERR(camera_of(p, key, &cam));
    if (cam < 0) return PI0_OK;
    RETURN_ERR_IF(!data, &p->err, PI0_ERR_ARG, "image '%s': data is NULL", PI0_SHOW(key));
    RETURN_ERR_IF(w < 1 || h < 1 || (ch != 1 && ch != 3 && ch != 4), &p->err, PI0_ERR_INPUT,
                  "image '%s': %d x %d with %d channels (want a positive size and 1, 3 or 4 channels)", PI0_SHOW(key), w, h, ch);
    const pi0_config *c = pi0_model_config(p->model);
    const int R = c->vision.image_size;
    float *dst = L(p)->cam + (size_t)cam * 3 * R * R;
    const torch_resize_opts o = resize_opts(&L(p)->spec);
    pi0_err e = {{0}};
    pi0_status st;
    if (type == PP_U8) {
        rgb_image im;
        st = image_from_u8(&im, data, w, h, ch, chw, &e);
        if (st == PI0_OK) {
            st = image_resize_torch(dst, im.rgb, im.width, im.height, 3, R, &o, &e);
            rgb_image_free(&im);
        }
    } else {
        float *x = NULL;
        FORWARD_ERR(float_hwc(p, key, data, type, w, h, ch, chw, &x));
        st = image_resize_torch_f32(dst, x, w, h, ch, R, &o, &e);
        free(x);
    }
    RETURN_ERR_IF(st != PI0_OK, &p->err, st, "image '%s': %s", PI0_SHOW(key), e.msg);
    L(p)->given[cam] = 1;
    return PI0_OK;
}

static pi0_status lp_image_file(pi0_policy *p, const char *key, const char *path) {
    int cam;
    FORWARD_ERR(camera_of(p, key, &cam));
    if (cam < 0) return PI0_OK;
    rgb_image im;
    pi0_err e = {{0}};
    pi0_status st = image_decode_file(&im, path, &e);
    RETURN_ERR_IF(st != PI0_OK, &p->err, st, "image '%s': %s", PI0_SHOW(key), e.msg);
    st = lp_image(p, key, im.rgb, PP_U8, im.width, im.height, 3, 0);
    rgb_image_free(&im);
    return st;
}

static pi0_status lp_numbers(pi0_policy *p, const char *key, const double *v, int n) {
    int idx;
    RETURN_ERR_IF(classify(p, key, &idx) != LK_STATE, &p->err, PI0_ERR_INPUT,
                  "'%s' is not a numeric input of this lerobot checkpoint (the state is 'observation.state')", PI0_SHOW(key));
    return pp_copy_numbers(p, key, v, n, &p->whole_state, &p->n_whole);
}

static pi0_status lp_text(pi0_policy *p, const char *key, const char *text) {
    int idx;
    RETURN_ERR_IF(classify(p, key, &idx) != LK_PROMPT, &p->err, PI0_ERR_INPUT,
                  "'%s' is not a text input of this lerobot checkpoint (the task is 'task')", PI0_SHOW(key));
    return pp_set_prompt(p, "task", text);
}

/* ---------------------------------------------------------------- inference */

/* Present cameras first in config order, then the missing ones as masked −1 images
 * (lerobot.md §4.1; masked slots take no attention and no position). */
static void place_cameras(pi0_policy *p) {
    const lerobot_spec *s = &L(p)->spec;
    const int R = pi0_model_config(p->model)->vision.image_size;
    const size_t img = (size_t)3 * R * R;
    int slot = 0;
    for (int pass = 0; pass < 2; pass++)
        for (int i = 0; i < s->n_cameras; i++) {
            if (L(p)->given[i] != (pass == 0)) continue;
            float *dst = L(p)->images + (size_t)slot * img;
            if (pass == 0) memcpy(dst, L(p)->cam + (size_t)i * img, img * sizeof *dst);
            else
                for (size_t k = 0; k < img; k++) dst[k] = -1.0f;
            L(p)->masks[slot++] = pass == 0;
        }
}

static pi0_status lp_inputs(pi0_policy *p) {
    const lerobot_spec *s = &L(p)->spec;
    const pi0_config *c = pi0_model_config(p->model);
    int given = 0;
    for (int i = 0; i < s->n_cameras; i++) given += L(p)->given[i];
    if (!given) {
        char cams[1024];
        camera_list(p, cams, sizeof cams);
        return pi0_fail(&p->err, PI0_ERR_INPUT, "no camera image given (this checkpoint's cameras: %s)", cams);
    }
    place_cameras(p);
    if (L(p)->ignored[0]) {
        char cams[1024];
        camera_list(p, cams, sizeof cams);
        pp_add_warning(p, "image %s: not a camera of this checkpoint (%s): ignored, as lerobot does", L(p)->ignored, cams);
    }
    /* state: the native S values, float32 as lerobot's tensors */
    RETURN_ERR_IF(!p->whole_state, &p->err, PI0_ERR_INPUT, "missing key 'observation.state'");
    const int n = p->n_whole;
    RETURN_ERR_IF(s->state_dim && n != s->state_dim, &p->err, PI0_ERR_INPUT,
                  "'observation.state' has %d values; this checkpoint's state feature has %d", n, s->state_dim);
    RETURN_ERR_IF(n > s->max_state_dim || (!c->pi05 && n > c->state_dim), &p->err, PI0_ERR_INPUT,
                  "'observation.state' has %d values, more than max_state_dim %d", n,
                  c->pi05 ? s->max_state_dim : c->state_dim);
    float *x = L(p)->raw_state;
    for (int i = 0; i < n; i++) x[i] = (float)p->whole_state[i];
    L(p)->n_state = n;
    float st[MAX_STATE] = {0};
    memcpy(st, x, (size_t)n * sizeof *st);
    if (s->aloha_v1) lt_aloha_v1_state(st);
    if (s->state.mode != LR_IDENTITY) lerobot_normalize(s->state.mode, 0, st, n, s->state.a, s->state.b);
    for (int i = 0; i < n; i++)
        RETURN_ERR_IF(!isfinite(st[i]), &p->err, PI0_ERR_INPUT, "observation.state[%d] is not finite after normalization", i);
    if (!c->pi05) {
        memset(L(p)->state, 0, (size_t)c->state_dim * sizeof *L(p)->state);
        memcpy(L(p)->state, st, (size_t)n * sizeof *st);
    }
    /* prompt */
    const char *task = p->prompt ? p->prompt : p->default_prompt;
    RETURN_ERR_IF(!task, &p->err, PI0_ERR_INPUT, "missing key 'task' (the instruction: send one, or give default_prompt=TEXT)");
    char *text = NULL;
    pi0_status rc;
    if (c->pi05) /* v0.4: the state zero-padded to max_state_dim before digitizing */
        rc = pi0_prompt_text_pi05(task, st, s->layout == LEROBOT_V04 ? s->max_state_dim : n, &text);
    else
        rc = pi0_prompt_text_lerobot_pi0(task, &text);
    RETURN_ERR_IF(rc != PI0_OK, &p->err, rc, "task: cannot build the prompt (%s)",
                  rc == PI0_ERR_INPUT ? "a state value is NaN" : "out of memory");
    int n_valid = 0, trunc = 0;
    rc = pi0_tokenize_text(p->tok, text, c->max_token_len, L(p)->tokens, L(p)->token_mask, &n_valid, &trunc);
    free(text);
    RETURN_ERR_IF(rc != PI0_OK, &p->err, rc, "task: %s", pi0_tokenizer_error(p->tok));
    if (trunc)
        pp_add_warning(p, "the prompt needs %d tokens; truncated to tokenizer_max_length %d, as lerobot does", trunc,
                       c->max_token_len);
    /* the model's inputs */
    memset(&p->last, 0, sizeof p->last);
    p->last.batch = 1;
    p->last.num_cameras = s->n_cameras;
    p->last.images = L(p)->images;
    p->last.image_masks = L(p)->masks;
    p->last.tokens = L(p)->tokens;
    p->last.token_mask = L(p)->token_mask;
    p->last.state = L(p)->state;
    return PI0_OK;
}

/* Row r of the last chunk through the output steps: slice to A, unnormalize (float32), v1 ALOHA,
 * then, with relative actions, + `state` (n raw values) on the relative dims: openpi's
 * AbsoluteActions step with lerobot's mask (a float32 sum computed in double is exact). */
static void output_row(const pi0_policy *p, int r, const float *state, int n, double *out) {
    const lerobot_spec *s = &L(p)->spec;
    const pi0_config *c = pi0_model_config(p->model);
    const int A = s->action_dim;
    float row[MAX_STATE];
    memcpy(row, p->raw + (size_t)r * c->action_dim, (size_t)A * sizeof *row);
    if (s->action.mode != LR_IDENTITY) lerobot_normalize(s->action.mode, 1, row, A, s->action.a, s->action.b);
    if (s->aloha_v1) lt_aloha_v1_actions(row, 1, A);
    double a[MAX_STATE], st[MAX_STATE];
    for (int j = 0; j < A; j++) a[j] = row[j];
    if (s->relative) {
        for (int j = 0; j < n; j++) st[j] = state[j];
        pt_absolute_actions(a, 1, A, st, s->relative_mask, A < n ? A : n);
    }
    for (int d = 0; d < p->out_dims; d++) out[d] = (float)a[d]; /* lerobot's float32 tensor */
}

static pi0_status lp_outputs(pi0_policy *p, double *out) {
    const int H = pi0_model_config(p->model)->action_horizon, D = p->out_dims;
    /* relative actions: the raw state of this call (the planning state) on every row */
    for (int r = 0; r < H; r++) output_row(p, r, L(p)->raw_state, L(p)->n_state, out + (size_t)r * D);
    return PI0_OK;
}

static pi0_status lp_relative_action(pi0_policy *p, int row, const double *state, int n, double *out) {
    RETURN_ERR_IF(!state || n != L(p)->n_state, &p->err, PI0_ERR_INPUT,
                  "state has %d values; the chunk was planned from %d", n, L(p)->n_state);
    float st[MAX_STATE];
    for (int j = 0; j < n; j++) {
        RETURN_ERR_IF(!isfinite(state[j]), &p->err, PI0_ERR_INPUT, "state[%d] is not a finite number", j);
        st[j] = (float)state[j]; /* lerobot's float32 state tensor */
    }
    output_row(p, row, st, n, out);
    return PI0_OK;
}

/* rtc_config as the checkpoint gives it (lerobot_ckpt.c; absent: RTCConfig's defaults); the
 * leftover is the native action dims of the chunk, as lerobot's predict_action_chunk returns it. */
static void lp_rtc_defaults(const pi0_policy *p, pi0_rtc *d, int *dims) {
    const lerobot_spec *s = &L(p)->spec;
    d->schedule = s->rtc_schedule;
    d->execution_horizon = s->rtc_horizon;
    d->max_guidance_weight = s->rtc_weight;
    if (s->action_dim > 0) *dims = s->action_dim;
}

const pp_pipeline pp_lerobot_pipeline = {
    .name = "lerobot",
    .state_key = "observation.state",
    .load = lp_load,
    .unload = lp_unload,
    .clear = lp_clear,
    .key_kind = lp_key_kind,
    .camera_kind = lp_camera_kind,
    .image = lp_image,
    .image_file = lp_image_file,
    .numbers = lp_numbers,
    .text = lp_text,
    .inputs = lp_inputs,
    .outputs = lp_outputs,
    .relative_action = lp_relative_action,
    .rtc_defaults = lp_rtc_defaults,
    .metadata = lp_metadata,
    .describe = lp_describe,
};
