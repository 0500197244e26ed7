/*
 * Unit tests for the feed state machine, driven through a recording fake shell and explicit
 * times: transitions, the timers each state owns, heartbeats, timeouts, backoff and stop.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include <cmocka.h>

#include "fake_shell.h"

/*
 * This program is linked with -Wl,--wrap=calloc (tests/CMakeLists.txt): every calloc of the
 * test and of the core library comes here, and fail_calloc makes the next one fail, so the
 * feed's out-of-memory path can be driven without a mocking framework.
 */
void *__real_calloc(size_t n, size_t size);
void *__wrap_calloc(size_t n, size_t size);
static bool fail_calloc;

void *__wrap_calloc(size_t n, size_t size)
{
	if (fail_calloc) {
		fail_calloc = false;
		return NULL;
	}
	return __real_calloc(n, size);
}

#define SEC 1000000LL
#define MS  1000LL

static struct fake k;

static int setup(void **state)
{
	(void)state;
	fake_init(&k);
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	fake_fini(&k);
	return 0;
}

static const struct fake_frame *last_frame(void)
{
	assert_true(k.n_frames > 0);
	return &k.frames[(k.n_frames - 1) % FAKE_MAX_FRAMES];
}

/* The retry delay the feed armed, in ms from now. */
static int64_t backoff_ms(void)
{
	assert_int_equal(k.f.state, FEED_BACKOFF);
	fake_assert_timers(&k, true, false, false, false);
	return (k.f.t_state.deadline_us - k.now) / MS;
}

/* Open, one ping written at its due time and never answered: CLOSING at due + timeout. */
static int64_t to_closing_by_timeout(void)
{
	int64_t due;

	fake_to_open(&k);
	due = k.f.t_beat.deadline_us;
	fake_advance(&k, due + k.cfg.heartbeat.timeout_ms * MS);
	assert_int_equal(k.f.state, FEED_CLOSING);
	return due;
}

static void test_start_queue_connect(void **state)
{
	(void)state;
	fake_feed_init(&k);
	assert_int_equal(k.f.state, FEED_IDLE);
	fake_assert_timers(&k, false, false, false, false);

	feed_start(&k.f, k.now);
	assert_int_equal(k.f.state, FEED_IDLE);
	assert_true(connq_queued(&k.f.qnode));
	assert_int_equal(k.n_connect, 0); /* the queue grants from its timer only */
	fake_assert_timers(&k, false, false, false, false);

	tq_driver_fired(&k.tq, k.now);
	assert_int_equal(k.n_grants, 1);
	assert_int_equal(k.state_at_grant, FEED_IDLE);
	assert_false(connq_queued(&k.f.qnode));
	assert_int_equal(k.f.state, FEED_CONNECTING);
	assert_int_equal(k.n_connect, 1);
	fake_assert_timers(&k, true, false, false, false);
	assert_int_equal(k.f.t_state.deadline_us, k.now + 10 * SEC);
	assert_int_equal(k.f.state_since_us, k.now);
	assert_int_equal(fake_log_count(&k, "event=connecting", "attempt=1"), 1);
	assert_int_equal(fake_log_count(&k, "event=connecting", "state=connecting"), 1);
	/* A second grant (start again while connecting) does nothing. */
	feed_on_slot(&k.f, k.now);
	assert_int_equal(k.n_connect, 1);
	fake_advance(&k, k.now + 10 * SEC - 1);
	assert_int_equal(k.f.state, FEED_CONNECTING);
	assert_int_equal(k.n_abort, 0);
}

/* The connection counts against its host from the grant until it is gone, whatever the
 * outcome; the attempt in flight only until it opens or fails. */
static void test_host_connection_held(void **state)
{
	const struct connq_host *h0;
	(void)state;

	fake_feed_init(&k);
	h0 = connq_host_of(&k.cq, &k.f.qnode);
	fake_to_connecting(&k);
	assert_true(k.f.qnode.holds_conn);
	assert_int_equal(h0->conns, 1);
	assert_int_equal(k.cq.inflight, 1);
	fake_to_open(&k);
	assert_int_equal(k.cq.inflight, 0);
	assert_int_equal(h0->conns, 1);
	feed_on_peer_close(&k.f, WS_CLOSE_NORMAL, "bye", 3);
	feed_on_gone(&k.f, k.now, NULL);
	assert_int_equal(k.f.state, FEED_BACKOFF);
	assert_false(k.f.qnode.holds_conn);
	assert_int_equal(h0->conns, 0);
	/* A failed attempt gives both back. */
	fake_advance(&k, k.f.t_state.deadline_us);
	assert_int_equal(k.f.state, FEED_CONNECTING);
	assert_int_equal(h0->conns, 1);
	feed_on_gone(&k.f, k.now, "refused");
	assert_int_equal(h0->conns, 0);
	assert_int_equal(k.cq.inflight, 0);
	/* So does a stop while connecting. */
	fake_advance(&k, k.f.t_state.deadline_us);
	assert_int_equal(h0->conns, 1);
	feed_stop(&k.f, k.now);
	feed_on_gone(&k.f, k.now, NULL);
	assert_int_equal(k.f.state, FEED_STOPPED);
	assert_int_equal(h0->conns, 0);
	assert_int_equal(k.cq.inflight, 0);
}

static void test_open_timers(void **state)
{
	int64_t t;
	(void)state;

	fake_feed_init(&k);
	fake_to_connecting(&k);
	t = k.now += 300 * MS;
	feed_on_open(&k.f, t);
	assert_int_equal(k.f.state, FEED_OPEN);
	fake_assert_timers(&k, false, true, false, false); /* no idle_timeout: no t_idle */
	assert_in_range(k.f.t_beat.deadline_us, t, t + 5 * SEC - 1);
	assert_int_equal(k.f.stats.connects, 1);
	assert_int_equal(k.f.conn_no, 1);
	assert_int_equal(k.n_want_write, 0); /* nothing on_open to send */
	assert_int_equal(fake_log_count(&k, "event=open", "state=open"), 1);
}

static void test_open_idle_timer(void **state)
{
	(void)state;

	k.cfg.idle_timeout_ms = 60000;
	fake_feed_init(&k);
	fake_to_open(&k);
	fake_assert_timers(&k, false, true, false, true);
	assert_int_equal(k.f.t_idle.deadline_us, k.now + 60 * SEC);
}

static void test_no_heartbeat(void **state)
{
	(void)state;

	k.cfg.heartbeat.type = HB_NONE;
	fake_feed_init(&k);
	fake_to_open(&k);
	fake_assert_timers(&k, false, false, false, false);
	fake_advance(&k, k.now + 3600 * SEC);
	assert_int_equal(k.f.state, FEED_OPEN);
	assert_int_equal(k.n_want_write, 0);
}

