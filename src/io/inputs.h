/* inputs.h — reads a preprocessed observation file (the format of the golden cases' inputs.safetensors:
 * images [n_cam,3,S,S] in [-1,1], image_masks [n_cam], tokens [L], token_mask [L],
 * state [state_dim], optional noise [H,A]; each may carry a leading batch dimension) into
 * owned buffers and a ready pi0_inputs. */
#ifndef PI0_INPUTS_H
#define PI0_INPUTS_H

#include "safetensors.h"

typedef struct {
    pi0_inputs in;            /* points into the buffers below */
    float *images, *state, *noise;
    int32_t *tokens;
    uint8_t *image_masks, *token_mask;
} pi0_input_buf;

pi0_status inputs_read(pi0_input_buf *b, const char *path, const pi0_config *c, pi0_err *e);
void inputs_free(pi0_input_buf *b);

#endif
