/*
 * pi0.h — public API of pi0.c, a C inference engine for Physical Intelligence's
 * π0 vision-language-action model (openpi semantics, lerobot/openpi PyTorch checkpoints).
 *
 * Usage:
 *
 *     pi0_model *m = pi0_model_create();
 *     if (pi0_model_load(m, "path/to/checkpoint_dir") != PI0_OK)
 *         fprintf(stderr, "%s\n", pi0_model_error(m));
 *     pi0_params p = pi0_default_params();
 *     pi0_session *s = pi0_session_create();
 *     if (pi0_session_init(s, m, &p) != PI0_OK) ... pi0_session_error(s) ...
 *     pi0_inputs in = {.batch = 1, .num_cameras = 3, .images = ..., ...};
 *     float actions[50 * 32];
 *     if (pi0_session_infer(s, &in, actions) != PI0_OK) ... pi0_session_error(s) ...
 *     pi0_session_free(s);
 *     pi0_model_free(m);
 *
 * The library never prints and never exits: every call returns a status and the handle keeps
 * a one-line message naming the file / tensor / field at fault. Free functions accept NULL.
 * A model is read-only after load and may be shared by several sessions; a session is used by
 * one thread at a time.
 */
#ifndef PI0_H
#define PI0_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Everything declared here is the library's interface: exported from libpi0.so, which is built
 * with -fvisibility=hidden so that nothing else is. */
#if defined(__GNUC__)
#pragma GCC visibility push(default)
#endif

typedef enum {
    PI0_OK = 0,
    PI0_ERR_ARG,        /* invalid argument from the caller                     */
    PI0_ERR_IO,         /* file missing / unreadable / unwritable               */
    PI0_ERR_FORMAT,     /* malformed file (safetensors header, JSON, ...)       */
    PI0_ERR_CONFIG,     /* config.json missing a field or holding a bad value   */
    PI0_ERR_TENSOR,     /* a tensor is missing, or has the wrong shape / dtype  */
    PI0_ERR_INPUT,      /* bad observation (lengths, masks, token ids, ...)     */
    PI0_ERR_NOMEM,      /* allocation failed                                    */
    PI0_ERR_UNSUPPORTED,/* feature or backend not available in this build       */
    PI0_ERR_DEVICE      /* the accelerator failed (CUDA error, no GPU)            */
} pi0_status;

/* Short constant name of a status ("ok", "io error", ...). */
const char *pi0_status_str(pi0_status s);

/* ---- configuration (read from config.json; see ../shared/spec/pi0.md §1) ---- */
typedef struct {
    int width, depth, mlp_dim, num_heads, num_kv_heads, head_dim;
    int vocab_size;     /* vlm only; 0 for the expert */
    float norm_eps;
    double rope_theta;
} pi0_gemma_config;

typedef struct {
    int image_size, patch_size, width, depth, mlp_dim, num_heads;
    float norm_eps;
} pi0_siglip_config;

typedef struct {
    int pi05;             /* 0: π0; 1: π0.5 (state as text in the prompt, adaRMS expert; spec §6) */
    int discrete_state_input; /* π0.5: the prompt carries the discretized state (openpi default) */
    pi0_siglip_config vision;
    pi0_gemma_config vlm, expert;
    int action_dim;       /* A: width of actions and of the (padded) state      */
    int state_dim;        /* input width of state_proj (== action_dim for pi0; π0.5 has none) */
    int action_horizon;   /* H: actions per chunk                              */
    int max_token_len;    /* prompt tokens incl. padding                       */
    int num_steps;        /* Euler steps                                       */
    int num_cameras;      /* cameras the prefix has room for                   */
    double time_min_period, time_max_period;
    int random_weights;   /* config.json says "random_weights": true (pi0 gen-model) */
    int text_embed_bf16;  /* a lerobot checkpoint with "dtype": "bfloat16": token embeddings are
                             scaled by sqrt(vlm width) rounded to bf16, as lerobot computes it
                             (45.25 for width 2048), not by the float32 sqrt */
    int rtc_training_max_delay; /* trained with real-time chunking (lerobot config field, 0: not):
                             the largest frozen prefix it conditions on, 0 <= d < action_horizon */
} pi0_config;

/* The flow time of Euler step k (of n, dt = −1/n), fed to the sinusoidal embedding in double:
 *  EXACT   1 − k/n in double (the spec's advice: openpi's semantics without float32 drift);
 *  F32     float32(1 + k·dt), computed in double, rounded once (lerobot ≥ v0.4.3);
 *  F32_SUM t ← float32(t + float32(dt)) from 1 (openpi's own float32 loop, lerobot ≤ v0.4.2, v1). */