static void test_ping_cycle(void **state)
{
	struct feed_frame fr;
	unsigned char payload[8];
	int64_t due, sent;
	(void)state;

	fake_feed_init(&k);
	fake_to_open(&k);
	due = k.f.t_beat.deadline_us;
	fake_advance(&k, due - 1);
	assert_int_equal(k.n_want_write, 0);

	/* The loop wakes 3 ms late. */
	k.now = due + 3 * MS;
	tq_driver_fired(&k.tq, k.now);
	assert_int_equal(k.n_want_write, 1);
	fake_assert_timers(&k, false, true, true, false);
	/* The answer gets the full timeout from when the late loop could ask. */
	assert_int_equal(k.f.t_answer.deadline_us, k.now + 2 * SEC);
	assert_int_equal(k.f.t_beat.deadline_us, due + 5 * SEC); /* on the grid, no drift */

	sent = due + 4 * MS;
	feed_next_frame(&k.f, sent, &fr);
	assert_int_equal(fr.kind, FRAME_PING);
	assert_int_equal(fr.src, SRC_BEAT);
	assert_int_equal(fr.len, 8);
	memcpy(payload, fr.data, 8);
	assert_false(feed_frame_sent(&k.f, &fr, sent));
	assert_int_equal(k.f.stats.beats_sent, 1);
	feed_next_frame(&k.f, sent, &fr);
	assert_int_equal(fr.kind, FRAME_NONE);

	assert_true(k.f.stats.last_rtt_ms < 0);
	feed_on_pong(&k.f, payload, 8, sent + 25 * MS);
	/* Answered: nothing awaited, but t_answer stays armed (lazy) until it fires. */
	fake_assert_timers(&k, false, true, true, false);
	assert_int_equal(k.f.hb_waiting_since_us, 0);
	assert_true(k.f.stats.last_rtt_ms == 25.0);
	assert_int_equal(k.f.stats.beats_answered, 1);
	assert_int_equal(k.f.state, FEED_OPEN);

	/* The next beat, exactly one interval after the first was due. */
	k.now = sent + 25 * MS;
	fake_advance(&k, due + 5 * SEC - 1);
	assert_int_equal(k.n_want_write, 1);
	fake_advance(&k, due + 5 * SEC);
	assert_int_equal(k.n_want_write, 2);
	assert_int_equal(k.f.t_answer.deadline_us, due + 7 * SEC);
	assert_int_equal(k.f.t_beat.deadline_us, due + 10 * SEC);
	assert_int_equal(last_frame()->kind, FRAME_PING);
	assert_int_equal(k.f.stats.beats_sent, 2);
}

static void test_pong_filtering(void **state)
{
	struct feed_frame fr;
	unsigned char good[8], zero[8] = {0}, future[8];
	int64_t due;
	(void)state;

	fake_feed_init(&k);
	fake_to_open(&k);
	/* Nothing awaited: a PONG proves nothing. */
	feed_on_pong(&k.f, zero, 8, k.now);
	assert_int_equal(k.f.stats.beats_answered, 0);

	due = k.f.t_beat.deadline_us;
	k.now = due;
	tq_driver_fired(&k.tq, due);
	feed_next_frame(&k.f, due, &fr);
	memcpy(good, fr.data, 8);
	feed_frame_sent(&k.f, &fr, due);
	memcpy(future, good, 8);
	future[0] ^= 0x40; /* a send time far in the future */

	feed_on_pong(&k.f, good, 7, due + MS);
	feed_on_pong(&k.f, zero, 8, due + MS);
	feed_on_pong(&k.f, future, 8, due + MS);
	assert_true(tq_armed(&k.f.t_answer));
	assert_int_equal(k.f.stats.beats_answered, 0);
	feed_on_pong(&k.f, good, 8, due + MS);
	assert_int_equal(k.f.hb_waiting_since_us, 0);
	assert_int_equal(k.f.stats.beats_answered, 1);
	/* The same PONG again is not a second answer. */
	feed_on_pong(&k.f, good, 8, due + 2 * MS);
	assert_int_equal(k.f.stats.beats_answered, 1);
}

/* lws 4.1 with permessage-deflate can deliver one PONG forever: the feed says to drop it. */
static void test_pong_delivered_forever(void **state)
{
	unsigned char zero[8] = {0};
	int i;
	(void)state;

	fake_feed_init(&k);
	fake_to_open(&k);
	/* PONGs a few ms apart, however many, are fine. */
	for (i = 0; i < 200; i++)
		assert_int_equal(feed_on_pong(&k.f, zero, 8, k.now + i * 2 * MS), 0);
	k.now += 1 * SEC;
	for (i = 0; i < 64; i++) /* the first of these is 1 s after the last: no repeat yet */
		assert_int_equal(feed_on_pong(&k.f, zero, 8, k.now + i), 0);
	assert_int_equal(feed_on_pong(&k.f, zero, 8, k.now + i), -1);
	assert_non_null(strstr(feed_err(&k.f), "over and over"));
}

/* 1012/1013 from the server are planned closes: no failure is counted, the delay stays the
 * first one; any other code from the server counts. */
static void test_planned_close_is_not_a_failure(void **state)
{
	static const int codes[] = {1012, 1013, 1011};
	(void)state;

	for (size_t i = 0; i < 3; i++) {
		char code[32];

		fake_fini(&k);
		fake_init(&k);
		fake_feed_init(&k);
		for (int round = 0; round < 3; round++) {
			fake_to_open(&k);
			k.now += 1 * SEC;
			feed_on_peer_close(&k.f, codes[i], "", 0);
			feed_on_gone(&k.f, k.now, NULL);
			assert_int_equal(k.f.state, FEED_BACKOFF);
			assert_int_equal(k.f.failures, codes[i] == 1011 ? round + 1 : 0);
			fake_advance(&k, k.f.t_state.deadline_us);
		}
		snprintf(code, sizeof(code), "close_code=%d", codes[i]);
		assert_int_equal(
		    fake_log_count(&k, code, codes[i] == 1011 ? "level=warning" : "level=notice"),
		    3);
	}
}

static void test_late_beats_stay_on_grid(void **state)
{
	int64_t due;
	(void)state;

	k.cfg.heartbeat.timeout_ms = 30000;
	fake_feed_init(&k);
	fake_to_open(&k);
	due = k.f.t_beat.deadline_us;
	/* 1.5 intervals late: the missed beat is skipped, the grid kept. */
	k.now = due + 7500 * MS;
	tq_driver_fired(&k.tq, k.now);
	assert_int_equal(k.n_want_write, 1);
	assert_int_equal(k.f.t_beat.deadline_us, due + 10 * SEC);
	assert_int_equal(k.f.t_answer.deadline_us, due + 7500 * MS + 30 * SEC);
	/* The next beat comes due before the socket was writeable: still one beat to send. */
	k.now = due + 10 * SEC;
	tq_driver_fired(&k.tq, k.now);
	assert_int_equal(k.n_want_write, 1);
	fake_pump(&k);
	assert_int_equal(k.n_frames, 1);
	assert_int_equal(k.f.stats.beats_sent, 1);
	/* The next beat, still unanswered: sent, the answer deadline stays the oldest's. */
	fake_advance(&k, due + 15 * SEC);
	assert_int_equal(k.n_want_write, 2);
	assert_int_equal(k.f.stats.beats_sent, 2);
	assert_int_equal(k.f.t_answer.deadline_us, due + 7500 * MS + 30 * SEC);
	assert_int_equal(k.f.t_beat.deadline_us, due + 20 * SEC);
}

/*
 * Open with this answer timeout, the first beat sent when due and answered 1 ms later; the
 * answer leaves t_answer armed at that beat's deadline (lazy). Returns when the beat was due.
 */
static int64_t first_beat_answered(int64_t timeout_ms)
{
	int64_t due;

	k.cfg.heartbeat.timeout_ms = timeout_ms;
	fake_feed_init(&k);
	fake_to_open(&k);
	due = k.f.t_beat.deadline_us;
	fake_advance(&k, due);
	assert_int_equal(k.f.t_answer.deadline_us, due + timeout_ms * MS);
	feed_on_pong(&k.f, last_frame()->data, 8, due + MS);
	assert_int_equal(k.f.stats.beats_answered, 1);
	assert_int_equal(k.f.hb_waiting_since_us, 0);
	assert_true(tq_armed(&k.f.t_answer));
	assert_int_equal(k.f.t_answer.deadline_us, due + timeout_ms * MS);
	return due;
}

/*
 * The answer deadline is lazy: an answer leaves t_answer armed at the old deadline, which then
 * finds the next beat awaited and moves to that beat's deadline; the timeout still comes exactly
 * `timeout` after the unanswered beat was due, never earlier or later.
 */
