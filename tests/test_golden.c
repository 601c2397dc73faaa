/* test_golden — runs a golden case (tests/golden/<case>) through the public API with the
 * intermediate dump on, in both prefix layouts (compact and openpi's full padded layout), and
 * compares every tensor of expected.safetensors on its valid rows: PCC ≥ 0.99999 and
 * max |diff| ≤ 3e-5·max |expected| (ref), no NaN anywhere. π0 and π0.5 cases alike.
 *
 *   test_golden CASE_DIR [--backend NAME]     run through the API
 *   test_golden CASE_DIR --file OUT           check a `pi0 run --dump` output file instead */
#include "../src/io/inputs.h"
#include "test_util.h"

typedef struct {
    char name[64];
    int rows, cols;
    float *data;
} named;

typedef struct {
    named t[256];
    int n;
} named_list;

static void on_dump(void *user, const char *name, const float *data, int ndim, const int64_t *shape) {
    named_list *l = user;
    if (l->n == 256 || ndim < 1 || ndim > 2) return;
    named *t = &l->t[l->n++];
    snprintf(t->name, sizeof t->name, "%s", name);
    t->rows = (int)shape[0];
    t->cols = ndim == 2 ? (int)shape[1] : 1;
    t->data = malloc((size_t)t->rows * t->cols * sizeof(float));
    memcpy(t->data, data, (size_t)t->rows * t->cols * sizeof(float));
}

static const named *find(const named_list *l, const char *name) {
    for (int i = 0; i < l->n; i++)
        if (!strcmp(l->t[i].name, name)) return &l->t[i];
    return NULL;
}

static void list_free(named_list *l) {
    for (int i = 0; i < l->n; i++) free(l->t[i].data);
    l->n = 0;
}

/* Compares every expected tensor with `got`; rows of padding are left out. */
/* Tolerances: ref must match the float64 golden to 3e-5 relative; an accelerated backend
 * (bf16 weights and activations) to PCC 0.99 and 5 % of the tensor's range. */
static double g_min_pcc = 0.99999, g_max_rel = 3e-5;

static void compare_case(const char *label, const st_file *exp, const named_list *got,
                         const pi0_config *c, const pi0_inputs *in) {
    const int n_img = pi0_config_image_tokens(c), C = c->num_cameras;
    unsigned char layout[4096] = {0}, cam_valid[16] = {0};
    for (int cam = 0; cam < C; cam++) {
        cam_valid[cam] = cam < in->num_cameras && (!in->image_masks || in->image_masks[cam]);
        for (int t = 0; t < n_img; t++) layout[cam * n_img + t] = cam_valid[cam];
    }
    for (int i = 0; i < c->max_token_len; i++) layout[C * n_img + i] = in->token_mask[i] != 0;
    printf("%s:\n", label);
    for (int i = 0; i < exp->count; i++) {
        const st_tensor *e = &exp->tensors[i];
        const named *g = find(got, e->name);
        CHECK(g != NULL, "%s: tensor %s not produced", label, e->name);
        if (!g) continue;
        int rows = (int)e->shape[0], cols = (int)(e->numel / (rows ? rows : 1));
        CHECK(g->rows == rows && g->cols == cols, "%s: %s shape [%d, %d], expected [%d, %d]",
              label, e->name, g->rows, g->cols, rows, cols);
        if (g->rows != rows || g->cols != cols) continue;
        const unsigned char *use = NULL;
        if (!strncmp(e->name, "prefix_", 7)) use = layout;
        int cam;
        if (sscanf(e->name, "img_emb.%d", &cam) == 1 && !cam_valid[cam]) {
            printf("  %-14s skipped (camera %d is masked: its rows are padding)\n", e->name, cam);
            continue;
        }
        float *ref = malloc(e->numel * sizeof(float));
        convert_to_f32(ref, e->data, e->dtype, e->numel);
        cmp_result r = compare(ref, g->data, rows, cols, use);
        cmp_result all = compare(g->data, g->data, rows, cols, NULL); /* NaN anywhere? */
        printf("  %-14s rows %3d  max|diff| %.3e  (max|ref| %.3e)  PCC %.9f\n", e->name, rows,
               r.max_diff, r.max_ref, r.pcc);
        CHECK(!r.nan && !all.nan, "%s: %s has NaN", label, e->name);
        CHECK(r.pcc >= g_min_pcc, "%s: %s PCC %.9f < %g", label, e->name, r.pcc, g_min_pcc);
        CHECK(r.max_diff <= g_max_rel * r.max_ref, "%s: %s max|diff| %.3e > %g·%.3e", label, e->name,
              r.max_diff, g_max_rel, r.max_ref);
        free(ref);
    }
}

