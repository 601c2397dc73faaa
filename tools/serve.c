/* serve.c — `pi0 serve`: a drop-in for openpi's scripts/serve_policy.py. WebSocket server
 * (libwebsockets) speaking openpi's protocol: metadata on connect, then one msgpack observation
 * per binary frame, answered with {"actions", "server_timing", "policy_timing"}. On an error the
 * client gets a text frame with the message and the connection is closed with 1011, as openpi
 * does; other connections are not affected. GET /healthz answers "OK\n". The policy (openpi's
 * config by name, its transforms, fresh noise per request) is libpi0's pi0_policy.
 *
 * A message over --max-message-mb is answered with the error text at once, but the connection
 * is closed only after the rest of the message has arrived (and been thrown away): closing a
 * socket that still has unread data makes the kernel reset it, and a client still sending
 * (openpi's client sends the whole frame before it reads) would see only a broken connection.
 *
 * Threads: the libwebsockets service loop owns every connection; one worker thread owns the
 * model session and answers requests strictly in arrival order (FIFO), so requests from many
 * clients queue on one model without cross-talk. The worker hands finished replies back through
 * a queue and lws_cancel_service().
 *
 * Real-time chunking: a connection keeps the raw chunk it was last sent and the guidance follows
 * its leftover (the request's "rtc" map; README). With --control-hz, a request whose "rtc" map
 * sends "inference_delay": "auto" (or none) gets d = ceil(latency_ms * HZ / 1000), latency_ms
 * being the connection's latency estimate: an exponential moving average (weight 1/2) of its
 * earlier requests' times from the first byte of the request received to its reply handed to
 * the connection's send queue (so it includes the wait behind other clients' requests), seeded
 * by its first request (always a plain one: nothing was sent before it). d is cut to the
 * leftover's rows (a delay past the leftover: the robot runs out of the old chunk first, and
 * all of the leftover is frozen) and to a trained checkpoint's rtc_training_max_delay; the
 * reply reports both in its "rtc" map. */
#include <errno.h>
#include <libwebsockets.h>
#include <math.h>
#include <netdb.h>
#include <pthread.h>
#include <sys/socket.h>
#include <unistd.h>
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
    double t_arrive;          /* the request's first byte received (now_ms) */
    double latency_ms;        /* the connection's latency estimate when queued (< 0: none yet) */
    float *chunk;             /* the raw chunk the connection was last sent (RTC's leftover), or NULL */
    int chunk_rows;
    /* result */
    frame *reply;
    int failed;
    float *new_chunk;         /* the raw chunk of this reply: the connection keeps it */
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
    int draining;             /* over the limit: the rest of the message is read and dropped, then 1011 */
    int busy;                 /* a request of this connection is queued or running */
    int rx_held;              /* rx holds a complete message waiting for `busy` to clear */
    frame *out_head, *out_tail;
    int close_after;
    double t_loop, prev_total_ms;
    int meta_sent;
    float *chunk;             /* the raw chunk last sent (model space [H, A]): real-time chunking */
    int chunk_rows;
    double t_rx_start;        /* now_ms() at the first byte of the message in rx */
    double latency_ms;        /* the latency estimate (see the top of this file); < 0: none yet */
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
    const char *api_key;      /* required in "Authorization: Api-Key KEY" when set */
    double control_hz;        /* --control-hz: the robots' control rate (0: no delay estimates) */
    /* the policy, used by the worker only */
    pi0_policy *policy;
    double *actions;          /* float64, as openpi's server sends them */
    size_t actions_cap;
    char last_warning[1024];  /* the policy's warning last written to the log */
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

/* A text frame: WebSocket text must be UTF-8 (RFC 6455 §8.1; openpi's client, on websockets,
 * closes with 1007 otherwise), and an error can quote what a request sent: the text passes
 * pi0_text_escape once more, whatever escaped it before. */
static frame *text_frame(const char *msg) {
    const size_t n = strlen(msg), cap = 4 * n + 4;
    char *t = malloc(cap);
    if (!t) return NULL;
    const size_t k = pi0_text_escape(t, cap, msg, n, 0);
    frame *f = frame_new(t, k, 0);
    free(t);
    return f;
}

static void conn_fail(conn *c, const char *msg) {
    conn_enqueue(c, text_frame(msg));
    c->close_after = 1;
    g_srv.errors++;
}