static void test_lazy_answer_deadline(void **state)
{
	int64_t due;
	(void)state;

	due = first_beat_answered(12000); /* 2.4 intervals */
	/* Beat 2 goes unanswered: the armed deadline (beat 1's) is earlier, so it stays. */
	fake_advance(&k, due + 5 * SEC);
	assert_int_equal(k.f.stats.beats_sent, 2);
	assert_int_equal(k.f.t_answer.deadline_us, due + 12 * SEC);
	/* It fires there, finds beat 2 awaited and moves to beat 2's deadline. */
	fake_advance(&k, due + 12 * SEC);
	assert_int_equal(k.f.state, FEED_OPEN);
	assert_int_equal(k.f.t_answer.deadline_us, due + 17 * SEC);
	fake_advance(&k, due + 17 * SEC - 1);
	assert_int_equal(k.f.state, FEED_OPEN);
	assert_int_equal(k.f.stats.beat_timeouts, 0);
	fake_advance(&k, due + 17 * SEC);
	assert_int_equal(k.f.state, FEED_CLOSING);
	assert_int_equal(k.f.stats.beat_timeouts, 1);
}

/* An answered beat's deadline that fires with nothing awaited disarms; the next beat re-arms. */
static void test_lazy_answer_disarms_when_idle(void **state)
{
	int64_t due;
	(void)state;

	due = first_beat_answered(3000);
	fake_advance(&k, due + 3 * SEC - 1);
	fake_assert_timers(&k, false, true, true, false);
	fake_advance(&k, due + 3 * SEC);
	fake_assert_timers(&k, false, true, false, false);
	fake_advance(&k, due + 5 * SEC);
	assert_true(tq_armed(&k.f.t_answer));
	assert_int_equal(k.f.t_answer.deadline_us, due + 8 * SEC);
	assert_int_equal(k.f.stats.beat_timeouts, 0);
}

static void test_heartbeat_timeout_to_backoff_to_idle(void **state)
{
	int64_t due, retry;
	(void)state;

	fake_feed_init(&k);
	fake_to_open(&k);
	due = k.f.t_beat.deadline_us;
	fake_advance(&k, due + 2 * SEC - 1);
	assert_int_equal(k.f.state, FEED_OPEN);
	assert_int_equal(last_frame()->kind, FRAME_PING);
	assert_int_equal(fake_log_count(&k, "event=heartbeat_timeout", NULL), 0);

	fake_advance(&k, due + 2 * SEC);
	assert_int_equal(k.f.state, FEED_CLOSING);
	assert_int_equal(k.f.stats.beat_timeouts, 1);
	assert_int_equal(fake_log_count(&k, "event=heartbeat_timeout", "state=open"), 1);
	fake_assert_timers(&k, true, false, false, false);
	assert_int_equal(k.f.t_state.deadline_us, k.now + FEED_CLOSE_TIMEOUT_US);
	assert_int_equal(last_frame()->kind, FRAME_CLOSE);
	assert_int_equal(last_frame()->close_code, WS_CLOSE_GOING_AWAY);
	assert_string_equal(feed_err(&k.f), "heartbeat timeout");

	k.now += 5 * MS;
	feed_on_gone(&k.f, k.now, "closed");
	assert_int_equal(backoff_ms(), 1000);
	assert_int_equal(k.f.failures, 1);
	assert_int_equal(k.f.stats.disconnects, 1);
	assert_int_equal(fake_log_count(&k, "event=closed", "state=backoff"), 1);
	assert_int_equal(fake_log_count(&k, "event=backoff", "delay_ms=1000"), 1);
	assert_int_equal(fake_log_count(&k, "event=backoff", "attempt=2"), 1);
	assert_int_equal(k.n_abort, 0);

	retry = k.f.t_state.deadline_us;
	fake_advance(&k, retry - 1);
	assert_int_equal(k.f.state, FEED_BACKOFF);
	assert_int_equal(k.n_grants, 1);
	fake_advance(&k, retry);
	assert_int_equal(k.n_grants, 2);
	assert_int_equal(k.state_at_grant, FEED_IDLE);
	assert_int_equal(k.f.state, FEED_CONNECTING);
	assert_int_equal(k.n_connect, 2);
	assert_int_equal(fake_log_count(&k, "event=connecting", "attempt=2"), 1);
}

static void test_close_timeout_aborts(void **state)
{
	(void)state;

	fake_feed_init(&k);
	to_closing_by_timeout();
	fake_advance(&k, k.now + FEED_CLOSE_TIMEOUT_US - 1);
	assert_int_equal(k.n_abort, 0);
	fake_advance(&k, k.now + 1);
	assert_int_equal(k.n_abort, 1);
	assert_int_equal(k.f.state, FEED_CLOSING);
	feed_on_gone(&k.f, k.now, NULL);
	assert_int_equal(k.f.state, FEED_BACKOFF);
}

static void set_text_heartbeat(const char *expect)
{
	k.cfg.heartbeat.type = HB_TEXT;
	k.cfg.heartbeat.payload = fake_tmpl(&k, "ping", 4);
	k.cfg.heartbeat.expect = expect ? fake_match(&k, &expect, 1) : NULL;
	k.answer = expect;
	k.answer_len = expect ? strlen(expect) : 0;
}

static void rx(const char *s, bool first, bool final, bool binary)
{
	feed_on_rx(&k.f, s, strlen(s), first, final, binary, k.now);
}

static void test_text_heartbeat_expect(void **state)
{
	int64_t due;
	(void)state;

	set_text_heartbeat("pong");
	fake_feed_init(&k);
	fake_to_open(&k);
	due = k.f.t_beat.deadline_us;
	fake_advance(&k, due);
	assert_int_equal(last_frame()->kind, FRAME_TEXT);
	assert_int_equal(last_frame()->src, SRC_BEAT);
	assert_int_equal(last_frame()->len, 4);
	assert_memory_equal(last_frame()->data, "ping", 4);
	assert_true(tq_armed(&k.f.t_answer));

	k.now += 10 * MS;
	rx("pon", true, true, false);
	rx("pongs", true, true, false);
	rx("xpong", true, true, false);
	rx("po", true, false, false);
	rx("ngx", false, true, false);
	assert_true(tq_armed(&k.f.t_answer));
	assert_int_equal(k.f.stats.beats_answered, 0);
	rx("po", true, false, false);
	rx("ng", false, true, false);
	assert_int_equal(k.f.hb_waiting_since_us, 0);
	assert_int_equal(k.f.stats.beats_answered, 1);
	assert_true(k.f.stats.last_rtt_ms == 10.0);
	/* The answer is keep-alive traffic, counted apart from the four data messages. */
	assert_int_equal(k.f.stats.messages, 4);
	assert_int_equal(k.f.stats.keepalive, 1);

	/* Next beat: answered by a message split into four fragments. */
	fake_advance(&k, due + 5 * SEC);
	assert_true(tq_armed(&k.f.t_answer));
	rx("p", true, false, false);
	rx("o", false, false, false);
	rx("n", false, false, false);
	rx("g", false, true, false);
	assert_int_equal(k.f.hb_waiting_since_us, 0);
	assert_int_equal(k.f.stats.beats_answered, 2);
	/* Unanswered from now on: timeout at due + timeout. */
	fake_advance(&k, due + 10 * SEC + 2 * SEC - 1);
	assert_int_equal(k.f.state, FEED_OPEN);
	fake_advance(&k, due + 12 * SEC);
	assert_int_equal(k.f.state, FEED_CLOSING);
}

/* An empty message is a message, never the answer; an empty last fragment may end one. */
static void check_empty_messages(const void *empty)
{
	set_text_heartbeat("pong");
	fake_feed_init(&k);
	fake_to_open(&k);
	fake_advance(&k, k.f.t_beat.deadline_us);
	k.now += MS;
	feed_on_rx(&k.f, empty, 0, true, true, false, k.now);
	assert_true(tq_armed(&k.f.t_answer));
	assert_int_equal(k.f.stats.messages, 1);
	assert_int_equal(k.f.last_data_us, k.now);
	feed_on_rx(&k.f, "pong", 4, true, false, false, k.now);
	feed_on_rx(&k.f, empty, 0, false, true, false, k.now);
	assert_int_equal(k.f.hb_waiting_since_us, 0);
	assert_int_equal(k.f.stats.messages, 1);
	assert_int_equal(k.f.stats.keepalive, 1);
}

