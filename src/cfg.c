/*
 * cfg: loads the configuration into an immutable snapshot. This file holds the public entry
 * points, the top-level keys and the feed list; cfg_keys.c converts values and cfg_feed.c knows
 * what a feed is.
 */
#include "cfg_internal.h"

#include <errno.h>
#include <libgen.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define CO(f) offsetof(struct cfg, f)

/* Beyond this a duration can only be a typo, and int64 arithmetic on it could overflow. */
#define DURATION_MAX_MS 1e15

const char *const cfg_log_level_names[] = {"error", "warning", "notice", "info", "debug", NULL};
const char *const cfg_hb_type_names[] = {"none", "ping", "text", "binary", "server", NULL};
const char *const cfg_sink_type_names[] = {"discard", "stdout", "file", NULL};
const char *const cfg_decompress_names[] = {"none", "gzip", "deflate", "auto", NULL};

/* clang-format off */
static const struct cfg_key metrics_keys[] = {
	KEY_STR("listen", K_LISTEN, CO(metrics_listen), F_REQUIRED),
	KEY_BOOL("port_per_shard", CO(metrics_port_per_shard), 0),
	KEY_END,
};

/* The metrics group has no struct of its own: its keys live in struct cfg, hence offset 0. */
static const struct cfg_key top_keys[] = {
	KEY_ENUM("log_level",              CO(log_level), LOG_LVL_INFO, cfg_log_level_names),
	KEY_ENUM("lws_log_level",          CO(lws_log_level), LOG_LVL_WARNING, cfg_log_level_names),
	KEY_DUR("status_interval",         CO(status_interval_ms), 0, false, HOURS(24), SECS(60)),
	KEY_NUM("max_connects_per_second", K_U32, CO(max_connects_per_second), 1, 1000000, 100),
	KEY_DUR("timer_slack",             CO(timer_slack_ms), 0, false, MSECS(100), MSECS(2)),
	KEY_DUR("io_slack",                CO(io_slack_ms), 0, false, MSECS(100), MSECS(10)),
	KEY_GROUP("metrics",               0, metrics_keys),
	KEY_STR("dns_servers",             K_STR, CO(dns_servers), F_DNS_SERVERS),
	KEY_DUR("dns_timeout",             CO(dns_timeout_ms), 0, false, MINS(1), 0),
	KEY_NUM("dns_tries",               K_INT, CO(dns_tries), 0, 20, 0),
	KEY_STR("shard",                   K_STR, CO(shard), F_SHARD),
	{.name = "hosts", .kind = K_EXTERNAL},
	{.name = "defaults", .kind = K_EXTERNAL},
	{.name = "feeds", .kind = K_EXTERNAL},
	KEY_END,
};
/* clang-format on */

int cfg_err(const struct cfg_ctx *x, const config_setting_t *s, const char *path, const char *fmt,
            ...)
{
	const char *file = x->name;
	char msg[512], where[PATH_MAX];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (s && config_setting_source_file(s))
		file = config_setting_source_file(s);
	/* libconfig names an included file as written in @include; show where it really is. */
	if (file != x->name && file[0] != '/' && x->basedir)
		snprintf(where, sizeof(where), "%s/%s", x->basedir, file);
	else
		snprintf(where, sizeof(where), "%s", file);
	if (!path)
		path = "";
	if (s && config_setting_source_line(s) > 0)
		snprintf(x->err, x->errlen, "%s:%u: %s%s%s", where,
		         (unsigned)config_setting_source_line(s), path, *path ? ": " : "", msg);
	else
		snprintf(x->err, x->errlen, "%s: %s%s%s", where, path, *path ? ": " : "", msg);
	return -1;
}

const char *cfg_path_join(char *buf, const char *parent, const char *child)
{
	if (parent && *parent)
		snprintf(buf, CFG_PATH_MAX, "%s.%s", parent, child);
	else
		snprintf(buf, CFG_PATH_MAX, "%s", child);
	return buf;
}

/* Digits with an optional fraction; done by hand so that the locale cannot change it. */
static const char *parse_decimal(const char *p, double *v)
{
	double scale = 0.1;

	if (*p < '0' || *p > '9')
		return NULL;
	for (*v = 0; *p >= '0' && *p <= '9'; p++)
		*v = *v * 10 + (*p - '0');
	if (*p != '.')
		return p;
	if (*++p < '0' || *p > '9')
		return NULL;
	for (; *p >= '0' && *p <= '9'; p++, scale /= 10)
		*v += (*p - '0') * scale;
	return p;
}

struct duration_unit {
	const char *unit;
	double ms;
};

