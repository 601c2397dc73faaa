/* tokenizer.c — the PaliGemma / Gemma tokenizer: SentencePiece-style BPE with byte fallback.
 *
 * Two sources, two merge orders, one algorithm:
 *  - Hugging Face tokenizer.json (model.type "BPE"): added tokens are split out of the raw text
 *    first (longest match, left to right), the normalizer turns ' ' into '▁', and adjacent
 *    symbols are merged by merge-list rank (lowest first, leftmost on ties);
 *  - SentencePiece tokenizer.model (protobuf ModelProto, model_type BPE): the text is normalized
 *    (extra-whitespace removal, dummy prefix, '▁' escaping as the NormalizerSpec says), then
 *    adjacent symbols merge when their concatenation is a vocabulary piece, highest piece score
 *    first, leftmost on ties; user-defined pieces are atomic.
 * Symbols that end up outside the vocabulary become <0xXX> byte pieces (byte fallback), or
 * <unk>.
 *
 * Written by hand because no Debian C library reads tokenizer.json, and libsentencepiece is C++
 * (the .model protobuf is simple enough to decode directly: see parse_model_proto). */
#include <cjson/cJSON.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>

#include "../common.h"
#include "prompt.h"

enum { PIECE_NORMAL = 1, PIECE_UNKNOWN = 2, PIECE_CONTROL = 3, PIECE_USER = 4, PIECE_UNUSED = 5,
       PIECE_BYTE = 6 };

typedef struct {
    char *str;
    int len;
    float score;
    int type;
} piece;

/* Open-addressing hash map, keys are either byte strings (vocab) or 64-bit pairs (merges). */
typedef struct {
    uint64_t *keys;   /* pair keys, or hash of the string (for quick rejection) */
    int32_t *vals;    /* piece id / rank; -1 = empty slot */
    int32_t *extra;   /* merges: id of the merged piece */
    size_t cap;       /* power of two */
} hmap;

struct pi0_tokenizer {
    int from_json;
    piece *pieces;
    int n_pieces;
    hmap vocab;        /* piece string -> id */
    hmap merges;       /* (left id, right id) -> rank (json mode) */
    int byte_id[256];  /* id of <0xXX>, -1 when absent */
    int unk_id, bos_id, eos_id, pad_id;
    int *added;        /* json: added-token ids (split before normalization); spm: user-defined */
    int n_added;
    int max_added_len;
    int *added_by_byte;     /* `added` grouped by first byte (load order kept within a group): */
    int added_first[257];   /* the group of byte c is added_by_byte[added_first[c] .. added_first[c+1]) */
    /* SentencePiece normalizer flags */
    int add_dummy_prefix, remove_extra_ws, escape_ws;
    pi0_err err;
};

/* ---------------------------------------------------------------- hashing */

static uint64_t fnv1a(const char *s, int n) {
    uint64_t h = 1469598103934665603ull;
    for (int i = 0; i < n; i++) h = (h ^ (unsigned char)s[i]) * 1099511628211ull;
    return h;
}

static uint64_t mix64(uint64_t x) {
    x ^= x >> 33; x *= 0xff51afd7ed558ccdull; x ^= x >> 33; x *= 0xc4ceb9fe1a85ec53ull;
    return x ^ (x >> 33);
}

static int hmap_init(hmap *m, size_t n, int with_extra) {
    size_t cap = 16;
    while (cap < 2 * n + 16) cap <<= 1;
    m->cap = cap;
    m->keys = calloc(cap, sizeof *m->keys);
    m->vals = malloc(cap * sizeof *m->vals);
    m->extra = with_extra ? malloc(cap * sizeof *m->extra) : NULL;
    if (!m->keys || !m->vals || (with_extra && !m->extra)) return 0;
    for (size_t i = 0; i < cap; i++) m->vals[i] = -1;
    return 1;
}

static void hmap_free(hmap *m) {
    free(m->keys);
    free(m->vals);
    free(m->extra);
    memset(m, 0, sizeof *m);
}

/* Vocab lookup: piece id of bytes s[0..n), or -1. */
static int vocab_find(const pi0_tokenizer *t, const char *s, int n) {
    const hmap *m = &t->vocab;
    uint64_t h = fnv1a(s, n);
    for (size_t i = h & (m->cap - 1);; i = (i + 1) & (m->cap - 1)) {
        int id = m->vals[i];
        if (id < 0) return -1;
        if (m->keys[i] == h && t->pieces[id].len == n && memcmp(t->pieces[id].str, s, n) == 0)
            return id;
    }
}

/* Inserts piece id unless its string is present already (first occurrence wins). */
static void vocab_insert(pi0_tokenizer *t, int id) {
    hmap *m = &t->vocab;
    const piece *p = &t->pieces[id];
    if (vocab_find(t, p->str, p->len) >= 0) return;
    uint64_t h = fnv1a(p->str, p->len);
    size_t i = h & (m->cap - 1);
    while (m->vals[i] >= 0) i = (i + 1) & (m->cap - 1);
    m->keys[i] = h;
    m->vals[i] = id;
}

