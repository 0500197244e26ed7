/* Unit tests for timerq: order, cancel, re-arm, callbacks that change the heap, slack, the
 * driver's re-arm hook, and long random runs against a reference model (one with callbacks
 * that arm and cancel). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "wsbeat/rng.h"
#include "wsbeat/timerq.h"
#include "wsbeat/util.h"

#define MAXT 1024

/* A timer that records when and in which order it fired. */
struct rec_timer {
	struct tq_timer t;
	int id;
	int64_t fired_at;
	int64_t due; /* deadline at the moment it fired */
	int n_fired;
};

/* Everything a test observes, in one place the callbacks can reach. */
static struct {
	struct timerq *q;
	int order[4 * MAXT];
	int64_t due[4 * MAXT];
	size_t n;
	/* For the callback tests: what the callback of each id does. */
	struct rec_timer *cancel_on_fire[MAXT];
	struct rec_timer *arm_on_fire[MAXT];
	int64_t arm_delta[MAXT];
	int self_repeat[MAXT];
} obs;

static void on_fire(struct tq_timer *t, int64_t now_us)
{
	struct rec_timer *r = container_of(t, struct rec_timer, t);

	assert_false(tq_armed(t));
	r->fired_at = now_us;
	r->due = t->deadline_us;
	r->n_fired++;
	obs.order[obs.n] = r->id;
	obs.due[obs.n++] = t->deadline_us;
	if (obs.cancel_on_fire[r->id])
		tq_cancel(obs.q, &obs.cancel_on_fire[r->id]->t);
	if (obs.arm_on_fire[r->id])
		tq_arm(obs.q, &obs.arm_on_fire[r->id]->t, now_us + obs.arm_delta[r->id]);
	if (obs.self_repeat[r->id] > 0) {
		obs.self_repeat[r->id]--;
		tq_arm(obs.q, t, now_us);
	}
}

static struct rec_timer timers[MAXT];

static int setup(void **state)
{
	static struct timerq q;
	(void)state;

	memset(&obs, 0, sizeof(obs));
	for (int i = 0; i < MAXT; i++) {
		tq_timer_init(&timers[i].t, on_fire);
		timers[i].id = i;
		timers[i].fired_at = -1;
		timers[i].n_fired = 0;
	}
	tq_init(&q, 0, NULL, NULL);
	assert_int_equal(tq_reserve(&q, MAXT), 0);
	obs.q = &q;
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	tq_fini(obs.q);
	return 0;
}

/* The heap property, every timer's back-pointer and the entries' copies of the deadlines,
 * checked from the outside. */
static void check_heap(const struct timerq *q)
{
	assert_true(q->n <= q->cap);
	for (size_t i = 0; i < q->n; i++) {
		assert_int_equal(q->heap[i].t->slot, i + 1);
		assert_int_equal(q->heap[i].deadline_us, q->heap[i].t->deadline_us);
		if (i > 0)
			assert_true(q->heap[(i - 1) / TQ_ARITY].deadline_us <=
			            q->heap[i].deadline_us);
	}
}

static void assert_order_nondecreasing(void)
{
	for (size_t i = 1; i < obs.n; i++)
		assert_true(obs.due[i - 1] <= obs.due[i]);
}

static void test_empty(void **state)
{
	(void)state;
	assert_int_equal(tq_next_wake(obs.q), TQ_NEVER);
	assert_int_equal(tq_run(obs.q, INT64_MAX - 1), 0);
	assert_false(tq_armed(&timers[0].t));
	tq_cancel(obs.q, &timers[0].t); /* not armed: a no-op */
	assert_int_equal(obs.q->n, 0);
}

static void test_random_order(void **state)
{
	struct rng rng;
	int64_t maxd = 0;
	(void)state;

	rng_seed(&rng, 7);
	for (int i = 0; i < MAXT; i++) {
		/* Few distinct values, so many deadlines are equal. */
		int64_t d = 1000 + (int64_t)(rng_next(&rng) % 500) * 10;
		tq_arm(obs.q, &timers[i].t, d);
		maxd = d > maxd ? d : maxd;
		assert_true(tq_armed(&timers[i].t));
	}
	check_heap(obs.q);
	/* Halfway: exactly the due ones fire, in order, each at or after its deadline. */
	assert_int_equal(tq_run(obs.q, 3500) + obs.q->n, MAXT);
	for (int i = 0; i < MAXT; i++)
		assert_int_equal(timers[i].n_fired, timers[i].t.deadline_us <= 3500);
	check_heap(obs.q);
	tq_run(obs.q, maxd);
	assert_int_equal(obs.n, MAXT);
	assert_int_equal(obs.q->n, 0);
	assert_int_equal(tq_next_wake(obs.q), TQ_NEVER);
	assert_order_nondecreasing();
	for (int i = 0; i < MAXT; i++) {
		assert_int_equal(timers[i].n_fired, 1);
		assert_true(timers[i].fired_at >= timers[i].due);
	}
}

