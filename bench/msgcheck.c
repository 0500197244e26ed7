/*
 * bench/msgcheck: checks a message-path capture (JSONL) against what bench/msgsrv sent, and
 * measures the lag from the server's send time to the client's capture time.
 *
 * Each line of the capture is a record {"ts":T,...,"data":"<the message as a JSON string>"}
 * with T either wsbeat's RFC 3339 string ("2026-12-03T14:00:00.123456Z") or a number of µs
 * since the epoch (the peers). Lines without a message number (wsbeat's open/closed records,
 * answers to heartbeats) are counted and skipped. From the message: sid (the server's
 * connection), seq, and the server's send time ts (µs, CLOCK_REALTIME), found as \"sid\":,
 * \"seq\":, \"ts\": in the escaped string (or unescaped, if a client wrote the object itself).
 *
 * Per sid the numbers must run 1, 2, 3 ... without gap or repeat, and end where the server's
 * dump (--dump: "sid last_seq" lines, written when it paused) says it stopped: anything else
 * is lost. Lag = capture ts - send ts, over the lines whose capture ts lies in [--from, --to)
 * (µs since the epoch; the measured window); those lines are also the window's message count.
 *
 * Prints one line: key=value ... (records, sids, in_window, lost, gaps, dups, missing_tail,
 * extra_sids, lag_p50_us, lag_p90_us, lag_p99_us, lag_max_us, neg_lag, bad_lines, bytes).
 *
 * usage: msgcheck --capture FILE --dump FILE [--from US --to US]
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#define HIST_US 2000000 /* 1 µs buckets up to 2 s; beyond, kept and sorted */

static uint64_t *last_seq, *server_last;
static size_t n_sid;
static uint32_t *hist;
static int64_t *over;
static size_t n_over, cap_over;

static void grow_sid(size_t sid)
{
	if (sid < n_sid)
		return;
	size_t n = n_sid ? n_sid : 8192;
	while (n <= sid)
		n *= 2;
	last_seq = realloc(last_seq, n * sizeof(*last_seq));
	server_last = realloc(server_last, n * sizeof(*server_last));
	if (!last_seq || !server_last) {
		fprintf(stderr, "msgcheck: out of memory\n");
		exit(1);
	}
	memset(last_seq + n_sid, 0, (n - n_sid) * sizeof(*last_seq));
	memset(server_last + n_sid, 0, (n - n_sid) * sizeof(*server_last));
	n_sid = n;
}

/* days since 1970-01-01 of a civil date (H. Hinnant's algorithm). */
static int64_t days_from_civil(int64_t y, unsigned m, unsigned d)
{
	y -= m <= 2;
	int64_t era = (y >= 0 ? y : y - 399) / 400;
	unsigned yoe = (unsigned)(y - era * 400);
	unsigned doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
	unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
	return era * 146097 + (int64_t)doe - 719468;
}

static int num(const char *p, const char *e, int n, int64_t *out)
{
	int64_t v = 0;
	if (e - p < n)
		return -1;
	for (int i = 0; i < n; i++) {
		if (p[i] < '0' || p[i] > '9')
			return -1;
		v = v * 10 + (p[i] - '0');
	}
	*out = v;
	return 0;
}

/* The capture ts at p (after {"ts":), µs since the epoch, or -1. */
static int64_t capture_ts(const char *p, const char *e)
{
	int64_t y, mo, d, h, mi, s, us;

	if (p < e && *p == '"') {
		p++;
		/* 2026-12-03T14:00:00.123456Z */
		if (e - p < 27 || num(p, e, 4, &y) || num(p + 5, e, 2, &mo) ||
		    num(p + 8, e, 2, &d) || num(p + 11, e, 2, &h) || num(p + 14, e, 2, &mi) ||
		    num(p + 17, e, 2, &s) || num(p + 20, e, 6, &us))
			return -1;
		return ((days_from_civil(y, (unsigned)mo, (unsigned)d) * 24 + h) * 60 + mi) * 60 *
		           1000000 +
		       s * 1000000 + us;
	}
	int64_t v = 0;
	int any = 0;
	while (p < e && *p >= '0' && *p <= '9') {
		v = v * 10 + (*p++ - '0');
		any = 1;
	}
	/* a fraction (a peer writing seconds or ms as a float) is not expected: µs integers */
	return any ? v : -1;
}

/* The integer after key (e.g. "seq") followed by \": or ": in [p, e); -1 if absent. */
static int64_t field(const char *p, const char *e, const char *key, const char **after)
{
	size_t kl = strlen(key);
	const char *q = p;

	while ((q = memmem(q, (size_t)(e - q), key, kl))) {
		const char *r = q + kl;
		if (r < e && *r == '\\')
			r++;
		if (r + 1 < e && r[0] == '"' && r[1] == ':') {
			int64_t v = 0;
			int any = 0;
			r += 2;
			while (r < e && *r >= '0' && *r <= '9') {
				v = v * 10 + (*r++ - '0');
				any = 1;
			}
			if (any) {
				if (after)
					*after = r;
				return v;
			}
		}
		q += kl;
	}
	return -1;
}

static int cmp64(const void *a, const void *b)
{
	int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
	return x < y ? -1 : x > y;
}

static int64_t pctl(uint64_t total, double q)
{
	uint64_t want = (uint64_t)(q * (double)(total - 1)), seen = 0;
	for (size_t i = 0; i < HIST_US; i++) {
		seen += hist[i];
		if (seen > want)
			return (int64_t)i;
	}
	return over[want - seen];
}

