/*
 * The optional HTTP endpoint (metrics.listen): a server vhost in the same lws context and loop
 * as the feeds. GET / (the status page), /metrics and /status are rendered by the app; anything
 * else is 404.
 * Bodies are written from HTTP_WRITEABLE in bounded chunks so a large scrape never holds the
 * loop for long: documents are rendered a slice per loop turn, then sent.
 */
#include "wsbeat/ws_http.h"

#include <arpa/inet.h>
#include <errno.h>
#include <libwebsockets.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "wsbeat/log.h"
#include "wsbeat/url.h"
#include "ws_internal.h"

#define HTTP_CHUNK (16 * 1024)

struct http_pss {
	void *job; /* the document being rendered, NULL once complete or when there is none */
	bool headers_sent;
	struct ws_http_reply reply;
	struct mbuf body;
	size_t sent;
};

static const struct ws_http_hooks *hooks_of(struct lws *wsi)
{
	return lws_get_protocol(wsi)->user;
}

static int add_header(struct lws *wsi, const char *name, const char *value, unsigned char **p,
                      unsigned char *end)
{
	return lws_add_http_header_by_name(wsi, (const unsigned char *)name,
	                                   (const unsigned char *)value, (int)strlen(value), p,
	                                   end);
}

/* Every answer is current (no-store) and is what its type says (nosniff); the page also gets
 * its policy and keeps its address to itself. */
static int send_headers(struct lws *wsi, int status, const struct ws_http_reply *r, size_t len)
{
	unsigned char buf[LWS_PRE + 1536], *start = buf + LWS_PRE, *p = start,
	                                   *end = buf + sizeof(buf) - 1;

	if (lws_add_http_common_headers(wsi, (unsigned int)status, r->type, len, &p, end) ||
	    add_header(wsi, "cache-control:", "no-store", &p, end) ||
	    add_header(wsi, "x-content-type-options:", "nosniff", &p, end) ||
	    (r->csp && (add_header(wsi, "content-security-policy:", r->csp, &p, end) ||
	                add_header(wsi, "referrer-policy:", "no-referrer", &p, end) ||
	                add_header(wsi, "x-frame-options:", "DENY", &p, end))) ||
	    lws_finalize_write_http_header(wsi, start, &p, end))
		return -1;
	return 0;
}

static void finish_job(struct lws *wsi, struct http_pss *pss)
{
	if (pss->job) {
		hooks_of(wsi)->end(hooks_of(wsi)->arg, pss->job);
		pss->job = NULL;
	}
}

static int fail(struct lws *wsi, unsigned int status)
{
	lws_return_http_status(wsi, status, NULL);
	return lws_http_transaction_completed(wsi) ? -1 : 0;
}

static int on_request(struct lws *wsi, struct http_pss *pss, const char *path)
{
	const struct ws_http_hooks *h = hooks_of(wsi);
	int status;

	if (lws_hdr_total_length(wsi, WSI_TOKEN_GET_URI) <= 0)
		return fail(wsi, HTTP_STATUS_METHOD_NOT_ALLOWED);
	*pss = (struct http_pss){0};
	status = h->begin(h->arg, path, &pss->job, &pss->reply);
	if (status != 200)
		return fail(wsi, (unsigned int)status);
	lws_callback_on_writable(wsi);
	return 0;
}

