/* config.h — reads config.json (explicit golden form, openpi / lerobot forms) into pi0_config,
 * and the named presets used by the model generator. */
#ifndef PI0_CONFIG_H
#define PI0_CONFIG_H

#include "../common.h"

/* Parses JSON text (`path` is for messages). Explicit fields win over variant names. */
pi0_status config_parse(pi0_config *c, const char *json, size_t len, const char *path, pi0_err *e);
pi0_status config_load(pi0_config *c, const char *path, pi0_err *e);
/* Checks every value is in range and consistent (depths and heads shared, etc.). */
pi0_status config_validate(const pi0_config *c, const char *path, pi0_err *e);
/* "tiny", "small", "demo" or "full"; 0 if the name is unknown. */
int config_preset(pi0_config *c, const char *name);
/* Writes c in the explicit form. Returns malloc'd text or NULL. */
char *config_to_json(const pi0_config *c);

#endif
