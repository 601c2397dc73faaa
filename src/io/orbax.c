/* orbax.c — see orbax.h. The OCDBT structures (manifest, B+tree nodes, data file tables) are
 * decoded here by hand: they are a small columnar varint format for which no C library exists
 * (tensorstore is C++ with its own dependency tree). zstd is libzstd; zarr metadata JSON is
 * cJSON. */
#include "orbax.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#ifdef PI0_HAVE_ZSTD
#include <zstd.h>
#include <zstd_errors.h>
#endif

#define MAGIC_MANIFEST 0x0cdb3a2au
#define MAGIC_BTREE 0x0cdb20deu
#define MAX_KEY 65535u          /* tensorstore's key and path length limits */
#define MAX_PATH 65535u
#define MAX_ARITY 1048576u      /* entries per node, far above tensorstore's own limit */
#define MAX_HEIGHT 64
#define MAX_ENTRIES (1u << 24)  /* keys in the whole tree */
#define MAX_FILES 4096          /* distinct data files */
#define MAX_NODE (1u << 30)     /* decoded node / manifest bytes */
#define MAX_VISITS (1u << 20)   /* B+tree nodes read (children may be shared: no exponential walk) */
#define MAX_DECODED (1ull << 32) /* bytes decoded over all nodes (no decompression-bomb walk) */

/* ---------------------------------------------------------------- CRC-32C */

/* CRC-32C: Debian 12 packages no C library for it (zlib has only CRC-32), so the usual
 * byte-wise table form, reflected polynomial 0x82F63B78. */
uint32_t orbax_crc32c(const void *p, size_t n) {
    static uint32_t table[256];
    static int ready;
    if (!ready) { /* idempotent: concurrent first calls write the same values */
        for (uint32_t i = 0; i < 256; i++) {
            uint32_t c = i;
            for (int k = 0; k < 8; k++) c = c & 1 ? (c >> 1) ^ 0x82F63B78u : c >> 1;
            table[i] = c;
        }
        ready = 1;
    }
    const unsigned char *b = p;
    uint32_t c = 0xFFFFFFFFu;
    for (size_t i = 0; i < n; i++) c = table[(c ^ b[i]) & 0xFF] ^ (c >> 8);
    return c ^ 0xFFFFFFFFu;
}

/* ---------------------------------------------------------------- state */

typedef struct {
    char *path;        /* relative to the database directory */
    unsigned char *map;
    size_t size;
    int mapped;        /* 1 once mmap was tried (map NULL: empty or failed) */
} ob_file;

typedef struct {
    char *key;
    int file;          /* -1: inline value in `inl` */
    uint64_t offset, length;
    unsigned char *inl;
} ob_entry;

typedef struct {
    char *name;        /* array name (key without "/.zarray") */
    int meta;          /* entry index of its .zarray */
} ob_arr;

struct orbax_ckpt {
    char *dir;
    ob_file *files;
    int nfiles;
    ob_entry *ents;
    size_t nents, capents;
    ob_arr *arrs;
    int narrs;
    size_t visits;
    uint64_t decoded;
};

typedef struct {       /* a bounded reader over decoded bytes */
    const unsigned char *p, *end;
    int bad;
} rd;

static uint64_t rd_varint(rd *r) {
    uint64_t v = 0;
    for (int shift = 0; shift < 64; shift += 7) {
        if (r->p >= r->end) { r->bad = 1; return 0; }
        unsigned char b = *r->p++;
        if (shift == 63 && b > 1) { r->bad = 1; return 0; }
        v |= (uint64_t)(b & 0x7f) << shift;
        if (!(b & 0x80)) return v;
    }
    r->bad = 1;
    return 0;
}

static unsigned rd_u8(rd *r) {
    if (r->p >= r->end) { r->bad = 1; return 0; }
    return *r->p++;
}

static uint64_t rd_u64le(rd *r) {
    if (r->end - r->p < 8) { r->bad = 1; return 0; }
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--) v = v << 8 | r->p[i];
    r->p += 8;
    return v;
}

static const unsigned char *rd_bytes(rd *r, uint64_t n) {
    if ((uint64_t)(r->end - r->p) < n) { r->bad = 1; return NULL; }
    const unsigned char *s = r->p;
    r->p += n;
    return s;
}

static char *xstrndup(const char *s, size_t n) {
    char *d = malloc(n + 1);
    if (d) { memcpy(d, s, n); d[n] = 0; }
    return d;
}

/* ---------------------------------------------------------------- files */

/* A data file path from the checkpoint: relative, no "..", no empty or absolute parts. */
static int safe_path(const char *p) {
    if (!*p || *p == '/') return 0;
    for (const char *s = p; *s;) {
        const char *slash = strchr(s, '/');
        size_t n = slash ? (size_t)(slash - s) : strlen(s);
        if (n == 2 && s[0] == '.' && s[1] == '.') return 0;
        if (!slash) break;
        s = slash + 1;
    }
    return 1;
}

static pi0_status file_index(orbax_ckpt *o, const char *path, int *idx, pi0_err *e) {
    for (int i = 0; i < o->nfiles; i++)
        if (strcmp(o->files[i].path, path) == 0) { *idx = i; return PI0_OK; }
    /* An empty path stands for "no data file" (an empty tree's missing root): refused on use. */
    RETURN_ERR_IF(*path && !safe_path(path), e, PI0_ERR_FORMAT, "%s: data file path '%.200s' leaves the checkpoint",
                  o->dir, path);
    RETURN_ERR_IF(o->nfiles >= MAX_FILES, e, PI0_ERR_FORMAT, "%s: more than %d data files", o->dir, MAX_FILES);
    if (o->nfiles % 64 == 0) {
        ob_file *nf = realloc(o->files, (size_t)(o->nfiles + 64) * sizeof *nf);
        RETURN_ERR_IF(!nf, e, PI0_ERR_NOMEM, "out of memory");
        o->files = nf;
    }
    ob_file *f = &o->files[o->nfiles];
    memset(f, 0, sizeof *f);
    f->path = xstrndup(path, strlen(path));
    RETURN_ERR_IF(!f->path, e, PI0_ERR_NOMEM, "out of memory");
    *idx = o->nfiles++;
    return PI0_OK;
}

