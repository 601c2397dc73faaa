/* pipeline.c — what the pipelines share (pipeline.h): the choice of pipeline for a checkpoint,
 * warnings, the tokenizer search, number and prompt copies. */
#include <dirent.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "../io/lerobot_ckpt.h"
#include "policy_internal.h"

pi0_status pp_choose(pi0_policy *p, const char *dir, const pi0_policy_params *pp, const pp_pipeline **out) {
    const char *pl = pp->pipeline, *ver = pp->lerobot_version;
    RETURN_ERR_IF(pl && strcmp(pl, "auto") && strcmp(pl, "openpi") && strcmp(pl, "lerobot"), &p->err, PI0_ERR_ARG,
                  "pipeline '%s': want auto, openpi or lerobot", PI0_SHOW(pl));
    RETURN_ERR_IF(ver && strcmp(ver, "current") && strcmp(ver, "v0.4") && strcmp(ver, "v1"), &p->err, PI0_ERR_ARG,
                  "lerobot version '%s': want current, v0.4 or v1", PI0_SHOW(ver));
    lerobot_layout layout;
    const int detected = lerobot_detect(dir, &layout) == PIPELINE_LEROBOT;
    const int lerobot = pl && !strcmp(pl, "lerobot") ? 1 : pl && !strcmp(pl, "openpi") ? 0 : detected;
    RETURN_ERR_IF(ver && !lerobot, &p->err, PI0_ERR_ARG,
                  "a lerobot version (%s) was given but %s runs openpi's pipeline (add pipeline=lerobot)", ver, dir);
    *out = lerobot ? &pp_lerobot_pipeline : &pp_openpi_pipeline;
    return PI0_OK;
}

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

pi0_status pp_copy_numbers(pi0_policy *p, const char *what, const double *v, int n, double **out, int *nout) {
    RETURN_ERR_IF(n < 1 || n > MAX_STATE || !v, &p->err, PI0_ERR_INPUT, "'%s' has %d values (want 1 to %d)", PI0_SHOW(what), n,
                  MAX_STATE);
    for (int i = 0; i < n; i++)
        RETURN_ERR_IF(!isfinite(v[i]), &p->err, PI0_ERR_INPUT, "'%s'[%d] is not a finite number", PI0_SHOW(what), i);
    double *d = malloc((size_t)n * sizeof *d);
    RETURN_ERR_IF(!d, &p->err, PI0_ERR_NOMEM, "out of memory");
    memcpy(d, v, (size_t)n * sizeof *d);
    free(*out);
    *out = d;
    *nout = n;
    return PI0_OK;
}

pi0_status pp_set_prompt(pi0_policy *p, const char *what, const char *text) {
    RETURN_ERR_IF(!text, &p->err, PI0_ERR_ARG, "'%s' is NULL", what);
    char *d = pp_dup_str(text);
    RETURN_ERR_IF(!d, &p->err, PI0_ERR_NOMEM, "out of memory");
    free(p->prompt);
    p->prompt = d;
    return PI0_OK;
}

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
                    "no tokenizer: pass one (tokenizer=FILE), put tokenizer.json beside the model, or set "
                    "PI0_TOKENIZER (scripts/fetch_tokenizer.sh fetches one into .tok/tokenizer.json)");
}

/* The norm stats file: the override; an openpi config's assets/<asset_id>/norm_stats.json (as
 * openpi's create_trained_policy loads it from the checkpoint), then DIR/norm_stats.json; for
 * presets DIR/norm_stats.json, else the only assets/<x>/norm_stats.json, else none. */
pi0_status pp_find_norm_stats(pi0_policy *p, const pc_config *pc, const char *dir, const char *override) {
    p->ns_path[0] = 0;
    if (override) {
        snprintf(p->ns_path, sizeof p->ns_path, "%s", override);
        return PI0_OK;
    }
    if (pc->asset_id) {
        snprintf(p->ns_path, sizeof p->ns_path, "%s/assets/%s/norm_stats.json", dir, pc->asset_id);
        if (pp_is_file(p->ns_path)) return PI0_OK;
        snprintf(p->ns_path, sizeof p->ns_path, "%s/norm_stats.json", dir);
        if (pp_is_file(p->ns_path)) return PI0_OK;
        p->ns_path[0] = 0;
        return pi0_fail(&p->err, PI0_ERR_IO,
                        "config %s reads its norm stats from %s/assets/%s/norm_stats.json (openpi's asset id '%s'), "
                        "which is missing (nor is there a %s/norm_stats.json): give the file (norm_stats=FILE)",
                        pc->name, dir, pc->asset_id, pc->asset_id, dir);
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
                        "%s holds norm stats for %d robots (assets/*/norm_stats.json): choose one with norm_stats=FILE, "
                        "or use an openpi config name (config=NAME), which knows its asset id", dir, found);
    }
    return PI0_OK;
}

pi0_status pp_lerobot_refusals(pi0_policy *p, const char *dir, const pi0_policy_params *pp) {
    RETURN_ERR_IF(pp->config, &p->err, PI0_ERR_ARG,
                  "%s is a lerobot checkpoint, run with lerobot's pipeline; config '%s' names one of openpi's "
                  "(drop it, or choose openpi's pipeline with pipeline=openpi)", dir, pp->config);
    RETURN_ERR_IF(pp->adapt_to_pi >= 0, &p->err, PI0_ERR_ARG,
                  "adapt_to_pi applies to openpi's ALOHA configs; a lerobot v1 checkpoint says it in config.json "
                  "(adapt_to_pi_aloha)");
    return PI0_OK;
}
