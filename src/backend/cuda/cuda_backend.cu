/* cuda_backend.cu — the `cuda` backend: NVIDIA GPUs through the CUDA runtime and cuBLASLt.
 *
 * At prepare() every matrix goes to the device once as bf16 (≈ 6.5 GB for the full model) and
 * every vector as float32. A session owns a stream, a cuBLASLt handle and workspace, and the
 * scratch the GEMM needs; its activation buffers are device memory (alloc), so the forward moves
 * only the observation in and the actions out. Norms, RoPE, softmax and the Euler state stay
 * float32; a norm also writes its output as the next GEMM's bf16 input. Ops run asynchronously on the session's stream; download and sync wait for it.
 *
 * Nothing here is model-specific: the forward (model/forward.c) drives these ops like any other
 * backend's. */
#include "cuda_common.cuh"

#include <cstdlib>
#include <cstring>

void cuda_plans_free(cuda_gemm_plan *plans, int n); /* cuda_matmul.cu */

static void capture_abandon(cuda_session *cs);

/* An op that fails while a graph is being recorded ends the recording: the forward returns with
 * the error and never reaches graph_end, and a stream left capturing would swallow (or refuse)
 * every later op of the session. */
pi0_status cuda_fail(const pi0_exec *ex, const char *what, const char *why) {
    cuda_session *cs = ex ? cuda_ctx(ex) : nullptr;
    if (cs) snprintf(cs->err, sizeof cs->err, "%s: %s", what, why);
    cuda_xb_forget(cs); /* what the failed op left in xb is unknown */
    if (cs) capture_abandon(cs);
    return PI0_ERR_DEVICE;
}

extern "C" int pi0_cuda_device_count(void) {
    int n = 0;
    if (cudaGetDeviceCount(&n) != cudaSuccess) {
        cudaGetLastError(); /* no driver / no device: clear the sticky-free error state */
        return 0;
    }
    return n;
}

/* ---------------------------------------------------------------- weights */

static void weights_free(cuda_weights *cw) {
    if (!cw) return;
    for (int i = 0; i < cw->n; i++) cudaFree(cw->ptrs[i]);
    free(cw->ptrs);
    free(cw->mats);
    free(cw->vecs);
    free(cw);
}

static void *dev_alloc(cuda_weights *cw, size_t bytes) {
    if (cw->n == cw->cap) {
        const int cap = cw->cap ? 2 * cw->cap : 1024;
        void **np = (void **)realloc(cw->ptrs, cap * sizeof *np);
        if (!np) return nullptr;
        cw->ptrs = np;
        cw->cap = cap;
    }
    void *p = nullptr;
    if (cudaMalloc(&p, bytes ? bytes : 1) != cudaSuccess) return nullptr;
    cw->ptrs[cw->n++] = p;
    cw->bytes += bytes;
    return p;
}

/* One matrix to the device as bf16, converted on the host in blocks of rows (a checkpoint may
 * be F32/F16/BF16, or a stack of several tensors). */
static pi0_status upload_mat(cuda_weights *cw, const pi0_mat *W, cuda_mat *out, pi0_err *e) {
    const size_t n = (size_t)W->rows * W->cols;
    out->N = W->rows;
    out->K = W->cols;
    out->w = (__nv_bfloat16 *)dev_alloc(cw, n * 2);
    RETURN_ERR_IF(!out->w, e, PI0_ERR_NOMEM, "cuda backend: out of GPU memory for '%s' (%zu MB so far)", W->name,
                  cw->bytes >> 20);
    if (!W->parts && W->dtype == DT_BF16) {
        cudaError_t ce = cudaMemcpy(out->w, W->data, n * 2, cudaMemcpyHostToDevice);
        RETURN_ERR_IF(ce != cudaSuccess, e, PI0_ERR_DEVICE, "cuda backend: upload of '%s': %s", W->name,
                      cudaGetErrorString(ce));
        return PI0_OK;
    }
    const int block = (int)(((size_t)1 << 22) / (size_t)W->cols) + 1; /* ≈ 4 M values at a time */
    float *f = (float *)malloc((size_t)block * W->cols * sizeof *f);
    uint16_t *h = (uint16_t *)malloc((size_t)block * W->cols * sizeof *h);
    pi0_status st = f && h ? PI0_OK : pi0_fail(e, PI0_ERR_NOMEM, "out of memory");
    for (int r = 0; r < W->rows && st == PI0_OK; r += block) {
        const int nr = W->rows - r < block ? W->rows - r : block;
        const size_t m = (size_t)nr * W->cols;
        pi0_mat_rows_f32(f, W, r, nr);
        for (size_t i = 0; i < m; i++) h[i] = f32_to_bf16(f[i]);
        cudaError_t ce = cudaMemcpy(out->w + (size_t)r * W->cols, h, m * 2, cudaMemcpyHostToDevice);
        if (ce != cudaSuccess)
            st = pi0_fail(e, PI0_ERR_DEVICE, "cuda backend: upload of '%s': %s", W->name, cudaGetErrorString(ce));
    }
    free(f);
    free(h);
    return st;
}

