/* safetensors.c — see safetensors.h. JSON is parsed with cJSON (Debian libcjson). */
#include "safetensors.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#define ST_MAX_HEADER (256u << 20) /* a header beyond 256 MiB is not a real checkpoint */

static char *xstrdup(const char *s) {
    size_t n = strlen(s) + 1;
    char *d = malloc(n);
    if (d) memcpy(d, s, n);
    return d;
}

void st_close(st_file *f) {
    if (!f) return;
    for (int i = 0; i < f->count; i++) free(f->tensors[i].name);
    free(f->tensors);
    if (f->map) munmap(f->map, f->size);
    free(f->path);
    memset(f, 0, sizeof *f);
}

/* A JSON number that is an exact non-negative integer below 2^53. */
static int json_uint(const cJSON *j, uint64_t *out) {
    if (!cJSON_IsNumber(j)) return 0;
    double d = j->valuedouble;
    if (!(d >= 0 && d < 9007199254740992.0) || d != (double)(uint64_t)d) return 0;
    *out = (uint64_t)d;
    return 1;
}

static int cmp_name(const void *a, const void *b) {
    return strcmp(((const st_tensor *)a)->name, ((const st_tensor *)b)->name);
}

typedef struct { uint64_t begin, end; int idx; } st_range;

static int cmp_range(const void *a, const void *b) {
    const st_range *x = a, *y = b;
    if (x->begin != y->begin) return x->begin < y->begin ? -1 : 1;
    return x->end < y->end ? -1 : x->end > y->end;
}

/* Parses one header entry into t; offsets are relative to the data area of size data_size. */
static pi0_status parse_entry(const char *path, const cJSON *item, uint64_t data_size,
                              st_tensor *t, uint64_t *begin, uint64_t *end, pi0_err *e) {
    const char *nm = item->string;
    RETURN_ERR_IF(!cJSON_IsObject(item), e, PI0_ERR_FORMAT,
                  "%s: tensor '%s': header entry is not an object", path, nm);
    const cJSON *dt = cJSON_GetObjectItemCaseSensitive(item, "dtype");
    const cJSON *sh = cJSON_GetObjectItemCaseSensitive(item, "shape");
    const cJSON *off = cJSON_GetObjectItemCaseSensitive(item, "data_offsets");
    RETURN_ERR_IF(!cJSON_IsString(dt), e, PI0_ERR_FORMAT, "%s: tensor '%s': missing dtype", path, nm);
    RETURN_ERR_IF(!dtype_from_name(dt->valuestring, &t->dtype), e, PI0_ERR_FORMAT,
                  "%s: tensor '%s': unknown dtype '%s'", path, nm, dt->valuestring);
    RETURN_ERR_IF(!cJSON_IsArray(sh), e, PI0_ERR_FORMAT, "%s: tensor '%s': missing shape", path, nm);
    int nd = cJSON_GetArraySize(sh);
    RETURN_ERR_IF(nd > ST_MAX_DIMS, e, PI0_ERR_FORMAT, "%s: tensor '%s': %d dimensions (max %d)",
                  path, nm, nd, ST_MAX_DIMS);
    t->ndim = nd;
    for (int i = 0; i < nd; i++) {
        uint64_t d;
        RETURN_ERR_IF(!json_uint(cJSON_GetArrayItem(sh, i), &d), e, PI0_ERR_FORMAT,
                      "%s: tensor '%s': shape[%d] is not a non-negative integer", path, nm, i);
        t->shape[i] = (int64_t)d; /* below 2^53 */
    }
    size_t numel, nbytes;
    RETURN_ERR_IF(!pi0_shape_numel(t->shape, nd, &numel) || !pi0_mul_size(numel, dtype_size(t->dtype), &nbytes),
                  e, PI0_ERR_FORMAT, "%s: tensor '%s': shape overflows", path, nm);
    RETURN_ERR_IF(!cJSON_IsArray(off) || cJSON_GetArraySize(off) != 2 ||
                      !json_uint(cJSON_GetArrayItem(off, 0), begin) ||
                      !json_uint(cJSON_GetArrayItem(off, 1), end),
                  e, PI0_ERR_FORMAT, "%s: tensor '%s': data_offsets must be [begin, end]", path, nm);
    RETURN_ERR_IF(*begin > *end, e, PI0_ERR_FORMAT, "%s: tensor '%s': data_offsets [%llu, %llu) reversed",
                  path, nm, (unsigned long long)*begin, (unsigned long long)*end);
    RETURN_ERR_IF(*end > data_size, e, PI0_ERR_FORMAT,
                  "%s: tensor '%s': data_offsets [%llu, %llu) past the end of the data area "
                  "(%llu bytes; file truncated?)", path, nm, (unsigned long long)*begin,
                  (unsigned long long)*end, (unsigned long long)data_size);
    RETURN_ERR_IF(nbytes != *end - *begin, e, PI0_ERR_FORMAT,
                  "%s: tensor '%s': %s shape needs %llu bytes but data_offsets span %llu", path, nm,
                  dtype_name(t->dtype), (unsigned long long)nbytes,
                  (unsigned long long)(*end - *begin));
    t->numel = numel;
    t->nbytes = nbytes;
    t->name = xstrdup(nm);
    RETURN_ERR_IF(!t->name, e, PI0_ERR_NOMEM, "%s: out of memory", path);
    return PI0_OK;
}

