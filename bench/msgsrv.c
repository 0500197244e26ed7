/*
 * bench/msgsrv: the message-path load server (bench/msgpath.py). Raw epoll, a minimal
 * WebSocket server of its own (no libwebsockets), one thread.
 *
 * Every upgraded connection receives --rate text messages a second: realistic market-data JSON
 * of 200-400 bytes, numbered per connection and stamped with the send time,
 *
 *   {"ch":"trades","inst":"BTC-USDT","sid":17,"seq":4711,"ts":1796300000123456,"data":[{...}]}
 *
 * sid = the server's number of the connection (1, 2, ... in accept order), seq = 1, 2, ... per
 * connection, ts = CLOCK_REALTIME µs just before the send() of this message. The first message
 * comes at a random point of the first period, then on a fixed grid (period = 1 s / rate); a
 * 1 ms timerfd drives a wheel of 1 ms slots. A connection whose unsent data (kept in user space
 * when the socket is full) exceeds --backlog-max gets its messages later instead: they are
 * counted as deferred, never dropped, so numbering has no gaps whatever the client does.
 *
 * Options of the dialect variants:
 *   --gzip            each message is a binary frame holding its gzip (decompress = "gzip")
 *   --level L         zlib level for --gzip and --pmd (default 1: at level 6 deflate alone
 *                     cost the server 20-25 µs a message, more than a core at 100k/s)
 *   --pmd             accept permessage-deflate when offered (server_max_window_bits=10, the
 *                     window wsbeat asks for; context takeover; memLevel --pmd-memlevel)
 *   --app-ping-ms MS  also send {"ping":<ms>} to every connection this often (a reply rule's
 *                     trigger); its answer is read and ignored
 * From the client it reads frames (masked, any size): PING is answered with PONG, the text
 * "ping" with {"op":"pong","ts":<ms>} (compressed ones are inflated first), CLOSE with CLOSE.
 *
 * Live counters: --stats FILE, little-endian uint64s, mmap'd:
 *   0 magic 0x57534d5347535256  1 open  2 upgraded_total  3 closed_total  4 msgs_sent
 *   5 wire_bytes  6 deferred  7 unsent_bytes  8 pid  9 mono_us_last_upgrade  10 paused
 *   11 dumps  12 pongs_sent  13 app_pings_sent  14 client_frames  15 payload_bytes
 *   16 started  17 connections with permessage-deflate (32 slots, 256 bytes)
 * --hold: connections are accepted and upgraded but sent nothing until SIGUSR1 (so a slow
 * client's setup is not slowed by the flood of the connections it already has).
 * SIGUSR2: stop sending data messages (pause) and write --dump FILE: one line "sid seq" per
 * connection ever upgraded (seq = the last number sent), then set paused and dumps.
 * SIGTERM/SIGINT: exit.
 *
 * usage: msgsrv --listen ADDR:PORT... --stats FILE --dump FILE [--rate 100] [--gzip] [--pmd]
 *               [--level 1] [--pmd-memlevel 4] [--app-ping-ms 0] [--backlog-max 262144]
 *               [--seed 1] [--hold]
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/evp.h>
#include <openssl/sha.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>
#include <zlib.h>

#define MAX_FDS    65536
#define MAX_LISTEN 64
#define RING       8192 /* 1 ms slots: periods up to 8 s */
#define IN_MAX     (64 * 1024)

enum {
	ST_MAGIC,
	ST_OPEN,
	ST_UPG,
	ST_CLOSED,
	ST_MSGS,
	ST_WIRE,
	ST_DEFERRED,
	ST_UNSENT,
	ST_PID,
	ST_LAST_UPG,
	ST_PAUSED,
	ST_DUMPS,
	ST_PONGS,
	ST_APINGS,
	ST_CFRAMES,
	ST_PAYLOAD,
	ST_STARTED,
	ST_PMD,
	ST_N = 32
};
static volatile uint64_t *st;

enum { C_HTTP, C_WS, C_CLOSING };

