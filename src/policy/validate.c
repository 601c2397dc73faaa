/* validate.c — pi0_policy_check: what pi0_policy_load (and a first observation) would refuse,
 * found from the parameters and the checkpoint's small files only (config.json, norm stats,
 * lerobot's processor files), never the weights: a mistake is answered at once instead of after
 * a load that takes seconds (demo) to minutes (a 6.5 GB checkpoint). Also the camera key rule
 * shared by every caller (pi0_policy_image_key) and the library's version string.
 *
 * The messages are those of the load and infer paths, so a mistake reads the same whichever
 * step finds it. Parameters are named in keyword form (norm_stats=FILE): the pi0_policy_params
 * field, which is the Python binding's keyword; the CLI shows its flag instead (tools/pi0_cli.c). */
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "../backend/backend.h"
#include "../io/image.h"
#include "../io/norm_stats.h"
#include "../io/openpi_orbax.h"
#include "../model/model.h"
#include "policy_internal.h"

#ifdef PI0_HAVE_CUDA
int pi0_cuda_device_count(void); /* cuda/backend.cu: 0 without a usable GPU */
#endif

#ifndef PI0_GIT_COMMIT
#define PI0_GIT_COMMIT "unknown"
#endif
#ifndef PI0_VERSION_STRING
#define PI0_VERSION_STRING "unknown"
#endif

const char *pi0_version(void) { return PI0_VERSION_STRING; }
const char *pi0_git_commit(void) { return PI0_GIT_COMMIT; }

/* ---------------------------------------------------------------- camera keys */

/* What a key is among a pipeline's cameras: 1 a camera, 2 a camera accepted and unused (ALOHA's
 * cam_low), 0 neither. lr (lerobot) or cfg (openpi) says which cameras there are. */
int pp_camera_kind(const pc_config *cfg, const lerobot_spec *lr, const char *key) {
    if (lr) {
        for (int i = 0; i < lr->n_renames; i++) /* lerobot applies rename_map first */
            if (!strcmp(key, lr->rename_from[i])) { key = lr->rename_to[i]; break; }
        for (int i = 0; i < lr->n_cameras; i++)
            if (lr->cameras[i][0] && !strcmp(key, lr->cameras[i])) return 1;
        return 0;
    }
    if (!cfg) return 0;
    const pc_robot_layout *rl = cfg->robot;
    for (int i = 0; i < rl->n_cameras; i++)
        if (!strcmp(key, rl->cameras[i].key)) return 1;
    return rl->ignored[0] && !strcmp(key, rl->ignored[0]) ? 2 : 0;
}

/* The one rule for short camera keys: the key itself when it is a camera, else the same under
 * lerobot's "observation.images." (top → observation.images.top), else under openpi's "images/"
 * (cam_high → images/cam_high, base_0_rgb → images/base_0_rgb); else the key unchanged.
 * kind(ctx, key) says what a key is (pp_camera_kind's values). */
typedef int (*camera_kind_fn)(const void *ctx, const char *key);
static const char *short_key(camera_kind_fn kind, const void *ctx, const char *key, char *buf, size_t cap) {
    if (kind(ctx, key)) return key;
    static const char *prefixes[] = {"observation.images.", "images/"};
    for (int i = 0; i < 2; i++) {
        const int n = snprintf(buf, cap, "%s%s", prefixes[i], key);
        if (n > 0 && (size_t)n < cap && kind(ctx, buf)) return buf;
    }
    return key;
}

/* A loaded policy: its pipeline's cameras. */
static int handle_camera_kind(const void *ctx, const char *key) {
    const pi0_policy *p = ctx;
    return p->pl->camera_kind(p, key);
}

const char *pi0_policy_image_key(const pi0_policy *p, const char *key, char *buf, size_t cap) {
    if (!p || !key || !buf || !cap || !p->pl || !p->impl) return key;
    return short_key(handle_camera_kind, p, key, buf, cap);
}

