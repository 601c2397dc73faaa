/* fast.c — the accelerated CPU backend.
 *
 * GEMMs run through oneDNN (Debian libdnnl): weights are reordered once per model into the
 * blocked layout oneDNN's matmul prefers, as bf16 on CPUs with AVX512-BF16 (activations are
 * rounded to bf16, accumulation is f32) and as f32 elsewhere; bias, GELU(tanh), π0.5's gate and
 * the residual add run as post-ops inside the GEMM. Gemma's gate and up projections are one GEMM
 * over the stacked [gate; up] matrix into a [M, 2F] float32 scratch, then one pass computes
 * gelu_tanh(gate) ⊙ up (no oneDNN post-op combines two column ranges of the output). Attention is two batched oneDNN
 * matmuls (q·kᵀ, p·v, all query heads of a KV head at once) around an f32 masked softmax.
 * Norms, RoPE, softmax and elementwise ops are f32 loops, threaded with OpenMP and written for
 * the compiler to vectorize. The reordered copy replaces the checkpoint pages (released with
 * madvise), so weights are held once — except the matrices matmul_dx reads (exact RTC guidance),
 * which get a plain second copy on first use (see plain_copy). The other backward ops are f32:
 * OpenMP loops, and oneDNN f32 GEMMs for attention's. */
#include <dnnl.h>
#include <math.h>
#include <omp.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>

#include "host_ops.h"

typedef struct {
    dnnl_memory_desc_t md;   /* weights as a [K, N] matrix in the primitive's layout */
    void *data;
    _Atomic(void *) plain;   /* row-major [N, K] copy for matmul_dx, made on its first use */
} fast_mat;

typedef struct {
    dnnl_engine_t eng;
    int bf16;                /* 1: bf16 weights/activations; 0: f32 */
    fast_mat *mats;          /* reordered copies, parallel to the weight list's mats */
    int n;                   /* entries of mats holding data */
    size_t bytes;
} fast_model;

typedef struct prim_entry prim_entry;

typedef struct {
    dnnl_engine_t eng;
    dnnl_stream_t stream;
    prim_entry *prims;       /* [PRIM_SLOTS] cached primitives */
    int bf16;
    uint16_t *xb;            /* activations rounded to bf16 [cap_rows, max K] */
    size_t xb_cap;
    uint16_t *qb, *kb, *vb, *pb; /* attention operands in bf16 */
    float *sc;               /* attention scores [heads, M, Nk] */
    float *gu;               /* GeGLU: the stacked [gate | up] GEMM's output [rows, 2F] */
    size_t gu_cap;
    size_t att_cap, kv_cap, q_cap;
    float *inv_freq;         /* RoPE frequencies, [head_dim / 2] */
    float *bw;               /* backward ops' f32 scratch (grown on demand) */
    size_t bw_cap;
    int rope_hd;
    double rope_theta;
} fast_session;

#define DNNL_OK(x) ((x) == dnnl_success)

enum { PRIM_SLOTS = 1024, KEY_WORDS = 6 };

struct prim_entry {
    uint64_t key[KEY_WORDS];
    int used, mul_idx, gate_idx;
    dnnl_primitive_t prim;
    dnnl_memory_t src, wei, dst, bias, mul, gate;
};

static void prim_entry_clear(prim_entry *e) {
    dnnl_memory_t m[6] = {e->src, e->wei, e->dst, e->bias, e->mul, e->gate};
    for (int i = 0; i < 6; i++)
        if (m[i]) dnnl_memory_destroy(m[i]);
    if (e->prim) dnnl_primitive_destroy(e->prim);
    memset(e, 0, sizeof *e);
}


/* ---------------------------------------------------------------- bf16 rounding */

/* Round to nearest even, vectorizable (NaN payloads may become Inf: activations are finite). */
static inline uint16_t to_bf16(float f) {
    uint32_t u;
    memcpy(&u, &f, 4);
    return (uint16_t)((u + 0x7fffu + ((u >> 16) & 1u)) >> 16);
}

static void round_bf16(uint16_t *dst, const float *src, size_t n, int threads) {
#pragma omp parallel for simd num_threads(threads) schedule(static)
    for (size_t i = 0; i < n; i++) dst[i] = to_bf16(src[i]);
}

/* ---------------------------------------------------------------- model preparation */

static void fast_release(void *handle, const pi0_weight_list *wl) {
    fast_model *fm = handle;
    if (!fm) return;
    for (int i = 0; i < fm->n; i++) {
        free(fm->mats[i].data);
        free(atomic_load(&fm->mats[i].plain));
        wl->mats[i]->prepared[PI0_SLOT_FAST] = NULL;
    }
    free(fm->mats);
    if (fm->eng) dnnl_engine_destroy(fm->eng);
    free(fm);
}

static int cpu_has_bf16(void) {
    dnnl_cpu_isa_t isa = dnnl_get_effective_cpu_isa();
    return (isa & dnnl_cpu_isa_avx512_core_bf16) == dnnl_cpu_isa_avx512_core_bf16;
}

/* The weights layout the matmul primitive wants for [K, N] (chosen for a typical M). */
static int preferred_weights_md(dnnl_engine_t eng, int bf16, int K, int N, dnnl_memory_desc_t *out) {
    dnnl_memory_desc_t a, b, c;
    dnnl_dims_t da = {256, K}, db = {K, N}, dc = {256, N};
    dnnl_data_type_t dt = bf16 ? dnnl_bf16 : dnnl_f32;
    if (!DNNL_OK(dnnl_memory_desc_init_by_tag(&a, 2, da, dt, dnnl_ab)) ||
        !DNNL_OK(dnnl_memory_desc_init_by_tag(&b, 2, db, dt, dnnl_format_tag_any)) ||
        !DNNL_OK(dnnl_memory_desc_init_by_tag(&c, 2, dc, dnnl_f32, dnnl_ab)))
        return 0;
    dnnl_matmul_desc_t md;
    dnnl_primitive_desc_t pd;
    if (!DNNL_OK(dnnl_matmul_desc_init(&md, &a, &b, NULL, &c)) ||
        !DNNL_OK(dnnl_primitive_desc_create(&pd, &md, NULL, eng, NULL)))
        return 0;
    *out = *dnnl_primitive_desc_query_md(pd, dnnl_query_weights_md, 0);
    dnnl_primitive_desc_destroy(pd);
    return 1;
}

/* The checkpoint pages of a matrix (each part of a stack) are no longer needed once reordered:
 * give them back (file-backed, read-only mapping: ref can still fault them in again). */
