/* configs.c — the table of openpi policy configs (see configs.h). Facts read from openpi's
 * src/openpi/training/config.py (_CONFIGS, LeRobotAlohaDataConfig, LeRobotLiberoDataConfig,
 * RLDSDroidDataConfig, LeRobotDROIDDataConfig, SimpleDataConfig, ModelTransformFactory),
 * training/misc/{roboarena,polaris}_config.py, models/pi0_config.py (Pi0Config defaults:
 * action_horizon 50, max_token_len 48 for π0 and 200 for π0.5, discrete_state_input = pi05) and
 * policies/{libero,droid,aloha}_policy.py. Normalization is not a column: openpi sets
 * use_quantile_norm = (model_type != PI0), i.e. z-score for π0, quantile for π0.5. */
#include "configs.h"

#include "../common.h"

#include <stdio.h>
#include <string.h>

/* openpi's ALOHA inference configs send {"reset_pose": [0, -1.5, 1.5, 0, 0, 0]}. */
const double pc_aloha_reset_pose[6] = {0, -1.5, 1.5, 0, 0, 0};

/* ---------------------------------------------------------------- robots */

/* pi0.c's own layout: the model's camera names under images/, the state as given. */
static const pc_robot_layout k_generic = {
    PC_ROBOT_GENERIC, "pi0.c generic inputs", "pi0.c generic outputs",
    {{"images/base_0_rgb", 0, 0}, {"images/left_wrist_0_rgb", 1, 0}, {"images/right_wrist_0_rgb", 2, 0}}, 3,
    "images/", {NULL}, 1, {"state"}, 1, 0, 0};

/* libero_policy.py LiberoInputs: both images read unconditionally (a missing key raises), the
 * right wrist black and masked (π0 / π0.5); LiberoOutputs: actions[..., :7]. */
static const pc_robot_layout k_libero = {
    PC_ROBOT_LIBERO, "LiberoInputs", "LiberoOutputs",
    {{"observation/image", 0, 1}, {"observation/wrist_image", 1, 1}}, 2,
    NULL, {NULL}, 2, {"observation/state"}, 1, 0, 7};

/* droid_policy.py DroidInputs: state = concatenate([joint_position, gripper_position]) (a
 * scalar gripper made 1-D), exterior_image_1_left → base, wrist_image_left → left wrist (both
 * required), right wrist black and masked; DroidOutputs: actions[..., :8]. */
static const pc_robot_layout k_droid = {
    PC_ROBOT_DROID, "DroidInputs", "DroidOutputs",
    {{"observation/exterior_image_1_left", 0, 1}, {"observation/wrist_image_left", 1, 1}}, 2,
    NULL, {NULL}, 2, {"observation/joint_position", "observation/gripper_position"}, 2, 0, 8};

/* aloha_policy.py AlohaInputs: images ⊆ EXPECTED_CAMERAS (cam_high, cam_low, cam_left_wrist,
 * cam_right_wrist; any other raises), cam_high required (base), wrists optional (black and
 * masked when absent), cam_low unused; state [14] (adapt_to_pi: flips and gripper conversion);
 * AlohaOutputs: actions[:, :14], then adapt_to_pi's inverse. */
static const pc_robot_layout k_aloha = {
    PC_ROBOT_ALOHA, "AlohaInputs", "AlohaOutputs",
    {{"images/cam_high", 0, 1}, {"images/cam_left_wrist", 1, 0}, {"images/cam_right_wrist", 2, 0}}, 3,
    "images/", {"images/cam_low"}, 1, {"state"}, 1, 14, 14};

/* ---------------------------------------------------------------- the table */

#define ALOHA_DELTA {6, -1, 6, -1} /* LeRobotAlohaDataConfig: make_bool_mask(6, -1, 6, -1) */
#define LIBERO_DELTA {6, -1}       /* LeRobotLiberoDataConfig(extra_delta_transform=True) */
#define DROID_JOINTPOS_DELTA {7, -1} /* RLDSDroidDataConfig(action_space=JOINT_POSITION) */
#define NO_DELTA {0}

