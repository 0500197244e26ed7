/*
 * proxy: http:// proxy URLs, no_proxy, and the proxy's answer to CONNECT. Error texts never
 * quote what they reject: a proxy URL may carry a password.
 */
#include "wsbeat/proxy.h"
#include "wsbeat/util.h"

#include <arpa/inet.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define PROXY_HOST_MAX 253
/* How much of a proxy's reason phrase, or of an answer that is not HTTP, a log line shows. */
#define PROXY_PHRASE_MAX  64
#define PROXY_PREVIEW_MAX 24

void proxy_url_free(struct proxy_url *p)
{
	if (!p)
		return;
	if (p->auth) {
		explicit_bzero(p->auth, strlen(p->auth));
		free(p->auth);
	}
	free(p->host);
	free(p->display);
	free(p);
}

static bool str_eq(const char *a, const char *b)
{
	return a == b || (a && b && strcmp(a, b) == 0);
}

bool proxy_url_equal(const struct proxy_url *a, const struct proxy_url *b)
{
	if (!a || !b)
		return a == b;
	return a->port == b->port && str_eq(a->host, b->host) && str_eq(a->auth, b->auth);
}

static int hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* Appends the percent-decoded n bytes at s to out (*o bytes used of PROXY_AUTH_MAX). */
static int decode(const char *s, size_t n, char *out, size_t *o, char *err, size_t errlen)
{
	for (size_t i = 0; i < n; i++) {
		int c = (unsigned char)s[i];

		if (c == '%') {
			if (i + 2 >= n || hexval(s[i + 1]) < 0 || hexval(s[i + 2]) < 0)
				return errf(
				    err, errlen,
				    "a '%%' in the proxy's user name or password is not followed "
				    "by two hex digits");
			c = hexval(s[i + 1]) * 16 + hexval(s[i + 2]);
			i += 2;
			if (c == 0)
				return errf(err, errlen,
				            "the proxy's user name or password contains %%00");
		}
		if (*o >= PROXY_AUTH_MAX)
			return errf(err, errlen,
			            "the proxy's user name and password are too long (at most %d "
			            "bytes: "
			            "libwebsockets 4.1 keeps them in 128 bytes of base64)",
			            PROXY_AUTH_MAX);
		out[(*o)++] = (char)c;
	}
	return 0;
}

/* "user[:password]" (n bytes at s) into out as "user:password"; "" when both are empty. */
static int parse_auth(const char *s, size_t n, char *out, char *err, size_t errlen)
{
	const char *colon = memchr(s, ':', n);
	size_t ulen = colon ? (size_t)(colon - s) : n, o = 0;

	if (decode(s, ulen, out, &o, err, errlen) < 0)
		return -1;
	if (memchr(out, ':', o))
		return errf(err, errlen,
		            "the proxy's user name must not contain ':' (HTTP basic auth)");
	if (o == PROXY_AUTH_MAX)
		return errf(err, errlen,
		            "the user name and password are too long (at most %d bytes)",
		            PROXY_AUTH_MAX);
	out[o++] = ':';
	if (colon && decode(colon + 1, n - ulen - 1, out, &o, err, errlen) < 0)
		return -1;
	out[o == 1 ? 0 : o] = '\0';
	return 0;
}

static bool is_name_char(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
	       c == '-' || c == '.' || c == '_';
}

static int parse_port(const char *s, const char *end, uint16_t *port, char *err, size_t errlen)
{
	unsigned long v = 0;

	if (s == end)
		return errf(err, errlen, "the proxy URL must name the port (http://HOST:PORT)");
	for (; s < end; s++) {
		if (*s < '0' || *s > '9' || (v = v * 10 + (unsigned long)(*s - '0')) > 65535)
			return errf(err, errlen,
			            "the proxy's port must be a number from 1 to 65535");
	}
	if (v == 0)
		return errf(err, errlen, "the proxy's port must be a number from 1 to 65535");
	*port = (uint16_t)v;
	return 0;
}

