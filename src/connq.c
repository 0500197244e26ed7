/* Rolling-second limits on connection attempts, globally and per host entry. */
#include "wsbeat/connq.h"

#include <stdlib.h>
#include <string.h>

#include "wsbeat/util.h"

#define SECOND_US (1000 * 1000)
/* A window's ring starts this small and doubles up to its limit: a limit of a million per
 * second costs memory only when that many attempts really happen. */
#define WIN_CAP0 16

/* ---- windows: the attempts of the last span, oldest first ---- */

static int win_init(struct connq_window *w, uint32_t limit, int64_t span_us)
{
	*w = (struct connq_window){.limit = limit, .span_us = span_us};
	if (!limit)
		return 0;
	w->cap = limit < WIN_CAP0 ? limit : WIN_CAP0;
	w->ts = malloc(w->cap * sizeof(*w->ts));
	return w->ts ? 0 : -1;
}

static void win_fini(struct connq_window *w)
{
	free(w->ts);
	*w = (struct connq_window){0};
}

static int win_grow(struct connq_window *w)
{
	uint32_t cap = w->cap > w->limit / 2 ? w->limit : 2 * w->cap;
	int64_t *ts;

	if (cap <= w->cap || !(ts = malloc(cap * sizeof(*ts))))
		return -1;
	for (uint32_t i = 0; i < w->n; i++)
		ts[i] = w->ts[(w->head + i) % w->cap];
	free(w->ts);
	w->ts = ts;
	w->cap = cap;
	w->head = 0;
	return 0;
}

/* True when one more attempt fits in the window now; makes room for it. Out of memory it waits
 * for the oldest to leave instead: slower, never over the limit. */
static bool win_allows(struct connq_window *w, int64_t now_us)
{
	if (!w->limit)
		return true;
	while (w->n && w->ts[w->head] <= now_us - w->span_us) {
		w->head = (w->head + 1) % w->cap;
		w->n--;
	}
	if (w->n >= w->limit)
		return false;
	return w->n < w->cap || win_grow(w) == 0;
}

/* Records an attempt; win_allows said yes at this time. */
static void win_add(struct connq_window *w, int64_t now_us)
{
	if (!w->limit)
		return;
	w->ts[(w->head + w->n) % w->cap] = now_us;
	w->n++;
}

/* When the oldest attempt leaves the window (win_allows said no, so there is one). */
static int64_t win_next(const struct connq_window *w)
{
	return w->ts[w->head] + w->span_us;
}

/* ---- lists ---- */

static void node_unlink(struct connq_node *n)
{
	n->prev->next = n->next;
	n->next->prev = n->prev;
	n->next = n->prev = NULL;
}

static void node_append(struct connq_node *head, struct connq_node *n)
{
	n->prev = head->prev;
	n->next = head;
	head->prev->next = n;
	head->prev = n;
}

static bool list_empty(const struct connq_node *head)
{
	return head->next == head;
}

static void ready_append(struct connq *q, struct connq_host *h)
{
	h->ready = true;
	h->rnext = NULL;
	h->rprev = q->rtail;
	if (q->rtail)
		q->rtail->rnext = h;
	else
		q->rhead = h;
	q->rtail = h;
}

static void ready_unlink(struct connq *q, struct connq_host *h)
{
	if (!h->ready)
		return;
	if (h->rprev)
		h->rprev->rnext = h->rnext;
	else
		q->rhead = h->rnext;
	if (h->rnext)
		h->rnext->rprev = h->rprev;
	else
		q->rtail = h->rprev;
	h->rnext = h->rprev = NULL;
	h->ready = false;
}

static struct connq_host *host_at(const struct connq *q, unsigned idx)
{
	return &q->hosts.v[idx < q->hosts.n ? idx : 0];
}

const struct connq_host *connq_host_of(const struct connq *q, const struct connq_node *n)
{
	return host_at(q, n->host);
}

/* ---- hosts ---- */

/* The timer grants from its loop; anything else that makes a host ready wakes it. */
static void kick(struct connq *q, int64_t now_us)
{
	if (!q->granting && !tq_armed(&q->timer))
		tq_arm(q->tq, &q->timer, now_us);
}

/* Why h's next waiter cannot go now, or -1 when it can. */
static int host_block(struct connq_host *h, int64_t now_us)
{
	if (h->max_conns && h->conns >= h->max_conns)
		return CONNQ_WAIT_CONNS;
	return win_allows(&h->win, now_us) ? -1 : CONNQ_WAIT_RATE;
}

/* Tells the owner about the waiters not told yet: always the newest ones, so walk back from the
 * tail to the first of them. */
static void tell(struct connq *q, struct connq_host *h, enum connq_wait why, int64_t now_us)
{
	struct connq_node *n = h->head.prev;

	if (!q->wait)
		return;
	while (n != &h->head && !n->told)
		n = n->prev;
	for (n = n->next; n != &h->head; n = n->next) {
		n->told = true;
		q->wait(q, n, h, why, now_us);
	}
}

