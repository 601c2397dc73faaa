/* test_backward.c — the backward ops of the op table (input gradients for the exact RTC
 * vector-Jacobian product). On `ref`: each op's gradient against central finite differences of
 * <dy, forward(x)>, the forward being ref's own forward op, for every input element. On `fast`
 * (when built): each op against ref's on the same inputs, with the dispatch statistics showing
 * that fast's op ran (no fallback to ref). Every comparison prints max |diff| and PCC. */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../src/backend/backend.h"
#include "test_util.h"

static pi0_rng g_rng;
static int g_fwd_failed; /* a forward op inside a loss evaluation failed */
#define FWD(expr) \
    do { if ((expr) != PI0_OK) g_fwd_failed = 1; } while (0)

static float *randn(size_t n, float sd) {
    float *p = malloc(n * sizeof *p);
    rng_gaussian(&g_rng, p, n);
    for (size_t i = 0; i < n; i++) p[i] *= sd;
    return p;
}

static float *dup(const float *x, size_t n) {
    float *p = malloc(n * sizeof *p);
    memcpy(p, x, n * sizeof *p);
    return p;
}

static double dotd(const float *a, const float *b, size_t n) {
    double s = 0;
    for (size_t i = 0; i < n; i++) s += (double)a[i] * b[i];
    return s;
}

/* A dispatcher on backend `be` with statistics (so that fallbacks to ref are visible). */
typedef struct {
    pi0_dispatch d;
    pi0_stats stats;
    pi0_err err;
} disp;

static void disp_init(disp *s, const pi0_backend *be) {
    memset(s, 0, sizeof *s);
    s->d.be = be;
    s->d.ex.num_threads = 1;
    s->d.ex.comp = COMP_SUFFIX;
    s->d.ex.stats = &s->stats;
    s->d.err = &s->err;
}

/* ---------------------------------------------------------------- finite differences */

/* <dy, forward(inputs)> in double, for the op's current inputs. */
typedef double (*loss_fn)(void *ctx);

/* g[i] = (L(x_i + h) − L(x_i − h)) / (x_i⁺ − x_i⁻) for x = target[0, n), each element perturbed in
 * place and restored (the denominator is the float step actually taken). */
static void fd_grad(loss_fn L, void *ctx, float *target, size_t n, float h, float *g) {
    for (size_t i = 0; i < n; i++) {
        const float x0 = target[i], xp = x0 + h, xm = x0 - h;
        target[i] = xp;
        const double lp = L(ctx);
        target[i] = xm;
        const double lm = L(ctx);
        target[i] = x0;
        g[i] = (float)((lp - lm) / ((double)xp - xm));
    }
}

/* Analytic gradient `got` against the finite differences `fd` (n elements): max |diff| within
 * tol·max(1, max|fd|) and PCC ≥ 0.99999. */
static void check_fd(const char *what, const float *fd, const float *got, size_t n, double tol) {
    cmp_result r = compare(fd, got, 1, (int)n, NULL);
    const double bound = tol * (r.max_ref > 1 ? r.max_ref : 1);
    printf("  ref %-34s max|diff| %.3e (max|g| %.3f, bound %.1e)  PCC %.8f\n", what, r.max_diff, r.max_ref, bound,
           r.pcc);
    CHECK(!g_fwd_failed, "%s: a forward op failed", what);
    CHECK(!r.nan && r.max_diff <= bound && r.pcc >= 0.99999, "%s: gradient differs from finite differences", what);
}

/* ---------------------------------------------------------------- matmul_dx */

typedef struct {
    disp *s;
    const pi0_mat *W;
    float *x, *y;
    const float *dy, *gate;
    int M;
} mm_ctx;

static double mm_loss(void *p) {
    mm_ctx *c = p;
    pi0_epilogue ep = {.gate = c->gate};
    FWD(op_matmul(&c->s->d, c->y, c->x, c->M, c->W, &ep));
    return dotd(c->dy, c->y, (size_t)c->M * c->W->rows);
}