static void release_pages(const pi0_mat *W) {
    if (W->parts) {
        for (int i = 0; i < W->nparts; i++) release_pages(W->parts[i]);
        return;
    }
    const long page = sysconf(_SC_PAGESIZE);
    const size_t nbytes = (size_t)W->rows * W->cols * dtype_size(W->dtype);
    uintptr_t a = (uintptr_t)W->data / page * page, z = ((uintptr_t)W->data + nbytes + page - 1) / page * page;
    madvise((void *)a, z - a, MADV_DONTNEED);
}

/* Reorders one checkpoint matrix [N, K] (row-major = [K, N] in "ba" order) into fm. */
static pi0_status prepare_mat(fast_model *fm, pi0_mat *W, fast_mat *out, dnnl_stream_t st, pi0_err *e) {
    const int N = W->rows, K = W->cols;
    const size_t n = (size_t)N * K;
    RETURN_ERR_IF(!preferred_weights_md(fm->eng, fm->bf16, K, N, &out->md), e, PI0_ERR_UNSUPPORTED,
                  "fast backend: oneDNN has no matmul for tensor '%s' [%d, %d]", W->name, N, K);
    const size_t bytes = dnnl_memory_desc_get_size(&out->md);
    out->data = aligned_alloc(64, (bytes + 63) / 64 * 64);
    /* Source in the kernel's dtype: bf16 checkpoints are used in place, others (and stacks of
     * several tensors) converted row by row. */
    const pi0_dtype want = fm->bf16 ? DT_BF16 : DT_F32;
    const int convert = W->parts || W->dtype != want;
    void *tmp = NULL;
    const void *src = W->data;
    if (convert) {
        tmp = malloc(n * dtype_size(want));
        float *row = malloc((size_t)K * sizeof *row);
        if (tmp && row)
            for (int r = 0; r < N; r++) {
                pi0_mat_rows_f32(row, W, r, 1);
                if (fm->bf16)
                    for (int k = 0; k < K; k++) ((uint16_t *)tmp)[(size_t)r * K + k] = f32_to_bf16(row[k]);
                else
                    memcpy((float *)tmp + (size_t)r * K, row, (size_t)K * sizeof *row);
            }
        if (!row) { free(tmp); tmp = NULL; }
        free(row);
        src = tmp;
    }
    RETURN_ERR_IF(!out->data || (convert && !tmp), e, PI0_ERR_NOMEM, "fast backend: out of memory");
    dnnl_memory_desc_t smd;
    dnnl_dims_t dims = {K, N};
    dnnl_memory_t sm = NULL, dm = NULL;
    dnnl_primitive_desc_t rpd = NULL;
    dnnl_primitive_t r = NULL;
    int ok = DNNL_OK(dnnl_memory_desc_init_by_tag(&smd, 2, dims, fm->bf16 ? dnnl_bf16 : dnnl_f32, dnnl_ba)) &&
             DNNL_OK(dnnl_memory_create(&sm, &smd, fm->eng, (void *)src)) &&
             DNNL_OK(dnnl_memory_create(&dm, &out->md, fm->eng, out->data)) &&
             DNNL_OK(dnnl_reorder_primitive_desc_create(&rpd, &smd, fm->eng, &out->md, fm->eng, NULL)) &&
             DNNL_OK(dnnl_primitive_create(&r, rpd));
    if (ok) {
        dnnl_exec_arg_t args[2] = {{DNNL_ARG_FROM, sm}, {DNNL_ARG_TO, dm}};
        ok = DNNL_OK(dnnl_primitive_execute(r, st, 2, args)) && DNNL_OK(dnnl_stream_wait(st));
    }
    if (r) dnnl_primitive_destroy(r);
    if (rpd) dnnl_primitive_desc_destroy(rpd);
    if (sm) dnnl_memory_destroy(sm);
    if (dm) dnnl_memory_destroy(dm);
    free(tmp);
    RETURN_ERR_IF(!ok, e, PI0_ERR_UNSUPPORTED, "fast backend: weight reorder failed for '%s'", W->name);
    release_pages(W);
    W->prepared[PI0_SLOT_FAST] = out;
    fm->bytes += bytes;
    return PI0_OK;
}

static pi0_status fast_prepare(const pi0_weight_list *wl, void **handle, pi0_err *e) {
    fast_model *fm = calloc(1, sizeof *fm);
    RETURN_ERR_IF(!fm, e, PI0_ERR_NOMEM, "fast backend: out of memory");
    pi0_status st = PI0_OK;
    dnnl_stream_t stream = NULL;
    if (!DNNL_OK(dnnl_engine_create(&fm->eng, dnnl_cpu, 0)) ||
        !DNNL_OK(dnnl_stream_create(&stream, fm->eng, dnnl_stream_default_flags))) {
        st = pi0_fail(e, PI0_ERR_UNSUPPORTED, "fast backend: oneDNN CPU engine unavailable");
        goto done;
    }
    fm->bf16 = cpu_has_bf16() && !getenv("PI0_FAST_F32");
    fm->mats = calloc(wl->nmats ? wl->nmats : 1, sizeof *fm->mats);
    if (!fm->mats) { st = pi0_fail(e, PI0_ERR_NOMEM, "fast backend: out of memory"); goto done; }
    for (int i = 0; i < wl->nmats && st == PI0_OK; i++) {
        st = prepare_mat(fm, wl->mats[i], &fm->mats[i], stream, e);
        if (st == PI0_OK || fm->mats[i].data) fm->n = i + 1;
    }
done:
    if (stream) dnnl_stream_destroy(stream);
    if (st != PI0_OK) fast_release(fm, wl);
    else *handle = fm;
    return st;
}

static void fast_describe(const void *handle, char *buf, size_t n) {
    const fast_model *fm = handle;
    const int bf16 = fm ? fm->bf16 : cpu_has_bf16() && !getenv("PI0_FAST_F32");
    snprintf(buf, n, "%s", bf16 ? "bf16 (AVX512-BF16, oneDNN)" : "f32 (no AVX512-BF16 on this CPU, oneDNN)");
}

/* ---------------------------------------------------------------- session */

static void fast_session_free(pi0_exec *ex) {
    fast_session *fs = ex->ctx;
    if (!fs) return;
    if (fs->prims)
        for (int i = 0; i < PRIM_SLOTS; i++) prim_entry_clear(&fs->prims[i]);
    free(fs->prims);
    if (fs->stream) dnnl_stream_destroy(fs->stream);
    if (fs->eng) dnnl_engine_destroy(fs->eng);
    free(fs->xb); free(fs->qb); free(fs->kb); free(fs->vb); free(fs->pb); free(fs->sc); free(fs->gu); free(fs->inv_freq);
    free(fs->bw);
    free(fs);
    ex->ctx = NULL;
}

