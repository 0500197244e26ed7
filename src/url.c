/*
 * url: ws:// and wss:// URLs. The parser is strict because whatever it accepts ends up in an
 * HTTP request line and in logs; the display form drops userinfo and the query string, which
 * is where credentials usually live.
 */
#include "wsbeat/url.h"
#include "wsbeat/util.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define URL_HOST_MAX 255

/* Spaces and control characters would let a URL smuggle bytes into the request line. */
static int check_chars(const char *text, char *err, size_t errlen)
{
	for (const unsigned char *p = (const unsigned char *)text; *p; p++) {
		if (*p <= 0x20 || *p == 0x7f)
			return errf(err, errlen, "URL contains whitespace or a control character");
		if (*p >= 0x80)
			return errf(err, errlen,
			            "URL contains a non-ASCII byte (percent-encode it)");
		if (*p == '#')
			return errf(err, errlen,
			            "URL has a fragment ('#'), which WebSocket forbids");
	}
	return 0;
}

/* Returns the length of the scheme prefix including "://", and sets *tls. */
static int parse_scheme(const char *text, bool *tls, char *err, size_t errlen)
{
	const char *sep = strstr(text, "://");

	if (!sep || sep == text)
		return errf(err, errlen, "URL must start with ws:// or wss://");
	if (sep - text == 2 && strncasecmp(text, "ws", 2) == 0)
		*tls = false;
	else if (sep - text == 3 && strncasecmp(text, "wss", 3) == 0)
		*tls = true;
	else
		return errf(err, errlen, "unsupported URL scheme '%.*s' (use ws:// or wss://)",
		            (int)(sep - text) > 16 ? 16 : (int)(sep - text), text);
	return (int)(sep - text) + 3;
}

static int parse_port(const char *s, size_t n, uint16_t *port, char *err, size_t errlen)
{
	unsigned long v = 0;

	if (n == 0)
		return errf(err, errlen, "empty port after ':'");
	for (size_t i = 0; i < n; i++) {
		if (!isdigit((unsigned char)s[i]))
			return errf(err, errlen, "port '%.*s' is not a number", (int)n, s);
		v = v * 10 + (unsigned long)(s[i] - '0');
		if (v > 65535)
			return errf(err, errlen, "port '%.*s' is out of range 1..65535", (int)n, s);
	}
	if (v == 0)
		return errf(err, errlen, "port 0 is not allowed");
	*port = (uint16_t)v;
	return 0;
}

static bool is_name_char(int c)
{
	return isalnum(c) || c == '-' || c == '.' || c == '_' || c == '~';
}

/*
 * Splits "host[:port]" or "[v6][:port]" (n bytes at s) into a lower-cased host without brackets.
 * *port is left alone when no port is given.
 */
static int parse_hostport(const char *s, size_t n, char *host, uint16_t *port, bool *v6, char *err,
                          size_t errlen)
{
	const char *end = s + n, *hend, *colon;
	struct in6_addr a6;

	*v6 = (n > 0 && s[0] == '[');
	if (*v6) {
		hend = memchr(s, ']', n);
		if (!hend)
			return errf(err, errlen, "IPv6 address is missing its closing ']'");
		s++;
		colon = hend + 1 < end ? hend + 1 : NULL;
		if (colon && *colon != ':')
			return errf(err, errlen, "unexpected '%c' after IPv6 address", *colon);
	} else {
		colon = memchr(s, ':', n);
		hend = colon ? colon : end;
	}
	if (hend == s)
		return errf(err, errlen, "empty host");
	if (hend - s > URL_HOST_MAX)
		return errf(err, errlen, "host name is longer than %d characters", URL_HOST_MAX);
	for (size_t i = 0; i < (size_t)(hend - s); i++) {
		if (!*v6 && !is_name_char((unsigned char)s[i]))
			return errf(err, errlen, "invalid character '%c' in host", s[i]);
		host[i] = (char)tolower((unsigned char)s[i]);
	}
	host[hend - s] = '\0';
	if (*v6 && inet_pton(AF_INET6, host, &a6) != 1)
		return errf(err, errlen, "invalid IPv6 address '%s'", host);
	if (colon)
		return parse_port(colon + 1, (size_t)(end - colon - 1), port, err, errlen);
	return 0;
}

