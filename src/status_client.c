/* `wsbeat status`: fetch /status, parse it with a small strict JSON parser, print a table. */
#include "wsbeat/status_client.h"

#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <netdb.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include "wsbeat/url.h"
#include "wsbeat/util.h"

#define JP_MAX_DEPTH 32

/* ---- JSON parser: generic walkers, driven by per-shape member callbacks ---- */

struct jp {
	const char *s;
	size_t len, pos;
	int depth;
	struct mbuf str; /* the string just parsed */
	char *err;
	size_t errlen;
	bool failed;
};

/* Called for each member of an object (with its key) or element of an array (key NULL). */
typedef int (*jp_fn)(struct jp *p, const char *key, void *ctx);

static int jp_skip(struct jp *p);

__attribute__((format(printf, 2, 3))) static int jp_fail(struct jp *p, const char *fmt, ...)
{
	char why[128];
	va_list ap;

	if (p->failed)
		return -1;
	va_start(ap, fmt);
	vsnprintf(why, sizeof(why), fmt, ap);
	va_end(ap);
	snprintf(p->err, p->errlen, "malformed status JSON at offset %zu: %s", p->pos, why);
	p->failed = true;
	return -1;
}

/* The next significant byte, or -1 at the end of input; whitespace is consumed. */
static int jp_peek(struct jp *p)
{
	while (p->pos < p->len && p->s[p->pos] && strchr(" \t\r\n", p->s[p->pos]))
		p->pos++;
	return p->pos < p->len ? (unsigned char)p->s[p->pos] : -1;
}

static int jp_expect(struct jp *p, char c)
{
	if (jp_peek(p) != (unsigned char)c)
		return jp_fail(p, "expected '%c'", c);
	p->pos++;
	return 0;
}

static int jp_literal(struct jp *p, const char *word)
{
	size_t n = strlen(word);

	jp_peek(p);
	if (p->len - p->pos < n || memcmp(p->s + p->pos, word, n) != 0)
		return jp_fail(p, "expected '%s'", word);
	p->pos += n;
	return 0;
}

static int jp_hex4(struct jp *p, unsigned *cp)
{
	*cp = 0;
	if (p->len - p->pos < 4)
		return jp_fail(p, "truncated \\u escape");
	for (int i = 0; i < 4; i++) {
		char c = p->s[p->pos++];
		unsigned d = c >= '0' && c <= '9'   ? (unsigned)(c - '0')
		             : c >= 'a' && c <= 'f' ? (unsigned)(c - 'a' + 10)
		             : c >= 'A' && c <= 'F' ? (unsigned)(c - 'A' + 10)
		                                    : 16;

		if (d > 15)
			return jp_fail(p, "bad hex digit in \\u escape");
		*cp = *cp * 16 + d;
	}
	return 0;
}

static void put_utf8(struct mbuf *b, unsigned cp)
{
	static const unsigned char lead[5] = {0, 0, 0xc0, 0xe0, 0xf0};
	size_t n = cp < 0x80 ? 1 : cp < 0x800 ? 2 : cp < 0x10000 ? 3 : 4;
	char u[4];

	for (size_t i = n - 1; i > 0; i--, cp >>= 6)
		u[i] = (char)(0x80 | (cp & 0x3f));
	u[0] = (char)(lead[n] | cp);
	mbuf_put(b, u, n);
}

/* A \u escape (after the "\u"), joining a UTF-16 surrogate pair into one code point. */
static int jp_unicode(struct jp *p)
{
	unsigned cp, lo;

	if (jp_hex4(p, &cp) < 0)
		return -1;
	if (cp >= 0xdc00 && cp <= 0xdfff)
		return jp_fail(p, "unpaired low surrogate");
	if (cp >= 0xd800 && cp <= 0xdbff) {
		if (p->len - p->pos < 2 || memcmp(p->s + p->pos, "\\u", 2) != 0)
			return jp_fail(p, "unpaired high surrogate");
		p->pos += 2;
		if (jp_hex4(p, &lo) < 0)
			return -1;
		if (lo < 0xdc00 || lo > 0xdfff)
			return jp_fail(p, "bad low surrogate");
		cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
	}
	if (cp == 0)
		return jp_fail(p, "NUL in string");
	put_utf8(&p->str, cp);
	return 0;
}

