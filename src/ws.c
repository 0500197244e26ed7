/* The libwebsockets shell: context, callbacks, the timer driver and signals. */
#include "wsbeat/ws.h"

#include <dlfcn.h>
#include <errno.h>
#include <ev.h>
#include <fcntl.h>
#include <limits.h>
#include <stdbool.h>
#include <libwebsockets.h>
#include <openssl/crypto.h>
#include <openssl/rand.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <sys/timerfd.h>
#include <unistd.h>

#include "wsbeat/dns.h"
#include "wsbeat/helper.h"
#include "wsbeat/log.h"
#include "wsbeat/tls.h"
#include "wsbeat/ws_http.h"
#include "wsbeat/util.h"
#include "ws_internal.h"

/* Receive buffer per connection: small, since it is most of an idle connection's memory
 * (bench/: 256 bytes saved 0.9 KiB per feed against 1024; 512 keeps larger messages at a
 * reasonable number of callbacks). */
#define WS_RX_BUFFER 512
/* lws's own network timeouts must never beat the feed's connect_timeout. */
#define WS_LWS_TIMEOUT_SLACK_S 5
/* Descriptors besides the feeds' connections: stdio, journald, our timerfd, signalfd and
 * c-ares set, lws's pipe, metrics listener and scrapers, sink files. */
#define WS_FD_RESERVE 64
/* Never above lws's 10,000,000 sanity cap, where it silently falls back to 2,560 fds. */
#define WS_NOFILE_CAP (1024 * 1024)

/*
 * lws 4.1 fills each client frame's 4-byte mask key with a read() of /dev/urandom: one system
 * call per heartbeat. libwebsockets.so calls lws_get_random() through its PLT, so this
 * definition in the executable takes the library's place (ELF symbol interposition) for every
 * caller: mask keys, the handshake's Sec-WebSocket-Key. The bytes come from OpenSSL's DRBG, a
 * CSPRNG seeded by the kernel, so the keys stay unpredictable as RFC 6455 section 5.3 asks;
 * they are drawn 512 at a time because each RAND_bytes() call costs a getpid() (its fork check)
 * and a cipher set-up, and a used byte is wiped from the pool. One thread, so no lock.
 * `nm -D wsbeat | grep lws_get_random` shows the definition is in place.
 */
size_t lws_get_random(struct lws_context *context, void *buf, size_t len)
{
	static unsigned char pool[512];
	static size_t left;

	(void)context;
	if (len > sizeof(pool) / 2)
		return len <= INT_MAX && RAND_bytes(buf, (int)len) == 1 ? len : 0;
	if (left < len) {
		if (RAND_bytes(pool, (int)sizeof(pool)) != 1)
			return 0; /* lws treats a short answer as failure */
		left = sizeof(pool);
	}
	left -= len;
	memcpy(buf, pool + left, len);
	OPENSSL_cleanse(pool + left, len);
	return len;
}

/*
 * lws 4.1.6 answers a server's PING itself and tells its user nothing (client-parser-ws.c
 * stashes the payload and asks for a write; no callback). The answer goes out through
 * lws_write(..., LWS_WRITE_PONG), which libwebsockets.so calls through its PLT like every
 * exported function, so this definition in the executable sees it: every PONG lws writes
 * on a feed's connection is one PING the server sent. (A PING that arrives while the previous
 * PONG is still unsent is dropped by lws, and not seen here: it would not be answered either.)
 * heartbeat.type = "server" without expect watches exactly these.
 */
static int feed_callback(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in,
                         size_t len);

int lws_write(struct lws *wsi, unsigned char *buf, size_t len, enum lws_write_protocol wp)
{
	static int (*real)(struct lws *, unsigned char *, size_t, enum lws_write_protocol);
	struct feed *f;

	if (!real)
		*(void **)&real = dlsym(RTLD_NEXT, "lws_write");
	if ((wp & 0x1f) == LWS_WRITE_PONG && lws_get_protocol(wsi)->callback == feed_callback &&
	    (f = lws_get_opaque_user_data(wsi)) && f->conn == wsi)
		feed_on_server_ping(f, mono_us());
	return real(wsi, buf, len, wp);
}

/* Our heartbeats do the liveness checking: switch lws's validity pinging off. */
static const lws_retry_bo_t no_validity = {.secs_since_valid_ping = 0,
                                           .secs_since_valid_hangup = 0};

static const int handled_signals[] = {SIGTERM, SIGINT, SIGHUP, SIGUSR1, SIGUSR2};

/*
 * The timer queue is driven by a timerfd adopted into the loop rather than by an lws_sul:
 * with the libev plugin of lws 4.1.6 a sul moved earlier from an I/O callback does not take
 * effect while lws's libev timer is already running (ev_timer_set on an active watcher is
 * ignored), so a heartbeat armed when a connection opens would wait for an unrelated timer.
 * timerfd_settime takes effect at once from anywhere, with microsecond precision.
 */
static void rearm_driver(struct timerq *q, int64_t wake_us, void *arg)
{
	struct ws *w = arg;
	struct itimerspec its = {0};

	if (w->quitting)
		return;
	if (wake_us != TQ_NEVER) {
		if (wake_us <= 0)
			wake_us = 1;
		its.it_value.tv_sec = wake_us / 1000000;
		its.it_value.tv_nsec = (wake_us % 1000000) * 1000;
	}
	if (timerfd_settime(w->timerfd, TFD_TIMER_ABSTIME, &its, NULL) < 0)
		log_error("timerfd_settime: %s", strerror(errno));
}

