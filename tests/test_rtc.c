/* test_rtc — guided real-time chunking (include/pi0.h, src/model/rtc.c, forward.c):
 *  - lerobot's prefix-weight schedules and guidance weight against values worked out by hand from
 *    modeling_rtc.py (the comparison with lerobot's own code is tests/rtc_lerobot.py);
 *  - the guided Euler loop against the same formulas applied on the host to the velocities the
 *    forward pass dumps (v_t before guidance), step by step;
 *  - no request (or no leftover) gives pi0_session_infer's actions bit for bit; a leftover changes
 *    them and pulls the guided rows towards it; the request's checks;
 *  - the exact Jacobian (jacobian = exact, vjp.c): its correction (the dumped rtc_correction.0,
 *    lerobot's sign) against central finite differences of the whole step: for directions u,
 *    correctionᵀu = errᵀ·(∂x1/∂x_t·u) with x1 = x_t − time·v_t at step 0 (x_t = the noise, time 1)
 *    differentiated by re-running the step at noise ± ε·u; the lerobot form's correction is err
 *    itself; exact and lerobot actions differ; on fast, its correction and actions against ref's.
 * Usage: test_rtc GOLDEN_CASE_DIR BACKEND */
#include <stdlib.h>

#include "../src/io/inputs.h"
#include "test_util.h"

static int close_to(const float *got, const float *want, int n, float tol) {
    for (int i = 0; i < n; i++)
        if (!(fabsf(got[i] - want[i]) <= tol)) return 0;
    return 1;
}

static void check_weights(void) {
    float w[16];
    /* LINEAR, delay 2, horizon 6, 8 rows: [1, 1] + linspace(1, 0, 6)[1:-1] + [0, 0] */
    const float lin[8] = {1, 1, 0.8f, 0.6f, 0.4f, 0.2f, 0, 0};
    CHECK(pi0_rtc_prefix_weights(PI0_RTC_LINEAR, 2, 6, 8, w) == PI0_OK && close_to(w, lin, 8, 1e-7f),
          "LINEAR(2, 6, 8) = %g %g %g %g %g %g %g %g", w[0], w[1], w[2], w[3], w[4], w[5], w[6], w[7]);
    /* EXP: the ramp x·expm1(x)/(e − 1) */
    float exp_w[8];
    for (int i = 0; i < 8; i++) exp_w[i] = lin[i];
    for (int i = 2; i < 6; i++) exp_w[i] = lin[i] * expm1f(lin[i]) / (float)(M_E - 1);
    CHECK(pi0_rtc_prefix_weights(PI0_RTC_EXP, 2, 6, 8, w) == PI0_OK && close_to(w, exp_w, 8, 1e-6f),
          "EXP(2, 6, 8): w[2] = %g (want %g), w[5] = %g (want %g)", w[2], exp_w[2], w[5], exp_w[5]);
    const float zeros[8] = {1, 1, 1, 0, 0, 0, 0, 0}, ones[8] = {1, 1, 1, 1, 1, 0, 0, 0};
    CHECK(pi0_rtc_prefix_weights(PI0_RTC_ZEROS, 3, 5, 8, w) == PI0_OK && close_to(w, zeros, 8, 0),
          "ZEROS(3, 5, 8)");
    CHECK(pi0_rtc_prefix_weights(PI0_RTC_ONES, 3, 5, 8, w) == PI0_OK && close_to(w, ones, 8, 0), "ONES(3, 5, 8)");
    /* delay past the horizon: start = min(delay, horizon), no ramp */
    const float past[8] = {1, 1, 1, 1, 0, 0, 0, 0};
    CHECK(pi0_rtc_prefix_weights(PI0_RTC_LINEAR, 7, 4, 8, w) == PI0_OK && close_to(w, past, 8, 0),
          "LINEAR(7, 4, 8) = %g %g %g %g %g", w[0], w[3], w[4], w[5], w[7]);
    /* delay 0, horizon = rows: linspace(1, 0, 10)[1:-1] */
    CHECK(pi0_rtc_prefix_weights(PI0_RTC_LINEAR, 0, 8, 8, w) == PI0_OK && fabsf(w[0] - 8.0f / 9) < 1e-6f &&
              fabsf(w[7] - 1.0f / 9) < 1e-6f, "LINEAR(0, 8, 8): %g .. %g", w[0], w[7]);
    CHECK(pi0_rtc_prefix_weights(PI0_RTC_LINEAR, -1, 4, 8, w) == PI0_ERR_ARG, "a negative delay was accepted");
    CHECK(pi0_rtc_prefix_weights(7, 1, 4, 8, w) == PI0_ERR_ARG, "schedule 7 was accepted");
    CHECK(pi0_rtc_schedule_from_name("EXP") == PI0_RTC_EXP && pi0_rtc_schedule_from_name("exp") == -1 &&
              !strcmp(pi0_rtc_schedule_name(PI0_RTC_ZEROS), "ZEROS") && !pi0_rtc_schedule_name(4),
          "schedule names");

    /* guidance weight: step 0 (τ = 0) is the maximum; τ = 0.5 (step 5 of 10): c = 1, inv_r2 = 2 */
    CHECK(pi0_rtc_guidance_weight(0, 10, 5.0f) == 5.0f, "g(τ=0) = %g, want the max 5", pi0_rtc_guidance_weight(0, 10, 5.0f));
    CHECK(fabsf(pi0_rtc_guidance_weight(5, 10, 5.0f) - 2.0f) < 1e-6f, "g(τ=0.5) = %g, want 2",
          pi0_rtc_guidance_weight(5, 10, 5.0f));
    CHECK(pi0_rtc_guidance_weight(5, 10, 1.5f) == 1.5f, "g(τ=0.5) is not clipped to 1.5");
    /* τ = 0.9 (step 9 of 10): c = 1/9, inv_r2 = (0.01 + 0.81)/0.01 = 82 → 9.111 */
    CHECK(fabsf(pi0_rtc_guidance_weight(9, 10, 100.0f) - 82.0f / 9) < 1e-3f, "g(τ=0.9) = %g, want %g",
          pi0_rtc_guidance_weight(9, 10, 100.0f), 82.0 / 9);
}

