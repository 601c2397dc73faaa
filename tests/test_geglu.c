/* test_geglu MODEL_DIR BACKEND — Gemma's gate·up as one GEMM over the stacked [gate; up] matrix:
 *  - the model hands backends each layer's gate_up and never gate or up on their own, and a
 *    backend's prepare of the stack keeps no copy of the parts (each weight prepared once);
 *  - on BACKEND, the geglu epilogue (plain, with π0.5's gate, accumulated) against ref's, and ref's
 *    against gelu_tanh(gate half) ⊙ up half of ref's plain GEMM over the stack (exactly equal);
 *  - the plain GEMM over the stack (what the backward pass recomputes) against ref;
 *  - a geglu output marked gemm_input read by a down projection, all rows at once and in two
 *    row ranges (π0.5's frozen rows), against ref;
 *  - a geglu epilogue with a bias, GELU or mul is refused.
 * Exit 77 when BACKEND is not built here or has no device. */
#include <sys/mman.h>

#include "../src/model/model.h"
#include "test_util.h"

static float gelu1(float v) { return 0.5f * v * (1.0f + tanhf(0.7978845608028654f * (v + 0.044715f * v * v * v))); }

/* An f32 matrix in its own mapping: fast releases the pages of what it prepared (madvise). */
static float *mapped(size_t n, uint64_t seed, float scale) {
    float *p = mmap(NULL, n * sizeof *p, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) { printf("out of memory\n"); exit(1); }
    pi0_gaussian(seed, p, n);
    for (size_t i = 0; i < n; i++) p[i] *= scale;
    return p;
}

static void check_listing(pi0_model *m) {
    const pi0_config *c = &m->cfg;
    int stacks = 0, parts = 0;
    for (int i = 0; i < m->wl.nmats; i++)
        for (int g = 0; g < 2; g++) {
            const gemma_weights *gw = g ? &m->w.expert : &m->w.vlm;
            for (int l = 0; l < (g ? c->expert.depth : c->vlm.depth); l++) {
                stacks += m->wl.mats[i] == &gw->layers[l].gate_up;
                parts += m->wl.mats[i] == &gw->layers[l].gate || m->wl.mats[i] == &gw->layers[l].up;
            }
        }
    CHECK(stacks == c->vlm.depth + c->expert.depth, "weights listed for the backends: %d gate_up stacks, want %d",
          stacks, c->vlm.depth + c->expert.depth);
    CHECK(parts == 0, "gate or up listed on their own %d times (they would be prepared twice)", parts);
}