enum { PI0_FLOW_TIME_EXACT = 0, PI0_FLOW_TIME_F32 = 1, PI0_FLOW_TIME_F32_SUM = 2 };
double pi0_flow_time(int schedule, int k, int n);

/* Image tokens per camera: (image_size / patch_size)^2. */
int pi0_config_image_tokens(const pi0_config *c);

/* ---- model: weights + config, read-only after load ---- */
typedef struct pi0_model pi0_model;

pi0_model *pi0_model_create(void);            /* NULL only when out of memory */
void pi0_model_free(pi0_model *m);
/* Load `path`: a directory holding config.json and model.safetensors, or a .safetensors file
 * with config.json beside it. Every tensor is checked for presence, dtype and shape. */
pi0_status pi0_model_load(pi0_model *m, const char *path);
const char *pi0_model_error(const pi0_model *m);
const pi0_config *pi0_model_config(const pi0_model *m);  /* NULL before a successful load */

/* ---- session: activation buffers, KV cache, backend choice ---- */
typedef struct pi0_session pi0_session;

/* Called for every named intermediate when set (see golden/README.md for names). Rows of a
 * prefix tensor that belong to padding are zero. `data` is valid during the call only. */
typedef void (*pi0_dump_fn)(void *user, const char *name, const float *data, int ndim,
                            const int64_t *shape);
/* Like pi0_dump_fn, but the callback may overwrite the tensor in place; the forward pass then
 * continues from the new values (used by `pi0 check` to give every component the reference
 * backend's inputs). Prefix tensors are in the full layout, as dumped. */
typedef void (*pi0_inject_fn)(void *user, const char *name, float *data, int ndim, const int64_t *shape);

typedef struct {
    const char *backend;   /* "cuda", "fast" or "ref" (float32 oracle); NULL = the best
                              available: cuda with a GPU, else fast, else ref          */
    int num_threads;       /* 0 = all cores, else 1..1024                            */
    int compact_prefix;    /* 1 (default): drop masked cameras and padded tokens from
                              the prefix before the transformer (exactly equivalent);
                              0: run openpi's full padded layout                      */
    pi0_dump_fn dump;      /* optional intermediate-tensor callback (batch item 0)    */
    void *dump_user;
    pi0_inject_fn inject;  /* optional: replace intermediates in flight (batch item 0) */
    void *inject_user;
    int flow_time;         /* PI0_FLOW_TIME_* (default EXACT; lerobot checkpoints: F32)     */
} pi0_params;

pi0_params pi0_default_params(void);

/* The backends in this build, comma-separated (e.g. "cuda, fast, ref"), and the one a NULL
 * params.backend picks on this machine (cuda when a GPU is present, else fast, else ref). */
const char *pi0_backends_available(void);
const char *pi0_backend_default_name(void);

/* One observation batch. All arrays are row-major float32 / uint8 / int32, batch first. */
typedef struct {
    int batch;                 /* B >= 1                                                 */
    int num_cameras;           /* cameras given, in the order base_0_rgb, left_wrist_0_rgb,
                                  right_wrist_0_rgb; cameras past this count are absent   */
    const float *images;       /* [B, num_cameras, 3, S, S], values in [-1, 1]           */
    const uint8_t *image_masks;/* [B, num_cameras]; NULL = all valid                     */
    const int32_t *tokens;     /* [B, max_token_len]                                     */
    const uint8_t *token_mask; /* [B, max_token_len]                                     */
    const float *state;        /* [B, state_dim], already normalized and padded          */
    const float *noise;        /* [B, H, A] or NULL: then drawn from `seed` (pi0_gaussian) */
    uint64_t seed;
} pi0_inputs;

typedef struct {
    double vision_ms, prefix_ms, denoise_ms, total_ms;
} pi0_timing;

pi0_session *pi0_session_create(void);        /* NULL only when out of memory */
void pi0_session_free(pi0_session *s);
/* Bind to a loaded model (which must outlive the session); params NULL = defaults. */
pi0_status pi0_session_init(pi0_session *s, const pi0_model *m, const pi0_params *params);
/* Run the policy: writes actions [B, H, A] (normalized action space, all A dims). */
pi0_status pi0_session_infer(pi0_session *s, const pi0_inputs *in, float *actions);
const char *pi0_session_error(const pi0_session *s);
const char *pi0_session_backend(const pi0_session *s);
pi0_timing pi0_session_timing(const pi0_session *s); /* of the last infer call */
/* What the backend chose, e.g. "fast: bf16 (AVX512-BF16, oneDNN)" or "ref: float32 reference". */
const char *pi0_session_backend_info(const pi0_session *s);

