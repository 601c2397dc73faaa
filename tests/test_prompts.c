/* test_prompts — π0.5's prompt (spec §6.3) against golden/pi05_prompts.jsonl: every vector's
 * text (the task cleaned, the normalized state discretized) and its Gemma token ids must be
 * identical. Prints the count and every mismatch; also the bin edges and NaN refusal.
 *
 *   test_prompts PROMPTS.jsonl TOKENIZER.json */
#include <cjson/cJSON.h>

#include "../src/common.h"
#include "test_util.h"

static void check_bins(void) {
    struct { float s; int d; } cases[] = {
        {-1.0f, 0}, {-1.0000001f, -1}, {-INFINITY, -1}, {-1e-9f, 127}, {-0.0f, 128}, {0.0f, 128},
        {1e-30f, 128}, {0.9921875f, 255}, {0.99218744f, 254}, {1.0f, 255}, {5.0f, 255}, {INFINITY, 255},
        {-0.9921875f, 1}, {-0.99218756f, 0}, {0.5f, 192}, {0.49999997f, 191},
    };
    int bad = 0;
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        int d = pi0_discretize_state(cases[i].s);
        if (d != cases[i].d) bad++;
        CHECK(d == cases[i].d, "discretize(%.9g) = %d, expected %d", cases[i].s, d, cases[i].d);
    }
    printf("bin edges: %zu cases, %d wrong\n", sizeof cases / sizeof *cases, bad);
    char *text = NULL;
    float nan_state[2] = {0.1f, NAN};
    CHECK(pi0_prompt_text_pi05("task", nan_state, 2, &text) == PI0_ERR_INPUT && !text, "NaN state must be refused");
}

int main(int argc, char **argv) {
    if (argc < 3) { fprintf(stderr, "usage: test_prompts PROMPTS.jsonl TOKENIZER.json\n"); return 2; }
    check_bins();
    pi0_tokenizer *t = pi0_tokenizer_create();
    CHECK(pi0_tokenizer_load(t, argv[2]) == PI0_OK, "%s", pi0_tokenizer_error(t));
    char *buf;
    size_t len;
    pi0_err e;
    CHECK(read_file(argv[1], 1u << 24, &buf, &len, &e) == PI0_OK, "%s", e.msg);
    if (g_fail) return test_summary();
    int n = 0, text_ok = 0, ids_ok = 0;
    for (char *line = strtok(buf, "\n"); line; line = strtok(NULL, "\n")) {
        cJSON *j = cJSON_Parse(line);
        const cJSON *prompt = cJSON_GetObjectItem(j, "prompt"), *state = cJSON_GetObjectItem(j, "state"),
                    *text = cJSON_GetObjectItem(j, "text"), *ids = cJSON_GetObjectItem(j, "ids");
        CHECK(cJSON_IsString(prompt) && cJSON_IsArray(state) && cJSON_IsString(text) && cJSON_IsArray(ids),
              "line %d: malformed vector", n + 1);
        if (!cJSON_IsString(prompt)) { cJSON_Delete(j); continue; }
        float s[64];
        int ns = 0;
        for (const cJSON *v = state->child; v && ns < 64; v = v->next) s[ns++] = (float)v->valuedouble;
        n++;
        char *got = NULL;
        CHECK(pi0_prompt_text_pi05(prompt->valuestring, s, ns, &got) == PI0_OK, "vector %d: text failed", n);
        int same_text = got && !strcmp(got, text->valuestring);
        text_ok += same_text;
        CHECK(same_text, "vector %d: text\n    got      %s\n    expected %s", n, got ? got : "(none)",
              text->valuestring);
        free(got);
        int32_t tok[1024];
        uint8_t mask[1024];
        int nv = 0, trunc = 0;
        CHECK(pi0_tokenize_prompt_pi05(t, prompt->valuestring, s, ns, 1024, tok, mask, &nv, &trunc) == PI0_OK,
              "vector %d: tokenize: %s", n, pi0_tokenizer_error(t));
        int same_ids = nv == cJSON_GetArraySize(ids) && !trunc;
        int i = 0;
        for (const cJSON *v = ids->child; v && same_ids; v = v->next, i++) same_ids = tok[i] == v->valueint;
        ids_ok += same_ids;
        if (!same_ids) {
            printf("vector %d: ids differ (%d got, %d expected)\n    got     ", n, nv, cJSON_GetArraySize(ids));
            for (int k = 0; k < nv; k++) printf(" %d", (int)tok[k]);
            printf("\n    expected");
            for (const cJSON *v = ids->child; v; v = v->next) printf(" %d", v->valueint);
            printf("\n");
        }
        CHECK(same_ids, "vector %d: token ids differ", n);
        /* truncation: a budget one short of the ids keeps max_len tokens and reports the length */
        const int full = cJSON_GetArraySize(ids);
        CHECK(pi0_tokenize_prompt_pi05(t, prompt->valuestring, s, ns, full - 1, tok, mask, &nv, &trunc) == PI0_OK &&
                  nv == full - 1 && trunc == full && mask[full - 2] == 1,
              "vector %d: truncation to %d tokens: kept %d, reported %d", n, full - 1, nv, trunc);
        cJSON_Delete(j);
    }
    printf("pi0.5 prompts: %d vectors, %d identical texts, %d identical id lists\n", n, text_ok, ids_ok);
    CHECK(n >= 30, "expected at least 30 vectors, read %d", n);
    free(buf);
    pi0_tokenizer_free(t);
    return test_summary();
}
