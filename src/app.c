/* Wires the modules together and owns the process-level timers and signals. */
#include "wsbeat/app.h"

#include <malloc.h>
#include <openssl/rand.h>
#include <openssl/ssl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "wsbeat/log.h"
#include "wsbeat/notify.h"
#include "wsbeat/shard.h"
#include "wsbeat/status_page.h"
#include "wsbeat/sink.h"
#include "wsbeat/tls.h"
#include "wsbeat/util.h"
#include "wsbeat/version.h"
#include "wsbeat/ws.h"
#include "wsbeat/ws_http.h"
#include "wsbeat/metrics.h"

/* How long connections may take to close on a stop before the loop ends anyway. */
#define APP_STOP_GRACE_US (2 * 1000 * 1000)
/* How long buffered sink records may take to reach their files at exit. */
#define APP_FLUSH_TIMEOUT_MS 5000
/* Heap trimming (on_trim_timer): after this long without connection attempts, at most this
 * often. */
#define APP_TRIM_SETTLE_US (2 * 1000 * 1000)
#define APP_TRIM_GAP_US    (10 * 1000 * 1000)

/* Builds one TLS context (the whole trust store is loaded); 0, or -1 with FILE:LINE in err. */
static int check_profile(const struct cfg *cfg, const struct cfg_feed *f, char *err, size_t errlen)
{
	char why[512];
	SSL_CTX *ctx = tls_client_ctx_new(&f->tls, why, sizeof(why));

	if (!ctx) {
		snprintf(err, errlen, "%s:%d: feed %s: %s", cfg->path, f->line, f->name, why);
		return -1;
	}
	SSL_CTX_free(ctx);
	return 0;
}

/*
 * A bad certificate is a config error, not a start failure: each distinct TLS profile's
 * context is built once now. Once per profile, not per feed: 10,000 wss feeds took 3.3 s,
 * and reload runs this inside the loop.
 */
static int check_tls(const struct cfg *cfg, char *err, size_t errlen)
{
	const struct cfg_tls **seen = calloc(cfg->n_feeds + 1, sizeof(*seen));
	size_t n_seen = 0;
	int rc = 0;

	if (!seen) {
		snprintf(err, errlen, "%s: out of memory", cfg->path);
		return -1;
	}
	for (size_t i = 0; i < cfg->n_feeds && rc == 0; i++) {
		const struct cfg_feed *f = &cfg->feeds[i];
		bool known = false;
		if (!f->url.tls)
			continue;
		for (size_t j = 0; j < n_seen && !known; j++)
			known = tls_same_profile(seen[j], &f->tls);
		if (known)
			continue;
		seen[n_seen++] = &f->tls;
		rc = check_profile(cfg, f, err, errlen);
	}
	free(seen);
	return rc;
}

int app_check_supported(const struct cfg *cfg, char *err, size_t errlen)
{

	char why[512];

	for (size_t i = 0; i < cfg->n_feeds; i++) {
		const struct cfg_feed *f = &cfg->feeds[i];
		if (sink_check(&f->sink, why, sizeof(why)) < 0) {
			snprintf(err, errlen, "%s:%d: feed %s: %s", cfg->path, f->line, f->name,
			         why);
			return -1;
		}
	}
	return check_tls(cfg, err, errlen);
}

static void proxy_warn_log(void *arg, const char *msg)
{
	log_rec(LOG_LVL_WARNING, (struct log_kv[]){{"event", "proxy_env"}}, 1, "%s", msg);
}

static void proxy_warn_stderr(void *arg, const char *msg)
{
	fprintf(stderr, "wsbeat: warning: %s\n", msg);
}

int app_proxy_env_check(struct proxy_env *e)
{
	return proxy_env_load(e, getenv, proxy_warn_stderr, NULL);
}

/* Says which proxies the environment gives the feeds that have no proxy setting. */
static void log_proxy_env(const struct proxy_env *e)
{
	const struct proxy_url *p[2] = {e->https, e->http};
	const char *var[2] = {e->https_var, e->http_var}, *scheme[2] = {"wss", "ws"};

	for (int i = 0; i < 2; i++)
		if (p[i])
			log_rec(LOG_LVL_INFO,
			        (struct log_kv[]){{"event", "proxy_env"},
			                          {"variable", var[i]},
			                          {"proxy", p[i]->display},
			                          {"no_proxy", e->no_proxy}},
			        4, "%s:// feeds without a proxy setting go through %s (from %s)",
			        scheme[i], p[i]->display, var[i]);
}

