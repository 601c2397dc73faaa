/* cuda_matmul.cu — the one GEMM entry of the cuda backend: y[M, N] (=|+=) epilogue(x[M, K]·Wᵀ)
 * through cuBLASLt, bf16 operands (the activations rounded by the op that wrote them, or once for
 * all the GEMMs that read them: see xb in cuda_common.cuh), float32 accumulation and output. The bias, GELU(tanh) and the residual add (beta = 1, C = D = y) run in cuBLASLt's
 * epilogue; the GeGLU product and π0.5's gate are not cuBLASLt epilogues, so those calls write
 * to a scratch and one elementwise kernel finishes them (GeGLU: one GEMM over the stacked
 * [gate; up] matrix into the scratch [M, 2F], then the GeGLU kernel writes y and the down
 * projection's bf16 input).
 *
 * Layout: cuBLASLt is column-major. The row-major y [M, N] is the column-major N×M matrix
 * D = W·xᵀ, with W (row-major [N, K] = column-major K×N, ld K) transposed and xᵀ (row-major
 * [M, K] = column-major K×M, ld K) as is; the bias is per row of D (length N). A matmul set up
 * for a (shape, epilogue, alignment) is kept in a small cache of plans, so the heuristic runs
 * once per shape. */
#include "cuda_common.cuh"

#include <cstring>

namespace {

/* The largest power of two (≤ 256) dividing the address: cuBLASLt picks kernels by alignment. */
unsigned alignment(const void *p) {
    const unsigned long long a = (unsigned long long)(uintptr_t)p;
    unsigned al = 256;
    while (al > 1 && a % al) al >>= 1;
    return al;
}

void plan_clear(cuda_gemm_plan *p) {
    if (p->desc) cublasLtMatmulDescDestroy(p->desc);
    if (p->a) cublasLtMatrixLayoutDestroy(p->a);
    if (p->b) cublasLtMatrixLayoutDestroy(p->b);
    if (p->c) cublasLtMatrixLayoutDestroy(p->c);
    memset(p, 0, sizeof *p);
}

/* Asks cuBLASLt's heuristic for one algorithm for the plan's descriptors, for outputs aligned to
 * align_y bytes, the activation operand (B) to align_x (a GEMM may read rows of xb from an
 * offset: see cuda_xb_of) and A to align_a (256, the documented default, for prepared weights). */
cublasStatus_t plan_algo(cuda_session *cs, cuda_gemm_plan *p, unsigned align_y, unsigned align_x = 256,
                         unsigned align_a = 256) {
    cublasLtMatmulPreference_t pref;
    cublasStatus_t st = cublasLtMatmulPreferenceCreate(&pref);
    if (st != CUBLAS_STATUS_SUCCESS) return st;
    const uint32_t al = align_y, alx = align_x, ala = align_a;
    cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES, &cs->workspace_bytes,
                                         sizeof cs->workspace_bytes);
    cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_A_BYTES, &ala, sizeof ala);
    cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_B_BYTES, &alx, sizeof alx);
    cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_C_BYTES, &al, sizeof al);
    cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_D_BYTES, &al, sizeof al);
    cublasLtMatmulHeuristicResult_t best;
    int found = 0;
    st = cublasLtMatmulAlgoGetHeuristic(cs->lt, p->desc, p->a, p->b, p->c, p->c, pref, 1, &best, &found);
    cublasLtMatmulPreferenceDestroy(pref);
    if (st == CUBLAS_STATUS_SUCCESS && found == 0) st = CUBLAS_STATUS_NOT_SUPPORTED;
    if (st == CUBLAS_STATUS_SUCCESS) p->algo = best.algo;
    return st;
}

/* A plan for D = epi(W·xᵀ), or with dx set the input gradient's D = W·dyᵀ (matmul_dx: the same
 * matrix untransposed, K × N with ld K; dyᵀ column-major N × M; D column-major K × M). The heuristic may find no algorithm for a fused epilogue (NVIDIA
 * documents no guarantee for any epilogue on any shape): the plan then has the plain GEMM
 * (fused = 0), the caller finishes with the epilogue kernel, and the model's describe() counts
 * the shape so that `pi0 verify` shows it. out_bf16: D (and C) in bf16 (a GEMM output only GEMMs
 * read); without an algorithm for that the plan is left unfused and the caller takes the float32
 * way. */
