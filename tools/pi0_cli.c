/* pi0_cli.c — the `pi0` command: subcommand dispatch and `pi0 run`. */
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>

#include "cli.h"
#include "../src/io/inputs.h"

/* The subcommand running, for cli_words. */
static const char *g_cmd = "";

/* The library names a parameter in keyword form, as its pi0_policy_params field (the Python
 * binding's keyword): "norm_stats=FILE". The command line has flags: "--norm-stats FILE". */
const char *cli_words(const char *msg, char *out, size_t cap) {
    static const struct { const char *field, *flag; } k_words[] = {
        {"config=", "--config "},         {"norm_stats=", "--norm-stats "},   {"tokenizer=", "--tokenizer "},
        {"default_prompt=", NULL},        {"pipeline=", "--pipeline "},       {"backend=", "--backend "},
        {"threads=", "--threads "},       {"lerobot_version=", "--lerobot-version "},
        {"action_dims=", "--action-dims "}, {"adapt_to_pi=", "--adapt-to-pi "},
    };
    size_t k = 0;
    if (!cap) return out;
    for (const char *m = msg; *m && k + 1 < cap;) {
        const int word_start = m == msg || strchr(" (,'\"`", m[-1]);
        size_t i = 0, n = 0;
        for (; word_start && i < sizeof k_words / sizeof *k_words; i++)
            if (!strncmp(m, k_words[i].field, n = strlen(k_words[i].field))) break;
        if (word_start && i < sizeof k_words / sizeof *k_words) {
            /* `pi0 infer` has no default prompt: its prompt is --prompt */
            const char *flag = k_words[i].flag ? k_words[i].flag : !strcmp(g_cmd, "infer") ? "--prompt " : "--default-prompt ";
            k += (size_t)snprintf(out + k, cap - k, "%s", flag);
            if (k >= cap) k = cap - 1;
            m += n;
        } else {
            out[k++] = *m++;
        }
    }
    out[k] = 0;
    return out;
}

int cli_error(int code, const char *fmt, ...) {
    char msg[8192], words[8192];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    fprintf(stderr, "pi0: error: %s\n", cli_words(msg, words, sizeof words));
    return code;
}