/* ${uuid}: from OpenSSL's CSPRNG, like the frame masks. */
static void app_random(void *buf, size_t len)
{
	if (RAND_bytes(buf, (int)len) != 1)
		memset(buf, 0, len);
}

static void on_slot(struct connq *q, struct connq_node *n, int64_t now_us)
{
	feed_on_slot(container_of(n, struct feed, qnode), now_us);
}

int feed_set_add(struct feed_set *s, struct feed *f)
{
	if (s->n == s->cap) {
		size_t cap = s->cap ? 2 * s->cap : 16;
		struct feed **v = realloc(s->v, cap * sizeof(*v));
		if (!v)
			return -1;
		s->v = v;
		s->cap = cap;
	}
	s->v[s->n++] = f;
	return 0;
}

struct feed *app_feed_new(struct app *a, const struct cfg_feed *c)
{
	struct feed *f = malloc(sizeof(*f));
	char err[512];

	if (!f)
		return NULL;
	if (feed_init(f, c, &a->env) < 0) {
		free(f);
		return NULL;
	}
	a->n_live++;
	f->sink = sinks_get(a->sinks, &c->sink, err, sizeof(err));
	if (!f->sink && err[0]) {
		log_rec(LOG_LVL_ERROR,
		        (struct log_kv[]){{"feed", c->name}, {"event", "sink_error"}}, 2, "%s",
		        err);
		app_feed_free(a, f);
		return NULL;
	}
	return f;
}

int app_reserve_retiring(struct app *a, size_t more)
{
	size_t want = a->retiring.n + a->n_shadows + more, cap = 2 * a->retiring.cap;
	struct feed **v;

	if (want <= a->retiring.cap)
		return 0;
	if (cap < want)
		cap = want;
	v = realloc(a->retiring.v, cap * sizeof(*v));
	if (!v)
		return -1;
	a->retiring.v = v;
	a->retiring.cap = cap;
	return 0;
}

void app_feed_free(struct app *a, struct feed *f)
{
	if (f->state != FEED_STOPPED)
		a->n_live--;
	if (f->sink)
		sink_put(f->sink);
	feed_fini(f);
	free(f);
}

static void on_feed_stopped(struct feed_env *env, struct feed *f)
{
	struct app *a = container_of(env, struct app, env);
	int64_t now = mono_us();

	a->n_live--;
	/* Never free or quit inside an lws callback: leave it to a timer. */
	if (env->stopping && a->n_live == 0)
		tq_arm(&a->tq, &a->t_quit, now);
	else if (!env->stopping)
		tq_arm(&a->tq, &a->t_reap, now);
}

/* Frees the retiring feeds that have stopped, and the configurations nobody uses any more. */
static void on_reap_timer(struct tq_timer *t, int64_t now_us)
{
	struct app *a = container_of(t, struct app, t_reap);
	size_t kept = 0;

	if (a->http_jobs > 0) {
		/* A scrape in progress may still point at retired feeds: come back later. */
		tq_arm(&a->tq, t, now_us + 100 * 1000);
		return;
	}

	for (size_t i = 0; i < a->retiring.n; i++) {
		struct feed *f = a->retiring.v[i];
		if (f->state == FEED_STOPPED && !f->conn)
			app_feed_free(a, f);
		else
			a->retiring.v[kept++] = f;
	}
	a->retiring.n = kept;
	if (kept == 0) {
		for (size_t i = 0; i < a->n_old_cfgs; i++)
			cfg_free(a->old_cfgs[i]);
		a->n_old_cfgs = 0;
	}
	app_update_status(a);
}

#ifdef __GLIBC__
/* Resident set in KiB (/proc/self/statm), -1 if unknown. */
static long rss_kib(void)
{
	long size, pages = -1;
	FILE *f = fopen("/proc/self/statm", "re");

	if (f) {
		if (fscanf(f, "%ld %ld", &size, &pages) != 2)
			pages = -1;
		fclose(f);
	}
	return pages < 0 ? -1 : pages * (sysconf(_SC_PAGESIZE) / 1024);
}
#endif

