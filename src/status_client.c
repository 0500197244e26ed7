/* `wsbeat status`: fetch /status, read it with jansson, print a table. */
#include "wsbeat/status_client.h"

#include <errno.h>
#include <inttypes.h>
#include <jansson.h>
#include <math.h>
#include <netdb.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include "wsbeat/shard.h"
#include "wsbeat/url.h"
#include "wsbeat/util.h"

/* ---- The /status document, read with jansson ---- */

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
    FIELD("last_error_age_s", F_REAL, last_error_age_s),
    FIELD("attempt", F_UINT, attempt),
    FIELD("connects", F_UINT, connects),
    FIELD("reconnects", F_UINT, reconnects),
    FIELD("close_code", F_CODE, close_code),
};

/* A value of the wrong shape: jansson keeps no offsets for values, so the path names it. */
__attribute__((format(printf, 3, 4))) static int shape_fail(char *err, size_t errlen,
                                                            const char *fmt, ...)
{
	char why[160];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(why, sizeof(why), fmt, ap);
	va_end(ap);
	snprintf(err, errlen, "malformed status JSON: %s", why);
	return -1;
}

/* A count: a non-negative whole number (3 and 3.0 alike). */
static int get_count(const json_t *v, uint64_t *out)
{
	double d;

	if (json_is_integer(v) && json_integer_value(v) >= 0) {
		*out = (uint64_t)json_integer_value(v);
		return 0;
	}
	if (!json_is_real(v))
		return -1;
	d = json_real_value(v);
	if (!(d >= 0 && d < 18446744073709551616.0) || d != floor(d))
		return -1;
	*out = (uint64_t)d;
	return 0;
}

static int set_string(const json_t *v, char **dst, const char *what, size_t i, char *err,
                      size_t errlen)
{
	if (json_is_null(v))
		return 0;
	if (!json_is_string(v))
		return shape_fail(err, errlen, "feeds[%zu].%s is not a string", i, what);
	/* Without JSON_ALLOW_NUL a string holds no NUL: strdup takes it whole. */
	*dst = strdup(json_string_value(v));
	return *dst ? 0 : shape_fail(err, errlen, "out of memory");
}

/* Stores one member of feed i; null gives NULL strings, -1 for reals, 0 for counts and codes. */
static int set_field(const struct field *fd, const json_t *v, char *base, size_t i, char *err,
                     size_t errlen)
{
	uint64_t u = 0;
	double d = -1;

	if (fd->kind == F_STR)
		return set_string(v, (char **)(void *)(base + fd->off), fd->key, i, err, errlen);
	if (fd->kind == F_REAL) {
		if (!json_is_null(v) && !json_is_number(v))
			return shape_fail(err, errlen, "feeds[%zu].%s is not a number", i, fd->key);
		if (!json_is_null(v))
			d = json_number_value(v);
		memcpy(base + fd->off, &d, sizeof(d));
		return 0;
	}
	if (!json_is_null(v) && get_count(v, &u) < 0)
		return shape_fail(err, errlen, "feeds[%zu].%s is not a count", i, fd->key);
	if (fd->kind == F_UINT)
		memcpy(base + fd->off, &u, sizeof(u));
	else if (u > 65535)
		return shape_fail(err, errlen, "feeds[%zu].%s is out of range", i, fd->key);
	else
		*(int *)(void *)(base + fd->off) = (int)u;
	return 0;
}

/* Feed i: the known members (others are skipped, so the server may add fields). */
static int parse_feed(const json_t *v, struct status_feed *f, size_t i, char *err, size_t errlen)
{
	const json_t *m;

	if (!json_is_object(v))
		return shape_fail(err, errlen, "feeds[%zu] is not an object", i);
	f->rtt_ms = f->last_message_age_s = f->last_error_age_s = -1;
	for (size_t k = 0; k < ARRAY_SIZE(feed_fields); k++) {
		m = json_object_get(v, feed_fields[k].key);
		if (m && set_field(&feed_fields[k], m, (char *)f, i, err, errlen) < 0)
			return -1;
	}
	if (!f->name || !f->state)
		return shape_fail(err, errlen, "feeds[%zu] has no \"name\" or \"state\"", i);
	return 0;
}

/* "counts": every member a count; names that are not states are ignored. */
static int parse_counts(json_t *v, struct status_doc *doc, char *err, size_t errlen)
{
	uint64_t n;

	if (!json_is_object(v))
		return shape_fail(err, errlen, "\"counts\" is not an object");
	for (void *it = json_object_iter(v); it; it = json_object_iter_next(v, it)) {
		const char *key = json_object_iter_key(it);
		if (get_count(json_object_iter_value(it), &n) < 0)
			return shape_fail(err, errlen, "counts.%.40s is not a count", key);
		for (int s = 0; s < FEED_NSTATES; s++)
			if (strcmp(key, feed_state_name((enum feed_state)s)) == 0)
				doc->counts[s] = n;
	}
	doc->has_counts = true;
	return 0;
}

