/* api.c — the public handles: model loading, session setup, input validation. */
#include <dirent.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>

#include "io/openpi_orbax.h"
#include "model/model.h"

#ifdef _OPENMP
#include <omp.h>
#endif

/* ---------------------------------------------------------------- model */

pi0_model *pi0_model_create(void) {
    pi0_model *m = calloc(1, sizeof(pi0_model));
    if (m) pthread_mutex_init(&m->prepare_lock, NULL);
    return m;
}

static void model_unload(pi0_model *m) {
    for (int i = 0; i < PI0_SLOTS; i++) {
        if (m->prepared[i] && m->preparer[i]->release) m->preparer[i]->release(m->prepared[i], &m->wl);
        m->prepared[i] = NULL;
        m->preparer[i] = NULL;
    }
    weights_list_free(&m->wl);
    if (m->loaded) weights_free(&m->w, &m->cfg);
    for (int i = 0; i < m->nfiles; i++) st_close(&m->files[i]);
    m->nfiles = 0;
    m->loaded = 0;
}

void pi0_model_free(pi0_model *m) {
    if (!m) return;
    model_unload(m);
    pthread_mutex_destroy(&m->prepare_lock);
    free(m);
}

const char *pi0_model_error(const pi0_model *m) { return m ? m->err.msg : "no model handle"; }
const pi0_config *pi0_model_config(const pi0_model *m) { return m && m->loaded ? &m->cfg : NULL; }

static int is_dir(const char *p) {
    struct stat sb;
    return stat(p, &sb) == 0 && S_ISDIR(sb.st_mode);
}

static int ends_with(const char *s, const char *suf) {
    size_t n = strlen(s), k = strlen(suf);
    return n >= k && strcmp(s + n - k, suf) == 0;
}