static void arm_sorted(int count)
{
	/* Arming 1..count in order leaves heap[i] holding deadline i + 1. */
	for (int i = 0; i < count; i++)
		tq_arm(obs.q, &timers[i].t, (i + 1) * 100);
	for (int i = 0; i < count; i++)
		assert_ptr_equal(obs.q->heap[i].t, &timers[i].t);
}

static void test_cancel_root_leaf_middle(void **state)
{
	(void)state;

	arm_sorted(15);
	tq_cancel(obs.q, obs.q->heap[0].t); /* root: timer 0 */
	check_heap(obs.q);
	assert_false(tq_armed(&timers[0].t));
	assert_int_equal(tq_next_wake(obs.q), 200);
	tq_cancel(obs.q, &timers[14].t); /* the last leaf */
	check_heap(obs.q);
	tq_cancel(obs.q, &timers[3].t); /* an inner node with children */
	check_heap(obs.q);
	tq_cancel(obs.q, &timers[9].t); /* a leaf that is not last */
	check_heap(obs.q);
	tq_cancel(obs.q, &timers[9].t); /* twice: a no-op */
	assert_int_equal(obs.q->n, 11);

	assert_int_equal(tq_run(obs.q, 10000), 11);
	assert_order_nondecreasing();
	for (int i = 0; i < 15; i++)
		assert_int_equal(timers[i].n_fired, !(i == 0 || i == 14 || i == 3 || i == 9));
}

static void test_cancel_moves_last_up(void **state)
{
	/* Node 1 holds a late deadline over late children; the last entry, early, is node 2's
	 * first child. Arming in slot order with each deadline after its parent's builds that
	 * shape without moving anything. */
	enum { LATE = 1, EARLY = 2, LAST = TQ_ARITY * EARLY + 1 };
	int64_t d[LAST + 1];
	(void)state;

	for (int i = 0; i <= LAST; i++)
		d[i] = i > TQ_ARITY ? 100 + i : 2 + i;
	d[0] = 1;
	d[LATE] = 100;
	d[LAST] = d[EARLY] + 1;
	for (int i = 0; i <= LAST; i++)
		tq_arm(obs.q, &timers[i].t, d[i]);
	for (int i = 0; i <= LAST; i++)
		assert_int_equal(timers[i].t.slot, i + 1);
	check_heap(obs.q);
	/* Cancelling a child of node 1 moves the last entry there, below a later parent: it
	 * must go up and take node 1's place. */
	tq_cancel(obs.q, &timers[TQ_ARITY * LATE + 1].t);
	check_heap(obs.q);
	assert_int_equal(timers[LAST].t.slot, LATE + 1);
	assert_int_equal(timers[LATE].t.slot, TQ_ARITY * LATE + 2);
	tq_run(obs.q, 1000);
	assert_int_equal(obs.n, LAST);
	assert_order_nondecreasing();
}

static void test_rearm_earlier_later(void **state)
{
	(void)state;

	tq_arm(obs.q, &timers[0].t, 100);
	tq_arm(obs.q, &timers[1].t, 200);
	tq_arm(obs.q, &timers[2].t, 300);
	tq_arm(obs.q, &timers[2].t, 50); /* earlier: becomes the root */
	assert_int_equal(tq_next_wake(obs.q), 50);
	assert_int_equal(obs.q->n, 3);
	check_heap(obs.q);
	tq_arm(obs.q, &timers[2].t, 400); /* later again */
	assert_int_equal(tq_next_wake(obs.q), 100);
	tq_arm(obs.q, &timers[0].t, 250); /* the root moves later */
	assert_int_equal(tq_next_wake(obs.q), 200);
	tq_arm(obs.q, &timers[1].t, 200); /* same deadline */
	check_heap(obs.q);
	assert_int_equal(tq_run(obs.q, 1000), 3);
	assert_int_equal(obs.n, 3);
	assert_int_equal(obs.order[0], 1);
	assert_int_equal(obs.order[1], 0);
	assert_int_equal(obs.order[2], 2);
	assert_int_equal(timers[0].due, 250);
	assert_int_equal(timers[2].due, 400);
}

