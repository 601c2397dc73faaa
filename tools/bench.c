/* bench.c — `pi0 bench`, `pi0 verify`, `pi0 check`: the engine telling the truth about itself.
 *   bench   per-stage median times, GFLOP/s and the fraction of this machine's peak (measured in
 *           the same run), peak RSS, and the fast/ref ratio on a small model;
 *   verify  which backend executed every op of a real run, calls, FLOPs, time, fallbacks;
 *   check   ref vs an accelerated backend (fast, cuda), component by component, on the same
 *           inputs: PCC, max |diff|. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/resource.h>

#include "cli.h"
#include "../src/common.h"
#include "../src/io/inputs.h"

/* ---------------------------------------------------------------- machine peak */

#if defined(__x86_64__)
#include <immintrin.h>
/* A register-resident chain of independent vdpbf16ps / vfmadd: the instruction throughput bound.
 * Intrinsics here only: a measurement tool, not an engine path. */
__attribute__((target("avx512f,avx512bf16"))) static float peak_bf16_loop(long iters) {
    __m512 acc[24];
    for (int i = 0; i < 24; i++) acc[i] = _mm512_setzero_ps();
    __m512bh a = (__m512bh)_mm512_set1_epi16(0x3f80), b = (__m512bh)_mm512_set1_epi16(0x3c00);
    for (long i = 0; i < iters; i++) {
        _Pragma("GCC unroll 24") for (int j = 0; j < 24; j++) acc[j] = _mm512_dpbf16_ps(acc[j], a, b);
        __asm__ volatile("" : "+v"(a));
    }
    __m512 s = acc[0];
    for (int i = 1; i < 24; i++) s = _mm512_add_ps(s, acc[i]);
    return _mm512_reduce_add_ps(s);
}
__attribute__((target("avx2,fma"))) static float peak_fma_loop(long iters) {
    __m256 acc[12];
    for (int i = 0; i < 12; i++) acc[i] = _mm256_setzero_ps();
    __m256 a = _mm256_set1_ps(1.0001f), b = _mm256_set1_ps(0.9999f);
    for (long i = 0; i < iters; i++) {
        _Pragma("GCC unroll 12") for (int j = 0; j < 12; j++) acc[j] = _mm256_fmadd_ps(a, b, acc[j]);
        __asm__ volatile("" : "+x"(a));
    }
    float out[8], s = 0;
    for (int i = 1; i < 12; i++) acc[0] = _mm256_add_ps(acc[0], acc[i]);
    _mm256_storeu_ps(out, acc[0]);
    for (int i = 0; i < 8; i++) s += out[i];
    return s;
}
#endif

/* GFLOP/s of the bf16 dot-product (or, without AVX512-BF16, f32 FMA) loop on all threads: the
 * best of 3 trials of ~0.3 s (the first may run before the clock has ramped up). */
static double measure_peak_once(int threads, const char **what) {
#if defined(__x86_64__)
    const int bf16 = __builtin_cpu_supports("avx512bf16");
    const long iters = bf16 ? 50000000 : 100000000;
    volatile float sink = 0;
    double t0 = now_ms();
#pragma omp parallel num_threads(threads)
    {
        float r = bf16 ? peak_bf16_loop(iters) : peak_fma_loop(iters);
#pragma omp atomic
        sink += r;
    }
    double s = (now_ms() - t0) / 1e3;
    *what = bf16 ? "vdpbf16ps (AVX512-BF16)" : "vfmadd231ps (AVX2 FMA, f32)";
    const double flop_per_iter = bf16 ? 24.0 * 64 : 12.0 * 16;
    return threads * iters * flop_per_iter / s / 1e9;
#else
    *what = "unknown ISA";
    (void)threads;
    return 0;
#endif
}

static double measure_peak(int threads, const char **what) {
    double best = 0;
    for (int i = 0; i < 3; i++) {
        double p = measure_peak_once(threads, what);
        if (p > best) best = p;
    }
    return best;
}

