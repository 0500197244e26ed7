/* Metrics rendering: Prometheus text and the /status JSON document, from feed snapshots. */
#include "wsbeat/metrics.h"

#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "wsbeat/cfg.h"
#include "wsbeat/url.h"
#include "wsbeat/util.h"
#include "wsbeat/version.h"

/* ---- Prometheus text format 0.0.4 ---- */

/* " <v>\n" without printf: a scrape of 10,000 feeds writes a quarter million of these. */
static void put_value_line(struct mbuf *b, uint64_t v)
{
	char buf[24];
	char *p = buf + sizeof(buf);

	*--p = '\n';
	do
		*--p = (char)('0' + v % 10);
	while (v /= 10);
	*--p = ' ';
	mbuf_put(b, p, (size_t)(buf + sizeof(buf) - p));
}

/* Label values escape backslash, double quote and newline; nothing else. */
static void put_label_value(struct mbuf *b, const char *s)
{
	const char *run = s;

	for (; *s; s++) {
		const char *esc = *s == '\\'   ? "\\\\"
		                  : *s == '"'  ? "\\\""
		                  : *s == '\n' ? "\\n"
		                               : NULL;

		if (!esc)
			continue;
		mbuf_put(b, run, (size_t)(s - run));
		mbuf_puts(b, esc);
		run = s + 1;
	}
	mbuf_put(b, run, (size_t)(s - run));
}

static const char *feed_name(const struct feed *f)
{
	return f->cfg && f->cfg->name ? f->cfg->name : "";
}

/* Writes `name{feed="..."` without the closing brace, so callers can add labels. */
static void put_series(struct mbuf *b, const char *name, const struct feed *f)
{
	mbuf_puts(b, name);
	mbuf_puts(b, "{feed=\"");
	put_label_value(b, feed_name(f));
	mbuf_puts(b, "\"");
}

