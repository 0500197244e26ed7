/* The feed state machine: connect, heartbeat, detect death, back off, reconnect. */
#include "wsbeat/feed.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "wsbeat/backoff.h"
#include "wsbeat/helper.h"
#include "wsbeat/log.h"
#include "wsbeat/match.h"
#include "wsbeat/tmpl.h"
#include "wsbeat/url.h"
#include "wsbeat/util.h"
#include "wsbeat/zinf.h"

#include "feed_internal.h"

enum { T_STATE = 1, T_BEAT = 2, T_ANSWER = 4, T_IDLE = 8, T_ADDR = 16, T_ROTATE = 32 };
#define FEED_TIMERS 6

/* Which timers each state may have armed; entering a state disarms all others. */
static const unsigned state_timers[FEED_NSTATES] = {
    [FEED_IDLE] = 0,
    [FEED_RESOLVING] = T_STATE,
    [FEED_CONNECTING] = T_STATE | T_ADDR,
    [FEED_OPEN] = T_BEAT | T_ANSWER | T_IDLE | T_ROTATE,
    [FEED_CLOSING] = T_STATE,
    [FEED_BACKOFF] = T_STATE,
    [FEED_STOPPED] = 0,
};

static const char *const state_names[FEED_NSTATES] = {
    "idle", "resolving", "connecting", "open", "closing", "backoff", "stopped",
};

const double feed_rtt_bounds_s[FEED_RTT_BUCKETS] = {0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1,
                                                    0.25,  0.5,    1,     2.5,  5,     10,   30};

static void observe_rtt(struct feed_stats *st, double rtt_s)
{
	size_t i = 0;

	while (i < FEED_RTT_BUCKETS && rtt_s > feed_rtt_bounds_s[i])
		i++;
	if (i < FEED_RTT_BUCKETS)
		st->rtt_buckets[i]++;
	st->rtt_sum_s += rtt_s;
	st->rtt_count++;
}

const char *feed_state_name(enum feed_state s)
{
	return s < FEED_NSTATES ? state_names[s] : "?";
}

int64_t feed_real_us(void)
{
	return real_us();
}

/* Arrival times older than this are stale (a stamp from before a pause of the process). */
#define FEED_ARRIVAL_MAX_AGE_US (10 * 1000000LL)

int64_t feed_arrived_real_us(const struct feed *f, int64_t now_real_us)
{
	int64_t ago = now_real_us - f->rx_real_us;

	return f->rx_real_us && ago >= 0 && ago < FEED_ARRIVAL_MAX_AGE_US ? f->rx_real_us
	                                                                  : now_real_us;
}

void feed_log(const struct feed *f, const struct feed_event *ev, const char *fmt, ...)
{
	/* A replacement's records say so: the feed they name has its own connection too. */
	struct log_kv kv[4 + ARRAY_SIZE(ev->kv)] = {{"feed", f->cfg->name},
	                                            {"event", ev->name},
	                                            {"state", state_names[f->state]},
	                                            {"replacement", f->shadow ? "true" : NULL}};
	char msg[512];
	va_list ap;

	if (!log_enabled(ev->level))
		return;
	memcpy(kv + 4, ev->kv, sizeof(ev->kv));
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	log_rec(ev->level, kv, ARRAY_SIZE(kv), "%s", msg);
}

/* The one place that changes state: stamps the time, disarms timers, logs the event. */
void feed_set_state(struct feed *f, enum feed_state to, int64_t now_us)
{
	unsigned keep = state_timers[to];
	struct timerq *tq = f->env->tq;

	if (!(keep & T_STATE) || to != f->state)
		tq_cancel(tq, &f->t_state);
	if (!(keep & T_BEAT))
		tq_cancel(tq, &f->t_beat);
	if (!(keep & T_ANSWER))
		tq_cancel(tq, &f->t_answer);
	if (!(keep & T_IDLE))
		tq_cancel(tq, &f->t_idle);
	if (!(keep & T_ADDR))
		tq_cancel(tq, &f->t_addr);
	if (!(keep & T_ROTATE))
		tq_cancel(tq, &f->t_rotate);
	/* An attempt ends when it leaves resolving/connecting: its connect slot goes back. */
	if (f->holds_slot && to != FEED_RESOLVING && to != FEED_CONNECTING) {
		f->holds_slot = false;
		connq_release(f->env->connq, now_us);
	}
	/* ... and its connection stops counting against its host when it is gone. */
	if (to == FEED_BACKOFF || to == FEED_STOPPED || to == FEED_IDLE)
		connq_conn_done(f->env->connq, &f->qnode, now_us);
	if (to != f->state) {
		f->state_since_us = now_us;
		if (!f->shadow) { /* a replacement counts once it has taken over */
			f->env->n_in_state[f->state]--;
			f->env->n_in_state[to]++;
		}
	}
	f->state = to;
}

static void fmt_u(char *buf, size_t n, uint64_t v)
{
	snprintf(buf, n, "%" PRIu64, v);
}

static void on_state_timer(struct tq_timer *t, int64_t now_us);
static void on_beat_timer(struct tq_timer *t, int64_t now_us);
static void on_answer_timer(struct tq_timer *t, int64_t now_us);
static void on_idle_timer(struct tq_timer *t, int64_t now_us);
static void on_addr_timer(struct tq_timer *t, int64_t now_us);

