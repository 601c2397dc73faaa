/* transforms.h — openpi's data transforms as small named steps, each one function of the arrays
 * it changes (no observation dictionaries, no model), so that each can be tested against
 * openpi's formulas on its own and another pipeline (lerobot's) can reuse normalize, slice and
 * relative → absolute actions. All arithmetic is in double, as openpi's numpy transforms
 * compute (float64 statistics); the model's float32 boundary is the caller's (openpi_pipeline.c).
 *
 * openpi's order (src/openpi/policies/policy_config.py create_trained_policy):
 *   inputs:  [repack] → InjectDefaultPrompt → robot Inputs (LiberoInputs / DroidInputs /
 *            AlohaInputs) → Normalize → model transforms (InjectDefaultPrompt(config's),
 *            ResizeImages, TokenizePrompt, PadStatesAndActions)
 *   outputs: Unnormalize → [AbsoluteActions, then] robot Outputs (slice, AlohaOutputs) → [repack]
 * (transforms.Group.push appends input transforms at the end and output transforms at the
 * beginning, so a DeltaActions pushed after AlohaInputs has its AbsoluteActions run before
 * AlohaOutputs.) */
#ifndef PI0_POLICY_TRANSFORMS_H
#define PI0_POLICY_TRANSFORMS_H

#include <stddef.h>
#include <stdint.h>

#include "../io/norm_stats.h"

/* openpi transforms.make_bool_mask(*dims): a positive d adds d True, a negative d adds |d|
 * False (0 adds nothing). Writes at most cap entries of mask; returns the mask's length, or -1
 * if it does not fit. */
int pt_make_bool_mask(const int *dims, int n_dims, uint8_t *mask, int cap);

/* openpi Normalize on x[0..n) (stats sliced to x's length; the caller checks that the stats
 * cover it): z-score (x − mean)/(std + 1e-6), quantile (x − q01)/(q99 − q01 + 1e-6)·2 − 1. */
void pt_normalize(const norm_vec *s, int quantile, double *x, int n);

/* openpi Unnormalize on x[0..n): z-score x·(std + 1e-6) + mean with the stats padded to n by
 * mean 0, std 1 (so dims past the stats are multiplied by 1 + 1e-6); quantile
 * (x + 1)/2·(q99 − q01 + 1e-6) + q01 on the dims the stats cover, the rest unchanged. */
void pt_unnormalize(const norm_vec *s, int quantile, double *x, int n);

/* openpi AbsoluteActions: actions[..., :len(mask)] += where(mask, state[:len(mask)], 0) for
 * every one of `rows` rows of `stride` values; state has at least mask_len values. */
void pt_absolute_actions(double *actions, int rows, int stride, const double *state, const uint8_t *mask,
                         int mask_len);

/* openpi aloha_policy.py with adapt_to_pi: _decode_state on a 14-value state (joint flips, the
 * grippers at 6 and 13 from Aloha's linear position to π's normalized angle), and
 * _encode_actions on the first 14 values of each row (flips, grippers from π's angle back to
 * Aloha's joint range). */
void pt_aloha_state_to_pi(double *state14);
void pt_aloha_actions_from_pi(double *actions, int rows, int stride);

/* openpi _parse_image for float images: (255·x).astype(uint8), computed in the array's own
 * precision (float32 for float32 images, as numpy does), truncated; values outside [0, 255]
 * after the product are clamped (numpy's cast of those is platform-defined). Returns the index
 * of the first NaN or infinite element, or -1 when all are finite. */
long pt_image_f32_to_u8(const float *x, size_t n, uint8_t *out);
long pt_image_f64_to_u8(const double *x, size_t n, uint8_t *out);

/* lerobot v1's ALOHA conversions (adapt_to_pi_aloha; lerobot.md §9.2), float32: the state
 * (14 values) before normalization — joints 1, 2, 8, 9 flipped, grippers 6 and 13 to π's angle
 * — and, after unnormalization, the inverse on actions[:, :14] of each of `rows` rows. */
void lt_aloha_v1_state(float *state);
void lt_aloha_v1_actions(float *actions, int rows, int stride);

#endif