/* The bytes [off, off + len) of data file i (mapped on first use). */
static pi0_status file_slice(orbax_ckpt *o, int i, uint64_t off, uint64_t len, const unsigned char **out,
                             const char *what, pi0_err *e) {
    ob_file *f = &o->files[i];
    RETURN_ERR_IF(!f->path[0], e, PI0_ERR_FORMAT, "%s: %s: refers to no data file (empty path)", o->dir, what);
    if (!f->mapped) {
        f->mapped = 1;
        char full[8192];
        snprintf(full, sizeof full, "%s/%s", o->dir, f->path);
        int fd = open(full, O_RDONLY);
        RETURN_ERR_IF(fd < 0, e, PI0_ERR_IO, "%s: %s: cannot open data file %s: %s", o->dir, what, f->path,
                      strerror(errno));
        struct stat sb;
        if (fstat(fd, &sb) != 0 || !S_ISREG(sb.st_mode)) {
            close(fd);
            return pi0_fail(e, PI0_ERR_IO, "%s: %s: data file %s is not a regular file", o->dir, what, f->path);
        }
        f->size = (size_t)sb.st_size;
        if (f->size) {
            void *m = mmap(NULL, f->size, PROT_READ, MAP_PRIVATE, fd, 0);
            if (m == MAP_FAILED) {
                close(fd);
                return pi0_fail(e, PI0_ERR_IO, "%s: %s: cannot map %s: %s", o->dir, what, f->path, strerror(errno));
            }
            f->map = m;
        }
        close(fd);
    }
    RETURN_ERR_IF(off > f->size || len > f->size - off, e, PI0_ERR_FORMAT,
                  "%s: %s: bytes [%llu, +%llu) lie past the end of data file %s (%zu bytes; truncated?)", o->dir,
                  what, (unsigned long long)off, (unsigned long long)len, f->path, f->size);
    *out = f->map ? f->map + off : (const unsigned char *)"";
    return PI0_OK;
}

/* Gives back the pages of a data file range once its bytes are decoded (a read-only file
 * mapping: they stay in the page cache, out of the process's resident set). */
static void file_release(orbax_ckpt *o, const ob_entry *en) {
    if (en->file < 0) return;
    const ob_file *f = &o->files[en->file];
    if (!f->map || en->length < (1u << 20)) return;
    const uintptr_t page = (uintptr_t)sysconf(_SC_PAGESIZE);
    uintptr_t a = ((uintptr_t)f->map + en->offset + page - 1) / page * page,
              z = ((uintptr_t)f->map + en->offset + en->length) / page * page;
    if (z > a) madvise((void *)a, z - a, MADV_DONTNEED);
}

/* ---------------------------------------------------------------- encoded blocks */

/* Checks an OCDBT block (magic, length, version, CRC-32C) and returns its decoded body in *body
 * (malloc'd). */
static pi0_status decode_block(const char *dir, const char *what, const unsigned char *b, size_t n, uint32_t magic,
                               unsigned char **body, size_t *blen, pi0_err *e) {
    *body = NULL;
    RETURN_ERR_IF(n < 4 + 8 + 1 + 1 + 4, e, PI0_ERR_FORMAT, "%s: %s: %zu bytes, too short", dir, what, n);
    const uint32_t m = (uint32_t)b[0] << 24 | (uint32_t)b[1] << 16 | (uint32_t)b[2] << 8 | b[3];
    RETURN_ERR_IF(m != magic, e, PI0_ERR_FORMAT, "%s: %s: bad magic 0x%08x (expected 0x%08x)", dir, what, m, magic);
    rd r = {b + 4, b + n, 0};
    const uint64_t len = rd_u64le(&r);
    RETURN_ERR_IF(len != n, e, PI0_ERR_FORMAT, "%s: %s: header says %llu bytes, found %zu (truncated?)", dir, what,
                  (unsigned long long)len, n);
    uint32_t crc = (uint32_t)b[n - 4] | (uint32_t)b[n - 3] << 8 | (uint32_t)b[n - 2] << 16 | (uint32_t)b[n - 1] << 24;
#ifndef FUZZING_BUILD_MODE_UNSAFE_FOR_PRODUCTION
    RETURN_ERR_IF(orbax_crc32c(b, n - 4) != crc, e, PI0_ERR_FORMAT, "%s: %s: CRC-32C checksum mismatch (corrupted)",
                  dir, what);
#else
    (void)crc;
#endif
    r.end = b + n - 4;
    const uint64_t version = rd_varint(&r), comp = rd_varint(&r);
    RETURN_ERR_IF(r.bad || version != 0, e, PI0_ERR_FORMAT, "%s: %s: unsupported format version %llu", dir, what,
                  (unsigned long long)version);
    const size_t clen = (size_t)(r.end - r.p);
    if (comp == 0) {
        *body = malloc(clen ? clen : 1);
        RETURN_ERR_IF(!*body, e, PI0_ERR_NOMEM, "out of memory");
        memcpy(*body, r.p, clen);
        *blen = clen;
        return PI0_OK;
    }
    RETURN_ERR_IF(comp != 1, e, PI0_ERR_FORMAT, "%s: %s: unknown compression format %llu", dir, what,
                  (unsigned long long)comp);
#ifdef PI0_HAVE_ZSTD
    /* The size may be absent from the frame (streamed): grow up to MAX_NODE. */
    unsigned long long want = ZSTD_getFrameContentSize(r.p, clen);
    RETURN_ERR_IF(want == ZSTD_CONTENTSIZE_ERROR, e, PI0_ERR_FORMAT, "%s: %s: not a zstd frame", dir, what);
    size_t cap = want != ZSTD_CONTENTSIZE_UNKNOWN ? (size_t)want : clen * 4 + 4096;
    RETURN_ERR_IF(want != ZSTD_CONTENTSIZE_UNKNOWN && want > MAX_NODE, e, PI0_ERR_FORMAT,
                  "%s: %s: decoded size %llu beyond %u", dir, what, want, MAX_NODE);
    for (;;) {
        unsigned char *out = malloc(cap ? cap : 1);
        RETURN_ERR_IF(!out, e, PI0_ERR_NOMEM, "out of memory");
        size_t got = ZSTD_decompress(out, cap, r.p, clen);
        if (!ZSTD_isError(got)) { *body = out; *blen = got; return PI0_OK; }
        free(out);
        if (ZSTD_getErrorCode(got) != ZSTD_error_dstSize_tooSmall || want != ZSTD_CONTENTSIZE_UNKNOWN || cap >= MAX_NODE)
            return pi0_fail(e, PI0_ERR_FORMAT, "%s: %s: zstd: %s", dir, what, ZSTD_getErrorName(got));
        cap = cap * 2 > MAX_NODE ? MAX_NODE : cap * 2;
    }
#else
    return pi0_fail(e, PI0_ERR_UNSUPPORTED, "%s: %s is zstd-compressed and this build has no libzstd "
                    "(install libzstd-dev and rebuild)", dir, what);
#endif
}