/* One turn of the loop: render a slice, or, once complete, send the headers or a chunk. */
static int on_writeable(struct lws *wsi, struct http_pss *pss)
{
	unsigned char buf[LWS_PRE + HTTP_CHUNK];
	size_t left, n;
	bool last;

	if (pss->job) {
		int done = hooks_of(wsi)->step(hooks_of(wsi)->arg, pss->job, &pss->body);
		if (done < 0 || pss->body.oom) {
			finish_job(wsi, pss);
			mbuf_free(&pss->body);
			return fail(wsi, HTTP_STATUS_INTERNAL_SERVER_ERROR);
		}
		if (done)
			finish_job(wsi, pss);
		lws_callback_on_writable(wsi);
		return 0;
	}
	if (!pss->headers_sent) {
		pss->headers_sent = true;
		if (send_headers(wsi, 200, &pss->reply, pss->body.len) < 0)
			return -1;
		lws_callback_on_writable(wsi);
		return 0;
	}
	left = pss->body.len - pss->sent;
	n = left > HTTP_CHUNK ? HTTP_CHUNK : left;
	last = n == left;
	memcpy(buf + LWS_PRE, pss->body.p + pss->sent, n);
	if (lws_write(wsi, buf + LWS_PRE, n, last ? LWS_WRITE_HTTP_FINAL : LWS_WRITE_HTTP) < 0)
		return -1;
	pss->sent += n;
	if (!last) {
		lws_callback_on_writable(wsi);
		return 0;
	}
	mbuf_free(&pss->body);
	return lws_http_transaction_completed(wsi) ? -1 : 0;
}

static int http_callback(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in,
                         size_t len)
{
	struct http_pss *pss = user;

	switch (reason) {
	case LWS_CALLBACK_HTTP:
		return on_request(wsi, pss, in ? (const char *)in : "/");
	case LWS_CALLBACK_HTTP_WRITEABLE:
		return pss && (pss->job || pss->body.p) ? on_writeable(wsi, pss) : 0;
	case LWS_CALLBACK_HTTP_DROP_PROTOCOL:
	case LWS_CALLBACK_CLOSED_HTTP:
		if (pss) {
			finish_job(wsi, pss);
			mbuf_free(&pss->body);
		}
		return 0;
	default:
		return lws_callback_http_dummy(wsi, reason, user, in, len);
	}
}

static bool is_loopback(const char *host)
{
	struct in_addr a4;
	struct in6_addr a6;

	if (inet_pton(AF_INET, host, &a4) == 1)
		return (ntohl(a4.s_addr) >> 24) == 127;
	return inet_pton(AF_INET6, host, &a6) == 1 && IN6_IS_ADDR_LOOPBACK(&a6);
}

/*
 * The endpoint owns its listening socket instead of letting lws bind one: lws 4.1 looks the
 * address up among the interfaces with getifaddrs(), and where that fails (the shipped unit
 * has no AF_NETLINK) it logs an error and binds the wildcard address, every interface. Binding
 * ourselves gives exactly the address configured and a real reason when it fails. Accepted
 * connections are handed to a server vhost that does not listen.
 */
struct ws_http {
	struct lws_vhost *vhost;
	struct ws_watch *watch;
	int fd;
	char listen[72];
};

static int bind_listen(const char *where, char *err, size_t errlen)
{
	union {
		struct sockaddr_in v4;
		struct sockaddr_in6 v6;
	} sa = {0};
	char host[64];
	uint16_t port;
	socklen_t len;
	int fd, one = 1;

	if (url_parse_hostport(where, host, sizeof(host), &port, err, errlen) < 0)
		return -1;
	if (inet_pton(AF_INET, host, &sa.v4.sin_addr) == 1) {
		sa.v4.sin_family = AF_INET;
		sa.v4.sin_port = htons(port);
		len = sizeof(sa.v4);
	} else if (inet_pton(AF_INET6, host, &sa.v6.sin6_addr) == 1) {
		sa.v6.sin6_family = AF_INET6;
		sa.v6.sin6_port = htons(port);
		len = sizeof(sa.v6);
	} else {
		snprintf(err, errlen, "metrics.listen %s: the address must be numeric", where);
		return -1;
	}
	fd = socket(sa.v4.sin_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) < 0 ||
	    (sa.v4.sin_family == AF_INET6 &&
	     setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one)) < 0) ||
	    bind(fd, (struct sockaddr *)&sa, len) < 0 || listen(fd, 64) < 0) {
		snprintf(err, errlen, "metrics.listen %s: cannot listen: %s", where,
		         strerror(errno));
		if (fd >= 0)
			close(fd);
		return -1;
	}
	return fd;
}