static int jp_escape(struct jp *p)
{
	static const char map[] = "\"\"\\\\//b\bf\fn\nr\rt\t";
	char c;

	if (p->pos >= p->len)
		return jp_fail(p, "unterminated string");
	c = p->s[p->pos++];
	for (const char *m = map; *m; m += 2) {
		if (*m == c) {
			mbuf_put(&p->str, m + 1, 1);
			return 0;
		}
	}
	if (c != 'u')
		return jp_fail(p, "bad escape '\\%c'", c);
	return jp_unicode(p);
}

/* Parses a string into p->str (NUL-terminated; never NULL afterwards unless out of memory). */
static int jp_string(struct jp *p)
{
	if (jp_expect(p, '"') < 0)
		return -1;
	p->str.len = 0;
	mbuf_put(&p->str, "", 0);
	for (;;) {
		size_t run = p->pos;

		while (p->pos < p->len && p->s[p->pos] != '"' && p->s[p->pos] != '\\' &&
		       (unsigned char)p->s[p->pos] >= 0x20)
			p->pos++;
		mbuf_put(&p->str, p->s + run, p->pos - run);
		if (p->pos >= p->len)
			return jp_fail(p, "unterminated string");
		if (p->s[p->pos] == '"')
			break;
		if (p->s[p->pos++] != '\\')
			return jp_fail(p, "control character in string");
		if (jp_escape(p) < 0)
			return -1;
	}
	p->pos++;
	return p->str.oom ? jp_fail(p, "out of memory") : 0;
}

static size_t jp_digits(struct jp *p)
{
	size_t start = p->pos;

	while (p->pos < p->len && p->s[p->pos] >= '0' && p->s[p->pos] <= '9')
		p->pos++;
	return p->pos - start;
}

static bool jp_at(struct jp *p, const char *set)
{
	return p->pos < p->len && p->s[p->pos] && strchr(set, p->s[p->pos]);
}

/* Exactly the JSON number grammar: -?(0|[1-9][0-9]*)(.[0-9]+)?([eE][+-]?[0-9]+)? */
static int jp_number(struct jp *p, double *v)
{
	char buf[64];
	size_t start;

	if (jp_peek(p) < 0)
		return jp_fail(p, "expected a value");
	start = p->pos;
	if (jp_at(p, "-"))
		p->pos++;
	if (jp_at(p, "0"))
		p->pos++;
	else if (!jp_at(p, "123456789") || !jp_digits(p))
		return jp_fail(p, "expected a value");
	if (jp_at(p, ".") && (p->pos++, !jp_digits(p)))
		return jp_fail(p, "expected digits after '.'");
	if (jp_at(p, "eE") && (p->pos++, jp_at(p, "+-") ? p->pos++ : 0, !jp_digits(p)))
		return jp_fail(p, "expected digits in exponent");
	if (p->pos - start >= sizeof(buf))
		return jp_fail(p, "number too long");
	memcpy(buf, p->s + start, p->pos - start);
	buf[p->pos - start] = '\0';
	*v = strtod(buf, NULL);
	return 0;
}

