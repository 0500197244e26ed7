/*
 * The `hosts` setting wired to the connect queue: one connq host entry per configured entry,
 * every feed's node pointed at the entry its URL host matches, and a debug record when a feed
 * waits for its host's limit. A reload installs a new table without touching a connection:
 * feeds waiting are queued again under the new limits, and connections open beyond a lowered
 * max_connections stay (they count, so no new one starts until enough have ended).
 */
#include <stdio.h>
#include <stdlib.h>

#include "wsbeat/app.h"
#include "wsbeat/log.h"
#include "wsbeat/util.h"

int app_hosts_new(const struct cfg *cfg, struct timerq *tq, struct connq_hosts *hs)
{
	struct connq_limit *lim = calloc(cfg->n_hosts + 1, sizeof(*lim));
	int rc;

	if (!lim)
		return -1;
	for (size_t i = 0; i < cfg->n_hosts; i++)
		lim[i] =
		    (struct connq_limit){cfg->hosts[i].match, cfg->hosts[i].max_connects_per_second,
		                         cfg->hosts[i].max_connections};
	rc = connq_hosts_new(hs, tq, lim, cfg->n_hosts);
	free(lim);
	return rc;
}

static void place(struct app *a, const struct cfg *cfg, struct feed *f)
{
	f->qnode.host = (unsigned)(cfg_host_find(cfg, f->cfg->url.host) + 1);
	connq_adopt(&a->cq, &f->qnode);
}

/* Every connect-queue node of every feed: its qnode, and its replacement's while a rotation is
 * in flight (the replacement is in neither set; one given up is among the retiring). */
static void place_set(struct app *a, const struct cfg *cfg, struct feed_set *s)
{
	for (size_t i = 0; i < s->n; i++) {
		struct feed *f = s->v[i];
		place(a, cfg, f);
		if (f->rot_next && f->rot_next->shadow)
			place(a, cfg, f->rot_next);
	}
}

void app_hosts_rehome(struct app *a, const struct cfg *cfg, int64_t now_us)
{
	place_set(a, cfg, &a->feeds);
	place_set(a, cfg, &a->retiring);
	connq_hosts_done(&a->cq, now_us);
}

/* n is a feed's qnode (a node of another kind would need telling apart here). */
void app_host_wait(struct connq *q, struct connq_node *n, const struct connq_host *h,
                   enum connq_wait why, int64_t now_us)
{
	struct feed *f = container_of(n, struct feed, qnode);
	const char *limit = why == CONNQ_WAIT_RATE ? "max_connects_per_second" : "max_connections";
	char value[16], waiting[24];

	(void)q;
	(void)now_us;
	if (!log_enabled(LOG_LVL_DEBUG))
		return;
	snprintf(value, sizeof(value), "%u", why == CONNQ_WAIT_RATE ? h->win.limit : h->max_conns);
	snprintf(waiting, sizeof(waiting), "%lu", h->waiting);
	log_rec(LOG_LVL_DEBUG,
	        (struct log_kv[]){{"feed", f->cfg->name},
	                          {"event", "host_wait"},
	                          {"state", feed_state_name(f->state)},
	                          {"host", h->key},
	                          {"limit", limit},
	                          {"value", value},
	                          {"waiting", waiting}},
	        7, "waiting for hosts entry \"%s\": %s = %s reached", h->key, limit, value);
}
