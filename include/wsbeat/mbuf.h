/* mbuf: a growable byte buffer, always NUL-terminated after its contents. */
#ifndef WSBEAT_MBUF_H
#define WSBEAT_MBUF_H

#include <stdbool.h>
#include <stddef.h>

/* After an allocation failure it stays failed (oom) and further appends do nothing. */
struct mbuf {
	char *p;
	size_t len, cap;
	bool oom;
};

/* Makes room for n more bytes plus a NUL; false (and oom set) when memory ran out. */
bool mbuf_reserve(struct mbuf *b, size_t n);
void mbuf_printf(struct mbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void mbuf_put(struct mbuf *b, const char *s, size_t n);
/* Appends a NUL-terminated string. */
void mbuf_puts(struct mbuf *b, const char *s);
/* Empties b, keeping its memory (and clearing oom). */
void mbuf_reset(struct mbuf *b);
void mbuf_free(struct mbuf *b);

#endif
