/* url: parse ws:// and wss:// URLs; render them safely for logs. Pure, no I/O. */
#ifndef WSBEAT_URL_H
#define WSBEAT_URL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* The four strings share one allocation, owned through host (url_fini frees it). */
struct url {
	char *host;        /* name or literal address, IPv6 without brackets */
	char *path;        /* path and query as sent in the request line, at least "/" */
	char *host_header; /* Host header value: host, bracketed if IPv6, ":port" if not default */
	char *display;     /* scheme://host[:port]/path without userinfo or query: safe to log */
	uint16_t port;     /* explicit or 80/443 */
	bool tls;          /* wss:// */
};

/*
 * Parses text into *u (its strings newly allocated, in one block). Rejects anything but ws/wss,
 * empty hosts, bad ports (0 or > 65535), fragments, spaces and control characters. Userinfo is
 * accepted and dropped from every rendering. On error returns -1 with a one-line reason in err.
 */
int url_parse(const char *text, struct url *u, char *err, size_t errlen);

/*
 * Parses "ADDR:PORT" (ADDR a name, an IPv4 literal or a bracketed IPv6 literal; PORT 1..65535)
 * into host (no brackets, lower case) and *port. On error returns -1 with a reason in err.
 */
int url_parse_hostport(const char *text, char *host, size_t hostlen, uint16_t *port, char *err,
                       size_t errlen);

/* Frees the strings of u (not u itself); safe on a zeroed struct. */
void url_fini(struct url *u);

/* True when host is a numeric IPv4 or IPv6 literal (no DNS needed). */
bool url_host_is_numeric(const struct url *u);
/* True when s is an IPv4 or IPv6 address literal (IPv6 without brackets). */
bool url_ip_literal(const char *s);

#endif