int cli_usage_error(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    fputs("pi0: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputs(" (see 'pi0 help')\n", stderr);
    va_end(ap);
    return 1;
}

void cli_policy_report(const char *who, const pi0_policy *p, const char *model_dir) {
    const char *ns = pi0_policy_norm_stats_path(p);
    const pi0_config *c = pi0_policy_model_config(p);
    /* openpi's pipeline is named on the final timing / listening line */
    if (!strncmp(pi0_policy_pipeline(p), "lerobot", 7))
        fprintf(stderr, "%s: pipeline %s, statistics from %s\n", who, pi0_policy_pipeline(p),
                ns ? ns : "the checkpoint's processor files");
    else if (ns)
        fprintf(stderr, "%s: using norm stats %s (%s)\n", who, ns, c && c->pi05 ? "quantile" : "z-score");
    else
        fprintf(stderr, "%s: warning: no norm stats (no --norm-stats FILE, no %s/norm_stats.json, no "
                "%s/assets/<robot>/norm_stats.json): the state is taken as already normalized (zero-padded "
                "to the model's state_dim) and the actions are in normalized space\n", who, model_dir, model_dir);
    char words[4096];
    if (pi0_policy_warning(p)) fprintf(stderr, "%s: warning: %s\n", who, cli_words(pi0_policy_warning(p), words, sizeof words));
}

const char *cli_config_names(void) {
    static char buf[2048];
    if (buf[0]) return buf;
    size_t k = 0;
    for (int i = 0; i < pi0_policy_config_count() && k < sizeof buf; i++)
        k += snprintf(buf + k, sizeof buf - k, "%s%s", i ? ", " : "", pi0_policy_config_name(i));
    return buf;
}

/* ---------------------------------------------------------------- usage */

typedef struct {
    const char *name, *args, *about, *options;
} cmd_usage;

static const cmd_usage k_usage[] = {
    {"infer", "--model DIR --state v1,v2,... [--config NAME] [--image KEY=FILE ...] [--prompt TEXT] [options]",
     "run the policy on one observation: camera images, a prompt and the robot state\n"
     "in, the action chunk out (on stdout; stage times on stderr)",
     "  --model DIR            checkpoint directory (config.json + model.safetensors)\n"
     "  --config NAME          openpi's config (pi0_libero, pi05_droid, pi0_aloha, ...; list below) or a\n"
     "                         pi0.c preset; default generic. Its transforms run as openpi's policy\n"
     "                         does (delta actions, ALOHA conversions, the robot's action dims)\n"
     "  --prompt TEXT          the instruction (default: the config's; truncated to max_token_len)\n"
     "  --state v1,v2,...      robot state as the config's robot assembles it (DROID: the 7 joint\n"
     "                         positions, then the gripper), normalized with the norm stats\n"
     "  --image KEY=FILE       PNG/JPEG for one of the config's cameras, by openpi key\n"
     "                         (observation/image, images/cam_high, ...; 'images/' may be left out):\n"
     "                         generic: base_0_rgb, left_wrist_0_rgb, right_wrist_0_rgb (repeatable, once\n"
     "                         per camera; missing optional cameras are black and masked, required ones\n"
     "                         refused)\n"
     "  --norm-stats FILE      openpi norm_stats.json (default: DIR/assets/<asset id>/norm_stats.json\n"
     "                         for openpi configs; else DIR/norm_stats.json, else the one\n"
     "                         DIR/assets/<robot>/norm_stats.json). Without norm stats the state is\n"
     "                         taken as already normalized and the actions stay normalized (warned)\n"
     "  --action-dims N        action dims printed, 1..1024 (default: the robot's, else the norm stats'\n"
     "                         action length, else all of the model's)\n"
     "  --raw                  print the model's own output instead: all action_dim dims, in the\n"
     "                         normalized space, before any output transform\n"
     "  --seed N               noise seed, 0..18446744073709551615 (default 0)\n"
     "  --noise FILE           noise from a safetensors file (float tensor 'noise', H x A values)\n"
     "  --adapt-to-pi true|false   ALOHA configs: openpi's adapt_to_pi conversions (default true)\n"
     "  --format table|json|csv\n"
     "  --tokenizer FILE       tokenizer.json or tokenizer.model (default: beside the model, else\n"
     "                         $PI0_TOKENIZER)\n"
     "  --backend cuda|fast|ref   (default: cuda with a GPU, else fast)\n"
     "  --threads N            1..1024 (default: all cores)\n"
     "  --save-inputs FILE     also write the preprocessed observation in `pi0 run`'s input format\n"
     "  --pipeline auto|openpi|lerobot   pre/postprocessing (default auto: lerobot's for a checkpoint\n"
     "                         with policy_preprocessor.json or lerobot v1 markers, else openpi's)\n"
     "  --lerobot-version current|v0.4|v1   lerobot layout (default: detected; v0.4.x cannot be told\n"
     "                         from its files)\n"
     "lerobot checkpoints: keys are the checkpoint's features (--image observation.images.top=FILE,\n"
     "'observation.images.' may be left out), --prompt is the task, --norm-stats a lerobot stats\n"
     "file (stats.json or safetensors with observation.state.mean, action.q01, ...)\n"},
    {"run", "--model DIR --inputs FILE.safetensors --out FILE.safetensors [options]",
     "run the policy on preprocessed inputs (names as in tests/golden/*/inputs.safetensors);\n"
     "writes 'actions' [H, A] (and every intermediate with --dump)",
     "  --model DIR            checkpoint directory\n"
     "  --inputs FILE          images, image_masks, tokens, token_mask, state [, noise]\n"
     "  --out FILE             output safetensors\n"
     "  --backend cuda|fast|ref   (default: cuda with a GPU, else fast)\n"
     "  --threads N            1..1024 (default: all cores)\n"
     "  --seed N               noise seed when the inputs hold no noise, 0..18446744073709551615\n"
     "  --dump                 also write every named intermediate (with RTC: rtc_correction.<step>,\n"
     "                         lerobot's correction: err, or Jᵀerr with --rtc-jacobian exact)\n"
     "  --full-prefix          run openpi's padded prefix layout (same actions)\n"
     "guided real-time chunking (see pi0_rtc in include/pi0.h):\n"
     "  --rtc-prev FILE        safetensors with a float tensor 'prev' [rows, dims] (or [batch, rows,\n"
     "                         dims]): the previous chunk's leftover in the model's normalized space;\n"
     "                         or 'actions' (a previous run's --out file: its whole chunk)\n"
     "  --rtc-delay N          inference_delay, 0..H (default 0)\n"
     "  --rtc-horizon N        execution_horizon, >= 1 (default 10)\n"
     "  --rtc-schedule ZEROS|ONES|LINEAR|EXP   prefix weights (default LINEAR)\n"
     "  --rtc-weight W         max_guidance_weight, > 0 (default 10)\n"
     "  --rtc-jacobian lerobot|exact   lerobot's identity (default) or the exact vector-Jacobian\n"
     "                         product through the action expert\n"},
    {"serve", "--model DIR [--config NAME] [options]",
     "openpi-compatible WebSocket policy server, a drop-in for openpi's scripts/serve_policy.py\n"
     "(GET /healthz answers OK)",
     "  --model DIR            checkpoint directory\n"
     "  --config NAME          openpi's config (list below) or a pi0.c preset (--preset is the same\n"
     "                         option); default generic\n"
     "  --port N               1..65535 (default 8000)\n"
     "  --host ADDR            address to listen on (default 0.0.0.0: every interface, as openpi;\n"
     "                         127.0.0.1 for this machine only)\n"
     "  --api-key KEY          require the header 'Authorization: Api-Key KEY' (openpi's client sends\n"
     "                         it when given api_key); others get HTTP 401\n"
     "  --seed N               the same noise (of seed N) for every request, 0..18446744073709551615\n"
     "                         (default: fresh noise per request, as openpi)\n"
     "  --norm-stats FILE      as for infer; without norm stats states are taken as normalized and\n"
     "                         actions are sent normalized (warned)\n"
     "  --default-prompt TEXT  prompt for observations without one (before the config's)\n"
     "  --tokenizer FILE       as for infer\n"
     "  --action-dims N        1..1024 (default: the robot's, else the norm stats', else all)\n"
     "  --max-message-mb X     largest accepted message, 0.001..4096 MB (default 256); a larger one\n"
     "                         is answered with the error text, then closed\n"
     "  --adapt-to-pi true|false   ALOHA configs: openpi's adapt_to_pi conversions (default true)\n"
     "  --control-hz HZ        the robots' control rate, 0.001..100000: a request's \"rtc\" map without\n"
     "                         an inference_delay (or \"auto\") gets ceil(latency x HZ), the latency\n"
     "                         measured per connection; reported in the reply's \"rtc\" map\n"
     "  --backend cuda|fast|ref   (default: cuda with a GPU, else fast)\n"
     "  --threads N            1..1024 (default: all cores)\n"
     "  --pipeline auto|openpi|lerobot   pre/postprocessing (default auto: lerobot's for a checkpoint\n"
     "                         with policy_preprocessor.json or lerobot v1 markers, else openpi's)\n"
     "  --lerobot-version current|v0.4|v1   lerobot layout (default: detected; v0.4.x cannot be told\n"
     "                         from its files)\n"
     "lerobot checkpoints take lerobot's keys: observation.images.<camera>, observation.state, task\n"},
    {"convert", "--model ORBAX_DIR --out DIR",
     "write openpi's Orbax checkpoint (params/ + assets/, as published) as safetensors: model.safetensors\n"
     "in openpi's PyTorch layout, config.json and assets/ (streamed: about one array in memory)",
     "  --model ORBAX_DIR      openpi checkpoint directory (params/ with manifest.ocdbt, assets/)\n"
     "  --out DIR              created if missing; config.json is the checkpoint's own if it has one,\n"
     "                         else the sizes read from the arrays (openpi's defaults for the rest)\n"},
    {"gen-model", "--config tiny|small|demo|full|FILE.json --out DIR [--dtype f32|bf16] [--seed N] [--pi05] [--assets]",
     "write a random-weight checkpoint (for tests, demos and benchmarks)",
     "  --config NAME|FILE     preset or config.json\n"
     "  --pi05                 a pi0.5 model (adaRMS expert, time MLP, no state_proj)\n"
     "  --assets               also assets/<asset id>/norm_stats.json (neutral statistics) for every\n"
     "                         asset id of openpi's configs, so that each --config runs on the model\n"
     "  --layout openpi|lerobot   openpi's converted layout (default), or lerobot's current one:\n"
     "                         'model.' keys, config.json with features, processor files and random\n"
     "                         normalization statistics\n"
     "  --state-dim N, --action-dim N   lerobot: the robot's native lengths (default min(7, model's))\n"
     "  --relative-actions     lerobot: use_relative_actions (the gripper, the last dim, excluded)\n"
     "  --out DIR              created if missing\n"
     "  --dtype f32|bf16       (default f32)\n"
     "  --seed N               0..18446744073709551615 (default 0)\n"},
    {"gen-image", "--out FILE.png [--width W --height H]", "write a synthetic tabletop scene",
     "  --out FILE.png\n"
     "  --width W, --height H  1..8192 (default 320 x 240)\n"},
    {"check", "--model DIR [--inputs FILE] [--cameras N] [--tokens N] [--backend NAME] [--threads N]",
     "ref vs an accelerated backend, component by component (PCC, max |diff|); exit 2 on failure",
     "  --model DIR\n"
     "  --inputs FILE          preprocessed inputs (default: a synthetic observation)\n"
     "  --backend cuda|fast    the backend checked against ref (default: cuda with a GPU, else fast)\n"
     "  --cameras N            1..3 (default 3)\n"
     "  --tokens N             prompt tokens, 1..4096 (default 48)\n"
     "  --threads N            1..1024 (default: all cores)\n"},
    {"verify", "--model DIR [--cameras N] [--tokens N] [--backend NAME] [--threads N]",
     "which backend ran every op of a real run: calls, FLOPs, time, fallbacks",
     "  --model DIR\n"
     "  --cameras N            1..3 (default 3)\n"
     "  --tokens N             prompt tokens, 1..4096 (default 48)\n"
     "  --backend cuda|fast|ref   (default: cuda with a GPU, else fast)\n"
     "  --threads N            1..1024 (default: all cores)\n"},
    {"bench", "--model DIR [--cameras N] [--runs N] [--tokens N] [--small DIR] [--threads N]",
     "per-stage median time, GFLOP/s (TFLOP/s and weight GB/s on a GPU), fraction of the\n"
     "ceilings measured in the same run, first-call overhead, peak RSS / GPU memory",
     "  --model DIR\n"
     "  --cameras N            1..3 (default 3)\n"
     "  --runs N               1..1000 (default 3)\n"
     "  --tokens N             prompt tokens, 1..4096 (default 48)\n"
     "  --small DIR            also time ref vs fast on this (small) model\n"
     "  --backend cuda|fast|ref   (default: cuda with a GPU, else fast)\n"
     "  --threads N            1..1024 (default: all cores)\n"},
};

static void usage(FILE *fp) {
    fputs("usage: pi0 <command> [options]        pi0 <command> --help: that command's options\n\ncommands:\n", fp);
    for (size_t i = 0; i < sizeof k_usage / sizeof *k_usage; i++) {
        fprintf(fp, "  %-10s %s\n", k_usage[i].name, k_usage[i].args);
        for (const char *l = k_usage[i].about; *l;) {
            size_t n = strcspn(l, "\n");
            fprintf(fp, "  %-10s %.*s\n", "", (int)n, l);
            l += n + (l[n] == '\n');
        }
    }
    fputs("  help       [COMMAND]   this text, or a command's\n"
          "  --version              the version, the commit it was built from and the backends built in\n\n"
          "Options take their value as '--opt value' or '--opt=value'; each is given once (--image once per camera).\n", fp);
}

int cli_is_help(const char *arg) { return arg && (!strcmp(arg, "--help") || !strcmp(arg, "-h")); }

int cli_help(const char *cmd) {
    for (size_t i = 0; i < sizeof k_usage / sizeof *k_usage; i++)
        if (!strcmp(cmd, k_usage[i].name)) {
            printf("usage: pi0 %s %s\n\n%s\n\noptions:\n%s", cmd, k_usage[i].args, k_usage[i].about, k_usage[i].options);
            if (!strcmp(cmd, "infer") || !strcmp(cmd, "serve"))
                printf("\nconfigs (pi0.c's presets generic, libero, droid, aloha, then openpi's by name; openpi's pi0-FAST "
                       "configs are refused):\n  %s\n", cli_config_names());
            return 0;
        }
    usage(stdout);
    return 0;
}

/* ---------------------------------------------------------------- strict option values */

static int bad_value(const char *cmd, const char *opt, const char *s, const char *want) {
    if (!s) fprintf(stderr, "pi0: %s: option '%s' needs a value", cmd, opt);
    else fprintf(stderr, "pi0: %s: %s wants %s, not '%s'", cmd, opt, want, s);
    fprintf(stderr, " (see 'pi0 %s --help')\n", cmd);
    return 1;
}

/* An optional '-' and decimal digits, nothing else (no spaces, no '+', no hex). */
static int is_decimal(const char *s, int allow_minus) {
    if (allow_minus && *s == '-') s++;
    if (!*s) return 0;
    for (; *s; s++)
        if (*s < '0' || *s > '9') return 0;
    return 1;
}

int cli_parse_int(const char *cmd, const char *opt, const char *s, long lo, long hi, int *out) {
    char want[96];
    snprintf(want, sizeof want, "an integer in %ld..%ld", lo, hi);
    if (!s || !is_decimal(s, 1)) return bad_value(cmd, opt, s, want);
    errno = 0;
    long v = strtol(s, NULL, 10);
    if (errno || v < lo || v > hi) return bad_value(cmd, opt, s, want);
    *out = (int)v;
    return 0;
}

int cli_parse_u64(const char *cmd, const char *opt, const char *s, uint64_t *out) {
    const char *want = "an integer in 0..18446744073709551615";
    if (!s || !is_decimal(s, 0)) return bad_value(cmd, opt, s, want);
    errno = 0;
    unsigned long long v = strtoull(s, NULL, 10);
    if (errno) return bad_value(cmd, opt, s, want);
    *out = (uint64_t)v;
    return 0;
}

int cli_parse_double(const char *cmd, const char *opt, const char *s, double lo, double hi, double *out) {
    char want[96];
    snprintf(want, sizeof want, "a number in %g..%g", lo, hi);
    if (!s || !*s || isspace((unsigned char)*s)) return bad_value(cmd, opt, s, want);
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (*end || errno || !isfinite(v) || v < lo || v > hi) return bad_value(cmd, opt, s, want);
    *out = v;
    return 0;
}

/* ---------------------------------------------------------------- dumps */

typedef struct {
    st_decl *decls;
    float **data;
    int n, cap;
    int failed;
} dump_list;

static void on_dump(void *user, const char *name, const float *data, int ndim, const int64_t *shape) {
    dump_list *d = user;
    if (d->failed) return;
    if (d->n == d->cap) {
        int cap = d->cap ? 2 * d->cap : 64;
        st_decl *nd = realloc(d->decls, cap * sizeof *nd);
        if (nd) d->decls = nd;
        float **ndata = realloc(d->data, cap * sizeof *ndata);
        if (ndata) d->data = ndata;
        if (!nd || !ndata) { d->failed = 1; return; }
        d->cap = cap;
    }
    st_decl *dc = &d->decls[d->n];
    dc->name = strdup(name);
    dc->dtype = DT_F32;
    dc->ndim = ndim;
    size_t n = 1;
    for (int i = 0; i < ndim; i++) n *= (size_t)(dc->shape[i] = shape[i]);
    d->data[d->n] = malloc(n * sizeof(float));
    if (!dc->name || !d->data[d->n]) { free((char *)dc->name); free(d->data[d->n]); d->failed = 1; return; }
    memcpy(d->data[d->n], data, n * sizeof(float));
    d->n++;
}

static void dump_list_free(dump_list *d) {
    for (int i = 0; i < d->n; i++) { free((char *)d->decls[i].name); free(d->data[i]); }
    free(d->decls);
    free(d->data);
}

int cmd_run(int argc, char **argv) {
    const char *model_dir = NULL, *inputs_path = NULL, *out_path = NULL;
    pi0_params p = pi0_default_params();
    int dump = 0;
    uint64_t seed = 0;
    const char *rtc_path = NULL;
    pi0_rtc rtc = pi0_rtc_default();
    double rtc_w = rtc.max_guidance_weight;
    for (int i = 0; i < argc; i += 2) { /* an option and its value */
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (cli_is_help(a)) return cli_help("run");
        if (!strcmp(a, "--dump")) { dump = 1; i--; continue; }  /* flags: no value */
        if (!strcmp(a, "--full-prefix")) { p.compact_prefix = 0; i--; continue; }
        if (!strcmp(a, "--model")) model_dir = v;
        else if (!strcmp(a, "--inputs")) inputs_path = v;
        else if (!strcmp(a, "--out")) out_path = v;
        else if (!strcmp(a, "--backend")) p.backend = v;
        else if (!strcmp(a, "--threads")) { if (cli_parse_int("run", a, v, 1, 1024, &p.num_threads)) return 1; }
        else if (!strcmp(a, "--seed")) { if (cli_parse_u64("run", a, v, &seed)) return 1; }
        else if (!strcmp(a, "--rtc-prev")) rtc_path = v;
        else if (!strcmp(a, "--rtc-delay")) { if (cli_parse_int("run", a, v, 0, 1 << 20, &rtc.inference_delay)) return 1; }
        else if (!strcmp(a, "--rtc-horizon")) { if (cli_parse_int("run", a, v, 1, 1 << 20, &rtc.execution_horizon)) return 1; }
        else if (!strcmp(a, "--rtc-weight")) { if (cli_parse_double("run", a, v, 1e-30, 3e38, &rtc_w)) return 1; }
        else if (!strcmp(a, "--rtc-schedule")) {
            if (v && (rtc.schedule = pi0_rtc_schedule_from_name(v)) < 0)
                return cli_usage_error("run: --rtc-schedule '%s' is none of ZEROS, ONES, LINEAR, EXP", v);
        } else if (!strcmp(a, "--rtc-jacobian")) {
            if (v && (rtc.jacobian = pi0_rtc_jacobian_from_name(v)) < 0)
                return cli_usage_error("run: --rtc-jacobian '%s' is neither lerobot nor exact", v);
        }
        else return cli_usage_error("run: unknown option '%s'", a);
        if (!v) return cli_usage_error("run: option '%s' needs a value", a);
    }
    if (!model_dir || !inputs_path || !out_path)
        return cli_usage_error("run needs --model DIR --inputs FILE --out FILE");

    int rc = 0;
    pi0_model *m = pi0_model_create();
    pi0_session *s = pi0_session_create();
    dump_list dl = {0};
    pi0_input_buf in = {0};
    float *actions = NULL;
    if (!m || !s) { rc = cli_error(2, "out of memory"); goto done; }
    if (pi0_model_load(m, model_dir) != PI0_OK) { rc = cli_error(2, "%s", pi0_model_error(m)); goto done; }
    const pi0_config *c = pi0_model_config(m);
    if (dump) { p.dump = on_dump; p.dump_user = &dl; }
    if (pi0_session_init(s, m, &p) != PI0_OK) { rc = cli_error(2, "%s", pi0_session_error(s)); goto done; }

    pi0_err e;
    if (inputs_read(&in, inputs_path, c, &e) != PI0_OK) { rc = cli_error(2, "%s", e.msg); goto done; }
    in.in.seed = seed;
    const int batch = in.in.batch;
    const size_t HA = (size_t)c->action_horizon * c->action_dim;
    actions = malloc((size_t)batch * HA * sizeof *actions);
    if (!actions) { rc = cli_error(2, "out of memory"); goto done; }
    float *prev = NULL;
    if (rtc_path) { /* the leftover: 'prev' [rows, dims] or [batch, rows, dims] */
        st_file pf;
        if (st_open(&pf, rtc_path, &e) != PI0_OK) { rc = cli_error(2, "%s", e.msg); goto done; }
        const st_tensor *t = st_find(&pf, "prev");
        if (!t) t = st_find(&pf, "actions"); /* a previous `pi0 run --out` file */
        const int nd = t ? t->ndim : 0;
        if (!t || (t->dtype != DT_F32 && t->dtype != DT_BF16 && t->dtype != DT_F16) ||
            !(nd == 2 || (nd == 3 && t->shape[0] == batch)) || t->shape[nd - 2] < 1 || t->shape[nd - 2] > c->action_horizon ||
            t->shape[nd - 1] < 1 || t->shape[nd - 1] > c->action_dim || (nd == 2 && batch != 1)) {
            rc = cli_error(2, "--rtc-prev %s: needs a float tensor 'prev' (or 'actions') [rows <= %d, dims <= %d]%s", rtc_path,
                           c->action_horizon, c->action_dim, batch > 1 ? " per batch item ([batch, rows, dims])" : "");
            st_close(&pf);
            goto done;
        }
        prev = malloc(t->numel * sizeof *prev);
        if (prev) convert_to_f32(prev, t->data, t->dtype, t->numel);
        rtc.prev = prev, rtc.prev_rows = (int)t->shape[nd - 2], rtc.prev_dims = (int)t->shape[nd - 1];
        rtc.max_guidance_weight = (float)rtc_w;
        st_close(&pf);
        if (!prev) { rc = cli_error(2, "out of memory"); goto done; }
    }
    const pi0_status ist = pi0_session_infer_rtc(s, &in.in, rtc_path ? &rtc : NULL, actions);
    free(prev);
    if (ist != PI0_OK) { rc = cli_error(2, "%s", pi0_session_error(s)); goto done; }
    if (dl.failed) { rc = cli_error(2, "out of memory while collecting --dump tensors"); goto done; }

    /* Output: actions first, then the dumps. */
    int n = dl.n + 1;
    st_decl *decls = calloc(n, sizeof *decls);
    const void **data = calloc(n, sizeof *data);
    if (!decls || !data) { free(decls); free(data); rc = cli_error(2, "out of memory"); goto done; }
    decls[0] = (st_decl){.name = "actions", .dtype = DT_F32, .ndim = batch > 1 ? 3 : 2};
    int64_t sh[3] = {batch, c->action_horizon, c->action_dim};
    memcpy(decls[0].shape, batch > 1 ? sh : sh + 1, decls[0].ndim * sizeof(int64_t));
    data[0] = actions;
    for (int i = 0; i < dl.n; i++) { decls[i + 1] = dl.decls[i]; data[i + 1] = dl.data[i]; }
    if (st_write_file(out_path, decls, data, n, &e) != PI0_OK) rc = cli_error(2, "%s", e.msg);
    free(decls);
    free(data);
    if (!rc) {
        pi0_timing tm = pi0_session_timing(s);
        fprintf(stderr, "pi0: %s backend, batch %d: vision %.1f ms, prefix %.1f ms, denoise %.1f ms, "
                "total %.1f ms → %s\n", pi0_session_backend(s), batch, tm.vision_ms, tm.prefix_ms,
                tm.denoise_ms, tm.total_ms, out_path);
    }
done:
    inputs_free(&in);
    dump_list_free(&dl);
    free(actions);
    pi0_session_free(s);
    pi0_model_free(m);
    return rc;
}

/* ---------------------------------------------------------------- option syntax */

/* Options that take no value, in every subcommand. */
static int is_flag(const char *name) {
    static const char *k_flags[] = {"--raw", "--dump", "--full-prefix", "--pi05", "--relative-actions", "--assets", "--help"};
    for (size_t i = 0; i < sizeof k_flags / sizeof *k_flags; i++)
        if (!strcmp(name, k_flags[i])) return 1;
    return 0;
}

/* One option syntax for every subcommand, before the subcommand's own parser: "--opt=value" is
 * "--opt value", and an option given twice is an error (--image is repeatable, one camera key
 * once: `pi0 infer` checks that). The new argv (*outc entries) is in *out; its strings are argv's
 * or owned by *owned (freed by the caller). Returns 0, or the usage exit code. */
static int normalize_args(const char *cmd, int argc, char **argv, char ***out, int *outc, char **owned) {
    char **v = calloc(2 * (size_t)argc + 1, sizeof *v); /* each --opt=value may become two */
    char *names = calloc((size_t)argc + 1, 256); /* the options seen, 256 bytes each */
    char *own = calloc(1, (size_t)argc * 256 + 1); /* the split names */
    if (!v || !names || !own) { free(v); free(names); free(own); return cli_error(2, "out of memory"); }
    int n = 0, seen = 0;
    size_t used = 0;
    for (int i = 0; i < argc; i++) {
        char *a = argv[i];
        if (strncmp(a, "--", 2) || !a[2]) { v[n++] = a; continue; } /* not an option: the subcommand says */
        const char *eq = strchr(a, '=');
        const size_t len = eq ? (size_t)(eq - a) : strlen(a);
        if (len >= 255) { v[n++] = a; continue; }
        char name[256];
        memcpy(name, a, len);
        name[len] = 0;
        const char *canon = !strcmp(name, "--preset") ? "--config" : name; /* one option, two names */
        if (strcmp(canon, "--image") && strcmp(canon, "--help"))
            for (int j = 0; j < seen; j++)
                if (!strcmp(names + (size_t)j * 256, canon)) {
                    free(v); free(names); free(own);
                    return cli_usage_error("%s: option '%s' is given twice (give it once)", cmd, name);
                }
        snprintf(names + (size_t)seen++ * 256, 256, "%s", canon);
        if (is_flag(name)) {
            if (eq) { free(v); free(names); free(own); return cli_usage_error("%s: option '%s' takes no value", cmd, name); }
            v[n++] = a;
        } else if (eq) { /* --opt=value */
            memcpy(own + used, name, len + 1);
            v[n++] = own + used;
            used += len + 1;
            v[n++] = (char *)eq + 1;
        } else {
            v[n++] = a;
            if (i + 1 < argc) v[n++] = argv[++i]; /* its value, whatever it looks like */
        }
    }
    free(names);
    *out = v;
    *outc = n;
    *owned = own;
    return 0;
}

static int print_version(void) {
    printf("pi0 %s\ncommit: %s\nbackends: %s (default on this machine: %s)\n", pi0_version(), pi0_git_commit(),
           pi0_backends_available(), pi0_backend_default_name());
    return 0;
}

static int dispatch(const char *cmd, int argc, char **argv) {
    if (!strcmp(cmd, "run")) return cmd_run(argc, argv);
    if (!strcmp(cmd, "gen-model")) return cmd_gen_model(argc, argv);
    if (!strcmp(cmd, "infer")) return cmd_infer(argc, argv);
    if (!strcmp(cmd, "gen-image")) return cmd_gen_image(argc, argv);
    if (!strcmp(cmd, "bench")) return cmd_bench(argc, argv);
    if (!strcmp(cmd, "verify")) return cmd_verify(argc, argv);
    if (!strcmp(cmd, "check")) return cmd_check(argc, argv);
    if (!strcmp(cmd, "serve")) return cmd_serve(argc, argv);
    if (!strcmp(cmd, "convert")) return cmd_convert(argc, argv);
    return cli_usage_error("unknown command '%s'", cmd);
}

int main(int argc, char **argv) {
    if (argc < 2) {
        usage(stderr);
        return 1;
    }
    if (!strcmp(argv[1], "help") || cli_is_help(argv[1])) {
        if (argc > 2 && strcmp(argv[1], "help") == 0) return cli_help(argv[2]);
        usage(stdout);
        return 0;
    }
    if (!strcmp(argv[1], "--version")) {
        if (argc > 2) return cli_usage_error("--version takes no arguments");
        return print_version();
    }
    g_cmd = argv[1];
    char **v = NULL, *owned = NULL;
    int n = 0;
    if (normalize_args(argv[1], argc - 2, argv + 2, &v, &n, &owned)) return 1;
    const int rc = dispatch(argv[1], n, v);
    free(v);
    free(owned);
    return rc;
}