/* "a (required), b, c (ignored)": the cameras, for messages. */
static void camera_list(const pc_config *cfg, const lerobot_spec *lr, char *buf, size_t n) {
    size_t k = 0;
    buf[0] = 0;
    if (lr) {
        for (int i = 0; i < lr->n_cameras && k < n; i++)
            k += snprintf(buf + k, n - k, "%s%s", i ? ", " : "", lr->cameras[i]);
        return;
    }
    const pc_robot_layout *rl = cfg->robot;
    for (int i = 0; i < rl->n_cameras && k < n; i++)
        k += snprintf(buf + k, n - k, "%s%s%s", i ? ", " : "", rl->cameras[i].key,
                      rl->cameras[i].required ? " (required)" : "");
    if (rl->ignored[0] && k < n) snprintf(buf + k, n - k, ", %s (ignored)", rl->ignored[0]);
}

/* ---------------------------------------------------------------- the check */

typedef struct {
    const pc_config *cfg;  /* openpi's pipeline */
    lerobot_spec *lr;      /* lerobot's pipeline */
    int ns_dim;            /* length of the norm stats' state; 0 = none */
    char ns_path[PATH_CAP];
    int state_dim;         /* config.json's, 0 = not read */
    int declared;          /* the model kind config.json declares: 0 π0, 1 π0.5, -1 none */
} check_ctx;

/* The checkpoint being checked: its config's or spec's cameras. */
static int ctx_camera_kind(const void *ctx, const char *key) {
    const check_ctx *x = ctx;
    return pp_camera_kind(x->cfg, x->lr, key);
}

static pi0_status check_backend(pi0_policy *p, const char *name) {
    if (!name) return PI0_OK;
    const pi0_backend *be = pi0_backend_find(name);
    RETURN_ERR_IF(!be && !strcmp(name, "cuda"), &p->err, PI0_ERR_UNSUPPORTED,
                  "backend=cuda: not built into this pi0 (built in: %s; cuda needs a build configured with the CUDA "
                  "toolkit, cmake -DPI0_CUDA=ON)", pi0_backend_names());
    RETURN_ERR_IF(!be, &p->err, PI0_ERR_UNSUPPORTED, "backend=%.100s: no such backend (built in: %s)", name,
                  pi0_backend_names());
#ifdef PI0_HAVE_CUDA
    RETURN_ERR_IF(!strcmp(name, "cuda") && pi0_cuda_device_count() <= 0, &p->err, PI0_ERR_DEVICE,
                  "backend=cuda: this machine has no usable GPU (choose backend=fast or backend=ref)");
#endif
    return PI0_OK;
}

/* The norm stats file openpi's pipeline would read, loaded (small JSON) for its state length. */
static pi0_status check_norm_stats(pi0_policy *p, check_ctx *x, const char *dir, const pi0_policy_params *pp) {
    pi0_policy *tmp = calloc(1, sizeof *tmp); /* pp_find_norm_stats' own rules, on a scratch handle */
    RETURN_ERR_IF(!tmp, &p->err, PI0_ERR_NOMEM, "out of memory");
    pi0_status st = pp_find_norm_stats(tmp, x->cfg, dir, pp->norm_stats);
    if (st != PI0_OK) p->err = tmp->err;
    snprintf(x->ns_path, sizeof x->ns_path, "%s", tmp->ns_path);
    free(tmp);
    FORWARD_ERR(st);
    if (!x->ns_path[0]) return PI0_OK;
    if (pp->norm_stats && !pp_is_file(pp->norm_stats))
        return pi0_fail(&p->err, PI0_ERR_IO, "norm_stats=%.3000s: no such file", pp->norm_stats);
    pi0_norm_stats *ns = pi0_norm_stats_create();
    RETURN_ERR_IF(!ns, &p->err, PI0_ERR_NOMEM, "out of memory");
    /* z-score for π0, quantile for π0.5 (openpi); a preset runs the checkpoint's kind: config.json's,
     * and when it says none (the weights tell, at load) either kind's statistics will do here */
    const int kind = x->cfg->model != PC_MODEL_ANY ? x->cfg->model == PC_MODEL_PI05 : x->declared;
    st = pi0_norm_stats_load(ns, x->ns_path, kind > 0);
    if (st != PI0_OK) pi0_fail(&p->err, st, "%s", pi0_norm_stats_error(ns));
    if (st != PI0_OK && kind < 0 && (st = pi0_norm_stats_load(ns, x->ns_path, 1)) == PI0_OK) p->err.msg[0] = 0;
    if (st == PI0_OK) x->ns_dim = pi0_norm_stats_dim(ns, 0);
    pi0_norm_stats_free(ns);
    return st;
}

