/* tokenizer_bench — time of the tokenizer on long prompts, through the public API only.
 *
 *   tokenizer_bench TOKENIZER [CHARS ...]     (default: 1000 10000 60000)
 *
 * For each length, a deterministic English-like text of that many characters (robot
 * instructions with punctuation, digits, a few accented words and line breaks) is encoded in
 * full with pi0_tokenizer_encode and formatted as an openpi prompt (48 tokens) with
 * pi0_tokenize_prompt; the best of several runs is printed in milliseconds. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "pi0.h"

static double now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

/* n characters (bytes; the few multi-byte words are kept whole) of instruction-like text. */
static char *make_text(size_t n, unsigned seed) {
    static const char *words[] = {
        "pick", "up", "the", "red", "block", "and", "place", "it", "in", "bowl", "open", "top",
        "drawer", "close", "put", "cup", "on", "plate", "fold", "towel", "move", "left", "right",
        "gripper", "slowly", "carefully", "grasp", "handle", "of", "mug", "stack", "blue", "blocks",
        "then", "wipe", "table", "with", "sponge", "turn", "knob", "clockwise", "café", "naïve",
        "robot", "arm", "a", "to", "from", "near", "behind", "green", "yellow", "bottle", "lid"};
    static const char *seps[] = {" ", " ", " ", " ", " ", " ", ", ", ". ", "; ", " - ", "\n", ": "};
    const int nw = (int)(sizeof words / sizeof *words), ns = (int)(sizeof seps / sizeof *seps);
    char *s = malloc(n + 64);
    if (!s) return NULL;
    size_t k = 0;
    unsigned x = seed;
    while (k < n) {
        x = x * 1664525u + 1013904223u;
        const char *w = (x >> 24) % 17 == 0 ? NULL : words[(x >> 8) % nw];
        char num[16];
        if (!w) { snprintf(num, sizeof num, "%u", (x >> 12) % 1000); w = num; }
        x = x * 1664525u + 1013904223u;
        const char *sep = seps[(x >> 16) % ns];
        size_t lw = strlen(w), ls = strlen(sep);
        if (k + lw + ls > n) break;
        memcpy(s + k, w, lw); k += lw;
        memcpy(s + k, sep, ls); k += ls;
    }
    while (k < n) s[k++] = 'x';
    s[k] = 0;
    return s;
}

int main(int argc, char **argv) {
    if (argc < 2) {
        fprintf(stderr, "usage: tokenizer_bench TOKENIZER [CHARS ...]\n");
        return 1;
    }
    long sizes[16] = {1000, 10000, 60000};
    int n_sizes = 3;
    if (argc > 2) {
        n_sizes = 0;
        for (int i = 2; i < argc && n_sizes < 16; i++) {
            char *end;
            long v = strtol(argv[i], &end, 10);
            if (*end || v < 1 || v > 50000000) { fprintf(stderr, "tokenizer_bench: bad length '%s'\n", argv[i]); return 1; }
            sizes[n_sizes++] = v;
        }
    }
    pi0_tokenizer *t = pi0_tokenizer_create();
    double t0 = now_ms();
    if (!t || pi0_tokenizer_load(t, argv[1]) != PI0_OK) {
        fprintf(stderr, "tokenizer_bench: %s\n", t ? pi0_tokenizer_error(t) : "out of memory");
        pi0_tokenizer_free(t);
        return 2;
    }
    printf("tokenizer %s: %d pieces, loaded in %.0f ms\n", argv[1], pi0_tokenizer_vocab_size(t), now_ms() - t0);
    printf("%10s %10s %14s %14s\n", "chars", "ids", "encode ms", "prompt(48) ms");
    int rc = 0;
    for (int i = 0; i < n_sizes && !rc; i++) {
        char *text = make_text((size_t)sizes[i], 7u + (unsigned)i);
        int32_t *ids = malloc((size_t)sizes[i] * 4 * sizeof *ids + 64), toks[48];
        uint8_t mask[48];
        if (!text || !ids) { fprintf(stderr, "tokenizer_bench: out of memory\n"); rc = 2; }
        double best_enc = 1e300, best_prompt = 1e300;
        int n_ids = 0, nv = 0, trunc = 0;
        const int runs = sizes[i] > 200000 ? 1 : 5;
        for (int r = 0; r < runs && !rc; r++) {
            double a = now_ms();
            if (pi0_tokenizer_encode(t, text, ids, (int)(sizes[i] * 4 + 16), &n_ids) != PI0_OK) rc = 2;
            double b = now_ms();
            if (pi0_tokenize_prompt(t, text, 48, toks, mask, &nv, &trunc) != PI0_OK) rc = 2;
            double c = now_ms();
            if (b - a < best_enc) best_enc = b - a;
            if (c - b < best_prompt) best_prompt = c - b;
        }
        if (rc) fprintf(stderr, "tokenizer_bench: %s\n", pi0_tokenizer_error(t));
        else printf("%10ld %10d %14.2f %14.2f\n", sizes[i], n_ids, best_enc, best_prompt);
        free(text);
        free(ids);
    }
    pi0_tokenizer_free(t);
    return rc;
}
