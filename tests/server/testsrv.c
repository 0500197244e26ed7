/*
 * wsbeat-testsrv: a WebSocket (RFC 6455) test server on raw sockets and epoll, single
 * threaded, so a test controls every byte. Every event is one JSON line; see README.md.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include <openssl/evp.h>

#define MAX_LISTEN    16
#define MAX_REPLY     64
#define MAX_HDRS      64
#define MAX_HEADER    16384
#define OUT_CAP       (512u << 20)
#define CLOSE_WAIT_MS 3000
#define WS_GUID       "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"

enum { OP_CONT = 0, OP_TEXT = 1, OP_BIN = 2, OP_CLOSE = 8, OP_PING = 9, OP_PONG = 10 };

/* --hostile MODE: the server misbehaves on every connection (README.md lists the modes). */
enum hostile {
	H_NONE,
	H_HANDSHAKE_GARBAGE, /* non-HTTP bytes instead of the 101 */
	H_BAD_ACCEPT,        /* 101 with a wrong Sec-WebSocket-Accept */
	H_RANDOM,            /* 101, then random bytes (1 KiB at once and every 100 ms) */
	H_HUGE_FRAME,        /* 101, then a frame header claiming 2^62 bytes and endless filler */
	H_OVERSIZED,         /* 101, then one text frame of --hostile-size bytes */
	H_OPCODE3,           /* 101, then a frame with the reserved data opcode 0x3 */
	H_OPCODE11,          /* 101, then a frame with the reserved control opcode 0xB */
	H_BAD_UTF8,          /* 101, then a text frame that is not UTF-8 */
	H_MASKED,            /* 101, then a masked text frame (servers must not mask) */
	H_CLOSE_CODE,        /* 101, then CLOSE with code --hostile close-N */
	H_NO_HANDSHAKE,      /* same as --no-handshake */
	H_TRICKLE,        /* everything we send (the 101, then frames) one byte per --trickle-ms */
	H_TRICKLE_FRAMES, /* the 101 at once, then every frame one byte per --trickle-ms */
	H_NO_READ,        /* 101, then never read again (small receive buffer) */
};

static const struct {
	const char *name;
	enum hostile mode;
} hostile_modes[] = {
    {"handshake-garbage", H_HANDSHAKE_GARBAGE},
    {"bad-accept", H_BAD_ACCEPT},
    {"random", H_RANDOM},
    {"huge-frame", H_HUGE_FRAME},
    {"oversized", H_OVERSIZED},
    {"opcode-3", H_OPCODE3},
    {"opcode-11", H_OPCODE11},
    {"bad-utf8", H_BAD_UTF8},
    {"masked", H_MASKED},
    {"close-N", H_CLOSE_CODE},
    {"no-handshake", H_NO_HANDSHAKE},
    {"trickle", H_TRICKLE},
    {"trickle-frames", H_TRICKLE_FRAMES},
    {"no-read", H_NO_READ},
};

/* ---- configuration ---- */

struct reply {
	const char *in, *out;
};

static struct {
	const char *listen[MAX_LISTEN];
	int nlisten;
	const char *events;
	bool quiet_frames, no_pong, echo, no_handshake;
	long pong_delay_ms, close_after_ms, send_every_ms, retry_after;
	const char *send_text, *subprotocol;
	struct reply replies[MAX_REPLY];
	int nreplies, status;
	uint64_t max_message;
	enum hostile hostile;
	const char *hostile_name;
	int hostile_close_code;
	uint64_t hostile_size;
	long trickle_ms;
} cfg = {
    .retry_after = -1, .max_message = 256u << 20, .hostile_size = 2u << 20, .trickle_ms = 1000};

static void die(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));

static void die(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	fputs("wsbeat-testsrv: ", stderr);
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
	va_end(ap);
	exit(2);
}

/* ---- byte buffers: live bytes are p[off..len) ---- */

struct buf {
	uint8_t *p;
	size_t off, len, cap;
};

static uint8_t empty_bytes[1];

static size_t buf_avail(const struct buf *b)
{
	return b->len - b->off;
}

static uint8_t *buf_data(const struct buf *b)
{
	return b->p ? b->p + b->off : empty_bytes;
}

static void buf_reserve(struct buf *b, size_t extra)
{
	if (b->off > 0 && b->len + extra > b->cap) {
		memmove(b->p, b->p + b->off, b->len - b->off);
		b->len -= b->off;
		b->off = 0;
	}
	if (b->len + extra <= b->cap)
		return;
	size_t cap = b->cap ? b->cap : 256;
	while (cap < b->len + extra)
		cap *= 2;
	uint8_t *p = realloc(b->p, cap);
	if (!p)
		die("out of memory");
	b->p = p;
	b->cap = cap;
}

static void buf_add(struct buf *b, const void *d, size_t n)
{
	if (n == 0)
		return;
	buf_reserve(b, n);
	memcpy(b->p + b->len, d, n);
	b->len += n;
}

/* Only moves the offset: pointers into the buffer stay valid until the next buf_add. */
static void buf_consume(struct buf *b, size_t n)
{
	b->off += n;
	if (b->off == b->len)
		b->off = b->len = 0;
}

static void buf_free(struct buf *b)
{
	free(b->p);
	memset(b, 0, sizeof *b);
}

/* Gives memory back once a buffer is empty, so idle connections stay small. */
static void buf_trim(struct buf *b)
{
	if (buf_avail(b) == 0 && b->cap > 4096)
		buf_free(b);
}

/* ---- event log: one JSON object per line, flushed at once ---- */

static FILE *evlog;
static struct buf lb;

static void lb_str(const char *s)
{
	buf_add(&lb, s, strlen(s));
}

static void lb_fmt(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static void lb_fmt(const char *fmt, ...)
{
	char tmp[256];
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(tmp, sizeof tmp, fmt, ap);
	va_end(ap);
	if (n > 0)
		buf_add(&lb, tmp, (size_t)n < sizeof tmp ? (size_t)n : sizeof tmp - 1);
}

/* Length of the valid UTF-8 sequence at s, or 0 if the bytes there are not one. */
static size_t utf8_len(const uint8_t *s, size_t n)
{
	uint32_t cp, min;
	size_t len;
	if (s[0] < 0x80)
		return 1;
	if ((s[0] & 0xE0) == 0xC0) {
		len = 2, cp = s[0] & 0x1F, min = 0x80;
	} else if ((s[0] & 0xF0) == 0xE0) {
		len = 3, cp = s[0] & 0x0F, min = 0x800;
	} else if ((s[0] & 0xF8) == 0xF0) {
		len = 4, cp = s[0] & 0x07, min = 0x10000;
	} else {
		return 0;
	}
	if (n < len)
		return 0;
	for (size_t i = 1; i < len; i++) {
		if ((s[i] & 0xC0) != 0x80)
			return 0;
		cp = (cp << 6) | (s[i] & 0x3F);
	}
	if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
		return 0;
	return len;
}

/* Appends s as JSON string content (no quotes); bytes that are not UTF-8 become \u00XX. */
static void lb_esc(const void *data, size_t n)
{
	const uint8_t *s = data;
	size_t i = 0;
	while (i < n) {
		size_t l = utf8_len(s + i, n - i);
		if (l == 1 && (s[i] == '"' || s[i] == '\\')) {
			char e[2] = {'\\', (char)s[i]};
			buf_add(&lb, e, 2);
		} else if (l == 0 || (l == 1 && (s[i] < 0x20 || s[i] == 0x7F))) {
			lb_fmt("\\u%04x", s[i]);
			l = 1;
		} else {
			buf_add(&lb, s + i, l);
		}
		i += l;
	}
}

static void lb_key_str(const char *key, const void *s, size_t n)
{
	lb_fmt(",\"%s\":\"", key);
	lb_esc(s, n);
	lb_str("\"");
}

static void ev_begin(const char *ev, uint32_t conn)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	lb.off = lb.len = 0;
	lb_fmt("{\"t\":%lld.%06ld,\"ev\":\"%s\"", (long long)ts.tv_sec, ts.tv_nsec / 1000, ev);
	if (conn)
		lb_fmt(",\"conn\":%" PRIu32, conn);
}