/* Puts h where it belongs after anything changed: in the ready list, or waiting for its timer
 * (rate) or for a connection to end (connections). */
static void host_update(struct connq *q, struct connq_host *h, int64_t now_us)
{
	int why;

	if (!h->waiting) {
		ready_unlink(q, h);
		tq_cancel(q->tq, &h->timer);
		return;
	}
	why = host_block(h, now_us);
	if (why < 0) {
		tq_cancel(q->tq, &h->timer);
		if (!h->ready) {
			ready_append(q, h);
			kick(q, now_us);
		}
		return;
	}
	ready_unlink(q, h);
	if (why == CONNQ_WAIT_RATE)
		tq_arm(q->tq, &h->timer, win_next(&h->win));
	else
		tq_cancel(q->tq, &h->timer);
	tell(q, h, why, now_us);
}

static void on_host_timer(struct tq_timer *t, int64_t now_us)
{
	struct connq_host *h = container_of(t, struct connq_host, timer);

	host_update(h->q, h, now_us);
}

/* Grants to ready hosts in turn while the global limits allow. */
static void on_timer(struct tq_timer *t, int64_t now_us)
{
	struct connq *q = container_of(t, struct connq, timer);

	q->granting = true;
	while (q->rhead && q->inflight < q->max_inflight && win_allows(&q->win, now_us)) {
		struct connq_host *h = q->rhead;
		struct connq_node *n = h->head.next;

		ready_unlink(q, h);
		if (host_block(h, now_us) >= 0) {
			host_update(q, h, now_us); /* a reload changed its limits */
			continue;
		}
		node_unlink(n);
		h->waiting--;
		q->waiting--;
		win_add(&q->win, now_us);
		win_add(&h->win, now_us);
		h->conns++;
		n->holds_conn = true;
		n->told = false;
		q->inflight++;
		host_update(q, h, now_us); /* to the back of the turn order, if it may go on */
		q->grant(q, n, now_us);
	}
	q->granting = false;
	/* When attempts in flight are the limit, connq_release wakes the queue instead. */
	if (q->rhead && q->inflight < q->max_inflight)
		tq_arm(q->tq, &q->timer, win_next(&q->win)); /* the global window is full */
}

static int host_init(struct connq_host *h, const struct connq_limit *lim)
{
	h->head.next = h->head.prev = &h->head;
	tq_timer_init(&h->timer, on_host_timer);
	if (!lim)
		return win_init(&h->win, 0, 0);
	h->max_conns = lim->max_conns;
	h->key = strdup(lim->key ? lim->key : "");
	if (!h->key)
		return -1;
	return win_init(&h->win, lim->rate, SECOND_US + CONNQ_HOST_GUARD_US);
}

static void hosts_release(struct connq_hosts *hs)
{
	for (size_t i = 0; i < hs->n; i++) {
		win_fini(&hs->v[i].win);
		free(hs->v[i].key);
	}
	free(hs->v);
	*hs = (struct connq_hosts){0};
}

int connq_hosts_new(struct connq_hosts *hs, struct timerq *tq, const struct connq_limit *lim,
                    size_t n)
{
	*hs = (struct connq_hosts){calloc(n + 1, sizeof(*hs->v)), n + 1};
	if (!hs->v)
		goto fail;
	for (size_t i = 0; i <= n; i++)
		if (host_init(&hs->v[i], i ? &lim[i - 1] : NULL) < 0)
			goto fail;
	if (tq_reserve(tq, n) == 0)
		return 0;
fail:
	if (!hs->v)
		hs->n = 0;
	hosts_release(hs);
	return -1;
}

void connq_hosts_free(struct connq_hosts *hs, struct timerq *tq)
{
	if (!hs->v)
		return;
	for (size_t i = 0; i < hs->n; i++)
		tq_cancel(tq, &hs->v[i].timer);
	tq_unreserve(tq, hs->n - 1);
	hosts_release(hs);
}

/* ---- the queue ---- */

int connq_init(struct connq *q, struct timerq *tq, double rate, connq_grant_fn grant,
               int64_t now_us)
{
	(void)now_us;
	*q = (struct connq){.tq = tq, .grant = grant, .max_inflight = CONNQ_MAX_INFLIGHT};
	q->limbo.next = q->limbo.prev = &q->limbo;
	tq_timer_init(&q->timer, on_timer);
	connq_set_rate(q, rate);
	if (win_init(&q->win, q->win.limit, SECOND_US) < 0)
		return -1;
	if (connq_hosts_new(&q->hosts, tq, NULL, 0) < 0) {
		win_fini(&q->win);
		return -1;
	}
	q->hosts.v[0].q = q;
	return tq_reserve(tq, 1);
}