/*
 * Writes asked for by timers (heartbeats, mostly) are served without a trip through epoll.
 * lws_callback_on_writable() alone would make libev add EPOLLOUT to the socket, wait for the
 * loop to report it writeable, and remove EPOLLOUT again after the write: two epoll_ctl calls
 * and one more dispatch per heartbeat, for a socket whose send buffer is all but empty. So the
 * request is still made (lws's own bookkeeping, and the fallback), and once every timer of the
 * batch has run each such connection is handed to lws_service_fd() with POLLOUT, the entry an
 * external event loop uses to report a writeable socket. lws then runs its usual POLLOUT
 * path: its own pending data goes first, our WRITEABLE callback writes, and the one-shot
 * POLLOUT request is cleared before libev ever applied it, so epoll is not touched. If the
 * socket cannot take the frame after all, lws keeps the rest and waits for real POLLOUT, as
 * it does for any short write. All writes still happen in the WRITEABLE callback.
 *
 * The dispatch waits for the end of the batch so that no feed's timer callback ever sees its
 * connection written to, or closed, underneath it.
 */
static void queue_write(struct ws *w, struct feed *f)
{
	if (w->n_due == w->cap_due) {
		size_t cap = w->cap_due ? 2 * w->cap_due : 64;
		struct feed **v = realloc(w->due, cap * sizeof(*v));
		if (!v)
			return; /* the POLLOUT request already made will do */
		w->due = v;
		w->cap_due = cap;
	}
	w->due[w->n_due++] = f;
}

/* A connection that goes away during the batch is no longer served from the queue. */
static void unqueue_write(struct ws *w, const struct feed *f)
{
	for (size_t i = 0; i < w->n_due; i++)
		if (w->due[i] == f)
			w->due[i] = NULL;
}

static void flush_writes(struct ws *w)
{
	for (size_t i = 0; i < w->n_due && !w->quitting; i++) {
		struct feed *f = w->due[i];
		struct lws_pollfd pfd;

		/* Only established connections: a handshake in progress reads POLLOUT otherwise. */
		if (!f || !f->conn || f->state != FEED_OPEN)
			continue;
		pfd.fd = lws_get_socket_fd(f->conn);
		pfd.events = pfd.revents = LWS_POLLOUT;
		lws_service_fd(w->ctx, &pfd);
	}
	w->n_due = 0;
}

static void on_driver(void *arg)
{
	struct ws *w = arg;
	uint64_t expirations;

	if (read(w->timerfd, &expirations, sizeof(expirations)) < 0 && errno != EAGAIN)
		log_error("reading the timerfd: %s", strerror(errno));
	w->in_driver = true;
	tq_driver_fired(w->tq, mono_us());
	w->in_driver = false;
	flush_writes(w);
}

/* When what lws hands over arrived, on the loop's clock (see ws_scan.c): a reply that waited
 * in the socket while the loop slept is not counted late. */
static int64_t arrived_mono(const struct feed *f)
{
	int64_t mono = mono_us(), real = real_us();

	return mono - (real - feed_arrived_real_us(f, real));
}

static struct feed *feed_of(struct lws *wsi)
{
	struct feed *f = lws_get_opaque_user_data(wsi);

	/* Events of a connection the feed has already let go of are stale. */
	return f && f->conn == wsi ? f : NULL;
}

static int64_t parse_retry_after(struct lws *wsi)
{
	char buf[32];
	char *end;
	long v;

	if (lws_hdr_copy(wsi, buf, sizeof(buf), WSI_TOKEN_HTTP_RETRY_AFTER) <= 0)
		return -1;
	/* Only the delay-seconds form; an HTTP-date is rare from WebSocket servers. */
	errno = 0;
	v = strtol(buf, &end, 10);
	if (errno || end == buf || *end != '\0' || v < 0)
		return -1;
	return (int64_t)v * 1000;
}

static int add_header(struct feed *f, struct lws *wsi, const char *name, const char *v, size_t n,
                      unsigned char **p, unsigned char *end)
{
	char field[160];

	snprintf(field, sizeof(field), "%s:", name);
	if (lws_add_http_header_by_name(wsi, (const unsigned char *)field, (const unsigned char *)v,
	                                (int)n, p, end)) {
		feed_set_error(f, "handshake headers too large");
		return -1;
	}
	return 0;
}

/* The feed's headers (templates), or the connect_command's in their place (literal). */
static int append_headers(struct feed *f, struct lws *wsi, unsigned char **p, size_t len)
{
	unsigned char *end = *p + len - 1;
	const struct cfg_feed *c = f->cfg;
	const struct helper_out *h = f->helper && f->helper->has_headers ? f->helper : NULL;
	size_t n, count = h ? h->n_headers : c->n_headers;

	for (size_t i = 0; i < count; i++) {
		const char *v = h ? h->headers[i].value : feed_expand(f, c->headers[i].value, &n);
		if (!v) {
			feed_set_error(f, "out of memory building the handshake");
			return -1;
		}
		if (h)
			n = h->headers[i].value_len;
		if (add_header(f, wsi, h ? h->headers[i].name : c->headers[i].name, v, n, p, end) <
		    0)
			return -1;
	}
	/* lws would prefix its own origin field with http://; send ours verbatim. */
	if (c->origin && add_header(f, wsi, "origin", c->origin, strlen(c->origin), p, end) < 0)
		return -1;
	return 0;
}

