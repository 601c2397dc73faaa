/* fuzz_tokenizer_json — Hugging Face tokenizer.json (inputs that start with '{'). */
#include "fuzz_tokenizer.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    size_t i = 0;
    while (i < size && (data[i] == ' ' || data[i] == '\n' || data[i] == '\r' || data[i] == '\t')) i++;
    if (i < size && data[i] == '{') fuzz_tokenizer(data, size);
    return 0;
}