int feed_init(struct feed *f, const struct cfg_feed *cfg, struct feed_env *env)
{
	*f = (struct feed){.cfg = cfg,
	                   .env = env,
	                   .state = FEED_IDLE,
	                   .retry_after_ms = -1,
	                   .proxy_fd = -1,
	                   .scan_fd = -1,
	                   .proxy = proxy_choose(&cfg->proxy, env->proxy_env, &cfg->url)};
	f->stats.last_rtt_ms = -1;
	env->n_in_state[FEED_IDLE]++;
	tq_timer_init(&f->t_state, on_state_timer);
	tq_timer_init(&f->t_beat, on_beat_timer);
	tq_timer_init(&f->t_answer, on_answer_timer);
	tq_timer_init(&f->t_idle, on_idle_timer);
	tq_timer_init(&f->t_addr, on_addr_timer);
	tq_timer_init(&f->t_rotate, feed_rotate_timer);
	return tq_reserve(env->tq, FEED_TIMERS);
}

void feed_fini(struct feed *f)
{
	feed_helper_cancel(f);
	feed_helper_reset(f);
	feed_rx_reset(f);
	mbuf_free(&f->msg);
	feed_clear_error(f);
	free(f->last);
	f->last = NULL;
	feed_rotate_unlink(f);
	feed_set_state(f, FEED_STOPPED, f->state_since_us);
	if (!f->shadow)
		f->env->n_in_state[FEED_STOPPED]--;
	connq_remove(f->env->connq, &f->qnode);
	tq_unreserve(f->env->tq, FEED_TIMERS);
}

/* No more reconnects: the process is stopping or this feed was removed. */
static bool winding_down(const struct feed *f)
{
	return f->env->stopping || f->stop_requested;
}

static void enter_idle(struct feed *f, int64_t now_us)
{
	feed_set_state(f, FEED_IDLE, now_us);
	connq_push(f->env->connq, &f->qnode, now_us);
}

static void enter_stopped(struct feed *f, int64_t now_us)
{
	feed_set_state(f, FEED_STOPPED, now_us);
	if (f->env->on_stopped)
		f->env->on_stopped(f->env, f);
}

void feed_start(struct feed *f, int64_t now_us)
{
	enter_idle(f, now_us);
}

/* Stands in for the reason when there was no memory to record it. */
static const char detail_lost_text[] = "out of memory (error text lost)";

/* The feed's detail record, allocated on first use; NULL when memory ran out (then
 * f->detail_lost is set and feed_err says so). */
static struct feed_detail *detail_of(struct feed *f)
{
	if (!f->detail && !f->detail_lost) {
		f->detail = calloc(1, sizeof(*f->detail));
		f->detail_lost = !f->detail;
	}
	return f->detail;
}

const char *feed_err(const struct feed *f)
{
	if (f->detail && f->detail->err[0])
		return f->detail->err;
	return f->detail_lost ? detail_lost_text : "";
}

/* The recorded reason, or fallback (which may be NULL: no field) when none was recorded. */
static const char *err_or(const struct feed *f, const char *fallback)
{
	const char *e = feed_err(f);

	return *e ? e : fallback;
}

const char *feed_last_error(const struct feed *f, int64_t now_mono_us, int64_t now_real_us,
                            int64_t *at_real_us)
{
	if (f->state == FEED_CLOSING && feed_err(f)[0]) {
		*at_real_us = now_real_us - (now_mono_us - f->state_since_us);
		return feed_err(f);
	}
	if (!f->last)
		return NULL;
	*at_real_us = f->last->at_real_us;
	return f->last->err;
}

/* Keeps why this attempt or connection ended for /status, past the next attempt. */
static void remember_end(struct feed *f, bool was_open)
{
	const char *e = feed_err(f);

	if (f->close_code)
		f->last_close_code = f->close_code;
	else if (was_open)
		f->last_close_code = 1006; /* abnormal closure: no close frame */
	if (!*e)
		return;
	if (!f->last && !(f->last = malloc(sizeof(*f->last))))
		return; /* the log has it; /status keeps the previous one */
	snprintf(f->last->err, sizeof(f->last->err), "%s", e);
	f->last->at_real_us = feed_real_us();
}

void feed_clear_error(struct feed *f)
{
	free(f->detail);
	f->detail = NULL;
	f->detail_lost = false;
}

void feed_set_error(struct feed *f, const char *fmt, ...)
{
	struct feed_detail *d;
	va_list ap;

	if (feed_err(f)[0])
		return;
	d = detail_of(f);
	if (!d)
		return;
	va_start(ap, fmt);
	vsnprintf(d->err, sizeof(d->err), fmt, ap);
	va_end(ap);
}

/* Our close frame's reason, or the peer's; "" when none. */
static const char *close_reason(const struct feed *f)
{
	return f->detail ? f->detail->close_reason : "";
}

static void set_close_reason(struct feed *f, const char *reason, size_t len)
{
	struct feed_detail *d = detail_of(f);

	if (!d)
		return; /* the close frame goes out without its reason */
	if (len >= sizeof(d->close_reason))
		len = sizeof(d->close_reason) - 1;
	memcpy(d->close_reason, reason, len);
	d->close_reason[len] = '\0';
}

