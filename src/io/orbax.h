/* orbax.h — reads an Orbax PyTree checkpoint as openpi publishes them (params/): a TensorStore
 * OCDBT key-value database (manifest.ocdbt, B+tree nodes and values in d/ files, possibly under
 * ocdbt.process_N/) whose keys are zarr arrays ("<tree path joined by '.'>/.zarray" plus chunk
 * keys "<name>/0.0.0"), chunks compressed with zstd. Format: tensorstore's
 * kvstore/ocdbt/index.rst and the zarr v2 spec. Every length, offset, count, shape and checksum
 * is checked as if the files were hostile; no accessor reaches outside a mapped file.
 *
 * Needs libzstd (PI0_HAVE_ZSTD); built without it, orbax_open refuses with a clear message. */
#ifndef PI0_ORBAX_H
#define PI0_ORBAX_H

#include "../common.h"

#define ORBAX_MAX_DIMS 8

typedef struct orbax_ckpt orbax_ckpt;

typedef struct {
    pi0_dtype dtype;              /* DT_F32, DT_BF16, DT_F16 or DT_F64 */
    int ndim;
    int64_t shape[ORBAX_MAX_DIMS];
    int64_t chunks[ORBAX_MAX_DIMS];
    size_t numel, nbytes;
} orbax_array;

/* 1 if dir holds an OCDBT database (dir/manifest.ocdbt). */
int orbax_is_checkpoint(const char *dir);

/* Opens the database in dir (the checkpoint's params/ directory): reads the manifest and walks
 * the latest version's B+tree into a key index. */
pi0_status orbax_open(orbax_ckpt **o, const char *dir, pi0_err *e);
void orbax_close(orbax_ckpt *o);

/* The arrays (keys "<name>/.zarray"), sorted by name: count and i-th name. */
int orbax_count(const orbax_ckpt *o);
const char *orbax_name(const orbax_ckpt *o, int i);

/* An array's metadata; PI0_ERR_TENSOR naming the array when it is missing or malformed. */
pi0_status orbax_array_info(orbax_ckpt *o, const char *name, orbax_array *a, pi0_err *e);
/* Reads the whole array, C order, little-endian, into dst (nbytes = a->nbytes). */
pi0_status orbax_array_read(orbax_ckpt *o, const char *name, void *dst, size_t nbytes, pi0_err *e);

/* Raw lookup (for tests / fuzzing): the value stored under key, copied into a malloc'd buffer. */
pi0_status orbax_get(orbax_ckpt *o, const char *key, unsigned char **val, size_t *len, pi0_err *e);

/* CRC-32C (Castagnoli) of n bytes, as OCDBT's footers store it. */
uint32_t orbax_crc32c(const void *p, size_t n);

#endif