static uint64_t pair_key(int a, int b) { return ((uint64_t)(uint32_t)a << 32 | (uint32_t)b) + 1; }

static int merge_find(const hmap *m, int a, int b, int *merged) {
    uint64_t k = pair_key(a, b);
    for (size_t i = mix64(k) & (m->cap - 1);; i = (i + 1) & (m->cap - 1)) {
        if (m->vals[i] < 0) return -1;
        if (m->keys[i] == k) { *merged = m->extra[i]; return m->vals[i]; }
    }
}

static void merge_insert(hmap *m, int a, int b, int rank, int merged) {
    uint64_t k = pair_key(a, b);
    size_t i = mix64(k) & (m->cap - 1);
    for (; m->vals[i] >= 0; i = (i + 1) & (m->cap - 1))
        if (m->keys[i] == k) return; /* keep the first (lowest) rank */
    m->keys[i] = k;
    m->vals[i] = rank;
    m->extra[i] = merged;
}

/* ---------------------------------------------------------------- lifecycle */

pi0_tokenizer *pi0_tokenizer_create(void) { return calloc(1, sizeof(pi0_tokenizer)); }

static void tokenizer_clear(pi0_tokenizer *t) {
    for (int i = 0; i < t->n_pieces; i++) free(t->pieces[i].str);
    free(t->pieces);
    free(t->added);
    free(t->added_by_byte);
    hmap_free(&t->vocab);
    hmap_free(&t->merges);
    pi0_err keep = t->err;
    memset(t, 0, sizeof *t);
    t->err = keep;
}

void pi0_tokenizer_free(pi0_tokenizer *t) {
    if (!t) return;
    tokenizer_clear(t);
    free(t);
}

const char *pi0_tokenizer_error(const pi0_tokenizer *t) { return t ? t->err.msg : "no tokenizer handle"; }
int pi0_tokenizer_vocab_size(const pi0_tokenizer *t) { return t ? t->n_pieces : 0; }

/* Finishes loading: vocab map, byte pieces, special ids, added-token order. */
static pi0_status tokenizer_index(pi0_tokenizer *t, const char *path) {
    RETURN_ERR_IF(!hmap_init(&t->vocab, t->n_pieces, 0), &t->err, PI0_ERR_NOMEM, "out of memory");
    for (int i = 0; i < t->n_pieces; i++)
        if (t->pieces[i].str) vocab_insert(t, i);
    for (int b = 0; b < 256; b++) {
        char name[8];
        snprintf(name, sizeof name, "<0x%02X>", b);
        t->byte_id[b] = vocab_find(t, name, 6);
    }
    t->unk_id = vocab_find(t, "<unk>", 5);
    t->bos_id = vocab_find(t, "<bos>", 5);
    if (t->bos_id < 0) t->bos_id = vocab_find(t, "<s>", 3);
    t->eos_id = vocab_find(t, "<eos>", 5);
    if (t->eos_id < 0) t->eos_id = vocab_find(t, "</s>", 4);
    t->pad_id = vocab_find(t, "<pad>", 5);
    RETURN_ERR_IF(t->n_pieces == 0, &t->err, PI0_ERR_FORMAT, "%s: empty vocabulary", path);
    t->max_added_len = 0;
    for (int i = 0; i < t->n_added; i++)
        if (t->pieces[t->added[i]].len > t->max_added_len) t->max_added_len = t->pieces[t->added[i]].len;
    return PI0_OK;
}

static char *dup_bytes(const char *s, size_t n) {
    char *d = malloc(n + 1);
    if (d) { memcpy(d, s, n); d[n] = 0; }
    return d;
}

/* ---------------------------------------------------------------- tokenizer.json */