/* ---- real-time chunking (RTC): guided inference, as lerobot computes it ----
 *
 * While a robot executes the previous chunk, the next one is computed; the first
 * `inference_delay` actions of the new chunk will be executed before it arrives. Guided RTC
 * (Black, Galliker, Levine 2025; lerobot's policies/rtc/modeling_rtc.py) pulls the new chunk's
 * prediction towards the previous chunk's leftover at every Euler step, with per-row prefix
 * weights: 1 on the first d rows, a ramp (LINEAR / EXP) down to 0 at execution_horizon, 0 after.
 * At step k (lerobot's time τ = 1 − time, time = 1 + k·dt, dt = −1/n):
 *     x1  = x_t − time·v_t                       (the predicted clean chunk)
 *     err = (prev − x1) ⊙ w                      (prev and w zero-padded to [H, A])
 *     v_t ← v_t − min(g(τ), max_guidance_weight)·J(err),
 *     g(τ) = (1−τ)/τ · ((1−τ)² + τ²)/(1−τ)²       (∞ → max_guidance_weight, as torch.nan_to_num)
 * J is lerobot's Jacobian: lerobot takes v_t before it enables gradients on x_t, so its autograd
 * graph holds only x1 = x_t − time·v_t and the vector-Jacobian product is err itself (the
 * identity). PI0_RTC_JACOBIAN_LEROBOT is that form. PI0_RTC_JACOBIAN_EXACT is the paper's
 * Algorithm 1: x_t requires gradients before v_t is computed, so
 *     J(err) = err − time·(∂v_t/∂x_t)ᵀ·err,
 * the vector-Jacobian product through the action expert (suffix pass) with the prefix K/V cache
 * held fixed, by the backends' backward ops (one backward pass per Euler step; guided mode only,
 * backends ref, fast and those with backward ops). */
typedef enum { PI0_RTC_ZEROS = 0, PI0_RTC_ONES = 1, PI0_RTC_LINEAR = 2, PI0_RTC_EXP = 3 } pi0_rtc_schedule;
enum { PI0_RTC_JACOBIAN_LEROBOT = 0, PI0_RTC_JACOBIAN_EXACT = 1 };
/* GUIDED: the guidance above. TRAINED (training-time RTC, arXiv 2512.05964; checkpoints with
 * rtc_training_max_delay): no guidance; the first inference_delay rows of x_t are overwritten
 * with the leftover's at every step (and at the end: they are returned exactly) and are given the
 * clean flow time 0 per token (π0: in the action-time MLP of those rows; π0.5: their own adaRMS
 * modulations), the others the step's time. d <= rtc_training_max_delay, d <= prev_rows. */
enum { PI0_RTC_GUIDED = 0, PI0_RTC_TRAINED = 1 };

typedef struct {
    const float *prev;        /* [B, prev_rows, prev_dims] the previous chunk's leftover (its rows not
                                 yet executed when this inference starts), in the model's normalized
                                 action space; zero-padded to [H, A] as lerobot pads it. NULL: no
                                 guidance (plain inference, as lerobot without a leftover)        */
    int prev_rows;            /* 1..H                                                              */
    int prev_dims;            /* 1..A (lerobot passes its native action dims: the rest are 0)      */
    int inference_delay;      /* d, 0..H: rows executed while this chunk is computed (weight 1)    */
    int execution_horizon;    /* >= 1; lerobot clamps it to prev_rows (default 10)                 */
    int schedule;             /* pi0_rtc_schedule (default LINEAR, lerobot's RTCConfig)            */
    float max_guidance_weight;/* > 0 (default 10)                                                  */
    int jacobian;             /* PI0_RTC_JACOBIAN_* (default LEROBOT)                              */
    int mode;                 /* PI0_RTC_GUIDED (default) or PI0_RTC_TRAINED                        */
} pi0_rtc;

/* lerobot's RTCConfig defaults, no leftover (prev NULL). */
pi0_rtc pi0_rtc_default(void);
/* "ZEROS", "ONES", "LINEAR", "EXP" (lerobot's RTCAttentionSchedule); -1 / NULL when unknown. */
int pi0_rtc_schedule_from_name(const char *name);
const char *pi0_rtc_schedule_name(int schedule);
/* "lerobot", "exact": PI0_RTC_JACOBIAN_*; -1 when unknown. */
int pi0_rtc_jacobian_from_name(const char *name);
/* lerobot's get_prefix_weights(min(delay, horizon), horizon, total) for a schedule: w[total]. */
pi0_status pi0_rtc_prefix_weights(int schedule, int delay, int horizon, int total, float *w);
/* lerobot's guidance weight min(g(τ), max) at Euler step k of n (float32, as torch computes it). */
float pi0_rtc_guidance_weight(int k, int n, float max_guidance_weight);
/* pi0_session_infer with RTC guidance (rtc NULL or rtc->prev NULL: exactly pi0_session_infer). */
pi0_status pi0_session_infer_rtc(pi0_session *s, const pi0_inputs *in, const pi0_rtc *rtc, float *actions);