/* Walks an object ('{') or an array ('['), calling fn per member; key is NULL in arrays. */
static int jp_walk(struct jp *p, char open, jp_fn fn, void *ctx)
{
	char close = open == '{' ? '}' : ']', key[32];
	bool more;
	int c;

	if (jp_expect(p, open) < 0)
		return -1;
	if (++p->depth > JP_MAX_DEPTH)
		return jp_fail(p, "nested too deeply");
	for (more = jp_peek(p) != close; more; p->pos += more) {
		/* A key longer than every known key is cut, and then matches none of them. */
		if (open == '{' && jp_string(p) < 0)
			return -1;
		snprintf(key, sizeof(key), "%s", open == '{' ? p->str.p : "");
		if ((open == '{' && jp_expect(p, ':') < 0) ||
		    fn(p, open == '{' ? key : NULL, ctx) < 0)
			return -1;
		c = jp_peek(p);
		if (c != ',' && c != close)
			return jp_fail(p, "expected ',' or '%c'", close);
		more = c == ',';
	}
	p->pos++;
	p->depth--;
	return 0;
}

static int skip_fn(struct jp *p, const char *key, void *ctx)
{
	return jp_skip(p);
}

/* Consumes (and so validates) any value. */
static int jp_skip(struct jp *p)
{
	double d;

	switch (jp_peek(p)) {
	case '{':
		return jp_walk(p, '{', skip_fn, NULL);
	case '[':
		return jp_walk(p, '[', skip_fn, NULL);
	case '"':
		return jp_string(p);
	case 't':
		return jp_literal(p, "true");
	case 'f':
		return jp_literal(p, "false");
	case 'n':
		return jp_literal(p, "null");
	default:
		return jp_number(p, &d);
	}
}

/* ---- The /status document shape ---- */

enum fkind { F_STR, F_REAL, F_UINT, F_CODE };

struct field {
	const char *key;
	enum fkind kind;
	size_t off;
};

#define FIELD(k, kind, m)                                                                          \
	{                                                                                          \
		k, kind, offsetof(struct status_feed, m)                                           \
	}

static const struct field feed_fields[] = {
    FIELD("name", F_STR, name),
    FIELD("url", F_STR, url),
    FIELD("state", F_STR, state),
    FIELD("last_error", F_STR, last_error),
    FIELD("in_state_s", F_REAL, in_state_s),
    FIELD("rtt_ms", F_REAL, rtt_ms),
    FIELD("last_message_age_s", F_REAL, last_message_age_s),
    FIELD("attempt", F_UINT, attempt),
    FIELD("connects", F_UINT, connects),
    FIELD("reconnects", F_UINT, reconnects),
    FIELD("close_code", F_CODE, close_code),
};

static int set_string(struct jp *p, char **dst, bool null)
{
	free(*dst);
	*dst = NULL;
	if (null)
		return 0;
	if (jp_string(p) < 0)
		return -1;
	*dst = strdup(p->str.p);
	return *dst ? 0 : jp_fail(p, "out of memory");
}

static int get_uint(struct jp *p, const char *key, uint64_t *v)
{
	double d;

	if (jp_number(p, &d) < 0)
		return -1;
	if (!(d >= 0 && d < 18446744073709551616.0) || d != floor(d))
		return jp_fail(p, "\"%s\" is not a count", key);
	*v = (uint64_t)d;
	return 0;
}

/* Stores one member of a feed object; null gives -1 for reals and 0 for counts and codes. */
static int set_field(struct jp *p, const struct field *fd, char *base)
{
	bool null = jp_peek(p) == 'n';
	uint64_t u = 0;
	double d = -1;

	if (null && jp_literal(p, "null") < 0)
		return -1;
	if (fd->kind == F_STR)
		return set_string(p, (char **)(void *)(base + fd->off), null);
	if (fd->kind == F_REAL) {
		if (!null && jp_number(p, &d) < 0)
			return -1;
		memcpy(base + fd->off, &d, sizeof(d));
		return 0;
	}
	if (!null && get_uint(p, fd->key, &u) < 0)
		return -1;
	if (fd->kind == F_UINT)
		memcpy(base + fd->off, &u, sizeof(u));
	else if (u > 65535)
		return jp_fail(p, "\"%s\" is out of range", fd->key);
	else
		*(int *)(void *)(base + fd->off) = (int)u;
	return 0;
}

