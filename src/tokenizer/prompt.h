/* prompt.h — internal: openpi's prompt cleaning, shared by the π0 and π0.5 prompt formats. */
#ifndef PI0_PROMPT_H
#define PI0_PROMPT_H

#include <stddef.h>

/* prompt.strip() (Python's whitespace) with '_' and '\n' replaced by ' ', into out (at least
 * strlen(prompt) + 1 bytes); returns the length. */
size_t prompt_clean(const char *prompt, char *out);

#endif