/* A stack of two matrices, one F32 and one BF16 (as π0.5's per-step modulations / [gate; up]). */
typedef struct {
    pi0_mat a, b, stack;
    const pi0_mat *parts[2];
    float *fa;
    uint16_t *hb;
} stacked;

static void stacked_init(stacked *w, int Na, int Nb, int K) {
    memset(w, 0, sizeof *w);
    w->fa = randn((size_t)Na * K, 0.3f);
    float *t = randn((size_t)Nb * K, 0.3f);
    w->hb = malloc((size_t)Nb * K * sizeof *w->hb);
    for (size_t i = 0; i < (size_t)Nb * K; i++) w->hb[i] = f32_to_bf16(t[i]);
    free(t);
    w->a = (pi0_mat){.data = w->fa, .dtype = DT_F32, .rows = Na, .cols = K, .name = "a"};
    w->b = (pi0_mat){.data = w->hb, .dtype = DT_BF16, .rows = Nb, .cols = K, .name = "b"};
    w->parts[0] = &w->a;
    w->parts[1] = &w->b;
    w->stack = (pi0_mat){.dtype = DT_F32, .rows = Na + Nb, .cols = K, .name = "[a; b]", .parts = w->parts, .nparts = 2};
}

static void stacked_free(stacked *w) {
    free(w->fa);
    free(w->hb);
}

static void test_matmul_dx_fd(const pi0_mat *W, int M, int with_gate, int accumulate, const char *what) {
    disp s;
    disp_init(&s, &pi0_backend_ref);
    const int N = W->rows, K = W->cols;
    float *x = randn((size_t)M * K, 1), *dy = randn((size_t)M * N, 1), *y = malloc((size_t)M * N * sizeof *y);
    float *gate = with_gate ? randn((size_t)N, 1) : NULL;
    float *dx = randn((size_t)M * K, 1), *dx0 = dup(dx, (size_t)M * K), *fd = malloc((size_t)M * K * sizeof *fd);
    mm_ctx c = {&s, W, x, y, dy, gate, M};
    s.d.ex.num_threads = 2; /* ref's matmul_dx splits the columns over threads */
    CHECK(op_matmul_dx(&s.d, dx, dy, M, W, gate, accumulate) == PI0_OK, "matmul_dx");
    s.d.ex.num_threads = 1; /* the forwards of the finite differences: one thread (no spin waits) */
    if (accumulate)
        for (size_t i = 0; i < (size_t)M * K; i++) dx[i] -= dx0[i];
    fd_grad(mm_loss, &c, x, (size_t)M * K, 1e-2f, fd);
    check_fd(what, fd, dx, (size_t)M * K, 1e-4);
    free(x); free(dy); free(y); free(gate); free(dx); free(dx0); free(fd);
}

/* ---------------------------------------------------------------- rmsnorm_bwd */

typedef struct {
    disp *s;
    float *x, *y;
    const float *dy, *mod;
    const pi0_vec *w;
    int M, D;
} rn_ctx;

static const float k_eps = 1e-6f;

static double rn_loss(void *p) {
    rn_ctx *c = p;
    pi0_status st = c->w ? op_rmsnorm(&c->s->d, c->y, c->x, c->M, c->D, c->w, k_eps)
                         : op_rmsnorm_mod(&c->s->d, c->y, c->x, c->M, c->D, c->mod, k_eps);
    FWD(st);
    return dotd(c->dy, c->y, (size_t)c->M * c->D);
}

