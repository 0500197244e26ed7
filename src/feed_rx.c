/*
 * The receive pipeline of a feed, one stage per function:
 *
 *   reassemble (feed_on_rx: size bound, UTF-8, pieces into one buffer)
 *     -> inflate (binary messages, decompress = ...; bounded as they grow)
 *     -> classify (open-sequence wait, heartbeat answer, server heartbeat, reply rule,
 *        rotate_on notice)
 *     -> count and hand over (keep-alive apart; data to the sink)
 *
 * A message is buffered whole only when something needs it whole (a sink, a match, a reply
 * rule, decompression); a heartbeat feed without any of them only counts bytes.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "wsbeat/json.h"
#include "wsbeat/match.h"
#include "wsbeat/tmpl.h"
#include "wsbeat/zinf.h"

#include "feed_internal.h"

/* Without an `expect`, any message answers a text or binary heartbeat. */
static bool any_message_answers(const struct cfg_heartbeat *hb)
{
	return (hb->type == HB_TEXT || hb->type == HB_BINARY) && !hb->expect;
}

bool feed_needs_whole(const struct feed *f)
{
	const struct cfg_feed *c = f->cfg;

	return f->sink || c->heartbeat.expect || c->n_replies || c->open_after || c->keepalive ||
	       c->rotate_on || c->decompress != DEC_NONE;
}

static void zin_put(struct feed *f)
{
	struct feed_env *env = f->env;

	if (!f->zin)
		return;
	if (env->n_zpool == env->cap_zpool) {
		size_t cap = env->cap_zpool ? 2 * env->cap_zpool : 4;
		struct zinf **v = realloc(env->zpool, cap * sizeof(*v));
		if (!v) {
			zinf_free(f->zin);
			f->zin = NULL;
			return;
		}
		env->zpool = v;
		env->cap_zpool = cap;
	}
	env->zpool[env->n_zpool++] = f->zin;
	f->zin = NULL;
}

/* An inflater for the message starting now: one thread, so a pool of one or two will do. */
static int zin_take(struct feed *f)
{
	struct feed_env *env = f->env;

	if (!f->zin)
		f->zin = env->n_zpool ? env->zpool[--env->n_zpool] : zinf_new();
	if (!f->zin)
		return -1;
	zinf_begin(f->zin, f->cfg->decompress);
	return 0;
}

void feed_env_fini(struct feed_env *env)
{
	while (env->n_zpool)
		zinf_free(env->zpool[--env->n_zpool]);
	free(env->zpool);
	env->zpool = NULL;
	env->cap_zpool = 0;
	mbuf_free(&env->scratch);
}

void feed_rx_reset(struct feed *f)
{
	while (f->out_q) {
		struct feed_out *o = f->out_q;
		f->out_q = o->next;
		free(o);
	}
	zin_put(f);
	f->rx_len = 0;
	f->rx_too_big = false;
	mbuf_reset(&f->msg);
}

int feed_fail(struct feed *f, int code, const char *reason, int64_t now_us)
{
	f->rx_too_big = true; /* nothing more of this message is looked at */
	zin_put(f);
	if (f->state == FEED_OPEN || f->close_wait) {
		feed_begin_close(f, code, reason, false, now_us);
		/* Reading has stopped and lws may not offer a write slot while the peer's frame is
		 * half read: if the close frame is not out almost at once, drop the connection. */
		tq_arm(f->env->tq, &f->t_state, now_us + FEED_FAIL_TIMEOUT_US);
	} else if (f->state == FEED_CONNECTING) {
		/* In the open sequence: the attempt fails, from a timer (not inside lws's
		 * receive callback) and with the reason already recorded. */
		tq_arm(f->env->tq, &f->t_state, now_us);
	}
	return -1;
}

/*
 * Validates text incrementally, also across fragments: the continuation bytes still expected
 * and the range allowed for the next one (which rules out overlong forms and surrogates).
 */
