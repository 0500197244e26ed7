/*
 * cfg_keys: applies the key tables of cfg_internal.h to libconfig settings. One converter per
 * kind checks type, bounds and flags, so no setting can slip through with a looser check than
 * its neighbours.
 */
#include "cfg_internal.h"

#include "wsbeat/shard.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

/* Larger values are nonsense for every duration we have and would risk int64 overflow. */
#define DUR_MAX_MS 1e15

const char *cfg_type_name(const config_setting_t *s)
{
	switch (config_setting_type(s)) {
	case CONFIG_TYPE_GROUP:
		return "a group";
	case CONFIG_TYPE_LIST:
		return "a list";
	case CONFIG_TYPE_ARRAY:
		return "an array";
	case CONFIG_TYPE_BOOL:
		return "a boolean";
	case CONFIG_TYPE_STRING:
		return "a string";
	case CONFIG_TYPE_FLOAT:
		return "a decimal number";
	default:
		return "an integer";
	}
}

/* Renders the value as the user wrote it, for "(got ...)". */
static const char *got(const config_setting_t *s, char *buf, size_t n)
{
	switch (config_setting_type(s)) {
	case CONFIG_TYPE_INT:
	case CONFIG_TYPE_INT64:
		snprintf(buf, n, "%lld", config_setting_get_int64(s));
		break;
	case CONFIG_TYPE_FLOAT:
		snprintf(buf, n, "%g", config_setting_get_float(s));
		break;
	case CONFIG_TYPE_STRING:
		snprintf(buf, n, "\"%.40s\"", config_setting_get_string(s));
		break;
	default:
		snprintf(buf, n, "%s", cfg_type_name(s));
	}
	return buf;
}

void cfg_fmt_ms(char *buf, size_t n, int64_t ms)
{
	if (ms != 0 && ms % 3600000 == 0)
		snprintf(buf, n, "%lldh", (long long)(ms / 3600000));
	else if (ms != 0 && ms % 60000 == 0)
		snprintf(buf, n, "%lldm", (long long)(ms / 60000));
	else if (ms % 1000 == 0)
		snprintf(buf, n, "%llds", (long long)(ms / 1000));
	else
		snprintf(buf, n, "%lldms", (long long)ms);
	if (ms == 0)
		snprintf(buf, n, "0");
}

static int check_bounds(const struct cfg_ctx *x, const struct cfg_key *k, const config_setting_t *s,
                        const char *path, double v)
{
	char b[32], g[64];
	bool low = k->min_excl ? v <= k->min : v < k->min;

	if (!low && v <= k->max)
		return 0;
	if (k->kind == K_DUR)
		cfg_fmt_ms(b, sizeof(b), (int64_t)(low ? k->min : k->max));
	else
		snprintf(b, sizeof(b), k->kind == K_DBL ? "%g" : "%.0f", low ? k->min : k->max);
	return cfg_err(x, s, path, "must be %s %s (got %s)",
	               low ? (k->min_excl ? ">" : ">=") : "<=", b, got(s, g, sizeof(g)));
}

/* Seconds as libconfig gave them, in milliseconds; -1 if absurdly large. */
static int seconds_to_ms(const config_setting_t *s, int64_t *v)
{
	double ms = config_setting_type(s) == CONFIG_TYPE_FLOAT
	                ? config_setting_get_float(s) * 1000.0
	                : (double)config_setting_get_int64(s) * 1000.0;

	if (!isfinite(ms) || fabs(ms) > DUR_MAX_MS)
		return -1;
	*v = (int64_t)llround(ms);
	return 0;
}

static int set_dur(const struct cfg_ctx *x, const struct cfg_key *k, const config_setting_t *s,
                   int64_t *dst, const char *path)
{
	int t = config_setting_type(s);
	int64_t v;

	if (t == CONFIG_TYPE_INT || t == CONFIG_TYPE_INT64 || t == CONFIG_TYPE_FLOAT) {
		if (seconds_to_ms(s, &v) < 0)
			return cfg_err(x, s, path, "duration is out of range");
	} else if (t == CONFIG_TYPE_STRING) {
		if (cfg_parse_duration(config_setting_get_string(s), &v) < 0)
			return cfg_err(x, s, path,
			               "invalid duration \"%s\" (use seconds, or a string like "
			               "\"250ms\", \"5s\", \"2m\", \"1h\", \"23h50m\")",
			               config_setting_get_string(s));
	} else {
		return cfg_err(x, s, path,
		               "must be a duration (seconds, or a string like \"5s\"), not %s",
		               cfg_type_name(s));
	}
	if (check_bounds(x, k, s, path, (double)v) < 0)
		return -1;
	*dst = v;
	return 0;
}

