/*
 * log: one record per event. Outside journald a record is one logfmt line on stderr:
 *   ts=2026-11-26T14:00:00.123Z level=info feed=ws1 event=open state=open url=ws://h/p msg="..."
 * Values with spaces, quotes, '=' or control characters are double-quoted with \" \\ \n \t
 * escapes. Keys appear in the order given; ts and level come first and msg last.
 */
#ifndef WSBEAT_LOG_H
#define WSBEAT_LOG_H

#include <stdarg.h>
#include <stddef.h>

#include "wsbeat/cfg.h"

/* One field of a record: key in lower case ("feed", "event", "delay_ms", ...). */
struct log_kv {
	const char *key;
	const char *val;
};

/*
 * Decides where records go: under journald ($JOURNAL_STREAM names our stderr) each record is
 * a structured journal entry (MESSAGE, PRIORITY, MESSAGE_ID, WSBEAT_FEED, WSBEAT_EVENT, ...),
 * otherwise a logfmt line on stderr. Call once at start.
 */
void log_init(void);
int log_to_journal(void);

/* Sets the most verbose level that is emitted. */
void log_set_level(enum log_level l);
enum log_level log_get_level(void);
int log_enabled(enum log_level l);

/* Parses "error|warning|notice|info|debug"; -1 if unknown. */
int log_level_parse(const char *name, enum log_level *out);

/*
 * Emits one record with the given fields and a printf-style human message (may be NULL).
 * Fields with a NULL value are left out.
 */
void log_rec(enum log_level l, const struct log_kv *kv, size_t n, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* As log_rec, whatever the level set: for records another filter already chose (lws's). */
void log_rec_unfiltered(enum log_level l, const struct log_kv *kv, size_t n, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* Plain process-level messages: log_rec with only msg. log_warn_errno appends strerror(errno). */
void log_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_warn(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_notice(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_info(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_debug(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/*
 * Replaces where finished records go (tests capture them); NULL restores stderr.
 * The callback receives the rendered logfmt line without the newline.
 */
typedef void (*log_sink_fn)(enum log_level l, const char *line, void *arg);
void log_set_sink(log_sink_fn fn, void *arg);

#endif
