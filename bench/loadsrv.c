/*
 * bench/loadsrv: the benchmark's load server (libwebsockets 4.1, libev backend).
 *
 * Holds many WebSocket connections on several loopback listeners (ws and wss), answers PING
 * with PONG (lws does that itself) and the text "ping" with "pong", and records the arrival
 * time of every heartbeat (a PING frame, or a complete text frame) per connection.
 *
 * lws answers PINGs inside its parser without telling the protocol callback, so the arrival
 * times are taken one layer down: this executable interposes recv() (plain connections) and
 * SSL_read() (TLS) that libwebsockets.so calls, and runs a tiny frame-header scanner over the
 * bytes of each accepted socket. Cost: a few ns per received byte, no allocation per beat.
 *
 * Records live in memory (8 bytes per heartbeat). SIGUSR1 writes them to DUMP.SEQ (atomic
 * rename) and starts a new window; SIGTERM/SIGINT exit. Live counters are in a small mmap'd
 * file (--stats FILE, 16 little-endian uint64):
 *   0 magic 0x57534245415453  1 open  2 established_total  3 closed_total  4 beats_total
 *   5 text_pongs_sent  6 dumps_written  7 records_in_window  8 pid  9 mono_us_last_established
 *   10 listeners
 * Dump file: uint64 magic 0x57534244554d50, uint64 window start (CLOCK_MONOTONIC µs),
 *   uint64 window end, uint64 count, then count × {uint32 conn, uint32 µs since start}.
 *
 * usage: loadsrv --stats FILE --dump PREFIX [--cert F --key F]
 *                [--ws ADDR:PORT]... [--wss ADDR:PORT]...
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <libwebsockets.h>
#include <openssl/ssl.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#define MAX_FDS    65536
#define MAX_LISTEN 64

enum {
	ST_MAGIC,
	ST_OPEN,
	ST_EST,
	ST_CLOSED,
	ST_BEATS,
	ST_TPONGS,
	ST_DUMPS,
	ST_WREC,
	ST_PID,
	ST_LAST_EST,
	ST_LISTENERS,
	ST_N = 16
};

static volatile uint64_t *st;

/* Per-socket scanner of the client->server byte stream. */
struct scan {
	uint32_t conn; /* 0: not an accepted connection */
	uint8_t phase; /* 0 HTTP request, 1 frame header, 2 payload */
	uint8_t crlf;  /* progress through "\r\n\r\n" */
	uint8_t have, need;
	uint8_t hdr[14];
	uint64_t left; /* payload bytes still to skip */
};
static struct scan *scans;
static uint32_t next_conn = 1;

struct rec {
	uint32_t conn, dt_us;
};
static struct rec *recs;
static size_t n_recs, cap_recs;
static uint64_t win_start_us;

