/* stb_image_fenced.c — see stb_image_fenced.h.
 *
 * stb_image's implementation is compiled here rather than taken from Debian's libstb.so (which the
 * CLI still links for stb_image_write), so that:
 *  - only PNG, JPEG and BMP are compiled in: what cameras and image tools write. stb's TGA reader
 *    has no signature and takes nearly any bytes for an image (a 30-byte "TGA" declaring
 *    32768x32768 decoded to 3 GB of zeros in 5.7 s), its PNM header parser overflows a signed int
 *    on long numbers, and GIF/PSD/HDR/PIC are not camera formats;
 *  - its functions are static here (STB_IMAGE_STATIC: no clash with libstb.so's);
 *  - it is built with the project's flags: the sanitizer builds and the fuzzers see inside it;
 *  - every allocation it makes is charged to a budget that the caller derives from the image's
 *    dimensions and the file's size, so that no input (a zlib bomb in a small PNG, a corrupt
 *    header) can make it hold more than that.
 * Inputs that would make stb 2.27 index out of bounds are refused by image.c before stb sees them
 * (JPEG Huffman tables over 256 codes, scans using undefined tables); those are not hidden from
 * the sanitizers. Allocations are zeroed, so that no state stb forgets to set is uninitialised.
 *
 * Three UBSan checks are off for this file only (CMakeLists.txt), each for undefined behaviour
 * in stb 2.27 that the fuzzers reached and that touches no memory (later stb releases fix them;
 * Debian 12 ships 2.27 and its header cannot be patched):
 *  - pointer-overflow, nonnull-attribute: stb computes `NULL + 0` and calls memcpy(NULL, src, 0)
 *    when a PNG's first IDAT chunk is empty (idata is still NULL, the length 0);
 *  - shift-exponent: on corrupt JPEG data the bit reader's count of buffered bits goes negative
 *    and it shifts a 32-bit word by 32; the decoded pixels are garbage, as the data is.
 * ASan still checks every memory access stb makes, and UBSan's other checks (array bounds, signed
 * overflow, ...) stay on; the inputs that make stb 2.27 index out of bounds are refused by
 * image.c before stb runs. */
#include "stb_image_fenced.h"

#include <stdlib.h>
#include <string.h>

static _Thread_local size_t g_budget; /* bytes stb may still allocate in this call */
static _Thread_local int g_over;      /* an allocation was refused for the budget */

typedef union { size_t n; max_align_t align; } budget_hdr;

static void *budget_malloc(size_t n) {
    if (n > g_budget) { g_over = 1; return NULL; }
    budget_hdr *h = calloc(1, sizeof *h + n); /* zeroed: stb reads some state it never wrote */
    if (!h) return NULL;
    h->n = n;
    g_budget -= n;
    return h + 1;
}

static void budget_free(void *p) {
    if (!p) return;
    budget_hdr *h = (budget_hdr *)p - 1;
    g_budget += h->n;
    free(h);
}

static void *budget_realloc(void *p, size_t n) {
    if (!p) return budget_malloc(n);
    budget_hdr *h = (budget_hdr *)p - 1;
    const size_t old = h->n;
    if (n > old && n - old > g_budget) { g_over = 1; return NULL; }
    budget_hdr *nh = realloc(h, sizeof *nh + n);
    if (!nh) return NULL;
    g_budget = g_budget + old - n;
    nh->n = n;
    return nh + 1;
}

#define STB_IMAGE_STATIC
#define STB_IMAGE_IMPLEMENTATION
#define STBI_ONLY_PNG
#define STBI_ONLY_JPEG
#define STBI_ONLY_BMP
#define STBI_NO_STDIO
#define STBI_NO_LINEAR
#define STBI_NO_HDR
#define STBI_MALLOC(sz) budget_malloc(sz)
#define STBI_REALLOC(p, newsz) budget_realloc(p, newsz)
#define STBI_FREE(p) budget_free(p)
#if defined(__GNUC__)
/* A third-party header: its unused static API and its style are not this project's warnings. */
#pragma GCC diagnostic ignored "-Wunused-function"
#pragma GCC diagnostic ignored "-Wsign-compare"
#pragma GCC diagnostic ignored "-Wunused-parameter"
#pragma GCC diagnostic ignored "-Wimplicit-fallthrough"
#endif
#if defined(__GNUC__) && !defined(__clang__)
/* gcc -O2 does not see that the stdio callbacks are never used when reading from memory */
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif
#include <stb/stb_image.h>

int fenced_stbi_info(const unsigned char *p, int len, int *w, int *h, int *comp) {
    g_budget = (size_t)1 << 20; /* the JPEG decoder state and its tables */
    g_over = 0;
    return stbi_info_from_memory(p, len, w, h, comp);
}

unsigned char *fenced_stbi_load(const unsigned char *p, int len, int *w, int *h, int *comp, int req_comp,
                                size_t budget, int *over_budget) {
    g_budget = budget;
    g_over = 0;
    unsigned char *px = stbi_load_from_memory(p, len, w, h, comp, req_comp);
    *over_budget = g_over;
    return px;
}

void fenced_stbi_free(void *pixels) { stbi_image_free(pixels); }

const char *fenced_stbi_failure_reason(void) { return stbi_failure_reason(); }
