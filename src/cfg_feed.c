/*
 * cfg_feed: the per-feed key table, header checks, and the rules that span several settings.
 * A feed is built by applying built-in defaults, then the `defaults` group, then the feed's own
 * group, key by key, so a nested group in a feed only overrides the keys it names.
 */
#include "cfg_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define FO(f) offsetof(struct cfg_feed, f)
#define HO(f) offsetof(struct cfg_heartbeat, f)
#define RO(f) offsetof(struct cfg_reconnect, f)
#define TO(f) offsetof(struct cfg_tls, f)
#define SO(f) offsetof(struct cfg_sink, f)

/* clang-format off */
static const struct cfg_key heartbeat_keys[] = {
	KEY_ENUM("type",         HO(type), HB_PING, cfg_hb_type_names),
	KEY_DUR("interval",      HO(interval_ms), 0, true, HOURS(24), SECS(5)),
	KEY_DUR("timeout",       HO(timeout_ms),  0, true, HOURS(24), SECS(10)),
	KEY_TMPL("payload",      K_TMPL,  HO(payload), TMPL_SEQ | TMPL_TIME | TMPL_SECRET),
	KEY_TMPL("expect",       K_MATCH, HO(expect),  TMPL_SEQ | TMPL_SECRET),
	KEY_BOOL("any_message",  HO(any_message), 0),
	KEY_END,
};

static const struct cfg_key reconnect_keys[] = {
	KEY_DUR("initial",       RO(initial_ms),      0, true,  HOURS(24), SECS(1)),
	KEY_DUR("max",           RO(max_ms),          0, true,  HOURS(24), SECS(60)),
	KEY_NUM("multiplier",    K_DBL, RO(multiplier), 1, 100, 2.0),
	KEY_NUM("jitter",        K_DBL, RO(jitter),     0, 1,   0.5),
	KEY_DUR("stable_after",  RO(stable_after_ms), 0, false, HOURS(24), SECS(30)),
	KEY_END,
};

static const struct cfg_key tls_keys[] = {
	KEY_BOOL("verify",       TO(verify), 1),
	KEY_STR("ca_file",       K_STR, TO(ca_file),     F_FILE),
	KEY_STR("ca_path",       K_STR, TO(ca_path),     F_DIR),
	KEY_STR("cert_file",     K_STR, TO(cert_file),   F_FILE),
	KEY_STR("key_file",      K_STR, TO(key_file),    F_FILE),
	KEY_STR("server_name",   K_STR, TO(server_name), F_HOSTNAME),
	KEY_END,
};

static const struct cfg_key sink_keys[] = {
	KEY_ENUM("type",         SO(type), SINK_DISCARD, cfg_sink_type_names),
	KEY_STR("path",          K_STR, SO(path), F_PATH),
	KEY_BOOL("keepalive",    SO(keepalive), 0),
	KEY_END,
};

const struct cfg_key cfg_feed_keys[] = {
	KEY_STR("name",             K_NAME, FO(name), F_REQUIRED | F_NO_DEFAULTS),
	{.name = "url", .kind = K_URL, .off = FO(url), .off2 = FO(url_path),
	 .flags = F_REQUIRED | F_NO_DEFAULTS},
	KEY_GROUP("heartbeat",      FO(heartbeat), heartbeat_keys),
	KEY_GROUP("reconnect",      FO(reconnect), reconnect_keys),
	KEY_DUR("connect_timeout",  FO(connect_timeout_ms), 0, true,  HOURS(1),  SECS(10)),
	KEY_STR("connect_command",  K_ARGV, FO(connect_command), F_EXEC),
	KEY_DUR("idle_timeout",     FO(idle_timeout_ms),    0, false, HOURS(24), 0),
	KEY_DUR("max_lifetime",     FO(max_lifetime_ms),    0, false, HOURS(8760), 0),
	KEY_NUM("max_message_size", K_SIZE, FO(max_message_size), 1, 1073741824, 1048576),
	KEY_VEC("on_open",          K_STEPS,   FO(on_open), FO(n_on_open)),
	KEY_VEC("replies",          K_REPLIES, FO(replies), FO(n_replies)),
	KEY_TMPL("keepalive",       K_MATCH,   FO(keepalive), TMPL_SECRET),
	KEY_TMPL("rotate_on",       K_MATCH,   FO(rotate_on), TMPL_SECRET),
	KEY_ENUM("decompress",      FO(decompress), DEC_NONE, cfg_decompress_names),
	KEY_BOOL("compression",     FO(compression), 0),
	KEY_VEC("headers",          K_HEADERS, FO(headers), FO(n_headers)),
	KEY_STR("subprotocol",      K_STR, FO(subprotocol), F_TOKEN),
	KEY_STR("origin",           K_STR, FO(origin), F_NONEMPTY | F_NO_CRLF),
	KEY_GROUP("tls",            FO(tls), tls_keys),
	KEY_GROUP("sink",           FO(sink), sink_keys),
	{.name = "proxy", .kind = K_PROXY, .off = FO(proxy)},
	KEY_END,
};
/* clang-format on */