static bool utf8_ok(struct feed *f, const unsigned char *p, size_t len)
{
	for (size_t i = 0; i < len; i++) {
		unsigned c = p[i];
		if (!f->u8_need && c < 0x80) { /* market data is mostly ASCII: skip it in words */
			i += ascii_run(p + i, len - i) - 1;
			continue;
		}
		if (f->u8_need) {
			if (c < f->u8_lo || c > f->u8_hi)
				return false;
			f->u8_need--;
			f->u8_lo = 0x80;
			f->u8_hi = 0xbf;
			continue;
		}
		if (c < 0x80)
			continue;
		f->u8_lo = c == 0xe0 ? 0xa0 : c == 0xf0 ? 0x90 : 0x80;
		f->u8_hi = c == 0xed ? 0x9f : c == 0xf4 ? 0x8f : 0xbf;
		f->u8_need = c >= 0xc2 && c <= 0xdf   ? 1
		             : c >= 0xe0 && c <= 0xef ? 2
		             : c >= 0xf0 && c <= 0xf4 ? 3
		                                      : 0;
		if (!f->u8_need)
			return false;
	}
	return true;
}

/* Whole-message check, for inflated data: text only when it is valid UTF-8. */
static bool utf8_whole(struct feed *f, const char *p, size_t len)
{
	f->u8_need = 0;
	return utf8_ok(f, (const unsigned char *)p, len) && !f->u8_need;
}

/* Appends one received piece to the message, inflating it when the feed decompresses. */
static int take_piece(struct feed *f, const void *data, size_t len, int64_t now_us)
{
	size_t max = f->cfg->max_message_size;
	int rc;

	if (!f->zin) {
		mbuf_put(&f->msg, data, len);
		if (!f->msg.oom)
			return 0;
		feed_set_error(f, "out of memory buffering a %zu byte message", f->rx_len);
		return feed_fail(f, WS_CLOSE_TOO_BIG, "out of memory", now_us);
	}
	rc = zinf_feed(f->zin, data, len, &f->msg, max);
	if (rc == ZINF_OK)
		return 0;
	if (rc == ZINF_TOO_BIG) {
		feed_set_error(f, "message inflates to more than max_message_size (%zu bytes)",
		               max);
		return feed_fail(f, WS_CLOSE_TOO_BIG, "message too big", now_us);
	}
	if (rc == ZINF_NOMEM) {
		feed_set_error(f, "out of memory inflating a message");
		return feed_fail(f, WS_CLOSE_TOO_BIG, "out of memory", now_us);
	}
	feed_set_error(f, "cannot inflate a message: %s", zinf_error(f->zin));
	return feed_fail(f, WS_CLOSE_INVALID_DATA, "corrupt compressed data", now_us);
}

/* Builds the answer to a message that matched a reply rule and queues it for writing. */
static void queue_reply(struct feed *f, const struct cfg_reply *r, struct match_msg *mm)
{
	struct tmpl_ctx c = {.seq = f->hb_seq,
	                     .now_real_us = feed_real_us(),
	                     .msg = match_msg_json(mm),
	                     .random = f->env->random};
	struct mbuf *out = &f->env->scratch;
	struct feed_out *o, **tail = &f->out_q;
	size_t n = 0;

	mbuf_reset(out);
	if (tmpl_expand(r->send, &c, out) < 0) {
		if (c.missing && !f->reply_warned)
			feed_log(
			    f,
			    &(struct feed_event){"reply_skipped",
			                         LOG_LVL_WARNING,
			                         {{"path", c.missing}, {"when", r->when->text}}},
			    "a message matched \"%s\" but has no %s: no reply sent (said once "
			    "per connection)",
			    r->when->text, c.missing);
		f->reply_warned = true;
		return;
	}
	for (; *tail; tail = &(*tail)->next)
		n++;
	if (n >= FEED_OUT_MAX || !(o = malloc(sizeof(*o) + out->len))) {
		if (!f->reply_warned)
			feed_log(f, &(struct feed_event){"reply_skipped", LOG_LVL_WARNING, {{0}}},
			         "%d replies are waiting to be written: this one is dropped",
			         FEED_OUT_MAX);
		f->reply_warned = true;
		return;
	}
	o->next = NULL;
	o->len = out->len;
	o->secret = r->send->secret;
	memcpy(o->data, out->p, out->len);
	*tail = o;
	f->env->shell->want_write(f);
}

