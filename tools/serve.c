/* serve.c — `pi0 serve`: a drop-in for openpi's scripts/serve_policy.py. WebSocket server
 * (libwebsockets) speaking openpi's protocol: metadata on connect, then one msgpack observation
 * per binary frame, answered with {"actions", "server_timing", "policy_timing"}. On an error the
 * client gets a text frame with the message and the connection is closed with 1011, as openpi
 * does; other connections are not affected. GET /healthz answers "OK\n".
 *
 * Threads: the libwebsockets service loop owns every connection; one worker thread owns the
 * model session and answers requests strictly in arrival order (FIFO), so requests from many
 * clients queue on one model without cross-talk. The worker hands finished replies back through
 * a queue and lws_cancel_service(). */
#include <libwebsockets.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "../src/common.h"
#include "../src/serve/protocol.h"

/* ---------------------------------------------------------------- queues */

typedef struct frame {
    struct frame *next;
    size_t len;
    int binary;
    unsigned char buf[]; /* LWS_PRE bytes of headroom, then the payload */
} frame;

typedef struct job {
    struct job *next;
    uint64_t conn_id;
    char *data;
    size_t len;
    double prev_total_ms;
    /* result */
    frame *reply;
    int failed;
} job;

typedef struct {
    job *head, *tail;
} job_queue;

static void jq_push(job_queue *q, job *j) {
    j->next = NULL;
    if (q->tail) q->tail->next = j; else q->head = j;
    q->tail = j;
}

static job *jq_pop(job_queue *q) {
    job *j = q->head;
    if (j) { q->head = j->next; if (!q->head) q->tail = NULL; }
    return j;
}

static frame *frame_new(const void *data, size_t len, int binary) {
    frame *f = malloc(sizeof *f + LWS_PRE + len);
    if (!f) return NULL;
    f->next = NULL;
    f->len = len;
    f->binary = binary;
    memcpy(f->buf + LWS_PRE, data, len);
    return f;
}

/* ---------------------------------------------------------------- server state */

typedef struct conn {
    struct lws *wsi;
    uint64_t id;
    struct conn *next_live;
    char *rx;
    size_t rx_len, rx_cap;
    int rx_rejected;          /* message over the limit or not binary: error sent, rest ignored */
    int busy;                 /* a request of this connection is queued or running */
    int rx_held;              /* rx holds a complete message waiting for `busy` to clear */
    frame *out_head, *out_tail;
    int close_after;
    double t_loop, prev_total_ms;
    int meta_sent;
} conn;

typedef struct {
    struct lws_context *ctx;
    pthread_mutex_t lock;
    pthread_cond_t cond;
    job_queue todo, done;
    int stop;
    conn *live;
    uint64_t next_id;
    size_t max_message;
    /* the model, used by the worker only */
    pi0_model *model;
    pi0_session *session;
    pi0_obs *obs;
    serve_config cfg;
    int action_dims;
    uint64_t seed;
    const pi0_norm_stats *ns;
    frame *metadata;
    long served, errors;
} server;

static server g_srv;
static volatile sig_atomic_t g_interrupted;

static void on_signal(int sig) {
    (void)sig;
    g_interrupted = 1;
    if (g_srv.ctx) lws_cancel_service(g_srv.ctx);
}

static void conn_enqueue(conn *c, frame *f) {
    if (!f) return;
    if (c->out_tail) c->out_tail->next = f; else c->out_head = f;
    c->out_tail = f;
    lws_callback_on_writable(c->wsi);
}

static void conn_fail(conn *c, const char *msg) {
    conn_enqueue(c, frame_new(msg, strlen(msg), 0));
    c->close_after = 1;
    g_srv.errors++;
}

/* ---------------------------------------------------------------- worker */