static pi0_status parse_header(st_file *f, const char *json, size_t len, const unsigned char *data,
                               uint64_t data_size, pi0_err *e) {
    const char *path = f->path;
    cJSON *root = cJSON_ParseWithLength(json, len);
    RETURN_ERR_IF(!root, e, PI0_ERR_FORMAT, "%s: header is not valid JSON", path);
    pi0_status st = PI0_OK;
    st_range *ranges = NULL;
    if (!cJSON_IsObject(root)) {
        st = pi0_fail(e, PI0_ERR_FORMAT, "%s: header is not a JSON object", path);
        goto done;
    }
    int n = 0;
    for (const cJSON *it = root->child; it; it = it->next)
        if (strcmp(it->string, "__metadata__") != 0) n++;
    f->tensors = calloc(n ? n : 1, sizeof *f->tensors);
    ranges = calloc(n ? n : 1, sizeof *ranges);
    if (!f->tensors || !ranges) {
        st = pi0_fail(e, PI0_ERR_NOMEM, "%s: out of memory", path);
        goto done;
    }
    for (const cJSON *it = root->child; it; it = it->next) {
        if (strcmp(it->string, "__metadata__") == 0) {
            if (!cJSON_IsObject(it)) {
                st = pi0_fail(e, PI0_ERR_FORMAT, "%s: __metadata__ is not an object", path);
                goto done;
            }
            continue;
        }
        st_tensor *t = &f->tensors[f->count];
        st_range *r = &ranges[f->count];
        st = parse_entry(path, it, data_size, t, &r->begin, &r->end, e);
        if (st != PI0_OK) {
            free(t->name);
            t->name = NULL;
            goto done;
        }
        r->idx = f->count++;
        t->data = data + r->begin;
    }
    /* Byte ranges must not overlap (zero-length ranges occupy nothing). */
    qsort(ranges, f->count, sizeof *ranges, cmp_range);
    uint64_t covered = 0;
    int last = -1;
    for (int i = 0; i < f->count; i++) {
        if (ranges[i].begin == ranges[i].end) continue;
        if (last >= 0 && ranges[i].begin < covered) {
            st = pi0_fail(e, PI0_ERR_FORMAT, "%s: tensors '%s' and '%s' overlap in the data area",
                          path, f->tensors[ranges[last].idx].name, f->tensors[ranges[i].idx].name);
            goto done;
        }
        covered = ranges[i].end;
        last = i;
    }
    qsort(f->tensors, f->count, sizeof *f->tensors, cmp_name);
    for (int i = 1; i < f->count; i++)
        if (strcmp(f->tensors[i - 1].name, f->tensors[i].name) == 0) {
            st = pi0_fail(e, PI0_ERR_FORMAT, "%s: tensor '%s' appears twice", path, f->tensors[i].name);
            goto done;
        }
done:
    free(ranges);
    cJSON_Delete(root);
    return st;
}

