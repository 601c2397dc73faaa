/* obs.c — the observation builder: raw camera images, a prompt and a robot state in, a ready
 * pi0_inputs out, preprocessed exactly as openpi does (resize_with_pad, [-1, 1], tokenized and
 * padded prompt, normalized and zero-padded state). Missing cameras are black and masked.
 * π0.5 with discrete_state_input: the prompt carries the normalized state as text, so the
 * tokens are built when both are known (pi0_obs_inputs). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include "io/image.h"
#include "model/model.h"

struct pi0_obs {
    pi0_config cfg;
    float *images;      /* [num_cameras, 3, S, S] */
    uint8_t masks[16];
    int32_t *tokens;    /* [max_token_len] */
    uint8_t *token_mask;
    float *state;       /* [state_dim] normalized, zero-padded */
    int n_state;        /* the robot's own state length */
    int have_prompt, have_state;
    char *prompt;       /* π0.5 with the state in the prompt: the raw text, tokenized later */
    pi0_tokenizer *tok;
    pi0_inputs in;
    pi0_err err;
    char warning[256];
};

static const char *k_cameras[] = {"base_0_rgb", "left_wrist_0_rgb", "right_wrist_0_rgb"};

int pi0_camera_index(const char *name) {
    for (int i = 0; i < 3; i++)
        if (name && strcmp(name, k_cameras[i]) == 0) return i;
    return -1;
}

const char *pi0_camera_name(int index) { return index >= 0 && index < 3 ? k_cameras[index] : NULL; }

pi0_obs *pi0_obs_create(void) { return calloc(1, sizeof(pi0_obs)); }

void pi0_obs_free(pi0_obs *o) {
    if (!o) return;
    free(o->images);
    free(o->tokens);
    free(o->token_mask);
    free(o->state);
    free(o->prompt);
    free(o);
}

const char *pi0_obs_error(const pi0_obs *o) { return o ? o->err.msg : "no observation handle"; }
const char *pi0_obs_warning(const pi0_obs *o) { return o && o->warning[0] ? o->warning : NULL; }

static size_t image_floats(const pi0_config *c) {
    return (size_t)3 * c->vision.image_size * c->vision.image_size;
}

void pi0_obs_clear(pi0_obs *o) {
    if (!o || !o->images) return;
    const size_t n = image_floats(&o->cfg) * o->cfg.num_cameras;
    for (size_t i = 0; i < n; i++) o->images[i] = -1.0f; /* black */
    memset(o->masks, 0, sizeof o->masks);
    memset(o->tokens, 0, o->cfg.max_token_len * sizeof *o->tokens);
    memset(o->token_mask, 0, o->cfg.max_token_len);
    memset(o->state, 0, o->cfg.state_dim * sizeof *o->state);
    o->have_prompt = o->have_state = 0;
    o->n_state = 0;
    free(o->prompt);
    o->prompt = NULL;
    o->warning[0] = 0;
}

pi0_status pi0_obs_init(pi0_obs *o, const pi0_model *m) {
    if (!o) return PI0_ERR_ARG;
    const pi0_config *c = pi0_model_config(m);
    RETURN_ERR_IF(!c, &o->err, PI0_ERR_ARG, "observation: model is not loaded");
    free(o->images); free(o->tokens); free(o->token_mask); free(o->state);
    o->cfg = *c;
    o->images = malloc(image_floats(c) * c->num_cameras * sizeof *o->images);
    o->tokens = malloc(c->max_token_len * sizeof *o->tokens);
    o->token_mask = malloc(c->max_token_len);
    o->state = malloc(c->state_dim * sizeof *o->state);
    RETURN_ERR_IF(!o->images || !o->tokens || !o->token_mask || !o->state, &o->err, PI0_ERR_NOMEM,
                  "out of memory");
    pi0_obs_clear(o);
    return PI0_OK;
}