pi0_status plan_create(const pi0_exec *ex, cuda_gemm_plan *p, int M, int N, int K, cublasLtEpilogue_t epi,
                       unsigned align_y, unsigned align_x, int out_bf16, int dx) {
    cuda_session *cs = cuda_ctx(ex);
    const cublasOperation_t trans = dx ? CUBLAS_OP_N : CUBLAS_OP_T;
    LT_TRY(ex, cublasLtMatmulDescCreate(&p->desc, CUBLAS_COMPUTE_32F, CUDA_R_32F));
    LT_TRY(ex, cublasLtMatmulDescSetAttribute(p->desc, CUBLASLT_MATMUL_DESC_TRANSA, &trans, sizeof trans));
    LT_TRY(ex, cublasLtMatmulDescSetAttribute(p->desc, CUBLASLT_MATMUL_DESC_EPILOGUE, &epi, sizeof epi));
    if (out_bf16) { /* C = D in bf16; the bias stays float32 (the scale type; the default is D's type) */
        const int32_t bias_type = CUDA_R_32F;
        LT_TRY(ex, cublasLtMatmulDescSetAttribute(p->desc, CUBLASLT_MATMUL_DESC_BIAS_DATA_TYPE, &bias_type,
                                                  sizeof bias_type));
    }
    LT_TRY(ex, cublasLtMatrixLayoutCreate(&p->a, CUDA_R_16BF, K, N, K));
    LT_TRY(ex, cublasLtMatrixLayoutCreate(&p->b, CUDA_R_16BF, dx ? N : K, M, dx ? N : K));
    LT_TRY(ex, cublasLtMatrixLayoutCreate(&p->c, out_bf16 ? CUDA_R_16BF : CUDA_R_32F, dx ? K : N, M, dx ? K : N));
    p->fused = 1;
    cublasStatus_t st = plan_algo(cs, p, align_y, align_x);
    if (st != CUBLAS_STATUS_SUCCESS && out_bf16) { /* not fused: the caller writes float32 instead */
        p->fused = 0;
        return PI0_OK;
    }
    if (st != CUBLAS_STATUS_SUCCESS && epi != CUBLASLT_EPILOGUE_DEFAULT) {
        const cublasLtEpilogue_t plain = CUBLASLT_EPILOGUE_DEFAULT;
        LT_TRY(ex, cublasLtMatmulDescSetAttribute(p->desc, CUBLASLT_MATMUL_DESC_EPILOGUE, &plain, sizeof plain));
        st = plan_algo(cs, p, align_y, align_x);
        if (st == CUBLAS_STATUS_SUCCESS) {
            p->fused = 0;
            cuda_weights *cw = (cuda_weights *)ex->weights; /* allocated non-const by prepare */
            if (cw) {
                if (!cw->unfused++)
                    snprintf(cw->unfused_first, sizeof cw->unfused_first, "M=%d N=%d K=%d epilogue %d", M, N, K,
                             (int)epi);
            }
        }
    }
    if (st != CUBLAS_STATUS_SUCCESS) {
        char why[160];
        snprintf(why, sizeof why, "no cuBLASLt algorithm for M=%d N=%d K=%d (epilogue %d): %s", M, N, K, (int)epi,
                 cublasLtGetStatusString(st));
        return cuda_fail(ex, "cublasLtMatmulAlgoGetHeuristic", why);
    }
    return PI0_OK;
}

/* The plan for (M, W, epilogue, alignments of the output and input, output type, forward or dx),
 * from the cache or made now. */
pi0_status plan_for(const pi0_exec *ex, int M, const cuda_mat *W, cublasLtEpilogue_t epi, const void *out,
                    const void *in, cuda_gemm_plan **plan, int out_bf16 = 0, int dx = 0) {
    cuda_session *cs = cuda_ctx(ex);
    const unsigned al = alignment(out), alx = alignment(in);
    const unsigned long long key[4] = {(unsigned long long)M, (unsigned long long)W->N << 32 | (unsigned)W->K,
                                       (unsigned long long)dx << 33 | (unsigned long long)out_bf16 << 32 | (unsigned)epi,
                                       (unsigned long long)alx << 32 | al};
    unsigned long long h = 1469598103934665603ull;
    for (int i = 0; i < 4; i++) h = (h ^ key[i]) * 1099511628211ull;
    cuda_gemm_plan *p = &cs->plans[(h ^ (h >> 29)) % CUDA_GEMM_SLOTS];
    if (!p->used || memcmp(p->key, key, sizeof key) != 0) {
        plan_clear(p);
        pi0_status st = plan_create(ex, p, M, W->N, W->K, epi, al, alx, out_bf16, dx);
        if (st != PI0_OK) { plan_clear(p); return st; }
        memcpy(p->key, key, sizeof key);
        p->used = 1;
    }
    *plan = p;
    return PI0_OK;
}

/* D[N, M] (col-major) = plan's epilogue(W·xᵀ) (+ beta·D); bias only for a fused bias epilogue;
 * y float32, or bf16 for a plan made with out_bf16. */