static pi0_status load_json(pi0_tokenizer *t, const char *path, const char *text, size_t len) {
    pi0_err *e = &t->err;
    cJSON *root = cJSON_ParseWithLength(text, len);
    RETURN_ERR_IF(!root, e, PI0_ERR_FORMAT, "%s: not valid JSON", path);
    pi0_status st = PI0_OK;
    const cJSON *model = cJSON_GetObjectItemCaseSensitive(root, "model");
    const cJSON *type = cJSON_GetObjectItemCaseSensitive(model, "type");
    const cJSON *vocab = cJSON_GetObjectItemCaseSensitive(model, "vocab");
    const cJSON *merges = cJSON_GetObjectItemCaseSensitive(model, "merges");
    const cJSON *added = cJSON_GetObjectItemCaseSensitive(root, "added_tokens");
    if (!cJSON_IsString(type) || strcmp(type->valuestring, "BPE") != 0 || !cJSON_IsObject(vocab) ||
        !cJSON_IsArray(merges)) {
        st = pi0_fail(e, PI0_ERR_FORMAT, "%s: expected a BPE model with vocab and merges", path);
        goto done;
    }
    if (added && !cJSON_IsArray(added)) {
        st = pi0_fail(e, PI0_ERR_FORMAT, "%s: added_tokens is not an array", path);
        goto done;
    }
    /* Every id indexes the piece table, so every id is bounded by the file's own vocabulary
     * size: the number of entries it declares (vocab + added_tokens; a valid file numbers them
     * 0..n-1, added tokens usually repeating vocab ids). The table is then at most one piece
     * per entry in the file, whatever numbers it holds. */
    const int n_vocab = cJSON_GetArraySize(vocab), n_added_entries = added ? cJSON_GetArraySize(added) : 0;
    long long n_ids = (long long)n_vocab + n_added_entries;
    if (n_ids > INT_MAX) n_ids = INT_MAX;
    int max_id = -1, k = 0;
    for (const cJSON *v = vocab->child; v; v = v->next) {
        if (!cJSON_IsNumber(v) || !(v->valuedouble >= 0 && v->valuedouble < (double)n_ids) ||
            v->valuedouble != (double)(int)v->valuedouble) {
            st = pi0_fail(e, PI0_ERR_FORMAT, "%s: vocab entry '%.64s': the id must be an integer in [0, %lld), "
                          "the file's vocabulary size", path, v->string, n_ids);
            goto done;
        }
        if (v->valueint > max_id) max_id = v->valueint;
    }
    for (const cJSON *a = added ? added->child : NULL; a; a = a->next, k++) {
        const cJSON *id = cJSON_GetObjectItemCaseSensitive(a, "id");
        const cJSON *content = cJSON_GetObjectItemCaseSensitive(a, "content");
        if (!cJSON_IsNumber(id) || !(id->valuedouble >= 0 && id->valuedouble < (double)n_ids) ||
            id->valuedouble != (double)(int)id->valuedouble || !cJSON_IsString(content)) {
            st = pi0_fail(e, PI0_ERR_FORMAT, "%s: added_tokens[%d] needs a string content and an integer id in "
                          "[0, %lld), the file's vocabulary size", path, k, n_ids);
            goto done;
        }
        if (id->valueint > max_id) max_id = id->valueint;
    }
    t->n_pieces = max_id + 1;
    t->pieces = calloc(t->n_pieces ? t->n_pieces : 1, sizeof *t->pieces);
    t->added = calloc((size_t)n_added_entries + 1, sizeof *t->added);
    if (!t->pieces || !t->added) { st = pi0_fail(e, PI0_ERR_NOMEM, "out of memory"); goto done; }
    for (const cJSON *v = vocab->child; v; v = v->next) {
        piece *p = &t->pieces[v->valueint];
        if (p->str) continue;
        p->len = (int)strlen(v->string);
        p->str = dup_bytes(v->string, p->len);
        p->type = PIECE_NORMAL;
        if (!p->str) { st = pi0_fail(e, PI0_ERR_NOMEM, "out of memory"); goto done; }
    }
    for (const cJSON *a = added ? added->child : NULL; a; a = a->next) {
        const cJSON *id = cJSON_GetObjectItemCaseSensitive(a, "id");
        const cJSON *content = cJSON_GetObjectItemCaseSensitive(a, "content");
        const cJSON *special = cJSON_GetObjectItemCaseSensitive(a, "special");
        piece *p = &t->pieces[id->valueint]; /* id and content checked above */
        if (!p->str) {
            p->len = (int)strlen(content->valuestring);
            p->str = dup_bytes(content->valuestring, p->len);
            if (!p->str) { st = pi0_fail(e, PI0_ERR_NOMEM, "out of memory"); goto done; }
        }
        p->type = cJSON_IsTrue(special) ? PIECE_CONTROL : PIECE_USER;
        if (p->len > 0) t->added[t->n_added++] = id->valueint;
    }
    if ((st = tokenizer_index(t, path)) != PI0_OK) goto done;
    int n_merges = cJSON_GetArraySize(merges);
    if (!hmap_init(&t->merges, n_merges, 1)) { st = pi0_fail(e, PI0_ERR_NOMEM, "out of memory"); goto done; }
    int rank = 0;
    char buf[1024];
    for (const cJSON *m = merges->child; m; m = m->next, rank++) {
        const char *l, *r;
        int ll, rl;
        if (cJSON_IsString(m)) { /* "left right" */
            const char *s = m->valuestring, *sp = strchr(s, ' ');
            if (!sp) continue;
            l = s; ll = (int)(sp - s); r = sp + 1; rl = (int)strlen(r);
        } else if (cJSON_IsArray(m) && cJSON_GetArraySize(m) == 2 &&
                   cJSON_IsString(m->child) && cJSON_IsString(m->child->next)) { /* ["left","right"] */
            l = m->child->valuestring; ll = (int)strlen(l);
            r = m->child->next->valuestring; rl = (int)strlen(r);
        } else {
            st = pi0_fail(e, PI0_ERR_FORMAT, "%s: merge #%d is neither \"a b\" nor [\"a\", \"b\"]", path, rank);
            goto done;
        }
        int a = vocab_find(t, l, ll), b = vocab_find(t, r, rl);
        if (a < 0 || b < 0 || ll + rl > (int)sizeof buf) continue;
        memcpy(buf, l, ll);
        memcpy(buf + ll, r, rl);
        int merged = vocab_find(t, buf, ll + rl);
        if (merged >= 0) merge_insert(&t->merges, a, b, rank, merged);
    }
    t->from_json = 1;
done:
    cJSON_Delete(root);
    return st;
}