/* The connect queue has gone quiet: trim the heap a little later (see on_trim_timer). */
static void on_connects_settled(struct connq *q, int64_t now_us)
{
	struct app *a = container_of(q, struct app, cq);
	int64_t at = now_us + APP_TRIM_SETTLE_US;

	if (a->trimmed_us && at < a->trimmed_us + APP_TRIM_GAP_US)
		at = a->trimmed_us + APP_TRIM_GAP_US;
	tq_arm(&a->tq, &a->t_trim, at);
}

/*
 * Gives the heap's free pages back to the system once connection attempts have settled. A TLS
 * handshake allocates and frees some 50 KB (record buffers, the certificate, key exchange)
 * while the long-lived objects of the connections opened alongside it are allocated, and
 * glibc's free() gives back only the top of the heap: with up to CONNQ_MAX_INFLIGHT handshakes
 * in flight, 12-16 MB stayed resident in free chunks at 10,000 wss feeds (bench/README.md,
 * "What a connection costs in memory"). malloc_trim() releases the whole pages inside them. It
 * walks the free lists (5 ms the first time at 10k wss feeds, under 1 ms after), so it runs only
 * when the connect queue has been quiet for APP_TRIM_SETTLE_US, at most once every
 * APP_TRIM_GAP_US: never while every feed stays connected.
 */
static void on_trim_timer(struct tq_timer *t, int64_t now_us)
{
	struct app *a = container_of(t, struct app, t_trim);

	if (connq_busy(&a->cq))
		return; /* a new burst: its end arms this again */
	a->trimmed_us = now_us;
#ifdef __GLIBC__
	long before = log_enabled(LOG_LVL_DEBUG) ? rss_kib() : -1;
	malloc_trim(0);
	if (before >= 0) {
		long after = rss_kib();
		char b[24], af[24];
		snprintf(b, sizeof(b), "%ld", before);
		snprintf(af, sizeof(af), "%ld", after);
		log_rec(LOG_LVL_DEBUG,
		        (struct log_kv[]){
		            {"event", "heap_trim"}, {"rss_before_kib", b}, {"rss_after_kib", af}},
		        3, "returned the heap's free pages to the system: RSS %ld -> %ld KiB",
		        before, after);
	}
#endif
}

static void on_quit_timer(struct tq_timer *t, int64_t now_us)
{
	struct app *a = container_of(t, struct app, t_quit);

	ws_quit(a->ws);
}

static void log_status(struct app *a, int64_t now_us)
{
	for (size_t i = 0; i < a->feeds.n; i++)
		feed_log_status(a->feeds.v[i], now_us);
}

static void on_status_timer(struct tq_timer *t, int64_t now_us)
{
	struct app *a = container_of(t, struct app, t_status);

	log_status(a, now_us);
	tq_arm(&a->tq, t, t->deadline_us + a->cfg->status_interval_ms * 1000);
}

void app_update_status(struct app *a)
{
	const size_t *n = a->env.n_in_state;
	size_t pending = n[FEED_IDLE] + n[FEED_RESOLVING] + n[FEED_CONNECTING];
	char text[420];
	int len;

	len = snprintf(text, sizeof(text), "%zu/%zu feeds open", n[FEED_OPEN], a->feeds.n);
	if (n[FEED_BACKOFF])
		len += snprintf(text + len, sizeof(text) - (size_t)len, ", %zu in backoff",
		                n[FEED_BACKOFF]);
	if (pending && len < (int)sizeof(text))
		len +=
		    snprintf(text + len, sizeof(text) - (size_t)len, ", %zu connecting", pending);
	if (a->reload_error[0] && len < (int)sizeof(text))
		len += snprintf(text + len, sizeof(text) - (size_t)len,
		                "; reload failed, running the previous configuration: %s",
		                a->reload_error);
	if (a->restart_note[0] && len < (int)sizeof(text))
		snprintf(text + len, sizeof(text) - (size_t)len, "; %s", a->restart_note);
	notify_status(text);
}

static void on_notify_timer(struct tq_timer *t, int64_t now_us)
{
	struct app *a = container_of(t, struct app, t_notify);

	app_update_status(a);
	tq_arm(&a->tq, t, t->deadline_us + 1000 * 1000);
}

