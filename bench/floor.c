/*
 * bench/floor: the floor reference client. A minimal WebSocket heartbeat client on raw
 * non-blocking sockets and one epoll set (OpenSSL directly for wss), no libwebsockets.
 *
 * N connections over the given targets (round robin); each sends one PING frame (8-byte
 * payload, like wsbeat) or the text "ping" every interval and reads the answer. Per beat:
 * exactly one send (SSL_write) and one recv (SSL_read), no allocation. Beats are on a fixed
 * grid, evenly spread over the interval; the one timerfd is armed at the earliest due beat plus
 * --slack (default 2 ms, like wsbeat's timer_slack), and a wake-up sends every beat that is due,
 * so beats due within the slack share one wake-up and none is early.
 *
 * usage: floor -n N [--type ping|text] [--interval-ms 1000] [--slack-us 2000]
 *              [--ca FILE [--release-buffers]] [--inflight 512] [--duration S]
 *              [--writable-dance] [--urandom-mask] [--lazy-ms MS] URL...
 *        URL: ws://ADDR:PORT/PATH or wss://ADDR:PORT/PATH with a numeric IPv4 ADDR.
 * Stats go to stderr at exit (SIGTERM/SIGINT, or after --duration seconds).
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

enum { C_NEW, C_CONNECTING, C_TLS, C_UPGRADE, C_OPEN, C_DEAD };

struct target {
	struct sockaddr_in sa;
	char host[64], path[256];
	int tls;
};

struct conn {
	int fd;
	uint8_t state;
	uint8_t crlf;  /* progress through "\r\n\r\n" of the upgrade answer */
	uint8_t seen;  /* bytes of the status line seen */
	uint8_t ok101; /* the status line says 101 */
	uint16_t target;
	SSL *ssl;
};

static struct target *targets;
static int n_targets;
static struct conn *conns;
static int n_conns;
static SSL_CTX *sslctx;
static int ep;
static unsigned long long sent, answered, opened, failed;

#define TAG_TIMER (-1)
#define TAG_SIG   (-2)

