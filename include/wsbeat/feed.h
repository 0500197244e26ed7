/*
 * feed: one configured WebSocket feed and its state machine. A feed outlives its connections.
 * Pure: it never touches sockets; it asks its shell (struct feed_shell) to connect, write and
 * drop, and the shell reports what happened through the feed_on_* functions. Every change of
 * state goes through one function that stamps the time, logs the event and arms exactly the
 * timers the new state owns:
 *
 *   state        timers armed
 *   idle         none (waiting in the connect queue: for the global limits or its host's)
 *   resolving    t_state = connect deadline (it covers resolving and connecting); the name
 *                resolved is the proxy's when the feed goes through one. With a
 *                connect_command the helper runs here first, under a deadline of its own
 *                (connect_timeout); once it has answered, resolving and connecting get a new
 *                connect_timeout.
 *   connecting   t_state = connect deadline; t_addr while moving on to the next address.
 *                After the upgrade (upgraded) the open sequence runs: t_state is then its
 *                deadline, connect_timeout from the upgrade.
 *   open         t_beat (next heartbeat), t_answer (answer deadline, lazily re-armed; for
 *                server heartbeats the silence deadline), t_idle, t_rotate (max_lifetime, or
 *                the connect_command's credentials about to expire: see feed_rotate)
 *   closing      t_state = close deadline (then the connection is dropped)
 *   backoff      t_state = retry time
 *   stopped      none
 */
#ifndef WSBEAT_FEED_H
#define WSBEAT_FEED_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "wsbeat/cfg.h"
#include "wsbeat/closescan.h"
#include "wsbeat/connq.h"
#include "wsbeat/dns.h"
#include "wsbeat/mbuf.h"
#include "wsbeat/proxy.h"
#include "wsbeat/rng.h"
#include "wsbeat/rttring.h"
#include "wsbeat/sink.h"
#include "wsbeat/timerq.h"

enum feed_state {
	FEED_IDLE,
	FEED_RESOLVING,
	FEED_CONNECTING,
	FEED_OPEN,
	FEED_CLOSING,
	FEED_BACKOFF,
	FEED_STOPPED,
	FEED_NSTATES
};

/* How long a close handshake may take before the connection is dropped. */
#define FEED_CLOSE_TIMEOUT_US (1000 * 1000)
/* ... and after a protocol violation, before it is dropped without one. */
#define FEED_FAIL_TIMEOUT_US (20 * 1000)

/* WebSocket close codes we send. */
#define WS_CLOSE_NORMAL       1000
#define WS_CLOSE_GOING_AWAY   1001
#define WS_CLOSE_INVALID_DATA 1007
#define WS_CLOSE_TOO_BIG      1009

struct feed;
struct lws; /* the shell's connection handle; opaque here */

/* What a feed needs from the connection layer; every call is made from the loop thread. */
struct feed_shell {
	/* Starts resolving the feed's host; the answer comes through feed_on_resolved. -1 on
	 * immediate failure, with the reason recorded by feed_set_error. */
	int (*resolve)(struct feed *f);
	/* Forgets a resolution in progress: feed_on_resolved will not be called for it. */
	void (*cancel_resolve)(struct feed *f);
	/* Starts a connection to f->addrs[f->addr_idx]. On immediate failure: -1 with the reason
	 * recorded by feed_set_error. */
	int (*connect)(struct feed *f);
	/* Asks for a writeable callback; feed_next_frame then says what to send. */
	void (*want_write)(struct feed *f);
	/* Drops the current connection without a close handshake; feed_on_gone follows. */
	void (*abort)(struct feed *f);
	/* Starts the feed's connect_command; its result comes through feed_on_helper_done. -1 on
	 * immediate failure (it cannot run), with the reason recorded by feed_set_error. */
	int (*run_helper)(struct feed *f);
	/* Kills the helper in progress (its process group), which is reaped later:
	 * feed_on_helper_done will not be called for it. The first line of what it wrote on
	 * stderr so far goes into line (size bytes, cleaned as helper_clean_line does); with
	 * size 0 (line may be NULL) its stderr is not read. */
	void (*cancel_helper)(struct feed *f, char *line, size_t size);
};

