/* Unit tests for sink: exact record bytes, every byte of text and base64 of binary parsed back,
 * the buffer bound with drops counted and logged (a FIFO nobody reads), two feeds sharing a
 * file, reopen after rename, flush_all with a blocked and a slow reader, stdout on a pipe, and
 * the texts of sink_check. Every test works in its own mkdtemp directory. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "wsbeat/log.h"
#include "wsbeat/sink.h"
#include "wsbeat/timerq.h"
#include "wsbeat/util.h"

#define TS0 (1795701600LL * 1000000 + 123456) /* 2026-11-26T14:00:00.123456Z */

static struct {
	char dir[64];
	struct timerq tq;
	struct sinks *ss;
	int n_drop_logs;
	char last_log[1024];
} fx;

static void capture_log(enum log_level l, const char *line, void *arg)
{
	if (strstr(line, "event=sink_drop"))
		fx.n_drop_logs++;
	snprintf(fx.last_log, sizeof(fx.last_log), "%s", line);
}

static int setup(void **state)
{
	memset(&fx, 0, sizeof(fx));
	strcpy(fx.dir, "/tmp/wsbeat-sink-XXXXXX");
	assert_non_null(mkdtemp(fx.dir));
	tq_init(&fx.tq, 0, NULL, NULL);
	fx.ss = sinks_new(&fx.tq);
	assert_non_null(fx.ss);
	log_set_sink(capture_log, NULL);
	return 0;
}

static int rm_one(const char *p, const struct stat *st, int flag, struct FTW *ftw)
{
	return remove(p);
}

