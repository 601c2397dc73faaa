/* dispatch.c — runs each op on the session's backend; when the backend has no such op or
 * declines the call (PI0_ERR_UNSUPPORTED), runs ref's instead. Counts calls, FLOPs and time per
 * component, op and executing backend: the data behind `pi0 verify`. */
#include "backend.h"

const char *pi0_op_name(pi0_op op) {
    static const char *names[OP_COUNT] = {"matmul", "layernorm", "rmsnorm", "gelu_tanh", "silu",
                                          "mul", "add", "rope", "attention"};
    return op < OP_COUNT ? names[op] : "?";
}

const char *pi0_component_name(pi0_component c) {
    static const char *names[COMP_COUNT] = {"vision", "prefix", "suffix"};
    return c < COMP_COUNT ? names[c] : "?";
}

const pi0_backend *pi0_backend_find(const char *name) {
    if (!name || !strcmp(name, "ref")) return name ? &pi0_backend_ref : NULL;
    if (!strcmp(name, "fast")) return &pi0_backend_fast;
    return NULL;
}

static void record(pi0_dispatch *d, pi0_op op, int fallback, double flops, double t0) {
    if (!d->ex.stats) return;
    pi0_op_stats *s = &d->ex.stats->op[d->ex.comp][op];
    s->calls[fallback]++;
    s->flops[fallback] += flops;
    s->ms[fallback] += now_ms() - t0;
}

/* Calls the backend's op if it has one; on NULL or PI0_ERR_UNSUPPORTED runs ref's op. The ref
 * call receives ex with ctx NULL: ref keeps no per-session state. */
#define DISPATCH(op_id, field, flops, ...)                                                   \
    do {                                                                                     \
        double t0_ = now_ms();                                                               \
        if (d->be->field) {                                                                  \
            pi0_status st_ = d->be->field(&d->ex, __VA_ARGS__);                              \
            if (st_ != PI0_ERR_UNSUPPORTED) {                                                \
                record(d, op_id, 0, flops, t0_);                                             \
                return st_;                                                                  \
            }                                                                                \
        }                                                                                    \
        pi0_exec rex_ = d->ex;                                                               \
        rex_.ctx = NULL;                                                                     \
        pi0_status st_ = pi0_backend_ref.field(&rex_, __VA_ARGS__);                          \
        record(d, op_id, d->be != &pi0_backend_ref, flops, t0_);                             \
        return st_;                                                                          \
    } while (0)

pi0_status op_matmul(pi0_dispatch *d, float *y, const float *x, int M, const pi0_mat *W,
                     const pi0_epilogue *ep) {
    DISPATCH(OP_MATMUL, matmul, 2.0 * M * W->rows * W->cols, y, x, M, W, ep);
}
pi0_status op_layernorm(pi0_dispatch *d, float *y, const float *x, int M, int D, const float *w,
                        const float *b, float eps) {
    DISPATCH(OP_LAYERNORM, layernorm, 8.0 * M * D, y, x, M, D, w, b, eps);
}
pi0_status op_rmsnorm(pi0_dispatch *d, float *y, const float *x, int M, int D, const float *w, float eps) {
    DISPATCH(OP_RMSNORM, rmsnorm, 5.0 * M * D, y, x, M, D, w, eps);
}
pi0_status op_gelu(pi0_dispatch *d, float *x, size_t n) { DISPATCH(OP_GELU, gelu_tanh, 10.0 * n, x, n); }
pi0_status op_silu(pi0_dispatch *d, float *x, size_t n) { DISPATCH(OP_SILU, silu, 5.0 * n, x, n); }
pi0_status op_mul(pi0_dispatch *d, float *x, const float *y, size_t n) { DISPATCH(OP_MUL, mul, 1.0 * n, x, y, n); }
pi0_status op_add(pi0_dispatch *d, float *x, const float *y, size_t n) { DISPATCH(OP_ADD, add, 1.0 * n, x, y, n); }
pi0_status op_rope(pi0_dispatch *d, float *x, int M, int n_heads, int hd, const int *pos, double theta) {
    DISPATCH(OP_ROPE, rope, 3.0 * M * n_heads * hd, x, M, n_heads, hd, pos, theta);
}
pi0_status op_attention(pi0_dispatch *d, float *out, const float *q, const float *k, const float *v,
                        int M, int Nk, int Hq, int Hkv, int hd, const uint8_t *allowed, float scale) {
    DISPATCH(OP_ATTENTION, attention, 4.0 * M * Nk * Hq * hd + 5.0 * M * Nk * Hq, out, q, k, v, M, Nk,
             Hq, Hkv, hd, allowed, scale);
}