static void ev_end(void)
{
	lb_str("}\n");
	fwrite(buf_data(&lb), 1, buf_avail(&lb), evlog);
	fflush(evlog);
	lb.off = lb.len = 0;
	buf_trim(&lb);
}

static void ev_simple(const char *ev, uint32_t conn)
{
	ev_begin(ev, conn);
	ev_end();
}

/* ---- connections ---- */

enum cstate {
	ST_HTTP,    /* waiting for the complete upgrade request */
	ST_NOHS,    /* --no-handshake: read and discard */
	ST_OPEN,    /* WebSocket open */
	ST_CLOSING, /* we sent CLOSE, waiting for the peer's CLOSE */
	ST_LINGER,  /* done: flush output, shut down writing, discard input until EOF */
};

struct conn {
	int fd;
	uint32_t id;
	enum cstate st;
	bool dead, close_sent, want_out, wr_shut;
	bool trickling; /* --hostile trickle*: conn_send queues into `trick` */
	bool no_read;   /* --hostile no-read: EPOLLIN is off */
	int msg_op;     /* opcode of the fragmented message being reassembled, 0 if none */
	uint64_t rng;   /* --hostile random */
	struct buf in, out, msg, trick;
	struct conn *prev, *next; /* all connections, for --send-every */
};

static int epfd, sigfd, spare_fd = -1;
static int listen_fds[MAX_LISTEN];
static struct conn **conns; /* indexed by fd */
static size_t conns_cap;
static struct conn *conn_list;
static uint32_t next_id;

static uint64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static struct conn *conn_lookup(int fd, uint32_t id)
{
	if (fd < 0 || (size_t)fd >= conns_cap || !conns[fd] || conns[fd]->id != id)
		return NULL;
	return conns[fd];
}

static void conn_epoll(struct conn *c, int op)
{
	struct epoll_event ev = {.events = (c->no_read ? EPOLLRDHUP : EPOLLIN) |
	                                   (c->want_out ? EPOLLOUT : 0)};
	ev.data.u64 = ((uint64_t)c->id << 32) | (uint32_t)c->fd;
	if (epoll_ctl(epfd, op, c->fd, &ev) < 0)
		c->dead = true;
}

static void conn_close(struct conn *c)
{
	epoll_ctl(epfd, EPOLL_CTL_DEL, c->fd, NULL);
	close(c->fd);
	ev_simple("disconnect", c->id);
	if (c->prev)
		c->prev->next = c->next;
	else
		conn_list = c->next;
	if (c->next)
		c->next->prev = c->prev;
	conns[c->fd] = NULL;
	buf_free(&c->in);
	buf_free(&c->out);
	buf_free(&c->msg);
	buf_free(&c->trick);
	free(c);
}

static void conn_reap(struct conn *c)
{
	if (c->dead)
		conn_close(c);
}

/* Sends a then b (either may be empty), queueing what the socket does not take now. */
static void conn_send2(struct conn *c, const void *a, size_t an, const void *b, size_t bn)
{
	size_t done = 0;
	if (c->dead)
		return;
	if (c->trickling) {
		buf_add(&c->trick, a, an);
		buf_add(&c->trick, b, bn);
		return;
	}
	if (buf_avail(&c->out) == 0) {
		struct iovec iov[2] = {{(void *)a, an}, {(void *)b, bn}};
		struct msghdr mh = {.msg_iov = iov, .msg_iovlen = 2};
		ssize_t r = sendmsg(c->fd, &mh, MSG_NOSIGNAL);
		if (r < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) {
			c->dead = true;
			return;
		}
		done = r > 0 ? (size_t)r : 0;
	}
	if (done < an) {
		buf_add(&c->out, (const uint8_t *)a + done, an - done);
		done = 0;
	} else {
		done -= an;
	}
	if (done < bn)
		buf_add(&c->out, (const uint8_t *)b + done, bn - done);
	if (buf_avail(&c->out) > OUT_CAP)
		c->dead = true;
	else if (buf_avail(&c->out) && !c->want_out) {
		c->want_out = true;
		conn_epoll(c, EPOLL_CTL_MOD);
	}
}

static void conn_send(struct conn *c, const void *d, size_t n)
{
	conn_send2(c, d, n, NULL, 0);
}

static void ws_send(struct conn *c, int op, const void *d, size_t n)
{
	uint8_t h[10];
	size_t hl = 2;
	if (c->close_sent)
		return;
	h[0] = (uint8_t)(0x80 | op);
	if (n < 126) {
		h[1] = (uint8_t)n;
	} else if (n <= 0xFFFF) {
		h[1] = 126, h[2] = (uint8_t)(n >> 8), h[3] = (uint8_t)n;
		hl = 4;
	} else {
		h[1] = 127;
		for (int i = 0; i < 8; i++)
			h[2 + i] = (uint8_t)((uint64_t)n >> (56 - 8 * i));
		hl = 10;
	}
	conn_send2(c, h, hl, d, n);
	if (op == OP_CLOSE)
		c->close_sent = true;
}

static void ws_send_close(struct conn *c, int code)
{
	uint8_t p[2] = {(uint8_t)(code >> 8), (uint8_t)code};
	ws_send(c, OP_CLOSE, p, code ? 2 : 0);
}

/* ---- timers: a binary min-heap; entries for closed connections are skipped on expiry ---- */

enum tkind { T_PONG, T_CLOSE_AFTER, T_CLOSE_WAIT, T_SEND_EVERY, T_HOSTILE, T_TRICKLE };

struct timer {
	uint64_t when, seq;
	int fd;
	uint32_t id;
	uint8_t kind, len;
	uint8_t data[125];
};

static struct timer *heap;
static size_t heap_n, heap_cap;
static uint64_t timer_seq;

