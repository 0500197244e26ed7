/*
 * cfg_dialect: the settings that let a feed speak its API's own keep-alive: templates
 * (payloads, messages, header values, the URL query), matches (expect, waits, replies[].when),
 * the open sequence and reply rules. Values are compiled here, once per load, so a bad one is a
 * config error with FILE:LINE and nothing is parsed again per message.
 */
#include "cfg_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int cfg_tmpl_set(const struct cfg_ctx *x, const config_setting_t *s, unsigned allow,
                 struct tmpl **dst, const char *path)
{
	char why[512];
	const char *v;
	struct tmpl *t;

	if (config_setting_type(s) != CONFIG_TYPE_STRING)
		return cfg_err(x, s, path, "must be a string, not %s", cfg_type_name(s));
	v = config_setting_get_string(s);
	if (tmpl_compile(v, strlen(v), allow, &x->tenv, &t, why, sizeof(why)) < 0)
		return cfg_err(x, s, path, "%s", why);
	tmpl_free(*dst);
	*dst = t;
	return 0;
}

/* A match is one string or a list of strings that must all hold. */
int cfg_match_set(const struct cfg_ctx *x, const config_setting_t *s, unsigned allow,
                  struct match **dst, const char *path)
{
	int type = config_setting_type(s), n = 1;
	bool list = type == CONFIG_TYPE_LIST || type == CONFIG_TYPE_ARRAY;
	const char **v;
	char why[512], ep[CFG_PATH_MAX];
	struct match *m;
	int rc;

	if (!list && type != CONFIG_TYPE_STRING)
		return cfg_err(
		    x, s, path,
		    "must be a match (a string, or a list of strings that must all hold), "
		    "not %s",
		    cfg_type_name(s));
	if (list && (n = config_setting_length(s)) == 0)
		return cfg_err(x, s, path, "an empty list matches nothing; give at least one");
	v = calloc((size_t)n, sizeof(*v));
	if (!v)
		return cfg_err(x, s, path, "out of memory");
	for (int i = 0; i < n; i++) {
		const config_setting_t *e = list ? config_setting_get_elem(s, (unsigned)i) : s;
		if (config_setting_type(e) != CONFIG_TYPE_STRING) {
			free(v);
			snprintf(ep, sizeof(ep), "%s[%d]", path, i);
			return cfg_err(x, e, ep, "must be a string, not %s", cfg_type_name(e));
		}
		v[i] = config_setting_get_string(e);
	}
	rc = match_compile(v, (size_t)n, allow, &x->tenv, &m, why, sizeof(why));
	free(v);
	if (rc < 0)
		return cfg_err(x, s, path, "%s", why);
	match_free(*dst);
	*dst = m;
	return 0;
}

/* A group that may hold only members a and b. */
static int only_members(const struct cfg_ctx *x, const config_setting_t *e, const char *ep,
                        const char *a, const char *b, const char *what)
{
	char p[CFG_PATH_MAX];

	for (int i = 0; i < config_setting_length(e); i++) {
		const config_setting_t *m = config_setting_get_elem(e, (unsigned)i);
		const char *name = config_setting_name(m);
		if (strcmp(name, a) != 0 && strcmp(name, b) != 0)
			return cfg_err(x, m, cfg_path_join(p, ep, name),
			               "unknown setting '%s' (%s)", name, what);
	}
	return 0;
}

/* A list whose items each become one element of an array (on_open, replies). */
struct list_kind {
	size_t size;
	bool arrays; /* [ ... ] is accepted too (items that are all strings) */
	const char *shape;
	int (*set)(const struct cfg_ctx *x, const config_setting_t *e, void *elem, const char *ep);
	void (*free)(void *v, size_t n);
};

static int list_set(const struct cfg_ctx *x, const struct cfg_key *k, const config_setting_t *s,
                    void *base, const char *path, const struct list_kind *lk)
{
	int type = config_setting_type(s);
	size_t n;
	char *v, ep[CFG_PATH_MAX];

	if (type != CONFIG_TYPE_LIST && !(lk->arrays && type == CONFIG_TYPE_ARRAY))
		return cfg_err(x, s, path, "must be a list %s, not %s", lk->shape,
		               cfg_type_name(s));
	n = (size_t)config_setting_length(s);
	v = calloc(n ? n : 1, lk->size);
	if (!v)
		return cfg_err(x, s, path, "out of memory");
	for (size_t i = 0; i < n; i++) {
		snprintf(ep, sizeof(ep), "%s[%zu]", path, i);
		if (lk->set(x, config_setting_get_elem(s, (unsigned)i), v + i * lk->size, ep) < 0) {
			lk->free(v, n);
			return -1;
		}
	}
	lk->free(*CFG_FIELD(base, k->off, void *), *CFG_FIELD(base, k->off2, size_t));
	*CFG_FIELD(base, k->off, void *) = v;
	*CFG_FIELD(base, k->off2, size_t) = n;
	return 0;
}

void cfg_steps_free(struct cfg_step *v, size_t n)
{
	for (size_t i = 0; v && i < n; i++) {
		tmpl_free(v[i].send);
		match_free(v[i].wait);
	}
	free(v);
}

void cfg_replies_free(struct cfg_reply *v, size_t n)
{
	for (size_t i = 0; v && i < n; i++) {
		match_free(v[i].when);
		tmpl_free(v[i].send);
	}
	free(v);
}