int main(int argc, char **argv) {
    if (argc != 3) { printf("usage: test_geglu MODEL_DIR BACKEND\n"); return 2; }
    setvbuf(stdout, NULL, _IONBF, 0);
    const pi0_backend *be = pi0_backend_find(argv[2]);
    if (!be) { printf("skip: backend %s not built\n", argv[2]); return 77; }
    pi0_model *model = pi0_model_create();
    CHECK(pi0_model_load(model, argv[1]) == PI0_OK, "load %s: %s", argv[1], pi0_model_error(model));
    if (g_fail) return test_summary();
    check_listing(model);

    const pi0_config *c = &model->cfg;
    const int M = 37, K = c->vlm.width, F = c->vlm.mlp_dim;
    const size_t nw = (size_t)F * K;
    /* the backend's stack, and a copy for ref (fast's prepare releases the pages it read) */
    float *wg = mapped(nw, 1, 1.0f / sqrtf((float)K)), *wu = mapped(nw, 2, 1.0f / sqrtf((float)K));
    float *cg = malloc(nw * sizeof *cg), *cu = malloc(nw * sizeof *cu);
    memcpy(cg, wg, nw * sizeof *cg);
    memcpy(cu, wu, nw * sizeof *cu);
    pi0_mat g = {.data = wg, .dtype = DT_F32, .rows = F, .cols = K, .name = "gate"}, u = g, rg = g, ru = g;
    u.data = wu;
    rg.data = cg;
    ru.data = cu;
    const pi0_mat *parts[2] = {&g, &u}, *rparts[2] = {&rg, &ru};
    pi0_mat gu = {.dtype = DT_F32, .rows = 2 * F, .cols = K, .name = "gate_up", .parts = parts, .nparts = 2};
    pi0_mat rgu = gu;
    rgu.parts = rparts;
    const int D = 24; /* a down projection [D, F] */
    float *wd = mapped((size_t)D * F, 6, 1.0f / sqrtf((float)F));
    float *cd = malloc((size_t)D * F * sizeof *cd);
    memcpy(cd, wd, (size_t)D * F * sizeof *cd);
    pi0_mat down = {.data = wd, .dtype = DT_F32, .rows = D, .cols = F, .name = "down"}, rdown = down;
    rdown.data = cd;
    pi0_mat *mats[2] = {&gu, &down};
    pi0_weight_list wl = {.mats = mats, .nmats = 2};

    pi0_err e = {0};
    void *handle = NULL;
    if (be->prepare && be->prepare(&wl, &handle, &e) != PI0_OK) {
        printf("skip: %s backend unavailable: %s\n", be->name, e.msg);
        pi0_model_free(model);
        return 77;
    }
    /* the stack is prepared from its parts; the parts get no copy of their own */
    CHECK(!be->prepare || (gu.prepared[be->slot] && !g.prepared[be->slot] && !u.prepared[be->slot]),
          "%s prepare: stack %p, gate %p, up %p", be->name, gu.prepared[be->slot], g.prepared[be->slot],
          u.prepared[be->slot]);
    pi0_dispatch d = {.be = be, .err = &e};
    d.ex.num_threads = 2;
    d.ex.weights = handle;
    CHECK(!be->session_init || be->session_init(&d.ex, c, &e) == PI0_OK, "session: %s", e.msg);
    if (g_fail) return test_summary();

    float *x = malloc((size_t)M * K * sizeof *x), *gate = malloc((size_t)F * sizeof *gate),
          *y0 = malloc((size_t)M * F * sizeof *y0), *got = malloc((size_t)M * 2 * F * sizeof *got),
          *want = malloc((size_t)M * 2 * F * sizeof *want), *plain = malloc((size_t)M * 2 * F * sizeof *plain);
    pi0_gaussian(3, x, (size_t)M * K);
    pi0_gaussian(4, gate, (size_t)F);
    pi0_gaussian(5, y0, (size_t)M * F);
    float *dx = be_alloc(&d, (size_t)M * K * sizeof *dx), *dy = be_alloc(&d, (size_t)M * 2 * F * sizeof *dy),
          *dgate = be_alloc(&d, (size_t)F * sizeof *dgate);
    op_upload(&d, dx, x, (size_t)M * K * sizeof *x);
    op_upload(&d, dgate, gate, (size_t)F * sizeof *gate);
    const pi0_exec rex = {.num_threads = 2};
    /* bf16 backends round x and the weights: PCC, not equality */
    const double min_pcc = be == &pi0_backend_ref ? 1.0 - 1e-12 : 0.9999;

    /* the plain GEMM over the stack: row m is [gate(x_m) | up(x_m)] */
    CHECK(op_matmul(&d, dy, dx, M, &gu, NULL) == PI0_OK, "plain GEMM over the stack: %s", e.msg);
    op_download(&d, got, dy, (size_t)M * 2 * F * sizeof *got);
    CHECK(pi0_backend_ref.matmul(&rex, plain, x, M, &rgu, NULL) == PI0_OK, "ref plain GEMM");
    cmp_result r = compare(plain, got, M, 2 * F, NULL);
    printf("%s plain [gate; up] GEMM  max|diff| %.3e  PCC %.9f\n", be->name, r.max_diff, r.pcc);
    CHECK(!r.nan && r.pcc >= min_pcc, "plain GEMM over the stack: PCC %.9f", r.pcc);

    for (int variant = 0; variant < 3; variant++) {
        const char *what[] = {"geglu", "geglu + gate", "geglu + gate, accumulated"};
        pi0_epilogue ep = {.geglu = 1, .gate = variant ? dgate : NULL, .accumulate = variant == 2};
        pi0_epilogue rep = {.geglu = 1, .gate = variant ? gate : NULL, .accumulate = variant == 2};
        op_upload(&d, dy, y0, (size_t)M * F * sizeof *y0);
        CHECK(op_matmul(&d, dy, dx, M, &gu, &ep) == PI0_OK, "%s: %s", what[variant], e.msg);
        op_download(&d, got, dy, (size_t)M * F * sizeof *got);
        memcpy(want, y0, (size_t)M * F * sizeof *want);
        CHECK(pi0_backend_ref.matmul(&rex, want, x, M, &rgu, &rep) == PI0_OK, "ref %s", what[variant]);
        int exact = 1; /* ref's geglu is the two GEMMs' halves combined, bit for bit */
        for (int m = 0; m < M; m++)
            for (int n = 0; n < F; n++) {
                float v = gelu1(plain[(size_t)m * 2 * F + n]) * plain[(size_t)m * 2 * F + F + n];
                if (variant) v *= gate[n];
                if (variant == 2) v += y0[(size_t)m * F + n];
                exact &= v == want[(size_t)m * F + n];
            }
        CHECK(exact, "ref %s differs from gelu_tanh(gate half) ⊙ up half of the plain GEMM", what[variant]);
        r = compare(want, got, M, F, NULL);
        printf("%s %-26s max|diff| %.3e  PCC %.9f\n", be->name, what[variant], r.max_diff, r.pcc);
        CHECK(!r.nan && r.pcc >= min_pcc, "%s: PCC %.9f", what[variant], r.pcc);
    }
    /* gemm_input: the backend may keep the geglu output only as the down projection's operand */
    float *dz = be_alloc(&d, (size_t)M * D * sizeof *dz), *z = malloc((size_t)M * D * sizeof *z),
          *zr = malloc((size_t)M * D * sizeof *zr);
    CHECK(pi0_backend_ref.matmul(&rex, want, x, M, &rgu, &(pi0_epilogue){.geglu = 1}) == PI0_OK, "ref geglu");
    CHECK(pi0_backend_ref.matmul(&rex, zr, want, M, &rdown, NULL) == PI0_OK, "ref down");
    for (int split = 0; split < 2; split++) {
        const int f = split ? 5 : M; /* rows of the first down call */
        CHECK(op_matmul(&d, dy, dx, M, &gu, &(pi0_epilogue){.geglu = 1, .gemm_input = 1}) == PI0_OK, "geglu: %s",
              e.msg);
        CHECK(op_matmul(&d, dz, dy, f, &down, NULL) == PI0_OK, "down: %s", e.msg);
        if (f < M)
            CHECK(op_matmul(&d, dz + (size_t)f * D, dy + (size_t)f * F, M - f, &down, NULL) == PI0_OK, "down: %s",
                  e.msg);
        op_download(&d, z, dz, (size_t)M * D * sizeof *z);
        r = compare(zr, z, M, D, NULL);
        printf("%s geglu (gemm_input) -> down%s  max|diff| %.3e  PCC %.9f\n", be->name,
               split ? " in 2 row ranges" : "", r.max_diff, r.pcc);
        CHECK(!r.nan && r.pcc >= min_pcc, "geglu (gemm_input) -> down: PCC %.9f", r.pcc);
    }
    be_free(&d, dz);
    free(z);
    free(zr);

    const pi0_epilogue bad[] = {{.geglu = 1, .gelu = 1}, {.geglu = 1, .mul = dy}};
    for (int i = 0; i < 2; i++)
        CHECK(op_matmul(&d, dy, dx, M, &gu, &bad[i]) == PI0_ERR_ARG, "geglu with %s not refused",
              i ? "mul" : "gelu");

    be_free(&d, dx);
    be_free(&d, dy);
    be_free(&d, dgate);
    if (be->session_free) be->session_free(&d.ex);
    if (be->release) be->release(handle, &wl);
    munmap(wg, nw * sizeof *wg);
    munmap(wu, nw * sizeof *wu);
    munmap(wd, (size_t)D * F * sizeof *wd);
    free(cd);
    free(cg); free(cu); free(x); free(gate); free(y0); free(got); free(want); free(plain);
    pi0_model_free(model);
    return test_summary();
}