static bool timer_less(const struct timer *a, const struct timer *b)
{
	return a->when < b->when || (a->when == b->when && a->seq < b->seq);
}

static void heap_swap(size_t i, size_t j)
{
	struct timer t = heap[i];
	heap[i] = heap[j];
	heap[j] = t;
}

static void timer_add_at(struct conn *c, enum tkind kind, uint64_t when, const void *d, size_t n)
{
	if (heap_n == heap_cap) {
		heap_cap = heap_cap ? heap_cap * 2 : 64;
		heap = realloc(heap, heap_cap * sizeof *heap);
		if (!heap)
			die("out of memory");
	}
	struct timer *t = &heap[heap_n];
	memset(t, 0, offsetof(struct timer, data));
	t->when = when;
	t->seq = timer_seq++;
	t->fd = c ? c->fd : -1;
	t->id = c ? c->id : 0;
	t->kind = (uint8_t)kind;
	t->len = (uint8_t)n;
	if (n)
		memcpy(t->data, d, n);
	for (size_t i = heap_n++; i > 0 && timer_less(&heap[i], &heap[(i - 1) / 2]);
	     i = (i - 1) / 2)
		heap_swap(i, (i - 1) / 2);
}

static struct timer timer_pop(void)
{
	struct timer top = heap[0];
	heap[0] = heap[--heap_n];
	for (size_t i = 0;;) {
		size_t l = 2 * i + 1, r = l + 1, m = i;
		if (l < heap_n && timer_less(&heap[l], &heap[m]))
			m = l;
		if (r < heap_n && timer_less(&heap[r], &heap[m]))
			m = r;
		if (m == i)
			break;
		heap_swap(i, m);
		i = m;
	}
	return top;
}

static void timer_add(struct conn *c, enum tkind kind, long ms, const void *d, size_t n)
{
	timer_add_at(c, kind, now_ns() + (uint64_t)ms * 1000000u, d, n);
}

/* epoll_wait timeout in ms, rounded up so an early wake-up never spins. */
static int timer_timeout(void)
{
	if (heap_n == 0)
		return -1;
	uint64_t now = now_ns();
	if (heap[0].when <= now)
		return 0;
	uint64_t ms = (heap[0].when - now + 999999u) / 1000000u;
	return ms > 60000 ? 60000 : (int)ms;
}

/* ---- closing ---- */

/* Enters ST_LINGER: flush, half-close, discard input until the peer closes or time runs out. */
static void conn_linger(struct conn *c)
{
	if (c->st == ST_LINGER)
		return;
	c->st = ST_LINGER;
	c->msg_op = 0;
	buf_free(&c->msg);
	timer_add(c, T_CLOSE_WAIT, CLOSE_WAIT_MS, NULL, 0);
	if (buf_avail(&c->out) == 0 && !c->wr_shut) {
		shutdown(c->fd, SHUT_WR);
		c->wr_shut = true;
	}
}

static void log_close_sent(struct conn *c, int code)
{
	ev_begin("close_sent", c->id);
	lb_fmt(",\"code\":%d", code);
	ev_end();
}

static void proto_error(struct conn *c, int code, const char *why)
{
	ev_begin("error", c->id);
	lb_key_str("reason", why, strlen(why));
	ev_end();
	if (!c->close_sent) {
		ws_send_close(c, code);
		log_close_sent(c, code);
	}
	conn_linger(c);
}

/* ---- WebSocket frames ---- */

struct frame {
	bool fin;
	int op, err_code;
	uint64_t len;
	uint8_t *payload;
	const char *err;
};

static const char *frame_check(uint8_t b0, bool masked, uint64_t len, int *code)
{
	int op = b0 & 0x0F;
	*code = 1002;
	if (b0 & 0x70)
		return "reserved bits set";
	if (!masked)
		return "unmasked client frame";
	if (op > OP_BIN && op < OP_CLOSE)
		return "unknown opcode";
	if (op > OP_PONG)
		return "unknown opcode";
	if (op >= OP_CLOSE && (!(b0 & 0x80) || len > 125))
		return "fragmented or oversized control frame";
	if (len >> 63)
		return "frame length has the top bit set";
	*code = 1009;
	if (len > cfg.max_message)
		return "message too big";
	return NULL;
}

/* Bytes the frame at p takes: 0 if incomplete, SIZE_MAX if invalid (f->err says why). */
static size_t frame_parse(uint8_t *p, size_t n, struct frame *f)
{
	if (n < 2)
		return 0;
	bool masked = p[1] & 0x80;
	uint64_t len = p[1] & 0x7F;
	size_t hl = len == 126 ? 4 : len == 127 ? 10 : 2;
	if (n < hl)
		return 0;
	if (len >= 126) {
		len = 0;
		for (size_t i = 2; i < hl; i++)
			len = (len << 8) | p[i];
	}
	f->fin = p[0] & 0x80;
	f->op = p[0] & 0x0F;
	f->err = frame_check(p[0], masked, len, &f->err_code);
	if (f->err)
		return SIZE_MAX;
	hl += 4;
	if (n < hl || n - hl < len)
		return 0;
	uint8_t *mask = p + hl - 4;
	f->payload = p + hl;
	f->len = len;
	for (uint64_t i = 0; i < len; i++)
		f->payload[i] ^= mask[i & 3];
	return hl + (size_t)len;
}

static void deliver(struct conn *c, int op, const uint8_t *p, size_t n)
{
	if (!cfg.quiet_frames) {
		ev_begin(op == OP_TEXT ? "text" : "binary", c->id);
		if (op == OP_TEXT) {
			lb_key_str("data", p, n);
		} else {
			lb_fmt(",\"len\":%zu,\"hex\":\"", n);
			buf_reserve(&lb, 2 * n + 2);
			for (size_t i = 0; i < n; i++) {
				lb.p[lb.len++] = (uint8_t) "0123456789abcdef"[p[i] >> 4];
				lb.p[lb.len++] = (uint8_t) "0123456789abcdef"[p[i] & 15];
			}
			lb_str("\"");
		}
		ev_end();
	}
	if (c->st != ST_OPEN)
		return;
	for (int i = 0; op == OP_TEXT && i < cfg.nreplies; i++) {
		const struct reply *r = &cfg.replies[i];
		if (strlen(r->in) == n && (n == 0 || memcmp(r->in, p, n) == 0)) {
			ws_send(c, OP_TEXT, r->out, strlen(r->out));
			return;
		}
	}
	if (cfg.echo)
		ws_send(c, op, p, n);
}

static void on_data(struct conn *c, const struct frame *f)
{
	if (f->op == OP_CONT && !c->msg_op) {
		proto_error(c, 1002, "continuation frame without a message");
		return;
	}
	if (f->op != OP_CONT && c->msg_op) {
		proto_error(c, 1002, "new message inside a fragmented one");
		return;
	}
	if (f->op != OP_CONT && f->fin) {
		deliver(c, f->op, f->payload, (size_t)f->len);
		return;
	}
	if (f->op != OP_CONT)
		c->msg_op = f->op;
	if (buf_avail(&c->msg) + f->len > cfg.max_message) {
		proto_error(c, 1009, "message too big");
		return;
	}
	buf_add(&c->msg, f->payload, (size_t)f->len);
	if (f->fin) {
		deliver(c, c->msg_op, buf_data(&c->msg), buf_avail(&c->msg));
		c->msg_op = 0;
		buf_free(&c->msg);
	}
}

