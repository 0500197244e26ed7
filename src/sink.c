/*
 * The sink registry: shared sinks, bounded buffers, record encoding and the flush timer.
 *
 * A record is encoded straight into its sink's buffer after its exact length has been
 * computed, so it is either appended whole or dropped whole. Pending bytes are written by one
 * registry timer on the shared timer queue, in SINK_WRITE_CHUNK writes for at most
 * SINK_TICK_BUDGET_US per sink per tick; a destination that answers EAGAIN is retried with a
 * doubling back-off instead of being polled, because regular files cannot be polled and the
 * loop belongs to lws.
 */
#include "sink_internal.h"

#include <errno.h>
#include <inttypes.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "wsbeat/json.h"
#include "wsbeat/log.h"
#include "wsbeat/util.h"

#define BUF_INIT          (64u * 1024)
#define BUF_KEEP_MAX      (1024u * 1024) /* an emptied buffer larger than this is released */
#define RETRY_MIN_US      1000
#define RETRY_MAX_US      100000
#define ERROR_RETRY_US    1000000
#define REPORT_EVERY_US   1000000
#define FLUSH_POLL_MAX_MS 10
#define FLUSH_POLL_FDS    32
#define FREE_FLUSH_MS     1000

struct sinks {
	struct timerq *tq;
	struct tq_timer timer;
	struct sink *list;
};

/* discard needs no sink at all: feeds only count. */
static const struct sink_ops sink_discard_ops = {.type = SINK_DISCARD, .name = "discard"};

static const struct sink_ops *const sink_types[] = {
    &sink_discard_ops,
    &sink_stdout_ops,
    &sink_file_ops,
};

/* The operations of c's type, or NULL with a reason in err. Clears err either way. */
static const struct sink_ops *ops_for(const struct cfg_sink *c, char *err, size_t errlen)
{
	if (errlen)
		err[0] = '\0';
	for (size_t i = 0; i < ARRAY_SIZE(sink_types); i++)
		if (sink_types[i]->type == c->type)
			return sink_types[i];
	snprintf(err, errlen, "sink.type: unknown sink type %d", (int)c->type);
	return NULL;
}

static size_t pending(const struct sink *s)
{
	return s->len - s->off;
}

/* ---- reporting: drops and write errors, at most one log record per second per sink ---- */

static void report(struct sink *s, int64_t now)
{
	char dropped[24];
	struct log_kv kv[] = {{"sink", s->name}, {"event", NULL}, {"dropped", NULL}};

	snprintf(dropped, sizeof(dropped), "%" PRIu64, s->drops_unreported);
	kv[2].val = s->drops_unreported ? dropped : NULL;
	if (s->last_errno) {
		kv[1].val = "sink_error";
		log_rec(LOG_LVL_ERROR, kv, ARRAY_SIZE(kv), "write failed (%s); kept buffered",
		        strerror(s->last_errno));
	} else {
		kv[1].val = "sink_drop";
		log_rec(LOG_LVL_WARNING, kv, ARRAY_SIZE(kv),
		        "buffer full (%u bytes): records dropped", SINK_BUFFER_MAX);
	}
	s->drops_unreported = 0;
	s->last_errno = 0;
	s->last_report_us = now;
}

/* Reports now if a second has passed since the last report, else makes the timer come back. */
static void maybe_report(struct sink *s, int64_t now)
{
	int64_t next = s->last_report_us + REPORT_EVERY_US;

	if (!s->drops_unreported && !s->last_errno)
		return;
	if (now >= next)
		report(s, now);
	else if (next < s->due_us)
		s->due_us = next;
}

/* ---- the registry timer ---- */

static void arm_at(struct sinks *ss, int64_t at)
{
	if (at != TQ_NEVER && (!tq_armed(&ss->timer) || ss->timer.deadline_us > at))
		tq_arm(ss->tq, &ss->timer, at);
}

static void consumed(struct sink *s, size_t n)
{
	s->off += n;
	s->st.bytes_written += n;
	if (n)
		s->partial = s->buf[s->off - 1] != '\n';
	if (s->off < s->len)
		return;
	s->off = s->len = 0;
	if (s->cap > BUF_KEEP_MAX) {
		free(s->buf);
		s->buf = NULL;
		s->cap = 0;
	}
}

/* One write of at most max pending bytes: how many were written, or -errno. */
static ssize_t write_some(struct sink *s, size_t max)
{
	size_t n = pending(s) < max ? pending(s) : max;
	ssize_t w;

	do
		w = write(s->fd, s->buf + s->off, n);
	while (w < 0 && errno == EINTR);
	if (w < 0)
		return -errno;
	consumed(s, (size_t)w);
	return w;
}