static int set_number(const struct cfg_ctx *x, const struct cfg_key *k, const config_setting_t *s,
                      void *base, const char *path)
{
	int t = config_setting_type(s);
	bool is_int = t == CONFIG_TYPE_INT || t == CONFIG_TYPE_INT64;
	double v;

	if (!is_int && !(k->kind == K_DBL && t == CONFIG_TYPE_FLOAT))
		return cfg_err(x, s, path, "must be %s, not %s",
		               k->kind == K_DBL ? "a number" : "an integer", cfg_type_name(s));
	v = is_int ? (double)config_setting_get_int64(s) : config_setting_get_float(s);
	if (!isfinite(v))
		return cfg_err(x, s, path, "must be a finite number");
	if (check_bounds(x, k, s, path, v) < 0)
		return -1;
	if (k->kind == K_DBL)
		*CFG_FIELD(base, k->off, double) = v;
	else if (k->kind == K_U32)
		*CFG_FIELD(base, k->off, uint32_t) = (uint32_t)v;
	else if (k->kind == K_INT)
		*CFG_FIELD(base, k->off, int) = (int)v;
	else
		*CFG_FIELD(base, k->off, size_t) = (size_t)v;
	return 0;
}

static int set_enum(const struct cfg_ctx *x, const struct cfg_key *k, const config_setting_t *s,
                    int *dst, const char *path)
{
	char list[128] = "";
	const char *v;

	if (config_setting_type(s) != CONFIG_TYPE_STRING)
		return cfg_err(x, s, path, "must be a string, not %s", cfg_type_name(s));
	v = config_setting_get_string(s);
	for (int i = 0; k->names[i]; i++) {
		if (strcmp(v, k->names[i]) == 0) {
			*dst = i;
			return 0;
		}
		snprintf(list + strlen(list), sizeof(list) - strlen(list), "%s%s", i ? ", " : "",
		         k->names[i]);
	}
	return cfg_err(x, s, path, "must be one of %s (got \"%.40s\")", list, v);
}

static bool isalnum_ascii(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
}

static bool is_tchar(int c)
{
	return isalnum_ascii((char)c) || (c && strchr("!#$%&'*+-.^_`|~", c));
}

bool cfg_is_token(const char *s)
{
	if (!*s)
		return false;
	for (; *s; s++)
		if (!is_tchar((unsigned char)*s))
			return false;
	return true;
}

static bool is_hostname(const char *s)
{
	if (!*s || strlen(s) > 255)
		return false;
	for (; *s; s++)
		if (!(isalnum_ascii(*s) || *s == '-' || *s == '.' || *s == '_'))
			return false;
	return true;
}

/* One resolver address: IPv4[:port], [IPv6][:port] or a bare IPv6 literal. */
static bool is_server(const char *e, size_t n)
{
	char buf[64], host[64];
	uint16_t port;

	if (n == 0 || n >= sizeof(buf))
		return false;
	memcpy(buf, e, n);
	buf[n] = '\0';
	if (url_ip_literal(buf))
		return true;
	if (buf[0] == '[' && buf[n - 1] == ']') {
		buf[n - 1] = '\0';
		return url_ip_literal(buf + 1) && strchr(buf + 1, ':');
	}
	if (url_parse_hostport(buf, host, sizeof(host), &port, NULL, 0) < 0)
		return false;
	return url_ip_literal(host);
}

static bool is_server_list(const char *v)
{
	for (;;) {
		size_t n = strcspn(v, ",");

		if (!is_server(v, n))
			return false;
		if (!v[n])
			return true;
		v += n + 1;
	}
}

/* The daemon may chdir, and --check runs from anywhere: anchor paths at the config's dir. */
static char *resolve(const struct cfg_ctx *x, const char *p)
{
	char *r;

	if (!x->basedir || p[0] == '/')
		return strdup(p);
	r = malloc(strlen(x->basedir) + strlen(p) + 2);
	if (r)
		sprintf(r, "%s/%s", x->basedir, p);
	return r;
}