static pi0_status cuda_prepare(const pi0_weight_list *wl, void **handle, pi0_err *e) {
    RETURN_ERR_IF(pi0_cuda_device_count() < 1, e, PI0_ERR_DEVICE,
                  "cuda backend: no CUDA GPU found (no device, or no NVIDIA driver); use --backend fast or ref");
    cuda_weights *cw = (cuda_weights *)calloc(1, sizeof *cw);
    RETURN_ERR_IF(!cw, e, PI0_ERR_NOMEM, "out of memory");
    cw->mats = (cuda_mat *)calloc((size_t)wl->nmats + wl->ntables + 1, sizeof *cw->mats);
    cw->vecs = (cuda_vec *)calloc((size_t)wl->nvecs + 1, sizeof *cw->vecs);
    pi0_status st = cw->mats && cw->vecs ? PI0_OK : pi0_fail(e, PI0_ERR_NOMEM, "out of memory");
    cudaDeviceProp prop;
    if (st == PI0_OK && cudaGetDeviceProperties(&prop, 0) == cudaSuccess)
        snprintf(cw->device, sizeof cw->device, "%.100s, sm_%d%d", prop.name, prop.major, prop.minor);
    for (int i = 0; i < wl->nmats + wl->ntables && st == PI0_OK; i++) {
        pi0_mat *W = i < wl->nmats ? wl->mats[i] : wl->tables[i - wl->nmats];
        st = upload_mat(cw, W, &cw->mats[i], e);
        if (st == PI0_OK) W->prepared[PI0_SLOT_CUDA] = &cw->mats[i];
    }
    for (int i = 0; i < wl->nvecs && st == PI0_OK; i++) {
        pi0_vec *v = wl->vecs[i];
        cw->vecs[i].n = v->n;
        cw->vecs[i].v = (float *)dev_alloc(cw, v->n * sizeof(float));
        if (!cw->vecs[i].v) {
            st = pi0_fail(e, PI0_ERR_NOMEM, "cuda backend: out of GPU memory for '%s'", v->name);
            break;
        }
        cudaError_t ce = cudaMemcpy(cw->vecs[i].v, v->data, v->n * sizeof(float), cudaMemcpyHostToDevice);
        if (ce != cudaSuccess) st = pi0_fail(e, PI0_ERR_DEVICE, "cuda backend: upload of '%s': %s", v->name,
                                             cudaGetErrorString(ce));
        else v->prepared[PI0_SLOT_CUDA] = &cw->vecs[i];
    }
    /* cudaMemcpy from pageable memory may return before its DMA has reached the device, and the
     * sessions' non-blocking streams are not ordered after the legacy stream it used: wait here,
     * so that every upload is complete before any op reads the weights. */
    if (st == PI0_OK) {
        cudaError_t ce = cudaDeviceSynchronize();
        if (ce != cudaSuccess)
            st = pi0_fail(e, PI0_ERR_DEVICE, "cuda backend: finishing the weight uploads: %s", cudaGetErrorString(ce));
    }
    if (st != PI0_OK) {
        for (int i = 0; i < wl->nmats; i++) wl->mats[i]->prepared[PI0_SLOT_CUDA] = nullptr;
        for (int i = 0; i < wl->ntables; i++) wl->tables[i]->prepared[PI0_SLOT_CUDA] = nullptr;
        for (int i = 0; i < wl->nvecs; i++) wl->vecs[i]->prepared[PI0_SLOT_CUDA] = nullptr;
        weights_free(cw);
        return st;
    }
    *handle = cw;
    return PI0_OK;
}

