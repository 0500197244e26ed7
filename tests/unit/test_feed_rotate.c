/*
 * Unit tests for rotation (feed_rotate.c) through the recording fake shell, which makes the
 * replacements (k.shadows): the timer armed at open (max_lifetime, a connect_command's
 * expires_in), make-before-break (the old connection closes with 1000 "rotated" only once the
 * replacement is open, and delivers until then), at most one replacement in flight, a
 * replacement that fails retries with backoff while the old connection stays, one given up
 * when the old connection dies or the feed stops, counters carried over, and the connect
 * queue's limits applying to replacements.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include <cmocka.h>

#include "fake_shell.h"
#include "wsbeat/helper.h"

#define SEC 1000000LL
#define MS  1000LL

static struct fake k;
static const char notice[] = "{\"event\":\"reconnect\"}";

static int setup(void **state)
{
	(void)state;
	fake_init(&k);
	k.cfg.heartbeat.type = HB_NONE; /* no beats to write: only what rotation does */
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	fake_fini(&k);
	return 0;
}

static struct feed *sh(size_t i)
{
	assert_true(i < k.n_shadows);
	return &k.shadows[i];
}

static void rx(struct feed *f, const char *text)
{
	assert_int_equal(feed_on_rx(f, text, strlen(text), true, true, false, k.now), 0);
}

/* How many feeds the census counts in state s (replacements not yet open are not counted). */
static size_t in_state(enum feed_state s)
{
	return k.env.n_in_state[s];
}

static void use_rotate_on(void)
{
	static const char *const m[] = {"json:event=reconnect"};

	k.cfg.rotate_on = fake_match(&k, m, 1);
}

static void test_lifetime_make_before_break(void **state)
{
	struct feed *n;
	int64_t t0, t_open;
	(void)state;

	k.cfg.max_lifetime_ms = 60000;
	fake_feed_init(&k);
	fake_to_open(&k);
	t0 = k.now;
	assert_true(tq_armed(&k.f.t_rotate));
	assert_int_equal(k.f.t_rotate.deadline_us, t0 + 60 * SEC);
	fake_advance(&k, t0 + 60 * SEC - 1);
	assert_int_equal(k.n_shadows, 0);

	/* At max_lifetime a replacement goes through the queue and connects; the old one stays. */
	fake_advance(&k, t0 + 60 * SEC);
	n = sh(0);
	assert_true(n->shadow);
	assert_ptr_equal(k.f.rot_next, n);
	assert_ptr_equal(n->rot_prev, &k.f);
	assert_int_equal(n->state, FEED_CONNECTING);
	assert_int_equal(k.n_connect, 2);
	assert_int_equal(k.f.state, FEED_OPEN);
	/* Listed nowhere: the census still sees one feed, open. */
	assert_int_equal(in_state(FEED_OPEN), 1);
	assert_int_equal(in_state(FEED_CONNECTING), 0);
	assert_int_equal(fake_log_count(&k, "event=rotating", "reason=max_lifetime old_conn=1"), 1);
	assert_int_equal(fake_log_count(&k, "event=connecting", "replacement=true"), 1);

	/* Meanwhile the old connection delivers. */
	rx(&k.f, "a");
	k.now += 5 * MS;
	t_open = k.now;
	feed_on_open(n, k.now);
	assert_int_equal(n->state, FEED_OPEN);
	assert_false(n->shadow);
	assert_int_equal(n->conn_no, 2);
	assert_int_equal(k.n_promoted, 1);
	assert_ptr_equal(k.promoted_old, &k.f);
	assert_ptr_equal(k.promoted_new, n);
	assert_int_equal(fake_log_count(&k, "event=open", "replacement=true"), 1);
	/* The old one closes with 1000 "rotated", reading on until the peer's close. */
	assert_int_equal(k.f.state, FEED_CLOSING);
	assert_true(k.f.rotated_out);
	assert_true(k.f.close_wait);
	fake_pump(&k);
	assert_int_equal(k.frames[k.n_frames - 1].kind, FRAME_CLOSE);
	assert_int_equal(k.frames[k.n_frames - 1].close_code, WS_CLOSE_NORMAL);
	assert_memory_equal(k.frames[k.n_frames - 1].data, "rotated", 7);
	/* The new one carries the counters on and has its own lifetime. */
	assert_int_equal(n->stats.connects, 2);
	assert_int_equal(n->stats.messages, 1);
	assert_int_equal(n->stats.rotations, 1);
	assert_int_equal(k.f.stats.messages, 0);
	assert_int_equal(n->t_rotate.deadline_us, t_open + 60 * SEC);
	assert_int_equal(in_state(FEED_OPEN), 1);
	assert_int_equal(in_state(FEED_CLOSING), 1);

	/* What the old one still receives before the peer's close is kept and counted. */
	rx(&k.f, "bb");
	assert_int_equal(k.f.stats.messages, 1);
	k.now += 3 * MS;
	feed_on_peer_close(&k.f, WS_CLOSE_NORMAL, "rotated", 7);
	feed_on_gone(&k.f, k.now, NULL);
	assert_int_equal(k.f.state, FEED_STOPPED);
	assert_int_equal(k.n_stopped, 1);
	assert_int_equal(n->stats.messages, 2);
	assert_int_equal(n->stats.bytes, 3);
	assert_int_equal(n->stats.disconnects, 1);
	assert_null(n->rot_prev);
	assert_null(k.f.rot_next);
	assert_int_equal(fake_log_count(&k, "event=closed", "level=info"), 1);
	assert_int_equal(fake_log_count(&k, "event=closed", "close_code=1000 reason=rotated"), 1);
	assert_int_equal(fake_log_count(&k, "level=notice feed=t1 event=rotated state=open",
	                                "old_conn=1 new_conn=2 overlap_ms=3.000"),
	                 1);
	assert_int_equal(fake_log_count(&k, "event=backoff", NULL), 0);
}