static void test_rmsnorm_bwd_fd(int M, int D, int use_mod, int accumulate, const char *what) {
    disp s;
    disp_init(&s, &pi0_backend_ref);
    float *x = randn((size_t)M * D, 1), *dy = randn((size_t)M * D, 1), *y = malloc((size_t)M * D * sizeof *y);
    x[0] *= 5; /* one large element: the r³ term matters */
    float *wd = randn((size_t)D, 0.5f), *mod = randn(2 * (size_t)D, 0.5f);
    pi0_vec w = {.data = wd, .n = (size_t)D, .name = "w"};
    float *dx = randn((size_t)M * D, 1), *dx0 = dup(dx, (size_t)M * D), *fd = malloc((size_t)M * D * sizeof *fd);
    rn_ctx c = {&s, x, y, dy, use_mod ? mod : NULL, use_mod ? NULL : &w, M, D};
    CHECK(op_rmsnorm_bwd(&s.d, dx, dy, x, M, D, use_mod ? NULL : &w, use_mod ? mod : NULL, k_eps, accumulate) ==
              PI0_OK, "rmsnorm_bwd");
    if (accumulate)
        for (size_t i = 0; i < (size_t)M * D; i++) dx[i] -= dx0[i];
    fd_grad(rn_loss, &c, x, (size_t)M * D, 1e-2f, fd);
    check_fd(what, fd, dx, (size_t)M * D, 3e-4);
    free(x); free(dy); free(y); free(wd); free(mod); free(dx); free(dx0); free(fd);
}

/* ---------------------------------------------------------------- geglu_bwd, silu_bwd */

typedef struct {
    disp *s;
    float *gu, *tmp;
    const float *dm;
    int M, F;
} gg_ctx;

/* m = gelu_tanh(g) ⊙ u with ref's forward ops. */
static double gg_loss(void *p) {
    gg_ctx *c = p;
    double l = 0;
    for (int m = 0; m < c->M; m++) {
        const float *g = c->gu + (size_t)m * 2 * c->F;
        memcpy(c->tmp, g, (size_t)c->F * sizeof *c->tmp);
        FWD(op_gelu(&c->s->d, c->tmp, (size_t)c->F));
        FWD(op_mul(&c->s->d, c->tmp, g + c->F, (size_t)c->F));
        l += dotd(c->dm + (size_t)m * c->F, c->tmp, (size_t)c->F);
    }
    return l;
}

static void test_geglu_bwd_fd(int M, int F) {
    disp s;
    disp_init(&s, &pi0_backend_ref);
    float *gu = randn((size_t)M * 2 * F, 1.5f), *dm = randn((size_t)M * F, 1), *tmp = malloc((size_t)F * sizeof *tmp);
    float *dgu = malloc((size_t)M * 2 * F * sizeof *dgu), *fd = malloc((size_t)M * 2 * F * sizeof *fd);
    gg_ctx c = {&s, gu, tmp, dm, M, F};
    CHECK(op_geglu_bwd(&s.d, dgu, dm, gu, M, F) == PI0_OK, "geglu_bwd");
    fd_grad(gg_loss, &c, gu, (size_t)M * 2 * F, 1e-2f, fd);
    check_fd("geglu_bwd", fd, dgu, (size_t)M * 2 * F, 3e-4);
    free(gu); free(dm); free(tmp); free(dgu); free(fd);
}

typedef struct {
    disp *s;
    float *x, *y;
    const float *dy;
    size_t n;
} el_ctx;

static double silu_loss(void *p) {
    el_ctx *c = p;
    memcpy(c->y, c->x, c->n * sizeof *c->y);
    FWD(op_silu(&c->s->d, c->y, c->n));
    return dotd(c->dy, c->y, c->n);
}

static void test_silu_bwd_fd(size_t n) {
    disp s;
    disp_init(&s, &pi0_backend_ref);
    float *x = randn(n, 3), *dy = randn(n, 1), *y = malloc(n * sizeof *y), *dx = dup(dy, n), *fd = malloc(n * sizeof *fd);
    el_ctx c = {&s, x, y, dy, n};
    CHECK(op_silu_bwd(&s.d, dx, x, n) == PI0_OK, "silu_bwd");
    fd_grad(silu_loss, &c, x, n, 1e-2f, fd);
    check_fd("silu_bwd", fd, dx, n, 3e-4);
    free(x); free(dy); free(y); free(dx); free(fd);
}

/* ---------------------------------------------------------------- rope_bwd */

typedef struct {
    disp *s;
    float *x, *y;
    const float *dy;
    const int32_t *pos;
    int M, H, hd;
} rp_ctx;

