/* dispatch.c — runs each op on the session's backend; when the backend has no such op or
 * declines the call (PI0_ERR_UNSUPPORTED), runs ref's instead — if the backend's buffers are host
 * memory; a device-memory backend that declines an op fails the call, naming the op. Counts
 * calls, FLOPs, bytes moved and time per component, op and executing backend: the data behind
 * `pi0 verify`. */
#include <stdio.h>
#include <stdlib.h>

#include "backend.h"

const char *pi0_op_name(pi0_op op) {
    static const char *names[OP_COUNT] = {
        "matmul", "layernorm", "rmsnorm", "rmsnorm_mod", "gelu_tanh", "silu", "mul", "add",
        "add_weight", "rope", "attention", "patchify", "embed", "copy_rows", "time_embed", "axpy",
        "upload", "download", "matmul_dx", "rmsnorm_bwd", "geglu_bwd", "silu_bwd", "rope_bwd",
        "attention_bwd"};
    return op < OP_COUNT ? names[op] : "?";
}

const char *pi0_component_name(pi0_component c) {
    static const char *names[COMP_COUNT] = {"vision", "prefix", "suffix"};
    return c < COMP_COUNT ? names[c] : "?";
}

/* ---------------------------------------------------------------- registry */

static const pi0_backend *const k_backends[] = {
#ifdef PI0_HAVE_CUDA
    &pi0_backend_cuda,
#endif
#ifdef PI0_HAVE_FAST
    &pi0_backend_fast,
#endif
    &pi0_backend_ref,
};
enum { N_BACKENDS = sizeof k_backends / sizeof *k_backends };

const pi0_backend *pi0_backend_find(const char *name) {
    for (int i = 0; name && i < N_BACKENDS; i++)
        if (!strcmp(name, k_backends[i]->name)) return k_backends[i];
    return NULL;
}

const char *pi0_backend_names(void) {
    static const char *names =
#ifdef PI0_HAVE_CUDA
        "cuda, "
#endif
#ifdef PI0_HAVE_FAST
        "fast, "
#endif
        "ref";
    return names;
}

#ifdef PI0_HAVE_CUDA
int pi0_cuda_device_count(void); /* cuda/backend.cu: 0 without a usable GPU */
#endif

const pi0_backend *pi0_backend_default(void) {
#ifdef PI0_HAVE_CUDA
    if (pi0_cuda_device_count() > 0) return &pi0_backend_cuda;
#endif
#ifdef PI0_HAVE_FAST
    return &pi0_backend_fast;
#else
    return &pi0_backend_ref;
#endif
}

/* ---------------------------------------------------------------- memory */

void *be_alloc(pi0_dispatch *d, size_t bytes) {
    if (bytes == 0) bytes = 1;
    return d->be->alloc ? d->be->alloc(&d->ex, bytes) : calloc(1, bytes);
}

void be_free(pi0_dispatch *d, void *p) {
    if (!p) return;
    if (d->be->free) d->be->free(&d->ex, p);
    else free(p);
}

static void record(pi0_dispatch *d, pi0_op op, int fallback, double flops, double bytes, double t0) {
    if (!d->ex.stats) return;
    pi0_op_stats *s = &d->ex.stats->op[d->ex.comp][op];
    s->calls[fallback]++;
    s->flops[fallback] += flops;
    s->bytes[fallback] += bytes;
    s->ms[fallback] += now_ms() - t0;
}

/* A host ↔ backend-memory copy through the backend's hook (memcpy without one), counted. */
static pi0_status transfer(pi0_dispatch *d, pi0_op op,
                           pi0_status (*hook)(const pi0_exec *, void *, const void *, size_t), void *dst,
                           const void *src, size_t bytes) {
    double t0 = now_ms();
    pi0_status st = PI0_OK;
    if (hook) st = hook(&d->ex, dst, src, bytes);
    else memcpy(dst, src, bytes);
    record(d, op, 0, 0, (double)bytes, t0);
    return st;
}

