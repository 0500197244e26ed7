/* status_page: see status_page.h. */
#include "wsbeat/status_page.h"

#include <inttypes.h>
#include <math.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

/* Generated from src/status_page.html by src/embed.cmake. */
extern const char wsbeat_status_page[];
extern const size_t wsbeat_status_page_len;

const char *status_page_template(size_t *len)
{
	*len = wsbeat_status_page_len;
	return wsbeat_status_page;
}

/* 'sha256-BASE64' of the text between <tag> and </tag>; false if the element is missing. */
static bool element_hash(const char *tag, char *out, size_t outlen)
{
	char open[16], close[16];
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned mdlen = 0;
	const char *a, *b;

	snprintf(open, sizeof(open), "<%s>", tag);
	snprintf(close, sizeof(close), "</%s>", tag);
	a = strstr(wsbeat_status_page, open);
	b = a ? strstr(a, close) : NULL;
	if (!b || outlen < 8 + 4 * ((EVP_MAX_MD_SIZE + 2) / 3) + 2)
		return false;
	a += strlen(open);
	if (!EVP_Digest(a, (size_t)(b - a), md, &mdlen, EVP_sha256(), NULL))
		return false;
	memcpy(out, "'sha256-", 8);
	EVP_EncodeBlock((unsigned char *)out + 8, md, (int)mdlen);
	strcat(out, "'");
	return true;
}

const char *status_page_csp(void)
{
	static char csp[512];
	static int done; /* 1 = computed, -1 = the template lacks an element */
	char script[100], style[100];

	if (done == 0) {
		done = -1;
		if (element_hash("script", script, sizeof(script)) &&
		    element_hash("style", style, sizeof(style))) {
			snprintf(csp, sizeof(csp),
			         "default-src 'none'; script-src %s; style-src %s; connect-src "
			         "'self'; img-src data:; base-uri 'none'; form-action 'none'; "
			         "frame-ancestors 'none'",
			         script, style);
			done = 1;
		}
	}
	return done > 0 ? csp : NULL;
}

static void put_html(struct mbuf *b, const char *s)
{
	const char *run = s;

	for (; *s; s++) {
		const char *rep = NULL;

		switch (*s) {
		case '<':
			rep = "&lt;";
			break;
		case '>':
			rep = "&gt;";
			break;
		case '&':
			rep = "&amp;";
			break;
		case '"':
			rep = "&quot;";
			break;
		case '\'':
			rep = "&#39;";
			break;
		default:
			continue;
		}
		mbuf_put(b, run, (size_t)(s - run));
		mbuf_puts(b, rep);
		run = s + 1;
	}
	mbuf_put(b, run, (size_t)(s - run));
}

void status_page_duration(double secs, char *buf, size_t len)
{
	if (!(secs > 0))
		secs = 0;
	if (secs < 60)
		snprintf(buf, len, "%.1f s", secs);
	else if (secs < 3600)
		snprintf(buf, len, "%.0f min", secs / 60 - 0.5 < 1 ? 1 : secs / 60 - 0.5);
	else if (secs < 86400)
		snprintf(buf, len, "%.1f h", secs / 3600);
	else
		snprintf(buf, len, "%.1f d", secs / 86400);
}

#define DASH "\xe2\x80\x93" /* U+2013, for "none" */

static void render_row(struct mbuf *b, const struct feed *f, const struct metrics_now *now)
{
	const char *state = feed_state_name(f->state);
	const char *name = f->cfg && f->cfg->name ? f->cfg->name : "";
	const char *url = f->cfg && f->cfg->url.display ? f->cfg->url.display : "";
	int64_t err_at = 0;
	const char *err = feed_last_error(f, now->mono_us, now->real_us, &err_at);
	char t[48];

	mbuf_printf(b, "<tr class=\"st-%s\" data-name=\"", state);
	put_html(b, name);
	mbuf_printf(b, "\" data-state=\"%s\"><td class=\"c-name\">", state);
	put_html(b, name);
	mbuf_puts(b, "<div class=\"url\">");
	put_html(b, url);
	mbuf_printf(b,
	            "</div></td><td class=\"c-state\"><span class=\"badge st-%s\">%s</span></td>",
	            state, state);
	status_page_duration((double)(now->mono_us - f->state_since_us) / 1e6, t, sizeof(t));
	mbuf_printf(b,
	            "<td class=\"c-in\">%s</td><td class=\"c-attempt\">%u</td><td class=\"c-rtt\">",
	            t, f->failures + 1);
	if (f->stats.last_rtt_ms >= 0 && isfinite(f->stats.last_rtt_ms))
		mbuf_printf(b, "%.2f ms", f->stats.last_rtt_ms);
	else
		mbuf_puts(b, DASH);
	mbuf_puts(b, "</td><td class=\"c-msg\">");
	if (f->stats.last_msg_us) {
		status_page_duration((double)(now->mono_us - f->stats.last_msg_us) / 1e6, t,
		                     sizeof(t));
		mbuf_puts(b, t);
	} else {
		mbuf_puts(b, DASH);
	}
	mbuf_printf(b, "</td><td class=\"c-rec\">%" PRIu64 "</td><td class=\"c-err\">",
	            f->stats.connects > 0 ? f->stats.connects - 1 : 0);
	if (err) {
		put_html(b, err);
		status_page_duration((double)(now->real_us - err_at) / 1e6, t, sizeof(t));
		mbuf_printf(b, "<div class=\"when\">%s ago</div>", t);
	} else {
		mbuf_puts(b, DASH "<div class=\"when\"></div>");
	}
	mbuf_puts(b, "</td><td class=\"c-close\">");
	if (f->last_close_code)
		mbuf_printf(b, "%d", f->last_close_code);
	else
		mbuf_puts(b, DASH);
	mbuf_puts(b, "</td></tr>\n");
}

