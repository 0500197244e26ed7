/*
 * A TQ_ARITY-ary min-heap of {deadline, timer} pairs; each timer knows its slot so cancel and
 * re-arm are O(log n). Sifting reads only the array: a moved entry's timer is written (its
 * slot) but never read, and a store to cold memory holds up the loop far less than a load
 * that the next comparison waits for.
 */
#include "wsbeat/timerq.h"

#include <stdlib.h>

#define PARENT(i)      (((i)-1) / TQ_ARITY)
#define FIRST_CHILD(i) (TQ_ARITY * (i) + 1)

void tq_init(struct timerq *q, int64_t slack_us, tq_rearm_fn rearm, void *arg)
{
	*q = (struct timerq){
	    .slack_us = slack_us, .announced_us = TQ_NEVER, .rearm = rearm, .rearm_arg = arg};
}

void tq_fini(struct timerq *q)
{
	for (size_t i = 0; i < q->n; i++)
		q->heap[i].t->slot = 0;
	free(q->heap);
	q->heap = NULL;
	q->n = q->cap = q->reserved = 0;
}

int tq_reserve(struct timerq *q, size_t n)
{
	size_t want = q->reserved + n;
	struct tq_entry *h;

	if (want > q->cap) {
		/* Grow geometrically: thousands of feeds each reserve a few timers. */
		if (want < 2 * q->cap)
			want = 2 * q->cap;
		h = realloc(q->heap, want * sizeof(*h));
		if (!h)
			return -1;
		q->heap = h;
		q->cap = want;
	}
	q->reserved += n;
	return 0;
}

void tq_unreserve(struct timerq *q, size_t n)
{
	q->reserved = n > q->reserved ? 0 : q->reserved - n;
}

void tq_timer_init(struct tq_timer *t, tq_cb cb)
{
	*t = (struct tq_timer){.cb = cb};
}

static void place(struct timerq *q, size_t i, struct tq_entry e)
{
	q->heap[i] = e;
	e.t->slot = i + 1;
}

/* Puts e in the hole at i, or above it. */
static void sift_up(struct timerq *q, size_t i, struct tq_entry e)
{
	while (i > 0) {
		size_t parent = PARENT(i);
		if (q->heap[parent].deadline_us <= e.deadline_us)
			break;
		place(q, i, q->heap[parent]);
		i = parent;
	}
	place(q, i, e);
}

/* The earliest child of i, or 0 when i is a leaf. */
static size_t earliest_child(const struct timerq *q, size_t i)
{
	size_t c = FIRST_CHILD(i), end = c + TQ_ARITY, best = c;

	if (c >= q->n)
		return 0;
	if (end > q->n)
		end = q->n;
	for (c++; c < end; c++)
		if (q->heap[c].deadline_us < q->heap[best].deadline_us)
			best = c;
	return best;
}

/* Puts e in the hole at i, or below it. */
static void sift_down(struct timerq *q, size_t i, struct tq_entry e)
{
	size_t c;

	while ((c = earliest_child(q, i)) != 0 && q->heap[c].deadline_us < e.deadline_us) {
		place(q, i, q->heap[c]);
		i = c;
	}
	place(q, i, e);
}

/* Fills the hole at i with e, whichever way the heap property sends it. */
static void sift(struct timerq *q, size_t i, struct tq_entry e)
{
	if (i > 0 && q->heap[PARENT(i)].deadline_us > e.deadline_us)
		sift_up(q, i, e);
	else
		sift_down(q, i, e);
}

/* Tells the driver when the earliest wake-up moved earlier than what it is armed for. */
static void announce(struct timerq *q)
{
	int64_t wake = tq_next_wake(q);

	if (wake < q->announced_us) {
		q->announced_us = wake;
		if (q->rearm)
			q->rearm(q, wake, q->rearm_arg);
	}
}

void tq_arm(struct timerq *q, struct tq_timer *t, int64_t deadline_us)
{
	struct tq_entry e = {deadline_us, t};

	t->deadline_us = deadline_us;
	if (tq_armed(t)) {
		sift(q, t->slot - 1, e);
	} else {
		/* Callers reserve room up front; running out is a programming error. */
		if (q->n == q->cap)
			abort();
		sift_up(q, q->n++, e);
	}
	announce(q);
}

void tq_cancel(struct timerq *q, struct tq_timer *t)
{
	struct tq_entry last;
	size_t i;

	if (!tq_armed(t))
		return;
	i = t->slot - 1;
	t->slot = 0;
	/* The last entry fills the hole. */
	last = q->heap[--q->n];
	if (i < q->n)
		sift(q, i, last);
	/* A later earliest deadline needs no announcement: the driver wakes early and re-arms. */
}

int64_t tq_next_wake(const struct timerq *q)
{
	if (q->n == 0)
		return TQ_NEVER;
	return q->heap[0].deadline_us + q->slack_us;
}

size_t tq_run(struct timerq *q, int64_t now_us)
{
	size_t fired = 0;

	while (q->n > 0 && q->heap[0].deadline_us <= now_us) {
		struct tq_timer *t = q->heap[0].t;
		tq_cancel(q, t);
		fired++;
		t->cb(t, now_us);
	}
	return fired;
}

size_t tq_driver_fired(struct timerq *q, int64_t now_us)
{
	size_t fired;

	/* Hold announcements while callbacks re-arm: one re-arm of the driver at the end. */
	q->announced_us = INT64_MIN;
	fired = tq_run(q, now_us);
	q->announced_us = TQ_NEVER;
	announce(q);
	return fired;
}
