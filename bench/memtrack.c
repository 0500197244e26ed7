/*
 * bench/memtrack.so: where a client's heap goes, by library and call site (bench/memory.py).
 *
 * LD_PRELOAD it into a client. It interposes malloc, calloc, realloc, free and the aligned
 * allocators, and keeps every live allocation in a table with its size as the heap sees it
 * (malloc_usable_size + the 8-byte chunk header: what it costs, not what was asked for) and
 * the first MT_FRAMES return addresses above the allocator. Nothing is written until asked:
 * when the file MEMTRACK_OUT.req appears (a thread polls every 50 ms) the live allocations,
 * summed by call chain, go to MEMTRACK_OUT (written to .tmp, then renamed) and .req is removed.
 *
 * Measurement only: the table and the backtrace per allocation make the client slower and
 * bigger, so bench/memory.py reads RSS from runs without it. Not thread-safe beyond a
 * spinlock (the clients measured are single-threaded; the lock keeps the dump consistent).
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <execinfo.h>
#include <malloc.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

extern void *__libc_malloc(size_t);
extern void *__libc_calloc(size_t, size_t);
extern void *__libc_realloc(void *, size_t);
extern void *__libc_memalign(size_t, size_t);
extern void __libc_free(void *);

#define MT_FRAMES 4
#define MT_CAP    (1u << 22) /* slots; a 10k-feed wss client has ~0.6 M live allocations */
#define TOMBSTONE ((void *)1)

struct entry {
	void *p;
	uint32_t size;
	void *frames[MT_FRAMES];
};

static struct entry *table;
static atomic_flag lock = ATOMIC_FLAG_INIT;
static __thread int in_hook __attribute__((
    tls_model("initial-exec"))); /* backtrace() may allocate: those are not recorded */
static size_t live, dropped;

static void lock_take(void)
{
	while (atomic_flag_test_and_set_explicit(&lock, memory_order_acquire))
		;
}

static void lock_give(void)
{
	atomic_flag_clear_explicit(&lock, memory_order_release);
}

static unsigned slot_of(const void *p)
{
	return (unsigned)(((uintptr_t)p >> 4) * 2654435761u) & (MT_CAP - 1);
}

/* noinline: the frames skipped below are this function's and the hook's. */
__attribute__((noinline)) static void record(void *p)
{
	void *bt[MT_FRAMES + 2];
	struct entry e = {.p = p, .size = (uint32_t)(malloc_usable_size(p) + 8)};
	int n;

	if (!p || in_hook || !table)
		return;
	in_hook = 1;
	n = backtrace(bt, MT_FRAMES + 2); /* [0] record, [1] the hook, [2..] callers */
	in_hook = 0;
	for (int i = 2; i < n; i++)
		e.frames[i - 2] = bt[i];
	lock_take();
	if (live >= MT_CAP / 2) {
		dropped++;
	} else {
		unsigned i = slot_of(p);
		while (table[i].p && table[i].p != TOMBSTONE)
			i = (i + 1) & (MT_CAP - 1);
		table[i] = e;
		live++;
	}
	lock_give();
}

static void forget(void *p)
{
	if (!p || !table)
		return;
	lock_take();
	for (unsigned i = slot_of(p), k = 0; table[i].p && k < MT_CAP;
	     i = (i + 1) & (MT_CAP - 1), k++)
		if (table[i].p == p) {
			table[i].p = TOMBSTONE;
			live--;
			break;
		}
	lock_give();
}

void *malloc(size_t n)
{
	void *p = __libc_malloc(n);
	record(p);
	return p;
}

void *calloc(size_t a, size_t b)
{
	void *p = __libc_calloc(a, b);
	record(p);
	return p;
}

void *realloc(void *old, size_t n)
{
	void *p;

	forget(old);
	p = __libc_realloc(old, n);
	if (p)
		record(p);
	else if (old && n)
		record(old); /* failed: the old block lives on (its call site is lost) */
	return p;
}

void free(void *p)
{
	forget(p);
	__libc_free(p);
}

void *memalign(size_t align, size_t n)
{
	void *p = __libc_memalign(align, n);
	record(p);
	return p;
}

void *aligned_alloc(size_t align, size_t n)
{
	return memalign(align, n);
}