struct zinf;

/* Shared by all feeds of a process. */
struct feed_env {
	struct timerq *tq;
	const struct proxy_env *proxy_env; /* the environment's proxies (NULL = none) */
	struct connq *connq;
	struct rng *rng;
	const struct feed_shell *shell;
	void *shell_arg;                 /* the shell's own state */
	bool stopping;                   /* shutting down: no reconnects */
	size_t n_in_state[FEED_NSTATES]; /* how many feeds are in each state */
	/* Called when a feed reaches FEED_STOPPED (may be NULL). */
	void (*on_stopped)(struct feed_env *env, struct feed *f);
	/*
	 * Rotation (make-before-break; NULL: connections are never rotated). rotate_new makes
	 * the replacement for f: a feed of f's configuration, initialised (feed_init), with f's
	 * sink and connect-queue host, listed nowhere and not started; NULL when memory ran out.
	 * rotate_promote: the replacement n is open and takes old's place (old closes, then
	 * stops). rotate_drop: the replacement n was given up before it opened and is stopping;
	 * the owner keeps it with the feeds that are closing until it has stopped.
	 */
	struct feed *(*rotate_new)(struct feed_env *env, struct feed *f);
	void (*rotate_promote)(struct feed_env *env, struct feed *old, struct feed *n);
	void (*rotate_drop)(struct feed_env *env, struct feed *n);
	/* Fills buf with unpredictable bytes (${uuid}); NULL leaves zeroes (tests). */
	void (*random)(void *buf, size_t len);
	struct mbuf scratch; /* templates expanded for the frame being written */
	struct zinf **zpool; /* inflaters not in use: a message takes one while it arrives */
	size_t n_zpool, cap_zpool;
};

/* Frees what env holds for feeds (the scratch buffer, the inflater pool). */
void feed_env_fini(struct feed_env *env);

enum frame_kind { FRAME_NONE, FRAME_TEXT, FRAME_BINARY, FRAME_PING, FRAME_CLOSE };
enum frame_src { SRC_ON_OPEN, SRC_REPLY, SRC_BEAT, SRC_CLOSE };

/* One frame to write, described by the feed; data stays valid until feed_frame_sent (and may
 * point into the frame itself: do not copy it). */
struct feed_frame {
	enum frame_kind kind;
	enum frame_src src;
	const void *data;
	size_t len;
	int close_code;
	bool wait_for_peer;        /* FRAME_CLOSE: keep the connection to read until the peer's */
	unsigned char ping_buf[8]; /* FRAME_PING: the payload, built for this frame */
};

/* Upper bounds (seconds) of the heartbeat round-trip histogram; +Inf is implied. */
#define FEED_RTT_BUCKETS 14
extern const double feed_rtt_bounds_s[FEED_RTT_BUCKETS];

struct feed_stats {
	uint64_t connects, connect_errors, disconnects;
	uint64_t beats_sent, beats_answered, beat_timeouts;
	uint64_t messages, bytes; /* data messages (keep-alive traffic is counted apart) */
	uint64_t keepalive;       /* heartbeat answers, server heartbeats, replied-to messages */
	uint64_t replies_sent;
	uint64_t rotations;  /* connections replaced by a replacement that opened first */
	double last_rtt_ms;  /* < 0 until the first answer */
	int64_t last_msg_us; /* CLOCK_MONOTONIC of the last complete message, 0 = none */
	/* Round trips: per-bucket counts (not cumulative), their sum and count. */
	uint64_t rtt_buckets[FEED_RTT_BUCKETS];
	double rtt_sum_s;
	uint64_t rtt_count;
	struct rtt_ring rtt_recent; /* the last round trips, for the status page */
};

/* Why an attempt or connection is ending: allocated when the first reason is recorded and
 * freed when the next attempt (or address) starts, so a healthy feed carries only a pointer. */
struct feed_detail {
	char err[256]; /* room for a connect_command's path and the first line of its stderr */
	char close_reason[124]; /* sent by us, or received from the peer; at most 123 bytes */
};