static const pc_config k_configs[] = {
    /* pi0.c presets: the robot's openpi transforms only (no delta actions, no metadata, model
     * settings from config.json, norm stats by pi0.c's rules); for openpi's released
     * checkpoints use the openpi names below. */
    {"generic", "pi0.c: images/{base_0_rgb,left_wrist_0_rgb,right_wrist_0_rgb}, state, prompt", 1, PC_MODEL_ANY,
     &k_generic, 0, NO_DELTA, NULL, 0, NULL, 0, 0, -1},
    {"libero", "pi0.c preset: openpi LiberoInputs/LiberoOutputs without the delta transform", 1, PC_MODEL_ANY,
     &k_libero, 0, NO_DELTA, NULL, 0, NULL, 0, 0, -1},
    {"droid", "pi0.c preset: openpi DroidInputs/DroidOutputs", 1, PC_MODEL_ANY, &k_droid, 0, NO_DELTA, NULL, 0,
     NULL, 0, 0, -1},
    {"aloha", "pi0.c preset: openpi AlohaInputs/AlohaOutputs(adapt_to_pi=True) without the delta transform", 1,
     PC_MODEL_ANY, &k_aloha, 1, NO_DELTA, NULL, 0, NULL, 0, 0, -1},

    /* config.py _CONFIGS, "Inference Aloha configs": LeRobotAlohaDataConfig defaults
     * use_delta_joint_actions=True, adapt_to_pi=True. */
    {"pi0_aloha", "config.py TrainConfig(name=\"pi0_aloha\"): Pi0Config(), LeRobotAlohaDataConfig(assets=AssetsConfig("
     "asset_id=\"trossen\")), policy_metadata reset_pose", 0, PC_MODEL_PI0, &k_aloha, 1, ALOHA_DELTA, NULL, 1,
     "trossen", 50, 48, -1},
    {"pi05_aloha", "config.py TrainConfig(name=\"pi05_aloha\"): Pi0Config(pi05=True), LeRobotAlohaDataConfig("
     "asset_id=\"trossen\"), policy_metadata reset_pose", 0, PC_MODEL_PI05, &k_aloha, 1, ALOHA_DELTA, NULL, 1,
     "trossen", 50, 200, 1},
    {"pi0_aloha_towel", "config.py TrainConfig(name=\"pi0_aloha_towel\"): LeRobotAlohaDataConfig(asset_id=\"trossen\", "
     "default_prompt=\"fold the towel\"), policy_metadata reset_pose", 0, PC_MODEL_PI0, &k_aloha, 1, ALOHA_DELTA,
     "fold the towel", 1, "trossen", 50, 48, -1},
    {"pi0_aloha_tupperware", "config.py TrainConfig(name=\"pi0_aloha_tupperware\"): LeRobotAlohaDataConfig(asset_id="
     "\"trossen\", default_prompt=...), policy_metadata reset_pose", 0, PC_MODEL_PI0, &k_aloha, 1, ALOHA_DELTA,
     "open the tupperware and put the food on the plate", 1, "trossen", 50, 48, -1},
    /* "Fine-tuning Aloha configs": no policy_metadata. */
    {"pi0_aloha_pen_uncap", "config.py TrainConfig(name=\"pi0_aloha_pen_uncap\"): LeRobotAlohaDataConfig(asset_id="
     "\"trossen\", default_prompt=\"uncap the pen\")", 0, PC_MODEL_PI0, &k_aloha, 1, ALOHA_DELTA, "uncap the pen", 0,
     "trossen", 50, 48, -1},
    {"pi05_aloha_pen_uncap", "config.py TrainConfig(name=\"pi05_aloha_pen_uncap\"): Pi0Config(pi05=True), "
     "LeRobotAlohaDataConfig(asset_id=\"trossen\", default_prompt=\"uncap the pen\")", 0, PC_MODEL_PI05, &k_aloha, 1,
     ALOHA_DELTA, "uncap the pen", 0, "trossen", 50, 200, 1},
    /* "ALOHA Sim configs": use_delta_joint_actions=False; asset id = repo_id. */
    {"pi0_aloha_sim", "config.py TrainConfig(name=\"pi0_aloha_sim\"): LeRobotAlohaDataConfig(repo_id=\"lerobot/"
     "aloha_sim_transfer_cube_human\", default_prompt=\"Transfer cube\", use_delta_joint_actions=False)", 0,
     PC_MODEL_PI0, &k_aloha, 1, NO_DELTA, "Transfer cube", 0, "lerobot/aloha_sim_transfer_cube_human", 50, 48, -1},

    /* "Inference DROID configs": SimpleDataConfig(asset_id="droid") with DroidInputs/DroidOutputs. */
    {"pi0_droid", "config.py TrainConfig(name=\"pi0_droid\"): Pi0Config(action_horizon=10), SimpleDataConfig("
     "asset_id=\"droid\", DroidInputs/DroidOutputs)", 0, PC_MODEL_PI0, &k_droid, 0, NO_DELTA, NULL, 0, "droid", 10,
     48, -1},
    {"pi05_droid", "config.py TrainConfig(name=\"pi05_droid\"): Pi0Config(action_horizon=15, pi05=True), "
     "SimpleDataConfig(asset_id=\"droid\", DroidInputs/DroidOutputs)", 0, PC_MODEL_PI05, &k_droid, 0, NO_DELTA,
     NULL, 0, "droid", 15, 200, 1},
    /* "Fine-tuning DROID configs". */
    {"pi05_full_droid_finetune", "config.py TrainConfig(name=\"pi05_full_droid_finetune\"): Pi0Config(pi05=True, "
     "action_horizon=16), RLDSDroidDataConfig(action_space=JOINT_POSITION, asset_id=\"droid\")", 0, PC_MODEL_PI05,
     &k_droid, 0, DROID_JOINTPOS_DELTA, NULL, 0, "droid", 16, 200, 1},
    {"pi05_droid_finetune", "config.py TrainConfig(name=\"pi05_droid_finetune\"): Pi0Config(pi05=True, "
     "action_horizon=16), LeRobotDROIDDataConfig(asset_id=\"droid\") (joint velocities: no delta)", 0,
     PC_MODEL_PI05, &k_droid, 0, NO_DELTA, NULL, 0, "droid", 16, 200, 1},
    /* training/misc/polaris_config.py: RLDSDroidDataConfig(action_space=JOINT_POSITION). */
    {"pi05_droid_jointpos_polaris", "polaris_config.py TrainConfig(name=\"pi05_droid_jointpos_polaris\"): "
     "Pi0Config(action_horizon=15, pi05=True), RLDSDroidDataConfig(JOINT_POSITION, asset_id=\"droid\")", 0,
     PC_MODEL_PI05, &k_droid, 0, DROID_JOINTPOS_DELTA, NULL, 0, "droid", 15, 200, 1},
    {"pi0_droid_jointpos_polaris", "polaris_config.py TrainConfig(name=\"pi0_droid_jointpos_polaris\"): "
     "Pi0Config(action_horizon=10, max_token_len=100), RLDSDroidDataConfig(JOINT_POSITION, asset_id=\"droid\")", 0,
     PC_MODEL_PI0, &k_droid, 0, DROID_JOINTPOS_DELTA, NULL, 0, "droid", 10, 100, -1},
    {"pi0_droid_jointpos_100k_polaris", "polaris_config.py TrainConfig(name=\"pi0_droid_jointpos_100k_polaris\"): "
     "Pi0Config(action_horizon=10, max_token_len=100), RLDSDroidDataConfig(JOINT_POSITION, asset_id=\"droid\")", 0,
     PC_MODEL_PI0, &k_droid, 0, DROID_JOINTPOS_DELTA, NULL, 0, "droid", 10, 100, -1},

    /* "Fine-tuning Libero configs": LeRobotLiberoDataConfig(repo_id="physical-intelligence/libero"),
     * asset id = repo_id. */
    {"pi0_libero", "config.py TrainConfig(name=\"pi0_libero\"): Pi0Config(), LeRobotLiberoDataConfig("
     "repo_id=\"physical-intelligence/libero\", extra_delta_transform=True)", 0, PC_MODEL_PI0, &k_libero, 0,
     LIBERO_DELTA, NULL, 0, "physical-intelligence/libero", 50, 48, -1},
    {"pi0_libero_low_mem_finetune", "config.py TrainConfig(name=\"pi0_libero_low_mem_finetune\"): Pi0Config("
     "gemma_2b_lora, gemma_300m_lora) (LoRA: the same shapes), LeRobotLiberoDataConfig(extra_delta_transform=True)",
     0, PC_MODEL_PI0, &k_libero, 0, LIBERO_DELTA, NULL, 0, "physical-intelligence/libero", 50, 48, -1},
    {"pi05_libero", "config.py TrainConfig(name=\"pi05_libero\"): Pi0Config(pi05=True, action_horizon=10, "
     "discrete_state_input=False), LeRobotLiberoDataConfig(extra_delta_transform=False)", 0, PC_MODEL_PI05,
     &k_libero, 0, NO_DELTA, NULL, 0, "physical-intelligence/libero", 10, 200, 0},
};

