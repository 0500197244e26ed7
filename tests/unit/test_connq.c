/*
 * Unit tests for connq: FIFO order, the global limit as "at most N in any rolling second" (no
 * double burst after an idle spell), removal, grants only from the timer, the limits per host
 * entry (rate with its guard, connection cap, no head-of-line blocking, turns across hosts),
 * the wait reports, host table changes (reload), and long random runs checked for exactness.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "wsbeat/connq.h"
#include "wsbeat/rng.h"

#define NN    128
#define NLOG  8192
#define T0    1000000000LL /* an arbitrary monotonic start */
#define SEC   1000000LL
#define HSPAN (SEC + CONNQ_HOST_GUARD_US) /* a host entry's window */

static struct {
	struct timerq tq;
	struct connq cq;
	struct connq_node nodes[NN];
	int order[NLOG];
	int64_t at[NLOG];
	unsigned host_at_grant[NLOG];
	size_t n;
	bool in_push;
	int requeue_id;        /* pushed again from its own grant, once */
	bool release_at_once;  /* every attempt ends inside its grant (never hits the cap) */
	bool end_conn_at_once; /* ... and so does its connection */
	int settled;           /* settled callbacks */
	int64_t settled_at;
	/* Wait reports. */
	int told[NN];
	enum connq_wait told_why[NN];
	int n_told;
	/* Random runs: a grant fails and its node queues again with this probability. */
	struct rng rng;
	double p_requeue;
} h;

static int id_of(const struct connq_node *n)
{
	return (int)(n - h.nodes);
}

static void on_grant(struct connq *q, struct connq_node *n, int64_t now_us)
{
	assert_ptr_equal(q, &h.cq);
	assert_false(h.in_push);
	assert_false(connq_queued(n));
	assert_true(n->holds_conn);
	assert_true(h.n < NLOG);
	h.order[h.n] = id_of(n);
	h.host_at_grant[h.n] = n->host;
	h.at[h.n++] = now_us;
	if (id_of(n) == h.requeue_id) {
		h.requeue_id = -1;
		connq_push(q, n, now_us);
	}
	if (h.release_at_once)
		connq_release(q, now_us);
	if (h.end_conn_at_once) {
		connq_conn_done(q, n, now_us);
		assert_false(n->holds_conn);
		/* A failed attempt that queues again at once. */
		if (h.p_requeue > 0 && rng_unit(&h.rng) < h.p_requeue)
			connq_push(q, n, now_us);
	}
}

static void on_settled(struct connq *q, int64_t now_us)
{
	assert_ptr_equal(q, &h.cq);
	assert_int_equal(q->inflight, 0);
	h.settled++;
	h.settled_at = now_us;
}

static void on_wait(struct connq *q, struct connq_node *n, const struct connq_host *host,
                    enum connq_wait why, int64_t now_us)
{
	(void)now_us;
	assert_ptr_equal(q, &h.cq);
	assert_true(connq_queued(n));
	assert_ptr_equal(connq_host_of(q, n), host);
	h.told[id_of(n)]++;
	h.told_why[id_of(n)] = why;
	h.n_told++;
}

static void push(int id, int64_t now)
{
	h.in_push = true;
	connq_push(&h.cq, &h.nodes[id], now);
	h.in_push = false;
}

static int setup_rate(double rate)
{
	memset(&h, 0, sizeof(h));
	h.requeue_id = -1;
	rng_seed(&h.rng, 7);
	tq_init(&h.tq, 0, NULL, NULL);
	if (connq_init(&h.cq, &h.tq, rate, on_grant, T0) < 0)
		return -1;
	h.cq.wait = on_wait;
	return 0;
}

static int setup10(void **state)
{
	(void)state;
	return setup_rate(10);
}

static int setup1000(void **state)
{
	(void)state;
	return setup_rate(1000);
}

static int teardown(void **state)
{
	(void)state;
	connq_fini(&h.cq);
	assert_false(tq_armed(&h.cq.timer));
	tq_fini(&h.tq);
	return 0;
}

