/* app: the daemon's parts wired together: config, feeds, timers, connect queue and the shell. */
#ifndef WSBEAT_APP_H
#define WSBEAT_APP_H

#include <stddef.h>

#include "wsbeat/cfg.h"
#include "wsbeat/connq.h"
#include "wsbeat/feed.h"
#include "wsbeat/rng.h"
#include "wsbeat/timerq.h"

struct ws;

struct app {
	struct cfg *cfg;
	struct feed *feeds;
	size_t n_feeds;
	struct timerq tq;
	struct connq cq;
	struct rng rng;
	struct feed_env env;
	struct ws *ws;
	struct tq_timer t_status, t_quit;
	size_t n_stopped;
};

/*
 * Checks that this build supports every setting cfg uses. Returns 0, or -1 with
 * "FILE:LINE: message" in err.
 */
int app_check_supported(const struct cfg *cfg, char *err, size_t errlen);

/* Takes ownership of cfg and builds everything up to the loop. 0, or -1 after logging. */
int app_init(struct app *a, struct cfg *cfg);

/* Starts every feed and runs the loop until a stop is requested. Returns the exit status. */
int app_run(struct app *a);

/* Releases everything, in reverse order of app_init. */
void app_fini(struct app *a);

#endif