static void process(server *s, job *j) {
    char err[512];
    float *actions = NULL;
    const pi0_config *c = pi0_model_config(s->model);
    const int H = c->action_horizon, A = c->action_dim;
    double t0 = now_ms();
    pi0_status st = serve_decode_observation(&s->cfg, j->data, j->len, s->obs, err, sizeof err);
    const pi0_inputs *in = st == PI0_OK ? pi0_obs_inputs(s->obs) : NULL;
    if (st == PI0_OK && !in) { st = PI0_ERR_INPUT; snprintf(err, sizeof err, "%s", pi0_obs_error(s->obs)); }
    if (st == PI0_OK) {
        pi0_inputs run = *in;
        run.seed = s->seed;
        actions = malloc((size_t)H * A * sizeof *actions);
        if (!actions) { st = PI0_ERR_NOMEM; snprintf(err, sizeof err, "out of memory"); }
        else if ((st = pi0_session_infer(s->session, &run, actions)) != PI0_OK)
            snprintf(err, sizeof err, "%s", pi0_session_error(s->session));
    }
    if (st == PI0_OK) {
        pi0_norm_stats_unnormalize_actions(s->ns, actions, H, A);
        serve_output_transform(&s->cfg, actions, H, A); /* AlohaOutputs runs after unnormalization */
        double infer_ms = now_ms() - t0;
        serve_buf b = {0};
        if (serve_encode_reply(&b, actions, H, A, s->action_dims, infer_ms, j->prev_total_ms,
                               pi0_session_timing(s->session).total_ms) == 0)
            j->reply = frame_new(b.data, b.size, 1);
        serve_buf_free(&b);
        if (!j->reply) { st = PI0_ERR_NOMEM; snprintf(err, sizeof err, "out of memory"); }
    }
    if (st != PI0_OK) {
        char msg[640];
        snprintf(msg, sizeof msg, "pi0 serve: %s", err);
        j->reply = frame_new(msg, strlen(msg), 0);
        j->failed = 1;
    }
    free(actions);
}

static void *worker(void *arg) {
    server *s = arg;
    pthread_mutex_lock(&s->lock);
    for (;;) {
        while (!s->stop && !s->todo.head) pthread_cond_wait(&s->cond, &s->lock);
        if (s->stop) break;
        job *j = jq_pop(&s->todo);
        pthread_mutex_unlock(&s->lock);
        process(s, j);
        free(j->data);
        j->data = NULL;
        pthread_mutex_lock(&s->lock);
        jq_push(&s->done, j);
        if (s->ctx) lws_cancel_service(s->ctx);
    }
    pthread_mutex_unlock(&s->lock);
    return NULL;
}

/* Queues the message in c->rx as the connection's request. One request per connection is in
 * flight at a time: reading from the connection pauses (TCP back-pressure) until its reply is
 * routed, so a client that pipelines frames holds at most one queued message and one being
 * received in the server's memory. */
static void submit(server *s, conn *c) {
    job *j = calloc(1, sizeof *j);
    if (!j) { conn_fail(c, "pi0 serve: out of memory"); return; }
    j->conn_id = c->id;
    j->data = c->rx;
    j->len = c->rx_len;
    j->prev_total_ms = c->prev_total_ms;
    c->rx = NULL;
    c->rx_len = c->rx_cap = 0;
    c->rx_held = 0;
    c->busy = 1;
    lws_rx_flow_control(c->wsi, 0);
    pthread_mutex_lock(&s->lock);
    jq_push(&s->todo, j);
    pthread_cond_signal(&s->cond);
    pthread_mutex_unlock(&s->lock);
}

/* Main loop: hand finished replies to their connections (if still open). */
static void route_results(server *s) {
    pthread_mutex_lock(&s->lock);
    job *list = s->done.head;
    s->done.head = s->done.tail = NULL;
    pthread_mutex_unlock(&s->lock);
    while (list) {
        job *j = list;
        list = j->next;
        conn *c = s->live;
        while (c && c->id != j->conn_id) c = c->next_live;
        if (c && !c->close_after) {
            conn_enqueue(c, j->reply);
            j->reply = NULL;
            if (j->failed) { c->close_after = 1; s->errors++; }
            else s->served++;
            c->busy = 0;
            if (!c->close_after) {
                if (c->rx_held) submit(s, c);
                else lws_rx_flow_control(c->wsi, 1);
            }
        }
        free(j->reply);
        free(j);
    }
}

/* ---------------------------------------------------------------- libwebsockets callback */