/* Coverage of the last infer call, measured while it ran: one row per (component, op, executing
 * backend) with calls, FLOPs, time and, for the "upload" / "download" rows, the bytes moved
 * between host and backend memory. backend is the session's backend, or "ref" for ops the
 * session's backend declined (fallbacks). */
typedef struct {
    const char *component;   /* "vision", "prefix", "suffix" */
    const char *op;          /* "matmul", "attention", "rmsnorm", ..., "upload", "download" */
    const char *backend;
    int fallback;            /* 1 when ref ran it in place of the session's backend */
    long calls;
    double flops, ms, bytes;
} pi0_op_report;
/* Writes up to cap rows; returns the number of rows available. */
int pi0_session_op_report(const pi0_session *s, pi0_op_report *out, int cap);

/* For a GPU session: the device's ceilings measured now (a large bf16 GEMM, a large
 * device-to-device copy counting bytes read and written) and its memory in use.
 * PI0_ERR_UNSUPPORTED for the CPU backends. */
typedef struct {
    double gemm_tflops, copy_gb_per_s, mem_used_gb, mem_total_gb;
} pi0_device_ceilings;
pi0_status pi0_session_measure_device(pi0_session *s, pi0_device_ceilings *out);

/* ---- tokenizer: PaliGemma SentencePiece BPE with byte fallback ---- */
typedef struct pi0_tokenizer pi0_tokenizer;

pi0_tokenizer *pi0_tokenizer_create(void);
void pi0_tokenizer_free(pi0_tokenizer *t);
/* A Hugging Face tokenizer.json, or a SentencePiece tokenizer.model (BPE). */
pi0_status pi0_tokenizer_load(pi0_tokenizer *t, const char *path);
const char *pi0_tokenizer_error(const pi0_tokenizer *t);
int pi0_tokenizer_vocab_size(const pi0_tokenizer *t);
/* Encodes text (no BOS). Writes up to cap ids; *n_ids is the full count (may exceed cap). */
pi0_status pi0_tokenizer_encode(pi0_tokenizer *t, const char *text, int32_t *ids, int cap, int *n_ids);
/* Decodes ids to UTF-8 (control pieces skipped), NUL-terminated; *len excludes the NUL. */
pi0_status pi0_tokenizer_decode(pi0_tokenizer *t, const int32_t *ids, int n, char *out, size_t cap,
                                size_t *len);
/* openpi's prompt format: strip, '_' and '\n' → ' ', [bos] + encode(text) + encode("\n"),
 * right-padded with 0 to max_len with mask 1 on real tokens. If the prompt needs more than
 * max_len tokens it is truncated (as openpi does) and *truncated_from is the full length
 * (else 0): callers should warn. */
pi0_status pi0_tokenize_prompt(pi0_tokenizer *t, const char *prompt, int max_len, int32_t *tokens,
                               uint8_t *mask, int *n_valid, int *truncated_from);

/* Id of <bos>, or -1 when the vocabulary has none. */
int pi0_tokenizer_bos(const pi0_tokenizer *t);

/* π0.5's prompt (spec §6.3, openpi with discrete_state_input): the normalized state, at the
 * robot's native length n, discretized into 256 bins (pi0_discretize_state) and written into
 *     "Task: " + prompt.strip() with '_' / '
' → ' ' + ", State: " + "d1 d2 ..." + ";
Action: "
 * tokens = [bos] + encode(that text), right-padded with 0 to max_len, truncated as
 * pi0_tokenize_prompt. A NaN in the state is refused (PI0_ERR_INPUT; the caller names it). */
pi0_status pi0_tokenize_prompt_pi05(pi0_tokenizer *t, const char *prompt, const float *state, int n,
                                    int max_len, int32_t *tokens, uint8_t *mask, int *n_valid,
                                    int *truncated_from);
/* The text itself, malloc'd into *text (free it). */
pi0_status pi0_prompt_text_pi05(const char *prompt, const float *state, int n, char **text);
/* lerobot's π0 prompt (lerobot.md §6): the raw task + "\n" (not added when it already ends in
 * "\n"), no strip, no '_' replacement; malloc'd into *text. */
pi0_status pi0_prompt_text_lerobot_pi0(const char *task, char **text);
/* [bos] + encode(text) in one call, right-padded with 0 to max_len (mask 1 on real tokens),
 * truncated to max_len with *truncated_from = the full length (else 0). */
pi0_status pi0_tokenize_text(pi0_tokenizer *t, const char *text, int max_len, int32_t *tokens, uint8_t *mask,
                             int *n_valid, int *truncated_from);
/* openpi's bin of a normalized state value: np.digitize(s, linspace(-1, 1, 257)[:-1]) - 1, i.e.
 * -1 below -1, 255 at and above 0.9921875 (and +inf); edges compared exactly. */