pi0_status gemm_run(const pi0_exec *ex, cuda_gemm_plan *p, void *y, const __nv_bfloat16 *xb, const cuda_mat *W,
                    const float *bias, float beta) {
    cuda_session *cs = cuda_ctx(ex);
    if (bias)
        LT_TRY(ex, cublasLtMatmulDescSetAttribute(p->desc, CUBLASLT_MATMUL_DESC_BIAS_POINTER, &bias, sizeof bias));
    const float alpha = 1.0f;
    LT_TRY(ex, cublasLtMatmul(cs->lt, p->desc, &alpha, W->w, p->a, xb, p->b, &beta, y, p->c, y, p->c, &p->algo,
                              cs->workspace, cs->workspace_bytes, cs->stream));
    return PI0_OK;
}

/* An elementwise kernel after a GEMM (which has read xb by now, in stream order) writes y [n]
 * also as bf16 into xb, for the GEMM that reads it next (the GeGLU product → down): xb then
 * holds y, or nothing when y does not fit. */
__nv_bfloat16 *xb_claim(cuda_session *cs, const float *y, size_t n) {
    __nv_bfloat16 *yb = n <= cs->xb_cap ? cs->xb : nullptr;
    cs->xb_src = yb ? y : nullptr;
    cs->xb_n = n;
    return yb;
}

/* The epilogue kernel after a GEMM, y also in xb (xb_claim). */
pi0_status epilogue_to(const pi0_exec *ex, float *y, const float *t, const float *bias, int gelu, const float *mul,
                       const float *gate, int acc, int M, int N) {
    __nv_bfloat16 *yb = xb_claim(cuda_ctx(ex), y, (size_t)M * N);
    return cuda_epilogue(ex, y, yb, t, bias, gelu, mul, gate, acc, M, N);
}

} // namespace

pi0_status cuda_matmul(const pi0_exec *ex, float *y, const float *x, int M, const pi0_mat *W, const pi0_epilogue *ep) {
    cuda_session *cs = cuda_ctx(ex);
    const cuda_mat *w = cuda_mat_of(W);
    if (!cs || !w) return PI0_ERR_UNSUPPORTED;
    if (M <= 0) return PI0_OK;
    const int N = W->rows, K = W->cols, geglu = ep && ep->geglu;
    if (geglu && !pi0_geglu_valid(ep, W)) return PI0_ERR_ARG;
    if ((size_t)M * K > cs->xb_cap || (size_t)M * N > cs->tmp_cap) {
        char why[128];
        snprintf(why, sizeof why, "matmul [%d x %d] x [%d x %d]ᵀ exceeds the session's scratch", M, K, N, K);
        return cuda_fail(ex, W->name, why);
    }
    /* x in bf16: already in xb when the op that wrote x (a norm, an unfused epilogue) or the last
     * GEMM reading the same x put it there (x may be rows of what it holds); otherwise converted
     * now and kept for the next GEMM */
    const __nv_bfloat16 *xb = cuda_xb_of(cs, x, (size_t)M * K);
    if (!xb) {
        cs->xb_src = nullptr;
        FORWARD_ERR(cuda_to_bf16(ex, cs->xb, x, (size_t)M * K));
        cs->xb_src = x;
        cs->xb_n = (size_t)M * K;
        xb = cs->xb;
    }
    cuda_xb_wrote(cs, y, (size_t)M * (geglu ? N / 2 : N) * sizeof *y);
    cuda_gemm_plan *p;
    if (geglu) { /* [gate | up] = x·[gate; up]ᵀ into scratch, then the GeGLU kernel */
        FORWARD_ERR(plan_for(ex, M, w, CUBLASLT_EPILOGUE_DEFAULT, cs->tmp, xb, &p));
        FORWARD_ERR(gemm_run(ex, p, cs->tmp, xb, w, nullptr, 0.0f));
        __nv_bfloat16 *yb = xb_claim(cs, y, (size_t)M * (N / 2));
        /* read only by GEMMs (the down projection): its bf16 copy is all they read */
        const int only_bf16 = yb && ep->gemm_input && !ep->accumulate;
        return cuda_geglu(ex, only_bf16 ? nullptr : y, yb, cs->tmp, ep->gate, ep->accumulate, M, N / 2);
    }
    const float *bias = ep && ep->bias ? cuda_vec_of(ep->bias) : nullptr;
    const int gelu = ep && ep->gelu, acc = ep && ep->accumulate;
    const cublasLtEpilogue_t epi = gelu ? (bias ? CUBLASLT_EPILOGUE_GELU_BIAS : CUBLASLT_EPILOGUE_GELU)
                                        : (bias ? CUBLASLT_EPILOGUE_BIAS : CUBLASLT_EPILOGUE_DEFAULT);
    /* cuBLASLt applies GELU after adding beta·C, so a GELU result added to y goes the scratch way too */
    const int scratch = ep && (ep->mul || ep->gate || (gelu && acc));
    /* read only by GEMMs: cuBLASLt writes it in bf16 into yb, the float32 y stays unwritten (when
     * there is no algorithm for that, the float32 way below) */
    const int x_in_yb = cuda_bf16_range(cs->yb, cs->yb_src, cs->yb_n, x, (size_t)M * K) != nullptr;
    if (ep && ep->gemm_input && !scratch && !acc && !x_in_yb && (size_t)M * N <= cs->yb_cap) {
        FORWARD_ERR(plan_for(ex, M, w, epi, cs->yb, xb, &p, 1));
        if (p->fused) {
            cs->yb_src = nullptr; /* yb is rewritten now */
            FORWARD_ERR(gemm_run(ex, p, cs->yb, xb, w, bias, 0.0f));
            cs->yb_src = y;
            cs->yb_n = (size_t)M * N;
            return PI0_OK;
        }
    }
    FORWARD_ERR(plan_for(ex, M, w, epi, scratch ? (const void *)cs->tmp : (const void *)y, xb, &p));
    if (!p->fused) { /* no algorithm for the fused epilogue: plain GEMM, then the epilogue kernel */
        FORWARD_ERR(plan_for(ex, M, w, CUBLASLT_EPILOGUE_DEFAULT, cs->tmp, xb, &p));
        FORWARD_ERR(gemm_run(ex, p, cs->tmp, xb, w, nullptr, 0.0f));
        return epilogue_to(ex, y, cs->tmp, bias, gelu, ep->mul, ep->gate, acc, M, N);
    }
    if (scratch) { /* GEMM + bias (+ GELU) to scratch, then ⊙ mul ⊙ gate (+ y) */
        FORWARD_ERR(gemm_run(ex, p, cs->tmp, xb, w, bias, 0.0f));
        return epilogue_to(ex, y, cs->tmp, nullptr, 0, ep->mul, ep->gate, acc, M, N);
    }
    return gemm_run(ex, p, y, xb, w, bias, acc ? 1.0f : 0.0f);
}