/* The unit at p ("ms" before "m"), its length in *len; NULL when there is none. */
static const struct duration_unit *duration_unit(const char *p, size_t *len)
{
	static const struct duration_unit units[] = {
	    {"ms", 1}, {"s", 1000}, {"m", 60000}, {"h", 3600000}};

	for (size_t i = 0; i < sizeof(units) / sizeof(units[0]); i++) {
		*len = strlen(units[i].unit);
		if (strncmp(p, units[i].unit, *len) == 0)
			return &units[i];
	}
	return NULL;
}

/*
 * A number of seconds ("5", "0.25"), or one or more numbers each with its unit, largest unit
 * first ("250ms", "1.5s", "23h50m", "1m30s", "2s500ms"), as Go's time.ParseDuration writes
 * them, so a lifetime reads as it is meant.
 */
int cfg_parse_duration(const char *text, int64_t *ms)
{
	const struct duration_unit *u, *prev = NULL;
	const char *p = text;
	double v, total = 0;
	size_t len;

	if (!text || !(p = parse_decimal(p, &v)))
		return -1;
	if (!*p) {
		total = v * 1000; /* seconds */
	} else {
		for (;;) {
			if (!(u = duration_unit(p, &len)) || (prev && u->ms >= prev->ms))
				return -1;
			total += v * u->ms;
			prev = u;
			p += len;
			if (!*p)
				break;
			if (!(p = parse_decimal(p, &v)))
				return -1;
		}
	}
	if (!isfinite(total) || total > DURATION_MAX_MS)
		return -1;
	*ms = (int64_t)llround(total);
	return 0;
}

static int cmp_feed_ptr(const void *a, const void *b)
{
	const struct cfg_feed *fa = *(const struct cfg_feed *const *)a;
	const struct cfg_feed *fb = *(const struct cfg_feed *const *)b;
	int r = strcmp(fa->name, fb->name);

	/* Ties keep file order, so the later of two duplicates is the one reported. */
	return r ? r : (fa > fb) - (fa < fb);
}

/* Sorting keeps this O(n log n): configs with tens of thousands of feeds exist. */
static int check_duplicates(const struct cfg_ctx *x, const config_setting_t *list,
                            const struct cfg *c)
{
	const struct cfg_feed **v = malloc(c->n_feeds * sizeof(*v));
	const config_setting_t *first, *dup;
	char path[64];
	size_t i, a, b;

	if (!v)
		return cfg_err(x, list, "feeds", "out of memory");
	for (i = 0; i < c->n_feeds; i++)
		v[i] = &c->feeds[i];
	qsort(v, c->n_feeds, sizeof(*v), cmp_feed_ptr);
	for (i = 1; i < c->n_feeds && strcmp(v[i - 1]->name, v[i]->name) != 0; i++)
		;
	if (i == c->n_feeds) {
		free(v);
		return 0;
	}
	a = (size_t)(v[i - 1] - c->feeds);
	b = (size_t)(v[i] - c->feeds);
	free(v);
	first = config_setting_get_member(config_setting_get_elem(list, (unsigned)a), "name");
	dup = config_setting_get_member(config_setting_get_elem(list, (unsigned)b), "name");
	snprintf(path, sizeof(path), "feeds[%zu].name", b);
	return cfg_err(x, dup, path,
	               "duplicate feed name \"%s\" (first used by feeds[%zu] at line %u)",
	               c->feeds[b].name, a, (unsigned)config_setting_source_line(first));
}

static int load_feeds(const struct cfg_ctx *x, const config_setting_t *root, struct cfg *c)
{
	const config_setting_t *ds = config_setting_get_member(root, "defaults");
	const config_setting_t *fs = config_setting_get_member(root, "feeds");
	size_t n;

	if (ds && config_setting_type(ds) != CONFIG_TYPE_GROUP)
		return cfg_err(x, ds, "defaults", "must be a group { ... }");
	if (!fs)
		return cfg_err(x, NULL, NULL,
		               "no feeds configured (add feeds = ( { name = ...; "
		               "url = ...; } );)");
	if (config_setting_type(fs) != CONFIG_TYPE_LIST &&
	    config_setting_type(fs) != CONFIG_TYPE_ARRAY)
		return cfg_err(x, fs, "feeds",
		               "must be a list ( { ... }, { ... } ) of feed groups");
	n = (size_t)config_setting_length(fs);
	if (n == 0)
		return cfg_err(x, fs, "feeds", "no feeds configured");
	c->feeds = calloc(n, sizeof(*c->feeds));
	if (!c->feeds)
		return cfg_err(x, fs, "feeds", "out of memory");
	for (size_t i = 0; i < n; i++) {
		c->n_feeds = i + 1;
		if (cfg_feed_load(x, config_setting_get_elem(fs, (unsigned)i), ds, i,
		                  &c->feeds[i]) < 0)
			return -1;
	}
	return check_duplicates(x, fs, c);
}