int pi0_discretize_state(float s);

/* ---- normalization statistics (openpi norm_stats.json) ---- */
typedef struct pi0_norm_stats pi0_norm_stats;

pi0_norm_stats *pi0_norm_stats_create(void);
void pi0_norm_stats_free(pi0_norm_stats *ns);
/* quantile = 0: z-score (π0); 1: quantile (π0.5). */
pi0_status pi0_norm_stats_load(pi0_norm_stats *ns, const char *path, int quantile);
const char *pi0_norm_stats_error(const pi0_norm_stats *ns);
int pi0_norm_stats_dim(const pi0_norm_stats *ns, int actions); /* length of state / action stats */
void pi0_norm_stats_normalize_state(const pi0_norm_stats *ns, float *state, int n);
/* In place on actions [rows, dim]; only the leading dims the stats cover change. */
void pi0_norm_stats_unnormalize_actions(const pi0_norm_stats *ns, float *actions, int rows, int dim);

/* ---- observation builder: raw images, prompt and robot state → pi0_inputs ---- */
typedef struct pi0_obs pi0_obs;

/* Camera slots in prefix order: 0 base_0_rgb, 1 left_wrist_0_rgb, 2 right_wrist_0_rgb. */
int pi0_camera_index(const char *name);        /* -1 if unknown */
const char *pi0_camera_name(int index);

pi0_obs *pi0_obs_create(void);
void pi0_obs_free(pi0_obs *o);
pi0_status pi0_obs_init(pi0_obs *o, const pi0_model *m); /* every camera black and masked */
void pi0_obs_clear(pi0_obs *o);                          /* back to that empty state */
/* Decodes (PNG, JPEG, ...; gray / RGB / RGBA), resize_with_pad as openpi (PIL bilinear),
 * scales to [-1, 1], and marks the camera valid. */
pi0_status pi0_obs_set_image_file(pi0_obs *o, const char *camera, const char *path);
/* The same from a raw uint8 buffer, HWC (chw = 0) or CHW (chw = 1), 1/3/4 channels. */
pi0_status pi0_obs_set_image_u8(pi0_obs *o, const char *camera, const uint8_t *data, int width,
                                int height, int channels, int chw);
/* π0: tokenized now (openpi's format). π0.5 with discrete_state_input: kept, and tokenized with
 * the normalized state by pi0_obs_inputs (the tokenizer must outlive that call). */
pi0_status pi0_obs_set_prompt(pi0_obs *o, pi0_tokenizer *t, const char *prompt);
/* Robot state (n values, 1..state_dim, the robot's own length), normalized with ns (may be
 * NULL; π0.5 models take quantile stats), zero-padded. */
pi0_status pi0_obs_set_state(pi0_obs *o, const float *state, int n, const pi0_norm_stats *ns);
/* The ready inputs (batch 1, noise NULL); NULL when the prompt or state is missing or the π0.5
 * prompt cannot be built (see pi0_obs_error). Valid until the next call on o. */
const pi0_inputs *pi0_obs_inputs(pi0_obs *o);
const char *pi0_obs_error(const pi0_obs *o);
const char *pi0_obs_warning(const pi0_obs *o);  /* e.g. prompt truncated; NULL if none */

/* ---- policy: openpi's policy by config name ----
 *
 * What openpi's create_trained_policy(get_config(NAME), DIR) builds, in one handle: the model,
 * the tokenizer, the norm stats of the config's asset id and the config's transforms, so that an
 * observation given by openpi's keys comes back as the action chunk openpi returns:
 *   inputs:  the robot's Inputs (camera keys → π0 image slots, state assembly, ALOHA's
 *            adapt_to_pi) → Normalize → prompt, image resize, tokenization, padding → model
 *   outputs: Unnormalize → AbsoluteActions (delta configs: + the state on the masked dims) →
 *            the robot's Outputs (ALOHA's adapt_to_pi inverse, slice to the robot's dims).
 * Used by `pi0 serve`, `pi0 infer` and the Python binding (python/pi0). One thread at a time.
 *
 *     pi0_policy *p = pi0_policy_create();
 *     pi0_policy_params pp = pi0_policy_default_params();
 *     pp.config = "pi0_libero";
 *     if (pi0_policy_load(p, "checkpoint_dir", &pp) != PI0_OK) ... pi0_policy_error(p) ...
 *     pi0_policy_obs_image_u8(p, "observation/image", rgb, w, h, 3, 0);
 *     pi0_policy_obs_image_u8(p, "observation/wrist_image", wrist, w2, h2, 3, 0);
 *     pi0_policy_obs_numbers(p, "observation/state", state, 8);
 *     pi0_policy_obs_text(p, "prompt", "pick up the bowl");
 *     pi0_policy_infer(p, actions, cap, &rows, &dims);   (actions: rows x dims floats) */