static unsigned char *tx_space(struct ws *w, size_t len)
{
	if (LWS_PRE + len > w->txcap) {
		unsigned char *b = realloc(w->txbuf, LWS_PRE + len);
		if (!b)
			return NULL;
		w->txbuf = b;
		w->txcap = LWS_PRE + len;
	}
	return w->txbuf + LWS_PRE;
}

/* lws 4.1 frames opcode 4 as CLOSE (private LWS_WRITE_CLOSE; its header only says to use
 * lws_close_reason, which also drops the connection at once). */
#define WS_WRITE_CLOSE ((enum lws_write_protocol)4)

/*
 * A graceful close is written as a frame of ours, so lws keeps reading what the server sent
 * before it saw it; the server's own close then ends the connection (on_peer_close). Any other
 * close lets lws send the frame and drop the connection at once.
 */
static int write_close(struct ws *w, struct feed *f, struct lws *wsi, const struct feed_frame *fr,
                       int64_t now)
{
	size_t n = fr->len > 123 ? 123 : fr->len;
	unsigned char *buf;

	if (!fr->wait_for_peer) {
		lws_close_reason(wsi, (enum lws_close_status)fr->close_code,
		                 (unsigned char *)fr->data, n);
		feed_frame_sent(f, fr, now);
		return -1;
	}
	buf = tx_space(w, 2 + n);
	if (!buf)
		return -1;
	buf[0] = (unsigned char)(fr->close_code >> 8);
	buf[1] = (unsigned char)fr->close_code;
	memcpy(buf + 2, fr->data, n);
	if (lws_write(wsi, buf, 2 + n, WS_WRITE_CLOSE) < 0)
		return -1;
	feed_frame_sent(f, fr, now);
	return 0;
}

static int on_writeable(struct ws *w, struct feed *f, struct lws *wsi)
{
	static const enum lws_write_protocol kinds[] = {
	    [FRAME_TEXT] = LWS_WRITE_TEXT,
	    [FRAME_BINARY] = LWS_WRITE_BINARY,
	    [FRAME_PING] = LWS_WRITE_PING,
	};
	int64_t now = mono_us();
	struct feed_frame fr;
	unsigned char *buf;

	feed_next_frame(f, now, &fr);
	if (fr.kind == FRAME_NONE)
		return 0;
	if (fr.kind == FRAME_CLOSE)
		return write_close(w, f, wsi, &fr, now);
	buf = tx_space(w, fr.len);
	if (!buf) {
		feed_set_error(f, "out of memory for a %zu byte frame", fr.len);
		return -1;
	}
	memcpy(buf, fr.data, fr.len);
	/* For control frames lws returns the length with the header: only < 0 is failure. */
	if (lws_write(wsi, buf, fr.len, kinds[fr.kind]) < 0) {
		feed_set_error(f, "write failed");
		return -1;
	}
	if (feed_frame_sent(f, &fr, now))
		lws_callback_on_writable(wsi);
	return 0;
}

/*
 * permessage-deflate (RFC 7692), offered by feeds with compression = true. The first offer asks
 * the server to keep its window to 1 KiB (server_max_window_bits=10): our inflater then holds
 * 1 KiB of window instead of 32. A server that cannot limit its window must decline that
 * offer, so the second one, without the limit, keeps such servers working. Our own window and
 * memory level are cut to the minimum once the connection is open (compress_small): we send
 * only heartbeats and subscriptions.
 */
static const struct lws_extension pmd_extensions[] = {
    {"permessage-deflate", lws_extension_callback_pm_deflate,
     "permessage-deflate; client_max_window_bits; server_max_window_bits=10, "
     "permessage-deflate; client_max_window_bits"},
    {NULL, NULL, NULL},
};

static void compress_small(struct lws *wsi)
{
	/* Fail quietly when the server declined the extension: there is nothing to tune. */
	(void)lws_set_extension_option(wsi, "permessage-deflate", "client_max_window_bits", "9");
	(void)lws_set_extension_option(wsi, "permessage-deflate", "mem_level", "1");
}

static void on_handshake_status(struct feed *f, struct lws *wsi)
{
	int status = (int)lws_http_client_http_response(wsi);

	if (status == 101 || status == 0)
		return;
	feed_on_http_status(f, status, parse_retry_after(wsi));
	feed_set_error(f, "server answered HTTP %d instead of 101", status);
}

static void on_peer_close(struct feed *f, unsigned char *in, size_t len)
{
	int code = len >= 2 ? (in[0] << 8 | in[1]) : 1005;
	unsigned wire = ws_scan_close_code(f);

	/* lws 4.1.6 turned a valid code it does not know into 1002 (ws_scan.c). The payload is
	 * lws's own buffer, which it copies into the close it sends back after this callback:
	 * with the code restored there too, the server gets its own code echoed (RFC 6455 5.5.1),
	 * not a protocol error. */
	if (code == LWS_CLOSE_STATUS_PROTOCOL_ERR && wire >= 1012 && wire <= 1014) {
		code = (int)wire;
		in[0] = (unsigned char)(wire >> 8);
		in[1] = (unsigned char)wire;
	}

	feed_on_peer_close(f, code, len > 2 ? (const char *)in + 2 : "", len > 2 ? len - 2 : 0);
}

