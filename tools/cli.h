/* cli.h — helpers shared by the `pi0` subcommands. Only programs print and pick exit codes:
 * 0 success, 1 usage error, 2 bad input / failed run. */
#ifndef PI0_CLI_H
#define PI0_CLI_H

int cli_error(int code, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
int cli_usage_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* --help / -h: every subcommand prints its usage to stdout and exits 0 (cli_help returns 0). */
int cli_is_help(const char *arg);
int cli_help(const char *cmd);

/* Strict option values: the whole string is a decimal number within [lo, hi] (no spaces, no
 * trailing text, no wrap-around). On success *out is set and 0 returned; otherwise a one-line
 * usage error naming the option and its range goes to stderr and 1 (the usage exit code) is
 * returned. s == NULL means the option came last without its value. */
#include <stdint.h>
int cli_parse_int(const char *cmd, const char *opt, const char *s, long lo, long hi, int *out);
int cli_parse_u64(const char *cmd, const char *opt, const char *s, uint64_t *out);
int cli_parse_double(const char *cmd, const char *opt, const char *s, double lo, double hi, double *out);

int cmd_run(int argc, char **argv);
int cmd_gen_model(int argc, char **argv);
int cmd_infer(int argc, char **argv);
int cmd_gen_image(int argc, char **argv);
int cmd_bench(int argc, char **argv);
int cmd_verify(int argc, char **argv);
int cmd_check(int argc, char **argv);
int cmd_serve(int argc, char **argv);

#include <stddef.h>
/* The tokenizer beside a checkpoint (tokenizer.json / tokenizer.model /
 * paligemma_tokenizer.model), else $PI0_TOKENIZER; NULL if none. */
const char *cli_find_tokenizer(const char *model_dir, char *buf, size_t n);
/* norm_stats.json beside a checkpoint, or in its assets/<asset_id>/ (openpi's converted
 * checkpoints). Returns how many were found; the first is written to buf. */
int cli_find_norm_stats(const char *model_dir, char *buf, size_t n);
/* Loads the norm stats at path, or (path NULL) the ones cli_find_norm_stats finds, saying so on
 * stderr as `who`; *out stays NULL when there are none, with a warning on stderr that states are
 * taken as normalized and actions stay in normalized space. quantile: openpi's quantile
 * normalization (every model but π0), else z-score. Returns 0, or the exit code after an error
 * message. The caller frees *out. */
#include "pi0.h"
int cli_load_norm_stats(const char *model_dir, const char *path, const char *who, int quantile,
                        pi0_norm_stats **out);

#endif