static void send_pong(struct conn *c, const uint8_t *p, size_t n)
{
	if (c->st != ST_OPEN)
		return;
	ws_send(c, OP_PONG, p, n);
	if (!cfg.quiet_frames)
		ev_simple("pong_sent", c->id);
}

static void on_ping(struct conn *c, const struct frame *f)
{
	if (!cfg.quiet_frames) {
		ev_begin("ping", c->id);
		lb_fmt(",\"len\":%" PRIu64, f->len);
		ev_end();
	}
	if (cfg.no_pong)
		return;
	if (cfg.pong_delay_ms > 0)
		timer_add(c, T_PONG, cfg.pong_delay_ms, f->payload, (size_t)f->len);
	else
		send_pong(c, f->payload, (size_t)f->len);
}

static void on_close_frame(struct conn *c, const struct frame *f)
{
	if (f->len == 1) {
		proto_error(c, 1002, "close frame with a 1-byte payload");
		return;
	}
	int code = f->len >= 2 ? (f->payload[0] << 8) | f->payload[1] : 1005;
	ev_begin("close", c->id);
	lb_fmt(",\"code\":%d", code);
	lb_key_str("reason", f->len > 2 ? f->payload + 2 : f->payload,
	           f->len > 2 ? (size_t)f->len - 2 : 0);
	ev_end();
	if (!c->close_sent)
		ws_send(c, OP_CLOSE, f->payload, f->len >= 2 ? 2 : 0);
	conn_linger(c);
}

static void on_frame(struct conn *c, const struct frame *f)
{
	switch (f->op) {
	case OP_PING:
		on_ping(c, f);
		break;
	case OP_PONG:
		if (!cfg.quiet_frames) {
			ev_begin("pong", c->id);
			lb_fmt(",\"len\":%" PRIu64, f->len);
			ev_end();
		}
		break;
	case OP_CLOSE:
		on_close_frame(c, f);
		break;
	default:
		on_data(c, f);
	}
}

static void ws_input(struct conn *c)
{
	while (!c->dead && (c->st == ST_OPEN || c->st == ST_CLOSING)) {
		struct frame f;
		size_t r = frame_parse(buf_data(&c->in), buf_avail(&c->in), &f);
		if (r == 0)
			break;
		if (r == SIZE_MAX) {
			proto_error(c, f.err_code, f.err);
			break;
		}
		buf_consume(&c->in, r);
		on_frame(c, &f);
	}
}

/* ---- HTTP upgrade ---- */

struct hdr {
	char *name, *value;
};

struct req {
	char *method, *path, *version;
	struct hdr h[MAX_HDRS];
	int nh;
};

static char *trim(char *s)
{
	while (*s == ' ' || *s == '\t')
		s++;
	char *e = s + strlen(s);
	while (e > s && (e[-1] == ' ' || e[-1] == '\t' || e[-1] == '\r'))
		*--e = '\0';
	return s;
}

static int parse_request_line(char *line, struct req *r)
{
	r->method = strtok_r(line, " ", &line);
	r->path = strtok_r(NULL, " ", &line);
	r->version = strtok_r(NULL, " \r", &line);
	return r->method && r->path && r->version ? 0 : -1;
}

/* Parses the NUL-terminated request head in place; header names are lower-cased. */
static int parse_request(char *text, struct req *r)
{
	char *save = NULL;
	char *line = strtok_r(text, "\n", &save);
	r->nh = 0;
	if (!line || parse_request_line(line, r) < 0)
		return -1;
	while ((line = strtok_r(NULL, "\n", &save)) != NULL) {
		char *colon = strchr(line, ':');
		if (!colon || colon == line)
			return -1;
		if (r->nh == MAX_HDRS)
			continue;
		*colon = '\0';
		for (char *p = line; *p; p++)
			*p = (char)(*p >= 'A' && *p <= 'Z' ? *p + 32 : *p);
		r->h[r->nh].name = trim(line);
		r->h[r->nh].value = trim(colon + 1);
		r->nh++;
	}
	return 0;
}

static const char *hdr_get(const struct req *r, const char *name)
{
	for (int i = 0; i < r->nh; i++)
		if (strcmp(r->h[i].name, name) == 0)
			return r->h[i].value;
	return NULL;
}

/* Whether any header `name` holds `tok` in its comma-separated list. */
static bool hdr_has_token(const struct req *r, const char *name, const char *tok, bool icase)
{
	size_t tl = strlen(tok);
	for (int i = 0; i < r->nh; i++) {
		if (strcmp(r->h[i].name, name) != 0)
			continue;
		for (const char *s = r->h[i].value; *s;) {
			while (*s == ' ' || *s == '\t' || *s == ',')
				s++;
			const char *b = s;
			while (*s && *s != ',')
				s++;
			const char *e = s;
			while (e > b && (e[-1] == ' ' || e[-1] == '\t'))
				e--;
			if ((size_t)(e - b) == tl &&
			    (icase ? strncasecmp(b, tok, tl) : strncmp(b, tok, tl)) == 0)
				return true;
		}
	}
	return false;
}

static void log_handshake(struct conn *c, const struct req *r)
{
	ev_begin("handshake", c->id);
	lb_key_str("path", r->path, strlen(r->path));
	lb_str(",\"headers\":{");
	bool first = true;
	for (int i = 0; i < r->nh; i++) {
		int j = 0;
		while (j < i && strcmp(r->h[j].name, r->h[i].name) != 0)
			j++;
		if (j < i)
			continue; /* repeated header: joined with its first occurrence */
		lb_str(first ? "\"" : ",\"");
		first = false;
		lb_esc(r->h[i].name, strlen(r->h[i].name));
		lb_str("\":\"");
		for (j = i; j < r->nh; j++) {
			if (strcmp(r->h[j].name, r->h[i].name) != 0)
				continue;
			if (j > i)
				lb_str(", ");
			lb_esc(r->h[j].value, strlen(r->h[j].value));
		}
		lb_str("\"");
	}
	lb_str("}");
	ev_end();
}

static const char *status_reason(int code)
{
	static const struct {
		int code;
		const char *text;
	} tab[] = {
	    {200, "OK"},
	    {301, "Moved Permanently"},
	    {302, "Found"},
	    {400, "Bad Request"},
	    {401, "Unauthorized"},
	    {403, "Forbidden"},
	    {404, "Not Found"},
	    {405, "Method Not Allowed"},
	    {408, "Request Timeout"},
	    {426, "Upgrade Required"},
	    {429, "Too Many Requests"},
	    {500, "Internal Server Error"},
	    {502, "Bad Gateway"},
	    {503, "Service Unavailable"},
	    {504, "Gateway Timeout"},
	};
	for (size_t i = 0; i < sizeof tab / sizeof tab[0]; i++)
		if (tab[i].code == code)
			return tab[i].text;
	return "Status";
}