/* The weights are there (read at load): DIR/model.safetensors or other *.safetensors shards, or
 * openpi's Orbax parameters (DIR/params/manifest.ocdbt, as published). */
static pi0_status check_weights_present(pi0_policy *p, const char *dir) {
    struct stat sb;
    if (stat(dir, &sb) != 0 || !S_ISDIR(sb.st_mode)) return PI0_OK; /* a .safetensors file: the load opens it */
    char path[PATH_CAP + 32];
    if (openpi_orbax_detect(dir, path, sizeof path)) return PI0_OK;
    snprintf(path, sizeof path, "%s/model.safetensors", dir);
    if (stat(path, &sb) == 0) return PI0_OK;
    DIR *d = opendir(dir);
    int found = 0;
    for (struct dirent *de; d && !found && (de = readdir(d));) {
        const size_t n = strlen(de->d_name);
        found = n > 12 && !strcmp(de->d_name + n - 12, ".safetensors");
    }
    if (d) closedir(d);
    RETURN_ERR_IF(!found, &p->err, PI0_ERR_IO, "%s: no model.safetensors (or other .safetensors), nor openpi's Orbax params/, found", dir);
    return PI0_OK;
}

static pi0_status check_tokenizer(pi0_policy *p, const char *dir, const pi0_policy_params *pp) {
    pi0_policy *tmp = calloc(1, sizeof *tmp);
    RETURN_ERR_IF(!tmp, &p->err, PI0_ERR_NOMEM, "out of memory");
    pi0_status st = pp_find_tokenizer(tmp, dir, pp->tokenizer);
    if (st != PI0_OK) p->err = tmp->err;
    else if (!pp_is_file(tmp->tok_path))
        st = pi0_fail(&p->err, PI0_ERR_IO, "%s%.3000s: no such tokenizer file",
                      pp->tokenizer ? "tokenizer=" : "PI0_TOKENIZER=", tmp->tok_path);
    free(tmp);
    return st;
}