/* Headers the handshake owns: letting a user set them would produce a broken or ambiguous
 * request, so each gets a message pointing at the right setting. */
static const struct {
	const char *name;
	const char *why;
} reserved_headers[] = {
    {"Host", "it is taken from the URL"},
    {"Upgrade", "the WebSocket handshake sets it"},
    {"Connection", "the WebSocket handshake sets it"},
    {"Origin", "use the 'origin' setting"},
    {"Sec-WebSocket-Protocol", "use the 'subprotocol' setting"},
    {"Content-Length", "a WebSocket handshake has no body"},
    {"Transfer-Encoding", "a WebSocket handshake has no body"},
};

void cfg_headers_free(struct cfg_header *h, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		free(h[i].name);
		tmpl_free(h[i].value);
	}
	free(h);
}

const char *cfg_header_reserved(const char *name)
{
	for (size_t i = 0; i < sizeof(reserved_headers) / sizeof(reserved_headers[0]); i++)
		if (strcasecmp(name, reserved_headers[i].name) == 0)
			return reserved_headers[i].why;
	if (strncasecmp(name, "Sec-WebSocket-", 14) == 0)
		return "the WebSocket handshake sets it";
	return NULL;
}

/* Values are secrets, so no message here ever quotes one. */
static int check_header(const struct cfg_ctx *x, const config_setting_t *e, const char *path,
                        const struct cfg_header *prev, size_t n)
{
	const char *name = config_setting_name(e), *why;

	if (!cfg_is_token(name))
		return cfg_err(x, e, path, "header name '%s' is not an HTTP token", name);
	why = cfg_header_reserved(name);
	if (why)
		return cfg_err(x, e, path, "header '%s' is not allowed: %s", name, why);
	for (size_t i = 0; i < n; i++)
		if (strcasecmp(prev[i].name, name) == 0)
			return cfg_err(x, e, path, "header '%s' is given twice (names ignore case)",
			               name);
	if (config_setting_type(e) != CONFIG_TYPE_STRING)
		return cfg_err(x, e, path, "header value must be a string");
	return 0;
}

/* Header values are templates (time and secret sources); none may break the request. */
static int header_value(const struct cfg_ctx *x, const config_setting_t *e, const char *path,
                        struct cfg_header *h)
{
	if (cfg_tmpl_set(x, e, TMPL_TIME | TMPL_SECRET, &h->value, path) < 0)
		return -1;
	if (tmpl_has_byte(h->value, "\r\n"))
		return cfg_err(x, e, path, "header value must not contain CR or LF");
	return 0;
}

int cfg_headers_set(const struct cfg_ctx *x, const struct cfg_key *k, const config_setting_t *g,
                    void *base, const char *path)
{
	char ep[CFG_PATH_MAX];
	size_t n = (size_t)config_setting_length(g);
	struct cfg_header *h;

	if (config_setting_type(g) != CONFIG_TYPE_GROUP)
		return cfg_err(x, g, path, "must be a group { Name = \"value\"; ... }");
	h = calloc(n ? n : 1, sizeof(*h));
	if (!h)
		return cfg_err(x, g, path, "out of memory");
	for (size_t i = 0; i < n; i++) {
		const config_setting_t *e = config_setting_get_elem(g, (unsigned)i);

		cfg_path_join(ep, path, config_setting_name(e));
		if (check_header(x, e, ep, h, i) < 0 || header_value(x, e, ep, &h[i]) < 0) {
			cfg_headers_free(h, i + 1);
			return -1;
		}
		if (!(h[i].name = strdup(config_setting_name(e)))) {
			cfg_headers_free(h, i + 1);
			return cfg_err(x, e, ep, "out of memory");
		}
	}
	cfg_headers_free(*CFG_FIELD(base, k->off, struct cfg_header *),
	                 *CFG_FIELD(base, k->off2, size_t));
	*CFG_FIELD(base, k->off, struct cfg_header *) = h;
	*CFG_FIELD(base, k->off2, size_t) = n;
	return 0;
}

/* Where a merged value came from: the feed's own group wins over defaults. */
struct src {
	const config_setting_t *s;
	bool feed;
};

static struct src src_of(const config_setting_t *fs, const config_setting_t *ds, const char *p)
{
	struct src r = {config_setting_lookup((config_setting_t *)fs, p), true};

	if (!r.s && ds) {
		r.s = config_setting_lookup((config_setting_t *)ds, p);
		r.feed = false;
	}
	return r;
}

