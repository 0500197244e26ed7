/*
 * timerq: every per-feed deadline in one min-heap, so arming is O(log n) however many feeds
 * there are. The shell drives it from a single timerfd armed at tq_next_wake().
 * Timers fire at or after their deadline, never before; a timer may fire up to `slack` late so
 * that deadlines close together share one wake-up of the loop.
 */
#ifndef WSBEAT_TIMERQ_H
#define WSBEAT_TIMERQ_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define TQ_NEVER INT64_MAX

struct tq_timer;
typedef void (*tq_cb)(struct tq_timer *t, int64_t now_us);

/* Embed in the owner and recover it with container_of in the callback. */
struct tq_timer {
	int64_t deadline_us; /* absolute, CLOCK_MONOTONIC */
	size_t slot;         /* heap index + 1; 0 = not armed */
	tq_cb cb;
};

/*
 * Children per heap node. 4 halves a binary heap's depth, so a pop moves half as many entries,
 * and each move writes the moved timer's slot: a cache miss into its feed. The three extra
 * comparisons per level read 64 contiguous bytes. In bench/timers.c (make -C bench TQ_ARITY=2
 * to compare) 2 cost 1.1-1.2x what 4 does per beat at 10k feeds, 1.3x at 100k, 1.5x at 1M.
 */
#ifndef TQ_ARITY
#define TQ_ARITY 4
#endif

/* A heap slot holds a copy of the deadline, so sifting compares within the array and never
 * reads the timers (each inside a feed of its own, i.e. a cache miss apiece). */
struct tq_entry {
	int64_t deadline_us;
	struct tq_timer *t;
};

struct timerq;
/* Called when the earliest wake-up moves earlier than the one last announced. */
typedef void (*tq_rearm_fn)(struct timerq *q, int64_t wake_us, void *arg);

struct timerq {
	struct tq_entry *heap;
	size_t n, cap;
	size_t reserved; /* timers that may be armed at once, as promised by tq_reserve */
	int64_t slack_us;
	int64_t announced_us; /* wake time the driver is armed for, TQ_NEVER if none */
	tq_rearm_fn rearm;
	void *rearm_arg;
};

/* Initialises an empty queue. rearm may be NULL (tests poll tq_next_wake instead). */
void tq_init(struct timerq *q, int64_t slack_us, tq_rearm_fn rearm, void *arg);
void tq_fini(struct timerq *q);

/* Makes room for n more timers so that arming never allocates; 0 or -1 (ENOMEM). */
int tq_reserve(struct timerq *q, size_t n);
/* Gives back what tq_reserve(q, n) promised, when n timers will never be armed again. */
void tq_unreserve(struct timerq *q, size_t n);

void tq_timer_init(struct tq_timer *t, tq_cb cb);
static inline bool tq_armed(const struct tq_timer *t)
{
	return t->slot != 0;
}

/* Arms (or moves) t to fire at deadline_us. Needs room reserved with tq_reserve. */
void tq_arm(struct timerq *q, struct tq_timer *t, int64_t deadline_us);

/* Disarms t; a no-op when it is not armed. */
void tq_cancel(struct timerq *q, struct tq_timer *t);

/* When the loop must wake next: the earliest deadline plus slack, or TQ_NEVER. */
int64_t tq_next_wake(const struct timerq *q);

/*
 * Fires, in deadline order, every timer due at now_us. Callbacks may arm and cancel timers
 * (a timer re-armed at or before now_us fires again in this call). Returns how many fired.
 * The caller must have marked its driver unarmed (announced_us = TQ_NEVER) if it re-arms after.
 */
size_t tq_run(struct timerq *q, int64_t now_us);

/* Tells the queue its driver has fired and is no longer armed; returns tq_run's count. */
size_t tq_driver_fired(struct timerq *q, int64_t now_us);

#endif