static int parse_doc(json_t *root, struct status_doc *doc, char *err, size_t errlen)
{
	json_t *feeds = json_object_get(root, "feeds"), *counts = json_object_get(root, "counts");
	json_t *shard = json_object_get(root, "shard");
	size_t n = json_array_size(feeds);

	if (!json_is_array(feeds))
		return shape_fail(err, errlen, "no \"feeds\" array");
	if (shard && !json_is_null(shard) &&
	    (!json_is_string(shard) || !(doc->shard = strdup(json_string_value(shard)))))
		return shape_fail(err, errlen, "\"shard\" is not a string");
	if (n && !(doc->feeds = calloc(n, sizeof(*doc->feeds))))
		return shape_fail(err, errlen, "out of memory");
	for (size_t i = 0; i < n; i++) {
		doc->n_feeds = i + 1; /* so that a failure frees what this one got */
		if (parse_feed(json_array_get(feeds, i), &doc->feeds[i], i, err, errlen) < 0)
			return -1;
	}
	return counts ? parse_counts(counts, doc, err, errlen) : 0;
}

int status_client_parse(const char *json, size_t len, struct status_doc *doc, char *err,
                        size_t errlen)
{
	json_error_t e;
	json_t *root;
	int rc;

	memset(doc, 0, sizeof(*doc));
	/* Strict: one object, nothing after it (jansson's default), no duplicate keys, and
	 * bounded nesting (jansson stops at a depth of 2048). */
	root = json_loadb(json, len, JSON_REJECT_DUPLICATES, &e);
	if (!root) {
		snprintf(err, errlen, "malformed status JSON at offset %d: %s", e.position, e.text);
		return -1;
	}
	rc = json_is_object(root) ? parse_doc(root, doc, err, errlen)
	                          : shape_fail(err, errlen, "the document is not an object");
	json_decref(root);
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
	free(doc->shard);
	memset(doc, 0, sizeof(*doc));
}

/* ---- The table ---- */

/* SHARD is shown only in a table of several shards. */
enum { C_SHARD, C_NAME, C_STATE, C_FOR, C_ATTEMPT, C_RTT, C_LASTMSG, C_RECONN, C_ERROR, NCOLS };

static const char *const col_names[NCOLS] = {"SHARD", "NAME",     "STATE",  "FOR",       "ATTEMPT",
                                             "RTT",   "LAST-MSG", "RECONN", "LAST-ERROR"};

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
	char code[24] = "", ago[40] = "";

	if (f->close_code)
		snprintf(code, sizeof(code), "close %d", f->close_code);
	if (f->last_error && f->last_error_age_s >= 0) {
		status_client_duration(f->last_error_age_s, ago, sizeof(ago) - 4);
		strcat(ago, " ago");
	}
	if (f->last_error)
		snprintf(buf, len, "%s%s%s%s%s%s", f->last_error, *code || *ago ? " (" : "", code,
		         *code && *ago ? ", " : "", ago, *code || *ago ? ")" : "");
	else if (*code)
		snprintf(buf, len, "%s", code);
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