typedef struct pi0_policy pi0_policy;

typedef struct {
    const char *config;         /* openpi config name (pi0_libero, pi05_droid, pi0_aloha, ...) or a
                                   pi0.c preset (libero, droid, aloha, generic); NULL = "generic" */
    const char *norm_stats;     /* norm_stats.json path; NULL: DIR/assets/<asset id>/norm_stats.json
                                   for openpi configs (then DIR/norm_stats.json); for presets
                                   DIR/norm_stats.json, else the only DIR/assets/x/norm_stats.json,
                                   else none (state and actions in normalized space)          */
    const char *tokenizer;      /* NULL: DIR/tokenizer.json, tokenizer.model,
                                   paligemma_tokenizer.model, else $PI0_TOKENIZER               */
    const char *default_prompt; /* for observations without "prompt"; NULL = the config's      */
    int action_dims;            /* 0 = the config's (its robot's, else the norm stats', else all) */
    int adapt_to_pi;            /* -1 = the config's; 0 / 1 for ALOHA configs                  */
    int fixed_seed;             /* 0 (default): fresh noise on every call, as openpi draws it;
                                   1: the noise of `seed` on every call (reproducible)          */
    uint64_t seed;
    const char *pipeline;       /* pre/postprocessing: NULL or "auto" = from the checkpoint's files
                                   (lerobot's when it has policy_preprocessor.json or lerobot v1
                                   markers, else openpi's), "openpi" or "lerobot"                */
    const char *lerobot_version;/* lerobot layout: NULL = detected (processor files: "current"),
                                   "current" (v0.5+), "v0.4" (v0.4.x: pad -1, state padded to 32
                                   in the π0.5 prompt) or "v1" (<= v0.3.3)                       */
    pi0_params model;           /* backend, threads, ...                                       */
} pi0_policy_params;

pi0_policy_params pi0_policy_default_params(void);
/* sizeof(pi0_policy_params) in this build, for language bindings to check their copy of it. */
size_t pi0_policy_params_size(void);

/* The configs this build knows (openpi names and pi0.c presets), for listing; i in [0, count). */
int pi0_policy_config_count(void);
const char *pi0_policy_config_name(int i);

/* The pipeline a checkpoint directory calls for, from its files (as pi0_policy_load with
 * pipeline NULL decides): "openpi", "lerobot (current)" or "lerobot (v1)". */
const char *pi0_checkpoint_pipeline(const char *model_dir);

/* ---- checking before loading ----
 *
 * Loading reads every weight (seconds for a small model, minutes for a 6.5 GB checkpoint);
 * pi0_policy_check answers at once what the load, or the first observation, would refuse, from
 * the parameters and the checkpoint's small files (config.json, norm stats, lerobot's processor
 * files), without the weights: the model directory, the backend (built in; cuda: a GPU present),
 * the config name, the pipeline, the norm stats file (found, readable, its state length) and the
 * tokenizer file; with a plan, also the observation: each camera key (short forms as
 * pi0_policy_image_key; given once) and its file (decoded), the required cameras, the state
 * length (against the norm stats, the config's robot and config.json) and the prompt (given, or
 * a default prompt: params->default_prompt or the config's). It loads nothing into p; the message
 * is in pi0_policy_error(p) and is the one the load or infer call would give. A pass does not
 * promise the load succeeds (the weights are not read).
 *
 * Messages of pi0_policy_check, pi0_policy_load and pi0_policy_infer name a parameter in keyword
 * form, its pi0_policy_params field: "norm_stats=FILE", "tokenizer=FILE", "default_prompt=TEXT",
 * "config=NAME", "pipeline=NAME", "backend=NAME" (the Python binding's keywords; the pi0 command
 * shows its own flags instead). */
typedef struct {
    const char *const *image_keys;  /* the camera keys each observation carries, n_images of them */
    const char *const *image_files; /* NULL, or per key a file to decode (NULL entries: not checked) */
    int n_images;                   /* 0..32 */
    int state_len;                  /* values of the whole state (pi0_policy_obs_state); 0: not checked */
    int prompt;                     /* 1: a prompt is given; 0: none (a default prompt must exist);
                                       -1: not checked */
} pi0_policy_plan;

/* plan NULL: only the parameters and files. */
pi0_status pi0_policy_check(pi0_policy *p, const char *model_dir, const pi0_policy_params *params,
                            const pi0_policy_plan *plan);

/* The one rule for camera keys, as `pi0 infer --image` and the Python binding take them: key
 * itself when it is a camera of p's loaded config, else "observation.images." + key (lerobot),
 * else "images/" + key (openpi: base_0_rgb → images/base_0_rgb); else key unchanged. The result
 * is key or buf (cap bytes). */