/* Keeps the real reason of a failed verification: lws's own error text says nothing. */
static int verify_cert(struct feed *f, X509_STORE_CTX *x, int preverify_ok)
{
	char why[200];
	int err;

	if (!f->cfg->tls.verify) {
		X509_STORE_CTX_set_error(x, X509_V_OK);
		return 0;
	}
	if (preverify_ok)
		return 0;
	err = X509_STORE_CTX_get_error(x);
	snprintf(why, sizeof(why), "TLS certificate verification failed: %s (depth %d)",
	         X509_verify_cert_error_string(err), X509_STORE_CTX_get_error_depth(x));
	feed_on_tls_rejected(f, why);
	return 0;
}

/*
 * The connection is gone for the feed. The wsi forgets the feed at once: lws may still call
 * back on it while closing, and a feed removed by a reload may be freed after this.
 */
static void conn_gone(struct ws *w, struct feed *f, struct lws *wsi, int64_t now,
                      const char *reason)
{
	char buf[200];

	if (w->n_due)
		unqueue_write(w, f);
	lws_set_opaque_user_data(wsi, NULL);
	ws_scan_forget(f);
	if (f->proxy) {
		ws_proxy_forget(f);
		reason = ws_proxy_gone_reason(f, reason, buf, sizeof(buf));
	}
	feed_on_gone(f, now, reason);
}

/* The clock is read only by the cases that need it: lws also calls here for every poll change. */
static int feed_callback(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in,
                         size_t len)
{
	struct ws *w = lws_context_user(lws_get_context(wsi));
	struct feed *f = feed_of(wsi);

	if (!f)
		return 0;
	switch (reason) {
	case LWS_CALLBACK_OPENSSL_PERFORM_SERVER_CERT_VERIFICATION:
		return verify_cert(f, user, (int)len);
	case LWS_CALLBACK_CLIENT_APPEND_HANDSHAKE_HEADER:
		ws_scan_start(f, wsi);
		return append_headers(f, wsi, (unsigned char **)in, len);
	case LWS_CALLBACK_ESTABLISHED_CLIENT_HTTP:
		on_handshake_status(f, wsi);
		return 0;
	case LWS_CALLBACK_CLIENT_ESTABLISHED:
		if (f->cfg->compression)
			compress_small(wsi);
		feed_on_open(f, mono_us());
		return 0;
	case LWS_CALLBACK_CLIENT_WRITEABLE:
		return on_writeable(w, f, wsi);
	case LWS_CALLBACK_CLIENT_RECEIVE:
		/* On a violation, stop reading: lws would otherwise parse the rest of a huge frame
		 * before our close frame goes out. (Returning -1 from here corrupts 4.1.6's state:
		 * the close happens inside its parser loop.) */
		if (feed_on_rx(f, in, len, lws_is_first_fragment(wsi), lws_is_final_fragment(wsi),
		               lws_frame_is_binary(wsi), arrived_mono(f)) < 0)
			lws_rx_flow_control(wsi, 0);
		return 0;
	case LWS_CALLBACK_CLIENT_RECEIVE_PONG:
		/* -1 closes the connection: lws is looping on this PONG (feed_on_pong). */
		return feed_on_pong(f, in, len, arrived_mono(f));
	case LWS_CALLBACK_WS_PEER_INITIATED_CLOSE:
		on_peer_close(f, in, len);
		/* Our close is already out: this is its answer, the handshake is complete. */
		return f->close_sent ? -1 : 0;
	case LWS_CALLBACK_CLIENT_CONNECTION_ERROR:
		conn_gone(w, f, wsi, mono_us(), in ? (const char *)in : "connection error");
		return 0;
	case LWS_CALLBACK_CLOSED_CLIENT_HTTP:
		conn_gone(w, f, wsi, mono_us(), "server did not answer the WebSocket upgrade");
		return 0;
	case LWS_CALLBACK_CLIENT_CLOSED:
		conn_gone(w, f, wsi, mono_us(), "connection lost");
		return 0;
	case LWS_CALLBACK_WSI_DESTROY:
		conn_gone(w, f, wsi, mono_us(), "connection ended");
		return 0;
	default:
		return 0;
	}
}

/* Our own descriptors in the loop (ws_watch_fd): the timer queue driver, the signalfd, the
 * resolver's epoll set, the metrics listener. */
static int loop_callback(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in,
                         size_t len)
{
	struct ws_watch *h = lws_get_opaque_user_data(wsi);

	if (!h)
		return 0;
	if (reason == LWS_CALLBACK_RAW_RX_FILE) {
		h->cb(h->arg);
		/* The callback is done with it (ws_watch_end): lws closes the wsi now, and its
		 * RAW_CLOSE_FILE below frees h. */
		if (h->ended)
			return -1;
	} else if (reason == LWS_CALLBACK_RAW_CLOSE_FILE) {
		/* The context is going away with the watch still in place. */
		lws_set_opaque_user_data(wsi, NULL);
		free(h);
	}
	return 0;
}

static void on_signalfd(void *arg)
{
	struct ws *w = arg;
	struct signalfd_siginfo si;

	while (read(w->sigfd, &si, sizeof(si)) == (ssize_t)sizeof(si))
		w->on_signal((int)si.ssi_signo, w->signal_arg);
}

static void on_dns(void *arg)
{
	struct ws *w = arg;

	dns_on_readable(w->dns);
}

static const struct lws_protocols protocols[] = {
    {"wsbeat", feed_callback, 0, WS_RX_BUFFER, 0, NULL, 0},
    {"wsbeat-loop", loop_callback, 0, 0, 0, NULL, 0},
    {NULL, NULL, 0, 0, 0, NULL, 0},
};

