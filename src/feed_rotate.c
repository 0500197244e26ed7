/*
 * Rotation (make-before-break) of a feed's connection: max_lifetime, credentials about to
 * expire (a connect_command's expires_in) and rotate_on notices open a replacement first and
 * close the old connection only once the replacement is open.
 *
 * The replacement is a second struct feed of the same configuration (a "shadow"), made by the
 * owner (feed_env.rotate_new). It goes the way of every attempt: the connect queue (so
 * rotations count against max_connects_per_second and the hosts limits), resolving (its own
 * connect_command run, when the feed has one), connecting, the open sequence; a failed attempt
 * backs off as usual, and it is retried for as long as the old connection lives. While it is a
 * shadow it is listed nowhere (not in /status, /metrics or the STATUS counts) and its records
 * carry replacement=true. Once open it is promoted: the owner lists it in the old feed's place
 * (rotate_promote), it takes the old feed's counters, and the old connection closes with 1000
 * "rotated", reading on until the peer's close frame so that nothing sent before it is lost;
 * meanwhile both deliver to the sink, each record with its own conn. When the old connection
 * has gone, what it counted since joins the new feed's counters (they never go backwards) and
 * "rotated" is logged with the overlap (old gone - new open).
 *
 * If the old connection ends before the replacement is open, the replacement is given up and
 * the feed reconnects the usual way: the simplest rule that never leaves two live connections
 * of one feed to reconcile. A replacement that is connecting is dropped from a timer, never
 * inside the callback of the connection that ended.
 */
#include <stdio.h>

#include "wsbeat/helper.h"
#include "wsbeat/log.h"
#include "wsbeat/util.h"

#include "feed_internal.h"

/* Before credentials expire, a connection is rotated by a tenth of their lifetime, at most a
 * minute: a 30 s token rotates at 27 s, a 24 h one at 23h59m. */
#define ROTATE_EXPIRY_MARGIN_MAX_US (60LL * 1000 * 1000)
/* No connection is rotated sooner than this after it opened (an expires_in of 0). */
#define ROTATE_MIN_AGE_US (1000LL * 1000)
/* No replacement could be made (out of memory): the timer tries again this much later. */
#define ROTATE_RETRY_US (1000LL * 1000)

enum { ROT_NONE, ROT_LIFETIME, ROT_EXPIRY };

static const char *const rot_why_names[] = {"", "max_lifetime", "credentials expire"};

void feed_rotate_arm(struct feed *f, int64_t now_us)
{
	int64_t at = 0, exp = feed_credentials_expire_us(f);

	f->rot_why = ROT_NONE;
	if (!f->env->rotate_new)
		return;
	if (f->cfg->max_lifetime_ms > 0) {
		at = now_us + f->cfg->max_lifetime_ms * 1000;
		f->rot_why = ROT_LIFETIME;
	}
	if (exp > 0) {
		int64_t margin = f->helper->expires_in_ms * 100; /* a tenth, in µs */
		if (margin > ROTATE_EXPIRY_MARGIN_MAX_US)
			margin = ROTATE_EXPIRY_MARGIN_MAX_US;
		if (!at || exp - margin < at) {
			at = exp - margin;
			f->rot_why = ROT_EXPIRY;
		}
	}
	if (!at)
		return;
	if (at < now_us + ROTATE_MIN_AGE_US)
		at = now_us + ROTATE_MIN_AGE_US;
	tq_arm(f->env->tq, &f->t_rotate, at);
}

void feed_rotate_timer(struct tq_timer *t, int64_t now_us)
{
	struct feed *f = container_of(t, struct feed, t_rotate);

	if (f->state == FEED_OPEN && feed_rotate(f, now_us, rot_why_names[f->rot_why]) < 0)
		tq_arm(f->env->tq, t, now_us + ROTATE_RETRY_US);
}

/* Adds from's counters to to's and zeroes from's; to's last RTT wins (the newer one). */
static void merge_stats(struct feed_stats *to, struct feed_stats *from)
{
	to->connects += from->connects;
	to->connect_errors += from->connect_errors;
	to->disconnects += from->disconnects;
	to->beats_sent += from->beats_sent;
	to->beats_answered += from->beats_answered;
	to->beat_timeouts += from->beat_timeouts;
	to->messages += from->messages;
	to->bytes += from->bytes;
	to->keepalive += from->keepalive;
	to->replies_sent += from->replies_sent;
	to->rotations += from->rotations;
	if (to->last_rtt_ms < 0)
		to->last_rtt_ms = from->last_rtt_ms;
	if (to->rtt_recent.n == 0)
		to->rtt_recent = from->rtt_recent;
	if (from->last_msg_us > to->last_msg_us)
		to->last_msg_us = from->last_msg_us;
	for (size_t i = 0; i < FEED_RTT_BUCKETS; i++)
		to->rtt_buckets[i] += from->rtt_buckets[i];
	to->rtt_sum_s += from->rtt_sum_s;
	to->rtt_count += from->rtt_count;
	*from = (struct feed_stats){.last_rtt_ms = -1};
}