static uint64_t mono_us(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

/* Masked client frames, built once. The mask key is zero, so the payload stays readable. */
static const unsigned char ping_frame[] = {0x89, 0x80 | 8, 0,   0,   0,   0,   'w',
                                           's',  'b',      'e', 'a', 't', '0', '0'};
static const unsigned char text_frame[] = {0x81, 0x80 | 4, 0, 0, 0, 0, 'p', 'i', 'n', 'g'};
static const unsigned char *beat_frame = ping_frame;
/* Experiments (off by default): do what wsbeat on lws 4.1 does per beat, to price it.
 * --writable-dance: ask for EPOLLOUT, send from the writable event, drop EPOLLOUT again
 *   (lws_callback_on_writable + WRITEABLE: two epoll_ctl and one more event per beat);
 * --urandom-mask: read 4 bytes of /dev/urandom per frame (lws's mask key).
 * --lazy-ms MS: batch wake-ups as libev's I/O collect interval does (wsbeat's io_slack): before
 *   each epoll_wait, sleep what is left of MS since the previous one returned. */
static int writable_dance, urandom_fd = -1;
static uint64_t lazy_us;
static size_t beat_len = sizeof(ping_frame);

static void set_events(struct conn *c, int idx, uint32_t ev, int op)
{
	struct epoll_event e = {.events = ev, .data.u64 = (uint64_t)idx};
	epoll_ctl(ep, op, c->fd, &e);
}

static void kill_conn(struct conn *c)
{
	if (c->ssl) {
		SSL_free(c->ssl);
		c->ssl = NULL;
	}
	if (c->fd >= 0)
		close(c->fd);
	c->fd = -1;
	if (c->state != C_OPEN)
		failed++;
	c->state = C_DEAD;
}

static int start_conn(int idx)
{
	struct conn *c = &conns[idx];
	struct target *t = &targets[c->target];
	int one = 1;

	c->fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (c->fd < 0) {
		perror("socket");
		c->state = C_DEAD;
		failed++;
		return -1;
	}
	setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	if (connect(c->fd, (struct sockaddr *)&t->sa, sizeof(t->sa)) < 0 && errno != EINPROGRESS) {
		kill_conn(c);
		return -1;
	}
	c->state = C_CONNECTING;
	set_events(c, idx, EPOLLOUT, EPOLL_CTL_ADD);
	return 0;
}

static int io_write(struct conn *c, const void *b, size_t n)
{
	if (urandom_fd >= 0 && c->state == C_OPEN) {
		unsigned char mask[4];
		if (read(urandom_fd, mask, 4) != 4)
			return -1;
	}
	if (c->ssl)
		return SSL_write(c->ssl, b, (int)n);
	return (int)send(c->fd, b, n, MSG_NOSIGNAL);
}

static int io_read(struct conn *c, void *b, size_t n)
{
	if (c->ssl)
		return SSL_read(c->ssl, b, (int)n);
	return (int)recv(c->fd, b, n, 0);
}

/* After a read (or peek) that returned n <= 0: whether it only found nothing to read yet. */
static int would_block(struct conn *c, int n)
{
	return c->ssl ? SSL_get_error(c->ssl, n) == SSL_ERROR_WANT_READ
	              : (n < 0 && errno == EAGAIN);
}

/* One heartbeat frame; a short or failed write ends the connection. */
static void send_beat(struct conn *c)
{
	if (io_write(c, beat_frame, beat_len) == (int)beat_len)
		sent++;
	else
		kill_conn(c);
}

/* Arms the timerfd at CLOCK_MONOTONIC time us. */
static void arm_at(int tfd, uint64_t us)
{
	struct itimerspec its = {0};
	its.it_value.tv_sec = (time_t)(us / 1000000);
	its.it_value.tv_nsec = (long)(us % 1000000) * 1000;
	timerfd_settime(tfd, TFD_TIMER_ABSTIME, &its, NULL);
}

static void send_upgrade(int idx)
{
	struct conn *c = &conns[idx];
	struct target *t = &targets[c->target];
	char req[512];
	int n = snprintf(req, sizeof(req),
	                 "GET %s HTTP/1.1\r\nHost: %s:%d\r\nUpgrade: websocket\r\n"
	                 "Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
	                 "Sec-WebSocket-Version: 13\r\n\r\n",
	                 t->path, t->host, ntohs(t->sa.sin_port));
	if (io_write(c, req, (size_t)n) != n) {
		kill_conn(c);
		return;
	}
	c->state = C_UPGRADE;
	set_events(c, idx, EPOLLIN, EPOLL_CTL_MOD);
}

static void tls_step(int idx)
{
	struct conn *c = &conns[idx];
	int r = SSL_connect(c->ssl), e;

	if (r == 1) {
		send_upgrade(idx);
		return;
	}
	e = SSL_get_error(c->ssl, r);
	if (e == SSL_ERROR_WANT_READ)
		set_events(c, idx, EPOLLIN, EPOLL_CTL_MOD);
	else if (e == SSL_ERROR_WANT_WRITE)
		set_events(c, idx, EPOLLOUT, EPOLL_CTL_MOD);
	else {
		unsigned long le = ERR_get_error();
		char buf[256];
		ERR_error_string_n(le, buf, sizeof(buf));
		fprintf(stderr, "floor: TLS handshake failed: %s\n", buf);
		ERR_clear_error();
		kill_conn(c);
	}
}

static void on_connected(int idx)
{
	struct conn *c = &conns[idx];
	struct target *t = &targets[c->target];
	int err = 0;
	socklen_t l = sizeof(err);

	getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &l);
	if (err) {
		kill_conn(c);
		return;
	}
	if (!t->tls) {
		send_upgrade(idx);
		return;
	}
	c->ssl = SSL_new(sslctx);
	SSL_set_fd(c->ssl, c->fd);
	X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(c->ssl), t->host);
	c->state = C_TLS;
	tls_step(idx);
}

/* Reads the upgrade answer up to its blank line (peek, then consume exactly the header, so a
 * frame that follows stays in the socket). Setup only, never per beat. */
static void read_upgrade(int idx)
{
	struct conn *c = &conns[idx];
	static const char end[] = "\r\n\r\n";
	unsigned char buf[1024];
	int n = c->ssl ? SSL_peek(c->ssl, buf, sizeof(buf))
	               : (int)recv(c->fd, buf, sizeof(buf), MSG_PEEK);
	int take = -1;

	if (n <= 0) {
		if (!would_block(c, n))
			kill_conn(c);
		return;
	}
	for (int i = 0; i < n; i++) {
		unsigned char ch = buf[i];
		if (c->seen < 12) {
			/* "HTTP/1.1 101" */
			if (c->seen == 9 && ch == '1')
				c->ok101 = 1;
			else if (c->seen >= 10 && c->ok101 && ch != (c->seen == 10 ? '0' : '1'))
				c->ok101 = 0;
			c->seen++;
		}
		c->crlf = ch == (unsigned char)end[c->crlf] ? c->crlf + 1 : (ch == '\r');
		if (c->crlf == 4) {
			take = i + 1;
			break;
		}
	}
	if (io_read(c, buf, (size_t)(take < 0 ? n : take)) <= 0) {
		kill_conn(c);
		return;
	}
	if (take < 0)
		return;
	if (!c->ok101) {
		kill_conn(c);
		return;
	}
	c->state = C_OPEN;
	opened++;
}

