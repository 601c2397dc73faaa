/* fuzz_orbax — an Orbax / OCDBT checkpoint directory from arbitrary bytes: orbax_open, then every
 * array's metadata and (when small) its data, then openpi's mapping (openpi_orbax_open and the
 * tensors it plans, when small). Reads past a mapped file would show under ASan.
 *
 * Input: records [u16le name length][name][u32le data length][data], one file each, written
 * under a private directory (names: [A-Za-z0-9_.] parts joined by '/', no "..", depth <= 3).
 * Seeds (fuzz/corpus/orbax/) pack real checkpoints written by orbax-checkpoint
 * (fuzz/pack_orbax.py). This build skips the CRC-32C comparison
 * (FUZZING_BUILD_MODE_UNSAFE_FOR_PRODUCTION) so that mutations reach the decoders. */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../src/io/openpi_orbax.h"

static char root[64];

static void rm_tree(const char *p, int depth) {
    DIR *d = opendir(p);
    if (!d) return;
    for (struct dirent *de; (de = readdir(d));) {
        if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, "..")) continue;
        char c[512];
        snprintf(c, sizeof c, "%s/%s", p, de->d_name);
        struct stat sb;
        if (lstat(c, &sb) == 0 && S_ISDIR(sb.st_mode)) {
            if (depth < 8) rm_tree(c, depth + 1);
            rmdir(c);
        } else {
            unlink(c);
        }
    }
    closedir(d);
}

static int name_ok(const char *n) {
    int depth = 0;
    if (!*n || *n == '/' || strstr(n, "..") || strstr(n, "//")) return 0;
    for (const char *s = n; *s; s++) {
        if (*s == '/') depth++;
        else if (!(*s == '_' || *s == '.' || (*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') || (*s >= '0' && *s <= '9')))
            return 0;
    }
    return depth <= 3 && n[strlen(n) - 1] != '/';
}

static void write_file(const char *name, const uint8_t *d, size_t n) {
    char p[512];
    snprintf(p, sizeof p, "%s/%s", root, name);
    for (char *s = p + strlen(root) + 1; *s; s++)
        if (*s == '/') { *s = 0; mkdir(p, 0700); *s = '/'; }
    FILE *f = fopen(p, "wb");
    if (!f) return;
    if (n) fwrite(d, 1, n, f);
    fclose(f);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (!root[0]) {
        snprintf(root, sizeof root, "/tmp/pi0-fuzz-orbax-XXXXXX");
        if (!mkdtemp(root)) abort();
    }
    rm_tree(root, 0);
    size_t o = 0;
    for (int files = 0; files < 32 && size - o >= 2; files++) {
        const size_t nl = data[o] | (size_t)data[o + 1] << 8;
        o += 2;
        if (nl == 0 || nl > 200 || size - o < nl + 4) break;
        char name[256];
        memcpy(name, data + o, nl);
        name[nl] = 0;
        o += nl;
        const size_t dl = data[o] | (size_t)data[o + 1] << 8 | (size_t)data[o + 2] << 16 | (size_t)data[o + 3] << 24;
        o += 4;
        const size_t take = dl < size - o ? dl : size - o;
        if (name_ok(name)) write_file(name, data + o, take);
        o += take;
    }
    pi0_err e;
    orbax_ckpt *ob;
    if (orbax_open(&ob, root, &e) == PI0_OK) {
        for (int i = 0; i < orbax_count(ob); i++) {
            orbax_array a;
            if (orbax_array_info(ob, orbax_name(ob, i), &a, &e) != PI0_OK || a.nbytes > (4u << 20)) continue;
            void *buf = malloc(a.nbytes ? a.nbytes : 1);
            if (buf && orbax_array_read(ob, orbax_name(ob, i), buf, a.nbytes, &e) == PI0_OK) {
                volatile unsigned char sink = 0;
                for (size_t k = 0; k < a.nbytes; k++) sink ^= ((unsigned char *)buf)[k];
                (void)sink;
            }
            free(buf);
        }
        orbax_close(ob);
    }
    openpi_orbax *m;
    if (openpi_orbax_open(&m, root, NULL, &e) == PI0_OK) {
        for (int i = 0; i < openpi_orbax_count(m); i++) {
            const size_t nb = st_decl_nbytes(openpi_orbax_decl(m, i));
            if (nb > (4u << 20)) continue;
            void *buf = malloc(nb ? nb : 1);
            if (buf && openpi_orbax_produce(m, i, buf, &e) != PI0_OK) { free(buf); break; }
            free(buf);
        }
        openpi_orbax_close(m);
    }
    return 0;
}