/* ---------------------------------------------------------------- worker */

/* The delay of an RTC request that left it to the server (see the top of this file). */
static void estimate_delay(const server *s, const job *j, const pi0_policy_rtc *r, serve_rtc_estimate *e) {
    const double lat = j->latency_ms > 0 ? j->latency_ms : 0, raw = ceil(lat * s->control_hz / 1000.0);
    int d = raw < (1 << 20) ? (int)raw : 1 << 20;
    e->estimated_delay = d;
    const int left = j->chunk_rows - r->executed; /* < 1: pi0_policy_obs_rtc refuses `executed` */
    if (d > left) d = left > 0 ? left : 0;
    const int max_trained = pi0_policy_model_config(s->policy)->rtc_training_max_delay;
    if (max_trained > 0 && d > max_trained) d = max_trained;
    e->inference_delay = d;
    e->latency_ms = j->latency_ms > 0 ? j->latency_ms : 0;
    e->control_hz = s->control_hz;
}

static void process(server *s, job *j) {
    char err[512];
    double t0 = now_ms();
    int rows = 0, dims = 0;
    serve_rtc rtc;
    serve_rtc_estimate est, *estimated = NULL;
    pi0_status st = serve_decode_request(s->policy, j->data, j->len, &rtc, err, sizeof err);
    if (st == PI0_OK && rtc.present && rtc.delay == SERVE_DELAY_AUTO && !(s->control_hz > 0)) {
        st = PI0_ERR_INPUT;
        snprintf(err, sizeof err, "'rtc/inference_delay' is \"auto\" but this server has no control rate to "
                 "estimate it from (start it with --control-hz HZ, or send the delay)");
    }
    /* RTC: the leftover is taken from the chunk this connection was last sent (none yet: a plain
     * call, as lerobot's first chunk has no leftover) */
    if (st == PI0_OK && rtc.present && rtc.req.executed >= 0 && j->chunk) {
        if (rtc.delay != SERVE_DELAY_GIVEN && s->control_hz > 0) {
            estimate_delay(s, j, &rtc.req, &est);
            rtc.req.inference_delay = est.inference_delay;
            estimated = &est;
        }
        rtc.req.chunk = j->chunk;
        rtc.req.chunk_rows = j->chunk_rows;
        if ((st = pi0_policy_obs_rtc(s->policy, &rtc.req)) != PI0_OK)
            snprintf(err, sizeof err, "%s", pi0_policy_error(s->policy));
    }
    if (st == PI0_OK && (st = pi0_policy_infer_f64(s->policy, s->actions, s->actions_cap, &rows, &dims)) != PI0_OK)
        snprintf(err, sizeof err, "%s", pi0_policy_error(s->policy));
    /* the policy's notes, each once while it stays the same (not on every request) */
    const char *w = pi0_policy_warning(s->policy);
    if (w && strncmp(w, s->last_warning, sizeof s->last_warning - 1)) {
        fprintf(stderr, "pi0 serve: warning: %s\n", w);
        snprintf(s->last_warning, sizeof s->last_warning, "%s", w);
    }
    if (st == PI0_OK) { /* the raw chunk, kept by the connection for its next RTC request */
        int r = 0, d = 0;
        pi0_policy_raw_actions(s->policy, NULL, 0, &r, &d);
        j->new_chunk = malloc((size_t)r * d * sizeof *j->new_chunk);
        if (!j->new_chunk || pi0_policy_raw_actions(s->policy, j->new_chunk, (size_t)r * d, &r, &d) != PI0_OK) {
            st = PI0_ERR_NOMEM;
            snprintf(err, sizeof err, "out of memory");
        }
        j->chunk_rows = r;
    }
    if (st == PI0_OK) {
        double infer_ms = now_ms() - t0;
        serve_buf b = {0};
        if (serve_encode_reply_rtc(&b, s->actions, rows, dims, dims, infer_ms, j->prev_total_ms,
                                   pi0_policy_last_timing(s->policy).model_ms, estimated) == 0)
            j->reply = frame_new(b.data, b.size, 1);
        serve_buf_free(&b);
        if (!j->reply) { st = PI0_ERR_NOMEM; snprintf(err, sizeof err, "out of memory"); }
    }
    if (st != PI0_OK) {
        char msg[640], words[600];
        snprintf(msg, sizeof msg, "pi0 serve: %s", cli_words(err, words, sizeof words));
        j->reply = text_frame(msg);
        j->failed = 1;
    }
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
        free(j->chunk);
        j->chunk = NULL;
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
    j->t_arrive = c->t_rx_start;
    j->latency_ms = c->latency_ms;
    if (c->chunk) { /* the job's own copy: the connection may close while it runs */
        const pi0_config *mc = pi0_policy_model_config(s->policy);
        const size_t n = (size_t)c->chunk_rows * mc->action_dim * sizeof *c->chunk;
        if ((j->chunk = malloc(n))) memcpy(j->chunk, c->chunk, n), j->chunk_rows = c->chunk_rows;
    }
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
            else { /* the latency estimate, before a held request is queued below */
                const double t = now_ms() - j->t_arrive;
                c->latency_ms = c->latency_ms < 0 ? t : 0.5 * (c->latency_ms + t);
                s->served++;
            }
            if (j->new_chunk) {
                free(c->chunk);
                c->chunk = j->new_chunk;
                c->chunk_rows = j->chunk_rows;
                j->new_chunk = NULL;
            }
            c->busy = 0;
            if (!c->close_after) {
                if (c->rx_held) submit(s, c);
                else lws_rx_flow_control(c->wsi, 1);
            }
        }
        free(j->reply);
        free(j->new_chunk);
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

