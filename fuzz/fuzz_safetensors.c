/* fuzz_safetensors — st_open on arbitrary bytes; every tensor of a file that opens is read in full
 * (an out-of-bounds view would show under ASan). */
#include "../src/io/safetensors.h"
#include "fuzz_util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    st_file f;
    pi0_err e;
    if (st_open(&f, fuzz_file(data, size), &e) != PI0_OK) return 0;
    unsigned sum = 0;
    for (int i = 0; i < f.count; i++) {
        const st_tensor *t = st_find(&f, f.tensors[i].name);
        if (!t || t->nbytes != t->numel * dtype_size(t->dtype)) abort();
        for (size_t k = 0; k < t->nbytes; k++) sum += ((const unsigned char *)t->data)[k];
    }
    st_close(&f);
    return (int)(sum & 0);
}