/* The path of a setting as found: "feeds[2].x.y" or "defaults.x.y". */
static const char *src_path(char *buf, const char *fpath, struct src r, const char *p)
{
	return cfg_path_join(buf, r.feed ? fpath : "defaults", p);
}

/*
 * A value that the controlling setting makes meaningless. It is an error where the user wrote
 * both together; a feed that switches the controlling setting away from a value it inherited
 * from defaults simply drops it (the caller clears it when this returns 0).
 */
static int unused(const struct cfg_ctx *x, const config_setting_t *fs, const config_setting_t *ds,
                  const char *fpath, const char *key, const char *ctrl, const char *why)
{
	struct src v = src_of(fs, ds, key), c = src_of(fs, ds, ctrl);
	char p[CFG_PATH_MAX];

	if (v.s && !(c.feed && c.s && !v.feed))
		return cfg_err(x, v.s, src_path(p, fpath, v, key), "%s", why);
	return 0;
}

static int check_heartbeat(const struct cfg_ctx *x, const config_setting_t *fs,
                           const config_setting_t *ds, struct cfg_feed *f, const char *fpath)
{
	struct cfg_heartbeat *hb = &f->heartbeat;
	struct src t = src_of(fs, ds, "heartbeat.type"), e = src_of(fs, ds, "heartbeat.expect");
	char p[CFG_PATH_MAX];
	const char *msg = "only used when heartbeat type is \"text\", \"binary\" or \"server\"";

	if (hb->type == HB_TEXT || hb->type == HB_BINARY) {
		if (!hb->payload)
			return cfg_err(x, t.s, src_path(p, fpath, t, "heartbeat.payload"),
			               "required when heartbeat type is \"%s\"",
			               cfg_hb_type_name(hb->type));
		return 0;
	}
	if (unused(x, fs, ds, fpath, "heartbeat.payload", "heartbeat.type",
	           hb->type == HB_SERVER ? "not used when heartbeat type is \"server\" (the "
	                                   "server sends the heartbeats; answer them with replies)"
	                                 : "only used when heartbeat type is \"text\" or "
	                                   "\"binary\"") < 0)
		return -1;
	tmpl_free(hb->payload);
	hb->payload = NULL;
	if (hb->type != HB_SERVER) {
		if (unused(x, fs, ds, fpath, "heartbeat.any_message", "heartbeat.type",
		           "only used when heartbeat type is \"server\"") < 0)
			return -1;
		hb->any_message = false;
	}
	if (hb->type == HB_SERVER) {
		if (unused(x, fs, ds, fpath, "heartbeat.interval", "heartbeat.type",
		           "not used when heartbeat type is \"server\" (heartbeat.timeout is the "
		           "longest silence allowed)") < 0)
			return -1;
		if (hb->expect && hb->expect->dynamic)
			return cfg_err(
			    x, e.s, src_path(p, fpath, e, "heartbeat.expect"),
			    "${seq} counts our own heartbeats: it means nothing when the "
			    "server sends them");
		return 0;
	}
	if (hb->type == HB_PING && f->compression) {
		struct src c = src_of(fs, ds, "compression");
		return cfg_err(x, c.s, src_path(p, fpath, c, "compression"),
		               "cannot go with heartbeat type \"ping\": libwebsockets 4.1 loops on "
		               "PONG frames once permessage-deflate is on; use an application "
		               "heartbeat (text/binary) or \"server\"");
	}
	if (unused(x, fs, ds, fpath, "heartbeat.expect", "heartbeat.type", msg) < 0)
		return -1;
	match_free(hb->expect);
	hb->expect = NULL;
	return 0;
}

static int check_reconnect(const struct cfg_ctx *x, const config_setting_t *fs,
                           const config_setting_t *ds, struct cfg_feed *f, const char *fpath)
{
	struct src mx = src_of(fs, ds, "reconnect.max"), in = src_of(fs, ds, "reconnect.initial");
	struct src at = mx;
	const char *key = "reconnect.max";
	char p[CFG_PATH_MAX], a[32], b[32];

	if (f->reconnect.initial_ms <= f->reconnect.max_ms)
		return 0;
	/* Blame the more specific of the two; when both sit at one level, blame max. */
	if (!mx.s || (in.s && in.feed && !mx.feed)) {
		at = in;
		key = "reconnect.initial";
	}
	cfg_fmt_ms(a, sizeof(a), f->reconnect.initial_ms);
	cfg_fmt_ms(b, sizeof(b), f->reconnect.max_ms);
	return cfg_err(x, at.s ? at.s : fs, src_path(p, fpath, at, key),
	               "reconnect.initial (%s) must be <= reconnect.max (%s)", a, b);
}