/* A data file table: paths relative to the database; *base_len[i] = transitive + base path. */
typedef struct {
    int n;
    int *file;          /* index into o->files */
    char **base;        /* transitive path for children read through entry i */
} dft;

static void dft_free(dft *t) {
    for (int i = 0; i < t->n; i++) free(t->base[i]);
    free(t->base);
    free(t->file);
    memset(t, 0, sizeof *t);
}

static pi0_status read_dft(orbax_ckpt *o, rd *r, const char *transitive, dft *t, const char *what, pi0_err *e) {
    memset(t, 0, sizeof *t);
    const uint64_t n = rd_varint(r);
    RETURN_ERR_IF(r->bad || n > MAX_FILES, e, PI0_ERR_FORMAT, "%s: %s: data file table of %llu files", o->dir, what,
                  (unsigned long long)n);
    if (n == 0) return PI0_OK;
    uint64_t *len = calloc(3 * n, sizeof *len); /* prefix, suffix, base lengths */
    t->file = calloc(n, sizeof *t->file);
    t->base = calloc(n, sizeof *t->base);
    char *prev = calloc(1, MAX_PATH + 1), *cur = calloc(1, MAX_PATH + 1);
    pi0_status st = PI0_OK;
    if (!len || !t->file || !t->base || !prev || !cur) { st = pi0_fail(e, PI0_ERR_NOMEM, "out of memory"); goto done; }
    t->n = (int)n;
    for (uint64_t i = 1; i < n; i++) len[i] = rd_varint(r);
    for (uint64_t i = 0; i < n; i++) len[n + i] = rd_varint(r);
    for (uint64_t i = 0; i < n; i++) len[2 * n + i] = rd_varint(r);
    size_t prev_len = 0, tl = strlen(transitive);
    for (uint64_t i = 0; i < n && st == PI0_OK; i++) {
        const uint64_t pre = len[i], suf = len[n + i], base = len[2 * n + i];
        const unsigned char *s = rd_bytes(r, suf);
        if (r->bad || pre > prev_len || suf > MAX_PATH || pre + suf > MAX_PATH - tl || base > pre + suf) {
            st = pi0_fail(e, PI0_ERR_FORMAT, "%s: %s: data file table entry %llu is malformed", o->dir, what,
                          (unsigned long long)i);
            break;
        }
        memcpy(cur, prev, pre);
        memcpy(cur + pre, s, suf);
        cur[pre + suf] = 0;
        char full[2 * MAX_PATH + 2];
        snprintf(full, sizeof full, "%s%s", transitive, cur);
        st = file_index(o, full, &t->file[i], e);
        if (st != PI0_OK) break;
        t->base[i] = malloc(tl + base + 1);
        if (!t->base[i]) { st = pi0_fail(e, PI0_ERR_NOMEM, "out of memory"); break; }
        memcpy(t->base[i], transitive, tl);
        memcpy(t->base[i] + tl, cur, base);
        t->base[i][tl + base] = 0;
        memcpy(prev, cur, pre + suf + 1);
        prev_len = pre + suf;
    }
done:
    free(len);
    free(prev);
    free(cur);
    if (st != PI0_OK) dft_free(t);
    return st;
}

static pi0_status add_entry(orbax_ckpt *o, const char *key, size_t klen, int file, uint64_t off, uint64_t len,
                            const unsigned char *inl, pi0_err *e) {
    RETURN_ERR_IF(o->nents >= MAX_ENTRIES, e, PI0_ERR_FORMAT, "%s: more than %u keys", o->dir, MAX_ENTRIES);
    if (o->nents == o->capents) {
        size_t cap = o->capents ? 2 * o->capents : 256;
        ob_entry *ne = realloc(o->ents, cap * sizeof *ne);
        RETURN_ERR_IF(!ne, e, PI0_ERR_NOMEM, "out of memory");
        o->ents = ne;
        o->capents = cap;
    }
    ob_entry *en = &o->ents[o->nents];
    memset(en, 0, sizeof *en);
    en->key = xstrndup(key, klen);
    RETURN_ERR_IF(!en->key, e, PI0_ERR_NOMEM, "out of memory");
    en->file = file;
    en->offset = off;
    en->length = len;
    if (inl) {
        en->inl = malloc(len ? len : 1);
        if (!en->inl) { free(en->key); return pi0_fail(e, PI0_ERR_NOMEM, "out of memory"); }
        memcpy(en->inl, inl, len);
    }
    o->nents++;
    return PI0_OK;
}