/* The dump callback keeps v_t.<step> (the velocity before guidance) and, when corr is set,
 * rtc_correction.<step> (lerobot's correction: err, or Jᵀerr with the exact Jacobian). */
typedef struct {
    float *v;   /* [steps, H·A] */
    size_t HA;
    int steps;
    float *corr; /* [steps, H·A] or NULL */
} vt_log;

static void keep_vt(void *user, const char *name, const float *data, int ndim, const int64_t *shape) {
    vt_log *l = user;
    (void)ndim, (void)shape;
    int k;
    if (sscanf(name, "v_t.%d", &k) == 1 && k >= 0 && k < l->steps) memcpy(l->v + (size_t)k * l->HA, data, l->HA * sizeof(float));
    if (l->corr && sscanf(name, "rtc_correction.%d", &k) == 1 && k >= 0 && k < l->steps)
        memcpy(l->corr + (size_t)k * l->HA, data, l->HA * sizeof(float));
}

static pi0_status run(pi0_model *m, const char *backend, const pi0_inputs *in, const pi0_rtc *r, float *out,
                      vt_log *log, char *err, size_t errlen) {
    pi0_params p = pi0_default_params();
    p.backend = backend;
    p.flow_time = PI0_FLOW_TIME_F32;
    if (log) {
        p.dump = keep_vt;
        p.dump_user = log;
    }
    pi0_session *s = pi0_session_create();
    pi0_status st = pi0_session_init(s, m, &p);
    if (st == PI0_OK) st = r ? pi0_session_infer_rtc(s, in, r, out) : pi0_session_infer(s, in, out);
    snprintf(err, errlen, "%s", pi0_session_error(s));
    pi0_session_free(s);
    return st;
}

static double dot(const float *a, const float *b, size_t n) {
    double s = 0;
    for (size_t i = 0; i < n; i++) s += (double)a[i] * b[i];
    return s;
}

