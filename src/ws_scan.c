/*
 * The close code the server really sent, read from the bytes libwebsockets reads; and why TLS
 * failed, from OpenSSL's error queue where lws reads it.
 *
 * libwebsockets 4.1.6 (lib/roles/ws/client-parser-ws.c) overwrites a received close code it
 * does not know with 1002 before LWS_CALLBACK_WS_PEER_INITIATED_CLOSE, and it does not know
 * 1012 (service restart), 1013 (try again later) and 1014 (bad gateway), which servers send for
 * planned restarts. So every connection of a feed runs a closescan over its receive stream from
 * the upgrade request on (LWS_CALLBACK_CLIENT_APPEND_HANDSHAKE_HEADER: the socket exists, the
 * answer has not been read; a proxy's answer to the CONNECT is already behind). The stream is
 * taken where lws reads it: recv() for ws:// (ws_proxy.c's definition calls ws_scan_read) and
 * SSL_read() for wss://, both called by libwebsockets.so through its PLT, so the definitions in
 * this executable see them. Cost per read: one table look-up; per frame: its header bytes.
 * Each connection's socket is known from the connect on (ws_scan_watch), so that a failed
 * SSL_connect or SSL_read can also say why TLS failed (tls_failed).
 *
 * The same table gives when a connection's bytes arrived: its socket has SO_TIMESTAMPNS, and
 * its reads (recv() by lws for ws://, read() by OpenSSL's socket BIO for wss://) are made with
 * recvmsg(), which hands back the kernel's receive time of the last segment read
 * (f->rx_real_us). Heartbeat round trips and capture timestamps use it, so a reply that waited
 * in the socket while the loop slept (io_slack, or a busy turn) is not counted late.
 */
#include <dlfcn.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

#include <openssl/err.h>
#include <openssl/ssl.h>

#include "ws_internal.h"

static struct {
	struct feed **by_fd;
	size_t cap;
} scans;

bool ws_fd_table_fit(struct feed ***tab, size_t *cap, int fd)
{
	size_t n = *cap ? *cap : 64;
	struct feed **v;

	if ((size_t)fd < *cap)
		return true;
	while (n <= (size_t)fd)
		n *= 2;
	v = realloc(*tab, n * sizeof(*v));
	if (!v)
		return false;
	memset(v + *cap, 0, (n - *cap) * sizeof(*v));
	*tab = v;
	*cap = n;
	return true;
}

void ws_scan_watch(struct feed *f, struct lws *wsi)
{
	int fd = lws_get_socket_fd(wsi);

	if (fd >= 0 && fd == f->scan_fd)
		return;
	ws_scan_forget(f);
	/* Without an entry, the close code lws reports is kept. A socket is entered only once its
	 * last user has forgotten it. */
	if (fd < 0 || !ws_fd_table_fit(&scans.by_fd, &scans.cap, fd))
		return;
	scans.by_fd[fd] = f;
	f->scan_fd = fd;
	f->scan_tls = lws_is_ssl(wsi) != 0;
	f->rx_real_us = 0;
	closescan_idle(&f->scan);
	/* Without it, arrival times are the loop's (rx_real_us stays 0). */
	setsockopt(fd, SOL_SOCKET, SO_TIMESTAMPNS, &(int){1}, sizeof(int));
}

void ws_scan_start(struct feed *f, struct lws *wsi)
{
	ws_scan_watch(f, wsi);
	if (f->scan_fd >= 0)
		closescan_start(&f->scan);
}

void ws_scan_forget(struct feed *f)
{
	int fd = f->scan_fd;

	if (fd < 0)
		return;
	f->scan_fd = -1;
	if ((size_t)fd < scans.cap && scans.by_fd[fd] == f)
		scans.by_fd[fd] = NULL;
}

void ws_scan_fini(void)
{
	free(scans.by_fd);
	scans.by_fd = NULL;
	scans.cap = 0;
}

void ws_scan_read(int fd, const void *buf, size_t n, bool tls)
{
	struct feed *f;

	if (fd < 0 || (size_t)fd >= scans.cap || !(f = scans.by_fd[fd]) || f->scan_tls != tls)
		return;
	closescan_feed(&f->scan, buf, n);
}

/* A read of a watched socket, through recvmsg for the receive time of what it read. */
static ssize_t read_stamped(struct feed *f, int fd, void *buf, size_t len, int flags)
{
	union {
		char b[CMSG_SPACE(sizeof(struct timespec))];
		struct cmsghdr align;
	} ctl;
	struct iovec iov = {buf, len};
	struct msghdr m = {
	    .msg_iov = &iov, .msg_iovlen = 1, .msg_control = ctl.b, .msg_controllen = sizeof(ctl)};
	ssize_t n = recvmsg(fd, &m, flags);

	if (n <= 0)
		return n;
	/* Without a stamp for these bytes, an older one must not stand for them (an answer
	 * dated before its question would not count): unknown, so the loop's time is used. */
	f->rx_real_us = 0;
	for (struct cmsghdr *c = CMSG_FIRSTHDR(&m); c; c = CMSG_NXTHDR(&m, c)) {
		struct timespec ts;
		if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_TIMESTAMPNS)
			continue;
		memcpy(&ts, CMSG_DATA(c), sizeof(ts));
		f->rx_real_us = (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
	}
	return n;
}

