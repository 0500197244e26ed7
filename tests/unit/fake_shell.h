/*
 * A recording stand-in for the lws shell, for unit tests of the feed state machine: it counts
 * connect/want_write/abort/run_helper, writes the frames the feed asks for, can answer heartbeats
 * like a server would, and plays the loop by firing the timer queue at explicit times. As the
 * owner of feeds it makes the replacements of rotations (k->shadows, in order) and records what
 * became of them.
 */
#ifndef WSBEAT_TEST_FAKE_SHELL_H
#define WSBEAT_TEST_FAKE_SHELL_H

#include <stdio.h>
#include <string.h>

#include "wsbeat/feed.h"
#include "wsbeat/log.h"
#include "wsbeat/match.h"
#include "wsbeat/tmpl.h"
#include "wsbeat/util.h"

#define FAKE_MAX_FRAMES  256
#define FAKE_MAX_LOG     256
#define FAKE_MAX_SHADOWS 4

struct fake_frame {
	enum frame_kind kind;
	enum frame_src src;
	char data[128];
	size_t len;
	int close_code;
	int64_t at;
};

struct fake {
	struct timerq tq;
	struct connq cq;
	struct rng rng;
	struct feed_env env;
	struct feed f;
	struct cfg_feed cfg;
	int64_t now;

	/* What the feed asked of the shell. */
	int n_resolve, n_cancel_resolve, n_connect, n_want_write, n_abort, n_stopped;
	int n_run_helper, n_cancel_helper;
	int resolve_ret, connect_ret, run_helper_ret; /* what they return: 0 or -1 */
	size_t connect_addr_idx;                      /* f->addr_idx at the last connect */
	bool write_wanted;
	/* Grants by the connect queue, with the feed's state at that moment. */
	int n_grants;
	enum feed_state state_at_grant;

	/* Frames written by pump(). */
	struct fake_frame frames[FAKE_MAX_FRAMES];
	size_t n_frames;
	/* Replacements made for rotations (rotate_new), and what became of them. */
	struct feed shadows[FAKE_MAX_SHADOWS];
	size_t n_shadows;
	bool rotate_fail; /* rotate_new runs out of memory */
	int n_promoted, n_dropped;
	struct feed *promoted_old, *promoted_new, *dropped;
	/* When set, pump() answers each heartbeat it writes, answer_delay_us later: a PONG, or
	 * the message answer (text or binary like the beat; "x" when NULL). */
	bool auto_answer;
	int64_t answer_delay_us;
	const char *answer;
	size_t answer_len;

	/* Templates and matches the test compiled into cfg, freed by fake_fini. */
	struct tmpl *tmpls[16];
	struct match *matches[16];
	size_t n_tmpls, n_matches;

	char log[FAKE_MAX_LOG][512];
	size_t n_log;
};

static struct fake *fake_of(struct feed *f)
{
	return f->env->shell_arg;
}

static int fake_resolve(struct feed *f)
{
	struct fake *k = fake_of(f);

	k->n_resolve++;
	if (k->resolve_ret < 0) {
		feed_set_error(f, "resolver unavailable");
		return -1;
	}
	f->dns_req = (struct dns_req *)(void *)k; /* any non-NULL handle */
	return 0;
}

static void fake_cancel_resolve(struct feed *f)
{
	fake_of(f)->n_cancel_resolve++;
}

static int fake_connect(struct feed *f)
{
	struct fake *k = fake_of(f);

	k->n_connect++;
	k->connect_addr_idx = f->addr_idx;
	if (k->connect_ret < 0) {
		feed_set_error(f, "connection refused");
		return -1;
	}
	f->conn = (struct lws *)(void *)k; /* any non-NULL handle */
	return 0;
}

static void fake_want_write(struct feed *f)
{
	struct fake *k = fake_of(f);

	k->n_want_write++;
	k->write_wanted = true;
}

static void fake_abort(struct feed *f)
{
	fake_of(f)->n_abort++;
}

static int fake_run_helper(struct feed *f)
{
	struct fake *k = fake_of(f);

	k->n_run_helper++;
	if (k->run_helper_ret < 0) {
		feed_set_error(f, "connect_command %s cannot run: Permission denied",
		               f->cfg->connect_command[0]);
		return -1;
	}
	return 0;
}

static void fake_cancel_helper(struct feed *f, char *line, size_t size)
{
	fake_of(f)->n_cancel_helper++;
	snprintf(line, size, "%s", "waiting for the vault");
}

static const struct feed_shell fake_shell_ops = {
    .resolve = fake_resolve,
    .cancel_resolve = fake_cancel_resolve,
    .connect = fake_connect,
    .want_write = fake_want_write,
    .abort = fake_abort,
    .run_helper = fake_run_helper,
    .cancel_helper = fake_cancel_helper,
};