/* The exact Jacobian: see the top of the file. */
static void check_exact(pi0_model *m, const char *backend, const pi0_inputs *in0, const float *prev, int rows,
                        int dims) {
    const pi0_config *c = pi0_model_config(m);
    const int H = c->action_horizon, A = c->action_dim, n = c->num_steps;
    const size_t HA = (size_t)H * A;
    char err[512];
    float *out_l = calloc(HA, sizeof(float)), *out_e = calloc(HA, sizeof(float)), *w = calloc(H, sizeof(float));
    float *x1 = calloc(HA, sizeof(float)), *e = calloc(HA, sizeof(float)), *u = calloc(HA, sizeof(float));
    float *xp = calloc(HA, sizeof(float)), *xm = calloc(HA, sizeof(float)), *noise = calloc(HA, sizeof(float));
    vt_log ll = {calloc((size_t)n * HA, sizeof(float)), HA, n, calloc((size_t)n * HA, sizeof(float))};
    vt_log le = {calloc((size_t)n * HA, sizeof(float)), HA, n, calloc((size_t)n * HA, sizeof(float))};
    vt_log lp = {calloc((size_t)n * HA, sizeof(float)), HA, n, NULL};
    pi0_rtc r = pi0_rtc_default();
    r.prev = prev, r.prev_rows = rows, r.prev_dims = dims;
    r.inference_delay = 2, r.execution_horizon = 5, r.schedule = PI0_RTC_LINEAR, r.max_guidance_weight = 4.0f;
    CHECK(run(m, backend, in0, &r, out_l, &ll, err, sizeof err) == PI0_OK, "lerobot form: %s", err);
    r.jacobian = PI0_RTC_JACOBIAN_EXACT;
    CHECK(run(m, backend, in0, &r, out_e, &le, err, sizeof err) == PI0_OK, "exact form: %s", err);
    float out_g[4096]; /* the same request without dumps (the graph path) gives the same actions */
    if (HA <= 4096) {
        CHECK(run(m, backend, in0, &r, out_g, NULL, err, sizeof err) == PI0_OK, "exact form: %s", err);
        CHECK(!memcmp(out_g, out_e, HA * sizeof(float)), "exact form: actions differ with and without dumps");
    }
    /* step 0: x_t = the noise, time = 1: x1 = noise − v_t.0; err = (prev − x1) ⊙ w */
    pi0_rtc_prefix_weights(PI0_RTC_LINEAR, 2, 5, H, w);
    for (int i = 0; i < H; i++)
        for (int j = 0; j < A; j++) {
            const size_t q = (size_t)i * A + j;
            x1[q] = in0->noise[q] - le.v[q];
            e[q] = ((i < rows && j < dims ? prev[i * dims + j] : 0.0f) - x1[q]) * w[i];
        }
    cmp_result cl = compare(e, ll.corr, H, A, NULL);
    printf("  %s lerobot Jacobian: rtc_correction.0 vs err: max |diff| %.3g\n", backend, cl.max_diff);
    CHECK(cl.max_diff <= 1e-6 * (1 + cl.max_ref), "lerobot form: the correction is not err (max |diff| %g)", cl.max_diff);
    cmp_result ce = compare(e, le.corr, H, A, NULL);
    printf("  %s exact Jacobian: rtc_correction.0 vs err: max |diff| %.3g (the expert's VJP)\n", backend, ce.max_diff);
    CHECK(ce.max_diff > 1e-3, "exact form: the correction is err itself (%g): no VJP", ce.max_diff);
    cmp_result ca = compare(out_l, out_e, H, A, NULL);
    printf("  %s exact vs lerobot Jacobian actions: max |diff| %.3g\n", backend, ca.max_diff);
    CHECK(ca.max_diff > 1e-4, "exact and lerobot forms give the same actions (%g)", ca.max_diff);
    if (!strcmp(backend, "ref")) {
        /* directional derivatives by central differences of the whole step (ref: float32 throughout) */
        pi0_inputs in = *in0;
        in.noise = noise;
        const float eps = 1e-2f;
        for (int dir = 0; dir < 3; dir++) {
            for (size_t q = 0; q < HA; q++) /* a fixed pseudo-random direction; the last: the correction */
                u[q] = dir < 2 ? (float)((q * 2654435761u + 97u * dir) % 1000) / 500.0f - 1.0f : le.corr[q];
            for (int sgn = 0; sgn < 2; sgn++) {
                for (size_t q = 0; q < HA; q++) noise[q] = in0->noise[q] + (sgn ? -eps : eps) * u[q];
                CHECK(run(m, backend, &in, NULL, sgn ? xm : xp, &lp, err, sizeof err) == PI0_OK, "fd: %s", err);
                for (size_t q = 0; q < HA; q++) (sgn ? xm : xp)[q] = noise[q] - lp.v[q]; /* x1 at step 0 */
            }
            double fd = 0;
            for (size_t q = 0; q < HA; q++) fd += (double)e[q] * (xp[q] - xm[q]) / (2.0 * eps);
            const double an = dot(le.corr, u, HA), rel = fabs(an - fd) / fmax(1e-12, fabs(fd));
            printf("  ref exact Jacobian, direction %d: correction·u %.7g, errᵀ(J u) by central differences %.7g: "
                   "rel diff %.3g\n", dir, an, fd, rel);
            CHECK(fabs(an - fd) <= 2e-3 * fmax(1.0, fabs(fd)), "direction %d: the exact correction's directional derivative %g differs from the "
                  "finite difference %g (rel %g)", dir, an, fd, rel);
        }
    } else {
        /* this backend's exact correction and actions against ref's */
        vt_log lr = {calloc((size_t)n * HA, sizeof(float)), HA, n, calloc((size_t)n * HA, sizeof(float))};
        float *out_r = calloc(HA, sizeof(float));
        CHECK(run(m, "ref", in0, &r, out_r, &lr, err, sizeof err) == PI0_OK, "ref exact: %s", err);
        cmp_result cc = compare(lr.corr, le.corr, n * H, A, NULL), co = compare(out_r, out_e, H, A, NULL);
        /* step 0 reads the same x_t (the noise) on both: its correction differs only by the
         * backend's forward (bf16 GEMMs on fast); later steps start from x_t that the guidance
         * (weight up to 4, through the expert's Jacobian) has already moved apart (with
         * PI0_FAST_F32=1 every step agrees to PCC 1.000000) */
        cmp_result c0 = compare(lr.corr, le.corr, H, A, NULL);
        printf("  %s vs ref exact: step-0 correction max |diff| %.3g PCC %.6f; every step's max |diff| %.3g PCC %.6f; "
               "actions max |diff| %.3g PCC %.6f\n", backend, c0.max_diff, c0.pcc, cc.max_diff, cc.pcc, co.max_diff, co.pcc);
        CHECK(c0.pcc >= 0.999 && co.pcc >= 0.99, "%s exact vs ref: PCC %g (step-0 correction), %g (actions)", backend,
              c0.pcc, co.pcc);
        free(lr.v), free(lr.corr), free(out_r);
    }
    /* exact guidance is refused with training-time RTC's frozen rows */
    r.mode = PI0_RTC_TRAINED;
    CHECK(run(m, backend, in0, &r, out_e, NULL, err, sizeof err) == PI0_ERR_ARG && strstr(err, "trained"),
          "exact + trained accepted: '%s'", err);
    free(out_l), free(out_e), free(w), free(x1), free(e), free(u), free(xp), free(xm), free(noise);
    free(ll.v), free(ll.corr), free(le.v), free(le.corr), free(lp.v);
}

