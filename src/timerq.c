/* A binary min-heap of deadlines; each timer knows its slot so cancel and re-arm are O(log n). */
#include "wsbeat/timerq.h"

#include <stdlib.h>

void tq_init(struct timerq *q, int64_t slack_us, tq_rearm_fn rearm, void *arg)
{
	*q = (struct timerq){
	    .slack_us = slack_us, .announced_us = TQ_NEVER, .rearm = rearm, .rearm_arg = arg};
}

void tq_fini(struct timerq *q)
{
	for (size_t i = 0; i < q->n; i++)
		q->heap[i]->slot = 0;
	free(q->heap);
	q->heap = NULL;
	q->n = q->cap = q->reserved = 0;
}

int tq_reserve(struct timerq *q, size_t n)
{
	size_t want = q->reserved + n;
	struct tq_timer **h;

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

static void place(struct timerq *q, size_t i, struct tq_timer *t)
{
	q->heap[i] = t;
	t->slot = i + 1;
}

static void sift_up(struct timerq *q, size_t i)
{
	struct tq_timer *t = q->heap[i];

	while (i > 0) {
		size_t parent = (i - 1) / 2;
		if (q->heap[parent]->deadline_us <= t->deadline_us)
			break;
		place(q, i, q->heap[parent]);
		i = parent;
	}
	place(q, i, t);
}

static void sift_down(struct timerq *q, size_t i)
{
	struct tq_timer *t = q->heap[i];

	for (;;) {
		size_t c = 2 * i + 1;
		if (c >= q->n)
			break;
		if (c + 1 < q->n && q->heap[c + 1]->deadline_us < q->heap[c]->deadline_us)
			c++;
		if (t->deadline_us <= q->heap[c]->deadline_us)
			break;
		place(q, i, q->heap[c]);
		i = c;
	}
	place(q, i, t);
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
	if (tq_armed(t)) {
		size_t i = t->slot - 1;
		int64_t old = t->deadline_us;
		t->deadline_us = deadline_us;
		if (deadline_us < old)
			sift_up(q, i);
		else
			sift_down(q, i);
	} else {
		/* Callers reserve room up front; running out is a programming error. */
		if (q->n == q->cap)
			abort();
		t->deadline_us = deadline_us;
		place(q, q->n++, t);
		sift_up(q, q->n - 1);
	}
	announce(q);
}

void tq_cancel(struct timerq *q, struct tq_timer *t)
{
	size_t i;
	struct tq_timer *last;

	if (!tq_armed(t))
		return;
	i = t->slot - 1;
	t->slot = 0;
	last = q->heap[--q->n];
	if (i == q->n)
		return;
	q->heap[i] = last;
	last->slot = i + 1;
	if (i > 0 && q->heap[(i - 1) / 2]->deadline_us > last->deadline_us)
		sift_up(q, i);
	else
		sift_down(q, i);
	/* A later earliest deadline needs no announcement: the driver wakes early and re-arms. */
}

int64_t tq_next_wake(const struct timerq *q)
{
	if (q->n == 0)
		return TQ_NEVER;
	return q->heap[0]->deadline_us + q->slack_us;
}

size_t tq_run(struct timerq *q, int64_t now_us)
{
	size_t fired = 0;

	while (q->n > 0 && q->heap[0]->deadline_us <= now_us) {
		struct tq_timer *t = q->heap[0];
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