/* "host:port" or "[v6]:port" (s to end) into host (lower case, no brackets) and *port. */
static int parse_hostport(const char *s, const char *end, char *host, uint16_t *port, bool *v6,
                          char *err, size_t errlen)
{
	const char *hend, *colon;
	unsigned char a[16];
	size_t n;

	*v6 = s < end && *s == '[';
	if (*v6) {
		hend = memchr(s, ']', (size_t)(end - s));
		if (!hend)
			return errf(err, errlen, "the proxy's IPv6 address lacks its closing ']'");
		colon = hend + 1;
		s++;
		if (colon == end)
			return errf(err, errlen,
			            "the proxy URL must name the port (http://[ADDR]:PORT)");
		if (*colon != ':')
			return errf(err, errlen,
			            "the proxy URL has unexpected text after the IPv6 address");
	} else {
		colon = memchr(s, ':', (size_t)(end - s));
		if (!colon)
			return errf(err, errlen,
			            "the proxy URL must name the port (http://HOST:PORT)");
		if (memchr(colon + 1, ':', (size_t)(end - colon - 1)))
			return errf(err, errlen,
			            "the proxy URL has more than one ':' (write an IPv6 address as "
			            "[ADDR])");
		hend = colon;
	}
	n = (size_t)(hend - s);
	if (n == 0)
		return errf(err, errlen, "the proxy URL has no host");
	if (n > PROXY_HOST_MAX)
		return errf(err, errlen, "the proxy's host name is longer than %d characters",
		            PROXY_HOST_MAX);
	for (size_t i = 0; i < n; i++) {
		if (!*v6 && !is_name_char(s[i]))
			return errf(err, errlen,
			            "the proxy's host has a character not allowed in a host name");
		host[i] = (char)(s[i] >= 'A' && s[i] <= 'Z' ? s[i] - 'A' + 'a' : s[i]);
	}
	host[n] = '\0';
	if (*v6 && inet_pton(AF_INET6, host, a) != 1)
		return errf(err, errlen, "the proxy's IPv6 address is not valid");
	return parse_port(colon + 1, end, port, err, errlen);
}

/* Skips "http://"; -1 for other schemes, or none when one is required. */
static int skip_scheme(const char *text, bool need_scheme, char *err, size_t errlen)
{
	const char *sep = strstr(text, "://");
	size_t n = sep ? (size_t)(sep - text) : 0;

	if (!sep || strcspn(text, ":/@") < n) {
		if (need_scheme)
			return errf(err, errlen,
			            "the proxy URL must start with http:// "
			            "(http://[USER:PASSWORD@]HOST:PORT)");
		return 0;
	}
	if (n == 4 && strncasecmp(text, "http", 4) == 0)
		return 7;
	if (n == 5 && strncasecmp(text, "https", 5) == 0)
		return errf(
		    err, errlen,
		    "https:// proxies (TLS to the proxy itself) are not supported: "
		    "libwebsockets 4.1 speaks plain HTTP to its proxy; use http:// (a wss:// "
		    "feed stays encrypted end to end inside the CONNECT tunnel)");
	return errf(err, errlen,
	            "the proxy URL has an unsupported scheme (only http:// proxies are supported)");
}

static int check_chars(const char *text, char *err, size_t errlen)
{
	for (const unsigned char *p = (const unsigned char *)text; *p; p++) {
		if (*p <= 0x20 || *p == 0x7f)
			return errf(err, errlen,
			            "the proxy URL contains whitespace or a control character");
		if (*p >= 0x80)
			return errf(err, errlen,
			            "the proxy URL contains a non-ASCII byte (percent-encode it)");
	}
	return 0;
}

static struct proxy_url *build(const char *host, uint16_t port, bool v6, const char *auth)
{
	struct proxy_url *p = calloc(1, sizeof(*p));
	size_t dl = strlen(host) + 10;
	unsigned char a[4];

	if (!p)
		return NULL;
	p->host = strdup(host);
	p->display = malloc(dl);
	p->auth = *auth ? strdup(auth) : NULL;
	if (!p->host || !p->display || (*auth && !p->auth)) {
		proxy_url_free(p);
		return NULL;
	}
	snprintf(p->display, dl, v6 ? "[%s]:%u" : "%s:%u", host, (unsigned)port);
	p->port = port;
	p->numeric = v6 || inet_pton(AF_INET, host, a) == 1;
	return p;
}