static void reset_attempt(struct feed *f)
{
	feed_clear_error(f);
	f->http_status = 0;
	f->proxy_status = 0;
	f->peer_reached = false;
	f->peer_closed = false;
	f->proxy_answered = false;
	f->retry_after_ms = -1;
	f->aborting = false;
	f->close_code = 0;
	f->close_pending = false;
	f->close_wait = false;
	f->close_sent = false;
	f->beat_pending = false;
	f->hb_waiting_since_us = 0;
	f->hb_answer_due_us = 0;
	f->hb_seq = f->hb_awaited = 0;
	f->open_step = 0;
	f->upgraded = false;
	f->reply_warned = false;
	feed_rx_reset(f);
	feed_helper_reset(f);
	f->n_addrs = 0;
	f->addr_idx = 0;
}

static void start_connect(struct feed *f, int64_t now_us)
{
	if (f->env->shell->connect(f) < 0)
		feed_on_gone(f, now_us, NULL);
}

const char *feed_connect_host(const struct feed *f)
{
	return f->proxy ? f->proxy->host : feed_url(f)->host;
}

bool feed_dial_numeric(const struct feed *f)
{
	return f->proxy ? f->proxy->numeric : url_host_is_numeric(feed_url(f));
}

void feed_dial(struct feed *f, int64_t now_us)
{
	if (feed_dial_numeric(f)) {
		/* Cannot fail: the host was parsed as an address the same way. */
		dns_addr_parse(feed_connect_host(f), &f->addrs[0]);
		f->n_addrs = 1;
		start_connect(f, now_us);
	} else if (f->env->shell->resolve(f) < 0) {
		feed_on_gone(f, now_us, NULL);
	}
}

void feed_on_slot(struct feed *f, int64_t now_us)
{
	const struct url *u = &f->cfg->url;
	bool helper = f->cfg->connect_command != NULL;
	/* A helper runs in resolving, and may give a URL of its own. */
	bool numeric = !helper && feed_dial_numeric(f);
	char attempt[16];

	if (f->state != FEED_IDLE || winding_down(f)) {
		/* The grant is not used (a feed that is not idle holds its grant's connection). */
		connq_release(f->env->connq, now_us);
		if (f->state == FEED_IDLE)
			connq_conn_done(f->env->connq, &f->qnode, now_us);
		return;
	}
	reset_attempt(f);
	f->conn_live = true;
	f->holds_slot = true;
	feed_set_state(f, numeric ? FEED_CONNECTING : FEED_RESOLVING, now_us);
	tq_arm(f->env->tq, &f->t_state, now_us + f->cfg->connect_timeout_ms * 1000);
	fmt_u(attempt, sizeof(attempt), f->failures + 1);
	feed_log(f,
	         &(struct feed_event){"connecting",
	                              LOG_LVL_INFO,
	                              {{"url", u->display},
	                               {"attempt", attempt},
	                               {"proxy", f->proxy ? f->proxy->display : NULL}}},
	         "connecting (attempt %s)%s%s", attempt, f->proxy ? " through the proxy " : "",
	         f->proxy ? f->proxy->display : "");
	if (helper)
		feed_helper_start(f, now_us);
	else
		feed_dial(f, now_us);
}

void feed_on_resolved(struct feed *f, const struct dns_result *res, int64_t now_us)
{
	int64_t deadline = f->t_state.deadline_us;

	if (f->state != FEED_RESOLVING)
		return;
	f->dns_req = NULL;
	if (res->error) {
		feed_set_error(f, "cannot resolve %s%s: %s", f->proxy ? "the proxy " : "",
		               feed_connect_host(f), res->error);
		feed_on_gone(f, now_us, NULL);
		return;
	}
	memcpy(f->addrs, res->addrs, sizeof(f->addrs));
	f->n_addrs = (unsigned char)(res->n < DNS_MAX_ADDRS ? res->n : DNS_MAX_ADDRS);
	f->addr_idx = 0;
	feed_set_state(f, FEED_CONNECTING, now_us);
	tq_arm(f->env->tq, &f->t_state, deadline); /* one deadline for resolving and connecting */
	start_connect(f, now_us);
}

static void on_addr_timer(struct tq_timer *t, int64_t now_us)
{
	struct feed *f = container_of(t, struct feed, t_addr);

	if (f->state == FEED_CONNECTING && !f->aborting)
		start_connect(f, now_us);
}

/* After an address failed, moves on to the next one of the same answer; false if none. */
static bool try_next_address(struct feed *f, int64_t now_us)
{
	char addr[DNS_ADDR_LEN];

	if (f->state != FEED_CONNECTING || f->aborting || f->peer_reached ||
	    f->addr_idx + 1 >= f->n_addrs || winding_down(f))
		return false;
	dns_addr_text(&f->addrs[f->addr_idx], addr, sizeof(addr));
	log_rec(LOG_LVL_DEBUG,
	        (struct log_kv[]){{"feed", f->cfg->name},
	                          {"event", "address_failed"},
	                          {"address", addr},
	                          {"reason", feed_err(f)}},
	        4, "trying the next address");
	f->conn = NULL;
	feed_clear_error(f);
	f->addr_idx++;
	/* Connect from a timer: never start a connection inside another's lws callback. */
	tq_arm(f->env->tq, &f->t_addr, now_us);
	return true;
}

/*
 * Stops the current connection from our side: a close frame, then a bounded wait. A graceful
 * close (wait) keeps reading until the peer's close so that nothing the server sent before it
 * saw ours is lost; a close for a dead or misbehaving peer ends the connection at once.
 */