int feed_rotate(struct feed *f, int64_t now_us, const char *why)
{
	struct feed_env *env = f->env;
	struct feed *n;
	char conn[16];

	if (f->state != FEED_OPEN || f->stop_requested || env->stopping || !env->rotate_new ||
	    f->rot_next) {
		feed_log(f,
		         &(struct feed_event){"rotation_ignored", LOG_LVL_DEBUG, {{"reason", why}}},
		         "%s: %s", why,
		         f->rot_next ? "a replacement connection is already on its way"
		                     : "the connection is not open");
		return 0;
	}
	n = env->rotate_new(env, f);
	if (!n) {
		feed_log(f, &(struct feed_event){"rotating", LOG_LVL_WARNING, {{"reason", why}}},
		         "%s: cannot make a replacement connection (out of memory)", why);
		return -1;
	}
	f->rot_next = n;
	n->rot_prev = f;
	n->shadow = true;
	env->n_in_state[n->state]--; /* counted again once it has taken over */
	n->conn_no = f->conn_no;     /* its connection is the next one */
	snprintf(conn, sizeof(conn), "%u", f->conn_no);
	feed_log(
	    f,
	    &(struct feed_event){"rotating", LOG_LVL_INFO, {{"reason", why}, {"old_conn", conn}}},
	    "%s: opening a replacement connection", why);
	feed_start(n, now_us);
	return 0;
}

void feed_rotate_opened(struct feed *n, int64_t now_us)
{
	struct feed *old = n->rot_prev;
	struct feed_env *env = n->env;

	if (!old)
		return; /* not reached: a replacement given up never opens (feed_on_open) */
	n->shadow = false;
	env->n_in_state[n->state]++;
	merge_stats(&n->stats, &old->stats);
	/* The replacement is the feed now: it keeps the history of why earlier ones ended. */
	if (!n->last) {
		n->last = old->last;
		old->last = NULL;
	}
	if (!n->last_close_code)
		n->last_close_code = old->last_close_code;
	n->stats.rotations++;
	old->rotated_out = true;
	old->stop_requested = true; /* it stops once its connection has gone */
	old->rot_open_us = now_us;
	old->rot_new_conn = n->conn_no;
	env->rotate_promote(env, old, n);
	/* One that is already closing (a heartbeat timeout) simply ends. */
	if (old->state == FEED_OPEN)
		feed_begin_close(old, WS_CLOSE_NORMAL, "rotated", true, now_us);
}

void feed_rotate_gone(struct feed *old, int64_t now_us)
{
	struct feed *n = old->rot_next;
	char oc[16], nc[16], ms[24];

	old->rotated_out = false;
	snprintf(oc, sizeof(oc), "%u", old->conn_no);
	snprintf(nc, sizeof(nc), "%u", old->rot_new_conn);
	snprintf(ms, sizeof(ms), "%.3f", (double)(now_us - old->rot_open_us) / 1000.0);
	if (n) {
		merge_stats(&n->stats, &old->stats);
		n->rot_prev = NULL;
		old->rot_next = NULL;
	}
	/* Said by the feed that carries on, if it is still there (a reload may have freed it). */
	feed_log(n ? n : old,
	         &(struct feed_event){"rotated",
	                              LOG_LVL_NOTICE,
	                              {{"old_conn", oc}, {"new_conn", nc}, {"overlap_ms", ms}}},
	         "connection %s replaced by connection %s (both open for %s ms)", oc, nc, ms);
}

void feed_rotate_cancel(struct feed *f, int64_t now_us, const char *why)
{
	struct feed *n = f->rot_next;

	if (!n || !n->shadow)
		return;
	f->rot_next = n->rot_prev = NULL;
	merge_stats(&f->stats, &n->stats); /* its failed attempts */
	/* Numbers its attempts used are not used again by the feed's next connection. */
	if (!f->conn_live && n->conn_no > f->conn_no)
		f->conn_no = n->conn_no;
	feed_log(f, &(struct feed_event){"rotation_cancelled", LOG_LVL_INFO, {{"reason", why}}},
	         "replacement connection given up: %s", why);
	n->stop_requested = true;
	feed_set_error(n, "%s", why);
	f->env->rotate_drop(f->env, n);
	if (n->state == FEED_RESOLVING || n->state == FEED_CONNECTING)
		tq_arm(n->env->tq, &n->t_state, now_us); /* see the top of this file */
	else
		feed_stop_why(n, now_us, why);
}

void feed_rotate_unlink(struct feed *f)
{
	if (f->rot_next && f->rot_next->rot_prev == f)
		f->rot_next->rot_prev = NULL;
	if (f->rot_prev && f->rot_prev->rot_next == f)
		f->rot_prev->rot_next = NULL;
	f->rot_next = f->rot_prev = NULL;
}