/* ---------------------------------------------------------------- tokenizer.model (protobuf) */

typedef struct {
    const unsigned char *p, *end;
    int bad;
} pb;

static uint64_t pb_varint(pb *b) {
    uint64_t v = 0;
    for (int shift = 0; shift < 64; shift += 7) {
        if (b->p >= b->end) { b->bad = 1; return 0; }
        unsigned char c = *b->p++;
        v |= (uint64_t)(c & 0x7f) << shift;
        if (!(c & 0x80)) return v;
    }
    b->bad = 1;
    return 0;
}

/* Reads one field header; returns 0 at the end. For wire type 2 sets sub to the payload. */
static int pb_field(pb *b, int *field, int *wire, uint64_t *val, pb *sub) {
    if (b->p >= b->end || b->bad) return 0;
    uint64_t key = pb_varint(b);
    *field = (int)(key >> 3);
    *wire = (int)(key & 7);
    switch (*wire) {
    case 0: *val = pb_varint(b); break;
    case 1: if (b->end - b->p < 8) { b->bad = 1; return 0; } memcpy(val, b->p, 8); b->p += 8; break;
    case 5: { if (b->end - b->p < 4) { b->bad = 1; return 0; } uint32_t v; memcpy(&v, b->p, 4); *val = v; b->p += 4; break; }
    case 2: {
        uint64_t n = pb_varint(b);
        if (b->bad || n > (uint64_t)(b->end - b->p)) { b->bad = 1; return 0; }
        sub->p = b->p; sub->end = b->p + n; sub->bad = 0;
        b->p += n;
        break;
    }
    default: b->bad = 1; return 0;
    }
    return !b->bad;
}

static pi0_status parse_model_proto(pi0_tokenizer *t, const char *path, const unsigned char *data, size_t len) {
    pi0_err *e = &t->err;
    /* First pass: count pieces. */
    pb b = {data, data + len, 0}, sub;
    int f, w, n = 0, model_type = 1, byte_fallback = 0, has_charsmap = 0;
    uint64_t v;
    char norm_name[64] = "";
    t->add_dummy_prefix = t->remove_extra_ws = t->escape_ws = 1; /* proto defaults */
    while (pb_field(&b, &f, &w, &v, &sub)) {
        if (f == 1 && w == 2) n++;
        else if (f == 2 && w == 2) { /* TrainerSpec */
            pb s = sub, x;
            while (pb_field(&s, &f, &w, &v, &x)) {
                if (f == 3 && w == 0) model_type = (int)v;
                if (f == 35 && w == 0) byte_fallback = (int)v;
            }
        } else if (f == 3 && w == 2) { /* NormalizerSpec */
            pb s = sub, x;
            while (pb_field(&s, &f, &w, &v, &x)) {
                if (f == 1 && w == 2) snprintf(norm_name, sizeof norm_name, "%.*s", (int)(x.end - x.p), x.p);
                if (f == 2 && w == 2) has_charsmap = x.end > x.p;
                if (f == 3 && w == 0) t->add_dummy_prefix = (int)v;
                if (f == 4 && w == 0) t->remove_extra_ws = (int)v;
                if (f == 5 && w == 0) t->escape_ws = (int)v;
            }
        }
    }
    RETURN_ERR_IF(b.bad || n == 0, e, PI0_ERR_FORMAT, "%s: not a SentencePiece model (protobuf %s)", path,
                  b.bad ? "malformed" : "has no pieces");
    RETURN_ERR_IF(model_type != 2, e, PI0_ERR_UNSUPPORTED,
                  "%s: SentencePiece model_type %d; only BPE (2) is supported", path, model_type);
    RETURN_ERR_IF(has_charsmap && strcmp(norm_name, "identity") != 0, e, PI0_ERR_UNSUPPORTED,
                  "%s: normalization rule '%s' needs a precompiled charsmap, which pi0.c does not "
                  "implement (PaliGemma's tokenizer uses 'identity')", path, norm_name);
    (void)byte_fallback; /* <0xXX> pieces are used whenever the model has them */
    t->pieces = calloc(n, sizeof *t->pieces);
    t->added = calloc(n, sizeof *t->added);
    RETURN_ERR_IF(!t->pieces || !t->added, e, PI0_ERR_NOMEM, "out of memory");
    b = (pb){data, data + len, 0};
    while (pb_field(&b, &f, &w, &v, &sub)) {
        if (!(f == 1 && w == 2)) continue;
        piece *p = &t->pieces[t->n_pieces];
        p->type = PIECE_NORMAL;
        pb s = sub, x;
        while (pb_field(&s, &f, &w, &v, &x)) {
            if (f == 1 && w == 2 && !p->str) {
                p->len = (int)(x.end - x.p);
                p->str = dup_bytes((const char *)x.p, p->len);
                RETURN_ERR_IF(!p->str, e, PI0_ERR_NOMEM, "out of memory");
            } else if (f == 2 && w == 5) {
                uint32_t u = (uint32_t)v;
                memcpy(&p->score, &u, 4);
            } else if (f == 3 && w == 0) {
                p->type = (int)v;
            }
        }
        if (s.bad || !p->str) {
            free(p->str); /* not yet counted in n_pieces: tokenizer_clear would not free it */
            p->str = NULL;
            return pi0_fail(e, PI0_ERR_FORMAT, "%s: piece %d is malformed", path, t->n_pieces);
        }
        if (p->type == PIECE_USER && p->len > 0) t->added[t->n_added++] = t->n_pieces;
        t->n_pieces++;
    }
    return tokenizer_index(t, path);
}