/*
 * One tick writes chunk after chunk until the buffer is empty, the destination takes less
 * than a chunk (a full pipe) or refuses, or SINK_TICK_BUDGET_US has passed: the loop wakes
 * about once per io_slack under load, so one chunk per tick would cap a capture at
 * SINK_WRITE_CHUNK x wake-ups a second (25 MB/s at 10 ms), below what 100k messages/s write.
 */
static void sink_tick(struct sink *s, int64_t now)
{
	int64_t stop = mono_us() + SINK_TICK_BUDGET_US; /* now may be the loop's older time */
	size_t want = 0;
	ssize_t w = 0;

	while (pending(s) > 0) {
		want = pending(s) < SINK_WRITE_CHUNK ? pending(s) : SINK_WRITE_CHUNK;
		w = write_some(s, want);
		if (w != (ssize_t)want || pending(s) == 0 || mono_us() >= stop)
			break;
	}
	if (pending(s) == 0) {
		s->due_us = TQ_NEVER;
	} else if (w > 0) {
		/* A short write means the pipe is full: look again soon, not at once. */
		s->due_us = now + (w == (ssize_t)want ? 1 : RETRY_MIN_US);
		s->retry_us = RETRY_MIN_US;
	} else if (w == -EAGAIN) {
		s->due_us = now + s->retry_us;
		s->retry_us = s->retry_us * 2 > RETRY_MAX_US ? RETRY_MAX_US : s->retry_us * 2;
	} else {
		s->last_errno = (int)-w;
		s->due_us = now + ERROR_RETRY_US;
	}
	maybe_report(s, now);
}

static void sink_free_mem(struct sink *s)
{
	if (!s)
		return;
	free(s->buf);
	free(s->path);
	free(s->name);
	free(s);
}

static void sink_destroy(struct sink *s)
{
	struct sink **pp = &s->ss->list;

	while (*pp != s)
		pp = &(*pp)->next;
	*pp = s->next;
	if (s->drops_unreported || s->last_errno)
		report(s, mono_us());
	s->ops->close(s, s->fd);
	sink_free_mem(s);
}

static void on_timer(struct tq_timer *t, int64_t now)
{
	struct sinks *ss = container_of(t, struct sinks, timer);
	struct sink *s, *next;
	int64_t wake = TQ_NEVER;

	for (s = ss->list; s; s = next) {
		next = s->next;
		if (s->due_us <= now)
			sink_tick(s, now);
		if (s->refs == 0 && pending(s) == 0) {
			sink_destroy(s); /* put while data was still pending */
			continue;
		}
		if (s->due_us < wake)
			wake = s->due_us;
	}
	arm_at(ss, wake);
}

/* ---- buffering and record encoding ---- */

static int grow(struct sink *s, size_t need)
{
	size_t cap = s->cap ? s->cap : BUF_INIT;
	char *b;

	while (cap < need)
		cap *= 2;
	if (cap > SINK_BUFFER_MAX)
		cap = SINK_BUFFER_MAX;
	b = realloc(s->buf, cap);
	if (!b)
		return -1;
	s->buf = b;
	s->cap = cap;
	return 0;
}

/* Room for n more bytes at buf + len, or NULL when the bound (or memory) does not allow it. */
static char *reserve(struct sink *s, size_t n)
{
	if (n > SINK_BUFFER_MAX - pending(s))
		return NULL;
	if (s->cap - s->len >= n)
		return s->buf + s->len;
	if (s->off > 0) {
		memmove(s->buf, s->buf + s->off, pending(s));
		s->len -= s->off;
		s->off = 0;
	}
	if (s->cap - s->len < n && grow(s, s->len + n) < 0)
		return NULL;
	return s->buf + s->len;
}

enum piece_kind { PIECE_RAW, PIECE_STR, PIECE_B64 };

/* A part of a record: literal JSON, bytes to escape as a string's inside, or bytes to base64. */
struct piece {
	enum piece_kind kind;
	const void *p;
	size_t n;
};

#define RAW(str)                                                                                   \
	{                                                                                          \
		PIECE_RAW, (str), strlen(str)                                                      \
	}
#define STR(str)                                                                                   \
	{                                                                                          \
		PIECE_STR, (str) ? (str) : "", (str) ? strlen(str) : 0                             \
	}

