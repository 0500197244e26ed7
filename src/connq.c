/* Token-bucket pacing of connection attempts across all feeds. */
#include "wsbeat/connq.h"

#include "wsbeat/util.h"

static void refill(struct connq *q, int64_t now_us)
{
	if (now_us > q->last_us) {
		q->tokens += q->rate * (double)(now_us - q->last_us) / 1e6;
		if (q->tokens > q->burst)
			q->tokens = q->burst;
		q->last_us = now_us;
	}
}

static void on_timer(struct tq_timer *t, int64_t now_us)
{
	struct connq *q = container_of(t, struct connq, timer);

	refill(q, now_us);
	while (q->head.next != &q->head && q->tokens >= 1.0 && q->inflight < q->max_inflight) {
		struct connq_node *n = q->head.next;
		connq_remove(q, n);
		q->tokens -= 1.0;
		q->inflight++;
		q->grant(q, n, now_us);
	}
	/* When attempts in flight are the limit, connq_release wakes the queue instead. */
	if (q->head.next != &q->head && q->inflight < q->max_inflight) {
		/* Wake when the next whole token has accrued. */
		int64_t wait = (int64_t)((1.0 - q->tokens) * 1e6 / q->rate) + 1;
		tq_arm(q->tq, &q->timer, now_us + wait);
	}
}

int connq_init(struct connq *q, struct timerq *tq, double rate, connq_grant_fn grant,
               int64_t now_us)
{
	*q = (struct connq){
	    .tq = tq, .grant = grant, .last_us = now_us, .max_inflight = CONNQ_MAX_INFLIGHT};
	q->head.next = q->head.prev = &q->head;
	tq_timer_init(&q->timer, on_timer);
	connq_set_rate(q, rate);
	q->tokens = q->burst;
	return tq_reserve(tq, 1);
}

void connq_fini(struct connq *q)
{
	while (q->head.next != &q->head)
		connq_remove(q, q->head.next);
	tq_cancel(q->tq, &q->timer);
}

void connq_set_rate(struct connq *q, double rate)
{
	q->rate = rate < 1 ? 1 : rate;
	q->burst = q->rate;
	if (q->tokens > q->burst)
		q->tokens = q->burst;
}

void connq_push(struct connq *q, struct connq_node *n, int64_t now_us)
{
	if (connq_queued(n))
		return;
	n->prev = q->head.prev;
	n->next = &q->head;
	q->head.prev->next = n;
	q->head.prev = n;
	q->waiting++;
	if (!tq_armed(&q->timer))
		tq_arm(q->tq, &q->timer, now_us);
}

void connq_release(struct connq *q, int64_t now_us)
{
	bool last = q->inflight == 1;

	if (q->inflight > 0)
		q->inflight--;
	if (q->head.next != &q->head) {
		if (!tq_armed(&q->timer))
			tq_arm(q->tq, &q->timer, now_us);
	} else if (last && q->settled) {
		q->settled(q, now_us);
	}
}

void connq_remove(struct connq *q, struct connq_node *n)
{
	if (!connq_queued(n))
		return;
	n->prev->next = n->next;
	n->next->prev = n->prev;
	n->next = n->prev = NULL;
	q->waiting--;
}