/* Groups the added / user-defined pieces by first byte (a stable counting sort), so matching
 * them at a text position looks only at the pieces that can start there. */
static pi0_status index_added(pi0_tokenizer *t) {
    memset(t->added_first, 0, sizeof t->added_first);
    t->added_by_byte = malloc((size_t)(t->n_added ? t->n_added : 1) * sizeof *t->added_by_byte);
    RETURN_ERR_IF(!t->added_by_byte, &t->err, PI0_ERR_NOMEM, "out of memory");
    for (int i = 0; i < t->n_added; i++) t->added_first[(unsigned char)t->pieces[t->added[i]].str[0] + 1]++;
    for (int c = 0; c < 256; c++) t->added_first[c + 1] += t->added_first[c];
    int fill[256];
    memcpy(fill, t->added_first, sizeof fill);
    for (int i = 0; i < t->n_added; i++)
        t->added_by_byte[fill[(unsigned char)t->pieces[t->added[i]].str[0]]++] = t->added[i];
    return PI0_OK;
}

pi0_status pi0_tokenizer_load(pi0_tokenizer *t, const char *path) {
    if (!t) return PI0_ERR_ARG;
    tokenizer_clear(t);
    RETURN_ERR_IF(!path, &t->err, PI0_ERR_ARG, "tokenizer path is NULL");
    char *buf;
    size_t size;
    FORWARD_ERR(read_file(path, 1u << 30, &buf, &size, &t->err));
    size_t i = 0;
    while (i < size && (buf[i] == ' ' || buf[i] == '\n' || buf[i] == '\r' || buf[i] == '\t')) i++;
    pi0_status st = i < size && buf[i] == '{'
                        ? load_json(t, path, buf, size)
                        : parse_model_proto(t, path, (const unsigned char *)buf, size);
    free(buf);
    if (st == PI0_OK) st = index_added(t);
    if (st != PI0_OK) tokenizer_clear(t);
    else t->err.msg[0] = 0;
    return st;
}

/* ---------------------------------------------------------------- encoding */

static int utf8_len(unsigned char c) {
    if (c < 0x80) return 1;
    if ((c & 0xe0) == 0xc0) return 2;
    if ((c & 0xf0) == 0xe0) return 3;
    if ((c & 0xf8) == 0xf0) return 4;
    return 1; /* stray byte: a symbol of its own, byte fallback keeps it */
}

typedef struct {
    int32_t *ids;
    int n, cap;
} id_out;

static int emit(id_out *o, int id) {
    if (o->n < o->cap) o->ids[o->n] = id;
    o->n++;
    return 1;
}

/* Symbols of one BPE run: spans of `s` in a linked list (prev/next); symbols only grow, by
 * absorbing their right neighbour, so a symbol's index also orders it in the text. rank[i] is
 * the priority of merging i with next[i] (lower is better; INT64_MAX = no merge) and merged[i]
 * the resulting piece; len[i] = 0 marks a symbol absorbed by its left neighbour. */
typedef struct {
    int *start, *len, *next, *prev, *id, *frozen, *merged;
    int64_t *rank;
} symbols;

/* Priority of merging symbols a and b (adjacent), and the merged id. */
static int64_t pair_rank(const pi0_tokenizer *t, const char *s, const symbols *y, int a, int b, int *merged) {
    if (y->frozen[a] || y->frozen[b]) return INT64_MAX;
    if (t->from_json) {
        if (y->id[a] < 0 || y->id[b] < 0) return INT64_MAX;
        int r = merge_find(&t->merges, y->id[a], y->id[b], merged);
        return r < 0 ? INT64_MAX : r;
    }
    int id = vocab_find(t, s + y->start[a], y->len[a] + y->len[b]);
    if (id < 0 || (t->pieces[id].type != PIECE_NORMAL && t->pieces[id].type != PIECE_USER))
        return INT64_MAX;
    *merged = id;
    /* Higher score first: map the float score to an order-preserving integer, negated. */
    float sc = t->pieces[id].score;
    int32_t bits;
    memcpy(&bits, &sc, 4);
    int64_t key = bits >= 0 ? (int64_t)bits : -(int64_t)(bits & 0x7fffffff);
    return -key + (int64_t)1e10;
}