static int teardown(void **state)
{
	sinks_free(fx.ss);
	tq_fini(&fx.tq);
	log_set_sink(NULL, NULL);
	nftw(fx.dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
	return 0;
}

/* A path inside the test directory; the last four returned stay valid. */
static const char *in_dir(const char *name)
{
	static char paths[4][256];
	static unsigned next;
	char *p = paths[next++ % 4];

	snprintf(p, sizeof(paths[0]), "%s/%s", fx.dir, name);
	return p;
}

static struct sink *get_file(const char *path)
{
	struct cfg_sink c = {.type = SINK_FILE, .path = (char *)path};
	char err[512];
	struct sink *s = sinks_get(fx.ss, &c, err, sizeof(err));

	if (!s)
		fail_msg("sinks_get %s: %s", path, err);
	return s;
}

/* Plays the loop: fires the timer queue as time passes until s has written everything. */
static void pump(struct sink *s)
{
	int64_t give_up = mono_us() + 5000000;

	while (sink_pending(s) > 0) {
		int64_t now = mono_us(), wake = tq_next_wake(&fx.tq);
		assert_true(now < give_up);
		assert_true(wake != TQ_NEVER); /* data pending means the timer is armed */
		if (wake > now)
			usleep((useconds_t)(wake - now));
		tq_run(&fx.tq, mono_us());
	}
}

static char *slurp(const char *path)
{
	int fd = open(path, O_RDONLY);
	struct stat st;
	char *buf;

	assert_true(fd >= 0 && fstat(fd, &st) == 0);
	buf = malloc((size_t)st.st_size + 1);
	assert_int_equal(read(fd, buf, (size_t)st.st_size), st.st_size);
	buf[st.st_size] = '\0';
	close(fd);
	return buf;
}

/* ---- a small checker for our lines: one flat object of strings and integers ---- */

struct field {
	char key[16];
	long long num;
	unsigned char *str; /* decoded, \u00XX read as the byte XX */
	size_t len;
};

struct rec {
	struct field f[8];
	int n;
};

static const char *parse_string(const char *p, struct field *f)
{
	static const char from[] = "bfnrt\"\\/", to[] = "\b\f\n\r\t\"\\/";
	size_t cap = (size_t)(strchrnul(p, '\n') - p);

	assert_int_equal(*p++, '"');
	f->str = malloc(cap + 1);
	for (f->len = 0; *p != '"'; p++) {
		unsigned v;
		assert_true((unsigned char)*p >= 0x20);
		if (*p != '\\') {
			f->str[f->len++] = (unsigned char)*p;
		} else if (p[1] == 'u') {
			assert_int_equal(sscanf(p + 2, "%4x", &v), 1);
			assert_true(v < 0x100);
			f->str[f->len++] = (unsigned char)v;
			p += 5;
		} else {
			assert_non_null(strchr(from, p[1]));
			f->str[f->len++] = (unsigned char)to[strchr(from, p[1]) - from];
			p++;
		}
	}
	f->str[f->len] = '\0';
	return p + 1;
}

/* Parses one line (up to and including its '\n'); returns what follows it. */
static const char *parse_line(const char *p, struct rec *r)
{
	memset(r, 0, sizeof(*r));
	assert_int_equal(*p++, '{');
	while (*p != '}') {
		struct field *f = &r->f[r->n++], k = {0};
		char *end;
		assert_true(r->n <= 8);
		p = parse_string(p, &k);
		assert_true(k.len < sizeof(f->key));
		memcpy(f->key, k.str, k.len);
		free(k.str);
		assert_int_equal(*p++, ':');
		if (*p == '"') {
			p = parse_string(p, f);
		} else {
			f->num = strtoll(p, &end, 10);
			assert_true(end > p);
			p = end;
		}
		if (*p == ',')
			p++;
	}
	assert_int_equal(p[1], '\n');
	return p + 2;
}

static const struct field *field(const struct rec *r, const char *key)
{
	for (int i = 0; i < r->n; i++)
		if (!strcmp(r->f[i].key, key))
			return &r->f[i];
	fail_msg("no field %s", key);
	return NULL;
}

static void rec_free(struct rec *r)
{
	for (int i = 0; i < r->n; i++)
		free(r->f[i].str);
}

/* Checks every line of text and counts them; records per feed must carry conn 0, 1, 2, ... */
static size_t check_lines(const char *text, const char *feed, long long *next_seq)
{
	size_t n = 0;

	while (*text) {
		struct rec r;
		text = parse_line(text, &r);
		if (feed && !strcmp((char *)field(&r, "feed")->str, feed))
			assert_int_equal(field(&r, "conn")->num, (*next_seq)++);
		rec_free(&r);
		n++;
	}
	return n;
}

static size_t check_file(const char *path, const char *feed, long long *next_seq)
{
	char *text = slurp(path);
	size_t n = check_lines(text, feed, next_seq);

	free(text);
	return n;
}

/* ---- tests ---- */

/* Exact bytes of every kind of record, in a new file created 0640 (under umask 022). */
static void test_record_bytes(void **state)
{
	static const char text[] = "a\"b\\c\nd\0\xc3\xa9\xff";
	const char *path = in_dir("exact.jsonl");
	mode_t old = umask(022);
	struct sink *s = get_file(path);
	struct stat st;
	char *got;

	umask(old);
	assert_int_equal(stat(path, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0640);

	sink_open_record(s, TS0, "okx", 3, "wss://h/p");
	sink_message(s, TS0 + 1, "okx", 3, false, text, sizeof(text) - 1);
	sink_message(s, TS0 + 2, "okx", 3, true, "\x00\xff", 2);
	sink_message(s, TS0 + 3, "okx", 3, false, NULL, 0);
	sink_closed_record(s, TS0 + 4, "okx", 3, 1006, "connection lost");
	sink_open_record(s, 0, "a", 0, NULL);
	sink_closed_record(s, -1, "a", 4294967295u, 1000, NULL);
	pump(s);
	got = slurp(path);
	assert_string_equal(
	    got, "{\"ts\":\"2026-11-26T14:00:00.123456Z\",\"feed\":\"okx\",\"conn\":3,"
	         "\"event\":\"open\",\"url\":\"wss://h/p\"}\n"
	         "{\"ts\":\"2026-11-26T14:00:00.123457Z\",\"feed\":\"okx\",\"conn\":3,"
	         "\"type\":\"text\",\"data\":\"a\\\"b\\\\c\\nd\\u0000\xc3\xa9\\u00ff\"}\n"
	         "{\"ts\":\"2026-11-26T14:00:00.123458Z\",\"feed\":\"okx\",\"conn\":3,"
	         "\"type\":\"binary\",\"data\":\"AP8=\"}\n"
	         "{\"ts\":\"2026-11-26T14:00:00.123459Z\",\"feed\":\"okx\",\"conn\":3,"
	         "\"type\":\"text\",\"data\":\"\"}\n"
	         "{\"ts\":\"2026-11-26T14:00:00.123460Z\",\"feed\":\"okx\",\"conn\":3,"
	         "\"event\":\"closed\",\"code\":1006,\"reason\":\"connection lost\"}\n"
	         "{\"ts\":\"1970-01-01T00:00:00.000000Z\",\"feed\":\"a\",\"conn\":0,\"event\":"
	         "\"open\"}\n"
	         "{\"ts\":\"1969-12-31T23:59:59.999999Z\",\"feed\":\"a\",\"conn\":4294967295,"
	         "\"event\":\"closed\",\"code\":1000,\"reason\":\"\"}\n");
	free(got);
	assert_int_equal(sink_stats(s)->records, 7);
	assert_int_equal(sink_stats(s)->dropped_records, 0);
	sink_put(s);
}

/*
 * Every byte 0x00-0xff as text, alone and all together, must come back from the file unchanged;
 * binary of lengths 0 to 5 is base64 (RFC 4648's vectors).
 */
static void test_text_and_binary_parsed_back(void **state)
{
	static const char *const b64[] = {"", "Zg==", "Zm8=", "Zm9v", "Zm9vYg==", "Zm9vYmE="};
	const char *path = in_dir("bytes.jsonl");
	struct sink *s = get_file(path);
	unsigned char all[256];
	char *text;
	const char *p;
	struct rec r;

	for (unsigned c = 0; c < 256; c++) {
		all[c] = (unsigned char)c;
		sink_message(s, TS0, "f", c, false, &all[c], 1);
	}
	sink_message(s, TS0, "f", 256, false, all, sizeof(all));
	for (size_t n = 0; n < 6; n++)
		sink_message(s, TS0, "f", (unsigned)n, true, "foobar", n);
	pump(s);
	p = text = slurp(path);
	for (unsigned c = 0; c <= 256; c++) {
		p = parse_line(p, &r);
		assert_string_equal((char *)field(&r, "type")->str, "text");
		assert_int_equal(field(&r, "data")->len, c < 256 ? 1 : 256);
		assert_memory_equal(field(&r, "data")->str, c < 256 ? &all[c] : all,
		                    c < 256 ? 1 : 256);
		rec_free(&r);
	}
	for (size_t n = 0; n < 6; n++) {
		p = parse_line(p, &r);
		assert_string_equal((char *)field(&r, "type")->str, "binary");
		assert_int_equal(field(&r, "data")->len, strlen(b64[n]));
		assert_memory_equal(field(&r, "data")->str, b64[n], strlen(b64[n]));
		rec_free(&r);
	}
	assert_int_equal(*p, '\0');
	free(text);
	sink_put(s);
}

/* Two feeds, one file (named twice, once through "./"): whole lines, each feed in order. */
static void test_two_feeds_share_file(void **state)
{
	const char *path = in_dir("shared.jsonl"), *other = in_dir("./shared.jsonl");
	char payload[1500];
	struct sink *a, *b, *c;
	long long seq_a = 0, seq_b = 0;

	a = get_file(path);
	b = get_file(path);
	c = get_file(other);
	assert_ptr_equal(a, b);
	assert_ptr_equal(a, c);
	memset(payload, 'x', sizeof(payload));
	for (unsigned i = 0; i < 2000; i++) {
		sink_message(a, TS0, "feed-a", i, false, payload, sizeof(payload));
		sink_message(b, TS0, "feed-b", i, true, payload, i % sizeof(payload));
		if (i % 300 == 0)
			tq_run(&fx.tq, mono_us());
	}
	pump(a);
	assert_int_equal(check_file(path, "feed-a", &seq_a), 4000);
	assert_int_equal(check_file(path, "feed-b", &seq_b), 4000);
	assert_true(seq_a == 2000 && seq_b == 2000);
	assert_int_equal(sink_stats(a)->records, 4000);
	sink_put(a);
	sink_put(b);
	sink_put(c);
}

/* logrotate: write, rename, more buffered, reopen, write: complete lines, nothing lost. */
static void test_reopen_after_rename(void **state)
{
	const char *path = in_dir("rot.jsonl"), *rotated = in_dir("rot.jsonl.1");
	struct sink *s = get_file(path);
	long long seq = 0;

	for (unsigned i = 0; i < 100; i++)
		sink_message(s, TS0, "f", i, false, "before", 6);
	pump(s);
	assert_int_equal(rename(path, rotated), 0);
	for (unsigned i = 100; i < 150; i++) /* buffered across the reopen: new file is fine */
		sink_message(s, TS0, "f", i, false, "between", 7);
	sinks_reopen_all(fx.ss);
	for (unsigned i = 150; i < 200; i++)
		sink_message(s, TS0, "f", i, false, "after", 5);
	assert_int_equal(sinks_flush_all(fx.ss, 1000), 0);
	assert_int_equal(check_file(rotated, "f", &seq), 100);
	assert_int_equal(check_file(path, "f", &seq), 100);
	assert_int_equal(seq, 200);
	assert_non_null(strstr(fx.last_log, "event=reopen"));
	sink_put(s);
}

/*
 * A short write leaves half a record in the file (RLIMIT_FSIZE makes one happen); at reopen its
 * rest still goes to the old file, so both files hold only whole lines.
 */
static void test_reopen_finishes_partial_record(void **state)
{
	const char *path = in_dir("part.jsonl"), *rotated = in_dir("part.jsonl.1");
	struct rlimit saved, small = {.rlim_cur = 2500};
	char payload[1000];
	struct sink *s = get_file(path);
	long long seq = 0;

	memset(payload, 'z', sizeof(payload));
	for (unsigned i = 0; i < 10; i++)
		sink_message(s, TS0, "f", i, false, payload, sizeof(payload));
	signal(SIGXFSZ, SIG_IGN);
	getrlimit(RLIMIT_FSIZE, &saved);
	small.rlim_max = saved.rlim_max;
	assert_int_equal(setrlimit(RLIMIT_FSIZE, &small), 0);
	tq_run(&fx.tq, mono_us());
	assert_int_equal(sink_stats(s)->bytes_written, 2500); /* mid-record */
	assert_int_equal(setrlimit(RLIMIT_FSIZE, &saved), 0);
	assert_int_equal(rename(path, rotated), 0);
	sinks_reopen_all(fx.ss);
	assert_int_equal(sinks_flush_all(fx.ss, 1000), 0);
	assert_int_equal(check_file(rotated, "f", &seq), 3);
	assert_int_equal(check_file(path, "f", &seq), 7);
	sink_put(s);
}

/* Opens the read end of a FIFO first, so that the sink's non-blocking open succeeds. */
static int make_fifo(const char *path)
{
	int rfd;

	assert_int_equal(mkfifo(path, 0600), 0);
	rfd = open(path, O_RDONLY | O_NONBLOCK);
	assert_true(rfd >= 0);
	return rfd;
}

static void test_bound_drops_counted(void **state)
{
	const char *path = in_dir("fifo");
	char *payload = malloc(60000), *got = NULL;
	size_t got_len = 0, cap = 0;
	int rfd = make_fifo(path), n = 300;
	struct sink *s = get_file(path);
	int64_t t0 = mono_us(), fake;
	long long seq = -1;

	memset(payload, 'p', 60000);
	for (int i = 0; i < n; i++) {
		sink_message(s, TS0, "f", (unsigned)i, false, payload, 60000);
		tq_run(&fx.tq, mono_us());
	}
	assert_true(sink_stats(s)->dropped_records > 0);
	assert_int_equal(sink_stats(s)->records + sink_stats(s)->dropped_records, n);
	assert_true(sink_pending(s) <= SINK_BUFFER_MAX);
	assert_true(fx.n_drop_logs >= 1);
	assert_true(fx.n_drop_logs <= 1 + (mono_us() - t0) / 1000000);
	assert_non_null(strstr(fx.last_log, "dropped="));
	assert_non_null(strstr(fx.last_log, path));
	/* Now read: everything accepted arrives, in whole lines. The clock is played forwards. */
	fake = mono_us();
	while (sink_pending(s) > 0 || got_len == 0 || got[got_len - 1] != '\n') {
		ssize_t r;
		if (cap - got_len < 65536)
			got = realloc(got, cap = cap * 2 + 65536);
		r = read(rfd, got + got_len, cap - got_len - 1);
		if (r > 0)
			got_len += (size_t)r;
		tq_run(&fx.tq, fake += 200000); /* past any EAGAIN back-off */
	}
	got[got_len] = '\0';
	assert_int_equal(check_lines(got, NULL, &seq), sink_stats(s)->records);
	assert_int_equal(sink_stats(s)->bytes_written, got_len);
	close(rfd);
	free(got);
	free(payload);
	sink_put(s);
}

static void test_flush_all(void **state)
{
	const char *path = in_dir("flush.jsonl"), *fifo = in_dir("flush.fifo");
	const char *out = in_dir("flush.out");
	char payload[2000];
	struct sink *s = get_file(path), *f;
	long long seq = 0;
	int64_t t0;
	pid_t pid;
	int rfd, st;

	for (unsigned i = 0; i < 1000; i++)
		sink_message(s, TS0, "f", i, false, "x", 1);
	rfd = make_fifo(fifo);
	f = get_file(fifo);
	memset(payload, 'y', sizeof(payload));
	for (unsigned i = 0; i < 100; i++)
		sink_message(f, TS0, "g", i, false, payload, sizeof(payload)); /* > a pipe */
	t0 = mono_us();
	assert_int_equal(sinks_flush_all(fx.ss, 100), -1); /* nobody reads the FIFO */
	assert_true(mono_us() - t0 >= 90000 && mono_us() - t0 < 1000000);
	assert_int_equal(check_file(path, "f", &seq), 1000); /* written all the same */
	pid = fork();
	if (pid == 0) { /* a slow reader: starts late, copies everything to a file */
		execlp("sh", "sh", "-c", "sleep 0.1; cat \"$1\" >\"$2\"", "sh", fifo, out, NULL);
		_exit(127);
	}
	assert_int_equal(sinks_flush_all(fx.ss, 5000), 0);
	sink_put(f); /* the writer closes: the reader sees EOF */
	close(rfd);
	assert_int_equal(waitpid(pid, &st, 0), pid);
	seq = 0;
	assert_int_equal(check_file(out, "g", &seq), 100);
	sink_put(s);
}

/*
 * The last put with data pending leaves the writing to the timer; a get revives the sink. The
 * file's earlier content is kept: sinks append.
 */
static void test_put_keeps_data(void **state)
{
	const char *path = in_dir("put.jsonl");
	FILE *f = fopen(path, "w");
	struct sink *s, *again;
	long long seq = 0;
	char *text;

	fputs("{\"feed\":\"old\",\"conn\":7}\n", f);
	fclose(f);
	s = get_file(path);
	for (unsigned i = 0; i < 10; i++)
		sink_message(s, TS0, "f", i, false, "x", 1);
	sink_put(s);
	again = get_file(path);
	assert_ptr_equal(again, s);
	for (unsigned i = 10; i < 20; i++)
		sink_message(again, TS0, "f", i, false, "x", 1);
	sink_put(again);
	while (tq_next_wake(&fx.tq) != TQ_NEVER) /* the timer writes, then frees the sink */
		tq_run(&fx.tq, mono_us() + 1000);
	text = slurp(path);
	assert_int_equal(check_lines(text, "f", &seq), 21);
	assert_true(!strncmp(text, "{\"feed\":\"old\",\"conn\":7}\n{", 25));
	free(text);
}

/*
 * A tick writes more than one chunk to a file that takes it: under load the loop wakes about
 * once per io_slack, and one chunk per wake-up would cap a capture at 256 KiB x 100/s. 2 MiB
 * pending (8 chunks) must be out within 4 ticks even if a tick loses its time budget to a
 * preemption or two.
 */
static void test_tick_writes_many_chunks(void **state)
{
	const char *path = in_dir("burst.jsonl");
	struct sink *s = get_file(path);
	static char payload[1000];
	int ticks = 0;
	long long seq = -1;
	char *text;
	unsigned n = 0;

	memset(payload, 'm', sizeof(payload));
	while (sink_pending(s) < 8 * SINK_WRITE_CHUNK)
		sink_message(s, TS0, "f", n++, false, payload, sizeof(payload));
	while (sink_pending(s) > 0 && ticks < 10) {
		tq_run(&fx.tq, tq_next_wake(&fx.tq));
		ticks++;
	}
	assert_int_equal(sink_pending(s), 0);
	assert_in_range(ticks, 1, 4);
	text = slurp(path);
	assert_int_equal(check_lines(text, NULL, &seq), n);
	free(text);
	sink_put(s);
}

/*
 * A loop too busy to run the timer does not lose records to a file: a full buffer is written
 * out before a record would be dropped (a FIFO without a reader still drops: see above).
 */
static void test_full_buffer_written_not_dropped(void **state)
{
	const char *path = in_dir("busy.jsonl");
	struct sink *s = get_file(path);
	static char payload[1000];
	long long seq = -1;
	unsigned n = 0;
	char *text;

	memset(payload, 'b', sizeof(payload));
	while (sink_stats(s)->records < (SINK_BUFFER_MAX / sizeof(payload)) * 3 / 2) {
		sink_message(s, TS0, "f", n++, false, payload, sizeof(payload));
		assert_int_equal(sink_stats(s)->dropped_records, 0);
	}
	assert_true(sink_stats(s)->bytes_written > 0);
	pump(s);
	text = slurp(path);
	assert_int_equal(check_lines(text, NULL, &seq), n);
	free(text);
	assert_int_equal(fx.n_drop_logs, 0);
	sink_put(s);
}

/* stdout on a pipe becomes non-blocking while the sink lives; on a regular file never. */
static void test_stdout(void **state)
{
	struct cfg_sink c = {.type = SINK_STDOUT};
	int saved = dup(STDOUT_FILENO), p[2], fd;
	char err[256], buf[512];
	struct sink *s, *s2;
	ssize_t n;

	fflush(stdout);
	assert_int_equal(pipe(p), 0);
	dup2(p[1], STDOUT_FILENO);
	s = sinks_get(fx.ss, &c, err, sizeof(err));
	s2 = sinks_get(fx.ss, &c, err, sizeof(err));
	assert_non_null(s);
	assert_ptr_equal(s, s2);
	assert_true(fcntl(STDOUT_FILENO, F_GETFL) & O_NONBLOCK);
	sink_closed_record(s, TS0, "f", 2, 1001, "going away");
	pump(s);
	n = read(p[0], buf, sizeof(buf) - 1);
	assert_true(n > 0);
	buf[n] = '\0';
	sink_put(s);
	sink_put(s2);
	assert_false(fcntl(STDOUT_FILENO, F_GETFL) & O_NONBLOCK);
	fd = open(in_dir("stdout.txt"), O_WRONLY | O_CREAT, 0600);
	dup2(fd, STDOUT_FILENO);
	s = sinks_get(fx.ss, &c, err, sizeof(err));
	assert_false(fcntl(STDOUT_FILENO, F_GETFL) & O_NONBLOCK);
	sink_put(s);
	dup2(saved, STDOUT_FILENO);
	close(saved), close(fd), close(p[0]), close(p[1]);
	assert_string_equal(buf,
	                    "{\"ts\":\"2026-11-26T14:00:00.123456Z\",\"feed\":\"f\",\"conn\":2,"
	                    "\"event\":\"closed\",\"code\":1001,\"reason\":\"going away\"}\n");
}

static void assert_check(const char *path, const char *want)
{
	struct cfg_sink c = {.type = SINK_FILE, .path = (char *)path};
	char err[512], err2[512];

	assert_int_equal(sink_check(&c, err, sizeof(err)), want ? -1 : 0);
	if (!want)
		return;
	assert_string_equal(err, want);
	assert_null(sinks_get(fx.ss, &c, err2, sizeof(err2)));
	assert_string_equal(err2, want);
}

/* As an unprivileged user (root may write anywhere), a read-only directory is refused. */
static void check_unwritable_dir(void)
{
	const char *ro = in_dir("ro");
	char path[300], want[700], got[700] = "";
	int p[2], st;
	pid_t pid;

	snprintf(path, sizeof(path), "%s/x.jsonl", ro);
	assert_int_equal(mkdir(ro, 0555), 0);
	chmod(ro, 0555);
	chmod(fx.dir, 0755);
	assert_int_equal(pipe(p), 0);
	pid = fork();
	if (pid == 0) {
		struct cfg_sink c = {.type = SINK_FILE, .path = path};
		char err[600] = "";
		if (getuid() == 0 && (setgid(65534) < 0 || setuid(65534) < 0))
			_exit(1);
		sink_check(&c, err, sizeof(err));
		_exit(write(p[1], err, strlen(err)) < 0);
	}
	close(p[1]);
	assert_true(read(p[0], got, sizeof(got) - 1) > 0);
	close(p[0]);
	waitpid(pid, &st, 0);
	snprintf(want, sizeof(want),
	         "sink.path %s: directory %s is not writable (Permission denied)", path, ro);
	assert_string_equal(got, want);
}

static void test_check_texts(void **state)
{
	struct cfg_sink discard = {.type = SINK_DISCARD}, out = {.type = SINK_STDOUT};
	char path[256], want[600], err[256] = "x";
	struct stat st;

	snprintf(path, sizeof(path), "%s/nodir/f.jsonl", fx.dir);
	snprintf(want, sizeof(want), "sink.path %s: directory %s/nodir does not exist", path,
	         fx.dir);
	assert_check(path, want);
	snprintf(path, sizeof(path), "%s/file/f.jsonl", fx.dir);
	fclose(fopen(in_dir("file"), "w"));
	snprintf(want, sizeof(want), "sink.path %s: %s/file is not a directory", path, fx.dir);
	assert_check(path, want);
	snprintf(want, sizeof(want), "sink.path %s: is a directory", fx.dir);
	assert_check(fx.dir, want);
	assert_check(in_dir("fine.jsonl"), NULL);
	assert_int_equal(stat(in_dir("fine.jsonl"), &st), -1); /* checking creates nothing */
	check_unwritable_dir();
	assert_int_equal(sink_check(&discard, err, sizeof(err)), 0);
	assert_int_equal(sink_check(&out, err, sizeof(err)), 0);
	assert_null(sinks_get(fx.ss, &discard, err, sizeof(err)));
	assert_string_equal(err, "");
	sink_message(NULL, TS0, "f", 1, false, "x", 1); /* discard: records are no-ops */
	sink_put(NULL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_record_bytes, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_text_and_binary_parsed_back, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_two_feeds_share_file, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_reopen_after_rename, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_reopen_finishes_partial_record, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_bound_drops_counted, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_flush_all, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_put_keeps_data, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_tick_writes_many_chunks, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_full_buffer_written_not_dropped, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_stdout, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_check_texts, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