static int check_fs(const struct cfg_ctx *x, const config_setting_t *s, const char *path,
                    const char *p, unsigned flags)
{
	struct stat st;
	int fd;

	if (stat(p, &st) < 0)
		return cfg_err(x, s, path, "cannot access '%s': %s", p, strerror(errno));
	if ((flags & F_DIR) && !S_ISDIR(st.st_mode))
		return cfg_err(x, s, path, "'%s' is not a directory", p);
	if ((flags & F_FILE) && S_ISDIR(st.st_mode))
		return cfg_err(x, s, path, "'%s' is a directory, not a file", p);
	if ((flags & F_DIR) && access(p, R_OK | X_OK) < 0)
		return cfg_err(x, s, path, "cannot read directory '%s': %s", p, strerror(errno));
	if (flags & F_FILE) {
		fd = open(p, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
		if (fd < 0)
			return cfg_err(x, s, path, "cannot read '%s': %s", p, strerror(errno));
		close(fd);
	}
	return 0;
}

static int check_str(const struct cfg_ctx *x, const struct cfg_key *k, const config_setting_t *s,
                     const char *path, const char *v)
{
	if ((k->flags & (F_NONEMPTY | F_FILE | F_DIR | F_PATH | F_HOSTNAME | F_DNS_SERVERS)) && !*v)
		return cfg_err(x, s, path, "must not be empty");
	if ((k->flags & F_TOKEN) && !cfg_is_token(v))
		return cfg_err(x, s, path,
		               "must be an HTTP token (letters, digits and !#$%%&'*+-.^_`|~)");
	if ((k->flags & F_NO_CRLF) && strpbrk(v, "\r\n"))
		return cfg_err(x, s, path, "must not contain CR or LF");
	if ((k->flags & F_DNS_SERVERS) && !is_server_list(v))
		return cfg_err(x, s, path,
		               "must be a comma-separated list of IP[:PORT] (IPv6 as [ADDR]:PORT)");
	unsigned shard_k, shard_n;

	if ((k->flags & F_SHARD) && shard_parse(v, &shard_k, &shard_n) < 0)
		return cfg_err(x, s, path, "must be \"K/N\" with 0 <= K < N <= %d", SHARD_MAX);
	if ((k->flags & F_HOSTNAME) && !is_hostname(v))
		return cfg_err(x, s, path, "must be a host name (letters, digits, '-', '.')");
	return 0;
}

static int set_str(const struct cfg_ctx *x, const struct cfg_key *k, const config_setting_t *s,
                   char **dst, const char *path)
{
	char *v;

	if (config_setting_type(s) != CONFIG_TYPE_STRING)
		return cfg_err(x, s, path, "must be a string, not %s", cfg_type_name(s));
	if (check_str(x, k, s, path, config_setting_get_string(s)) < 0)
		return -1;
	v = k->flags & (F_FILE | F_DIR | F_PATH) ? resolve(x, config_setting_get_string(s))
	                                         : strdup(config_setting_get_string(s));
	if (!v)
		return cfg_err(x, s, path, "out of memory");
	if ((k->flags & (F_FILE | F_DIR)) && check_fs(x, s, path, v, k->flags) < 0) {
		free(v);
		return -1;
	}
	free(*dst);
	*dst = v;
	return 0;
}

void cfg_argv_free(char **v)
{
	for (size_t i = 0; v && v[i]; i++)
		free(v[i]);
	free(v);
}

/* argv[0] must be a file this process may run (as the service's user: --check runs as it). */
static int check_exec(const struct cfg_ctx *x, const config_setting_t *s, const char *path,
                      const char *p)
{
	struct stat st;

	if (stat(p, &st) < 0)
		return cfg_err(x, s, path, "cannot access '%s': %s", p, strerror(errno));
	if (!S_ISREG(st.st_mode))
		return cfg_err(x, s, path, "'%s' is not a file", p);
	if (access(p, X_OK) < 0)
		return cfg_err(x, s, path, "cannot run '%s': %s", p, strerror(errno));
	return 0;
}

/* A command as a list of strings: no shell, argv[0] resolved against the config's directory. */
static int set_argv(const struct cfg_ctx *x, const struct cfg_key *k, const config_setting_t *s,
                    char ***dst, const char *path)
{
	int type = config_setting_type(s), n;
	char **v, ep[CFG_PATH_MAX];

	if (type != CONFIG_TYPE_LIST && type != CONFIG_TYPE_ARRAY)
		return cfg_err(x, s, path,
		               "must be a list [ \"/path/to/program\", \"arg\", ... ], not %s",
		               cfg_type_name(s));
	n = config_setting_length(s);
	if (n < 1 || n > CFG_ARGV_MAX)
		return cfg_err(x, s, path, "must hold the program and at most %d arguments",
		               CFG_ARGV_MAX - 1);
	v = calloc((size_t)n + 1, sizeof(*v));
	if (!v)
		return cfg_err(x, s, path, "out of memory");
	for (int i = 0; i < n; i++) {
		const config_setting_t *e = config_setting_get_elem(s, (unsigned)i);
		snprintf(ep, sizeof(ep), "%s[%d]", path, i);
		if (config_setting_type(e) != CONFIG_TYPE_STRING) {
			cfg_argv_free(v);
			return cfg_err(x, e, ep, "must be a string, not %s", cfg_type_name(e));
		}
		v[i] = i == 0 ? resolve(x, config_setting_get_string(e))
		              : strdup(config_setting_get_string(e));
		if (!v[i]) {
			cfg_argv_free(v);
			return cfg_err(x, e, ep, "out of memory");
		}
	}
	if (!*config_setting_get_string(config_setting_get_elem(s, 0))) {
		cfg_argv_free(v);
		return cfg_err(x, s, path, "the program (the first string) must not be empty");
	}
	if ((k->flags & F_EXEC) && check_exec(x, s, path, v[0]) < 0) {
		cfg_argv_free(v);
		return -1;
	}
	cfg_argv_free(*dst);
	*dst = v;
	return 0;
}

static int set_url(const struct cfg_ctx *x, const struct cfg_key *k, const config_setting_t *s,
                   void *base, const char *path)
{
	struct url *dst = CFG_FIELD(base, k->off, struct url);
	char why[160];
	struct url u;

	if (config_setting_type(s) != CONFIG_TYPE_STRING)
		return cfg_err(x, s, path, "must be a string, not %s", cfg_type_name(s));
	if (url_parse(config_setting_get_string(s), &u, why, sizeof(why)) < 0)
		return cfg_err(x, s, path, "%s", why);
	if (cfg_url_tmpl(x, s, u.path, CFG_FIELD(base, k->off2, struct tmpl *), path) < 0) {
		url_fini(&u);
		return -1;
	}
	url_fini(dst);
	*dst = u;
	return 0;
}

static int set_name(const struct cfg_ctx *x, const struct cfg_key *k, const config_setting_t *s,
                    char **dst, const char *path)
{
	const char *v;
	size_t n;

	if (config_setting_type(s) != CONFIG_TYPE_STRING)
		return cfg_err(x, s, path, "must be a string, not %s", cfg_type_name(s));
	v = config_setting_get_string(s);
	n = strspn(v, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_.-");
	if (n == 0 || n > 64 || v[n])
		return cfg_err(x, s, path,
		               "must be 1 to 64 characters from [A-Za-z0-9_.-] (got \"%.70s\")", v);
	return set_str(x, k, s, dst, path);
}

static int set_listen(const struct cfg_ctx *x, const struct cfg_key *k, const config_setting_t *s,
                      char **dst, const char *path)
{
	char host[256], why[160];
	uint16_t port;

	if (config_setting_type(s) != CONFIG_TYPE_STRING)
		return cfg_err(x, s, path, "must be a string \"ADDR:PORT\", not %s",
		               cfg_type_name(s));
	if (url_parse_hostport(config_setting_get_string(s), host, sizeof(host), &port, why,
	                       sizeof(why)) < 0)
		return cfg_err(x, s, path, "%s", why);
	return set_str(x, k, s, dst, path);
}

/*
 * A proxy URL may carry a password: no message here quotes the value. It may come from a secret
 * source (${credential:NAME}, ${env:NAME}, ${file:PATH}), read now, like every template's.
 */
static int set_proxy(const struct cfg_ctx *x, const config_setting_t *s, struct proxy_setting *dst,
                     const char *path)
{
	struct proxy_url *url = NULL;
	struct tmpl *t = NULL;
	char why[512];
	int rc = 0;

	if (config_setting_type(s) != CONFIG_TYPE_STRING)
		return cfg_err(
		    x, s, path,
		    "must be a string (\"http://[USER:PASSWORD@]HOST:PORT\", or \"\" for "
		    "a direct connection), not %s",
		    cfg_type_name(s));
	/* Only the literal "" means direct: a secret source that expands to nothing does not. */
	if (config_setting_get_string(s)[0]) {
		if (cfg_tmpl_set(x, s, TMPL_SECRET, &t, path) < 0)
			return -1;
		/* Nothing varies without ${seq} or time variables: the text is all there now. */
		if (!t->flat)
			rc = cfg_err(x, s, path,
			             "is built once, at load: only ${env:}, ${file:} and "
			             "${credential:} may be used in it");
		else if (!t->flat_len)
			rc = cfg_err(
			    x, s, path,
			    "is empty once its ${...} are filled in (only \"\" itself means a "
			    "direct connection)");
		else if (memchr(t->flat, '\0', t->flat_len))
			rc = cfg_err(x, s, path, "the proxy URL contains a NUL byte");
		else if (proxy_parse(t->flat, true, &url, why, sizeof(why)) < 0)
			rc = cfg_err(x, s, path, "%s", why);
		tmpl_free(t);
		if (rc < 0)
			return -1;
	}
	proxy_url_free(dst->url);
	*dst = (struct proxy_setting){.mode = url ? PROXY_URL : PROXY_DIRECT, .url = url};
	return 0;
}

int cfg_value_set(const struct cfg_ctx *x, const struct cfg_key *k, const config_setting_t *s,
                  void *base, const char *path, enum cfg_level lvl)
{
	switch (k->kind) {
	case K_DUR:
		return set_dur(x, k, s, CFG_FIELD(base, k->off, int64_t), path);
	case K_INT:
	case K_U32:
	case K_SIZE:
	case K_DBL:
		return set_number(x, k, s, base, path);
	case K_BOOL:
		if (config_setting_type(s) != CONFIG_TYPE_BOOL)
			return cfg_err(x, s, path, "must be true or false, not %s",
			               cfg_type_name(s));
		*CFG_FIELD(base, k->off, bool) = config_setting_get_bool(s);
		return 0;
	case K_ENUM:
		return set_enum(x, k, s, CFG_FIELD(base, k->off, int), path);
	case K_STR:
		return set_str(x, k, s, CFG_FIELD(base, k->off, char *), path);
	case K_TMPL:
		return cfg_tmpl_set(x, s, k->allow, CFG_FIELD(base, k->off, struct tmpl *), path);
	case K_MATCH:
		return cfg_match_set(x, s, k->allow, CFG_FIELD(base, k->off, struct match *), path);
	case K_STEPS:
		return cfg_steps_set(x, k, s, base, path);
	case K_REPLIES:
		return cfg_replies_set(x, k, s, base, path);
	case K_HEADERS:
		return cfg_headers_set(x, k, s, base, path);
	case K_URL:
		return set_url(x, k, s, base, path);
	case K_ARGV:
		return set_argv(x, k, s, CFG_FIELD(base, k->off, char **), path);
	case K_NAME:
		return set_name(x, k, s, CFG_FIELD(base, k->off, char *), path);
	case K_LISTEN:
		return set_listen(x, k, s, CFG_FIELD(base, k->off, char *), path);
	case K_PROXY:
		return set_proxy(x, s, CFG_FIELD(base, k->off, struct proxy_setting), path);
	case K_GROUP:
		if (config_setting_type(s) != CONFIG_TYPE_GROUP)
			return cfg_err(x, s, path, "must be a group { ... }, not %s",
			               cfg_type_name(s));
		if (cfg_keys_apply(x, k->sub, s, CFG_FIELD(base, k->off, char), path, lvl) < 0)
			return -1;
		return cfg_keys_required(x, k->sub, s, path);
	case K_EXTERNAL:
		break;
	}
	return 0;
}

/* Levenshtein distance, case-insensitive; names are short so the quadratic cost is nothing. */
static size_t distance(const char *a, const char *b)
{
	size_t la = strlen(a), lb = strlen(b), row[64], prev, tmp;

	if (la >= 64 || lb >= 64)
		return 99;
	for (size_t j = 0; j <= lb; j++)
		row[j] = j;
	for (size_t i = 1; i <= la; i++) {
		prev = row[0];
		row[0] = i;
		for (size_t j = 1; j <= lb; j++) {
			size_t sub = prev + (tolower_ascii(a[i - 1]) != tolower_ascii(b[j - 1]));

			tmp = row[j];
			row[j] = sub < row[j] + 1 ? sub : row[j] + 1;
			row[j] = row[j] < row[j - 1] + 1 ? row[j] : row[j - 1] + 1;
			prev = tmp;
		}
	}
	return row[lb];
}

static int unknown(const struct cfg_ctx *x, const struct cfg_key *keys, const config_setting_t *s,
                   const char *path)
{
	const char *name = config_setting_name(s), *best = NULL;
	size_t bd = 3, d;

	for (const struct cfg_key *k = keys; k->name; k++) {
		d = distance(name, k->name);
		if (d < bd) {
			bd = d;
			best = k->name;
		}
	}
	if (best)
		return cfg_err(x, s, path, "unknown setting '%s'; did you mean '%s'?", name, best);
	return cfg_err(x, s, path, "unknown setting '%s'", name);
}

static const struct cfg_key *key_find(const struct cfg_key *keys, const char *name)
{
	for (const struct cfg_key *k = keys; k->name; k++)
		if (strcmp(k->name, name) == 0)
			return k;
	return NULL;
}

int cfg_keys_apply(const struct cfg_ctx *x, const struct cfg_key *keys, const config_setting_t *g,
                   void *base, const char *path, enum cfg_level lvl)
{
	char sub[CFG_PATH_MAX];

	for (int i = 0; i < config_setting_length(g); i++) {
		const config_setting_t *s = config_setting_get_elem(g, (unsigned)i);
		const struct cfg_key *k = key_find(keys, config_setting_name(s));

		if (!k)
			return unknown(x, keys, s, path);
		cfg_path_join(sub, path, k->name);
		if (lvl == LVL_DEFAULTS && (k->flags & F_NO_DEFAULTS))
			return cfg_err(x, s, sub, "not allowed in defaults (set it in each feed)");
		if (cfg_value_set(x, k, s, base, sub, lvl) < 0)
			return -1;
	}
	return 0;
}

int cfg_keys_required(const struct cfg_ctx *x, const struct cfg_key *keys,
                      const config_setting_t *g, const char *path)
{
	for (const struct cfg_key *k = keys; k->name; k++)
		if ((k->flags & F_REQUIRED) && !config_setting_get_member(g, k->name))
			return cfg_err(x, g, path, "missing required setting '%s'", k->name);
	return 0;
}

void cfg_keys_init(const struct cfg_key *keys, void *base)
{
	for (const struct cfg_key *k = keys; k->name; k++) {
		if (k->kind == K_DUR)
			*CFG_FIELD(base, k->off, int64_t) = (int64_t)k->def;
		else if (k->kind == K_U32)
			*CFG_FIELD(base, k->off, uint32_t) = (uint32_t)k->def;
		else if (k->kind == K_INT)
			*CFG_FIELD(base, k->off, int) = (int)k->def;
		else if (k->kind == K_SIZE)
			*CFG_FIELD(base, k->off, size_t) = (size_t)k->def;
		else if (k->kind == K_DBL)
			*CFG_FIELD(base, k->off, double) = k->def;
		else if (k->kind == K_BOOL)
			*CFG_FIELD(base, k->off, bool) = k->def != 0;
		else if (k->kind == K_ENUM)
			*CFG_FIELD(base, k->off, int) = (int)k->def;
		else if (k->kind == K_GROUP)
			cfg_keys_init(k->sub, CFG_FIELD(base, k->off, char));
	}
}

void cfg_keys_free(const struct cfg_key *keys, void *base)
{
	for (const struct cfg_key *k = keys; k->name; k++) {
		switch (k->kind) {
		case K_STR:
		case K_NAME:
		case K_LISTEN:
			free(*CFG_FIELD(base, k->off, char *));
			break;
		case K_TMPL:
			tmpl_free(*CFG_FIELD(base, k->off, struct tmpl *));
			break;
		case K_MATCH:
			match_free(*CFG_FIELD(base, k->off, struct match *));
			break;
		case K_STEPS:
			cfg_steps_free(*CFG_FIELD(base, k->off, struct cfg_step *),
			               *CFG_FIELD(base, k->off2, size_t));
			break;
		case K_REPLIES:
			cfg_replies_free(*CFG_FIELD(base, k->off, struct cfg_reply *),
			                 *CFG_FIELD(base, k->off2, size_t));
			break;
		case K_HEADERS:
			cfg_headers_free(*CFG_FIELD(base, k->off, struct cfg_header *),
			                 *CFG_FIELD(base, k->off2, size_t));
			break;
		case K_ARGV:
			cfg_argv_free(*CFG_FIELD(base, k->off, char **));
			break;
		case K_URL:
			url_fini(CFG_FIELD(base, k->off, struct url));
			tmpl_free(*CFG_FIELD(base, k->off2, struct tmpl *));
			break;
		case K_PROXY:
			proxy_url_free(CFG_FIELD(base, k->off, struct proxy_setting)->url);
			break;
		case K_GROUP:
			cfg_keys_free(k->sub, CFG_FIELD(base, k->off, char));
			break;
		default:
			break;
		}
	}
}
