/*
 * The close code the server really sent, read from the bytes libwebsockets reads.
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
 */
#include <dlfcn.h>
#include <stdlib.h>
#include <string.h>

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

	ws_scan_forget(f);
	if (fd < 0 || !ws_fd_table_fit(&scans.by_fd, &scans.cap, fd))
		return; /* the close code lws reports is kept */
	if (scans.by_fd[fd])
		scans.by_fd[fd]->scan_fd = -1; /* a stale entry: its socket is gone */
	scans.by_fd[fd] = f;
	f->scan_fd = fd;
	f->scan.tls = lws_is_ssl(wsi) != 0;
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

	if (fd < 0 || (size_t)fd >= scans.cap || !(f = scans.by_fd[fd]) || f->scan.tls != tls)
		return;
	closescan_feed(&f->scan, buf, n);
}

unsigned ws_scan_close_code(const struct feed *f)
{
	return f->scan_fd >= 0 ? closescan_code(&f->scan) : CLOSESCAN_NONE;
}

int SSL_read(SSL *ssl, void *buf, int num)
{
	static int (*real)(SSL *, void *, int);
	int n;

	if (!real)
		*(void **)&real = dlsym(RTLD_NEXT, "SSL_read");
	n = real(ssl, buf, num);
	if (n > 0 && scans.cap)
		ws_scan_read(SSL_get_fd(ssl), buf, (size_t)n, true);
	return n;
}