void feed_begin_close(struct feed *f, int code, const char *reason, bool wait, int64_t now_us)
{
	f->close_wait = wait;
	feed_set_error(f, "%s", reason);
	f->close_pending = true;
	f->close_code = code;
	set_close_reason(f, reason, strlen(reason));
	feed_set_state(f, FEED_CLOSING, now_us);
	tq_arm(f->env->tq, &f->t_state, now_us + FEED_CLOSE_TIMEOUT_US);
	f->env->shell->want_write(f);
}

static void drop(struct feed *f, int64_t now_us)
{
	if (f->aborting)
		return;
	f->aborting = true;
	if (f->helper_running) {
		feed_helper_cancel(f);
	} else if (f->state == FEED_RESOLVING) {
		f->env->shell->cancel_resolve(f);
		f->dns_req = NULL;
	}
	if (f->conn)
		f->env->shell->abort(f); /* feed_on_gone follows from the shell */
	else
		feed_on_gone(f, now_us, NULL);
}

void feed_stop(struct feed *f, int64_t now_us)
{
	feed_stop_why(f, now_us, "shutting down");
}

void feed_stop_why(struct feed *f, int64_t now_us, const char *why)
{
	f->stop_requested = true;
	feed_rotate_cancel(f, now_us, why);
	switch (f->state) {
	case FEED_IDLE:
	case FEED_BACKOFF:
		connq_remove(f->env->connq, &f->qnode);
		enter_stopped(f, now_us);
		break;
	case FEED_RESOLVING:
	case FEED_CONNECTING:
		feed_set_error(f, "%s", why);
		drop(f, now_us);
		break;
	case FEED_OPEN:
		feed_begin_close(f, WS_CLOSE_GOING_AWAY, why, true, now_us);
		break;
	case FEED_CLOSING:
	case FEED_STOPPED:
	case FEED_NSTATES:
		break;
	}
}

static int64_t first_beat_at(struct feed *f, int64_t now_us)
{
	/* A random phase spreads the beats of many feeds across the interval. */
	int64_t interval = f->cfg->heartbeat.interval_ms * 1000;
	return now_us + (int64_t)(rng_unit(f->env->rng) * (double)interval);
}

/* Sends of the open sequence, and replies, may go out before the feed is open. */
static bool can_send(const struct feed *f)
{
	return f->state == FEED_OPEN || (f->state == FEED_CONNECTING && f->upgraded);
}

static bool step_is_send(const struct feed *f)
{
	const struct cfg_step *st;

	/* Every write asks this (each heartbeat too): answer the common case without a call. */
	if (!f->helper && f->open_step >= f->cfg->n_on_open)
		return false;
	st = feed_step(f);
	return st && st->send;
}

void feed_on_open(struct feed *f, int64_t now_us)
{
	/* stop_requested: a replacement given up while connecting, dropped from a timer. */
	if (f->state != FEED_CONNECTING || f->aborting || f->upgraded || f->stop_requested)
		return;
	f->upgraded = true;
	f->conn_no++;
	if (f->sink)
		sink_open_record(f->sink, feed_real_us(), f->cfg->name, f->conn_no,
		                 f->cfg->url.display);
	if (feed_open_after(f) == 0) {
		feed_became_open(f, now_us);
		return;
	}
	/* The sequence (its waits) must finish within connect_timeout of the upgrade. */
	tq_arm(f->env->tq, &f->t_state, now_us + f->cfg->connect_timeout_ms * 1000);
	if (step_is_send(f))
		f->env->shell->want_write(f);
}

void feed_became_open(struct feed *f, int64_t now_us)
{
	const struct cfg_heartbeat *hb = &f->cfg->heartbeat;
	char attempt[16];

	if (f->stop_requested)
		return; /* a replacement given up in its open sequence: see feed_on_open */
	f->stats.connects++;
	f->open_since_us = now_us;
	f->last_data_us = now_us;
	feed_set_state(f, FEED_OPEN, now_us);
	if (hb->type == HB_SERVER) {
		/* The server's heartbeats have `timeout` from the open to start coming. */
		f->hb_waiting_since_us = now_us;
		f->hb_answer_due_us = now_us + hb->timeout_ms * 1000;
		tq_arm(f->env->tq, &f->t_answer, f->hb_answer_due_us);
	} else if (hb->type != HB_NONE) {
		tq_arm(f->env->tq, &f->t_beat, first_beat_at(f, now_us));
	}
	if (f->cfg->idle_timeout_ms > 0)
		tq_arm(f->env->tq, &f->t_idle, now_us + f->cfg->idle_timeout_ms * 1000);
	if (step_is_send(f) || f->out_q)
		f->env->shell->want_write(f);
	feed_rotate_arm(f, now_us);
	fmt_u(attempt, sizeof(attempt), f->failures + 1);
	feed_log(f,
	         &(struct feed_event){
	             "open", LOG_LVL_NOTICE, {{"url", f->cfg->url.display}, {"attempt", attempt}}},
	         "connection open");
	if (f->shadow)
		feed_rotate_opened(f, now_us);
}

void feed_on_tls_rejected(struct feed *f, const char *reason)
{
	f->peer_reached = true;
	feed_set_error(f, "%s", reason);
}

