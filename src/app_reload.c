/*
 * Reload (SIGHUP): a new configuration replaces the old one only if it is valid. Feeds are
 * matched by name: new ones start, removed ones close, changed ones restart, and unchanged
 * ones keep their connection untouched (they only move to the new snapshot, which holds the
 * same settings). Everything that can fail happens before anything is changed.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "wsbeat/app.h"
#include "wsbeat/log.h"
#include "wsbeat/notify.h"
#include "wsbeat/util.h"
#include "wsbeat/ws.h"

struct plan {
	struct cfg *nc;
	struct feed **sorted; /* old feeds by name; an entry is cleared when the feed is kept */
	struct feed **next;   /* the new set, one per feed of nc */
	bool *fresh;          /* next[i] was created by this reload */
	long *kept;           /* index in sorted of the old feed next[i] continues, or -1 */
	size_t added, removed, changed, unchanged;
};

static int by_name(const void *a, const void *b)
{
	const struct feed *fa = *(struct feed *const *)a, *fb = *(struct feed *const *)b;

	return strcmp(fa->cfg->name, fb->cfg->name);
}

/* Index of the old feed called name in the sorted array, or -1. */
static long find(struct feed **sorted, size_t n, const char *name)
{
	size_t lo = 0, hi = n;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		int c = strcmp(name, sorted[mid]->cfg->name);
		if (c == 0)
			return (long)mid;
		if (c < 0)
			hi = mid;
		else
			lo = mid + 1;
	}
	return -1;
}

static void fail(struct app *a, const char *why)
{
	size_t n = strnlen(why, sizeof(a->reload_error) - 1);

	memcpy(a->reload_error, why, n); /* cut: it goes into the one-line STATUS */
	a->reload_error[n] = '\0';
	log_rec(LOG_LVL_ERROR, (struct log_kv[]){{"event", "reload"}, {"reason", why}}, 2,
	        "configuration not reloaded, still running the previous one: %s", why);
	app_update_status(a);
}

static void plan_free(struct app *a, struct plan *p, bool drop_fresh)
{
	for (size_t i = 0; drop_fresh && p->next && i < p->nc->n_feeds; i++)
		if (p->fresh[i] && p->next[i])
			app_feed_free(a, p->next[i]);
	free(p->sorted);
	free(p->next);
	free(p->fresh);
	free(p->kept);
}

/* Decides, for every feed of the new configuration, whether an old feed carries on. */
static int plan_build(struct app *a, struct plan *p)
{
	size_t n_old = a->feeds.n, n_new = p->nc->n_feeds;

	p->sorted = malloc((n_old + 1) * sizeof(*p->sorted));
	p->next = calloc(n_new + 1, sizeof(*p->next));
	p->fresh = calloc(n_new + 1, sizeof(*p->fresh));
	p->kept = calloc(n_new + 1, sizeof(*p->kept));
	if (!p->sorted || !p->next || !p->fresh || !p->kept)
		return -1;
	memcpy(p->sorted, a->feeds.v, n_old * sizeof(*p->sorted));
	qsort(p->sorted, n_old, sizeof(*p->sorted), by_name);
	for (size_t i = 0; i < n_new; i++) {
		const struct cfg_feed *c = &p->nc->feeds[i];
		long k = find(p->sorted, n_old, c->name);
		p->kept[i] = -1;
		if (!app_owns(a, p->nc, c))
			continue; /* another shard's: an old feed of that name retires */
		if (k >= 0 && cfg_feed_equal(p->sorted[k]->cfg, c)) {
			p->next[i] = p->sorted[k];
			p->kept[i] = k;
			p->unchanged++;
		} else {
			p->next[i] = app_feed_new(a, c);
			p->fresh[i] = true;
			if (!p->next[i])
				return -1;
			k >= 0 ? p->changed++ : p->added++;
		}
	}
	return 0;
}

/* An unchanged feed moves to the new snapshot. Its proxy too: f->proxy points at the URL of
 * its proxy setting in the old snapshot, which is freed once no retiring feed uses it (the
 * client vhosts compare proxies by value, so an attempt in flight is not disturbed). */
static void move_feed(struct app *a, struct feed *f, const struct cfg_feed *c)
{
	f->cfg = c;
	f->proxy = proxy_choose(&c->proxy, &a->proxy_env, &c->url);
}

/* Commits the plan; nothing here can fail (room was reserved beforehand). */
static void plan_apply(struct app *a, struct plan *p, int64_t now_us)
{
	for (size_t i = 0; i < p->nc->n_feeds; i++) {
		struct feed *f = p->next[i];
		if (p->kept[i] >= 0) {
			move_feed(a, f, &p->nc->feeds[i]);
			if (f->rot_next && f->rot_next->shadow) /* its replacement in flight */
				move_feed(a, f->rot_next, &p->nc->feeds[i]);
			p->sorted[p->kept[i]] = NULL;
		}
	}
	for (size_t i = 0; i < a->feeds.n; i++) {
		struct feed *f = p->sorted[i];
		if (!f)
			continue;
		bool removed = !cfg_find_feed(p->nc, f->cfg->name) ||
		               !app_owns(a, p->nc, cfg_find_feed(p->nc, f->cfg->name));
		p->removed += removed;
		a->retiring.v[a->retiring.n++] = f;
		feed_stop_why(f, now_us,
		              removed ? "removed from the configuration" : "configuration changed");
	}
	/* Compact the new set in configuration order, starting the feeds made for it. */
	free(a->feeds.v);
	a->feeds = (struct feed_set){p->next, 0, p->nc->n_feeds + 1};
	for (size_t i = 0; i < p->nc->n_feeds; i++) {
		if (!p->next[i])
			continue;
		if (p->fresh[i])
			feed_start(p->next[i], now_us);
		a->feeds.v[a->feeds.n++] = p->next[i];
	}
	p->next = NULL;
}