static const double k_theta = 10000.0;

static double rope_loss(void *p) {
    rp_ctx *c = p;
    const size_t n = (size_t)c->M * c->H * c->hd;
    memcpy(c->y, c->x, n * sizeof *c->y);
    FWD(op_rope(&c->s->d, c->y, c->M, c->H, c->hd, c->pos, k_theta));
    return dotd(c->dy, c->y, n);
}

static void test_rope_bwd_fd(int M, int H, int hd, const int32_t *pos) {
    disp s;
    disp_init(&s, &pi0_backend_ref);
    const size_t n = (size_t)M * H * hd;
    float *x = randn(n, 1), *dy = randn(n, 1), *y = malloc(n * sizeof *y), *dx = dup(dy, n), *fd = malloc(n * sizeof *fd);
    rp_ctx c = {&s, x, y, dy, pos, M, H, hd};
    CHECK(op_rope_bwd(&s.d, dx, M, H, hd, pos, k_theta) == PI0_OK, "rope_bwd");
    fd_grad(rope_loss, &c, x, n, 1e-2f, fd);
    check_fd("rope_bwd", fd, dx, n, 1e-4);
    free(x); free(dy); free(y); free(dx); free(fd);
}

/* ---------------------------------------------------------------- attention_bwd */

typedef struct {
    int M, Nk, k0, Hq, Hkv, hd;
    float scale;
    float *q, *k, *v, *dout;
    uint8_t *allowed;
} att_case;

typedef struct {
    disp *s;
    const att_case *a;
    float *out;
} at_ctx;

static double att_loss(void *p) {
    at_ctx *c = p;
    const att_case *a = c->a;
    FWD(op_attention(&c->s->d, c->out, a->q, a->k, a->v, a->M, a->Nk, a->Hq, a->Hkv, a->hd, a->allowed, a->scale));
    return dotd(a->dout, c->out, (size_t)a->M * a->Hq * a->hd);
}

/* A suffix of M query rows over Nk = k0 + M keys (a fixed prefix of k0, then the suffix's own):
 * prefix keys mostly allowed, the suffix causal, a few disallowed entries, row `dead` fully masked
 * (dead < 0: none). */
static void att_case_init(att_case *a, int M, int k0, int Hq, int Hkv, int hd, int dead) {
    a->M = M;
    a->k0 = k0;
    a->Nk = k0 + M;
    a->Hq = Hq;
    a->Hkv = Hkv;
    a->hd = hd;
    a->scale = 1.0f / sqrtf((float)hd);
    a->q = randn((size_t)M * Hq * hd, 1.5f);
    a->k = randn((size_t)a->Nk * Hkv * hd, 1.5f);
    a->v = randn((size_t)a->Nk * Hkv * hd, 1);
    a->dout = randn((size_t)M * Hq * hd, 1);
    a->allowed = malloc((size_t)M * a->Nk);
    for (int i = 0; i < M; i++)
        for (int j = 0; j < a->Nk; j++)
            a->allowed[(size_t)i * a->Nk + j] = j < k0 ? (i + j) % 5 != 3 : j - k0 <= i;
    if (dead >= 0) memset(a->allowed + (size_t)dead * a->Nk, 0, (size_t)a->Nk);
}

static void att_case_free(att_case *a) {
    free(a->q); free(a->k); free(a->v); free(a->dout); free(a->allowed);
}

