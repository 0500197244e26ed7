/*
 * ws: the thin libwebsockets shell. One lws_context on the libev backend runs every feed's
 * connection; this module maps lws callbacks to feed_on_* events, drives the timer queue from
 * one lws timer, and turns signals into loop events. The only file that includes lws headers.
 */
#ifndef WSBEAT_WS_H
#define WSBEAT_WS_H

#include <stdint.h>

#include "wsbeat/cfg.h"
#include "wsbeat/feed.h"
#include "wsbeat/timerq.h"

struct ws;

/* Called on the loop for every signal received (SIGTERM, SIGINT, SIGHUP, SIGUSR1, SIGUSR2). */
typedef void (*ws_signal_fn)(int signo, void *arg);

/*
 * Creates the context and its client vhost for cfg. The timer queue's driver is bound to the
 * context (tq's rearm hook is set here). Blocks the handled signals and adopts a signalfd.
 * Returns NULL after logging why.
 */
struct ws *ws_new(const struct cfg *cfg, struct timerq *tq, ws_signal_fn on_signal, void *arg);

/*
 * Makes sure every feed of cfg has a client vhost for its TLS profile (used at start and by
 * reload). Returns 0, or -1 with a reason in err.
 */
int ws_prepare(struct ws *w, const struct cfg *cfg, char *err, size_t errlen);

struct ws_http_hooks;
/* Serves /metrics and /status on listen ("ADDR:PORT") from the same loop. 0, or -1 + err. */
int ws_listen_http(struct ws *w, const char *listen, const struct ws_http_hooks *hooks, char *err,
                   size_t errlen);

/* Runs the loop until ws_quit; returns 0, or -1 if the loop failed. */
int ws_run(struct ws *w);

/* io_slack: how long a received event may wait before the loop polls (0 = poll at once);
 * takes effect from the next turn of the loop. */
void ws_set_io_slack(struct ws *w, int64_t ms);

/* Ends the loop: call from a timer callback; ws_run returns afterwards. */
void ws_quit(struct ws *w);

/* Destroys the context (closing any connection left) and frees w. NULL is a no-op. */
void ws_free(struct ws *w);

/* Which of libwebsockets' own messages are logged (process-wide; from lws_log_level). */
void ws_set_lws_log_level(enum log_level l);

/* The connection operations feeds use. */
extern const struct feed_shell ws_feed_shell;

/* Versions of the libraries in use, for --version. */
const char *ws_lws_version(void);

#endif