static void apply_globals(struct app *a, const struct cfg *nc, int64_t now_us)
{
	if (!a->level_from_cli)
		log_set_level(nc->log_level);
	ws_set_lws_log_level(nc->lws_log_level);
	connq_set_rate(&a->cq, nc->max_connects_per_second);
	a->tq.slack_us = nc->timer_slack_ms * 1000;
	ws_set_io_slack(a->ws, nc->io_slack_ms);
	tq_cancel(&a->tq, &a->t_status);
	if (nc->status_interval_ms > 0)
		tq_arm(&a->tq, &a->t_status, now_us + nc->status_interval_ms * 1000);
}

static bool same_str(const char *x, const char *y)
{
	return x == y || (x && y && strcmp(x, y) == 0);
}

/* The resolver is built once at start: feeds resolving now hold requests on it. */
static void check_resolver(struct app *a, const struct cfg *nc)
{
	const struct cfg *oc = a->cfg;

	if (same_str(oc->dns_servers, nc->dns_servers) &&
	    oc->dns_timeout_ms == nc->dns_timeout_ms && oc->dns_tries == nc->dns_tries)
		return;
	snprintf(a->restart_note, sizeof(a->restart_note),
	         "dns_servers, dns_timeout or dns_tries changed: restart to apply");
	log_rec(LOG_LVL_WARNING, (struct log_kv[]){{"event", "reload"}}, 1,
	        "dns_servers, dns_timeout and dns_tries apply only at start: the resolver keeps "
	        "its previous settings until wsbeat is restarted");
}

/* Moves, starts or stops the metrics endpoint; a new address that cannot be bound fails the
 * reload (the endpoint stays where it was). */
static int apply_listen(struct app *a, const struct cfg *nc, char *err, size_t errlen)
{
	char was[300] = "", now[300] = "";
	int rc_was = app_listen_address(a, a->cfg, was, sizeof(was), err, errlen);
	int rc_now = app_listen_address(a, nc, now, sizeof(now), err, errlen);

	if (rc_now < 0)
		return -1;
	if (rc_was == rc_now && strcmp(was, now) == 0)
		return 0;
	if (rc_now == 0) {
		ws_listen_http(a->ws, NULL, &a->http, err, errlen);
		return 0;
	}
	if (ws_listen_http(a->ws, now, &a->http, err, errlen) < 0)
		return -1;
	return 0;
}

static int load(struct app *a, struct cfg **nc, char *err, size_t errlen)
{
	if (cfg_load(a->cfg->path, nc, err, errlen) < 0 ||
	    app_check_supported(*nc, err, errlen) < 0 || ws_prepare(a->ws, *nc, err, errlen) < 0 ||
	    apply_listen(a, *nc, err, errlen) < 0) {
		cfg_free(*nc);
		*nc = NULL;
		return -1;
	}
	return 0;
}

void app_reload(struct app *a)
{
	struct plan p = {0};
	struct connq_hosts hosts = {0};
	struct cfg **old;
	int64_t now = mono_us();
	char err[1024];

	if (load(a, &p.nc, err, sizeof(err)) < 0) {
		fail(a, err);
		return;
	}
	notify_reloading();
	old = realloc(a->old_cfgs, (a->n_old_cfgs + 1) * sizeof(*old));
	if (old)
		a->old_cfgs = old;
	if (!old || app_reserve_retiring(a, a->feeds.n) < 0 ||
	    app_hosts_new(p.nc, &a->tq, &hosts) < 0 || plan_build(a, &p) < 0) {
		plan_free(a, &p, true);
		connq_hosts_free(&hosts, &a->tq);
		cfg_free(p.nc);
		fail(a, "out of memory");
		notify_ready();
		return;
	}
	/* Feeds started or stopped meanwhile are queued under the new host limits. */
	connq_hosts_install(&a->cq, &hosts);
	plan_apply(a, &p, now);
	app_hosts_rehome(a, p.nc, now);
	check_resolver(a, p.nc);
	a->old_cfgs[a->n_old_cfgs++] = a->cfg;
	a->cfg = p.nc;
	apply_globals(a, p.nc, now);
	a->reload_error[0] = '\0';
	log_rec(LOG_LVL_NOTICE, (struct log_kv[]){{"event", "reload"}}, 1,
	        "configuration reloaded: %zu added, %zu removed, %zu changed, %zu unchanged",
	        p.added, p.removed, p.changed, p.unchanged);
	plan_free(a, &p, false);
	tq_arm(&a->tq, &a->t_reap, now);
	app_update_status(a);
	notify_ready();
}
