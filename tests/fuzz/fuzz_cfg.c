/*
 * libFuzzer target: the configuration loader on arbitrary text (cfg_load_string). Properties:
 * no crash, no sanitizer report, and an error always comes with a non-empty message; a
 * configuration that loads has at least one feed and frees cleanly.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "wsbeat/cfg.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char err[512];
	struct cfg *c = NULL;
	char *text;

	if (size > 65536)
		return 0;
	text = strndup((const char *)data, size); /* the loader reads a C string: up to a NUL */
	if (!text)
		return 0;
	err[0] = '\0';
	if (cfg_load_string(text, "fuzz.conf", &c, err, sizeof err) == 0) {
		if (!c || c->n_feeds == 0)
			abort();
		cfg_free(c);
	} else if (err[0] == '\0' || strnlen(err, sizeof err) == sizeof err) {
		abort(); /* an error must say something, NUL-terminated */
	}
	free(text);
	return 0;
}
