/* gen_assets.c — `pi0 gen-model --assets`: a norm_stats.json under every asset id the openpi
 * configs read (assets/<asset_id>/norm_stats.json, as openpi's conversion leaves them beside a
 * converted checkpoint), so that each openpi `--config` runs on a generated model. The
 * statistics are neutral (mean 0, std 1, q01 -1, q99 1: z-score and quantile normalization both
 * leave values in [-1, 1] unchanged) with the lengths of the robot's real data: LIBERO state 8
 * (eef position 3, axis-angle 3, gripper 2) and actions 7, DROID 8 and 8 (7 joints + gripper),
 * ALOHA 14 and 14. */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "cli.h"
#include "../src/policy/configs.h"

static int mkdirs(char *path) { /* mkdir -p */
    for (char *p = path + 1; *p; p++) {
        if (*p != '/') continue;
        *p = 0;
        const int bad = mkdir(path, 0755) != 0 && errno != EEXIST;
        *p = '/';
        if (bad) return -1;
    }
    return mkdir(path, 0755) != 0 && errno != EEXIST ? -1 : 0;
}

static void vec(FILE *f, const char *name, int n, double v, int last) {
    fprintf(f, "\"%s\": [", name);
    for (int i = 0; i < n; i++) fprintf(f, "%s%g", i ? ", " : "", v);
    fprintf(f, "]%s", last ? "" : ", ");
}

static void stats(FILE *f, const char *name, int n, int last) {
    fprintf(f, "    \"%s\": {", name);
    vec(f, "mean", n, 0, 0);
    vec(f, "std", n, 1, 0);
    vec(f, "q01", n, -1, 0);
    vec(f, "q99", n, 1, 1);
    fprintf(f, "}%s\n", last ? "" : ",");
}

/* Writes out/assets/<id>/norm_stats.json for each distinct asset id; lengths must fit the
 * model's state_dim / action_dim. Returns 0, or 2 after printing the reason. */
int gen_asset_norm_stats(const char *out, int state_dim, int action_dim) {
    const char *done[16];
    int ndone = 0;
    for (int i = 0; i < pc_count(); i++) {
        const pc_config *c = pc_at(i);
        if (!c->asset_id || !c->robot) continue;
        int seen = 0;
        for (int j = 0; j < ndone; j++) seen |= !strcmp(done[j], c->asset_id);
        if (seen || ndone == (int)(sizeof done / sizeof *done)) continue;
        done[ndone++] = c->asset_id;
        int ns, na;
        switch (c->robot->robot) {
        case PC_ROBOT_LIBERO: ns = 8; na = 7; break;
        case PC_ROBOT_DROID: ns = 8; na = 8; break;
        case PC_ROBOT_ALOHA: ns = 14; na = 14; break;
        default: continue;
        }
        if (ns > state_dim || na > action_dim) {
            fprintf(stderr, "pi0: note: no assets/%s/norm_stats.json: its state %d / actions %d exceed the model's "
                    "state_dim %d / action_dim %d\n", c->asset_id, ns, na, state_dim, action_dim);
            continue;
        }
        char path[4096];
        const int len = snprintf(path, sizeof path, "%s/assets/%s", out, c->asset_id);
        if (len < 0 || len >= (int)sizeof path - 20) return cli_error(2, "%s: path too long", out);
        if (mkdirs(path) != 0) return cli_error(2, "%s: cannot create directory: %s", path, strerror(errno));
        strcat(path, "/norm_stats.json");
        FILE *f = fopen(path, "w");
        if (!f) return cli_error(2, "%s: cannot write: %s", path, strerror(errno));
        fprintf(f, "{\n  \"norm_stats\": {\n");
        stats(f, "state", ns, 0);
        stats(f, "actions", na, 1);
        fprintf(f, "  }\n}\n");
        if (ferror(f) | fclose(f)) return cli_error(2, "%s: cannot write", path);
        fprintf(stderr, "pi0: wrote %s (neutral statistics: state %d, actions %d values)\n", path, ns, na);
    }
    return 0;
}