static bool fake_owns(const struct fake *k, const struct feed *f)
{
	return f == &k->f || (f >= k->shadows && f < k->shadows + k->n_shadows);
}

static void fake_on_stopped(struct feed_env *env, struct feed *f)
{
	struct fake *k = env->shell_arg;

	assert_true(fake_owns(k, f));
	assert_int_equal(f->state, FEED_STOPPED);
	k->n_stopped++;
}

static struct feed *fake_rotate_new(struct feed_env *env, struct feed *f)
{
	struct fake *k = env->shell_arg;
	struct feed *n;

	assert_true(fake_owns(k, f));
	if (k->rotate_fail || k->n_shadows == FAKE_MAX_SHADOWS)
		return NULL;
	n = &k->shadows[k->n_shadows];
	assert_int_equal(feed_init(n, f->cfg, env), 0);
	k->n_shadows++;
	n->sink = f->sink;
	n->qnode.host = f->qnode.host;
	return n;
}

static void fake_rotate_promote(struct feed_env *env, struct feed *old, struct feed *n)
{
	struct fake *k = env->shell_arg;

	assert_true(fake_owns(k, old) && fake_owns(k, n));
	k->n_promoted++;
	k->promoted_old = old;
	k->promoted_new = n;
}

static void fake_rotate_drop(struct feed_env *env, struct feed *n)
{
	struct fake *k = env->shell_arg;

	assert_true(fake_owns(k, n));
	k->n_dropped++;
	k->dropped = n;
}

static void fake_grant(struct connq *q, struct connq_node *n, int64_t now_us)
{
	struct feed *f = container_of(n, struct feed, qnode);
	struct fake *k = fake_of(f);

	(void)q;
	k->n_grants++;
	k->state_at_grant = f->state;
	feed_on_slot(f, now_us);
}

static void fake_log_sink(enum log_level l, const char *line, void *arg)
{
	struct fake *k = arg;

	(void)l;
	if (k->n_log < FAKE_MAX_LOG)
		snprintf(k->log[k->n_log++], sizeof(k->log[0]), "%s", line);
}

/* How many captured records contain a and, unless it is NULL, b. */
static int fake_log_count(const struct fake *k, const char *a, const char *b)
{
	int n = 0;

	for (size_t i = 0; i < k->n_log; i++)
		if (strstr(k->log[i], a) && (!b || strstr(k->log[i], b)))
			n++;
	return n;
}

/* A numeric host (no resolving), a ping heartbeat, no idle timeout, no jitter: every delay is
 * exact. */
static void fake_default_cfg(struct cfg_feed *c)
{
	static char name[] = "t1", host[] = "127.0.0.1", display[] = "ws://127.0.0.1/";

	*c = (struct cfg_feed){
	    .name = name,
	    .heartbeat = {.type = HB_PING, .interval_ms = 5000, .timeout_ms = 2000},
	    .reconnect = {.initial_ms = 1000,
	                  .max_ms = 60000,
	                  .multiplier = 2.0,
	                  .jitter = 0.0,
	                  .stable_after_ms = 30000},
	    .connect_timeout_ms = 10000,
	    .max_message_size = 1 << 20};
	c->url.host = host;
	c->url.port = 80;
	c->url.display = display;
}

static void fake_init(struct fake *k)
{
	memset(k, 0, sizeof(*k));
	fake_default_cfg(&k->cfg);
	k->now = 1000000000LL;
	rng_seed(&k->rng, 99);
	tq_init(&k->tq, 0, NULL, NULL);
	assert_int_equal(connq_init(&k->cq, &k->tq, 1000, fake_grant, k->now), 0);
	k->env = (struct feed_env){.tq = &k->tq,
	                           .connq = &k->cq,
	                           .rng = &k->rng,
	                           .shell = &fake_shell_ops,
	                           .shell_arg = k,
	                           .on_stopped = fake_on_stopped,
	                           .rotate_new = fake_rotate_new,
	                           .rotate_promote = fake_rotate_promote,
	                           .rotate_drop = fake_rotate_drop};
	log_set_sink(fake_log_sink, k);
}

/* Call after changing k->cfg. */
static void fake_feed_init(struct fake *k)
{
	assert_int_equal(feed_init(&k->f, &k->cfg, &k->env), 0);
}

/* Compiles a template (any variable) for k->cfg; fake_fini frees it. */
__attribute__((unused)) static struct tmpl *fake_tmpl(struct fake *k, const char *src, size_t len)
{
	char err[256];
	struct tmpl *t;

	if (tmpl_compile(src, len, TMPL_ANY, NULL, &t, err, sizeof(err)) < 0)
		fail_msg("template \"%s\": %s", src, err);
	assert_true(k->n_tmpls < sizeof(k->tmpls) / sizeof(k->tmpls[0]));
	return k->tmpls[k->n_tmpls++] = t;
}