/*
 * Builds the four strings once host and port are known; rest is what follows the authority.
 * They share one allocation, owned through host: a feed's URL costs one heap block, not four.
 */
static int build_strings(struct url *u, const char *host, const char *rest, bool v6)
{
	const char *scheme = u->tls ? "wss" : "ws";
	const char *slash = *rest == '/' ? "" : "/"; /* "" becomes "/", "?q" becomes "/?q" */
	size_t query = strcspn(rest, "?");           /* the display form stops here */
	char hh[URL_HOST_MAX + 16];
	size_t hl, pl, hhl, dl;
	int n;

	n = snprintf(hh, sizeof(hh), v6 ? "[%s]" : "%s", host);
	if (u->port != (u->tls ? 443 : 80))
		snprintf(hh + n, sizeof(hh) - (size_t)n, ":%u", (unsigned)u->port);
	hl = strlen(host) + 1;
	pl = strlen(slash) + strlen(rest) + 1;
	hhl = strlen(hh) + 1;
	dl = strlen(scheme) + 3 + hhl + strlen(slash) + query;
	u->host = malloc(hl + pl + hhl + dl);
	if (!u->host)
		return -1;
	u->path = u->host + hl;
	u->host_header = u->path + pl;
	u->display = u->host_header + hhl;
	memcpy(u->host, host, hl);
	snprintf(u->path, pl, "%s%s", slash, rest);
	memcpy(u->host_header, hh, hhl);
	snprintf(u->display, dl, "%s://%s%s%.*s", scheme, hh, slash, (int)query, rest);
	return 0;
}

int url_parse(const char *text, struct url *u, char *err, size_t errlen)
{
	char host[URL_HOST_MAX + 1];
	const char *auth, *aend, *at;
	bool v6;
	int n;

	memset(u, 0, sizeof(*u));
	if (!text || !*text)
		return errf(err, errlen, "empty URL");
	if (check_chars(text, err, errlen) < 0)
		return -1;
	n = parse_scheme(text, &u->tls, err, errlen);
	if (n < 0)
		return -1;
	auth = text + n;
	aend = auth + strcspn(auth, "/?");
	/* Userinfo is tolerated so that pasted URLs work, but never kept: it is a credential. */
	at = memchr(auth, '@', (size_t)(aend - auth));
	while (at && memchr(at + 1, '@', (size_t)(aend - at - 1)))
		at = memchr(at + 1, '@', (size_t)(aend - at - 1));
	if (at)
		auth = at + 1;
	u->port = u->tls ? 443 : 80;
	if (parse_hostport(auth, (size_t)(aend - auth), host, &u->port, &v6, err, errlen) < 0)
		return -1;
	if (build_strings(u, host, aend, v6) < 0) {
		url_fini(u);
		return errf(err, errlen, "out of memory");
	}
	return 0;
}

int url_parse_hostport(const char *text, char *host, size_t hostlen, uint16_t *port, char *err,
                       size_t errlen)
{
	char h[URL_HOST_MAX + 1];
	bool v6;
	size_t n = strlen(text);

	*port = 0;
	if (check_chars(text, err, errlen) < 0)
		return -1;
	if (parse_hostport(text, n, h, port, &v6, err, errlen) < 0)
		return -1;
	if (*port == 0)
		return errf(err, errlen, "missing ':PORT' (expected ADDR:PORT)");
	if (strlen(h) >= hostlen)
		return errf(err, errlen, "host name is too long");
	strcpy(host, h);
	return 0;
}

void url_fini(struct url *u)
{
	free(u->host); /* and with it the other three strings */
	memset(u, 0, sizeof(*u));
}

bool url_ip_literal(const char *s)
{
	unsigned char buf[sizeof(struct in6_addr)];

	return inet_pton(AF_INET, s, buf) == 1 || inet_pton(AF_INET6, s, buf) == 1;
}

bool url_host_is_numeric(const struct url *u)
{
	return u->host && url_ip_literal(u->host);
}
