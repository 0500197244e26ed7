/* Records as logfmt lines on stderr (journald output comes with the systemd work). */
#include "wsbeat/log.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>

static enum log_level cur_level = LOG_LVL_INFO;
static log_sink_fn sink_fn;
static void *sink_arg;

static const char *const level_names[] = {"error", "warning", "notice", "info", "debug"};

void log_set_level(enum log_level l)
{
	cur_level = l;
}

enum log_level log_get_level(void)
{
	return cur_level;
}

int log_enabled(enum log_level l)
{
	return l <= cur_level;
}

int log_level_parse(const char *name, enum log_level *out)
{
	for (size_t i = 0; i < sizeof(level_names) / sizeof(level_names[0]); i++) {
		if (strcmp(name, level_names[i]) == 0) {
			*out = (enum log_level)i;
			return 0;
		}
	}
	return -1;
}

void log_set_sink(log_sink_fn fn, void *arg)
{
	sink_fn = fn;
	sink_arg = arg;
}

/* A small bounded string builder: output is cut, never overflowed. */
struct buf {
	char *p;
	size_t len, cap;
};

static void put(struct buf *b, const char *s, size_t n)
{
	if (b->len + n >= b->cap)
		n = b->cap - 1 - b->len;
	memcpy(b->p + b->len, s, n);
	b->len += n;
	b->p[b->len] = '\0';
}

static void puts_(struct buf *b, const char *s)
{
	put(b, s, strlen(s));
}

static int needs_quotes(const char *v)
{
	if (*v == '\0')
		return 1;
	for (; *v; v++)
		if (*v <= ' ' || *v == '"' || *v == '=' || *v == '\\' || *v == 0x7f)
			return 1;
	return 0;
}

static void put_value(struct buf *b, const char *v)
{
	char esc[8];

	if (!needs_quotes(v)) {
		puts_(b, v);
		return;
	}
	puts_(b, "\"");
	for (; *v; v++) {
		unsigned char c = (unsigned char)*v;
		if (c == '"' || c == '\\') {
			esc[0] = '\\';
			esc[1] = (char)c;
			put(b, esc, 2);
		} else if (c == '\n') {
			puts_(b, "\\n");
		} else if (c == '\t') {
			puts_(b, "\\t");
		} else if (c < ' ' || c == 0x7f) {
			snprintf(esc, sizeof(esc), "\\x%02x", c);
			puts_(b, esc);
		} else {
			put(b, (const char *)&c, 1);
		}
	}
	puts_(b, "\"");
}

static void put_ts(struct buf *b)
{
	struct timeval tv;
	struct tm tm;
	char ts[96];

	gettimeofday(&tv, NULL);
	gmtime_r(&tv.tv_sec, &tm);
	snprintf(ts, sizeof(ts), "ts=%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900,
	         tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
	         (int)(tv.tv_usec / 1000));
	puts_(b, ts);
}

static void emit(enum log_level l, const struct log_kv *kv, size_t n, const char *fmt, va_list ap)
{
	char line[2048], msg[1024];
	struct buf b = {line, 0, sizeof(line)};

	line[0] = '\0';
	put_ts(&b);
	puts_(&b, " level=");
	puts_(&b, level_names[l]);
	for (size_t i = 0; i < n; i++) {
		if (!kv[i].val)
			continue;
		puts_(&b, " ");
		puts_(&b, kv[i].key);
		puts_(&b, "=");
		put_value(&b, kv[i].val);
	}
	if (fmt) {
		vsnprintf(msg, sizeof(msg), fmt, ap);
		puts_(&b, " msg=");
		put_value(&b, msg);
	}
	if (sink_fn) {
		sink_fn(l, line, sink_arg);
		return;
	}
	fprintf(stderr, "%s\n", line);
}

void log_rec(enum log_level l, const struct log_kv *kv, size_t n, const char *fmt, ...)
{
	va_list ap;

	if (!log_enabled(l))
		return;
	va_start(ap, fmt);
	emit(l, kv, n, fmt, ap);
	va_end(ap);
}

#define LOG_PLAIN(fn, lvl)                                                                         \
	void fn(const char *fmt, ...)                                                              \
	{                                                                                          \
		va_list ap;                                                                        \
		if (!log_enabled(lvl))                                                             \
			return;                                                                    \
		va_start(ap, fmt);                                                                 \
		emit(lvl, NULL, 0, fmt, ap);                                                       \
		va_end(ap);                                                                        \
	}

LOG_PLAIN(log_error, LOG_LVL_ERROR)
LOG_PLAIN(log_warn, LOG_LVL_WARNING)
LOG_PLAIN(log_notice, LOG_LVL_NOTICE)
LOG_PLAIN(log_info, LOG_LVL_INFO)
LOG_PLAIN(log_debug, LOG_LVL_DEBUG)