static void render_summary(struct mbuf *b, struct feed *const *feeds, size_t n)
{
	size_t open = 0, backoff = 0, pending = 0;

	for (size_t i = 0; i < n; i++) {
		enum feed_state s = feeds[i]->state;
		open += s == FEED_OPEN;
		backoff += s == FEED_BACKOFF;
		pending += s == FEED_IDLE || s == FEED_RESOLVING || s == FEED_CONNECTING;
	}
	mbuf_printf(b, "%zu/%zu open", open, n);
	if (backoff)
		mbuf_printf(b, ", %zu in backoff", backoff);
	if (pending)
		mbuf_printf(b, ", %zu connecting", pending);
}

static void render_generated(struct mbuf *b, int64_t real_us)
{
	time_t t = (time_t)(real_us / 1000000);
	struct tm tm;
	char text[32];

	if (gmtime_r(&t, &tm) && strftime(text, sizeof(text), "%Y-%m-%dT%H:%M:%SZ", &tm))
		mbuf_puts(b, text);
}

/* Rows of one pass, at most budget feeds looked at; true when the pass is done. */
static bool render_rows(struct status_page_cursor *c, struct mbuf *out, struct feed *const *feeds,
                        size_t n, const struct metrics_now *now, size_t budget)
{
	size_t to = n - c->i < budget ? n : c->i + budget;

	for (; c->i < to; c->i++) {
		if ((feeds[c->i]->state == FEED_OPEN) != (c->pass == 1))
			continue;
		if (c->rows == STATUS_PAGE_MAX_ROWS) {
			c->left_out++;
			continue;
		}
		render_row(out, feeds[c->i], now);
		c->rows++;
	}
	if (c->i < n)
		return false;
	c->i = 0;
	c->pass++;
	if (c->pass == 2 && c->left_out)
		mbuf_printf(
		    out,
		    "<tr class=\"more\"><td colspan=\"9\">%zu more feeds are not listed here "
		    "(problem feeds come first): /status has every feed</td></tr>\n",
		    c->left_out);
	return c->pass == 2;
}

static const char *const placeholders[] = {"@SUMMARY@", "@GENERATED@", "@ROWS@"};

int status_page_step(struct status_page_cursor *c, struct mbuf *out, struct feed *const *feeds,
                     size_t n, const struct metrics_now *now, size_t budget)
{
	const char *tpl = wsbeat_status_page;

	for (;;) {
		const char *next = NULL, *at;
		int which = -1;

		if (c->in_rows) {
			if (!render_rows(c, out, feeds, n, now, budget))
				return out->oom ? -1 : 0;
			c->in_rows = false;
			c->pos += strlen(placeholders[2]);
		}
		for (int k = 0; k < 3; k++)
			if ((at = strstr(tpl + c->pos, placeholders[k])) && (!next || at < next))
				next = at, which = k;
		if (!next) {
			mbuf_puts(out, tpl + c->pos);
			c->pos = wsbeat_status_page_len;
			return out->oom ? -1 : 1;
		}
		mbuf_put(out, tpl + c->pos, (size_t)(next - (tpl + c->pos)));
		c->pos = (size_t)(next - tpl);
		if (which == 2) {
			c->in_rows = true;
			continue;
		}
		if (which == 0)
			render_summary(out, feeds, n);
		else
			render_generated(out, now->real_us);
		c->pos += strlen(placeholders[which]);
	}
}