/* One read per readiness; counts the answers in it (server frames are small, unmasked). */
static void read_open(int idx)
{
	struct conn *c = &conns[idx];
	unsigned char buf[512];
	int n = io_read(c, buf, sizeof(buf));

	if (n <= 0) {
		if (!would_block(c, n))
			kill_conn(c);
		return;
	}
	for (int i = 0; i + 2 <= n;) {
		unsigned op = buf[i] & 0x0f, len = buf[i + 1] & 0x7f;
		if (len >= 126)
			break;
		if (op == 0xA || op == 0x1)
			answered++;
		else if (op == 0x8) {
			kill_conn(c);
			return;
		}
		i += 2 + (int)len;
	}
}

static void usage(void)
{
	fprintf(stderr, "usage: floor -n N [--type ping|text] [--interval-ms MS] [--slack-us US] "
	                "[--ca FILE [--release-buffers]] [--inflight K] [--duration S] URL...\n");
	exit(64);
}

static int parse_url(const char *u, struct target *t)
{
	const char *p, *slash, *colon;
	size_t hl;

	memset(t, 0, sizeof(*t));
	if (!strncmp(u, "ws://", 5))
		p = u + 5;
	else if (!strncmp(u, "wss://", 6)) {
		p = u + 6;
		t->tls = 1;
	} else
		return -1;
	slash = strchr(p, '/');
	if (!slash)
		slash = p + strlen(p);
	colon = memchr(p, ':', (size_t)(slash - p));
	if (!colon)
		return -1;
	hl = (size_t)(colon - p);
	if (hl >= sizeof(t->host))
		return -1;
	memcpy(t->host, p, hl);
	t->sa.sin_family = AF_INET;
	t->sa.sin_port = htons((uint16_t)atoi(colon + 1));
	if (inet_pton(AF_INET, t->host, &t->sa.sin_addr) != 1)
		return -1;
	snprintf(t->path, sizeof(t->path), "%s", *slash ? slash : "/");
	return 0;
}