static void test_callbacks_change_heap(void **state)
{
	(void)state;

	tq_arm(obs.q, &timers[0].t, 100);
	tq_arm(obs.q, &timers[1].t, 150);  /* cancelled by 0 before it can fire */
	tq_arm(obs.q, &timers[2].t, 5000); /* moved by 0 to now: fires in this run */
	tq_arm(obs.q, &timers[3].t, 120);
	tq_arm(obs.q, &timers[4].t, 130);  /* re-arms itself later: not in this run */
	tq_arm(obs.q, &timers[5].t, 140);  /* re-arms itself at now twice */
	tq_arm(obs.q, &timers[6].t, 9000); /* untouched */
	obs.cancel_on_fire[0] = &timers[1];
	obs.arm_on_fire[0] = &timers[2];
	obs.arm_delta[0] = 0;
	obs.arm_on_fire[4] = &timers[4];
	obs.arm_delta[4] = 10;
	obs.self_repeat[5] = 2;

	/* 0, 3, 4, 5 by deadline; then at now = 200: 2 (moved by 0) and 5 twice more. */
	assert_int_equal(tq_run(obs.q, 200), 7);
	check_heap(obs.q);
	assert_int_equal(timers[0].n_fired, 1);
	assert_int_equal(timers[1].n_fired, 0);
	assert_false(tq_armed(&timers[1].t));
	assert_int_equal(timers[2].n_fired, 1);
	assert_int_equal(timers[2].due, 200);
	assert_int_equal(timers[3].n_fired, 1);
	assert_int_equal(timers[4].n_fired, 1);
	assert_true(tq_armed(&timers[4].t));
	assert_int_equal(timers[4].t.deadline_us, 210);
	assert_int_equal(timers[5].n_fired, 3);
	assert_false(tq_armed(&timers[5].t));
	assert_true(tq_armed(&timers[6].t));
	assert_int_equal(obs.q->n, 2);
	/* Order: 0 (100), 3 (120), 4 (130), 5 (140), then 2 and 5 again at 200 in some order. */
	assert_int_equal(obs.order[0], 0);
	assert_int_equal(obs.order[1], 3);
	assert_int_equal(obs.order[2], 4);
	assert_int_equal(obs.order[3], 5);
	assert_order_nondecreasing();
}

static void test_slack(void **state)
{
	(void)state;

	tq_fini(obs.q);
	tq_init(obs.q, 2000, NULL, NULL);
	assert_int_equal(tq_reserve(obs.q, 8), 0);
	tq_arm(obs.q, &timers[0].t, 10000);
	tq_arm(obs.q, &timers[1].t, 11000);
	tq_arm(obs.q, &timers[2].t, 13000);
	assert_int_equal(tq_next_wake(obs.q), 12000);
	/* Never before the deadline, even with slack. */
	assert_int_equal(tq_run(obs.q, 9999), 0);
	assert_int_equal(tq_driver_fired(obs.q, tq_next_wake(obs.q)), 2);
	assert_int_equal(timers[0].fired_at, 12000);
	assert_int_equal(timers[1].fired_at, 12000);
	assert_int_equal(timers[2].n_fired, 0);
	assert_int_equal(tq_next_wake(obs.q), 15000);
	assert_int_equal(tq_run(obs.q, 12999), 0);
	assert_int_equal(tq_run(obs.q, 13000), 1);
	assert_int_equal(tq_next_wake(obs.q), TQ_NEVER);
}

/* The driver: records what the queue asks it to arm. */
static struct {
	int calls;
	int64_t wake[64];
	bool in_run;
	int calls_in_run;
} drv;

static void on_rearm(struct timerq *q, int64_t wake_us, void *arg)
{
	assert_ptr_equal(q, obs.q);
	assert_ptr_equal(arg, &drv);
	if (drv.in_run)
		drv.calls_in_run++;
	drv.wake[drv.calls++ % 64] = wake_us;
}