struct conn {
	int fd;
	uint32_t sid;
	uint8_t state, pmd, in_ring, want_out;
	char *in;
	uint32_t in_len, in_cap;
	char *out;
	size_t out_off, out_len, out_cap;
	uint64_t seq;
	int64_t due_us, ping_due_us;
	struct conn *next, **pprev; /* in its wheel slot */
	z_stream *zs;               /* permessage-deflate, server to client */
	z_stream *zi;               /* permessage-deflate, client to server (made on first use) */
};

static struct conn *conns[MAX_FDS];
static int listen_fd[MAX_LISTEN], n_listen;
static int ep;
static struct conn *ring[RING];
static int64_t ring_ms; /* every slot up to this ms has been run */
static uint32_t next_sid = 1;
static uint64_t *sent_by_sid;
static size_t cap_sid;

static double rate = 100;
static int64_t period_us;
static int gzip_mode, pmd_ok, level = 1, pmd_memlevel = 4, paused, started = 1;
static int64_t app_ping_us;
static size_t backlog_max = 256 * 1024;
static const char *dump_path;
static z_stream gz;
static uint64_t rng = 88172645463325252ull;

static uint64_t xr(void)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return rng;
}

static int64_t mono_us(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static int64_t real_us(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

/* ---- the wheel ---- */

static void ring_del(struct conn *c)
{
	if (!c->in_ring)
		return;
	*c->pprev = c->next;
	if (c->next)
		c->next->pprev = c->pprev;
	c->in_ring = 0;
}

static void ring_add(struct conn *c, int64_t at_us)
{
	int64_t ms = at_us / 1000;
	struct conn **head;

	if (ms <= ring_ms)
		ms = ring_ms + 1; /* never into a slot already run */
	head = &ring[ms % RING];
	c->due_us = at_us;
	c->next = *head;
	if (c->next)
		c->next->pprev = &c->next;
	c->pprev = head;
	*head = c;
	c->in_ring = 1;
}

/* ---- output ---- */

static void conn_close(struct conn *c);

static void want_out(struct conn *c, int on)
{
	struct epoll_event e = {.events = EPOLLIN | (on ? EPOLLOUT : 0), .data.fd = c->fd};

	if (c->want_out == on)
		return;
	c->want_out = (uint8_t)on;
	epoll_ctl(ep, EPOLL_CTL_MOD, c->fd, &e);
}

static size_t pending(const struct conn *c)
{
	return c->out_len - c->out_off;
}

static int keep(struct conn *c, const char *p, size_t n)
{
	if (c->out_off && c->out_off == c->out_len)
		c->out_off = c->out_len = 0;
	if (c->out_cap - c->out_len < n) {
		if (c->out_off) {
			memmove(c->out, c->out + c->out_off, pending(c));
			c->out_len -= c->out_off;
			c->out_off = 0;
		}
		if (c->out_cap - c->out_len < n) {
			size_t cap = c->out_cap ? c->out_cap : 4096;
			while (cap - c->out_len < n)
				cap *= 2;
			char *b = realloc(c->out, cap);
			if (!b)
				return -1;
			c->out = b;
			c->out_cap = cap;
		}
	}
	memcpy(c->out + c->out_len, p, n);
	c->out_len += n;
	st[ST_UNSENT] += n;
	return 0;
}

/* Sends n bytes now, keeping what the socket does not take; -1 when the connection died. */
static int conn_send(struct conn *c, const char *p, size_t n)
{
	ssize_t w = 0;

	st[ST_WIRE] += n;
	if (!pending(c)) {
		w = send(c->fd, p, n, MSG_NOSIGNAL | MSG_DONTWAIT);
		if (w < 0) {
			if (errno != EAGAIN && errno != EWOULDBLOCK) {
				conn_close(c);
				return -1;
			}
			w = 0;
		}
		if ((size_t)w == n)
			return 0;
	}
	if (keep(c, p + w, n - (size_t)w) < 0) {
		conn_close(c);
		return -1;
	}
	want_out(c, 1);
	return 0;
}

static void on_writable(struct conn *c)
{
	while (pending(c)) {
		ssize_t w =
		    send(c->fd, c->out + c->out_off, pending(c), MSG_NOSIGNAL | MSG_DONTWAIT);
		if (w < 0) {
			if (errno == EAGAIN || errno == EWOULDBLOCK)
				return;
			conn_close(c);
			return;
		}
		c->out_off += (size_t)w;
		st[ST_UNSENT] -= (uint64_t)w;
	}
	c->out_off = c->out_len = 0;
	if (c->out_cap > 1 << 20) {
		free(c->out);
		c->out = NULL;
		c->out_cap = 0;
	}
	want_out(c, 0);
	if (c->state == C_CLOSING)
		conn_close(c);
}

/* A server frame (unmasked) around payload p: header into h, returns the header length. */
static size_t frame_hdr(unsigned char *h, unsigned first, size_t n)
{
	h[0] = (unsigned char)first;
	if (n < 126) {
		h[1] = (unsigned char)n;
		return 2;
	}
	if (n < 65536) {
		h[1] = 126;
		h[2] = (unsigned char)(n >> 8);
		h[3] = (unsigned char)n;
		return 4;
	}
	h[1] = 127;
	for (int i = 0; i < 8; i++)
		h[2 + i] = (unsigned char)((uint64_t)n >> (56 - 8 * i));
	return 10;
}

/* Sends a text message, compressed as the connection or the mode wants. */
static int send_msg(struct conn *c, const char *p, size_t n)
{
	static unsigned char buf[16 + 65536];
	unsigned char *body = buf + 16;
	size_t blen, hl;
	unsigned first = 0x81;

	if (c->pmd) {
		c->zs->next_in = (unsigned char *)p;
		c->zs->avail_in = (unsigned)n;
		c->zs->next_out = body;
		c->zs->avail_out = 65536;
		if (deflate(c->zs, Z_SYNC_FLUSH) != Z_OK || c->zs->avail_in)
			return -1;
		blen = 65536 - c->zs->avail_out;
		if (blen >= 4)
			blen -= 4; /* RFC 7692: without the 00 00 ff ff tail */
		first = 0xc1;      /* FIN, RSV1, text */
	} else if (gzip_mode) {
		deflateReset(&gz);
		gz.next_in = (unsigned char *)p;
		gz.avail_in = (unsigned)n;
		gz.next_out = body;
		gz.avail_out = 65536;
		if (deflate(&gz, Z_FINISH) != Z_STREAM_END)
			return -1;
		blen = 65536 - gz.avail_out;
		first = 0x82; /* binary */
	} else {
		memcpy(body, p, n);
		blen = n;
	}
	unsigned char h[10];
	hl = frame_hdr(h, first, blen);
	memcpy(body - hl, h, hl);
	return conn_send(c, (char *)body - hl, blen + hl);
}

/* ---- messages ---- */

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

static char *put_s(char *o, const char *s)
{
	size_t n = strlen(s);
	memcpy(o, s, n);
	return o + n;
}

/* A decimal string with `frac` digits after the point, from an integer. */
static char *put_dec(char *o, uint64_t v, int frac)
{
	char t[24];
	int i = 0;

	do {
		t[i++] = (char)('0' + v % 10);
		v /= 10;
		if (i == frac)
			t[i++] = '.';
	} while (v || i <= frac);
	if (t[i - 1] == '.')
		t[i++] = '0';
	while (i)
		*o++ = t[--i];
	return o;
}

static const char *const insts[] = {"BTC-USDT",  "ETH-USDT",      "SOL-USDT-SWAP",
                                    "DOGE-USDT", "XRP-USDT-SWAP", "BTC-USD-261225"};
static uint64_t trade_id = 242720720;

/* One message of k trades. */
static size_t build_k(char *o0, struct conn *c, int64_t ts, int k, const char *inst)
{
	char *o = o0;
	uint64_t id = trade_id;

	o = put_s(o, "{\"ch\":\"trades\",\"action\":\"update\",\"inst\":\"");
	o = put_s(o, inst);
	o = put_s(o, "\",\"sid\":");
	o = put_u(o, c->sid);
	o = put_s(o, ",\"seq\":");
	o = put_u(o, c->seq);
	o = put_s(o, ",\"ts\":");
	o = put_u(o, (uint64_t)ts);
	o = put_s(o, ",\"data\":[");
	for (int i = 0; i < k; i++) {
		uint64_t r = xr();
		if (i)
			*o++ = ',';
		o = put_s(o, "{\"tradeId\":\"");
		o = put_u(o, id++);
		o = put_s(o, "\",\"px\":\"");
		o = put_dec(o, 9600000 + r % 100000, 1);
		o = put_s(o, "\",\"sz\":\"");
		o = put_dec(o, 1 + (r >> 20) % 5000000, 8);
		o = put_s(o, (r >> 50) & 1 ? "\",\"side\":\"buy\"" : "\",\"side\":\"sell\"");
		o = put_s(o, ",\"ts\":\"");
		o = put_u(o, (uint64_t)(ts / 1000));
		o = put_s(o, "\"}");
	}
	o = put_s(o, "],\"count\":");
	o = put_u(o, (uint64_t)k);
	*o++ = '}';
	return (size_t)(o - o0);
}

/* One message: 1-3 trades, 200-400 bytes (one trade fewer when three would exceed 400). */
static size_t build(char *o0, struct conn *c, int64_t ts)
{
	int k = 1 + (int)(xr() % 3);
	const char *inst = insts[xr() % (sizeof(insts) / sizeof(insts[0]))];
	size_t n = build_k(o0, c, ts, k, inst);

	if (n > 400)
		n = build_k(o0, c, ts, --k, inst);
	trade_id += (uint64_t)k;
	return n;
}

static void send_data(struct conn *c)
{
	char m[1024];
	size_t n;
	int fd = c->fd;

	c->seq++;
	if (c->sid < cap_sid)
		sent_by_sid[c->sid] = c->seq;
	n = build(m, c, real_us());
	st[ST_MSGS]++;
	st[ST_PAYLOAD] += n;
	if (send_msg(c, m, n) < 0 && conns[fd] == c)
		conn_close(c);
}

static void send_app_ping(struct conn *c, int64_t now_real)
{
	char m[64];
	int n = snprintf(m, sizeof(m), "{\"ping\":%lld}", (long long)(now_real / 1000));
	int fd = c->fd;

	st[ST_APINGS]++;
	if (send_msg(c, m, (size_t)n) < 0 && conns[fd] == c)
		conn_close(c);
}

/* Runs every slot up to now: each due connection sends its message and is re-armed. */
static void tick(void)
{
	int64_t now = mono_us(), now_ms = now / 1000;

	while (ring_ms < now_ms) {
		struct conn *c, *list;
		ring_ms++;
		list = ring[ring_ms % RING];
		ring[ring_ms % RING] = NULL;
		if (list)
			list->pprev = &list;
		while ((c = list)) {
			int fd = c->fd;
			list = c->next;
			if (list)
				list->pprev = &list;
			c->in_ring = 0;
			if (c->due_us / 1000 > ring_ms) { /* a later lap of the ring */
				ring_add(c, c->due_us);
				continue;
			}
			if (paused || c->state != C_WS)
				continue;
			if (!started) { /* --hold: on the grid, nothing sent until SIGUSR1 */
				ring_add(c, c->due_us + period_us);
				continue;
			}
			if (pending(c) > backlog_max) {
				st[ST_DEFERRED]++;
				ring_add(c, c->due_us + 1000); /* try again next ms, same number */
				continue;
			}
			send_data(c);
			if (conns[fd] != c)
				continue; /* it died */
			if (app_ping_us && c->ping_due_us <= now) {
				c->ping_due_us += app_ping_us;
				send_app_ping(c, real_us());
				if (conns[fd] != c)
					continue;
			}
			int64_t next = c->due_us + period_us;
			if (next < now - 100000)
				next = now; /* fell far behind (deferred): no burst to catch up */
			ring_add(c, next);
		}
	}
}

/* ---- input ---- */

static void conn_close(struct conn *c)
{
	if (!c || conns[c->fd] != c)
		return;
	ring_del(c);
	epoll_ctl(ep, EPOLL_CTL_DEL, c->fd, NULL);
	close(c->fd);
	conns[c->fd] = NULL;
	st[ST_UNSENT] -= pending(c);
	if (c->state != C_HTTP) {
		st[ST_OPEN]--;
		st[ST_CLOSED]++;
	}
	if (c->zi) {
		inflateEnd(c->zi);
		free(c->zi);
		c->zi = NULL;
	}
	if (c->zs) {
		deflateEnd(c->zs);
		free(c->zs);
	}
	free(c->in);
	free(c->out);
	free(c);
}

static const char *header(const char *req, const char *name, size_t *len)
{
	size_t nl = strlen(name);
	for (const char *p = strstr(req, "\r\n"); p; p = strstr(p + 2, "\r\n")) {
		const char *l = p + 2;
		if (!strncasecmp(l, name, nl) && l[nl] == ':') {
			const char *v = l + nl + 1, *e;
			while (*v == ' ' || *v == '\t')
				v++;
			e = strstr(v, "\r\n");
			*len = e ? (size_t)(e - v) : strlen(v);
			return v;
		}
	}
	return NULL;
}

static int upgrade(struct conn *c, size_t req_len)
{
	static const char guid[] = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";
	char key[128], resp[512], acc[64];
	unsigned char sha[SHA_DIGEST_LENGTH];
	size_t kl = 0, xl = 0;
	const char *k, *x;
	int n;

	c->in[req_len - 1] = '\0'; /* the last \n: the request is a string now */
	k = header(c->in, "Sec-WebSocket-Key", &kl);
	if (!k || kl > 64)
		return -1;
	memcpy(key, k, kl);
	memcpy(key + kl, guid, sizeof(guid) - 1);
	SHA1((unsigned char *)key, kl + sizeof(guid) - 1, sha);
	EVP_EncodeBlock((unsigned char *)acc, sha, SHA_DIGEST_LENGTH);
	x = header(c->in, "Sec-WebSocket-Extensions", &xl);
	if (pmd_ok && x && memmem(x, xl, "permessage-deflate", 18)) {
		c->zs = calloc(1, sizeof(*c->zs));
		if (!c->zs || deflateInit2(c->zs, level, Z_DEFLATED, -10, pmd_memlevel,
		                           Z_DEFAULT_STRATEGY) != Z_OK)
			return -1;
		c->pmd = 1;
		st[ST_PMD]++;
	}
	n = snprintf(resp, sizeof(resp),
	             "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
	             "Connection: Upgrade\r\nSec-WebSocket-Accept: %s\r\n%s\r\n",
	             acc,
	             c->pmd ? "Sec-WebSocket-Extensions: permessage-deflate; "
	                      "server_max_window_bits=10\r\n"
	                    : "");
	c->state = C_WS;
	st[ST_OPEN]++;
	st[ST_UPG]++;
	st[ST_LAST_UPG] = (uint64_t)mono_us();
	c->sid = next_sid++;
	if (c->sid >= cap_sid) {
		size_t nc = cap_sid ? cap_sid * 2 : 8192;
		uint64_t *v = realloc(sent_by_sid, nc * sizeof(*v));
		if (!v)
			return -1;
		memset(v + cap_sid, 0, (nc - cap_sid) * sizeof(*v));
		sent_by_sid = v;
		cap_sid = nc;
	}
	if (conn_send(c, resp, (size_t)n) < 0)
		return -2;
	int64_t now = mono_us();
	c->ping_due_us = now + (app_ping_us ? (int64_t)(xr() % (uint64_t)app_ping_us) : 0);
	ring_add(c, now + (int64_t)(xr() % (uint64_t)period_us));
	return 0;
}

/* Handles one client frame; payload already unmasked. */
static int client_frame(struct conn *c, unsigned b0, unsigned char *p, size_t n)
{
	unsigned op = b0 & 0x0f;
	unsigned char h[10];
	size_t hl;

	st[ST_CFRAMES]++;
	if (op == 0x9) { /* PING -> PONG, same payload */
		char f[140];
		if (n > 125)
			return 0;
		hl = frame_hdr(h, 0x8a, n);
		memcpy(f, h, hl);
		memcpy(f + hl, p, n);
		return conn_send(c, f, hl + n);
	}
	if (op == 0x8) {
		char f[4] = {(char)0x88, 2, (char)0x03, (char)0xe8};
		if (conn_send(c, f, 4) < 0)
			return -1;
		c->state = C_CLOSING;
		ring_del(c);
		if (!pending(c)) {
			shutdown(c->fd, SHUT_WR);
		}
		return 0;
	}
	/* A compressed client message (RFC 7692 7.2.2: the client keeps its context, so one
	 * inflate stream per connection); only short ones matter here (the heartbeat). */
	static unsigned char plain[128];
	if (op == 0x1 && (b0 & 0x40) && c->pmd && n <= 120) {
		unsigned char in[128];
		if (!c->zi) {
			c->zi = calloc(1, sizeof(*c->zi));
			if (!c->zi || inflateInit2(c->zi, -15) != Z_OK)
				return -1;
		}
		memcpy(in, p, n);
		memcpy(in + n, "\x00\x00\xff\xff", 4);
		c->zi->next_in = in;
		c->zi->avail_in = (unsigned)n + 4;
		c->zi->next_out = plain;
		c->zi->avail_out = sizeof(plain);
		if (inflate(c->zi, Z_SYNC_FLUSH) != Z_OK)
			return -1;
		p = plain;
		n = sizeof(plain) - c->zi->avail_out;
		b0 &= ~0x40u;
	}
	/* Paused (draining at the end of a run): heartbeats go unanswered, so that the client's
	 * capture stops growing once the last data message is in. */
	if (op == 0x1 && !(b0 & 0x40) && n == 4 && !memcmp(p, "ping", 4) && !paused) {
		char m[64];
		int mn = snprintf(m, sizeof(m), "{\"op\":\"pong\",\"ts\":%lld}",
		                  (long long)(real_us() / 1000));
		st[ST_PONGS]++;
		return send_msg(c, m, (size_t)mn);
	}
	return 0; /* anything else (replies, compressed frames) is read and ignored */
}

static int parse_frames(struct conn *c)
{
	size_t off = 0;

	while (c->in_len - off >= 2) {
		unsigned char *h = (unsigned char *)c->in + off;
		size_t avail = c->in_len - off, hl = 2, n = h[1] & 0x7f;
		int masked = h[1] & 0x80;

		if (n == 126) {
			if (avail < 4)
				break;
			n = (size_t)h[2] << 8 | h[3];
			hl = 4;
		} else if (n == 127) {
			if (avail < 10)
				break;
			n = 0;
			for (int i = 0; i < 8; i++)
				n = n << 8 | h[2 + i];
			hl = 10;
		}
		if (masked)
			hl += 4;
		if (n > IN_MAX - 16)
			return -1;
		if (avail < hl + n)
			break;
		unsigned char *p = h + hl;
		if (masked)
			for (size_t i = 0; i < n; i++)
				p[i] ^= h[hl - 4 + (i & 3)];
		if (client_frame(c, h[0], p, n) < 0)
			return -1;
		off += hl + n;
	}
	if (off) {
		memmove(c->in, c->in + off, c->in_len - off);
		c->in_len -= (uint32_t)off;
	}
	return 0;
}

static void on_readable(struct conn *c)
{
	int fd = c->fd;

	for (;;) {
		if (c->in_cap - c->in_len < 4096) {
			uint32_t cap = c->in_cap ? c->in_cap * 2 : 8192;
			char *b;
			if (cap > IN_MAX) {
				conn_close(c);
				return;
			}
			b = realloc(c->in, cap);
			if (!b) {
				conn_close(c);
				return;
			}
			c->in = b;
			c->in_cap = cap;
		}
		ssize_t r = recv(fd, c->in + c->in_len, c->in_cap - c->in_len - 1, MSG_DONTWAIT);
		if (r == 0 ||
		    (r < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)) {
			conn_close(c);
			return;
		}
		if (r < 0)
			return;
		c->in_len += (uint32_t)r;
		if (c->state == C_HTTP) {
			c->in[c->in_len] = '\0';
			char *e = strstr(c->in, "\r\n\r\n");
			if (!e)
				continue;
			size_t req = (size_t)(e + 4 - c->in);
			int rc = upgrade(c, req);
			if (rc == -2)
				return;
			if (rc < 0) {
				conn_close(c);
				return;
			}
			memmove(c->in, c->in + req, c->in_len - req);
			c->in_len -= (uint32_t)req;
		}
		if (c->state != C_HTTP && parse_frames(c) < 0) {
			if (conns[fd] == c) /* else a send already closed (and freed) it */
				conn_close(c);
			return;
		}
		if (conns[fd] != c)
			return;
	}
}

static void on_accept(int lfd)
{
	for (;;) {
		int fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC), one = 1;
		struct conn *c;
		if (fd < 0)
			return;
		if (fd >= MAX_FDS || !(c = calloc(1, sizeof(*c)))) {
			close(fd);
			continue;
		}
		setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
		c->fd = fd;
		conns[fd] = c;
		struct epoll_event e = {.events = EPOLLIN, .data.fd = fd};
		epoll_ctl(ep, EPOLL_CTL_ADD, fd, &e);
	}
}

static void dump(void)
{
	char tmp[4096];
	FILE *f;

	paused = 1;
	snprintf(tmp, sizeof(tmp), "%s.tmp", dump_path);
	f = fopen(tmp, "w");
	if (f) {
		for (uint32_t s = 1; s < next_sid && s < cap_sid; s++)
			fprintf(f, "%u %llu\n", s, (unsigned long long)sent_by_sid[s]);
		fclose(f);
		rename(tmp, dump_path);
	}
	st[ST_PAUSED] = 1;
	st[ST_DUMPS]++;
}

static int listen_on(const char *spec)
{
	char host[64];
	const char *colon = strrchr(spec, ':');
	struct sockaddr_in sa = {.sin_family = AF_INET};
	int fd, one = 1;

	if (!colon || (size_t)(colon - spec) >= sizeof(host))
		return -1;
	memcpy(host, spec, (size_t)(colon - spec));
	host[colon - spec] = '\0';
	sa.sin_port = htons((uint16_t)atoi(colon + 1));
	if (inet_pton(AF_INET, host, &sa.sin_addr) != 1)
		return -1;
	fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 || listen(fd, 4096) < 0) {
		perror(spec);
		return -1;
	}
	return fd;
}