/* Why the feed's last attempt or connection ended, kept through the next ones (status): allocated
 * when a first attempt ends with a reason, so a feed that never failed carries only a pointer. */
struct feed_last {
	char err[256];
	int64_t at_real_us; /* CLOCK_REALTIME when it ended */
};

/*
 * Most of what wsbeat itself keeps per feed, so members are grouped by purpose and ordered so
 * that small ones fill each other's padding: check the layout (gdb's `ptype /o struct feed`)
 * after a change.
 */
struct feed {
	const struct cfg_feed *cfg;
	struct feed_env *env;
	struct lws *conn;              /* the current connection, NULL when none */
	const struct proxy_url *proxy; /* where connections go first; NULL = direct */

	int64_t state_since_us;
	int64_t open_since_us;
	enum feed_state state;
	unsigned failures;     /* consecutive failed attempts; the next attempt is failures + 1 */
	unsigned conn_no;      /* connections opened since start */
	bool conn_live;        /* an attempt or connection exists and has not been reported gone */
	bool aborting;         /* the shell was asked to drop the connection */
	bool stop_requested;   /* feed_stop was called: no reconnects for this feed */
	bool holds_slot;       /* counts against the connect queue's attempts in flight (the
	                        * connection counts against its host until gone: qnode) */
	bool peer_reached;     /* the server answered (TLS or HTTP): no other address is tried */
	bool proxy_answered;   /* the proxy answered this attempt's CONNECT (with any status) */
	bool helper_running;   /* the connect_command of this attempt has not answered yet */
	uint16_t proxy_status; /* it refused the CONNECT with this status; 0 = it did not */
	int proxy_fd;          /* the shell's: the socket awaiting the proxy's answer, -1 = none */
	int scan_fd;           /* the shell's: the socket whose close code scan reads, -1 = none */
	bool scan_tls;         /* ... read through SSL_read (else recv) */
	int64_t rx_real_us;    /* the shell's: kernel receive time (CLOCK_REALTIME) of the last
	                        * bytes read on the connection; 0 = not known */

	struct tq_timer t_state, t_beat, t_answer, t_idle, t_addr, t_rotate;
	struct connq_node qnode;

	/* Rotation (make-before-break). On the feed whose connection is replaced: the replacement
	 * in flight (a shadow: not listed, counted in no state, not the feed's own until it is
	 * open), or the feed that took over once it did. On the replacement: the feed it
	 * replaces, until that one's connection has gone. */
	struct feed *rot_next, *rot_prev;
	int64_t rot_open_us;   /* replaced: when the replacement opened (the overlap begins) */
	unsigned rot_new_conn; /* ... and its connection number */
	bool shadow;           /* a replacement that has not opened yet */
	bool rotated_out;      /* replaced: closing with 1000 "rotated", then stopped */
	uint8_t rot_why;       /* why t_rotate is armed (enum in feed.c) */

	/* Where this attempt connects: the resolver's answer, tried in order. */
	struct dns_req *dns_req; /* the shell's resolution in progress */
	struct dns_addr addrs[DNS_MAX_ADDRS];
	unsigned char n_addrs, addr_idx;

	/* Where the close frame stands (its reason is in detail). */
	bool close_pending;
	bool close_wait;       /* after our close frame, read on until the peer's (graceful) */
	bool close_sent;       /* our close frame is out: the peer's close ends the connection */
	bool peer_closed;      /* the close frame (and close_code) came from the peer */
	int close_code;        /* sent by us, or received from the peer */
	int last_close_code;   /* of the last connection that ended (1006: without a close
	                        * frame); kept through later attempts; 0 = none yet */
	struct closescan scan; /* the shell's: the close code on the wire (closescan.h) */

	/* Heartbeats: the oldest unanswered beat's due time (0 = none awaited), and when its
	 * answer is due. t_answer is lazy: it may be armed earlier than hb_answer_due_us (or
	 * with nothing awaited) and sorts that out when it fires, so a beat and its answer cost
	 * no heap operations beyond the beat timer's own. */
	int64_t hb_waiting_since_us;
	int64_t hb_answer_due_us;
	int64_t hb_last_sent_us;
	int64_t last_pong_us; /* when a PONG last arrived, and how many came within 1 ms of the */
	uint8_t pong_spin;    /* one before: see feed_on_pong */
	bool beat_pending;

