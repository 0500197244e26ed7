/*
 * cfg: the configuration file as an immutable, validated snapshot.
 * Built from libconfig text by cfg_load; every error names file and line. No lws here.
 */
#ifndef WSBEAT_CFG_H
#define WSBEAT_CFG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "wsbeat/proxy.h"
#include "wsbeat/url.h"

/* The shortest max_lifetime (other than 0, off). */
#define CFG_MIN_LIFETIME_MS 1000

/* Exit status for configuration errors (sysexits.h EX_CONFIG). */
#define CFG_EXIT_CONFIG 78

enum log_level { LOG_LVL_ERROR, LOG_LVL_WARNING, LOG_LVL_NOTICE, LOG_LVL_INFO, LOG_LVL_DEBUG };

enum hb_type { HB_NONE, HB_PING, HB_TEXT, HB_BINARY, HB_SERVER };

enum sink_type { SINK_DISCARD, SINK_STDOUT, SINK_FILE };

/* How binary messages are inflated before matching and the sink. */
enum decompress { DEC_NONE, DEC_GZIP, DEC_DEFLATE, DEC_AUTO };

struct tmpl;
struct match;

struct cfg_heartbeat {
	enum hb_type type;
	int64_t interval_ms;  /* > 0; not used by server */
	int64_t timeout_ms;   /* > 0: answer deadline, or for server the longest silence */
	struct tmpl *payload; /* text/binary: what is sent; NULL for ping/server/none */
	/* text/binary: the answer (NULL = any message); server: what a server heartbeat looks
	 * like (NULL = a PING frame). */
	struct match *expect;
	/* server: every message proves the server alive, not only its heartbeats (servers that
	 * send heartbeats only while a channel is idle). */
	bool any_message;
};

/* One item of the open sequence: a message to send, or a message to wait for. */
struct cfg_step {
	struct tmpl *send;
	struct match *wait;
};

/* Server messages answered at once (replies = ( { when = ...; send = ...; } )). */
struct cfg_reply {
	struct match *when;
	struct tmpl *send;
};

struct cfg_reconnect {
	int64_t initial_ms;
	int64_t max_ms;
	double multiplier; /* >= 1 */
	double jitter;     /* [0, 1] */
	int64_t stable_after_ms;
};

struct cfg_tls {
	bool verify;
	char *ca_file;
	char *ca_path;
	char *cert_file;
	char *key_file;
	char *server_name;
};

struct cfg_sink {
	enum sink_type type;
	char *path;     /* SINK_FILE only */
	bool keepalive; /* also write keep-alive messages (heartbeat answers, replied-to) */
};

struct cfg_header {
	char *name;
	struct tmpl *value; /* secret: never logged */
};

struct cfg_feed {
	char *name;
	struct url url;
	struct tmpl *url_path; /* url.path as a template when its query has ${...}, else NULL */
	int line;              /* where the feed's group starts in the file */
	struct cfg_heartbeat heartbeat;
	struct cfg_reconnect reconnect;
	int64_t connect_timeout_ms; /* > 0 */
	int64_t idle_timeout_ms;    /* 0 = off */
	int64_t max_lifetime_ms;    /* rotate a connection open this long; 0 = off */
	size_t max_message_size;
	struct cfg_step *on_open; /* run in order after every upgrade */
	size_t n_on_open;
	size_t open_after; /* steps up to and including the last wait: open once they are done */
	struct cfg_reply *replies;
	size_t n_replies;
	struct match *keepalive; /* messages that are keep-alive traffic, not data (NULL = none) */
	struct match *rotate_on; /* a server's "reconnect soon" notice: rotate (NULL = none) */
	enum decompress decompress;
	bool compression; /* offer permessage-deflate */
	/* Run before every attempt (argv, NULL-terminated; argv[0] absolute); NULL = none. */
	char **connect_command;
	struct cfg_header *headers;
	size_t n_headers;
	char *subprotocol; /* NULL = none offered */
	char *origin;      /* NULL = no Origin header; sent verbatim */
	struct cfg_tls tls;
	struct cfg_sink sink;
	struct proxy_setting proxy; /* unset: the environment's; "" direct; else its own */
};