static void cuda_release(void *handle, const pi0_weight_list *wl) {
    for (int i = 0; i < wl->nmats; i++) wl->mats[i]->prepared[PI0_SLOT_CUDA] = nullptr;
    for (int i = 0; i < wl->ntables; i++) wl->tables[i]->prepared[PI0_SLOT_CUDA] = nullptr;
    for (int i = 0; i < wl->nvecs; i++) wl->vecs[i]->prepared[PI0_SLOT_CUDA] = nullptr;
    weights_free((cuda_weights *)handle);
}

static void cuda_describe(const void *handle, char *buf, size_t n) {
    const cuda_weights *cw = (const cuda_weights *)handle;
    if (cw && cw->unfused)
        snprintf(buf, n, "bf16 (cuBLASLt; %s; weights %.2f GB; EPILOGUE FALLBACK: %d GEMM plan(s) without a fused "
                 "cuBLASLt epilogue ran plain GEMM + epilogue kernel, first %s)", cw->device, cw->bytes / 1e9,
                 cw->unfused, cw->unfused_first);
    else if (cw) snprintf(buf, n, "bf16 (cuBLASLt; %s; weights %.2f GB)", cw->device, cw->bytes / 1e9);
    else snprintf(buf, n, "bf16 (cuBLASLt)");
}

/* ---------------------------------------------------------------- session */

/* Ends a capture that an op's failure left open, discarding it. */
static void capture_abandon(cuda_session *cs) {
    if (!cs->capturing) return;
    cudaGraph_t g = nullptr;
    cudaStreamEndCapture(cs->stream, &g);
    if (g) cudaGraphDestroy(g);
    cudaGetLastError();
    cs->capturing = 0;
}

static void cuda_session_free(pi0_exec *ex) {
    cuda_session *cs = cuda_ctx(ex);
    if (!cs) return;
    capture_abandon(cs);
    for (int i = 0; i < CUDA_GRAPHS; i++)
        if (cs->graphs[i].exec) cudaGraphExecDestroy(cs->graphs[i].exec);
    for (int i = 0; i < PI0_MARKS; i++)
        if (cs->marks[i]) cudaEventDestroy(cs->marks[i]);
    if (cs->stream) cudaStreamSynchronize(cs->stream);
    cuda_plans_free(cs->plans, CUDA_GEMM_SLOTS);
    free(cs->plans);
    cuda_plans_free(cs->att_plans, CUDA_ATT_SLOTS);
    free(cs->att_plans);
    cuda_plans_free(cs->att_bwd_plans, CUDA_ATT_BWD_SLOTS);
    free(cs->att_bwd_plans);
    cudaFree(cs->att_q);
    cudaFree(cs->att_k);
    cudaFree(cs->att_v);
    cudaFree(cs->att_s);
    cudaFree(cs->att_p);
    cudaFree(cs->kv_pool);
    cudaFree(cs->workspace);
    cudaFree(cs->xb);
    cudaFree(cs->yb);
    cudaFree(cs->tmp);
    if (cs->lt) cublasLtDestroy(cs->lt);
    if (cs->stream) cudaStreamDestroy(cs->stream);
    free(cs);
    ex->ctx = nullptr;
}

/* The scratch every op shares, sized by the largest use the forward (src/model/forward.c) and the
 * exact-RTC backward (vjp.c) make of each buffer, stage by stage: SigLIP runs one camera at a time
 * (n_img rows), the prefix pass P = cameras·n_img + max_token_len rows, the suffix S = horizon
 * (+ the state row, π0) rows against P + S keys, and the flow-time MLP and π0.5's modulation
 * stack one row each (that stack, (2·depth + 1)·3·We wide, is an output of one row, not a width
 * of every stage). Each op still checks its shape against these capacities and fails clearly
 * (or takes its fallback) past them. Full π0, 3 cameras: 188 MB in all (xb 27 MB, tmp 107 MB:
 * the prefix's [gate | up] [816, 2·16384] f32); full π0.5, 3 cameras: 230 MB. */
namespace {
struct gemm_shape {
    size_t M, K, N, Y; /* x [M, K]·Wᵀ [K, N] → y [M, Y] (Y = N/2 after the GeGLU of [gate; up]) */
};
size_t max_of(size_t a, size_t b) { return a > b ? a : b; }
size_t round8(size_t n) { return (n + 7) & ~(size_t)7; }
} // namespace