static pi0_status fast_session_init(pi0_exec *ex, const pi0_config *c, pi0_err *e) {
    fast_session *fs = calloc(1, sizeof *fs);
    RETURN_ERR_IF(!fs, e, PI0_ERR_NOMEM, "fast backend: out of memory");
    ex->ctx = fs;
    fs->bf16 = cpu_has_bf16() && !getenv("PI0_FAST_F32");
    const size_t n_img = (size_t)pi0_config_image_tokens(c);
    const size_t rows = (size_t)c->num_cameras * n_img + c->max_token_len + 1 + c->action_horizon;
    const size_t keys = rows;
    const size_t maxk = (size_t)(c->vlm.mlp_dim > c->vision.mlp_dim ? c->vlm.mlp_dim : c->vision.mlp_dim) +
                        3 * c->vision.patch_size * c->vision.patch_size + c->vlm.width + c->expert.width +
                        (size_t)c->vlm.num_heads * c->vlm.head_dim + 2 * c->expert.width + c->state_dim;
    const size_t heads = c->vision.num_heads > c->vlm.num_heads ? c->vision.num_heads : c->vlm.num_heads;
    const size_t hd = c->vlm.head_dim > c->vision.width ? c->vlm.head_dim : c->vision.width;
    fs->xb_cap = rows * maxk;
    fs->att_cap = heads * rows * keys;
    fs->kv_cap = keys * hd;
    fs->q_cap = heads * rows * hd;
    fs->gu_cap = rows * 2 * (size_t)(c->vlm.mlp_dim > c->expert.mlp_dim ? c->vlm.mlp_dim : c->expert.mlp_dim);
    fs->xb = malloc(fs->xb_cap * 2);
    fs->qb = malloc(fs->q_cap * 2);
    fs->kb = malloc(fs->kv_cap * 2);
    fs->vb = malloc(fs->kv_cap * 2);
    fs->pb = malloc(fs->att_cap * 2);
    fs->sc = malloc(fs->att_cap * 4);
    fs->gu = malloc(fs->gu_cap * 4);
    fs->inv_freq = malloc((size_t)c->vlm.head_dim * sizeof(float));
    fs->prims = calloc(PRIM_SLOTS, sizeof *fs->prims);
    RETURN_ERR_IF(!fs->xb || !fs->qb || !fs->kb || !fs->vb || !fs->pb || !fs->sc || !fs->gu || !fs->inv_freq || !fs->prims, e,
                  PI0_ERR_NOMEM, "fast backend: out of memory for scratch buffers");
    RETURN_ERR_IF(!DNNL_OK(dnnl_engine_create(&fs->eng, dnnl_cpu, 0)) ||
                  !DNNL_OK(dnnl_stream_create(&fs->stream, fs->eng, dnnl_stream_default_flags)),
                  e, PI0_ERR_UNSUPPORTED, "fast backend: oneDNN CPU engine unavailable");
    omp_set_num_threads(ex->num_threads);
    return PI0_OK;
}

/* ---------------------------------------------------------------- matmul */

/* Primitives are created once per shape and kept in a small direct-mapped cache, with their
 * memory objects; a call only points the memories at this call's buffers and executes. So the
 * denoise loop creates nothing after its first step. */
/* Creates the primitive dst = post_ops(src·wei + bias) and its memories into e. */
static int prim_create(fast_session *fs, prim_entry *e, const dnnl_memory_desc_t *smd,
                       const dnnl_memory_desc_t *wmd, const dnnl_memory_desc_t *bmd,
                       const dnnl_memory_desc_t *dmd, const pi0_epilogue *ep, const dnnl_memory_desc_t *mul_md,
                       const dnnl_memory_desc_t *gate_md) {
    dnnl_primitive_attr_t attr = NULL;
    dnnl_post_ops_t po = NULL;
    dnnl_matmul_desc_t md;
    dnnl_primitive_desc_t pd = NULL;
    int ok = DNNL_OK(dnnl_primitive_attr_create(&attr)) && DNNL_OK(dnnl_post_ops_create(&po));
    int idx = 0;
    e->mul_idx = e->gate_idx = -1;
    if (ok && ep && ep->gelu) { ok = DNNL_OK(dnnl_post_ops_append_eltwise(po, 1.0f, dnnl_eltwise_gelu_tanh, 0.0f, 0.0f)); idx++; }
    if (ok && ep && ep->mul) { ok = DNNL_OK(dnnl_post_ops_append_binary(po, dnnl_binary_mul, mul_md)); e->mul_idx = idx++; }
    /* the gate is a [1, N] row broadcast over the M rows */
    if (ok && ep && ep->gate) { ok = DNNL_OK(dnnl_post_ops_append_binary(po, dnnl_binary_mul, gate_md)); e->gate_idx = idx++; }
    if (ok && ep && ep->accumulate) { ok = DNNL_OK(dnnl_post_ops_append_sum(po, 1.0f)); idx++; }
    ok = ok && DNNL_OK(dnnl_primitive_attr_set_post_ops(attr, po)) &&
         DNNL_OK(dnnl_matmul_desc_init(&md, smd, wmd, bmd, dmd)) &&
         DNNL_OK(dnnl_primitive_desc_create(&pd, &md, attr, fs->eng, NULL)) &&
         DNNL_OK(dnnl_primitive_create(&e->prim, pd)) &&
         DNNL_OK(dnnl_memory_create(&e->src, smd, fs->eng, DNNL_MEMORY_NONE)) &&
         DNNL_OK(dnnl_memory_create(&e->wei, wmd, fs->eng, DNNL_MEMORY_NONE)) &&
         DNNL_OK(dnnl_memory_create(&e->dst, dmd, fs->eng, DNNL_MEMORY_NONE)) &&
         (!bmd || DNNL_OK(dnnl_memory_create(&e->bias, bmd, fs->eng, DNNL_MEMORY_NONE))) &&
         (e->mul_idx < 0 || DNNL_OK(dnnl_memory_create(&e->mul, mul_md, fs->eng, DNNL_MEMORY_NONE))) &&
         (e->gate_idx < 0 || DNNL_OK(dnnl_memory_create(&e->gate, gate_md, fs->eng, DNNL_MEMORY_NONE)));
    if (pd) dnnl_primitive_desc_destroy(pd);
    if (po) dnnl_post_ops_destroy(po);
    if (attr) dnnl_primitive_attr_destroy(attr);
    if (!ok) prim_entry_clear(e);
    return ok;
}

/* One oneDNN matmul through the cache; `key` identifies shape, layouts and epilogue. bmd
 * describes a [1, N] row (the bias and the gate), mul_md the [M, N] output. */
