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
#define DNS_ADDR_LEN  46 /* INET6_ADDRSTRLEN */

struct dns;
struct dns_req;

/* The answer: numeric addresses in the resolver's order (IPv6 and IPv4), or an error text. */
struct dns_result {
	size_t n;
	char addrs[DNS_MAX_ADDRS][DNS_ADDR_LEN];
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

/* c-ares version string, for --version. */
const char *dns_version(void);

#endif
