/* safetensors.h — zero-copy reader (mmap) and streaming writer for the safetensors format:
 * 8-byte little-endian header length N, N bytes of JSON {name: {dtype, shape, data_offsets}},
 * then the data area. The reader validates like a parser facing hostile input; no accessor
 * can reach outside the mapped file. */
#ifndef PI0_SAFETENSORS_H
#define PI0_SAFETENSORS_H

#include "../common.h"

#define ST_MAX_DIMS 8

typedef struct {
    char *name;
    pi0_dtype dtype;
    int ndim;
    int64_t shape[ST_MAX_DIMS];
    size_t numel;
    const void *data;   /* points into the mapping; nbytes = numel * dtype_size(dtype) */
    size_t nbytes;
} st_tensor;

typedef struct {
    char *path;
    void *map;
    size_t size;
    st_tensor *tensors; /* sorted by name */
    int count;
} st_file;

/* Maps and validates `path`. On failure f is left empty (st_close is still safe). */
pi0_status st_open(st_file *f, const char *path, pi0_err *e);
void st_close(st_file *f);
const st_tensor *st_find(const st_file *f, const char *name);

/* Writing: declare every tensor first, then stream the data in declaration order. The file
 * appears under its name only after st_writer_finish succeeds (written as path.tmp, renamed),
 * so a failed write never leaves a half-written file behind. */
typedef struct {
    const char *name;
    pi0_dtype dtype;
    int ndim;
    int64_t shape[ST_MAX_DIMS];
} st_decl;

typedef struct st_writer st_writer;

pi0_status st_writer_open(st_writer **w, const char *path, const st_decl *decls, int n, pi0_err *e);
pi0_status st_writer_write(st_writer *w, const void *data, size_t nbytes, pi0_err *e);
pi0_status st_writer_finish(st_writer *w, pi0_err *e); /* frees w */
void st_writer_abort(st_writer *w);                    /* frees w, removes the temp file */

/* Whole-file convenience: data[i] holds tensor i. */
pi0_status st_write_file(const char *path, const st_decl *decls, const void *const *data, int n,
                         pi0_err *e);

size_t st_decl_nbytes(const st_decl *d);

#endif