ssize_t ws_scan_recv(int fd, void *buf, size_t len, int flags, bool *done)
{
	struct feed *f;

	*done = fd >= 0 && (size_t)fd < scans.cap && (f = scans.by_fd[fd]) && !(flags & MSG_PEEK);
	return *done ? read_stamped(f, fd, buf, len, flags) : 0;
}

/* OpenSSL's socket BIO reads with read(2): a watched socket's reads are stamped too. */
ssize_t read(int fd, void *buf, size_t len)
{
	static ssize_t (*real)(int, void *, size_t);
	struct feed *f;

	if (fd >= 0 && (size_t)fd < scans.cap && (f = scans.by_fd[fd]))
		return read_stamped(f, fd, buf, len, 0);
	if (!real)
		*(void **)&real = dlsym(RTLD_NEXT, "read");
	return real(fd, buf, len);
}

unsigned ws_scan_close_code(const struct feed *f)
{
	return f->scan_fd >= 0 ? closescan_code(&f->scan) : CLOSESCAN_NONE;
}

/*
 * The TLS handshake or a read of a feed's connection failed inside TLS: the reason, before
 * lws reports the connection with its own words ("connect SSL err 1: error:00000001:lib(0)::
 * reason(1)", "read failed"). Under TLS 1.3 the client's handshake may end before the server
 * has looked at the client certificate, so a server that wants one, or rejects ours, says so
 * in an alert that arrives at the end of SSL_connect or at the first read. (A certificate of
 * the server's that does not verify has its reason recorded by the verify callback first.)
 */
static void tls_failed(SSL *ssl, int n, int err)
{
	int fd = SSL_get_fd(ssl), kind;
	unsigned long e;
	const char *why;
	struct feed *f;

	if (fd < 0 || (size_t)fd >= scans.cap || !(f = scans.by_fd[fd]) || f->upgraded)
		return;
	kind = SSL_get_error(ssl, n);
	if (kind == SSL_ERROR_SYSCALL) {
		/* A reset, or an end of the stream without an alert (a server that drops a
		 * client it refuses without flushing its alert). */
		if (n == 0 || !err)
			feed_set_error(f, "the server closed the connection during TLS");
		else
			feed_set_error(f, "TLS failed: %s", strerror(err));
		return;
	}
	if (kind != SSL_ERROR_SSL)
		return;
	e = ERR_peek_error();
	why = ERR_reason_error_string(e);
	if (!why)
		return;
	switch (ERR_GET_REASON(e)) {
	case SSL_R_TLSV13_ALERT_CERTIFICATE_REQUIRED:
		feed_set_error(f,
		               "the server requires a client certificate (tls.cert_file, "
		               "tls.key_file): %s",
		               why);
		break;
	case SSL_R_SSLV3_ALERT_BAD_CERTIFICATE:
	case SSL_R_SSLV3_ALERT_CERTIFICATE_UNKNOWN:
	case SSL_R_TLSV1_ALERT_UNKNOWN_CA:
	case SSL_R_SSLV3_ALERT_CERTIFICATE_EXPIRED:
	case SSL_R_SSLV3_ALERT_CERTIFICATE_REVOKED:
	case SSL_R_TLSV1_ALERT_ACCESS_DENIED:
		feed_set_error(f, "the server refused the client certificate: %s", why);
		break;
	case SSL_R_UNEXPECTED_EOF_WHILE_READING:
		feed_set_error(f, "the server closed the connection during TLS");
		break;
	default:
		feed_set_error(f, "TLS failed: %s", why);
	}
}

/* Both leave errno as OpenSSL left it: lws reads it after a failure. */
int SSL_read(SSL *ssl, void *buf, int num)
{
	static int (*real)(SSL *, void *, int);
	int n, err;

	if (!real)
		*(void **)&real = dlsym(RTLD_NEXT, "SSL_read");
	n = real(ssl, buf, num);
	if (!scans.cap)
		return n;
	if (n > 0) {
		ws_scan_read(SSL_get_fd(ssl), buf, (size_t)n, true);
	} else {
		err = errno;
		tls_failed(ssl, n, err);
		errno = err;
	}
	return n;
}

int SSL_connect(SSL *ssl)
{
	static int (*real)(SSL *);
	int n, err;

	if (!real)
		*(void **)&real = dlsym(RTLD_NEXT, "SSL_connect");
	n = real(ssl);
	if (n <= 0 && scans.cap) {
		err = errno;
		tls_failed(ssl, n, err);
		errno = err;
	}
	return n;
}