static void on_resolved(void *arg, const struct dns_result *res)
{
	feed_on_resolved(arg, res, mono_us());
}

static int ws_resolve(struct feed *f)
{
	struct ws *w = f->env->shell_arg;

	f->dns_req = dns_resolve(w->dns, feed_connect_host(f), on_resolved, f);
	if (!f->dns_req) {
		feed_set_error(f, "out of memory starting a DNS query");
		return -1;
	}
	return 0;
}

static void ws_cancel_resolve(struct feed *f)
{
	dns_cancel(f->dns_req);
}

static bool profile_is(const struct ws_profile *p, const struct cfg_tls *t, bool compression)
{
	return p->compression == compression && tls_same_profile(&p->tls, t);
}

static struct ws_profile *profile_of(struct ws *w, const struct cfg_feed *c)
{
	for (size_t i = 0; i < w->n_profiles; i++)
		if (profile_is(w->profiles[i], &c->tls, c->compression))
			return w->profiles[i];
	return w->profiles[0]; /* not reached: ws_prepare made one for every feed */
}

static int tls_flags(const struct feed *f)
{
	if (!feed_url(f)->tls)
		return 0;
	if (f->cfg->tls.verify)
		return LCCSCF_USE_SSL;
	log_rec(LOG_LVL_WARNING,
	        (struct log_kv[]){{"feed", f->cfg->name}, {"event", "tls_unverified"}}, 2,
	        "tls.verify is off: the server's certificate is not checked");
	return LCCSCF_USE_SSL | LCCSCF_ALLOW_SELFSIGNED | LCCSCF_SKIP_SERVER_CERT_HOSTNAME_CHECK |
	       LCCSCF_ALLOW_EXPIRED | LCCSCF_ALLOW_INSECURE;
}

/*
 * Where lws connects: without a proxy the numeric address we resolved (lws's own lookup would
 * block the loop); with one, the vhost that carries the proxy's numeric address, and the URL's
 * host as the address (the connect_command's URL when it gave one), which lws then only names
 * in its CONNECT (see ws_proxy.c). Buffers on
 * the stack will do: lws copies every string of i into the new wsi's stash before returning.
 */
static int connect_target(struct ws *w, struct feed *f, struct lws_client_connect_info *i,
                          char *addr, size_t len)
{
	struct ws_profile *p = profile_of(w, f->cfg);

	if (!f->proxy) {
		i->vhost = p->vhost; /* never NULL: that binds to the first vhost */
		i->address = dns_addr_text(&f->addrs[f->addr_idx], addr, len);
		return 0;
	}
	if (proxy_connect_target(feed_url(f), addr, len) < 0) {
		feed_set_error(f, "the URL's host and port are too long to go through a proxy "
		                  "(libwebsockets 4.1 fits the CONNECT request into 255 bytes)");
		return -1;
	}
	i->address = addr;
	i->vhost = ws_proxy_vhost(w, p, f->proxy, &f->addrs[f->addr_idx]);
	if (!i->vhost) {
		feed_set_error(f, "cannot make a client vhost for the proxy %s", f->proxy->display);
		return -1;
	}
	return 0;
}

static int ws_connect(struct feed *f)
{
	struct ws *w = f->env->shell_arg;
	const struct url *u = feed_url(f);
	struct lws_client_connect_info i = {0};
	char addr[PROXY_TARGET_MAX + DNS_ADDR_LEN];
	struct lws *wsi;

	i.context = w->ctx;
	if (connect_target(w, f, &i, addr, sizeof(addr)) < 0)
		return -1;
	i.port = u->port;
	i.path = u->path;
	/* A connect_command's URL is used as it came; the feed's own may have a template. */
	if (u == &f->cfg->url && f->cfg->url_path) {
		size_t n;
		i.path = feed_expand(f, f->cfg->url_path, &n);
		if (!i.path) {
			feed_set_error(f, "out of memory building the URL");
			return -1;
		}
	}
	/* lws takes the Host header, SNI and the certificate name from host. */
	i.host = f->cfg->tls.server_name ? f->cfg->tls.server_name : u->host_header;
	i.protocol = f->cfg->subprotocol;
	i.local_protocol_name = protocols[0].name;
	i.ssl_connection = tls_flags(f);
	i.retry_and_idle_policy = &no_validity;
	i.opaque_user_data = f;
	errno = 0;
	wsi = lws_client_connect_via_info(&i);
	if (!wsi && f->proxy) {
		ws_proxy_connect_failed(f, errno);
		return -1;
	}
	if (!wsi) {
		feed_set_error(f, "connect failed%s%s", errno ? ": " : "",
		               errno ? strerror(errno) : "");
		return -1;
	}
	f->conn = wsi;
	ws_scan_watch(f, wsi);
	if (f->proxy)
		ws_proxy_watch(f, wsi);
	return 0;
}

static void ws_want_write(struct feed *f)
{
	struct ws *w = f->env->shell_arg;

	if (!f->conn)
		return;
	lws_callback_on_writable(f->conn);
	if (w->in_driver && f->state == FEED_OPEN)
		queue_write(w, f);
}

static void ws_abort(struct feed *f)
{
	/*
	 * Closed here and now (feed_on_gone runs before this returns). The asynchronous kill
	 * rides on an lws timer, which under 4.1.6's libev plugin can wait for an unrelated
	 * timer; abort is only ever called from our own timers and signals, never from a
	 * callback of this connection, so closing synchronously is safe.
	 */
	if (f->conn)
		lws_set_timeout(f->conn, PENDING_TIMEOUT_USER_OK, LWS_TO_KILL_SYNC);
}