	/* Why the last attempt or connection ended (read through feed_err). */
	bool detail_lost; /* recording a reason ran out of memory */
	int http_status;
	struct feed_detail *detail; /* NULL until a reason is recorded */
	struct feed_last *last;     /* the last ended attempt's reason; NULL until one ended */
	int64_t retry_after_ms;     /* -1 = none */

	/* The open sequence: cfg->on_open steps done on this connection (sent, or waited for). */
	size_t open_step;
	bool upgraded;     /* the WebSocket upgrade is done (open, or running the sequence) */
	bool reply_warned; /* a reply could not be built on this connection: said once */

	/* Heartbeats of this connection: the last one's number (${seq}) and the oldest one not
	 * answered yet. */
	uint32_t hb_seq, hb_awaited;

	/* Replies built and waiting for a write slot, oldest first. */
	struct feed_out *out_q;

	/* What this attempt's connect_command gave (NULL: none, or no helper): kept for the
	 * connection's life, wiped when it ends. */
	struct helper_out *helper;

	/* Where received messages go (NULL: discard, count only); set by the owner. */
	struct sink *sink;
	/* The message being received (after inflating); only buffered when something needs it
	 * whole: a sink, a match, a reply rule or decompression. */
	struct mbuf msg;
	struct zinf *zin; /* inflating the current message */
	size_t rx_len;    /* bytes of the current message as received (before inflating) */
	int64_t last_data_us;
	bool rx_binary;
	bool rx_too_big;
	unsigned char u8_need, u8_lo, u8_hi; /* UTF-8 validation across pieces */

	struct feed_stats stats;
};

/* Prepares f for cfg; reserves its timers in env->tq. 0 or -1 (ENOMEM). Does not start it. */
int feed_init(struct feed *f, const struct cfg_feed *cfg, struct feed_env *env);
/* Disarms everything; the feed must have no connection (f->conn == NULL). */
void feed_fini(struct feed *f);

/*
 * Starts replacing f's open connection (make-before-break): a replacement feed connects
 * through the connect queue like any attempt, runs its open sequence, and once it is open
 * takes f's place while f's connection closes with 1000 "rotated" (both deliver meanwhile);
 * the "rotated" record is logged when the old connection has gone. If f's connection ends
 * before the replacement is open, the replacement is given up and f reconnects as usual. At
 * most one replacement is in flight: while one is, or when f is not open, nothing happens (a
 * debug record says so). why says what asked for it ("max_lifetime", "rotate_on", ...).
 * Returns -1 when no replacement could be made (out of memory), else 0.
 */
int feed_rotate(struct feed *f, int64_t now_us, const char *why);

/* Queues the first connection attempt. */
void feed_start(struct feed *f, int64_t now_us);
/* Winds the feed down: closes an open connection with 1001, then reaches FEED_STOPPED. */
void feed_stop(struct feed *f, int64_t now_us);
/* As feed_stop, with the reason sent in the close frame and logged. */
void feed_stop_why(struct feed *f, int64_t now_us, const char *why);
/* The connect queue lets f start its attempt. */
void feed_on_slot(struct feed *f, int64_t now_us);

/* What a connect_command did: how it ended (a waitpid status), what it printed on stdout
 * (out_len bytes, NUL-terminated), whether it printed more than HELPER_OUT_MAX (it was killed
 * and out holds the start), and the first line of its stderr, cleaned (helper_clean_line). */
struct helper_result {
	int status;
	const char *out;
	size_t out_len;
	bool too_big;
	const char *err_line;
};
/* The connect_command of this attempt finished: on success the attempt goes on with what it
 * gave (resolving its URL's host, or connecting); else it fails as a connect_error naming the
 * helper. */
void feed_on_helper_done(struct feed *f, const struct helper_result *r, int64_t now_us);

/* The URL this attempt uses: the connect_command's, else the feed's. */
const struct url *feed_url(const struct feed *f);