void feed_on_http_status(struct feed *f, int status, int64_t retry_after_ms)
{
	f->peer_reached = true;
	f->http_status = status;
	f->retry_after_ms = retry_after_ms;
}

void feed_on_proxy_answer(struct feed *f, int status, const char *text)
{
	f->proxy_answered = true;
	f->peer_reached = true;
	if (status == 200 || !f->proxy)
		return;
	if (status) {
		f->proxy_status = (uint16_t)status;
		feed_set_error(f, "proxy %s answered %d%s%s", f->proxy->display, status,
		               *text ? " " : "", text);
	} else {
		feed_set_error(f, "proxy %s %s", f->proxy->display, text);
	}
}

void feed_on_peer_close(struct feed *f, int code, const char *reason, size_t reason_len)
{
	f->peer_closed = true;
	f->close_code = code;
	set_close_reason(f, reason, reason_len);
	feed_set_error(f, "server closed the connection");
}

static void on_beat_timer(struct tq_timer *t, int64_t now_us)
{
	struct feed *f = container_of(t, struct feed, t_beat);
	const struct cfg_heartbeat *hb = &f->cfg->heartbeat;
	int64_t interval = hb->interval_ms * 1000;
	int64_t due = t->deadline_us, next = due + interval;

	if (f->state != FEED_OPEN)
		return;
	if (!f->beat_pending) {
		f->beat_pending = true;
		f->hb_seq++;
		f->env->shell->want_write(f);
	}
	if (f->hb_waiting_since_us == 0) {
		/* The answer has `timeout` from when we could first ask: a loop that woke up late
		 * must not count its own delay against the peer. */
		f->hb_waiting_since_us = due;
		f->hb_answer_due_us = (now_us > due ? now_us : due) + hb->timeout_ms * 1000;
		f->hb_awaited = f->hb_seq;
		/* An armed t_answer is due no later than this (it belongs to an earlier beat):
		 * it re-arms itself when it fires. */
		if (!tq_armed(&f->t_answer))
			tq_arm(f->env->tq, &f->t_answer, f->hb_answer_due_us);
	}
	/* Stay on the original grid: beats missed while the loop was busy are skipped, not
	 * bunched, and the period never drifts by the time it took to get here. */
	if (next <= now_us)
		next += ((now_us - next) / interval + 1) * interval;
	tq_arm(f->env->tq, &f->t_beat, next);
}

static void on_answer_timer(struct tq_timer *t, int64_t now_us)
{
	struct feed *f = container_of(t, struct feed, t_answer);
	char ms[24];

	if (f->state != FEED_OPEN || f->hb_waiting_since_us == 0)
		return; /* answered since it was armed: the next beat arms it again */
	if (f->hb_answer_due_us > now_us) {
		/* Armed for an earlier beat that was answered: wait for the one now awaited. */
		tq_arm(f->env->tq, &f->t_answer, f->hb_answer_due_us);
		return;
	}
	f->stats.beat_timeouts++;
	fmt_u(ms, sizeof(ms), (uint64_t)f->cfg->heartbeat.timeout_ms);
	feed_set_error(f, "heartbeat timeout");
	feed_log(f,
	         &(struct feed_event){"heartbeat_timeout", LOG_LVL_WARNING, {{"timeout_ms", ms}}},
	         f->cfg->heartbeat.type == HB_SERVER
	             ? "no heartbeat from the server within %s ms: connection declared dead"
	             : "no heartbeat answer within %s ms: connection declared dead",
	         ms);
	feed_begin_close(f, WS_CLOSE_GOING_AWAY, "heartbeat timeout", false, now_us);
}

static void on_idle_timer(struct tq_timer *t, int64_t now_us)
{
	struct feed *f = container_of(t, struct feed, t_idle);
	int64_t idle = f->cfg->idle_timeout_ms * 1000;
	char ms[24];

	if (f->state != FEED_OPEN)
		return;
	/* Data does not re-arm the timer (that would cost per message); check lazily here. */
	if (f->last_data_us + idle > now_us) {
		tq_arm(f->env->tq, &f->t_idle, f->last_data_us + idle);
		return;
	}
	fmt_u(ms, sizeof(ms), (uint64_t)f->cfg->idle_timeout_ms);
	feed_set_error(f, "idle timeout");
	feed_log(f, &(struct feed_event){"idle_timeout", LOG_LVL_WARNING, {{"idle_ms", ms}}},
	         "no data message for %s ms", ms);
	feed_begin_close(f, WS_CLOSE_GOING_AWAY, "idle timeout", false, now_us);
}

/* What the open sequence is at, for a timeout's reason: a wait's match, as written. */
static const char *open_step_text(const struct feed *f)
{
	const struct cfg_step *st = feed_step(f);

	return st && st->wait ? st->wait->text : "sending";
}