static void test_empty_message(void **state)
{
	(void)state;
	check_empty_messages("");
}

/* The shell may pass no buffer at all for an empty frame (UBSan checks memcmp(p, NULL, 0)). */
static void test_empty_message_null_data(void **state)
{
	(void)state;
	check_empty_messages(NULL);
}

static void test_text_heartbeat_any_message(void **state)
{
	(void)state;

	set_text_heartbeat(NULL);
	fake_feed_init(&k);
	fake_to_open(&k);
	fake_advance(&k, k.f.t_beat.deadline_us);
	assert_true(tq_armed(&k.f.t_answer));
	rx("{\"anything\":1}", true, true, false);
	assert_int_equal(k.f.hb_waiting_since_us, 0);
	assert_int_equal(k.f.stats.beats_answered, 1);
}

static void test_binary_heartbeat(void **state)
{
	static const char *expect = "\x03\x04";
	(void)state;

	k.cfg.heartbeat = (struct cfg_heartbeat){.type = HB_BINARY,
	                                         .interval_ms = 5000,
	                                         .timeout_ms = 2000,
	                                         .payload = fake_tmpl(&k, "\x01\x02", 2),
	                                         .expect = fake_match(&k, &expect, 1)};
	fake_feed_init(&k);
	fake_to_open(&k);
	fake_advance(&k, k.f.t_beat.deadline_us);
	assert_int_equal(last_frame()->kind, FRAME_BINARY);
	assert_memory_equal(last_frame()->data, "\x01\x02", 2);
	rx("\x03\x05", true, true, true);
	assert_true(tq_armed(&k.f.t_answer));
	/* Matching looks at the content: a binary answer, or the same bytes as text. */
	rx("\x03\x04", true, true, true);
	assert_int_equal(k.f.hb_waiting_since_us, 0);
}

static void test_idle_timeout_ignores_answers(void **state)
{
	int64_t t0;
	(void)state;

	set_text_heartbeat("pong");
	k.cfg.heartbeat.interval_ms = 3000;
	k.cfg.idle_timeout_ms = 10000;
	k.auto_answer = true;
	fake_feed_init(&k);
	fake_to_open(&k);
	t0 = k.now;
	fake_advance(&k, t0 + 4 * SEC);
	rx("data", true, true, false);
	fake_advance(&k, t0 + 14 * SEC - 1);
	assert_int_equal(k.f.state, FEED_OPEN);
	assert_true(k.f.stats.beats_answered >= 3);
	assert_int_equal(k.f.t_idle.deadline_us, t0 + 14 * SEC);
	fake_advance(&k, t0 + 14 * SEC);
	assert_int_equal(k.f.state, FEED_CLOSING);
	assert_int_equal(k.f.stats.beat_timeouts, 0);
	assert_int_equal(fake_log_count(&k, "event=idle_timeout", NULL), 1);
	assert_int_equal(last_frame()->kind, FRAME_CLOSE);
	assert_int_equal(last_frame()->close_code, WS_CLOSE_GOING_AWAY);
}

static void test_idle_not_while_data_flows(void **state)
{
	int64_t t0;
	(void)state;

	k.cfg.idle_timeout_ms = 10000;
	k.auto_answer = true;
	fake_feed_init(&k);
	fake_to_open(&k);
	t0 = k.now;
	for (int i = 1; i <= 12; i++) {
		fake_advance(&k, t0 + i * 9 * SEC);
		rx("tick", true, true, false);
	}
	assert_int_equal(k.f.state, FEED_OPEN);
	assert_int_equal(fake_log_count(&k, "event=idle_timeout", NULL), 0);
	/* Any-message heartbeats (no expect) count as data too. */
	fake_fini(&k);
	fake_init(&k);
	set_text_heartbeat(NULL);
	k.cfg.idle_timeout_ms = 10000;
	k.auto_answer = true;
	fake_feed_init(&k);
	fake_to_open(&k);
	fake_advance(&k, k.now + 120 * SEC);
	assert_int_equal(k.f.state, FEED_OPEN);
}

static void test_on_open_frames_first(void **state)
{
	static const char *msgs[] = {"sub1", "sub2", "sub3"};
	static const bool more[] = {true, true, true, false};
	struct cfg_step steps[3];
	struct feed_frame fr;
	(void)state;

	for (int i = 0; i < 3; i++)
		steps[i] = (struct cfg_step){.send = fake_tmpl(&k, msgs[i], 4)};
	k.cfg.on_open = steps;
	k.cfg.n_on_open = 3;
	fake_feed_init(&k);
	fake_to_open(&k);
	assert_int_equal(k.n_want_write, 1);
	/* The first beat comes due before anything is written. */
	k.now = k.f.t_beat.deadline_us;
	tq_driver_fired(&k.tq, k.now);
	for (int i = 0; i < 4; i++) {
		feed_next_frame(&k.f, k.now, &fr);
		if (i < 3) {
			assert_int_equal(fr.kind, FRAME_TEXT);
			assert_int_equal(fr.src, SRC_ON_OPEN);
			assert_int_equal(fr.len, 4);
			assert_memory_equal(fr.data, msgs[i], 4);
		} else {
			assert_int_equal(fr.kind, FRAME_PING);
		}
		assert_int_equal(feed_frame_sent(&k.f, &fr, k.now), more[i]);
	}
	feed_next_frame(&k.f, k.now, &fr);
	assert_int_equal(fr.kind, FRAME_NONE);

	/* Every new connection sends them again. */
	feed_on_gone(&k.f, k.now, "gone");
	fake_advance(&k, k.f.t_state.deadline_us);
	feed_on_open(&k.f, k.now);
	fake_pump(&k);
	assert_int_equal(k.n_frames, 3);
	assert_memory_equal(k.frames[0].data, "sub1", 4);
	assert_memory_equal(k.frames[2].data, "sub3", 4);
}

static void set_named_host(void)
{
	static char host[] = "feed.example", display[] = "ws://feed.example/";

	k.cfg.url.host = host;
	k.cfg.url.display = display;
}

static const struct dns_result two_addrs = {
    2, {{AF_INET6, {[15] = 1}}, {AF_INET, {127, 0, 0, 1}}}, NULL};

