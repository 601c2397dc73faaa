/* convert.c — `pi0 convert`: openpi's Orbax checkpoint (params/ + assets/) written as the
 * safetensors checkpoint pi0.c and openpi's PyTorch code read (model.safetensors in openpi's
 * PyTorch layout, config.json, assets/ copied). Streams: one source array (the stacked layers of
 * one kind) and one output tensor in memory at a time; the output appears only when complete. */
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cli.h"
#include "../src/io/openpi_orbax.h"
#include "../src/model/config.h"

/* Copies the regular files and directories under src into dst (assets/: small JSON files). */
static int copy_tree(const char *src, const char *dst, int depth) {
    if (depth > 8) return cli_error(2, "%s: directories nested too deep", src);
    if (mkdir(dst, 0755) != 0 && errno != EEXIST) return cli_error(2, "%s: cannot create: %s", dst, strerror(errno));
    DIR *d = opendir(src);
    if (!d) return cli_error(2, "%s: cannot open: %s", src, strerror(errno));
    int rc = 0;
    for (struct dirent *de; !rc && (de = readdir(d));) {
        if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, "..")) continue;
        char s[4096], t[4096];
        snprintf(s, sizeof s, "%s/%s", src, de->d_name);
        snprintf(t, sizeof t, "%s/%s", dst, de->d_name);
        struct stat sb;
        if (stat(s, &sb) != 0) continue;
        if (S_ISDIR(sb.st_mode)) { rc = copy_tree(s, t, depth + 1); continue; }
        if (!S_ISREG(sb.st_mode)) continue;
        FILE *in = fopen(s, "rb"), *out = in ? fopen(t, "wb") : NULL;
        if (!in || !out) {
            rc = cli_error(2, "%s: cannot copy to %s: %s", s, t, strerror(errno));
        } else {
            char buf[1 << 16];
            size_t n;
            while ((n = fread(buf, 1, sizeof buf, in)) > 0)
                if (fwrite(buf, 1, n, out) != n) { rc = cli_error(2, "%s: write failed", t); break; }
        }
        if (in) fclose(in);
        if (out && fclose(out) != 0 && !rc) rc = cli_error(2, "%s: write failed", t);
    }
    closedir(d);
    return rc;
}

int cmd_convert(int argc, char **argv) {
    const char *model = NULL, *out = NULL;
    for (int i = 0; i < argc; i++) {
        if (cli_is_help(argv[i])) return cli_help("convert");
        if (!strcmp(argv[i], "--model") && i + 1 < argc) model = argv[++i];
        else if (!strcmp(argv[i], "--out") && i + 1 < argc) out = argv[++i];
        else return cli_usage_error("convert: unknown option or missing value '%s'", argv[i]);
    }
    if (!model || !out) return cli_usage_error("convert needs --model ORBAX_DIR --out DIR");
    char params[4200];
    if (!openpi_orbax_detect(model, params, sizeof params))
        return cli_error(2, "%s: not an Orbax checkpoint (no params/manifest.ocdbt nor manifest.ocdbt)", model);
    pi0_err e = {{0}};
    pi0_config cfg;
    openpi_orbax *m;
    if (openpi_orbax_open(&m, params, &cfg, &e) != PI0_OK) return cli_error(2, "%s", e.msg);
    if (mkdir(out, 0755) != 0 && errno != EEXIST) {
        openpi_orbax_close(m);
        return cli_error(2, "%s: cannot create: %s", out, strerror(errno));
    }
    const int n = openpi_orbax_count(m);
    st_decl *decls = malloc((size_t)n * sizeof *decls);
    size_t maxb = 1, total = 0;
    for (int i = 0; decls && i < n; i++) {
        decls[i] = *openpi_orbax_decl(m, i);
        const size_t b = st_decl_nbytes(&decls[i]);
        if (b > maxb) maxb = b;
        total += b;
    }
    void *buf = malloc(maxb);
    char path[4300];
    snprintf(path, sizeof path, "%s/model.safetensors", out);
    st_writer *w = NULL;
    int rc = 0;
    if (!decls || !buf) rc = cli_error(2, "out of memory");
    else if (st_writer_open(&w, path, decls, n, &e) != PI0_OK) rc = cli_error(2, "%s", e.msg);
    for (int i = 0; !rc && i < n; i++) {
        if (openpi_orbax_produce(m, i, buf, &e) != PI0_OK || st_writer_write(w, buf, st_decl_nbytes(&decls[i]), &e) != PI0_OK) {
            rc = cli_error(2, "%s", e.msg);
            st_writer_abort(w);
            w = NULL;
        }
    }
    if (!rc && st_writer_finish(w, &e) != PI0_OK) rc = cli_error(2, "%s", e.msg);
    openpi_orbax_close(m);
    free(buf);
    free(decls);
    if (rc) return rc;
    /* config.json: the checkpoint's own when it has one, else the sizes its arrays imply */
    char src_cfg[4300], dst_cfg[4300];
    snprintf(src_cfg, sizeof src_cfg, "%s/config.json", model);
    snprintf(dst_cfg, sizeof dst_cfg, "%s/config.json", out);
    struct stat sb;
    char *json = NULL;
    size_t len = 0;
    if (stat(src_cfg, &sb) == 0) {
        if (read_file(src_cfg, 16u << 20, &json, &len, &e) != PI0_OK) return cli_error(2, "%s", e.msg);
    } else {
        json = config_to_json(&cfg);
        len = json ? strlen(json) : 0;
    }
    FILE *f = json ? fopen(dst_cfg, "wb") : NULL;
    if (!f || fwrite(json, 1, len, f) != len) rc = cli_error(2, "%s: cannot write", dst_cfg);
    if (f && fclose(f) != 0 && !rc) rc = cli_error(2, "%s: cannot write", dst_cfg);
    free(json);
    if (rc) return rc;
    char assets[4300], dassets[4300];
    snprintf(assets, sizeof assets, "%s/assets", model);
    snprintf(dassets, sizeof dassets, "%s/assets", out);
    if (stat(assets, &sb) == 0 && S_ISDIR(sb.st_mode) && (rc = copy_tree(assets, dassets, 0))) return rc;
    fprintf(stderr, "pi0: wrote %s (%s, %d tensors, %.2f GB) and config.json%s\n", path, cfg.pi05 ? "pi0.5" : "pi0", n,
            total / 1e9, stat(assets, &sb) == 0 ? ", assets/" : "");
    return 0;
}