/* Candidate merges in a binary min-heap keyed by (rank, left symbol): the best merge first,
 * leftmost on ties, as SentencePiece's bpe_model.cc and Hugging Face's BPE do. Entries are
 * never updated in place: when a symbol changes, its new pair is pushed and the old entry is
 * dropped when popped (it no longer matches rank[left], or left is gone). */
typedef struct {
    int64_t rank;
    int left;
} bpe_cand;

typedef struct {
    bpe_cand *v;
    size_t n, cap;
} cand_heap;

static int cand_before(const bpe_cand *a, const bpe_cand *b) {
    return a->rank < b->rank || (a->rank == b->rank && a->left < b->left);
}

static int heap_push(cand_heap *h, bpe_cand c) {
    if (h->n == h->cap) {
        size_t cap = h->cap ? 2 * h->cap : 64;
        bpe_cand *v = realloc(h->v, cap * sizeof *v);
        if (!v) return 0;
        h->v = v;
        h->cap = cap;
    }
    size_t i = h->n++;
    while (i > 0 && cand_before(&c, &h->v[(i - 1) / 2])) {
        h->v[i] = h->v[(i - 1) / 2];
        i = (i - 1) / 2;
    }
    h->v[i] = c;
    return 1;
}

static bpe_cand heap_pop(cand_heap *h) {
    bpe_cand top = h->v[0], last = h->v[--h->n];
    size_t i = 0;
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= h->n) break;
        if (c + 1 < h->n && cand_before(&h->v[c + 1], &h->v[c])) c++;
        if (!cand_before(&h->v[c], &last)) break;
        h->v[i] = h->v[c];
        i = c;
    }
    if (h->n) h->v[i] = last;
    return top;
}

/* Recomputes the pair starting at symbol a and queues it if it can merge; 0 when out of memory. */
static int queue_pair(const pi0_tokenizer *t, const char *s, symbols *y, cand_heap *h, int a) {
    y->rank[a] = y->next[a] >= 0 ? pair_rank(t, s, y, a, y->next[a], &y->merged[a]) : INT64_MAX;
    return y->rank[a] == INT64_MAX || heap_push(h, (bpe_cand){y->rank[a], a});
}

/* Longest added token (json) / user-defined piece (spm) starting at s[0..n) and longer than
 * min_len bytes, first in load order among equals; -1 if none. *len is its length. */
static int match_added(const pi0_tokenizer *t, const char *s, int n, int min_len, int *len) {
    int best = -1;
    *len = min_len;
    if (!t->added_by_byte || n <= 0) return -1;
    const unsigned char c = (unsigned char)s[0];
    for (int k = t->added_first[c]; k < t->added_first[c + 1]; k++) {
        const int id = t->added_by_byte[k];
        const piece *p = &t->pieces[id];
        if (p->len > *len && p->len <= n && memcmp(s, p->str, p->len) == 0) { best = id; *len = p->len; }
    }
    return best;
}

/* BPE over text s[0..n) (SentencePiece mode: user-defined pieces are atomic symbols).
 * O(n log n): each merge pops one heap entry and pushes at most two. */