static void test_resolving_then_addresses(void **state)
{
	int64_t deadline;
	(void)state;

	set_named_host();
	fake_feed_init(&k);
	feed_start(&k.f, k.now);
	fake_advance(&k, k.now);
	assert_int_equal(k.f.state, FEED_RESOLVING);
	assert_int_equal(k.n_resolve, 1);
	assert_int_equal(k.n_connect, 0);
	fake_assert_timers(&k, true, false, false, false);
	deadline = k.f.t_state.deadline_us;
	assert_int_equal(deadline, k.now + 10 * SEC);
	assert_int_equal(fake_log_count(&k, "event=connecting", "state=resolving"), 1);
	feed_on_open(&k.f, k.now); /* nonsense while resolving: ignored */
	assert_int_equal(k.f.state, FEED_RESOLVING);

	/* One deadline covers resolving and connecting. */
	k.now += 200 * MS;
	feed_on_resolved(&k.f, &two_addrs, k.now);
	assert_int_equal(k.f.state, FEED_CONNECTING);
	assert_int_equal(k.n_connect, 1);
	assert_int_equal(k.connect_addr_idx, 0);
	assert_int_equal(k.f.addrs[0].family, AF_INET6);
	assert_int_equal(k.f.t_state.deadline_us, deadline);
	/* A second answer (or a late one) changes nothing. */
	feed_on_resolved(&k.f, &two_addrs, k.now);
	assert_int_equal(k.n_connect, 1);

	/* The first address fails: the next one is tried, from a timer, same attempt. */
	log_set_level(LOG_LVL_DEBUG);
	feed_on_gone(&k.f, k.now, "refused");
	log_set_level(LOG_LVL_INFO);
	assert_int_equal(fake_log_count(&k, "event=address_failed", "address=::1 reason=refused"),
	                 1);
	assert_null(k.f.detail); /* the next address starts with a clean slate */
	assert_int_equal(k.f.state, FEED_CONNECTING);
	assert_int_equal(k.n_connect, 1);
	assert_int_equal(k.f.stats.connect_errors, 0);
	assert_true(k.f.conn_live);
	assert_true(tq_armed(&k.f.t_addr));
	fake_advance(&k, k.now);
	assert_int_equal(k.n_connect, 2);
	assert_int_equal(k.connect_addr_idx, 1);
	assert_int_equal(k.f.t_state.deadline_us, deadline);

	/* The last address fails: the attempt has failed. */
	feed_on_gone(&k.f, k.now, "refused");
	assert_int_equal(backoff_ms(), 1000);
	assert_int_equal(k.f.stats.connect_errors, 1);
	assert_int_equal(k.f.failures, 1);
	assert_false(tq_armed(&k.f.t_addr));
	/* The next attempt resolves again. */
	fake_advance(&k, k.f.t_state.deadline_us);
	assert_int_equal(k.f.state, FEED_RESOLVING);
	assert_int_equal(k.n_resolve, 2);
}

static void test_http_status_ends_attempt(void **state)
{
	(void)state;

	/* An HTTP answer is the server's: another address of it would say the same. */
	set_named_host();
	fake_feed_init(&k);
	feed_start(&k.f, k.now);
	fake_advance(&k, k.now);
	feed_on_resolved(&k.f, &two_addrs, k.now);
	feed_on_http_status(&k.f, 503, -1);
	feed_on_gone(&k.f, k.now, NULL);
	assert_int_equal(k.n_connect, 1);
	assert_int_equal(backoff_ms(), 1000);
}

static void test_resolve_errors(void **state)
{
	static const struct dns_result nx = {0, {{0}}, "domain name not found"};
	(void)state;

	set_named_host();
	fake_feed_init(&k);
	feed_start(&k.f, k.now);
	fake_advance(&k, k.now);
	feed_on_resolved(&k.f, &nx, k.now);
	assert_int_equal(backoff_ms(), 1000);
	assert_int_equal(k.n_connect, 0);
	assert_non_null(strstr(feed_err(&k.f), "cannot resolve feed.example"));
	assert_int_equal(fake_log_count(&k, "event=connect_error", "domain name not found"), 1);

	/* The resolver refuses at once. */
	k.resolve_ret = -1;
	fake_advance(&k, k.f.t_state.deadline_us);
	assert_int_equal(k.n_resolve, 2);
	assert_int_equal(backoff_ms(), 2000);
	assert_int_equal(fake_log_count(&k, "event=connect_error", "resolver unavailable"), 1);

	/* The name never resolves: the connect deadline cancels the query; no connection to
	 * abort, so the attempt ends at once. */
	k.resolve_ret = 0;
	fake_advance(&k, k.f.t_state.deadline_us);
	assert_int_equal(k.f.state, FEED_RESOLVING);
	fake_advance(&k, k.now + 10 * SEC);
	assert_int_equal(k.n_cancel_resolve, 1);
	assert_int_equal(k.n_abort, 0);
	assert_int_equal(backoff_ms(), 4000);
	assert_non_null(strstr(feed_err(&k.f), "still resolving"));
	feed_on_resolved(&k.f, &two_addrs, k.now); /* too late: ignored */
	assert_int_equal(k.f.state, FEED_BACKOFF);
	assert_int_equal(k.n_connect, 0);
}

static void test_connect_timeout(void **state)
{
	int64_t t0, retry;
	size_t nlog;
	(void)state;

	fake_feed_init(&k);
	fake_to_connecting(&k);
	t0 = k.now;
	fake_advance(&k, t0 + 10 * SEC - 1);
	assert_int_equal(k.n_abort, 0);
	fake_advance(&k, t0 + 10 * SEC);
	assert_int_equal(k.n_abort, 1);
	assert_int_equal(k.f.state, FEED_CONNECTING);
	fake_assert_timers(&k, false, false, false, false);
	/* An open racing the abort is ignored. */
	feed_on_open(&k.f, k.now);
	assert_int_equal(k.f.state, FEED_CONNECTING);

	k.now += 100 * MS;
	feed_on_gone(&k.f, k.now, "aborted");
	assert_int_equal(backoff_ms(), 1000);
	assert_int_equal(k.f.stats.connect_errors, 1);
	assert_int_equal(k.f.failures, 1);
	assert_non_null(strstr(feed_err(&k.f), "connect timeout"));
	assert_int_equal(fake_log_count(&k, "event=connect_error", "connect timeout"), 1);

	/* Idempotent: a second report changes nothing. */
	retry = k.f.t_state.deadline_us;
	nlog = k.n_log;
	feed_on_gone(&k.f, k.now + 50 * MS, "again");
	assert_int_equal(k.f.state, FEED_BACKOFF);
	assert_int_equal(k.f.t_state.deadline_us, retry);
	assert_int_equal(k.f.stats.connect_errors, 1);
	assert_int_equal(k.f.failures, 1);
	assert_int_equal(k.n_log, nlog);
	assert_int_equal(k.n_abort, 1);
}

static void test_connect_fails_at_once(void **state)
{
	static const int64_t want[] = {1000, 2000, 4000, 8000};
	(void)state;

	k.connect_ret = -1;
	fake_feed_init(&k);
	feed_start(&k.f, k.now);
	fake_advance(&k, k.now);
	for (int i = 0; i < 4; i++) {
		char a[32];
		assert_int_equal(k.n_connect, i + 1);
		assert_int_equal(backoff_ms(), want[i]);
		assert_int_equal(k.f.failures, i + 1);
		assert_int_equal(k.f.stats.connect_errors, i + 1);
		assert_false(k.f.conn_live);
		snprintf(a, sizeof(a), "attempt=%d", i + 1);
		assert_int_equal(fake_log_count(&k, "event=connecting", a), 1);
		assert_int_equal(fake_log_count(&k, "event=connect_error", a), 1);
		fake_advance(&k, k.f.t_state.deadline_us);
	}
	assert_int_equal(fake_log_count(&k, "event=connect_error", "connection refused"), 5);
}

static void test_http_status(void **state)
{
	(void)state;

	fake_feed_init(&k);
	fake_to_connecting(&k);
	feed_on_http_status(&k.f, 401, -1);
	feed_on_gone(&k.f, k.now, "handshake failed");
	assert_int_equal(backoff_ms(), 60000);
	assert_int_equal(fake_log_count(&k, "level=error", "http_status=401"), 1);

	fake_advance(&k, k.f.t_state.deadline_us);
	assert_int_equal(k.f.state, FEED_CONNECTING);
	feed_on_http_status(&k.f, 429, 30000);
	feed_on_gone(&k.f, k.now, NULL);
	assert_int_equal(backoff_ms(), 30000); /* policy: 2000 */

	/* Retry-After below the policy's delay: the policy wins. */
	fake_advance(&k, k.f.t_state.deadline_us);
	feed_on_http_status(&k.f, 503, 500);
	feed_on_gone(&k.f, k.now, NULL);
	assert_int_equal(backoff_ms(), 4000);

	/* The status belongs to one attempt only. */
	fake_advance(&k, k.f.t_state.deadline_us);
	feed_on_gone(&k.f, k.now, NULL);
	assert_int_equal(backoff_ms(), 8000);
}