/* The open sequence is at a wait, and this message is what it waits for. */
static void open_wait(struct feed *f, struct match_msg *mm, int64_t now_us)
{
	const struct cfg_step *st;

	if (f->state != FEED_CONNECTING || !f->upgraded || !(st = feed_step(f)))
		return;
	if (!st->wait || !match_test(st->wait, mm, 0))
		return;
	f->open_step++;
	if (f->open_step >= feed_open_after(f))
		feed_became_open(f, now_us);
	else if ((st = feed_step(f)) && st->send)
		f->env->shell->want_write(f);
}

/* Whether the message answers an outstanding beat; which one, when the answer is numbered. */
static bool heartbeat_answer(struct feed *f, struct match_msg *mm, int64_t now_us)
{
	const struct cfg_heartbeat *hb = &f->cfg->heartbeat;

	if (!hb->expect || f->state != FEED_OPEN)
		return false;
	if (hb->type == HB_SERVER) {
		if (!match_test(hb->expect, mm, 0))
			return false;
		feed_server_beat(f, now_us);
		return true;
	}
	if (!hb->expect->dynamic) {
		if (!match_test(hb->expect, mm, 0))
			return false;
		if (f->hb_waiting_since_us)
			feed_beat_answered(f, f->hb_seq, now_us);
		return true;
	}
	/* ${seq}: the answer names its beat; any beat still out may be the one. */
	for (uint32_t s = f->hb_seq; s >= f->hb_awaited && s > 0; s--) {
		if (match_test(hb->expect, mm, s)) {
			if (f->hb_waiting_since_us)
				feed_beat_answered(f, s, now_us);
			return true;
		}
	}
	return false;
}

static bool reply_rules(struct feed *f, struct match_msg *mm)
{
	for (size_t i = 0; i < f->cfg->n_replies; i++) {
		const struct cfg_reply *r = &f->cfg->replies[i];
		if (match_test(r->when, mm, 0)) {
			queue_reply(f, r, mm);
			return true;
		}
	}
	return false;
}

void feed_log_payload(const struct feed *f, const char *event, const char *what, const void *data,
                      size_t len, bool binary, bool secret)
{
	enum { PREVIEW = 120 };
	char bytes[24];

	if (!log_enabled(LOG_LVL_DEBUG))
		return;
	snprintf(bytes, sizeof(bytes), "%zu", len);
	if (binary || secret)
		feed_log(f, &(struct feed_event){event, LOG_LVL_DEBUG, {{"bytes", bytes}}},
		         "%s (%s bytes%s)", what, bytes,
		         secret ? ", not shown: it holds a secret" : "");
	else
		feed_log(f, &(struct feed_event){event, LOG_LVL_DEBUG, {{"bytes", bytes}}},
		         "%s: %.*s%s", what, (int)(len > PREVIEW ? PREVIEW : len),
		         data ? (const char *)data : "", len > PREVIEW ? "..." : "");
}

static void deliver(struct feed *f, bool keepalive, bool binary, int64_t now_us)
{
	if (!keepalive)
		feed_log_payload(f, "message", binary ? "received a binary message" : "received",
		                 f->msg.p, f->msg.len ? f->msg.len : f->rx_len, binary || !f->msg.p,
		                 false);
	if (keepalive) {
		f->stats.keepalive++;
	} else {
		f->stats.messages++;
		f->stats.bytes += f->rx_len; /* as received: before inflating */
		f->stats.last_msg_us = now_us;
		f->last_data_us = now_us;
	}
	if (f->sink && (!keepalive || f->cfg->sink.keepalive))
		sink_message(f->sink, feed_arrived_real_us(f, feed_real_us()), f->cfg->name,
		             f->conn_no, binary, f->msg.p, f->msg.len);
}

