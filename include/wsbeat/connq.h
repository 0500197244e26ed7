/*
 * connq: the limits on connection attempts. Every attempt of every feed is granted here, one
 * at a time, by the queue's timer:
 *
 *  - globally, at most `rate` attempts in any rolling second, and at most CONNQ_MAX_INFLIGHT
 *    attempts in progress at once: libwebsockets 4.1 keeps each pending handshake's timeouts
 *    in one sorted list with O(n) inserts, and 5,000 handshakes in flight together were
 *    measured stalling the loop for tens of seconds;
 *  - per host entry (the `hosts` setting), at most its own rate in any rolling second and at
 *    most max_conns connections open or in progress.
 *
 * "At most N in any rolling second" is what servers count, so it is kept exactly: a window
 * remembers the times of the attempts of the last second and a new one goes only when fewer
 * than N are in it (a token bucket whose burst equals its rate lets 2N through in the first
 * second). Waiting nodes queue per host in FIFO order; hosts that may go now take turns (round
 * robin), so a host at its limit never holds up the others. A host with waiters arms one timer
 * for when its oldest attempt leaves its window; no node has a timer of its own. Each grant is
 * O(1) however many nodes wait.
 *
 * Every connection attempt must come through here, so that it counts: a feed's connects and
 * reconnects use its qnode; a replacement connection for make-before-break rotation is a feed
 * of its own (feed_rotate) with its own qnode, pointed at the same host entry and re-pointed on
 * reload like the feed's (app_hosts.c).
 */
#ifndef WSBEAT_CONNQ_H
#define WSBEAT_CONNQ_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "wsbeat/timerq.h"

/*
 * Embedded in its owner (a feed), zeroed before first use: next is NULL exactly when it is not
 * queued. host is the index of the host entry whose limits apply (0: none, i: entry i - 1 of
 * the table); the owner sets it while the node is not queued, and again during a table change
 * (connq_hosts_install .. connq_hosts_done). An index out of range means none.
 */
struct connq_node {
	struct connq_node *next, *prev;
	unsigned host;
	bool holds_conn; /* granted and counted against its host until connq_conn_done */
	bool told;       /* connq_wait_fn was called for this wait */
};

/* The attempts of the last `span_us`, oldest first: a ring that grows up to `limit` entries. */
struct connq_window {
	int64_t *ts;
	uint32_t cap, head, n;
	uint32_t limit; /* attempts per span; 0 = unlimited */
	int64_t span_us;
};

struct connq;

/* The limits of one host entry, for connq_hosts_new. */
struct connq_limit {
	const char *key;    /* names the entry in logs and carries its window over reloads */
	uint32_t rate;      /* attempts in any rolling second; 0 = no per-host rate */
	uint32_t max_conns; /* connections open or in progress; 0 = no cap */
};

struct connq_host {
	struct connq *q;
	struct connq_node head;           /* waiting nodes, circular list sentinel */
	struct connq_host *rnext, *rprev; /* in the queue's ready list, when ready */
	bool ready;                       /* may grant now: in the ready list */
	struct tq_timer timer;            /* the window's oldest attempt leaves it */
	struct connq_window win;
	char *key;          /* NULL for entry 0 (no per-host limits) */
	uint32_t max_conns; /* 0 = no cap */
	unsigned conns;     /* granted connections not yet connq_conn_done */
	unsigned long waiting;
};

/* A table of host entries built by connq_hosts_new; entry 0 has no limits. */
struct connq_hosts {
	struct connq_host *v;
	size_t n;
};

/* Called from the queue's timer when node n may start its attempt. */
typedef void (*connq_grant_fn)(struct connq *q, struct connq_node *n, int64_t now_us);
/* Called from connq_release when the last attempt in flight has ended and none can start
 * before a connection ends or the clock moves on. */
typedef void (*connq_settled_fn)(struct connq *q, int64_t now_us);

/* Why a node waits for its host. */
enum connq_wait { CONNQ_WAIT_RATE, CONNQ_WAIT_CONNS };
/* Called once per wait when node n must wait for its host h's limit (from connq_push or the
 * queue's timer). It must not call into the queue. */