static pi0_status bpe(pi0_tokenizer *t, const char *s, int n, id_out *o) {
    if (n == 0) return PI0_OK;
    symbols y;
    cand_heap h = {0};
    int *mem = malloc((size_t)n * 7 * sizeof(int));
    y.rank = malloc((size_t)n * sizeof *y.rank);
    if (!mem || !y.rank) { free(mem); free(y.rank); return pi0_fail(&t->err, PI0_ERR_NOMEM, "out of memory"); }
    y.start = mem; y.len = mem + n; y.next = mem + 2 * n; y.prev = mem + 3 * n; y.id = mem + 4 * n;
    y.frozen = mem + 5 * n; y.merged = mem + 6 * n;
    int m = 0;
    for (int i = 0; i < n;) {
        int l = utf8_len((unsigned char)s[i]);
        if (i + l > n) l = n - i;
        int fz = 0, ul;
        if (!t->from_json && match_added(t, s + i, n - i, l, &ul) >= 0) { l = ul; fz = 1; }
        y.start[m] = i; y.len[m] = l; y.frozen[m] = fz;
        y.id[m] = vocab_find(t, s + i, l);
        y.prev[m] = m - 1; y.next[m] = -1;
        if (m) y.next[m - 1] = m;
        m++;
        i += l;
    }
    int ok = 1;
    for (int i = 0; i < m && ok; i++) ok = queue_pair(t, s, &y, &h, i);
    while (ok && h.n) {
        const bpe_cand c = heap_pop(&h);
        const int a = c.left;
        if (y.len[a] == 0 || y.rank[a] != c.rank) continue; /* stale */
        const int b = y.next[a];
        y.len[a] += y.len[b];
        y.id[a] = y.merged[a];
        y.next[a] = y.next[b];
        if (y.next[b] >= 0) y.prev[y.next[b]] = a;
        y.len[b] = 0;
        y.rank[b] = INT64_MAX;
        ok = queue_pair(t, s, &y, &h, a) && (y.prev[a] < 0 || queue_pair(t, s, &y, &h, y.prev[a]));
    }
    free(h.v);
    if (!ok) { free(mem); free(y.rank); return pi0_fail(&t->err, PI0_ERR_NOMEM, "out of memory"); }
    for (int i = 0; i >= 0; i = y.next[i]) {
        int id = y.id[i];
        if (id >= 0 && t->pieces[id].type != PIECE_UNUSED) { emit(o, id); continue; }
        int all_bytes = 1;
        for (int k = 0; k < y.len[i]; k++) all_bytes &= t->byte_id[(unsigned char)s[y.start[i] + k]] >= 0;
        if (all_bytes)
            for (int k = 0; k < y.len[i]; k++) emit(o, t->byte_id[(unsigned char)s[y.start[i] + k]]);
        else
            emit(o, t->unk_id);
    }
    free(mem);
    free(y.rank);
    return PI0_OK;
}

/* Appends s[0..n) with ' ' replaced by '▁' (U+2581) to buf. */
static char *escape_spaces(const char *s, int n, int *out_len) {
    char *buf = malloc((size_t)n * 3 + 4);
    if (!buf) return NULL;
    int k = 0;
    for (int i = 0; i < n; i++) {
        if (s[i] == ' ') { buf[k++] = (char)0xe2; buf[k++] = (char)0x96; buf[k++] = (char)0x81; }
        else buf[k++] = s[i];
    }
    *out_len = k;
    return buf;
}

static pi0_status encode_json(pi0_tokenizer *t, const char *text, int n, id_out *o) {
    int seg = 0;
    for (int i = 0; i <= n;) {
        int alen = 0, aid = i < n ? match_added(t, text + i, n - i, 0, &alen) : -1;
        if (i == n || aid >= 0) {
            if (i > seg) { /* normalizer: ' ' -> '▁', then BPE over the whole section */
                int el;
                char *esc = escape_spaces(text + seg, i - seg, &el);
                RETURN_ERR_IF(!esc, &t->err, PI0_ERR_NOMEM, "out of memory");
                pi0_status st = bpe(t, esc, el, o);
                free(esc);
                FORWARD_ERR(st);
            }
            if (i == n) break;
            emit(o, aid);
            i += alen;
            seg = i;
        } else {
            i += utf8_len((unsigned char)text[i]);
            if (i > n) i = n;
        }
    }
    return PI0_OK;
}

static pi0_status encode_spm(pi0_tokenizer *t, const char *text, int n, id_out *o) {
    /* NormalizerSpec: remove_extra_whitespaces (strip, collapse runs of ' '), add_dummy_prefix,
     * escape_whitespaces. */
    char *norm = malloc((size_t)n + 2);
    RETURN_ERR_IF(!norm, &t->err, PI0_ERR_NOMEM, "out of memory");
    int k = 0;
    if (t->add_dummy_prefix) norm[k++] = ' ';
    int i = 0, end = n;
    if (t->remove_extra_ws) {
        while (i < end && text[i] == ' ') i++;
        while (end > i && text[end - 1] == ' ') end--;
    }
    if (t->add_dummy_prefix && i == end) k = 0; /* empty input stays empty */
    for (; i < end; i++) {
        if (t->remove_extra_ws && text[i] == ' ' && k > 0 && norm[k - 1] == ' ') continue;
        norm[k++] = text[i];
    }
    int el = k;
    char *esc = norm;
    if (t->escape_ws) {
        esc = escape_spaces(norm, k, &el);
        free(norm);
        RETURN_ERR_IF(!esc, &t->err, PI0_ERR_NOMEM, "out of memory");
    }
    pi0_status st = bpe(t, esc, el, o);
    free(esc);
    return st;
}

pi0_status pi0_tokenizer_encode(pi0_tokenizer *t, const char *text, int32_t *ids, int cap, int *n_ids) {
    if (!t) return PI0_ERR_ARG;
    RETURN_ERR_IF(!t->n_pieces, &t->err, PI0_ERR_ARG, "tokenizer is not loaded");
    RETURN_ERR_IF(!text || !n_ids || (cap > 0 && !ids), &t->err, PI0_ERR_ARG, "encode: NULL argument");
    size_t n = strlen(text);
    RETURN_ERR_IF(n > (1u << 26), &t->err, PI0_ERR_INPUT, "encode: text of %zu bytes is too long", n);
    id_out o = {ids, 0, cap};
    FORWARD_ERR(t->from_json ? encode_json(t, text, (int)n, &o) : encode_spm(t, text, (int)n, &o));
    *n_ids = o.n;  /* may exceed cap: then only the first cap ids were written */
    return PI0_OK;
}