static int feed_member(struct jp *p, const char *key, void *ctx)
{
	for (size_t i = 0; i < ARRAY_SIZE(feed_fields); i++)
		if (strcmp(key, feed_fields[i].key) == 0)
			return set_field(p, &feed_fields[i], ctx);
	return jp_skip(p);
}

struct doc_ctx {
	struct status_doc *doc;
	bool seen_feeds;
};

static int feed_elem(struct jp *p, const char *key, void *ctx)
{
	struct status_doc *doc = ((struct doc_ctx *)ctx)->doc;
	size_t n = doc->n_feeds;
	struct status_feed *f;

	/* The capacity is 8 or the next power of two: grow when n reaches it. */
	if (n == 0 || (n >= 8 && (n & (n - 1)) == 0)) {
		f = realloc(doc->feeds, (n ? n * 2 : 8) * sizeof(*f));
		if (!f)
			return jp_fail(p, "out of memory");
		doc->feeds = f;
	}
	f = &doc->feeds[doc->n_feeds++];
	memset(f, 0, sizeof(*f));
	f->rtt_ms = f->last_message_age_s = -1;
	if (jp_walk(p, '{', feed_member, f) < 0)
		return -1;
	if (!f->name || !f->state)
		return jp_fail(p, "a feed without \"name\" or \"state\"");
	return 0;
}

static int count_member(struct jp *p, const char *key, void *ctx)
{
	struct status_doc *doc = ((struct doc_ctx *)ctx)->doc;
	uint64_t v;

	if (get_uint(p, key, &v) < 0)
		return -1;
	for (int s = 0; s < FEED_NSTATES; s++)
		if (strcmp(key, feed_state_name((enum feed_state)s)) == 0)
			doc->counts[s] = v;
	return 0;
}

static int doc_member(struct jp *p, const char *key, void *ctx)
{
	struct doc_ctx *dc = ctx;

	if (strcmp(key, "feeds") == 0) {
		if (dc->seen_feeds)
			return jp_fail(p, "duplicate \"feeds\"");
		dc->seen_feeds = true;
		return jp_walk(p, '[', feed_elem, dc);
	}
	if (strcmp(key, "counts") == 0) {
		dc->doc->has_counts = true;
		return jp_walk(p, '{', count_member, dc);
	}
	return jp_skip(p);
}

int status_client_parse(const char *json, size_t len, struct status_doc *doc, char *err,
                        size_t errlen)
{
	struct jp p = {.s = json, .len = len, .err = err, .errlen = errlen};
	struct doc_ctx dc = {.doc = doc};
	int rc;

	memset(doc, 0, sizeof(*doc));
	rc = jp_walk(&p, '{', doc_member, &dc);
	if (rc == 0 && !dc.seen_feeds)
		rc = jp_fail(&p, "no \"feeds\" array");
	if (rc == 0 && jp_peek(&p) >= 0)
		rc = jp_fail(&p, "trailing data after the document");
	mbuf_free(&p.str);
	if (rc < 0)
		status_client_doc_fini(doc);
	return rc;
}

void status_client_doc_fini(struct status_doc *doc)
{
	for (size_t i = 0; i < doc->n_feeds; i++) {
		struct status_feed *f = &doc->feeds[i];

		free(f->name);
		free(f->url);
		free(f->state);
		free(f->last_error);
	}
	free(doc->feeds);
	memset(doc, 0, sizeof(*doc));
}

/* ---- The table ---- */

enum { C_NAME, C_STATE, C_FOR, C_ATTEMPT, C_RTT, C_LASTMSG, C_RECONN, C_ERROR, NCOLS };

static const char *const col_names[NCOLS] = {"NAME", "STATE",    "FOR",    "ATTEMPT",
                                             "RTT",  "LAST-MSG", "RECONN", "LAST-ERROR"};