static void check_model(const char *dir, const char *backend) {
    char path[4200], err[512];
    pi0_model *m = pi0_model_create();
    if (pi0_model_load(m, dir) != PI0_OK) {
        CHECK(0, "load %s: %s", dir, pi0_model_error(m));
        pi0_model_free(m);
        return;
    }
    const pi0_config *c = pi0_model_config(m);
    pi0_input_buf buf;
    pi0_err e;
    snprintf(path, sizeof path, "%s/inputs.safetensors", dir);
    if (inputs_read(&buf, path, c, &e) != PI0_OK) {
        CHECK(0, "%s", e.msg);
        pi0_model_free(m);
        return;
    }
    const int H = c->action_horizon, A = c->action_dim, n = c->num_steps;
    const size_t HA = (size_t)H * A;
    float *plain = calloc(HA, sizeof *plain), *out = calloc(HA, sizeof *out), *want = calloc(HA, sizeof *want);
    float *prev = calloc(HA, sizeof *prev), *w = calloc(H, sizeof *w);
    vt_log log = {calloc((size_t)n * HA, sizeof(float)), HA, n, NULL};
    CHECK(run(m, backend, &buf.in, NULL, plain, NULL, err, sizeof err) == PI0_OK, "plain: %s", err);

    /* no leftover: pi0_session_infer's actions, bit for bit */
    pi0_rtc r = pi0_rtc_default();
    CHECK(run(m, backend, &buf.in, &r, out, NULL, err, sizeof err) == PI0_OK && !memcmp(out, plain, HA * sizeof *out),
          "an RTC request without a leftover changed the actions");

    /* a leftover of 6 rows, the model's first 3 dims (lerobot pads the rest with zeros) */
    const int rows = H < 6 ? H : 6, dims = A < 3 ? A : 3;
    for (int i = 0; i < rows; i++)
        for (int j = 0; j < dims; j++) prev[i * dims + j] = plain[(size_t)i * A + j] + 0.5f * (float)((i + j) % 3 - 1);
    for (int sched = PI0_RTC_ZEROS; sched <= PI0_RTC_EXP; sched++) {
        r = pi0_rtc_default();
        r.prev = prev, r.prev_rows = rows, r.prev_dims = dims;
        r.inference_delay = 2, r.execution_horizon = 5, r.schedule = sched, r.max_guidance_weight = 4.0f;
        CHECK(run(m, backend, &buf.in, &r, out, &log, err, sizeof err) == PI0_OK, "rtc %s: %s",
              pi0_rtc_schedule_name(sched), err);
        /* the host's guided Euler loop on the dumped velocities */
        pi0_rtc_prefix_weights(sched, 2, 5, H, w);
        memcpy(want, buf.in.noise, HA * sizeof *want);
        const float dt = -1.0f / (float)n;
        for (int k = 0; k < n; k++) {
            const float time = (float)(1.0 + (double)k * (-1.0 / n)), g = pi0_rtc_guidance_weight(k, n, 4.0f);
            for (int i = 0; i < H; i++)
                for (int j = 0; j < A; j++) {
                    const size_t q = (size_t)i * A + j;
                    const float v = log.v[(size_t)k * HA + q], x1 = want[q] - time * v;
                    const float pv = i < rows && j < dims ? prev[i * dims + j] : 0.0f;
                    want[q] += dt * (v - g * ((pv - x1) * w[i]));
                }
        }
        cmp_result cr = compare(want, out, H, A, NULL);
        printf("  %s %s: guided loop vs host formulas on the dumped v_t: max |diff| %.3g, PCC %.9f\n", backend,
               pi0_rtc_schedule_name(sched), cr.max_diff, cr.pcc);
        CHECK(cr.max_diff <= 1e-5 * (1 + cr.max_ref), "%s: guided actions differ from the formulas by %g",
              pi0_rtc_schedule_name(sched), cr.max_diff);
        cmp_result cp = compare(plain, out, H, A, NULL);
        CHECK(cp.max_diff > 1e-3, "%s: the leftover changed nothing (max |diff| %g)", pi0_rtc_schedule_name(sched),
              cp.max_diff);
        /* the frozen rows moved towards the leftover */
        double d_plain = 0, d_rtc = 0;
        for (int i = 0; i < 2; i++)
            for (int j = 0; j < dims; j++) {
                d_plain += fabs(plain[(size_t)i * A + j] - prev[i * dims + j]);
                d_rtc += fabs(out[(size_t)i * A + j] - prev[i * dims + j]);
            }
        CHECK(d_rtc < d_plain, "%s: rows 0..1 are no closer to the leftover (%g vs %g without RTC)",
              pi0_rtc_schedule_name(sched), d_rtc, d_plain);
    }
    /* the request's checks */
    struct { pi0_rtc r; pi0_status st; const char *what; } bad[6];
    for (int i = 0; i < 6; i++) {
        bad[i].r = pi0_rtc_default();
        bad[i].r.prev = prev, bad[i].r.prev_rows = rows, bad[i].r.prev_dims = dims;
        bad[i].st = PI0_ERR_ARG;
    }
    bad[0].r.prev_rows = H + 1, bad[0].what = "prev_rows";
    bad[1].r.prev_dims = A + 1, bad[1].what = "prev_dims";
    bad[2].r.inference_delay = -1, bad[2].what = "inference_delay";
    bad[3].r.max_guidance_weight = 0, bad[3].what = "max_guidance_weight";
    bad[4].r.schedule = 9, bad[4].what = "schedule";
    bad[5].r.jacobian = 7, bad[5].what = "jacobian";
    for (int i = 0; i < 6; i++) {
        pi0_status st = run(m, backend, &buf.in, &bad[i].r, out, NULL, err, sizeof err);
        CHECK(st == bad[i].st && strstr(err, bad[i].what), "bad %s: status %d, '%s'", bad[i].what, st, err);
    }
    prev[1] = NAN;
    r = pi0_rtc_default();
    r.prev = prev, r.prev_rows = rows, r.prev_dims = dims;
    CHECK(run(m, backend, &buf.in, &r, out, NULL, err, sizeof err) == PI0_ERR_INPUT && strstr(err, "rtc.prev"),
          "a NaN leftover: '%s'", err);
    prev[1] = 0.5f;
    check_exact(m, backend, &buf.in, prev, rows, dims);
    free(plain), free(out), free(want), free(prev), free(w), free(log.v);
    inputs_free(&buf);
    pi0_model_free(m);
}

