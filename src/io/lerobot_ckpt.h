/* lerobot_ckpt.h — what a lerobot checkpoint says about running it (spec lerobot.md): its
 * layout (current, v0.4, v1), cameras, native state and action lengths, normalization modes and
 * statistics, relative actions, renames and tokenizer length, read from config.json, the
 * processor JSON files (steps found by registry_name, never by position) and their statistics
 * safetensors (or, for v1, the normalize_* buffers inside model.safetensors). Also tells an
 * openpi checkpoint from a lerobot one. Reading only: the pipeline that applies it is the
 * policy layer's. */
#ifndef PI0_LEROBOT_CKPT_H
#define PI0_LEROBOT_CKPT_H

#include "lerobot_norm.h"

typedef enum { PIPELINE_OPENPI = 0, PIPELINE_LEROBOT = 1 } pi0_pipeline;
typedef enum { LEROBOT_CURRENT = 0, LEROBOT_V04 = 1, LEROBOT_V1 = 2 } lerobot_layout;

enum { LEROBOT_MAX_CAMERAS = 16, LEROBOT_KEY = 128, LEROBOT_MAX_DIM = 4096, LEROBOT_MAX_RENAMES = 32 };

/* One normalized feature (observation.state or action): mode and its two statistic vectors. */
typedef struct {
    lerobot_norm_mode mode;   /* IDENTITY when the feature is not normalized */
    float *a, *b;             /* mean/std, min/max, q01/q99, q10/q90; NULL for IDENTITY */
    int n;                    /* their length (the native dim) */
} lerobot_feature_norm;

typedef struct {
    lerobot_layout layout;
    int pi05;
    int n_cameras;
    char cameras[LEROBOT_MAX_CAMERAS][LEROBOT_KEY]; /* feature keys, config order ("" = empty slot) */
    int state_dim, action_dim;       /* native S and A (output_features / input_features); 0 = unknown */
    int n_action_steps;              /* actions executed per plan (lerobot's queue) */
    int max_state_dim;               /* padded state width (v0.4's π0.5 prompt digitizes all of it) */
    int aloha_v1;                    /* v1 adapt_to_pi_aloha: ALOHA's joint flips and gripper maps */
    int max_length;                  /* tokenizer max_length (0 = the model config's) */
    lerobot_feature_norm state, action;
    int relative;                    /* use_relative_actions / relative_actions_processor enabled */
    uint8_t relative_mask[LEROBOT_MAX_DIM]; /* per action dim: 1 = relative (raw state added) */
    /* rtc_config (lerobot's RTCConfig): defaults of a guided RTC request; rtc_enabled as given */
    int rtc_enabled, rtc_schedule, rtc_horizon;   /* schedule: pi0_rtc_schedule */
    float rtc_weight;                            /* max_guidance_weight */
    int n_renames;
    char rename_from[LEROBOT_MAX_RENAMES][LEROBOT_KEY], rename_to[LEROBOT_MAX_RENAMES][LEROBOT_KEY];
    char warning[512];               /* e.g. "no statistics: identity normalization" */
} lerobot_spec;

/* Which pipeline a checkpoint directory calls for (lerobot.md §2): lerobot when it has
 * policy_preprocessor.json (layout current, or v0.4 when the caller says so) or v1 markers
 * (proj_width / resize_imgs_with_padding in config.json, v1 weight keys); openpi otherwise.
 * *layout is set for lerobot. */
pi0_pipeline lerobot_detect(const char *dir, lerobot_layout *layout);

/* Reads the spec of a lerobot checkpoint in dir with the given layout. stats_path (may be NULL)
 * replaces the checkpoint's statistics: a safetensors file with lerobot's tensor names
 * (observation.state.mean, action.q01, ...) or a stats.json {"observation.state": {"mean":
 * [...]}, "action": {...}}. Refuses statistics whose length differs from S / A. */
pi0_status lerobot_spec_load(lerobot_spec *s, const char *dir, lerobot_layout layout, const char *stats_path,
                             pi0_err *e);
void lerobot_spec_free(lerobot_spec *s);

#endif