static void put_family(struct mbuf *b, const char *name, const char *type, const char *help)
{
	mbuf_printf(b, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

struct counter_def {
	const char *name;
	const char *help;
	size_t off; /* of a uint64_t in struct feed_stats */
};

#define COUNTER(n, field, h)                                                                       \
	{                                                                                          \
		n, h, offsetof(struct feed_stats, field)                                           \
	}

static const struct counter_def counters[] = {
    COUNTER("wsbeat_connects_total", connects, "Connections opened (handshake completed)."),
    COUNTER("wsbeat_connect_errors_total", connect_errors,
            "Connection attempts that failed before the handshake completed."),
    COUNTER("wsbeat_disconnects_total", disconnects, "Open connections that ended."),
    COUNTER("wsbeat_heartbeats_sent_total", beats_sent, "Heartbeats sent."),
    COUNTER("wsbeat_heartbeat_timeouts_total", beat_timeouts,
            "Heartbeats not answered within the timeout."),
    COUNTER("wsbeat_messages_received_total", messages,
            "Data messages received (keep-alive traffic is counted apart)."),
    COUNTER("wsbeat_bytes_received_total", bytes,
            "Payload bytes of data messages received, as on the wire (before inflating)."),
    COUNTER("wsbeat_keepalive_messages_total", keepalive,
            "Keep-alive traffic received: heartbeat answers, server heartbeats (messages or "
            "PING frames) and messages answered by a reply rule."),
    COUNTER("wsbeat_replies_sent_total", replies_sent, "Replies sent (replies[] rules)."),
    COUNTER("wsbeat_rotations_total", rotations,
            "Connections replaced make-before-break (max_lifetime, rotate_on, expiring "
            "credentials): the replacement was open before the old one closed."),
};

static uint64_t stat_at(const struct feed *f, size_t off)
{
	uint64_t v;

	memcpy(&v, (const char *)&f->stats + off, sizeof(v));
	return v;
}

static void render_counter(struct mbuf *b, const struct counter_def *c, struct feed *const *feeds,
                           size_t from, size_t to)
{
	for (size_t i = from; i < to; i++) {
		put_series(b, c->name, feeds[i]);
		mbuf_put(b, "}", 1);
		put_value_line(b, stat_at(feeds[i], c->off));
	}
}

static void render_up(struct mbuf *b, struct feed *const *feeds, size_t from, size_t to)
{
	for (size_t i = from; i < to; i++) {
		put_series(b, "wsbeat_feed_up", feeds[i]);
		mbuf_put(b, "}", 1);
		put_value_line(b, feeds[i]->state == FEED_OPEN);
	}
}

/* The le label of each bucket, formatted once per scrape. */
struct le_labels {
	char s[FEED_RTT_BUCKETS + 1][24];
	size_t len[FEED_RTT_BUCKETS + 1];
};

static void render_histogram_one(struct mbuf *b, const struct feed *f, const struct le_labels *le)
{
	const struct feed_stats *st = &f->stats;
	uint64_t cum = 0;

	for (size_t k = 0; k <= FEED_RTT_BUCKETS; k++) {
		cum = k < FEED_RTT_BUCKETS ? cum + st->rtt_buckets[k] : st->rtt_count;
		put_series(b, "wsbeat_heartbeat_rtt_seconds_bucket", f);
		mbuf_put(b, le->s[k], le->len[k]);
		put_value_line(b, cum);
	}
	put_series(b, "wsbeat_heartbeat_rtt_seconds_sum", f);
	mbuf_printf(b, "} %.9g\n", st->rtt_sum_s);
	put_series(b, "wsbeat_heartbeat_rtt_seconds_count", f);
	mbuf_put(b, "}", 1);
	put_value_line(b, st->rtt_count);
}

static void le_labels_init(struct le_labels *le)
{
	for (size_t k = 0; k <= FEED_RTT_BUCKETS; k++) {
		int w =
		    k < FEED_RTT_BUCKETS
		        ? snprintf(le->s[k], sizeof(le->s[k]), ",le=\"%g\"}", feed_rtt_bounds_s[k])
		        : snprintf(le->s[k], sizeof(le->s[k]), ",le=\"+Inf\"}");

		le->len[k] = (size_t)w;
	}
}

static void render_histogram(struct mbuf *b, struct feed *const *feeds, size_t from, size_t to)
{
	struct le_labels le;

	le_labels_init(&le);
	for (size_t i = from; i < to; i++)
		render_histogram_one(b, feeds[i], &le);
}

/* Integer arithmetic keeps the printed value exact (a double has too few digits for us). */
static void put_seconds_ms(struct mbuf *b, int64_t us)
{
	if (us < 0)
		us = 0;
	mbuf_printf(b, "%" PRId64 ".%03d", us / 1000000, (int)(us % 1000000 / 1000));
}

static void render_last_msg(struct mbuf *b, struct feed *const *feeds, size_t from, size_t to,
                            int64_t now_mono, int64_t now_real)
{
	for (size_t i = from; i < to; i++) {
		int64_t last = feeds[i]->stats.last_msg_us;

		if (last == 0)
			continue;
		put_series(b, "wsbeat_last_message_timestamp_seconds", feeds[i]);
		mbuf_puts(b, "} ");
		put_seconds_ms(b, now_real - (now_mono - last));
		mbuf_puts(b, "\n");
	}
}

static void count_states(struct feed *const *feeds, size_t n, size_t counts[FEED_NSTATES])
{
	memset(counts, 0, FEED_NSTATES * sizeof(counts[0]));
	for (size_t i = 0; i < n; i++)
		if (feeds[i]->state < FEED_NSTATES)
			counts[feeds[i]->state]++;
}

static void render_state_counts(struct mbuf *b, struct feed *const *feeds, size_t n)
{
	size_t counts[FEED_NSTATES];

	count_states(feeds, n, counts);
	for (int s = 0; s < FEED_NSTATES; s++)
		mbuf_printf(b, "wsbeat_feeds{state=\"%s\"} %zu\n",
		            feed_state_name((enum feed_state)s), counts[s]);
}

/* The families of /metrics, in order: feed_up, the counters, the histogram, the last message
 * time, then the per-state totals. */
enum {
	FAM_UP,
	FAM_COUNTERS,
	FAM_HIST = FAM_COUNTERS + ARRAY_SIZE(counters),
	FAM_LAST,
	FAM_STATES,
	FAM_END
};

static void family_header(struct mbuf *b, unsigned fam)
{
	if (fam == FAM_UP)
		put_family(b, "wsbeat_feed_up", "gauge",
		           "1 when the feed's connection is open, else 0.");
	else if (fam < FAM_HIST)
		put_family(b, counters[fam - FAM_COUNTERS].name, "counter",
		           counters[fam - FAM_COUNTERS].help);
	else if (fam == FAM_HIST)
		put_family(b, "wsbeat_heartbeat_rtt_seconds", "histogram",
		           "Heartbeat round-trip time (send to answer).");
	else if (fam == FAM_LAST)
		put_family(b, "wsbeat_last_message_timestamp_seconds", "gauge",
		           "Unix time of the last complete message received.");
	else
		put_family(b, "wsbeat_feeds", "gauge", "Feeds in each state.");
}

static void family_range(struct mbuf *b, unsigned fam, struct feed *const *feeds, size_t n,
                         size_t from, size_t to, int64_t now_mono, int64_t now_real)
{
	if (fam == FAM_UP)
		render_up(b, feeds, from, to);
	else if (fam < FAM_HIST)
		render_counter(b, &counters[fam - FAM_COUNTERS], feeds, from, to);
	else if (fam == FAM_HIST)
		render_histogram(b, feeds, from, to);
	else if (fam == FAM_LAST)
		render_last_msg(b, feeds, from, to, now_mono, now_real);
	else if (from == 0)
		render_state_counts(b, feeds, n);
}

int metrics_prometheus_step(struct metrics_cursor *c, struct mbuf *out, struct feed *const *feeds,
                            size_t n, int64_t now_mono_us, int64_t now_real_us, size_t budget)
{
	while (budget > 0 && c->part < FAM_END) {
		size_t to = n - c->i < budget ? n : c->i + budget;

		if (c->i == 0)
			family_header(out, c->part);
		family_range(out, c->part, feeds, n, c->i, to, now_mono_us, now_real_us);
		budget -= to - c->i;
		c->i = to;
		if (c->i >= n || c->part == FAM_STATES) {
			c->part++;
			c->i = 0;
		}
	}
	return out->oom ? -1 : c->part == FAM_END;
}

int metrics_render_prometheus(struct mbuf *out, struct feed *const *feeds, size_t n,
                              int64_t now_mono_us, int64_t now_real_us)
{
	struct metrics_cursor c = {0};

	return metrics_prometheus_step(&c, out, feeds, n, now_mono_us, now_real_us, SIZE_MAX) < 0
	           ? -1
	           : 0;
}

/* Per hosts entry (label host="MATCH"): feeds waiting in the connect queue for it (for its own
 * limits or the global ones), and its connections open or in progress. */
void metrics_hosts(struct mbuf *b, const struct connq *q)
{
	static const char *const names[] = {"wsbeat_host_waiting", "wsbeat_host_connections"};
	static const char *const helps[] = {
	    "Feeds waiting to connect to the hosts of a hosts entry.",
	    "Connections open or in progress to the hosts of a hosts entry."};

	if (q->hosts.n < 2)
		return;
	for (int m = 0; m < 2; m++) {
		put_family(b, names[m], "gauge", helps[m]);
		for (size_t i = 1; i < q->hosts.n; i++) {
			const struct connq_host *h = &q->hosts.v[i];
			mbuf_puts(b, names[m]);
			mbuf_puts(b, "{host=\"");
			put_label_value(b, h->key);
			mbuf_puts(b, "\"}");
			put_value_line(b, m == 0 ? h->waiting : h->conns);
		}
	}
}

void metrics_process(struct mbuf *b, const char *lws_version, int64_t start_real_us)
{
	put_family(b, "wsbeat_build_info", "gauge",
	           "Always 1: the version of wsbeat and of the libwebsockets it runs on.");
	mbuf_puts(b, "wsbeat_build_info{version=\"");
	put_label_value(b, WSBEAT_VERSION);
	mbuf_puts(b, "\",libwebsockets=\"");
	put_label_value(b, lws_version);
	mbuf_puts(b, "\"} 1\n");
	put_family(b, "process_start_time_seconds", "gauge",
	           "Start time of the process since the Unix epoch in seconds.");
	mbuf_puts(b, "process_start_time_seconds ");
	put_seconds_ms(b, start_real_us);
	mbuf_puts(b, "\n");
}

/* ---- /status JSON ---- */

/* Length of the valid UTF-8 sequence at s (1..4), or 0 when the bytes are not one. */
static size_t utf8_len(const unsigned char *s)
{
	unsigned c = s[0];
	size_t n = c < 0xc2 ? 0 : c < 0xe0 ? 2 : c < 0xf0 ? 3 : c < 0xf5 ? 4 : 0;

	for (size_t i = 1; i < n; i++)
		if ((s[i] & 0xc0) != 0x80)
			return 0;
	if ((c == 0xe0 && s[1] < 0xa0) || (c == 0xed && s[1] > 0x9f) ||
	    (c == 0xf0 && s[1] < 0x90) || (c == 0xf4 && s[1] > 0x8f))
		return 0; /* overlong forms, surrogates, beyond U+10FFFF */
	return n;
}

/* JSON must be valid UTF-8: error texts may carry a peer's bytes, so bad ones become U+FFFD. */
static void put_json_string(struct mbuf *b, const char *str)
{
	const unsigned char *s = (const unsigned char *)str;

	mbuf_puts(b, "\"");
	while (*s) {
		size_t n = *s < 0x80 ? 1 : utf8_len(s);

		if (*s == '"' || *s == '\\')
			mbuf_printf(b, "\\%c", *s);
		else if (*s == '\n')
			mbuf_puts(b, "\\n");
		else if (*s < 0x20 || *s == 0x7f)
			mbuf_printf(b, "\\u%04x", *s);
		else if (n == 0)
			mbuf_puts(b, "\\ufffd");
		else
			mbuf_put(b, (const char *)s, n);
		s += n ? n : 1;
	}
	mbuf_puts(b, "\"");
}

static void put_json_string_or_null(struct mbuf *b, const char *s)
{
	if (s && *s)
		put_json_string(b, s);
	else
		mbuf_puts(b, "null");
}

static void put_rfc3339(struct mbuf *b, int64_t real_us)
{
	time_t t = (time_t)(real_us / 1000000);
	struct tm tm;
	char text[32];

	if (!gmtime_r(&t, &tm) || !strftime(text, sizeof(text), "%Y-%m-%dT%H:%M:%S", &tm)) {
		mbuf_puts(b, "null");
		return;
	}
	mbuf_printf(b, "\"%s.%03dZ\"", text, (int)(real_us % 1000000 / 1000));
}

static void render_feed_json(struct mbuf *b, const struct feed *f, const struct metrics_now *now)
{
	const struct feed_stats *st = &f->stats;
	const char *last_error;
	int64_t err_at = 0;

	mbuf_puts(b, "{\"name\":");
	put_json_string(b, feed_name(f));
	mbuf_puts(b, ",\"url\":");
	put_json_string_or_null(b, f->cfg ? f->cfg->url.display : NULL);
	mbuf_printf(b, ",\"state\":\"%s\",\"in_state_s\":", feed_state_name(f->state));
	put_seconds_ms(b, now->mono_us - f->state_since_us);
	mbuf_printf(b, ",\"attempt\":%u,\"rtt_ms\":", f->failures + 1);
	if (st->last_rtt_ms >= 0 && isfinite(st->last_rtt_ms))
		mbuf_printf(b, "%.3f", st->last_rtt_ms);
	else
		mbuf_puts(b, "null");
	mbuf_puts(b, ",\"rtt_recent_ms\":[");
	for (unsigned i = 0; i < st->rtt_recent.n; i++) {
		int64_t us = rtt_ring_get(&st->rtt_recent, i);
		mbuf_printf(b, "%s%" PRId64 ".%03d", i ? "," : "", us / 1000, (int)(us % 1000));
	}
	mbuf_puts(b, "],\"last_message_age_s\":");
	if (st->last_msg_us != 0)
		put_seconds_ms(b, now->mono_us - st->last_msg_us);
	else
		mbuf_puts(b, "null");
	mbuf_printf(b, ",\"connects\":%" PRIu64 ",\"reconnects\":%" PRIu64 ",\"last_error\":",
	            st->connects, st->connects > 0 ? st->connects - 1 : 0);
	last_error = feed_last_error(f, now->mono_us, now->real_us, &err_at);
	put_json_string_or_null(b, last_error);
	mbuf_puts(b, ",\"last_error_at\":");
	if (last_error)
		put_rfc3339(b, err_at);
	else
		mbuf_puts(b, "null");
	mbuf_puts(b, ",\"last_error_age_s\":");
	if (last_error)
		put_seconds_ms(b, now->real_us - err_at);
	else
		mbuf_puts(b, "null");
	if (f->last_close_code)
		mbuf_printf(b, ",\"close_code\":%d}", f->last_close_code);
	else
		mbuf_puts(b, ",\"close_code\":null}");
}

int metrics_status_step(struct metrics_cursor *c, struct mbuf *out, struct feed *const *feeds,
                        size_t n, const struct metrics_now *now, size_t budget)
{
	size_t counts[FEED_NSTATES];
	size_t to = n - c->i < budget ? n : c->i + budget;

	if (c->part > 0)
		return 1;
	if (c->i == 0) {
		mbuf_puts(out, "{\"version\":");
		put_json_string(out, WSBEAT_VERSION);
		mbuf_puts(out, ",\"generated_at\":");
		put_rfc3339(out, now->real_us);
		mbuf_puts(out, ",\"shard\":");
		put_json_string_or_null(out, now->shard);
		mbuf_puts(out, ",\n\"feeds\":[");
	}
	for (size_t i = c->i; i < to; i++) {
		if (i)
			mbuf_puts(out, ",\n");
		render_feed_json(out, feeds[i], now);
	}
	c->i = to;
	if (c->i < n)
		return out->oom ? -1 : 0;
	c->part = 1;
	mbuf_puts(out, "],\n\"counts\":{");
	count_states(feeds, n, counts);
	for (int s = 0; s < FEED_NSTATES; s++)
		mbuf_printf(out, "%s\"%s\":%zu", s ? "," : "", feed_state_name((enum feed_state)s),
		            counts[s]);
	mbuf_puts(out, "}}\n");
	return out->oom ? -1 : 1;
}

int metrics_render_status(struct mbuf *out, struct feed *const *feeds, size_t n,
                          const struct metrics_now *now)
{
	struct metrics_cursor c = {0};

	return metrics_status_step(&c, out, feeds, n, now, SIZE_MAX) < 0 ? -1 : 0;
}