typedef void (*connq_wait_fn)(struct connq *q, struct connq_node *n, const struct connq_host *h,
                              enum connq_wait why, int64_t now_us);

struct connq {
	struct timerq *tq;
	struct tq_timer timer;
	struct connq_window win;          /* global */
	struct connq_host *rhead, *rtail; /* hosts that may go now, in turn order */
	struct connq_hosts hosts;
	struct connq_node limbo; /* nodes set aside while the host table changes */
	bool rehoming;           /* between connq_hosts_install and connq_hosts_done */
	bool granting;           /* inside the timer's grant loop: it decides the next wake-up */
	connq_grant_fn grant;
	connq_settled_fn settled; /* optional; set by the owner after connq_init */
	connq_wait_fn wait;       /* optional; set by the owner after connq_init */
	unsigned long waiting;    /* nodes queued, all hosts */
	unsigned inflight;        /* granted attempts not yet released */
	unsigned max_inflight;
};

#define CONNQ_MAX_INFLIGHT 256
/* Per host, an attempt and the one `rate` attempts later are kept this much more than a second
 * apart: a server sees each upgrade request a TCP (and TLS) handshake after we start it, and a
 * few milliseconds of jitter in that would otherwise let it count rate + 1 in its second. */
#define CONNQ_HOST_GUARD_US (50 * 1000)

/* rate: attempts in any rolling second (>= 1). Starts with no host entries (every node goes
 * to entry 0) and reserves its one timer in tq. 0 or -1 (ENOMEM). */
int connq_init(struct connq *q, struct timerq *tq, double rate, connq_grant_fn grant,
               int64_t now_us);
void connq_fini(struct connq *q);
void connq_set_rate(struct connq *q, double rate);

/* True while n waits in a queue. */
static inline bool connq_queued(const struct connq_node *n)
{
	return n->next != NULL;
}

/* Queues n at its host (a no-op if queued); the grant comes from the queue's timer, never from
 * here. The grant counts n against its host's connections (n->holds_conn) and one attempt in
 * flight: give them back with connq_conn_done and connq_release. */
void connq_push(struct connq *q, struct connq_node *n, int64_t now_us);
/* Takes n out of the queue; a no-op if it is not queued. */
void connq_remove(struct connq *q, struct connq_node *n);

/* A granted attempt has ended (opened or failed): another may start. */
void connq_release(struct connq *q, int64_t now_us);
/* n's connection (or attempt) is gone: its host may grant another. A no-op unless n holds
 * one. */
void connq_conn_done(struct connq *q, struct connq_node *n, int64_t now_us);

/* True while an attempt is in flight or waiters will be granted without a connection ending. */
bool connq_busy(const struct connq *q);

/* The host entry whose limits apply to n (entry 0 when none does). */
const struct connq_host *connq_host_of(const struct connq *q, const struct connq_node *n);

/*
 * Host tables. connq_hosts_new builds entries 1..n from lim (keys copied) and reserves their
 * timers in tq: 0, or -1 (ENOMEM) with nothing allocated. A table not installed is freed with
 * connq_hosts_free.
 *
 * Changing the table cannot fail: connq_hosts_install takes hs over (and empties it), sets every
 * waiting node aside and counts no connection; an entry whose key was in the old table keeps
 * its window (its recent attempts still count). The owner then sets n->host of every node it
 * has and calls connq_adopt for each, which counts a held connection on its new entry; finally
 * connq_hosts_done queues the set-aside nodes again, in their order, and frees the old table.
 * Nodes whose connections exceed a lowered max_conns keep them.
 */
int connq_hosts_new(struct connq_hosts *hs, struct timerq *tq, const struct connq_limit *lim,
                    size_t n);
void connq_hosts_free(struct connq_hosts *hs, struct timerq *tq);
void connq_hosts_install(struct connq *q, struct connq_hosts *hs);
void connq_adopt(struct connq *q, struct connq_node *n);
void connq_hosts_done(struct connq *q, int64_t now_us);

#endif
