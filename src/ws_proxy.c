/*
 * The lws shell's side of proxies: the vhosts that carry a proxy, and the proxy's answer to
 * the CONNECT.
 *
 * What libwebsockets 4.1.6 does (lib/core-net/vhost.c, lib/core-net/client.c,
 * lib/roles/http/client/client-handshake.c and client-http.c):
 *  - A proxy belongs to a vhost: lws_create_vhost() takes info.http_proxy_address
 *    ("[user:pass@]host:port", parsed by lws_set_proxy, the credentials base64-encoded into a
 *    128-byte token), and without one it reads getenv("http_proxy") itself, for every vhost.
 *  - Every client connection of a vhost with a proxy goes to the proxy's host and port:
 *    lws_client_connect_2_dnsreq() passes the proxy's address to getaddrinfo(), which would
 *    block the loop on a name, and does not look at the connect info's address at all.
 *  - Once connected, lws_client_connect_4_established() sends "CONNECT <address>:<port>" and
 *    "Host: <address>:<port>" where address and port are the connect info's (the URL's
 *    host, never resolved by us or by lws), plus "Proxy-authorization: basic <token>".
 *  - lws_client_socket_service() reads the answer with one recv() and goes on only if it
 *    starts with "HTTP/1.0 200 " or "HTTP/1.1 200 ". Everything else, a 407 or a 403 as much
 *    as garbage or a closed connection, is the same CLIENT_CONNECTION_ERROR text "proxy not
 *    h1"; a hang-up is "proxy conn dead". The status line is lost.
 *
 * So a proxied feed resolves the proxy's name with our resolver, and connects through a vhost
 * whose proxy is that numeric address (lws's getaddrinfo() then returns at once), with the
 * URL's host as the connect info's address: the CONNECT names it and the proxy resolves it.
 * There is one such vhost per TLS profile, proxy address, port and credentials, made when
 * first needed and kept for the life of the process. The proxy's answer is read where lws
 * reads it, by a recv() of ours that libwebsockets.so calls through its PLT (as ws.c does for
 * lws_write), for the sockets that wait for one; and why the connection to the proxy failed,
 * by a getsockopt() of ours, where lws reads it.
 */
#undef _FORTIFY_SOURCE /* its inline recv() would clash with the definition below */

#include <dlfcn.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include <openssl/crypto.h>

#include "wsbeat/log.h"
#include "wsbeat/proxy.h"
#include "ws_internal.h"

/* A vhost that carries one proxy for one TLS profile. */
struct ws_pvhost {
	const struct ws_profile *profile;
	struct dns_addr addr;
	uint16_t port;
	char *auth; /* a copy of the credentials, NULL = none */
	struct lws_vhost *vhost;
	char name[24]; /* lws keeps the pointer */
};

/* The feeds whose socket waits for the proxy's answer, by descriptor. The process has one
 * shell, and recv() below has no other way to find them. */
static struct {
	struct feed **by_fd;
	size_t cap;
	size_t n; /* entries in use: recv() looks no further while this is 0 */
} waits;

struct lws_vhost *ws_create_vhost(struct lws_context *ctx,
                                  const struct lws_context_creation_info *info)
{
	const char *env = getenv("http_proxy");
	char *saved = env ? strdup(env) : NULL;
	struct lws_vhost *vh;

	/* lws would take a proxy from http_proxy for every vhost given none: our vhosts have
	 * exactly the proxy we choose. The variable stays for child processes. */
	if (env && !saved)
		return NULL;
	if (saved)
		unsetenv("http_proxy");
	vh = lws_create_vhost(ctx, (struct lws_context_creation_info *)info);
	if (saved) {
		setenv("http_proxy", saved, 1);
		OPENSSL_cleanse(saved, strlen(saved));
		free(saved);
	}
	return vh;
}

static bool pvhost_is(const struct ws_pvhost *v, const struct ws_profile *p,
                      const struct proxy_url *px, const struct dns_addr *a)
{
	return v->profile == p && v->port == px->port && memcmp(&v->addr, a, sizeof(*a)) == 0 &&
	       (v->auth == px->auth || (v->auth && px->auth && strcmp(v->auth, px->auth) == 0));
}