/* Reads the node at (file, off, len) of the given height; prefix is the key prefix of its
 * subtree, transitive the path prefix of its data file table. */
static pi0_status read_node(orbax_ckpt *o, int file, uint64_t off, uint64_t len, unsigned height,
                            const char *prefix, size_t plen, const char *transitive, int depth, pi0_err *e) {
    char what[160];
    snprintf(what, sizeof what, "B+tree node (%.100s @%llu)", o->files[file].path, (unsigned long long)off);
    RETURN_ERR_IF(depth > MAX_HEIGHT, e, PI0_ERR_FORMAT, "%s: %s: tree deeper than %d", o->dir, what, MAX_HEIGHT);
    const unsigned char *raw;
    FORWARD_ERR(file_slice(o, file, off, len, &raw, what, e));
    RETURN_ERR_IF(++o->visits > MAX_VISITS, e, PI0_ERR_FORMAT, "%s: more than %u B+tree nodes", o->dir, MAX_VISITS);
    unsigned char *body;
    size_t blen;
    FORWARD_ERR(decode_block(o->dir, what, raw, (size_t)len, MAGIC_BTREE, &body, &blen, e));
    o->decoded += blen;
    if (o->decoded > MAX_DECODED) {
        free(body);
        return pi0_fail(e, PI0_ERR_FORMAT, "%s: B+tree nodes decode to more than %llu bytes", o->dir, MAX_DECODED);
    }
    rd r = {body, body + blen, 0};
    pi0_status st = PI0_OK;
    dft t = {0};
    uint64_t *pl = NULL, *sl = NULL, *cpl = NULL, *vlen = NULL;
    unsigned char *kind = NULL;
    char **keys = NULL;
    size_t *klen = NULL;
    uint64_t n = 0;
    const unsigned h = rd_u8(&r);
    if (r.bad || h != height) { st = pi0_fail(e, PI0_ERR_FORMAT, "%s: %s: height %u, expected %u", o->dir, what, h, height); goto done; }
    if ((st = read_dft(o, &r, transitive, &t, what, e)) != PI0_OK) goto done;
    n = rd_varint(&r);
    if (r.bad || n == 0 || n > MAX_ARITY || n > (uint64_t)(r.end - r.p)) {
        st = pi0_fail(e, PI0_ERR_FORMAT, "%s: %s: %llu entries", o->dir, what, (unsigned long long)n);
        goto done;
    }
    pl = calloc(n, sizeof *pl); sl = calloc(n, sizeof *sl); cpl = calloc(n, sizeof *cpl);
    keys = calloc(n, sizeof *keys); klen = calloc(n, sizeof *klen);
    if (!pl || !sl || !cpl || !keys || !klen) { st = pi0_fail(e, PI0_ERR_NOMEM, "out of memory"); goto done; }
    for (uint64_t i = 1; i < n; i++) pl[i] = rd_varint(&r);
    for (uint64_t i = 0; i < n; i++) sl[i] = rd_varint(&r);
    if (height > 0)
        for (uint64_t i = 0; i < n; i++) cpl[i] = rd_varint(&r);
    for (uint64_t i = 0; i < n && !r.bad; i++) {
        const size_t prev = i ? klen[i - 1] : 0;
        if (pl[i] > prev || sl[i] > MAX_KEY || pl[i] + sl[i] > MAX_KEY - plen) { r.bad = 1; break; }
        const unsigned char *s = rd_bytes(&r, sl[i]);
        if (!s) break;
        klen[i] = plen + pl[i] + sl[i];
        keys[i] = malloc(klen[i] + 1);
        if (!keys[i]) { st = pi0_fail(e, PI0_ERR_NOMEM, "out of memory"); goto done; }
        memcpy(keys[i], prefix, plen);
        if (i) memcpy(keys[i] + plen, keys[i - 1] + plen, pl[i]);
        memcpy(keys[i] + plen + pl[i], s, sl[i]);
        keys[i][klen[i]] = 0;
        if (height > 0 && cpl[i] > pl[i] + sl[i]) r.bad = 1;
    }
    if (r.bad) { st = pi0_fail(e, PI0_ERR_FORMAT, "%s: %s: malformed keys", o->dir, what); goto done; }
    if (height > 0) {
        uint64_t *fid = calloc(3 * n, sizeof *fid);
        if (!fid) { st = pi0_fail(e, PI0_ERR_NOMEM, "out of memory"); goto done; }
        for (uint64_t i = 0; i < 3 * n; i++) fid[i] = rd_varint(&r); /* ids, offsets, lengths */
        for (uint64_t i = 0; i < 3 * n; i++) rd_varint(&r);          /* statistics */
        for (uint64_t i = 0; i < n && st == PI0_OK; i++) {
            if (r.bad || fid[i] >= (uint64_t)t.n) {
                st = pi0_fail(e, PI0_ERR_FORMAT, "%s: %s: child %llu: bad data file reference", o->dir, what,
                              (unsigned long long)i);
                break;
            }
            st = read_node(o, t.file[fid[i]], fid[n + i], fid[2 * n + i], height - 1, keys[i], plen + cpl[i],
                           t.base[fid[i]], depth + 1, e);
        }
        free(fid);
        goto done;
    }
    vlen = calloc(n, sizeof *vlen);
    kind = calloc(n, 1);
    if (!vlen || !kind) { st = pi0_fail(e, PI0_ERR_NOMEM, "out of memory"); goto done; }
    uint64_t nind = 0;
    for (uint64_t i = 0; i < n; i++) vlen[i] = rd_varint(&r);
    for (uint64_t i = 0; i < n; i++) {
        kind[i] = (unsigned char)rd_u8(&r);
        if (kind[i] > 1) r.bad = 1;
        nind += kind[i];
    }
    uint64_t *ids = calloc(2 * (nind ? nind : 1), sizeof *ids);
    if (!ids) { st = pi0_fail(e, PI0_ERR_NOMEM, "out of memory"); goto done; }
    for (uint64_t k = 0; k < 2 * nind; k++) ids[k] = rd_varint(&r); /* file ids, then offsets */
    for (uint64_t i = 0, k = 0; i < n && st == PI0_OK; i++) {
        if (r.bad) break;
        if (kind[i]) {
            if (ids[k] >= (uint64_t)t.n) { r.bad = 1; break; }
            st = add_entry(o, keys[i], klen[i], t.file[ids[k]], ids[nind + k], vlen[i], NULL, e);
            k++;
        } else {
            const unsigned char *v = rd_bytes(&r, vlen[i]);
            if (!v) break;
            st = add_entry(o, keys[i], klen[i], -1, 0, vlen[i], v, e);
        }
    }
    free(ids);
    if (st == PI0_OK && r.bad) st = pi0_fail(e, PI0_ERR_FORMAT, "%s: %s: malformed values", o->dir, what);
done:
    if (keys)
        for (uint64_t i = 0; i < n; i++) free(keys[i]);
    free(keys); free(klen); free(pl); free(sl); free(cpl); free(vlen); free(kind);
    dft_free(&t);
    free(body);
    return st;
}

