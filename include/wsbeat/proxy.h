/*
 * proxy: HTTP proxies for feeds (a CONNECT tunnel per connection). Pure: parsing proxy URLs,
 * curl's no_proxy rules, the choice between a feed's `proxy` setting and the environment, and
 * reading a proxy's answer. The environment is read only through the caller's getenv.
 */
#ifndef WSBEAT_PROXY_H
#define WSBEAT_PROXY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "wsbeat/url.h"

/* "user:password" as sent: libwebsockets 4.1 keeps it base64-encoded in 128 bytes. */
#define PROXY_AUTH_MAX 93
/* libwebsockets 4.1 writes "CONNECT host:port" and "Host: host:port" into 255 bytes: the host
 * (bracketed if IPv6) and the port's digits together may not be longer than this. */
#define PROXY_TARGET_MAX 104

/* A parsed http:// proxy URL. */
struct proxy_url {
	char *host;    /* name or literal address, lower case, IPv6 without brackets */
	char *auth;    /* "user:password", percent-decoded; NULL when none. A secret. */
	char *display; /* "host:port" (IPv6 bracketed), no credentials: safe to log */
	uint16_t port;
	bool numeric; /* host is an IP literal: nothing to resolve */
};

enum proxy_mode {
	PROXY_ENV,    /* no `proxy` setting: the environment decides */
	PROXY_DIRECT, /* proxy = "" */
	PROXY_URL,    /* proxy = "http://..." */
};

/* A feed's `proxy` setting. */
struct proxy_setting {
	enum proxy_mode mode;
	struct proxy_url *url; /* PROXY_URL only */
};

/* The proxy variables of the environment, read once at start. */
struct proxy_env {
	struct proxy_url *http, *https;   /* for ws:// and wss:// feeds; NULL = none */
	const char *http_var, *https_var; /* the variable each came from */
	char *no_proxy;                   /* the hosts that bypass them; NULL = none */
};

/*
 * Parses "http://[user[:password]@]host:port[/]" into a new *out (free with proxy_url_free).
 * need_scheme: the http:// prefix is required (the config file), else optional (environment
 * variables, as curl reads them). On error returns -1 with a reason in err that never quotes
 * the text (it may hold a password).
 */
int proxy_parse(const char *text, bool need_scheme, struct proxy_url **out, char *err,
                size_t errlen);

/* Frees p, wiping its credentials first. NULL is a no-op. */
void proxy_url_free(struct proxy_url *p);

/* True when both are NULL or name the same proxy with the same credentials. */
bool proxy_url_equal(const struct proxy_url *a, const struct proxy_url *b);

/*
 * curl's no_proxy rules: list is comma-separated (whitespace around entries ignored); "*"
 * matches every host; a name matches itself and its subdomains, with or without a leading dot,
 * ignoring case and a trailing dot; an IP address matches only that address; an entry with
 * ":PORT" (IPv6 as "[addr]:PORT") matches only that port. host is as in struct url.
 */
bool proxy_no_proxy_match(const char *list, const char *host, uint16_t port);

typedef char *(*proxy_getenv_fn)(const char *name);
typedef void (*proxy_warn_fn)(void *arg, const char *msg);

/*
 * Reads https_proxy (then HTTPS_PROXY), http_proxy (then HTTP_PROXY) and no_proxy (then
 * NO_PROXY) through get; an empty variable counts as unset. A value that does not parse is
 * left out, and warn(arg, msg) says so naming the variable, never its value. 0, or -1 when out
 * of memory.
 */
int proxy_env_load(struct proxy_env *e, proxy_getenv_fn get, proxy_warn_fn warn, void *arg);

/* Frees what e holds. */
void proxy_env_fini(struct proxy_env *e);

/*
 * The proxy a feed with setting s and URL u goes through, or NULL for a direct connection:
 * its own proxy, none for proxy = "", else the environment's for its scheme unless no_proxy
 * names its host. e may be NULL (no environment proxies).
 */
const struct proxy_url *proxy_choose(const struct proxy_setting *s, const struct proxy_env *e,
                                     const struct url *u);

/*
 * What the CONNECT request names for u: its host (bracketed if IPv6). Writes it into buf and
 * returns 0, or -1 when host and port are longer than libwebsockets 4.1 can send
 * (PROXY_TARGET_MAX).
 */
int proxy_connect_target(const struct url *u, char *buf, size_t len);

/*
 * Reads a proxy's answer to the CONNECT: the n bytes that arrived first (n = 0: the proxy
 * closed the connection). Returns the HTTP status, writing the reason phrase (printable ASCII
 * only) into phrase; or 0 when the answer is not HTTP, writing why into phrase.
 */
int proxy_read_answer(const void *data, ssize_t n, char *phrase, size_t len);

/* True when a proxy's refusal will not fix itself by retrying: 407 (and 401, which some
 * proxies send for wrong credentials) and 403. */
bool proxy_status_is_permanent(int status);

#endif
