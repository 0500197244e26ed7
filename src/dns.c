/* Non-blocking DNS: c-ares sockets in a private epoll set, timeouts on the timer queue. */
#include "wsbeat/dns.h"

#include <ares.h>
#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <unistd.h>

#include "wsbeat/util.h"

struct dns {
	ares_channel channel;
	int epfd;
	struct timerq *tq;
	struct tq_timer timer;   /* c-ares's next retransmit or timeout */
	struct tq_timer deliver; /* hands finished answers to their callers */
	struct dns_req *done;    /* answered, waiting for delivery */
};

struct dns_req {
	struct dns *d;
	dns_cb cb;
	void *arg;
	bool cancelled;
	struct dns_result res;
	struct dns_req *next_done;
};

static void free_done(struct dns *d);
static void queue_done(struct dns *d, struct dns_req *req);
static void on_deliver(struct tq_timer *t, int64_t now_us);

static void sock_state(void *data, ares_socket_t fd, int readable, int writable)
{
	struct dns *d = data;
	struct epoll_event ev = {.data.fd = fd};

	ev.events = (readable ? EPOLLIN : 0) | (writable ? EPOLLOUT : 0);
	if (!ev.events) {
		epoll_ctl(d->epfd, EPOLL_CTL_DEL, fd, NULL);
		return;
	}
	if (epoll_ctl(d->epfd, EPOLL_CTL_MOD, fd, &ev) < 0 && errno == ENOENT)
		epoll_ctl(d->epfd, EPOLL_CTL_ADD, fd, &ev);
}

/* Keeps the timer armed for c-ares's earliest timeout while queries are in flight. */
static void rearm(struct dns *d)
{
	struct timeval tv, *t = ares_timeout(d->channel, NULL, &tv);

	if (!t) {
		tq_cancel(d->tq, &d->timer);
		return;
	}
	tq_arm(d->tq, &d->timer, mono_us() + (int64_t)t->tv_sec * 1000000 + t->tv_usec);
}

static void on_timer(struct tq_timer *t, int64_t now_us)
{
	struct dns *d = container_of(t, struct dns, timer);

	ares_process_fd(d->channel, ARES_SOCKET_BAD, ARES_SOCKET_BAD);
	rearm(d);
}

void dns_on_readable(struct dns *d)
{
	struct epoll_event evs[16];
	int n = epoll_wait(d->epfd, evs, (int)ARRAY_SIZE(evs), 0);

	for (int i = 0; i < n; i++) {
		ares_socket_t rd = evs[i].events & (EPOLLIN | EPOLLERR | EPOLLHUP)
		                       ? evs[i].data.fd
		                       : ARES_SOCKET_BAD;
		ares_socket_t wr = evs[i].events & EPOLLOUT ? evs[i].data.fd : ARES_SOCKET_BAD;
		ares_process_fd(d->channel, rd, wr);
	}
	rearm(d);
}

struct dns *dns_new(struct timerq *tq, const char *servers, int timeout_ms, int tries, char *err,
                    size_t errlen)
{
	struct dns *d = calloc(1, sizeof(*d));
	struct ares_options o = {0};
	int mask = ARES_OPT_SOCK_STATE_CB, rc;

	if (!d || tq_reserve(tq, 2) < 0) {
		snprintf(err, errlen, "out of memory");
		free(d);
		return NULL;
	}
	d->tq = tq;
	tq_timer_init(&d->timer, on_timer);
	tq_timer_init(&d->deliver, on_deliver);
	d->epfd = epoll_create1(EPOLL_CLOEXEC);
	if (d->epfd < 0) {
		snprintf(err, errlen, "epoll_create1: %s", strerror(errno));
		free(d);
		return NULL;
	}
	o.sock_state_cb = sock_state;
	o.sock_state_cb_data = d;
	if (timeout_ms > 0) {
		o.timeout = timeout_ms;
		mask |= ARES_OPT_TIMEOUTMS;
	}
	if (tries > 0) {
		o.tries = tries;
		mask |= ARES_OPT_TRIES;
	}
	rc = ares_library_init(ARES_LIB_INIT_ALL);
	if (rc == ARES_SUCCESS)
		rc = ares_init_options(&d->channel, &o, mask);
	if (rc == ARES_SUCCESS && servers)
		rc = ares_set_servers_ports_csv(d->channel, servers);
	if (rc != ARES_SUCCESS) {
		snprintf(err, errlen, "resolver: %s", ares_strerror(rc));
		dns_free(d);
		return NULL;
	}
	return d;
}

void dns_free(struct dns *d)
{
	if (!d)
		return;
	if (d->channel)
		ares_destroy(d->channel); /* callbacks see ARES_EDESTRUCTION and stay quiet */
	tq_cancel(d->tq, &d->timer);
	tq_cancel(d->tq, &d->deliver);
	free_done(d);
	if (d->epfd >= 0)
		close(d->epfd);
	free(d);
	ares_library_cleanup();
}