/* Plays the loop: wakes at each deadline (no slack) until nothing is armed or until `until`. */
static void drive(int64_t until)
{
	int64_t w;

	while ((w = tq_next_wake(&h.tq)) != TQ_NEVER && w <= until)
		tq_driver_fired(&h.tq, w);
}

/* Installs host entries (nodes keep the host index the test gave them). */
static void set_hosts(const struct connq_limit *lim, size_t n, int64_t now)
{
	struct connq_hosts hs;

	assert_int_equal(connq_hosts_new(&hs, &h.tq, lim, n), 0);
	connq_hosts_install(&h.cq, &hs);
	assert_null(hs.v);
	for (int i = 0; i < NN; i++)
		connq_adopt(&h.cq, &h.nodes[i]);
	connq_hosts_done(&h.cq, now);
}

/* The grants (of host `host`, or all when host < 0) never put more than `limit` in any window
 * of `span`; returns how many there were. */
static size_t assert_rolling(int host, uint32_t limit, int64_t span)
{
	int64_t t[NLOG];
	size_t m = 0;

	for (size_t i = 0; i < h.n; i++)
		if (host < 0 || h.host_at_grant[i] == (unsigned)host)
			t[m++] = h.at[i];
	for (size_t i = 0; i + limit < m; i++)
		if (t[i + limit] - t[i] < span)
			fail_msg("host %d: %u+1 grants within %lld us (t0%+lld .. t0%+lld us)",
			         host, limit, (long long)span, (long long)(t[i] - T0),
			         (long long)(t[i + limit] - T0));
	return m;
}

/* ---- the global limit ---- */

static void test_fifo(void **state)
{
	(void)state;

	for (int i = 0; i < 5; i++)
		push(i, T0);
	assert_int_equal(h.cq.waiting, 5);
	assert_int_equal(h.n, 0);
	assert_int_equal(tq_run(&h.tq, T0), 1);
	assert_int_equal(h.n, 5);
	for (int i = 0; i < 5; i++) {
		assert_int_equal(h.order[i], i);
		assert_int_equal(h.at[i], T0);
		assert_false(connq_queued(&h.nodes[i]));
	}
	assert_int_equal(h.cq.waiting, 0);
	assert_int_equal(h.n_told, 0); /* no host entries: nobody waits for a host */
	/* Nothing waits: the queue's timer is not armed. */
	assert_int_equal(tq_next_wake(&h.tq), TQ_NEVER);
}

static void test_rolling_second(void **state)
{
	(void)state;

	for (int i = 0; i < 100; i++)
		push(i, T0);
	drive(T0 + 60 * SEC);
	assert_int_equal(h.n, 100);
	/* Ten at once, then ten more exactly when the first ten leave the window: never ahead of
	 * the limit, never late. */
	for (int k = 0; k < 100; k++) {
		assert_int_equal(h.order[k], k);
		assert_int_equal(h.at[k], T0 + (k / 10) * SEC);
	}
	assert_rolling(-1, 10, SEC);
}

/* A token bucket whose burst equals its rate lets 2N through in the first second after an
 * idle spell (a full bucket, then one second of refill); the window never does. */
static void test_no_double_burst(void **state)
{
	(void)state;

	for (int i = 0; i < 10; i++)
		push(i, T0);
	drive(T0);
	assert_int_equal(h.n, 10);
	for (int i = 10; i < 40; i++)
		push(i, T0 + 10 * SEC);
	drive(T0 + 10 * SEC);
	assert_int_equal(h.n, 20);
	drive(T0 + 11 * SEC - 1);
	assert_int_equal(h.n, 20); /* a bucket would have let one more go every 100 ms */
	drive(T0 + 11 * SEC);
	assert_int_equal(h.n, 30);
	drive(T0 + 20 * SEC);
	assert_int_equal(h.n, 40);
	assert_int_equal(h.at[39], T0 + 12 * SEC);
	assert_rolling(-1, 10, SEC);
}