/* dx[M, K] (=|+=) (dy[M, N] ⊙ gate)·W: the same prepared bf16 W as the forward, untransposed
 * (see plan_create), with dy ⊙ gate rounded to bf16 into xb by one kernel and the accumulation as
 * beta = 1 on the f32 output. */
pi0_status cuda_matmul_dx(const pi0_exec *ex, float *dx, const float *dy, int M, const pi0_mat *W, const float *gate,
                          int accumulate) {
    cuda_session *cs = cuda_ctx(ex);
    const cuda_mat *w = cuda_mat_of(W);
    if (!cs || !w) return PI0_ERR_UNSUPPORTED;
    if (M <= 0) return PI0_OK;
    const int N = W->rows, K = W->cols;
    if ((size_t)M * N > cs->xb_cap) {
        char why[128];
        snprintf(why, sizeof why, "matmul_dx [%d x %d] x [%d x %d] exceeds the session's scratch", M, N, N, K);
        return cuda_fail(ex, W->name, why);
    }
    cs->xb_src = nullptr; /* xb now holds bf16(dy ⊙ gate), no activation's copy */
    cuda_xb_wrote(cs, dx, (size_t)M * K * sizeof *dx);
    FORWARD_ERR(cuda_gate_to_bf16(ex, cs->xb, dy, gate, M, N));
    cuda_gemm_plan *p;
    FORWARD_ERR(plan_for(ex, M, w, CUBLASLT_EPILOGUE_DEFAULT, dx, cs->xb, &p, 0, 1));
    return gemm_run(ex, p, dx, cs->xb, w, nullptr, accumulate ? 1.0f : 0.0f);
}

void cuda_plans_free(cuda_gemm_plan *plans, int n) {
    if (!plans) return;
    for (int i = 0; i < n; i++) plan_clear(&plans[i]);
}

/* ---------------------------------------------------------------- attention on tensor cores
 *
 * softmax(scale·Q·Kᵀ masked)·V as two strided-batched bf16 cuBLASLt GEMMs with f32 accumulation,
 * one batch per kv head, the G = Hq/Hkv query heads that share a kv head folded into the rows
 * (R = M·G rows per batch, row i·G + hl), and one mask + softmax kernel in f32 between them:
 *   Q, K, V   f32 → bf16 [Hkv][rows][hd]                        (pack_heads_kernel)
 *   S         [Hkv][R][ld] f32 = scale · Q·Kᵀ                    (GEMM 1; ld = Nk rounded up to 8)
 *   P         [Hkv][R][ld] bf16 = softmax(mask(S)) per row       (mask_softmax_kernel)
 *   out       [M, Hq·hd] f32 = P·V, written in place             (GEMM 2)
 * GEMM 2 writes the output rows directly when the packed row order matches the output's, i.e.
 * one kv head (Gemma's MQA: row i·G + hl lies at (i·G + hl)·hd) or one query head per kv head
 * (SigLIP: ld Hq·hd, batch stride hd); other head layouts, and attentions larger than the
 * scratch sized at session init, take the scalar kernel. Column-major view as in cuda_matmul:
 * row-major [rows, cols] is column-major cols × rows. */