static pi0_status run_matmul(fast_session *fs, const uint64_t key[KEY_WORDS], const dnnl_memory_desc_t *smd,
                             void *src, const dnnl_memory_desc_t *wmd, void *wei,
                             const dnnl_memory_desc_t *bmd, const void *bias, const dnnl_memory_desc_t *dmd,
                             void *dst, const pi0_epilogue *ep, const dnnl_memory_desc_t *mul_md) {
    uint64_t h = 1469598103934665603ull;
    for (int i = 0; i < KEY_WORDS; i++) h = (h ^ key[i]) * 1099511628211ull;
    prim_entry *e = &fs->prims[(h ^ (h >> 29)) % PRIM_SLOTS];
    if (!e->used || memcmp(e->key, key, sizeof e->key) != 0) {
        prim_entry_clear(e);
        if (!prim_create(fs, e, smd, wmd, bias ? bmd : NULL, dmd, ep, mul_md, bmd)) return PI0_ERR_UNSUPPORTED;
        memcpy(e->key, key, sizeof e->key);
        e->used = 1;
    }
    dnnl_exec_arg_t args[6];
    int na = 0;
    dnnl_memory_set_data_handle(e->src, src);
    dnnl_memory_set_data_handle(e->wei, wei);
    dnnl_memory_set_data_handle(e->dst, dst);
    args[na++] = (dnnl_exec_arg_t){DNNL_ARG_SRC, e->src};
    args[na++] = (dnnl_exec_arg_t){DNNL_ARG_WEIGHTS, e->wei};
    args[na++] = (dnnl_exec_arg_t){DNNL_ARG_DST, e->dst};
    if (e->bias) {
        dnnl_memory_set_data_handle(e->bias, (void *)bias);
        args[na++] = (dnnl_exec_arg_t){DNNL_ARG_BIAS, e->bias};
    }
    if (e->mul) {
        dnnl_memory_set_data_handle(e->mul, (void *)ep->mul);
        args[na++] = (dnnl_exec_arg_t){DNNL_ARG_ATTR_MULTIPLE_POST_OP(e->mul_idx) | DNNL_ARG_SRC_1, e->mul};
    }
    if (e->gate) {
        dnnl_memory_set_data_handle(e->gate, (void *)ep->gate);
        args[na++] = (dnnl_exec_arg_t){DNNL_ARG_ATTR_MULTIPLE_POST_OP(e->gate_idx) | DNNL_ARG_SRC_1, e->gate};
    }
    if (!DNNL_OK(dnnl_primitive_execute(e->prim, fs->stream, na, args)) || !DNNL_OK(dnnl_stream_wait(fs->stream)))
        return PI0_ERR_UNSUPPORTED;
    return PI0_OK;
}

static inline float gelu_tanh1(float v) {
    return 0.5f * v * (1.0f + tanhf(0.7978845608028654f * (v + 0.044715f * v * v * v)));
}

static pi0_status fast_matmul(const pi0_exec *ex, float *y, const float *x, int M, const pi0_mat *W,
                              const pi0_epilogue *ep);

/* GeGLU: the plain GEMM over the stacked [gate; up] W into the scratch gu [M, 2F], then
 * y = (gelu_tanh(gate) ⊙ up) ⊙ gate-factor (+ y) in one pass. */
static pi0_status fast_geglu(const pi0_exec *ex, float *y, const float *x, int M, const pi0_mat *W,
                             const pi0_epilogue *ep) {
    fast_session *fs = ex->ctx;
    if (!pi0_geglu_valid(ep, W)) return PI0_ERR_ARG;
    if ((size_t)M * W->rows > fs->gu_cap) return PI0_ERR_UNSUPPORTED;
    FORWARD_ERR(fast_matmul(ex, fs->gu, x, M, W, NULL));
    const int F = W->rows / 2;
    const float *g = ep->gate;
    const int acc = ep->accumulate;
#pragma omp parallel for num_threads(ex->num_threads) schedule(static)
    for (int m = 0; m < M; m++) {
        const float *gr = fs->gu + (size_t)m * 2 * F, *ur = gr + F;
        float *yr = y + (size_t)m * F;
#pragma omp simd
        for (int n = 0; n < F; n++) {
            const float v = gelu_tanh1(gr[n]) * ur[n] * (g ? g[n] : 1.0f);
            yr[n] = acc ? yr[n] + v : v;
        }
    }
    return PI0_OK;
}

static pi0_status fast_matmul(const pi0_exec *ex, float *y, const float *x, int M, const pi0_mat *W,
                              const pi0_epilogue *ep) {
    fast_session *fs = ex->ctx;
    const fast_mat *fw = W->prepared[PI0_SLOT_FAST];
    if (!fs || !fw || M <= 0) return PI0_ERR_UNSUPPORTED; /* not prepared: ref runs it */
    if (ep && ep->geglu) return fast_geglu(ex, y, x, M, W, ep);
    const int N = W->rows, K = W->cols;
    void *src = (void *)x;
    if (fs->bf16) {
        if ((size_t)M * K > fs->xb_cap) return PI0_ERR_UNSUPPORTED;
        round_bf16(fs->xb, x, (size_t)M * K, ex->num_threads);
        src = fs->xb;
    }
    dnnl_memory_desc_t smd, dmd, bmd, mmd;
    dnnl_dims_t ds = {M, K}, dd = {M, N}, db = {1, N};
    dnnl_memory_desc_init_by_tag(&smd, 2, ds, fs->bf16 ? dnnl_bf16 : dnnl_f32, dnnl_ab);
    dnnl_memory_desc_init_by_tag(&dmd, 2, dd, dnnl_f32, dnnl_ab);
    dnnl_memory_desc_init_by_tag(&bmd, 2, db, dnnl_f32, dnnl_ab);
    dnnl_memory_desc_init_by_tag(&mmd, 2, dd, dnnl_f32, dnnl_ab);
    const uint64_t key[KEY_WORDS] = {1, (uint64_t)(uintptr_t)fw, (uint64_t)M,
                                     (ep && ep->bias) | (ep && ep->gelu) << 1 | (ep && ep->mul) << 2 |
                                         (uint64_t)(ep && ep->accumulate) << 3 | (uint64_t)(ep && ep->gate) << 4,
                                     0, 0};
    return run_matmul(fs, key, &smd, src, &fw->md, fw->data, &bmd, ep && ep->bias ? ep->bias->data : NULL,
                      &dmd, y, ep, &mmd);
}

/* ---------------------------------------------------------------- attention */