/* Accepts what is waiting and hands each connection to lws as an HTTP server connection. */
static void on_accept(void *arg)
{
	struct ws_http *h = arg;

	for (int i = 0; i < 64; i++) {
		int c = accept4(h->fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (c < 0) {
			if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR &&
			    errno != ECONNABORTED)
				log_warn("metrics endpoint: accept: %s", strerror(errno));
			return;
		}
		if (!lws_adopt_socket_vhost(h->vhost, c))
			log_warn("metrics endpoint: cannot take a connection (out of memory)");
	}
}

static struct lws_vhost *server_vhost(struct lws_context *ctx, const struct ws_http_hooks *hooks)
{
	static struct lws_protocols protocols[] = {
	    {"wsbeat-http", http_callback, sizeof(struct http_pss), 0, 0, NULL, 0},
	    {NULL, NULL, 0, 0, 0, NULL, 0},
	};
	struct lws_context_creation_info info = {0};

	protocols[0].user = (void *)hooks;
	info.vhost_name = "metrics";
	info.port = CONTEXT_PORT_NO_LISTEN_SERVER;
	info.protocols = protocols;
	return ws_create_vhost(ctx, &info);
}

/* Moves the endpoint to a new socket; the old one is closed only once the new one listens. */
static int relisten(struct ws *w, struct ws_http *h, const char *listen, char *err, size_t errlen)
{
	int fd = bind_listen(listen, err, errlen);
	struct ws_watch *watch;

	if (fd < 0)
		return -1;
	watch = ws_watch_fd(w, fd, on_accept, h);
	if (!watch) {
		snprintf(err, errlen, "metrics.listen %s: %s", listen, strerror(errno));
		close(fd);
		return -1;
	}
	ws_unwatch(h->watch);
	if (h->fd >= 0)
		close(h->fd);
	h->watch = watch;
	h->fd = fd;
	snprintf(h->listen, sizeof(h->listen), "%s", listen);
	return 0;
}

int ws_http_listen(struct ws *w, const char *listen, const struct ws_http_hooks *hooks, char *err,
                   size_t errlen)
{
	struct ws_http *h = w->http;
	char host[64];
	uint16_t port;

	if (!listen) {
		if (h) {
			ws_unwatch(h->watch);
			close(h->fd);
			*h = (struct ws_http){.vhost = h->vhost, .fd = -1};
			log_rec(LOG_LVL_NOTICE, (struct log_kv[]){{"event", "metrics"}}, 1,
			        "no longer serving /metrics and /status");
		}
		return 0;
	}
	if (h && strcmp(h->listen, listen) == 0)
		return 0;
	if (!h) {
		h = calloc(1, sizeof(*h));
		if (!h || !(h->vhost = server_vhost(w->ctx, hooks))) {
			free(h);
			snprintf(err, errlen, "metrics.listen %s: cannot create the HTTP server",
			         listen);
			return -1;
		}
		h->fd = -1;
		w->http = h;
	}
	if (relisten(w, h, listen, err, errlen) < 0)
		return -1;
	if (url_parse_hostport(listen, host, sizeof(host), &port, NULL, 0) == 0 &&
	    !is_loopback(host))
		log_warn("metrics endpoint listens on %s, which is not a loopback address", listen);
	log_rec(LOG_LVL_NOTICE, (struct log_kv[]){{"event", "metrics"}, {"listen", listen}}, 2,
	        "serving /metrics and /status on %s", listen);
	return 0;
}

void ws_http_free(struct ws_http *h)
{
	if (!h)
		return;
	/* The context is gone, and with it the watch and the vhost. */
	if (h->fd >= 0)
		close(h->fd);
	free(h);
}
