/* test_image — image preprocessing against PIL, and bad image files.
 *   test_image REF_DIR TMP_DIR
 * REF_DIR comes from pil_ref.py: cases.txt lists "<image path> <name>"; <name>.rgb is PIL's
 * resize_with_pad(224) of that image. Every case must be within 1 intensity level of PIL. */
#include <stdlib.h>
#include <unistd.h>

#include "../src/io/image.h"
#include "test_util.h"

static void check_case(const char *path, const char *name, const char *ref_dir) {
    char ref_path[4096];
    snprintf(ref_path, sizeof ref_path, "%s/%s.rgb", ref_dir, name);
    FILE *fp = fopen(ref_path, "rb");
    CHECK(fp != NULL, "missing %s", ref_path);
    if (!fp) return;
    static uint8_t ref[224 * 224 * 3];
    size_t got = fread(ref, 1, sizeof ref, fp);
    fclose(fp);
    CHECK(got == sizeof ref, "%s: short reference", ref_path);
    pi0_err e;
    rgb_image im, out;
    pi0_status st = image_decode_file(&im, path, &e);
    CHECK(st == PI0_OK, "decode %s: %s", path, e.msg);
    if (st != PI0_OK) return;
    st = image_resize_with_pad(&out, &im, 224, &e);
    CHECK(st == PI0_OK, "resize %s: %s", path, e.msg);
    if (st == PI0_OK) {
        int maxd = 0;
        long n_diff = 0;
        for (size_t i = 0; i < sizeof ref; i++) {
            int d = abs((int)out.rgb[i] - (int)ref[i]);
            if (d > maxd) maxd = d;
            n_diff += d != 0;
        }
        int is_jpeg = strstr(path, ".jpg") || strstr(path, ".jpeg");
        printf("  %-22s %5dx%-5d max |diff| %d level(s), %ld of %zu values differ%s\n", name,
               im.width, im.height, maxd, n_diff, sizeof ref, is_jpeg ? " (JPEG: decoders differ)" : "");
        /* PNG decodes identically; JPEG decoders (stb_image, libjpeg-turbo) may round differently */
        CHECK(maxd <= 1, "%s: max diff %d levels from PIL", name, maxd);
        rgb_image_free(&out);
    }
    rgb_image_free(&im);
}

static void write_file(const char *path, const void *data, size_t n) {
    FILE *fp = fopen(path, "wb");
    if (n) fwrite(data, 1, n, fp);
    fclose(fp);
}

static void expect_bad(const char *label, const char *path, pi0_status want, const char *needle) {
    pi0_err e = {{0}};
    rgb_image im;
    pi0_status st = image_decode_file(&im, path, &e);
    printf("  %-22s -> %s: %s\n", label, pi0_status_str(st), e.msg);
    CHECK(st == want && strstr(e.msg, needle) && strstr(e.msg, path), "%s: got '%s'", label, e.msg);
    if (st == PI0_OK) rgb_image_free(&im);
}

