/* image.h — camera images: decoding (stb_image), openpi's resize_with_pad with PIL's bilinear
 * resampling, and conversion to the model's [3, S, S] float layout in [-1, 1]. */
#ifndef PI0_IMAGE_H
#define PI0_IMAGE_H

#include "../common.h"

/* An 8-bit RGB image, row-major HWC. */
typedef struct {
    uint8_t *rgb;
    int width, height;
} rgb_image;

void rgb_image_free(rgb_image *im);

/* Decodes a PNG, JPEG or BMP file; gray and RGBA become RGB (alpha dropped, as PIL's
 * convert("RGB")). Other formats are refused. Dimensions are checked from the header before
 * decoding: at most 32768 per side, 64 Mpixel, and no more pixels than a file of this size can
 * describe; the decoder's memory is bounded by 2·size + 24·pixels + 1 MiB. */
pi0_status image_decode_file(rgb_image *out, const char *path, pi0_err *e);
/* The same from memory; `name` names the image in errors. */
pi0_status image_decode_memory(rgb_image *out, const void *data, size_t size, const char *name, pi0_err *e);
/* Copies a raw uint8 buffer: channels 1, 3 or 4; chw != 0 for planar [C, H, W] input. */
pi0_status image_from_u8(rgb_image *out, const uint8_t *data, int width, int height, int channels,
                         int chw, pi0_err *e);

/* PIL Image.resize(size, BILINEAR) for 8-bit RGB, bit-exact: separable triangle filter widened
 * by the scale when shrinking (antialias), fixed-point coefficients (22 fractional bits),
 * horizontal pass first with an 8-bit intermediate. */
pi0_status image_resize_bilinear(rgb_image *out, const rgb_image *in, int width, int height, pi0_err *e);

/* openpi image_tools.resize_with_pad: scale to fit size×size keeping the aspect ratio (sides
 * int(side / ratio), at least 1), paste centred on black (extra pixel bottom/right). */
pi0_status image_resize_with_pad(rgb_image *out, const rgb_image *in, int size, pi0_err *e);

/* uint8 HWC → float [3, H, W], x / 255 · 2 − 1. */
void image_to_model(const rgb_image *im, float *chw);

#endif