static int http_healthz(struct lws *wsi, const char *uri) {
    if (strcmp(uri, "/healthz") != 0) {
        lws_return_http_status(wsi, HTTP_STATUS_NOT_FOUND, NULL);
        return -1;
    }
    unsigned char buf[LWS_PRE + 512], *start = buf + LWS_PRE, *p = start, *end = buf + sizeof buf - 1;
    if (lws_add_http_common_headers(wsi, HTTP_STATUS_OK, "text/plain", 3, &p, end) ||
        lws_finalize_write_http_header(wsi, start, &p, end))
        return 1;
    lws_callback_on_writable(wsi);
    return 0;
}

static int callback(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in, size_t len) {
    server *s = &g_srv;
    conn *c = user;
    switch (reason) {
    case LWS_CALLBACK_HTTP:
        return http_healthz(wsi, (const char *)in);
    case LWS_CALLBACK_HTTP_WRITEABLE: {
        unsigned char body[LWS_PRE + 4];
        memcpy(body + LWS_PRE, "OK\n", 3);
        if (lws_write(wsi, body + LWS_PRE, 3, LWS_WRITE_HTTP_FINAL) != 3) return -1;
        return lws_http_transaction_completed(wsi) ? -1 : 0;
    }
    case LWS_CALLBACK_ESTABLISHED:
        memset(c, 0, sizeof *c);
        c->wsi = wsi;
        c->id = ++s->next_id;
        c->next_live = s->live;
        s->live = c;
        c->t_loop = now_ms();
        c->prev_total_ms = -1;
        conn_enqueue(c, frame_new(s->metadata->buf + LWS_PRE, s->metadata->len, 1));
        break;
    case LWS_CALLBACK_RECEIVE: {
        if (c->rx_rejected || c->close_after) break;
        if (!lws_frame_is_binary(wsi)) {
            c->rx_rejected = 1;
            conn_fail(c, "pi0 serve: expected a binary msgpack frame, got text");
            break;
        }
        if (c->rx_len + len > s->max_message) {
            char msg[160];
            snprintf(msg, sizeof msg, "pi0 serve: message larger than the %zu-byte limit (--max-message-mb)",
                     s->max_message);
            free(c->rx);
            c->rx = NULL;
            c->rx_len = c->rx_cap = 0;
            c->rx_rejected = 1;
            conn_fail(c, msg);
            break;
        }
        if (c->rx_held) { /* reading is paused while busy; lws delivered a third message anyway */
            c->rx_rejected = 1;
            conn_fail(c, "pi0 serve: more than one request in flight on this connection");
            break;
        }
        if (c->rx_len + len > c->rx_cap) { /* the buffer never exceeds the message limit */
            size_t cap = c->rx_cap ? c->rx_cap : 65536;
            while (cap < c->rx_len + len) cap *= 2;
            if (cap > s->max_message) cap = s->max_message;
            char *nb = realloc(c->rx, cap);
            if (!nb) { conn_fail(c, "pi0 serve: out of memory"); c->rx_rejected = 1; break; }
            c->rx = nb;
            c->rx_cap = cap;
        }
        if (len) memcpy(c->rx + c->rx_len, in, len); /* an empty frame leaves rx NULL */
        c->rx_len += len;
        if (lws_is_final_fragment(wsi) && !lws_remaining_packet_payload(wsi)) {
            if (c->busy) c->rx_held = 1; /* submitted when the reply to the previous one is routed */
            else submit(s, c);
        }
        break;
    }
    case LWS_CALLBACK_SERVER_WRITEABLE: {
        frame *f = c->out_head;
        if (f) {
            c->out_head = f->next;
            if (!c->out_head) c->out_tail = NULL;
            int n = lws_write(wsi, f->buf + LWS_PRE, f->len, f->binary ? LWS_WRITE_BINARY : LWS_WRITE_TEXT);
            const int binary = f->binary;
            free(f);
            if (n < 0) return -1;
            /* openpi's timing: the loop clock starts after the metadata; each reply reports the
             * previous request's total time (receive to reply sent) as prev_total_ms. */
            const double t = now_ms();
            if (binary && c->meta_sent) c->prev_total_ms = t - c->t_loop;
            c->meta_sent = 1;
            c->t_loop = t;
            if (c->out_head) { lws_callback_on_writable(wsi); break; }
        }
        if (c->close_after && !c->out_head) {
            static const char reason_txt[] = "Internal server error. Error message in previous frame.";
            lws_close_reason(wsi, LWS_CLOSE_STATUS_UNEXPECTED_CONDITION, (unsigned char *)reason_txt, sizeof reason_txt - 1);
            return -1;
        }
        break;
    }
    case LWS_CALLBACK_CLOSED: {
        conn **pp = &s->live;
        while (*pp && *pp != c) pp = &(*pp)->next_live;
        if (*pp) *pp = c->next_live;
        free(c->rx);
        for (frame *f = c->out_head, *nx; f; f = nx) { nx = f->next; free(f); }
        c->out_head = c->out_tail = NULL;
        c->rx = NULL;
        break;
    }
    case LWS_CALLBACK_EVENT_WAIT_CANCELLED:
        route_results(s);
        break;
    default:
        break;
    }
    return 0;
}