/* openpi's client sends "Authorization: Api-Key KEY" when given an api_key; compared in
 * constant time. */
static int api_key_ok(struct lws *wsi, const char *key) {
    char got[1100];
    const int n = lws_hdr_total_length(wsi, WSI_TOKEN_HTTP_AUTHORIZATION);
    if (n <= 0 || n >= (int)sizeof got || lws_hdr_copy(wsi, got, sizeof got, WSI_TOKEN_HTTP_AUTHORIZATION) < 0) return 0;
    char want[1100];
    const int wn = snprintf(want, sizeof want, "Api-Key %s", key);
    unsigned diff = (unsigned)(wn != n);
    for (int i = 0; i < n; i++) diff |= (unsigned char)got[i] ^ (unsigned char)want[i < wn ? i : 0];
    return diff == 0;
}

static int callback(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in, size_t len) {
    server *s = &g_srv;
    conn *c = user;
    switch (reason) {
    case LWS_CALLBACK_HTTP:
        return http_healthz(wsi, (const char *)in);
    case LWS_CALLBACK_HTTP_CONFIRM_UPGRADE: /* the WebSocket upgrade: refused with 401 without the key */
        if (s->api_key && !api_key_ok(wsi, s->api_key)) {
            /* Written whole: lws_return_http_status would answer "HTTP/1.0" here (the upgrade
             * request's version is not recorded yet), which WebSocket clients refuse to parse. */
            static const char body[] = "pi0 serve: missing or wrong API key (send the header Authorization: Api-Key KEY)\n";
            unsigned char buf[LWS_PRE + 512];
            const int n = snprintf((char *)buf + LWS_PRE, sizeof buf - LWS_PRE,
                                   "HTTP/1.1 401 Unauthorized\r\ncontent-type: text/plain\r\ncontent-length: %zu\r\n"
                                   "connection: close\r\n\r\n%s", sizeof body - 1, body);
            s->errors++;
            lws_write(wsi, buf + LWS_PRE, (size_t)n, LWS_WRITE_HTTP_FINAL);
            return 1;
        }
        return 0;
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
        c->latency_ms = -1;
        conn_enqueue(c, frame_new(s->metadata->buf + LWS_PRE, s->metadata->len, 1));
        break;
    case LWS_CALLBACK_RECEIVE: {
        if (c->draining) { /* the rest of an oversized message: dropped; closed once it has all arrived */
            if (lws_is_final_fragment(wsi) && !lws_remaining_packet_payload(wsi)) {
                c->draining = 0;
                c->close_after = 1;
                lws_callback_on_writable(wsi);
            }
            break;
        }
        if (c->rx_rejected || c->close_after) break;
        if (!lws_frame_is_binary(wsi)) {
            c->rx_rejected = 1;
            conn_fail(c, "pi0 serve: expected a binary msgpack frame, got text");
            break;
        }
        if (c->rx_len + len > s->max_message) {
            char msg[200];
            snprintf(msg, sizeof msg, "pi0 serve: message larger than the %zu-byte limit (--max-message-mb %g)",
                     s->max_message, (double)s->max_message / (1024.0 * 1024.0));
            free(c->rx);
            c->rx = NULL;
            c->rx_len = c->rx_cap = 0;
            c->rx_rejected = 1;
            s->errors++;
            conn_enqueue(c, text_frame(msg)); /* the error now, the close after the message */
            if (lws_is_final_fragment(wsi) && !lws_remaining_packet_payload(wsi)) {
                c->close_after = 1;
            } else {
                c->draining = 1;
                lws_set_timeout(wsi, PENDING_TIMEOUT_USER_OK, 60); /* a client that never finishes */
            }
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
        if (!c->rx_len) c->t_rx_start = now_ms(); /* a new message */
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
        free(c->chunk);
        c->chunk = NULL;
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

/* libwebsockets' own log lines, as this program's (no timestamps, one prefix). */
static void lws_log(int level, const char *line) {
    (void)level;
    fprintf(stderr, "pi0 serve: libwebsockets: %.*s\n", (int)strcspn(line, "\n"), line);
}

/* Whether host:port can be listened on now, asked before the model loads (libwebsockets binds
 * with SO_REUSEADDR too, so a port this test frees is one it can take). */
static int port_free(const char *host, int port, char *why, size_t n) {
    struct addrinfo hints, *ai = NULL;
    memset(&hints, 0, sizeof hints);
    hints.ai_family = AF_INET;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
    char ps[16];
    snprintf(ps, sizeof ps, "%d", port);
    int rc = getaddrinfo(host, ps, &hints, &ai);
    if (rc != 0) { snprintf(why, n, "%s", gai_strerror(rc)); return 0; }
    int ok = 0, fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC, ai->ai_protocol);
    if (fd >= 0) {
        const int one = 1;
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
        ok = bind(fd, ai->ai_addr, ai->ai_addrlen) == 0 && listen(fd, 1) == 0;
    }
    if (!ok) snprintf(why, n, "%s", strerror(errno));
    if (fd >= 0) close(fd);
    freeaddrinfo(ai);
    return ok;
}

int cmd_serve(int argc, char **argv) {
    const char *model_dir = NULL, *host = "0.0.0.0", *api_key = NULL;
    int port = 8000;
    double max_mb = 256, control_hz = 0;
    pi0_policy_params pp = pi0_policy_default_params();
    for (int i = 0; i < argc; i += 2) { /* an option and its value */
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (cli_is_help(a)) return cli_help("serve");
        if (!v) return cli_usage_error("serve: option '%s' needs a value", a);
        if (!strcmp(a, "--model")) model_dir = v;
        else if (!strcmp(a, "--port")) { if (cli_parse_int("serve", a, v, 1, 65535, &port)) return 1; }
        else if (!strcmp(a, "--host")) host = v;
        else if (!strcmp(a, "--config") || !strcmp(a, "--preset")) pp.config = v;
        else if (!strcmp(a, "--norm-stats")) pp.norm_stats = v;
        else if (!strcmp(a, "--default-prompt")) pp.default_prompt = v;
        else if (!strcmp(a, "--tokenizer")) pp.tokenizer = v;
        else if (!strcmp(a, "--pipeline")) pp.pipeline = v;
        else if (!strcmp(a, "--lerobot-version")) pp.lerobot_version = v;
        else if (!strcmp(a, "--backend")) pp.model.backend = v;
        else if (!strcmp(a, "--threads")) { if (cli_parse_int("serve", a, v, 1, 1024, &pp.model.num_threads)) return 1; }
        else if (!strcmp(a, "--seed")) { if (cli_parse_u64("serve", a, v, &pp.seed)) return 1; pp.fixed_seed = 1; }
        else if (!strcmp(a, "--action-dims")) { if (cli_parse_int("serve", a, v, 1, 1024, &pp.action_dims)) return 1; }
        else if (!strcmp(a, "--max-message-mb")) { if (cli_parse_double("serve", a, v, 0.001, 4096, &max_mb)) return 1; }
        else if (!strcmp(a, "--control-hz")) { if (cli_parse_double("serve", a, v, 0.001, 100000, &control_hz)) return 1; }
        else if (!strcmp(a, "--api-key")) {
            if (!*v || strlen(v) > 1000) return cli_usage_error("serve: --api-key wants 1 to 1000 characters");
            api_key = v;
        }
        else if (!strcmp(a, "--adapt-to-pi")) {
            if (strcmp(v, "true") && strcmp(v, "false")) return cli_usage_error("serve: --adapt-to-pi true|false");
            pp.adapt_to_pi = !strcmp(v, "true");
        }
        else return cli_usage_error("serve: unknown option '%s'", a);
    }
    if (!model_dir) return cli_usage_error("serve needs --model DIR");

    server *s = &g_srv;
    memset(s, 0, sizeof *s);
    pthread_mutex_init(&s->lock, NULL);
    pthread_cond_init(&s->cond, NULL);
    s->max_message = (size_t)(max_mb * 1024 * 1024);
    s->api_key = api_key;
    s->control_hz = control_hz;
    int rc = 0;
    s->policy = pi0_policy_create();
    if (!s->policy) { rc = cli_error(2, "out of memory"); goto done; }
    /* Everything checkable without the weights, before the load (seconds to minutes). */
    if (pi0_policy_check(s->policy, model_dir, &pp, NULL) != PI0_OK) { rc = cli_error(2, "%s", pi0_policy_error(s->policy)); goto done; }
    char why[256];
    if (!port_free(host, port, why, sizeof why)) {
        rc = cli_error(2, "cannot listen on %s:%d: %s (another server on that port? choose another with --port N)", host, port, why);
        goto done;
    }
    if (pi0_policy_load(s->policy, model_dir, &pp) != PI0_OK) { rc = cli_error(2, "%s", pi0_policy_error(s->policy)); goto done; }
    cli_policy_report("pi0 serve", s->policy, model_dir);
    const pi0_config *c = pi0_policy_model_config(s->policy);
    s->actions_cap = (size_t)c->action_horizon * c->action_dim;
    s->actions = malloc(s->actions_cap * sizeof *s->actions);
    if (!s->actions) { rc = cli_error(2, "out of memory"); goto done; }
    serve_buf mb = {0};
    if (serve_encode_json(&mb, pi0_policy_metadata_json(s->policy)) != 0) {
        serve_buf_free(&mb);
        rc = cli_error(2, "out of memory");
        goto done;
    }
    s->metadata = frame_new(mb.data, mb.size, 1);
    serve_buf_free(&mb);
    if (!s->metadata) { rc = cli_error(2, "out of memory"); goto done; }

    lws_set_log_level(LLL_ERR, lws_log);
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
    char seed_s[64];
    if (pp.fixed_seed) snprintf(seed_s, sizeof seed_s, "the noise of seed %llu on every request", (unsigned long long)pp.seed);
    else snprintf(seed_s, sizeof seed_s, "fresh noise per request");
    char hz_s[80] = "";
    if (control_hz > 0) snprintf(hz_s, sizeof hz_s, "; RTC delays estimated for a %g Hz control rate", control_hz);
    fprintf(stderr, "pi0 serve: listening on ws://%s:%d%s (config %s, pipeline %s, %s checkpoint, %d action dims, %s%s; %g MB message limit%s; %s)%s\n",
            host, port, !strcmp(host, "0.0.0.0") ? " (every interface; --host 127.0.0.1 for this machine only)" : "",
            pi0_policy_config_resolved(s->policy), pi0_policy_pipeline(s->policy), c->pi05 ? "pi0.5" : "pi0", pi0_policy_action_dims(s->policy), seed_s, hz_s, max_mb,
            api_key ? ", API key required" : "", pi0_policy_backend_info(s->policy),
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
    for (job *j; (j = jq_pop(&s->todo));) { free(j->data); free(j->chunk); free(j); }
    fprintf(stderr, "pi0 serve: shut down after %ld replies, %ld errors\n", s->served, s->errors);
done:
    free(s->metadata);
    free(s->actions);
    pi0_policy_free(s->policy);
    pthread_mutex_destroy(&s->lock);
    pthread_cond_destroy(&s->cond);
    return rc;
}