static void on_state_timer(struct tq_timer *t, int64_t now_us)
{
	struct feed *f = container_of(t, struct feed, t_state);

	switch (f->state) {
	case FEED_RESOLVING:
	case FEED_CONNECTING:
		if (f->helper_running)
			feed_helper_timeout(f);
		if (f->upgraded && feed_step(f))
			feed_set_error(f,
			               "connect timeout after %" PRId64 " ms in the open sequence, "
			               "at on_open[%zu] (%s)",
			               f->cfg->connect_timeout_ms, f->open_step, open_step_text(f));
		if (f->proxy && f->state == FEED_CONNECTING && !f->proxy_answered)
			feed_set_error(f,
			               "connect timeout after %" PRId64 " ms (no answer from the "
			               "proxy %s)",
			               f->cfg->connect_timeout_ms, f->proxy->display);
		feed_set_error(f, "connect timeout after %" PRId64 " ms%s",
		               f->cfg->connect_timeout_ms,
		               f->state != FEED_RESOLVING ? ""
		               : f->proxy                 ? " (still resolving the proxy's name)"
		                                          : " (still resolving the name)");
		drop(f, now_us);
		break;
	case FEED_CLOSING:
		drop(f, now_us);
		break;
	case FEED_BACKOFF:
		enter_idle(f, now_us);
		break;
	default:
		break;
	}
}

static void observe_answer(struct feed *f, int64_t rtt_us)
{
	char rtt[32];

	f->stats.beats_answered++;
	f->stats.last_rtt_ms = (double)rtt_us / 1000.0;
	observe_rtt(&f->stats, (double)rtt_us / 1e6);
	rtt_ring_push(&f->stats.rtt_recent, rtt_us);
	if (log_enabled(LOG_LVL_DEBUG)) {
		snprintf(rtt, sizeof(rtt), "%.3f", f->stats.last_rtt_ms);
		feed_log(f, &(struct feed_event){"heartbeat", LOG_LVL_DEBUG, {{"rtt_ms", rtt}}},
		         "heartbeat answered in %s ms", rtt);
	}
}

/* Every outstanding beat is answered. */
static void answered(struct feed *f, int64_t rtt_us)
{
	f->hb_waiting_since_us = 0;
	f->hb_answer_due_us = 0; /* t_answer stays armed: see struct feed */
	observe_answer(f, rtt_us);
}

void feed_beat_answered(struct feed *f, uint32_t seq, int64_t now_us)
{
	int64_t interval = f->cfg->heartbeat.interval_ms * 1000;
	/* Beats go out on a fixed grid: an earlier one left (hb_seq - seq) intervals before. */
	int64_t sent = f->hb_last_sent_us - (int64_t)(f->hb_seq - seq) * interval;

	if (f->state != FEED_OPEN || f->hb_waiting_since_us == 0 || seq < f->hb_awaited)
		return;
	if (seq >= f->hb_seq) {
		answered(f, now_us > sent ? now_us - sent : 0);
		return;
	}
	/* A later beat is still out: its answer is awaited from its own send time. */
	f->hb_awaited = seq + 1;
	f->hb_waiting_since_us = sent + interval;
	f->hb_answer_due_us = f->hb_waiting_since_us + f->cfg->heartbeat.timeout_ms * 1000;
	observe_answer(f, now_us > sent ? now_us - sent : 0);
}

void feed_server_beat(struct feed *f, int64_t now_us)
{
	if (f->state != FEED_OPEN || f->cfg->heartbeat.type != HB_SERVER)
		return;
	/* Lazy: t_answer re-arms itself for the new deadline when it fires. */
	f->hb_answer_due_us = now_us + f->cfg->heartbeat.timeout_ms * 1000;
}

void feed_on_server_ping(struct feed *f, int64_t now_us)
{
	if (f->state != FEED_OPEN || f->cfg->heartbeat.type != HB_SERVER)
		return;
	f->stats.keepalive++;
	if (!f->cfg->heartbeat.expect)
		feed_server_beat(f, now_us);
}

static uint64_t get_be64(const unsigned char *p)
{
	uint64_t v = 0;

	for (int i = 0; i < 8; i++)
		v = (v << 8) | p[i];
	return v;
}

static void put_be64(unsigned char *p, uint64_t v)
{
	for (int i = 7; i >= 0; i--, v >>= 8)
		p[i] = (unsigned char)v;
}

/* PONGs this close together, this many times in a row, are one PONG delivered again and again. */
#define FEED_PONG_SPIN_US    1000
#define FEED_PONG_SPIN_COUNT 64

int feed_on_pong(struct feed *f, const void *data, size_t len, int64_t now_us)
{
	int64_t sent;

	/* lws 4.1.6 with permessage-deflate negotiated can hand the same PONG to its user
	 * forever, spinning the loop (seen here with our own PINGs; a server's unsolicited PONGs
	 * take the same path): such a connection is dropped, with a reason. */
	f->pong_spin = now_us - f->last_pong_us < FEED_PONG_SPIN_US ? f->pong_spin + 1 : 0;
	f->last_pong_us = now_us;
	if (f->pong_spin >= FEED_PONG_SPIN_COUNT) {
		feed_set_error(f, "libwebsockets delivers one PONG over and over (a known fault of "
		                  "lws 4.1 with permessage-deflate): connection dropped");
		return -1;
	}
	if (f->state != FEED_OPEN || f->cfg->heartbeat.type != HB_PING || len != 8 ||
	    f->hb_waiting_since_us == 0)
		return 0;
	/* Our PING payload is its send time: a PONG counts only if it echoes a beat we are still
	 * waiting for, so stray or unsolicited PONGs prove nothing. */
	sent = (int64_t)get_be64(data);
	if (sent < f->hb_waiting_since_us || sent > now_us)
		return 0;
	answered(f, now_us - sent);
	return 0;
}