static int check_tls(const struct cfg_ctx *x, const config_setting_t *fs,
                     const config_setting_t *ds, struct cfg_feed *f, const char *fpath)
{
	const config_setting_t *own = config_setting_get_member(fs, "tls");
	struct src c = src_of(fs, ds, "tls.cert_file"), k = src_of(fs, ds, "tls.key_file");
	char p[CFG_PATH_MAX];

	if (own && !f->url.tls)
		return cfg_err(x, own, cfg_path_join(p, fpath, "tls"),
		               "TLS settings need a wss:// URL (this feed uses ws://)");
	if (c.s && !k.s)
		return cfg_err(x, c.s, src_path(p, fpath, c, "tls.cert_file"),
		               "cert_file needs key_file too");
	if (k.s && !c.s)
		return cfg_err(x, k.s, src_path(p, fpath, k, "tls.key_file"),
		               "key_file needs cert_file too");
	return 0;
}

static int check_sink(const struct cfg_ctx *x, const config_setting_t *fs,
                      const config_setting_t *ds, struct cfg_feed *f, const char *fpath)
{
	struct src t = src_of(fs, ds, "sink.type");
	char p[CFG_PATH_MAX];

	if (f->sink.type == SINK_FILE) {
		if (!f->sink.path)
			return cfg_err(x, t.s, src_path(p, fpath, t, "sink.path"),
			               "required when sink type is \"file\"");
		return 0;
	}
	if (unused(x, fs, ds, fpath, "sink.path", "sink.type",
	           "only used when sink type is \"file\"") < 0)
		return -1;
	free(f->sink.path);
	f->sink.path = NULL;
	return 0;
}

/* Through a proxy, libwebsockets 4.1 names the URL's host in a CONNECT of at most 255 bytes. */
static int check_proxy(const struct cfg_ctx *x, const config_setting_t *fs, struct cfg_feed *f,
                       const char *fpath)
{
	char p[CFG_PATH_MAX], target[PROXY_TARGET_MAX + 8];

	if (f->proxy.mode != PROXY_URL ||
	    proxy_connect_target(&f->url, target, sizeof(target)) == 0)
		return 0;
	return cfg_err(x, config_setting_get_member(fs, "url"), cfg_path_join(p, fpath, "url"),
	               "host and port are too long to go through a proxy (libwebsockets 4.1 "
	               "fits the CONNECT request into 255 bytes: at most %d characters)",
	               PROXY_TARGET_MAX);
}

/* A lifetime under a second would rotate a connection before its replacement could open. */
static int check_lifetime(const struct cfg_ctx *x, const config_setting_t *fs,
                          const config_setting_t *ds, const struct cfg_feed *f, const char *fpath)
{
	struct src l = src_of(fs, ds, "max_lifetime");
	char p[CFG_PATH_MAX], got[32];

	if (f->max_lifetime_ms == 0 || f->max_lifetime_ms >= CFG_MIN_LIFETIME_MS)
		return 0;
	cfg_fmt_ms(got, sizeof(got), f->max_lifetime_ms);
	return cfg_err(x, l.s, src_path(p, fpath, l, "max_lifetime"),
	               "must be 0 (off) or at least 1s (got %s)", got);
}

/* The feed is open once every wait of its open sequence has matched. */
static void find_open_after(struct cfg_feed *f)
{
	f->open_after = 0;
	for (size_t i = 0; i < f->n_on_open; i++)
		if (f->on_open[i].wait)
			f->open_after = i + 1;
}

int cfg_feed_load(const struct cfg_ctx *x, const config_setting_t *fs, const config_setting_t *ds,
                  size_t idx, struct cfg_feed *f)
{
	char path[32];

	snprintf(path, sizeof(path), "feeds[%zu]", idx);
	cfg_keys_init(cfg_feed_keys, f);
	f->line = config_setting_source_line(fs);
	if (config_setting_type(fs) != CONFIG_TYPE_GROUP)
		return cfg_err(x, fs, path, "must be a group { name = \"...\"; url = \"...\"; }");
	if (ds && cfg_keys_apply(x, cfg_feed_keys, ds, f, "defaults", LVL_DEFAULTS) < 0)
		return -1;
	if (cfg_keys_apply(x, cfg_feed_keys, fs, f, path, LVL_FEED) < 0 ||
	    cfg_keys_required(x, cfg_feed_keys, fs, path) < 0)
		return -1;
	if (check_heartbeat(x, fs, ds, f, path) < 0 || check_reconnect(x, fs, ds, f, path) < 0 ||
	    check_tls(x, fs, ds, f, path) < 0 || check_sink(x, fs, ds, f, path) < 0 ||
	    check_proxy(x, fs, f, path) < 0 || check_lifetime(x, fs, ds, f, path) < 0)
		return -1;
	find_open_after(f);
	return 0;
}