namespace {

cublasStatus_t layout(cublasLtMatrixLayout_t *l, cudaDataType_t t, uint64_t rows, uint64_t cols, int64_t ld,
                      int batch, int64_t stride) {
    cublasStatus_t st = cublasLtMatrixLayoutCreate(l, t, rows, cols, ld);
    if (st == CUBLAS_STATUS_SUCCESS && batch > 1) {
        const int32_t b = batch;
        st = cublasLtMatrixLayoutSetAttribute(*l, CUBLASLT_MATRIX_LAYOUT_BATCH_COUNT, &b, sizeof b);
        if (st == CUBLAS_STATUS_SUCCESS)
            st = cublasLtMatrixLayoutSetAttribute(*l, CUBLASLT_MATRIX_LAYOUT_STRIDED_BATCH_OFFSET, &stride, sizeof stride);
    }
    return st;
}

/* The plan of one of the two GEMMs (which: 0 = Q·Kᵀ, 1 = P·V) for a shape; 0 found = no algorithm. */
pi0_status att_plan(const pi0_exec *ex, int which, int M, int Nk, int Hq, int Hkv, int hd, int ld_out,
                    int64_t out_stride, cuda_gemm_plan **plan, int *found) {
    cuda_session *cs = cuda_ctx(ex);
    const int G = Hq / Hkv, R = M * G, ld = (Nk + 7) & ~7;
    const unsigned long long key[4] = {(unsigned long long)which << 62 | (unsigned long long)M << 31 | (unsigned)Nk,
                                       (unsigned long long)Hq << 32 | (unsigned)Hkv,
                                       (unsigned long long)hd << 32 | (unsigned)ld_out, (unsigned long long)out_stride};
    unsigned long long h = 1469598103934665603ull;
    for (int i = 0; i < 4; i++) h = (h ^ key[i]) * 1099511628211ull;
    /* the two GEMMs of one attention in separate halves: one may not evict the other */
    cuda_gemm_plan *p = &cs->att_plans[which * (CUDA_ATT_SLOTS / 2) + (h ^ (h >> 29)) % (CUDA_ATT_SLOTS / 2)];
    *plan = p;
    *found = 1;
    if (p->used && memcmp(p->key, key, sizeof key) == 0) { *found = p->fused; return PI0_OK; }
    plan_clear(p);
    const cublasOperation_t op = which == 0 ? CUBLAS_OP_T : CUBLAS_OP_N;
    pi0_status st = PI0_OK;
#define A_TRY(call) do { cublasStatus_t s_ = (call); if (s_ != CUBLAS_STATUS_SUCCESS) { st = cuda_fail(ex, #call, cublasLtGetStatusString(s_)); goto out; } } while (0)
    A_TRY(cublasLtMatmulDescCreate(&p->desc, CUBLAS_COMPUTE_32F, CUDA_R_32F));
    A_TRY(cublasLtMatmulDescSetAttribute(p->desc, CUBLASLT_MATMUL_DESC_TRANSA, &op, sizeof op));
    if (which == 0) { /* S (Nk × R, ld) = Kᵀ-op(K: hd × Nk) · Q (hd × R) */
        A_TRY(layout(&p->a, CUDA_R_16BF, hd, Nk, hd, Hkv, (int64_t)Nk * hd));
        A_TRY(layout(&p->b, CUDA_R_16BF, hd, R, hd, Hkv, (int64_t)R * hd));
        A_TRY(layout(&p->c, CUDA_R_32F, Nk, R, ld, Hkv, (int64_t)R * ld));
    } else { /* out (hd × R, ld_out) = V (hd × Nk) · P (Nk × R, ld) */
        A_TRY(layout(&p->a, CUDA_R_16BF, hd, Nk, hd, Hkv, (int64_t)Nk * hd));
        A_TRY(layout(&p->b, CUDA_R_16BF, Nk, R, ld, Hkv, (int64_t)R * ld));
        A_TRY(layout(&p->c, CUDA_R_32F, hd, R, ld_out, Hkv, out_stride));
    }
#undef A_TRY
    p->fused = plan_algo(cs, p, 16) == CUBLAS_STATUS_SUCCESS; /* here: an algorithm was found */
    *found = p->fused;
    memcpy(p->key, key, sizeof key);
    p->used = 1;
out:
    if (st != PI0_OK) plan_clear(p);
    return st;
}

/* K or V [Nk, Hkv·hd] in bf16 for the attention's GEMMs: with one kv head, the source's mirror
 * (cuda_kv_mirror), converting only the rows it does not hold yet (a denoise step: the suffix's
 * own rows, not the cached prefix's); otherwise packed into the scratch `pack`. */
pi0_status kv_bf16(const pi0_exec *ex, const float *src, int Nk, int Hkv, int hd, __nv_bfloat16 *pack,
                   const __nv_bfloat16 **out) {
    cuda_session *cs = cuda_ctx(ex);
    const size_t n = (size_t)Nk * hd;
    if (Hkv != 1 || cs->n_kv == 0 || n > cs->kv_cap) {
        *out = pack;
        return cuda_pack_heads(ex, pack, src, Nk, 1, Hkv, hd);
    }
    cuda_kv_mirror *m = nullptr;
    for (int i = 0; i < cs->n_kv && !m; i++)
        if (cs->kv[i].src == src && cs->kv[i].row == (size_t)hd) m = &cs->kv[i];
    if (!m) { /* a new source takes the next mirror (round robin) */
        m = &cs->kv[cs->next_kv++ % cs->n_kv];
        m->src = src;
        m->row = (size_t)hd;
        m->valid = 0;
    }
    if (m->valid < (size_t)Nk) {
        const size_t r0 = m->valid;
        FORWARD_ERR(cuda_to_bf16(ex, m->buf + r0 * hd, src + r0 * hd, n - r0 * hd));
        m->valid = (size_t)Nk;
    }
    *out = m->buf;
    return PI0_OK;
}

} // namespace