/* Writes pc (dst NULL: only measures); returns its encoded length. */
static size_t piece_put(char *dst, const struct piece *pc)
{
	switch (pc->kind) {
	case PIECE_STR:
		return json_escape(dst, pc->p, pc->n);
	case PIECE_B64:
		return json_base64(dst, pc->p, pc->n);
	default:
		if (dst && pc->n)
			memcpy(dst, pc->p, pc->n);
		return pc->n;
	}
}

static void drop(struct sink *s)
{
	s->st.dropped_records++;
	s->drops_unreported++;
	maybe_report(s, mono_us());
	arm_at(s->ss, s->due_us);
}

/*
 * The buffer is full: before dropping, write what the destination takes now (a regular file
 * takes everything, as the timer's writes do; a full pipe answers EAGAIN at once). Under a
 * load the loop cannot keep up with, the timer's time budget would otherwise lose records
 * that a write could have kept; the loop slows down instead, and TCP pushes back on the peers.
 */
static bool make_room(struct sink *s, size_t need)
{
	while (pending(s) > 0 && need > SINK_BUFFER_MAX - pending(s)) {
		size_t chunk = pending(s) < SINK_WRITE_CHUNK ? pending(s) : SINK_WRITE_CHUNK;

		if (write_some(s, chunk) <= 0)
			break;
	}
	return need <= SINK_BUFFER_MAX - pending(s);
}

/* The most pc can encode to: what escaping can make of its bytes at worst. */
static size_t piece_max(const struct piece *pc)
{
	return pc->kind == PIECE_STR ? 6 * pc->n : piece_put(NULL, pc);
}

/*
 * Appends the record made of pc whole, or counts it dropped. Encoded in one pass when its
 * worst case fits the buffer's bound (nearly always); measured first only near the bound, so
 * that a record that fits is never dropped for what escaping might have made of it.
 */
static void emit(struct sink *s, const struct piece *pc, size_t n)
{
	size_t total = 0;
	bool was_empty = pending(s) == 0;
	int64_t now;
	char *dst, *start;

	for (size_t i = 0; i < n; i++)
		total += piece_max(&pc[i]);
	if (total > SINK_BUFFER_MAX - pending(s)) {
		total = 0;
		for (size_t i = 0; i < n; i++)
			total += piece_put(NULL, &pc[i]);
	}
	dst = start = reserve(s, total);
	if (!dst && make_room(s, total))
		dst = start = reserve(s, total);
	if (!dst) {
		drop(s);
		return;
	}
	for (size_t i = 0; i < n; i++)
		dst += piece_put(dst, &pc[i]);
	s->len += (size_t)(dst - start);
	s->st.records++;
	/* Only an empty sink can be waiting for something else (a drop report) than writing. */
	if (was_empty && s->due_us > (now = mono_us()))
		s->due_us = now;
	arm_at(s->ss, s->due_us);
}

/*
 * RFC 3339 UTC with microseconds: 2026-11-26T14:00:00.123456Z (27 bytes and a NUL). The
 * date and time up to the second are formatted once per second, not once per record.
 */
static void fmt_ts(char out[28], int64_t us)
{
	static time_t cached_sec = -1;
	static char cached[64]; /* room for what the compiler cannot rule out */
	time_t sec = (time_t)(us / 1000000);
	long frac = (long)(us % 1000000);

	if (frac < 0) {
		frac += 1000000;
		sec--;
	}
	if (sec != cached_sec) {
		struct tm tm;

		gmtime_r(&sec, &tm);
		snprintf(cached, sizeof(cached), "%04d-%02d-%02dT%02d:%02d:%02d",
		         (tm.tm_year + 1900) % 10000, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour,
		         tm.tm_min, tm.tm_sec);
		cached_sec = sec;
	}
	memcpy(out, cached, 19);
	out[19] = '.';
	for (int i = 25; i >= 20; i--, frac /= 10)
		out[i] = (char)('0' + frac % 10);
	out[26] = 'Z';
	out[27] = '\0';
}

/* {"ts":…,"feed":…,"conn":N, followed by the record's own fields in tail. */
/* Appends the decimal digits of v at p; returns the end. */
static char *put_uint(char *p, unsigned v)
{
	char tmp[10];
	int n = 0;

	do
		tmp[n++] = (char)('0' + v % 10);
	while (v /= 10);
	while (n > 0)
		*p++ = tmp[--n];
	return p;
}

static char *put_lit(char *p, const char *lit, size_t n)
{
	memcpy(p, lit, n);
	return p + n;
}

#define PUT_LIT(p, lit) put_lit((p), (lit), sizeof(lit) - 1)