static pi0_status fast_attention(const pi0_exec *ex, float *out, const float *q, const float *k,
                                 const float *v, int M, int Nk, int Hq, int Hkv, int hd,
                                 const uint8_t *allowed, float scale) {
    fast_session *fs = ex->ctx;
    const int group = Hq / Hkv, qw = Hq * hd, kw = Hkv * hd, T = ex->num_threads;
    if (!fs || !fs->bf16 || (size_t)group * M * Nk > fs->att_cap || (size_t)Nk * hd > fs->kv_cap ||
        (size_t)group * M * hd > fs->q_cap)
        return PI0_ERR_UNSUPPORTED;
    for (int g = 0; g < Hkv; g++) {
        /* Operands in bf16: q (scaled, as the spec orders it) as [group, M, hd], k and v [Nk, hd]. */
#pragma omp parallel for num_threads(T) schedule(static)
        for (int m = 0; m < M; m++)
            for (int h = 0; h < group; h++) {
                const float *qr = q + (size_t)m * qw + (size_t)(g * group + h) * hd;
                uint16_t *dst = fs->qb + ((size_t)h * M + m) * hd;
                for (int d = 0; d < hd; d++) dst[d] = to_bf16(qr[d] * scale);
            }
#pragma omp parallel for num_threads(T) schedule(static)
        for (int j = 0; j < Nk; j++)
            for (int d = 0; d < hd; d++) {
                fs->kb[(size_t)j * hd + d] = to_bf16(k[(size_t)j * kw + (size_t)g * hd + d]);
                fs->vb[(size_t)j * hd + d] = to_bf16(v[(size_t)j * kw + (size_t)g * hd + d]);
            }
        /* scores[h, m, j] = q[h, m, :]·k[j, :] */
        dnnl_memory_desc_t smd, wmd, dmd;
        dnnl_dims_t qd = {group, M, hd}, kd = {1, hd, Nk}, sd = {group, M, Nk};
        dnnl_dims_t kstr = {(dnnl_dim_t)hd * Nk, 1, hd};
        dnnl_memory_desc_init_by_tag(&smd, 3, qd, dnnl_bf16, dnnl_abc);
        dnnl_memory_desc_init_by_strides(&wmd, 3, kd, dnnl_bf16, kstr);
        dnnl_memory_desc_init_by_tag(&dmd, 3, sd, dnnl_f32, dnnl_abc);
        const uint64_t kqk[KEY_WORDS] = {2, (uint64_t)group, (uint64_t)M, (uint64_t)Nk, (uint64_t)hd, 0};
        FORWARD_ERR(run_matmul(fs, kqk, &smd, fs->qb, &wmd, fs->kb, NULL, NULL, &dmd, fs->sc, NULL, NULL));
        /* Masked softmax in f32 per row, probabilities to bf16. */
#pragma omp parallel for num_threads(T) schedule(static)
        for (int r = 0; r < group * M; r++) {
            const int m = r % M;
            float *srow = fs->sc + (size_t)r * Nk;
            const uint8_t *arow = allowed ? allowed + (size_t)m * Nk : NULL;
            float mx = PI0_MASK_LOGIT;
            for (int j = 0; j < Nk; j++) {
                if (arow && !arow[j]) srow[j] = PI0_MASK_LOGIT;
                mx = srow[j] > mx ? srow[j] : mx;
            }
            float sum = 0.0f;
#pragma omp simd reduction(+ : sum)
            for (int j = 0; j < Nk; j++) {
                srow[j] = expf(srow[j] - mx);
                sum += srow[j];
            }
            const float inv = 1.0f / sum;
            uint16_t *prow = fs->pb + (size_t)r * Nk;
            for (int j = 0; j < Nk; j++) prow[j] = to_bf16(srow[j] * inv);
        }
        /* out[m, (g·group + h)·hd + d] = p[h, m, :]·v[:, d] */
        dnnl_dims_t pd_ = {group, M, Nk}, vd = {1, Nk, hd}, od = {group, M, hd};
        dnnl_dims_t ostr = {hd, qw, 1};
        dnnl_memory_desc_init_by_tag(&smd, 3, pd_, dnnl_bf16, dnnl_abc);
        dnnl_memory_desc_init_by_tag(&wmd, 3, vd, dnnl_bf16, dnnl_abc);
        dnnl_memory_desc_init_by_strides(&dmd, 3, od, dnnl_f32, ostr);
        const uint64_t kpv[KEY_WORDS] = {3, (uint64_t)group, (uint64_t)M, (uint64_t)Nk, (uint64_t)hd, (uint64_t)qw};
        FORWARD_ERR(run_matmul(fs, kpv, &smd, fs->pb, &wmd, fs->vb, NULL, NULL, &dmd, out + (size_t)g * group * hd,
                               NULL, NULL));
    }
    return PI0_OK;
}

/* ---------------------------------------------------------------- f32 elementwise / norms */

static pi0_status fast_layernorm(const pi0_exec *ex, float *y, const float *x, int M, int D,
                                 const pi0_vec *wv, const pi0_vec *bv, float eps) {
    const float *w = wv->data, *b = bv->data;
#pragma omp parallel for num_threads(ex->num_threads) schedule(static)
    for (int m = 0; m < M; m++) {
        const float *xr = x + (size_t)m * D;
        float *yr = y + (size_t)m * D;
        float mean = 0.0f, var = 0.0f;
#pragma omp simd reduction(+ : mean)
        for (int i = 0; i < D; i++) mean += xr[i];
        mean /= D;
#pragma omp simd reduction(+ : var)
        for (int i = 0; i < D; i++) var += (xr[i] - mean) * (xr[i] - mean);
        const float inv = 1.0f / sqrtf(var / D + eps);
#pragma omp simd
        for (int i = 0; i < D; i++) yr[i] = (xr[i] - mean) * inv * w[i] + b[i];
    }
    return PI0_OK;
}

/* 1/sqrt(mean(x²) + eps) of one row. */
static inline float rms_inv(const float *x, int D, float eps) {
    float ss = 0.0f;
#pragma omp simd reduction(+ : ss)
    for (int i = 0; i < D; i++) ss += x[i] * x[i];
    return 1.0f / sqrtf(ss / D + eps);
}

static pi0_status fast_rmsnorm(const pi0_exec *ex, float *y, const float *x, int M, int D,
                               const pi0_vec *wv, float eps) {
    const float *w = wv->data;
#pragma omp parallel for num_threads(ex->num_threads) schedule(static)
    for (int m = 0; m < M; m++) {
        const float *xr = x + (size_t)m * D;
        float *yr = y + (size_t)m * D;
        const float inv = rms_inv(xr, D, eps);
#pragma omp simd
        for (int i = 0; i < D; i++) yr[i] = xr[i] * inv * (1.0f + w[i]);
    }
    return PI0_OK;
}

/* adaRMS: the scale and shift are applied inside the norm's one pass over the row. */
static pi0_status fast_rmsnorm_mod(const pi0_exec *ex, float *y, const float *x, int M, int D,
                                   const float *mod, float eps) {
    const float *scale = mod, *shift = mod + D;
#pragma omp parallel for num_threads(ex->num_threads) schedule(static)
    for (int m = 0; m < M; m++) {
        const float *xr = x + (size_t)m * D;
        float *yr = y + (size_t)m * D;
        const float inv = rms_inv(xr, D, eps);
#pragma omp simd
        for (int i = 0; i < D; i++) yr[i] = xr[i] * inv * (1.0f + scale[i]) + shift[i];
    }
    return PI0_OK;
}

