/* util: small helpers shared by every module. */
#ifndef WSBEAT_UTIL_H
#define WSBEAT_UTIL_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>

#define container_of(p, type, member) ((type *)(void *)((char *)(p)-offsetof(type, member)))
#define ARRAY_SIZE(a)                 (sizeof(a) / sizeof((a)[0]))

/* CLOCK_MONOTONIC in microseconds: the time base of every deadline. */
static inline int64_t mono_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

/* CLOCK_REALTIME in microseconds: for what is shown to people and other programs. */
static inline int64_t real_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

/* Writes the printf-style message into err (when given) and returns -1: for leaf helpers that
 * report a reason to their caller instead of logging it. */
int errf(char *err, size_t errlen, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

#endif
