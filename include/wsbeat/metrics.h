/*
 * metrics: renders what the feeds know as Prometheus text (GET /metrics) and JSON
 * (GET /status). Pure: no sockets, no clocks; the caller passes the times in.
 */
#ifndef WSBEAT_METRICS_H
#define WSBEAT_METRICS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "wsbeat/feed.h"
#include "wsbeat/mbuf.h"

/*
 * Prometheus text exposition format 0.0.4: per feed (label feed="name") wsbeat_feed_up,
 * wsbeat_connects_total, wsbeat_connect_errors_total, wsbeat_disconnects_total,
 * wsbeat_heartbeats_sent_total, wsbeat_heartbeat_timeouts_total, wsbeat_heartbeat_rtt_seconds
 * (histogram), wsbeat_messages_received_total, wsbeat_bytes_received_total,
 * wsbeat_keepalive_messages_total, wsbeat_replies_sent_total,
 * wsbeat_last_message_timestamp_seconds (only for feeds that received one), plus
 * wsbeat_feeds{state="..."} for every state. Returns 0, or -1 on allocation failure.
 */
int metrics_render_prometheus(struct mbuf *out, struct feed *const *feeds, size_t n,
                              int64_t now_mono_us, int64_t now_real_us);

/* wsbeat_build_info{version,libwebsockets} 1 and process_start_time_seconds (the names
 * Prometheus client libraries use), appended last. */
void metrics_process(struct mbuf *out, const char *lws_version, int64_t start_real_us);

/* wsbeat_host_waiting and wsbeat_host_connections (gauges, label host="MATCH") for each entry
 * of the hosts setting; nothing when there is none. Appended after the feeds' families. */
void metrics_hosts(struct mbuf *out, const struct connq *q);

/* When a /status document is rendered, and by which process. */
struct metrics_now {
	int64_t mono_us, real_us;
	const char *shard; /* "K/N", or NULL when the process is not sharded */
};

/*
 * {"version":..,"generated_at":"RFC 3339 UTC","shard":"K/N"|null,
 *  "feeds":[{"name":..,"url":..,"state":..,"in_state_s":..,"attempt":..,"rtt_ms":..|null,
 *  "rtt_recent_ms":[oldest, ..., newest],"last_message_age_s":..|null,"connects":..,
 *  "reconnects":..,"last_error":..|null,"last_error_at":..|null,"last_error_age_s":..|null,
 *  "close_code":..|null}, ...], "counts":{"open":n,...}}
 * last_error and close_code are of the last attempt or connection that ended, kept through
 * later ones. url is the display form (no credentials, no query). Returns 0, or -1 on
 * allocation failure.
 */
int metrics_render_status(struct mbuf *out, struct feed *const *feeds, size_t n,
                          const struct metrics_now *now);

/*
 * The same documents rendered a slice at a time, so a scrape of many feeds can share the loop
 * with heartbeats. Start with a zeroed cursor; each call renders at most `budget` feeds' worth
 * and returns 1 when the document is complete, 0 when more remains, -1 on allocation failure.
 * The feed pointers must stay valid until the document is complete.
 */
struct metrics_cursor {
	unsigned part; /* family (metrics) or section (status) */
	size_t i;      /* next feed */
};
int metrics_prometheus_step(struct metrics_cursor *c, struct mbuf *out, struct feed *const *feeds,
                            size_t n, int64_t now_mono_us, int64_t now_real_us, size_t budget);
int metrics_status_step(struct metrics_cursor *c, struct mbuf *out, struct feed *const *feeds,
                        size_t n, const struct metrics_now *now, size_t budget);

#endif
