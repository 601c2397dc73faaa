/* configs.h — openpi's policy configs as data: one entry per openpi TrainConfig name (plus
 * pi0.c's presets), each naming the openpi definition it mirrors. What an entry says is what
 * openpi's create_trained_policy builds for that name: the robot's input/output transforms, the
 * delta-action mask, the default prompt, the policy metadata, the asset id of its norm stats and
 * the model settings that a converted checkpoint's config.json leaves out. */
#ifndef PI0_POLICY_CONFIGS_H
#define PI0_POLICY_CONFIGS_H

#include <stddef.h>

typedef enum { PC_MODEL_ANY = 0, PC_MODEL_PI0, PC_MODEL_PI05 } pc_model;
typedef enum { PC_ROBOT_GENERIC = 0, PC_ROBOT_LIBERO, PC_ROBOT_DROID, PC_ROBOT_ALOHA } pc_robot;

/* A camera the robot's Inputs transform reads: the observation key (nested maps flattened with
 * '/', as openpi's flatten_dict does), the π0 image slot it fills (0 base_0_rgb, 1
 * left_wrist_0_rgb, 2 right_wrist_0_rgb), and whether openpi raises without it. */
typedef struct {
    const char *key;
    int slot;
    int required;
} pc_camera;

/* The robot's transforms (openpi src/openpi/policies/<robot>_policy.py). */
typedef struct {
    pc_robot robot;
    const char *inputs, *outputs;   /* openpi's class names, for messages and metadata */
    pc_camera cameras[3];
    int n_cameras;
    const char *camera_group;       /* every key under this prefix must be a known camera */
    const char *ignored[1];         /* keys accepted and not used (ALOHA's cam_low) */
    int min_cameras;                /* at least this many cameras given (generic: 1) */
    const char *state_keys[2];      /* concatenated in this order (DroidInputs) */
    int n_state_keys;
    int state_len;                  /* the state's required length (ALOHA adapt_to_pi: 14), 0 any */
    int out_dims;                   /* the Outputs slice [..., :out_dims]; 0 = all */
} pc_robot_layout;

typedef struct {
    const char *name;
    const char *source;             /* the openpi definition it mirrors */
    int preset;                     /* 1: a pi0.c preset (robot keys only), not an openpi config */
    pc_model model;
    const pc_robot_layout *robot;
    int adapt_to_pi;                /* AlohaInputs/AlohaOutputs(adapt_to_pi=...) */
    int delta[4];                   /* make_bool_mask(*delta) for AbsoluteActions; all 0 = none */
    const char *default_prompt;     /* the config's InjectDefaultPrompt, NULL = none */
    int reset_pose;                 /* policy_metadata {"reset_pose": [0, -1.5, 1.5, 0, 0, 0]} */
    const char *asset_id;           /* assets/<asset_id>/norm_stats.json; NULL = pi0.c's rules */
    /* Model settings (Pi0Config) that openpi takes from the config, not the checkpoint:
     * 0 / -1 = config.json's (presets and generic). */
    int action_horizon, max_token_len, discrete_state_input;
} pc_config;

/* The config called `name` (aliases resolved), or NULL with a one-line reason in why (unknown
 * name with the closest known one, a pi0-FAST config, a config openpi cannot serve). */
const pc_config *pc_find(const char *name, char *why, size_t whylen);
int pc_count(void);
const pc_config *pc_at(int i);
extern const double pc_aloha_reset_pose[6];

#endif
