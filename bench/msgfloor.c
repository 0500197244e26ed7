/*
 * bench/msgfloor: the floor of the message path. The least a capture client can do on Linux:
 * N plain WebSocket connections on raw non-blocking sockets and one epoll set; per wake-up, for
 * each ready socket exactly one recv() (64 KiB), the complete frames in it parsed in place (a
 * partial frame is carried to the next recv), and for each text message one JSONL record
 *
 *   {"ts":<µs since the epoch>,"feed":"f00017","conn":1,"type":"text","data":"<escaped>"}
 *
 * (ts: CLOCK_REALTIME, read once per recv), then one writev() of the wake-up's records to the
 * output file. The same record as the peers write (wsbeat writes ts as an RFC 3339 string).
 * The text is escaped as a JSON string and checked to be UTF-8 (ASCII goes the fast way).
 * No allocation per message, no timers, no heartbeats.
 *
 * usage: msgfloor -n N --out FILE URL...     (URL: ws://ADDR:PORT/PATH, numeric IPv4)
 * Runs until SIGTERM/SIGINT; counts go to stderr at exit.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

enum { C_CONNECTING, C_UPGRADE, C_OPEN, C_DEAD };

struct target {
	struct sockaddr_in sa;
	char host[64], path[256];
};

struct conn {
	int fd;
	uint8_t state, crlf;
	uint16_t target;
	uint32_t carry_len;
	char *carry; /* a partial frame left by the last recv */
};

#define RBUF   (64 * 1024)
#define OUTBUF (4 * 1024 * 1024)
#define NIOV   IOV_MAX

static struct target *targets;
static int n_targets;
static struct conn *conns;
static int n_conns, ep, out_fd;
static unsigned long long msgs, opened, failed, recvs, writes, wakes;
static char rbuf[2 * RBUF + 16]; /* a carried partial frame (< RBUF + 10) + one recv */
static char *out;
static size_t out_len;
static struct iovec iov[NIOV];
static int n_iov;

