/*
 * dns: name resolution that never blocks the loop. A c-ares channel whose sockets sit in a
 * private epoll set; that one epoll descriptor is added to the lws loop (ws.c) and c-ares's
 * own timeouts run on the timer queue. Answers come back through a callback, never from
 * inside dns_resolve.
 */
#ifndef WSBEAT_DNS_H
#define WSBEAT_DNS_H

#include <stddef.h>
#include <stdint.h>

#include "wsbeat/timerq.h"

#define DNS_MAX_ADDRS 4
#define DNS_ADDR_LEN  46 /* INET6_ADDRSTRLEN: room for any address as text */

struct dns;
struct dns_req;

/* One address in binary: a feed keeps every answer of its attempt, and 17 bytes each are a
 * third of what the text form takes. */
struct dns_addr {
	unsigned char family;    /* AF_INET or AF_INET6 */
	unsigned char bytes[16]; /* network order; AF_INET uses the first 4 */
};

/* The answer: addresses in the resolver's order (IPv6 and IPv4), or an error text. */
struct dns_result {
	size_t n;
	struct dns_addr addrs[DNS_MAX_ADDRS];
	const char *error; /* NULL on success */
};

typedef void (*dns_cb)(void *arg, const struct dns_result *res);

/*
 * Creates the resolver. servers: NULL for the system's (resolv.conf), or a c-ares CSV list
 * ("127.0.0.1:5353,[::1]:53"). timeout_ms/tries: 0 keeps the system defaults.
 * Returns NULL with a reason in err.
 */
struct dns *dns_new(struct timerq *tq, const char *servers, int timeout_ms, int tries, char *err,
                    size_t errlen);

/* Cancels every query (their callbacks are not called) and frees d. NULL is a no-op. */
void dns_free(struct dns *d);

/* The descriptor the loop must watch for reading. */
int dns_fd(const struct dns *d);

/* Call when dns_fd is readable: lets c-ares read its answers. */
void dns_on_readable(struct dns *d);

/*
 * Starts resolving host. cb(arg, result) is called exactly once, later, from the loop, unless
 * the request is cancelled first. Returns the request, or NULL on allocation failure.
 */
struct dns_req *dns_resolve(struct dns *d, const char *host, dns_cb cb, void *arg);

/* Makes sure req's callback will not be called. */
void dns_cancel(struct dns_req *req);

/* Parses a numeric IPv4 or IPv6 literal (no brackets) into *a. 0, or -1 if text is not one. */
int dns_addr_parse(const char *text, struct dns_addr *a);

/* Writes a as text into buf (DNS_ADDR_LEN bytes are always enough) and returns buf; "?" for an
 * address that cannot be formatted. */
const char *dns_addr_text(const struct dns_addr *a, char *buf, size_t len);

/* c-ares version string, for --version. */
const char *dns_version(void);

#endif