int proxy_parse(const char *text, bool need_scheme, struct proxy_url **out, char *err,
                size_t errlen)
{
	char host[PROXY_HOST_MAX + 1], auth[PROXY_AUTH_MAX + 1] = "";
	const char *p, *end, *at = NULL;
	uint16_t port = 0;
	bool v6;
	int skip, rc = -1;

	*out = NULL;
	if (!text || !*text)
		return errf(err, errlen, "the proxy URL is empty");
	if (check_chars(text, err, errlen) < 0 ||
	    (skip = skip_scheme(text, need_scheme, err, errlen)) < 0)
		return -1;
	p = text + skip;
	end = p + strlen(p);
	if (end > p && end[-1] == '/')
		end--;
	/* The last '@' ends the credentials: a password may hold '@' and '/' unencoded. */
	for (const char *q = p; q < end; q++)
		if (*q == '@')
			at = q;
	if (at && parse_auth(p, (size_t)(at - p), auth, err, errlen) < 0)
		goto out;
	if (at)
		p = at + 1;
	if (strcspn(p, "/?#") < (size_t)(end - p)) {
		errf(err, errlen,
		     "the proxy URL must not have a path, query or fragment (http://HOST:PORT)");
		goto out;
	}
	if (parse_hostport(p, end, host, &port, &v6, err, errlen) < 0)
		goto out;
	*out = build(host, port, v6, auth);
	rc = *out ? 0 : errf(err, errlen, "out of memory");
out:
	explicit_bzero(auth, sizeof(auth));
	return rc;
}

static bool ip_equal(const char *a, const char *b)
{
	unsigned char x[16], y[16];

	if (inet_pton(AF_INET, a, x) == 1)
		return inet_pton(AF_INET, b, y) == 1 && memcmp(x, y, 4) == 0;
	if (inet_pton(AF_INET6, a, x) == 1)
		return inet_pton(AF_INET6, b, y) == 1 && memcmp(x, y, 16) == 0;
	return false;
}

/* Splits an entry into its name (leading and trailing dots dropped) and port (0 = any). */
static bool split_entry(const char *t, size_t n, char *name, size_t len, unsigned *port)
{
	const char *end = t + n, *ne = end, *colon = NULL;

	*port = 0;
	if (*t == '[') {
		ne = memchr(t, ']', n);
		if (!ne || (ne + 1 < end && ne[1] != ':'))
			return false;
		colon = ne + 1 < end ? ne + 1 : NULL;
		t++;
	} else if ((colon = memchr(t, ':', n)) &&
	           memchr(colon + 1, ':', (size_t)(end - colon - 1))) {
		colon = NULL; /* a bare IPv6 address: no port */
	} else if (colon) {
		ne = colon;
	}
	if (colon) {
		for (const char *p = colon + 1; p < end; p++)
			if (*p < '0' || *p > '9' ||
			    (*port = *port * 10 + (unsigned)(*p - '0')) > 65535)
				return false;
		if (colon + 1 == end)
			return false;
	}
	while (t < ne && *t == '.')
		t++;
	while (ne > t && ne[-1] == '.')
		ne--;
	if (ne == t || (size_t)(ne - t) >= len)
		return false;
	memcpy(name, t, (size_t)(ne - t));
	name[ne - t] = '\0';
	return true;
}

static bool entry_matches(const char *t, size_t n, const char *host, uint16_t port)
{
	char name[PROXY_HOST_MAX + 3];
	size_t nl, hl;
	unsigned eport;

	if (!split_entry(t, n, name, sizeof(name), &eport) || (eport && eport != port))
		return false;
	if (url_ip_literal(name) || url_ip_literal(host))
		return ip_equal(name, host);
	hl = strlen(host);
	while (hl && host[hl - 1] == '.')
		hl--; /* "example.com." is example.com */
	nl = strlen(name);
	if (hl < nl || strncasecmp(host + hl - nl, name, nl) != 0)
		return false;
	return hl == nl || host[hl - nl - 1] == '.';
}

bool proxy_no_proxy_match(const char *list, const char *host, uint16_t port)
{
	const char *p = list;

	if (!list || !host)
		return false;
	while (*p) {
		size_t n = strcspn(p, ",");
		const char *t = p, *e = p + n;

		while (t < e && (*t == ' ' || *t == '\t'))
			t++;
		while (e > t && (e[-1] == ' ' || e[-1] == '\t'))
			e--;
		if (e - t == 1 && *t == '*')
			return true;
		if (e > t && entry_matches(t, (size_t)(e - t), host, port))
			return true;
		p += n + (p[n] == ',');
	}
	return false;
}

/* The first of two variables that is set and not empty, as curl reads them. */
static const char *first_set(proxy_getenv_fn get, const char *a, const char *b, const char **var)
{
	const char *v = get(a);

	*var = a;
	if (!v || !*v) {
		v = get(b);
		*var = b;
	}
	return v && *v ? v : NULL;
}