/* ---------------------------------------------------------------- open */

static int cmp_ent(const void *a, const void *b) {
    return strcmp(((const ob_entry *)a)->key, ((const ob_entry *)b)->key);
}
static int cmp_arr(const void *a, const void *b) {
    return strcmp(((const ob_arr *)a)->name, ((const ob_arr *)b)->name);
}

int orbax_is_checkpoint(const char *dir) {
    char p[4200];
    struct stat sb;
    snprintf(p, sizeof p, "%s/manifest.ocdbt", dir);
    return stat(p, &sb) == 0 && S_ISREG(sb.st_mode);
}

void orbax_close(orbax_ckpt *o) {
    if (!o) return;
    for (int i = 0; i < o->nfiles; i++) {
        if (o->files[i].map) munmap(o->files[i].map, o->files[i].size);
        free(o->files[i].path);
    }
    free(o->files);
    for (size_t i = 0; i < o->nents; i++) { free(o->ents[i].key); free(o->ents[i].inl); }
    free(o->ents);
    for (int i = 0; i < o->narrs; i++) free(o->arrs[i].name);
    free(o->arrs);
    free(o->dir);
    free(o);
}

static pi0_status parse_manifest(orbax_ckpt *o, const unsigned char *b, size_t n, pi0_err *e) {
    unsigned char *body;
    size_t blen;
    FORWARD_ERR(decode_block(o->dir, "manifest.ocdbt", b, n, MAGIC_MANIFEST, &body, &blen, e));
    rd r = {body, body + blen, 0};
    pi0_status st = PI0_OK;
    dft t = {0};
    rd_bytes(&r, 16); /* uuid */
    const uint64_t kind = rd_varint(&r);
    rd_varint(&r); /* max_inline_value_bytes */
    rd_varint(&r); /* max_decoded_node_bytes */
    rd_u8(&r);     /* version_tree_arity_log2 */
    const uint64_t comp = rd_varint(&r);
    if (comp == 1) rd_bytes(&r, 4); /* zstd level */
    if (r.bad || comp > 1) { st = pi0_fail(e, PI0_ERR_FORMAT, "%s: manifest.ocdbt: malformed configuration", o->dir); goto done; }
    if (kind != 0) {
        st = pi0_fail(e, PI0_ERR_UNSUPPORTED, "%s: manifest.ocdbt: the 'numbered' manifest kind is not supported "
                      "(Orbax writes the single-file kind)", o->dir);
        goto done;
    }
    if ((st = read_dft(o, &r, "", &t, "manifest.ocdbt", e)) != PI0_OK) goto done;
    const uint64_t nv = rd_varint(&r);
    if (r.bad || nv == 0 || nv > 64) {
        st = pi0_fail(e, PI0_ERR_FORMAT, "%s: manifest.ocdbt: %llu inline versions (an empty or malformed database)",
                      o->dir, (unsigned long long)nv);
        goto done;
    }
    /* columns: generation, root height (u8), file id, offset, length, 3 statistics, commit time */
    uint64_t gen = 0, fid = 0, off = 0, len = 0;
    unsigned height = 0;
    for (uint64_t i = 0; i < nv; i++) gen = rd_varint(&r);
    for (uint64_t i = 0; i < nv; i++) height = rd_u8(&r);
    for (uint64_t i = 0; i < nv; i++) fid = rd_varint(&r);
    for (uint64_t i = 0; i < nv; i++) off = rd_varint(&r);
    for (uint64_t i = 0; i < nv; i++) len = rd_varint(&r);
    for (uint64_t i = 0; i < 3 * nv; i++) rd_varint(&r);
    for (uint64_t i = 0; i < nv; i++) rd_u64le(&r);
    (void)gen;
    if (r.bad || height > MAX_HEIGHT || (len > 0 && fid >= (uint64_t)t.n)) {
        st = pi0_fail(e, PI0_ERR_FORMAT, "%s: manifest.ocdbt: malformed version entries", o->dir);
        goto done;
    }
    if (len == 0) { st = pi0_fail(e, PI0_ERR_FORMAT, "%s: the database is empty (no B+tree root)", o->dir); goto done; }
    st = read_node(o, t.file[fid], off, len, height, "", 0, t.base[fid], 0, e);
done:
    dft_free(&t);
    free(body);
    return st;
}