/* {"ts":…,"feed":…,"conn":N, followed by the record's own fields in tail. */
static void record(struct sink *s, int64_t ts_us, const char *feed, unsigned conn,
                   const struct piece *tail, size_t ntail)
{
	char head[48], mid[32], *h, *m;
	struct piece pc[8] = {{PIECE_RAW, head, 0}, STR(feed), {PIECE_RAW, mid, 0}};
	size_t n = 3;

	h = PUT_LIT(head, "{\"ts\":\"");
	fmt_ts(h, ts_us);
	h = PUT_LIT(h + 27, "\",\"feed\":\"");
	m = PUT_LIT(mid, "\",\"conn\":");
	m = put_uint(m, conn);
	*m++ = ',';
	pc[0].n = (size_t)(h - head);
	pc[2].n = (size_t)(m - mid);
	for (size_t i = 0; i < ntail && n < ARRAY_SIZE(pc); i++)
		pc[n++] = tail[i];
	emit(s, pc, n);
}

void sink_message(struct sink *s, int64_t ts_real_us, const char *feed, unsigned conn, bool binary,
                  const void *data, size_t len)
{
	struct piece tail[] = {
	    RAW(binary ? "\"type\":\"binary\",\"data\":\"" : "\"type\":\"text\",\"data\":\""),
	    {binary ? PIECE_B64 : PIECE_STR, data, len},
	    RAW("\"}\n"),
	};

	if (s)
		record(s, ts_real_us, feed, conn, tail, ARRAY_SIZE(tail));
}

void sink_open_record(struct sink *s, int64_t ts_real_us, const char *feed, unsigned conn,
                      const char *url)
{
	struct piece with_url[] = {RAW("\"event\":\"open\",\"url\":\""), STR(url), RAW("\"}\n")};
	struct piece no_url[] = {RAW("\"event\":\"open\"}\n")};

	if (!s)
		return;
	if (url)
		record(s, ts_real_us, feed, conn, with_url, ARRAY_SIZE(with_url));
	else
		record(s, ts_real_us, feed, conn, no_url, ARRAY_SIZE(no_url));
}

void sink_closed_record(struct sink *s, int64_t ts_real_us, const char *feed, unsigned conn,
                        int code, const char *reason)
{
	char head[64];
	struct piece tail[] = {{PIECE_RAW, head, 0}, STR(reason), RAW("\"}\n")};

	if (!s)
		return;
	snprintf(head, sizeof(head), "\"event\":\"closed\",\"code\":%d,\"reason\":\"", code);
	tail[0].n = strlen(head);
	record(s, ts_real_us, feed, conn, tail, ARRAY_SIZE(tail));
}

/* ---- the registry ---- */

struct sinks *sinks_new(struct timerq *tq)
{
	struct sinks *ss = calloc(1, sizeof(*ss));

	if (!ss)
		return NULL;
	if (tq_reserve(tq, 1) < 0) {
		free(ss);
		return NULL;
	}
	ss->tq = tq;
	tq_timer_init(&ss->timer, on_timer);
	return ss;
}

void sinks_free(struct sinks *ss)
{
	if (!ss)
		return;
	sinks_flush_all(ss, FREE_FLUSH_MS);
	tq_cancel(ss->tq, &ss->timer);
	while (ss->list)
		sink_destroy(ss->list);
	free(ss);
}

int sink_check(const struct cfg_sink *c, char *err, size_t errlen)
{
	const struct sink_ops *ops = ops_for(c, err, errlen);

	if (!ops)
		return -1;
	return ops->check ? ops->check(c, err, errlen) : 0;
}

static struct sink *find_by_path(struct sinks *ss, const struct sink_ops *ops, const char *path)
{
	for (struct sink *s = ss->list; s; s = s->next)
		if (s->ops == ops &&
		    (s->path == path || (s->path && path && !strcmp(s->path, path))))
			return s;
	return NULL;
}

/* Another sink already writing to the file that n has just opened (two names, one file). */
static struct sink *find_by_id(struct sinks *ss, const struct sink *n)
{
	for (struct sink *s = ss->list; s; s = s->next)
		if (s != n && s->ops == n->ops && s->dev == n->dev && s->ino == n->ino)
			return s;
	return NULL;
}