void connq_fini(struct connq *q)
{
	while (!list_empty(&q->limbo))
		node_unlink(q->limbo.next);
	for (size_t i = 0; i < q->hosts.n; i++)
		while (!list_empty(&q->hosts.v[i].head))
			connq_remove(q, q->hosts.v[i].head.next);
	tq_cancel(q->tq, &q->timer);
	connq_hosts_free(&q->hosts, q->tq);
	win_fini(&q->win);
}

void connq_set_rate(struct connq *q, double rate)
{
	/* The ring grows to a raised limit as attempts need it. */
	q->win.limit = rate < 1 ? 1 : rate > 1e9 ? 1000000000u : (uint32_t)rate;
}

/* Queues n at the tail of its host, keeping n->told. */
static void enqueue(struct connq *q, struct connq_node *n, int64_t now_us)
{
	struct connq_host *h;

	q->waiting++;
	if (q->rehoming) {
		node_append(&q->limbo, n);
		return;
	}
	h = host_at(q, n->host);
	node_append(&h->head, n);
	h->waiting++;
	if (h->ready)
		kick(q, now_us);
	else
		host_update(q, h, now_us);
}

void connq_push(struct connq *q, struct connq_node *n, int64_t now_us)
{
	if (connq_queued(n))
		return;
	n->told = false;
	enqueue(q, n, now_us);
}

void connq_remove(struct connq *q, struct connq_node *n)
{
	struct connq_host *h;

	if (!connq_queued(n))
		return;
	node_unlink(n);
	q->waiting--;
	if (q->rehoming)
		return; /* it was set aside */
	h = host_at(q, n->host);
	if (--h->waiting == 0) {
		ready_unlink(q, h);
		tq_cancel(q->tq, &h->timer);
	}
}

bool connq_busy(const struct connq *q)
{
	if (q->inflight || q->rhead)
		return true;
	for (size_t i = 0; i < q->hosts.n; i++)
		if (tq_armed(&q->hosts.v[i].timer))
			return true;
	return false;
}

void connq_release(struct connq *q, int64_t now_us)
{
	bool last = q->inflight == 1;

	if (q->inflight > 0)
		q->inflight--;
	if (q->rhead)
		kick(q, now_us);
	else if (last && q->settled && !connq_busy(q))
		q->settled(q, now_us);
}

void connq_conn_done(struct connq *q, struct connq_node *n, int64_t now_us)
{
	struct connq_host *h;

	if (!n->holds_conn)
		return;
	n->holds_conn = false;
	if (q->rehoming)
		return; /* counts are being rebuilt: connq_adopt skips it */
	h = host_at(q, n->host);
	if (h->conns > 0)
		h->conns--;
	if (h->waiting && !h->ready)
		host_update(q, h, now_us);
}

/* ---- changing the host table ---- */

/* The new entry takes the old one's recent attempts, so a reload cannot reset a window. */
static void carry_window(struct connq_host *to, const struct connq_hosts *old)
{
	for (size_t j = 1; j < old->n && to->win.limit; j++) {
		struct connq_window *w = &old->v[j].win, tmp;
		if (!w->cap || strcmp(old->v[j].key, to->key) != 0)
			continue;
		tmp = to->win;
		to->win = *w;
		to->win.limit = tmp.limit;
		to->win.span_us = tmp.span_us;
		*w = tmp; /* freed with the old table */
		return;
	}
}

void connq_hosts_install(struct connq *q, struct connq_hosts *hs)
{
	struct connq_hosts old = q->hosts;

	/* Set every waiter aside, host by host in order. */
	for (size_t i = 0; i < old.n; i++) {
		struct connq_host *h = &old.v[i];
		while (!list_empty(&h->head)) {
			struct connq_node *n = h->head.next;
			node_unlink(n);
			node_append(&q->limbo, n);
		}
		h->waiting = 0;
		ready_unlink(q, h);
	}
	for (size_t i = 1; i < hs->n; i++)
		carry_window(&hs->v[i], &old);
	for (size_t i = 0; i < hs->n; i++)
		hs->v[i].q = q;
	q->hosts = *hs;
	*hs = (struct connq_hosts){0};
	q->rehoming = true;
	connq_hosts_free(&old, q->tq);
}

void connq_adopt(struct connq *q, struct connq_node *n)
{
	if (n->holds_conn)
		host_at(q, n->host)->conns++;
}

void connq_hosts_done(struct connq *q, int64_t now_us)
{
	q->rehoming = false;
	while (!list_empty(&q->limbo)) {
		struct connq_node *n = q->limbo.next;
		node_unlink(n);
		q->waiting--;
		enqueue(q, n, now_us);
	}
	/* Raised limits may free hosts that wait for a connection to end. */
	for (size_t i = 0; i < q->hosts.n; i++)
		host_update(q, &q->hosts.v[i], now_us);
}