static void cuda_scratch_size(const pi0_config *c, cuda_session *cs) {
    const pi0_siglip_config *V = &c->vision;
    const pi0_gemma_config *G = &c->vlm, *E = &c->expert;
    const size_t n_img = (size_t)pi0_config_image_tokens(c), P = (size_t)c->num_cameras * n_img + c->max_token_len;
    const size_t H = c->action_horizon, S = H + (c->pi05 ? 0 : 1), keys = P + S;
    const size_t Vw = V->width, Vf = V->mlp_dim, Gw = G->width, Gf = G->mlp_dim, Ew = E->width, Ef = E->mlp_dim;
    const size_t qg = (size_t)G->num_heads * G->head_dim, kg = (size_t)G->num_kv_heads * G->head_dim;
    const size_t qe = (size_t)E->num_heads * E->head_dim, ke = (size_t)E->num_kv_heads * E->head_dim;
    const size_t A = c->action_dim, mods = (2 * (size_t)E->depth + 1) * 3 * Ew;
    const size_t h0 = c->pi05 ? 0 : H, one0 = c->pi05 ? 0 : 1, one5 = c->pi05 ? 1 : 0; /* π0 / π0.5 only */
    const gemm_shape gemms[] = {
        /* SigLIP, one camera: patch embedding, q k v o, fc1, fc2, the projector */
        {n_img, 3 * (size_t)V->patch_size * V->patch_size, Vw, Vw}, {n_img, Vw, Vw, Vw}, {n_img, Vw, Vf, Vf},
        {n_img, Vf, Vw, Vw}, {n_img, Vw, Gw, Gw},
        /* prefix layers: k v, q, o, [gate; up], down */
        {P, Gw, kg, kg}, {P, Gw, qg, qg}, {P, qg, Gw, Gw}, {P, Gw, 2 * Gf, Gf}, {P, Gf, Gw, Gw},
        /* expert layers over the suffix (the backward recomputes [gate; up] into its own buffer) */
        {S, Ew, ke, ke}, {S, Ew, qe, qe}, {S, qe, Ew, Ew}, {S, Ew, 2 * Ef, 2 * Ef}, {S, Ef, Ew, Ew},
        /* the suffix embedding and action_out: action_in; π0's time_in on [action | time], time_out and
         * state_proj; π0.5's time MLP and modulation stack on the one condition row */
        {H, A, Ew, Ew}, {h0, 2 * Ew, Ew, Ew}, {h0, Ew, Ew, Ew}, {one0, (size_t)c->state_dim, Ew, Ew},
        {one5, Ew, Ew, Ew}, {one5, Ew, mods, mods}, {H, Ew, A, A},
    };
    /* xb (bf16): a GEMM's input, a norm's output, an output an epilogue kernel also writes in bf16
     * (GeGLU → down), and matmul_dx's dy [S, N] over the expert's and suffix embedding's weights;
     * tmp (f32): a GEMM's output before an epilogue kernel ([M, 2F] for GeGLU), which the matmul
     * requires of every GEMM (the no-heuristic fallback may need it) */
    size_t xb = 0, tmp = 0;
    for (const gemm_shape &g : gemms) {
        xb = max_of(xb, g.M * max_of(g.K, g.Y));
        tmp = max_of(tmp, g.M * g.N);
    }
    xb = max_of(xb, S * max_of(max_of(2 * Ef, Ew), max_of(qe, ke)));
    xb = max_of(xb, H * max_of(A, Ew));
    /* attention (cuda_attention): packed Q [rows, heads·hd] (RoPE's bf16 q too), K and V
     * [keys, kv heads·hd], logits [heads·rows, keys rounded to 8] (f32 in att_s, bf16 in att_p):
     * SigLIP, the prefix (P keys), the suffix (P + S keys) */
    const size_t vh = V->num_heads, gh = G->num_heads, eh = E->num_heads;
    cs->att_q_cap = max_of(n_img * Vw, max_of(P * qg, S * qe));
    cs->att_kv_cap = max_of(n_img * Vw, max_of(P * kg, keys * ke));
    cs->att_s_cap = max_of(vh * n_img * round8(n_img), max_of(gh * P * round8(P), eh * S * round8(keys)));
    /* the attention backward (suffix only): S in att_s (the logits' shape above); dP [S·heads, keys
     * rounded] and the suffix columns of dS and P [S·heads, S rounded] ×2 in tmp (the kernels-only
     * way: P and dS [heads, S, keys] in att_s and tmp, no larger) */
    tmp = max_of(tmp, eh * S * (round8(keys) + 2 * round8(S)));
    cs->xb_cap = xb;
    cs->tmp_cap = tmp;
    /* GEMM outputs kept only in bf16 (gemm_input): SigLIP's fc1 [image tokens, vision mlp] */
    cs->yb_cap = n_img * Vf;
    /* bf16 K and V of one-kv-head attentions, per source (a layer's K or V cache: 2 per layer),
     * each [keys, hd] rounded up to 256 bytes (full π0, 3 cameras: 36 × 867·256·2 B = 16 MB) */
    const int depth = G->depth > E->depth ? G->depth : E->depth;
    cs->n_kv = G->num_kv_heads == 1 && 2 * depth <= CUDA_KV_MIRRORS ? 2 * depth : 0;
    cs->kv_cap = (keys * G->head_dim + 127) & ~(size_t)127;
}

