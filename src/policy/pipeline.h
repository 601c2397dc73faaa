/* pipeline.h — the one interface a policy pipeline implements. pi0_policy (policy.c) owns the
 * handle, the model session, the noise and the caller's buffers; a pipeline turns a robot's
 * observation into the model's inputs and the model's output into the robot's actions, in the
 * order its own framework runs them:
 *
 *   openpi_pipeline.c   openpi's create_trained_policy for a config by name (configs.c,
 *                       transforms.c): robot Inputs, Normalize, ... Unnormalize, robot Outputs
 *   lerobot_pipeline.c  lerobot's pre/post processors, as a lerobot checkpoint describes them
 *                       (io/lerobot_ckpt.c)
 *
 * Neither pipeline calls into the other, nor into policy.c: what both need (the warning list,
 * the tokenizer search, number copies) is in pipeline.c, which also picks the pipeline for a
 * checkpoint (pp_choose). A pipeline keeps its own state behind p->impl. Private to src/policy. */
#ifndef PI0_POLICY_PIPELINE_H
#define PI0_POLICY_PIPELINE_H

#include "pi0.h"
#include "configs.h"
#include "../io/lerobot_ckpt.h"

struct cJSON;

/* The element type of an image handed to pp_pipeline.image. */
enum { PP_U8 = 0, PP_F32 = 1, PP_F64 = 2 };

typedef struct pp_pipeline {
    const char *name;       /* "openpi", "lerobot": the metadata's "pipeline" */
    const char *state_key;  /* how the whole state (pi0_policy_obs_state) is named in messages */

    /* load: the model (p->model, p->tok, p->sess, created by policy.c), the pipeline's state in
     * p->impl, p->out_dims, p->default_prompt, p->ns_path / p->tok_path, p->pipeline_name and
     * p->config_name. On failure p->err says why; unload is called either way. */
    pi0_status (*load)(pi0_policy *p, const char *dir, const pi0_policy_params *pp);
    void (*unload)(pi0_policy *p);          /* frees p->impl (NULL-safe) */

    /* observation entries (p->loaded; the common ones — prompt, whole state, noise — are
     * policy.c's, in p->prompt / p->whole_state) */
    void (*clear)(pi0_policy *p);           /* forget the pipeline's entries */
    int (*key_kind)(pi0_policy *p, const char *key);        /* PI0_KEY_* */
    /* key among the cameras: 1 a camera, 2 accepted and unused (ALOHA's cam_low), 0 neither
     * (pp_camera_kind on the pipeline's config or spec; pi0_policy_image_key's short keys) */
    int (*camera_kind)(const pi0_policy *p, const char *key);
    pi0_status (*image)(pi0_policy *p, const char *key, const void *data, int type, int width, int height,
                        int channels, int chw);             /* type: PP_U8 / PP_F32 / PP_F64 */
    pi0_status (*image_file)(pi0_policy *p, const char *key, const char *path);
    pi0_status (*numbers)(pi0_policy *p, const char *key, const double *values, int n);
    pi0_status (*text)(pi0_policy *p, const char *key, const char *text);

    /* observation → model inputs: p->last (all but the noise, which policy.c adds). */
    pi0_status (*inputs)(pi0_policy *p);
    /* model outputs (p->raw [H, action_dim] float32) → the robot's actions: out [H, p->out_dims],
     * in double. */
    pi0_status (*outputs)(pi0_policy *p, double *out);
    /* Row `row` of the last chunk made absolute with the given current state (NULL: the
     * pipeline has no per-step relative actions). */
    pi0_status (*relative_action)(pi0_policy *p, int row, const double *state, int n, double *out);
    /* Real-time chunking (pi0_policy_obs_rtc), called once after load: the defaults of a guided
     * request in *defaults (lerobot: the checkpoint's rtc_config) and in *dims the leftover's
     * width (lerobot: its native action dims, the model zero-pads the rest). NULL: lerobot's
     * RTCConfig defaults on all action_dim dims. */
    void (*rtc_defaults)(const pi0_policy *p, pi0_rtc *defaults, int *dims);

    /* metadata: the pipeline's own fields of the connect message, and its transforms as lists
     * {"inputs": [...], "outputs": [...]}. */
    void (*metadata)(const pi0_policy *p, struct cJSON *root);
    void (*describe)(const pi0_policy *p, struct cJSON *transforms);
} pp_pipeline;

/* The two implementations (their files above). */
extern const pp_pipeline pp_openpi_pipeline, pp_lerobot_pipeline;

/* ---- pipeline.c: what every pipeline shares ---- */

/* The pipeline for dir: the caller's choice (pp->pipeline "auto" / "openpi" / "lerobot",
 * pp->lerobot_version) else the files' (lerobot_detect). */
pi0_status pp_choose(pi0_policy *p, const char *dir, const pi0_policy_params *pp, const pp_pipeline **out);
char *pp_dup_str(const char *s);
int pp_is_file(const char *path);
void pp_add_warning(pi0_policy *p, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* A copy of n finite values into *out (replacing it); `what` names them in errors. */
pi0_status pp_copy_numbers(pi0_policy *p, const char *what, const double *v, int n, double **out, int *nout);
/* The tokenizer path into p->tok_path: the override, else beside the model, else $PI0_TOKENIZER. */
pi0_status pp_find_tokenizer(pi0_policy *p, const char *dir, const char *override);
/* The norm stats file openpi's rules give for config pc (configs.h) into p->ns_path ("" = none):
 * the override, else assets/<asset id>/norm_stats.json, else DIR/norm_stats.json (shared by
 * openpi's pipeline and pi0_policy_check). */
pi0_status pp_find_norm_stats(pi0_policy *p, const pc_config *pc, const char *dir, const char *override);
/* validate.c: what key is among the cameras of openpi config cfg, or of lerobot checkpoint lr
 * when non-NULL: 1 a camera, 2 accepted and unused (ALOHA's cam_low), 0 neither. The one rule
 * for short camera keys (pi0_policy_image_key) and the pre-load check both use it. */
int pp_camera_kind(const pc_config *cfg, const lerobot_spec *lr, const char *key);
/* What a lerobot checkpoint refuses of the parameters (openpi's config names, adapt_to_pi):
 * lerobot's pipeline at load and pi0_policy_check before it. */
pi0_status pp_lerobot_refusals(pi0_policy *p, const char *dir, const pi0_policy_params *pp);
/* p->prompt := a copy of text. */
pi0_status pp_set_prompt(pi0_policy *p, const char *what, const char *text);

#endif