const char *feed_expand(struct feed *f, const struct tmpl *t, size_t *len)
{
	struct tmpl_ctx c = {.seq = f->hb_seq, .now_real_us = 0, .random = f->env->random};

	if (t->flat) {
		*len = t->flat_len;
		return t->flat;
	}
	c.now_real_us = feed_real_us();
	mbuf_reset(&f->env->scratch);
	if (tmpl_expand(t, &c, &f->env->scratch) < 0)
		return NULL;
	*len = f->env->scratch.len;
	return f->env->scratch.p;
}

static void beat_frame(struct feed *f, int64_t now_us, struct feed_frame *fr)
{
	const struct cfg_heartbeat *hb = &f->cfg->heartbeat;
	const char *data;
	size_t len;

	if (hb->type == HB_PING) {
		/* The payload is the send time, carried by the frame: nothing kept per feed. */
		*fr = (struct feed_frame){
		    .kind = FRAME_PING, .src = SRC_BEAT, .data = fr->ping_buf, .len = 8};
		put_be64(fr->ping_buf, (uint64_t)now_us);
		return;
	}
	data = feed_expand(f, hb->payload, &len);
	if (!data) {
		f->beat_pending = false; /* unanswered, it will time out */
		return;
	}
	*fr = (struct feed_frame){.kind = hb->type == HB_BINARY ? FRAME_BINARY : FRAME_TEXT,
	                          .src = SRC_BEAT,
	                          .data = data,
	                          .len = len};
}

void feed_next_frame(struct feed *f, int64_t now_us, struct feed_frame *fr)
{
	const char *data;
	size_t len;

	*fr = (struct feed_frame){.kind = FRAME_NONE};
	if (!f->conn_live || f->aborting)
		return;
	if (f->close_pending) {
		const char *why = close_reason(f);
		*fr = (struct feed_frame){.kind = FRAME_CLOSE,
		                          .src = SRC_CLOSE,
		                          .data = why,
		                          .len = strlen(why),
		                          .close_code = f->close_code,
		                          .wait_for_peer = f->close_wait};
	} else if (!can_send(f)) {
		return;
	} else if (f->out_q) {
		/* Replies first: a server that pings wants its answer before anything else. */
		*fr = (struct feed_frame){.kind = FRAME_TEXT,
		                          .src = SRC_REPLY,
		                          .data = f->out_q->data,
		                          .len = f->out_q->len};
	} else if (step_is_send(f)) {
		data = feed_expand(f, feed_step(f)->send, &len);
		if (!data) {
			feed_set_error(f, "out of memory building on_open[%zu]", f->open_step);
			return;
		}
		*fr = (struct feed_frame){
		    .kind = FRAME_TEXT, .src = SRC_ON_OPEN, .data = data, .len = len};
	} else if (f->beat_pending && f->state == FEED_OPEN) {
		beat_frame(f, now_us, fr);
	}
}

bool feed_frame_sent(struct feed *f, const struct feed_frame *fr, int64_t now_us)
{
	struct feed_out *o;

	switch (fr->src) {
	case SRC_ON_OPEN:
		if (log_enabled(LOG_LVL_DEBUG)) {
			char what[48];
			snprintf(what, sizeof(what), "sent on_open[%zu]", f->open_step);
			feed_log_payload(f, "sent", what, fr->data, fr->len, false,
			                 feed_step(f)->send->secret);
		}
		f->open_step++;
		break;
	case SRC_REPLY:
		feed_log_payload(f, "reply", "sent a reply", fr->data, fr->len, false,
		                 f->out_q->secret);
		o = f->out_q;
		f->out_q = o->next;
		free(o);
		f->stats.replies_sent++;
		break;
	case SRC_BEAT:
		f->beat_pending = false;
		f->hb_last_sent_us = now_us;
		f->stats.beats_sent++;
		break;
	case SRC_CLOSE:
		f->close_pending = false;
		f->close_sent = true;
		return false;
	}
	return can_send(f) &&
	       (f->out_q || step_is_send(f) || (f->state == FEED_OPEN && f->beat_pending));
}

/* An attempt that never opened: count it and log why. Returns the policy's delay. */
static int64_t attempt_failed(struct feed *f)
{
	const struct cfg_reconnect *rc = &f->cfg->reconnect;
	/* A proxy that wants other credentials (407, or 401 from some) or forbids the destination
	 * (403) says so again on every retry until its configuration or ours changes, as a
	 * server's 401/403 does. */
	bool by_proxy = proxy_status_is_permanent(f->proxy_status);
	bool permanent = by_proxy || backoff_status_is_permanent(f->http_status);
	char attempt[16], status[16], pstatus[16], retry[24];
	int64_t delay;

	f->stats.connect_errors++;
	f->failures++;
	delay = backoff_delay_ms(rc, f->failures, rng_unit(f->env->rng));
	delay = by_proxy ? rc->max_ms
	                 : backoff_for_status(rc, f->http_status, f->retry_after_ms, delay);
	fmt_u(attempt, sizeof(attempt), f->failures);
	fmt_u(status, sizeof(status), (uint64_t)f->http_status);
	fmt_u(pstatus, sizeof(pstatus), (uint64_t)f->proxy_status);
	fmt_u(retry, sizeof(retry), (uint64_t)f->retry_after_ms);
	feed_log(f,
	         &(struct feed_event){"connect_error",
	                              winding_down(f) ? LOG_LVL_INFO
	                              : permanent     ? LOG_LVL_ERROR
	                                              : LOG_LVL_WARNING,
	                              {{"url", f->cfg->url.display},
	                               {"attempt", attempt},
	                               {"reason", err_or(f, "connection failed")},
	                               {"http_status", f->http_status ? status : NULL},
	                               {"proxy_status", f->proxy_status ? pstatus : NULL},
	                               {"retry_after_ms", f->retry_after_ms >= 0 ? retry : NULL}}},
	         permanent ? "%s refused the feed (HTTP %s); this will not fix itself, retrying at "
	                     "the maximum delay"
	                   : "connection attempt failed: %s%s",
	         permanent ? (by_proxy ? "the proxy" : "server") : err_or(f, "connection failed"),
	         permanent ? (by_proxy ? pstatus : status) : "");
	return delay;
}