/* Attempts made at different times leave the window at different times. */
static void test_window_slides(void **state)
{
	(void)state;

	for (int i = 0; i < 3; i++)
		push(i, T0);
	drive(T0);
	for (int i = 3; i < 6; i++)
		push(i, T0 + 300000);
	drive(T0 + 300000);
	for (int i = 6; i < 10; i++)
		push(i, T0 + 600000);
	drive(T0 + 600000);
	assert_int_equal(h.n, 10);
	for (int i = 10; i < 20; i++)
		push(i, T0 + 700000);
	drive(T0 + 3 * SEC);
	assert_int_equal(h.n, 20);
	for (int k = 10; k < 20; k++)
		assert_int_equal(h.at[k], T0 + SEC + (k < 13 ? 0 : k < 16 ? 300000 : 600000));
	assert_rolling(-1, 10, SEC);
}

static void test_remove_while_queued(void **state)
{
	(void)state;

	for (int i = 0; i < 4; i++)
		push(i, T0);
	connq_remove(&h.cq, &h.nodes[1]);
	assert_false(connq_queued(&h.nodes[1]));
	assert_int_equal(h.cq.waiting, 3);
	connq_remove(&h.cq, &h.nodes[1]); /* not queued: a no-op */
	connq_remove(&h.cq, &h.nodes[50]);
	assert_int_equal(h.cq.waiting, 3);
	connq_remove(&h.cq, &h.nodes[3]); /* the tail */
	connq_remove(&h.cq, &h.nodes[0]); /* the head */
	push(5, T0);
	drive(T0);
	assert_int_equal(h.n, 2);
	assert_int_equal(h.order[0], 2);
	assert_int_equal(h.order[1], 5);
	assert_int_equal(h.cq.waiting, 0);
}

static void test_remove_all_then_timer(void **state)
{
	(void)state;

	push(0, T0);
	push(1, T0);
	connq_remove(&h.cq, &h.nodes[0]);
	connq_remove(&h.cq, &h.nodes[1]);
	drive(T0 + SEC);
	assert_int_equal(h.n, 0);
	/* The window was not spent by the empty wake-up. */
	h.release_at_once = true;
	for (int i = 0; i < NN; i++)
		push(i, T0 + SEC);
	drive(T0 + SEC);
	assert_int_equal(h.n, NN);
}

static void test_push_twice(void **state)
{
	(void)state;

	push(0, T0);
	push(1, T0);
	push(0, T0); /* already queued: stays first, counted once */
	push(0, T0);
	assert_int_equal(h.cq.waiting, 2);
	drive(T0);
	assert_int_equal(h.n, 2);
	assert_int_equal(h.order[0], 0);
	assert_int_equal(h.order[1], 1);
}

static void test_grants_only_from_timer(void **state)
{
	(void)state;

	/* Room in the window, yet pushing grants nothing: on_grant asserts it is not inside push.
	 */
	push(0, T0);
	assert_int_equal(h.n, 0);
	assert_true(connq_queued(&h.nodes[0]));
	assert_true(tq_armed(&h.cq.timer));
	assert_int_equal(tq_next_wake(&h.tq), T0);
	/* Not even a push made later than the armed timer. */
	push(1, T0 + 5000);
	assert_int_equal(h.n, 0);
	assert_int_equal(tq_run(&h.tq, T0 + 5000), 1);
	assert_int_equal(h.n, 2);

	/* A node pushed again from its own grant is granted again by the same wake-up, as one
	 * more attempt in the window. */
	h.requeue_id = 2;
	push(2, T0 + 6000);
	assert_int_equal(tq_run(&h.tq, T0 + 6000), 1);
	assert_int_equal(h.n, 4);
	assert_int_equal(h.order[2], 2);
	assert_int_equal(h.order[3], 2);
	assert_int_equal(h.cq.win.n, 4);
	assert_int_equal(tq_next_wake(&h.tq), TQ_NEVER); /* no wake-up with nothing to do */
}