static void on_fire_arm_many(struct tq_timer *t, int64_t now_us)
{
	(void)t;
	drv.in_run = true;
	/* Each of these is earlier than the one before: would be an announcement each. */
	for (int i = 10; i < 20; i++)
		tq_arm(obs.q, &timers[i].t, now_us + 1000 - i * 10);
	tq_arm(obs.q, &timers[20].t, now_us); /* due now: fires in this run */
	/* Deadlines already past, even before the wake-up the driver was last armed for: each
	 * is earlier than the last, and all fire in this run. */
	for (int i = 22; i < 25; i++)
		tq_arm(obs.q, &timers[i].t, 600 - (i - 22) * 10);
	drv.in_run = false;
}

static void test_rearm_hook(void **state)
{
	(void)state;

	memset(&drv, 0, sizeof(drv));
	tq_fini(obs.q);
	tq_init(obs.q, 500, on_rearm, &drv);
	assert_int_equal(tq_reserve(obs.q, 32), 0);

	tq_arm(obs.q, &timers[0].t, 1000);
	assert_int_equal(drv.calls, 1);
	assert_int_equal(drv.wake[0], 1500); /* deadline + slack */
	tq_arm(obs.q, &timers[1].t, 2000);   /* later: no call */
	assert_int_equal(drv.calls, 1);
	tq_arm(obs.q, &timers[2].t, 800);
	assert_int_equal(drv.calls, 2);
	assert_int_equal(drv.wake[1], 1300);
	tq_cancel(obs.q, &timers[2].t); /* the earliest moves later: no call */
	assert_int_equal(drv.calls, 2);
	tq_arm(obs.q, &timers[0].t, 900); /* earlier than the queue's, not than announced */
	assert_int_equal(drv.calls, 2);
	tq_arm(obs.q, &timers[0].t, 700);
	assert_int_equal(drv.calls, 3);
	assert_int_equal(drv.wake[2], 1200);
	tq_arm(obs.q, &timers[0].t, 3000); /* later: no call */
	assert_int_equal(drv.calls, 3);

	/* Driver fires at 2500: timer 1 (2000) is due; its callback arms 14 timers. */
	timers[1].t.cb = on_fire_arm_many;
	timers[20].t.cb = on_fire;
	assert_int_equal(tq_driver_fired(obs.q, 2500), 5);
	assert_int_equal(drv.calls_in_run, 0);
	assert_int_equal(drv.calls, 4);
	/* Earliest now: timer 0 at 3000 (the new ones start at 3310), plus slack. */
	assert_int_equal(drv.wake[3], 3500);
	assert_int_equal(tq_next_wake(obs.q), 3500);

	/* After the driver's re-arm, only an earlier wake-up is announced again. */
	tq_arm(obs.q, &timers[21].t, 3100);
	assert_int_equal(drv.calls, 4);
	tq_arm(obs.q, &timers[21].t, 2900);
	assert_int_equal(drv.calls, 5);
	assert_int_equal(drv.wake[4], 3400);

	/* A driver wake-up that leaves the queue empty arms nothing. */
	for (int i = 0; i < MAXT; i++)
		tq_cancel(obs.q, &timers[i].t);
	tq_arm(obs.q, &timers[0].t, 3600);
	assert_int_equal(drv.calls, 5);
	timers[0].t.cb = on_fire;
	assert_int_equal(tq_driver_fired(obs.q, 4200), 1);
	assert_int_equal(drv.calls, 5);
	/* Nothing armed, so anything is earlier than "never". */
	tq_arm(obs.q, &timers[0].t, 9000);
	assert_int_equal(drv.calls, 6);
	assert_int_equal(drv.wake[5], 9500);
}

/* A reference model: which of the first n timers are armed and at what deadline. */
struct model {
	int n;
	bool armed[MAXT];
	int64_t deadline[MAXT];
};

static void check_against_model(const struct model *m)
{
	size_t n = 0;
	int64_t min = INT64_MAX;

	check_heap(obs.q);
	for (int i = 0; i < m->n; i++) {
		assert_int_equal(tq_armed(&timers[i].t), m->armed[i]);
		if (!m->armed[i])
			continue;
		n++;
		assert_int_equal(timers[i].t.deadline_us, m->deadline[i]);
		min = m->deadline[i] < min ? m->deadline[i] : min;
	}
	assert_int_equal(obs.q->n, n);
	assert_int_equal(tq_next_wake(obs.q), n ? min + obs.q->slack_us : TQ_NEVER);
}