static int64_t real_us(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static void flush_out(void)
{
	int i = 0;

	while (i < n_iov) {
		ssize_t w = writev(out_fd, iov + i, n_iov - i);
		if (w < 0) {
			if (errno == EINTR)
				continue;
			perror("writev");
			exit(1);
		}
		writes++;
		while (i < n_iov && (size_t)w >= iov[i].iov_len)
			w -= (ssize_t)iov[i++].iov_len;
		if (i < n_iov) {
			iov[i].iov_base = (char *)iov[i].iov_base + w;
			iov[i].iov_len -= (size_t)w;
		}
	}
	n_iov = 0;
	out_len = 0;
}

static char *put_u(char *o, uint64_t v)
{
	char t[24];
	int i = 0;
	do
		t[i++] = (char)('0' + v % 10);
	while (v /= 10);
	while (i)
		*o++ = t[--i];
	return o;
}

/* Length of a valid UTF-8 sequence at p (first byte >= 0x80), 0 if invalid. */
static size_t utf8_seq(const unsigned char *p, const unsigned char *e)
{
	unsigned c = p[0], lo = 0x80, hi = 0xbf;
	size_t n;

	if (c >= 0xc2 && c <= 0xdf)
		n = 2;
	else if (c >= 0xe0 && c <= 0xef) {
		n = 3;
		lo = c == 0xe0 ? 0xa0 : 0x80;
		hi = c == 0xed ? 0x9f : 0xbf;
	} else if (c >= 0xf0 && c <= 0xf4) {
		n = 4;
		lo = c == 0xf0 ? 0x90 : 0x80;
		hi = c == 0xf4 ? 0x8f : 0xbf;
	} else
		return 0;
	if ((size_t)(e - p) < n || p[1] < lo || p[1] > hi)
		return 0;
	for (size_t i = 2; i < n; i++)
		if (p[i] < 0x80 || p[i] > 0xbf)
			return 0;
	return n;
}

/* Escapes [p, p+n) into o as a JSON string's inside; NULL if it is not UTF-8. */
static char *escape(char *o, const unsigned char *p, size_t n)
{
	static const char hex[] = "0123456789abcdef";
	const unsigned char *e = p + n;

	while (p < e) {
		const unsigned char *s = p;
		while (p < e && *p >= 0x20 && *p != '"' && *p != '\\' && *p < 0x80)
			p++;
		memcpy(o, s, (size_t)(p - s));
		o += p - s;
		if (p == e)
			break;
		unsigned c = *p;
		if (c == '"' || c == '\\') {
			*o++ = '\\';
			*o++ = (char)c;
			p++;
		} else if (c < 0x20) {
			memcpy(o, "\\u00", 4);
			o[4] = hex[c >> 4];
			o[5] = hex[c & 15];
			o += 6;
			p++;
		} else {
			size_t l = utf8_seq(p, e);
			if (!l)
				return NULL;
			memcpy(o, p, l);
			o += l;
			p += l;
		}
	}
	return o;
}

static void kill_conn(struct conn *c)
{
	if (c->fd >= 0) {
		epoll_ctl(ep, EPOLL_CTL_DEL, c->fd, NULL);
		close(c->fd);
	}
	c->fd = -1;
	if (c->state != C_OPEN)
		failed++;
	c->state = C_DEAD;
	free(c->carry);
	c->carry = NULL;
	c->carry_len = 0;
}

static void record(int idx, int64_t ts, const unsigned char *p, size_t n)
{
	char *o, *s;

	if (out_len + 2 * 6 * n + 128 > OUTBUF || n_iov == NIOV)
		flush_out();
	s = o = out + out_len;
	memcpy(o, "{\"ts\":", 6);
	o = put_u(o + 6, (uint64_t)ts);
	memcpy(o, ",\"feed\":\"f", 10);
	o += 10;
	/* f00000 */
	char num[8];
	int v = idx;
	for (int i = 4; i >= 0; i--) {
		num[i] = (char)('0' + v % 10);
		v /= 10;
	}
	memcpy(o, num, 5);
	o += 5;
	memcpy(o, "\",\"conn\":1,\"type\":\"text\",\"data\":\"", 33);
	o += 33;
	o = escape(o, p, n);
	if (!o) {
		fprintf(stderr, "msgfloor: text that is not UTF-8 on connection %d\n", idx);
		kill_conn(&conns[idx]);
		return;
	}
	memcpy(o, "\"}\n", 3);
	o += 3;
	iov[n_iov].iov_base = s;
	iov[n_iov++].iov_len = (size_t)(o - s);
	out_len += (size_t)(o - s);
	msgs++;
}

/* Parses the complete frames in b[0, n); returns how many bytes were consumed, -1 to close. */
static ssize_t frames(int idx, unsigned char *b, size_t n, int64_t ts)
{
	size_t off = 0;

	while (n - off >= 2) {
		unsigned char *h = b + off;
		size_t hl = 2, len = h[1] & 0x7f;
		if (len == 126) {
			if (n - off < 4)
				break;
			len = (size_t)h[2] << 8 | h[3];
			hl = 4;
		} else if (len == 127) {
			if (n - off < 10)
				break;
			len = 0;
			for (int i = 2; i < 10; i++)
				len = len << 8 | h[i];
			hl = 10;
		}
		if (h[1] & 0x80 || len > RBUF)
			return -1; /* a masked server frame, or larger than we handle */
		if (n - off < hl + len)
			break;
		unsigned op = h[0] & 0x0f;
		if (op == 0x1 && (h[0] & 0x80))
			record(idx, ts, h + hl, len);
		else if (op == 0x8)
			return -1;
		else if (op == 0x0 || (op == 0x1 && !(h[0] & 0x80)))
			return -1; /* fragments: the load server never sends them */
		off += hl + len;
	}
	return (ssize_t)off;
}

static void on_open_data(int idx)
{
	struct conn *c = &conns[idx];
	size_t have = c->carry_len;
	ssize_t r, used;

	if (have)
		memcpy(rbuf, c->carry, have);
	r = recv(c->fd, rbuf + have, RBUF, 0);
	recvs++;
	if (r <= 0) {
		if (r < 0 && (errno == EAGAIN || errno == EINTR))
			return;
		kill_conn(c);
		return;
	}
	have += (size_t)r;
	used = frames(idx, (unsigned char *)rbuf, have, real_us());
	if (used < 0) {
		kill_conn(c);
		return;
	}
	c->carry_len = (uint32_t)(have - (size_t)used);
	if (c->carry_len) {
		char *k = realloc(c->carry, c->carry_len);
		if (!k) {
			kill_conn(c);
			return;
		}
		c->carry = k;
		memcpy(c->carry, rbuf + used, c->carry_len);
	}
}

static void on_upgrade(int idx)
{
	struct conn *c = &conns[idx];
	char b[2048];
	ssize_t r = recv(c->fd, b, sizeof(b), 0), i;

	if (r <= 0) {
		if (r < 0 && errno == EAGAIN)
			return;
		kill_conn(c);
		return;
	}
	if (c->crlf == 0 && (r < 12 || memcmp(b, "HTTP/1.1 101", 12))) {
		kill_conn(c);
		return;
	}
	for (i = 0; i < r; i++) {
		static const char end[] = "\r\n\r\n";
		c->crlf = b[i] == end[c->crlf & 3] ? (uint8_t)((c->crlf & 3) + 1) : (b[i] == '\r');
		c->crlf |= 0x80; /* status line seen */
		if ((c->crlf & 0x7f) == 4) {
			i++;
			break;
		}
	}
	if ((c->crlf & 0x7f) != 4)
		return;
	c->state = C_OPEN;
	opened++;
	if (i < r) { /* frames right behind the answer */
		ssize_t used = frames(idx, (unsigned char *)b + i, (size_t)(r - i), real_us());
		if (used < 0) {
			kill_conn(c);
			return;
		}
		if (used < r - i) {
			c->carry_len = (uint32_t)(r - i - used);
			c->carry = malloc(c->carry_len);
			memcpy(c->carry, b + i + used, c->carry_len);
		}
	}
}

static void on_connected(int idx)
{
	struct conn *c = &conns[idx];
	struct target *t = &targets[c->target];
	char req[512];
	int err = 0;
	socklen_t el = sizeof(err);
	unsigned char key[16];
	char k64[32];
	static const char b64[] =
	    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

	getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &el);
	if (err) {
		kill_conn(c);
		return;
	}
	for (int i = 0; i < 16; i++)
		key[i] = (unsigned char)rand();
	int o = 0;
	for (int i = 0; i < 15; i += 3) {
		unsigned v = key[i] << 16 | key[i + 1] << 8 | key[i + 2];
		k64[o++] = b64[v >> 18];
		k64[o++] = b64[(v >> 12) & 63];
		k64[o++] = b64[(v >> 6) & 63];
		k64[o++] = b64[v & 63];
	}
	k64[o++] = b64[key[15] >> 2];
	k64[o++] = b64[(key[15] & 3) << 4];
	k64[o++] = '=';
	k64[o++] = '=';
	k64[o] = '\0';
	int n = snprintf(req, sizeof(req),
	                 "GET %s HTTP/1.1\r\nHost: %s\r\nUpgrade: websocket\r\n"
	                 "Connection: Upgrade\r\nSec-WebSocket-Key: %s\r\n"
	                 "Sec-WebSocket-Version: 13\r\n\r\n",
	                 t->path, t->host, k64);
	if (send(c->fd, req, (size_t)n, MSG_NOSIGNAL) != n) {
		kill_conn(c);
		return;
	}
	c->state = C_UPGRADE;
	struct epoll_event e = {.events = EPOLLIN, .data.u64 = (uint64_t)idx};
	epoll_ctl(ep, EPOLL_CTL_MOD, c->fd, &e);
}