/* A connection that was open has ended. Returns the policy's delay. */
static int64_t connection_ended(struct feed *f, int64_t now_us)
{
	const struct cfg_reconnect *rc = &f->cfg->reconnect;
	bool stable = now_us - f->open_since_us >= rc->stable_after_ms * 1000;
	const char *err = err_or(f, "connection lost"), *why = close_reason(f);
	char code[16], code_text[160] = "";

	bool planned = f->peer_closed && backoff_close_is_planned(f->close_code);

	f->stats.disconnects++;
	/* Only a connection that stayed up long enough proves the server healthy again. */
	if (stable)
		f->failures = 0;
	else if (!planned)
		f->failures++;
	fmt_u(code, sizeof(code), (uint64_t)f->close_code);
	if (f->close_code)
		snprintf(code_text, sizeof(code_text), " (close code %s%s%s)", code,
		         *why ? ": " : "", why);
	feed_log(f,
	         &(struct feed_event){"closed",
	                              winding_down(f) ? LOG_LVL_INFO
	                              : planned       ? LOG_LVL_NOTICE
	                                              : LOG_LVL_WARNING,
	                              {{"close_code", f->close_code ? code : NULL},
	                               {"reason", err},
	                               {"close_reason", *why ? why : NULL}}},
	         "connection closed: %s%s", err, code_text);
	if (f->sink)
		sink_closed_record(f->sink, feed_real_us(), f->cfg->name, f->conn_no,
		                   f->close_code ? f->close_code : 1006 /* abnormal closure */,
		                   err);
	return backoff_delay_ms(rc, f->failures ? f->failures : 1, rng_unit(f->env->rng));
}

void feed_on_gone(struct feed *f, int64_t now_us, const char *reason)
{
	bool was_open = f->state == FEED_OPEN || f->state == FEED_CLOSING;
	enum feed_state to = winding_down(f) ? FEED_STOPPED : FEED_BACKOFF;
	char attempt[16], delay_s[24];
	int64_t delay;

	if (!f->conn_live)
		return;
	if (reason)
		feed_set_error(f, "%s", reason);
	if (try_next_address(f, now_us))
		return;
	f->conn_live = false;
	f->conn = NULL;
	feed_helper_reset(f); /* its secrets are not kept through backoff */
	remember_end(f, was_open);
	/* Records carry the state the feed is in after the event. */
	feed_set_state(f, to, now_us);
	delay = was_open ? connection_ended(f, now_us) : attempt_failed(f);
	/* Upgraded but failed in the open sequence: the capture saw it open, so it sees it end. */
	if (!was_open && f->upgraded && f->sink)
		sink_closed_record(f->sink, feed_real_us(), f->cfg->name, f->conn_no, 1006,
		                   err_or(f, "connection failed"));
	/* A replacement still connecting has nothing left to replace: this feed reconnects. */
	feed_rotate_cancel(f, now_us, "the connection it was to replace has ended");
	if (f->rotated_out)
		feed_rotate_gone(f, now_us);
	if (to == FEED_STOPPED) {
		if (f->env->on_stopped)
			f->env->on_stopped(f->env, f);
		return;
	}
	tq_arm(f->env->tq, &f->t_state, now_us + delay * 1000);
	fmt_u(attempt, sizeof(attempt), f->failures + 1);
	fmt_u(delay_s, sizeof(delay_s), (uint64_t)delay);
	feed_log(f,
	         &(struct feed_event){
	             "backoff", LOG_LVL_INFO, {{"attempt", attempt}, {"delay_ms", delay_s}}},
	         "next attempt in %s ms", delay_s);
}

void feed_log_status(const struct feed *f, int64_t now_us)
{
	char since[24], attempt[16], rtt[32], conns[24];

	snprintf(since, sizeof(since), "%.1f", (double)(now_us - f->state_since_us) / 1e6);
	fmt_u(attempt, sizeof(attempt), f->failures + 1);
	fmt_u(conns, sizeof(conns), f->stats.connects);
	if (f->stats.last_rtt_ms >= 0)
		snprintf(rtt, sizeof(rtt), "%.3f", f->stats.last_rtt_ms);
	feed_log(f,
	         &(struct feed_event){"status",
	                              LOG_LVL_INFO,
	                              {{"in_state_s", since},
	                               {"attempt", attempt},
	                               {"connects", conns},
	                               {"rtt_ms", f->stats.last_rtt_ms >= 0 ? rtt : NULL},
	                               {"last_error", err_or(f, NULL)}}},
	         "%s for %ss", state_names[f->state], since);
}