pi0_status orbax_open(orbax_ckpt **out, const char *dir, pi0_err *e) {
    *out = NULL;
#ifndef PI0_HAVE_ZSTD
    return pi0_fail(e, PI0_ERR_UNSUPPORTED, "%s: reading Orbax (OCDBT) checkpoints needs libzstd: this build has none "
                    "(install libzstd-dev, rebuild), or convert the checkpoint elsewhere with `pi0 convert`", dir);
#endif
    orbax_ckpt *o = calloc(1, sizeof *o);
    RETURN_ERR_IF(!o, e, PI0_ERR_NOMEM, "out of memory");
    o->dir = xstrndup(dir, strlen(dir));
    pi0_status st = o->dir ? PI0_OK : pi0_fail(e, PI0_ERR_NOMEM, "out of memory");
    char path[4200];
    snprintf(path, sizeof path, "%s/manifest.ocdbt", dir);
    char *buf = NULL;
    size_t n = 0;
    if (st == PI0_OK) st = read_file(path, 64u << 20, &buf, &n, e);
    if (st == PI0_OK) st = parse_manifest(o, (const unsigned char *)buf, n, e);
    free(buf);
    if (st == PI0_OK) {
        if (o->nents > 1) qsort(o->ents, o->nents, sizeof *o->ents, cmp_ent);
        for (size_t i = 1; i < o->nents && st == PI0_OK; i++)
            if (strcmp(o->ents[i - 1].key, o->ents[i].key) == 0)
                st = pi0_fail(e, PI0_ERR_FORMAT, "%s: key '%.200s' stored twice", dir, o->ents[i].key);
    }
    for (size_t i = 0; i < o->nents && st == PI0_OK; i++) {
        const char *k = o->ents[i].key;
        const size_t kl = strlen(k);
        if (kl <= 8 || strcmp(k + kl - 8, "/.zarray") != 0) continue;
        if (o->narrs % 256 == 0) {
            ob_arr *na = realloc(o->arrs, (size_t)(o->narrs + 256) * sizeof *na);
            if (!na) { st = pi0_fail(e, PI0_ERR_NOMEM, "out of memory"); break; }
            o->arrs = na;
        }
        o->arrs[o->narrs].name = xstrndup(k, kl - 8);
        o->arrs[o->narrs].meta = (int)i;
        if (!o->arrs[o->narrs].name) { st = pi0_fail(e, PI0_ERR_NOMEM, "out of memory"); break; }
        o->narrs++;
    }
    if (st == PI0_OK && o->narrs > 1) qsort(o->arrs, o->narrs, sizeof *o->arrs, cmp_arr);
    if (st == PI0_OK && o->narrs == 0) {
        int v3 = 0;
        for (size_t i = 0; i < o->nents && !v3; i++) {
            const size_t kl = strlen(o->ents[i].key);
            v3 = kl >= 9 && strcmp(o->ents[i].key + kl - 9, "zarr.json") == 0;
        }
        st = v3 ? pi0_fail(e, PI0_ERR_UNSUPPORTED, "%s: the arrays are zarr v3 (zarr.json: orbax's use_zarr3); pi0.c "
                           "reads zarr v2 (.zarray), as openpi's checkpoints store them", dir)
                : pi0_fail(e, PI0_ERR_FORMAT, "%s: the database holds no zarr arrays", dir);
    }
    if (st != PI0_OK) { orbax_close(o); return st; }
    *out = o;
    return PI0_OK;
}

int orbax_count(const orbax_ckpt *o) { return o ? o->narrs : 0; }
const char *orbax_name(const orbax_ckpt *o, int i) { return o && i >= 0 && i < o->narrs ? o->arrs[i].name : NULL; }

static const ob_entry *find_key(const orbax_ckpt *o, const char *key) {
    size_t lo = 0, hi = o->nents;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        int c = strcmp(o->ents[mid].key, key);
        if (!c) return &o->ents[mid];
        if (c < 0) lo = mid + 1; else hi = mid;
    }
    return NULL;
}

/* The stored bytes of an entry (inline or in a data file). */
static pi0_status entry_bytes(orbax_ckpt *o, const ob_entry *en, const unsigned char **p, pi0_err *e) {
    if (en->file < 0) { *p = en->inl; return PI0_OK; }
    return file_slice(o, en->file, en->offset, en->length, p, en->key, e);
}

pi0_status orbax_get(orbax_ckpt *o, const char *key, unsigned char **val, size_t *len, pi0_err *e) {
    *val = NULL;
    const ob_entry *en = find_key(o, key);
    RETURN_ERR_IF(!en, e, PI0_ERR_TENSOR, "%s: no key '%s'", o->dir, key);
    const unsigned char *p;
    FORWARD_ERR(entry_bytes(o, en, &p, e));
    *val = malloc(en->length ? en->length : 1);
    RETURN_ERR_IF(!*val, e, PI0_ERR_NOMEM, "out of memory");
    memcpy(*val, p, en->length);
    *len = en->length;
    return PI0_OK;
}

/* ---------------------------------------------------------------- zarr */

static int json_dim(const cJSON *j, int64_t *out) {
    if (!cJSON_IsNumber(j)) return 0;
    const double d = j->valuedouble;
    if (!(d >= 0 && d < 9007199254740992.0) || d != (double)(int64_t)d) return 0;
    *out = (int64_t)d;
    return 1;
}

typedef struct {
    orbax_array a;
    char sep;
    int zstd;
} zmeta;