static int build(const struct cfg_ctx *x, const config_t *lc, struct cfg **out)
{
	const config_setting_t *root = config_root_setting(lc);
	struct cfg *c = calloc(1, sizeof(*c));

	if (!c || !(c->path = strdup(x->name))) {
		free(c);
		return cfg_err(x, NULL, NULL, "out of memory");
	}
	cfg_keys_init(top_keys, c);
	if (cfg_keys_apply(x, top_keys, root, c, "", LVL_TOP) < 0 ||
	    cfg_hosts_load(x, config_setting_get_member(root, "hosts"), c) < 0 ||
	    load_feeds(x, root, c) < 0) {
		cfg_free(c);
		return -1;
	}
	*out = c;
	return 0;
}

static int parse_error(const struct cfg_ctx *x, const config_t *lc)
{
	const char *file = config_error_file(lc) ? config_error_file(lc) : x->name;

	snprintf(x->err, x->errlen, "%s:%d: parse error: %s", file, config_error_line(lc),
	         config_error_text(lc) ? config_error_text(lc) : "unknown error");
	return -1;
}

int cfg_load_string(const char *text, const char *name, struct cfg **out, char *err, size_t errlen)
{
	struct cfg_ctx x = {.name = name ? name : "(string)",
	                    .err = err,
	                    .errlen = errlen,
	                    .tenv = {NULL, getenv("CREDENTIALS_DIRECTORY")}};
	config_t lc;
	int rc;

	*out = NULL;
	config_init(&lc);
	if (config_read_string(&lc, text) != CONFIG_TRUE)
		rc = parse_error(&x, &lc);
	else
		rc = build(&x, &lc, out);
	config_destroy(&lc);
	return rc;
}

/* The absolute directory of path: includes and relative file settings resolve against it. */
static char *base_dir(const char *path)
{
	char *copy = strdup(path), *dir = NULL;

	if (copy)
		dir = realpath(dirname(copy), NULL);
	free(copy);
	return dir;
}

static FILE *open_config(const char *path, char *err, size_t errlen)
{
	struct stat st;
	FILE *fp = fopen(path, "r");

	if (fp && fstat(fileno(fp), &st) == 0 && S_ISDIR(st.st_mode)) {
		fclose(fp);
		fp = NULL;
		errno = EISDIR;
	}
	if (!fp)
		snprintf(err, errlen, "%s: cannot open: %s", path, strerror(errno));
	return fp;
}

int cfg_load(const char *path, struct cfg **out, char *err, size_t errlen)
{
	struct cfg_ctx x = {.name = path, .err = err, .errlen = errlen};
	FILE *fp = open_config(path, err, errlen);
	char *dir;
	config_t lc;
	int rc;

	*out = NULL;
	if (!fp)
		return -1;
	dir = base_dir(path);
	x.basedir = dir;
	x.tenv = (struct tmpl_env){dir, getenv("CREDENTIALS_DIRECTORY")};
	config_init(&lc);
	config_set_include_dir(&lc, dir);
	if (config_read(&lc, fp) != CONFIG_TRUE)
		rc = parse_error(&x, &lc);
	else
		rc = build(&x, &lc, out);
	config_destroy(&lc);
	fclose(fp);
	free(dir);
	return rc;
}

int cfg_read_listen(const char *path, char *buf, size_t len, bool *per_shard, char *err,
                    size_t errlen)
{
	struct cfg_ctx x = {.name = path, .err = err, .errlen = errlen};
	FILE *fp = open_config(path, err, errlen);
	const config_setting_t *s;
	char *dir;
	config_t lc;
	int rc = -1;

	if (!fp)
		return -1;
	dir = base_dir(path);
	x.basedir = dir;
	config_init(&lc);
	config_set_include_dir(&lc, dir);
	if (config_read(&lc, fp) != CONFIG_TRUE) {
		parse_error(&x, &lc);
	} else if (!(s = config_lookup(&lc, "metrics.listen"))) {
		rc = 0; /* not configured */
	} else if (config_setting_type(s) != CONFIG_TYPE_STRING) {
		cfg_err(&x, s, "metrics.listen", "must be a string \"ADDR:PORT\"");
	} else {
		snprintf(buf, len, "%s", config_setting_get_string(s));
		rc = 1;
		s = config_lookup(&lc, "metrics.port_per_shard");
		*per_shard =
		    s && config_setting_type(s) == CONFIG_TYPE_BOOL && config_setting_get_bool(s);
	}
	config_destroy(&lc);
	fclose(fp);
	free(dir);
	return rc;
}

void cfg_free(struct cfg *c)
{
	if (!c)
		return;
	for (size_t i = 0; i < c->n_feeds; i++)
		cfg_keys_free(cfg_feed_keys, &c->feeds[i]);
	free(c->feeds);
	cfg_hosts_free(c);
	cfg_keys_free(top_keys, c);
	free(c->path);
	free(c);
}