pi0_status op_upload(pi0_dispatch *d, void *dst, const void *src, size_t bytes) {
    return transfer(d, OP_UPLOAD, d->be->upload, dst, src, bytes);
}

pi0_status op_download(pi0_dispatch *d, void *dst, const void *src, size_t bytes) {
    return transfer(d, OP_DOWNLOAD, d->be->download, dst, src, bytes);
}

pi0_status op_sync(pi0_dispatch *d) { return d->be->sync ? d->be->sync(&d->ex) : PI0_OK; }

pi0_status op_mark(pi0_dispatch *d, int i, double host_ms[PI0_MARKS]) {
    host_ms[i] = now_ms();
    return d->be->mark ? d->be->mark(&d->ex, i) : PI0_OK;
}

double op_elapsed_ms(pi0_dispatch *d, int i, int j, const double host_ms[PI0_MARKS]) {
    return d->be->mark && d->be->elapsed_ms ? d->be->elapsed_ms(&d->ex, i, j) : host_ms[j] - host_ms[i];
}

/* ---------------------------------------------------------------- graphs */

static void stats_add(pi0_stats *to, const pi0_stats *a, const pi0_stats *b, double sign) {
    for (int c = 0; c < COMP_COUNT; c++)
        for (int o = 0; o < OP_COUNT; o++)
            for (int f = 0; f < 2; f++) {
                to->op[c][o].calls[f] += (long)sign * (a->op[c][o].calls[f] - (b ? b->op[c][o].calls[f] : 0));
                to->op[c][o].flops[f] += sign * (a->op[c][o].flops[f] - (b ? b->op[c][o].flops[f] : 0));
                to->op[c][o].bytes[f] += sign * (a->op[c][o].bytes[f] - (b ? b->op[c][o].bytes[f] : 0));
                to->op[c][o].ms[f] += sign * (a->op[c][o].ms[f] - (b ? b->op[c][o].ms[f] : 0));
            }
}

/* A replayed graph runs the ops it recorded: their calls, FLOPs and bytes count again (their
 * time is the replay's, added to the graph row by the caller's stage timing). */
pi0_status op_graph_begin(pi0_dispatch *d, uint64_t key, int *replayed) {
    *replayed = 0;
    if (!d->be->graph_begin) return PI0_OK;
    FORWARD_ERR(d->be->graph_begin(&d->ex, key, replayed));
    if (*replayed && d->ex.stats) {
        for (int i = 0; i < PI0_GRAPH_STATS; i++)
            if (d->graphs[i].used && d->graphs[i].key == key) {
                pi0_stats zero;
                memset(&zero, 0, sizeof zero);
                pi0_stats ops = d->graphs[i].ops;
                for (int c = 0; c < COMP_COUNT; c++) /* times of a replay are not per op */
                    for (int o = 0; o < OP_COUNT; o++) ops.op[c][o].ms[0] = ops.op[c][o].ms[1] = 0;
                stats_add(d->ex.stats, &ops, &zero, 1.0);
            }
    } else if (d->ex.stats) {
        d->at_capture = *d->ex.stats;
    }
    return PI0_OK;
}

pi0_status op_graph_end(pi0_dispatch *d, uint64_t key, int *rerun) {
    *rerun = 0;
    if (!d->be->graph_end) return PI0_OK;
    FORWARD_ERR(d->be->graph_end(&d->ex, key, rerun));
    if (d->ex.stats && !*rerun) { /* remember what the graph runs */
        pi0_graph_stats *g = &d->graphs[key % PI0_GRAPH_STATS];
        memset(g, 0, sizeof *g);
        g->key = key;
        g->used = 1;
        stats_add(&g->ops, d->ex.stats, &d->at_capture, 1.0);
    }
    if (d->ex.stats && *rerun) *d->ex.stats = d->at_capture; /* the ops will be counted again */
    return PI0_OK;
}

/* ---------------------------------------------------------------- ops */

