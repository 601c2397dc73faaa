/* config.h — reads config.json (explicit golden form, openpi / lerobot forms) into pi0_config,
 * and the named presets used by the model generator. */
#ifndef PI0_CONFIG_H
#define PI0_CONFIG_H

#include "../common.h"

/* Parses JSON text (`path` is for messages). Explicit fields win over variant names. The model
 * kind is what config.json declares, else π0. */
pi0_status config_parse(pi0_config *c, const char *json, size_t len, const char *path, pi0_err *e);
pi0_status config_load(pi0_config *c, const char *path, pi0_err *e);
/* The model kind path (a config.json) declares: 0 π0, 1 π0.5; -1 when it says nothing, or cannot be
 * read (the weights then tell). */
int config_declared_kind(const char *path);
/* The same for a checkpoint whose weights say weights_pi05 (0 π0, 1 π0.5, -1 unknown): a
 * config.json that declares the other kind is refused, naming both; one that declares nothing
 * takes the weights' kind. */
pi0_status config_parse_for(pi0_config *c, const char *json, size_t len, const char *path, int weights_pi05,
                            const char *weights_path, pi0_err *e);
pi0_status config_load_for(pi0_config *c, const char *path, int weights_pi05, const char *weights_path,
                           pi0_err *e);
/* Checks every value is in range and consistent (depths and heads shared, etc.). */
pi0_status config_validate(const pi0_config *c, const char *path, pi0_err *e);
/* lerobot's cameras: the keys of config.json's VISUAL input_features in order (up to cap into
 * names; NULL for an empty_camera_<i> slot not listed as a feature), their count as the return
 * value, -1 when input_features / empty_cameras are malformed. (cJSON root.) */
struct cJSON;
int config_visual_features(const struct cJSON *root, const char **names, int cap);
/* "tiny", "small", "demo" or "full", as π0 (pi05 = 0) or π0.5; 0 if the name is unknown. */
int config_preset(pi0_config *c, const char *name, int pi05);
/* Writes c in the explicit form. Returns malloc'd text or NULL. */
char *config_to_json(const pi0_config *c);

/* The factor token embeddings are multiplied by: sqrt(vlm width) in float32, or its bf16
 * rounding for a lerobot bfloat16 checkpoint (text_embed_bf16). */
float config_text_embed_scale(const pi0_config *c);

#endif