static pi0_status fast_gelu(const pi0_exec *ex, float *x, size_t n) {
#pragma omp parallel for simd num_threads(ex->num_threads) schedule(static)
    for (size_t i = 0; i < n; i++) x[i] = gelu_tanh1(x[i]);
    return PI0_OK;
}

static pi0_status fast_silu(const pi0_exec *ex, float *x, size_t n) {
#pragma omp parallel for simd num_threads(ex->num_threads) schedule(static)
    for (size_t i = 0; i < n; i++) x[i] = x[i] / (1.0f + expf(-x[i]));
    return PI0_OK;
}

static pi0_status fast_mul(const pi0_exec *ex, float *x, const float *y, size_t n) {
#pragma omp parallel for simd num_threads(ex->num_threads) schedule(static)
    for (size_t i = 0; i < n; i++) x[i] *= y[i];
    return PI0_OK;
}

static pi0_status fast_add(const pi0_exec *ex, float *x, const float *y, size_t n) {
#pragma omp parallel for simd num_threads(ex->num_threads) schedule(static)
    for (size_t i = 0; i < n; i++) x[i] += y[i];
    return PI0_OK;
}

/* Rotary embedding in place, split halves; sign −1 rotates by −angle (the transpose, for
 * rope_bwd): both directions use the same f32 angles. */
static pi0_status rope_rotate(const pi0_exec *ex, float *x, int M, int n_heads, int hd, const int32_t *pos,
                              double theta, float sign) {
    fast_session *fs = ex->ctx;
    if (!fs || hd > 2 * 4096) return PI0_ERR_UNSUPPORTED;
    const int half = hd / 2;
    if (fs->rope_hd != hd || fs->rope_theta != theta) {
        for (int i = 0; i < half; i++) fs->inv_freq[i] = (float)(1.0 / pow(theta, 2.0 * i / hd));
        fs->rope_hd = hd;
        fs->rope_theta = theta;
    }
#pragma omp parallel for num_threads(ex->num_threads) schedule(static)
    for (int m = 0; m < M; m++) {
        float c[4096], s[4096];
        for (int i = 0; i < half; i++) {
            const float ang = (float)pos[m] * fs->inv_freq[i];
            c[i] = cosf(ang);
            s[i] = sign * sinf(ang);
        }
        for (int h = 0; h < n_heads; h++) {
            float *r = x + (size_t)m * n_heads * hd + (size_t)h * hd;
#pragma omp simd
            for (int i = 0; i < half; i++) {
                const float x1 = r[i], x2 = r[i + half];
                r[i] = x1 * c[i] - x2 * s[i];
                r[i + half] = x2 * c[i] + x1 * s[i];
            }
        }
    }
    return PI0_OK;
}

static pi0_status fast_rope(const pi0_exec *ex, float *x, int M, int n_heads, int hd, const int32_t *pos,
                            double theta) {
    return rope_rotate(ex, x, M, n_heads, hd, pos, theta, 1.0f);
}

/* ---------------------------------------------------------------- backward ops */

/* The session's f32 scratch for the backward ops, at least n floats. */
static float *bw_scratch(fast_session *fs, size_t n) {
    if (n > fs->bw_cap) {
        free(fs->bw);
        fs->bw = malloc(n * sizeof *fs->bw);
        fs->bw_cap = fs->bw ? n : 0;
    }
    return fs->bw;
}

/* matmul_dx reads W in the other operand role: dx[M,K] = g[M,N]·W[N,K]. The prepared copy is in
 * the blocked layout oneDNN's matmul chose for W as a [K, N] operand; with its axes permuted only
 * oneDNN's reference kernel accepts it (measured: "ref:any"), and reordering it per call costs
 * about as much as the GEMM itself. So a matrix gets, on its first matmul_dx, a second copy in
 * plain row-major [N, K] (the checkpoint's own layout, in the kernel's dtype), reordered from the
 * prepared one (the checkpoint pages were given back): oneDNN's optimized matmul takes it
 * directly, as fast as a blocked copy for a few rows. Only the matrices the backward pass reads
 * get one (π0's action expert, 18 layers of q, k, v, o, [gate; up], down, and the action MLPs:
 * about 315M weights, 0.63 GB in bf16, 1.26 GB in f32 on CPUs without AVX512-BF16); they are
 * freed with the model. Sessions sharing the model race benignly: the
 * first copy published wins. NULL: out of memory or no reorder. */
static const void *plain_copy(fast_session *fs, fast_mat *fw, int N, int K) {
    void *p = atomic_load(&fw->plain);
    if (p) return p;
    const size_t bytes = (size_t)N * K * (fw->md.data_type == dnnl_bf16 ? 2 : 4);
    void *buf = aligned_alloc(64, (bytes + 63) / 64 * 64);
    if (!buf) return NULL;
    dnnl_memory_desc_t pmd;
    dnnl_dims_t dims = {K, N};
    dnnl_memory_t sm = NULL, dm = NULL;
    dnnl_primitive_desc_t rpd = NULL;
    dnnl_primitive_t r = NULL;
    int ok = DNNL_OK(dnnl_memory_desc_init_by_tag(&pmd, 2, dims, fw->md.data_type, dnnl_ba)) &&
             DNNL_OK(dnnl_memory_create(&sm, &fw->md, fs->eng, fw->data)) &&
             DNNL_OK(dnnl_memory_create(&dm, &pmd, fs->eng, buf)) &&
             DNNL_OK(dnnl_reorder_primitive_desc_create(&rpd, &fw->md, fs->eng, &pmd, fs->eng, NULL)) &&
             DNNL_OK(dnnl_primitive_create(&r, rpd));
    if (ok) {
        dnnl_exec_arg_t args[2] = {{DNNL_ARG_FROM, sm}, {DNNL_ARG_TO, dm}};
        ok = DNNL_OK(dnnl_primitive_execute(r, fs->stream, 2, args)) && DNNL_OK(dnnl_stream_wait(fs->stream));
    }
    if (r) dnnl_primitive_destroy(r);
    if (rpd) dnnl_primitive_desc_destroy(rpd);
    if (sm) dnnl_memory_destroy(sm);
    if (dm) dnnl_memory_destroy(dm);
    if (!ok) {
        free(buf);
        return NULL;
    }
    void *none = NULL;
    if (!atomic_compare_exchange_strong(&fw->plain, &none, buf)) {
        free(buf); /* another session published its copy first */
        return none;
    }
    return buf;
}