const char *pi0_policy_image_key(const pi0_policy *p, const char *key, char *buf, size_t cap);

/* The library's version ("0.1.0") and the git commit it was built from ("unknown" outside git). */
const char *pi0_version(void);
const char *pi0_git_commit(void);

pi0_policy *pi0_policy_create(void);            /* NULL only when out of memory */
void pi0_policy_free(pi0_policy *p);
/* Loads the checkpoint directory model_dir for params->config (NULL params = defaults). An
 * openpi pi0-FAST config, an unknown name, or a checkpoint of the other model kind (π0 vs π0.5)
 * is refused with a message naming both. The config's model settings that openpi takes from the
 * config and not from the checkpoint (action_horizon, max_token_len, discrete_state_input)
 * replace config.json's, with a warning when they differ. */
pi0_status pi0_policy_load(pi0_policy *p, const char *model_dir, const pi0_policy_params *params);
const char *pi0_policy_error(const pi0_policy *p);
const char *pi0_policy_warning(const pi0_policy *p);   /* NULL if none; replaced by each call */

const char *pi0_policy_config_resolved(const pi0_policy *p);  /* the loaded config's name  */
/* The pipeline that runs: "openpi", "lerobot (current)", "lerobot (v0.4)" or "lerobot (v1)". */
const char *pi0_policy_pipeline(const pi0_policy *p);
const char *pi0_policy_norm_stats_path(const pi0_policy *p); /* NULL: none (normalized space) */
const char *pi0_policy_tokenizer_path(const pi0_policy *p);
const pi0_config *pi0_policy_model_config(const pi0_policy *p);
int pi0_policy_action_dims(const pi0_policy *p);  /* dims of each returned action (rows: action_horizon) */
const char *pi0_policy_backend_info(const pi0_policy *p);
/* What openpi's server sends on connect (the config's policy_metadata, e.g. "reset_pose" for
 * openpi's ALOHA configs) plus pi0.c's description of the policy, as one JSON object. */
const char *pi0_policy_metadata_json(const pi0_policy *p);

/* Observation entries, by openpi key; nested maps are addressed with '/' ("images/cam_high").
 * What a key is to the loaded config: */
enum {
    PI0_KEY_REFUSED = -1, /* openpi raises on it (an unknown camera under "images/"); see error */
    PI0_KEY_IGNORED = 0,  /* not read by the config's transforms (as openpi ignores it) */
    PI0_KEY_IMAGE = 1,    /* a camera: pi0_policy_obs_image_* */
    PI0_KEY_NUMBERS = 2,  /* a state part: pi0_policy_obs_numbers */
    PI0_KEY_TEXT = 3      /* the prompt: pi0_policy_obs_text */
};
int pi0_policy_key_kind(pi0_policy *p, const char *key);
/* Forgets every entry (pi0_policy_infer also does, when it returns). */
void pi0_policy_obs_clear(pi0_policy *p);
/* A camera frame: uint8 HWC (chw = 0) or CHW (chw = 1) with 1, 3 or 4 channels; float images in
 * [0, 1] become uint8 as openpi's _parse_image does ((255·x) truncated; NaN / inf refused). */
pi0_status pi0_policy_obs_image_u8(pi0_policy *p, const char *key, const uint8_t *data, int width, int height,
                                   int channels, int chw);
pi0_status pi0_policy_obs_image_f32(pi0_policy *p, const char *key, const float *data, int width, int height,
                                    int channels, int chw);
pi0_status pi0_policy_obs_image_f64(pi0_policy *p, const char *key, const double *data, int width, int height,
                                    int channels, int chw);
pi0_status pi0_policy_obs_image_file(pi0_policy *p, const char *key, const char *path); /* PNG/JPEG/BMP */
/* A numeric entry (a state part), n values. */
pi0_status pi0_policy_obs_numbers(pi0_policy *p, const char *key, const double *values, int n);
/* The whole robot state as the config's robot Inputs assemble it (DROID: the joint positions,
 * then the gripper), in place of the config's state keys. */
pi0_status pi0_policy_obs_state(pi0_policy *p, const double *values, int n);
pi0_status pi0_policy_obs_text(pi0_policy *p, const char *key, const char *text);
/* Noise [action_horizon, action_dim] for the next call, as openpi's infer(obs, noise=...). */
pi0_status pi0_policy_obs_noise(pi0_policy *p, const float *noise, int rows, int dims);

/* Real-time chunking for the next pi0_policy_infer call (an entry of the observation, cleared
 * with it; see pi0_rtc). The leftover is a chunk in the model's normalized space, as
 * pi0_policy_raw_actions gives it, from row `executed` on: by default the chunk this policy last
 * returned. lerobot's pipeline passes its native action dims of it (the model zero-pads the
 * rest, as lerobot's predict_action_chunk output is), openpi's all of them. Fields left at their
 * defaults take the checkpoint's rtc_config (lerobot), else lerobot's RTCConfig defaults.
 * Without this entry, or with executed < 0, the call is a plain one, bit for bit. */