static int cmp_str(const void *a, const void *b) {
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Opens the weights: dir/model.safetensors, else every *.safetensors in dir (sharded saves). */
static pi0_status open_shards(pi0_model *m, const char *dir) {
    char path[4096 + 512];
    snprintf(path, sizeof path, "%s/model.safetensors", dir);
    struct stat sb;
    if (stat(path, &sb) == 0) {
        FORWARD_ERR(st_open(&m->files[0], path, &m->err));
        m->nfiles = 1;
        return PI0_OK;
    }
    DIR *d = opendir(dir);
    RETURN_ERR_IF(!d, &m->err, PI0_ERR_IO, "%s: cannot open directory", dir);
    char *names[PI0_MAX_SHARDS];
    int n = 0;
    pi0_status st = PI0_OK;
    for (struct dirent *de; (de = readdir(d));) {
        if (!ends_with(de->d_name, ".safetensors")) continue;
        if (n == PI0_MAX_SHARDS) { st = pi0_fail(&m->err, PI0_ERR_FORMAT, "%s: more than %d shards", dir, PI0_MAX_SHARDS); break; }
        names[n] = malloc(strlen(de->d_name) + 1);
        if (!names[n]) { st = pi0_fail(&m->err, PI0_ERR_NOMEM, "out of memory"); break; }
        strcpy(names[n++], de->d_name);
    }
    closedir(d);
    if (st == PI0_OK && n == 0)
        st = pi0_fail(&m->err, PI0_ERR_IO, "%s: no model.safetensors (or other .safetensors) found", dir);
    qsort(names, n, sizeof *names, cmp_str);
    for (int i = 0; i < n && st == PI0_OK; i++) {
        snprintf(path, sizeof path, "%s/%s", dir, names[i]);
        st = st_open(&m->files[m->nfiles], path, &m->err);
        if (st == PI0_OK) m->nfiles++;
    }
    for (int i = 0; i < n; i++) free(names[i]);
    return st;
}

pi0_status pi0_model_load(pi0_model *m, const char *path) {
    if (!m) return PI0_ERR_ARG;
    model_unload(m);
    RETURN_ERR_IF(!path, &m->err, PI0_ERR_ARG, "model path is NULL");
    char dir[4096], cfg_path[4200];
    const char *file = NULL;
    struct stat sb;
    RETURN_ERR_IF(stat(path, &sb) != 0, &m->err, PI0_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    if (is_dir(path)) {
        snprintf(dir, sizeof dir, "%s", path);
    } else {
        RETURN_ERR_IF(!ends_with(path, ".safetensors"), &m->err, PI0_ERR_IO,
                      "%s: not a directory or a .safetensors file", path);
        snprintf(dir, sizeof dir, "%s", path);
        char *slash = strrchr(dir, '/');
        if (slash) *slash = 0; else strcpy(dir, ".");
        file = path;
    }
    snprintf(cfg_path, sizeof cfg_path, "%s/config.json", dir);
    char params[4200];
    const int orbax = !file && openpi_orbax_detect(dir, params, sizeof params);
    RETURN_ERR_IF(!orbax && stat(cfg_path, &sb) != 0, &m->err, PI0_ERR_IO, "%s: cannot open: %s", cfg_path,
                  strerror(errno));
    pi0_status st;
    if (orbax) {
        /* openpi's Orbax checkpoint as published (params/ + assets/): the sizes come from the
         * arrays' shapes; a config.json beside params/ (optional) sets the rest. */
        pi0_config derived;
        st = openpi_orbax_load(&m->files[0], params, &derived, &m->err);
        if (st == PI0_OK) m->nfiles = 1;
        if (st == PI0_OK && stat(cfg_path, &sb) == 0)
            st = config_load_for(&m->cfg, cfg_path, derived.pi05, params, &m->err);
        else if (st == PI0_OK)
            m->cfg = derived;
    } else if (file) {
        st = st_open(&m->files[0], file, &m->err);
        if (st == PI0_OK) m->nfiles = 1;
    } else {
        st = open_shards(m, dir);
    }
    /* π0 or π0.5: config.json may not say (openpi's converted checkpoints); the weights do. */
    if (st == PI0_OK && !orbax)
        st = config_load_for(&m->cfg, cfg_path, weights_detect_pi05(m->files, m->nfiles), m->files[0].path, &m->err);
    if (st == PI0_OK) st = weights_bind(&m->w, &m->cfg, m->files, m->nfiles, &m->err);
    if (st == PI0_OK) {
        m->loaded = 1;
        st = weights_list(&m->w, &m->cfg, &m->wl);
        if (st != PI0_OK) pi0_fail(&m->err, st, "out of memory");
    }
    if (st != PI0_OK) {
        model_unload(m);
        return st;
    }
    m->err.msg[0] = 0;
    return PI0_OK;
}

/* ---------------------------------------------------------------- session */

pi0_params pi0_default_params(void) {
    pi0_params p;
    memset(&p, 0, sizeof p);
    p.backend = NULL;
    p.num_threads = 0;
    p.compact_prefix = 1;
    p.flow_time = PI0_FLOW_TIME_EXACT;
    return p;
}

const char *pi0_backends_available(void) { return pi0_backend_names(); }
const char *pi0_backend_default_name(void) { return pi0_backend_default()->name; }

pi0_session *pi0_session_create(void) { return calloc(1, sizeof(pi0_session)); }

static void session_release(pi0_session *s) {
    if (s->d.be) {
        buffers_free(s);
        if (s->d.be->session_free) s->d.be->session_free(&s->d.ex);
    }
    s->d.be = NULL;
}

void pi0_session_free(pi0_session *s) {
    if (!s) return;
    session_release(s);
    free(s);
}

const char *pi0_session_error(const pi0_session *s) { return s ? s->err.msg : "no session handle"; }
const char *pi0_session_backend(const pi0_session *s) { return s && s->d.be ? s->d.be->name : "none"; }
pi0_timing pi0_session_timing(const pi0_session *s) {
    pi0_timing t = {0};
    return s ? s->timing : t;
}

/* The backend's own copy of the model's weights, made once per model and backend (sessions on
 * several threads may ask at the same time). */
static pi0_status prepare_weights(pi0_model *m, const pi0_backend *be, const void **handle, pi0_err *e) {
    pi0_status st = PI0_OK;
    pthread_mutex_lock(&m->prepare_lock);
    if (be->prepare && !m->prepared[be->slot]) {
        st = be->prepare(&m->wl, &m->prepared[be->slot], e);
        if (st == PI0_OK) m->preparer[be->slot] = be;
    }
    *handle = m->prepared[be->slot];
    pthread_mutex_unlock(&m->prepare_lock);
    return st;
}

pi0_status pi0_session_init(pi0_session *s, const pi0_model *m, const pi0_params *params) {
    if (!s) return PI0_ERR_ARG;
    session_release(s);
    RETURN_ERR_IF(!m || !m->loaded, &s->err, PI0_ERR_ARG, "session init: model is not loaded");
    s->model = m;
    s->cfg = &m->cfg;
    s->params = params ? *params : pi0_default_params();
    RETURN_ERR_IF(s->params.flow_time < PI0_FLOW_TIME_EXACT || s->params.flow_time > PI0_FLOW_TIME_F32_SUM,
                  &s->err, PI0_ERR_ARG, "params.flow_time = %d is not a PI0_FLOW_TIME_* value", s->params.flow_time);
    const pi0_backend *be = s->params.backend ? pi0_backend_find(s->params.backend) : pi0_backend_default();
    RETURN_ERR_IF(!be, &s->err, PI0_ERR_UNSUPPORTED, "backend '%s' is not available in this build (available: %s)",
                  s->params.backend, pi0_backend_names());
    RETURN_ERR_IF(s->params.num_threads < 0 || s->params.num_threads > 1024, &s->err, PI0_ERR_ARG,
                  "params.num_threads = %d out of range (0 = all cores, else 1..1024)", s->params.num_threads);
    int threads = s->params.num_threads;
#ifdef _OPENMP
    if (threads <= 0) threads = omp_get_num_procs();
#endif
    memset(&s->d, 0, sizeof s->d);
    memset(&s->stats, 0, sizeof s->stats);
    s->d.ex.num_threads = threads > 0 ? threads : 1;
    s->d.ex.stats = &s->stats;
    s->d.err = &s->err;
    FORWARD_ERR(prepare_weights((pi0_model *)m, be, &s->d.ex.weights, &s->err));
    if (be->session_init) {
        const pi0_status st = be->session_init(&s->d.ex, s->cfg, &s->err);
        if (st != PI0_OK) { /* whatever the backend allocated before failing is freed here */
            if (s->d.ex.ctx && be->session_free) be->session_free(&s->d.ex);
            s->d.ex.ctx = NULL;
            return st;
        }
    }
    s->d.be = be;
    if (buffers_alloc(s) != PI0_OK) {
        session_release(s);
        return pi0_fail(&s->err, PI0_ERR_NOMEM, "%s backend: out of memory for activation buffers", be->name);
    }
    s->err.msg[0] = 0;
    return PI0_OK;
}

static int all_finite(const float *x, size_t n, size_t *bad) {
    for (size_t i = 0; i < n; i++)
        if (!isfinite(x[i])) { *bad = i; return 0; }
    return 1;
}

/* Rejects what would make the forward pass meaningless, naming the field. */
static pi0_status validate_inputs(pi0_session *s, const pi0_inputs *in) {
    const pi0_config *c = s->cfg;
    pi0_err *e = &s->err;
    RETURN_ERR_IF(!in, e, PI0_ERR_ARG, "inputs is NULL");
    RETURN_ERR_IF(in->batch < 1, e, PI0_ERR_INPUT, "inputs.batch = %d (must be >= 1)", in->batch);
    RETURN_ERR_IF(in->num_cameras < 0 || in->num_cameras > c->num_cameras, e, PI0_ERR_INPUT,
                  "inputs.num_cameras = %d (model has room for %d)", in->num_cameras, c->num_cameras);
    RETURN_ERR_IF(in->num_cameras > 0 && !in->images, e, PI0_ERR_INPUT, "inputs.images is NULL");
    RETURN_ERR_IF(!in->tokens || !in->token_mask, e, PI0_ERR_INPUT, "inputs.tokens / token_mask is NULL");
    RETURN_ERR_IF(!in->state && !c->pi05, e, PI0_ERR_INPUT, "inputs.state is NULL");
    const size_t HA = (size_t)c->action_horizon * c->action_dim;
    for (int b = 0; b < in->batch; b++) {
        size_t bad;
        const int32_t *tok = in->tokens + (size_t)b * c->max_token_len;
        const uint8_t *tm = in->token_mask + (size_t)b * c->max_token_len;
        for (int i = 0; i < c->max_token_len; i++)
            RETURN_ERR_IF(tm[i] && (tok[i] < 0 || tok[i] >= c->vlm.vocab_size), e, PI0_ERR_INPUT,
                          "inputs.tokens[%d][%d] = %d is outside the vocabulary [0, %d)", b, i,
                          (int)tok[i], c->vlm.vocab_size);
        RETURN_ERR_IF(!c->pi05 && !all_finite(in->state + (size_t)b * c->state_dim, c->state_dim, &bad), e,
                      PI0_ERR_INPUT, "inputs.state[%d][%zu] is not finite", b, bad); /* π0.5 ignores it */
        RETURN_ERR_IF(in->noise && !all_finite(in->noise + b * HA, HA, &bad), e, PI0_ERR_INPUT,
                      "inputs.noise[%d] element %zu is not finite", b, bad);
    }
    return PI0_OK;
}

/* A guided RTC request checked, and laid out as the forward pass takes it (lerobot's padding):
 * prev [B, H, A] zero-padded, row weights repeated along each row [H, A]. */
static pi0_status rtc_prepare(pi0_session *s, const pi0_rtc *r, int batch, float **prev, float **w) {
    const pi0_config *c = s->cfg;
    pi0_err *e = &s->err;
    const int H = c->action_horizon, A = c->action_dim;
    *prev = *w = NULL;
    RETURN_ERR_IF(r->mode != PI0_RTC_GUIDED && r->mode != PI0_RTC_TRAINED, e, PI0_ERR_ARG,
                  "rtc.mode = %d is neither guided (0) nor trained (1)", r->mode);
    RETURN_ERR_IF(r->jacobian != PI0_RTC_JACOBIAN_LEROBOT && r->jacobian != PI0_RTC_JACOBIAN_EXACT, e, PI0_ERR_ARG,
                  "rtc.jacobian = %d is neither lerobot (0) nor exact (1)", r->jacobian);
    if (r->jacobian == PI0_RTC_JACOBIAN_EXACT) {
        RETURN_ERR_IF(r->mode == PI0_RTC_TRAINED, e, PI0_ERR_ARG,
                      "rtc.jacobian = exact with rtc.mode = trained: training-time RTC has no guidance to "
                      "differentiate (use the lerobot Jacobian, or guided mode)");
        const pi0_backend *be = s->d.be; /* a host-memory backend falls back to ref's backward ops */
        RETURN_ERR_IF(!be->host_memory && !(be->matmul_dx && be->rmsnorm_bwd && be->geglu_bwd && be->silu_bwd &&
                                            be->rope_bwd && be->attention_bwd),
                      e, PI0_ERR_UNSUPPORTED,
                      "rtc.jacobian = exact: the %s backend has no backward ops (use lerobot, or backend ref/fast)",
                      be->name);
    }
    if (r->mode == PI0_RTC_TRAINED) {
        RETURN_ERR_IF(!c->rtc_training_max_delay, e, PI0_ERR_UNSUPPORTED,
                      "rtc.mode = trained: this checkpoint was not trained with real-time chunking "
                      "(rtc_training_max_delay is 0); use guided RTC");
        RETURN_ERR_IF(r->inference_delay < 0 || r->inference_delay > c->rtc_training_max_delay, e, PI0_ERR_ARG,
                      "rtc.inference_delay = %d: this checkpoint was trained with frozen prefixes of 0..%d "
                      "actions (rtc_training_max_delay)", r->inference_delay, c->rtc_training_max_delay);
        RETURN_ERR_IF(r->prev_rows < r->inference_delay, e, PI0_ERR_ARG,
                      "rtc.inference_delay = %d but the leftover has only %d rows to freeze", r->inference_delay,
                      r->prev_rows);
    }
    RETURN_ERR_IF(!pi0_rtc_schedule_name(r->schedule), e, PI0_ERR_ARG,
                  "rtc.schedule = %d is none of ZEROS, ONES, LINEAR, EXP", r->schedule);
    RETURN_ERR_IF(!(r->max_guidance_weight > 0) || !isfinite(r->max_guidance_weight), e, PI0_ERR_ARG,
                  "rtc.max_guidance_weight = %g (must be positive and finite)", (double)r->max_guidance_weight);
    RETURN_ERR_IF(r->prev_rows < 1 || r->prev_rows > H, e, PI0_ERR_ARG,
                  "rtc.prev_rows = %d (the leftover has 1..%d rows: the chunk's)", r->prev_rows, H);
    RETURN_ERR_IF(r->prev_dims < 1 || r->prev_dims > A, e, PI0_ERR_ARG,
                  "rtc.prev_dims = %d (the leftover has 1..%d dims: the model's action width)", r->prev_dims, A);
    RETURN_ERR_IF(r->inference_delay < 0 || r->inference_delay > H, e, PI0_ERR_ARG,
                  "rtc.inference_delay = %d (0..%d: the chunk's rows)", r->inference_delay, H);
    RETURN_ERR_IF(r->execution_horizon < 1, e, PI0_ERR_ARG, "rtc.execution_horizon = %d (must be >= 1)",
                  r->execution_horizon);
    const size_t n_prev = (size_t)batch * r->prev_rows * r->prev_dims;
    for (size_t i = 0; i < n_prev; i++)
        RETURN_ERR_IF(!isfinite(r->prev[i]), e, PI0_ERR_INPUT, "rtc.prev element %zu is not finite", i);
    *prev = calloc((size_t)batch * H * A, sizeof **prev);
    *w = malloc((size_t)H * A * sizeof **w);
    float *row_w = malloc((size_t)H * sizeof *row_w);
    if (!*prev || !*w || !row_w) {
        free(*prev), free(*w), free(row_w);
        *prev = *w = NULL;
        return pi0_fail(e, PI0_ERR_NOMEM, "out of memory for the RTC leftover");
    }
    for (int b = 0; b < batch; b++)
        for (int i = 0; i < r->prev_rows; i++)
            memcpy(*prev + ((size_t)b * H + i) * A, r->prev + ((size_t)b * r->prev_rows + i) * r->prev_dims,
                   (size_t)r->prev_dims * sizeof(float));
    /* lerobot: an execution horizon longer than the leftover is cut to it */
    const int horizon = r->execution_horizon < r->prev_rows ? r->execution_horizon : r->prev_rows;
    pi0_status st = pi0_rtc_prefix_weights(r->schedule, r->inference_delay, horizon, H, row_w);
    for (int i = 0; st == PI0_OK && i < H; i++)
        for (int j = 0; j < A; j++) (*w)[(size_t)i * A + j] = row_w[i];
    free(row_w);
    if (st != PI0_OK) {
        free(*prev), free(*w);
        *prev = *w = NULL;
        return pi0_fail(e, st, "rtc: no prefix weights for delay %d, horizon %d, %d rows", r->inference_delay,
                        horizon, H);
    }
    return PI0_OK;
}

pi0_status pi0_session_infer_rtc(pi0_session *s, const pi0_inputs *in, const pi0_rtc *rtc, float *actions) {
    if (!s) return PI0_ERR_ARG;
    RETURN_ERR_IF(!s->d.be, &s->err, PI0_ERR_ARG, "session is not initialised");
    RETURN_ERR_IF(!actions, &s->err, PI0_ERR_ARG, "actions output is NULL");
    s->err.msg[0] = 0;
    FORWARD_ERR(validate_inputs(s, in));
    const pi0_config *c = s->cfg;
    const size_t HA = (size_t)c->action_horizon * c->action_dim;
    const size_t img = (size_t)3 * c->vision.image_size * c->vision.image_size;
    float *rtc_prev = NULL, *rtc_w = NULL;
    if (rtc && rtc->prev) FORWARD_ERR(rtc_prepare(s, rtc, in->batch, &rtc_prev, &rtc_w));
    float *noise = NULL;
    if (!in->noise) {
        noise = malloc((size_t)in->batch * HA * sizeof *noise);
        if (!noise) {
            free(rtc_prev), free(rtc_w);
            return pi0_fail(&s->err, PI0_ERR_NOMEM, "out of memory for noise");
        }
        pi0_gaussian(in->seed, noise, (size_t)in->batch * HA);
    }
    memset(&s->timing, 0, sizeof s->timing);
    memset(&s->stats, 0, sizeof s->stats);
    double t0 = now_ms();
    pi0_status st = PI0_OK;
    for (int b = 0; b < in->batch && st == PI0_OK; b++) {
        pi0_item it = {
            .num_cameras = in->num_cameras,
            .images = in->images ? in->images + (size_t)b * in->num_cameras * img : NULL,
            .image_masks = in->image_masks ? in->image_masks + (size_t)b * in->num_cameras : NULL,
            .tokens = in->tokens + (size_t)b * c->max_token_len,
            .token_mask = in->token_mask + (size_t)b * c->max_token_len,
            .state = in->state ? in->state + (size_t)b * c->state_dim : NULL,
            .noise = (in->noise ? in->noise : noise) + b * HA,
            .rtc_prev = rtc_prev ? rtc_prev + b * HA : NULL,
            .rtc_w = rtc_w,
            .rtc_max_weight = rtc_prev ? rtc->max_guidance_weight : 0.0f,
            .rtc_trained = rtc_prev && rtc->mode == PI0_RTC_TRAINED,
            .rtc_frozen = rtc_prev && rtc->mode == PI0_RTC_TRAINED ? rtc->inference_delay : 0,
            .rtc_exact = rtc_prev && rtc->mode == PI0_RTC_GUIDED && rtc->jacobian == PI0_RTC_JACOBIAN_EXACT,
        };
        st = pi0_forward(s, &it, actions + b * HA, b == 0 && (s->params.dump || s->params.inject));
        const char *why = st != PI0_OK && s->d.be->last_error ? s->d.be->last_error(&s->d.ex) : NULL;
        if (st == PI0_OK || (st == PI0_ERR_UNSUPPORTED && s->err.msg[0])) continue; /* a refused op said why */
        if (why) pi0_fail(&s->err, st, "%s backend: %s", s->d.be->name, why);
        else if (st == PI0_ERR_NOMEM) pi0_fail(&s->err, st, "out of memory during the forward pass");
        else pi0_fail(&s->err, st, "forward pass failed: %s", pi0_status_str(st));
    }
    s->timing.total_ms = now_ms() - t0;
    free(noise);
    free(rtc_prev);
    free(rtc_w);
    return st;
}

pi0_status pi0_session_infer(pi0_session *s, const pi0_inputs *in, float *actions) {
    return pi0_session_infer_rtc(s, in, NULL, actions);
}

const char *pi0_session_backend_info(const pi0_session *s) {
    static __thread char buf[384];
    char path[320] = "";
    if (!s || !s->d.be) return "none";
    if (s->d.be->describe) s->d.be->describe(s->d.ex.weights, path, sizeof path);
    snprintf(buf, sizeof buf, "%s: %s, %d threads", s->d.be->name, path, s->d.ex.num_threads);
    return buf;
}

pi0_status pi0_session_measure_device(pi0_session *s, pi0_device_ceilings *out) {
    if (!s || !out) return PI0_ERR_ARG;
    RETURN_ERR_IF(!s->d.be, &s->err, PI0_ERR_ARG, "session is not initialised");
    RETURN_ERR_IF(!s->d.be->measure, &s->err, PI0_ERR_UNSUPPORTED, "the %s backend has no device to measure",
                  s->d.be->name);
    double f = 0, c = 0, u = 0, t = 0;
    pi0_status st = s->d.be->measure(&s->d.ex, &f, &c, &u, &t);
    if (st != PI0_OK) {
        const char *why = s->d.be->last_error ? s->d.be->last_error(&s->d.ex) : NULL;
        return pi0_fail(&s->err, st, "%s backend: measuring the device failed%s%s", s->d.be->name, why ? ": " : "",
                        why ? why : "");
    }
    *out = (pi0_device_ceilings){f / 1e12, c / 1e9, u / 1e9, t / 1e9};
    return PI0_OK;
}

int pi0_session_op_report(const pi0_session *s, pi0_op_report *out, int cap) {
    if (!s || !s->d.be) return 0;
    int n = 0;
    for (int c = 0; c < COMP_COUNT; c++)
        for (int o = 0; o < OP_COUNT; o++)
            for (int f = 0; f < 2; f++) {
                const pi0_op_stats *st = &s->stats.op[c][o];
                if (!st->calls[f]) continue;
                if (n < cap)
                    out[n] = (pi0_op_report){pi0_component_name(c), pi0_op_name(o), f ? "ref" : s->d.be->name,
                                             f, st->calls[f], st->flops[f], st->ms[f], st->bytes[f]};
                n++;
            }
    return n;
}