static void model_run(struct model *m, int64_t now)
{
	size_t expect = 0, before = obs.n;

	for (int i = 0; i < m->n; i++)
		expect += m->armed[i] && m->deadline[i] <= now;
	assert_int_equal(tq_run(obs.q, now), expect);
	assert_int_equal(obs.n - before, expect);
	for (size_t j = before; j < obs.n; j++) {
		int id = obs.order[j];
		assert_true(m->armed[id]);
		assert_int_equal(obs.due[j], m->deadline[id]);
		assert_true(obs.due[j] <= now);
		if (j > before)
			assert_true(obs.due[j - 1] <= obs.due[j]);
		m->armed[id] = false;
	}
	obs.n = 0;
}

static void test_random_ops_against_model(void **state)
{
	static struct model m = {.n = 64};
	struct rng rng;
	int64_t now = 0;
	(void)state;

	tq_fini(obs.q);
	tq_init(obs.q, 3, NULL, NULL);
	assert_int_equal(tq_reserve(obs.q, 64), 0);
	rng_seed(&rng, 12345);
	for (int op = 0; op < 10000; op++) {
		unsigned kind = (unsigned)(rng_next(&rng) % 10);
		int id = (int)(rng_next(&rng) % 64);

		if (kind < 5) {
			int64_t d = now + (int64_t)(rng_next(&rng) % 200) - 20;
			tq_arm(obs.q, &timers[id].t, d);
			m.armed[id] = true;
			m.deadline[id] = d;
		} else if (kind < 8) {
			tq_cancel(obs.q, &timers[id].t);
			m.armed[id] = false;
		} else {
			now += (int64_t)(rng_next(&rng) % 60);
			model_run(&m, now);
		}
		check_against_model(&m);
	}
	model_run(&m, now + 1000);
	check_against_model(&m);
	assert_int_equal(obs.q->n, 0);
}

/*
 * The randomized run with callbacks that act: the state the callback needs. The model is kept
 * up to date by every arm and cancel, inside callbacks too, so each firing can be checked
 * against what must fire next.
 */
static struct {
	struct model m;
	struct rng rng;
	int64_t now;
	size_t fired;    /* firings in the current tq_run */
	int past_budget; /* re-arms at or before now left in this run: keeps every run finite */
} rnd;

/* A deadline around now; at or before now only while the run's budget lasts. */
static int64_t rnd_deadline(int64_t now, int64_t span, int64_t back)
{
	int64_t d = now + (int64_t)(rng_next(&rnd.rng) % (uint64_t)span) - back;

	if (d <= now && rnd.past_budget-- <= 0)
		d = now + 1 + (int64_t)(rng_next(&rnd.rng) % (uint64_t)span);
	return d;
}

static void rnd_arm(int id, int64_t d)
{
	tq_arm(obs.q, &timers[id].t, d);
	rnd.m.armed[id] = true;
	rnd.m.deadline[id] = d;
	assert_true(tq_armed(&timers[id].t));
}

static void rnd_cancel(int id)
{
	tq_cancel(obs.q, &timers[id].t);
	rnd.m.armed[id] = false;
	assert_false(tq_armed(&timers[id].t));
}

/*
 * A firing must be of an arming the model holds (so each arming fires at most once), due, at
 * its deadline as armed, and no armed timer may be due before it (deadline order, also for
 * timers armed into the past during this run).
 */
static void on_fire_random(struct tq_timer *t, int64_t now_us)
{
	struct rec_timer *r = container_of(t, struct rec_timer, t);
	int acts = (int)(rng_next(&rnd.rng) % 4);

	assert_false(tq_armed(t));
	assert_int_equal(now_us, rnd.now);
	assert_true(rnd.m.armed[r->id]);
	assert_int_equal(t->deadline_us, rnd.m.deadline[r->id]);
	assert_true(t->deadline_us <= now_us);
	for (int i = 0; i < rnd.m.n; i++)
		assert_false(rnd.m.armed[i] && rnd.m.deadline[i] < t->deadline_us);
	rnd.m.armed[r->id] = false;
	r->n_fired++;
	rnd.fired++;

	/* What feed callbacks do: re-arm themselves (the beat), arm, move or cancel others. */
	while (acts-- > 0) {
		unsigned kind = (unsigned)(rng_next(&rnd.rng) % 8);
		int id = (int)(rng_next(&rnd.rng) % (uint64_t)rnd.m.n);

		if (kind < 3)
			rnd_arm(r->id, rnd_deadline(now_us, 400, 40));
		else if (kind < 6)
			rnd_arm(id, rnd_deadline(now_us, 400, 40));
		else
			rnd_cancel(id);
	}
	if (rng_next(&rnd.rng) % 16 == 0) {
		/* Re-armed, then cancelled within the same callback: it must not fire again. */
		rnd_arm(r->id, rnd_deadline(now_us, 100, 50));
		rnd_cancel(r->id);
	}
}