static void test_one_replacement_in_flight(void **state)
{
	(void)state;

	use_rotate_on();
	fake_feed_init(&k);
	fake_to_open(&k);
	rx(&k.f, notice);
	assert_int_equal(k.n_shadows, 1);
	assert_int_equal(fake_log_count(&k, "event=rotating", "reason=rotate_on"), 1);
	/* The notice is data (keepalive could say otherwise). */
	assert_int_equal(k.f.stats.messages, 1);

	/* More notices, or a lifetime, while one is on its way: nothing more. */
	log_set_level(LOG_LVL_DEBUG);
	rx(&k.f, notice);
	rx(&k.f, notice);
	assert_int_equal(feed_rotate(&k.f, k.now, "max_lifetime"), 0);
	assert_int_equal(k.n_shadows, 1);
	assert_int_equal(fake_log_count(&k, "event=rotation_ignored", "already on its way"), 3);
	fake_advance(&k, k.now);
	assert_int_equal(sh(0)->state, FEED_CONNECTING);
	/* ... nor while it waits for its backoff. */
	feed_on_gone(sh(0), k.now, "refused");
	assert_int_equal(sh(0)->state, FEED_BACKOFF);
	rx(&k.f, notice);
	assert_int_equal(k.n_shadows, 1);
	log_set_level(LOG_LVL_INFO);

	fake_advance(&k, sh(0)->t_state.deadline_us);
	feed_on_open(sh(0), k.now);
	assert_int_equal(k.n_promoted, 1);
	/* The closing one no longer rotates; the new one does. */
	rx(&k.f, notice);
	assert_int_equal(k.n_shadows, 1);
	rx(sh(0), notice);
	assert_int_equal(k.n_shadows, 2);
	assert_ptr_equal(sh(0)->rot_next, sh(1));
	assert_ptr_equal(sh(0)->rot_prev, &k.f); /* the first one is still closing */
	assert_int_equal(sh(1)->conn_no, 2);     /* its connection will be 3 */
}

static void test_replacement_fails_and_retries(void **state)
{
	struct feed *n;
	(void)state;

	fake_feed_init(&k);
	fake_to_open(&k);
	assert_false(tq_armed(&k.f.t_rotate)); /* no max_lifetime, no helper */
	assert_int_equal(feed_rotate(&k.f, k.now, "test"), 0);
	fake_advance(&k, k.now);
	n = sh(0);
	/* Refused: it backs off like any attempt, and the old connection stays. */
	for (int i = 0; i < 3; i++) {
		assert_int_equal(n->state, FEED_CONNECTING);
		feed_on_http_status(n, 503, -1);
		feed_on_gone(n, k.now, NULL);
		assert_int_equal(n->state, FEED_BACKOFF);
		assert_int_equal(n->t_state.deadline_us - k.now, (1000LL << i) * MS);
		assert_int_equal(k.f.state, FEED_OPEN);
		assert_ptr_equal(k.f.rot_next, n);
		fake_advance(&k, n->t_state.deadline_us);
	}
	assert_int_equal(fake_log_count(&k, "event=connect_error", "replacement=true"), 3);
	assert_int_equal(fake_log_count(&k, "event=backoff", "replacement=true"), 3);
	assert_int_equal(in_state(FEED_OPEN), 1);
	assert_int_equal(in_state(FEED_BACKOFF) + in_state(FEED_CONNECTING), 0);
	/* The fourth try opens: the failures come along with the counters. */
	feed_on_open(n, k.now);
	assert_int_equal(k.n_promoted, 1);
	assert_int_equal(n->stats.connect_errors, 3);
	assert_int_equal(n->stats.connects, 2);
}