int main(int argc, char **argv)
{
	const char *stats_path = NULL;
	struct rlimit rl;
	sigset_t ss;
	int sfd, tfd, fd;

	for (int i = 1; i < argc; i++) {
		const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
		if (!strcmp(a, "--listen") && v && n_listen < MAX_LISTEN) {
			if ((listen_fd[n_listen++] = listen_on(v)) < 0)
				return 1;
			i++;
		} else if (!strcmp(a, "--stats") && v)
			stats_path = argv[++i];
		else if (!strcmp(a, "--dump") && v)
			dump_path = argv[++i];
		else if (!strcmp(a, "--rate") && v)
			rate = atof(argv[++i]);
		else if (!strcmp(a, "--level") && v)
			level = atoi(argv[++i]);
		else if (!strcmp(a, "--pmd-memlevel") && v)
			pmd_memlevel = atoi(argv[++i]);
		else if (!strcmp(a, "--app-ping-ms") && v)
			app_ping_us = (int64_t)atoi(argv[++i]) * 1000;
		else if (!strcmp(a, "--backlog-max") && v)
			backlog_max = (size_t)atol(argv[++i]);
		else if (!strcmp(a, "--seed") && v)
			rng = 88172645463325252ull ^ (uint64_t)atol(argv[++i]);
		else if (!strcmp(a, "--gzip"))
			gzip_mode = 1;
		else if (!strcmp(a, "--pmd"))
			pmd_ok = 1;
		else if (!strcmp(a, "--hold"))
			started = 0;
		else {
			fprintf(stderr, "msgsrv: bad argument %s\n", a);
			return 64;
		}
	}
	if (!n_listen || !stats_path || !dump_path || rate <= 0 || rate > 1000) {
		fprintf(stderr, "usage: msgsrv --listen ADDR:PORT... --stats FILE --dump FILE "
		                "[--rate R] [--gzip] [--pmd] [--app-ping-ms MS]\n");
		return 64;
	}
	period_us = (int64_t)(1e6 / rate);
	if (period_us >= (int64_t)RING * 1000 || (app_ping_us && app_ping_us < period_us)) {
		fprintf(stderr, "msgsrv: rate too low for the wheel, or app ping faster than it\n");
		return 64;
	}
	/* memLevel 2: deflateReset() clears a hash table of 1 << (memLevel + 7) entries per
	 * message (memLevel 8: 64 KiB, most of the server's cost); 512 entries are plenty for a
	 * 400-byte message. The inflating client does not see the difference. */
	if (gzip_mode &&
	    deflateInit2(&gz, level, Z_DEFLATED, 15 + 16, 2, Z_DEFAULT_STRATEGY) != Z_OK)
		return 1;
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0) {
		rl.rlim_cur = rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
	}
	fd = open(stats_path, O_RDWR | O_CREAT | O_TRUNC, 0644);
	if (fd < 0 || ftruncate(fd, ST_N * 8) < 0)
		return 1;
	st = mmap(NULL, ST_N * 8, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (st == MAP_FAILED)
		return 1;
	close(fd);
	st[ST_PID] = (uint64_t)getpid();
	st[ST_STARTED] = (uint64_t)started;

	sigemptyset(&ss);
	sigaddset(&ss, SIGTERM);
	sigaddset(&ss, SIGINT);
	sigaddset(&ss, SIGUSR2);
	sigaddset(&ss, SIGUSR1);
	sigprocmask(SIG_BLOCK, &ss, NULL);
	signal(SIGPIPE, SIG_IGN);
	sfd = signalfd(-1, &ss, SFD_NONBLOCK | SFD_CLOEXEC);
	tfd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
	struct itimerspec its = {{0, 1000000}, {0, 1000000}};
	timerfd_settime(tfd, 0, &its, NULL);
	ring_ms = mono_us() / 1000;

	ep = epoll_create1(EPOLL_CLOEXEC);
	struct epoll_event e = {.events = EPOLLIN};
	e.data.fd = sfd;
	epoll_ctl(ep, EPOLL_CTL_ADD, sfd, &e);
	e.data.fd = tfd;
	epoll_ctl(ep, EPOLL_CTL_ADD, tfd, &e);
	for (int i = 0; i < n_listen; i++) {
		e.data.fd = listen_fd[i];
		epoll_ctl(ep, EPOLL_CTL_ADD, listen_fd[i], &e);
	}
	st[ST_MAGIC] = 0x57534d5347535256ull; /* up */

	for (;;) {
		struct epoll_event ev[256];
		int n = epoll_wait(ep, ev, 256, -1);
		for (int i = 0; i < n; i++) {
			int f = ev[i].data.fd;
			if (f == tfd) {
				uint64_t x;
				if (read(tfd, &x, sizeof(x)) > 0)
					tick();
			} else if (f == sfd) {
				struct signalfd_siginfo si;
				while (read(sfd, &si, sizeof(si)) == sizeof(si)) {
					if (si.ssi_signo == SIGUSR2)
						dump();
					else if (si.ssi_signo == SIGUSR1)
						st[ST_STARTED] = (uint64_t)(started = 1);
					else
						return 0;
				}
			} else if (conns[f]) {
				struct conn *c = conns[f];
				if (ev[i].events & EPOLLOUT)
					on_writable(c);
				if (conns[f] == c &&
				    (ev[i].events & (EPOLLIN | EPOLLERR | EPOLLHUP)))
					on_readable(c);
			} else {
				for (int l = 0; l < n_listen; l++)
					if (listen_fd[l] == f)
						on_accept(f);
			}
		}
	}
}