static pi0_status cuda_session_init(pi0_exec *ex, const pi0_config *c, pi0_err *e) {
    cuda_session *cs = (cuda_session *)calloc(1, sizeof *cs);
    RETURN_ERR_IF(!cs, e, PI0_ERR_NOMEM, "out of memory");
    ex->ctx = cs;
    cuda_scratch_size(c, cs);
    cs->workspace_bytes = 32u << 20;
    int dev = 0, smem = 0;
    cudaError_t ce = cudaGetDevice(&dev);
    if (ce == cudaSuccess) ce = cudaDeviceGetAttribute(&smem, cudaDevAttrMaxSharedMemoryPerBlock, dev);
    if (ce == cudaSuccess) ce = cudaStreamCreateWithFlags(&cs->stream, cudaStreamNonBlocking);
    for (int i = 0; i < PI0_MARKS && ce == cudaSuccess; i++) ce = cudaEventCreate(&cs->marks[i]);
    if (ce == cudaSuccess) ce = cudaMalloc(&cs->workspace, cs->workspace_bytes);
    if (ce == cudaSuccess) ce = cudaMalloc((void **)&cs->xb, cs->xb_cap * sizeof *cs->xb);
    if (ce == cudaSuccess) ce = cudaMalloc((void **)&cs->tmp, cs->tmp_cap * sizeof *cs->tmp);
    if (ce == cudaSuccess) ce = cudaMalloc((void **)&cs->yb, cs->yb_cap * sizeof *cs->yb);
    if (ce == cudaSuccess && cs->n_kv)
        ce = cudaMalloc((void **)&cs->kv_pool, (size_t)cs->n_kv * cs->kv_cap * sizeof *cs->kv_pool);
    for (int i = 0; i < cs->n_kv && ce == cudaSuccess; i++) cs->kv[i].buf = cs->kv_pool + (size_t)i * cs->kv_cap;
    if (ce == cudaSuccess) ce = cudaMalloc((void **)&cs->att_q, cs->att_q_cap * sizeof *cs->att_q);
    if (ce == cudaSuccess) ce = cudaMalloc((void **)&cs->att_k, cs->att_kv_cap * sizeof *cs->att_k);
    if (ce == cudaSuccess) ce = cudaMalloc((void **)&cs->att_v, cs->att_kv_cap * sizeof *cs->att_v);
    if (ce == cudaSuccess) ce = cudaMalloc((void **)&cs->att_s, cs->att_s_cap * sizeof *cs->att_s);
    if (ce == cudaSuccess) ce = cudaMalloc((void **)&cs->att_p, cs->att_s_cap * sizeof *cs->att_p);
    /* on failure the session is freed here: the caller only frees sessions that started */
    if (ce != cudaSuccess) {
        cuda_session_free(ex);
        return pi0_fail(e, PI0_ERR_DEVICE, "cuda backend: session setup: %s", cudaGetErrorString(ce));
    }
    cs->max_smem = smem;
    if (cublasLtCreate(&cs->lt) != CUBLAS_STATUS_SUCCESS) {
        cs->lt = nullptr;
        cuda_session_free(ex);
        return pi0_fail(e, PI0_ERR_DEVICE, "cuda backend: cuBLASLt could not be initialised");
    }
    cs->plans = (cuda_gemm_plan *)calloc(CUDA_GEMM_SLOTS, sizeof *cs->plans);
    cs->att_plans = (cuda_gemm_plan *)calloc(CUDA_ATT_SLOTS, sizeof *cs->att_plans);
    cs->att_bwd_plans = (cuda_gemm_plan *)calloc(CUDA_ATT_BWD_SLOTS, sizeof *cs->att_bwd_plans);
    if (!cs->plans || !cs->att_plans || !cs->att_bwd_plans) {
        cuda_session_free(ex);
        return pi0_fail(e, PI0_ERR_NOMEM, "out of memory");
    }
    const char *g = getenv("PI0_CUDA_GRAPHS");
    cs->graphs_off = g && !strcmp(g, "0");
    return PI0_OK;
}