int dns_fd(const struct dns *d)
{
	return d->epfd;
}

static void collect(const struct ares_addrinfo *ai, struct dns_result *res)
{
	for (const struct ares_addrinfo_node *n = ai->nodes; n && res->n < DNS_MAX_ADDRS;
	     n = n->ai_next) {
		struct dns_addr *a = &res->addrs[res->n];
		if (n->ai_family == AF_INET6)
			memcpy(a->bytes, &((struct sockaddr_in6 *)n->ai_addr)->sin6_addr, 16);
		else if (n->ai_family == AF_INET)
			memcpy(a->bytes, &((struct sockaddr_in *)n->ai_addr)->sin_addr, 4);
		else
			continue;
		a->family = (unsigned char)n->ai_family;
		res->n++;
	}
}

/*
 * c-ares may answer from inside ares_getaddrinfo (numbers, /etc/hosts), so answers are queued
 * and delivered from a timer: a caller is never called back from inside dns_resolve.
 */
static void on_answer(void *arg, int status, int timeouts, struct ares_addrinfo *ai)
{
	struct dns_req *req = arg;
	struct dns *d = req->d;

	if (status == ARES_EDESTRUCTION) {
		free(req);
		return;
	}
	if (status == ARES_SUCCESS && ai)
		collect(ai, &req->res);
	else
		req->res.error = ares_strerror(status);
	if (!req->res.error && req->res.n == 0)
		req->res.error = "no usable address";
	if (ai)
		ares_freeaddrinfo(ai);
	queue_done(d, req);
}

static void on_deliver(struct tq_timer *t, int64_t now_us)
{
	struct dns *d = container_of(t, struct dns, deliver);

	while (d->done) {
		struct dns_req *req = d->done;
		d->done = req->next_done;
		if (!req->cancelled)
			req->cb(req->arg, &req->res);
		free(req);
	}
}

static void free_done(struct dns *d)
{
	while (d->done) {
		struct dns_req *req = d->done;
		d->done = req->next_done;
		free(req);
	}
}

/* "localhost", "localhost." and names under .localhost (any case). */
static bool is_localhost(const char *host)
{
	static const char suffix[] = ".localhost";
	size_t n = strlen(host), k = sizeof(suffix) - 1;

	if (n && host[n - 1] == '.')
		n--;
	if (n == k - 1 && strncasecmp(host, suffix + 1, n) == 0)
		return true;
	return n > k && strncasecmp(host + n - k, suffix, k) == 0;
}

/* Queues an answer for delivery from the timer, as c-ares answers are. */
static void queue_done(struct dns *d, struct dns_req *req)
{
	req->next_done = d->done;
	d->done = req;
	if (!tq_armed(&d->deliver))
		tq_arm(d->tq, &d->deliver, mono_us());
}

/*
 * RFC 6761 section 6.3: localhost names are loopback, answered without asking any resolver or
 * reading /etc/hosts (a minimal root or container may not have the file, and c-ares 1.18 does
 * not know the name without it). IPv4 first: that is where local servers usually listen.
 */
static void answer_loopback(struct dns *d, struct dns_req *req)
{
	struct dns_result *r = &req->res;

	r->addrs[0] = (struct dns_addr){.family = AF_INET, .bytes = {127, 0, 0, 1}};
	r->addrs[1] = (struct dns_addr){.family = AF_INET6, .bytes = {[15] = 1}};
	r->n = 2;
	queue_done(d, req);
}

struct dns_req *dns_resolve(struct dns *d, const char *host, dns_cb cb, void *arg)
{
	struct ares_addrinfo_hints hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM};
	struct dns_req *req = calloc(1, sizeof(*req));

	if (!req)
		return NULL;
	*req = (struct dns_req){.d = d, .cb = cb, .arg = arg};
	if (is_localhost(host)) {
		answer_loopback(d, req);
		return req;
	}
	ares_getaddrinfo(d->channel, host, NULL, &hints, on_answer, req);
	rearm(d);
	return req;
}

void dns_cancel(struct dns_req *req)
{
	if (req)
		req->cancelled = true;
}

int dns_addr_parse(const char *text, struct dns_addr *a)
{
	*a = (struct dns_addr){.family = AF_INET};
	if (inet_pton(AF_INET, text, a->bytes) == 1)
		return 0;
	a->family = AF_INET6;
	return inet_pton(AF_INET6, text, a->bytes) == 1 ? 0 : -1;
}

const char *dns_addr_text(const struct dns_addr *a, char *buf, size_t len)
{
	if (!inet_ntop(a->family, a->bytes, buf, (socklen_t)len))
		snprintf(buf, len, "?");
	return buf;
}

const char *dns_version(void)
{
	return ares_version(NULL);
}