int main(int argc, char **argv) {
    if (argc < 2) {
        fprintf(stderr, "usage: test_golden CASE_DIR [--file OUT.safetensors] [--backend NAME]\n");
        return 2;
    }
    const char *dir = argv[1], *file = NULL, *backend = NULL;
    for (int i = 2; i + 1 < argc; i += 2) {
        if (!strcmp(argv[i], "--file")) file = argv[i + 1];
        else if (!strcmp(argv[i], "--backend")) backend = argv[i + 1];
    }
    if (backend && strcmp(backend, "ref") != 0) {
        g_min_pcc = 0.99;
        g_max_rel = 5e-2;
    }
    char path[4096];
    pi0_model *m = pi0_model_create();
    pi0_status st = pi0_model_load(m, dir);
    CHECK(st == PI0_OK, "load %s: %s", dir, pi0_model_error(m));
    if (st != PI0_OK) { pi0_model_free(m); return test_summary(); }
    const pi0_config *c = pi0_model_config(m);
    pi0_err e;
    st_file exp;
    pi0_input_buf in;
    snprintf(path, sizeof path, "%s/expected.safetensors", dir);
    const int have_exp = st_open(&exp, path, &e) == PI0_OK;
    CHECK(have_exp, "%s", e.msg);
    snprintf(path, sizeof path, "%s/inputs.safetensors", dir);
    const int have_in = have_exp && inputs_read(&in, path, c, &e) == PI0_OK;
    CHECK(!have_exp || have_in, "%s", e.msg);
    if (!have_exp || !have_in) {
        if (have_exp) st_close(&exp);
        pi0_model_free(m);
        return test_summary();
    }

    static named_list got;
    if (file) {
        st_file out;
        CHECK(st_open(&out, file, &e) == PI0_OK, "%s", e.msg);
        for (int i = 0; i < out.count && got.n < 256; i++) {
            const st_tensor *t = &out.tensors[i];
            int64_t shape[2] = {t->shape[0], (int64_t)(t->numel / (t->shape[0] ? t->shape[0] : 1))};
            float *tmp = malloc(t->numel * sizeof(float));
            convert_to_f32(tmp, t->data, t->dtype, t->numel);
            on_dump(&got, t->name, tmp, t->ndim == 1 ? 1 : 2, shape);
            free(tmp);
        }
        st_close(&out);
        compare_case(file, &exp, &got, c, &in.in);
        list_free(&got);
    } else {
        for (int compact = 1; compact >= 0; compact--) {
            pi0_params p = pi0_default_params();
            p.backend = backend;
            p.compact_prefix = compact;
            p.dump = on_dump;
            p.dump_user = &got;
            pi0_session *s = pi0_session_create();
            pi0_status ist = pi0_session_init(s, m, &p);
            if (ist == PI0_ERR_DEVICE) { /* a GPU backend on a machine without a GPU */
                printf("SKIP: %s\n", pi0_session_error(s));
                pi0_session_free(s);
                st_close(&exp);
                inputs_free(&in);
                pi0_model_free(m);
                return 77;
            }
            CHECK(ist == PI0_OK, "init: %s", pi0_session_error(s));
            float actions[65536];
            int64_t shape[2] = {c->action_horizon, c->action_dim};
            CHECK(pi0_session_infer(s, &in.in, actions) == PI0_OK, "infer: %s", pi0_session_error(s));
            on_dump(&got, "actions", actions, 2, shape);
            char label[512];
            snprintf(label, sizeof label, "%s [api, %s backend, %s prefix]", dir,
                     pi0_session_backend(s), compact ? "compact" : "full");
            compare_case(label, &exp, &got, c, &in.in);
            list_free(&got);
            pi0_session_free(s);
        }
    }
    st_close(&exp);
    inputs_free(&in);
    pi0_model_free(m);
    return test_summary();
}