pi0_status cuda_attention(const pi0_exec *ex, float *out, const float *q, const float *k, const float *v, int M,
                          int Nk, int Hq, int Hkv, int hd, const uint8_t *allowed, float scale) {
    cuda_session *cs = cuda_ctx(ex);
    if (M <= 0) return PI0_OK;
    cuda_xb_wrote(cs, out, (size_t)M * Hq * hd * sizeof *out);
    const int G = Hkv > 0 ? Hq / Hkv : 0, R = M * G, ld = (Nk + 7) & ~7;
    const int direct = Hkv == 1 || G == 1;
    if (!direct || Hkv * G != Hq || (size_t)M * Hq * hd > cs->att_q_cap || (size_t)Nk * Hkv * hd > cs->att_kv_cap ||
        (size_t)Hkv * R * ld > cs->att_s_cap || (uintptr_t)out % 16)
        return cuda_attention_scalar(ex, out, q, k, v, M, Nk, Hq, Hkv, hd, allowed, scale);
    const int ld_out = Hkv == 1 ? hd : Hq * hd;
    const int64_t out_stride = Hkv == 1 ? 0 : hd;
    cuda_gemm_plan *qk, *pv;
    int f1, f2;
    FORWARD_ERR(att_plan(ex, 0, M, Nk, Hq, Hkv, hd, ld_out, out_stride, &qk, &f1));
    FORWARD_ERR(att_plan(ex, 1, M, Nk, Hq, Hkv, hd, ld_out, out_stride, &pv, &f2));
    if (!f1 || !f2) return cuda_attention_scalar(ex, out, q, k, v, M, Nk, Hq, Hkv, hd, allowed, scale);
    /* with one kv head the packed Q is q's own layout: RoPE may have written it already */
    if (!(Hkv == 1 && cs->att_q_src == q && cs->att_q_n == (size_t)M * Hq * hd)) {
        cs->att_q_src = nullptr;
        FORWARD_ERR(cuda_pack_heads(ex, cs->att_q, q, M, G, Hkv, hd));
    }
    cs->att_q_src = nullptr; /* att_q is the attention's scratch from here on */
    const __nv_bfloat16 *kb, *vb;
    FORWARD_ERR(kv_bf16(ex, k, Nk, Hkv, hd, cs->att_k, &kb));
    FORWARD_ERR(kv_bf16(ex, v, Nk, Hkv, hd, cs->att_v, &vb));
    const float zero = 0.0f, one = 1.0f;
    LT_TRY(ex, cublasLtMatmul(cs->lt, qk->desc, &scale, kb, qk->a, cs->att_q, qk->b, &zero, cs->att_s, qk->c,
                              cs->att_s, qk->c, &qk->algo, cs->workspace, cs->workspace_bytes, cs->stream));
    FORWARD_ERR(cuda_mask_softmax(ex, cs->att_p, cs->att_s, Hkv * R, R, G, Nk, ld, allowed));
    LT_TRY(ex, cublasLtMatmul(cs->lt, pv->desc, &one, vb, pv->a, cs->att_p, pv->b, &zero, out, pv->c, out,
                              pv->c, &pv->algo, cs->workspace, cs->workspace_bytes, cs->stream));
    return PI0_OK;
}

