/*
 * connq: the global limit on connection attempts. Feeds that want to connect wait here in
 * FIFO order; a token bucket (rate per second, burst of one second's worth) lets them go, so
 * thousands of feeds that lose their server together do not reconnect in one burst. At most
 * CONNQ_MAX_INFLIGHT attempts are in progress at once: libwebsockets 4.1 keeps each pending
 * handshake's timeouts in one sorted list with O(n) inserts, and 5,000 handshakes in flight
 * together were measured stalling the loop for tens of seconds.
 */
#ifndef WSBEAT_CONNQ_H
#define WSBEAT_CONNQ_H

#include <stdbool.h>
#include <stdint.h>

#include "wsbeat/timerq.h"

/* Embedded in its owner, zeroed before first use: next is NULL exactly when it is not queued
 * (one member fewer in every feed than a flag would take). */
struct connq_node {
	struct connq_node *next, *prev;
};

struct connq;
/* Called from the queue's timer when node may start its attempt. */
typedef void (*connq_grant_fn)(struct connq *q, struct connq_node *n, int64_t now_us);
/* Called from connq_release when the last attempt in flight has ended and none is waiting. */
typedef void (*connq_settled_fn)(struct connq *q, int64_t now_us);

struct connq {
	struct connq_node head; /* circular list sentinel */
	struct timerq *tq;
	struct tq_timer timer;
	double rate;  /* tokens per second */
	double burst; /* bucket size */
	double tokens;
	int64_t last_us;
	connq_grant_fn grant;
	connq_settled_fn settled; /* optional; set by the owner after connq_init */
	unsigned long waiting;
	unsigned inflight; /* granted attempts not yet released */
	unsigned max_inflight;
};

#define CONNQ_MAX_INFLIGHT 256

/* rate: attempts per second (>= 1). Reserves its one timer in tq. 0 or -1. */
int connq_init(struct connq *q, struct timerq *tq, double rate, connq_grant_fn grant,
               int64_t now_us);
void connq_fini(struct connq *q);
void connq_set_rate(struct connq *q, double rate);

/* True while n waits in a queue. */
static inline bool connq_queued(const struct connq_node *n)
{
	return n->next != NULL;
}

/* Queues n (a no-op if queued); the grant comes from the queue's timer, never from here. */
void connq_push(struct connq *q, struct connq_node *n, int64_t now_us);
/* Takes n out of the queue; a no-op if it is not queued. */
void connq_remove(struct connq *q, struct connq_node *n);

/* A granted attempt has ended (opened or failed): another may start. */
void connq_release(struct connq *q, int64_t now_us);

#endif