static long peak_rss_mb(void) {
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return ru.ru_maxrss / 1024;
}

/* ---------------------------------------------------------------- synthetic observation */

typedef struct {
    float *images, *state, *noise;
    int32_t *tokens;
    uint8_t masks[16], *tmask;
    pi0_inputs in;
} synth_obs;

static int synth_make(synth_obs *o, const pi0_config *c, int cameras, int tokens, uint64_t seed) {
    const size_t S = c->vision.image_size, img = 3 * S * S, HA = (size_t)c->action_horizon * c->action_dim;
    memset(o, 0, sizeof *o);
    o->images = malloc(img * c->num_cameras * sizeof(float));
    o->state = malloc(c->state_dim * sizeof(float));
    o->noise = malloc(HA * sizeof(float));
    o->tokens = calloc(c->max_token_len, sizeof(int32_t));
    o->tmask = calloc(c->max_token_len, 1);
    if (!o->images || !o->state || !o->noise || !o->tokens || !o->tmask) return 0;
    pi0_rng r;
    rng_seed(&r, seed);
    for (size_t i = 0; i < img * c->num_cameras; i++) o->images[i] = (float)(rng_uniform(&r) * 2 - 1);
    for (int i = 0; i < c->num_cameras; i++) o->masks[i] = i < cameras;
    if (tokens > c->max_token_len) tokens = c->max_token_len;
    for (int i = 0; i < tokens; i++) {
        o->tokens[i] = i == 0 ? 2 : (int32_t)(rng_next(&r) % (uint64_t)c->vlm.vocab_size);
        o->tmask[i] = 1;
    }
    rng_gaussian(&r, o->state, c->state_dim);
    rng_gaussian(&r, o->noise, HA);
    o->in = (pi0_inputs){.batch = 1, .num_cameras = c->num_cameras, .images = o->images,
                         .image_masks = o->masks, .tokens = o->tokens, .token_mask = o->tmask,
                         .state = o->state, .noise = o->noise};
    return 1;
}

static void synth_free(synth_obs *o) {
    free(o->images); free(o->state); free(o->noise); free(o->tokens); free(o->tmask);
}

/* ---------------------------------------------------------------- options */

typedef struct {
    const char *model, *small, *backend, *inputs;
    int cameras, runs, tokens, threads;
} bench_opts;

static int parse_opts(const char *cmd, int argc, char **argv, bench_opts *o) {
    *o = (bench_opts){.backend = NULL, .cameras = 3, .runs = 3, .tokens = 48};
    for (int i = 0; i < argc; i += 2) { /* an option and its value */
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (cli_is_help(a)) { cli_help(cmd); return -1; }
        if (!strcmp(a, "--model")) o->model = v;
        else if (!strcmp(a, "--small")) o->small = v;
        else if (!strcmp(a, "--backend")) o->backend = v;
        else if (!strcmp(a, "--inputs")) o->inputs = v;
        else if (!strcmp(a, "--cameras")) { if (cli_parse_int(cmd, a, v, 1, 3, &o->cameras)) return 1; }
        else if (!strcmp(a, "--runs")) { if (cli_parse_int(cmd, a, v, 1, 1000, &o->runs)) return 1; }
        else if (!strcmp(a, "--tokens")) { if (cli_parse_int(cmd, a, v, 1, 4096, &o->tokens)) return 1; }
        else if (!strcmp(a, "--threads")) { if (cli_parse_int(cmd, a, v, 1, 1024, &o->threads)) return 1; }
        else return cli_usage_error("%s: unknown option '%s'", cmd, a);
        if (!v) return cli_usage_error("%s: option '%s' needs a value", cmd, a);
    }
    if (!o->model) return cli_usage_error("%s needs --model DIR", cmd);
    return 0;
}

