/* robot_loop.c — the library as a robot program uses it: load a checkpoint once, then per control
 * step build an observation (camera frame, prompt, robot state), infer, and act on the chunk.
 *   cc robot_loop.c $(pkg-config --cflags --libs pi0) -o robot_loop
 *   ./robot_loop MODEL_DIR TOKENIZER FRAME.png "PROMPT" s1 s2 ...   (prints actions as CSV) */
#include <pi0.h>
#include <stdio.h>
#include <stdlib.h>

#define TRY(call, err) do { if ((call) != PI0_OK) { fprintf(stderr, "%s\n", err); return 2; } } while (0)

int main(int argc, char **argv) {
    if (argc < 6) { fprintf(stderr, "usage: robot_loop MODEL TOKENIZER FRAME PROMPT s1 [s2 ...]\n"); return 1; }
    int n = argc - 5 < 64 ? argc - 5 : 64;
    float state[64], *actions;
    for (int i = 0; i < n; i++) state[i] = strtof(argv[5 + i], NULL);
    pi0_model *m = pi0_model_create();
    pi0_tokenizer *t = pi0_tokenizer_create();
    pi0_norm_stats *ns = pi0_norm_stats_create();
    pi0_obs *o = pi0_obs_create();
    pi0_session *s = pi0_session_create();
    char path[4096];
    TRY(pi0_model_load(m, argv[1]), pi0_model_error(m));
    TRY(pi0_tokenizer_load(t, argv[2]), pi0_tokenizer_error(t));
    snprintf(path, sizeof path, "%s/norm_stats.json", argv[1]);
    if (pi0_norm_stats_load(ns, path, 0) != PI0_OK) {  /* without: state and actions normalized */
        pi0_norm_stats_free(ns);
        ns = NULL;
    }
    TRY(pi0_session_init(s, m, NULL), pi0_session_error(s));
    TRY(pi0_obs_init(o, m), pi0_obs_error(o));
    const pi0_config *c = pi0_model_config(m);
    actions = malloc(sizeof(float) * c->action_horizon * c->action_dim);

    /* One control step (a robot repeats this for every new frame and state). A live camera's
     * frame goes in with pi0_obs_set_image_u8(o, "base_0_rgb", rgb, width, height, 3, 0). */
    TRY(pi0_obs_set_image_file(o, "base_0_rgb", argv[3]), pi0_obs_error(o));
    TRY(pi0_obs_set_prompt(o, t, argv[4]), pi0_obs_error(o));
    TRY(pi0_obs_set_state(o, state, n, ns), pi0_obs_error(o));
    TRY(pi0_session_infer(s, pi0_obs_inputs(o), actions), pi0_session_error(s));
    pi0_norm_stats_unnormalize_actions(ns, actions, c->action_horizon, c->action_dim);
    for (int h = 0; h < c->action_horizon; h++)  /* the chunk: action_horizon steps, n dims each */
        for (int d = 0; d < n; d++) printf("%.9g%c", actions[h * c->action_dim + d], d + 1 < n ? ',' : '\n');

    free(actions);
    pi0_session_free(s);
    pi0_obs_free(o);
    pi0_norm_stats_free(ns);
    pi0_tokenizer_free(t);
    pi0_model_free(m);
    return 0;
}