const struct cfg_feed *cfg_find_feed(const struct cfg *c, const char *name)
{
	for (size_t i = 0; c && i < c->n_feeds; i++)
		if (c->feeds[i].name && strcmp(c->feeds[i].name, name) == 0)
			return &c->feeds[i];
	return NULL;
}

static bool str_eq(const char *a, const char *b)
{
	return a == b || (a && b && strcmp(a, b) == 0);
}

static bool headers_eq(const struct cfg_header *a, const struct cfg_header *b, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (!str_eq(a[i].name, b[i].name) || !tmpl_equal(a[i].value, b[i].value))
			return false;
	return true;
}

static bool url_eq(const struct url *a, const struct url *b)
{
	return a->tls == b->tls && a->port == b->port && str_eq(a->host, b->host) &&
	       str_eq(a->path, b->path);
}

static bool argv_eq(char *const *a, char *const *b)
{
	if (!a || !b)
		return a == b;
	for (; *a && *b; a++, b++)
		if (strcmp(*a, *b) != 0)
			return false;
	return !*a && !*b;
}

static bool key_equal(const struct cfg_key *k, const void *a, const void *b)
{
#define F(base, T) (*CFG_FIELD((void *)(uintptr_t)(base), k->off, T))
#define N(base)    (*CFG_FIELD((void *)(uintptr_t)(base), k->off2, size_t))
	switch (k->kind) {
	case K_DUR:
		return F(a, int64_t) == F(b, int64_t);
	case K_INT:
		return F(a, int) == F(b, int);
	case K_U32:
		return F(a, uint32_t) == F(b, uint32_t);
	case K_SIZE:
		return F(a, size_t) == F(b, size_t);
	case K_DBL:
		return F(a, double) == F(b, double);
	case K_BOOL:
		return F(a, bool) == F(b, bool);
	case K_ENUM:
		return F(a, int) == F(b, int);
	case K_STR:
	case K_NAME:
	case K_LISTEN:
		return str_eq(F(a, char *), F(b, char *));
	case K_TMPL:
		return tmpl_equal(F(a, struct tmpl *), F(b, struct tmpl *));
	case K_MATCH:
		return match_equal(F(a, struct match *), F(b, struct match *));
	case K_STEPS:
		return N(a) == N(b) &&
		       cfg_steps_equal(F(a, struct cfg_step *), F(b, struct cfg_step *), N(a));
	case K_REPLIES:
		return N(a) == N(b) &&
		       cfg_replies_equal(F(a, struct cfg_reply *), F(b, struct cfg_reply *), N(a));
	case K_HEADERS:
		return N(a) == N(b) &&
		       headers_eq(F(a, struct cfg_header *), F(b, struct cfg_header *), N(a));
	case K_URL:
		return url_eq(&F(a, struct url), &F(b, struct url)) &&
		       tmpl_equal(*CFG_FIELD((void *)(uintptr_t)a, k->off2, struct tmpl *),
		                  *CFG_FIELD((void *)(uintptr_t)b, k->off2, struct tmpl *));
	case K_ARGV:
		return argv_eq(F(a, char **), F(b, char **));
	case K_PROXY:
		return F(a, struct proxy_setting).mode == F(b, struct proxy_setting).mode &&
		       proxy_url_equal(F(a, struct proxy_setting).url,
		                       F(b, struct proxy_setting).url);
	case K_GROUP:
		return cfg_keys_equal(k->sub, &F(a, char), &F(b, char));
	case K_EXTERNAL:
		break;
	}
	return true;
#undef F
#undef N
}

bool cfg_keys_equal(const struct cfg_key *keys, const void *a, const void *b)
{
	for (const struct cfg_key *k = keys; k->name; k++)
		if (!key_equal(k, a, b))
			return false;
	return true;
}

bool cfg_feed_equal(const struct cfg_feed *a, const struct cfg_feed *b)
{
	return cfg_keys_equal(cfg_feed_keys, a, b);
}

static const char *enum_name(const char *const *names, size_t n, int v)
{
	return v >= 0 && (size_t)v < n ? names[v] : "?";
}

const char *cfg_log_level_name(enum log_level l)
{
	return enum_name(cfg_log_level_names, 5, (int)l);
}

const char *cfg_hb_type_name(enum hb_type t)
{
	return enum_name(cfg_hb_type_names, 5, (int)t);
}

const char *cfg_decompress_name(enum decompress d)
{
	return enum_name(cfg_decompress_names, 4, (int)d);
}

const char *cfg_sink_type_name(enum sink_type t)
{
	return enum_name(cfg_sink_type_names, 3, (int)t);
}