/* settled: only when the last attempt in flight ends with nobody to grant. */
static void test_settled(void **state)
{
	(void)state;

	h.cq.settled = on_settled;
	for (int i = 0; i < 3; i++)
		push(i, T0);
	assert_int_equal(tq_run(&h.tq, T0), 1);
	assert_int_equal(h.cq.inflight, 3);
	assert_true(connq_busy(&h.cq));
	connq_release(&h.cq, T0 + 10);
	connq_release(&h.cq, T0 + 20);
	assert_int_equal(h.settled, 0); /* one still in flight */
	push(3, T0 + 25);
	connq_release(&h.cq, T0 + 30);
	assert_int_equal(h.settled, 0); /* node 3 waits */
	assert_int_equal(tq_run(&h.tq, T0 + 30), 1);
	assert_int_equal(h.n, 4);
	connq_release(&h.cq, T0 + 40);
	assert_int_equal(h.settled, 1);
	assert_int_equal(h.settled_at, T0 + 40);
	assert_false(connq_busy(&h.cq));
	/* A release with nothing in flight (a grant handed back twice) settles nothing again. */
	connq_release(&h.cq, T0 + 50);
	assert_int_equal(h.cq.inflight, 0);
	assert_int_equal(h.settled, 1);
}

static void test_inflight_cap(void **state)
{
	(void)state;

	h.cq.max_inflight = 4;
	for (int i = 0; i < 10; i++)
		push(i, T0);
	drive(T0 + 5 * SEC);
	assert_int_equal(h.n, 4);
	assert_false(tq_armed(&h.cq.timer)); /* the release wakes it */
	connq_release(&h.cq, T0 + 5 * SEC);
	drive(T0 + 5 * SEC);
	assert_int_equal(h.n, 5);
	assert_int_equal(h.order[4], 4);
}

static void test_set_rate(void **state)
{
	(void)state;

	assert_int_equal(h.cq.win.limit, 10);
	connq_set_rate(&h.cq, 0.25); /* below one: clamped */
	assert_int_equal(h.cq.win.limit, 1);
	for (int i = 0; i < 3; i++)
		push(i, T0);
	drive(T0 + 10 * SEC);
	assert_int_equal(h.n, 3);
	assert_int_equal(h.at[0], T0);
	assert_int_equal(h.at[1], T0 + SEC);
	assert_int_equal(h.at[2], T0 + 2 * SEC);
	/* Raised: the ring grows to the new limit as attempts need it. */
	connq_set_rate(&h.cq, 100);
	h.release_at_once = true;
	for (int i = 0; i < NN; i++)
		push(i, T0 + 20 * SEC);
	drive(T0 + 30 * SEC);
	assert_int_equal(h.n, 3 + NN);
	assert_int_equal(h.at[3 + 99], T0 + 20 * SEC);
	assert_int_equal(h.at[3 + 100], T0 + 21 * SEC);
	assert_int_equal(h.cq.win.cap, 100);
}

/* ---- host entries ---- */

static const struct connq_limit okx3 = {"*.okx.com", 3, 0};

static void test_host_rate(void **state)
{
	(void)state;

	set_hosts(&okx3, 1, T0);
	for (int i = 0; i < 30; i++) {
		h.nodes[i].host = 1;
		push(i, T0);
	}
	drive(T0 + 60 * SEC);
	assert_int_equal(h.n, 30);
	/* Three at once, then three each time the oldest three leave the window (a second and
	 * the guard). */
	for (int k = 0; k < 30; k++)
		assert_int_equal(h.at[k], T0 + (k / 3) * HSPAN);
	assert_rolling(1, 3, HSPAN);
	/* One debug record per waiting node, for the rate; the first three never waited. */
	for (int i = 0; i < 30; i++) {
		assert_int_equal(h.told[i], i < 3 ? 0 : 1);
		if (i >= 3)
			assert_int_equal(h.told_why[i], CONNQ_WAIT_RATE);
	}
	/* Nothing waits: no timer. */
	assert_false(tq_armed(&h.cq.hosts.v[1].timer));
	assert_int_equal(tq_next_wake(&h.tq), TQ_NEVER);
}