static int parse_url(const char *u, struct target *t)
{
	const char *p, *slash, *colon;
	char addr[64];

	if (strncmp(u, "ws://", 5))
		return -1;
	p = u + 5;
	slash = strchr(p, '/');
	if (!slash)
		slash = p + strlen(p);
	colon = memchr(p, ':', (size_t)(slash - p));
	if (!colon || (size_t)(colon - p) >= sizeof(addr))
		return -1;
	memcpy(addr, p, (size_t)(colon - p));
	addr[colon - p] = '\0';
	t->sa.sin_family = AF_INET;
	t->sa.sin_port = htons((uint16_t)atoi(colon + 1));
	if (inet_pton(AF_INET, addr, &t->sa.sin_addr) != 1)
		return -1;
	snprintf(t->host, sizeof(t->host), "%.*s", (int)(slash - p), p);
	snprintf(t->path, sizeof(t->path), "%s", *slash ? slash : "/");
	return 0;
}

int main(int argc, char **argv)
{
	const char *outp = NULL;
	struct rlimit rl;
	sigset_t ss;
	int sfd;

	targets = calloc((size_t)argc, sizeof(*targets));
	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "-n") && i + 1 < argc)
			n_conns = atoi(argv[++i]);
		else if (!strcmp(argv[i], "--out") && i + 1 < argc)
			outp = argv[++i];
		else if (parse_url(argv[i], &targets[n_targets]) == 0)
			n_targets++;
		else {
			fprintf(stderr, "msgfloor: bad argument %s\n", argv[i]);
			return 64;
		}
	}
	if (!n_conns || !n_targets || !outp) {
		fprintf(stderr, "usage: msgfloor -n N --out FILE URL...\n");
		return 64;
	}
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0) {
		rl.rlim_cur = rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
	}
	out_fd = open(outp, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
	out = malloc(OUTBUF);
	if (out_fd < 0 || !out) {
		perror(outp);
		return 1;
	}
	srand((unsigned)getpid());
	sigemptyset(&ss);
	sigaddset(&ss, SIGTERM);
	sigaddset(&ss, SIGINT);
	sigprocmask(SIG_BLOCK, &ss, NULL);
	signal(SIGPIPE, SIG_IGN);
	sfd = signalfd(-1, &ss, SFD_NONBLOCK | SFD_CLOEXEC);
	ep = epoll_create1(EPOLL_CLOEXEC);
	struct epoll_event se = {.events = EPOLLIN, .data.u64 = UINT64_MAX};
	epoll_ctl(ep, EPOLL_CTL_ADD, sfd, &se);

	conns = calloc((size_t)n_conns, sizeof(*conns));
	for (int i = 0; i < n_conns; i++) {
		struct conn *c = &conns[i];
		int one = 1;
		c->target = (uint16_t)(i % n_targets);
		c->fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
		if (c->fd < 0) {
			perror("socket");
			return 1;
		}
		setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
		if (connect(c->fd, (struct sockaddr *)&targets[c->target].sa,
		            sizeof(struct sockaddr_in)) < 0 &&
		    errno != EINPROGRESS) {
			kill_conn(c);
			continue;
		}
		c->state = C_CONNECTING;
		struct epoll_event e = {.events = EPOLLOUT, .data.u64 = (uint64_t)i};
		epoll_ctl(ep, EPOLL_CTL_ADD, c->fd, &e);
	}

	for (;;) {
		struct epoll_event ev[1024];
		int n = epoll_wait(ep, ev, 1024, -1);
		wakes++;
		for (int i = 0; i < n; i++) {
			if (ev[i].data.u64 == UINT64_MAX) {
				flush_out();
				fprintf(
				    stderr,
				    "msgfloor: n=%d opened=%llu failed=%llu msgs=%llu recvs=%llu "
				    "writes=%llu wakes=%llu\n",
				    n_conns, opened, failed, msgs, recvs, writes, wakes);
				return 0;
			}
			int idx = (int)ev[i].data.u64;
			struct conn *c = &conns[idx];
			if (c->state == C_OPEN)
				on_open_data(idx);
			else if (c->state == C_CONNECTING)
				on_connected(idx);
			else if (c->state == C_UPGRADE)
				on_upgrade(idx);
		}
		if (n_iov)
			flush_out();
	}
}