/* When the credentials of the current attempt or connection expire (CLOCK_MONOTONIC µs), from
 * its connect_command's expires_in; 0 when it said nothing (or the feed has no helper). For
 * rotating a connection before that. */
int64_t feed_credentials_expire_us(const struct feed *f);

/* Connection events reported by the shell. */
void feed_on_resolved(struct feed *f, const struct dns_result *res, int64_t now_us);
void feed_on_http_status(struct feed *f, int status, int64_t retry_after_ms);
/*
 * The proxy answered the CONNECT: status 200 lets the connection go on; another status is a
 * refusal, with text its reason phrase; 0 means the answer was not HTTP (or there was none),
 * text saying what came. Either way the proxy was reached: no other address is tried.
 */
void feed_on_proxy_answer(struct feed *f, int status, const char *text);
/* The host a connection attempt resolves and connects to: the proxy's, or the URL's (the
 * connect_command's when it gave one: feed_url). */
const char *feed_connect_host(const struct feed *f);
/* The server's certificate was refused, for reason: the attempt fails (as curl does, the other
 * addresses of the name are not tried: the server was reached and is the wrong one). */
void feed_on_tls_rejected(struct feed *f, const char *reason);
/* The WebSocket upgrade is done: the open sequence starts; open when it has finished. */
void feed_on_open(struct feed *f, int64_t now_us);
/* A PONG arrived. -1 when the library is delivering one PONG again and again: the shell must
 * drop the connection (the reason is recorded). */
int feed_on_pong(struct feed *f, const void *data, size_t len, int64_t now_us);
/* The server sent a PING frame (heartbeat type "server" without expect watches these). */
void feed_on_server_ping(struct feed *f, int64_t now_us);
/*
 * A piece of a received message; first/final mark message boundaries. Returns -1 when the
 * peer broke the protocol (a message over max_message_size, text that is not UTF-8): the feed
 * then sends a close frame (1009, 1007) and drops the connection; the shell should stop
 * reading from it meanwhile.
 */
int feed_on_rx(struct feed *f, const void *data, size_t len, bool first, bool final, bool binary,
               int64_t now_us);
void feed_on_peer_close(struct feed *f, int code, const char *reason, size_t reason_len);
/* The attempt or connection is gone (any cause). Idempotent: only the first call counts. */
void feed_on_gone(struct feed *f, int64_t now_us, const char *reason);
/* Records why the attempt is failing (printf-style); the first reason wins. Never fails: out of
 * memory, the reason reads "out of memory (error text lost)". */
void feed_set_error(struct feed *f, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Why the last attempt or connection ended; "" when nothing was recorded. Valid until the next
 * feed_* call on f. */
const char *feed_err(const struct feed *f);
/* When the bytes just read arrived (f->rx_real_us, the kernel's receive time), or now_real_us
 * when that is not known or not plausible (in the future, or over 10 s old). */
int64_t feed_arrived_real_us(const struct feed *f, int64_t now_real_us);
/* The most recent reason an attempt or connection of f ended (the one ending now while it
 * closes), kept through later attempts, with when (CLOCK_REALTIME us) in *at; NULL if none. */
const char *feed_last_error(const struct feed *f, int64_t now_mono_us, int64_t now_real_us,
                            int64_t *at_real_us);
/* Forgets the recorded reasons and frees their storage (feed_fini does too). */
void feed_clear_error(struct feed *f);

struct tmpl;
/*
 * Expands t for this feed now (${seq} is its last beat; time variables are now): the text, valid
 * until the next expansion of any feed, or NULL when memory ran out. For the shell's handshake
 * (header values, the URL query).
 */
const char *feed_expand(struct feed *f, const struct tmpl *t, size_t *len);

/* What to write now (FRAME_NONE when nothing); call from the writeable callback. */
void feed_next_frame(struct feed *f, int64_t now_us, struct feed_frame *fr);
/* The frame was written; returns true when more frames are waiting. */
bool feed_frame_sent(struct feed *f, const struct feed_frame *fr, int64_t now_us);

/* Logs one status record for f. */
void feed_log_status(const struct feed *f, int64_t now_us);

const char *feed_state_name(enum feed_state s);

#endif
