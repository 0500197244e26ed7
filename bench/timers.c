/*
 * bench/timers: what wsbeat's timer queue (src/timerq.c) costs per heartbeat at 10k to 1M
 * feeds, without sockets, lws or the rest of the daemon.
 *
 * Each simulated feed is a ~1 KB struct of its own, like struct feed, with its five tq_timers
 * where struct feed has them, so the heap's entries point into memory that is as scattered as
 * the daemon's. Like feed.c: the beat timer fires first at a random point of the first second,
 * then every 1 s on its grid, re-armed from its own callback at due + interval; the answer
 * deadline is lazy (armed when a beat goes out with none armed; when it fires, re-armed to the
 * last beat sent + 10 s if that beat was answered, else the feed is "dead", which the
 * immediate simulated answers should never allow). Virtual time advances in 2 ms steps (the
 * daemon's default timer slack) with tq_driver_fired() at each; CPU time is measured over a
 * window after a warm-up. Each N runs in a child process, so its RSS is its own.
 *
 * usage: timers [-n 10000,100000,1000000] [--window S] [--warmup S] [--seed N]
 * One key=value line per N on stdout (kind=timers), then kind=timers_scaling: ns per beat at
 * the largest N over the smallest. A line gets error=... when a feed did not beat
 * window/interval times (±1), a timer fired early, or a feed went dead.
 */
#define _GNU_SOURCE
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "wsbeat/feed.h"
#include "wsbeat/rng.h"
#include "wsbeat/timerq.h"
#include "wsbeat/util.h"

#ifndef TIMERS_HEAP
#define TIMERS_HEAP "pairs" /* what the heap stores; the old pointer heap is built as "ptr" */
#endif

#define INTERVAL_US 1000000
#define TIMEOUT_US  10000000
#define STEP_US     2000
#define T0_US       1000000000000 /* the virtual clock's start: any monotonic-looking value */
#define FEED_TIMERS 5             /* feed.c reserves five per feed */
#define MAX_SIZES   8

/* As big as struct feed: a few words of state, then the timers, then the untouched rest. */
#define SIM_HEAD_BYTES 208
struct sim_feed {
	void *cfg, *env, *conn;
	int state;
	int64_t state_since_us;
	unsigned failures, conn_no;
	bool flags[4];
	int64_t open_since_us;
	struct tq_timer t_state, t_beat, t_answer, t_idle, t_addr;
	int64_t last_sent_us, last_answer_us;
	unsigned beats; /* in the measured window */
	unsigned dead;
	unsigned char rest[sizeof(struct feed) - SIM_HEAD_BYTES]; /* never touched here */
};
_Static_assert(offsetof(struct sim_feed, rest) == SIM_HEAD_BYTES, "SIM_HEAD_BYTES is stale");
_Static_assert(sizeof(struct sim_feed) == sizeof(struct feed), "not the size of a feed");

static struct {
	struct timerq q;
	bool counting; /* inside the measured window */
	uint64_t beats, ops, early;
} b;

static void arm(struct tq_timer *t, int64_t deadline_us)
{
	tq_arm(&b.q, t, deadline_us);
	b.ops++;
}

/* A fired timer was one heap operation (the pop); its callback's arms are counted by arm(). */
static void fired(const struct tq_timer *t, int64_t now_us)
{
	b.ops++;
	if (t->deadline_us > now_us)
		b.early++;
}

static void on_beat(struct tq_timer *t, int64_t now_us)
{
	struct sim_feed *f = container_of(t, struct sim_feed, t_beat);
	int64_t due = t->deadline_us, next = due + INTERVAL_US;

	fired(t, now_us);
	if (!tq_armed(&f->t_answer))
		arm(&f->t_answer, (now_us > due ? now_us : due) + TIMEOUT_US);
	f->last_sent_us = now_us;
	f->last_answer_us = now_us; /* the peer answers at once */
	if (b.counting) {
		f->beats++;
		b.beats++;
	}
	if (next <= now_us)
		next += ((now_us - next) / INTERVAL_US + 1) * INTERVAL_US;
	arm(&f->t_beat, next);
}

static void on_answer(struct tq_timer *t, int64_t now_us)
{
	struct sim_feed *f = container_of(t, struct sim_feed, t_answer);

	fired(t, now_us);
	if (f->last_answer_us < f->last_sent_us) {
		f->dead++;
		return;
	}
	arm(&f->t_answer, f->last_sent_us + TIMEOUT_US);
}

static void unused_cb(struct tq_timer *t, int64_t now_us)
{
	(void)t;
	(void)now_us;
	abort();
}

static int64_t cpu_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static long rss_kib(void)
{
	char line[256];
	long kib = -1;
	FILE *f = fopen("/proc/self/status", "r");

	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "VmRSS: %ld", &kib) == 1)
			break;
	fclose(f);
	return kib;
}

static int64_t advance(int64_t now, int64_t until)
{
	while (now < until) {
		now += STEP_US;
		tq_driver_fired(&b.q, now);
	}
	return now;
}

