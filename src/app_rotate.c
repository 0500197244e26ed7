/*
 * Rotation, the owner's side (feed_env.rotate_*; the decisions are feed_rotate.c's): a
 * replacement is a feed of its own, in neither feed set while it is in flight, so /status,
 * /metrics and the STATUS line see one feed; once open it takes the old feed's place and the old
 * one closes among the retiring feeds, which a given-up replacement joins too. Room in the
 * retiring set is kept for where each rotation in flight ends (app_reserve_retiring), so neither
 * move can fail.
 */
#include "wsbeat/app.h"
#include "wsbeat/util.h"

/* A replacement for f's connection (feed_rotate): a feed of f's configuration that shares its
 * sink (a reference of its own) and its hosts entry, listed in neither set until it is open. */
struct feed *app_rotate_new(struct feed_env *env, struct feed *f)
{
	struct app *a = container_of(env, struct app, env);
	struct feed *n;

	if (app_reserve_retiring(a, 1) < 0 || !(n = app_feed_new(a, f->cfg)))
		return NULL;
	n->qnode.host = f->qnode.host;
	a->n_shadows++;
	return n;
}

/* The replacement is open: it takes the old feed's place, which closes among the retiring. */
void app_rotate_promote(struct feed_env *env, struct feed *old, struct feed *n)
{
	struct app *a = container_of(env, struct app, env);

	/* Linear, but once per rotation: 10,000 feeds rotating every 24 h cost nothing. */
	for (size_t i = 0; i < a->feeds.n; i++) {
		if (a->feeds.v[i] == old) {
			a->feeds.v[i] = n;
			break;
		}
	}
	a->retiring.v[a->retiring.n++] = old; /* room reserved by app_rotate_new */
	a->n_shadows--;
}

/* The replacement was given up: it stops among the retiring and is freed from there. */
void app_rotate_drop(struct feed_env *env, struct feed *n)
{
	struct app *a = container_of(env, struct app, env);

	a->retiring.v[a->retiring.n++] = n; /* room reserved by app_rotate_new */
	a->n_shadows--;
}