static int load_one(struct proxy_url **dst, const char **var, const char *lower, const char *upper,
                    proxy_getenv_fn get, proxy_warn_fn warn, void *arg)
{
	const char *v = first_set(get, lower, upper, var);
	char why[256], msg[400];

	if (!v) {
		*var = NULL;
		return 0;
	}
	if (proxy_parse(v, false, dst, why, sizeof(why)) == 0)
		return 0;
	snprintf(msg, sizeof(msg),
	         "ignoring the environment variable %s: %s; the feeds that would use it connect "
	         "directly",
	         *var, why);
	if (warn)
		warn(arg, msg);
	*var = NULL;
	return strcmp(why, "out of memory") == 0 ? -1 : 0;
}

int proxy_env_load(struct proxy_env *e, proxy_getenv_fn get, proxy_warn_fn warn, void *arg)
{
	const char *var, *v;

	*e = (struct proxy_env){0};
	if (load_one(&e->https, &e->https_var, "https_proxy", "HTTPS_PROXY", get, warn, arg) < 0 ||
	    load_one(&e->http, &e->http_var, "http_proxy", "HTTP_PROXY", get, warn, arg) < 0)
		goto fail;
	v = first_set(get, "no_proxy", "NO_PROXY", &var);
	if (v && !(e->no_proxy = strdup(v)))
		goto fail;
	return 0;
fail:
	proxy_env_fini(e);
	return -1;
}

void proxy_env_fini(struct proxy_env *e)
{
	proxy_url_free(e->http);
	proxy_url_free(e->https);
	free(e->no_proxy);
	*e = (struct proxy_env){0};
}

const struct proxy_url *proxy_choose(const struct proxy_setting *s, const struct proxy_env *e,
                                     const struct url *u)
{
	const struct proxy_url *p;

	switch (s->mode) {
	case PROXY_DIRECT:
		return NULL;
	case PROXY_URL:
		return s->url;
	case PROXY_ENV:
		break;
	}
	if (!e)
		return NULL;
	p = u->tls ? e->https : e->http;
	if (p && e->no_proxy && proxy_no_proxy_match(e->no_proxy, u->host, u->port))
		return NULL;
	return p;
}

int proxy_connect_target(const struct url *u, char *buf, size_t len)
{
	char port[8];
	int n = snprintf(buf, len, strchr(u->host, ':') ? "[%s]" : "%s", u->host);
	int pn = snprintf(port, sizeof(port), "%u", (unsigned)u->port);

	if (n < 0 || (size_t)n >= len || n + pn > PROXY_TARGET_MAX)
		return -1;
	return 0;
}

/* Copies printable ASCII from s (n bytes, up to a line end) into out; others become '.'. */
static void printable(const char *s, size_t n, size_t max, char *out, size_t len)
{
	size_t o = 0;

	for (size_t i = 0; i < n && i < max && o + 1 < len; i++) {
		if (s[i] == '\r' || s[i] == '\n')
			break;
		out[o++] = s[i] >= 0x20 && s[i] < 0x7f ? s[i] : '.';
	}
	if (len)
		out[o] = '\0';
}

int proxy_read_answer(const void *data, ssize_t n, char *phrase, size_t len)
{
	const char *d = data;
	char preview[PROXY_PREVIEW_MAX + 1];
	int status;

	if (n <= 0) {
		snprintf(phrase, len, "closed the connection without answering the CONNECT");
		return 0;
	}
	if (n >= 12 && memcmp(d, "HTTP/1.", 7) == 0 && (d[7] == '0' || d[7] == '1') &&
	    d[8] == ' ' && d[9] >= '1' && d[9] <= '5' && d[10] >= '0' && d[10] <= '9' &&
	    d[11] >= '0' && d[11] <= '9' &&
	    (n == 12 || d[12] == ' ' || d[12] == '\r' || d[12] == '\n')) {
		status = (d[9] - '0') * 100 + (d[10] - '0') * 10 + (d[11] - '0');
		if (n > 13)
			printable(d + 13, (size_t)n - 13, PROXY_PHRASE_MAX, phrase, len);
		else if (len)
			phrase[0] = '\0';
		return status;
	}
	printable(d, (size_t)n, PROXY_PREVIEW_MAX, preview, sizeof(preview));
	snprintf(phrase, len,
	         "answered the CONNECT with something that is not HTTP (%zd bytes: \"%s\")", n,
	         preview);
	return 0;
}

bool proxy_status_is_permanent(int status)
{
	return status == 401 || status == 403 || status == 407;
}
