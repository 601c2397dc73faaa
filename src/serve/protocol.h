/* protocol.h — openpi's policy-server wire format (openpi_client msgpack_numpy), decoupled from
 * the network: a msgpack observation in, the policy's observation entries out (pi0_policy: the
 * config decides which keys it reads); actions out as a msgpack reply. An ndarray is the map
 * {b"__ndarray__": True, b"data": <bytes>, b"dtype": "<f4", b"shape": [..]} (keys are msgpack
 * bin, as numpy's packer writes them; str keys are accepted too). */
#ifndef PI0_SERVE_PROTOCOL_H
#define PI0_SERVE_PROTOCOL_H

#include <stddef.h>

#include "pi0.h"

/* At most this many msgpack elements per message (a real observation has a few dozen). */
#define SERVE_MAX_ELEMENTS (1 << 20)
/* At most this many numbers in one state entry. */
#define SERVE_MAX_STATE 4096

/* Checks, without allocating, that msg[0..len) is exactly one msgpack object whose declared
 * lengths and element counts fit in the message (see protocol.c). 0 with a reason in err if not. */
int serve_check_msgpack(const char *msg, size_t len, char *err, size_t errlen);

/* Decodes one observation message into p's observation entries (cleared first): every entry of
 * the map, nested maps flattened with '/' ("images/cam_high"), that the loaded config reads
 * (pi0_policy_key_kind) is checked and handed to the policy; the others are ignored, as openpi's
 * transforms ignore them, except where openpi raises (an unknown camera under "images/"). A
 * missing required key is reported by pi0_policy_infer. On failure returns non-OK and writes a
 * one-line reason naming the key to err. */
pi0_status serve_decode_observation(pi0_policy *p, const char *msg, size_t len, char *err, size_t errlen);

/* The request's real-time chunking fields, a top-level map "rtc" (pi0.c's extension of
 * openpi's protocol; see README): {"executed": rows of the chunk this connection was last sent
 * that were executed since, "inference_delay": d, and optionally "execution_horizon",
 * "schedule" ("ZEROS" | "ONES" | "LINEAR" | "EXP"), "max_guidance_weight", "jacobian" ("lerobot"
 * (default) | "exact": the vector-Jacobian product through the action expert)}. "inference_delay"
 * may be "auto" or left out: the server estimates d when it was given a control rate
 * (`pi0 serve --control-hz`); left out without one, d is 0. */
enum { SERVE_DELAY_GIVEN = 0, SERVE_DELAY_ABSENT = 1, SERVE_DELAY_AUTO = 2 };
typedef struct {
    int present;            /* the message has "rtc" */
    int delay;              /* SERVE_DELAY_*: how "inference_delay" was sent */
    pi0_policy_rtc req;     /* chunk unset: the server supplies the connection's */
} serve_rtc;

/* A delay the server estimated (reported in the reply's "rtc" map). */
typedef struct {
    int inference_delay;    /* the delay used: estimated_delay cut to the leftover (and to a
                               trained checkpoint's rtc_training_max_delay) */
    int estimated_delay;    /* ceil(latency_ms * control_hz / 1000) */
    double latency_ms;      /* the connection's latency estimate it was computed from */
    double control_hz;
} serve_rtc_estimate;

/* serve_decode_observation, also reading "rtc" into *rtc (which may be NULL: then "rtc" is an
 * ordinary, ignored key). */
pi0_status serve_decode_request(pi0_policy *p, const char *msg, size_t len, serve_rtc *rtc, char *err,
                                size_t errlen);

/* A growable byte buffer for encoded replies. */
typedef struct {
    char *data;
    size_t size, alloc;
} serve_buf;

void serve_buf_free(serve_buf *b);
/* Encodes {"actions": ndarray float64 [rows, dims] (dtype "<f8", as openpi's server sends the
 * output of its float64 Unnormalize), "server_timing": {"infer_ms", ["prev_total_ms"]},
 * "policy_timing": {"infer_ms"}}. prev_total_ms < 0: omitted. */
int serve_encode_reply(serve_buf *b, const double *actions, int rows, int stride, int dims, double infer_ms,
                       double prev_total_ms, double policy_ms);
/* serve_encode_reply, with a fourth entry "rtc": {"inference_delay", "estimated_delay",
 * "latency_ms", "control_hz"} when est is not NULL (NULL: exactly serve_encode_reply). */
int serve_encode_reply_rtc(serve_buf *b, const double *actions, int rows, int stride, int dims, double infer_ms,
                           double prev_total_ms, double policy_ms, const serve_rtc_estimate *est);
/* Encodes a JSON object (the policy's metadata, sent on connect) as msgpack: objects as maps
 * with str keys, integral numbers as integers. -1 if json does not parse. */
int serve_encode_json(serve_buf *b, const char *json);

#endif
