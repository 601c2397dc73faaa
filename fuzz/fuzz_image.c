/* fuzz_image — image decoding (PNG / JPEG / BMP through the fenced-in stb_image); a decoded image
 * is resized with padding as openpi does and converted to the model's layout. */
#include <stdlib.h>

#include "../src/io/image.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    rgb_image im, sized;
    pi0_err e;
    if (image_decode_memory(&im, data, size, "fuzz", &e) != PI0_OK) return 0;
    if (image_resize_with_pad(&sized, &im, 24, &e) == PI0_OK) {
        static float chw[3 * 24 * 24];
        image_to_model(&sized, chw);
        rgb_image_free(&sized);
    }
    rgb_image_free(&im);
    return 0;
}