static void row_cells(const struct status_feed *f, const char *shard, char c[NCOLS][CELL])
{
	snprintf(c[C_SHARD], CELL, "%s", shard ? shard : "-");
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
static void put_row(struct mbuf *out, const struct status_feed *f, const char *shard,
                    const size_t w[NCOLS], bool color, int first)
{
	char c[NCOLS][CELL];

	for (int i = 0; i < NCOLS && !f; i++)
		snprintf(c[i], CELL, "%s", col_names[i]);
	if (f)
		row_cells(f, shard, c);
	for (int i = first; i < NCOLS; i++) {
		if (f && i == C_STATE && color)
			mbuf_printf(out, "%s%s\033[0m", state_color(f->state), c[i]);
		else
			mbuf_put(out, c[i], strlen(c[i]));
		if (i < NCOLS - 1)
			mbuf_printf(out, "%*s", (int)(w[i] - strlen(c[i]) + 2), "");
	}
	mbuf_put(out, "\n", 1);
}

static void put_summary(struct mbuf *out, const struct status_doc *docs, size_t n_docs)
{
	static const char *const phrase[FEED_NSTATES] = {
	    [FEED_IDLE] = "idle",
	    [FEED_RESOLVING] = "resolving",
	    [FEED_CONNECTING] = "connecting",
	    [FEED_CLOSING] = "closing",
	    [FEED_BACKOFF] = "in backoff",
	    [FEED_STOPPED] = "stopped",
	};
	uint64_t counts[FEED_NSTATES] = {0}, total = 0;

	for (size_t d = 0; d < n_docs; d++) {
		const struct status_doc *doc = &docs[d];

		total += doc->has_counts ? 0 : doc->n_feeds;
		for (int s = 0; s < FEED_NSTATES; s++) {
			for (size_t i = 0; !doc->has_counts && i < doc->n_feeds; i++)
				counts[s] += strcmp(doc->feeds[i].state,
				                    feed_state_name((enum feed_state)s)) == 0;
			if (doc->has_counts)
				counts[s] += doc->counts[s], total += doc->counts[s];
		}
	}
	mbuf_printf(out, "%" PRIu64 "/%" PRIu64 " feeds open", counts[FEED_OPEN], total);
	for (int s = 0; s < FEED_NSTATES; s++)
		if (s != FEED_OPEN && counts[s])
			mbuf_printf(out, ", %" PRIu64 " %s", counts[s], phrase[s]);
	mbuf_put(out, "\n", 1);
}

void status_client_render_docs(const struct status_doc *docs, size_t n_docs, bool color,
                               struct mbuf *out)
{
	int first = n_docs > 1 ? C_SHARD : C_NAME;
	size_t w[NCOLS];
	char c[NCOLS][CELL];

	for (int i = 0; i < NCOLS; i++)
		w[i] = strlen(col_names[i]);
	for (size_t d = 0; d < n_docs; d++) {
		for (size_t k = 0; k < docs[d].n_feeds; k++) {
			row_cells(&docs[d].feeds[k], docs[d].shard, c);
			for (int i = 0; i < NCOLS; i++)
				w[i] = strlen(c[i]) > w[i] ? strlen(c[i]) : w[i];
		}
	}
	put_row(out, NULL, NULL, w, false, first);
	for (size_t d = 0; d < n_docs; d++)
		for (size_t i = 0; i < docs[d].n_feeds; i++)
			put_row(out, &docs[d].feeds[i], docs[d].shard, w, color, first);
	put_summary(out, docs, n_docs);
}

int status_client_render(const char *json, size_t len, bool color, struct mbuf *out, char *err,
                         size_t errlen)
{
	struct status_doc doc;

	if (status_client_parse(json, len, &doc, err, errlen) < 0)
		return -1;
	status_client_render_docs(&doc, 1, color, out);
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

/* GET /status from listen, parsed. */
static int fetch_doc(const char *listen, struct status_doc *doc, char *err, size_t errlen)
{
	struct mbuf resp = {0};
	const char *body;
	size_t len;
	int rc = -1;

	if (fetch(listen, &resp, err, errlen) == 0 &&
	    http_body(&resp, &body, &len, err, errlen) == 0 &&
	    status_client_parse(body, len, doc, err, errlen) == 0)
		rc = 0;
	mbuf_free(&resp);
	return rc;
}

static int write_table(const struct mbuf *table, FILE *out, char *err, size_t errlen)
{
	if (table->oom)
		return snprintf(err, errlen, "out of memory"), -1;
	if (fwrite(table->p, 1, table->len, out) != table->len || fflush(out) != 0)
		return snprintf(err, errlen, "writing the table: %s", strerror(errno)), -1;
	return 0;
}

int status_client_run_shards(const char *base, FILE *out, FILE *warn, bool color, char *err,
                             size_t errlen)
{
	struct status_doc *docs = calloc(SHARD_MAX, sizeof(*docs));
	char addr[300], why[512], first_why[512] = "";
	unsigned n = 0, got = 0, missing = 0, k, sk, sn;
	struct mbuf table = {0};
	int rc = -1;

	if (!docs)
		return snprintf(err, errlen, "out of memory"), -1;
	for (k = 0; n ? k < n : k < STATUS_SHARD_PROBE; k++) {
		if (shard_listen(base, k, addr, sizeof(addr), why, sizeof(why)) < 0)
			break; /* beyond the last port */
		if (fetch_doc(addr, &docs[got], why, sizeof(why)) < 0) {
			if (n)
				fprintf(warn, "wsbeat status: shard %u/%u: %s\n", k, n, why);
			else if (!*first_why)
				snprintf(first_why, sizeof(first_why), "%s", why);
			missing += n != 0;
			continue;
		}
		if (!n) {
			/* The first answer tells how many; the ones before it did not answer. */
			n = docs[got].shard && shard_parse(docs[got].shard, &sk, &sn) == 0 ? sn : 1;
			for (unsigned j = 0; j < k && j < n; j++)
				fprintf(warn, "wsbeat status: shard %u/%u: not answering\n", j, n);
			missing = k < n ? k : n;
			if (k >= n) { /* a process that is not shard k answered there */
				status_client_doc_fini(&docs[got]);
				n = 0;
				continue;
			}
		}
		got++;
	}
	if (!got) {
		snprintf(err, errlen, "no shard answered on the %u ports from %s: %s", k, base,
		         first_why);
		goto done;
	}
	status_client_render_docs(docs, got, color, &table);
	if (write_table(&table, out, err, errlen) < 0)
		goto done;
	rc = missing ? 1 : 0;
	if (missing)
		snprintf(err, errlen, "%u of %u shards did not answer", missing, n);
done:
	for (unsigned i = 0; i < got; i++)
		status_client_doc_fini(&docs[i]);
	free(docs);
	mbuf_free(&table);
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