static pi0_status fast_matmul_dx(const pi0_exec *ex, float *dx, const float *dy, int M, const pi0_mat *W,
                                 const float *gate, int accumulate) {
    fast_session *fs = ex->ctx;
    fast_mat *fw = (fast_mat *)W->prepared[PI0_SLOT_FAST];
    if (!fs || !fw || M <= 0) return PI0_ERR_UNSUPPORTED; /* not prepared: ref runs it */
    const int N = W->rows, K = W->cols, bf16 = fw->md.data_type == dnnl_bf16;
    const size_t n = (size_t)M * N;
    const void *wei = plain_copy(fs, fw, N, K);
    if (!wei) return PI0_ERR_UNSUPPORTED; /* no room for the copy: ref reads the checkpoint */
    /* the GEMM's source: dy ⊙ gate, in the weights' dtype */
    void *src = (void *)dy;
    if (bf16) {
        if (n > fs->xb_cap) return PI0_ERR_UNSUPPORTED;
        uint16_t *xb = fs->xb;
#pragma omp parallel for num_threads(ex->num_threads) schedule(static)
        for (int m = 0; m < M; m++)
#pragma omp simd
            for (int j = 0; j < N; j++) {
                const size_t i = (size_t)m * N + j;
                xb[i] = to_bf16(gate ? dy[i] * gate[j] : dy[i]);
            }
        src = xb;
    } else if (gate) {
        float *g = bw_scratch(fs, n);
        if (!g) return PI0_ERR_NOMEM;
#pragma omp parallel for num_threads(ex->num_threads) schedule(static)
        for (int m = 0; m < M; m++)
#pragma omp simd
            for (int j = 0; j < N; j++) g[(size_t)m * N + j] = dy[(size_t)m * N + j] * gate[j];
        src = g;
    }
    const dnnl_data_type_t dt = bf16 ? dnnl_bf16 : dnnl_f32;
    dnnl_memory_desc_t smd, wmd, dmd;
    dnnl_dims_t ds = {M, N}, dw = {N, K}, dd = {M, K};
    dnnl_memory_desc_init_by_tag(&smd, 2, ds, dt, dnnl_ab);
    dnnl_memory_desc_init_by_tag(&wmd, 2, dw, dt, dnnl_ab);
    dnnl_memory_desc_init_by_tag(&dmd, 2, dd, dnnl_f32, dnnl_ab);
    const pi0_epilogue ep = {.accumulate = accumulate};
    const uint64_t key[KEY_WORDS] = {4, (uint64_t)(uintptr_t)fw, (uint64_t)M, (uint64_t)(accumulate != 0), 0, 0};
    return run_matmul(fs, key, &smd, src, &wmd, (void *)wei, NULL, NULL, &dmd, dx, &ep, NULL);
}

/* Per row: g = dy ⊙ factor, r = 1/sqrt(mean(x²) + eps), dx (=|+=) r·g − x·r³·mean(g ⊙ x). */
static pi0_status fast_rmsnorm_bwd(const pi0_exec *ex, float *dx, const float *dy, const float *x, int M, int D,
                                   const pi0_vec *wv, const float *mod, float eps, int accumulate) {
    const float *f = wv ? wv->data : mod;
#pragma omp parallel for num_threads(ex->num_threads) schedule(static)
    for (int m = 0; m < M; m++) {
        const float *xr = x + (size_t)m * D, *dyr = dy + (size_t)m * D;
        float *dxr = dx + (size_t)m * D;
        const float r = rms_inv(xr, D, eps);
        float gx = 0.0f;
#pragma omp simd reduction(+ : gx)
        for (int i = 0; i < D; i++) gx += dyr[i] * (1.0f + f[i]) * xr[i];
        const float c = r * r * r * gx / D;
#pragma omp simd
        for (int i = 0; i < D; i++) {
            const float v = r * (dyr[i] * (1.0f + f[i])) - xr[i] * c;
            dxr[i] = accumulate ? dxr[i] + v : v; /* not 0·dx: dx may hold anything when overwritten */
        }
    }
    return PI0_OK;
}

static pi0_status fast_geglu_bwd(const pi0_exec *ex, float *dgu, const float *dm, const float *gu, int M, int F) {
    const float c = 0.7978845608028654f; /* sqrt(2/pi) */
#pragma omp parallel for num_threads(ex->num_threads) schedule(static)
    for (int m = 0; m < M; m++) {
        const float *g = gu + (size_t)m * 2 * F, *u = g + F, *d = dm + (size_t)m * F;
        float *dg = dgu + (size_t)m * 2 * F, *du = dg + F;
#pragma omp simd
        for (int i = 0; i < F; i++) {
            const float v = g[i], t = tanhf(c * (v + 0.044715f * v * v * v));
            /* gelu_tanh(v) = 0.5·v·(1 + t); its derivative: */
            const float grad = 0.5f * (1.0f + t) + 0.5f * v * (1.0f - t * t) * c * (1.0f + 3.0f * 0.044715f * v * v);
            dg[i] = d[i] * u[i] * grad;
            du[i] = d[i] * (0.5f * v * (1.0f + t));
        }
    }
    return PI0_OK;
}

/* silu'(x) = σ(x)·(1 + x·(1 − σ(x))). */
static pi0_status fast_silu_bwd(const pi0_exec *ex, float *dx, const float *x_in, size_t n) {
#pragma omp parallel for simd num_threads(ex->num_threads) schedule(static)
    for (size_t i = 0; i < n; i++) {
        const float s = 1.0f / (1.0f + expf(-x_in[i]));
        dx[i] *= s * (1.0f + x_in[i] * (1.0f - s));
    }
    return PI0_OK;
}

static pi0_status fast_rope_bwd(const pi0_exec *ex, float *dx, int M, int n_heads, int hd, const int32_t *pos,
                                double theta) {
    return rope_rotate(ex, dx, M, n_heads, hd, pos, theta, -1.0f);
}

/* One f32 oneDNN matmul dst[B, R, C] = src[B, R, I]·wei[I, C] (one weight matrix for every batch
 * entry; wei_t: wei given transposed, as [C, I] rows), src and wei dense, dst with row stride ld
 * (batch stride C). Cached by kind and shape. */
static pi0_status gemm_f32(fast_session *fs, int kind, int B, int R, int I, int C, const float *src, const float *wei,
                           int wei_t, float *dst, int ld) {
    dnnl_memory_desc_t smd, wmd, dmd;
    dnnl_dims_t sd = {B, R, I}, wd = {1, I, C}, dd = {B, R, C};
    dnnl_dims_t wstr = {(dnnl_dim_t)I * C, wei_t ? 1 : C, wei_t ? I : 1}, dstr = {C, ld, 1};
    dnnl_memory_desc_init_by_tag(&smd, 3, sd, dnnl_f32, dnnl_abc);
    dnnl_memory_desc_init_by_strides(&wmd, 3, wd, dnnl_f32, wstr);
    dnnl_memory_desc_init_by_strides(&dmd, 3, dd, dnnl_f32, dstr);
    const uint64_t key[KEY_WORDS] = {(uint64_t)kind, (uint64_t)B, (uint64_t)R, (uint64_t)I, (uint64_t)C, (uint64_t)ld};
    return run_matmul(fs, key, &smd, (void *)src, &wmd, (void *)wei, NULL, NULL, &dmd, dst, NULL, NULL);
}

