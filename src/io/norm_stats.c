/* norm_stats.c — openpi norm_stats.json: {"norm_stats": {"state": {"mean", "std", "q01",
 * "q99"}, "actions": {...}}}. π0 uses z-score: (x − mean)/(std + 1e-6), inverse
 * x·(std + 1e-6) + mean; quantile mode (π0.5): (x − q01)/(q99 − q01 + 1e-6)·2 − 1. Stats shorter
 * than the vector apply to its leading dims only. The statistics are kept in double and the
 * arithmetic is done in double, as openpi does (numpy float64 arrays read from the JSON). */
#include <cjson/cJSON.h>
#include <float.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include "norm_stats.h"

typedef norm_vec stat_vec;

struct pi0_norm_stats {
    stat_vec state, actions;
    int quantile;
    pi0_err err;
};

pi0_norm_stats *pi0_norm_stats_create(void) { return calloc(1, sizeof(pi0_norm_stats)); }

static void stat_free(stat_vec *s) {
    free(s->mean); free(s->std); free(s->q01); free(s->q99);
    memset(s, 0, sizeof *s);
}

void pi0_norm_stats_free(pi0_norm_stats *ns) {
    if (!ns) return;
    stat_free(&ns->state);
    stat_free(&ns->actions);
    free(ns);
}

const char *pi0_norm_stats_error(const pi0_norm_stats *ns) { return ns ? ns->err.msg : "no handle"; }
int pi0_norm_stats_dim(const pi0_norm_stats *ns, int actions) {
    return ns ? (actions ? ns->actions.n : ns->state.n) : 0;
}

const norm_vec *norm_stats_vec(const pi0_norm_stats *ns, int actions) {
    return ns ? (actions ? &ns->actions : &ns->state) : NULL;
}

int norm_stats_quantile(const pi0_norm_stats *ns) { return ns ? ns->quantile : 0; }

/* Reads numeric array `key` of obj into a new double array; *n must match when already set. */
static pi0_status read_vec(const cJSON *obj, const char *key, double **out, int *n, int required,
                           const char *where, const char *path, pi0_err *e) {
    const cJSON *a = cJSON_GetObjectItemCaseSensitive(obj, key);
    if (!a) {
        RETURN_ERR_IF(required, e, PI0_ERR_FORMAT, "%s: %s.%s is missing", path, where, key);
        return PI0_OK;
    }
    int len = cJSON_GetArraySize(a);
    RETURN_ERR_IF(!cJSON_IsArray(a) || len == 0 || len > 4096, e, PI0_ERR_FORMAT,
                  "%s: %s.%s must be a non-empty array of numbers", path, where, key);
    RETURN_ERR_IF(*n && len != *n, e, PI0_ERR_FORMAT, "%s: %s.%s has %d values, mean has %d", path,
                  where, key, len, *n);
    *out = malloc(len * sizeof **out);
    RETURN_ERR_IF(!*out, e, PI0_ERR_NOMEM, "out of memory");
    int i = 0;
    for (const cJSON *v = a->child; v; v = v->next, i++) {
        RETURN_ERR_IF(!cJSON_IsNumber(v) || !(fabs(v->valuedouble) <= FLT_MAX), e, PI0_ERR_FORMAT,
                      "%s: %s.%s[%d] is not a finite float32 number", path, where, key, i);
        (*out)[i] = v->valuedouble;
    }
    *n = len;
    return PI0_OK;
}

static pi0_status read_stats(const cJSON *root, const char *name, stat_vec *s, int quantile,
                             const char *path, pi0_err *e) {
    const cJSON *o = cJSON_GetObjectItemCaseSensitive(root, name);
    RETURN_ERR_IF(!cJSON_IsObject(o), e, PI0_ERR_FORMAT, "%s: norm_stats.%s is missing", path, name);
    s->n = 0;
    FORWARD_ERR(read_vec(o, "mean", &s->mean, &s->n, !quantile, name, path, e));
    FORWARD_ERR(read_vec(o, "std", &s->std, &s->n, !quantile, name, path, e));
    FORWARD_ERR(read_vec(o, "q01", &s->q01, &s->n, quantile, name, path, e));
    FORWARD_ERR(read_vec(o, "q99", &s->q99, &s->n, quantile, name, path, e));
    return PI0_OK;
}

pi0_status pi0_norm_stats_load(pi0_norm_stats *ns, const char *path, int quantile) {
    if (!ns) return PI0_ERR_ARG;
    stat_free(&ns->state);
    stat_free(&ns->actions);
    ns->quantile = quantile;
    char *buf;
    size_t size;
    FORWARD_ERR(read_file(path, 64u << 20, &buf, &size, &ns->err));
    cJSON *root = cJSON_ParseWithLength(buf, size);
    free(buf);
    RETURN_ERR_IF(!root, &ns->err, PI0_ERR_FORMAT, "%s: not valid JSON", path);
    const cJSON *stats = cJSON_GetObjectItemCaseSensitive(root, "norm_stats");
    if (!stats) stats = root;
    pi0_status st = read_stats(stats, "state", &ns->state, quantile, path, &ns->err);
    if (st == PI0_OK) st = read_stats(stats, "actions", &ns->actions, quantile, path, &ns->err);
    cJSON_Delete(root);
    if (st != PI0_OK) { stat_free(&ns->state); stat_free(&ns->actions); }
    return st;
}

/* Normalizes x[0..n) in place with stats s (leading dims only), in double. */
static void normalize(const stat_vec *s, int quantile, float *x, int n) {
    for (int i = 0; i < n && i < s->n; i++)
        x[i] = (float)(quantile ? (x[i] - s->q01[i]) / (s->q99[i] - s->q01[i] + 1e-6) * 2.0 - 1.0
                                : (x[i] - s->mean[i]) / (s->std[i] + 1e-6));
}

static void unnormalize(const stat_vec *s, int quantile, float *x, int n) {
    for (int i = 0; i < n && i < s->n; i++)
        x[i] = (float)(quantile ? (x[i] + 1.0) / 2.0 * (s->q99[i] - s->q01[i] + 1e-6) + s->q01[i]
                                : x[i] * (s->std[i] + 1e-6) + s->mean[i]);
}

void pi0_norm_stats_normalize_state(const pi0_norm_stats *ns, float *state, int n) {
    if (ns) normalize(&ns->state, ns->quantile, state, n);
}

void pi0_norm_stats_unnormalize_actions(const pi0_norm_stats *ns, float *actions, int rows, int dim) {
    if (!ns) return;
    for (int r = 0; r < rows; r++) unnormalize(&ns->actions, ns->quantile, actions + (size_t)r * dim, dim);
}