/* A host at its limit holds up nobody else, whenever the others' nodes come. */
static void test_host_no_head_of_line(void **state)
{
	static const struct connq_limit slow = {"slow", 1, 0};
	(void)state;

	set_hosts(&slow, 1, T0);
	for (int i = 0; i < 10; i++) {
		h.nodes[i].host = 1;
		push(i, T0);
	}
	drive(T0);
	assert_int_equal(h.n, 1);
	for (int i = 10; i < 20; i++)
		push(i, T0 + 1000); /* host 0: no entry */
	drive(T0 + 1000);
	assert_int_equal(h.n, 11);
	for (int k = 1; k < 11; k++) {
		assert_int_equal(h.order[k], 9 + k);
		assert_int_equal(h.at[k], T0 + 1000);
	}
	drive(T0 + 60 * SEC);
	assert_int_equal(h.n, 20);
	assert_int_equal(h.at[19], T0 + 9 * HSPAN);
}

/* Hosts that may go take turns under a global limit: none starves another. */
static void test_host_turns(void **state)
{
	static const struct connq_limit lim[] = {{"a", 100, 0}, {"b", 100, 0}};
	int per_host[3] = {0};
	(void)state;

	set_hosts(lim, 2, T0);
	for (int i = 0; i < 90; i++) {
		h.nodes[i].host = (unsigned)(i / 30); /* 30 each for hosts 0, 1, 2 */
		push(i, T0);
	}
	drive(T0 + 2 * SEC);
	assert_int_equal(h.n, 30); /* three seconds' worth of the global 10/s */
	for (size_t k = 0; k < h.n; k++) {
		per_host[h.host_at_grant[k]]++;
		if (k >= 3)
			assert_int_equal(h.host_at_grant[k], h.host_at_grant[k - 3]);
	}
	assert_int_equal(per_host[0], 10);
	assert_int_equal(per_host[1], 10);
	assert_int_equal(per_host[2], 10);
	/* Within a host, FIFO. */
	for (size_t k = 3; k < h.n; k++)
		assert_true(h.order[k] > h.order[k - 3]);
}

static void test_host_max_connections(void **state)
{
	static const struct connq_limit cap2 = {"cap", 0, 2};
	(void)state;

	set_hosts(&cap2, 1, T0);
	for (int i = 0; i < 5; i++) {
		h.nodes[i].host = 1;
		push(i, T0);
	}
	drive(T0 + 10 * SEC);
	assert_int_equal(h.n, 2);
	assert_int_equal(h.cq.hosts.v[1].conns, 2);
	for (int i = 2; i < 5; i++) {
		assert_int_equal(h.told[i], 1);
		assert_int_equal(h.told_why[i], CONNQ_WAIT_CONNS);
	}
	assert_false(tq_armed(&h.cq.hosts.v[1].timer)); /* no timer for a cap */
	/* An attempt that ends (opened) keeps its connection counted. */
	connq_release(&h.cq, T0 + 10 * SEC);
	connq_release(&h.cq, T0 + 10 * SEC);
	drive(T0 + 20 * SEC);
	assert_int_equal(h.n, 2);
	assert_false(connq_busy(&h.cq));
	/* A connection ends: the next goes at once (from the timer). */
	connq_conn_done(&h.cq, &h.nodes[0], T0 + 20 * SEC);
	assert_false(h.nodes[0].holds_conn);
	assert_int_equal(h.n, 2);
	drive(T0 + 20 * SEC);
	assert_int_equal(h.n, 3);
	assert_int_equal(h.order[2], 2);
	assert_int_equal(h.at[2], T0 + 20 * SEC);
	/* Twice is once. */
	connq_conn_done(&h.cq, &h.nodes[0], T0 + 21 * SEC);
	drive(T0 + 21 * SEC);
	assert_int_equal(h.n, 3);
	assert_int_equal(h.cq.hosts.v[1].conns, 2);
	/* A waiter taken out no longer waits; the next one goes. */
	connq_remove(&h.cq, &h.nodes[3]);
	connq_conn_done(&h.cq, &h.nodes[1], T0 + 22 * SEC);
	drive(T0 + 22 * SEC);
	assert_int_equal(h.n, 4);
	assert_int_equal(h.order[3], 4);
	assert_int_equal(h.cq.waiting, 0);
}