int main(int argc, char **argv)
{
	const char *cap = NULL, *dumpf = NULL;
	int64_t from = INT64_MIN, to = INT64_MAX;
	uint64_t lines = 0, records = 0, other = 0, bad = 0, gaps = 0, dups = 0, in_win = 0,
	         neg = 0, sids = 0, missing_tail = 0, extra = 0, server_total = 0, got = 0,
	         unseen_sids = 0;
	int64_t lag_max = INT64_MIN;

	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--capture") && i + 1 < argc)
			cap = argv[++i];
		else if (!strcmp(argv[i], "--dump") && i + 1 < argc)
			dumpf = argv[++i];
		else if (!strcmp(argv[i], "--from") && i + 1 < argc)
			from = atoll(argv[++i]);
		else if (!strcmp(argv[i], "--to") && i + 1 < argc)
			to = atoll(argv[++i]);
		else {
			fprintf(stderr,
			        "usage: msgcheck --capture FILE --dump FILE [--from US --to US]\n");
			return 64;
		}
	}
	if (!cap) {
		fprintf(stderr, "usage: msgcheck --capture FILE --dump FILE [--from US --to US]\n");
		return 64;
	}
	hist = calloc(HIST_US, sizeof(*hist));
	grow_sid(1);

	int fd = open(cap, O_RDONLY);
	struct stat sb;
	if (fd < 0 || fstat(fd, &sb) < 0) {
		perror(cap);
		return 1;
	}
	const char *m =
	    sb.st_size ? mmap(NULL, (size_t)sb.st_size, PROT_READ, MAP_PRIVATE, fd, 0) : "";
	if (m == MAP_FAILED) {
		perror("mmap");
		return 1;
	}
	if (sb.st_size)
		madvise((void *)m, (size_t)sb.st_size, MADV_SEQUENTIAL);
	const char *p = m, *end = m + sb.st_size;

	while (p < end) {
		const char *e = memchr(p, '\n', (size_t)(end - p)), *after = NULL;
		if (!e)
			e = end;
		lines++;
		if (e - p < 7 || memcmp(p, "{\"ts\":", 6)) {
			bad++;
			p = e + 1;
			continue;
		}
		const char *t = p + 6;
		while (t < e && *t == ' ')
			t++; /* Python's json.dumps writes "ts": 1796... */
		int64_t cts = capture_ts(t, e);
		int64_t sid = field(p, e, "\"sid", NULL);
		int64_t seq = field(p, e, "\"seq", &after);
		int64_t sts = after ? field(after, e, "\"ts", NULL) : -1;
		if (sid < 0 || seq < 0) {
			other++; /* open/closed records, heartbeat answers */
			p = e + 1;
			continue;
		}
		if (cts < 0 || sts < 0) {
			bad++;
			p = e + 1;
			continue;
		}
		records++;
		grow_sid((size_t)sid);
		if (!last_seq[sid])
			sids++;
		if ((uint64_t)seq == last_seq[sid] + 1)
			last_seq[sid] = (uint64_t)seq;
		else if ((uint64_t)seq > last_seq[sid]) {
			gaps += (uint64_t)seq - last_seq[sid] - 1;
			last_seq[sid] = (uint64_t)seq;
		} else
			dups++;
		if (cts >= from && cts < to) {
			int64_t lag = cts - sts;
			in_win++;
			if (lag > lag_max)
				lag_max = lag;
			if (lag < 0) {
				neg++;
				lag = 0;
			}
			if (lag < HIST_US)
				hist[lag]++;
			else {
				if (n_over == cap_over) {
					cap_over = cap_over ? 2 * cap_over : 4096;
					over = realloc(over, cap_over * sizeof(*over));
				}
				over[n_over++] = lag;
			}
		}
		p = e + 1;
	}
	if (dumpf) {
		FILE *f = fopen(dumpf, "r");
		unsigned long long s, q;
		if (!f) {
			perror(dumpf);
			return 1;
		}
		while (fscanf(f, "%llu %llu", &s, &q) == 2) {
			grow_sid(s);
			server_last[s] = q;
			server_total += q;
			if (!last_seq[s] && q)
				unseen_sids++;
		}
		fclose(f);
		for (size_t i = 0; i < n_sid; i++) {
			if (last_seq[i] > server_last[i])
				extra++; /* numbers the server never sent: a bug somewhere */
			else
				missing_tail += server_last[i] - last_seq[i];
			got += last_seq[i];
		}
	}
	if (n_over)
		qsort(over, n_over, sizeof(*over), cmp64);
	printf("records=%llu other_lines=%llu bad_lines=%llu sids=%llu in_window=%llu "
	       "gaps=%llu dups=%llu",
	       (unsigned long long)records, (unsigned long long)other, (unsigned long long)bad,
	       (unsigned long long)sids, (unsigned long long)in_win, (unsigned long long)gaps,
	       (unsigned long long)dups);
	if (dumpf)
		printf(" server_sent=%llu missing_tail=%llu unseen_sids=%llu extra_sids=%llu "
		       "lost=%llu",
		       (unsigned long long)server_total, (unsigned long long)missing_tail,
		       (unsigned long long)unseen_sids, (unsigned long long)extra,
		       (unsigned long long)(gaps + missing_tail));
	if (in_win)
		printf(" lag_p50_us=%lld lag_p90_us=%lld lag_p99_us=%lld lag_p999_us=%lld "
		       "lag_max_us=%lld neg_lag=%llu",
		       (long long)pctl(in_win, 0.5), (long long)pctl(in_win, 0.9),
		       (long long)pctl(in_win, 0.99), (long long)pctl(in_win, 0.999),
		       (long long)lag_max, (unsigned long long)neg);
	printf(" bytes=%lld\n", (long long)sb.st_size);
	(void)got;
	return 0;
}