/* Answers with a non-101 status and closes once it is written. */
static void reject(struct conn *c, int code, const char *why, const char *extra)
{
	char resp[512];
	int n = snprintf(resp, sizeof resp,
	                 "HTTP/1.1 %d %s\r\nContent-Length: 0\r\nConnection: close\r\n%s\r\n", code,
	                 status_reason(code), extra ? extra : "");
	ev_begin("rejected", c->id);
	lb_fmt(",\"status\":%d", code);
	lb_key_str("reason", why, strlen(why));
	ev_end();
	conn_send(c, resp, (size_t)n);
	conn_linger(c);
}

static bool key_valid(const char *key)
{
	static const char b64[] =
	    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
	if (!key || strlen(key) != 24 || strcmp(key + 22, "==") != 0)
		return false;
	for (int i = 0; i < 22; i++)
		if (!strchr(b64, key[i]))
			return false;
	return true;
}

/* Why the request is not a valid upgrade (and the status to answer), or NULL. */
static const char *check_upgrade(const struct req *r, int *code)
{
	*code = 400;
	if (strcmp(r->method, "GET") != 0)
		return "method is not GET";
	if (strcmp(r->version, "HTTP/1.1") != 0)
		return "not HTTP/1.1";
	if (!hdr_has_token(r, "upgrade", "websocket", true))
		return "missing Upgrade: websocket";
	if (!hdr_has_token(r, "connection", "upgrade", true))
		return "missing Connection: Upgrade";
	if (!key_valid(hdr_get(r, "sec-websocket-key")))
		return "missing or invalid Sec-WebSocket-Key";
	const char *v = hdr_get(r, "sec-websocket-version");
	*code = 426;
	if (!v || strcmp(v, "13") != 0)
		return "unsupported Sec-WebSocket-Version";
	return NULL;
}

static void accept_key(const char *key, char out[32])
{
	char cat[64];
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int mdlen = 0;
	int n = snprintf(cat, sizeof cat, "%s%s", key, WS_GUID);
	if (!EVP_Digest(cat, (size_t)n, md, &mdlen, EVP_sha1(), NULL))
		die("EVP_Digest failed");
	EVP_EncodeBlock((unsigned char *)out, md, (int)mdlen);
}

/* ---- --hostile: misbehaviour on every connection ---- */

static void hostile_event(struct conn *c)
{
	ev_begin("hostile", c->id);
	lb_key_str("mode", cfg.hostile_name, strlen(cfg.hostile_name));
	ev_end();
}

/* xorshift64*: deterministic per connection, so a failing run can be replayed. */
static uint8_t rng_byte(struct conn *c)
{
	c->rng ^= c->rng >> 12;
	c->rng ^= c->rng << 25;
	c->rng ^= c->rng >> 27;
	return (uint8_t)((c->rng * 0x2545F4914F6CDD1Dull) >> 56);
}

static void send_random(struct conn *c, size_t n)
{
	uint8_t b[1024];
	if (n > sizeof b)
		n = sizeof b;
	for (size_t i = 0; i < n; i++)
		b[i] = rng_byte(c);
	conn_send(c, b, n);
}

static void send_filler(struct conn *c, size_t n)
{
	static uint8_t fill[16384];
	if (!fill[0])
		memset(fill, 'x', sizeof fill);
	for (size_t k; n > 0 && !c->dead; n -= k) {
		k = n < sizeof fill ? n : sizeof fill;
		conn_send(c, fill, k);
	}
}

/* Answers the upgrade request with bytes that are not HTTP at all, then only reads. */
static void hostile_garbage(struct conn *c)
{
	static const uint8_t junk[] = "\x00\xff\xfe\x80SSH-2.0-OpenSSH_9.2\r\n\x16\x03\x01\x02\x00"
	                              "\x01\x00\x01\xfc\x03\x03 not HTTP \x1b[31m\r\n\r\n";
	c->rng = 0x9E3779B97F4A7C15ull * c->id;
	hostile_event(c);
	conn_send(c, junk, sizeof junk - 1);
	send_random(c, 512);
	c->st = ST_NOHS;
}

static void trickle_start(struct conn *c)
{
	c->trickling = true;
	timer_add(c, T_TRICKLE, cfg.trickle_ms, NULL, 0);
}

/* One byte of what is queued (an endless supply of "tick" text frames once open). */
static void trickle_tick(struct conn *c)
{
	if (c->st == ST_LINGER)
		return;
	if (buf_avail(&c->trick) == 0 && c->st == ST_OPEN)
		ws_send(c, OP_TEXT, "tick", 4);
	if (buf_avail(&c->trick) > 0) {
		uint8_t b = buf_data(&c->trick)[0];
		buf_consume(&c->trick, 1);
		c->trickling = false;
		conn_send(c, &b, 1);
		c->trickling = true;
	}
	timer_add(c, T_TRICKLE, cfg.trickle_ms, NULL, 0);
}

static void ws_send_raw_frame(struct conn *c, uint8_t b0, const void *d, size_t n, bool mask)
{
	uint8_t h[8] = {b0, (uint8_t)((mask ? 0x80 : 0) | n)}, p[125];
	static const uint8_t key[4] = {0x37, 0xfa, 0x21, 0x3d};
	if (n > sizeof p)
		die("raw frame too long");
	memcpy(p, d, n);
	if (mask) {
		memcpy(h + 2, key, 4);
		for (size_t i = 0; i < n; i++)
			p[i] ^= key[i & 3];
	}
	conn_send2(c, h, mask ? 6 : 2, p, n);
}