static void on_watchdog_timer(struct tq_timer *t, int64_t now_us)
{
	struct app *a = container_of(t, struct app, t_watchdog);

	/* Sent from the loop: a loop that stops turning stops the pings and gets restarted. */
	notify_watchdog();
	tq_arm(&a->tq, t, t->deadline_us + (int64_t)notify_watchdog_usec() / 2);
}

static void stop_set(struct feed_set *s, int64_t now_us)
{
	for (size_t i = 0; i < s->n; i++)
		feed_stop(s->v[i], now_us);
}

static void begin_stop(struct app *a, int signo)
{
	int64_t now = mono_us();

	log_rec(LOG_LVL_NOTICE, (struct log_kv[]){{"event", "stop"}}, 1,
	        "received %s: closing %zu feeds", sigabbrev_np(signo), a->feeds.n);
	notify_stopping();
	a->env.stopping = true;
	tq_cancel(&a->tq, &a->t_status);
	tq_cancel(&a->tq, &a->t_trim);
	tq_arm(&a->tq, &a->t_quit, now + APP_STOP_GRACE_US);
	if (a->n_live == 0)
		tq_arm(&a->tq, &a->t_quit, now);
	stop_set(&a->feeds, now);
	stop_set(&a->retiring, now);
}

static void on_signal(int signo, void *arg)
{
	struct app *a = arg;

	switch (signo) {
	case SIGTERM:
	case SIGINT:
		if (a->env.stopping) {
			log_warn("second SIG%s: exiting at once", sigabbrev_np(signo));
			_exit(0);
		}
		begin_stop(a, signo);
		break;
	case SIGHUP:
		if (!a->env.stopping)
			app_reload(a);
		break;
	case SIGUSR1:
		sinks_reopen_all(a->sinks);
		break;
	case SIGUSR2:
		log_status(a, mono_us());
		break;
	default:
		log_debug("ignoring SIG%s", sigabbrev_np(signo));
		break;
	}
}

/* Feeds rendered per loop turn: about a millisecond of work. */
#define APP_HTTP_SLICE 500

enum http_doc { DOC_METRICS, DOC_STATUS, DOC_PAGE };

/* A document in progress: a snapshot of the feed set, since a reload may replace it. */
struct http_job {
	enum http_doc doc;
	struct metrics_cursor cur;
	struct status_page_cursor page;
	struct feed **feeds;
	size_t n;
	int64_t mono, real;
};

static int http_begin(void *arg, const char *path, void **job, struct ws_http_reply *reply)
{
	struct app *a = arg;
	struct http_job *j;
	static const struct {
		const char *path, *type;
		enum http_doc doc;
	} routes[] = {
	    {"/metrics", "text/plain; version=0.0.4; charset=utf-8", DOC_METRICS},
	    {"/status", "application/json", DOC_STATUS},
	    {"/", "text/html; charset=utf-8", DOC_PAGE},
	    {"/index.html", "text/html; charset=utf-8", DOC_PAGE},
	};
	size_t r = 0;

	while (r < ARRAY_SIZE(routes) && strcmp(path, routes[r].path) != 0)
		r++;
	if (r == ARRAY_SIZE(routes))
		return 404;
	*reply = (struct ws_http_reply){routes[r].type,
	                                routes[r].doc == DOC_PAGE ? status_page_csp() : NULL};
	if (routes[r].doc == DOC_PAGE && !reply->csp)
		return 500; /* a template without its script or style: see the unit test */
	j = calloc(1, sizeof(*j));
	if (!j || !(j->feeds = malloc((a->feeds.n + 1) * sizeof(*j->feeds)))) {
		free(j);
		return 500;
	}
	memcpy(j->feeds, a->feeds.v, a->feeds.n * sizeof(*j->feeds));
	j->n = a->feeds.n;
	j->doc = routes[r].doc;
	j->mono = mono_us();
	j->real = real_us();
	*job = j;
	a->http_jobs++; /* retired feeds in the snapshot are not freed until it is done */
	return 200;
}