/* The replacement is upgraded and waits in its open sequence when the old connection dies: it
 * is given up (from a timer), the feed reconnects the usual way, and the connection number its
 * upgrade took is not used again. */
static void test_old_dies_first(void **state)
{
	static const char *const ready[] = {"ready"};
	struct cfg_step step = {.wait = fake_match(&k, ready, 1)};
	struct feed *n;
	(void)state;

	k.cfg.on_open = &step;
	k.cfg.n_on_open = 1;
	k.cfg.open_after = 1;
	fake_feed_init(&k);
	fake_to_connecting(&k);
	feed_on_open(&k.f, k.now);
	rx(&k.f, "ready");
	assert_int_equal(k.f.state, FEED_OPEN);
	feed_rotate(&k.f, k.now, "test");
	fake_advance(&k, k.now);
	n = sh(0);
	feed_on_open(n, k.now);
	assert_int_equal(n->conn_no, 2);
	assert_int_equal(n->state, FEED_CONNECTING);

	feed_on_gone(&k.f, k.now, "connection lost");
	assert_int_equal(k.f.state, FEED_BACKOFF);
	assert_null(k.f.rot_next);
	assert_null(n->rot_prev);
	assert_int_equal(k.n_dropped, 1);
	assert_ptr_equal(k.dropped, n);
	assert_int_equal(k.f.conn_no, 2);
	assert_int_equal(fake_log_count(&k, "event=rotation_cancelled",
	                                "the connection it was to replace has ended"),
	                 1);
	/* Its wait matching now opens nothing: it is dropped from its timer. */
	assert_true(n->stop_requested);
	assert_int_equal(n->t_state.deadline_us, k.now);
	rx(n, "ready");
	assert_int_equal(n->state, FEED_CONNECTING);
	assert_int_equal(k.n_promoted, 0);
	fake_advance(&k, k.now);
	assert_int_equal(k.n_abort, 1);
	feed_on_gone(n, k.now, NULL);
	assert_int_equal(n->state, FEED_STOPPED);
	assert_int_equal(k.n_stopped, 1);
	/* A stop is no failure: said at info. */
	assert_int_equal(fake_log_count(&k, "event=connect_error", "level=warning"), 0);
	assert_int_equal(in_state(FEED_BACKOFF), 1);
	assert_int_equal(in_state(FEED_STOPPED), 0);

	/* The feed's next connection is number 3. */
	fake_advance(&k, k.f.t_state.deadline_us);
	feed_on_open(&k.f, k.now);
	assert_int_equal(k.f.conn_no, 3);
	assert_int_equal(k.n_shadows, 1);
}

/* A replacement that has not opened when the feed stops (reload, shutdown) stops with it. */
static void test_stop_stops_the_replacement(void **state)
{
	struct feed *n;
	int connects;
	(void)state;

	connq_set_rate(&k.cq, 1);
	fake_feed_init(&k);
	fake_to_open(&k);
	k.now += 500 * MS;
	feed_rotate(&k.f, k.now, "test");
	fake_advance(&k, k.now + 100 * MS);
	n = sh(0);
	assert_int_equal(n->state, FEED_IDLE); /* waiting for the queue's second */
	connects = k.n_connect;
	feed_stop_why(&k.f, k.now, "configuration changed");
	assert_int_equal(k.n_dropped, 1);
	assert_int_equal(n->state, FEED_STOPPED);
	assert_false(connq_queued(&n->qnode));
	assert_int_equal(k.f.state, FEED_CLOSING);
	fake_advance(&k, k.now + 2 * SEC);
	assert_int_equal(k.n_connect, connects);
	assert_int_equal(fake_log_count(&k, "event=rotation_cancelled", "configuration changed"),
	                 1);
}

/* A replacement waits for the connect queue like any attempt: rotations count against the
 * limits. */
static void test_replacement_waits_for_the_queue(void **state)
{
	int64_t t0;
	(void)state;

	connq_set_rate(&k.cq, 1);
	k.cfg.max_lifetime_ms = 1000;
	fake_feed_init(&k);
	t0 = k.now;
	fake_to_open(&k); /* granted at t0 */
	k.now += 300 * MS;
	feed_rotate(&k.f, k.now, "test"); /* ahead of the lifetime */
	fake_advance(&k, t0 + SEC - 1);
	assert_int_equal(sh(0)->state, FEED_IDLE);
	assert_int_equal(k.n_connect, 1);
	fake_advance(&k, t0 + SEC);
	assert_int_equal(sh(0)->state, FEED_CONNECTING);
	assert_int_equal(k.n_connect, 2);
	/* The lifetime came due meanwhile: one replacement all the same. */
	fake_advance(&k, t0 + 1300 * MS);
	assert_int_equal(k.n_shadows, 1);
}