/* Message templates in on_open: time and secrets, no ${seq} (no beat yet) or ${json:}. */
#define STEP_ALLOW (TMPL_TIME | TMPL_SECRET)

/* One item of on_open: "message", { send = "message"; } or { wait = MATCH; }. */
static int step_set(const struct cfg_ctx *x, const config_setting_t *e, struct cfg_step *st,
                    const char *ep)
{
	const config_setting_t *send, *wait;
	char p[CFG_PATH_MAX];

	if (config_setting_type(e) == CONFIG_TYPE_STRING)
		return cfg_tmpl_set(x, e, STEP_ALLOW, &st->send, ep);
	if (config_setting_type(e) != CONFIG_TYPE_GROUP)
		return cfg_err(
		    x, e, ep,
		    "must be a message string or { wait = MATCH; } (or { send = \"...\"; })"
		    ", not %s",
		    cfg_type_name(e));
	if (only_members(x, e, ep, "send", "wait", "an on_open item has send or wait") < 0)
		return -1;
	send = config_setting_get_member(e, "send");
	wait = config_setting_get_member(e, "wait");
	if (!send == !wait)
		return cfg_err(x, e, ep, "needs exactly one of send and wait");
	if (send)
		return cfg_tmpl_set(x, send, STEP_ALLOW, &st->send, cfg_path_join(p, ep, "send"));
	return cfg_match_set(x, wait, TMPL_SECRET, &st->wait, cfg_path_join(p, ep, "wait"));
}

static int step_elem(const struct cfg_ctx *x, const config_setting_t *e, void *elem, const char *ep)
{
	return step_set(x, e, elem, ep);
}

static void steps_free(void *v, size_t n)
{
	cfg_steps_free(v, n);
}

int cfg_steps_set(const struct cfg_ctx *x, const struct cfg_key *k, const config_setting_t *s,
                  void *base, const char *path)
{
	static const struct list_kind steps = {sizeof(struct cfg_step), true,
	                                       "( \"message\", { wait = MATCH; }, ... )", step_elem,
	                                       steps_free};

	return list_set(x, k, s, base, path, &steps);
}

static int reply_set(const struct cfg_ctx *x, const config_setting_t *e, struct cfg_reply *r,
                     const char *ep)
{
	const config_setting_t *when, *send;
	char p[CFG_PATH_MAX];

	if (config_setting_type(e) != CONFIG_TYPE_GROUP)
		return cfg_err(x, e, ep,
		               "must be a group { when = MATCH; send = \"...\"; }, not %s",
		               cfg_type_name(e));
	if (only_members(x, e, ep, "when", "send", "a reply has when and send") < 0)
		return -1;
	when = config_setting_get_member(e, "when");
	send = config_setting_get_member(e, "send");
	if (!when || !send)
		return cfg_err(x, e, ep, "missing required setting '%s'", when ? "send" : "when");
	if (cfg_match_set(x, when, TMPL_SECRET, &r->when, cfg_path_join(p, ep, "when")) < 0)
		return -1;
	return cfg_tmpl_set(x, send, TMPL_ANY, &r->send, cfg_path_join(p, ep, "send"));
}

static int reply_elem(const struct cfg_ctx *x, const config_setting_t *e, void *elem,
                      const char *ep)
{
	return reply_set(x, e, elem, ep);
}

static void replies_free(void *v, size_t n)
{
	cfg_replies_free(v, n);
}

int cfg_replies_set(const struct cfg_ctx *x, const struct cfg_key *k, const config_setting_t *s,
                    void *base, const char *path)
{
	static const struct list_kind replies = {sizeof(struct cfg_reply), false,
	                                         "( { when = MATCH; send = \"...\"; }, ... )",
	                                         reply_elem, replies_free};

	return list_set(x, k, s, base, path, &replies);
}

bool cfg_steps_equal(const struct cfg_step *a, const struct cfg_step *b, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (!tmpl_equal(a[i].send, b[i].send) || !match_equal(a[i].wait, b[i].wait))
			return false;
	return true;
}

bool cfg_replies_equal(const struct cfg_reply *a, const struct cfg_reply *b, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (!match_equal(a[i].when, b[i].when) || !tmpl_equal(a[i].send, b[i].send))
			return false;
	return true;
}

int cfg_url_tmpl(const struct cfg_ctx *x, const config_setting_t *s, const char *text,
                 struct tmpl **dst, const char *path)
{
	const char *q = strchr(text, '?'), *d = strstr(text, "${"), *dd = strstr(text, "$$");
	char why[512];
	struct tmpl *t;

	tmpl_free(*dst);
	*dst = NULL;
	if (!d || (dd && dd < d))
		d = dd;
	if (!d)
		return 0;
	if (!q || d < q)
		return cfg_err(x, s, path, "templates (${...}) are only allowed in the query");
	if (tmpl_compile(text, strlen(text), TMPL_TIME | TMPL_SECRET, &x->tenv, &t, why,
	                 sizeof(why)) < 0)
		return cfg_err(x, s, path, "%s", why);
	if (tmpl_has_byte(t, " \t\r\n#")) {
		tmpl_free(t);
		return cfg_err(x, s, path,
		               "a template in the query expands to a space, CR, LF or '#' (encode "
		               "it)");
	}
	*dst = t;
	return 0;
}