/* The observation the caller will give: cameras (and their files), state length, prompt. */
static pi0_status check_plan(pi0_policy *p, const check_ctx *x, const pi0_policy_params *pp,
                             const pi0_policy_plan *plan) {
    char cams[1024], buf[512];
    const char *canon[32];
    char keys[32][sizeof buf]; /* a camera key as short_key gives it (at most buf) */
    RETURN_ERR_IF(plan->n_images < 0 || plan->n_images > 32 || (plan->n_images && !plan->image_keys), &p->err,
                  PI0_ERR_ARG, "plan: %d image keys (0 to 32)", plan->n_images);
    camera_list(x->cfg, x->lr, cams, sizeof cams);
    int required_given[3] = {0}, given = 0;
    for (int i = 0; i < plan->n_images; i++) {
        const char *key = plan->image_keys[i];
        RETURN_ERR_IF(!key, &p->err, PI0_ERR_ARG, "plan: image key %d is NULL", i);
        const char *k = short_key(ctx_camera_kind, x, key, buf, sizeof buf);
        const int kind = pp_camera_kind(x->cfg, x->lr, k);
        if (!kind) {
            if (x->lr)
                return pi0_fail(&p->err, PI0_ERR_INPUT,
                                "'%s' is not an image input of this lerobot checkpoint (cameras: %s)", PI0_SHOW(key), cams);
            return pi0_fail(&p->err, PI0_ERR_INPUT, "unknown camera '%s' (config %s accepts %s)", PI0_SHOW(key),
                            x->cfg->name, cams);
        }
        snprintf(keys[i], sizeof keys[i], "%s", k);
        canon[i] = keys[i];
        for (int j = 0; j < i; j++)
            RETURN_ERR_IF(!strcmp(canon[j], canon[i]), &p->err, PI0_ERR_INPUT, "camera '%s' is given twice",
                          PI0_SHOW(canon[i]));
        if (kind == 1) given++;
        if (!x->lr)
            for (int c = 0; c < x->cfg->robot->n_cameras; c++)
                if (!strcmp(k, x->cfg->robot->cameras[c].key)) required_given[c] = 1;
        if (plan->image_files && plan->image_files[i]) {
            rgb_image im = {0};
            pi0_err e;
            pi0_status st = image_decode_file(&im, plan->image_files[i], &e);
            rgb_image_free(&im);
            if (st != PI0_OK) return pi0_fail(&p->err, PI0_ERR_INPUT, "image '%s': %s", PI0_SHOW(k), e.msg);
        }
    }
    if (x->lr) {
        RETURN_ERR_IF(!given, &p->err, PI0_ERR_INPUT, "no camera image given (this checkpoint's cameras: %s)", cams);
    } else {
        const pc_robot_layout *rl = x->cfg->robot;
        for (int c = 0; c < rl->n_cameras; c++)
            RETURN_ERR_IF(rl->cameras[c].required && !required_given[c], &p->err, PI0_ERR_INPUT,
                          "missing key '%s' (a camera config %s requires)", rl->cameras[c].key, x->cfg->name);
        RETURN_ERR_IF(given < rl->min_cameras, &p->err, PI0_ERR_INPUT, "no camera image found (config %s expects %s)",
                      x->cfg->name, cams);
    }

    const int n = plan->state_len;
    if (n > 0 && x->lr) {
        RETURN_ERR_IF(x->lr->state_dim && n != x->lr->state_dim, &p->err, PI0_ERR_INPUT,
                      "'observation.state' has %d values; this checkpoint's state feature has %d", n, x->lr->state_dim);
    } else if (n > 0) {
        const pc_robot_layout *rl = x->cfg->robot;
        const int adapt = rl->robot == PC_ROBOT_ALOHA && (pp->adapt_to_pi >= 0 ? pp->adapt_to_pi : x->cfg->adapt_to_pi);
        RETURN_ERR_IF(adapt && n != rl->state_len, &p->err, PI0_ERR_INPUT,
                      "'state' has %d values; config %s (adapt_to_pi) expects %d", n, x->cfg->name, rl->state_len);
        RETURN_ERR_IF(x->state_dim > 0 && n > x->state_dim, &p->err, PI0_ERR_INPUT,
                      "state has %d values; this model takes 1 to %d", n, x->state_dim);
        /* longer statistics are sliced to the state, as openpi's Normalize does (openpi_pipeline.c) */
        RETURN_ERR_IF(x->ns_dim && n > x->ns_dim, &p->err, PI0_ERR_INPUT,
                      "state has %d values but norm_stats.state only %d (%s)", n, x->ns_dim, x->ns_path);
    }

    if (plan->prompt == 0 && !pp->default_prompt) {
        RETURN_ERR_IF(x->lr, &p->err, PI0_ERR_INPUT,
                      "missing key 'task' (the instruction: give one with default_prompt=TEXT)");
        RETURN_ERR_IF(!x->cfg->default_prompt, &p->err, PI0_ERR_INPUT,
                      "missing key 'prompt' (config %s has no default prompt; give one with default_prompt=TEXT)",
                      x->cfg->name);
    }
    return PI0_OK;
}