int posix_memalign(void **out, size_t align, size_t n)
{
	void *p = __libc_memalign(align, n);
	if (!p)
		return ENOMEM;
	record(p);
	*out = p;
	return 0;
}

/* Sums live allocations by call chain (sorting a copy of the chains) and writes them out. */
struct sum {
	void *frames[MT_FRAMES];
	uint64_t bytes, count;
};

static int by_chain(const void *a, const void *b)
{
	return memcmp(((const struct sum *)a)->frames, ((const struct sum *)b)->frames,
	              sizeof(((const struct sum *)a)->frames));
}

static void name_frame(FILE *f, void *addr)
{
	Dl_info d;

	if (!addr) {
		fputs(" -", f);
		return;
	}
	if (!dladdr(addr, &d) || !d.dli_fname) {
		fprintf(f, " ?@%p", addr);
		return;
	}
	const char *base = strrchr(d.dli_fname, '/');
	base = base ? base + 1 : d.dli_fname;
	/* dso:offset always (for addr2line); the exported symbol when there is one */
	fprintf(f, " %s:%#lx:%s", base, (unsigned long)((char *)addr - (char *)d.dli_fbase),
	        d.dli_sname ? d.dli_sname : "?");
}

static void dump(const char *out)
{
	/* Room for the most record() keeps, so no entry is left out whatever happens before the
	 * lock is taken; only the pages used are touched. */
	size_t n = 0, cap = MT_CAP / 2, groups = 0;
	struct sum *s = mmap(NULL, cap * sizeof(*s), PROT_READ | PROT_WRITE,
	                     MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	char tmp[4096];
	FILE *f;

	if (s == MAP_FAILED)
		return;
	lock_take();
	for (unsigned i = 0; i < MT_CAP; i++)
		if (table[i].p && table[i].p != TOMBSTONE) {
			memcpy(s[n].frames, table[i].frames, sizeof(s[n].frames));
			s[n].bytes = table[i].size;
			s[n].count = 1;
			n++;
		}
	size_t dropped_now = dropped;
	lock_give();

	qsort(s, n, sizeof(*s), by_chain);
	for (size_t i = 0; i < n; i++) {
		if (groups && !by_chain(&s[groups - 1], &s[i])) {
			s[groups - 1].bytes += s[i].bytes;
			s[groups - 1].count++;
		} else {
			s[groups++] = s[i];
		}
	}
	snprintf(tmp, sizeof(tmp), "%s.tmp", out);
	f = fopen(tmp, "w");
	if (f) {
		struct mallinfo2 mi = mallinfo2();
		fprintf(f, "# live=%zu dropped=%zu arena=%zu in_use=%zu mmapped=%zu\n", n,
		        dropped_now, mi.arena, mi.uordblks, mi.hblkhd);
		for (size_t i = 0; i < groups; i++) {
			fprintf(f, "%llu %llu", (unsigned long long)s[i].bytes,
			        (unsigned long long)s[i].count);
			for (int k = 0; k < MT_FRAMES; k++)
				name_frame(f, s[i].frames[k]);
			fputc('\n', f);
		}
		fclose(f);
		rename(tmp, out);
	}
	munmap(s, cap * sizeof(*s));
}

static void *watch(void *arg)
{
	const char *out = arg;
	char req[4096];

	in_hook = 1; /* this thread's own allocations are not the client's */
	snprintf(req, sizeof(req), "%s.req", out);
	for (;;) {
		if (access(req, F_OK) == 0) {
			dump(out);
			unlink(req);
		}
		usleep(50000);
	}
	return NULL;
}

__attribute__((constructor)) static void memtrack_init(void)
{
	const char *out = getenv("MEMTRACK_OUT");
	void *bt[2];
	pthread_t t;

	if (!out)
		return;
	in_hook = 1;
	backtrace(bt, 2); /* loads libgcc_s now, not inside the first recorded malloc */
	table = mmap(NULL, (size_t)MT_CAP * sizeof(*table), PROT_READ | PROT_WRITE,
	             MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (table == MAP_FAILED)
		table = NULL;
	else
		pthread_create(&t, NULL, watch, strdup(out));
	in_hook = 0;
}