/* Attention's input gradients in f32, per kv head g with its `group` query heads as R = group·M
 * rows, through oneDNN GEMMs around one threaded pass over the rows:
 *   S = (q·scale)·kᵀ, dP = dout·vᵀ                       (GEMMs, [R, Nk])
 *   P = softmax(S masked), dS = P ⊙ (dP − Σ P·dP)·scale, 0 where masked (a masked logit is a
 *   constant)                                            (the row pass)
 *   dq = dS·k, dk = dS[:, k0:]ᵀ·q, dv = P[:, k0:]ᵀ·dout   (GEMMs; the suffix's keys only)
 * Operands are copied to dense scratch first (q scaled and not, dout, this head's k and v) and the
 * suffix columns of P and dS transposed, so that every GEMM has the plain layouts oneDNN's
 * optimized kernels take (measured at π0's expert shape, M 51, Nk 867, 8:1 heads, hd 256, one
 * thread: 5.3 ms, against 41 ms for the same as plain loops). */
static pi0_status fast_attention_bwd(const pi0_exec *ex, float *dq, float *dk, float *dv, const float *dout,
                                     const float *q, const float *k, const float *v, int M, int Nk, int k0, int Hq,
                                     int Hkv, int hd, const uint8_t *allowed, float scale) {
    fast_session *fs = ex->ctx;
    if (!fs || M <= 0 || Nk <= 0) return PI0_ERR_UNSUPPORTED;
    const int group = Hq / Hkv, qw = Hq * hd, kw = Hkv * hd, R = group * M, nk = Nk - k0, T = ex->num_threads;
    const size_t rh = (size_t)R * hd, kh = (size_t)Nk * hd, rk = (size_t)R * Nk, tk = (size_t)nk * R;
    float *qs = bw_scratch(fs, 3 * rh + 2 * kh + 2 * rk + 2 * tk);
    if (!qs) return PI0_ERR_NOMEM;
    float *qc = qs + rh, *doc = qc + rh, *kc = doc + rh, *vc = kc + kh, *P = vc + kh, *dS = P + rk, *Pt = dS + rk,
          *dSt = Pt + tk;
    for (int g = 0; g < Hkv; g++) {
#pragma omp parallel for num_threads(T) schedule(static)
        for (int r = 0; r < R; r++) { /* row r: query head g·group + r / M, query row r % M */
            const size_t src = (size_t)(r % M) * qw + (size_t)(g * group + r / M) * hd, dst = (size_t)r * hd;
            for (int d = 0; d < hd; d++) {
                qc[dst + d] = q[src + d];
                qs[dst + d] = q[src + d] * scale;
                doc[dst + d] = dout[src + d];
            }
        }
#pragma omp parallel for num_threads(T) schedule(static)
        for (int j = 0; j < Nk; j++) {
            memcpy(kc + (size_t)j * hd, k + (size_t)j * kw + (size_t)g * hd, (size_t)hd * sizeof *kc);
            memcpy(vc + (size_t)j * hd, v + (size_t)j * kw + (size_t)g * hd, (size_t)hd * sizeof *vc);
        }
        FORWARD_ERR(gemm_f32(fs, 5, 1, R, hd, Nk, qs, kc, 1, P, Nk));   /* S */
        FORWARD_ERR(gemm_f32(fs, 5, 1, R, hd, Nk, doc, vc, 1, dS, Nk)); /* dP */
#pragma omp parallel for num_threads(T) schedule(static)
        for (int r = 0; r < R; r++) {
            const uint8_t *ar = allowed ? allowed + (size_t)(r % M) * Nk : NULL;
            float *p = P + (size_t)r * Nk, *ds = dS + (size_t)r * Nk;
            float mx = PI0_MASK_LOGIT, sum = 0.0f, pdp = 0.0f;
            for (int j = 0; j < Nk; j++) {
                if (ar && !ar[j]) p[j] = PI0_MASK_LOGIT;
                mx = p[j] > mx ? p[j] : mx;
            }
            for (int j = 0; j < Nk; j++) {
                p[j] = expf(p[j] - mx);
                sum += p[j];
            }
            for (int j = 0; j < Nk; j++) {
                p[j] /= sum;
                pdp += p[j] * ds[j];
            }
            for (int j = 0; j < Nk; j++) ds[j] = (!ar || ar[j]) ? p[j] * (ds[j] - pdp) * scale : 0.0f;
        }
#pragma omp parallel for num_threads(T) schedule(static)
        for (int j = 0; j < nk; j++)
            for (int r = 0; r < R; r++) {
                Pt[(size_t)j * R + r] = P[(size_t)r * Nk + k0 + j];
                dSt[(size_t)j * R + r] = dS[(size_t)r * Nk + k0 + j];
            }
        /* dq[m, (g·group + h)·hd + d] = dS[h, m, :]·k[:, d] */
        FORWARD_ERR(gemm_f32(fs, 6, group, M, Nk, hd, dS, kc, 0, dq + (size_t)g * group * hd, qw));
        if (nk > 0) {
            FORWARD_ERR(gemm_f32(fs, 7, 1, nk, R, hd, dSt, qc, 0, dk + (size_t)g * hd, kw));
            FORWARD_ERR(gemm_f32(fs, 7, 1, nk, R, hd, Pt, doc, 0, dv + (size_t)g * hd, kw));
        }
    }
    return PI0_OK;
}

const pi0_backend pi0_backend_fast = {
    .name = "fast",
    .slot = PI0_SLOT_FAST,
    .host_memory = 1,
    .prepare = fast_prepare,
    .release = fast_release,
    .describe = fast_describe,
    .session_init = fast_session_init,
    .session_free = fast_session_free,
    .matmul = fast_matmul,
    .layernorm = fast_layernorm,
    .rmsnorm = fast_rmsnorm,
    .rmsnorm_mod = fast_rmsnorm_mod,
    .gelu_tanh = fast_gelu,
    .silu = fast_silu,
    .mul = fast_mul,
    .add = fast_add,
    .add_weight = host_add_weight,
    .rope = fast_rope,
    .attention = fast_attention,
    .patchify = host_patchify,
    .embed = host_embed,
    .copy_rows = host_copy_rows,
    .time_embed = host_time_embed,
    .axpy = host_axpy,
    .matmul_dx = fast_matmul_dx,
    .rmsnorm_bwd = fast_rmsnorm_bwd,
    .geglu_bwd = fast_geglu_bwd,
    .silu_bwd = fast_silu_bwd,
    .rope_bwd = fast_rope_bwd,
    .attention_bwd = fast_attention_bwd,
};
