/* Unit tests for connq: FIFO order, token-bucket pacing, removal, and grants only from the timer.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "wsbeat/connq.h"

#define NN 128
#define T0 1000000000LL /* an arbitrary monotonic start */

static struct {
	struct timerq tq;
	struct connq cq;
	struct connq_node nodes[NN];
	int order[4 * NN];
	int64_t at[4 * NN];
	size_t n;
	bool in_push;
	int requeue_id; /* pushed again from its own grant, once */
	int settled;    /* settled callbacks */
	int64_t settled_at;
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
	h.order[h.n] = id_of(n);
	h.at[h.n++] = now_us;
	if (id_of(n) == h.requeue_id) {
		h.requeue_id = -1;
		connq_push(q, n, now_us);
	}
}

static void on_settled(struct connq *q, int64_t now_us)
{
	assert_ptr_equal(q, &h.cq);
	assert_int_equal(q->inflight, 0);
	assert_int_equal(q->waiting, 0);
	h.settled++;
	h.settled_at = now_us;
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
	tq_init(&h.tq, 0, NULL, NULL);
	return connq_init(&h.cq, &h.tq, rate, on_grant, T0);
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
	/* Nothing waits: the queue's timer is not armed. */
	assert_int_equal(tq_next_wake(&h.tq), TQ_NEVER);
}

static void test_rate_grant_times(void **state)
{
	(void)state;

	for (int i = 0; i < 100; i++)
		push(i, T0);
	assert_int_equal(h.n, 0);
	drive(T0 + 60LL * 1000000);
	assert_int_equal(h.n, 100);
	for (int k = 0; k < 100; k++) {
		int64_t want = k < 10 ? T0 : T0 + (k - 9) * 100000LL;
		assert_int_equal(h.order[k], k);
		/* Never ahead of the rate; at most a few microseconds behind it. */
		if (h.at[k] < want || h.at[k] > want + 5)
			fail_msg("grant %d at t0%+lld us, want t0%+lld", k,
			         (long long)(h.at[k] - T0), (long long)(want - T0));
	}
	/* Within any one second after the initial burst, at most rate grants. */
	for (int k = 10; k + 10 < 100; k++)
		assert_true(h.at[k + 10] - h.at[k] >= 1000000);
}

static void test_bucket_refills_to_burst_only(void **state)
{
	(void)state;

	for (int i = 0; i < 10; i++)
		push(i, T0);
	drive(T0);
	assert_int_equal(h.n, 10);
	/* Ten idle seconds refill the bucket to one second's worth, not a hundred. */
	for (int i = 10; i < 30; i++)
		push(i, T0 + 10000000);
	drive(T0 + 10000000);
	assert_int_equal(h.n, 20);
	assert_int_equal(h.at[19], T0 + 10000000);
	drive(T0 + 10000000 + 99999);
	assert_int_equal(h.n, 20);
	drive(T0 + 10000000 + 100005);
	assert_int_equal(h.n, 21);
	drive(T0 + 20000000);
	assert_int_equal(h.n, 30);
}

static void test_partial_refill(void **state)
{
	(void)state;

	for (int i = 0; i < 10; i++)
		push(i, T0);
	drive(T0);
	/* 0.55 s later five and a half tokens have accrued: five go now, the sixth when the
	 * half token left over has become a whole one, 50 ms later. */
	for (int i = 10; i < 20; i++)
		push(i, T0 + 550000);
	tq_run(&h.tq, T0 + 550000);
	assert_int_equal(h.n, 15);
	for (int k = 10; k < 15; k++)
		assert_int_equal(h.at[k], T0 + 550000);
	drive(T0 + 2000000);
	assert_int_equal(h.n, 20);
	assert_in_range(h.at[15], T0 + 600000, T0 + 600005);
	assert_in_range(h.at[16], T0 + 700000, T0 + 700005);
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
	drive(T0 + 1000000);
	assert_int_equal(h.n, 0);
	/* The bucket was not spent by the empty wake-up. */
	for (int i = 0; i < NN; i++)
		push(i, T0 + 1000000);
	drive(T0 + 1000000);
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

	/* A full bucket, yet pushing grants nothing: on_grant asserts it is not inside push. */
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

	/* A node pushed again from its own grant is granted again by the timer, paying a token. */
	h.requeue_id = 2;
	push(2, T0 + 6000);
	assert_int_equal(tq_run(&h.tq, T0 + 6000), 2);
	assert_int_equal(h.n, 4);
	assert_int_equal(h.order[2], 2);
	assert_int_equal(h.order[3], 2);
}

/* settled: only when the last attempt in flight ends with nobody waiting. */
static void test_settled(void **state)
{
	(void)state;

	h.cq.settled = on_settled;
	for (int i = 0; i < 3; i++)
		push(i, T0);
	assert_int_equal(tq_run(&h.tq, T0), 1);
	assert_int_equal(h.cq.inflight, 3);
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
	/* A release with nothing in flight (a grant handed back twice) settles nothing again. */
	connq_release(&h.cq, T0 + 50);
	assert_int_equal(h.cq.inflight, 0);
	assert_int_equal(h.settled, 1);
}

static void test_set_rate(void **state)
{
	(void)state;

	assert_true(h.cq.rate == 10);
	connq_set_rate(&h.cq, 0.25); /* below one: clamped */
	assert_true(h.cq.rate == 1);
	assert_true(h.cq.tokens <= 1.0);
	for (int i = 0; i < 3; i++)
		push(i, T0);
	drive(T0 + 10000000);
	assert_int_equal(h.n, 3);
	assert_int_equal(h.at[0], T0);
	assert_in_range(h.at[1], T0 + 1000000, T0 + 1000005);
	assert_in_range(h.at[2], T0 + 2000000, T0 + 2000005);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_fifo, setup1000, teardown),
	    cmocka_unit_test_setup_teardown(test_rate_grant_times, setup10, teardown),
	    cmocka_unit_test_setup_teardown(test_bucket_refills_to_burst_only, setup10, teardown),
	    cmocka_unit_test_setup_teardown(test_partial_refill, setup10, teardown),
	    cmocka_unit_test_setup_teardown(test_remove_while_queued, setup10, teardown),
	    cmocka_unit_test_setup_teardown(test_remove_all_then_timer, setup1000, teardown),
	    cmocka_unit_test_setup_teardown(test_push_twice, setup10, teardown),
	    cmocka_unit_test_setup_teardown(test_grants_only_from_timer, setup10, teardown),
	    cmocka_unit_test_setup_teardown(test_set_rate, setup10, teardown),
	    cmocka_unit_test_setup_teardown(test_settled, setup10, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