static struct sink *sink_create(struct sinks *ss, const struct sink_ops *ops,
                                const struct cfg_sink *c, char *err, size_t errlen)
{
	struct sink *s = malloc(sizeof(*s)), *other;

	if (s)
		*s = (struct sink){.ss = ss,
		                   .ops = ops,
		                   .saved_flags = -1,
		                   .due_us = TQ_NEVER,
		                   .retry_us = RETRY_MIN_US,
		                   .last_report_us = -REPORT_EVERY_US,
		                   .path = c->path ? strdup(c->path) : NULL,
		                   .name = strdup(c->path ? c->path : ops->name)};
	if (!s || !s->name || (c->path && !s->path)) {
		snprintf(err, errlen, "sink: out of memory");
		sink_free_mem(s);
		return NULL;
	}
	s->fd = ops->open(s, err, errlen);
	other = s->fd < 0 ? NULL : find_by_id(ss, s);
	if (s->fd < 0 || other) {
		if (other)
			ops->close(s, s->fd);
		sink_free_mem(s);
		return other;
	}
	s->next = ss->list;
	ss->list = s;
	return s;
}

struct sink *sinks_get(struct sinks *ss, const struct cfg_sink *c, char *err, size_t errlen)
{
	const struct sink_ops *ops = ops_for(c, err, errlen);
	struct sink *s;

	if (!ops || !ops->open)
		return NULL;
	s = find_by_path(ss, ops, c->path);
	if (!s)
		s = sink_create(ss, ops, c, err, errlen);
	if (s)
		s->refs++;
	return s;
}

void sink_put(struct sink *s)
{
	if (!s || --s->refs > 0)
		return;
	/* With data still pending the flush timer frees the sink once it is written out. */
	if (pending(s) == 0)
		sink_destroy(s);
}

/*
 * Before switching files, the rest of a partly written record goes to the old file so that
 * neither file holds a broken line.
 */
static void finish_record(struct sink *s)
{
	const char *nl;
	size_t left;

	if (!s->partial || !pending(s))
		return;
	nl = memchr(s->buf + s->off, '\n', pending(s));
	left = nl ? (size_t)(nl - (s->buf + s->off)) + 1 : pending(s);
	for (int tries = 0; left > 0 && tries < 10; tries++) {
		ssize_t w = write_some(s, left);

		if (w > 0)
			left -= (size_t)w;
		else if (w == -EAGAIN)
			poll(&(struct pollfd){.fd = s->fd, .events = POLLOUT}, 1,
			     FLUSH_POLL_MAX_MS);
		else
			return;
	}
}

static void sink_reopen(struct sink *s)
{
	struct log_kv kv[] = {{"sink", s->name}, {"event", "reopen"}};
	char err[512];
	int fd = s->ops->open(s, err, sizeof(err));

	if (fd < 0) {
		log_rec(LOG_LVL_ERROR, kv, ARRAY_SIZE(kv),
		        "cannot reopen, keeping the old file: %s", err);
		return;
	}
	finish_record(s);
	s->ops->close(s, s->fd);
	s->fd = fd;
	log_rec(LOG_LVL_INFO, kv, ARRAY_SIZE(kv), "reopened");
}

void sinks_reopen_all(struct sinks *ss)
{
	for (struct sink *s = ss->list; s; s = s->next)
		if (s->ops->reopen)
			sink_reopen(s);
}

/* Writes what each sink can take now; counts the sinks still holding data. */
static size_t flush_pass(struct sinks *ss, struct pollfd *pf, nfds_t *npf)
{
	size_t busy = 0;

	for (struct sink *s = ss->list; s; s = s->next) {
		ssize_t w = 0;

		while (pending(s) && (w = write_some(s, pending(s))) > 0)
			;
		if (!pending(s))
			continue;
		busy++;
		if (w == -EAGAIN && *npf < FLUSH_POLL_FDS)
			pf[(*npf)++] = (struct pollfd){.fd = s->fd, .events = POLLOUT};
		else if (w < 0 && w != -EAGAIN)
			s->last_errno = (int)-w;
	}
	return busy;
}

int sinks_flush_all(struct sinks *ss, int timeout_ms)
{
	int64_t deadline = mono_us() + (int64_t)timeout_ms * 1000;
	int rc = 0;

	for (;;) {
		struct pollfd pf[FLUSH_POLL_FDS];
		nfds_t npf = 0;
		int64_t left;

		if (flush_pass(ss, pf, &npf) == 0)
			break;
		left = (deadline - mono_us() + 999) / 1000;
		if (left <= 0) {
			rc = -1;
			break;
		}
		/* Capped so that sinks failing with other errors than EAGAIN are retried too. */
		poll(pf, npf, left < FLUSH_POLL_MAX_MS ? (int)left : FLUSH_POLL_MAX_MS);
	}
	for (struct sink *s = ss->list; s; s = s->next)
		maybe_report(s, mono_us());
	return rc;
}

const struct sink_stats *sink_stats(const struct sink *s)
{
	return s ? &s->st : NULL;
}

size_t sink_pending(const struct sink *s)
{
	return s ? pending(s) : 0;
}
