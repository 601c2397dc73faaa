/* stb_image_fenced.h — stb_image (Debian libstb-dev's header), compiled into libpi0 with only
 * PNG, JPEG and BMP and with every allocation charged to a per-call budget; see
 * stb_image_fenced.c. Used by image.c only. */
#ifndef PI0_STB_IMAGE_FENCED_H
#define PI0_STB_IMAGE_FENCED_H

#include <stddef.h>

/* Width, height and channels from the header alone (stbi_info_from_memory). 1 on success. */
int fenced_stbi_info(const unsigned char *p, int len, int *w, int *h, int *comp);
/* Decodes to `req_comp` channels (stbi_load_from_memory), allocating at most `budget` bytes in
 * all; NULL on failure, with *over_budget set when an allocation was refused for the budget. */
unsigned char *fenced_stbi_load(const unsigned char *p, int len, int *w, int *h, int *comp, int req_comp,
                                size_t budget, int *over_budget);
void fenced_stbi_free(void *pixels);
const char *fenced_stbi_failure_reason(void);

#endif