/* hosts = ( { match = "*.okx.com"; max_connects_per_second = 3; max_connections = 30; } ) */
struct cfg_host {
	char *match;                      /* shell wildcard on the URL host, lower case */
	uint32_t max_connects_per_second; /* in any rolling second; 0 = no per-host rate */
	uint32_t max_connections;         /* open or in progress; 0 = no cap */
	int line;
};

struct cfg {
	char *path;
	enum log_level log_level;
	enum log_level lws_log_level; /* libwebsockets' own messages, independently */
	int64_t status_interval_ms;   /* 0 = off */
	uint32_t max_connects_per_second;
	int64_t timer_slack_ms;      /* heartbeat coalescing window; beats are never early */
	int64_t io_slack_ms;         /* how long a received event may wait to share a wake-up */
	char *metrics_listen;        /* NULL = no listener */
	bool metrics_port_per_shard; /* shard K serves on metrics_listen's port + K */
	char *dns_servers;           /* NULL = the system's (resolv.conf); else "ip[:port],..." */
	int64_t dns_timeout_ms;      /* per try; 0 = the resolver's default */
	int dns_tries;               /* 0 = the resolver's default */
	char *shard;                 /* "K/N": keep only the feeds of shard K of N; NULL = all */
	struct cfg_host *hosts;      /* the first entry that matches a feed's host applies */
	size_t n_hosts;
	struct cfg_feed *feeds;
	size_t n_feeds;
};

/*
 * Reads and validates path. On success returns 0 and a new snapshot in *out (free with
 * cfg_free). On error returns -1 and writes "FILE:LINE: message" (or "FILE: message" when no
 * line applies) into err.
 */
int cfg_load(const char *path, struct cfg **out, char *err, size_t errlen);

/* As cfg_load, from text; name stands for the file in messages. */
int cfg_load_string(const char *text, const char *name, struct cfg **out, char *err, size_t errlen);

/*
 * Reads only metrics.listen (and metrics.port_per_shard, into *per_shard) from path, for
 * `wsbeat status`: the rest of the file may be invalid while the daemon runs on the
 * configuration it loaded earlier. Returns 1 with the address in buf, 0 when the file has no
 * metrics.listen, -1 with "FILE:LINE: message" in err when the file cannot be read or parsed.
 */
int cfg_read_listen(const char *path, char *buf, size_t len, bool *per_shard, char *err,
                    size_t errlen);

/* Frees c and everything it owns; NULL is a no-op. */
void cfg_free(struct cfg *c);

/* Finds a feed by name, or NULL. */
const struct cfg_feed *cfg_find_feed(const struct cfg *c, const char *name);

/* True when two feeds' settings are identical (reload leaves such a feed's connection alone). */
bool cfg_feed_equal(const struct cfg_feed *a, const struct cfg_feed *b);

/* The index of the first hosts entry whose match fits host (a URL host, lower case), or -1. */
int cfg_host_find(const struct cfg *c, const char *host);

/* Parses a duration: a number of seconds, or a string of numbers each with a unit ms, s, m or
 * h, largest first ("250ms", "23h50m"). -1 on error. */
int cfg_parse_duration(const char *text, int64_t *ms);

/* True when s is a non-empty HTTP token (a header name). */
bool cfg_is_token(const char *s);

/* Why the handshake owns the header name (Host, Upgrade, Sec-WebSocket-*, ...), so that no
 * setting may send it; NULL when it may be sent. Names ignore case. */
const char *cfg_header_reserved(const char *name);

/* Names of enum values, for logs. */
const char *cfg_log_level_name(enum log_level l);
const char *cfg_hb_type_name(enum hb_type t);
const char *cfg_sink_type_name(enum sink_type t);
const char *cfg_decompress_name(enum decompress d);

#endif