/* What the modes that misbehave after the 101 do at once. */
static void hostile_after_open(struct conn *c)
{
	static const char bad_utf8[] = "bad \xff\xfe utf8 \xc0\xaf overlong \xed\xa0\x80 surrogate";
	static const uint8_t huge_hdr[10] = {0x81, 127, 0x40, 0, 0, 0, 0, 0, 0, 0};
	c->rng = 0x9E3779B97F4A7C15ull * c->id;
	switch (cfg.hostile) {
	case H_RANDOM:
		hostile_event(c);
		send_random(c, 1024);
		timer_add(c, T_HOSTILE, 100, NULL, 0);
		break;
	case H_HUGE_FRAME:
		hostile_event(c);
		conn_send(c, huge_hdr, sizeof huge_hdr);
		send_filler(c, 65536);
		timer_add(c, T_HOSTILE, 100, NULL, 0);
		break;
	case H_OVERSIZED: {
		hostile_event(c);
		uint8_t *p = malloc((size_t)cfg.hostile_size);
		if (!p)
			die("out of memory");
		memset(p, 'A', (size_t)cfg.hostile_size);
		ws_send(c, OP_TEXT, p, (size_t)cfg.hostile_size);
		free(p);
		break;
	}
	case H_OPCODE3:
		hostile_event(c);
		ws_send_raw_frame(c, 0x83, "hello", 5, false);
		break;
	case H_OPCODE11:
		hostile_event(c);
		ws_send_raw_frame(c, 0x8B, "hello", 5, false);
		break;
	case H_BAD_UTF8:
		hostile_event(c);
		ws_send(c, OP_TEXT, bad_utf8, sizeof bad_utf8 - 1);
		break;
	case H_MASKED:
		hostile_event(c);
		ws_send_raw_frame(c, 0x81, "hello", 5, true);
		break;
	case H_CLOSE_CODE: {
		uint8_t p[9] = {(uint8_t)(cfg.hostile_close_code >> 8),
		                (uint8_t)cfg.hostile_close_code};
		memcpy(p + 2, "hostile", 7);
		hostile_event(c);
		ws_send(c, OP_CLOSE, p, sizeof p);
		log_close_sent(c, cfg.hostile_close_code);
		c->st = ST_CLOSING;
		timer_add(c, T_CLOSE_WAIT, CLOSE_WAIT_MS, NULL, 0);
		break;
	}
	case H_TRICKLE_FRAMES:
		hostile_event(c);
		trickle_start(c);
		break;
	case H_NO_READ:
		hostile_event(c);
		c->no_read = true;
		conn_epoll(c, EPOLL_CTL_MOD);
		break;
	default:
		break;
	}
}

static void hostile_timer(struct conn *c)
{
	if (c->st != ST_OPEN)
		return;
	if (cfg.hostile == H_RANDOM)
		send_random(c, 1024);
	else if (cfg.hostile == H_HUGE_FRAME)
		send_filler(c, 16384);
	if (!c->dead)
		timer_add(c, T_HOSTILE, 100, NULL, 0);
}

static void accept_upgrade(struct conn *c, const struct req *r)
{
	char acc[32], resp[512];
	bool proto =
	    cfg.subprotocol && hdr_has_token(r, "sec-websocket-protocol", cfg.subprotocol, false);
	accept_key(hdr_get(r, "sec-websocket-key"), acc);
	if (cfg.hostile == H_BAD_ACCEPT) {
		acc[0] = acc[0] == 'A' ? 'B' : 'A'; /* still well-formed base64, but wrong */
		hostile_event(c);
	}
	int n = snprintf(resp, sizeof resp,
	                 "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
	                 "Connection: Upgrade\r\nSec-WebSocket-Accept: %s\r\n%s%s%s\r\n",
	                 acc, proto ? "Sec-WebSocket-Protocol: " : "", proto ? cfg.subprotocol : "",
	                 proto ? "\r\n" : "");
	if (n < 0 || (size_t)n >= sizeof resp)
		die("response too long");
	conn_send(c, resp, (size_t)n);
	c->st = ST_OPEN;
	ev_simple("open", c->id);
	if (cfg.close_after_ms > 0)
		timer_add(c, T_CLOSE_AFTER, cfg.close_after_ms, NULL, 0);
	hostile_after_open(c);
}

static void handle_request(struct conn *c, char *text)
{
	struct req r;
	int code;
	if (parse_request(text, &r) < 0) {
		reject(c, 400, "malformed request", NULL);
		return;
	}
	log_handshake(c, &r);
	if (cfg.no_handshake) {
		c->st = ST_NOHS;
		return;
	}
	if (cfg.hostile == H_HANDSHAKE_GARBAGE) {
		hostile_garbage(c);
		return;
	}
	if (cfg.status) {
		char extra[64] = "";
		if (cfg.retry_after >= 0)
			snprintf(extra, sizeof extra, "Retry-After: %ld\r\n", cfg.retry_after);
		reject(c, cfg.status, "--status", extra);
		return;
	}
	const char *why = check_upgrade(&r, &code);
	if (why) {
		reject(c, code, why, code == 426 ? "Sec-WebSocket-Version: 13\r\n" : NULL);
		return;
	}
	if (cfg.hostile == H_TRICKLE) {
		hostile_event(c);
		trickle_start(c); /* the 101 itself is trickled */
	}
	accept_upgrade(c, &r);
}

static void http_input(struct conn *c)
{
	uint8_t *p = buf_data(&c->in);
	size_t n = buf_avail(&c->in);
	uint8_t *end = memmem(p, n, "\r\n\r\n", 4);
	if (!end) {
		if (n > MAX_HEADER && cfg.no_handshake)
			c->st = ST_NOHS;
		else if (n > MAX_HEADER)
			reject(c, 400, "request head too large", NULL);
		return;
	}
	size_t hl = (size_t)(end - p);
	char *text = malloc(hl + 1);
	if (!text)
		die("out of memory");
	memcpy(text, p, hl);
	text[hl] = '\0';
	buf_consume(&c->in, hl + 4);
	handle_request(c, text);
	free(text);
}

/* ---- socket events ---- */

static void on_readable(struct conn *c)
{
	static uint8_t rbuf[65536];
	ssize_t n = recv(c->fd, rbuf, sizeof rbuf, 0);
	if (n == 0 || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)) {
		c->dead = true;
		return;
	}
	if (n < 0 || c->st == ST_NOHS || c->st == ST_LINGER)
		return;
	buf_add(&c->in, rbuf, (size_t)n);
	if (c->st == ST_HTTP)
		http_input(c);
	if (!c->dead && (c->st == ST_OPEN || c->st == ST_CLOSING))
		ws_input(c);
	if (c->st == ST_NOHS || c->st == ST_LINGER)
		c->in.off = c->in.len = 0;
	buf_trim(&c->in);
}

static void on_writable(struct conn *c)
{
	size_t n = buf_avail(&c->out);
	if (n > 0) {
		ssize_t r = send(c->fd, buf_data(&c->out), n, MSG_NOSIGNAL);
		if (r < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) {
			c->dead = true;
			return;
		}
		if (r > 0)
			buf_consume(&c->out, (size_t)r);
	}
	if (buf_avail(&c->out) > 0)
		return;
	buf_trim(&c->out);
	c->want_out = false;
	conn_epoll(c, EPOLL_CTL_MOD);
	if (c->st == ST_LINGER && !c->wr_shut) {
		shutdown(c->fd, SHUT_WR);
		c->wr_shut = true;
	}
}

static void fmt_addr(const struct sockaddr_storage *ss, char *host, size_t hl, int *port)
{
	char serv[16];
	if (getnameinfo((const struct sockaddr *)ss, sizeof *ss, host, (socklen_t)hl, serv,
	                sizeof serv, NI_NUMERICHOST | NI_NUMERICSERV) != 0) {
		snprintf(host, hl, "?");
		snprintf(serv, sizeof serv, "0");
	}
	*port = atoi(serv);
}

