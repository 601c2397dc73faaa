/* openpi_orbax.h — openpi's JAX parameter tree (as its Orbax checkpoints hold it) mapped onto
 * pi0.c's tensors (openpi's PyTorch layout, as examples/convert_jax_model_to_pytorch.py writes
 * it): layers unstacked from the scan axis, einsum kernels reshaped and transposed, the action
 * expert's "_1" modules, π0.5's adaRMS Dense_0 and time MLP, SigLIP's Flax layout. The model
 * kind and every size are read from the arrays' shapes. */
#ifndef PI0_OPENPI_ORBAX_H
#define PI0_OPENPI_ORBAX_H

#include "orbax.h"
#include "safetensors.h"

typedef struct openpi_orbax openpi_orbax;

/* The Orbax params directory of a checkpoint dir (dir/params, or dir itself) into out; 1 if
 * one holds manifest.ocdbt. */
int openpi_orbax_detect(const char *dir, char *out, size_t n);

/* Opens params_dir, finds openpi's tree (with or without the "params" root and nnx's "value"
 * leaves), checks every array's shape and plans the tensors. *cfg (may be NULL) receives the
 * configuration the shapes imply (the released model's defaults for what shapes do not say). */
pi0_status openpi_orbax_open(openpi_orbax **m, const char *params_dir, pi0_config *cfg, pi0_err *e);
void openpi_orbax_close(openpi_orbax *m);

/* The planned tensors (pi0.c's names and shapes, the stored dtype), in production order. */
int openpi_orbax_count(const openpi_orbax *m);
const st_decl *openpi_orbax_decl(const openpi_orbax *m, int i);
/* Writes tensor i into dst (st_decl_nbytes bytes). Holds one source array (the stacked layers of
 * one kind) at a time: produce in order for the least reading. */
pi0_status openpi_orbax_produce(openpi_orbax *m, int i, void *dst, pi0_err *e);

/* The whole model as an in-memory st_file (anonymous memory, freed by st_close), as if read from
 * the converted model.safetensors; *cfg as openpi_orbax_open. */
pi0_status openpi_orbax_load(st_file *f, const char *params_dir, pi0_config *cfg, pi0_err *e);

#endif