/* Told once per wait, however often the host stops and goes. */
static void test_host_told_once(void **state)
{
	static const struct connq_limit lim = {"x", 2, 0};
	(void)state;

	set_hosts(&lim, 1, T0);
	for (int i = 0; i < 8; i++) {
		h.nodes[i].host = 1;
		push(i, T0);
	}
	drive(T0 + 10 * SEC);
	assert_int_equal(h.n, 8);
	assert_int_equal(h.n_told, 6);
	/* Queued again later, while the host is at its limit: told again, once. */
	h.nodes[0].host = 1;
	push(0, T0 + 10 * SEC);
	push(1, T0 + 10 * SEC);
	push(2, T0 + 10 * SEC);
	drive(T0 + 20 * SEC);
	assert_int_equal(h.n, 11);
	assert_int_equal(h.told[2], 2);
	assert_int_equal(h.n_told, 7);
}

/* Reload: new limits apply to waiting nodes; recent attempts still count; connections beyond a
 * lowered cap stay; nodes follow their new entries. */
static void test_hosts_reload(void **state)
{
	static const struct connq_limit before[] = {{"a", 3, 4}, {"b", 5, 0}};
	static const struct connq_limit after[] = {{"c", 2, 0}, {"a", 1, 2}};
	(void)state;

	h.release_at_once = true;
	set_hosts(before, 2, T0);
	for (int i = 0; i < 10; i++) {
		h.nodes[i].host = 1; /* a */
		push(i, T0);
	}
	drive(T0 + HSPAN);
	assert_int_equal(h.n, 4); /* 3 at T0, 1 at T0 + HSPAN: then the cap of 4 */
	assert_int_equal(h.cq.hosts.v[1].conns, 4);
	for (int i = 10; i < 14; i++) {
		h.nodes[i].host = 2; /* b */
		push(i, T0 + HSPAN);
	}
	drive(T0 + HSPAN);
	assert_int_equal(h.n, 8);

	/* "a" becomes entry 2 with 1/s and a cap of 2; "b" goes away (its nodes: no entry). */
	{
		struct connq_hosts hs;
		assert_int_equal(connq_hosts_new(&hs, &h.tq, after, 2), 0);
		connq_hosts_install(&h.cq, &hs);
		for (int i = 0; i < NN; i++) {
			h.nodes[i].host = i < 10 ? 2 : 0;
			connq_adopt(&h.cq, &h.nodes[i]);
		}
		connq_hosts_done(&h.cq, T0 + HSPAN + 10);
	}
	assert_int_equal(h.cq.hosts.n, 3);
	assert_int_equal(h.cq.hosts.v[2].conns, 4); /* beyond the new cap: they stay */
	assert_int_equal(h.cq.hosts.v[0].conns, 4);
	assert_int_equal(h.cq.hosts.v[2].waiting, 6);
	assert_int_equal(h.cq.waiting, 6);
	assert_int_equal(h.n_told, 7); /* nodes 3..9, once: a reload does not tell them again */
	/* Connections end: a place opens only below the new cap of 2. */
	connq_conn_done(&h.cq, &h.nodes[0], T0 + HSPAN + 20);
	connq_conn_done(&h.cq, &h.nodes[1], T0 + HSPAN + 20);
	drive(T0 + HSPAN + 20);
	assert_int_equal(h.n, 8);
	/* Then the new rate of 1 applies, and the attempt at T0 + HSPAN still counts. */
	connq_conn_done(&h.cq, &h.nodes[2], T0 + HSPAN + 20);
	drive(T0 + 2 * HSPAN - 1);
	assert_int_equal(h.n, 8);
	drive(T0 + 2 * HSPAN);
	assert_int_equal(h.n, 9);
	assert_int_equal(h.order[8], 4); /* FIFO kept across the reload */
	assert_int_equal(h.at[8], T0 + 2 * HSPAN);
	assert_int_equal(h.cq.hosts.v[2].conns, 2);
	drive(T0 + 100 * SEC);
	assert_int_equal(h.n, 9);
	/* Index out of range: no entry. */
	h.nodes[100].host = 77;
	push(100, T0 + 100 * SEC);
	drive(T0 + 100 * SEC);
	assert_int_equal(h.n, 10);
	assert_int_equal(h.order[9], 100);
}