typedef struct {
    int executed;             /* rows of that chunk executed (or skipped) since it was returned,
                                 0..rows-1; -1 (default): no guidance                           */
    int inference_delay;      /* d: rows of the new chunk executed before it arrives (0..H)    */
    int execution_horizon;    /* 0 (default): the checkpoint's, else 10                        */
    int schedule;             /* pi0_rtc_schedule; -1 (default): the checkpoint's, else LINEAR */
    float max_guidance_weight;/* 0 (default): the checkpoint's, else 10                        */
    const float *chunk;       /* NULL (default): the policy's last chunk; else a chunk
                                 [chunk_rows, action_dim] from pi0_policy_raw_actions (a server
                                 keeps one per connection)                                     */
    int chunk_rows;
    int jacobian;             /* PI0_RTC_JACOBIAN_LEROBOT (default) or PI0_RTC_JACOBIAN_EXACT (the
                                 VJP through the action expert; see pi0_rtc)                   */
} pi0_policy_rtc;
pi0_policy_rtc pi0_policy_rtc_default(void);
pi0_status pi0_policy_obs_rtc(pi0_policy *p, const pi0_policy_rtc *r);
/* The request the last pi0_policy_infer call ran with, defaults resolved (executed -1: none). */
pi0_policy_rtc pi0_policy_last_rtc(const pi0_policy *p);

/* Runs the policy on the entries given since the last call: writes the post-processed action
 * chunk (rows = action_horizon, dims = the robot's action dims), row-major, into actions
 * (cap floats). A missing required key is refused naming it. The entries are cleared. */
pi0_status pi0_policy_infer(pi0_policy *p, float *actions, size_t cap, int *rows, int *dims);
/* As pi0_policy_infer, with the actions in double (cap doubles): the values openpi's server sends.
 * openpi's output transforms run in float64 (its norm stats are float64, so Unnormalize promotes
 * the model's float32 output; AbsoluteActions and AlohaOutputs follow in float64), and so does
 * pi0.c's openpi pipeline; pi0_policy_infer gives the same values rounded to float. lerobot's
 * pipeline computes in float32 as lerobot does: its values are floats, here widened exactly. */
pi0_status pi0_policy_infer_f64(pi0_policy *p, double *actions, size_t cap, int *rows, int *dims);
/* lerobot checkpoints with use_relative_actions: lerobot's synchronous rollout adds the raw state
 * of the CURRENT tick to each action it executes, while pi0_policy_infer adds the state the chunk
 * was planned from to every row. This gives row `row` of the last chunk made absolute with
 * `state` (n values, the robot's raw state now) instead, for executing the chunk step by step as
 * lerobot does (lerobot.md §5.2). Without relative actions the row is returned as infer gave it.
 * PI0_ERR_UNSUPPORTED for openpi's pipeline. out: the row's action dims. */
pi0_status pi0_policy_relative_action(pi0_policy *p, int row, const double *state, int n, float *out, size_t cap);
/* The last call's model output before any output transform: [action_horizon, action_dim] in the
 * model's normalized space (what openpi's Unnormalize receives). rows and dims are set even when
 * cap is too small (then PI0_ERR_ARG); 0 before a successful call. */
pi0_status pi0_policy_raw_actions(const pi0_policy *p, float *out, size_t cap, int *rows, int *dims);
/* The last call's model inputs (noise included); valid until the next call. NULL before one. */
const pi0_inputs *pi0_policy_inputs(const pi0_policy *p);

typedef struct {
    double preprocess_ms;  /* robot inputs, normalization, tokenization (images: when given)  */
    double model_ms;       /* the model (openpi's policy_timing infer_ms)                     */
    double postprocess_ms; /* output transforms                                                */
    double total_ms;
    pi0_timing model;      /* the model's stages                                               */
    uint64_t seed;         /* the noise seed used (fresh or fixed; 0 with given noise)         */
} pi0_policy_timing;
pi0_policy_timing pi0_policy_last_timing(const pi0_policy *p);

/* The documented noise generator: fills n floats with N(0,1) samples drawn from
 * xoshiro256** seeded through splitmix64(seed), Box–Muller transform (cos branch then sin
 * branch of each uniform pair, u1 in (0,1]). Same seed, same numbers, on every platform. */
void pi0_gaussian(uint64_t seed, float *out, size_t n);

#if defined(__GNUC__)
#pragma GCC visibility pop
#endif

#ifdef __cplusplus
}
#endif
#endif /* PI0_H */