static pi0_status parse_zarray(orbax_ckpt *o, const char *name, zmeta *z, pi0_err *e) {
    memset(z, 0, sizeof *z);
    char key[MAX_KEY + 16];
    snprintf(key, sizeof key, "%s/.zarray", name);
    const ob_entry *en = find_key(o, key);
    RETURN_ERR_IF(!en, e, PI0_ERR_TENSOR, "%s: missing array '%s' (no %s)", o->dir, name, key);
    const unsigned char *p;
    FORWARD_ERR(entry_bytes(o, en, &p, e));
    cJSON *j = cJSON_ParseWithLength((const char *)p, en->length);
    RETURN_ERR_IF(!j, e, PI0_ERR_FORMAT, "%s: array '%s': .zarray is not valid JSON", o->dir, name);
    pi0_status st = PI0_OK;
#define BAD(...) do { st = pi0_fail(e, PI0_ERR_FORMAT, __VA_ARGS__); goto done; } while (0)
    const cJSON *fmt = cJSON_GetObjectItemCaseSensitive(j, "zarr_format");
    const cJSON *shape = cJSON_GetObjectItemCaseSensitive(j, "shape");
    const cJSON *chunks = cJSON_GetObjectItemCaseSensitive(j, "chunks");
    const cJSON *dtype = cJSON_GetObjectItemCaseSensitive(j, "dtype");
    const cJSON *comp = cJSON_GetObjectItemCaseSensitive(j, "compressor");
    const cJSON *filters = cJSON_GetObjectItemCaseSensitive(j, "filters");
    const cJSON *order = cJSON_GetObjectItemCaseSensitive(j, "order");
    const cJSON *sep = cJSON_GetObjectItemCaseSensitive(j, "dimension_separator");
    if (!cJSON_IsNumber(fmt) || fmt->valuedouble != 2) BAD("%s: array '%s': zarr_format must be 2", o->dir, name);
    if (!cJSON_IsArray(shape) || !cJSON_IsArray(chunks) || cJSON_GetArraySize(shape) != cJSON_GetArraySize(chunks) ||
        cJSON_GetArraySize(shape) > ORBAX_MAX_DIMS)
        BAD("%s: array '%s': shape and chunks must be arrays of the same length (at most %d)", o->dir, name,
            ORBAX_MAX_DIMS);
    z->a.ndim = cJSON_GetArraySize(shape);
    for (int i = 0; i < z->a.ndim; i++)
        if (!json_dim(cJSON_GetArrayItem(shape, i), &z->a.shape[i]) ||
            !json_dim(cJSON_GetArrayItem(chunks, i), &z->a.chunks[i]) || z->a.chunks[i] == 0)
            BAD("%s: array '%s': shape/chunks[%d] is not a valid size", o->dir, name, i);
    if (!cJSON_IsString(dtype)) BAD("%s: array '%s': missing dtype", o->dir, name);
    const char *dt = dtype->valuestring;
    if (!strcmp(dt, "<f4")) z->a.dtype = DT_F32;
    else if (!strcmp(dt, "bfloat16") || !strcmp(dt, "<bf16")) z->a.dtype = DT_BF16;
    else if (!strcmp(dt, "<f2")) z->a.dtype = DT_F16;
    else if (!strcmp(dt, "<f8")) z->a.dtype = DT_F64;
    else {
        st = pi0_fail(e, PI0_ERR_UNSUPPORTED, "%s: array '%s': dtype '%.40s' is not supported (float32, bfloat16, "
                      "float16, float64 little-endian)", o->dir, name, dt);
        goto done;
    }
    if (comp && !cJSON_IsNull(comp)) {
        const cJSON *id = cJSON_GetObjectItemCaseSensitive(comp, "id");
        if (!cJSON_IsString(id) || strcmp(id->valuestring, "zstd") != 0) {
            st = pi0_fail(e, PI0_ERR_UNSUPPORTED, "%s: array '%s': compressor '%.40s' is not supported (zstd or none)",
                          o->dir, name, cJSON_IsString(id) ? id->valuestring : "?");
            goto done;
        }
        z->zstd = 1;
    }
    if (filters && !cJSON_IsNull(filters) && !(cJSON_IsArray(filters) && cJSON_GetArraySize(filters) == 0)) {
        st = pi0_fail(e, PI0_ERR_UNSUPPORTED, "%s: array '%s': zarr filters are not supported", o->dir, name);
        goto done;
    }
    if (order && !(cJSON_IsString(order) && !strcmp(order->valuestring, "C"))) {
        st = pi0_fail(e, PI0_ERR_UNSUPPORTED, "%s: array '%s': only C order is supported", o->dir, name);
        goto done;
    }
    z->sep = '.';
    if (sep) {
        if (!cJSON_IsString(sep) || (strcmp(sep->valuestring, ".") && strcmp(sep->valuestring, "/")))
            BAD("%s: array '%s': dimension_separator must be \".\" or \"/\"", o->dir, name);
        z->sep = sep->valuestring[0];
    }
    if (!pi0_shape_numel(z->a.shape, z->a.ndim, &z->a.numel) ||
        !pi0_mul_size(z->a.numel, dtype_size(z->a.dtype), &z->a.nbytes))
        BAD("%s: array '%s': shape overflows", o->dir, name);
    size_t cn;
    if (!pi0_shape_numel(z->a.chunks, z->a.ndim, &cn) || !pi0_mul_size(cn, dtype_size(z->a.dtype), &cn) ||
        cn > ((size_t)1 << 40))
        BAD("%s: array '%s': chunk shape overflows", o->dir, name);
#undef BAD
done:
    cJSON_Delete(j);
    return st;
}

pi0_status orbax_array_info(orbax_ckpt *o, const char *name, orbax_array *a, pi0_err *e) {
    zmeta z;
    FORWARD_ERR(parse_zarray(o, name, &z, e));
    *a = z.a;
    return PI0_OK;
}

