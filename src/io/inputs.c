/* inputs.c — see inputs.h. */
#include "inputs.h"

#include <stdlib.h>

static const pi0_dtype k_float_types[] = {DT_F32, DT_BF16, DT_F16, DT_F64};
static const pi0_dtype k_int_types[] = {DT_I32, DT_I64, DT_U8, DT_BOOL, DT_I8, DT_I16};

/* Finds `name`, checks its dtype, and derives / checks the batch size from per_item. */
static pi0_status find_input(const st_file *f, const char *name, int required, int is_float,
                             size_t per_item, int *batch, const st_tensor **out, pi0_err *e) {
    const st_tensor *t = *out = st_find(f, name);
    if (!t) {
        RETURN_ERR_IF(required, e, PI0_ERR_INPUT, "%s: missing input tensor '%s'", f->path, name);
        return PI0_OK;
    }
    const pi0_dtype *ok = is_float ? k_float_types : k_int_types;
    int nok = is_float ? 4 : 6, good = 0;
    for (int i = 0; i < nok; i++) good |= t->dtype == ok[i];
    RETURN_ERR_IF(!good, e, PI0_ERR_INPUT, "%s: input '%s' has dtype %s (expected %s)", f->path,
                  name, dtype_name(t->dtype), is_float ? "a float type" : "an integer type");
    RETURN_ERR_IF(per_item == 0 || t->numel == 0 || t->numel % per_item != 0, e, PI0_ERR_INPUT,
                  "%s: input '%s' has %zu elements, expected a multiple of %zu", f->path, name,
                  t->numel, per_item);
    RETURN_ERR_IF(t->numel / per_item > 1 << 20, e, PI0_ERR_INPUT, "%s: input '%s' holds %zu batch items "
                  "(at most %d)", f->path, name, t->numel / per_item, 1 << 20);
    int b = (int)(t->numel / per_item);
    if (*batch == 0) *batch = b;
    RETURN_ERR_IF(b != *batch, e, PI0_ERR_INPUT, "%s: input '%s' holds %d batch items, other inputs %d",
                  f->path, name, b, *batch);
    return PI0_OK;
}

static void read_ints(const st_tensor *t, int32_t *i32, uint8_t *flag) {
    const unsigned char *src = t->data;
    for (size_t i = 0; i < t->numel; i++) {
        int64_t v;
        switch (t->dtype) {
        case DT_I64: memcpy(&v, src + 8 * i, 8); break;
        case DT_I32: { int32_t x; memcpy(&x, src + 4 * i, 4); v = x; break; }
        case DT_I16: { int16_t x; memcpy(&x, src + 2 * i, 2); v = x; break; }
        case DT_I8: v = (int8_t)src[i]; break;
        default: v = src[i]; break;
        }
        if (i32) i32[i] = (int32_t)(v < INT32_MIN ? INT32_MIN : v > INT32_MAX ? INT32_MAX : v);
        if (flag) flag[i] = v != 0;
    }
}

pi0_status inputs_read(pi0_input_buf *b, const char *path, const pi0_config *c, pi0_err *e) {
    memset(b, 0, sizeof *b);
    st_file f;
    FORWARD_ERR(st_open(&f, path, e));
    const size_t S = c->vision.image_size, img = 3 * S * S;
    const size_t HA = (size_t)c->action_horizon * c->action_dim;
    const st_tensor *t_img, *t_mask, *t_tok, *t_tmask, *t_state, *t_noise;
    int batch = 0, n_cam = 0;
    pi0_status st;
    if ((st = find_input(&f, "tokens", 1, 0, c->max_token_len, &batch, &t_tok, e)) ||
        (st = find_input(&f, "token_mask", 1, 0, c->max_token_len, &batch, &t_tmask, e)) ||
        (st = find_input(&f, "state", 1, 1, c->state_dim, &batch, &t_state, e)) ||
        (st = find_input(&f, "noise", 0, 1, HA, &batch, &t_noise, e)))
        goto done;
    /* The camera count comes from the images' size: [B·n_cam, 3, S, S]. */
    t_img = st_find(&f, "images");
    size_t per_batch; /* 3·S·S floats per camera, times the batch */
    if (t_img && !pi0_mul_size(img, (size_t)batch, &per_batch)) {
        st = pi0_fail(e, PI0_ERR_INPUT, "%s: input 'images': %d batch items of 3x%zux%zu overflow", path, batch, S, S);
        goto done;
    }
    if (t_img) {
        if (t_img->numel % per_batch || t_img->numel == 0) {
            st = pi0_fail(e, PI0_ERR_INPUT, "%s: input 'images' has %zu elements, not a multiple "
                          "of %d×3×%zu×%zu", path, t_img->numel, batch, S, S);
            goto done;
        }
        if (t_img->numel / per_batch > 16) {
            st = pi0_fail(e, PI0_ERR_INPUT, "%s: input 'images' holds %zu cameras per batch item (at most 16)",
                          path, t_img->numel / per_batch);
            goto done;
        }
        n_cam = (int)(t_img->numel / per_batch);
        if ((st = find_input(&f, "images", 1, 1, img * n_cam, &batch, &t_img, e))) goto done;
    }
    if ((st = find_input(&f, "image_masks", 0, 0, n_cam ? n_cam : 1, &batch, &t_mask, e))) goto done;
    b->images = malloc((t_img ? t_img->numel : 1) * sizeof(float));
    b->image_masks = malloc((size_t)batch * (n_cam ? n_cam : 1));
    b->tokens = malloc((size_t)batch * c->max_token_len * sizeof(int32_t));
    b->token_mask = malloc((size_t)batch * c->max_token_len);
    b->state = malloc((size_t)batch * c->state_dim * sizeof(float));
    b->noise = t_noise ? malloc(t_noise->numel * sizeof(float)) : NULL;
    if (!b->images || !b->image_masks || !b->tokens || !b->token_mask || !b->state ||
        (t_noise && !b->noise)) {
        st = pi0_fail(e, PI0_ERR_NOMEM, "out of memory reading %s", path);
        goto done;
    }
    if (t_img) convert_to_f32(b->images, t_img->data, t_img->dtype, t_img->numel);
    convert_to_f32(b->state, t_state->data, t_state->dtype, t_state->numel);
    if (t_noise) convert_to_f32(b->noise, t_noise->data, t_noise->dtype, t_noise->numel);
    read_ints(t_tok, b->tokens, NULL);
    read_ints(t_tmask, NULL, b->token_mask);
    if (t_mask) read_ints(t_mask, NULL, b->image_masks);
    b->in = (pi0_inputs){
        .batch = batch, .num_cameras = n_cam, .images = t_img ? b->images : NULL,
        .image_masks = t_mask ? b->image_masks : NULL, .tokens = b->tokens,
        .token_mask = b->token_mask, .state = b->state, .noise = b->noise,
    };
done:
    st_close(&f);
    if (st != PI0_OK) inputs_free(b);
    return st;
}

void inputs_free(pi0_input_buf *b) {
    free(b->images);
    free(b->state);
    free(b->noise);
    free(b->tokens);
    free(b->image_masks);
    free(b->token_mask);
    memset(b, 0, sizeof *b);
}