const struct feed_shell ws_feed_shell = {
    .resolve = ws_resolve,
    .cancel_resolve = ws_cancel_resolve,
    .connect = ws_connect,
    .want_write = ws_want_write,
    .abort = ws_abort,
    .run_helper = ws_run_helper,
    .cancel_helper = ws_cancel_helper,
};

/* lws's lines carry their own level; lws_log_level (ws_set_lws_log_level) decides which come. */
static void lws_log_emit(int level, const char *line)
{
	enum log_level l = level == LLL_ERR      ? LOG_LVL_ERROR
	                   : level == LLL_WARN   ? LOG_LVL_WARNING
	                   : level == LLL_NOTICE ? LOG_LVL_NOTICE
	                   : level == LLL_INFO   ? LOG_LVL_INFO
	                                         : LOG_LVL_DEBUG;
	size_t n = strlen(line);
	char buf[300];

	if (n && line[n - 1] == '\n')
		n--;
	if (n >= sizeof(buf))
		n = sizeof(buf) - 1;
	memcpy(buf, line, n);
	buf[n] = '\0';
	log_rec_unfiltered(l, (struct log_kv[]){{"component", "lws"}}, 1, "%s", buf);
}

/* The levels lws logs: its own default until ws_set_lws_log_level. */
static int lws_log_mask = LLL_ERR | LLL_WARN | LLL_NOTICE;

void ws_set_lws_log_level(enum log_level l)
{
	static const int masks[] = {
	    [LOG_LVL_ERROR] = LLL_ERR,
	    [LOG_LVL_WARNING] = LLL_ERR | LLL_WARN,
	    [LOG_LVL_NOTICE] = LLL_ERR | LLL_WARN | LLL_NOTICE,
	    [LOG_LVL_INFO] = LLL_ERR | LLL_WARN | LLL_NOTICE | LLL_INFO,
	    [LOG_LVL_DEBUG] = LLL_ERR | LLL_WARN | LLL_NOTICE | LLL_INFO | LLL_DEBUG,
	};

	lws_log_mask = masks[l];
	lws_set_log_level(masks[l], lws_log_emit);
}

/*
 * Debian builds libwebsockets 4.1.6 with its info, debug and parser logging compiled in, and
 * it filters by level only inside: _lws_log() saves its variadic registers, sets up a va_list
 * and calls _lws_logv() (through the PLT), which then drops the line. A heartbeat makes
 * about 19 such calls (callgrind: 470 instructions of a 5,550-instruction beat). lws calls
 * _lws_log through its PLT, so this definition in the executable takes them, and drops a
 * filtered line before doing any of that. The lines it passes go to lws's own _lws_logv.
 */
void _lws_log(int filter, const char *format, ...)
{
	va_list ap;
	int err;

	if (!(filter & lws_log_mask))
		return;
	err = errno; /* lws may log between a failing call and its look at errno */
	va_start(ap, format);
	_lws_logv(filter, format, ap);
	va_end(ap);
	errno = err;
}

static int raise_nofile(void)
{
	struct rlimit rl;

	if (getrlimit(RLIMIT_NOFILE, &rl) < 0)
		return -1;
	rl.rlim_cur = rl.rlim_max > WS_NOFILE_CAP ? WS_NOFILE_CAP : rl.rlim_max;
	return setrlimit(RLIMIT_NOFILE, &rl);
}

/*
 * Says so when the open-files limit (raised to the hard limit at start: lws sizes its tables
 * then, for good) cannot hold one connection per feed plus our own descriptors: the feeds
 * beyond it would fail every attempt with EMFILE, which is easy to miss among many feeds.
 */
static void check_nofile(size_t n_feeds)
{
	struct rlimit rl;
	uintmax_t need = (uintmax_t)n_feeds + WS_FD_RESERVE;

	if (getrlimit(RLIMIT_NOFILE, &rl) < 0 || rl.rlim_cur == RLIM_INFINITY ||
	    (uintmax_t)rl.rlim_cur >= need)
		return;
	log_warn("the open-files limit is %ju but %zu feeds need about %ju descriptors: the "
	         "connections beyond it will fail (raise LimitNOFILE= or ulimit -Hn; hard limit "
	         "%ju)",
	         (uintmax_t)rl.rlim_cur, n_feeds, need, (uintmax_t)rl.rlim_max);
}

struct ws_watch *ws_watch_fd(struct ws *w, int fd, void (*cb)(void *arg), void *arg)
{
	struct ws_watch *h = calloc(1, sizeof(*h));
	lws_sock_file_fd_type u;

	if (!h)
		return NULL;
	*h = (struct ws_watch){.cb = cb, .arg = arg};
	/* lws closes what it adopts, so it gets a duplicate and the caller keeps fd. */
	u.filefd = fcntl(fd, F_DUPFD_CLOEXEC, 0);
	if (u.filefd < 0)
		goto fail;
	h->wsi = lws_adopt_descriptor_vhost(w->vhost, LWS_ADOPT_RAW_FILE_DESC, u, protocols[1].name,
	                                    NULL);
	if (!h->wsi) {
		close(u.filefd);
		errno = ENOMEM;
		goto fail;
	}
	lws_set_opaque_user_data(h->wsi, h);
	return h;
fail:
	free(h);
	return NULL;
}