static uint64_t mono_us(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

static void record(uint32_t conn, uint64_t now)
{
	if (n_recs == cap_recs) {
		size_t nc = cap_recs ? cap_recs * 2 : 1 << 20;
		struct rec *r = realloc(recs, nc * sizeof(*r));
		if (!r)
			return; /* dropped: visible as a lower beat count */
		recs = r;
		cap_recs = nc;
	}
	recs[n_recs++] = (struct rec){conn, (uint32_t)(now - win_start_us)};
	st[ST_BEATS]++;
	st[ST_WREC] = n_recs;
}

static void observe(int fd, const unsigned char *p, size_t n)
{
	struct scan *s;
	uint64_t now = 0;

	if (fd < 0 || fd >= MAX_FDS || !scans[fd].conn)
		return;
	s = &scans[fd];
	while (n) {
		if (s->phase == 0) {
			static const char end[] = "\r\n\r\n";
			unsigned char c = *p++;
			n--;
			s->crlf = c == (unsigned char)end[s->crlf] ? s->crlf + 1 : (c == '\r');
			if (s->crlf == 4) {
				s->phase = 1;
				s->have = 0;
				s->need = 2;
			}
		} else if (s->phase == 1) {
			s->hdr[s->have++] = *p++;
			n--;
			if (s->have == 2) {
				unsigned l7 = s->hdr[1] & 0x7f;
				s->need = 2 +
				          (l7 == 126   ? 2
				           : l7 == 127 ? 8
				                       : 0) +
				          ((s->hdr[1] & 0x80) ? 4 : 0);
			}
			if (s->have == s->need) {
				unsigned l7 = s->hdr[1] & 0x7f, op = s->hdr[0] & 0x0f;
				uint64_t len = l7;
				if (l7 == 126)
					len = (uint64_t)s->hdr[2] << 8 | s->hdr[3];
				else if (l7 == 127) {
					len = 0;
					for (int i = 2; i < 10; i++)
						len = len << 8 | s->hdr[i];
				}
				/* A heartbeat: a PING, or a final text frame. */
				if (op == 0x9 || (op == 0x1 && (s->hdr[0] & 0x80))) {
					if (!now)
						now = mono_us();
					record(s->conn, now);
				}
				s->left = len;
				s->have = 0;
				s->need = 2;
				s->phase = len ? 2 : 1;
			}
		} else {
			size_t k = s->left < n ? (size_t)s->left : n;
			p += k;
			n -= k;
			s->left -= k;
			if (!s->left)
				s->phase = 1;
		}
	}
}

/* Interposed: libwebsockets.so calls these through the PLT, so ours win. */
ssize_t recv(int fd, void *buf, size_t len, int flags)
{
	ssize_t n = syscall(SYS_recvfrom, fd, buf, len, flags, NULL, NULL);
	if (n > 0 && !(flags & MSG_PEEK) && scans)
		observe(fd, buf, (size_t)n);
	return n;
}

int SSL_read(SSL *ssl, void *buf, int num)
{
	static int (*real)(SSL *, void *, int);
	int n;

	if (!real)
		real = (int (*)(SSL *, void *, int))dlsym(RTLD_NEXT, "SSL_read");
	n = real(ssl, buf, num);
	if (n > 0 && scans)
		observe(SSL_get_fd(ssl), buf, (size_t)n);
	return n;
}

static const char *dump_prefix;
static int sigfd = -1;
static struct lws *sig_wsi;
static struct lws_context *ctx;

static void dump(void)
{
	char path[4096], tmp[4200];
	uint64_t end = mono_us();
	uint64_t hdr[4] = {0x57534244554d50ull, win_start_us, end, n_recs};
	FILE *f;

	snprintf(path, sizeof(path), "%s.%llu", dump_prefix, (unsigned long long)st[ST_DUMPS] + 1);
	snprintf(tmp, sizeof(tmp), "%s.tmp", path);
	f = fopen(tmp, "wb");
	if (f) {
		fwrite(hdr, sizeof(hdr), 1, f);
		if (n_recs)
			fwrite(recs, sizeof(*recs), n_recs, f);
		if (fclose(f) == 0)
			rename(tmp, path);
	}
	n_recs = 0;
	win_start_us = end;
	st[ST_WREC] = 0;
	st[ST_DUMPS]++;
}

struct pss {
	uint32_t pending; /* text pongs still to send */
};

static int cb_beat(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in,
                   size_t len)
{
	struct pss *p = user;
	unsigned char buf[LWS_PRE + 4];

	switch (reason) {
	case LWS_CALLBACK_FILTER_NETWORK_CONNECTION: {
		int fd = (int)(intptr_t)in;
		if (fd >= 0 && fd < MAX_FDS) {
			scans[fd] = (struct scan){.conn = next_conn++};
		}
		return 0;
	}
	case LWS_CALLBACK_ESTABLISHED:
		p->pending = 0;
		st[ST_OPEN]++;
		st[ST_EST]++;
		st[ST_LAST_EST] = mono_us();
		return 0;
	case LWS_CALLBACK_CLOSED:
		st[ST_OPEN]--;
		st[ST_CLOSED]++;
		return 0;
	case LWS_CALLBACK_RECEIVE:
		if (len == 4 && !memcmp(in, "ping", 4) && lws_is_final_fragment(wsi)) {
			p->pending++;
			lws_callback_on_writable(wsi);
		}
		return 0;
	case LWS_CALLBACK_SERVER_WRITEABLE:
		if (!p->pending)
			return 0;
		memcpy(buf + LWS_PRE, "pong", 4);
		if (lws_write(wsi, buf + LWS_PRE, 4, LWS_WRITE_TEXT) < 4)
			return -1;
		st[ST_TPONGS]++;
		if (--p->pending)
			lws_callback_on_writable(wsi);
		return 0;
	default:
		return 0;
	}
}

static int cb_ctl(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in,
                  size_t len)
{
	struct signalfd_siginfo si;

	if (reason != LWS_CALLBACK_RAW_RX_FILE || wsi != sig_wsi)
		return 0;
	while (read(sigfd, &si, sizeof(si)) == (ssize_t)sizeof(si)) {
		if (si.ssi_signo == SIGUSR1)
			dump();
		else
			lws_context_destroy(ctx); /* lws_service returns */
	}
	return 0;
}

static const struct lws_protocols protocols[] = {
    {"beat", cb_beat, sizeof(struct pss), 256, 0, NULL, 0},
    {"loadsrv-ctl", cb_ctl, 0, 0, 0, NULL, 0},
    {NULL, NULL, 0, 0, 0, NULL, 0},
};

static void usage(void)
{
	fprintf(stderr, "usage: loadsrv --stats FILE --dump PREFIX [--cert F --key F] "
	                "[--ws ADDR:PORT]... [--wss ADDR:PORT]...\n");
	exit(64);
}

static const lws_retry_bo_t no_validity = {.secs_since_valid_ping = 0,
                                           .secs_since_valid_hangup = 0};

int main(int argc, char **argv)
{
	const char *stats = NULL, *cert = NULL, *key = NULL;
	struct {
		char addr[64];
		int port, tls;
	} ls[MAX_LISTEN];
	int nls = 0, fd;
	struct lws_context_creation_info info;
	struct lws_vhost *first = NULL;
	struct rlimit rl;
	sigset_t set;
	lws_sock_file_fd_type u;

	for (int i = 1; i < argc; i++) {
		if (i + 1 >= argc)
			usage();
		if (!strcmp(argv[i], "--stats"))
			stats = argv[++i];
		else if (!strcmp(argv[i], "--dump"))
			dump_prefix = argv[++i];
		else if (!strcmp(argv[i], "--cert"))
			cert = argv[++i];
		else if (!strcmp(argv[i], "--key"))
			key = argv[++i];
		else if ((!strcmp(argv[i], "--ws") || !strcmp(argv[i], "--wss")) &&
		         nls < MAX_LISTEN) {
			char *c = strrchr(argv[i + 1], ':');
			if (!c || (size_t)(c - argv[i + 1]) >= sizeof(ls[0].addr))
				usage();
			ls[nls].tls = !strcmp(argv[i], "--wss");
			memcpy(ls[nls].addr, argv[i + 1], (size_t)(c - argv[i + 1]));
			ls[nls].addr[c - argv[i + 1]] = '\0';
			ls[nls].port = atoi(c + 1);
			nls++;
			i++;
		} else
			usage();
	}
	if (!stats || !dump_prefix || !nls)
		usage();

	fd = open(stats, O_RDWR | O_CREAT | O_TRUNC, 0644);
	if (fd < 0 || ftruncate(fd, ST_N * 8) < 0) {
		perror(stats);
		return 1;
	}
	st = mmap(NULL, ST_N * 8, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (st == MAP_FAILED) {
		perror("mmap");
		return 1;
	}
	close(fd);
	scans = calloc(MAX_FDS, sizeof(*scans));
	if (!scans)
		return 1;
	win_start_us = mono_us();

	if (getrlimit(RLIMIT_NOFILE, &rl) == 0) {
		rl.rlim_cur = rl.rlim_max > MAX_FDS ? MAX_FDS : rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
	}
	signal(SIGPIPE, SIG_IGN);
	sigemptyset(&set);
	sigaddset(&set, SIGUSR1);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	sigprocmask(SIG_BLOCK, &set, NULL);
	sigfd = signalfd(-1, &set, SFD_NONBLOCK | SFD_CLOEXEC);

	lws_set_log_level(LLL_ERR | LLL_WARN, NULL);
	memset(&info, 0, sizeof(info));
	info.options = LWS_SERVER_OPTION_LIBEV | LWS_SERVER_OPTION_EXPLICIT_VHOSTS |
	               LWS_SERVER_OPTION_DO_SSL_GLOBAL_INIT;
	info.port = CONTEXT_PORT_NO_LISTEN;
	info.protocols = protocols;
	/* lws times TLS accepts with the context's timeout (default 5 s): under a storm of
	 * thousands of handshakes that resets clients which open everything at once. */
	info.timeout_secs = 60;
	ctx = lws_create_context(&info);
	if (!ctx) {
		fprintf(stderr, "loadsrv: lws_create_context failed\n");
		return 1;
	}
	for (int i = 0; i < nls; i++) {
		static char names[MAX_LISTEN][96];
		struct lws_vhost *vh;

		memset(&info, 0, sizeof(info));
		snprintf(names[i], sizeof(names[i]), "%s-%.63s-%d", ls[i].tls ? "wss" : "ws",
		         ls[i].addr, ls[i].port);
		info.vhost_name = names[i];
		info.iface = ls[i].addr;
		info.port = ls[i].port;
		info.protocols = protocols;
		info.options = LWS_SERVER_OPTION_DISABLE_IPV6 |
		               (ls[i].tls ? LWS_SERVER_OPTION_DO_SSL_GLOBAL_INIT : 0);
		info.timeout_secs = 60;
		/* No lws validity timers: the default policy (ping after 300 s) puts every
		 * connection on lws 4.1's sorted timer list, an O(n) insert per connection and per
		 * re-validation, which made this server the bottleneck of a 19k-connection setup
		 * (62 % of its CPU in lws_dll2_add_sorted). Clients beat on their own. */
		info.retry_and_idle_policy = &no_validity;
		if (ls[i].tls) {
			if (!cert || !key)
				usage();
			info.ssl_cert_filepath = cert;
			info.ssl_private_key_filepath = key;
		}
		vh = lws_create_vhost(ctx, &info);
		if (!vh) {
			fprintf(stderr, "loadsrv: cannot listen on %s\n", names[i]);
			lws_context_destroy(ctx);
			return 1;
		}
		if (!first)
			first = vh;
	}
	u.filefd = sigfd;
	sig_wsi =
	    lws_adopt_descriptor_vhost(first, LWS_ADOPT_RAW_FILE_DESC, u, "loadsrv-ctl", NULL);
	if (!sig_wsi) {
		fprintf(stderr, "loadsrv: cannot adopt the signalfd\n");
		return 1;
	}
	st[ST_PID] = (uint64_t)getpid();
	st[ST_LISTENERS] = (uint64_t)nls;
	st[ST_MAGIC] = 0x57534245415453ull; /* last: the driver waits for it */
	fprintf(stderr, "loadsrv: %d listeners, pid %d\n", nls, getpid());
	lws_service(ctx, 0);
	lws_context_destroy(ctx);
	return 0;
}
