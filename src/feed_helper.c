/*
 * The connect_command step of a feed's attempt. The helper runs while the feed is `resolving`
 * (the states stay idle -> resolving -> connecting -> open -> ...), under its own deadline of
 * connect_timeout; what it prints replaces the feed's url, headers or on_open for the attempt
 * and is kept, as secrets, until the attempt or its connection ends. The shell spawns, watches,
 * kills and reaps the process; this file only decides.
 */
#include <inttypes.h>
#include <stdio.h>
#include <sys/wait.h>

#include "wsbeat/helper.h"
#include "wsbeat/log.h"

#include "feed_internal.h"

const struct url *feed_url(const struct feed *f)
{
	return f->helper && f->helper->has_url ? &f->helper->url : &f->cfg->url;
}

int64_t feed_credentials_expire_us(const struct feed *f)
{
	return f->helper ? f->helper->expires_at_us : 0;
}

const struct cfg_step *feed_step(const struct feed *f)
{
	const struct helper_out *h = f->helper;

	if (h && h->has_on_open)
		return f->open_step < h->n_on_open ? &h->on_open[f->open_step] : NULL;
	return f->open_step < f->cfg->n_on_open ? &f->cfg->on_open[f->open_step] : NULL;
}

size_t feed_open_after(const struct feed *f)
{
	/* The helper's messages have no waits: sent once the upgrade is done. */
	return f->helper && f->helper->has_on_open ? 0 : f->cfg->open_after;
}

void feed_helper_reset(struct feed *f)
{
	helper_out_free(f->helper);
	f->helper = NULL;
}

/* Kills the running helper; true when there was one. What it said goes into line (size 0:
 * nothing is read). */
static bool cancel(struct feed *f, char *line, size_t size)
{
	if (!f->helper_running)
		return false;
	f->helper_running = false;
	f->env->shell->cancel_helper(f, line, size);
	return true;
}

void feed_helper_cancel(struct feed *f)
{
	cancel(f, NULL, 0);
}

void feed_helper_timeout(struct feed *f)
{
	char line[HELPER_ERR_LINE] = "";

	if (!cancel(f, line, sizeof(line)))
		return;
	feed_set_error(f, "connect_command %s did not answer within %" PRId64 " ms (killed)%s%s",
	               f->cfg->connect_command[0], f->cfg->connect_timeout_ms, *line ? ": " : "",
	               line);
}

void feed_helper_start(struct feed *f, int64_t now_us)
{
	f->helper_running = true;
	if (f->env->shell->run_helper(f) < 0) {
		f->helper_running = false;
		feed_on_gone(f, now_us, NULL);
	}
}

/* Why a helper that ended this way failed, recorded on the feed; false when it did not. */
static bool failed(struct feed *f, const struct helper_result *r)
{
	const char *cmd = f->cfg->connect_command[0], *line = r->err_line ? r->err_line : "";
	const char *sep = *line ? ": " : "";

	if (r->too_big) {
		feed_set_error(f, "connect_command %s printed more than %d bytes (killed)", cmd,
		               HELPER_OUT_MAX);
	} else if (WIFSIGNALED(r->status)) {
		feed_set_error(f, "connect_command %s was killed by signal %d%s%s", cmd,
		               WTERMSIG(r->status), sep, line);
	} else if (!WIFEXITED(r->status) || WEXITSTATUS(r->status) != 0) {
		feed_set_error(f, "connect_command %s exited with status %d%s%s", cmd,
		               WIFEXITED(r->status) ? WEXITSTATUS(r->status) : -1, sep, line);
	} else {
		return false;
	}
	return true;
}

static void log_done(const struct feed *f, int64_t now_us)
{
	char ms[24], exp[24] = "";

	if (!log_enabled(LOG_LVL_DEBUG))
		return;
	snprintf(ms, sizeof(ms), "%" PRId64, (now_us - f->state_since_us) / 1000);
	if (f->helper->expires_in_ms >= 0)
		snprintf(exp, sizeof(exp), "%" PRId64, f->helper->expires_in_ms);
	/* What it gave is secret: only which settings it replaced. */
	feed_log(f,
	         &(struct feed_event){"connect_command",
	                              LOG_LVL_DEBUG,
	                              {{"command", f->cfg->connect_command[0]},
	                               {"ms", ms},
	                               {"url", f->helper->has_url ? "replaced" : NULL},
	                               {"headers", f->helper->has_headers ? "replaced" : NULL},
	                               {"on_open", f->helper->has_on_open ? "replaced" : NULL},
	                               {"expires_in_ms", *exp ? exp : NULL}}},
	         "connect_command answered in %s ms", ms);
}

void feed_on_helper_done(struct feed *f, const struct helper_result *r, int64_t now_us)
{
	char why[160];
	struct helper_out *h;

	if (f->state != FEED_RESOLVING || !f->helper_running)
		return;
	f->helper_running = false;
	if (failed(f, r)) {
		feed_on_gone(f, now_us, NULL);
		return;
	}
	if (helper_parse(r->out, r->out_len, &h, why, sizeof(why)) < 0) {
		feed_set_error(f, "connect_command %s: %s%s%s", f->cfg->connect_command[0], why,
		               r->err_line && *r->err_line ? ": " : "",
		               r->err_line ? r->err_line : "");
		feed_on_gone(f, now_us, NULL);
		return;
	}
	if (h->expires_in_ms >= 0)
		h->expires_at_us = now_us + h->expires_in_ms * 1000;
	f->helper = h;
	log_done(f, now_us);
	/* A fresh connect_timeout for resolving and connecting, as without a helper. */
	feed_set_state(f, feed_dial_numeric(f) ? FEED_CONNECTING : FEED_RESOLVING, now_us);
	tq_arm(f->env->tq, &f->t_state, now_us + f->cfg->connect_timeout_ms * 1000);
	feed_dial(f, now_us);
}
