/*
 * What the cfg unit tests share: load a configuration that must be valid, or one that must fail
 * with a message starting with FILE:LINE: path. Include after <cmocka.h>.
 */
#ifndef WSBEAT_TEST_CFG_HELPERS_H
#define WSBEAT_TEST_CFG_HELPERS_H

#include <string.h>

#include "wsbeat/cfg.h"

static inline struct cfg *load_ok(const char *text)
{
	char err[512] = "";
	struct cfg *c = NULL;

	if (cfg_load_string(text, "t.conf", &c, err, sizeof(err)) != 0)
		fail_msg("unexpected error: %s", err);
	assert_non_null(c);
	return c;
}

/* The message must start with prefix (file, line, path) and contain what. */
static inline void expect_err(const char *text, const char *prefix, const char *what)
{
	char err[512] = "";
	struct cfg *c = (struct cfg *)1;

	if (cfg_load_string(text, "t.conf", &c, err, sizeof(err)) != -1)
		fail_msg("accepted:\n%s", text);
	assert_null(c);
	if (strncmp(err, prefix, strlen(prefix)) != 0 || !strstr(err, what))
		fail_msg("for:\n%s\ngot:  %s\nwant: %s ... %s", text, err, prefix, what);
}

#endif