/* ---------------------------------------------------------------- attention backward on cuBLASLt
 *
 * With one kv head (Gemma's MQA) q's rows [M, G·hd] are [R, hd] with R = M·G (row i·G + h is query
 * head h of row i), and every GEMM is one plain float32 matmul (f32 compute: the gradients keep
 * ref's precision; the suffix is small, so these are not tensor-core bound):
 *   S   [R, ld] = scale·Q·Kᵀ          (GEMM 0, into att_s; ld = Nk rounded up to 8)
 *   dP  [R, ld] = dout·Vᵀ             (GEMM 0's shape, into tmp)
 *   dS over S, and the suffix columns [k0, Nk) of dS and P compact [R, ls] after dP in tmp
 *               (attention_bwd_softmax_kernel; ls = Nk − k0 rounded up to 8)
 *   dq  [R, hd] = scale·dS·K          (GEMM 1)
 *   dk  [nk, hd] = scale·dS_sufᵀ·Q    (GEMM 2; nk = Nk − k0, the sum over R is over the query heads)
 *   dv  [nk, hd] = P_sufᵀ·dout        (GEMM 2's shape)
 * Column-major views as above. Other head layouts, and shapes past the scratch or without an
 * algorithm, take the kernels-only path (cuda_attention_bwd_scalar). */
namespace {

/* The plan of GEMM `which` (0, 1, 2 above) for a shape; 0 found = no algorithm. al: the alignment
 * every operand pointer has (bytes), asked of the heuristic for A, B, C and D. */
pi0_status att_bwd_plan(const pi0_exec *ex, int which, int R, int Nk, int k0, int hd, unsigned al,
                        cuda_gemm_plan **plan, int *found) {
    cuda_session *cs = cuda_ctx(ex);
    const int ld = (Nk + 7) & ~7, nk = Nk - k0, ls = (nk + 7) & ~7;
    const unsigned long long key[4] = {(unsigned long long)which << 32 | (unsigned)R,
                                       (unsigned long long)Nk << 32 | (unsigned)k0, (unsigned long long)hd, al};
    unsigned long long h = 1469598103934665603ull;
    for (int i = 0; i < 4; i++) h = (h ^ key[i]) * 1099511628211ull;
    /* the three GEMMs of one shape in separate thirds: one may not evict another */
    cuda_gemm_plan *p = &cs->att_bwd_plans[which * (CUDA_ATT_BWD_SLOTS / 3) + (h ^ (h >> 29)) % (CUDA_ATT_BWD_SLOTS / 3)];
    *plan = p;
    *found = 1;
    if (p->used && memcmp(p->key, key, sizeof key) == 0) { *found = p->fused; return PI0_OK; }
    plan_clear(p);
    const cublasOperation_t ta = which == 0 ? CUBLAS_OP_T : CUBLAS_OP_N, tb = which == 2 ? CUBLAS_OP_T : CUBLAS_OP_N;
    pi0_status st = PI0_OK;
#define B_TRY(call) do { cublasStatus_t s_ = (call); if (s_ != CUBLAS_STATUS_SUCCESS) { st = cuda_fail(ex, #call, cublasLtGetStatusString(s_)); goto out; } } while (0)
    B_TRY(cublasLtMatmulDescCreate(&p->desc, CUBLAS_COMPUTE_32F, CUDA_R_32F));
    B_TRY(cublasLtMatmulDescSetAttribute(p->desc, CUBLASLT_MATMUL_DESC_TRANSA, &ta, sizeof ta));
    B_TRY(cublasLtMatmulDescSetAttribute(p->desc, CUBLASLT_MATMUL_DESC_TRANSB, &tb, sizeof tb));
    if (which == 0) { /* S (Nk × R, ld) = op_T(K: hd × Nk) · Q (hd × R) */
        B_TRY(cublasLtMatrixLayoutCreate(&p->a, CUDA_R_32F, hd, Nk, hd));
        B_TRY(cublasLtMatrixLayoutCreate(&p->b, CUDA_R_32F, hd, R, hd));
        B_TRY(cublasLtMatrixLayoutCreate(&p->c, CUDA_R_32F, Nk, R, ld));
    } else if (which == 1) { /* dq (hd × R) = K (hd × Nk) · dS (Nk × R, ld) */
        B_TRY(cublasLtMatrixLayoutCreate(&p->a, CUDA_R_32F, hd, Nk, hd));
        B_TRY(cublasLtMatrixLayoutCreate(&p->b, CUDA_R_32F, Nk, R, ld));
        B_TRY(cublasLtMatrixLayoutCreate(&p->c, CUDA_R_32F, hd, R, hd));
    } else { /* dk (hd × nk) = Q (hd × R) · op_T(dS_suf: nk × R, ls) */
        B_TRY(cublasLtMatrixLayoutCreate(&p->a, CUDA_R_32F, hd, R, hd));
        B_TRY(cublasLtMatrixLayoutCreate(&p->b, CUDA_R_32F, nk, R, ls));
        B_TRY(cublasLtMatrixLayoutCreate(&p->c, CUDA_R_32F, hd, nk, hd));
    }
    p->fused = plan_algo(cs, p, al, al, al) == CUBLAS_STATUS_SUCCESS; /* here: an algorithm was found */
#undef B_TRY
    *found = p->fused;
    memcpy(p->key, key, sizeof key);
    p->used = 1;
out:
    if (st != PI0_OK) plan_clear(p);
    return st;
}

} // namespace

