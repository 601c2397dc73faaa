/* fuzz_tokenizer.h — the tokenizer harnesses' shared body: load, then encode a few texts (and the
 * input's own bytes), decode what came out, and build an openpi prompt. */
#ifndef PI0_FUZZ_TOKENIZER_H
#define PI0_FUZZ_TOKENIZER_H

#include <string.h>

#include "fuzz_util.h"
#include "pi0.h"

static void fuzz_tokenizer(const uint8_t *data, size_t size) {
    pi0_tokenizer *t = pi0_tokenizer_create();
    if (pi0_tokenizer_load(t, fuzz_file(data, size)) == PI0_OK) {
        char tail[65];
        size_t n = size < 64 ? size : 64;
        memcpy(tail, data + size - n, n);
        tail[n] = 0;
        const char *texts[] = {"pick up the cup", "  a\xe2\x96\x81 b\n\xff\xfe<bos>z", "", tail};
        int32_t ids[256], tokens[16];
        uint8_t mask[16];
        char out[1024];
        for (int i = 0; i < 4; i++) {
            int n_ids = 0;
            if (pi0_tokenizer_encode(t, texts[i], ids, 256, &n_ids) != PI0_OK) continue;
            size_t len;
            pi0_tokenizer_decode(t, ids, n_ids < 256 ? n_ids : 256, out, sizeof out, &len);
            int n_valid, trunc;
            pi0_tokenize_prompt(t, texts[i], 16, tokens, mask, &n_valid, &trunc);
        }
    }
    pi0_tokenizer_free(t);
}

#endif