static pi0_status camera_slot(pi0_obs *o, const char *camera, int *idx) {
    *idx = -1;
    RETURN_ERR_IF(!o->images, &o->err, PI0_ERR_ARG, "observation is not initialised");
    *idx = pi0_camera_index(camera);
    RETURN_ERR_IF(*idx < 0, &o->err, PI0_ERR_INPUT,
                  "unknown camera '%s' (cameras: base_0_rgb, left_wrist_0_rgb, right_wrist_0_rgb)",
                  camera ? camera : "(null)");
    RETURN_ERR_IF(*idx >= o->cfg.num_cameras, &o->err, PI0_ERR_INPUT,
                  "camera '%s' is not used by this model (it has %d camera slots)", camera,
                  o->cfg.num_cameras);
    return PI0_OK;
}

/* resize_with_pad → [-1, 1] into the camera's slot, and mark it valid. */
static pi0_status place_image(pi0_obs *o, int idx, const rgb_image *im) {
    rgb_image sized;
    FORWARD_ERR(image_resize_with_pad(&sized, im, o->cfg.vision.image_size, &o->err));
    image_to_model(&sized, o->images + idx * image_floats(&o->cfg));
    rgb_image_free(&sized);
    o->masks[idx] = 1;
    return PI0_OK;
}

pi0_status pi0_obs_set_image_file(pi0_obs *o, const char *camera, const char *path) {
    if (!o) return PI0_ERR_ARG;
    int idx = -1;
    FORWARD_ERR(camera_slot(o, camera, &idx));
    rgb_image im;
    FORWARD_ERR(image_decode_file(&im, path, &o->err));
    pi0_status st = place_image(o, idx, &im);
    rgb_image_free(&im);
    return st;
}

pi0_status pi0_obs_set_image_u8(pi0_obs *o, const char *camera, const uint8_t *data, int width,
                                int height, int channels, int chw) {
    if (!o) return PI0_ERR_ARG;
    int idx = -1;
    FORWARD_ERR(camera_slot(o, camera, &idx));
    rgb_image im;
    pi0_status st = image_from_u8(&im, data, width, height, channels, chw, &o->err);
    if (st != PI0_OK) {
        char msg[sizeof o->err.msg];
        snprintf(msg, sizeof msg, "%s", o->err.msg);
        return pi0_fail(&o->err, st, "camera '%s': %s", camera, msg);
    }
    st = place_image(o, idx, &im);
    rgb_image_free(&im);
    return st;
}

/* Checks the ids against the model's vocabulary and records a truncation warning. */
static pi0_status check_tokens(pi0_obs *o, int n_valid, int truncated_from) {
    for (int i = 0; i < n_valid; i++)
        RETURN_ERR_IF(o->tokens[i] >= o->cfg.vlm.vocab_size, &o->err, PI0_ERR_INPUT,
                      "prompt: token id %d is outside the model's vocabulary of %d (tokenizer and "
                      "checkpoint do not match)", (int)o->tokens[i], o->cfg.vlm.vocab_size);
    o->warning[0] = 0;
    if (truncated_from)
        snprintf(o->warning, sizeof o->warning,
                 "prompt is %d tokens long, truncated to max_token_len = %d", truncated_from,
                 o->cfg.max_token_len);
    return PI0_OK;
}

static int state_in_prompt(const pi0_obs *o) { return o->cfg.pi05 && o->cfg.discrete_state_input; }