static struct lws_protocols k_protocols[] = {
    {"pi0-openpi", callback, sizeof(conn), 65536, 0, NULL, 0},
    {NULL, NULL, 0, 0, 0, NULL, 0}, /* terminator */
};

/* ---------------------------------------------------------------- command */

int cmd_serve(int argc, char **argv) {
    const char *model_dir = NULL, *host = "127.0.0.1", *preset_s = "generic", *ns_path = NULL,
               *default_prompt = NULL, *tok_path = NULL, *backend = NULL;
    int port = 8000, threads = 0, action_dims = -1, no_adapt = 0;
    double max_mb = 64;
    uint64_t seed = 0;
    for (int i = 0; i < argc; i += 2) { /* an option and its value */
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (cli_is_help(a)) return cli_help("serve");
        if (!v) return cli_usage_error("serve: option '%s' needs a value", a);
        if (!strcmp(a, "--model")) model_dir = v;
        else if (!strcmp(a, "--port")) { if (cli_parse_int("serve", a, v, 1, 65535, &port)) return 1; }
        else if (!strcmp(a, "--host")) host = v;
        else if (!strcmp(a, "--preset")) preset_s = v;
        else if (!strcmp(a, "--norm-stats")) ns_path = v;
        else if (!strcmp(a, "--default-prompt")) default_prompt = v;
        else if (!strcmp(a, "--tokenizer")) tok_path = v;
        else if (!strcmp(a, "--backend")) backend = v;
        else if (!strcmp(a, "--threads")) { if (cli_parse_int("serve", a, v, 1, 1024, &threads)) return 1; }
        else if (!strcmp(a, "--seed")) { if (cli_parse_u64("serve", a, v, &seed)) return 1; }
        else if (!strcmp(a, "--action-dims")) { if (cli_parse_int("serve", a, v, 1, 1024, &action_dims)) return 1; }
        else if (!strcmp(a, "--max-message-mb")) { if (cli_parse_double("serve", a, v, 0.001, 4096, &max_mb)) return 1; }
        else if (!strcmp(a, "--adapt-to-pi")) {
            if (strcmp(v, "true") && strcmp(v, "false")) return cli_usage_error("serve: --adapt-to-pi true|false");
            no_adapt = !strcmp(v, "false");
        }
        else return cli_usage_error("serve: unknown option '%s'", a);
    }
    int preset = serve_preset_from_name(preset_s);
    if (!model_dir) return cli_usage_error("serve needs --model DIR");
    if (preset < 0) return cli_usage_error("serve: --preset must be libero, droid, aloha or generic, not '%s'", preset_s);

    server *s = &g_srv;
    memset(s, 0, sizeof *s);
    pthread_mutex_init(&s->lock, NULL);
    pthread_cond_init(&s->cond, NULL);
    s->max_message = (size_t)(max_mb * 1024 * 1024);
    s->seed = seed;
    int rc = 0;
    pi0_tokenizer *tok = pi0_tokenizer_create();
    pi0_norm_stats *ns = NULL;
    s->model = pi0_model_create();
    s->session = pi0_session_create();
    s->obs = pi0_obs_create();
    char buf[4200];
    if (pi0_model_load(s->model, model_dir) != PI0_OK) { rc = cli_error(2, "%s", pi0_model_error(s->model)); goto done; }
    const pi0_config *c = pi0_model_config(s->model);
    if (!tok_path) tok_path = cli_find_tokenizer(model_dir, buf, sizeof buf);
    if (!tok_path) { rc = cli_error(2, "no tokenizer: pass --tokenizer FILE or set PI0_TOKENIZER"); goto done; }
    if (pi0_tokenizer_load(tok, tok_path) != PI0_OK) { rc = cli_error(2, "%s", pi0_tokenizer_error(tok)); goto done; }
    if ((rc = cli_load_norm_stats(model_dir, ns_path, "pi0 serve", c->pi05, &ns))) goto done;
    pi0_params p = pi0_default_params();
    p.backend = backend;
    p.num_threads = threads;
    if (pi0_session_init(s->session, s->model, &p) != PI0_OK) { rc = cli_error(2, "%s", pi0_session_error(s->session)); goto done; }
    if (pi0_obs_init(s->obs, s->model) != PI0_OK) { rc = cli_error(2, "%s", pi0_obs_error(s->obs)); goto done; }
    s->ns = ns;
    s->cfg = (serve_config){(serve_preset)preset, default_prompt, tok, ns, !no_adapt};
    s->action_dims = action_dims > 0 ? action_dims : serve_preset_action_dims(preset) ? serve_preset_action_dims(preset)
                     : ns ? pi0_norm_stats_dim(ns, 1) : c->action_dim;
    if (s->action_dims > c->action_dim) { rc = cli_error(2, "action dims %d exceed the model's %d", s->action_dims, c->action_dim); goto done; }
    serve_buf mb = {0};
    serve_encode_metadata(&mb, c, preset, s->action_dims, pi0_session_backend_info(s->session));
    s->metadata = frame_new(mb.data, mb.size, 1);
    serve_buf_free(&mb);

    lws_set_log_level(LLL_ERR, NULL);
    struct lws_context_creation_info info;
    memset(&info, 0, sizeof info);
    info.port = port;
    info.iface = host;
    info.protocols = k_protocols;
    info.options = LWS_SERVER_OPTION_DISABLE_IPV6;
    info.ka_time = 0;
    s->ctx = lws_create_context(&info);
    if (!s->ctx) { rc = cli_error(2, "cannot listen on %s:%d (address in use or not available)", host, port); goto done; }
    pthread_t th;
    if (pthread_create(&th, NULL, worker, s) != 0) { rc = cli_error(2, "cannot start the worker thread"); goto done; }
    signal(SIGINT, on_signal);
    signal(SIGTERM, on_signal);
    signal(SIGPIPE, SIG_IGN);
    fprintf(stderr, "pi0 serve: listening on ws://%s:%d (preset %s, %d action dims, %s)%s\n", host, port,
            serve_preset_name(preset), s->action_dims, pi0_session_backend_info(s->session),
            c->random_weights ? " -- RANDOM weights: actions are meaningless" : "");
    while (!g_interrupted)
        if (lws_service(s->ctx, 0) < 0) break;
    pthread_mutex_lock(&s->lock);
    s->stop = 1;
    pthread_cond_broadcast(&s->cond);
    pthread_mutex_unlock(&s->lock);
    pthread_join(th, NULL);
    lws_context_destroy(s->ctx);
    s->ctx = NULL;
    route_results(s); /* frees any reply finished after the last service pass */
    for (job *j; (j = jq_pop(&s->todo));) { free(j->data); free(j); }
    fprintf(stderr, "pi0 serve: shut down after %ld replies, %ld errors\n", s->served, s->errors);
done:
    free(s->metadata);
    pi0_obs_free(s->obs);
    pi0_session_free(s->session);
    pi0_model_free(s->model);
    pi0_norm_stats_free(ns);
    pi0_tokenizer_free(tok);
    pthread_mutex_destroy(&s->lock);
    pthread_cond_destroy(&s->cond);
    return rc;
}