/* Calls the backend's op if it has one; on NULL or PI0_ERR_UNSUPPORTED runs ref's op when the
 * backend's buffers are host memory (the ref call receives ex with ctx and weights NULL: ref
 * keeps no state), else fails naming the op. `bytes`: weight bytes the op reads (a matmul's
 * matrix, counted as bf16: what the accelerated backends keep). */
#define DISPATCH(op_id, field, flops, ...) DISPATCH_B(op_id, field, flops, 0, __VA_ARGS__)
#define DISPATCH_B(op_id, field, flops, bytes, ...)                                          \
    do {                                                                                     \
        double t0_ = now_ms();                                                               \
        if (d->be->field) {                                                                  \
            pi0_status st_ = d->be->field(&d->ex, __VA_ARGS__);                              \
            if (st_ != PI0_ERR_UNSUPPORTED) {                                                \
                record(d, op_id, 0, flops, bytes, t0_);                                      \
                return st_;                                                                  \
            }                                                                                \
        }                                                                                    \
        if (!d->be->host_memory)                                                             \
            return pi0_fail(d->err, PI0_ERR_UNSUPPORTED, "%s backend cannot run op %s (%s)", \
                            d->be->name, pi0_op_name(op_id), pi0_component_name(d->ex.comp)); \
        pi0_exec rex_ = d->ex;                                                               \
        rex_.ctx = NULL;                                                                     \
        rex_.weights = NULL;                                                                 \
        pi0_status st_ = pi0_backend_ref.field(&rex_, __VA_ARGS__);                          \
        record(d, op_id, d->be != &pi0_backend_ref, flops, bytes, t0_);                      \
        return st_;                                                                          \
    } while (0)

pi0_status op_matmul(pi0_dispatch *d, float *y, const float *x, int M, const pi0_mat *W,
                     const pi0_epilogue *ep) {
    DISPATCH_B(OP_MATMUL, matmul, 2.0 * M * W->rows * W->cols, 2.0 * W->rows * W->cols, y, x, M, W, ep);
}
pi0_status op_layernorm(pi0_dispatch *d, float *y, const float *x, int M, int D, const pi0_vec *w,
                        const pi0_vec *b, float eps) {
    DISPATCH(OP_LAYERNORM, layernorm, 8.0 * M * D, y, x, M, D, w, b, eps);
}
pi0_status op_rmsnorm(pi0_dispatch *d, float *y, const float *x, int M, int D, const pi0_vec *w,
                      float eps) {
    DISPATCH(OP_RMSNORM, rmsnorm, 5.0 * M * D, y, x, M, D, w, eps);
}
pi0_status op_rmsnorm_mod(pi0_dispatch *d, float *y, const float *x, int M, int D, const float *mod,
                          float eps) {
    DISPATCH(OP_RMSNORM_MOD, rmsnorm_mod, 6.0 * M * D, y, x, M, D, mod, eps);
}
pi0_status op_gelu(pi0_dispatch *d, float *x, size_t n) { DISPATCH(OP_GELU, gelu_tanh, 10.0 * n, x, n); }
pi0_status op_silu(pi0_dispatch *d, float *x, size_t n) { DISPATCH(OP_SILU, silu, 5.0 * n, x, n); }
pi0_status op_mul(pi0_dispatch *d, float *x, const float *y, size_t n) { DISPATCH(OP_MUL, mul, 1.0 * n, x, y, n); }
pi0_status op_add(pi0_dispatch *d, float *x, const float *y, size_t n) { DISPATCH(OP_ADD, add, 1.0 * n, x, y, n); }
pi0_status op_add_weight(pi0_dispatch *d, float *x, const pi0_vec *w, size_t n) {
    DISPATCH(OP_ADD_WEIGHT, add_weight, 1.0 * n, x, w, n);
}
pi0_status op_rope(pi0_dispatch *d, float *x, int M, int n_heads, int hd, const int32_t *pos,
                   double theta) {
    DISPATCH(OP_ROPE, rope, 3.0 * M * n_heads * hd, x, M, n_heads, hd, pos, theta);
}
pi0_status op_attention(pi0_dispatch *d, float *out, const float *q, const float *k, const float *v,
                        int M, int Nk, int Hq, int Hkv, int hd, const uint8_t *allowed, float scale) {
    DISPATCH(OP_ATTENTION, attention, 4.0 * M * Nk * Hq * hd + 5.0 * M * Nk * Hq, out, q, k, v, M, Nk,
             Hq, Hkv, hd, allowed, scale);
}
pi0_status op_patchify(pi0_dispatch *d, float *patches, const float *img, int C, int S, int p) {
    DISPATCH(OP_PATCHIFY, patchify, 0.0, patches, img, C, S, p);
}
pi0_status op_embed(pi0_dispatch *d, float *out, const pi0_mat *E, const int32_t *ids, int n, float scale) {
    DISPATCH(OP_EMBED, embed, 1.0 * n * E->cols, out, E, ids, n, scale);
}
pi0_status op_copy_rows(pi0_dispatch *d, float *dst, size_t dst_stride, const float *src,
                        size_t src_stride, int rows, int cols) {
    DISPATCH(OP_COPY_ROWS, copy_rows, 0.0, dst, dst_stride, src, src_stride, rows, cols);
}
pi0_status op_time_embed(pi0_dispatch *d, float *out, double t, int dim, double min_period,
                         double max_period) {
    DISPATCH(OP_TIME_EMBED, time_embed, 10.0 * dim, out, t, dim, min_period, max_period);
}
pi0_status op_axpy(pi0_dispatch *d, float *x, const float *v, float alpha, size_t n) {
    DISPATCH(OP_AXPY, axpy, 2.0 * n, x, v, alpha, n);
}