static void test_attention_bwd_fd(att_case *a, const char *what) {
    disp s;
    disp_init(&s, &pi0_backend_ref);
    const int qw = a->Hq * a->hd, kw = a->Hkv * a->hd, nk = a->Nk - a->k0;
    const size_t nq = (size_t)a->M * qw, nkv = (size_t)nk * kw;
    float *dq = malloc(nq * sizeof *dq), *dk = malloc(nkv * sizeof *dk), *dv = malloc(nkv * sizeof *dv);
    float *out = malloc(nq * sizeof *out), *fd = malloc((nq > nkv ? nq : nkv) * sizeof *fd);
    at_ctx c = {&s, a, out};
    CHECK(op_attention_bwd(&s.d, dq, dk, dv, a->dout, a->q, a->k, a->v, a->M, a->Nk, a->k0, a->Hq, a->Hkv, a->hd,
                           a->allowed, a->scale) == PI0_OK, "attention_bwd");
    char name[96];
    fd_grad(att_loss, &c, a->q, nq, 1e-2f, fd);
    snprintf(name, sizeof name, "attention_bwd %s dq", what);
    check_fd(name, fd, dq, nq, 3e-4);
    fd_grad(att_loss, &c, a->k + (size_t)a->k0 * kw, nkv, 1e-2f, fd);
    snprintf(name, sizeof name, "attention_bwd %s dk", what);
    check_fd(name, fd, dk, nkv, 3e-4);
    fd_grad(att_loss, &c, a->v + (size_t)a->k0 * kw, nkv, 1e-2f, fd);
    snprintf(name, sizeof name, "attention_bwd %s dv", what);
    check_fd(name, fd, dv, nkv, 3e-4);
    free(dq); free(dk); free(dv); free(out); free(fd);
}


/* ---------------------------------------------------------------- fast against ref */
#ifdef PI0_HAVE_FAST
#include <sys/mman.h>

/* fast's prepare gives a matrix's pages back (madvise: an anonymous mapping then reads zeros), so
 * its weights live in their own mappings, with separate copies for ref. */
static void *map_copy(const void *src, size_t bytes) {
    void *p = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) return NULL;
    memcpy(p, src, bytes);
    return p;
}

/* The comparison of one op's output on fast against ref's: max |diff| within tol·max(1, max|ref|)
 * and PCC ≥ min_pcc; and the op ran on fast (the statistics count no fallback to ref). */
static void check_fast(const char *what, disp *f, pi0_op op, const float *ref, const float *got, size_t n, double tol,
                       double min_pcc) {
    cmp_result r = compare(ref, got, 1, (int)n, NULL);
    const double bound = tol * (r.max_ref > 1 ? r.max_ref : 1);
    const pi0_op_stats *st = &f->stats.op[COMP_SUFFIX][op];
    printf("  fast %-33s max|diff| %.3e (max|ref| %.3f, bound %.1e)  PCC %.8f  calls fast %ld, ref fallback %ld\n",
           what, r.max_diff, r.max_ref, bound, r.pcc, st->calls[0], st->calls[1]);
    CHECK(st->calls[0] > 0 && st->calls[1] == 0, "%s: fast's op did not run (fallback to ref)", what);
    CHECK(!r.nan && r.max_diff <= bound && r.pcc >= min_pcc, "%s: fast differs from ref", what);
}

static void fast_matmul_dx_cases(disp *f, disp *r, const pi0_mat *Wf, const pi0_mat *Wr, int M, int with_gate,
                                 const char *what, double tol, double min_pcc) {
    const int N = Wr->rows, K = Wr->cols;
    float *dy = randn((size_t)M * N, 1), *gate = with_gate ? randn((size_t)N, 1) : NULL;
    for (int acc = 0; acc < 2; acc++) {
        float *dxr = randn((size_t)M * K, 1), *dxf = dup(dxr, (size_t)M * K);
        CHECK(op_matmul_dx(&r->d, dxr, dy, M, Wr, gate, acc) == PI0_OK, "ref matmul_dx");
        CHECK(op_matmul_dx(&f->d, dxf, dy, M, Wf, gate, acc) == PI0_OK, "fast matmul_dx");
        char name[96];
        snprintf(name, sizeof name, "%s%s", what, acc ? ", accumulate" : "");
        check_fast(name, f, OP_MATMUL_DX, dxr, dxf, (size_t)M * K, tol, min_pcc);
        free(dxr);
        free(dxf);
    }
    free(dy);
    free(gate);
}

