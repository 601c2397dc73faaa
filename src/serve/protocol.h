/* protocol.h — openpi's policy-server wire format (openpi_client msgpack_numpy), decoupled from
 * the network: a msgpack observation in, a pi0_obs filled per robot preset; actions out as a
 * msgpack reply. An ndarray is the map {b"__ndarray__": True, b"data": <bytes>,
 * b"dtype": "<f4", b"shape": [..]} (keys are msgpack bin, as numpy's packer writes them; str keys
 * are accepted too). */
#ifndef PI0_SERVE_PROTOCOL_H
#define PI0_SERVE_PROTOCOL_H

#include <stddef.h>

#include "pi0.h"

typedef enum { PRESET_GENERIC, PRESET_LIBERO, PRESET_DROID, PRESET_ALOHA } serve_preset;

/* "libero", "droid", "aloha", "generic"; -1 if unknown. */
int serve_preset_from_name(const char *name);
const char *serve_preset_name(serve_preset p);
/* Action dims the preset's output transform keeps (LIBERO 7, DROID 8, ALOHA 14; generic 0 = all). */
int serve_preset_action_dims(serve_preset p);

typedef struct {
    serve_preset preset;
    const char *default_prompt;   /* used when the observation has no "prompt"; may be NULL */
    pi0_tokenizer *tokenizer;
    const pi0_norm_stats *norm_stats; /* may be NULL */
    int aloha_adapt_to_pi;        /* aloha preset: openpi's adapt_to_pi conversions (default on) */
} serve_config;

/* openpi aloha_policy.py adapt_to_pi: state [14] from Aloha space to π's (joint flips,
 * linear → angular grippers at 6 and 13) before normalization; actions [rows, stride] back
 * (flips, angular → Aloha gripper range) after unnormalization. */
void aloha_state_to_pi(float *state);
void aloha_actions_from_pi(float *actions, int rows, int stride);

/* The preset's output transform, in place on unnormalized actions [rows, stride]. */
void serve_output_transform(const serve_config *cfg, float *actions, int rows, int stride);

/* At most this many msgpack elements per message (a real observation has a few dozen). */
#define SERVE_MAX_ELEMENTS (1 << 20)

/* Checks, without allocating, that msg[0..len) is exactly one msgpack object whose declared
 * lengths and element counts fit in the message (see protocol.c). 0 with a reason in err if not. */
int serve_check_msgpack(const char *msg, size_t len, char *err, size_t errlen);

/* Decodes one observation message into o (cleared first). On failure returns non-OK and writes
 * a one-line reason naming the key to err. */
pi0_status serve_decode_observation(const serve_config *cfg, const char *msg, size_t len, pi0_obs *o,
                                    char *err, size_t errlen);

/* A growable byte buffer for encoded replies. */
typedef struct {
    char *data;
    size_t size, alloc;
} serve_buf;

void serve_buf_free(serve_buf *b);
/* Encodes {"actions": ndarray float32 [rows, dims], "server_timing": {"infer_ms", ["prev_total_ms"]},
 * "policy_timing": {"infer_ms"}}. prev_total_ms < 0: omitted. */
int serve_encode_reply(serve_buf *b, const float *actions, int rows, int stride, int dims, double infer_ms,
                       double prev_total_ms, double policy_ms);
/* Encodes the metadata map sent on connect. */
int serve_encode_metadata(serve_buf *b, const pi0_config *c, serve_preset p, int dims, const char *backend);

#endif
