/*
 * app: the daemon's parts wired together: configuration, feeds, timers, the connect queue,
 * the shell, systemd notifications, signals and reload.
 */
#ifndef WSBEAT_APP_H
#define WSBEAT_APP_H

#include <stdbool.h>
#include <stddef.h>

#include "wsbeat/cfg.h"
#include "wsbeat/connq.h"
#include "wsbeat/feed.h"
#include "wsbeat/proxy.h"
#include "wsbeat/rng.h"
#include "wsbeat/timerq.h"
#include "wsbeat/ws_http.h"

struct ws;

/* A set of feeds that grows and shrinks with reloads. */
struct feed_set {
	struct feed **v;
	size_t n, cap;
};

struct app {
	struct cfg *cfg;       /* the configuration in force */
	struct cfg **old_cfgs; /* replaced ones, kept while retiring feeds still use them */
	size_t n_old_cfgs;
	struct feed_set feeds;    /* the feeds of cfg */
	struct feed_set retiring; /* removed or changed by a reload, replaced by a rotation, or
	                           * replacements given up: closing */
	size_t n_live;            /* feeds not yet stopped: both sets and the replacements */
	size_t n_shadows;         /* replacements in flight (in neither set; see feed_rotate) */
	bool level_from_cli;      /* -l given: reloads keep it */
	const char *cli_shard;    /* --shard K/N: overrides the configuration's shard */
	struct timerq tq;
	struct connq cq;
	struct rng rng;
	struct feed_env env;
	struct proxy_env proxy_env; /* read from the environment once, at start */
	struct ws *ws;
	struct sinks *sinks;
	struct tq_timer t_status, t_quit, t_reap, t_watchdog, t_notify, t_trim;
	int64_t trimmed_us;        /* when the heap was last trimmed; 0: never */
	int64_t start_real_us;     /* CLOCK_REALTIME at app_init (process_start_time_seconds) */
	char reload_error[200];    /* why the last reload failed, "" if it did not */
	char restart_note[96];     /* a setting a reload could not apply, "" if none */
	struct ws_http_hooks http; /* the metrics endpoint's renderer */
	unsigned http_jobs;        /* documents being rendered (they hold feed pointers) */
};

/*
 * Checks that this build supports every setting cfg uses and that its TLS files load.
 * Returns 0, or -1 with "FILE:LINE: message" in err.
 */
int app_check_supported(const struct cfg *cfg, char *err, size_t errlen);

/* Reads the environment's proxy variables into e, printing a warning on stderr for each one
 * that does not parse (for --check). 0, or -1 when out of memory. */
int app_proxy_env_check(struct proxy_env *e);

/* Takes ownership of cfg and builds everything up to the loop. 0, or -1 after logging. */
int app_init(struct app *a, struct cfg *cfg, bool level_from_cli, const char *cli_shard);

/* True when this instance's shard owns feed f of configuration c. */
bool app_owns(const struct app *a, const struct cfg *c, const struct cfg_feed *f);
/* The address the metrics endpoint of c serves on in this process (metrics.listen, moved by
 * metrics.port_per_shard): 1 with it in out, 0 when c has none, -1 with a reason in err. */
int app_listen_address(const struct app *a, const struct cfg *c, char *out, size_t outlen,
                       char *err, size_t errlen);
/* The shard this process runs as ("K/N": --shard, else the setting), or NULL. */
const char *app_shard(const struct app *a);

/* Starts every feed and runs the loop until a stop is requested. Returns the exit status. */
int app_run(struct app *a);

/* Re-reads the configuration file (SIGHUP): on success adds, removes and restarts feeds by
 * name, leaving unchanged feeds' connections alone; on error keeps everything as it is. */
void app_reload(struct app *a);

/* Releases everything, in reverse order of app_init. */
void app_fini(struct app *a);

/* Internal to app*.c: feed sets and the systemd status line. app_reserve_retiring makes room
 * in the retiring set for `more` feeds beyond one per replacement in flight (each rotation ends
 * with one feed there: the replaced one or the replacement given up), so that moving a feed
 * there never fails; 0 or -1. */
struct feed *app_feed_new(struct app *a, const struct cfg_feed *c);
void app_feed_free(struct app *a, struct feed *f);
int feed_set_add(struct feed_set *s, struct feed *f);
int app_reserve_retiring(struct app *a, size_t more);

/* Internal to app*.c: the feed_env rotation callbacks (app_rotate.c). */
struct feed *app_rotate_new(struct feed_env *env, struct feed *f);
void app_rotate_promote(struct feed_env *env, struct feed *old, struct feed *n);
void app_rotate_drop(struct feed_env *env, struct feed *n);
void app_update_status(struct app *a);

/* Internal to app*.c: the hosts setting (app_hosts.c). app_hosts_new builds cfg's table of host
 * limits (0 or -1); after connq_hosts_install, app_hosts_rehome points every feed of both sets
 * at its entry in cfg, counts their connections and ends the table change; app_host_wait is the
 * queue's connq_wait_fn (one debug record per wait). */
int app_hosts_new(const struct cfg *cfg, struct timerq *tq, struct connq_hosts *hs);
void app_hosts_rehome(struct app *a, const struct cfg *cfg, int64_t now_us);
void app_host_wait(struct connq *q, struct connq_node *n, const struct connq_host *h,
                   enum connq_wait why, int64_t now_us);

#endif
