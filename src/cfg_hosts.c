/*
 * cfg_hosts: the top-level `hosts` list, limits on connection attempts per server:
 *
 *   hosts = ( { match = "*.okx.com"; max_connects_per_second = 3; max_connections = 30; } );
 *
 * match is a shell-style wildcard (fnmatch: * ? [...]) on the URL's host, compared without
 * regard to case; the first entry that matches a feed applies to it, and all the hosts one
 * entry matches share its limits.
 */
#include "cfg_internal.h"

#include <fnmatch.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define HO(f) offsetof(struct cfg_host, f)

/* clang-format off */
static const struct cfg_key host_keys[] = {
	KEY_STR("match",                   K_STR, HO(match), F_REQUIRED | F_NONEMPTY),
	KEY_NUM("max_connects_per_second", K_U32, HO(max_connects_per_second), 1, 1000000, 0),
	KEY_NUM("max_connections",         K_U32, HO(max_connections), 1, 10000000, 0),
	KEY_END,
};
/* clang-format on */

/* Host names, IP literals (IPv6 without brackets) and the wildcard characters. */
static bool is_pattern(const char *p)
{
	return strspn(p, "abcdefghijklmnopqrstuvwxyz0123456789.-_:*?[]!") == strlen(p);
}

static int check_entry(const struct cfg_ctx *x, const config_setting_t *e, const char *path,
                       struct cfg_host *h, const struct cfg *c, size_t idx)
{
	const config_setting_t *m = config_setting_get_member(e, "match");
	char p[CFG_PATH_MAX];

	cfg_path_join(p, path, "match");
	for (char *s = h->match; *s; s++)
		*s = tolower_ascii(*s);
	if (!is_pattern(h->match))
		return cfg_err(x, m, p,
		               "must be a host name or address, with shell wildcards * ? [...] "
		               "(got \"%.70s\")",
		               h->match);
	if (!h->max_connects_per_second && !h->max_connections)
		return cfg_err(x, e, path,
		               "sets no limit: give max_connects_per_second, max_connections or "
		               "both");
	for (size_t j = 0; j < idx; j++)
		if (strcmp(c->hosts[j].match, h->match) == 0)
			return cfg_err(
			    x, m, p,
			    "\"%s\" is already hosts[%zu] (line %d); the first entry that "
			    "matches wins, so this one would never apply",
			    h->match, j, c->hosts[j].line);
	return 0;
}

int cfg_hosts_load(const struct cfg_ctx *x, const config_setting_t *hs, struct cfg *c)
{
	char path[CFG_PATH_MAX];
	size_t n;

	if (!hs)
		return 0;
	if (config_setting_type(hs) != CONFIG_TYPE_LIST)
		return cfg_err(x, hs, "hosts",
		               "must be a list ( { match = ...; max_connects_per_second = ...; }, "
		               "... )");
	n = (size_t)config_setting_length(hs);
	c->hosts = calloc(n ? n : 1, sizeof(*c->hosts));
	if (!c->hosts)
		return cfg_err(x, hs, "hosts", "out of memory");
	for (size_t i = 0; i < n; i++) {
		const config_setting_t *e = config_setting_get_elem(hs, (unsigned)i);
		struct cfg_host *h = &c->hosts[i];

		c->n_hosts = i + 1;
		snprintf(path, sizeof(path), "hosts[%zu]", i);
		if (config_setting_type(e) != CONFIG_TYPE_GROUP)
			return cfg_err(x, e, path, "must be a group { match = ...; ... }, not %s",
			               cfg_type_name(e));
		cfg_keys_init(host_keys, h);
		h->line = (int)config_setting_source_line(e);
		if (cfg_keys_apply(x, host_keys, e, h, path, LVL_TOP) < 0 ||
		    cfg_keys_required(x, host_keys, e, path) < 0 ||
		    check_entry(x, e, path, h, c, i) < 0)
			return -1;
	}
	return 0;
}

void cfg_hosts_free(struct cfg *c)
{
	for (size_t i = 0; i < c->n_hosts; i++)
		cfg_keys_free(host_keys, &c->hosts[i]);
	free(c->hosts);
	c->hosts = NULL;
	c->n_hosts = 0;
}

int cfg_host_find(const struct cfg *c, const char *host)
{
	for (size_t i = 0; i < c->n_hosts; i++)
		if (fnmatch(c->hosts[i].match, host, FNM_CASEFOLD) == 0)
			return (int)i;
	return -1;
}