void ws_watch_end(struct ws_watch *h)
{
	if (h)
		h->ended = true;
}

void ws_unwatch(struct ws_watch *h)
{
	if (!h)
		return;
	lws_set_opaque_user_data(h->wsi, NULL);
	/* Closed now; safe because this never runs inside the watch's own callback. */
	lws_set_timeout(h->wsi, PENDING_TIMEOUT_USER_OK, LWS_TO_KILL_SYNC);
	free(h);
}

static int adopt_signals(struct ws *w)
{
	sigset_t set;

	sigemptyset(&set);
	for (size_t i = 0; i < ARRAY_SIZE(handled_signals); i++)
		sigaddset(&set, handled_signals[i]);
	if (sigprocmask(SIG_BLOCK, &set, NULL) < 0)
		return -1;
	w->sigfd = signalfd(-1, &set, SFD_NONBLOCK | SFD_CLOEXEC);
	if (w->sigfd < 0)
		return -1;
	w->signal_watch = ws_watch_fd(w, w->sigfd, on_signalfd, w);
	return w->signal_watch ? 0 : -1;
}

static int adopt_timer(struct ws *w)
{
	w->timerfd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
	if (w->timerfd < 0)
		return -1;
	w->timer_watch = ws_watch_fd(w, w->timerfd, on_driver, w);
	return w->timer_watch ? 0 : -1;
}

static int64_t max_connect_timeout_s(const struct cfg *cfg)
{
	int64_t m = 0;

	for (size_t i = 0; i < cfg->n_feeds; i++)
		if (cfg->feeds[i].connect_timeout_ms > m)
			m = cfg->feeds[i].connect_timeout_ms;
	return m / 1000 + WS_LWS_TIMEOUT_SLACK_S;
}

/*
 * The loop is ours, lent to lws through foreign_loops (the libev plugin then installs no signal
 * watcher: signals come through our signalfd). Owning it lets io_slack set libev's I/O collect
 * interval: before each poll the loop sleeps what is left of io_slack since the last one, so
 * events that arrive close together share one wake-up. Timers are our timerfd, an I/O event
 * like any other, so a heartbeat too may wait up to io_slack (on top of timer_slack).
 */
static int create_context(struct ws *w, const struct cfg *cfg)
{
	struct lws_context_creation_info info = {0};
	void *loops[1];

	w->loop = ev_loop_new(EVFLAG_AUTO | EVFLAG_NOENV);
	if (!w->loop) {
		log_error("cannot create the event loop (libev)");
		return -1;
	}
	ws_set_io_slack(w, cfg->io_slack_ms);
	loops[0] = w->loop;
	info.options = LWS_SERVER_OPTION_LIBEV | LWS_SERVER_OPTION_EXPLICIT_VHOSTS |
	               LWS_SERVER_OPTION_DO_SSL_GLOBAL_INIT;
	info.port = CONTEXT_PORT_NO_LISTEN;
	info.protocols = protocols;
	info.user = w;
	info.foreign_loops = loops;
	w->ctx = lws_create_context(&info);
	if (!w->ctx) {
		log_error("cannot create the libwebsockets context (is libwebsockets-evlib-ev "
		          "installed?)");
		return -1;
	}
	return 0;
}

static char *dup_or_null(const char *s)
{
	return s ? strdup(s) : NULL;
}

static void profile_free(struct ws_profile *p)
{
	if (!p)
		return;
	SSL_CTX_free(p->ssl_ctx);
	free(p->tls.ca_file);
	free(p->tls.ca_path);
	free(p->tls.cert_file);
	free(p->tls.key_file);
	free(p);
}

/* A profile keeps its own copy of the settings: it outlives the snapshot it came from. */
static struct ws_profile *profile_new(struct ws *w, const struct cfg_tls *t, bool compression,
                                      char *err, size_t errlen)
{
	struct ws_profile *p = calloc(1, sizeof(*p));

	if (!p) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	p->tls = (struct cfg_tls){.verify = t->verify,
	                          .ca_file = dup_or_null(t->ca_file),
	                          .ca_path = dup_or_null(t->ca_path),
	                          .cert_file = dup_or_null(t->cert_file),
	                          .key_file = dup_or_null(t->key_file)};
	p->compression = compression;
	snprintf(p->name, sizeof(p->name), "client-%zu", w->n_profiles);
	/* The same TLS settings share one context, and so its remembered sessions. */
	for (size_t i = 0; i < w->n_profiles; i++) {
		if (tls_same_profile(&w->profiles[i]->tls, t) &&
		    SSL_CTX_up_ref(w->profiles[i]->ssl_ctx) == 1) {
			p->ssl_ctx = w->profiles[i]->ssl_ctx;
			return p;
		}
	}
	p->ssl_ctx = tls_client_ctx_new(&p->tls, err, errlen);
	if (!p->ssl_ctx) {
		profile_free(p);
		return NULL;
	}
	if (tls_resumption_enable(p->ssl_ctx) < 0)
		log_warn("TLS session resumption is off for %s: out of memory", p->name);
	return p;
}

void ws_profile_info(const struct ws *w, const struct ws_profile *p,
                     struct lws_context_creation_info *info)
{
	*info = (struct lws_context_creation_info){0};
	info->options = LWS_SERVER_OPTION_DO_SSL_GLOBAL_INIT;
	info->port = CONTEXT_PORT_NO_LISTEN;
	info->protocols = protocols;
	info->vhost_name = p->name;
	info->provided_client_ssl_ctx = p->ssl_ctx;
	info->timeout_secs = w->timeout_secs;
	info->connect_timeout_secs = w->timeout_secs;
	if (p->compression)
		info->extensions = pmd_extensions;
}