pi0_status st_open(st_file *f, const char *path, pi0_err *e) {
    memset(f, 0, sizeof *f);
    int fd = open(path, O_RDONLY);
    RETURN_ERR_IF(fd < 0, e, PI0_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    struct stat sb;
    if (fstat(fd, &sb) != 0 || !S_ISREG(sb.st_mode)) {
        close(fd);
        return pi0_fail(e, PI0_ERR_IO, "%s: not a regular file", path);
    }
    size_t size = (size_t)sb.st_size;
    if (size < 8) {
        close(fd);
        return pi0_fail(e, PI0_ERR_FORMAT, "%s: %zu bytes, too short for a safetensors header",
                        path, size);
    }
    void *map = mmap(NULL, size, PROT_READ, MAP_PRIVATE, fd, 0);
    close(fd);
    RETURN_ERR_IF(map == MAP_FAILED, e, PI0_ERR_IO, "%s: mmap failed: %s", path, strerror(errno));
    f->map = map;
    f->size = size;
    f->path = xstrdup(path);
    if (!f->path) { st_close(f); return pi0_fail(e, PI0_ERR_NOMEM, "out of memory"); }

    const unsigned char *p = map;
    uint64_t hlen = 0;
    for (int i = 7; i >= 0; i--) hlen = hlen << 8 | p[i];
    if (hlen > size - 8 || hlen > ST_MAX_HEADER) {
        pi0_status st = pi0_fail(e, PI0_ERR_FORMAT,
                                 "%s: header length %llu runs past the end of the file (%zu bytes)",
                                 path, (unsigned long long)hlen, size);
        st_close(f);
        return st;
    }
    pi0_status st = parse_header(f, (const char *)p + 8, (size_t)hlen, p + 8 + hlen,
                                 size - 8 - hlen, e);
    if (st != PI0_OK) st_close(f);
    return st;
}

const st_tensor *st_find(const st_file *f, const char *name) {
    int lo = 0, hi = f->count - 1;
    while (lo <= hi) {
        int mid = (lo + hi) / 2, c = strcmp(name, f->tensors[mid].name);
        if (c == 0) return &f->tensors[mid];
        if (c < 0) hi = mid - 1; else lo = mid + 1;
    }
    return NULL;
}

/* ---------------------------------------------------------------- writer */

struct st_writer {
    FILE *fp;
    char *final_path, *tmp_path;
    uint64_t expected, written;
};

size_t st_decl_nbytes(const st_decl *d) {
    size_t n = dtype_size(d->dtype);
    for (int i = 0; i < d->ndim; i++) n *= (size_t)d->shape[i];
    return n;
}

void st_writer_abort(st_writer *w) {
    if (!w) return;
    if (w->fp) fclose(w->fp);
    if (w->tmp_path) remove(w->tmp_path);
    free(w->tmp_path);
    free(w->final_path);
    free(w);
}

pi0_status st_writer_open(st_writer **out, const char *path, const st_decl *decls, int n, pi0_err *e) {
    *out = NULL;
    st_writer *w = calloc(1, sizeof *w);
    cJSON *root = cJSON_CreateObject();
    char *json = NULL;
    pi0_status st = PI0_OK;
    if (!w || !root) { st = pi0_fail(e, PI0_ERR_NOMEM, "out of memory"); goto fail; }
    uint64_t off = 0;
    for (int i = 0; i < n; i++) {
        cJSON *t = cJSON_AddObjectToObject(root, decls[i].name);
        cJSON *sh = t ? cJSON_AddArrayToObject(t, "shape") : NULL;
        cJSON *of = t ? cJSON_AddArrayToObject(t, "data_offsets") : NULL;
        if (!sh || !of || !cJSON_AddStringToObject(t, "dtype", dtype_name(decls[i].dtype))) {
            st = pi0_fail(e, PI0_ERR_NOMEM, "out of memory");
            goto fail;
        }
        for (int d = 0; d < decls[i].ndim; d++)
            cJSON_AddItemToArray(sh, cJSON_CreateNumber((double)decls[i].shape[d]));
        uint64_t nb = st_decl_nbytes(&decls[i]);
        cJSON_AddItemToArray(of, cJSON_CreateNumber((double)off));
        cJSON_AddItemToArray(of, cJSON_CreateNumber((double)(off + nb)));
        off += nb;
    }
    json = cJSON_PrintUnformatted(root);
    if (!json) { st = pi0_fail(e, PI0_ERR_NOMEM, "out of memory"); goto fail; }
    size_t jl = strlen(json), padded = (jl + 7) / 8 * 8;
    w->expected = off;
    w->final_path = xstrdup(path);
    w->tmp_path = malloc(strlen(path) + 5);
    if (!w->final_path || !w->tmp_path) { st = pi0_fail(e, PI0_ERR_NOMEM, "out of memory"); goto fail; }
    sprintf(w->tmp_path, "%s.tmp", path);
    w->fp = fopen(w->tmp_path, "wb");
    if (!w->fp) { st = pi0_fail(e, PI0_ERR_IO, "%s: cannot create: %s", w->tmp_path, strerror(errno)); goto fail; }
    unsigned char len8[8];
    for (int i = 0; i < 8; i++) len8[i] = (unsigned char)((uint64_t)padded >> (8 * i));
    int ok = fwrite(len8, 1, 8, w->fp) == 8 && fwrite(json, 1, jl, w->fp) == jl;
    for (size_t i = jl; ok && i < padded; i++) ok = fputc(' ', w->fp) != EOF;
    if (!ok) { st = pi0_fail(e, PI0_ERR_IO, "%s: write failed", w->tmp_path); goto fail; }
    cJSON_free(json);
    cJSON_Delete(root);
    *out = w;
    return PI0_OK;
fail:
    cJSON_free(json);
    cJSON_Delete(root);
    st_writer_abort(w);
    return st;
}

pi0_status st_writer_write(st_writer *w, const void *data, size_t nbytes, pi0_err *e) {
    RETURN_ERR_IF(w->written + nbytes > w->expected, e, PI0_ERR_ARG,
                  "%s: more data written than declared", w->final_path);
    RETURN_ERR_IF(nbytes && fwrite(data, 1, nbytes, w->fp) != nbytes, e, PI0_ERR_IO,
                  "%s: write failed: %s", w->tmp_path, strerror(errno));
    w->written += nbytes;
    return PI0_OK;
}

pi0_status st_writer_finish(st_writer *w, pi0_err *e) {
    pi0_status st = PI0_OK;
    if (w->written != w->expected)
        st = pi0_fail(e, PI0_ERR_ARG, "%s: %llu bytes written, %llu declared", w->final_path,
                      (unsigned long long)w->written, (unsigned long long)w->expected);
    else if (fclose(w->fp) != 0)
        st = pi0_fail(e, PI0_ERR_IO, "%s: write failed: %s", w->tmp_path, strerror(errno));
    else {
        w->fp = NULL;
        if (rename(w->tmp_path, w->final_path) != 0)
            st = pi0_fail(e, PI0_ERR_IO, "%s: rename failed: %s", w->final_path, strerror(errno));
    }
    st_writer_abort(w);  /* frees; the temp file is gone after a successful rename */
    return st;
}

pi0_status st_write_file(const char *path, const st_decl *decls, const void *const *data, int n,
                         pi0_err *e) {
    st_writer *w;
    FORWARD_ERR(st_writer_open(&w, path, decls, n, e));
    for (int i = 0; i < n; i++) {
        pi0_status st = st_writer_write(w, data[i], st_decl_nbytes(&decls[i]), e);
        if (st != PI0_OK) { st_writer_abort(w); return st; }
    }
    return st_writer_finish(w, e);
}