static void pvhost_free(struct ws_pvhost *v)
{
	if (!v)
		return;
	if (v->auth) {
		OPENSSL_cleanse(v->auth, strlen(v->auth));
		free(v->auth);
	}
	free(v);
}

void ws_proxy_free_vhosts(struct ws *w)
{
	for (size_t i = 0; i < w->n_pvhosts; i++)
		pvhost_free(w->pvhosts[i]);
	free(w->pvhosts);
	w->pvhosts = NULL;
	w->n_pvhosts = 0;
}

static struct ws_pvhost *pvhost_new(struct ws *w, const struct ws_profile *p,
                                    const struct proxy_url *px, const struct dns_addr *a)
{
	struct lws_context_creation_info info;
	struct ws_pvhost *v = calloc(1, sizeof(*v));
	char addr[DNS_ADDR_LEN], spec[PROXY_AUTH_MAX + DNS_ADDR_LEN + 16];

	if (!v || (px->auth && !(v->auth = strdup(px->auth)))) {
		pvhost_free(v);
		return NULL;
	}
	v->profile = p;
	v->addr = *a;
	v->port = px->port;
	snprintf(v->name, sizeof(v->name), "proxy-%zu", w->n_pvhosts);
	dns_addr_text(a, addr, sizeof(addr));
	snprintf(spec, sizeof(spec), a->family == AF_INET6 ? "%s%s[%s]:%u" : "%s%s%s:%u",
	         px->auth ? px->auth : "", px->auth ? "@" : "", addr, (unsigned)px->port);
	ws_profile_info(w, p, &info);
	info.vhost_name = v->name;
	info.http_proxy_address = spec; /* lws copies it */
	v->vhost = ws_create_vhost(w->ctx, &info);
	OPENSSL_cleanse(spec, sizeof(spec));
	if (!v->vhost) {
		pvhost_free(v);
		return NULL;
	}
	return v;
}

struct lws_vhost *ws_proxy_vhost(struct ws *w, const struct ws_profile *p,
                                 const struct proxy_url *px, const struct dns_addr *a)
{
	struct ws_pvhost **vv, *v;

	for (size_t i = 0; i < w->n_pvhosts; i++)
		if (pvhost_is(w->pvhosts[i], p, px, a))
			return w->pvhosts[i]->vhost;
	vv = realloc(w->pvhosts, (w->n_pvhosts + 1) * sizeof(*vv));
	if (!vv)
		return NULL;
	w->pvhosts = vv;
	v = pvhost_new(w, p, px, a);
	if (!v)
		return NULL;
	w->pvhosts[w->n_pvhosts++] = v;
	log_rec(
	    LOG_LVL_DEBUG,
	    (struct log_kv[]){{"event", "proxy_vhost"}, {"proxy", px->display}, {"vhost", v->name}},
	    3, "made the client vhost %s for the proxy %s", v->name, px->display);
	return v->vhost;
}

void ws_proxy_watch(struct feed *f, struct lws *wsi)
{
	int fd = lws_get_socket_fd(wsi);

	/* No socket yet, or no memory: the answer's status will not be known. */
	if (fd < 0 || !ws_fd_table_fit(&waits.by_fd, &waits.cap, fd))
		return;
	ws_proxy_forget(f);
	if (!waits.by_fd[fd]) /* (a socket is entered only once its last user forgot it) */
		waits.n++;
	waits.by_fd[fd] = f;
	f->proxy_fd = fd;
}

void ws_proxy_forget(struct feed *f)
{
	int fd = f->proxy_fd;

	if (fd < 0)
		return;
	f->proxy_fd = -1;
	if ((size_t)fd < waits.cap && waits.by_fd[fd] == f) {
		waits.by_fd[fd] = NULL;
		waits.n--;
	}
}

void ws_proxy_fini(void)
{
	free(waits.by_fd);
	waits.by_fd = NULL;
	waits.cap = waits.n = 0;
}