/* A whole message: classify it, count it, hand it over. */
static void message_done(struct feed *f, int64_t now_us)
{
	const struct cfg_heartbeat *hb = &f->cfg->heartbeat;
	bool binary = f->rx_binary, keepalive = false;
	struct match_msg mm;

	if (f->zin) {
		if (zinf_end(f->zin) != ZINF_OK) {
			feed_set_error(f, "cannot inflate a message: %s", zinf_error(f->zin));
			feed_fail(f, WS_CLOSE_INVALID_DATA, "corrupt compressed data", now_us);
			return;
		}
		zin_put(f);
		binary = !utf8_whole(f, f->msg.p, f->msg.len);
	}
	/* Such an answer is also data: nothing tells it apart. */
	if (any_message_answers(hb) && f->state == FEED_OPEN && f->hb_waiting_since_us)
		feed_beat_answered(f, f->hb_seq, now_us);
	if (hb->expect || f->cfg->n_replies || f->cfg->open_after || f->cfg->keepalive ||
	    f->cfg->rotate_on) {
		match_msg_init(&mm, f->msg.p, f->msg.len);
		open_wait(f, &mm, now_us);
		keepalive = heartbeat_answer(f, &mm, now_us);
		keepalive |= reply_rules(f, &mm);
		if (!keepalive && f->cfg->keepalive)
			keepalive = match_test(f->cfg->keepalive, &mm, 0);
		/* The notice stays what it is otherwise (data unless keepalive says not). */
		if (f->cfg->rotate_on && f->state == FEED_OPEN &&
		    match_test(f->cfg->rotate_on, &mm, 0))
			feed_rotate(f, now_us, "rotate_on");
		match_msg_fini(&mm);
	}
	if (hb->any_message)
		feed_server_beat(f, now_us);
	deliver(f, keepalive, binary, now_us);
}

int feed_on_rx(struct feed *f, const void *data, size_t len, bool first, bool final, bool binary,
               int64_t now_us)
{
	bool open = f->state == FEED_OPEN || (f->state == FEED_CONNECTING && f->upgraded);

	/* While a graceful close waits for the peer's, what it still sends is kept. */
	if (!open && !(f->state == FEED_CLOSING && f->close_wait))
		return 0;
	if (first) {
		mbuf_reset(&f->msg);
		zin_put(f);
		f->rx_len = 0;
		f->rx_too_big = false;
		f->rx_binary = binary;
		f->u8_need = 0;
		if (binary && f->cfg->decompress != DEC_NONE && zin_take(f) < 0) {
			feed_set_error(f, "out of memory for an inflater");
			return feed_fail(f, WS_CLOSE_TOO_BIG, "out of memory", now_us);
		}
	}
	if (f->rx_too_big)
		return 0;
	f->rx_len += len;
	if (f->rx_len > f->cfg->max_message_size) {
		feed_set_error(f, "message larger than max_message_size (%zu bytes)",
		               f->cfg->max_message_size);
		return feed_fail(f, WS_CLOSE_TOO_BIG, "message too big", now_us);
	}
	if (!binary && (!utf8_ok(f, data, len) || (final && f->u8_need))) {
		feed_set_error(f, "text message is not valid UTF-8");
		return feed_fail(f, WS_CLOSE_INVALID_DATA, "invalid UTF-8", now_us);
	}
	/* At debug level every message is logged with a preview of its text. */
	if (len && (feed_needs_whole(f) || log_enabled(LOG_LVL_DEBUG)) &&
	    take_piece(f, data, len, now_us) < 0)
		return -1;
	if (final)
		message_done(f, now_us);
	return 0;
}