void status_client_duration(double secs, char *buf, size_t buflen)
{
	uint64_t s = secs > 0 && secs < 1e15 ? (uint64_t)secs : 0;

	if (s < 60)
		snprintf(buf, buflen, "%" PRIu64 "s", s);
	else if (s < 3600)
		snprintf(buf, buflen, "%" PRIu64 "m%02us", s / 60, (unsigned)(s % 60));
	else if (s < 86400)
		snprintf(buf, buflen, "%" PRIu64 "h%02um", s / 3600, (unsigned)(s % 3600 / 60));
	else
		snprintf(buf, buflen, "%" PRIu64 "d%02uh", s / 86400, (unsigned)(s % 86400 / 3600));
}

static void fmt_rtt(double ms, char *buf, size_t len)
{
	if (ms < 0 || !isfinite(ms))
		snprintf(buf, len, "-");
	else if (ms < 10)
		snprintf(buf, len, "%.1fms", ms);
	else if (ms < 10000)
		snprintf(buf, len, "%.0fms", ms);
	else
		snprintf(buf, len, "%.1fs", ms / 1000);
}

static void fmt_error(const struct status_feed *f, char *buf, size_t len)
{
	if (f->last_error && f->close_code)
		snprintf(buf, len, "%s (close %d)", f->last_error, f->close_code);
	else if (f->last_error)
		snprintf(buf, len, "%s", f->last_error);
	else if (f->close_code)
		snprintf(buf, len, "close %d", f->close_code);
	else
		snprintf(buf, len, "-");
}

/* Text from the server must not reach a terminal as escape sequences. */
static void sanitize(char *s)
{
	for (; *s; s++)
		if ((unsigned char)*s < 0x20 || *s == 0x7f)
			*s = '?';
}

#define CELL 512

static void row_cells(const struct status_feed *f, char c[NCOLS][CELL])
{
	snprintf(c[C_NAME], CELL, "%s", f->name);
	snprintf(c[C_STATE], CELL, "%s", f->state);
	status_client_duration(f->in_state_s, c[C_FOR], CELL);
	snprintf(c[C_ATTEMPT], CELL, "%" PRIu64, f->attempt);
	fmt_rtt(f->rtt_ms, c[C_RTT], CELL);
	if (f->last_message_age_s < 0)
		snprintf(c[C_LASTMSG], CELL, "-");
	else
		status_client_duration(f->last_message_age_s, c[C_LASTMSG], CELL);
	snprintf(c[C_RECONN], CELL, "%" PRIu64, f->reconnects);
	fmt_error(f, c[C_ERROR], CELL);
	for (int i = 0; i < NCOLS; i++)
		sanitize(c[i]);
}

static const char *state_color(const char *state)
{
	if (strcmp(state, "open") == 0)
		return "\033[32m";
	if (strcmp(state, "backoff") == 0 || strcmp(state, "connecting") == 0)
		return "\033[33m";
	return "\033[31m";
}

/* One row (the header when f is NULL); the last column is not padded: no trailing spaces. */
static void put_row(struct mbuf *out, const struct status_feed *f, const size_t w[NCOLS],
                    bool color)
{
	char c[NCOLS][CELL];

	for (int i = 0; i < NCOLS && !f; i++)
		snprintf(c[i], CELL, "%s", col_names[i]);
	if (f)
		row_cells(f, c);
	for (int i = 0; i < NCOLS; i++) {
		if (f && i == C_STATE && color)
			mbuf_printf(out, "%s%s\033[0m", state_color(f->state), c[i]);
		else
			mbuf_put(out, c[i], strlen(c[i]));
		if (i < NCOLS - 1)
			mbuf_printf(out, "%*s", (int)(w[i] - strlen(c[i]) + 2), "");
	}
	mbuf_put(out, "\n", 1);
}