static void conn_new(int fd, const struct sockaddr_storage *ss)
{
	if ((size_t)fd >= conns_cap) {
		size_t cap = conns_cap ? conns_cap : 1024;
		while (cap <= (size_t)fd)
			cap *= 2;
		conns = realloc(conns, cap * sizeof *conns);
		if (!conns)
			die("out of memory");
		memset(conns + conns_cap, 0, (cap - conns_cap) * sizeof *conns);
		conns_cap = cap;
	}
	struct conn *c = calloc(1, sizeof *c);
	if (!c)
		die("out of memory");
	c->fd = fd;
	c->id = ++next_id;
	c->st = ST_HTTP;
	c->next = conn_list;
	if (conn_list)
		conn_list->prev = c;
	conn_list = c;
	conns[fd] = c;
	int one = 1;
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);

	char host[NI_MAXHOST];
	int port;
	fmt_addr(ss, host, sizeof host, &port);
	ev_begin("accept", c->id);
	lb_fmt(ss->ss_family == AF_INET6 ? ",\"peer\":\"[%s]:%d\"" : ",\"peer\":\"%s:%d\"", host,
	       port);
	ev_end();
	conn_epoll(c, EPOLL_CTL_ADD);
	conn_reap(c);
}

/* Out of descriptors: accept and drop one connection so the listener does not spin. */
static void shed_connection(int lfd)
{
	ev_begin("error", 0);
	lb_str(",\"reason\":\"accept: out of file descriptors\"");
	ev_end();
	if (spare_fd >= 0)
		close(spare_fd);
	int fd = accept(lfd, NULL, NULL);
	if (fd >= 0)
		close(fd);
	spare_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
}

static void on_accept(int lfd)
{
	for (int i = 0; i < 256; i++) {
		struct sockaddr_storage ss;
		socklen_t sl = sizeof ss;
		int fd = accept4(lfd, (struct sockaddr *)&ss, &sl, SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (fd >= 0) {
			conn_new(fd, &ss);
		} else if (errno == EMFILE || errno == ENFILE) {
			shed_connection(lfd);
			return;
		} else if (errno != EINTR && errno != ECONNABORTED) {
			return;
		}
	}
}

static void on_conn_event(uint64_t data, uint32_t events)
{
	struct conn *c = conn_lookup((int)(uint32_t)data, (uint32_t)(data >> 32));
	if (!c)
		return; /* closed earlier in this batch */
	if (c->no_read && (events & (EPOLLERR | EPOLLHUP | EPOLLRDHUP)))
		c->dead = true; /* the peer gave up: the only thing no-read notices */
	else if (events & (EPOLLIN | EPOLLERR | EPOLLHUP))
		on_readable(c);
	if (!c->dead && (events & EPOLLOUT))
		on_writable(c);
	conn_reap(c);
}

static void send_every_tick(void)
{
	for (struct conn *c = conn_list, *next; c; c = next) {
		next = c->next;
		if (c->st != ST_OPEN)
			continue;
		ws_send(c, OP_TEXT, cfg.send_text, strlen(cfg.send_text));
		conn_reap(c);
	}
}

static void timer_fire(const struct timer *t)
{
	if (t->kind == T_SEND_EVERY) {
		uint64_t next = t->when + (uint64_t)cfg.send_every_ms * 1000000u;
		send_every_tick();
		timer_add_at(NULL, T_SEND_EVERY, next > now_ns() ? next : now_ns() + 1000000u, NULL,
		             0);
		return;
	}
	struct conn *c = conn_lookup(t->fd, t->id);
	if (!c)
		return;
	if (t->kind == T_PONG) {
		send_pong(c, t->data, t->len);
	} else if (t->kind == T_CLOSE_AFTER && c->st == ST_OPEN) {
		ws_send_close(c, 1000);
		log_close_sent(c, 1000);
		c->st = ST_CLOSING;
		timer_add(c, T_CLOSE_WAIT, CLOSE_WAIT_MS, NULL, 0);
	} else if (t->kind == T_CLOSE_WAIT && (c->st == ST_CLOSING || c->st == ST_LINGER)) {
		c->dead = true;
	} else if (t->kind == T_HOSTILE) {
		hostile_timer(c);
	} else if (t->kind == T_TRICKLE) {
		trickle_tick(c);
	}
	conn_reap(c);
}

static void timers_run(void)
{
	uint64_t now = now_ns();
	while (heap_n > 0 && heap[0].when <= now) {
		struct timer t = timer_pop();
		timer_fire(&t);
	}
}

/* ---- setup ---- */

static void epoll_add_fd(int fd)
{
	struct epoll_event ev = {.events = EPOLLIN};
	ev.data.u64 = (uint32_t)fd; /* id 0: not a connection */
	if (epoll_ctl(epfd, EPOLL_CTL_ADD, fd, &ev) < 0)
		die("epoll_ctl: %s", strerror(errno));
}

static int open_listener(const char *spec)
{
	char host[256], *port;
	if (strlen(spec) >= sizeof host)
		die("bad --listen %s", spec);
	strcpy(host, spec);
	char *h = host;
	if (*h == '[') {
		char *rb = strchr(h, ']');
		if (!rb || rb[1] != ':')
			die("bad --listen %s", spec);
		*rb = '\0';
		h++;
		port = rb + 2;
	} else {
		port = strrchr(h, ':');
		if (!port)
			die("bad --listen %s (want ADDR:PORT)", spec);
		*port++ = '\0';
	}
	struct addrinfo hints = {.ai_socktype = SOCK_STREAM, .ai_flags = AI_PASSIVE};
	struct addrinfo *ai;
	int rc = getaddrinfo(*h ? h : NULL, port, &hints, &ai);
	if (rc != 0)
		die("--listen %s: %s", spec, gai_strerror(rc));
	int fd = socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	int one = 1;
	if (fd < 0)
		die("socket: %s", strerror(errno));
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
	if (cfg.hostile == H_NO_READ) {
		int small =
		    4096; /* inherited by accepted sockets: the peer's writes back up sooner */
		setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &small, sizeof small);
	}
	if (ai->ai_family == AF_INET6)
		setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof one);
	if (bind(fd, ai->ai_addr, ai->ai_addrlen) < 0 || listen(fd, 65535) < 0)
		die("--listen %s: %s", spec, strerror(errno));
	freeaddrinfo(ai);
	return fd;
}

static void log_listening(int fd)
{
	struct sockaddr_storage ss;
	socklen_t sl = sizeof ss;
	char host[NI_MAXHOST];
	int port;
	if (getsockname(fd, (struct sockaddr *)&ss, &sl) < 0)
		die("getsockname: %s", strerror(errno));
	fmt_addr(&ss, host, sizeof host, &port);
	ev_begin("listening", 0);
	lb_key_str("addr", host, strlen(host));
	lb_fmt(",\"port\":%d", port);
	ev_end();
}

