/* Wires the modules together and owns the process-level timers and signals. */
#include "wsbeat/app.h"

#include <openssl/ssl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "wsbeat/log.h"
#include "wsbeat/tls.h"
#include "wsbeat/util.h"
#include "wsbeat/version.h"
#include "wsbeat/ws.h"

/* How long connections may take to close on a stop before the loop ends anyway. */
#define APP_STOP_GRACE_US (2 * 1000 * 1000)

static int check_tls(const struct cfg *cfg, char *err, size_t errlen)
{
	char why[512];

	/* Build each TLS context once now, so a bad certificate is a config error, not a
	 * start failure. */
	for (size_t i = 0; i < cfg->n_feeds; i++) {
		const struct cfg_feed *f = &cfg->feeds[i];
		SSL_CTX *ctx;
		if (!f->url.tls)
			continue;
		ctx = tls_client_ctx_new(&f->tls, why, sizeof(why));
		if (!ctx) {
			snprintf(err, errlen, "%s:%d: feed %s: %s", cfg->path, f->line, f->name,
			         why);
			return -1;
		}
		SSL_CTX_free(ctx);
	}
	return 0;
}

int app_check_supported(const struct cfg *cfg, char *err, size_t errlen)
{
	const char *what = NULL;
	int line = 0;

	if (cfg->metrics_listen)
		what = "metrics: the metrics endpoint is not supported by this version yet";
	for (size_t i = 0; !what && i < cfg->n_feeds; i++) {
		line = cfg->feeds[i].line;
		if (cfg->feeds[i].sink.type != SINK_DISCARD)
			what = "sink: only type \"discard\" is supported by this version yet";
	}
	if (what) {
		snprintf(err, errlen, "%s:%d: %s", cfg->path, line, what);
		return -1;
	}
	return check_tls(cfg, err, errlen);
}

static void on_slot(struct connq *q, struct connq_node *n, int64_t now_us)
{
	feed_on_slot(container_of(n, struct feed, qnode), now_us);
}

static void on_feed_stopped(struct feed_env *env, struct feed *f)
{
	struct app *a = container_of(env, struct app, env);

	/* End the loop from a timer, never from inside an lws callback. */
	if (++a->n_stopped == a->n_feeds)
		tq_arm(&a->tq, &a->t_quit, mono_us());
}

static void on_quit_timer(struct tq_timer *t, int64_t now_us)
{
	struct app *a = container_of(t, struct app, t_quit);

	ws_quit(a->ws);
}

static void log_status(struct app *a, int64_t now_us)
{
	for (size_t i = 0; i < a->n_feeds; i++)
		feed_log_status(&a->feeds[i], now_us);
}

static void on_status_timer(struct tq_timer *t, int64_t now_us)
{
	struct app *a = container_of(t, struct app, t_status);

	log_status(a, now_us);
	tq_arm(&a->tq, t, t->deadline_us + a->cfg->status_interval_ms * 1000);
}

static void begin_stop(struct app *a, int signo)
{
	int64_t now = mono_us();

	log_rec(LOG_LVL_NOTICE, (struct log_kv[]){{"event", "stop"}}, 1,
	        "received %s: closing %zu feeds", sigabbrev_np(signo), a->n_feeds);
	a->env.stopping = true;
	tq_cancel(&a->tq, &a->t_status);
	tq_arm(&a->tq, &a->t_quit, now + APP_STOP_GRACE_US);
	for (size_t i = 0; i < a->n_feeds; i++)
		feed_stop(&a->feeds[i], now);
}

static void on_signal(int signo, void *arg)
{
	struct app *a = arg;

	switch (signo) {
	case SIGTERM:
	case SIGINT:
		if (a->env.stopping) {
			log_warn("second %s: exiting at once", sigabbrev_np(signo));
			_exit(0);
		}
		begin_stop(a, signo);
		break;
	case SIGUSR2:
		log_status(a, mono_us());
		break;
	case SIGHUP:
		log_warn("SIGHUP: reloading the configuration is not supported by this version "
		         "yet; restart to apply changes");
		break;
	default:
		log_debug("ignoring SIG%s", sigabbrev_np(signo));
		break;
	}
}

static int init_feeds(struct app *a)
{
	a->feeds = calloc(a->cfg->n_feeds, sizeof(*a->feeds));
	if (!a->feeds)
		return -1;
	for (size_t i = 0; i < a->cfg->n_feeds; i++) {
		if (feed_init(&a->feeds[i], &a->cfg->feeds[i], &a->env) < 0)
			return -1;
		a->n_feeds++;
	}
	return 0;
}

int app_init(struct app *a, struct cfg *cfg)
{
	int64_t now = mono_us();

	*a = (struct app){.cfg = cfg};
	rng_seed(&a->rng, 0);
	tq_init(&a->tq, cfg->timer_slack_ms * 1000, NULL, NULL);
	tq_timer_init(&a->t_status, on_status_timer);
	tq_timer_init(&a->t_quit, on_quit_timer);
	if (tq_reserve(&a->tq, 2) < 0 ||
	    connq_init(&a->cq, &a->tq, cfg->max_connects_per_second, on_slot, now) < 0)
		goto nomem;
	a->env = (struct feed_env){.tq = &a->tq,
	                           .connq = &a->cq,
	                           .rng = &a->rng,
	                           .shell = &ws_feed_shell,
	                           .on_stopped = on_feed_stopped};
	if (init_feeds(a) < 0)
		goto nomem;
	a->ws = ws_new(cfg, &a->tq, on_signal, a);
	if (!a->ws)
		return -1;
	a->env.shell_arg = a->ws;
	return 0;
nomem:
	log_error("out of memory");
	return -1;
}

int app_run(struct app *a)
{
	int64_t now = mono_us();

	log_rec(LOG_LVL_NOTICE, (struct log_kv[]){{"event", "start"}}, 1,
	        "wsbeat %s starting with %zu feeds from %s", WSBEAT_VERSION, a->n_feeds,
	        a->cfg->path);
	for (size_t i = 0; i < a->n_feeds; i++)
		feed_start(&a->feeds[i], now);
	if (a->cfg->status_interval_ms > 0)
		tq_arm(&a->tq, &a->t_status, now + a->cfg->status_interval_ms * 1000);
	if (ws_run(a->ws) < 0) {
		log_error("the event loop failed");
		return 1;
	}
	log_rec(LOG_LVL_NOTICE, (struct log_kv[]){{"event", "exit"}}, 1, "stopped");
	return 0;
}

void app_fini(struct app *a)
{
	/* The context goes first: its last callbacks still reach live feeds. */
	ws_free(a->ws);
	for (size_t i = 0; i < a->n_feeds; i++)
		feed_fini(&a->feeds[i]);
	free(a->feeds);
	connq_fini(&a->cq);
	tq_fini(&a->tq);
	cfg_free(a->cfg);
	*a = (struct app){0};
}