static void fast_elementwise_cases(disp *f, disp *r) {
    const int M = 51, D = 256, F = 512;
    const float tol = 5e-6f, pcc = 0.999999; /* vectorized expf/tanhf differ by a few ulp */
    float *x = randn((size_t)M * D, 1), *dy = randn((size_t)M * D, 1), *mod = randn(2 * (size_t)D, 0.5f);
    float *wd = randn((size_t)D, 0.5f);
    pi0_vec w = {.data = wd, .n = (size_t)D, .name = "w"};
    for (int variant = 0; variant < 3; variant++) {
        const int use_mod = variant > 0, acc = variant == 2;
        float *dxr = randn((size_t)M * D, 1), *dxf = dup(dxr, (size_t)M * D);
        const pi0_vec *wp = use_mod ? NULL : &w;
        const float *mp = use_mod ? mod : NULL;
        CHECK(op_rmsnorm_bwd(&r->d, dxr, dy, x, M, D, wp, mp, k_eps, acc) == PI0_OK, "ref rmsnorm_bwd");
        CHECK(op_rmsnorm_bwd(&f->d, dxf, dy, x, M, D, wp, mp, k_eps, acc) == PI0_OK, "fast rmsnorm_bwd");
        check_fast(variant == 0 ? "rmsnorm_bwd w" : variant == 1 ? "rmsnorm_bwd mod" : "rmsnorm_bwd mod, accumulate", f,
                   OP_RMSNORM_BWD, dxr, dxf, (size_t)M * D, tol, pcc);
        free(dxr);
        free(dxf);
    }
    float *gu = randn((size_t)M * 2 * F, 1.5f), *dm = randn((size_t)M * F, 1);
    float *dgr = malloc((size_t)M * 2 * F * sizeof *dgr), *dgf = malloc((size_t)M * 2 * F * sizeof *dgf);
    CHECK(op_geglu_bwd(&r->d, dgr, dm, gu, M, F) == PI0_OK && op_geglu_bwd(&f->d, dgf, dm, gu, M, F) == PI0_OK, "geglu_bwd");
    check_fast("geglu_bwd", f, OP_GEGLU_BWD, dgr, dgf, (size_t)M * 2 * F, tol, pcc);
    const size_t n = (size_t)M * F;
    float *sx = randn(n, 3), *sr = dup(dm, n), *sf = dup(dm, n);
    CHECK(op_silu_bwd(&r->d, sr, sx, n) == PI0_OK && op_silu_bwd(&f->d, sf, sx, n) == PI0_OK, "silu_bwd");
    check_fast("silu_bwd", f, OP_SILU_BWD, sr, sf, n, tol, pcc);
    /* RoPE at the suffix's positions (fast's angles are f32: pos·inv_freq) */
    const int H = 8, hd = 64;
    int32_t pos[51];
    for (int m = 0; m < M; m++) pos[m] = 780 + m;
    float *rr = randn((size_t)M * H * hd, 1), *rf = dup(rr, (size_t)M * H * hd);
    CHECK(op_rope_bwd(&r->d, rr, M, H, hd, pos, k_theta) == PI0_OK && op_rope_bwd(&f->d, rf, M, H, hd, pos, k_theta) == PI0_OK,
          "rope_bwd");
    check_fast("rope_bwd", f, OP_ROPE_BWD, rr, rf, (size_t)M * H * hd, 1e-4, pcc);
    free(x); free(dy); free(mod); free(wd); free(gu); free(dm); free(dgr); free(dgf); free(sx); free(sr); free(sf);
    free(rr); free(rf);
}