/* ---------------------------------------------------------------- backward ops */

pi0_status op_matmul_dx(pi0_dispatch *d, float *dx, const float *dy, int M, const pi0_mat *W,
                        const float *gate, int accumulate) {
    DISPATCH_B(OP_MATMUL_DX, matmul_dx, 2.0 * M * W->rows * W->cols, 2.0 * W->rows * W->cols, dx, dy, M, W,
               gate, accumulate);
}
pi0_status op_rmsnorm_bwd(pi0_dispatch *d, float *dx, const float *dy, const float *x, int M, int D,
                          const pi0_vec *w, const float *mod, float eps, int accumulate) {
    DISPATCH(OP_RMSNORM_BWD, rmsnorm_bwd, 8.0 * M * D, dx, dy, x, M, D, w, mod, eps, accumulate);
}
pi0_status op_geglu_bwd(pi0_dispatch *d, float *dgu, const float *dm, const float *gu, int M, int F) {
    DISPATCH(OP_GEGLU_BWD, geglu_bwd, 20.0 * M * F, dgu, dm, gu, M, F);
}
pi0_status op_silu_bwd(pi0_dispatch *d, float *dx, const float *x_in, size_t n) {
    DISPATCH(OP_SILU_BWD, silu_bwd, 8.0 * n, dx, x_in, n);
}
pi0_status op_rope_bwd(pi0_dispatch *d, float *dx, int M, int n_heads, int hd, const int32_t *pos,
                       double theta) {
    DISPATCH(OP_ROPE_BWD, rope_bwd, 3.0 * M * n_heads * hd, dx, M, n_heads, hd, pos, theta);
}
pi0_status op_attention_bwd(pi0_dispatch *d, float *dq, float *dk, float *dv, const float *dout,
                            const float *q, const float *k, const float *v, int M, int Nk, int k0, int Hq,
                            int Hkv, int hd, const uint8_t *allowed, float scale) {
    /* recomputed logits and P·V's gradient (4·M·Nk·Hq·hd), then dq and the suffix's dk, dv */
    DISPATCH(OP_ATTENTION_BWD, attention_bwd,
             4.0 * M * Nk * Hq * hd + 4.0 * M * Nk * Hq * hd + 8.0 * M * Nk * Hq, dq, dk, dv, dout, q, k, v,
             M, Nk, k0, Hq, Hkv, hd, allowed, scale);
}