int main(int argc, char **argv) {
    if (argc < 3) { fprintf(stderr, "usage: test_image REF_DIR TMP_DIR\n"); return 2; }
    const char *ref = argv[1], *tmp = argv[2];
    char path[4096], line[8192];
    snprintf(path, sizeof path, "%s/cases.txt", ref);
    FILE *fp = fopen(path, "r");
    CHECK(fp != NULL, "missing %s", path);
    int n = 0;
    printf("resize_with_pad(224) vs PIL:\n");
    while (fp && fgets(line, sizeof line, fp)) {
        char img[4096], name[256];
        if (sscanf(line, "%4095s %255s", img, name) != 2) continue;
        check_case(img, name, ref);
        n++;
    }
    if (fp) fclose(fp);
    CHECK(n >= 15, "only %d image cases", n);

    /* Bad files: each gives a clear error naming the file. */
    printf("bad image files:\n");
    snprintf(path, sizeof path, "%s/empty.png", tmp);
    write_file(path, "", 0);
    expect_bad("empty file", path, PI0_ERR_INPUT, "cannot decode");
    snprintf(path, sizeof path, "%s/garbage.jpg", tmp);
    write_file(path, "this is not an image at all, just text", 38);
    expect_bad("garbage", path, PI0_ERR_INPUT, "cannot decode");
    /* A real PNG cut short. */
    char src[4096];
    snprintf(src, sizeof src, "%s/odd.png", ref);
    FILE *in = fopen(src, "rb");
    static unsigned char buf[1 << 20];
    size_t len = in ? fread(buf, 1, sizeof buf, in) : 0;
    if (in) fclose(in);
    snprintf(path, sizeof path, "%s/truncated.png", tmp);
    write_file(path, buf, len / 2);
    expect_bad("truncated PNG", path, PI0_ERR_INPUT, "cannot decode");
    snprintf(path, sizeof path, "%s/no_such_image.png", tmp);
    expect_bad("missing file", path, PI0_ERR_IO, "cannot open");

    /* Raw buffers: HWC and CHW, 1/3/4 channels, agree with each other. */
    enum { W = 5, H = 3 };
    uint8_t hwc[H * W * 4], chw[4 * H * W], gray[H * W];
    for (int y = 0; y < H; y++)
        for (int x = 0; x < W; x++)
            for (int c = 0; c < 4; c++) {
                uint8_t v = (uint8_t)(y * 50 + x * 10 + c * 3);
                hwc[(y * W + x) * 4 + c] = v;
                chw[c * H * W + y * W + x] = v;
                if (c == 0) gray[y * W + x] = v;
            }
    pi0_err e;
    rgb_image a, b, g;
    CHECK(image_from_u8(&a, hwc, W, H, 4, 0, &e) == PI0_OK, "HWC rgba");
    CHECK(image_from_u8(&b, chw, W, H, 4, 1, &e) == PI0_OK, "CHW rgba");
    CHECK(!memcmp(a.rgb, b.rgb, W * H * 3), "HWC and CHW buffers give different pixels");
    CHECK(a.rgb[3 * 7 + 2] == hwc[4 * 7 + 2], "alpha must be dropped, RGB kept");
    CHECK(image_from_u8(&g, gray, W, H, 1, 0, &e) == PI0_OK && g.rgb[3 * 4] == gray[4] &&
          g.rgb[3 * 4 + 1] == gray[4] && g.rgb[3 * 4 + 2] == gray[4], "gray must replicate");
    rgb_image_free(&g);
    CHECK(image_from_u8(&g, gray, W, H, 2, 0, &e) == PI0_ERR_INPUT && strstr(e.msg, "channels"), "2 channels refused");
    CHECK(image_from_u8(&g, gray, 0, H, 1, 0, &e) == PI0_ERR_INPUT, "zero width refused");
    float model[3 * H * W];
    image_to_model(&a, model);
    CHECK(model[0] == (float)a.rgb[0] / 255.0f * 2.0f - 1.0f && model[H * W] == (float)a.rgb[1] / 255.0f * 2.0f - 1.0f,
          "[-1, 1] scaling or CHW layout wrong");
    rgb_image black = {0};
    uint8_t zero[3] = {0, 0, 0}, white[3] = {255, 255, 255};
    CHECK(image_from_u8(&black, zero, 1, 1, 3, 0, &e) == PI0_OK, "1x1");
    image_to_model(&black, model);
    CHECK(model[0] == -1.0f, "black must be -1");
    rgb_image_free(&black);
    CHECK(image_from_u8(&black, white, 1, 1, 3, 0, &e) == PI0_OK, "1x1");
    image_to_model(&black, model);
    CHECK(model[0] == 1.0f, "white must be 1");
    rgb_image_free(&black);
    rgb_image_free(&a);
    rgb_image_free(&b);
    rgb_image_free(&g);
    return test_summary();
}