static void rnd_run(void)
{
	size_t fired;

	rnd.fired = 0;
	rnd.past_budget = 20;
	fired = tq_run(obs.q, rnd.now);
	assert_int_equal(fired, rnd.fired);
	/* Every arming that was due has fired. */
	for (int i = 0; i < rnd.m.n; i++)
		assert_false(rnd.m.armed[i] && rnd.m.deadline[i] <= rnd.now);
}

static void test_random_callbacks_against_model(void **state)
{
	size_t total = 0;
	(void)state;

	memset(&rnd, 0, sizeof(rnd));
	rnd.m.n = 300; /* five levels of a 4-ary heap, nine of a binary one */
	rnd.now = 1000000;
	rng_seed(&rnd.rng, 20261126);
	for (int i = 0; i < rnd.m.n; i++)
		timers[i].t.cb = on_fire_random;
	for (int op = 0; op < 40000; op++) {
		/* Alternate filling and draining phases so the heap's size sweeps its range. */
		bool filling = (op / 3000) % 2 == 0;
		unsigned kind = (unsigned)(rng_next(&rnd.rng) % 10);
		int id = (int)(rng_next(&rnd.rng) % (uint64_t)rnd.m.n);

		rnd.past_budget = 1;
		if (kind < (filling ? 6u : 2u)) {
			rnd_arm(id, rnd_deadline(rnd.now, 500, 20));
		} else if (kind < (filling ? 7u : 6u)) {
			rnd_cancel(id);
		} else {
			rnd.now += (int64_t)(rng_next(&rnd.rng) % 40);
			rnd_run();
			total += rnd.fired;
		}
		check_against_model(&rnd.m);
	}
	rnd.now += 1000;
	rnd_run();
	/* Callbacks may still have armed timers past the last run. */
	check_against_model(&rnd.m);
	/* Enough happened for the run to mean something. */
	assert_true(total + rnd.fired > 20000);
}

/* Growing the reservation while timers are armed keeps them, in order, in the new block. */
static void test_reserve_grows_armed_heap(void **state)
{
	static struct timerq q;
	int growths = 0;
	(void)state;

	tq_fini(obs.q);
	tq_init(&q, 0, NULL, NULL);
	obs.q = &q;
	for (int i = 0; i < MAXT; i++) {
		size_t cap = q.cap;
		assert_int_equal(tq_reserve(&q, 1), 0);
		growths += q.n > 0 && q.cap != cap; /* the block moved with timers armed in it */
		tq_arm(&q, &timers[i].t, 1000 + (int64_t)((i * 7919) % MAXT));
		check_heap(&q);
	}
	assert_true(growths >= 5);
	tq_run(&q, 1000 + MAXT);
	assert_int_equal(obs.n, MAXT);
	assert_order_nondecreasing();
}

static void test_fini_disarms(void **state)
{
	(void)state;

	tq_arm(obs.q, &timers[0].t, 10);
	tq_arm(obs.q, &timers[1].t, 20);
	tq_fini(obs.q);
	assert_false(tq_armed(&timers[0].t));
	assert_false(tq_armed(&timers[1].t));
	/* A finished queue can be initialised again. */
	tq_init(obs.q, 0, NULL, NULL);
	assert_int_equal(tq_reserve(obs.q, 2), 0);
	tq_arm(obs.q, &timers[0].t, 10);
	assert_int_equal(tq_next_wake(obs.q), 10);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_empty, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_random_order, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_cancel_root_leaf_middle, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_cancel_moves_last_up, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_rearm_earlier_later, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_callbacks_change_heap, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_slack, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_rearm_hook, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_random_ops_against_model, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_random_callbacks_against_model, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_fini_disarms, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_reserve_grows_armed_heap, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
