/* image_torch.h — lerobot's image path (spec lerobot.md §4.2): a uint8 camera frame to the
 * model's [3, R, R] input through PyTorch's bilinear interpolation WITHOUT antialiasing, in
 * float32, resize-with-pad centred; not openpi's PIL path (image.h). */
#ifndef PI0_IMAGE_TORCH_H
#define PI0_IMAGE_TORCH_H

#include "../common.h"

typedef struct {
    float pad;      /* value of the padding in [0, 1] space before ·2 − 1: 0 (current), −1 (v0.4) */
    float clamp_lo; /* clamp after the interpolation: 0 (current), −1 (v0.4); upper bound 1    */
    int top_left;   /* v1: the image pasted at the top left (padding right/bottom), not centred */
} torch_resize_opts;

/* x = u8/255 (HWC, 1/3/4 channels, RGB), resized to fit size×size keeping the aspect ratio
 * (sides int(side / ratio), at least 1) with F.interpolate(bilinear, align_corners=False,
 * antialias=False) semantics in float32 (index formula without fused multiply-add), clamped,
 * pasted centred (extra row/column bottom/right), then ·2 − 1 into out [3, size, size]. */
pi0_status image_resize_torch(float *out, const uint8_t *hwc, int width, int height, int channels, int size,
                              const torch_resize_opts *opts, pi0_err *e);

/* The same from a float32 HWC frame already in [0, 1] (lerobot's tensors; not checked). */
pi0_status image_resize_torch_f32(float *out, const float *hwc, int width, int height, int channels, int size,
                                  const torch_resize_opts *opts, pi0_err *e);

#endif
