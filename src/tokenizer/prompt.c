/* prompt.c — π0.5's prompt (spec §6.3, openpi tokenizer.py PaligemmaTokenizer with a state):
 * the robot state, normalized, discretized into 256 bins and written into the text,
 *     "Task: " + cleaned + ", State: " + "d1 d2 ...;\nAction: "
 * tokenized in one call after [bos]. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include "../common.h"
#include "prompt.h"

int pi0_discretize_state(float s) {
    /* np.digitize(s, linspace(-1, 1, 257)[:-1]) - 1: the number of edges e_k = -1 + k/128
     * (k = 0..255, each exact in float32) at or below s, minus one. Compared edge by edge:
     * floor((s + 1)·128) in floating point is wrong for tiny negative s and one ulp below an
     * edge. +inf gives 255, -inf -1. */
    int count = 0;
    for (int k = 0; k < 256; k++) count += (-1.0f + (float)k / 128.0f) <= s;
    return count - 1;
}

/* Python str.strip()'s whitespace (str.isspace) for the code point at s, of length *l. */
static int py_space_at(const unsigned char *s, int n, int *l) {
    const unsigned c = s[0];
    *l = c < 0x80 ? 1 : (c & 0xe0) == 0xc0 ? 2 : (c & 0xf0) == 0xe0 ? 3 : (c & 0xf8) == 0xf0 ? 4 : 1;
    if (*l > n) *l = n;
    unsigned cp = c;
    if (*l == 2) cp = (c & 0x1f) << 6 | (s[1] & 0x3f);
    else if (*l == 3) cp = (c & 0x0f) << 12 | (s[1] & 0x3f) << 6 | (s[2] & 0x3f);
    else if (*l == 4) return 0;
    return cp == ' ' || (cp >= 0x09 && cp <= 0x0d) || (cp >= 0x1c && cp <= 0x1f) || cp == 0x85 ||
           cp == 0xa0 || cp == 0x1680 || (cp >= 0x2000 && cp <= 0x200a) || cp == 0x2028 ||
           cp == 0x2029 || cp == 0x202f || cp == 0x205f || cp == 0x3000;
}

size_t prompt_clean(const char *prompt, char *out) {
    const unsigned char *s = (const unsigned char *)prompt;
    int n = (int)strlen(prompt), a = 0, b = n, l;
    while (a < b && py_space_at(s + a, b - a, &l)) a += l;
    while (b > a) { /* strip from the right: find the last character's start */
        int c = b - 1;
        while (c > a && (s[c] & 0xc0) == 0x80) c--;
        if (!py_space_at(s + c, b - c, &l)) break;
        b = c;
    }
    for (int i = a; i < b; i++) out[i - a] = (prompt[i] == '_' || prompt[i] == '\n') ? ' ' : prompt[i];
    out[b - a] = 0;
    return (size_t)(b - a);
}

pi0_status pi0_prompt_text_pi05(const char *prompt, const float *state, int n, char **text) {
    *text = NULL;
    if (!prompt || (n > 0 && !state) || n < 0) return PI0_ERR_ARG;
    for (int i = 0; i < n; i++)
        if (isnan(state[i])) return PI0_ERR_INPUT;
    const size_t cap = strlen(prompt) + (size_t)n * 5 + 64; /* "-1 " / "255 " per value */
    char *buf = malloc(cap);
    if (!buf) return PI0_ERR_NOMEM;
    size_t k = (size_t)snprintf(buf, cap, "Task: ");
    k += prompt_clean(prompt, buf + k);
    k += (size_t)snprintf(buf + k, cap - k, ", State: ");
    for (int i = 0; i < n; i++)
        k += (size_t)snprintf(buf + k, cap - k, "%s%d", i ? " " : "", pi0_discretize_state(state[i]));
    snprintf(buf + k, cap - k, ";\nAction: ");
    *text = buf;
    return PI0_OK;
}

pi0_status pi0_tokenize_text(pi0_tokenizer *t, const char *text, int max_len, int32_t *tokens, uint8_t *mask,
                             int *n_valid, int *truncated_from) {
    if (!t || !text || !tokens || !mask || max_len < 1) return PI0_ERR_ARG;
    const int bos = pi0_tokenizer_bos(t);
    if (bos < 0) return PI0_ERR_FORMAT;
    /* Only the ids that fit are kept; encode still counts them all (the truncation length). */
    int n_text = 0;
    int32_t *ids = malloc((size_t)max_len * sizeof *ids);
    if (!ids) return PI0_ERR_NOMEM;
    pi0_status st = pi0_tokenizer_encode(t, text, ids + 1, max_len - 1, &n_text);
    if (st != PI0_OK) { free(ids); return st; }
    ids[0] = bos;
    const int total = 1 + n_text, k = total < max_len ? total : max_len;
    for (int i = 0; i < max_len; i++) {
        tokens[i] = i < k ? ids[i] : 0;
        mask[i] = i < k;
    }
    free(ids);
    if (n_valid) *n_valid = k;
    if (truncated_from) *truncated_from = total > max_len ? total : 0;
    return PI0_OK;
}

pi0_status pi0_tokenize_prompt_pi05(pi0_tokenizer *t, const char *prompt, const float *state, int n,
                                    int max_len, int32_t *tokens, uint8_t *mask, int *n_valid,
                                    int *truncated_from) {
    if (!t) return PI0_ERR_ARG;
    char *text;
    pi0_status st = pi0_prompt_text_pi05(prompt, state, n, &text);
    if (st != PI0_OK) return st;
    st = pi0_tokenize_text(t, text, max_len, tokens, mask, n_valid, truncated_from);
    free(text);
    return st;
}

pi0_status pi0_prompt_text_lerobot_pi0(const char *task, char **text) {
    *text = NULL;
    if (!task) return PI0_ERR_ARG;
    const size_t n = strlen(task);
    const int add_nl = n == 0 || task[n - 1] != '\n'; /* processor_pi0.py: task + "\n" unless it ends so */
    char *buf = malloc(n + 2);
    if (!buf) return PI0_ERR_NOMEM;
    memcpy(buf, task, n);
    if (add_nl) buf[n] = '\n';
    buf[n + add_nl] = 0;
    *text = buf;
    return PI0_OK;
}