static int load_session(const char *dir, const char *backend, int threads, pi0_model **m, pi0_session **s,
                        pi0_dump_fn dump, pi0_inject_fn inject, void *user, double *load_ms) {
    double t0 = now_ms();
    *m = pi0_model_create();
    *s = pi0_session_create();
    if (pi0_model_load(*m, dir) != PI0_OK) return cli_error(2, "%s", pi0_model_error(*m));
    pi0_params p = pi0_default_params();
    p.backend = backend;
    p.num_threads = threads;
    p.dump = dump;
    p.dump_user = user;
    p.inject = inject;
    p.inject_user = user;
    if (pi0_session_init(*s, *m, &p) != PI0_OK) return cli_error(2, "%s", pi0_session_error(*s));
    if (load_ms) *load_ms = now_ms() - t0;
    return 0;
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static double median(double *v, int n) {
    qsort(v, n, sizeof *v, cmp_double);
    return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

/* FLOPs, matmul-only FLOPs / time and the weight bytes the matmuls read (bf16) per component,
 * from the op report of the last run. */
static void component_work(pi0_session *s, const char *comp, double *flops, double *mm_flops, double *mm_ms,
                           double *weight_bytes) {
    pi0_op_report rows[128];
    int n = pi0_session_op_report(s, rows, 128);
    *flops = *mm_flops = *mm_ms = *weight_bytes = 0;
    for (int i = 0; i < n && i < 128; i++) {
        if (strcmp(rows[i].component, comp)) continue;
        *flops += rows[i].flops;
        if (!strcmp(rows[i].op, "matmul")) {
            *mm_flops += rows[i].flops;
            *mm_ms += rows[i].ms;
            *weight_bytes += rows[i].bytes;
        }
    }
}

/* Median wall time of `runs` inferences after the warm-up, whose first call's time goes to
 * *first_ms (first-call overhead: oneDNN JIT, cuBLASLt heuristics, module loading). On a GPU the
 * warm-up is two calls: the cuda backend runs a prefix length's denoise loop eagerly the first
 * time and records it as a CUDA graph the second; the timed runs replay it. */
static double time_runs_rtc(pi0_session *s, const pi0_inputs *in, const pi0_rtc *rtc, int runs, double *stage_med,
                           double *first_ms, int gpu) {
    float *act = malloc(sizeof(float) * 65536 * 4);
    double *tot = calloc(runs, sizeof *tot), *st[3] = {calloc(runs, sizeof(double)), calloc(runs, sizeof(double)), calloc(runs, sizeof(double))};
    pi0_session_infer_rtc(s, in, rtc, act);
    if (first_ms) *first_ms = pi0_session_timing(s).total_ms;
    if (gpu) pi0_session_infer_rtc(s, in, rtc, act);
    for (int r = 0; r < runs; r++) {
        pi0_session_infer_rtc(s, in, rtc, act);
        pi0_timing t = pi0_session_timing(s);
        tot[r] = t.total_ms;
        st[0][r] = t.vision_ms; st[1][r] = t.prefix_ms; st[2][r] = t.denoise_ms;
    }
    double m = median(tot, runs);
    for (int k = 0; k < 3; k++) { if (stage_med) stage_med[k] = median(st[k], runs); free(st[k]); }
    free(tot);
    free(act);
    return m;
}

static double time_runs(pi0_session *s, const pi0_inputs *in, int runs, double *stage_med, double *first_ms, int gpu) {
    return time_runs_rtc(s, in, NULL, runs, stage_med, first_ms, gpu);
}

/* One line of bench_rtc's table: a form's denoise time against the plain one. */
static void rtc_row(const char *form, double ms, double plain_ms) {
    printf("  %-34s denoise %10.3f ms vs %10.3f plain: %+.3f ms (%+.1f%%)\n", form, ms, plain_ms, ms - plain_ms,
           100.0 * (ms - plain_ms) / plain_ms);
}

/* Real-time chunking's cost per chunk: the denoise stage with guidance (lerobot's Jacobian:
 * five elementwise ops per step; the exact VJP: a taped step and a backward pass through the
 * action expert per step) and, for checkpoints trained with RTC, with a frozen prefix,
 * against the plain denoise stage timed again just before (the same warm state). A leftover
 * of the chunk's rows, delay H/5. */
static void bench_rtc(pi0_session *s, const pi0_config *c, const pi0_inputs *in, int runs, int gpu) {
    const size_t HA = (size_t)c->action_horizon * c->action_dim;
    float *prev = malloc(HA * sizeof *prev);
    if (!prev) return;
    for (size_t i = 0; i < HA; i++) prev[i] = 0.01f * (float)(i % 97) - 0.5f;
    pi0_rtc r = pi0_rtc_default();
    r.prev = prev, r.prev_rows = c->action_horizon, r.prev_dims = c->action_dim;
    r.inference_delay = c->action_horizon / 5, r.execution_horizon = c->action_horizon / 2 > 0 ? c->action_horizon / 2 : 1;
    double stage[3];
    printf("\nreal-time chunking (per chunk; delay %d, horizon %d):\n", r.inference_delay, r.execution_horizon);
    time_runs_rtc(s, in, NULL, runs, stage, NULL, gpu);
    const double plain_ms = stage[2];
    time_runs_rtc(s, in, &r, runs, stage, NULL, gpu);
    rtc_row("guided, lerobot Jacobian", stage[2], plain_ms);
    r.jacobian = PI0_RTC_JACOBIAN_EXACT; /* one backward pass through the action expert per step */
    float *probe = malloc((size_t)in->batch * HA * sizeof *probe);
    const pi0_status st = probe ? pi0_session_infer_rtc(s, in, &r, probe) : PI0_ERR_NOMEM;
    free(probe);
    if (st != PI0_OK) /* e.g. a backend without backward ops: say why */
        printf("  %-34s %s\n", "guided, exact VJP", pi0_session_error(s));
    else {
        time_runs_rtc(s, in, &r, runs, stage, NULL, gpu);
        rtc_row("guided, exact VJP", stage[2], plain_ms);
    }
    r.jacobian = PI0_RTC_JACOBIAN_LEROBOT;
    if (c->rtc_training_max_delay > 0) {
        r.mode = PI0_RTC_TRAINED;
        r.inference_delay = c->rtc_training_max_delay;
        time_runs_rtc(s, in, &r, runs, stage, NULL, gpu);
        rtc_row("trained (frozen prefix)", stage[2], plain_ms);
    }
    free(prev);
}

int cmd_bench(int argc, char **argv) {
    bench_opts o;
    int rc = parse_opts("bench", argc, argv, &o);
    if (rc) return rc < 0 ? 0 : rc; /* -1: --help was answered */
    pi0_model *m;
    pi0_session *s;
    double load_ms;
    if ((rc = load_session(o.model, o.backend, o.threads, &m, &s, NULL, NULL, NULL, &load_ms))) goto done;
    const pi0_config *c = pi0_model_config(m);
    synth_obs obs;
    if (!synth_make(&obs, c, o.cameras, o.tokens, 1)) { rc = cli_error(2, "out of memory"); goto done; }
    /* The ceilings, measured in this run: a GPU's (a large bf16 GEMM, a large copy), else the
     * CPU's bf16 dot-product peak. */
    pi0_device_ceilings dev;
    const int gpu = pi0_session_measure_device(s, &dev) == PI0_OK;
    const char *peak_what = "";
    double peak = gpu ? dev.gemm_tflops * 1e3 : measure_peak(o.threads > 0 ? o.threads : 2, &peak_what);
    printf("pi0 bench: %s, %d camera(s), %d prompt tokens, %d steps, %d run(s) after %d warm-up%s\n",
           o.model, o.cameras, o.tokens, c->num_steps, o.runs, gpu ? 2 : 1, gpu ? "s (eager, then graph capture)" : "");
    printf("backend:   %s\n", pi0_session_backend_info(s));
    if (gpu)
        printf("ceilings:  %.1f TFLOP/s (bf16 GEMM 8192^3, cuBLASLt), %.0f GB/s (device-to-device copy, read + "
               "written), measured now\n", dev.gemm_tflops, dev.copy_gb_per_s);
    else
        printf("peak:      %.1f GFLOP/s measured now (%s, all threads)\n", peak, peak_what);
    printf("load:      %.1f s (read, check, %s weights)\n", load_ms / 1e3, gpu ? "upload" : "reorder");
    double stage[3], first_ms = 0;
    double total = time_runs(s, &obs.in, o.runs, stage, &first_ms, gpu);
    const char *names[3] = {"vision", "prefix", "suffix"};
    const char *labels[3] = {"vision (SigLIP+proj)", "prefix LLM (KV cache)", "denoise (all steps)"};
    if (gpu) printf("\n%-24s %10s %10s %9s %8s %12s %8s\n", "stage", "median ms", "GFLOP", "TFLOP/s", "of peak",
                    "weights GB/s", "of copy");
    else printf("\n%-24s %10s %10s %9s %8s %13s %8s\n", "stage", "median ms", "GFLOP", "GFLOP/s", "of peak",
                "GEMM GFLOP/s", "of peak");
    double all_flops = 0, all_bytes = 0;
    for (int k = 0; k < 3; k++) {
        double f, mf, mms, wb;
        component_work(s, names[k], &f, &mf, &mms, &wb);
        all_flops += f;
        all_bytes += wb;
        const double rate = f / 1e6 / stage[k]; /* GFLOP/s */
        if (gpu) { /* op times are launch times on a GPU: only stage times (CUDA events) are rates */
            const double gbs = wb / 1e6 / stage[k];
            printf("%-24s %10.3f %10.1f %9.1f %7.1f%% %12.0f %7.1f%%\n", labels[k], stage[k], f / 1e9, rate / 1e3,
                   100.0 * rate / peak, gbs, 100.0 * gbs / dev.copy_gb_per_s);
        } else {
            const double gemm = mms > 0 ? mf / 1e6 / mms : 0.0;
            printf("%-24s %10.1f %10.1f %9.1f %7.1f%% %13.1f %7.1f%%\n", labels[k], stage[k], f / 1e9, rate,
                   100.0 * rate / peak, gemm, 100.0 * gemm / peak);
        }
        if (k == 2) printf("%-24s %10.3f\n", "  one denoise step", stage[k] / c->num_steps);
    }
    const double rate = all_flops / 1e6 / total;
    if (gpu)
        printf("%-24s %10.3f %10.1f %9.1f %7.1f%% %12.0f %7.1f%%\n", "total", total, all_flops / 1e9, rate / 1e3,
               100.0 * rate / peak, all_bytes / 1e6 / total, 100.0 * all_bytes / 1e6 / total / dev.copy_gb_per_s);
    else
        printf("%-24s %10.1f %10.1f %9.1f %7.1f%%\n", "total", total, all_flops / 1e9, rate, 100.0 * rate / peak);
    printf("first call: %.1f ms (one-time: kernel JIT / GEMM heuristics / graph capture), not in the medians\n",
           first_ms);
    if (gpu && pi0_session_measure_device(s, &dev) == PI0_OK)
        printf("GPU memory: %.2f GB in use of %.1f GB\n", dev.mem_used_gb, dev.mem_total_gb);
    bench_rtc(s, c, &obs.in, o.runs, gpu);
    printf("peak RSS:  %ld MB\n", peak_rss_mb());
    synth_free(&obs);
    if (o.small) {
        pi0_model *sm_m[2];
        pi0_session *sm_s[2];
        double t[2];
        const char *be[2] = {"ref", "fast"};
        for (int k = 0; k < 2 && !rc; k++) {
            if ((rc = load_session(o.small, be[k], o.threads, &sm_m[k], &sm_s[k], NULL, NULL, NULL, NULL))) break;
            synth_obs so;
            synth_make(&so, pi0_model_config(sm_m[k]), o.cameras, o.tokens, 1);
            t[k] = time_runs(sm_s[k], &so.in, o.runs, NULL, NULL, 0);
            synth_free(&so);
            pi0_session_free(sm_s[k]);
            pi0_model_free(sm_m[k]);
        }
        if (!rc) printf("small model %s: ref %.2f ms, fast %.2f ms: fast is %.1fx ref\n", o.small, t[0], t[1], t[0] / t[1]);
    }
done:
    pi0_session_free(s);
    pi0_model_free(m);
    return rc;
}

int cmd_verify(int argc, char **argv) {
    bench_opts o;
    int rc = parse_opts("verify", argc, argv, &o);
    if (rc) return rc < 0 ? 0 : rc; /* -1: --help was answered */
    pi0_model *m;
    pi0_session *s;
    if ((rc = load_session(o.model, o.backend, o.threads, &m, &s, NULL, NULL, NULL, NULL))) goto done;
    synth_obs obs;
    if (!synth_make(&obs, pi0_model_config(m), o.cameras, o.tokens, 1)) { rc = cli_error(2, "out of memory"); goto done; }
    float *act = malloc(sizeof(float) * 65536 * 4);
    if (pi0_session_infer(s, &obs.in, act) != PI0_OK) rc = cli_error(2, "%s", pi0_session_error(s));
    free(act);
    synth_free(&obs);
    if (rc) goto done;
    pi0_op_report rows[128];
    int n = pi0_session_op_report(s, rows, 128);
    printf("pi0 verify: %s, %d camera(s), %d prompt tokens; backend %s; pipeline %s\n\n", o.model, o.cameras, o.tokens,
           pi0_session_backend_info(s), pi0_checkpoint_pipeline(o.model));
    printf("%-8s %-12s %-8s %8s %12s %10s %10s\n", "stage", "op", "ran on", "calls", "GFLOP", "MB", "ms");
    double f_all = 0, f_fast = 0, t_all = 0, t_fast = 0, up = 0, down = 0;
    int fallbacks = 0;
    for (int i = 0; i < n && i < 128; i++) {
        printf("%-8s %-12s %-8s %8ld %12.3f %10.3f %10.2f%s\n", rows[i].component, rows[i].op, rows[i].backend,
               rows[i].calls, rows[i].flops / 1e9, rows[i].bytes / 1e6, rows[i].ms,
               rows[i].fallback ? "   <- FALLBACK to ref" : "");
        f_all += rows[i].flops;
        t_all += rows[i].ms;
        if (!rows[i].fallback && strcmp(rows[i].backend, "ref")) { f_fast += rows[i].flops; t_fast += rows[i].ms; }
        fallbacks += rows[i].fallback;
        if (!strcmp(rows[i].op, "upload")) up += rows[i].bytes;
        if (!strcmp(rows[i].op, "download")) down += rows[i].bytes;
    }
    printf("\naccelerated path: %.2f%% of FLOPs, %.2f%% of op time; %d fallback row(s)%s\n",
           f_all > 0 ? 100 * f_fast / f_all : 0, t_all > 0 ? 100 * t_fast / t_all : 0, fallbacks,
           fallbacks ? " (listed above)" : "");
    if (!strcmp(pi0_session_backend(s), "cuda"))
        printf("(cuda: op times are host launch times, the GPU runs asynchronously; `pi0 bench` times stages "
               "with CUDA events)\n");
    printf("host -> backend memory: %.3f MB (uploads); backend -> host: %.3f MB (downloads), per call\n"
           "(MB: bytes moved for upload/download, weight bytes read (bf16) for matmul)\n", up / 1e6, down / 1e6);
done:
    pi0_session_free(s);
    pi0_model_free(m);
    return rc;
}

/* ---------------------------------------------------------------- check */

typedef struct {
    char name[48];
    int64_t n;
    float *data;
} dumped;

typedef struct {
    dumped t[512];
    int n;
} dump_set;

static void keep_dump(void *user, const char *name, const float *data, int ndim, const int64_t *shape) {
    dump_set *d = user;
    if (d->n == 512) return;
    int64_t n = 1;
    for (int i = 0; i < ndim; i++) n *= shape[i];
    dumped *t = &d->t[d->n++];
    snprintf(t->name, sizeof t->name, "%s", name);
    t->n = n;
    t->data = malloc(n * sizeof(float));
    if (t->data) memcpy(t->data, data, n * sizeof(float));
}

static const dumped *find_dump(const dump_set *d, const char *name) {
    for (int i = 0; i < d->n; i++)
        if (!strcmp(d->t[i].name, name)) return &d->t[i];
    return NULL;
}

static double pcc(const float *a, const float *b, int64_t n, double *maxdiff) {
    double ma = 0, mb = 0, sab = 0, saa = 0, sbb = 0;
    *maxdiff = 0;
    for (int64_t i = 0; i < n; i++) { ma += a[i]; mb += b[i]; }
    ma /= n; mb /= n;
    for (int64_t i = 0; i < n; i++) {
        double x = a[i] - ma, y = b[i] - mb;
        sab += x * y; saa += x * x; sbb += y * y;
        if (fabs(a[i] - b[i]) > *maxdiff || isnan(b[i])) *maxdiff = isnan(b[i]) ? NAN : fabs(a[i] - b[i]);
    }
    return saa > 0 && sbb > 0 ? sab / sqrt(saa * sbb) : (*maxdiff == 0 ? 1.0 : 0.0);
}

/* The fast run of `check`: records fast's value of each component, then replaces it with the
 * reference's, so the next component starts from exactly the reference's inputs. */
typedef struct {
    dump_set *fast;
    const dump_set *ref;
} inject_ctx;

static void record_and_replace(void *user, const char *name, float *data, int ndim, const int64_t *shape) {
    inject_ctx *c = user;
    keep_dump(c->fast, name, data, ndim, shape);
    const dumped *r = find_dump(c->ref, name);
    if (r && r->data && r->n == c->fast->t[c->fast->n - 1].n) memcpy(data, r->data, r->n * sizeof(float));
}

/* Runs `backend` on the check's observation; dump (or inject) callbacks as given. */
static int pi0_check_is_pi05; /* the checked model is a π0.5 */

static int check_run(const bench_opts *o, const char *backend, pi0_dump_fn dump, pi0_inject_fn inject,
                     void *user, float *actions, int *n_actions, double *ms) {
    pi0_model *m;
    pi0_session *s;
    int rc = load_session(o->model, backend, o->threads, &m, &s, dump, inject, user, NULL);
    if (!rc) {
        const pi0_config *c = pi0_model_config(m);
        pi0_check_is_pi05 = c->pi05;
        pi0_input_buf buf = {0};
        synth_obs obs = {0};
        pi0_err e;
        const pi0_inputs *in = NULL;
        if (o->inputs) {
            if (inputs_read(&buf, o->inputs, c, &e) != PI0_OK) rc = cli_error(2, "%s", e.msg);
            else in = &buf.in;
        } else if (synth_make(&obs, c, o->cameras, o->tokens, 1)) {
            in = &obs.in;
        } else {
            rc = cli_error(2, "out of memory");
        }
        if (in) {
            double t0 = now_ms();
            if (pi0_session_infer(s, in, actions) != PI0_OK) rc = cli_error(2, "%s", pi0_session_error(s));
            *ms = now_ms() - t0;
            *n_actions = in->batch * c->action_horizon * c->action_dim;
        }
        inputs_free(&buf);
        synth_free(&obs);
    }
    pi0_session_free(s);
    pi0_model_free(m);
    return rc;
}

int cmd_check(int argc, char **argv) {
    bench_opts o;
    int rc = parse_opts("check", argc, argv, &o);
    if (rc) return rc < 0 ? 0 : rc; /* -1: --help was answered */
    static dump_set ref, fast;
    static float act_ref[65536 * 4], act_fast[65536 * 4], act_iso[65536 * 4];
    int n_act = 0;
    double ms_ref = 0, ms_fast = 0, ms_iso = 0;
    inject_ctx ic = {&fast, &ref};
    const char *be = o.backend ? o.backend : pi0_backend_default_name();
    if (!strcmp(be, "ref")) return cli_error(2, "check compares ref with another backend; this build has only ref");
    if ((rc = check_run(&o, "ref", keep_dump, NULL, &ref, act_ref, &n_act, &ms_ref)) ||
        (rc = check_run(&o, be, NULL, record_and_replace, &ic, act_iso, &n_act, &ms_iso)) ||
        (rc = check_run(&o, be, NULL, NULL, NULL, act_fast, &n_act, &ms_fast)))
        return rc;
    struct { const char *component, *prefix; } comps[] = {
        {"patch embed (camera 0)", "vision_patch.0"}, {"one SigLIP block (camera 0)", "vision_block0.0"},
        {"vision tower + projector", "img_emb."}, {"prefix embedding", "prefix_emb"},
        {"one VLM layer", "vlm_layer0"}, {"prefix K cache (each layer)", "prefix_k."},
        {"prefix V cache (each layer)", "prefix_v."}, {"suffix embedding (step 0)", "suffix_emb.0"},
        {"pi0.5 adaRMS condition (step 0)", "adarms_cond.0"},
        {"one expert layer (step 0)", "expert_layer0.0"}, {"one denoise step (v_t, step 0)", "v_t.0"},
    };
    printf("pi0 check: %s; ref %.0f ms, %s %.0f ms. Each component runs on %s from the reference's\n"
           "own inputs (%s's output is recorded, then replaced by ref's before the next component);\n"
           "the final actions are a separate end-to-end %s run. Threshold PCC >= 0.99.\n\n",
           o.model, ms_ref, be, ms_fast, be, be, be);
    printf("%-32s %8s %14s %12s %10s %s\n", "component", "tensors", "min PCC", "max |diff|", "threshold", "result");
    int failed = 0;
    for (size_t k = 0; k < sizeof comps / sizeof *comps + 1; k++) {
        double worst = 1.0, maxd = 0;
        int count = 0;
        const char *label = k < sizeof comps / sizeof *comps ? comps[k].component : "final actions (end to end)";
        if (k == sizeof comps / sizeof *comps) {
            worst = pcc(act_ref, act_fast, n_act, &maxd);
            count = 1;
        } else {
            for (int i = 0; i < ref.n; i++) {
                const dumped *r = &ref.t[i];
                if (strncmp(r->name, comps[k].prefix, strlen(comps[k].prefix))) continue;
                const dumped *f = find_dump(&fast, r->name);
                count++;
                if (!f || f->n != r->n) { worst = 0; continue; }
                double md, p = pcc(r->data, f->data, r->n, &md);
                if (p < worst || isnan(p)) worst = p;
                if (md > maxd || isnan(md)) maxd = md;
            }
        }
        if (count == 0 && k < sizeof comps / sizeof *comps && !strcmp(comps[k].prefix, "adarms_cond.0") &&
            !pi0_check_is_pi05) {
            printf("%-32s %8s %14s %12s %10s %s\n", label, "-", "-", "-", "", "(pi0: none)");
            continue;
        }
        int ok = count > 0 && worst >= 0.99 && !isnan(maxd);
        failed += !ok;
        printf("%-32s %8d %14.6f %12.4g %10s %s\n", label, count, worst, maxd, ">= 0.99",
               count ? (ok ? "PASS" : "FAIL") : "FAIL (not produced)");
    }
    for (int i = 0; i < ref.n; i++) free(ref.t[i].data);
    for (int i = 0; i < fast.n; i++) free(fast.t[i].data);
    printf("\n%s\n", failed ? "check FAILED" : "check passed: every component within threshold");
    return failed ? 2 : 0;
}