static int hexval(char c) {
    return c >= '0' && c <= '9' ? c - '0' : c >= 'A' && c <= 'F' ? c - 'A' + 10 : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

pi0_status pi0_tokenizer_decode(pi0_tokenizer *t, const int32_t *ids, int n, char *out, size_t cap, size_t *len) {
    if (!t) return PI0_ERR_ARG;
    RETURN_ERR_IF(!out || cap == 0 || (n > 0 && !ids), &t->err, PI0_ERR_ARG, "decode: NULL argument");
    size_t k = 0;
    int first = 1;
#define PUT(c) do { if (k + 1 < cap) out[k] = (char)(c); k++; } while (0)
    for (int i = 0; i < n; i++) {
        RETURN_ERR_IF(ids[i] < 0 || ids[i] >= t->n_pieces, &t->err, PI0_ERR_INPUT,
                      "decode: id %d outside the vocabulary [0, %d)", (int)ids[i], t->n_pieces);
        const piece *p = &t->pieces[ids[i]];
        if (!p->str || p->type == PIECE_CONTROL || p->type == PIECE_UNKNOWN) continue;
        if (p->len == 6 && !strncmp(p->str, "<0x", 3) && p->str[5] == '>' &&
            hexval(p->str[3]) >= 0 && hexval(p->str[4]) >= 0) {
            PUT(hexval(p->str[3]) * 16 + hexval(p->str[4]));
            first = 0;
            continue;
        }
        for (int j = 0; j < p->len; j++) {
            if (j + 2 < p->len && (unsigned char)p->str[j] == 0xe2 && (unsigned char)p->str[j + 1] == 0x96 &&
                (unsigned char)p->str[j + 2] == 0x81) {
                if (!(first && !t->from_json && t->add_dummy_prefix && k == 0)) PUT(' ');
                j += 2;
            } else {
                PUT(p->str[j]);
            }
            first = 0;
        }
    }
#undef PUT
    out[k < cap ? k : cap - 1] = 0;
    if (len) *len = k;
    RETURN_ERR_IF(k >= cap, &t->err, PI0_ERR_ARG, "decode: output buffer of %zu bytes is too small (%zu needed)", cap, k + 1);
    return PI0_OK;
}

/* ---------------------------------------------------------------- openpi prompt format */

pi0_status pi0_tokenize_prompt(pi0_tokenizer *t, const char *prompt, int max_len, int32_t *tokens,
                               uint8_t *mask, int *n_valid, int *truncated_from) {
    if (!t) return PI0_ERR_ARG;
    RETURN_ERR_IF(!prompt || !tokens || !mask || max_len < 2, &t->err, PI0_ERR_ARG,
                  "tokenize_prompt: bad arguments");
    RETURN_ERR_IF(t->bos_id < 0, &t->err, PI0_ERR_FORMAT, "tokenizer has no <bos> piece");
    /* openpi PaligemmaTokenizer: prompt.strip().replace("_", " ").replace("\n", " ") */
    char *text = malloc(strlen(prompt) + 1);
    RETURN_ERR_IF(!text, &t->err, PI0_ERR_NOMEM, "out of memory");
    prompt_clean(prompt, text);
    /* [bos] + encode(text) + encode("\n"), right-padded with 0. The whole text is encoded (BPE
     * is not prefix-stable, so the first ids need all of it), but only the ids that fit are
     * kept; encode counts the rest, so *truncated_from is the exact full length. */
    int n_text = 0, n_nl = 0;
    int32_t *ids = malloc((size_t)max_len * sizeof *ids), nl[8];
    pi0_status st = ids ? pi0_tokenizer_encode(t, text, ids, max_len, &n_text) : PI0_ERR_NOMEM;
    if (st == PI0_OK) st = pi0_tokenizer_encode(t, "\n", nl, 8, &n_nl);
    free(text);
    if (st != PI0_OK) { free(ids); return st == PI0_ERR_NOMEM ? pi0_fail(&t->err, st, "out of memory") : st; }
    int total = 1 + n_text + n_nl, k = 0;
    tokens[k++] = t->bos_id;
    for (int i = 0; i < n_text && k < max_len; i++) tokens[k++] = ids[i];
    for (int i = 0; i < n_nl && i < 8 && k < max_len; i++) tokens[k++] = nl[i];
    free(ids);
    if (n_valid) *n_valid = k;
    if (truncated_from) *truncated_from = total > max_len ? total : 0;
    for (int i = 0; i < max_len; i++) {
        mask[i] = i < k;
        if (i >= k) tokens[i] = 0;
    }
    return PI0_OK;
}

int pi0_tokenizer_bos(const pi0_tokenizer *t) { return t ? t->bos_id : -1; }