pi0_status cuda_attention_bwd(const pi0_exec *ex, float *dq, float *dk, float *dv, const float *dout, const float *q,
                              const float *k, const float *v, int M, int Nk, int k0, int Hq, int Hkv, int hd,
                              const uint8_t *allowed, float scale) {
    cuda_session *cs = cuda_ctx(ex);
    if (M <= 0 || Nk <= 0) return PI0_OK;
    if (Hkv <= 0 || Hq % Hkv || k0 < 0 || k0 > Nk) return PI0_ERR_ARG;
    const int R = M * Hq, ld = (Nk + 7) & ~7, nk = Nk - k0, ls = (nk + 7) & ~7;
    float *S = cs->att_s, *dP = cs->tmp, *dS_suf = cs->tmp + (size_t)R * ld, *P_suf = dS_suf + (size_t)R * ls;
    unsigned al = 256; /* every operand's alignment: dS_suf and P_suf are 32-byte aligned at least */
    for (const void *ptr : {(const void *)dq, (const void *)dk, (const void *)dv, (const void *)dout, (const void *)q,
                            (const void *)k, (const void *)v, (const void *)dS_suf, (const void *)P_suf}) {
        const unsigned a = alignment(ptr);
        al = a < al ? a : al;
    }
    cuda_gemm_plan *g0, *g1, *g2 = nullptr;
    int f0 = 0, f1 = 0, f2 = 1;
    if (Hkv != 1 || (size_t)R * ld > cs->att_s_cap || (size_t)R * (ld + 2 * (size_t)ls) > cs->tmp_cap || al < 4)
        return cuda_attention_bwd_scalar(ex, dq, dk, dv, dout, q, k, v, M, Nk, k0, Hq, Hkv, hd, allowed, scale);
    FORWARD_ERR(att_bwd_plan(ex, 0, R, Nk, k0, hd, al, &g0, &f0));
    FORWARD_ERR(att_bwd_plan(ex, 1, R, Nk, k0, hd, al, &g1, &f1));
    if (nk > 0) FORWARD_ERR(att_bwd_plan(ex, 2, R, Nk, k0, hd, al, &g2, &f2));
    if (!f0 || !f1 || !f2)
        return cuda_attention_bwd_scalar(ex, dq, dk, dv, dout, q, k, v, M, Nk, k0, Hq, Hkv, hd, allowed, scale);
    cuda_xb_wrote(cs, dq, (size_t)R * hd * sizeof *dq);
    cuda_xb_wrote(cs, dk, (size_t)nk * hd * sizeof *dk);
    cuda_xb_wrote(cs, dv, (size_t)nk * hd * sizeof *dv);
    const float zero = 0.0f, one = 1.0f;
    LT_TRY(ex, cublasLtMatmul(cs->lt, g0->desc, &scale, k, g0->a, q, g0->b, &zero, S, g0->c, S, g0->c, &g0->algo,
                              cs->workspace, cs->workspace_bytes, cs->stream));
    LT_TRY(ex, cublasLtMatmul(cs->lt, g0->desc, &one, v, g0->a, dout, g0->b, &zero, dP, g0->c, dP, g0->c, &g0->algo,
                              cs->workspace, cs->workspace_bytes, cs->stream));
    FORWARD_ERR(cuda_attention_bwd_softmax(ex, S, dP, dS_suf, P_suf, R, Hq, Nk, ld, k0, ls, allowed));
    LT_TRY(ex, cublasLtMatmul(cs->lt, g1->desc, &scale, k, g1->a, S, g1->b, &zero, dq, g1->c, dq, g1->c, &g1->algo,
                              cs->workspace, cs->workspace_bytes, cs->stream));
    if (nk == 0) return PI0_OK;
    LT_TRY(ex, cublasLtMatmul(cs->lt, g2->desc, &scale, q, g2->a, dS_suf, g2->b, &zero, dk, g2->c, dk, g2->c, &g2->algo,
                              cs->workspace, cs->workspace_bytes, cs->stream));
    LT_TRY(ex, cublasLtMatmul(cs->lt, g2->desc, &one, dout, g2->a, P_suf, g2->b, &zero, dv, g2->c, dv, g2->c, &g2->algo,
                              cs->workspace, cs->workspace_bytes, cs->stream));
    return PI0_OK;
}