static void setup_process(void)
{
	struct rlimit rl;
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
	}
	signal(SIGPIPE, SIG_IGN);
	sigset_t set;
	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	sigprocmask(SIG_BLOCK, &set, NULL);
	sigfd = signalfd(-1, &set, SFD_NONBLOCK | SFD_CLOEXEC);
	epfd = epoll_create1(EPOLL_CLOEXEC);
	if (sigfd < 0 || epfd < 0)
		die("signalfd/epoll: %s", strerror(errno));
	epoll_add_fd(sigfd);
	spare_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
}

/* ---- command line ---- */

static void usage(FILE *f)
{
	fputs("usage: wsbeat-testsrv [--listen ADDR:PORT]... [--events FILE] [--quiet-frames]\n"
	      "  [--no-pong] [--pong-delay MS] [--reply IN=OUT]... [--echo] [--status CODE]\n"
	      "  [--retry-after SECS] [--subprotocol NAME] [--close-after-ms MS]\n"
	      "  [--send-every MS TEXT] [--no-handshake] [--max-message BYTES]\n"
	      "  [--hostile MODE] [--hostile-size BYTES] [--trickle-ms MS]\n"
	      "hostile modes: handshake-garbage bad-accept random huge-frame oversized opcode-3\n"
	      "  opcode-11 bad-utf8 masked close-N (e.g. close-999) no-handshake trickle\n"
	      "  trickle-frames no-read\n",
	      f);
}

static long num_arg(const char *opt, const char *s, long min, long max)
{
	char *end;
	errno = 0;
	long v = s ? strtol(s, &end, 10) : 0;
	if (!s || errno || *end || end == s || v < min || v > max)
		die("%s needs a number in [%ld, %ld]", opt, min, max);
	return v;
}

static const char *need(int argc, char **argv, int i)
{
	if (i >= argc)
		die("%s needs an argument", argv[i - 1]);
	return argv[i];
}

/* Options without a value; returns false if `o` is not one of them. */
static bool parse_flag(const char *o)
{
	if (strcmp(o, "--quiet-frames") == 0)
		cfg.quiet_frames = true;
	else if (strcmp(o, "--no-pong") == 0)
		cfg.no_pong = true;
	else if (strcmp(o, "--echo") == 0)
		cfg.echo = true;
	else if (strcmp(o, "--no-handshake") == 0)
		cfg.no_handshake = true;
	else
		return false;
	return true;
}

static void add_reply(const char *spec)
{
	char *eq = strchr(spec, '=');
	if (!eq || cfg.nreplies == MAX_REPLY)
		die("bad --reply %s (want IN=OUT)", spec);
	char *in = strndup(spec, (size_t)(eq - spec));
	if (!in)
		die("out of memory");
	cfg.replies[cfg.nreplies].in = in;
	cfg.replies[cfg.nreplies++].out = eq + 1;
}

static void parse_hostile(const char *v)
{
	for (size_t i = 0; i < sizeof hostile_modes / sizeof hostile_modes[0]; i++) {
		if (hostile_modes[i].mode != H_CLOSE_CODE &&
		    strcmp(v, hostile_modes[i].name) == 0) {
			cfg.hostile = hostile_modes[i].mode;
			cfg.hostile_name = v;
			cfg.no_handshake = cfg.no_handshake || cfg.hostile == H_NO_HANDSHAKE;
			return;
		}
	}
	if (strncmp(v, "close-", 6) == 0) {
		cfg.hostile = H_CLOSE_CODE;
		cfg.hostile_name = v;
		cfg.hostile_close_code = (int)num_arg("--hostile close-N", v + 6, 0, 65535);
		return;
	}
	usage(stderr);
	die("unknown --hostile mode %s", v);
}

static int parse_opt(int argc, char **argv, int i)
{
	const char *o = argv[i];
	if (parse_flag(o))
		return i;
	const char *v = need(argc, argv, ++i);
	if (strcmp(o, "--listen") == 0) {
		if (cfg.nlisten == MAX_LISTEN)
			die("too many --listen");
		cfg.listen[cfg.nlisten++] = v;
	} else if (strcmp(o, "--events") == 0) {
		cfg.events = v;
	} else if (strcmp(o, "--pong-delay") == 0) {
		cfg.pong_delay_ms = num_arg(o, v, 0, 86400000);
	} else if (strcmp(o, "--reply") == 0) {
		add_reply(v);
	} else if (strcmp(o, "--status") == 0) {
		cfg.status = (int)num_arg(o, v, 100, 999);
	} else if (strcmp(o, "--retry-after") == 0) {
		cfg.retry_after = num_arg(o, v, 0, 1000000000);
	} else if (strcmp(o, "--subprotocol") == 0) {
		cfg.subprotocol = v;
	} else if (strcmp(o, "--close-after-ms") == 0) {
		cfg.close_after_ms = num_arg(o, v, 0, 86400000);
	} else if (strcmp(o, "--send-every") == 0) {
		cfg.send_every_ms = num_arg(o, v, 1, 86400000);
		cfg.send_text = need(argc, argv, ++i);
	} else if (strcmp(o, "--hostile") == 0) {
		parse_hostile(v);
	} else if (strcmp(o, "--hostile-size") == 0) {
		cfg.hostile_size = (uint64_t)num_arg(o, v, 1, 1L << 32);
	} else if (strcmp(o, "--trickle-ms") == 0) {
		cfg.trickle_ms = num_arg(o, v, 1, 86400000);
	} else if (strcmp(o, "--max-message") == 0) {
		cfg.max_message = (uint64_t)num_arg(o, v, 1, 1L << 40);
	} else {
		usage(stderr);
		die("unknown option %s", o);
	}
	return i;
}

static void parse_args(int argc, char **argv)
{
	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "-h") == 0 || strcmp(argv[i], "--help") == 0) {
			usage(stdout);
			exit(0);
		}
		i = parse_opt(argc, argv, i);
	}
	if (cfg.nlisten == 0)
		cfg.listen[cfg.nlisten++] = "127.0.0.1:0";
}

int main(int argc, char **argv)
{
	parse_args(argc, argv);
	evlog = cfg.events ? fopen(cfg.events, "w") : stdout;
	if (!evlog)
		die("%s: %s", cfg.events, strerror(errno));
	setup_process();
	for (int i = 0; i < cfg.nlisten; i++)
		listen_fds[i] = open_listener(cfg.listen[i]);
	for (int i = 0; i < cfg.nlisten; i++) {
		log_listening(listen_fds[i]);
		epoll_add_fd(listen_fds[i]);
	}
	if (cfg.send_every_ms > 0)
		timer_add(NULL, T_SEND_EVERY, cfg.send_every_ms, NULL, 0);

	struct epoll_event evs[512];
	for (;;) {
		int n = epoll_wait(epfd, evs, 512, timer_timeout());
		if (n < 0 && errno != EINTR)
			die("epoll_wait: %s", strerror(errno));
		for (int i = 0; i < n; i++) {
			uint64_t d = evs[i].data.u64;
			if (d >> 32)
				on_conn_event(d, evs[i].events);
			else if ((int)d == sigfd)
				exit(0);
			else
				on_accept((int)d);
		}
		timers_run();
	}
}
