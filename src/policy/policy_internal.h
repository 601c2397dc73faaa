/* policy_internal.h — the pi0_policy handle, shared by the two pipelines that fill it: openpi's
 * (policy.c: configs by name, transforms.c) and lerobot's (lerobot_pipeline.c). Private to
 * src/policy. */
#ifndef PI0_POLICY_INTERNAL_H
#define PI0_POLICY_INTERNAL_H

#include "../io/lerobot_ckpt.h"
#include "../model/model.h"
#include "configs.h"

#define MAX_STATE 4096
#define PATH_CAP 4096

struct pi0_policy {
    const pc_config *cfg;
    pi0_model *model;
    pi0_tokenizer *tok;
    pi0_norm_stats *ns;
    pi0_session *sess;
    pi0_obs *obs;
    int loaded;
    /* settings */
    int adapt_to_pi, out_dims, fixed_seed;
    uint64_t seed, seed_base, calls;
    char *default_prompt;
    uint8_t mask[64];
    int mask_len;
    char ns_path[PATH_CAP], tok_path[PATH_CAP];
    char *metadata;
    /* the observation being given */
    int consumed;           /* the entries were used by infer: cleared before the next one */
    uint8_t cam_given[3];
    double *numbers[2];     /* per state key */
    int n_numbers[2];
    double *whole_state;
    int n_whole;
    char *prompt;
    int have_noise;
    int have_rtc;           /* pi0_policy_obs_rtc given for this observation */
    pi0_policy_rtc rtc, last_rtc;
    float *rtc_chunk;       /* [H, A] the request's chunk (a copy of it, or of the last raw chunk) */
    float *rtc_prev;        /* [H, A] the leftover handed to the model */
    int rtc_dims;           /* columns of the leftover: lerobot's native action dims, else A */
    /* buffers */
    float *raw, *noise;     /* [H, A] */
    double *work;           /* [H, A] */
    int have_raw;
    pi0_inputs last;
    int have_last;
    pi0_policy_timing timing;
    pi0_err err;
    char warning[1024];
    /* lerobot's pipeline (lerobot_pipeline.c); lr NULL: openpi's */
    lerobot_spec *lr;
    char pipeline_name[48];   /* "openpi", "lerobot (current)", ... */
    float *lr_cam;            /* [n_cameras, 3, R, R]: each given camera, preprocessed */
    uint8_t lr_given[LEROBOT_MAX_CAMERAS];
    float *lr_images;         /* [n_cameras, 3, R, R]: the model's slots (present first) */
    uint8_t lr_masks[LEROBOT_MAX_CAMERAS];
    int32_t *lr_tokens;       /* [max_token_len] */
    uint8_t *lr_token_mask;
    float *lr_state;          /* [state_dim]: normalized, zero-padded */
    float lr_raw_state[MAX_STATE]; /* the raw state of the last call (relative actions) */
    int lr_n_state;
    char lr_ignored[320];     /* image keys of this observation that are no camera of the checkpoint */
};

char *pp_dup_str(const char *s);
int pp_is_file(const char *path);
void pp_take_noise(pi0_policy *p);
/* A copy of n finite values into *out (replacing it); `what` names them in errors. */
pi0_status pp_copy_numbers(pi0_policy *p, const char *what, const double *v, int n, double **out, int *nout);
pi0_status pp_find_tokenizer(pi0_policy *p, const char *dir, const char *override);

/* lerobot_pipeline.c: the lerobot side of each policy entry point (p->lr set). */
pi0_status lp_load(pi0_policy *p, const char *dir, const pi0_policy_params *pp, lerobot_layout layout);
void lp_unload(pi0_policy *p);
/* The metadata's lerobot fields, and the transforms it lists (the common fields: policy.c). */
void lp_metadata(const pi0_policy *p, struct cJSON *root);
void lp_describe(const pi0_policy *p, struct cJSON *obj);
int lp_key_kind(pi0_policy *p, const char *key);
pi0_status lp_image(pi0_policy *p, const char *key, const void *data, int type, int width, int height, int channels,
                    int chw);
pi0_status lp_image_file(pi0_policy *p, const char *key, const char *path);
pi0_status lp_numbers(pi0_policy *p, const char *key, const double *values, int n);
pi0_status lp_text(pi0_policy *p, const char *key, const char *text);
pi0_status lp_run_inputs(pi0_policy *p);
pi0_status lp_run_outputs(pi0_policy *p, float *out, size_t cap, int *rows, int *dims);
pi0_status lp_relative_action(pi0_policy *p, int row, const double *state, int n, float *out, size_t cap);
enum { LP_U8 = 0, LP_F32 = 1, LP_F64 = 2 };
void pp_add_warning(pi0_policy *p, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#endif