/* Copies the part of a decoded chunk (origin org, full chunk shape) that lies inside the array. */
static void place_chunk(unsigned char *dst, const unsigned char *src, const orbax_array *a, const int64_t *org,
                        size_t es) {
    const int nd = a->ndim;
    if (nd == 0) { memcpy(dst, src, es); return; }
    int64_t ext[ORBAX_MAX_DIMS], idx[ORBAX_MAX_DIMS] = {0};
    for (int d = 0; d < nd; d++) {
        ext[d] = a->shape[d] - org[d];
        if (ext[d] > a->chunks[d]) ext[d] = a->chunks[d];
    }
    const size_t row = (size_t)ext[nd - 1] * es;
    for (;;) {
        size_t so = 0, dof = 0;
        for (int d = 0; d < nd - 1; d++) {
            so = so * (size_t)a->chunks[d] + (size_t)idx[d];
            dof = dof * (size_t)a->shape[d] + (size_t)(org[d] + idx[d]);
        }
        so = so * (size_t)a->chunks[nd - 1];
        dof = dof * (size_t)a->shape[nd - 1] + (size_t)org[nd - 1];
        memcpy(dst + dof * es, src + so * es, row);
        int d = nd - 2;
        for (; d >= 0; d--) {
            if (++idx[d] < ext[d]) break;
            idx[d] = 0;
        }
        if (d < 0) break;
    }
}

pi0_status orbax_array_read(orbax_ckpt *o, const char *name, void *dst, size_t nbytes, pi0_err *e) {
    zmeta z;
    FORWARD_ERR(parse_zarray(o, name, &z, e));
    const orbax_array *a = &z.a;
    RETURN_ERR_IF(nbytes != a->nbytes, e, PI0_ERR_ARG, "%s: array '%s': %zu bytes asked, it holds %zu", o->dir, name,
                  nbytes, a->nbytes);
    if (a->numel == 0) return PI0_OK;
    const size_t es = dtype_size(a->dtype);
    size_t cbytes = es;
    for (int d = 0; d < a->ndim; d++) cbytes *= (size_t)a->chunks[d]; /* checked in parse_zarray */
    /* zarr lets a chunk overhang the array; a small array with a huge chunk is refused rather
     * than allocated (the chunk buffer stays within the array's size, or 64 MiB) */
    RETURN_ERR_IF(cbytes > a->nbytes && cbytes > ((size_t)64 << 20), e, PI0_ERR_FORMAT,
                  "%s: array '%s': %zu-byte chunks for a %zu-byte array", o->dir, name, cbytes, a->nbytes);
    int64_t grid[ORBAX_MAX_DIMS], ci[ORBAX_MAX_DIMS] = {0};
    for (int d = 0; d < a->ndim; d++) grid[d] = (a->shape[d] + a->chunks[d] - 1) / a->chunks[d];
    /* A chunk covering the whole array decodes in place; others go through a chunk buffer. */
    int whole = 1;
    for (int d = 0; d < a->ndim; d++) whole &= a->chunks[d] == a->shape[d];
    unsigned char *buf = whole ? NULL : malloc(cbytes);
    RETURN_ERR_IF(!whole && !buf, e, PI0_ERR_NOMEM, "%s: array '%s': out of memory for a %zu-byte chunk", o->dir,
                  name, cbytes);
    pi0_status st = PI0_OK;
    for (;;) {
        char key[MAX_KEY + 256];
        int kl = snprintf(key, sizeof key, "%s/", name);
        if (a->ndim == 0) kl += snprintf(key + kl, sizeof key - kl, "0");
        for (int d = 0; d < a->ndim; d++)
            kl += snprintf(key + kl, sizeof key - kl, "%s%lld", d ? (z.sep == '/' ? "/" : ".") : "", (long long)ci[d]);
        const char *cname = key + strlen(name) + 1;
        const ob_entry *en = find_key(o, key);
        if (!en) { st = pi0_fail(e, PI0_ERR_TENSOR, "%s: array '%s': chunk %s is missing", o->dir, name, cname); break; }
        const unsigned char *p;
        if ((st = entry_bytes(o, en, &p, e)) != PI0_OK) break;
        unsigned char *out = whole ? dst : buf;
        if (!z.zstd) {
            if (en->length != cbytes) {
                st = pi0_fail(e, PI0_ERR_FORMAT, "%s: array '%s': chunk %s holds %llu bytes, expected %zu", o->dir, name,
                              cname, (unsigned long long)en->length, cbytes);
                break;
            }
            memcpy(out, p, cbytes);
        } else {
#ifdef PI0_HAVE_ZSTD
            const unsigned long long fs = ZSTD_getFrameContentSize(p, en->length);
            if (fs != ZSTD_CONTENTSIZE_UNKNOWN && fs != cbytes) {
                st = pi0_fail(e, PI0_ERR_FORMAT, "%s: array '%s': chunk %s %s (%llu bytes stored)", o->dir, name, cname,
                              fs == ZSTD_CONTENTSIZE_ERROR ? "is not a complete zstd frame (truncated or corrupted?)"
                                                           : "decodes to the wrong size",
                              (unsigned long long)en->length);
                break;
            }
            const size_t got = ZSTD_decompress(out, cbytes, p, en->length);
            if (ZSTD_isError(got) || got != cbytes) {
                st = pi0_fail(e, PI0_ERR_FORMAT, "%s: array '%s': chunk %s: zstd: %s", o->dir, name, cname,
                              ZSTD_isError(got) ? ZSTD_getErrorName(got) : "short output (truncated?)");
                break;
            }
#else
            st = pi0_fail(e, PI0_ERR_UNSUPPORTED, "%s: array '%s' is zstd-compressed; this build has no libzstd", o->dir,
                          name);
            break;
#endif
        }
        file_release(o, en);
        if (!whole) {
            int64_t org[ORBAX_MAX_DIMS];
            for (int d = 0; d < a->ndim; d++) org[d] = ci[d] * a->chunks[d];
            place_chunk(dst, buf, a, org, es);
        }
        int d = a->ndim - 1;
        for (; d >= 0; d--) {
            if (++ci[d] < grid[d]) break;
            ci[d] = 0;
        }
        if (d < 0) break;
    }
    free(buf);
    return st;
}