/* The first bytes the proxy sent on f's socket (n <= 0: none). */
static void on_answer(struct feed *f, const void *buf, ssize_t n, int err)
{
	char text[160];
	int status;

	ws_proxy_forget(f);
	if (!f->conn || f->proxy_answered)
		return;
	if (n < 0) {
		snprintf(text, sizeof(text), "failed while reading the answer to the CONNECT: %s",
		         strerror(err));
		feed_on_proxy_answer(f, 0, text);
		return;
	}
	status = proxy_read_answer(buf, n, text, sizeof(text));
	feed_on_proxy_answer(f, status, text);
}

/*
 * Every recv() of the process comes here (libwebsockets' reads of plain ws:// connections
 * too, whose close codes ws_scan.c reads); while no socket waits for a proxy's answer the
 * proxy's side costs one test.
 */
ssize_t recv(int fd, void *buf, size_t len, int flags)
{
	static ssize_t (*real)(int, void *, size_t, int);
	ssize_t n;
	bool done;
	int err;

	n = ws_scan_recv(fd, buf, len, flags, &done);
	if (!done) {
		if (!real)
			*(void **)&real = dlsym(RTLD_NEXT, "recv");
		n = real(fd, buf, len, flags);
	}
	if (n > 0 && !(flags & MSG_PEEK))
		ws_scan_read(fd, buf, (size_t)n, false);
	if (!waits.n || fd < 0 || (size_t)fd >= waits.cap || !waits.by_fd[fd] || (flags & MSG_PEEK))
		return n;
	err = errno;
	if (n >= 0 || (err != EAGAIN && err != EWOULDBLOCK && err != EINTR))
		on_answer(waits.by_fd[fd], buf, n, err);
	errno = err;
	return n;
}

/*
 * lws learns how a connect() ended from getsockopt(SO_ERROR), which it reads (and so clears)
 * before it reports "Unable to connect" without the reason: for the sockets that wait for a
 * proxy, the reason is taken here on its way, also through libwebsockets.so's PLT.
 */
int getsockopt(int fd, int level, int name, void *val, socklen_t *len)
{
	static int (*real)(int, int, int, void *, socklen_t *);
	int rc, err;

	if (!real)
		*(void **)&real = dlsym(RTLD_NEXT, "getsockopt");
	rc = real(fd, level, name, val, len);
	if (!waits.n || fd < 0 || (size_t)fd >= waits.cap || !waits.by_fd[fd] || rc < 0 ||
	    level != SOL_SOCKET || name != SO_ERROR || !val || !len || *len < sizeof(int))
		return rc;
	err = errno;
	if (*(int *)val)
		ws_proxy_connect_failed(waits.by_fd[fd], *(int *)val);
	errno = err;
	return rc;
}

/*
 * The connection of a proxied feed is gone with lws's own reason: says which step failed.
 * Returns the reason to record (the first recorded reason wins, so one taken from the proxy's
 * answer stays).
 */
const char *ws_proxy_gone_reason(struct feed *f, const char *reason, char *buf, size_t len)
{
	const char *px = f->proxy->display;

	if (f->upgraded)
		return reason;
	if (f->proxy_answered && strcmp(reason, "proxy not h1") == 0) {
		/* Answered 200, yet lws wants the exact bytes "HTTP/1.x 200 " at the start. */
		snprintf(buf, len,
		         "proxy %s answered 200 in a form libwebsockets 4.1 does not accept", px);
		return buf;
	}
	if (f->proxy_answered)
		return reason;
	if (strcmp(reason, "proxy not h1") == 0)
		snprintf(buf, len, "proxy %s did not answer the CONNECT with HTTP 200", px);
	else if (strcmp(reason, "proxy conn dead") == 0)
		snprintf(buf, len, "proxy %s closed the connection without answering the CONNECT",
		         px);
	else
		snprintf(buf, len, "cannot connect to the proxy %s: %s", px, reason);
	return buf;
}

void ws_proxy_connect_failed(struct feed *f, int err)
{
	if (err == ECONNREFUSED)
		feed_set_error(f, "proxy %s refused the connection", f->proxy->display);
	else
		feed_set_error(f, "cannot connect to the proxy %s%s%s", f->proxy->display,
		               err ? ": " : "", err ? strerror(err) : "");
}