/* One connection that stays open for `open_us`, then is lost. Returns the retry delay. */
static int64_t open_for(int64_t open_us)
{
	fake_advance(&k, k.f.t_state.deadline_us);
	assert_int_equal(k.f.state, FEED_CONNECTING);
	feed_on_open(&k.f, k.now);
	fake_advance(&k, k.now + open_us);
	assert_int_equal(k.f.state, FEED_OPEN);
	feed_on_peer_close(&k.f, 1000, "bye", 3);
	feed_on_gone(&k.f, k.now, NULL);
	return backoff_ms();
}

static void test_failures_and_stable_after(void **state)
{
	(void)state;

	k.auto_answer = true;
	k.connect_ret = -1;
	fake_feed_init(&k);
	feed_start(&k.f, k.now);
	fake_advance(&k, k.now);
	fake_advance(&k, k.f.t_state.deadline_us);
	assert_int_equal(k.f.failures, 2);
	k.connect_ret = 0;

	/* Open, but not for stable_after: still failing. */
	assert_int_equal(open_for(10 * SEC), 4000);
	assert_int_equal(k.f.failures, 3);
	assert_int_equal(fake_log_count(&k, "event=open", "attempt=3"), 1);
	assert_int_equal(fake_log_count(&k, "event=closed", "close_code=1000"), 1);
	assert_int_equal(fake_log_count(&k, "event=backoff", "attempt=4"), 1);
	assert_int_equal(open_for(30 * SEC - 1), 8000);
	assert_int_equal(k.f.failures, 4);
	/* Open for stable_after: the counter starts again. */
	assert_int_equal(open_for(30 * SEC), 1000);
	assert_int_equal(k.f.failures, 0);
	assert_int_equal(fake_log_count(&k, "event=backoff", "attempt=1"), 1);
	assert_int_equal(open_for(1 * SEC), 1000);
	assert_int_equal(k.f.failures, 1);
	assert_int_equal(open_for(1 * SEC), 2000);
	assert_int_equal(open_for(31 * SEC), 1000);
	assert_int_equal(k.f.stats.connects, 6);
	assert_int_equal(k.f.stats.disconnects, 6);
	assert_int_equal(k.f.stats.beat_timeouts, 0);
}

static void test_max_message_size(void **state)
{
	(void)state;

	k.cfg.max_message_size = 16;
	fake_feed_init(&k);
	fake_to_open(&k);
	rx("0123456789abcdef", true, true, false); /* exactly the limit */
	rx("0123456789", true, false, false);
	rx("012345", false, true, false); /* the limit again, in two fragments */
	assert_int_equal(k.f.state, FEED_OPEN);
	assert_int_equal(k.f.stats.messages, 2);
	assert_int_equal(k.f.stats.bytes, 32);

	/* One byte over: the shell is told to fail the connection at once with 1009. */
	assert_int_equal(feed_on_rx(&k.f, "0123456789", 10, true, false, false, k.now), 0);
	assert_int_equal(feed_on_rx(&k.f, "0123456789", 10, false, true, false, k.now), -1);
	assert_int_equal(k.f.close_code, WS_CLOSE_TOO_BIG);
	assert_int_equal(feed_on_rx(&k.f, "x", 1, false, true, false, k.now), 0); /* ignored */
	assert_int_equal(k.f.stats.messages, 2);
	feed_on_gone(&k.f, k.now, NULL);
	assert_int_equal(fake_log_count(&k, "event=closed", "close_code=1009"), 1);
}

static void test_invalid_utf8_fails_the_connection(void **state)
{
	static const char *const bad[] = {"\xff", "\xc0\xaf", "\xed\xa0\x80", "\xf4\x90\x80\x80",
	                                  "ab\xe2\x82"};
	(void)state;

	fake_feed_init(&k);
	fake_to_open(&k);
	/* Valid text, including a character split across fragments. */
	assert_int_equal(feed_on_rx(&k.f, "caf\xc3", 4, true, false, false, k.now), 0);
	assert_int_equal(feed_on_rx(&k.f, "\xa9 \xf0\x9f\x98\x80", 6, false, true, false, k.now),
	                 0);
	assert_int_equal(k.f.stats.messages, 1);
	/* Binary data is not text. */
	assert_int_equal(feed_on_rx(&k.f, "\xff\xfe", 2, true, true, true, k.now), 0);
	assert_int_equal(k.f.stats.messages, 2);
	for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
		/* A fresh feed each time (its timers leave the queue first). */
		k.f.conn = NULL;
		feed_fini(&k.f);
		fake_feed_init(&k);
		fake_to_open(&k);
		assert_int_equal(feed_on_rx(&k.f, bad[i], strlen(bad[i]), true, true, false, k.now),
		                 -1);
		/* A close frame with 1007 goes out, or the connection is dropped soon after. */
		assert_int_equal(k.f.state, FEED_CLOSING);
		assert_int_equal(k.f.close_code, WS_CLOSE_INVALID_DATA);
		assert_int_equal(k.f.t_state.deadline_us, k.now + FEED_FAIL_TIMEOUT_US);
		assert_int_equal(k.f.stats.messages, 0);
	}
}

/* Brings a fresh feed to state s. */
static void bring_to(enum feed_state s)
{
	fake_feed_init(&k);
	switch (s) {
	case FEED_IDLE:
		feed_start(&k.f, k.now);
		break;
	case FEED_RESOLVING:
		k.cfg.url.host = (char *)"feed.example";
		feed_start(&k.f, k.now);
		fake_advance(&k, k.now);
		break;
	case FEED_CONNECTING:
		fake_to_connecting(&k);
		break;
	case FEED_OPEN:
		fake_to_open(&k);
		break;
	case FEED_CLOSING:
		to_closing_by_timeout();
		break;
	case FEED_BACKOFF:
		fake_to_connecting(&k);
		feed_on_gone(&k.f, k.now, "refused");
		break;
	default:
		fail();
	}
	assert_int_equal(k.f.state, s);
}

/* Stops a feed in state s; returns the state it ended in (FEED_STOPPED if all is well). */
static enum feed_state stop_in(enum feed_state s, bool env_stopping)
{
	enum feed_state end;
	int connects;

	bring_to(s);
	connects = k.n_connect;
	k.env.stopping = env_stopping;
	feed_stop(&k.f, k.now);
	if (s == FEED_OPEN) {
		assert_int_equal(k.f.state, FEED_CLOSING);
		fake_pump(&k);
		assert_int_equal(last_frame()->kind, FRAME_CLOSE);
		assert_int_equal(last_frame()->close_code, WS_CLOSE_GOING_AWAY);
	}
	if (s == FEED_CONNECTING)
		assert_int_equal(k.n_abort, 1);
	if (s == FEED_RESOLVING)
		assert_int_equal(k.n_cancel_resolve, 1);
	/* The shell reports the connection gone (after the close or the abort). */
	if (s == FEED_CONNECTING || s == FEED_OPEN || s == FEED_CLOSING)
		feed_on_gone(&k.f, k.now + 10 * MS, NULL);
	fake_advance(&k, k.now + 3600 * SEC);
	end = k.f.state;
	if (end != FEED_STOPPED)
		return end;
	assert_int_equal(k.n_stopped, 1);
	assert_int_equal(k.n_connect, connects);
	assert_false(connq_queued(&k.f.qnode));
	fake_assert_timers(&k, false, false, false, false);
	/* Stopping a stopped feed does nothing. */
	feed_stop(&k.f, k.now);
	assert_int_equal(k.f.state, FEED_STOPPED);
	assert_int_equal(k.n_stopped, 1);
	return end;
}

