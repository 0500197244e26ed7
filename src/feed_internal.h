/*
 * Private to feed.c (the state machine) and feed_rx.c (the receive pipeline): what both halves
 * of a feed need from each other.
 */
#ifndef WSBEAT_FEED_INTERNAL_H
#define WSBEAT_FEED_INTERNAL_H

#include "wsbeat/feed.h"
#include "wsbeat/log.h"

/* An event record about a feed: extra fields beyond feed, event and state. */
struct feed_event {
	const char *name;
	enum log_level level;
	struct log_kv kv[6];
};

/* A message built for the peer (a reply), waiting for a write slot. */
struct feed_out {
	struct feed_out *next;
	size_t len;
	bool secret; /* built from a secret source: never shown */
	char data[];
};

/* At most this many replies wait for a write slot; more means the peer is not reading. */
#define FEED_OUT_MAX 16

void feed_log(const struct feed *f, const struct feed_event *ev, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* CLOCK_REALTIME in microseconds (capture timestamps, ${now_*}). */
int64_t feed_real_us(void);

/* A close frame with code and reason, then the connection ends (at once unless wait). */
void feed_begin_close(struct feed *f, int code, const char *reason, bool wait, int64_t now_us);

/* The open sequence has finished: the feed is open. */
void feed_became_open(struct feed *f, int64_t now_us);

/* Heartbeat seq (or, for ping and non-numbered answers, every outstanding one) is answered. */
void feed_beat_answered(struct feed *f, uint32_t seq, int64_t now_us);

/* The server's heartbeat arrived (type server). */
void feed_server_beat(struct feed *f, int64_t now_us);

/* Ends the current connection for a protocol violation (reason recorded), from inside a
 * receive callback: a close frame when the feed is open, else dropped from a timer. -1. */
int feed_fail(struct feed *f, int code, const char *reason, int64_t now_us);

/* Forgets everything of the message being received and the replies not yet sent. */
void feed_rx_reset(struct feed *f);

/* Logs (debug) what was sent or received: a preview of the text, or only its size when it is
 * binary or holds a secret. */
void feed_log_payload(const struct feed *f, const char *event, const char *what, const void *data,
                      size_t len, bool binary, bool secret);

/* Whether received messages must be buffered whole for this feed. */
bool feed_needs_whole(const struct feed *f);

/* The step of the open sequence the feed is at (the connect_command's messages, when it gave
 * any, else the feed's on_open), or NULL when the sequence is done. */
const struct cfg_step *feed_step(const struct feed *f);
/* How many steps must be done before the feed is open (the last wait's index + 1). */
size_t feed_open_after(const struct feed *f);

/* Starts the connect_command of an attempt (feed_helper.c). */
void feed_helper_start(struct feed *f, int64_t now_us);
/* Kills the running connect_command, if any (feed_on_helper_done will not come). */
void feed_helper_cancel(struct feed *f);
/* The running connect_command did not answer within connect_timeout: killed, and the reason
 * recorded (with the first line it wrote on stderr). */
void feed_helper_timeout(struct feed *f);
/* Forgets what the last connect_command gave, wiping it. */
void feed_helper_reset(struct feed *f);
/* Goes on with an attempt: resolves feed_connect_host, or connects at once to a numeric one.
 * The state must already be the one that fits (resolving, or connecting: feed_dial_numeric). */
void feed_dial(struct feed *f, int64_t now_us);
bool feed_dial_numeric(const struct feed *f);
/* Rotation (feed_rotate.c). feed_rotate_arm: the connection is open, arm t_rotate for its
 * max_lifetime or its credentials' expiry. feed_rotate_timer: t_rotate's callback.
 * feed_rotate_opened: replacement n is open, it takes over. feed_rotate_gone: a replaced
 * connection has gone ("rotated" is logged). feed_rotate_cancel: f's replacement in flight, if
 * any, is given up (f's connection ended, or f is stopping). feed_rotate_unlink: f is being
 * freed; the feed on either side forgets it. */
void feed_rotate_arm(struct feed *f, int64_t now_us);
void feed_rotate_timer(struct tq_timer *t, int64_t now_us);
void feed_rotate_opened(struct feed *n, int64_t now_us);
void feed_rotate_gone(struct feed *old, int64_t now_us);
void feed_rotate_cancel(struct feed *f, int64_t now_us, const char *why);
void feed_rotate_unlink(struct feed *f);

/* Changes state (the one function that does: see feed.c). */
void feed_set_state(struct feed *f, enum feed_state to, int64_t now_us);

#endif