static void put_summary(struct mbuf *out, const struct status_doc *doc)
{
	static const char *const phrase[FEED_NSTATES] = {
	    [FEED_IDLE] = "idle",
	    [FEED_RESOLVING] = "resolving",
	    [FEED_CONNECTING] = "connecting",
	    [FEED_CLOSING] = "closing",
	    [FEED_BACKOFF] = "in backoff",
	    [FEED_STOPPED] = "stopped",
	};
	uint64_t counts[FEED_NSTATES] = {0}, total = doc->has_counts ? 0 : doc->n_feeds;

	for (int s = 0; s < FEED_NSTATES; s++) {
		for (size_t i = 0; !doc->has_counts && i < doc->n_feeds; i++)
			counts[s] +=
			    strcmp(doc->feeds[i].state, feed_state_name((enum feed_state)s)) == 0;
		if (doc->has_counts)
			counts[s] = doc->counts[s], total += counts[s];
	}
	mbuf_printf(out, "%" PRIu64 "/%" PRIu64 " feeds open", counts[FEED_OPEN], total);
	for (int s = 0; s < FEED_NSTATES; s++)
		if (s != FEED_OPEN && counts[s])
			mbuf_printf(out, ", %" PRIu64 " %s", counts[s], phrase[s]);
	mbuf_put(out, "\n", 1);
}

int status_client_render(const char *json, size_t len, bool color, struct mbuf *out, char *err,
                         size_t errlen)
{
	struct status_doc doc;
	size_t w[NCOLS];
	char c[NCOLS][CELL];

	if (status_client_parse(json, len, &doc, err, errlen) < 0)
		return -1;
	for (int i = 0; i < NCOLS; i++)
		w[i] = strlen(col_names[i]);
	for (size_t k = 0; k < doc.n_feeds; k++) {
		row_cells(&doc.feeds[k], c);
		for (int i = 0; i < NCOLS; i++)
			w[i] = strlen(c[i]) > w[i] ? strlen(c[i]) : w[i];
	}
	put_row(out, NULL, w, false);
	for (size_t i = 0; i < doc.n_feeds; i++)
		put_row(out, &doc.feeds[i], w, color);
	put_summary(out, &doc);
	status_client_doc_fini(&doc);
	if (out->oom)
		snprintf(err, errlen, "out of memory");
	return out->oom ? -1 : 0;
}

/* ---- Fetching /status ---- */

#define STATUS_TIMEOUT_US (3 * 1000 * 1000)
#define STATUS_MAX_BYTES  (256u << 20)

/* Bounds the next blocking call by what is left of the deadline (on Linux this covers connect). */
static int set_timeout(int fd, int64_t deadline_us)
{
	int64_t left = deadline_us - mono_us();
	struct timeval tv = {.tv_sec = left / 1000000, .tv_usec = left % 1000000};

	if (left <= 0)
		return errno = ETIMEDOUT, -1;
	if (setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)) < 0 ||
	    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv)) < 0)
		return -1;
	return 0;
}

static int connect_one(const struct addrinfo *ai, int64_t deadline_us, char *why, size_t len)
{
	int fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC, 0);

	if (fd >= 0 && set_timeout(fd, deadline_us) == 0 &&
	    connect(fd, ai->ai_addr, ai->ai_addrlen) == 0)
		return fd;
	/* A connect cut short by SO_SNDTIMEO reports EINPROGRESS. */
	snprintf(why, len, "%s", errno == EINPROGRESS ? "timed out" : strerror(errno));
	if (fd >= 0)
		close(fd);
	return -1;
}

static int dial(const char *listen, int64_t deadline_us, char *err, size_t errlen)
{
	struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM};
	struct addrinfo *res, *ai;
	char host[256], port_s[8], why[160] = "no address";
	uint16_t port;
	int fd = -1, rc;

	if (url_parse_hostport(listen, host, sizeof(host), &port, why, sizeof(why)) < 0)
		return snprintf(err, errlen, "bad metrics address \"%s\": %s", listen, why), -1;
	snprintf(port_s, sizeof(port_s), "%u", port);
	hints.ai_flags = AI_NUMERICSERV;
	rc = getaddrinfo(host, port_s, &hints, &res);
	if (rc != 0)
		return snprintf(err, errlen, "%s: %s", listen, gai_strerror(rc)), -1;
	for (ai = res; ai && fd < 0; ai = ai->ai_next)
		fd = connect_one(ai, deadline_us, why, sizeof(why));
	freeaddrinfo(res);
	if (fd < 0)
		snprintf(err, errlen, "cannot connect to %s: %s", listen, why);
	return fd;
}