static void test_stop_every_state_shutdown(void **state)
{
	(void)state;

	for (enum feed_state s = FEED_IDLE; s < FEED_STOPPED; s++) {
		fake_fini(&k);
		fake_init(&k);
		if (stop_in(s, true) != FEED_STOPPED)
			fail_msg("feed_stop in %s with env.stopping: ended %s", feed_state_name(s),
			         feed_state_name(k.f.state));
	}
}

static void test_stop_every_state_one_feed(void **state)
{
	char bad[128] = "";
	(void)state;

	/* feed_stop alone (as a reload removing one feed would use it) must stop the feed. */
	for (enum feed_state s = FEED_IDLE; s < FEED_STOPPED; s++) {
		fake_fini(&k);
		fake_init(&k);
		if (stop_in(s, false) != FEED_STOPPED) {
			size_t n = strlen(bad);
			snprintf(bad + n, sizeof(bad) - n, " %s->%s", feed_state_name(s),
			         feed_state_name(k.f.state));
		}
	}
	if (bad[0])
		fail_msg("feed_stop without env.stopping did not reach stopped:%s", bad);
}

static void test_stop_why(void **state)
{
	(void)state;

	fake_feed_init(&k);
	fake_to_open(&k);
	feed_stop_why(&k.f, k.now, "removed from the configuration");
	fake_pump(&k);
	assert_int_equal(last_frame()->kind, FRAME_CLOSE);
	assert_int_equal(last_frame()->close_code, WS_CLOSE_GOING_AWAY);
	assert_int_equal(last_frame()->len, strlen("removed from the configuration"));
	assert_memory_equal(last_frame()->data, "removed from the configuration",
	                    last_frame()->len);
	/* No close answer: dropped at the close deadline, then stopped. */
	fake_advance(&k, k.now + FEED_CLOSE_TIMEOUT_US);
	assert_int_equal(k.n_abort, 1);
	feed_on_gone(&k.f, k.now, NULL);
	assert_int_equal(k.f.state, FEED_STOPPED);
	assert_int_equal(k.n_stopped, 1);
	fake_assert_timers(&k, false, false, false, false);
	assert_int_equal(fake_log_count(&k, "event=closed", "removed from the configuration"), 1);
}

static void test_error_detail(void **state)
{
	char reason[200];
	(void)state;

	k.auto_answer = true;
	fake_feed_init(&k);
	assert_string_equal(feed_err(&k.f), "");
	fake_to_open(&k);
	fake_advance(&k, k.now + 20 * SEC);
	/* A healthy feed never allocates its detail record. */
	assert_null(k.f.detail);

	/* The peer's reason is kept (at most 123 bytes, what a close frame can carry). */
	memset(reason, 'r', sizeof(reason));
	feed_on_peer_close(&k.f, 4000, reason, sizeof(reason));
	assert_non_null(k.f.detail);
	assert_int_equal(strlen(k.f.detail->close_reason), 123);
	assert_string_equal(feed_err(&k.f), "server closed the connection");
	feed_set_error(&k.f, "second reason"); /* the first one wins */
	assert_string_equal(feed_err(&k.f), "server closed the connection");
	feed_on_gone(&k.f, k.now, "connection lost");
	assert_int_equal(fake_log_count(&k, "event=closed", "close_code=4000"), 1);
	assert_int_equal(fake_log_count(&k, "reason=\"server closed the connection\"", "rrrr"), 1);
	assert_string_equal(feed_err(&k.f), "server closed the connection");

	/* The next attempt starts clean and frees the record. */
	fake_advance(&k, k.f.t_state.deadline_us);
	assert_int_equal(k.f.state, FEED_CONNECTING);
	assert_null(k.f.detail);
	assert_string_equal(feed_err(&k.f), "");

	feed_set_error(&k.f, "code %d", 42);
	assert_string_equal(feed_err(&k.f), "code 42");
	feed_clear_error(&k.f);
	assert_null(k.f.detail);
	assert_string_equal(feed_err(&k.f), "");
	feed_set_error(&k.f, "kept until feed_fini"); /* which frees it: ASan checks */
}

static void test_error_detail_out_of_memory(void **state)
{
	(void)state;

	fake_feed_init(&k);
	fake_to_open(&k);
	/* No memory for the reason: a fixed text stands in, and the close still goes out. */
	fail_calloc = true;
	feed_stop_why(&k.f, k.now, "removed from the configuration");
	assert_false(fail_calloc);
	assert_null(k.f.detail);
	assert_string_equal(feed_err(&k.f), "out of memory (error text lost)");
	feed_set_error(&k.f, "later"); /* still the first reason, lost or not */
	assert_string_equal(feed_err(&k.f), "out of memory (error text lost)");
	fake_pump(&k);
	assert_int_equal(last_frame()->kind, FRAME_CLOSE);
	assert_int_equal(last_frame()->close_code, WS_CLOSE_GOING_AWAY);
	assert_int_equal(last_frame()->len, 0);
	feed_on_peer_close(&k.f, 1001, "ok", 2);
	feed_on_gone(&k.f, k.now, NULL);
	assert_int_equal(k.f.state, FEED_STOPPED);
	assert_int_equal(fake_log_count(&k, "event=closed", "out of memory (error text lost)"), 1);

	/* feed_clear_error forgets the loss too: the next reason is recorded again. */
	feed_clear_error(&k.f);
	assert_string_equal(feed_err(&k.f), "");
	feed_set_error(&k.f, "recorded");
	assert_string_equal(feed_err(&k.f), "recorded");
}

/* ---- proxies ---- */

/* A feed whose URL names feed.example and whose proxy is named (or numeric). */
static struct proxy_url *use_proxy(const char *text)
{
	struct proxy_url *px;
	char err[128];

	set_named_host();
	assert_int_equal(proxy_parse(text, true, &px, err, sizeof(err)), 0);
	k.cfg.proxy = (struct proxy_setting){PROXY_URL, px};
	fake_feed_init(&k);
	return px;
}

static void test_proxy_resolves_the_proxy(void **state)
{
	static const struct dns_result nx = {0, {{0}}, "domain name not found"};
	struct proxy_url *px = use_proxy("http://proxy.example:3128");
	(void)state;

	assert_ptr_equal(k.f.proxy, px);
	assert_string_equal(feed_connect_host(&k.f), "proxy.example");
	feed_start(&k.f, k.now);
	fake_advance(&k, k.now);
	assert_int_equal(k.f.state, FEED_RESOLVING);
	assert_int_equal(k.n_resolve, 1);
	assert_int_equal(fake_log_count(&k, "event=connecting", "proxy=proxy.example:3128"), 1);
	feed_on_resolved(&k.f, &nx, k.now);
	assert_int_equal(backoff_ms(), 1000);
	assert_int_equal(fake_log_count(&k, "event=connect_error",
	                                "cannot resolve the proxy proxy.example: domain name"),
	                 1);

	/* A proxy address that cannot be reached: its next address is tried. */
	fake_advance(&k, k.f.t_state.deadline_us);
	feed_on_resolved(&k.f, &two_addrs, k.now);
	feed_on_gone(&k.f, k.now, "proxy [::1]:3128 refused the connection");
	assert_int_equal(k.f.state, FEED_CONNECTING);
	fake_advance(&k, k.now);
	assert_int_equal(k.connect_addr_idx, 1);
	/* The proxy answered: whatever it said, another of its addresses would say the same. */
	feed_on_proxy_answer(&k.f, 502, "Bad Gateway");
	feed_on_gone(&k.f, k.now, "proxy not h1");
	assert_int_equal(backoff_ms(), 2000); /* not permanent: the usual delay */
	assert_int_equal(
	    fake_log_count(&k, "level=warning",
	                   "reason=\"proxy proxy.example:3128 answered 502 Bad Gateway\""),
	    1);
	proxy_url_free(px);
}