/* ---------------------------------------------------------------- timing and graphs */

static pi0_status cuda_mark(const pi0_exec *ex, int i) {
    CUDA_TRY(ex, cudaEventRecord(cuda_ctx(ex)->marks[i], cuda_ctx(ex)->stream));
    return PI0_OK;
}

static double cuda_elapsed_ms(const pi0_exec *ex, int i, int j) {
    float ms = 0;
    if (cudaEventElapsedTime(&ms, cuda_ctx(ex)->marks[i], cuda_ctx(ex)->marks[j]) != cudaSuccess) {
        cudaGetLastError();
        return 0;
    }
    return ms;
}

/* A recorded graph for the key is launched; otherwise the stream starts recording (the ops
 * that follow are captured, not run, until graph_end). PI0_CUDA_GRAPHS=0 turns this off. */
static pi0_status cuda_graph_begin(const pi0_exec *ex, uint64_t key, int *replayed) {
    cuda_session *cs = cuda_ctx(ex);
    *replayed = 0;
    capture_abandon(cs);
    cuda_xb_forget(cs); /* a replay runs ops whose bookkeeping is not redone: start from nothing */
    if (cs->graphs_off) return PI0_OK;
    for (int i = 0; i < CUDA_GRAPHS; i++)
        if (cs->graphs[i].exec && cs->graphs[i].key == key) {
            cs->graphs[i].last_use = ++cs->uses;
            CUDA_TRY(ex, cudaGraphLaunch(cs->graphs[i].exec, cs->stream));
            *replayed = 1;
            return PI0_OK;
        }
    /* The first loop of a prefix length runs eagerly: every kernel's module is loaded and every
     * cuBLASLt plan made outside a capture; the second is recorded. */
    int warm = 0;
    for (int i = 0; i < CUDA_GRAPHS && i < cs->n_warmed; i++) warm |= cs->warmed[i] == key;
    if (!warm) {
        cs->warmed[cs->n_warmed++ % CUDA_GRAPHS] = key;
        return PI0_OK;
    }
    if (cudaStreamBeginCapture(cs->stream, cudaStreamCaptureModeThreadLocal) == cudaSuccess) cs->capturing = 1;
    else cudaGetLastError(); /* not capturable here: the ops simply run */
    return PI0_OK;
}

/* Ends the recording, keeps the graph (evicting the least recently used) and launches it; if
 * recording failed, *rerun asks the caller to run the ops again without it. */
static pi0_status cuda_graph_end(const pi0_exec *ex, uint64_t key, int *rerun) {
    cuda_session *cs = cuda_ctx(ex);
    *rerun = 0;
    cuda_xb_forget(cs); /* as at graph_begin: the state after the graph is the same replayed or not */
    if (!cs->capturing) return PI0_OK;
    cs->capturing = 0;
    cudaGraph_t g = nullptr;
    cudaGraphExec_t exec = nullptr;
    if (cudaStreamEndCapture(cs->stream, &g) != cudaSuccess || !g ||
        cudaGraphInstantiate(&exec, g, 0) != cudaSuccess) {
        cudaGetLastError();
        if (g) cudaGraphDestroy(g);
        cs->graphs_off = 1; /* do not try again every call */
        *rerun = 1;
        return PI0_OK;
    }
    cudaGraphDestroy(g);
    cuda_graph *slot = &cs->graphs[0];
    for (int i = 1; i < CUDA_GRAPHS; i++)
        if (cs->graphs[i].last_use < slot->last_use) slot = &cs->graphs[i];
    if (slot->exec) cudaGraphExecDestroy(slot->exec);
    slot->key = key;
    slot->exec = exec;
    slot->last_use = ++cs->uses;
    CUDA_TRY(ex, cudaGraphLaunch(exec, cs->stream));
    return PI0_OK;
}

/* ---------------------------------------------------------------- ceilings */

__global__ static void fill_kernel(__nv_bfloat16 *p, size_t n, unsigned seed) {
    const size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= n) return;
    unsigned x = (unsigned)i * 2654435761u ^ seed; /* not zeros: they time faster than data */
    x ^= x >> 13;
    x *= 0x5bd1e995u;
    x ^= x >> 15;
    p[i] = __float2bfloat16_rn(((x & 0xffff) / 65536.0f - 0.5f) * 0.1f);
}

