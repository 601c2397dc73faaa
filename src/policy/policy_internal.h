/* policy_internal.h — the pi0_policy handle: what policy.c and every pipeline (pipeline.h) share.
 * A pipeline's own state lives behind `impl`. Private to src/policy. */
#ifndef PI0_POLICY_INTERNAL_H
#define PI0_POLICY_INTERNAL_H

#include "../model/model.h"
#include "pipeline.h"

#define MAX_STATE 4096
#define PATH_CAP 4096

struct pi0_policy {
    const pp_pipeline *pl;  /* the loaded pipeline (NULL: none) */
    void *impl;             /* its state */
    pi0_model *model;
    pi0_tokenizer *tok;
    pi0_session *sess;
    int loaded;
    /* settings */
    int out_dims, fixed_seed;
    uint64_t seed, seed_base, calls;
    char *default_prompt;
    char ns_path[PATH_CAP], tok_path[PATH_CAP];
    char pipeline_name[48];   /* "openpi", "lerobot (current)", ... */
    const char *config_name;  /* openpi's config name, "lerobot" */
    char *metadata;
    /* the observation being given (the pipeline keeps its images and keyed numbers) */
    int consumed;           /* the entries were used by infer: cleared before the next one */
    double *whole_state;
    int n_whole;
    char *prompt;
    int have_noise;
    int have_rtc;           /* pi0_policy_obs_rtc given for this observation */
    pi0_policy_rtc rtc, last_rtc;
    float *rtc_chunk;       /* [H, A] the request's chunk (a copy of it, or of the last raw chunk) */
    float *rtc_prev;        /* [H, A] the leftover handed to the model */
    int rtc_dims;           /* columns of the leftover: lerobot's native action dims, else A */
    pi0_rtc rtc_config;     /* defaults of a request: the pipeline's (lerobot's rtc_config) */
    /* buffers */
    float *raw, *noise;     /* [H, A] */
    double *actions;        /* [H, A]: the pipeline's output, [H, out_dims] */
    int have_raw;
    pi0_inputs last;
    int have_last;
    pi0_policy_timing timing;
    pi0_err err;
    char warning[1024];
};

#endif