static int http_step(void *arg, void *job, struct mbuf *body)
{
	struct app *a = arg;
	struct http_job *j = job;
	struct metrics_now now = {j->mono, j->real, app_shard(a)};
	int rc;

	if (j->doc == DOC_PAGE)
		return status_page_step(&j->page, body, j->feeds, j->n, &now, APP_HTTP_SLICE);
	if (j->doc == DOC_METRICS) {
		rc = metrics_prometheus_step(&j->cur, body, j->feeds, j->n, j->mono, j->real,
		                             APP_HTTP_SLICE);
		if (rc == 1) {
			metrics_hosts(body, &a->cq); /* as they are now: a reload may have come */
			metrics_process(body, ws_lws_version(), a->start_real_us);
		}
		return body->oom ? -1 : rc;
	}
	return metrics_status_step(&j->cur, body, j->feeds, j->n, &now, APP_HTTP_SLICE);
}

static void http_end(void *arg, void *job)
{
	struct app *a = arg;
	struct http_job *j = job;

	free(j->feeds);
	free(j);
	a->http_jobs--;
}

int app_listen_address(const struct app *a, const struct cfg *c, char *out, size_t outlen,
                       char *err, size_t errlen)
{
	const char *spec = a->cli_shard ? a->cli_shard : c->shard;
	char why[160];
	unsigned k, n;

	if (!c->metrics_listen)
		return 0;
	if (c->metrics_port_per_shard && spec && shard_parse(spec, &k, &n) == 0) {
		if (shard_listen(c->metrics_listen, k, out, outlen, why, sizeof(why)) < 0) {
			snprintf(err, errlen, "metrics.port_per_shard: shard %s: %s", spec, why);
			return -1;
		}
		return 1;
	}
	snprintf(out, outlen, "%s", c->metrics_listen);
	return 1;
}

static int listen_http(struct app *a)
{
	char err[256], addr[300];
	int rc = app_listen_address(a, a->cfg, addr, sizeof(addr), err, sizeof(err));

	if (rc <= 0 || ws_listen_http(a->ws, addr, &a->http, err, sizeof(err)) < 0) {
		log_error("%s", err);
		return -1;
	}
	return 0;
}

const char *app_shard(const struct app *a)
{
	return a->cli_shard ? a->cli_shard : a->cfg->shard;
}

bool app_owns(const struct app *a, const struct cfg *c, const struct cfg_feed *f)
{
	const char *spec = a->cli_shard ? a->cli_shard : c->shard;
	unsigned k, n;

	/* Validated at load (config) or at start (command line). */
	if (!spec || shard_parse(spec, &k, &n) < 0)
		return true;
	return shard_owns(f->name, k, n);
}

static void log_shard(const struct app *a)
{
	const char *spec = a->cli_shard ? a->cli_shard : a->cfg->shard;

	if (spec)
		log_rec(LOG_LVL_NOTICE, (struct log_kv[]){{"event", "shard"}, {"shard", spec}}, 2,
		        "shard %s owns %zu of the %zu configured feeds", spec, a->feeds.n,
		        a->cfg->n_feeds);
}

static int init_feeds(struct app *a)
{
	for (size_t i = 0; i < a->cfg->n_feeds; i++) {
		struct feed *f;
		if (!app_owns(a, a->cfg, &a->cfg->feeds[i]))
			continue;
		f = app_feed_new(a, &a->cfg->feeds[i]);
		if (!f || feed_set_add(&a->feeds, f) < 0) {
			if (f)
				app_feed_free(a, f);
			return -1;
		}
	}
	return 0;
}

static int init_timers(struct app *a)
{
	tq_init(&a->tq, a->cfg->timer_slack_ms * 1000, NULL, NULL);
	tq_timer_init(&a->t_status, on_status_timer);
	tq_timer_init(&a->t_quit, on_quit_timer);
	tq_timer_init(&a->t_reap, on_reap_timer);
	tq_timer_init(&a->t_watchdog, on_watchdog_timer);
	tq_timer_init(&a->t_notify, on_notify_timer);
	tq_timer_init(&a->t_trim, on_trim_timer);
	return tq_reserve(&a->tq, 6);
}