/* One N, in a child process: prints its line, returns ns per beat (< 0 on failure). */
static double run(size_t n, int window_s, int warmup_s, uint64_t seed)
{
	struct sim_feed **feeds = malloc(n * sizeof(*feeds));
	struct rng rng;
	int64_t now = T0_US, c0, c1;
	unsigned min = UINT32_MAX, max = 0, dead = 0;
	double ns;
	char err[128] = "";

	if (!feeds)
		goto oom;
	rng_seed(&rng, seed);
	tq_init(&b.q, STEP_US, NULL, NULL);
	for (size_t i = 0; i < n; i++) {
		struct sim_feed *f = calloc(1, sizeof(*f));
		if (!f || tq_reserve(&b.q, FEED_TIMERS) < 0)
			goto oom;
		tq_timer_init(&f->t_state, unused_cb);
		tq_timer_init(&f->t_beat, on_beat);
		tq_timer_init(&f->t_answer, on_answer);
		tq_timer_init(&f->t_idle, unused_cb);
		tq_timer_init(&f->t_addr, unused_cb);
		arm(&f->t_beat, now + (int64_t)(rng_unit(&rng) * INTERVAL_US));
		feeds[i] = f;
	}

	now = advance(now, T0_US + (int64_t)warmup_s * 1000000);
	b.counting = true;
	b.beats = b.ops = 0;
	c0 = cpu_ns();
	now = advance(now, now + (int64_t)window_s * 1000000);
	c1 = cpu_ns();
	b.counting = false;

	for (size_t i = 0; i < n; i++) {
		unsigned k = feeds[i]->beats;
		min = k < min ? k : min;
		max = k > max ? k : max;
		dead += feeds[i]->dead;
	}
	if (min + 1 < (unsigned)window_s || max > (unsigned)window_s + 1)
		snprintf(err, sizeof(err), " error=beats_per_feed_%u..%u", min, max);
	else if (b.early || dead)
		snprintf(err, sizeof(err), " error=early_%llu_dead_%u", (unsigned long long)b.early,
		         dead);
	ns = b.beats ? (double)(c1 - c0) / (double)b.beats : -1;
	printf("kind=timers n=%zu heap=%s arity=%d window_s=%d warmup_s=%d beats=%llu "
	       "ns_per_beat=%.1f heap_ops_per_beat=%.3f cpu_s=%.3f beats_per_feed=%u..%u dead=%u "
	       "early=%llu rss_kib=%ld feed_bytes=%zu%s\n",
	       n, TIMERS_HEAP, TQ_ARITY, window_s, warmup_s, (unsigned long long)b.beats, ns,
	       b.beats ? (double)b.ops / (double)b.beats : 0, (double)(c1 - c0) / 1e9, min, max,
	       dead, (unsigned long long)b.early, rss_kib(), sizeof(struct sim_feed), err);
	fflush(stdout);
	return err[0] ? -1 : ns;
oom:
	printf("kind=timers n=%zu heap=%s error=out_of_memory\n", n, TIMERS_HEAP);
	fflush(stdout);
	return -1;
}

/* Runs one N in a child and reads its ns per beat back through a pipe. */
static double run_child(size_t n, int window_s, int warmup_s, uint64_t seed)
{
	int fd[2], status;
	double ns = -1;
	pid_t pid;

	fflush(stdout);
	if (pipe(fd) < 0 || (pid = fork()) < 0) {
		perror("timers: fork");
		return -1;
	}
	if (pid == 0) {
		close(fd[0]);
		ns = run(n, window_s, warmup_s, seed);
		if (write(fd[1], &ns, sizeof(ns)) != sizeof(ns))
			_exit(1);
		_exit(0);
	}
	close(fd[1]);
	if (read(fd[0], &ns, sizeof(ns)) != sizeof(ns))
		ns = -1;
	close(fd[0]);
	if (waitpid(pid, &status, 0) < 0 || !WIFEXITED(status) || WEXITSTATUS(status) != 0) {
		printf("kind=timers n=%zu error=child_failed\n", n);
		ns = -1;
	}
	return ns;
}

static int usage(void)
{
	fprintf(stderr, "usage: timers [-n N[,N...]] [--window S] [--warmup S] [--seed N]\n");
	return 2;
}

int main(int argc, char **argv)
{
	size_t sizes[MAX_SIZES] = {10000, 100000, 1000000};
	int n_sizes = 3, window_s = 10, warmup_s = 2, bad = 0;
	uint64_t seed = 1;
	double ns[MAX_SIZES];

	for (int i = 1; i < argc; i++) {
		const char *v = i + 1 < argc ? argv[i + 1] : NULL;
		if (!v)
			return usage();
		if (!strcmp(argv[i], "-n")) {
			char *s = (char *)v, *end;
			for (n_sizes = 0; *s; s = *end ? end + 1 : end) {
				if (n_sizes == MAX_SIZES)
					return usage();
				sizes[n_sizes++] = strtoul(s, &end, 10);
				if (end == s || sizes[n_sizes - 1] == 0 || (*end && *end != ','))
					return usage();
			}
		} else if (!strcmp(argv[i], "--window")) {
			window_s = atoi(v);
		} else if (!strcmp(argv[i], "--warmup")) {
			warmup_s = atoi(v);
		} else if (!strcmp(argv[i], "--seed")) {
			seed = strtoull(v, NULL, 10);
		} else {
			return usage();
		}
		i++;
	}
	if (window_s < 2 || warmup_s < 0)
		return usage();

	for (int i = 0; i < n_sizes; i++) {
		ns[i] = run_child(sizes[i], window_s, warmup_s, seed + (uint64_t)i);
		bad |= ns[i] < 0;
	}
	if (n_sizes > 1 && ns[0] > 0 && ns[n_sizes - 1] > 0)
		printf("kind=timers_scaling heap=%s arity=%d n_small=%zu n_large=%zu "
		       "ns_per_beat_small=%.1f ns_per_beat_large=%.1f growth=%.2f\n",
		       TIMERS_HEAP, TQ_ARITY, sizes[0], sizes[n_sizes - 1], ns[0], ns[n_sizes - 1],
		       ns[n_sizes - 1] / ns[0]);
	return bad;
}