/* openpi configs refused by name. */
static const char k_fast[] =
    "is an openpi pi0-FAST config: an autoregressive model that decodes action tokens one by one (another model "
    "than the flow-matching pi0 / pi0.5 that pi0.c runs)";
static const struct {
    const char *name, *reason;
} k_refused[] = {
    {"pi0_fast_droid", k_fast},                     /* config.py */
    {"pi0_fast_libero", k_fast},                    /* config.py */
    {"pi0_fast_libero_low_mem_finetune", k_fast},   /* config.py */
    {"pi0_fast_full_droid_finetune", k_fast},       /* config.py */
    {"pi0_fast_droid_jointpos_polaris", k_fast},    /* polaris_config.py */
    {"paligemma_binning_droid_jointpos", k_fast},   /* polaris_config.py: Pi0FASTConfig */
    {"paligemma_binning_droid", k_fast},            /* roboarena_config.py: Pi0FASTConfig */
    {"paligemma_fast_droid", k_fast},               /* roboarena_config.py */
    {"paligemma_fast_specialist_droid", k_fast},    /* roboarena_config.py */
    {"paligemma_vq_droid", k_fast},                 /* roboarena_config.py */
    {"paligemma_diffusion_droid",                   /* roboarena_config.py */
     "is an openpi RoboArena baseline whose definition passes DroidInputs an action_dim argument that DroidInputs "
     "does not take: openpi itself cannot build this policy, so there are no openpi actions to reproduce"},
    {"debug", "is an openpi debugging config (dummy model, fake data, no norm stats); use config=generic"},
    {"debug_restore", "is an openpi debugging config (dummy model, fake data, no norm stats); use config=generic"},
    {"debug_pi05", "is an openpi debugging config (dummy model, fake data, no norm stats); use config=generic"},
};

