/* host_ops.h — the data-movement ops (patchify, embedding gather, strided row copies, time
 * embedding, axpy, adding a weight vector) for backends whose buffers are host memory. They do
 * no arithmetic a faster kernel could change, so ref and fast share these plain loops. */
#ifndef PI0_HOST_OPS_H
#define PI0_HOST_OPS_H

#include "backend.h"

pi0_status host_patchify(const pi0_exec *ex, float *patches, const float *img, int C, int S, int p);
pi0_status host_embed(const pi0_exec *ex, float *out, const pi0_mat *E, const int32_t *ids, int n,
                      float scale);
pi0_status host_copy_rows(const pi0_exec *ex, float *dst, size_t dst_stride, const float *src,
                          size_t src_stride, int rows, int cols);
pi0_status host_time_embed(const pi0_exec *ex, float *out, double t, int d, double min_period,
                           double max_period);
pi0_status host_axpy(const pi0_exec *ex, float *x, const float *v, float alpha, size_t n);
pi0_status host_add_weight(const pi0_exec *ex, float *x, const pi0_vec *w, size_t n);

#endif