/* A large bf16 GEMM through cuBLASLt and a large device-to-device copy, each timed with events
 * (median of 7 after 2 warm-ups), and the memory in use. */
static pi0_status cuda_measure(const pi0_exec *ex, double *flops, double *copy, double *used, double *total) {
    cuda_session *cs = cuda_ctx(ex);
    const int n = 8192, iters = 7;
    const size_t nn = (size_t)n * n, copy_bytes = (size_t)1 << 30;
    __nv_bfloat16 *a = nullptr, *b = nullptr, *c = nullptr;
    void *src = nullptr, *dst = nullptr;
    cudaEvent_t e0 = nullptr, e1 = nullptr;
    cublasLtMatmulDesc_t desc = nullptr;
    cublasLtMatrixLayout_t la = nullptr;
    float t[iters], tc[iters];
    pi0_status st = PI0_OK;
    size_t free_b = 0, total_b = 0;
    CUDA_TRY(ex, cudaMemGetInfo(&free_b, &total_b)); /* before the probe's own buffers */
    *used = (double)(total_b - free_b);
    *total = (double)total_b;
#define M_TRY(call) do { if (st == PI0_OK) { cudaError_t e_ = (call); if (e_ != cudaSuccess) st = cuda_fail(ex, #call, cudaGetErrorString(e_)); } } while (0)
#define L_TRY(call) do { if (st == PI0_OK) { cublasStatus_t s_ = (call); if (s_ != CUBLAS_STATUS_SUCCESS) st = cuda_fail(ex, #call, cublasLtGetStatusString(s_)); } } while (0)
    M_TRY(cudaMalloc((void **)&a, nn * 2));
    M_TRY(cudaMalloc((void **)&b, nn * 2));
    M_TRY(cudaMalloc((void **)&c, nn * 2));
    M_TRY(cudaMalloc(&src, copy_bytes));
    M_TRY(cudaMalloc(&dst, copy_bytes));
    M_TRY(cudaEventCreate(&e0));
    M_TRY(cudaEventCreate(&e1));
    if (st == PI0_OK) {
        fill_kernel<<<blocks_for(nn, 256), 256, 0, cs->stream>>>(a, nn, 1);
        fill_kernel<<<blocks_for(nn, 256), 256, 0, cs->stream>>>(b, nn, 2);
        fill_kernel<<<blocks_for(copy_bytes / 2, 256), 256, 0, cs->stream>>>((__nv_bfloat16 *)src, copy_bytes / 2, 3);
        M_TRY(cudaGetLastError());
    }
    L_TRY(cublasLtMatmulDescCreate(&desc, CUBLAS_COMPUTE_32F, CUDA_R_32F));
    L_TRY(cublasLtMatrixLayoutCreate(&la, CUDA_R_16BF, n, n, n));
    const float alpha = 1.0f, beta = 0.0f;
    for (int i = -2; i < iters && st == PI0_OK; i++) {
        M_TRY(cudaEventRecord(e0, cs->stream));
        L_TRY(cublasLtMatmul(cs->lt, desc, &alpha, a, la, b, la, &beta, c, la, c, la, nullptr, cs->workspace,
                             cs->workspace_bytes, cs->stream));
        M_TRY(cudaEventRecord(e1, cs->stream));
        M_TRY(cudaEventSynchronize(e1));
        if (i >= 0) M_TRY(cudaEventElapsedTime(&t[i], e0, e1));
    }
    for (int i = -2; i < iters && st == PI0_OK; i++) {
        M_TRY(cudaEventRecord(e0, cs->stream));
        M_TRY(cudaMemcpyAsync(dst, src, copy_bytes, cudaMemcpyDeviceToDevice, cs->stream));
        M_TRY(cudaEventRecord(e1, cs->stream));
        M_TRY(cudaEventSynchronize(e1));
        if (i >= 0) M_TRY(cudaEventElapsedTime(&tc[i], e0, e1));
    }
#undef M_TRY
#undef L_TRY
    if (st == PI0_OK) {
        for (int i = 0; i < iters; i++) /* sort both for the medians */
            for (int j = i + 1; j < iters; j++) {
                if (t[j] < t[i]) { float x = t[i]; t[i] = t[j]; t[j] = x; }
                if (tc[j] < tc[i]) { float x = tc[i]; tc[i] = tc[j]; tc[j] = x; }
            }
        *flops = 2.0 * n * n * (double)n / (t[iters / 2] / 1e3);
        *copy = 2.0 * copy_bytes / (tc[iters / 2] / 1e3); /* read + written */
    }
    if (la) cublasLtMatrixLayoutDestroy(la);
    if (desc) cublasLtMatmulDescDestroy(desc);
    if (e0) cudaEventDestroy(e0);
    if (e1) cudaEventDestroy(e1);
    cudaFree(a);
    cudaFree(b);
    cudaFree(c);
    cudaFree(src);
    cudaFree(dst);
    return st;
}