int main(int argc, char **argv)
{
	long n = 0, interval_us = 1000000, slack_us = 2000, inflight = 512, duration = 0;
	const char *ca = NULL;
	int release = 0, tfd, sfd, next_start = 0, pending = 0;
	struct rlimit rl;
	sigset_t set;
	struct epoll_event e, evs[512];
	uint64_t t0, start, cycle = 0;
	long cursor = 0;
	int running = 1;

	targets = calloc((size_t)argc, sizeof(*targets));
	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "-n") && i + 1 < argc)
			n = atol(argv[++i]);
		else if (!strcmp(argv[i], "--type") && i + 1 < argc) {
			i++;
			if (!strcmp(argv[i], "text")) {
				beat_frame = text_frame;
				beat_len = sizeof(text_frame);
			} else if (strcmp(argv[i], "ping"))
				usage();
		} else if (!strcmp(argv[i], "--interval-ms") && i + 1 < argc)
			interval_us = atol(argv[++i]) * 1000;
		else if (!strcmp(argv[i], "--slack-us") && i + 1 < argc)
			slack_us = atol(argv[++i]);
		else if (!strcmp(argv[i], "--ca") && i + 1 < argc)
			ca = argv[++i];
		else if (!strcmp(argv[i], "--writable-dance"))
			writable_dance = 1;
		else if (!strcmp(argv[i], "--lazy-ms") && i + 1 < argc)
			lazy_us = (uint64_t)atoi(argv[++i]) * 1000u;
		else if (!strcmp(argv[i], "--urandom-mask"))
			urandom_fd = open("/dev/urandom", O_RDONLY | O_CLOEXEC);
		else if (!strcmp(argv[i], "--release-buffers"))
			release = 1;
		else if (!strcmp(argv[i], "--inflight") && i + 1 < argc)
			inflight = atol(argv[++i]);
		else if (!strcmp(argv[i], "--duration") && i + 1 < argc)
			duration = atol(argv[++i]);
		else if (parse_url(argv[i], &targets[n_targets]) == 0)
			n_targets++;
		else
			usage();
	}
	if (n <= 0 || !n_targets || interval_us <= 0)
		usage();
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0) {
		rl.rlim_cur = rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
	}
	signal(SIGPIPE, SIG_IGN);
	for (int i = 0; i < n_targets; i++)
		if (targets[i].tls && !sslctx) {
			sslctx = SSL_CTX_new(TLS_client_method());
			SSL_CTX_set_verify(sslctx, SSL_VERIFY_PEER, NULL);
			if (!ca || SSL_CTX_load_verify_locations(sslctx, ca, NULL) != 1) {
				fprintf(stderr, "floor: wss needs --ca FILE\n");
				return 1;
			}
			/* One read() per record instead of header + body. */
			SSL_CTX_set_read_ahead(sslctx, 1);
			if (release)
				SSL_CTX_set_mode(sslctx, SSL_MODE_RELEASE_BUFFERS);
		}
	n_conns = (int)n;
	conns = calloc((size_t)n, sizeof(*conns));
	for (int i = 0; i < n_conns; i++) {
		conns[i].fd = -1;
		conns[i].target = (uint16_t)(i % n_targets);
	}
	ep = epoll_create1(EPOLL_CLOEXEC);
	tfd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
	e = (struct epoll_event){.events = EPOLLIN, .data.u64 = (uint64_t)(int64_t)TAG_TIMER};
	epoll_ctl(ep, EPOLL_CTL_ADD, tfd, &e);
	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	sigprocmask(SIG_BLOCK, &set, NULL);
	sfd = signalfd(-1, &set, SFD_NONBLOCK | SFD_CLOEXEC);
	e = (struct epoll_event){.events = EPOLLIN, .data.u64 = (uint64_t)(int64_t)TAG_SIG};
	epoll_ctl(ep, EPOLL_CTL_ADD, sfd, &e);

	/* The beat grid: conn k beats at t0 + k*interval/N + m*interval. */
	start = mono_us();
	t0 = start + interval_us;
	arm_at(tfd, t0 + (uint64_t)slack_us);

	while (running) {
		int k;
		/* Keep up to `inflight` handshakes going. */
		while (next_start < n_conns && pending < inflight) {
			if (start_conn(next_start++) == 0)
				pending++;
		}
		if (lazy_us) {
			static uint64_t last_poll;
			uint64_t now = mono_us();
			if (last_poll && now - last_poll < lazy_us)
				usleep((useconds_t)(lazy_us - (now - last_poll)));
			k = epoll_wait(ep, evs, 512, duration ? 200 : -1);
			last_poll = mono_us();
		} else {
			k = epoll_wait(ep, evs, 512, duration ? 200 : -1);
		}
		if (duration && mono_us() - start > (uint64_t)duration * 1000000u)
			break;
		for (int j = 0; j < k; j++) {
			int64_t tag = (int64_t)evs[j].data.u64;
			if (tag == TAG_SIG) {
				running = 0;
				continue;
			}
			if (tag == TAG_TIMER) {
				uint64_t exp, now = mono_us(), due;
				if (read(tfd, &exp, sizeof(exp)) < 0 && errno != EAGAIN)
					perror("timerfd");
				for (;;) {
					due = t0 + cycle * (uint64_t)interval_us +
					      (uint64_t)cursor * (uint64_t)interval_us /
					          (uint64_t)n_conns;
					if (due > now)
						break;
					struct conn *c = &conns[cursor];
					if (c->state == C_OPEN && writable_dance)
						set_events(c, (int)cursor, EPOLLIN | EPOLLOUT,
						           EPOLL_CTL_MOD);
					else if (c->state == C_OPEN)
						send_beat(c);
					if (++cursor == n_conns) {
						cursor = 0;
						cycle++;
					}
				}
				arm_at(tfd, due + (uint64_t)slack_us);
				continue;
			}
			struct conn *c = &conns[tag];
			int was = c->state;
			switch (c->state) {
			case C_CONNECTING:
				on_connected((int)tag);
				break;
			case C_TLS:
				tls_step((int)tag);
				break;
			case C_UPGRADE:
				read_upgrade((int)tag);
				break;
			case C_OPEN:
				if ((evs[j].events & EPOLLOUT) && writable_dance) {
					set_events(c, (int)tag, EPOLLIN, EPOLL_CTL_MOD);
					send_beat(c);
					if (c->state != C_OPEN)
						break;
				}
				if (evs[j].events & (EPOLLIN | EPOLLHUP | EPOLLERR))
					read_open((int)tag);
				break;
			default:
				break;
			}
			if (was != C_OPEN && (c->state == C_OPEN || c->state == C_DEAD))
				pending--;
		}
	}
	fprintf(stderr, "floor: n=%d opened=%llu failed=%llu sent=%llu answered=%llu\n", n_conns,
	        opened, failed, sent, answered);
	return 0;
}
