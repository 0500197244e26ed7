/* Records as structured journal entries under journald, else as logfmt lines on stderr. */
#include "wsbeat/log.h"

#include <ctype.h>
#include <errno.h>
#include <stdbool.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <systemd/sd-journal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>

static enum log_level cur_level = LOG_LVL_INFO;
static bool to_journal;
static log_sink_fn sink_fn;
static void *sink_arg;

static const char *const level_names[] = {"error", "warning", "notice", "info", "debug"};

/* A fixed MESSAGE_ID per event kind, explained by the catalog (systemd/wsbeat.catalog). */
static const struct {
	const char *event, *id;
} message_ids[] = {
    {"connecting", "f5c00b816e6a447d8a75c2d714fce5e5"},
    {"open", "204d23f9312c4ba0a444166eebaa4a85"},
    {"connect_error", "9334dac98b5846cb9d119b5503a75d70"},
    {"connect_command", "d8a71498127f4b4e8ebd8e2c67cef111"},
    {"closed", "2aa6946942e24482b81b8d92d19fa276"},
    {"heartbeat_timeout", "68908bfdbd3f4b1eb3fe9eeba695105b"},
    {"idle_timeout", "78fd9f0c08f04403bd0ed054d6b66fa1"},
    {"backoff", "b939f97f91de4ccabbabaa2dca505ab4"},
    {"reload", "21311bbd654249b9a7766b8baf51fc43"},
    {"status", "cc3de7ea4a8c4a42ba6976c5d318d176"},
    {"start", "11c9f0ac057444d7a4d44c4a2aac7f5d"},
    {"stop", "d315c24b12a94d278faa2e9e8c1c27a5"},
    {"tls_unverified", "40de125a68994f588a11e79cb49667de"},
    {"reply_skipped", "a09d1d5b3e88466797ca25d21086f9eb"},
    {"rotating", "f2f619facb2e4164afde73cd9fca4032"},
    {"rotated", "60f2e20f23c543e4a87306fd3390f240"},
    {"rotation_cancelled", "da7b20d3debd4c88a24ab3af430383ad"},
};

/* journald connects our stderr and names it in $JOURNAL_STREAM ("device:inode"). */
void log_init(void)
{
	const char *js = getenv("JOURNAL_STREAM");
	unsigned long long dev, ino;
	struct stat st;

	to_journal = js && sscanf(js, "%llu:%llu", &dev, &ino) == 2 && fstat(2, &st) == 0 &&
	             st.st_dev == (dev_t)dev && st.st_ino == (ino_t)ino;
}

int log_to_journal(void)
{
	return to_journal;
}

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

static const char *message_id(const char *event)
{
	for (size_t i = 0; event && i < sizeof(message_ids) / sizeof(message_ids[0]); i++)
		if (strcmp(message_ids[i].event, event) == 0)
			return message_ids[i].id;
	return NULL;
}

static const char *field(const struct log_kv *kv, size_t n, const char *key)
{
	for (size_t i = 0; i < n; i++)
		if (kv[i].val && strcmp(kv[i].key, key) == 0)
			return kv[i].val;
	return NULL;
}

/* One journal entry: MESSAGE, PRIORITY, MESSAGE_ID and a WSBEAT_<KEY> field per value. */
static void emit_journal(enum log_level l, const struct log_kv *kv, size_t n, const char *msg)
{
	static const int prio[] = {3, 4, 5, 6, 7};
	enum { MAX_FIELDS = 16, FIELD_LEN = 512 };
	char fields[MAX_FIELDS][FIELD_LEN];
	struct iovec iov[MAX_FIELDS + 4];
	const char *feed = field(kv, n, "feed"), *id = message_id(field(kv, n, "event"));
	char message[1200], priority[16], mid[48];
	int k = 0;

	snprintf(message, sizeof(message), "MESSAGE=%s%s%s", feed ? feed : "", feed ? ": " : "",
	         msg ? msg : "");
	snprintf(priority, sizeof(priority), "PRIORITY=%d", prio[l]);
	iov[k++] = (struct iovec){message, strlen(message)};
	iov[k++] = (struct iovec){priority, strlen(priority)};
	iov[k++] = (struct iovec){(char *)"SYSLOG_IDENTIFIER=wsbeat", 24};
	if (id) {
		snprintf(mid, sizeof(mid), "MESSAGE_ID=%s", id);
		iov[k++] = (struct iovec){mid, strlen(mid)};
	}
	for (size_t i = 0; i < n && k < (int)(sizeof(iov) / sizeof(iov[0])); i++) {
		char *f = fields[i < MAX_FIELDS ? i : MAX_FIELDS - 1];
		int len, j;
		if (!kv[i].val || i >= MAX_FIELDS)
			continue;
		len = snprintf(f, FIELD_LEN, "WSBEAT_%s=%s", kv[i].key, kv[i].val);
		for (j = 7; f[j] != '='; j++)
			f[j] = (char)toupper((unsigned char)f[j]);
		iov[k++] = (struct iovec){f, len < FIELD_LEN ? (size_t)len : FIELD_LEN - 1};
	}
	sd_journal_sendv(iov, k);
}

static void emit(enum log_level l, const struct log_kv *kv, size_t n, const char *fmt, va_list ap)
{
	char line[2048], msg[1024] = "";
	struct buf b = {line, 0, sizeof(line)};

	if (fmt)
		vsnprintf(msg, sizeof(msg), fmt, ap);
	if (to_journal && !sink_fn) {
		emit_journal(l, kv, n, fmt ? msg : NULL);
		return;
	}
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

void log_rec_unfiltered(enum log_level l, const struct log_kv *kv, size_t n, const char *fmt, ...)
{
	va_list ap;

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