/* A reload that raises a cap lets waiters go; an entry with a new key starts with an empty
 * window. */
static void test_hosts_reload_raise(void **state)
{
	static const struct connq_limit before = {"a", 2, 1};
	static const struct connq_limit after = {"a2", 2, 5};
	(void)state;

	set_hosts(&before, 1, T0);
	for (int i = 0; i < 6; i++) {
		h.nodes[i].host = 1;
		push(i, T0);
	}
	drive(T0 + 100000);
	assert_int_equal(h.n, 1);
	set_hosts(&after, 1, T0 + 100000);
	drive(T0 + 100000);
	assert_int_equal(h.n, 3);
	drive(T0 + 100000 + HSPAN);
	assert_int_equal(h.n, 5);
	assert_int_equal(h.cq.hosts.v[1].conns, 5);
	drive(T0 + 100 * SEC);
	assert_int_equal(h.n, 5);
}

/* Long random runs: nodes of three entries and none, pushed at random times, attempts that
 * fail and queue again at once. Every limit holds in every window; everyone gets through. */
static void test_random_exact(void **state)
{
	static const struct connq_limit lim[] = {{"r3", 3, 0}, {"r5", 5, 0}, {"r1", 1, 0}};
	int64_t t = T0;
	(void)state;

	connq_set_rate(&h.cq, 7);
	set_hosts(lim, 3, T0);
	h.release_at_once = true;
	h.end_conn_at_once = true;
	h.p_requeue = 0.3;
	for (int round = 0; round < 40; round++) {
		int k = (int)(rng_unit(&h.rng) * 12);
		for (int j = 0; j < k; j++) {
			int id = (int)(rng_unit(&h.rng) * NN);
			if (connq_queued(&h.nodes[id]))
				continue;
			h.nodes[id].host = (unsigned)(rng_unit(&h.rng) * 4);
			push(id, t);
		}
		t += (int64_t)(rng_unit(&h.rng) * 2.5 * SEC);
		drive(t);
	}
	h.p_requeue = 0;
	drive(t + 3600 * SEC);
	assert_int_equal(h.cq.waiting, 0);
	assert_true(h.n > 200);
	assert_rolling(-1, 7, SEC);
	assert_true(assert_rolling(1, 3, HSPAN) > 20);
	assert_true(assert_rolling(2, 5, HSPAN) > 20);
	assert_true(assert_rolling(3, 1, HSPAN) > 10);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_fifo, setup1000, teardown),
	    cmocka_unit_test_setup_teardown(test_rolling_second, setup10, teardown),
	    cmocka_unit_test_setup_teardown(test_no_double_burst, setup10, teardown),
	    cmocka_unit_test_setup_teardown(test_window_slides, setup10, teardown),
	    cmocka_unit_test_setup_teardown(test_remove_while_queued, setup10, teardown),
	    cmocka_unit_test_setup_teardown(test_remove_all_then_timer, setup1000, teardown),
	    cmocka_unit_test_setup_teardown(test_push_twice, setup10, teardown),
	    cmocka_unit_test_setup_teardown(test_grants_only_from_timer, setup10, teardown),
	    cmocka_unit_test_setup_teardown(test_settled, setup10, teardown),
	    cmocka_unit_test_setup_teardown(test_inflight_cap, setup10, teardown),
	    cmocka_unit_test_setup_teardown(test_set_rate, setup10, teardown),
	    cmocka_unit_test_setup_teardown(test_host_rate, setup1000, teardown),
	    cmocka_unit_test_setup_teardown(test_host_no_head_of_line, setup1000, teardown),
	    cmocka_unit_test_setup_teardown(test_host_turns, setup10, teardown),
	    cmocka_unit_test_setup_teardown(test_host_max_connections, setup1000, teardown),
	    cmocka_unit_test_setup_teardown(test_host_told_once, setup1000, teardown),
	    cmocka_unit_test_setup_teardown(test_hosts_reload, setup1000, teardown),
	    cmocka_unit_test_setup_teardown(test_hosts_reload_raise, setup1000, teardown),
	    cmocka_unit_test_setup_teardown(test_random_exact, setup1000, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