/* Out of memory for a replacement: said, and the timer tries again a second later. */
static void test_no_memory_for_a_replacement(void **state)
{
	int64_t t0;
	(void)state;

	k.cfg.max_lifetime_ms = 10000;
	fake_feed_init(&k);
	fake_to_open(&k);
	t0 = k.now;
	k.rotate_fail = true;
	fake_advance(&k, t0 + 10 * SEC);
	assert_int_equal(k.n_shadows, 0);
	assert_int_equal(fake_log_count(&k, "event=rotating", "level=warning"), 1);
	assert_int_equal(k.f.t_rotate.deadline_us, t0 + 11 * SEC);
	k.rotate_fail = false;
	fake_advance(&k, t0 + 11 * SEC);
	assert_int_equal(k.n_shadows, 1);
}

/* The old connection is already closing (a heartbeat timeout) when the replacement opens: it
 * takes over all the same, and the old one ends without a reconnect. */
static void test_replacement_opens_while_old_closes(void **state)
{
	int64_t due;
	(void)state;

	k.cfg.heartbeat =
	    (struct cfg_heartbeat){.type = HB_PING, .interval_ms = 5000, .timeout_ms = 2000};
	fake_feed_init(&k);
	fake_to_open(&k);
	feed_rotate(&k.f, k.now, "test");
	due = k.f.t_beat.deadline_us;
	fake_advance(&k, due + 2 * SEC); /* the beat goes unanswered */
	assert_int_equal(k.f.state, FEED_CLOSING);
	assert_int_equal(sh(0)->state, FEED_CONNECTING);
	feed_on_open(sh(0), k.now);
	assert_int_equal(k.n_promoted, 1);
	assert_true(k.f.stop_requested);
	feed_on_gone(&k.f, k.now + MS, NULL);
	assert_int_equal(k.f.state, FEED_STOPPED);
	assert_int_equal(sh(0)->stats.beat_timeouts, 1);
	assert_int_equal(fake_log_count(&k, "event=rotated", "old_conn=1 new_conn=2"), 1);
}

/* With a connect_command that gives expires_in, the connection is rotated a tenth of that
 * before it (at most a minute before), or at max_lifetime when that comes first; never within
 * a second of the open. */
static void test_rotate_before_credentials_expire(void **state)
{
	static char prog[] = "/usr/lib/wsbeat/helpers/login";
	static char *argv[] = {prog, NULL};
	static const struct {
		const char *out;
		int64_t lifetime_ms, want_us;
		const char *why;
	} cases[] = {
	    {"{\"expires_in\":30}", 0, 27 * SEC, "credentials expire"},
	    {"{\"expires_in\":3600}", 0, 3540 * SEC, "credentials expire"},
	    {"{\"expires_in\":3600}", 600000, 600 * SEC, "max_lifetime"},
	    {"{\"expires_in\":0}", 0, 1 * SEC, "credentials expire"},
	    {"{}", 0, 0, NULL},
	};
	(void)state;

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct helper_result r = {.out = cases[i].out, .out_len = strlen(cases[i].out)};
		fake_fini(&k);
		fake_init(&k);
		k.cfg.heartbeat.type = HB_NONE;
		k.cfg.connect_command = argv;
		k.cfg.max_lifetime_ms = cases[i].lifetime_ms;
		fake_feed_init(&k);
		feed_start(&k.f, k.now);
		fake_advance(&k, k.now);
		assert_int_equal(k.f.state, FEED_RESOLVING);
		feed_on_helper_done(&k.f, &r, k.now);
		feed_on_open(&k.f, k.now);
		assert_int_equal(k.f.state, FEED_OPEN);
		if (!cases[i].why) {
			assert_false(tq_armed(&k.f.t_rotate));
			continue;
		}
		assert_int_equal(k.f.t_rotate.deadline_us, k.now + cases[i].want_us);
		fake_advance(&k, k.f.t_rotate.deadline_us);
		assert_int_equal(k.n_shadows, 1);
		assert_int_equal(fake_log_count(&k, "event=rotating", cases[i].why), 1);
		/* The replacement runs the helper for credentials of its own. */
		assert_int_equal(sh(0)->state, FEED_RESOLVING);
		assert_int_equal(k.n_run_helper, 2);
	}
}

#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)

int main(void)
{
	const struct CMUnitTest tests[] = {
	    T(test_lifetime_make_before_break),       T(test_one_replacement_in_flight),
	    T(test_replacement_fails_and_retries),    T(test_old_dies_first),
	    T(test_stop_stops_the_replacement),       T(test_replacement_waits_for_the_queue),
	    T(test_no_memory_for_a_replacement),      T(test_replacement_opens_while_old_closes),
	    T(test_rotate_before_credentials_expire),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