/* The dump callback keeps suffix_emb.<step> [S, We]. */
typedef struct {
    float *e;
    size_t n;
    int steps;
} emb_log;

static void keep_emb(void *user, const char *name, const float *data, int ndim, const int64_t *shape) {
    emb_log *l = user;
    int k;
    if (sscanf(name, "suffix_emb.%d", &k) == 1 && k >= 0 && k < l->steps && ndim == 2 &&
        (size_t)(shape[0] * shape[1]) == l->n)
        memcpy(l->e + (size_t)k * l->n, data, l->n * sizeof(float));
}

/* Training-time RTC: the case's checkpoint with "rtc_training_max_delay": 3 in its config.json
 * (a copy in tmp, the weights linked). */
static void check_trained(const char *dir, const char *backend, const char *tmp) {
    char path[4200], path2[4200], err[512];
    snprintf(path, sizeof path, "%s/config.json", dir);
    FILE *f = fopen(path, "rb");
    if (!f) { CHECK(0, "cannot read %s", path); return; }
    static char text[1 << 16];
    const size_t n = fread(text, 1, sizeof text - 1, f);
    fclose(f);
    text[n] = 0;
    const char *brace = strchr(text, '{');
    if (!brace) { CHECK(0, "%s: no JSON object", path); return; }
    char abs_dir[4096];
    if (!realpath(dir, abs_dir)) { CHECK(0, "realpath %s", dir); return; }
    snprintf(path, sizeof path, "mkdir -p '%s' && ln -sf '%s/model.safetensors' '%s/model.safetensors'", tmp, abs_dir, tmp);
    if (system(path) != 0) { CHECK(0, "%s failed", path); return; }
    snprintf(path, sizeof path, "%s/config.json", tmp);
    f = fopen(path, "wb");
    fprintf(f, "{\"rtc_training_max_delay\": 3,%s", brace + 1);
    fclose(f);
    pi0_model *m = pi0_model_create(), *plain_m = pi0_model_create();
    if (pi0_model_load(m, tmp) != PI0_OK || pi0_model_load(plain_m, dir) != PI0_OK) {
        CHECK(0, "load: %s %s", pi0_model_error(m), pi0_model_error(plain_m));
        pi0_model_free(m), pi0_model_free(plain_m);
        return;
    }
    const pi0_config *c = pi0_model_config(m);
    CHECK(c->rtc_training_max_delay == 3, "rtc_training_max_delay read as %d", c->rtc_training_max_delay);
    pi0_input_buf buf;
    pi0_err e;
    snprintf(path2, sizeof path2, "%s/inputs.safetensors", dir);
    if (inputs_read(&buf, path2, c, &e) != PI0_OK) {
        CHECK(0, "%s", e.msg);
        pi0_model_free(m), pi0_model_free(plain_m);
        return;
    }
    const int H = c->action_horizon, A = c->action_dim;
    const size_t HA = (size_t)H * A;
    float *plain = calloc(HA, sizeof *plain), *out = calloc(HA, sizeof *out), *prev = calloc(HA, sizeof *prev);
    CHECK(run(m, backend, &buf.in, NULL, plain, NULL, err, sizeof err) == PI0_OK, "plain: %s", err);
    for (size_t i = 0; i < HA; i++) prev[i] = 0.25f * (float)((i * 7) % 11) - 1.0f;
    for (int d = 0; d <= 3; d++) {
        pi0_rtc r = pi0_rtc_default();
        r.mode = PI0_RTC_TRAINED, r.prev = prev, r.prev_rows = H, r.prev_dims = A, r.inference_delay = d;
        CHECK(run(m, backend, &buf.in, &r, out, NULL, err, sizeof err) == PI0_OK, "trained d=%d: %s", d, err);
        CHECK(!memcmp(out, prev, (size_t)d * A * sizeof *out), "trained d=%d: the first rows are not the leftover's", d);
        cmp_result cr = compare(plain + (size_t)d * A, out + (size_t)d * A, H - d, A, NULL);
        printf("  %s trained d=%d: first %d rows == leftover; the other rows vs no prefix: max |diff| %.3g\n", backend,
               d, d, cr.max_diff);
        if (d == 0) CHECK(cr.max_diff == 0, "trained d=0 differs from a plain call by %g", cr.max_diff);
        else CHECK(cr.max_diff > 1e-4, "trained d=%d: the frozen prefix changed nothing in the other rows", d);
    }
    /* π0: a frozen row's suffix embedding (its action and flow time 0 through the action-time MLP)
     * is the same at every step; the other rows' change with the step's time */
    if (!c->pi05) {
        const int We = c->expert.width, S = H + 1, d = 2;
        emb_log el = {calloc((size_t)c->num_steps * S * We, sizeof(float)), (size_t)S * We, c->num_steps};
        pi0_params pp = pi0_default_params();
        pp.backend = backend, pp.dump = keep_emb, pp.dump_user = &el;
        pi0_session *ss = pi0_session_create();
        pi0_rtc r = pi0_rtc_default();
        r.mode = PI0_RTC_TRAINED, r.prev = prev, r.prev_rows = H, r.prev_dims = A, r.inference_delay = d;
        CHECK(pi0_session_init(ss, m, &pp) == PI0_OK && pi0_session_infer_rtc(ss, &buf.in, &r, out) == PI0_OK,
              "trained with dump: %s", pi0_session_error(ss));
        double frozen_var = 0, free_var = 0;
        for (int k = 1; k < c->num_steps; k++)
            for (int row = 1; row < S; row++)
                for (int j = 0; j < We; j++) {
                    const double diff = fabs(el.e[(size_t)k * S * We + (size_t)row * We + j] - el.e[(size_t)row * We + j]);
                    if (row <= d) frozen_var = fmax(frozen_var, diff);
                    else free_var = fmax(free_var, diff);
                }
        printf("  %s trained d=%d: frozen rows' suffix embedding across steps: max |change| %.3g (other rows %.3g)\n",
               backend, d, frozen_var, free_var);
        CHECK(frozen_var == 0 && free_var > 1e-3, "frozen rows' embeddings change across steps (%g) or the others do "
              "not (%g): the clean per-token time is not applied", frozen_var, free_var);
        pi0_session_free(ss);
        free(el.e);
    }
    /* the constraints */
    pi0_rtc r = pi0_rtc_default();
    r.mode = PI0_RTC_TRAINED, r.prev = prev, r.prev_rows = H, r.prev_dims = A, r.inference_delay = 4;
    CHECK(run(m, backend, &buf.in, &r, out, NULL, err, sizeof err) == PI0_ERR_ARG && strstr(err, "rtc_training_max_delay"),
          "d = 4 > max delay 3: '%s'", err);
    r.inference_delay = 2, r.prev_rows = 1;
    CHECK(run(m, backend, &buf.in, &r, out, NULL, err, sizeof err) == PI0_ERR_ARG && strstr(err, "only 1 rows"),
          "d = 2 with 1 leftover row: '%s'", err);
    r.prev_rows = H;
    CHECK(run(plain_m, backend, &buf.in, &r, out, NULL, err, sizeof err) == PI0_ERR_UNSUPPORTED &&
              strstr(err, "not trained"), "trained mode on a checkpoint without rtc_training_max_delay: '%s'", err);
    snprintf(path, sizeof path, "%s/config.json", tmp);
    f = fopen(path, "wb");
    fprintf(f, "{\"rtc_training_max_delay\": %d,%s", H, brace + 1);
    fclose(f);
    pi0_model *bad = pi0_model_create();
    CHECK(pi0_model_load(bad, tmp) == PI0_ERR_CONFIG && strstr(pi0_model_error(bad), "rtc_training_max_delay"),
          "rtc_training_max_delay = H accepted: '%s'", pi0_model_error(bad));
    pi0_model_free(bad);
    free(plain), free(out), free(prev);
    inputs_free(&buf);
    pi0_model_free(m), pi0_model_free(plain_m);
}

int main(int argc, char **argv) {
    if (argc < 4) {
        fprintf(stderr, "usage: test_rtc GOLDEN_CASE_DIR BACKEND TMP\n");
        return 2;
    }
    check_weights();
    check_model(argv[1], argv[2]);
    check_trained(argv[1], argv[2], argv[3]);
    return test_summary();
}