#define N_CONFIGS ((int)(sizeof k_configs / sizeof *k_configs))
#define N_REFUSED ((int)(sizeof k_refused / sizeof *k_refused))

int pc_count(void) { return N_CONFIGS; }
const pc_config *pc_at(int i) { return i >= 0 && i < N_CONFIGS ? &k_configs[i] : NULL; }

/* Levenshtein distance, for "did you mean" (names are short). */
static int edit_distance(const char *a, const char *b) {
    int prev[128], cur[128];
    const int la = (int)strlen(a) < 127 ? (int)strlen(a) : 127, lb = (int)strlen(b) < 127 ? (int)strlen(b) : 127;
    for (int j = 0; j <= lb; j++) prev[j] = j;
    for (int i = 1; i <= la; i++) {
        cur[0] = i;
        for (int j = 1; j <= lb; j++) {
            int d = prev[j - 1] + (a[i - 1] != b[j - 1]);
            if (prev[j] + 1 < d) d = prev[j] + 1;
            if (cur[j - 1] + 1 < d) d = cur[j - 1] + 1;
            cur[j] = d;
        }
        memcpy(prev, cur, sizeof(int) * (lb + 1));
    }
    return prev[lb];
}

const pc_config *pc_find(const char *name, char *why, size_t whylen) {
    if (!name) name = "generic";
    for (int i = 0; i < N_CONFIGS; i++)
        if (!strcmp(name, k_configs[i].name)) return &k_configs[i];
    for (int i = 0; i < N_REFUSED; i++)
        if (!strcmp(name, k_refused[i].name)) {
            snprintf(why, whylen, "config '%s' %s", name, k_refused[i].reason);
            return NULL;
        }
    const char *best = k_configs[0].name;
    int best_d = 1 << 30;
    for (int i = 0; i < N_CONFIGS; i++) {
        const int d = edit_distance(name, k_configs[i].name);
        if (d < best_d) { best_d = d; best = k_configs[i].name; }
    }
    snprintf(why, whylen, "unknown config '%s' (did you mean '%s'?)", PI0_SHOW(name), best);
    return NULL;
}