pi0_status pi0_obs_set_prompt(pi0_obs *o, pi0_tokenizer *t, const char *prompt) {
    if (!o) return PI0_ERR_ARG;
    RETURN_ERR_IF(!o->tokens, &o->err, PI0_ERR_ARG, "observation is not initialised");
    RETURN_ERR_IF(!t || !prompt, &o->err, PI0_ERR_ARG, "prompt: tokenizer or text is NULL");
    if (state_in_prompt(o)) { /* tokenized with the state, in pi0_obs_inputs */
        char *copy = malloc(strlen(prompt) + 1);
        RETURN_ERR_IF(!copy, &o->err, PI0_ERR_NOMEM, "out of memory");
        strcpy(copy, prompt);
        free(o->prompt);
        o->prompt = copy;
        o->tok = t;
        o->have_prompt = 1;
        return PI0_OK;
    }
    int n_valid = 0, truncated_from = 0;
    pi0_status st = pi0_tokenize_prompt(t, prompt, o->cfg.max_token_len, o->tokens, o->token_mask,
                                        &n_valid, &truncated_from);
    RETURN_ERR_IF(st != PI0_OK, &o->err, st, "prompt: %s", pi0_tokenizer_error(t));
    FORWARD_ERR(check_tokens(o, n_valid, truncated_from));
    o->have_prompt = 1;
    return PI0_OK;
}

pi0_status pi0_obs_set_state(pi0_obs *o, const float *state, int n, const pi0_norm_stats *ns) {
    if (!o) return PI0_ERR_ARG;
    RETURN_ERR_IF(!o->state, &o->err, PI0_ERR_ARG, "observation is not initialised");
    RETURN_ERR_IF(!state || n < 1 || n > o->cfg.state_dim, &o->err, PI0_ERR_INPUT,
                  "state has %d values; this model takes 1 to %d", n, o->cfg.state_dim);
    int ns_dim = pi0_norm_stats_dim(ns, 0);
    RETURN_ERR_IF(ns && ns_dim != n, &o->err, PI0_ERR_INPUT,
                  "state has %d values but norm_stats.state has %d", n, ns_dim);
    for (int i = 0; i < n; i++)
        RETURN_ERR_IF(!(state[i] == state[i]) || state[i] > 3.4e38f || state[i] < -3.4e38f, &o->err,
                      PI0_ERR_INPUT, "state[%d] is not a finite number", i);
    memset(o->state, 0, o->cfg.state_dim * sizeof *o->state);
    memcpy(o->state, state, n * sizeof *state);
    pi0_norm_stats_normalize_state(ns, o->state, n); /* then zero-padded to state_dim */
    o->n_state = n;
    o->have_state = 1;
    return PI0_OK;
}

const pi0_inputs *pi0_obs_inputs(pi0_obs *o) {
    if (!o) return NULL;
    if (!o->images) { pi0_fail(&o->err, PI0_ERR_ARG, "observation is not initialised"); return NULL; }
    if (!o->have_prompt) { pi0_fail(&o->err, PI0_ERR_INPUT, "observation has no prompt"); return NULL; }
    if (!o->have_state) { pi0_fail(&o->err, PI0_ERR_INPUT, "observation has no state"); return NULL; }
    if (state_in_prompt(o)) { /* π0.5: the normalized state, at the robot's length, as text */
        int n_valid = 0, truncated_from = 0;
        for (int i = 0; i < o->n_state; i++)
            if (isnan(o->state[i])) {
                pi0_fail(&o->err, PI0_ERR_INPUT, "state[%d] is NaN after normalization: it cannot be "
                         "written into the pi0.5 prompt", i);
                return NULL;
            }
        pi0_status st = pi0_tokenize_prompt_pi05(o->tok, o->prompt, o->state, o->n_state, o->cfg.max_token_len,
                                                 o->tokens, o->token_mask, &n_valid, &truncated_from);
        if (st != PI0_OK) {
            pi0_fail(&o->err, st, "prompt: %s", pi0_tokenizer_error(o->tok));
            return NULL;
        }
        if (check_tokens(o, n_valid, truncated_from) != PI0_OK) return NULL;
    }
    o->in = (pi0_inputs){
        .batch = 1, .num_cameras = o->cfg.num_cameras, .images = o->images, .image_masks = o->masks,
        .tokens = o->tokens, .token_mask = o->token_mask, .state = o->state, .noise = NULL, .seed = 0,
    };
    return &o->in;
}