static void fast_attention_case(disp *f, disp *r, att_case *a, const char *what) {
    const int qw = a->Hq * a->hd, kw = a->Hkv * a->hd, nk = a->Nk - a->k0;
    const size_t nq = (size_t)a->M * qw, nkv = (size_t)nk * kw;
    float *g[2][3];
    disp *ds[2] = {r, f};
    for (int b = 0; b < 2; b++) {
        g[b][0] = malloc(nq * sizeof(float));
        g[b][1] = malloc(nkv * sizeof(float));
        g[b][2] = malloc(nkv * sizeof(float));
        CHECK(op_attention_bwd(&ds[b]->d, g[b][0], g[b][1], g[b][2], a->dout, a->q, a->k, a->v, a->M, a->Nk, a->k0, a->Hq,
                               a->Hkv, a->hd, a->allowed, a->scale) == PI0_OK, "attention_bwd");
    }
    const char *part[3] = {"dq", "dk", "dv"};
    for (int i = 0; i < 3; i++) {
        char name[96];
        snprintf(name, sizeof name, "attention_bwd %s %s", what, part[i]);
        check_fast(name, f, OP_ATTENTION_BWD, g[0][i], g[1][i], i ? nkv : nq, 1e-5, 0.999999);
    }
    for (int b = 0; b < 2; b++)
        for (int i = 0; i < 3; i++) free(g[b][i]);
}

/* Everything on fast against ref; run once with bf16 GEMMs (where the CPU has AVX512-BF16) and
 * once with PI0_FAST_F32 set (f32 GEMMs). */
static void test_fast(const char *mode, int gemms_only) {
    const pi0_backend *fb = &pi0_backend_fast;
    pi0_config c;
    memset(&c, 0, sizeof c);
    c.vision = (pi0_siglip_config){.image_size = 28, .patch_size = 14, .width = 64, .mlp_dim = 128, .num_heads = 4};
    c.vlm = (pi0_gemma_config){.width = 256, .mlp_dim = 1024, .num_heads = 8, .num_kv_heads = 1, .head_dim = 64};
    c.expert = (pi0_gemma_config){.width = 256, .mlp_dim = 512, .num_heads = 8, .num_kv_heads = 1, .head_dim = 64};
    c.state_dim = 8;
    c.num_cameras = 1;
    c.max_token_len = 16;
    c.action_horizon = 51;
    disp f, r;
    disp_init(&f, fb);
    disp_init(&r, &pi0_backend_ref);
    f.d.ex.num_threads = 2;
    /* weights: a bf16 checkpoint matrix [512, 128] (wider than tall, as the expert's down
     * projection) and a stack [F32 192; BF16 128] x 128 */
    const int K = 128, Nb = 512;
    stacked sw;
    stacked_init(&sw, 192, 128, K);
    uint16_t *hb = malloc((size_t)Nb * K * sizeof *hb);
    for (size_t i = 0; i < (size_t)Nb * K; i++) hb[i] = f32_to_bf16(0.1f * (float)((rng_next(&g_rng) % 2001) / 1000.0 - 1.0));
    pi0_mat big_r = {.data = hb, .dtype = DT_BF16, .rows = Nb, .cols = K, .name = "big"};
    pi0_mat big_f = big_r, pa = sw.a, pb = sw.b, st_f = sw.stack;
    big_f.data = map_copy(hb, (size_t)Nb * K * 2);
    pa.data = map_copy(sw.fa, (size_t)sw.a.rows * K * 4);
    pb.data = map_copy(sw.hb, (size_t)sw.b.rows * K * 2);
    const pi0_mat *parts[2] = {&pa, &pb};
    st_f.parts = parts;
    pi0_mat *mats[2] = {&big_f, &st_f};
    pi0_weight_list wl = {.mats = mats, .nmats = 2};
    void *handle = NULL;
    pi0_err e = {{0}};
    CHECK(big_f.data && pa.data && pb.data, "mmap");
    pi0_status st = big_f.data && pa.data && pb.data ? fb->prepare(&wl, &handle, &e) : PI0_ERR_NOMEM;
    if (st == PI0_OK) st = fb->session_init(&f.d.ex, &c, &e);
    CHECK(st == PI0_OK, "fast backend: %s", e.msg);
    char desc[128];
    fb->describe(handle, desc, sizeof desc);
    printf("fast (%s: %s) against ref:\n", mode, desc);
    if (st == PI0_OK) {
        f.d.ex.weights = handle;
        const int bf16 = strstr(desc, "bf16") != NULL;
        const double tol = bf16 ? 1e-2 : 1e-5, pcc = bf16 ? 0.999 : 0.999999;
        fast_matmul_dx_cases(&f, &r, &big_f, &big_r, 51, 0, "matmul_dx [512,128] (bf16 ckpt)", tol, pcc);
        fast_matmul_dx_cases(&f, &r, &st_f, &sw.stack, 7, 1, "matmul_dx stacked, gate", tol, pcc);
        /* a second call reuses the plain copy made by the first */
        fast_matmul_dx_cases(&f, &r, &st_f, &sw.stack, 20, 1, "matmul_dx stacked, gate, again", tol, pcc);
    }
    if (st == PI0_OK && !gemms_only) { /* the f32 ops do not depend on the GEMMs' dtype */
        fast_elementwise_cases(&f, &r);
        att_case a;
        att_case_init(&a, 51, 100, 8, 1, 64, 5); /* the expert's shape: GQA 8:1, a prefix of 100 */
        fast_attention_case(&f, &r, &a, "Hq=8 Hkv=1 k0=100");
        att_case_free(&a);
        att_case_init(&a, 9, 4, 4, 2, 16, 0);
        fast_attention_case(&f, &r, &a, "Hq=4 Hkv=2 k0=4");
        att_case_free(&a);
        att_case_init(&a, 6, 3, 2, 2, 8, -1);
        fast_attention_case(&f, &r, &a, "Hq=Hkv=2 k0=3");
        att_case_free(&a);
    }
    fb->session_free(&f.d.ex);
    if (handle) fb->release(handle, &wl);
    if (big_f.data) munmap((void *)big_f.data, (size_t)Nb * K * 2);
    if (pa.data) munmap((void *)pa.data, (size_t)sw.a.rows * K * 4);
    if (pb.data) munmap((void *)pb.data, (size_t)sw.b.rows * K * 2);
    free(hb);
    stacked_free(&sw);
}
#endif