static int add_profile(struct ws *w, const struct cfg_tls *t, bool compression, char *err,
                       size_t errlen)
{
	struct lws_context_creation_info info;
	struct ws_profile *p, **v;

	v = realloc(w->profiles, (w->n_profiles + 1) * sizeof(*v));
	if (!v) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	w->profiles = v;
	p = profile_new(w, t, compression, err, errlen);
	if (!p)
		return -1;
	ws_profile_info(w, p, &info);
	p->vhost = ws_create_vhost(w->ctx, &info);
	if (!p->vhost) {
		snprintf(err, errlen, "cannot create the client vhost %s", p->name);
		profile_free(p);
		return -1;
	}
	w->profiles[w->n_profiles++] = p;
	return 0;
}

int ws_prepare(struct ws *w, const struct cfg *cfg, char *err, size_t errlen)
{
	static const struct cfg_tls system_trust = {.verify = true};

	w->timeout_secs = (unsigned)max_connect_timeout_s(cfg);
	if (w->n_profiles == 0 && add_profile(w, &system_trust, false, err, errlen) < 0)
		return -1;
	w->vhost = w->profiles[0]->vhost;
	check_nofile(cfg->n_feeds);
	for (size_t i = 0; i < cfg->n_feeds; i++) {
		const struct cfg_feed *c = &cfg->feeds[i];
		bool have = false;
		for (size_t j = 0; j < w->n_profiles && !have; j++)
			have = profile_is(w->profiles[j], &c->tls, c->compression);
		if (!have && add_profile(w, &c->tls, c->compression, err, errlen) < 0)
			return -1;
	}
	return 0;
}

struct ws *ws_new(const struct cfg *cfg, struct timerq *tq, ws_signal_fn on_signal, void *arg)
{
	struct ws *w = calloc(1, sizeof(*w));
	char err[256];

	if (!w)
		return NULL;
	*w = (struct ws){
	    .tq = tq, .sigfd = -1, .timerfd = -1, .on_signal = on_signal, .signal_arg = arg};
	ws_set_lws_log_level(cfg->lws_log_level);
	signal(SIGPIPE, SIG_IGN);
	if (raise_nofile() < 0)
		log_warn("cannot raise the open-files limit: %s", strerror(errno));
	if (create_context(w, cfg) < 0)
		goto fail;
	if (ws_prepare(w, cfg, err, sizeof(err)) < 0) {
		log_error("%s", err);
		goto fail;
	}
	w->dns = dns_new(tq, cfg->dns_servers, (int)cfg->dns_timeout_ms, cfg->dns_tries, err,
	                 sizeof(err));
	if (!w->dns) {
		log_error("%s", err);
		goto fail;
	}
	w->dns_watch = ws_watch_fd(w, dns_fd(w->dns), on_dns, w);
	if (!w->dns_watch || adopt_signals(w) < 0 || adopt_timer(w) < 0) {
		log_error("cannot add the signal and timer descriptors to the loop: %s",
		          strerror(errno));
		goto fail;
	}
	tq->rearm = rearm_driver;
	tq->rearm_arg = w;
	tq->announced_us = TQ_NEVER;
	rearm_driver(tq, tq_next_wake(tq), w);
	return w;
fail:
	ws_free(w);
	return NULL;
}

int ws_listen_http(struct ws *w, const char *listen, const struct ws_http_hooks *hooks, char *err,
                   size_t errlen)
{
	return ws_http_listen(w, listen, hooks, err, errlen);
}

void ws_set_io_slack(struct ws *w, int64_t ms)
{
	ev_set_io_collect_interval(w->loop, (ev_tstamp)ms / 1000.0);
}

int ws_run(struct ws *w)
{
	/* The whole loop, until ws_quit breaks it. */
	while (!w->quitting)
		ev_run(w->loop, 0);
	return 0;
}

void ws_quit(struct ws *w)
{
	/* With a foreign loop the context is destroyed outside it (ws_free), once ev_run has
	 * returned. */
	w->quitting = true;
	ev_break(w->loop, EVBREAK_ALL);
}

void ws_free(struct ws *w)
{
	if (!w)
		return;
	w->quitting = true;
	if (w->ctx)
		lws_context_destroy(w->ctx);
	ws_http_free(w->http);
	ws_helpers_free(w);
	dns_free(w->dns);
	ws_proxy_free_vhosts(w);
	ws_proxy_fini();
	ws_scan_fini();
	for (size_t i = 0; i < w->n_profiles; i++)
		profile_free(w->profiles[i]);
	free(w->profiles);
	if (w->sigfd >= 0)
		close(w->sigfd);
	if (w->timerfd >= 0)
		close(w->timerfd);
	free(w->txbuf);
	free(w->due);
	if (w->loop)
		ev_loop_destroy(w->loop);
	free(w);
}

/* lws formats "VERSION-BUILDHASH", and Debian's build has no hash: "4.1.6-" loses its '-'. */
const char *ws_lws_version(void)
{
	static char v[64];
	size_t n;

	snprintf(v, sizeof(v), "%s", lws_get_library_version());
	n = strlen(v);
	if (n && v[n - 1] == '-')
		v[n - 1] = '\0';
	return v;
}
