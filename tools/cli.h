/* cli.h — helpers shared by the `pi0` subcommands. Only programs print and pick exit codes:
 * 0 success, 1 usage error, 2 bad input / failed run. */
#ifndef PI0_CLI_H
#define PI0_CLI_H

int cli_error(int code, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
int cli_usage_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* msg with the library's parameter names (keyword form, "norm_stats=FILE") as this command's flags
 * ("--norm-stats FILE"), into out; returns out. cli_error applies it to every message. */
#include <stddef.h>
const char *cli_words(const char *msg, char *out, size_t cap);

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
int cmd_convert(int argc, char **argv);
/* gen-model --assets (gen_assets.c): assets/<asset_id>/norm_stats.json for the openpi configs. */
int gen_asset_norm_stats(const char *out, int state_dim, int action_dim);

#include "pi0.h"
/* After pi0_policy_load: says on stderr, as `who`, which norm stats are used (or warns that
 * without any the state is taken as normalized and the actions stay normalized) and any warning
 * of the load. */
void cli_policy_report(const char *who, const pi0_policy *p, const char *model_dir);
/* The configs pi0_policy knows, comma-separated, for help texts. */
const char *cli_config_names(void);

#endif