static pi0_status check(pi0_policy *p, check_ctx *x, const char *dir, const pi0_policy_params *pp,
                        const pi0_policy_plan *plan) {
    RETURN_ERR_IF(!dir, &p->err, PI0_ERR_ARG, "model directory is NULL");
    struct stat sb; /* a directory, or a .safetensors file with config.json beside it */
    RETURN_ERR_IF(stat(dir, &sb) != 0, &p->err, PI0_ERR_IO,
                  "%.3000s: cannot open: %s (the checkpoint: a directory holding config.json and model.safetensors, or openpi's params/ + assets/)",
                  dir, strerror(errno));
    FORWARD_ERR(check_backend(p, pp->model.backend));
    RETURN_ERR_IF(pp->model.num_threads < 0 || pp->model.num_threads > 1024, &p->err, PI0_ERR_ARG,
                  "threads=%d: want 0 (all cores) to 1024", pp->model.num_threads);

    /* the pipeline, as pi0_policy_load chooses it */
    const char *pl = pp->pipeline, *ver = pp->lerobot_version;
    RETURN_ERR_IF(pl && strcmp(pl, "auto") && strcmp(pl, "openpi") && strcmp(pl, "lerobot"), &p->err, PI0_ERR_ARG,
                  "pipeline '%.100s': want auto, openpi or lerobot", pl);
    RETURN_ERR_IF(ver && strcmp(ver, "current") && strcmp(ver, "v0.4") && strcmp(ver, "v1"), &p->err, PI0_ERR_ARG,
                  "lerobot version '%.100s': want current, v0.4 or v1", ver);
    lerobot_layout layout = LEROBOT_CURRENT;
    const int detected = lerobot_detect(dir, &layout) == PIPELINE_LEROBOT;
    const int lerobot = pl && !strcmp(pl, "lerobot") ? 1 : pl && !strcmp(pl, "openpi") ? 0 : detected;
    RETURN_ERR_IF(ver && !lerobot, &p->err, PI0_ERR_ARG,
                  "a lerobot version (%s) was given but %s runs openpi's pipeline (add pipeline=lerobot)", ver, dir);
    if (ver) layout = !strcmp(ver, "v1") ? LEROBOT_V1 : !strcmp(ver, "v0.4") ? LEROBOT_V04 : LEROBOT_CURRENT;

    if (lerobot) {
        FORWARD_ERR(pp_lerobot_refusals(p, dir, pp));
        x->lr = calloc(1, sizeof *x->lr);
        RETURN_ERR_IF(!x->lr, &p->err, PI0_ERR_NOMEM, "out of memory");
        if (pp->norm_stats && !pp_is_file(pp->norm_stats))
            return pi0_fail(&p->err, PI0_ERR_IO, "norm_stats=%.3000s: no such file", pp->norm_stats);
        FORWARD_ERR(lerobot_spec_load(x->lr, dir, layout, pp->norm_stats, &p->err));
    } else {
        char why[512];
        x->cfg = pc_find(pp->config, why, sizeof why);
        RETURN_ERR_IF(!x->cfg, &p->err, PI0_ERR_UNSUPPORTED, "%s", why);
        FORWARD_ERR(check_weights_present(p, dir));
        char path[PATH_CAP + 16];
        snprintf(path, sizeof path, "%s/config.json", dir);
        const int declared = x->declared = config_declared_kind(path); /* -1: the weights tell, at load */
        const pc_config *pc = x->cfg;
        if (pc->model != PC_MODEL_ANY && declared >= 0 && (pc->model == PC_MODEL_PI05) != declared)
            return pi0_fail(&p->err, PI0_ERR_CONFIG, "config %s is a %s policy but %s holds a %s checkpoint", pc->name,
                            pc->model == PC_MODEL_PI05 ? "pi0.5" : "pi0", dir, declared ? "pi0.5" : "pi0");
        pi0_config c;
        pi0_err e;
        if (config_load(&c, path, &e) == PI0_OK) x->state_dim = c.state_dim; /* else the load says why */
        RETURN_ERR_IF(pp->adapt_to_pi >= 0 && pc->robot->robot != PC_ROBOT_ALOHA, &p->err, PI0_ERR_ARG,
                      "adapt_to_pi applies to ALOHA configs only, not to %s", pc->name);
        FORWARD_ERR(check_tokenizer(p, dir, pp)); /* in the load's order */
        FORWARD_ERR(check_norm_stats(p, x, dir, pp));
    }
    if (x->lr) {
        FORWARD_ERR(check_weights_present(p, dir));
        FORWARD_ERR(check_tokenizer(p, dir, pp));
    }
    return plan ? check_plan(p, x, pp, plan) : PI0_OK;
}

pi0_status pi0_policy_check(pi0_policy *p, const char *model_dir, const pi0_policy_params *params,
                            const pi0_policy_plan *plan) {
    if (!p) return PI0_ERR_ARG;
    p->err.msg[0] = 0;
    const pi0_policy_params pp = params ? *params : pi0_policy_default_params();
    check_ctx *x = calloc(1, sizeof *x);
    RETURN_ERR_IF(!x, &p->err, PI0_ERR_NOMEM, "out of memory");
    const pi0_status st = check(p, x, model_dir, &pp, plan);
    if (x->lr) lerobot_spec_free(x->lr);
    free(x->lr);
    free(x);
    return st;
}