/* Compiles a match of n strings for k->cfg; fake_fini frees it. */
static struct match *fake_match(struct fake *k, const char *const *srcs, size_t n)
{
	char err[256];
	struct match *m;

	if (match_compile(srcs, n, TMPL_SEQ | TMPL_SECRET, NULL, &m, err, sizeof(err)) < 0)
		fail_msg("match \"%s\": %s", srcs[0], err);
	assert_true(k->n_matches < sizeof(k->matches) / sizeof(k->matches[0]));
	return k->matches[k->n_matches++] = m;
}

static void fake_fini(struct fake *k)
{
	log_set_sink(NULL, NULL);
	if (k->f.env) {
		k->f.conn = NULL;
		feed_fini(&k->f);
		for (size_t i = 0; i < k->n_shadows; i++) {
			k->shadows[i].conn = NULL;
			feed_fini(&k->shadows[i]);
		}
		/* A finished feed is counted in no state. */
		for (int i = 0; i < FEED_NSTATES; i++)
			assert_int_equal(k->env.n_in_state[i], 0);
	}
	feed_env_fini(&k->env);
	for (size_t i = 0; i < k->n_tmpls; i++)
		tmpl_free(k->tmpls[i]);
	for (size_t i = 0; i < k->n_matches; i++)
		match_free(k->matches[i]);
	k->n_tmpls = k->n_matches = 0;
	connq_fini(&k->cq);
	tq_fini(&k->tq);
}

/* Writes what feed f has to send, as the writeable callback would. */
static void fake_pump_feed(struct fake *k, struct feed *f)
{
	struct feed_frame fr;

	for (;;) {
		struct fake_frame *w = &k->frames[k->n_frames % FAKE_MAX_FRAMES];
		bool more;

		feed_next_frame(f, k->now, &fr);
		if (fr.kind == FRAME_NONE)
			break;
		*w = (struct fake_frame){fr.kind, fr.src, "", fr.len, fr.close_code, k->now};
		assert_true(fr.len <= sizeof(w->data));
		if (fr.len)
			memcpy(w->data, fr.data, fr.len);
		k->n_frames++;
		more = feed_frame_sent(f, &fr, k->now);
		if (k->auto_answer && fr.src == SRC_BEAT) {
			int64_t t = k->now + k->answer_delay_us;
			const struct cfg_heartbeat *hb = &k->cfg.heartbeat;
			if (fr.kind == FRAME_PING)
				feed_on_pong(f, w->data, w->len, t);
			else
				feed_on_rx(f, k->answer ? k->answer : "x",
				           k->answer ? k->answer_len : 1, true, true,
				           hb->type == HB_BINARY, t);
		}
		if (!more)
			break;
	}
}

/* Writes what every feed has to send (the feed, then the replacements). */
static void fake_pump(struct fake *k)
{
	if (!k->write_wanted)
		return;
	k->write_wanted = false;
	fake_pump_feed(k, &k->f);
	for (size_t i = 0; i < k->n_shadows; i++)
		fake_pump_feed(k, &k->shadows[i]);
}

/* Plays the loop up to t: fires every timer at its exact deadline, writing when asked. */
static void fake_advance(struct fake *k, int64_t t)
{
	int64_t w;

	while ((w = tq_next_wake(&k->tq)) <= t) {
		k->now = w;
		tq_driver_fired(&k->tq, w);
		fake_pump(k);
	}
	k->now = t;
}

/* The timers armed, as a set: S(tate) B(eat) A(nswer) I(dle). */
__attribute__((unused)) static void fake_assert_timers(const struct fake *k, bool s, bool b, bool a,
                                                       bool i)
{
	/* The per-state census counts this one feed, in its current state. */
	for (int st = 0; st < FEED_NSTATES; st++)
		assert_int_equal(k->env.n_in_state[st], st == (int)k->f.state);
	assert_int_equal(tq_armed(&k->f.t_state), s);
	assert_int_equal(tq_armed(&k->f.t_beat), b);
	assert_int_equal(tq_armed(&k->f.t_answer), a);
	assert_int_equal(tq_armed(&k->f.t_idle), i);
}

/* Starts the feed and lets the connect queue grant it: CONNECTING at k->now. */
static void fake_to_connecting(struct fake *k)
{
	int before = k->n_connect;

	feed_start(&k->f, k->now);
	fake_advance(k, k->now);
	assert_int_equal(k->f.state, FEED_CONNECTING);
	assert_int_equal(k->n_connect, before + 1);
}

/* CONNECTING, then open at k->now. */
static void fake_to_open(struct fake *k)
{
	if (k->f.state != FEED_CONNECTING)
		fake_to_connecting(k);
	feed_on_open(&k->f, k->now);
	assert_int_equal(k->f.state, FEED_OPEN);
}

#endif
