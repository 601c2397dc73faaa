/* policy.c — pi0_policy, the public policy API: the handle, the model session, the noise, the
 * caller's buffers and timing, around one pipeline (pipeline.h) that turns an observation into
 * the model's inputs and the model's output into actions: openpi's (openpi_pipeline.c) or
 * lerobot's (lerobot_pipeline.c), chosen at load (pipeline.c). */
#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "../io/lerobot_ckpt.h"
#include "configs.h"
#include "policy_internal.h"

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
    free(p->whole_state);
    p->whole_state = NULL;
    p->n_whole = 0;
    free(p->prompt);
    p->prompt = NULL;
    p->have_noise = 0;
    p->have_rtc = 0;
    p->consumed = 0;
    if (p->pl && p->impl) p->pl->clear(p);
}

static void unload(pi0_policy *p) {
    entries_clear(p);
    if (p->pl) p->pl->unload(p);
    pi0_session_free(p->sess);
    pi0_tokenizer_free(p->tok);
    pi0_model_free(p->model);
    free(p->default_prompt);
    free(p->metadata);
    free(p->raw);
    free(p->noise);
    free(p->actions);
    free(p->rtc_chunk);
    free(p->rtc_prev);
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
const char *pi0_policy_config_resolved(const pi0_policy *p) { return p ? p->config_name : NULL; }
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

/* What openpi's server sends on connect: the common fields, the pipeline's, the transforms. */
static pi0_status build_metadata(pi0_policy *p) {
    const pi0_config *c = pi0_model_config(p->model);
    cJSON *root = cJSON_CreateObject();
    RETURN_ERR_IF(!root, &p->err, PI0_ERR_NOMEM, "out of memory");
    cJSON_AddStringToObject(root, "model", c->pi05 ? "pi05" : "pi0");
    cJSON_AddStringToObject(root, "server", "pi0.c");
    cJSON_AddStringToObject(root, "pipeline", p->pl->name);
    cJSON_AddNumberToObject(root, "action_horizon", c->action_horizon);
    cJSON_AddNumberToObject(root, "action_dim", p->out_dims);
    p->pl->metadata(p, root);
    cJSON_AddStringToObject(root, "backend", pi0_session_backend_info(p->sess));
    p->pl->describe(p, cJSON_AddObjectToObject(root, "transforms"));
    p->metadata = cJSON_PrintUnformatted(root);
    cJSON_Delete(root);
    RETURN_ERR_IF(!p->metadata, &p->err, PI0_ERR_NOMEM, "out of memory");
    return PI0_OK;
}

/* The pipeline's own loading, then what all share: the chunk buffers, the noise seeds and the
 * metadata. */
static pi0_status load(pi0_policy *p, const char *dir, const pi0_policy_params *pp) {
    RETURN_ERR_IF(!dir, &p->err, PI0_ERR_ARG, "model directory is NULL");
    FORWARD_ERR(pp_choose(p, dir, pp, &p->pl));
    p->model = pi0_model_create();
    p->tok = pi0_tokenizer_create();
    p->sess = pi0_session_create();
    RETURN_ERR_IF(!p->model || !p->tok || !p->sess, &p->err, PI0_ERR_NOMEM, "out of memory");
    FORWARD_ERR(p->pl->load(p, dir, pp));
    const pi0_config *c = pi0_model_config(p->model);
    const size_t HA = (size_t)c->action_horizon * c->action_dim;
    p->raw = malloc(HA * sizeof *p->raw);
    p->noise = malloc(HA * sizeof *p->noise);
    p->actions = malloc(HA * sizeof *p->actions);
    p->rtc_chunk = malloc(HA * sizeof *p->rtc_chunk);
    p->rtc_prev = malloc(HA * sizeof *p->rtc_prev);
    RETURN_ERR_IF(!p->raw || !p->noise || !p->actions || !p->rtc_chunk || !p->rtc_prev, &p->err, PI0_ERR_NOMEM,
                  "out of memory");
    /* RTC: the pipeline's defaults of a request and the leftover's width, else lerobot's
     * RTCConfig defaults on all action dims */
    p->rtc_config = pi0_rtc_default();
    p->rtc_dims = c->action_dim;
    if (p->pl->rtc_defaults) p->pl->rtc_defaults(p, &p->rtc_config, &p->rtc_dims);
    if (p->rtc_dims < 1 || p->rtc_dims > c->action_dim) p->rtc_dims = c->action_dim;
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

/* Entries given after an infer call start a new observation. */
static pi0_status begin_entry(pi0_policy *p, const char *key) {
    RETURN_ERR_IF(!p->loaded, &p->err, PI0_ERR_ARG, "policy is not loaded");
    RETURN_ERR_IF(!key, &p->err, PI0_ERR_ARG, "observation key is NULL");
    if (p->consumed) entries_clear(p);
    return PI0_OK;
}

int pi0_policy_key_kind(pi0_policy *p, const char *key) {
    if (!p || !p->loaded || !key) return PI0_KEY_IGNORED;
    return p->pl->key_kind(p, key);
}

void pi0_policy_obs_clear(pi0_policy *p) {
    if (p) entries_clear(p);
}

static pi0_status obs_image(pi0_policy *p, const char *key, const void *data, int type, int w, int h, int c, int chw) {
    if (!p) return PI0_ERR_ARG;
    FORWARD_ERR(begin_entry(p, key));
    return p->pl->image(p, key, data, type, w, h, c, chw);
}

pi0_status pi0_policy_obs_image_u8(pi0_policy *p, const char *key, const uint8_t *data, int width, int height,
                                   int channels, int chw) {
    return obs_image(p, key, data, PP_U8, width, height, channels, chw);
}

pi0_status pi0_policy_obs_image_f32(pi0_policy *p, const char *key, const float *data, int width, int height,
                                    int channels, int chw) {
    return obs_image(p, key, data, PP_F32, width, height, channels, chw);
}

pi0_status pi0_policy_obs_image_f64(pi0_policy *p, const char *key, const double *data, int width, int height,
                                    int channels, int chw) {
    return obs_image(p, key, data, PP_F64, width, height, channels, chw);
}

pi0_status pi0_policy_obs_image_file(pi0_policy *p, const char *key, const char *path) {
    if (!p) return PI0_ERR_ARG;
    FORWARD_ERR(begin_entry(p, key));
    return p->pl->image_file(p, key, path);
}

pi0_status pi0_policy_obs_numbers(pi0_policy *p, const char *key, const double *values, int n) {
    if (!p) return PI0_ERR_ARG;
    FORWARD_ERR(begin_entry(p, key));
    return p->pl->numbers(p, key, values, n);
}

pi0_status pi0_policy_obs_state(pi0_policy *p, const double *values, int n) {
    if (!p) return PI0_ERR_ARG;
    FORWARD_ERR(begin_entry(p, "state"));
    return pp_copy_numbers(p, p->pl->state_key, values, n, &p->whole_state, &p->n_whole);
}

pi0_status pi0_policy_obs_text(pi0_policy *p, const char *key, const char *text) {
    if (!p) return PI0_ERR_ARG;
    FORWARD_ERR(begin_entry(p, key));
    return p->pl->text(p, key, text);
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
                            .max_guidance_weight = 0.0f, .chunk = NULL, .chunk_rows = 0,
                            .jacobian = PI0_RTC_JACOBIAN_LEROBOT};
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
    const pi0_rtc *d = &p->rtc_config;
    if (q.schedule < 0) q.schedule = d->schedule;
    if (q.execution_horizon == 0) q.execution_horizon = d->execution_horizon;
    if (q.max_guidance_weight == 0.0f) q.max_guidance_weight = d->max_guidance_weight;
    RETURN_ERR_IF(!pi0_rtc_schedule_name(q.schedule), &p->err, PI0_ERR_INPUT,
                  "rtc schedule %d is none of ZEROS (0), ONES (1), LINEAR (2), EXP (3)", q.schedule);
    RETURN_ERR_IF(q.execution_horizon < 1, &p->err, PI0_ERR_INPUT, "rtc execution_horizon = %d (must be >= 1)",
                  q.execution_horizon);
    RETURN_ERR_IF(!(q.max_guidance_weight > 0) || !isfinite(q.max_guidance_weight), &p->err, PI0_ERR_INPUT,
                  "rtc max_guidance_weight = %g (must be positive and finite)", (double)q.max_guidance_weight);
    RETURN_ERR_IF(q.inference_delay < 0 || q.inference_delay > H, &p->err, PI0_ERR_INPUT,
                  "rtc inference_delay = %d (0..%d: the chunk's rows)", q.inference_delay, H);
    RETURN_ERR_IF(q.jacobian != PI0_RTC_JACOBIAN_LEROBOT && q.jacobian != PI0_RTC_JACOBIAN_EXACT, &p->err,
                  PI0_ERR_INPUT, "rtc jacobian = %d is neither lerobot (0) nor exact (1)", q.jacobian);
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

/* The noise of this call into p->last: given, a fixed seed, or fresh on every call (openpi
 * splits its rng per call). */
static void take_noise(pi0_policy *p) {
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

/* One call: the pipeline's inputs, the model, the pipeline's outputs into p->actions
 * [H, out_dims] (double); then the caller's buffer of cap elements: float (f64 0) or double. */
static pi0_status infer(pi0_policy *p, void *actions, int f64, size_t cap, int *rows, int *dims) {
    if (!p) return PI0_ERR_ARG;
    RETURN_ERR_IF(!p->loaded, &p->err, PI0_ERR_ARG, "policy is not loaded");
    RETURN_ERR_IF(!rows || !dims, &p->err, PI0_ERR_ARG, "rows / dims is NULL");
    if (p->consumed) entries_clear(p); /* an infer with nothing given since the last one */
    p->err.msg[0] = 0;
    p->warning[0] = 0;
    p->have_raw = 0;
    p->have_last = 0;
    memset(&p->timing, 0, sizeof p->timing);
    const pi0_config *c = pi0_model_config(p->model);
    const int H = c->action_horizon, D = p->out_dims;
    const size_t HD = (size_t)H * D;
    const double t0 = now_ms();
    pi0_status st = p->pl->inputs(p);
    if (st == PI0_OK) take_noise(p);
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
        rtc.jacobian = p->rtc.jacobian;
        /* a checkpoint trained with RTC conditions on the frozen prefix instead of being guided */
        rtc.mode = pi0_model_config(p->model)->rtc_training_max_delay > 0 ? PI0_RTC_TRAINED : PI0_RTC_GUIDED;
        p->last_rtc = p->rtc;
    }
    if (st == PI0_OK && (st = pi0_session_infer_rtc(p->sess, &p->last, &rtc, p->raw)) != PI0_OK)
        pi0_fail(&p->err, st, "%s", pi0_session_error(p->sess));
    const double t2 = now_ms();
    if (st == PI0_OK) {
        p->have_raw = 1;
        st = p->pl->outputs(p, p->actions);
    }
    if (st == PI0_OK && (!actions || cap < HD))
        st = pi0_fail(&p->err, PI0_ERR_ARG, "actions buffer holds %zu %s; the chunk has %d x %d", cap,
                      f64 ? "doubles" : "floats", H, D);
    if (st == PI0_OK) {
        if (f64) memcpy(actions, p->actions, HD * sizeof *p->actions);
        else
            for (size_t i = 0; i < HD; i++) ((float *)actions)[i] = (float)p->actions[i];
        *rows = H;
        *dims = D;
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

pi0_status pi0_policy_infer(pi0_policy *p, float *actions, size_t cap, int *rows, int *dims) {
    return infer(p, actions, 0, cap, rows, dims);
}

pi0_status pi0_policy_infer_f64(pi0_policy *p, double *actions, size_t cap, int *rows, int *dims) {
    return infer(p, actions, 1, cap, rows, dims);
}

pi0_status pi0_policy_relative_action(pi0_policy *p, int row, const double *state, int n, float *out, size_t cap) {
    if (!p) return PI0_ERR_ARG;
    RETURN_ERR_IF(!p->loaded, &p->err, PI0_ERR_ARG, "policy is not loaded");
    RETURN_ERR_IF(!p->pl->relative_action, &p->err, PI0_ERR_UNSUPPORTED,
                  "per-step relative actions are lerobot's; openpi's delta configs add the chunk's own state");
    const pi0_config *c = pi0_model_config(p->model);
    RETURN_ERR_IF(!p->have_raw, &p->err, PI0_ERR_ARG, "no action chunk yet (call pi0_policy_infer first)");
    RETURN_ERR_IF(row < 0 || row >= c->action_horizon, &p->err, PI0_ERR_ARG, "row %d: the chunk has rows 0..%d", row,
                  c->action_horizon - 1);
    RETURN_ERR_IF(!out || cap < (size_t)p->out_dims, &p->err, PI0_ERR_ARG, "out holds %zu floats; an action has %d", cap,
                  p->out_dims);
    double a[MAX_STATE];
    FORWARD_ERR(p->pl->relative_action(p, row, state, n, a));
    for (int d = 0; d < p->out_dims; d++) out[d] = (float)a[d];
    return PI0_OK;
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