static void test_proxy_refusal_is_permanent(void **state)
{
	static const int statuses[] = {407, 403, 401};
	struct proxy_url *px = use_proxy("http://10.0.0.1:3128");
	(void)state;

	assert_string_equal(feed_connect_host(&k.f), "10.0.0.1");
	feed_start(&k.f, k.now);
	fake_advance(&k, k.now);
	/* A numeric proxy: no resolving, the proxy's address is the one connected to. */
	assert_int_equal(k.n_resolve, 0);
	assert_int_equal(k.f.state, FEED_CONNECTING);
	assert_int_equal(k.f.addrs[0].family, AF_INET);
	assert_int_equal(k.f.addrs[0].bytes[0], 10);
	for (size_t i = 0; i < sizeof(statuses) / sizeof(statuses[0]); i++) {
		char want[64];
		if (i)
			fake_advance(&k, k.f.t_state.deadline_us);
		feed_on_proxy_answer(&k.f, statuses[i], "No");
		feed_on_gone(&k.f, k.now, "proxy not h1");
		assert_int_equal(backoff_ms(), 60000);
		snprintf(want, sizeof(want), "proxy_status=%d", statuses[i]);
		assert_int_equal(fake_log_count(&k, "level=error", want), 1);
		snprintf(want, sizeof(want), "the proxy refused the feed (HTTP %d)", statuses[i]);
		assert_int_equal(fake_log_count(&k, "event=connect_error", want), 1);
	}
	/* The status belongs to one attempt: garbage next time is an ordinary failure. */
	fake_advance(&k, k.f.t_state.deadline_us);
	feed_on_proxy_answer(&k.f, 0, "answered the CONNECT with something that is not HTTP");
	feed_on_gone(&k.f, k.now, "proxy not h1");
	assert_int_equal(backoff_ms(), 8000);
	assert_int_equal(fake_log_count(&k, "level=warning",
	                                "proxy 10.0.0.1:3128 answered the CONNECT with something"),
	                 1);
	proxy_url_free(px);
}

static void test_proxy_timeouts(void **state)
{
	struct proxy_url *px = use_proxy("http://proxy.example:3128");
	(void)state;

	feed_start(&k.f, k.now);
	fake_advance(&k, k.now);
	fake_advance(&k, k.f.t_state.deadline_us);
	assert_int_equal(backoff_ms(), 1000);
	assert_non_null(strstr(feed_err(&k.f), "(still resolving the proxy's name)"));

	fake_advance(&k, k.f.t_state.deadline_us);
	feed_on_resolved(&k.f, &two_addrs, k.now);
	fake_advance(&k, k.f.t_state.deadline_us);
	feed_on_gone(&k.f, k.now, "aborted");
	assert_non_null(strstr(feed_err(&k.f), "connect timeout after 10000 ms (no answer from the "
	                                       "proxy proxy.example:3128)"));

	/* Once the proxy said 200, a timeout is the server's. */
	fake_advance(&k, k.f.t_state.deadline_us);
	feed_on_resolved(&k.f, &two_addrs, k.now);
	feed_on_proxy_answer(&k.f, 200, "Connection established");
	fake_advance(&k, k.f.t_state.deadline_us);
	feed_on_gone(&k.f, k.now, "aborted");
	assert_string_equal(feed_err(&k.f), "connect timeout after 10000 ms");
	proxy_url_free(px);
}

static void test_proxy_from_env(void **state)
{
	static char host[] = "feed.example", display[] = "wss://feed.example/";
	struct proxy_env env = {0};
	char err[128];
	(void)state;

	assert_int_equal(proxy_parse("http://envproxy:8080", false, &env.https, err, sizeof(err)),
	                 0);
	env.no_proxy = strdup("skip.example");
	k.env.proxy_env = &env;
	k.cfg.url.host = host;
	k.cfg.url.display = display;
	k.cfg.url.tls = true;
	fake_feed_init(&k);
	assert_ptr_equal(k.f.proxy, env.https);
	assert_string_equal(feed_connect_host(&k.f), "envproxy");
	feed_fini(&k.f);
	/* proxy = "" is direct whatever the environment says. */
	k.cfg.proxy.mode = PROXY_DIRECT;
	fake_feed_init(&k);
	assert_null(k.f.proxy);
	assert_string_equal(feed_connect_host(&k.f), "feed.example");
	feed_fini(&k.f);
	/* ws:// feeds use http_proxy, which is not set. */
	k.cfg.proxy.mode = PROXY_ENV;
	k.cfg.url.tls = false;
	fake_feed_init(&k);
	assert_null(k.f.proxy);
	k.env.proxy_env = NULL;
	proxy_env_fini(&env);
}

static void test_state_names(void **state)
{
	(void)state;
	assert_string_equal(feed_state_name(FEED_IDLE), "idle");
	assert_string_equal(feed_state_name(FEED_RESOLVING), "resolving");
	assert_string_equal(feed_state_name(FEED_CONNECTING), "connecting");
	assert_string_equal(feed_state_name(FEED_OPEN), "open");
	assert_string_equal(feed_state_name(FEED_CLOSING), "closing");
	assert_string_equal(feed_state_name(FEED_BACKOFF), "backoff");
	assert_string_equal(feed_state_name(FEED_STOPPED), "stopped");
}

/* The kernel's receive time is used when plausible; else now (io_slack, README). */
static void test_arrival_time(void **state)
{
	struct feed f = {0};
	int64_t now = 1764165600LL * 1000000;
	(void)state;

	assert_int_equal(feed_arrived_real_us(&f, now), now); /* none known */
	f.rx_real_us = now - 30000;
	assert_int_equal(feed_arrived_real_us(&f, now), now - 30000);
	f.rx_real_us = now + 1; /* in the future: the clock was set back */
	assert_int_equal(feed_arrived_real_us(&f, now), now);
	f.rx_real_us = now - 11 * 1000000LL; /* stale: from before a pause */
	assert_int_equal(feed_arrived_real_us(&f, now), now);
}

#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)

int main(void)
{
	const struct CMUnitTest tests[] = {
	    T(test_start_queue_connect),
	    T(test_host_connection_held),
	    T(test_open_timers),
	    T(test_open_idle_timer),
	    T(test_no_heartbeat),
	    T(test_ping_cycle),
	    T(test_pong_filtering),
	    T(test_pong_delivered_forever),
	    T(test_planned_close_is_not_a_failure),
	    T(test_late_beats_stay_on_grid),
	    T(test_lazy_answer_deadline),
	    T(test_lazy_answer_disarms_when_idle),
	    T(test_heartbeat_timeout_to_backoff_to_idle),
	    T(test_close_timeout_aborts),
	    T(test_text_heartbeat_expect),
	    T(test_empty_message),
	    T(test_text_heartbeat_any_message),
	    T(test_binary_heartbeat),
	    T(test_idle_timeout_ignores_answers),
	    T(test_idle_not_while_data_flows),
	    T(test_on_open_frames_first),
	    T(test_resolving_then_addresses),
	    T(test_http_status_ends_attempt),
	    T(test_resolve_errors),
	    T(test_connect_timeout),
	    T(test_connect_fails_at_once),
	    T(test_http_status),
	    T(test_failures_and_stable_after),
	    T(test_max_message_size),
	    T(test_invalid_utf8_fails_the_connection),
	    T(test_stop_every_state_shutdown),
	    T(test_stop_every_state_one_feed),
	    T(test_stop_why),
	    T(test_error_detail),
	    T(test_error_detail_out_of_memory),
	    T(test_state_names),
	    T(test_proxy_resolves_the_proxy),
	    T(test_proxy_refusal_is_permanent),
	    T(test_proxy_timeouts),
	    T(test_proxy_from_env),
	    /* Last: under -fno-sanitize-recover a UBSan report ends the whole program. */
	    T(test_empty_message_null_data),
	    cmocka_unit_test(test_arrival_time),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