int app_init(struct app *a, struct cfg *cfg, bool level_from_cli, const char *cli_shard)
{
	struct connq_hosts hosts;
	int64_t now = mono_us();

	*a = (struct app){.cfg = cfg,
	                  .level_from_cli = level_from_cli,
	                  .cli_shard = cli_shard,
	                  .start_real_us = real_us()};
	notify_init();
	rng_seed(&a->rng, 0);
	if (init_timers(a) < 0 || !(a->sinks = sinks_new(&a->tq)) ||
	    connq_init(&a->cq, &a->tq, cfg->max_connects_per_second, on_slot, now) < 0 ||
	    app_hosts_new(cfg, &a->tq, &hosts) < 0)
		goto nomem;
	a->cq.settled = on_connects_settled;
	a->cq.wait = app_host_wait;
	connq_hosts_install(&a->cq, &hosts);
	if (proxy_env_load(&a->proxy_env, getenv, proxy_warn_log, NULL) < 0)
		goto nomem;
	log_proxy_env(&a->proxy_env);
	a->env = (struct feed_env){.tq = &a->tq,
	                           .proxy_env = &a->proxy_env,
	                           .connq = &a->cq,
	                           .rng = &a->rng,
	                           .shell = &ws_feed_shell,
	                           .on_stopped = on_feed_stopped,
	                           .rotate_new = app_rotate_new,
	                           .rotate_promote = app_rotate_promote,
	                           .rotate_drop = app_rotate_drop,
	                           .random = app_random};
	if (init_feeds(a) < 0)
		goto nomem;
	app_hosts_rehome(a, cfg, now);
	a->ws = ws_new(cfg, &a->tq, on_signal, a);
	if (!a->ws)
		return -1;
	a->env.shell_arg = a->ws;
	/* Set even without metrics.listen: a reload may add the endpoint. */
	a->http = (struct ws_http_hooks){http_begin, http_step, http_end, a};
	return cfg->metrics_listen ? listen_http(a) : 0;
nomem:
	log_error("out of memory");
	return -1;
}

static void arm_process_timers(struct app *a, int64_t now)
{
	if (a->cfg->status_interval_ms > 0)
		tq_arm(&a->tq, &a->t_status, now + a->cfg->status_interval_ms * 1000);
	if (notify_watchdog_usec() > 0)
		tq_arm(&a->tq, &a->t_watchdog, now + (int64_t)notify_watchdog_usec() / 2);
	if (getenv("NOTIFY_SOCKET"))
		tq_arm(&a->tq, &a->t_notify, now + 1000 * 1000);
}

int app_run(struct app *a)
{
	int64_t now = mono_us();

	log_rec(LOG_LVL_NOTICE, (struct log_kv[]){{"event", "start"}}, 1,
	        "wsbeat %s starting with %zu feed%s from %s", WSBEAT_VERSION, a->feeds.n,
	        a->feeds.n == 1 ? "" : "s", a->cfg->path);
	log_shard(a);
	for (size_t i = 0; i < a->feeds.n; i++)
		feed_start(a->feeds.v[i], now);
	arm_process_timers(a, now);
	app_update_status(a);
	notify_ready(); /* every feed is started (not necessarily connected) */
	if (ws_run(a->ws) < 0) {
		log_error("the event loop failed");
		return 1;
	}
	/* Every connection is closed and recorded; now nothing buffered may be lost. */
	if (sinks_flush_all(a->sinks, APP_FLUSH_TIMEOUT_MS) < 0)
		log_error("could not write everything buffered for the sinks within %d ms",
		          APP_FLUSH_TIMEOUT_MS);
	log_rec(LOG_LVL_NOTICE, (struct log_kv[]){{"event", "exit"}}, 1, "stopped");
	return 0;
}

static void free_set(struct app *a, struct feed_set *s)
{
	for (size_t i = 0; i < s->n; i++) {
		struct feed *n = s->v[i]->rot_next;
		if (n && n->shadow) /* a replacement still in flight (a stop did not finish) */
			app_feed_free(a, n);
		app_feed_free(a, s->v[i]);
	}
	free(s->v);
	*s = (struct feed_set){0};
}

void app_fini(struct app *a)
{
	/* The context goes first: its last callbacks still reach live feeds. */
	ws_free(a->ws);
	free_set(a, &a->feeds);
	free_set(a, &a->retiring);
	feed_env_fini(&a->env);
	proxy_env_fini(&a->proxy_env);
	sinks_free(a->sinks);
	connq_fini(&a->cq);
	tq_fini(&a->tq);
	for (size_t i = 0; i < a->n_old_cfgs; i++)
		cfg_free(a->old_cfgs[i]);
	free(a->old_cfgs);
	cfg_free(a->cfg);
	*a = (struct app){0};
}