/* ---------------------------------------------------------------- main */

int main(void) {
    rng_seed(&g_rng, 20260518);
    printf("finite differences on ref:\n");
    {
        stacked w;
        stacked_init(&w, 24, 16, 32);
        test_matmul_dx_fd(&w.a, 3, 0, 0, "matmul_dx F32");
        test_matmul_dx_fd(&w.stack, 5, 1, 0, "matmul_dx stacked, gate");
        test_matmul_dx_fd(&w.stack, 4, 1, 1, "matmul_dx stacked, gate, accumulate");
        stacked_free(&w);
    }
    test_rmsnorm_bwd_fd(3, 48, 0, 0, "rmsnorm_bwd w");
    test_rmsnorm_bwd_fd(3, 48, 1, 0, "rmsnorm_bwd mod");
    test_rmsnorm_bwd_fd(2, 40, 1, 1, "rmsnorm_bwd mod, accumulate");
    test_geglu_bwd_fd(3, 40);
    test_silu_bwd_fd(200);
    {
        const int32_t pos[4] = {0, 7, 300, 811};
        test_rope_bwd_fd(4, 3, 16, pos);
    }
    {
        att_case a;
        att_case_init(&a, 4, 6, 4, 1, 8, 2); /* GQA, k0 > 0, row 2 fully masked */
        test_attention_bwd_fd(&a, "Hq=4 Hkv=1 k0=6");
        att_case_free(&a);
        att_case_init(&a, 5, 3, 2, 2, 8, -1);
        test_attention_bwd_fd(&a, "Hq=Hkv=2 k0=3");
        att_case_free(&a);
        att_case_init(&a, 3, 0, 4, 2, 4, 0); /* GQA with two kv heads, k0 = 0, row 0 fully masked */
        test_attention_bwd_fd(&a, "Hq=4 Hkv=2 k0=0");
        att_case_free(&a);
    }
#ifdef PI0_HAVE_FAST
    test_fast("default", 0);
    setenv("PI0_FAST_F32", "1", 1);
    test_fast("PI0_FAST_F32", 1);
#endif
    return test_summary();
}