static void *cuda_alloc(const pi0_exec *ex, size_t bytes) {
    void *p = nullptr;
    cuda_xb_forget(cuda_ctx(ex)); /* an address may come back in a new buffer */
    if (cudaMalloc(&p, bytes) != cudaSuccess) return nullptr;
    if (cudaMemsetAsync(p, 0, bytes, cuda_ctx(ex)->stream) != cudaSuccess ||
        cudaStreamSynchronize(cuda_ctx(ex)->stream) != cudaSuccess) {
        cudaFree(p);
        return nullptr;
    }
    return p;
}

static void cuda_free_mem(const pi0_exec *ex, void *p) {
    cuda_xb_forget(cuda_ctx(ex));
    cudaFree(p);
}

static pi0_status cuda_upload(const pi0_exec *ex, void *dst, const void *src, size_t bytes) {
    cuda_xb_wrote(cuda_ctx(ex), dst, bytes);
    CUDA_TRY(ex, cudaMemcpyAsync(dst, src, bytes, cudaMemcpyHostToDevice, cuda_ctx(ex)->stream));
    return PI0_OK;
}

static pi0_status cuda_download(const pi0_exec *ex, void *dst, const void *src, size_t bytes) {
    CUDA_TRY(ex, cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToHost, cuda_ctx(ex)->stream));
    CUDA_TRY(ex, cudaStreamSynchronize(cuda_ctx(ex)->stream));
    return PI0_OK;
}

static pi0_status cuda_sync(const pi0_exec *ex) {
    CUDA_TRY(ex, cudaStreamSynchronize(cuda_ctx(ex)->stream));
    return PI0_OK;
}

static const char *cuda_last_error(const pi0_exec *ex) {
    const cuda_session *cs = cuda_ctx(ex);
    return cs && cs->err[0] ? cs->err : nullptr;
}

/* The table, filled field by field (C++17 has no designated initializers). */
static pi0_backend make_table() {
    pi0_backend b;
    memset(&b, 0, sizeof b);
    b.name = "cuda";
    b.slot = PI0_SLOT_CUDA;
    b.host_memory = 0;
    b.prepare = cuda_prepare;
    b.release = cuda_release;
    b.describe = cuda_describe;
    b.session_init = cuda_session_init;
    b.session_free = cuda_session_free;
    b.alloc = cuda_alloc;
    b.free = cuda_free_mem;
    b.upload = cuda_upload;
    b.download = cuda_download;
    b.sync = cuda_sync;
    b.last_error = cuda_last_error;
    b.mark = cuda_mark;
    b.elapsed_ms = cuda_elapsed_ms;
    b.graph_begin = cuda_graph_begin;
    b.graph_end = cuda_graph_end;
    b.measure = cuda_measure;
    b.matmul = cuda_matmul;
    b.layernorm = cuda_layernorm;
    b.rmsnorm = cuda_rmsnorm;
    b.rmsnorm_mod = cuda_rmsnorm_mod;
    b.gelu_tanh = cuda_gelu;
    b.silu = cuda_silu;
    b.mul = cuda_mul;
    b.add = cuda_add;
    b.add_weight = cuda_add_weight;
    b.rope = cuda_rope;
    b.attention = cuda_attention;
    b.patchify = cuda_patchify;
    b.embed = cuda_embed;
    b.copy_rows = cuda_copy_rows;
    b.time_embed = cuda_time_embed;
    b.axpy = cuda_axpy;
    b.matmul_dx = cuda_matmul_dx;
    b.rmsnorm_bwd = cuda_rmsnorm_bwd;
    b.geglu_bwd = cuda_geglu_bwd;
    b.silu_bwd = cuda_silu_bwd;
    b.rope_bwd = cuda_rope_bwd;
    b.attention_bwd = cuda_attention_bwd;
    return b;
}

extern "C" const pi0_backend pi0_backend_cuda = make_table();