/* True once the headers and a Content-Length's worth of body are in (HTTP/1.0 may also close). */
static bool response_complete(const struct mbuf *b)
{
	const char *end = b->len ? strstr(b->p, "\r\n\r\n") : NULL;
	const char *cl = end ? strcasestr(b->p, "\ncontent-length:") : NULL;

	if (!cl || cl > end)
		return false;
	return b->len - (size_t)(end + 4 - b->p) >= strtoull(cl + 16, NULL, 10);
}

static int recv_all(int fd, struct mbuf *b, int64_t deadline_us)
{
	char buf[65536];

	while (!response_complete(b)) {
		ssize_t r = set_timeout(fd, deadline_us) < 0 ? -1 : recv(fd, buf, sizeof(buf), 0);

		if (r == 0)
			return 0;
		if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			errno = ETIMEDOUT;
		if (r < 0)
			return -1;
		mbuf_put(b, buf, (size_t)r);
		if (b->oom || b->len > STATUS_MAX_BYTES)
			return errno = EFBIG, -1;
	}
	return 0;
}

/* Checks the status line and finds the body. */
static int http_body(const struct mbuf *b, const char **body, size_t *len, char *err, size_t el)
{
	const char *end = b->len ? memmem(b->p, b->len, "\r\n\r\n", 4) : NULL;
	int code = 0;

	if (!end || sscanf(b->p, "HTTP/1.%*1[01] %3d", &code) != 1)
		return snprintf(err, el, "not an HTTP response"), -1;
	if (code != 200)
		return snprintf(err, el, "server answered %.*s", (int)strcspn(b->p, "\r\n"), b->p),
		       -1;
	*body = end + 4;
	*len = b->len - (size_t)(*body - b->p);
	return 0;
}

static int fetch(const char *listen, struct mbuf *resp, char *err, size_t errlen)
{
	int64_t deadline = mono_us() + STATUS_TIMEOUT_US;
	char req[320];
	int fd = dial(listen, deadline, err, errlen);
	int rc;

	if (fd < 0)
		return -1;
	snprintf(req, sizeof(req),
	         "GET /status HTTP/1.0\r\nHost: %s\r\nAccept: application/json\r\n\r\n", listen);
	errno = 0;
	/* A fresh socket's buffer takes the whole small request at once. */
	rc = send(fd, req, strlen(req), MSG_NOSIGNAL) == (ssize_t)strlen(req) ? 0 : -1;
	if (rc == 0)
		rc = recv_all(fd, resp, deadline);
	if (rc < 0)
		snprintf(err, errlen, "%s: %s", listen,
		         errno == ETIMEDOUT ? "timed out after 3 s" : strerror(errno));
	close(fd);
	return rc;
}

int status_client_run(const char *listen, FILE *out, bool color, char *err, size_t errlen)
{
	struct mbuf resp = {0}, table = {0};
	const char *body;
	size_t len;
	int rc = -1;

	if (fetch(listen, &resp, err, errlen) < 0)
		goto done;
	if (http_body(&resp, &body, &len, err, errlen) < 0)
		goto done;
	if (status_client_render(body, len, color, &table, err, errlen) < 0)
		goto done;
	if (fwrite(table.p, 1, table.len, out) != table.len || fflush(out) != 0) {
		snprintf(err, errlen, "writing the table: %s", strerror(errno));
		goto done;
	}
	rc = 0;
done:
	mbuf_free(&resp);
	mbuf_free(&table);
	return rc;
}
