/*
 * Unit tests for cfg: every setting parsed, defaults and their merge, durations, and every kind
 * of error with the exact FILE:LINE the operator will see.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "wsbeat/cfg.h"
#include "wsbeat/match.h"
#include "wsbeat/tmpl.h"

#include "cfg_helpers.h"

#define FEED "feeds = ( { name = \"a\"; url = \"wss://h/\"; } );\n"

static const char *data_dir(void)
{
	const char *d = getenv("WSBEAT_TEST_DATA");

	return d ? d : "tests/data";
}

/* ---- every setting ---- */

static void check_full_top(const struct cfg *c)
{
	assert_int_equal(c->log_level, LOG_LVL_DEBUG);
	assert_int_equal(c->status_interval_ms, 300000);
	assert_int_equal(c->max_connects_per_second, 250);
	assert_int_equal(c->timer_slack_ms, 5);
	assert_string_equal(c->metrics_listen, "[::1]:9464");
	assert_string_equal(c->dns_servers, "127.0.0.53,[::1]:5353,10.0.0.1:53");
	assert_int_equal(c->dns_timeout_ms, 750);
	assert_int_equal(c->dns_tries, 3);
	assert_int_equal(c->n_feeds, 2);
}

static void check_full_okx(const struct cfg_feed *f, const char *dir)
{
	char p[PATH_MAX + 32];

	assert_string_equal(f->name, "okx");
	assert_int_equal(f->line, 27);
	assert_true(f->url.tls);
	assert_string_equal(f->url.host, "ws.example.com");
	assert_int_equal(f->url.port, 8443);
	assert_string_equal(f->url.path, "/ws/v5/public?key=secret");
	assert_string_equal(f->url.display, "wss://ws.example.com:8443/ws/v5/public");
	assert_int_equal(f->heartbeat.type, HB_BINARY);
	assert_int_equal(f->heartbeat.payload->flat_len, 3);
	assert_memory_equal(f->heartbeat.payload->flat, "\x01\x02\xff", 3);
	assert_string_equal(f->heartbeat.expect->text, "pong"); /* inherited */
	assert_int_equal(f->heartbeat.expect->n, 1);
	assert_int_equal(f->heartbeat.expect->c[0].kind, MK_EQUALS);
	assert_int_equal(f->heartbeat.interval_ms, 1500);
	assert_int_equal(f->heartbeat.timeout_ms, 5500);
	assert_int_equal(f->reconnect.initial_ms, 250);
	assert_int_equal(f->reconnect.max_ms, 3600000);
	assert_true(f->reconnect.multiplier == 1.5);
	assert_true(f->reconnect.jitter == 1.0);
	assert_int_equal(f->reconnect.stable_after_ms, 0);
	assert_int_equal(f->connect_timeout_ms, 3000);
	assert_int_equal(f->idle_timeout_ms, 3600000);
	assert_int_equal(f->max_message_size, 65536);
	assert_int_equal(f->n_on_open, 2);
	assert_string_equal(f->on_open[0].send->flat, "{\"op\":\"subscribe\"}");
	assert_string_equal(f->on_open[1].send->flat, "second");
	assert_int_equal(f->open_after, 0);
	/* A feed's headers replace the defaults' headers as a whole. */
	assert_int_equal(f->n_headers, 2);
	assert_string_equal(f->headers[0].name, "Authorization");
	assert_string_equal(f->headers[0].value->flat, "Bearer abc");
	assert_string_equal(f->headers[1].name, "X-Api-Key");
	assert_string_equal(f->headers[1].value->flat, "k");
	assert_string_equal(f->subprotocol, "json");
	assert_string_equal(f->origin, "https://example.com");
	assert_false(f->tls.verify);
	assert_string_equal(f->tls.server_name, "sni.example");
	snprintf(p, sizeof(p), "%s/ca.pem", dir);
	assert_string_equal(f->tls.ca_file, p);
	snprintf(p, sizeof(p), "%s/certs", dir);
	assert_string_equal(f->tls.ca_path, p);
	snprintf(p, sizeof(p), "%s/client.pem", dir);
	assert_string_equal(f->tls.cert_file, p);
	snprintf(p, sizeof(p), "%s/client.key", dir);
	assert_string_equal(f->tls.key_file, p);
	assert_int_equal(f->sink.type, SINK_FILE);
	snprintf(p, sizeof(p), "%s/okx.jsonl", dir);
	assert_string_equal(f->sink.path, p);
}

static void check_full_plain(const struct cfg_feed *f)
{
	assert_string_equal(f->name, "plain-1.x_y");
	assert_false(f->url.tls);
	assert_string_equal(f->url.host_header, "127.0.0.1:9001");
	assert_int_equal(f->heartbeat.type, HB_NONE);
	/* Inherited payload and expect mean nothing for "none" and are dropped. */
	assert_null(f->heartbeat.payload);
	assert_null(f->heartbeat.expect);
	assert_int_equal(f->heartbeat.interval_ms, 20000);
	assert_int_equal(f->reconnect.max_ms, 120000);
	assert_int_equal(f->idle_timeout_ms, 0);
	assert_int_equal(f->max_message_size, 1073741824);
	assert_int_equal(f->n_on_open, 1);
	assert_string_equal(f->on_open[0].send->flat, "hello");
	assert_int_equal(f->n_headers, 1);
	assert_string_equal(f->headers[0].name, "User-Agent");
	assert_int_equal(f->sink.type, SINK_STDOUT);
	assert_null(f->sink.path);
	assert_null(f->tls.ca_file);
	assert_false(f->tls.verify);
}

static void test_full_config(void **state)
{
	char path[PATH_MAX + 32], dir[PATH_MAX], err[512] = "";
	struct cfg *c = NULL;

	(void)state;
	assert_non_null(realpath(data_dir(), dir));
	snprintf(path, sizeof(path), "%s/full.conf", dir);
	if (cfg_load(path, &c, err, sizeof(err)) != 0)
		fail_msg("%s", err);
	assert_string_equal(c->path, path);
	check_full_top(c);
	check_full_okx(&c->feeds[0], dir);
	check_full_plain(&c->feeds[1]);
	assert_ptr_equal(cfg_find_feed(c, "plain-1.x_y"), &c->feeds[1]);
	assert_null(cfg_find_feed(c, "nope"));
	cfg_free(c);
}

static void test_builtin_defaults(void **state)
{
	struct cfg *c = load_ok("feeds = ( { name = \"a\"; url = \"ws://h\"; } );");
	const struct cfg_feed *f = &c->feeds[0];

	(void)state;
	assert_int_equal(c->log_level, LOG_LVL_INFO);
	assert_int_equal(c->status_interval_ms, 60000);
	assert_int_equal(c->max_connects_per_second, 100);
	assert_int_equal(c->timer_slack_ms, 2);
	assert_null(c->metrics_listen);
	assert_null(c->dns_servers);
	assert_int_equal(c->dns_timeout_ms, 0);
	assert_int_equal(c->dns_tries, 0);
	assert_int_equal(f->line, 1);
	assert_int_equal(f->heartbeat.type, HB_PING);
	assert_int_equal(f->heartbeat.interval_ms, 5000);
	assert_int_equal(f->heartbeat.timeout_ms, 10000);
	assert_null(f->heartbeat.payload);
	assert_null(f->heartbeat.expect);
	assert_int_equal(f->reconnect.initial_ms, 1000);
	assert_int_equal(f->reconnect.max_ms, 60000);
	assert_true(f->reconnect.multiplier == 2.0);
	assert_true(f->reconnect.jitter == 0.5);
	assert_int_equal(f->reconnect.stable_after_ms, 30000);
	assert_int_equal(f->connect_timeout_ms, 10000);
	assert_int_equal(f->idle_timeout_ms, 0);
	assert_int_equal(f->max_message_size, 1048576);
	assert_int_equal(f->n_on_open, 0);
	assert_int_equal(f->n_headers, 0);
	assert_null(f->subprotocol);
	assert_null(f->origin);
	assert_true(f->tls.verify);
	assert_null(f->tls.ca_file);
	assert_null(f->tls.cert_file);
	assert_int_equal(f->sink.type, SINK_DISCARD);
	assert_null(f->sink.path);
	cfg_free(c);
}

/* A nested group in a feed overrides only the keys it names. */
static void test_nested_merge(void **state)
{
	struct cfg *c = load_ok(
	    "defaults = {\n"
	    "  heartbeat = { type = \"text\"; payload = \"hi\"; interval = 7; timeout = 3; };\n"
	    "  reconnect = { initial = 2; max = 30; };\n"
	    "  connect_timeout = 4;\n"
	    "};\n"
	    "feeds = (\n"
	    "  { name = \"a\"; url = \"ws://h/\"; heartbeat = { interval = 2; }; },\n"
	    "  { name = \"b\"; url = \"ws://h/\"; reconnect = { jitter = 0; max = 5; };\n"
	    "    connect_timeout = 0.25; },\n"
	    "  { name = \"c\"; url = \"ws://h/\"; heartbeat = { payload = \"yo\"; expect = \"\"; "
	    "}; }\n"
	    ");\n");
	const struct cfg_feed *a = &c->feeds[0], *b = &c->feeds[1], *cc = &c->feeds[2];

	(void)state;
	assert_int_equal(a->heartbeat.type, HB_TEXT);
	assert_string_equal(a->heartbeat.payload->flat, "hi");
	assert_int_equal(a->heartbeat.interval_ms, 2000);
	assert_int_equal(a->heartbeat.timeout_ms, 3000);
	assert_int_equal(a->reconnect.initial_ms, 2000);
	assert_int_equal(a->connect_timeout_ms, 4000);
	assert_int_equal(b->heartbeat.interval_ms, 7000);
	assert_int_equal(b->reconnect.initial_ms, 2000);
	assert_int_equal(b->reconnect.max_ms, 5000);
	assert_true(b->reconnect.jitter == 0.0);
	assert_true(b->reconnect.multiplier == 2.0);
	assert_int_equal(b->connect_timeout_ms, 250);
	assert_int_equal(b->line, 8);
	assert_string_equal(cc->heartbeat.payload->flat, "yo");
	assert_non_null(cc->heartbeat.expect);
	assert_string_equal(cc->heartbeat.expect->text, "");
	cfg_free(c);
}

/* ---- durations ---- */

/* Several parts go largest unit first (max_lifetime = "23h50m"). */
static void test_parse_duration(void **state)
{
	static const struct {
		const char *in;
		int64_t ms;
	} good[] = {
	    {"0", 0},          {"5", 5000},         {"1.5", 1500},        {"250ms", 250},
	    {"0ms", 0},        {"5s", 5000},        {"1.5s", 1500},       {"2m", 120000},
	    {"1h", 3600000},   {"0.5h", 1800000},   {"1.0005s", 1001},    {"100ms", 100},
	    {"24h", 86400000}, {"0.25", 250},       {"23h50m", 85800000}, {"1m30s", 90000},
	    {"2s500ms", 2500}, {"1h0.5m", 3630000}, {"1h1ms", 3600001},
	};
	static const char *bad[] = {"",
	                            "s",
	                            "5 s",
	                            " 5s",
	                            "5s ",
	                            "-1s",
	                            "+1s",
	                            "1e3",
	                            "0x10",
	                            "5S",
	                            "5sec",
	                            "1.",
	                            ".5s",
	                            "5d",
	                            "1..2s",
	                            "1.2.3s",
	                            "99999999999999h",
	                            "ms",
	                            "5ms5",
	                            "50m23h",
	                            "1h1h",
	                            "30s1m",
	                            "1h30",
	                            "1h 30m",
	                            "1hm"};
	int64_t ms;

	(void)state;
	for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
		ms = -7;
		if (cfg_parse_duration(good[i].in, &ms) != 0)
			fail_msg("rejected \"%s\"", good[i].in);
		assert_int_equal(ms, good[i].ms);
	}
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		if (cfg_parse_duration(bad[i], &ms) != -1)
			fail_msg("accepted \"%s\"", bad[i]);
	assert_int_equal(cfg_parse_duration(NULL, &ms), -1);
}

static void test_duration_forms_in_config(void **state)
{
	struct cfg *c = load_ok(
	    "status_interval = 90;\n"
	    "timer_slack = 0.001;\n"
	    "defaults = { heartbeat = { interval = 3L; timeout = \"250ms\"; };\n"
	    "  reconnect = { initial = 0.5; max = \"1h\"; stable_after = \"2m\"; }; };\n" FEED);

	(void)state;
	assert_int_equal(c->status_interval_ms, 90000);
	assert_int_equal(c->timer_slack_ms, 1);
	assert_int_equal(c->feeds[0].heartbeat.interval_ms, 3000);
	assert_int_equal(c->feeds[0].heartbeat.timeout_ms, 250);
	assert_int_equal(c->feeds[0].reconnect.initial_ms, 500);
	assert_int_equal(c->feeds[0].reconnect.max_ms, 3600000);
	assert_int_equal(c->feeds[0].reconnect.stable_after_ms, 120000);
	cfg_free(c);
	c = load_ok("status_interval = 0;\ntimer_slack = \"0ms\";\n" FEED);
	assert_int_equal(c->status_interval_ms, 0);
	assert_int_equal(c->timer_slack_ms, 0);
	cfg_free(c);
}

/* ---- errors ---- */

struct bad_cfg {
	const char *text;
	const char *prefix;
	const char *what;
};

static void run_bad(const struct bad_cfg *t, size_t n)
{
	for (size_t i = 0; i < n; i++)
		expect_err(t[i].text, t[i].prefix, t[i].what);
}

#define RUN_BAD(t) run_bad(t, sizeof(t) / sizeof(t[0]))

static void test_duration_errors(void **state)
{
	static const struct bad_cfg t[] = {
	    {"status_interval = \"5 s\";\n" FEED,
	     "t.conf:1: status_interval: ", "invalid duration \"5 s\""},
	    {"status_interval = \"5sec\";\n" FEED,
	     "t.conf:1: status_interval: ", "invalid duration"},
	    {"status_interval = \"-1s\";\n" FEED,
	     "t.conf:1: status_interval: ", "invalid duration"},
	    {"status_interval = true;\n" FEED, "t.conf:1: status_interval: ",
	     "must be a duration (seconds, or a string like \"5s\"), not a boolean"},
	    {"status_interval = [1];\n" FEED, "t.conf:1: status_interval: ", "not an array"},
	    {"status_interval = -1;\n" FEED,
	     "t.conf:1: status_interval: ", "must be >= 0 (got -1)"},
	    {"status_interval = \"25h\";\n" FEED,
	     "t.conf:1: status_interval: ", "must be <= 24h (got \"25h\")"},
	    {"timer_slack = \"101ms\";\n" FEED,
	     "t.conf:1: timer_slack: ", "must be <= 100ms (got \"101ms\")"},
	    {"timer_slack = 0.2;\n" FEED, "t.conf:1: timer_slack: ", "must be <= 100ms (got 0.2)"},
	    {"timer_slack = 1e300;\n" FEED, "t.conf:1: timer_slack: ", "out of range"},
	};

	(void)state;
	RUN_BAD(t);
}

static void test_unknown_settings(void **state)
{
	static const struct bad_cfg t[] = {
	    {"bogus = 1;\n" FEED, "t.conf:1: ", "unknown setting 'bogus'"},
	    {"log_levl = \"info\";\n" FEED,
	     "t.conf:1: ", "unknown setting 'log_levl'; did you mean 'log_level'?"},
	    {"Log_Level = \"info\";\n" FEED, "t.conf:1: ", "did you mean 'log_level'?"},
	    {"feeds = (\n { name = \"a\"; url = \"ws://h/\";\n   heartbeet = { interval = 1; }; "
	     "}\n);\n",
	     "t.conf:3: feeds[0]: ", "unknown setting 'heartbeet'; did you mean 'heartbeat'?"},
	    {"feeds = (\n { name = \"a\"; url = \"ws://h/\";\n   heartbeat = {\n     intervall = "
	     "1; };\n"
	     " }\n);\n",
	     "t.conf:4: feeds[0].heartbeat: ",
	     "unknown setting 'intervall'; did you mean 'interval'?"},
	    {"defaults = {\n  conect_timeout = 5;\n};\n" FEED, "t.conf:2: defaults: ",
	     "unknown setting 'conect_timeout'; did you mean 'connect_timeout'?"},
	    {"defaults = { tls = { verfy = true; }; };\n" FEED,
	     "t.conf:1: defaults.tls: ", "did you mean 'verify'?"},
	    {"metrics = { listen = \"127.0.0.1:1\"; port = 2; };\n" FEED,
	     "t.conf:1: metrics: ", "unknown setting 'port'"},
	    {"defaults = { sink = { typ = \"file\"; }; };\n" FEED,
	     "t.conf:1: defaults.sink: ", "did you mean 'type'?"},
	    {"feeds = ( { name = \"a\"; url = \"ws://h/\"; completely_different = 1; } );\n",
	     "t.conf:1: feeds[0]: ", "unknown setting 'completely_different'"},
	};
	char err[512];
	struct cfg *c;

	(void)state;
	RUN_BAD(t);
	/* No suggestion when nothing is close. */
	assert_int_equal(cfg_load_string("zzzzzzzz = 1;\n" FEED, "t.conf", &c, err, sizeof(err)),
	                 -1);
	assert_null(strstr(err, "did you mean"));
}

static void test_wrong_types(void **state)
{
	static const struct bad_cfg t[] = {
	    {"log_level = 3;\n" FEED, "t.conf:1: log_level: ", "must be a string, not an integer"},
	    {"log_level = \"verbose\";\n" FEED, "t.conf:1: log_level: ",
	     "must be one of error, warning, notice, info, debug (got \"verbose\")"},
	    {"max_connects_per_second = \"100\";\n" FEED,
	     "t.conf:1: max_connects_per_second: ", "must be an integer, not a string"},
	    {"max_connects_per_second = 1.5;\n" FEED,
	     "t.conf:1: max_connects_per_second: ", "must be an integer, not a decimal number"},
	    {"metrics = \"127.0.0.1:9464\";\n" FEED, "t.conf:1: metrics: ", "must be a group"},
	    {"metrics = { listen = 9464; };\n" FEED,
	     "t.conf:1: metrics.listen: ", "must be a string \"ADDR:PORT\""},
	    {"defaults = 5;\n" FEED, "t.conf:1: defaults: ", "must be a group"},
	    {"feeds = ( { name = \"a\"; url = \"ws://h/\";\n heartbeat = 5; } );\n",
	     "t.conf:2: feeds[0].heartbeat: ", "must be a group { ... }, not an integer"},
	    {"feeds = ( { name = 1; url = \"ws://h/\"; } );\n",
	     "t.conf:1: feeds[0].name: ", "must be a string"},
	    {"feeds = ( { name = \"a\"; url = (\"ws://h/\"); } );\n",
	     "t.conf:1: feeds[0].url: ", "must be a string, not a list"},
	    {"defaults = { heartbeat = { type = \"pong\"; }; };\n" FEED,
	     "t.conf:1: defaults.heartbeat.type: ",
	     "must be one of none, ping, text, binary, server (got \"pong\")"},
	    {"defaults = { tls = { verify = \"yes\"; }; };\n" FEED,
	     "t.conf:1: defaults.tls.verify: ", "must be true or false, not a string"},
	    {"defaults = { tls = { verify = 1; }; };\n" FEED,
	     "t.conf:1: defaults.tls.verify: ", "must be true or false"},
	    {"defaults = { sink = { type = \"kafka\"; }; };\n" FEED,
	     "t.conf:1: defaults.sink.type: ", "must be one of discard, stdout, file"},
	    {"defaults = { max_message_size = \"1M\"; };\n" FEED,
	     "t.conf:1: defaults.max_message_size: ", "must be an integer"},
	    {"defaults = { reconnect = { jitter = \"half\"; }; };\n" FEED,
	     "t.conf:1: defaults.reconnect.jitter: ", "must be a number, not a string"},
	    {"defaults = { on_open = \"x\"; };\n" FEED,
	     "t.conf:1: defaults.on_open: ", "must be a list ( \"message\", { wait = MATCH; }"},
	    {"defaults = {\n on_open = [\n 1, 2 ]; };\n" FEED,
	     "t.conf:", "defaults.on_open[0]: must be a message string or { wait = MATCH; }"},
	    {"defaults = { on_open = ( \"a\",\n { x = 1; } ); };\n" FEED,
	     "t.conf:2: defaults.on_open[1].x: ",
	     "unknown setting 'x' (an on_open item has send or "
	     "wait)"},
	    {"defaults = { headers = ( \"X: y\" ); };\n" FEED,
	     "t.conf:1: defaults.headers: ", "must be a group { Name = \"value\"; ... }"},
	    {"defaults = { headers = { X-A = 1; }; };\n" FEED,
	     "t.conf:1: defaults.headers.X-A: ", "header value must be a string"},
	    {"defaults = { subprotocol = 5; };\n" FEED,
	     "t.conf:1: defaults.subprotocol: ", "must be a string"},
	    {"defaults = { tls = { ca_file = true; }; };\n" FEED,
	     "t.conf:1: defaults.tls.ca_file: ", "must be a string, not a boolean"},
	};

	(void)state;
	RUN_BAD(t);
}

static void test_out_of_range(void **state)
{
#define HB(x) "feeds = ( { name = \"a\"; url = \"ws://h/\";\n heartbeat = { " x " }; } );\n"
#define RC(x) "feeds = ( { name = \"a\"; url = \"ws://h/\";\n reconnect = { " x " }; } );\n"
#define FD(x) "feeds = ( { name = \"a\"; url = \"ws://h/\";\n " x " } );\n"
	static const struct bad_cfg t[] = {
	    {"max_connects_per_second = 0;\n" FEED,
	     "t.conf:1: max_connects_per_second: ", "must be >= 1 (got 0)"},
	    {"max_connects_per_second = 1000001;\n" FEED,
	     "t.conf:1: max_connects_per_second: ", "must be <= 1000000 (got 1000001)"},
	    {HB("interval = 0;"), "t.conf:2: feeds[0].heartbeat.interval: ", "must be > 0 (got 0)"},
	    {HB("interval = \"25h\";"),
	     "t.conf:2: feeds[0].heartbeat.interval: ", "must be <= 24h (got \"25h\")"},
	    {HB("timeout = \"0ms\";"),
	     "t.conf:2: feeds[0].heartbeat.timeout: ", "must be > 0 (got \"0ms\")"},
	    {HB("timeout = -3;"), "t.conf:2: feeds[0].heartbeat.timeout: ", "must be > 0 (got -3)"},
	    {RC("initial = 0;"), "t.conf:2: feeds[0].reconnect.initial: ", "must be > 0 (got 0)"},
	    {RC("max = \"25h\";"), "t.conf:2: feeds[0].reconnect.max: ", "must be <= 24h"},
	    {RC("multiplier = 0.5;"),
	     "t.conf:2: feeds[0].reconnect.multiplier: ", "must be >= 1 (got 0.5)"},
	    {RC("multiplier = 101;"),
	     "t.conf:2: feeds[0].reconnect.multiplier: ", "must be <= 100 (got 101)"},
	    {RC("jitter = 1.5;"),
	     "t.conf:2: feeds[0].reconnect.jitter: ", "must be <= 1 (got 1.5)"},
	    {RC("jitter = -0.1;"),
	     "t.conf:2: feeds[0].reconnect.jitter: ", "must be >= 0 (got -0.1)"},
	    {RC("stable_after = -1;"),
	     "t.conf:2: feeds[0].reconnect.stable_after: ", "must be >= 0 (got -1)"},
	    {RC("initial = \"2m\"; max = 60;"), "t.conf:2: feeds[0].reconnect.max: ",
	     "reconnect.initial (2m) must be <= reconnect.max (1m)"},
	    {"defaults = {\n reconnect = { max = 2; }; };\n" RC("initial = 5;"),
	     "t.conf:4: feeds[0].reconnect.initial: ",
	     "reconnect.initial (5s) must be <= reconnect.max (2s)"},
	    {"defaults = {\n reconnect = { initial = 120; }; };\n" FEED,
	     "t.conf:2: defaults.reconnect.initial: ", "must be <= reconnect.max (1m)"},
	    {FD("connect_timeout = 0;"),
	     "t.conf:2: feeds[0].connect_timeout: ", "must be > 0 (got 0)"},
	    {FD("connect_timeout = \"2h\";"),
	     "t.conf:2: feeds[0].connect_timeout: ", "must be <= 1h"},
	    {FD("idle_timeout = -5;"),
	     "t.conf:2: feeds[0].idle_timeout: ", "must be >= 0 (got -5)"},
	    {FD("max_message_size = 0;"),
	     "t.conf:2: feeds[0].max_message_size: ", "must be >= 1 (got 0)"},
	    {FD("max_message_size = 1073741825;"),
	     "t.conf:2: feeds[0].max_message_size: ", "must be <= 1073741824 (got 1073741825)"},
	    {FD("max_message_size = -1;"),
	     "t.conf:2: feeds[0].max_message_size: ", "must be >= 1 (got -1)"},
	};

	(void)state;
	RUN_BAD(t);
}

static void test_feed_errors(void **state)
{
	static const struct bad_cfg t[] = {
	    {"feeds = (\n { name = \"a\"; url = \"ws://h/\"; },\n { name = \"a\";\n url = "
	     "\"ws://x/\"; }\n);\n",
	     "t.conf:3: feeds[1].name: ",
	     "duplicate feed name \"a\" (first used by feeds[0] at line 2)"},
	    {"feeds = (\n { name = \"b\"; url = \"ws://h/\"; },\n { name = \"a\"; url = "
	     "\"ws://h/\"; },\n"
	     " { name = \"c\"; url = \"ws://h/\"; },\n { name = \"a\"; url = \"ws://h/\"; }\n);\n",
	     "t.conf:5: feeds[3].name: ", "first used by feeds[1] at line 3"},
	    {"feeds = (\n { url = \"ws://h/\"; }\n);\n",
	     "t.conf:2: feeds[0]: ", "missing required setting 'name'"},
	    {"feeds = (\n { name = \"a\"; }\n);\n",
	     "t.conf:2: feeds[0]: ", "missing required setting 'url'"},
	    {"defaults = {\n url = \"ws://h/\"; };\n" FEED,
	     "t.conf:2: defaults.url: ", "not allowed in defaults"},
	    {"defaults = { name = \"x\"; };\n" FEED,
	     "t.conf:1: defaults.name: ", "not allowed in defaults"},
	    {"feeds = ( { name = \"a b\"; url = \"ws://h/\"; } );\n",
	     "t.conf:1: feeds[0].name: ", "must be 1 to 64 characters from [A-Za-z0-9_.-]"},
	    {"feeds = ( { name = \"\"; url = \"ws://h/\"; } );\n",
	     "t.conf:1: feeds[0].name: ", "must be 1 to 64 characters"},
	    {"feeds = ( { name = "
	     "\"a123456789b123456789c123456789d123456789e123456789f123456789g1234\"; url = "
	     "\"ws://h/\"; } );\n",
	     "t.conf:1: feeds[0].name: ", "must be 1 to 64 characters"},
	    {"feeds = (\n { name = \"a\";\n   url = \"http://h/\"; }\n);\n",
	     "t.conf:3: feeds[0].url: ", "unsupported URL scheme 'http' (use ws:// or wss://)"},
	    {"feeds = ( { name = \"a\"; url = \"ws://h/#top\"; } );\n",
	     "t.conf:1: feeds[0].url: ", "fragment"},
	    {"feeds = ( { name = \"a\"; url = \"ws://h:0/\"; } );\n",
	     "t.conf:1: feeds[0].url: ", "port 0"},
	    {"feeds = ( { name = \"a\"; url = \"ws:// h/\"; } );\n",
	     "t.conf:1: feeds[0].url: ", "whitespace"},
	    {"feeds = ( { name = \"a\"; url = \"\"; } );\n",
	     "t.conf:1: feeds[0].url: ", "empty URL"},
	    {"feeds = ( { name = \"a\"; url = \"ws://h/\"; },\n 7 );\n",
	     "t.conf:2: feeds[1]: ", "must be a group"},
	    {"log_level = \"info\";\n", "t.conf: ", "no feeds configured"},
	    {"feeds = ();\n", "t.conf:1: feeds: ", "no feeds configured"},
	    {"feeds = [];\n", "t.conf:1: feeds: ", "no feeds configured"},
	    {"feeds = { name = \"a\"; url = \"ws://h/\"; };\n",
	     "t.conf:1: feeds: ", "must be a list ( { ... }, { ... } ) of feed groups"},
	};

	(void)state;
	RUN_BAD(t);
}

static void test_header_errors(void **state)
{
#define HD(x) "feeds = ( { name = \"a\"; url = \"ws://h/\";\n headers = {\n " x " }; } );\n"
	static const struct bad_cfg t[] = {
	    {HD("Host = \"x\";"), "t.conf:3: feeds[0].headers.Host: ",
	     "header 'Host' is not allowed: it is taken from the URL"},
	    {HD("X-Ok = \"1\"; upgrade = \"x\";"), "t.conf:3: feeds[0].headers.upgrade: ",
	     "header 'upgrade' is not allowed: the WebSocket handshake sets it"},
	    {HD("CONNECTION = \"close\";"),
	     "t.conf:3: feeds[0].headers.CONNECTION: ", "is not allowed"},
	    {HD("Origin = \"https://x\";"), "t.conf:3: feeds[0].headers.Origin: ",
	     "header 'Origin' is not allowed: use the 'origin' setting"},
	    {HD("Sec-WebSocket-Key = \"x\";"),
	     "t.conf:3: feeds[0].headers.Sec-WebSocket-Key: ", "the WebSocket handshake sets it"},
	    {HD("sec-websocket-extensions = \"x\";"),
	     "t.conf:3: ", "the WebSocket handshake sets it"},
	    {HD("Sec-WebSocket-Protocol = \"json\";"),
	     "t.conf:3: ", "use the 'subprotocol' setting"},
	    {HD("Content-Length = \"0\";"), "t.conf:3: ", "has no body"},
	    {HD("X-Token = \"a\\r\\nEvil: 1\";"),
	     "t.conf:3: feeds[0].headers.X-Token: ", "header value must not contain CR or LF"},
	    {HD("X-A = \"1\";\n x-a = \"2\";"),
	     "t.conf:4: feeds[0].headers.x-a: ", "header 'x-a' is given twice"},
	    {"defaults = { subprotocol = \"a b\"; };\n" FEED,
	     "t.conf:1: defaults.subprotocol: ", "must be an HTTP token"},
	    {"defaults = { subprotocol = \"\"; };\n" FEED,
	     "t.conf:1: defaults.subprotocol: ", "must be an HTTP token"},
	    {"defaults = { subprotocol = \"a,b\"; };\n" FEED,
	     "t.conf:1: ", "must be an HTTP token"},
	    {"defaults = { origin = \"\"; };\n" FEED,
	     "t.conf:1: defaults.origin: ", "must not be empty"},
	    {"defaults = { origin = \"https://x\\nY: z\"; };\n" FEED,
	     "t.conf:1: defaults.origin: ", "must not contain CR or LF"},
	};
	char err[512];
	struct cfg *c;

	(void)state;
	RUN_BAD(t);
	/* The secret value never appears in a message. */
	assert_int_equal(
	    cfg_load_string(HD("X-Token = \"hunter2\\r\\n\";"), "t.conf", &c, err, sizeof(err)),
	    -1);
	assert_null(strstr(err, "hunter2"));
}

static void test_cross_field_errors(void **state)
{
	static const struct bad_cfg t[] = {
	    {HB("type = \"text\"; interval = 1;"),
	     "t.conf:2: feeds[0].heartbeat.payload: ", "required when heartbeat type is \"text\""},
	    {"defaults = {\n heartbeat = { type = \"binary\"; }; };\n" FEED,
	     "t.conf:2: defaults.heartbeat.payload: ",
	     "required when heartbeat type is \"binary\""},
	    {HB("payload = \"x\";"), "t.conf:2: feeds[0].heartbeat.payload: ",
	     "only used when heartbeat type is \"text\" or \"binary\""},
	    {HB("type = \"none\"; expect = \"x\";"),
	     "t.conf:2: feeds[0].heartbeat.expect: ", "only used when heartbeat type"},
	    {"defaults = {\n heartbeat = { payload = \"x\"; }; };\n" FEED,
	     "t.conf:2: defaults.heartbeat.payload: ", "only used when heartbeat type"},
	    {"defaults = { heartbeat = { type = \"text\"; payload = \"p\"; }; };\n" HB(
	         "type = \"ping\"; expect = \"x\";"),
	     "t.conf:3: feeds[0].heartbeat.expect: ", "only used when heartbeat type"},
	    {"feeds = ( { name = \"a\"; url = \"wss://h/\";\n sink = { type = \"file\"; }; } );\n",
	     "t.conf:2: feeds[0].sink.path: ", "required when sink type is \"file\""},
	    {"feeds = ( { name = \"a\"; url = \"wss://h/\";\n sink = { path = \"/tmp/x\"; }; } "
	     ");\n",
	     "t.conf:2: feeds[0].sink.path: ", "only used when sink type is \"file\""},
	    {"feeds = ( { name = \"a\"; url = \"wss://h/\";\n sink = { type = \"file\"; path = "
	     "\"\"; }; } );\n",
	     "t.conf:2: feeds[0].sink.path: ", "must not be empty"},
	    {"feeds = ( { name = \"a\"; url = \"ws://h/\";\n tls = { verify = false; }; } );\n",
	     "t.conf:2: feeds[0].tls: ", "TLS settings need a wss:// URL"},
	    {"defaults = { tls = { server_name = \"bad name\"; }; };\n" FEED,
	     "t.conf:1: defaults.tls.server_name: ", "must be a host name"},
	};
	struct cfg *c;

	(void)state;
	RUN_BAD(t);
	/* A feed that switches to ping drops the text payload it inherited. */
	c = load_ok(
	    "defaults = { heartbeat = { type = \"text\"; payload = \"p\"; expect = \"q\"; }; "
	    "sink = { type = \"file\"; path = \"/tmp/x\"; }; tls = { verify = false; }; };\n"
	    "feeds = ( { name = \"a\"; url = \"ws://h/\"; heartbeat = { type = \"ping\"; };\n"
	    "  sink = { type = \"discard\"; }; } );\n");
	assert_null(c->feeds[0].heartbeat.payload);
	assert_null(c->feeds[0].heartbeat.expect);
	assert_null(c->feeds[0].sink.path);
	assert_false(c->feeds[0].tls.verify);
	cfg_free(c);
}

static void test_metrics_and_parse_errors(void **state)
{
	static const struct bad_cfg t[] = {
	    {"metrics = { };\n" FEED, "t.conf:1: metrics: ", "missing required setting 'listen'"},
	    {"dns_servers = \"8.8.8.8, 1.1.1.1\";\n" FEED,
	     "t.conf:1: dns_servers: ", "must be a comma-separated list of IP[:PORT]"},
	    {"dns_servers = \"dns.google\";\n" FEED, "t.conf:1: dns_servers: ", "IP[:PORT]"},
	    {"dns_servers = \"1.1.1.1:0\";\n" FEED, "t.conf:1: dns_servers: ", "IP[:PORT]"},
	    {"dns_servers = \"1.1.1.1,\";\n" FEED, "t.conf:1: dns_servers: ", "IP[:PORT]"},
	    {"dns_servers = \"\";\n" FEED, "t.conf:1: dns_servers: ", "must not be empty"},
	    {"dns_timeout = \"2m\";\n" FEED, "t.conf:1: dns_timeout: ", "must be <= 1m"},
	    {"dns_tries = 21;\n" FEED, "t.conf:1: dns_tries: ", "must be <= 20 (got 21)"},
	    {"dns_tries = \"3\";\n" FEED, "t.conf:1: dns_tries: ", "must be an integer"},
	    {"metrics = {\n listen = \"127.0.0.1\"; };\n" FEED,
	     "t.conf:2: metrics.listen: ", "missing ':PORT'"},
	    {"metrics = { listen = \"127.0.0.1:0\"; };\n" FEED,
	     "t.conf:1: metrics.listen: ", "port 0"},
	    {"metrics = { listen = \"[::1:9464\"; };\n" FEED,
	     "t.conf:1: metrics.listen: ", "closing ']'"},
	    {"log_level = \"info\"\nfeeds = (\n { name = \"a\"; url = \"ws://h/\"; }\n;\n",
	     "t.conf:4: parse error: ", "syntax error"},
	    {"log_level = \"info\";\nlog_level = \"debug\";\n" FEED,
	     "t.conf:2: parse error: ", "duplicate setting name"},
	    {"\nlog_level = info;\n" FEED, "t.conf:2: parse error: ", "syntax error"},
	    {"feeds = ( { name = \"a\"; url = \"ws://h/\n\"; } );\n",
	     "t.conf:1: feeds[0].url: ", "whitespace or a control character"},
	};
	struct cfg *c;

	(void)state;
	RUN_BAD(t);
	c = load_ok("dns_servers = \"::1,[fe80::1],192.168.1.1\";\n" FEED);
	assert_string_equal(c->dns_servers, "::1,[fe80::1],192.168.1.1");
	cfg_free(c);
	c = load_ok("metrics = { listen = \"localhost:9464\"; };\n" FEED);
	assert_string_equal(c->metrics_listen, "localhost:9464");
	cfg_free(c);
}

/* ---- files ---- */

struct tmp {
	char dir[64];
};

static void tmp_write(const struct tmp *t, const char *name, const char *text, mode_t mode)
{
	char p[256];
	FILE *f;

	snprintf(p, sizeof(p), "%s/%s", t->dir, name);
	f = fopen(p, "w");
	assert_non_null(f);
	fputs(text, f);
	fclose(f);
	assert_int_equal(chmod(p, mode), 0);
}

static int tmp_setup(void **state)
{
	struct tmp *t = calloc(1, sizeof(*t));

	snprintf(t->dir, sizeof(t->dir), "/tmp/wsbeat-cfg-XXXXXX");
	if (!mkdtemp(t->dir))
		return -1;
	tmp_write(t, "ca.pem", "x\n", 0644);
	tmp_write(t, "cert.pem", "x\n", 0644);
	tmp_write(t, "key.pem", "x\n", 0600);
	tmp_write(t, "secret.pem", "x\n", 0000);
	*state = t;
	return 0;
}

static int tmp_teardown(void **state)
{
	struct tmp *t = *state;
	char cmd[128];

	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", t->dir);
	if (system(cmd) != 0)
		return -1;
	free(t);
	return 0;
}

/* Loads text written as file name in the temp dir; returns 0 or -1 with err filled. */
static int tmp_load(const struct tmp *t, const char *name, const char *text, struct cfg **c,
                    char *err, size_t errlen)
{
	char p[256];

	tmp_write(t, name, text, 0644);
	snprintf(p, sizeof(p), "%s/%s", t->dir, name);
	return cfg_load(p, c, err, errlen);
}

static void tmp_expect(const struct tmp *t, const char *text, int line, const char *what)
{
	char err[1024], prefix[128];
	struct cfg *c;

	if (tmp_load(t, "bad.conf", text, &c, err, sizeof(err)) != -1)
		fail_msg("accepted:\n%s", text);
	snprintf(prefix, sizeof(prefix), "%s/bad.conf:%d: ", t->dir, line);
	if (strncmp(err, prefix, strlen(prefix)) != 0 || !strstr(err, what))
		fail_msg("got:  %s\nwant: %s ... %s", err, prefix, what);
}

#define TLS(x) "feeds = ( { name = \"a\"; url = \"wss://h/\";\n  tls = { " x " }; } );\n"

static void test_tls_files(void **state)
{
	struct tmp *t = *state;
	char err[1024], p[256];
	struct cfg *c;

	/* Relative paths resolve against the config file's directory. */
	assert_int_equal(tmp_load(t, "ok.conf",
	                          TLS("ca_file = \"ca.pem\"; ca_path = \".\"; cert_file = "
	                              "\"cert.pem\"; key_file = \"key.pem\";"),
	                          &c, err, sizeof(err)),
	                 0);
	snprintf(p, sizeof(p), "%s/ca.pem", t->dir);
	assert_string_equal(c->feeds[0].tls.ca_file, p);
	cfg_free(c);
	tmp_expect(t, TLS("cert_file = \"nope.pem\"; key_file = \"key.pem\";"), 2,
	           "feeds[0].tls.cert_file: cannot access");
	tmp_expect(t, TLS("cert_file = \"nope.pem\";"), 2, "No such file or directory");
	tmp_expect(t, TLS("cert_file = \"cert.pem\";"), 2,
	           "feeds[0].tls.cert_file: cert_file needs key_file too");
	tmp_expect(t, "defaults = {\n tls = { key_file = \"key.pem\"; }; };\n" FEED, 2,
	           "defaults.tls.key_file: key_file needs cert_file too");
	tmp_expect(t, TLS("ca_path = \"ca.pem\";"), 2, "feeds[0].tls.ca_path: ");
	tmp_expect(t, TLS("ca_path = \"ca.pem\";"), 2, "is not a directory");
	tmp_expect(t, TLS("ca_file = \".\";"), 2, "is a directory, not a file");
	tmp_expect(t, TLS("ca_file = \"\";"), 2, "feeds[0].tls.ca_file: must not be empty");
	if (geteuid() != 0) /* root reads anything */
		tmp_expect(t, TLS("cert_file = \"secret.pem\"; key_file = \"key.pem\";"), 2,
		           "cannot read");
}

static void test_file_errors(void **state)
{
	struct tmp *t = *state;
	char err[1024], want[256];
	struct cfg *c = (struct cfg *)1;

	assert_int_equal(cfg_load("/nonexistent/wsbeat.conf", &c, err, sizeof(err)), -1);
	assert_null(c);
	assert_string_equal(err,
	                    "/nonexistent/wsbeat.conf: cannot open: No such file or directory");
	assert_int_equal(cfg_load(t->dir, &c, err, sizeof(err)), -1);
	assert_non_null(strstr(err, ": cannot open: Is a directory"));
	tmp_expect(t, "log_level = \"info\";\nfeeds = (\n", 3, "parse error: ");
	tmp_expect(t,
	           "# comment\n\nfeeds = (\n  { name = \"a\"; url = \"ws://h/\"; heartbeat = {\n"
	           "    interval = 0; }; }\n);\n",
	           5, "feeds[0].heartbeat.interval: must be > 0 (got 0)");
	/* Settings from an included file are reported where they really are. */
	tmp_write(t, "feeds.inc", "feeds = (\n  { name = \"a\"; url = \"ftp://h/\"; }\n);\n", 0644);
	assert_int_equal(tmp_load(t, "main.conf", "log_level = \"info\";\n@include \"feeds.inc\"\n",
	                          &c, err, sizeof(err)),
	                 -1);
	snprintf(want, sizeof(want), "%s/feeds.inc:2: feeds[0].url: unsupported", t->dir);
	if (strncmp(err, want, strlen(want)) != 0)
		fail_msg("got %s", err);
}

#define CMD(x) "feeds = ( { name = \"a\"; url = \"wss://h/\";\n  connect_command = " x "; } );\n"

static void test_connect_command(void **state)
{
	struct tmp *t = *state;
	char err[1024], p[256];
	struct cfg *c, *d;

	tmp_write(t, "login", "#!/bin/sh\n", 0755);
	tmp_write(t, "plain", "#!/bin/sh\n", 0644);
	/* argv[0] resolves against the config's directory; arguments are kept as written */
	assert_int_equal(tmp_load(t, "ok.conf", CMD("[ \"login\", \"--key\", \"\", \"a b\" ]"), &c,
	                          err, sizeof(err)),
	                 0);
	snprintf(p, sizeof(p), "%s/login", t->dir);
	assert_string_equal(c->feeds[0].connect_command[0], p);
	assert_string_equal(c->feeds[0].connect_command[1], "--key");
	assert_string_equal(c->feeds[0].connect_command[2], "");
	assert_string_equal(c->feeds[0].connect_command[3], "a b");
	assert_null(c->feeds[0].connect_command[4]);
	/* from defaults too; a change of any argument is a change of the feed */
	assert_int_equal(
	    tmp_load(t, "d.conf",
	             "defaults = { connect_command = ( \"login\", \"--key\", \"\", \"a b\" "
	             "); };\nfeeds = ( { name = \"a\"; url = \"wss://h/\"; } );\n",
	             &d, err, sizeof(err)),
	    0);
	assert_true(cfg_feed_equal(&c->feeds[0], &d->feeds[0]));
	cfg_free(d);
	assert_int_equal(tmp_load(t, "e.conf", CMD("[ \"login\", \"--key\", \"\", \"a c\" ]"), &d,
	                          err, sizeof(err)),
	                 0);
	assert_false(cfg_feed_equal(&c->feeds[0], &d->feeds[0]));
	cfg_free(d);
	assert_int_equal(tmp_load(t, "f.conf", CMD("[ \"login\" ]"), &d, err, sizeof(err)), 0);
	assert_false(cfg_feed_equal(&c->feeds[0], &d->feeds[0]));
	assert_false(cfg_feed_equal(&d->feeds[0], &c->feeds[0]));
	cfg_free(d);
	cfg_free(c);
	c = load_ok(FEED);
	assert_null(c->feeds[0].connect_command);
	cfg_free(c);

	tmp_expect(t, CMD("[ \"nope\" ]"), 2, "feeds[0].connect_command: cannot access");
	tmp_expect(t, CMD("[ \".\" ]"), 2, "is not a file");
	/* (root too: access(X_OK) wants an x bit from everyone) */
	tmp_expect(t, CMD("[ \"plain\" ]"), 2, "cannot run");
	tmp_expect(t, CMD("[ ]"), 2, "must hold the program and at most 63 arguments");
	tmp_expect(t, CMD("\"login\""), 2, "must be a list");
	tmp_expect(t, CMD("( \"login\", 1 )"), 2, "feeds[0].connect_command[1]: must be a string");
	tmp_expect(t, CMD("[ \"\" ]"), 2, "the program (the first string) must not be empty");
}

/* ---- rotation ---- */

static void test_rotation_settings(void **state)
{
	static const struct bad_cfg t[] = {
	    {"feeds = ( { name = \"a\"; url = \"wss://h/\";\n  max_lifetime = \"500ms\"; } );\n",
	     "t.conf:2: feeds[0].max_lifetime: ", "must be 0 (off) or at least 1s (got 500ms)"},
	    {"defaults = { max_lifetime = 0.5; };\n" FEED,
	     "t.conf:1: defaults.max_lifetime: ", "must be 0 (off) or at least 1s"},
	    {"feeds = ( { name = \"a\"; url = \"wss://h/\"; max_lifetime = \"23h50\"; } );\n",
	     "t.conf:1: feeds[0].max_lifetime: ", "invalid duration \"23h50\""},
	    {"feeds = ( { name = \"a\"; url = \"wss://h/\"; max_lifetime = \"9000h\"; } );\n",
	     "t.conf:1: feeds[0].max_lifetime: ", "must be <= 8760h"},
	    {"feeds = ( { name = \"a\"; url = \"wss://h/\"; rotate_on = 1; } );\n",
	     "t.conf:1: feeds[0].rotate_on: ", "must be a match"},
	    {"feeds = ( { name = \"a\"; url = \"wss://h/\"; rotate_on = \"id=${seq}\"; } );\n",
	     "t.conf:1: feeds[0].rotate_on: ", "${seq} is not allowed here"},
	};
	struct cfg *c;

	(void)state;
	c = load_ok("defaults = { max_lifetime = \"23h50m\"; rotate_on = [ \"json:event=info\", "
	            "\"json:code=20051\" ]; };\n"
	            "feeds = ( { name = \"a\"; url = \"wss://h/\"; },\n"
	            "  { name = \"b\"; url = \"wss://h/\"; max_lifetime = 0; } );\n");
	assert_int_equal(c->feeds[0].max_lifetime_ms, 85800000);
	assert_non_null(c->feeds[0].rotate_on);
	assert_string_equal(c->feeds[0].rotate_on->text, "json:event=info and json:code=20051");
	assert_int_equal(c->feeds[1].max_lifetime_ms, 0);
	assert_non_null(c->feeds[1].rotate_on);
	cfg_free(c);
	c = load_ok(FEED);
	assert_int_equal(c->feeds[0].max_lifetime_ms, 0);
	assert_null(c->feeds[0].rotate_on);
	cfg_free(c);
	RUN_BAD(t);
}

/* ---- reload comparison ---- */

/* A feed "a" with the base URL unless extra sets its own. */
static struct cfg *one_feed(const char *extra)
{
	char text[1024];

	snprintf(text, sizeof(text), "feeds = ( { name = \"a\"; %s %s } );\n",
	         strstr(extra, "url =") ? "" : "url = \"wss://h/p?q=1\";", extra);
	return load_ok(text);
}

static void test_feed_equal(void **state)
{
	static const char *changes[] = {
	    "url = \"wss://h/p?q=2\";",
	    "url = \"ws://h/p?q=1\";",
	    "url = \"wss://h:444/p?q=1\";",
	    "url = \"wss://g/p?q=1\";",
	    "heartbeat = { type = \"none\"; };",
	    "heartbeat = { interval = 6; };",
	    "heartbeat = { timeout = 11; };",
	    "heartbeat = { type = \"text\"; payload = \"x\"; };",
	    "heartbeat = { type = \"binary\"; payload = \"x\"; };",
	    "heartbeat = { type = \"text\"; payload = \"x\"; expect = \"y\"; };",
	    "reconnect = { initial = 2; };",
	    "reconnect = { max = 61; };",
	    "reconnect = { multiplier = 3.0; };",
	    "reconnect = { jitter = 0.25; };",
	    "reconnect = { stable_after = 31; };",
	    "connect_timeout = 9;",
	    "idle_timeout = 1;",
	    "max_lifetime = \"23h50m\";",
	    "rotate_on = \"json:event=reconnect\";",
	    "max_message_size = 1000;",
	    "on_open = [ \"x\" ];",
	    "headers = { X-A = \"1\"; };",
	    "connect_command = [ \"/bin/true\" ];",
	    "subprotocol = \"json\";",
	    "origin = \"https://o\";",
	    "tls = { verify = false; };",
	    "tls = { server_name = \"s\"; };",
	    "tls = { ca_path = \"/\"; };",
	    "sink = { type = \"stdout\"; };",
	    "sink = { type = \"file\"; path = \"/tmp/f\"; };",
	    "proxy = \"\";",
	    "proxy = \"http://p:1\";",
	    "proxy = \"http://u:p@p:1\";",
	};
	struct cfg *base = one_feed(""), *other, *moved;

	(void)state;
	for (size_t i = 0; i < sizeof(changes) / sizeof(changes[0]); i++) {
		other = one_feed(changes[i]);
		if (cfg_feed_equal(&base->feeds[0], &other->feeds[0]))
			fail_msg("not detected: %s", changes[i]);
		assert_true(cfg_feed_equal(&other->feeds[0], &other->feeds[0]));
		cfg_free(other);
	}
	/* Values equal to the defaults, spelled out or moved to another line, change nothing. */
	other = one_feed("heartbeat = { interval = \"5000ms\"; }; reconnect = { jitter = 0.5; };");
	moved = load_ok("\n\nfeeds = (\n { name = \"z\"; url = \"wss://x/\"; },\n"
	                " { name = \"a\";\n   url = \"wss://h/p?q=1\"; } );\n");
	assert_true(cfg_feed_equal(&base->feeds[0], &other->feeds[0]));
	assert_true(cfg_feed_equal(&base->feeds[0], cfg_find_feed(moved, "a")));
	assert_false(cfg_feed_equal(&base->feeds[0], cfg_find_feed(moved, "z")));
	cfg_free(other);
	cfg_free(moved);
	cfg_free(base);
	/* A new proxy password is a change too (the feed restarts with it). */
	base = one_feed("proxy = \"http://u:p@p:1\";");
	other = one_feed("proxy = \"http://u:q@p:1\";");
	assert_false(cfg_feed_equal(&base->feeds[0], &other->feeds[0]));
	cfg_free(other);
	other = one_feed("proxy = \"http://u:p@P:1/\";");
	assert_true(cfg_feed_equal(&base->feeds[0], &other->feeds[0]));
	cfg_free(other);
	cfg_free(base);
}

static void test_names_and_free(void **state)
{
	(void)state;
	assert_string_equal(cfg_log_level_name(LOG_LVL_ERROR), "error");
	assert_string_equal(cfg_log_level_name(LOG_LVL_WARNING), "warning");
	assert_string_equal(cfg_log_level_name(LOG_LVL_DEBUG), "debug");
	assert_string_equal(cfg_hb_type_name(HB_PING), "ping");
	assert_string_equal(cfg_hb_type_name(HB_BINARY), "binary");
	assert_string_equal(cfg_hb_type_name(HB_NONE), "none");
	assert_string_equal(cfg_sink_type_name(SINK_FILE), "file");
	cfg_free(NULL);
	assert_null(cfg_find_feed(NULL, "a"));
}

/* ---- proxy ---- */

static void test_proxy_setting(void **state)
{
	struct cfg *c =
	    load_ok("defaults = { proxy = \"http://u%40x:p%3Aw@Proxy.Test:3128/\"; };\n"
	            "feeds = (\n"
	            "  { name = \"a\"; url = \"wss://h/\"; },\n"
	            "  { name = \"b\"; url = \"wss://h/\"; proxy = \"\"; },\n"
	            "  { name = \"c\"; url = \"ws://h/\"; proxy = \"http://[::1]:8080\"; }\n"
	            ");\n");
	const struct cfg_feed *a = &c->feeds[0], *b = &c->feeds[1], *cc = &c->feeds[2];

	(void)state;
	assert_int_equal(a->proxy.mode, PROXY_URL);
	assert_string_equal(a->proxy.url->host, "proxy.test");
	assert_int_equal(a->proxy.url->port, 3128);
	assert_string_equal(a->proxy.url->auth, "u@x:p:w");
	assert_string_equal(a->proxy.url->display, "proxy.test:3128");
	assert_int_equal(b->proxy.mode, PROXY_DIRECT);
	assert_null(b->proxy.url);
	assert_int_equal(cc->proxy.mode, PROXY_URL);
	assert_string_equal(cc->proxy.url->display, "[::1]:8080");
	assert_true(cc->proxy.url->numeric);
	assert_null(cc->proxy.url->auth);
	cfg_free(c);
	c = load_ok(FEED);
	assert_int_equal(c->feeds[0].proxy.mode, PROXY_ENV);
	assert_null(c->feeds[0].proxy.url);
	cfg_free(c);
	/* The password from a secret source, read at load; it is percent-decoded too. */
	setenv("WSBEAT_T_PROXY_PW", "p@ss%3Aw", 1);
	c = load_ok("feeds = ( { name = \"a\"; url = \"wss://h/\"; proxy = "
	            "\"http://alice:${env:WSBEAT_T_PROXY_PW}@p:1\"; } );");
	assert_string_equal(c->feeds[0].proxy.url->auth, "alice:p@ss:w");
	cfg_free(c);
	unsetenv("WSBEAT_T_PROXY_PW");
}

static void test_proxy_errors(void **state)
{
	static const struct bad_cfg t[] = {
	    {"feeds = ( { name = \"a\"; url = \"wss://h/\";\n proxy = 3128; } );",
	     "t.conf:2: feeds[0].proxy: ", "must be a string"},
	    {"feeds = ( { name = \"a\"; url = \"wss://h/\";\n proxy = \"p:3128\"; } );",
	     "t.conf:2: feeds[0].proxy: ", "the proxy URL must start with http://"},
	    {"defaults = {\n proxy = \"https://p:443\"; };\n" FEED, "t.conf:2: defaults.proxy: ",
	     "https:// proxies (TLS to the proxy itself) are not supported"},
	    {"feeds = ( { name = \"a\"; url = \"wss://h/\";\n proxy = \"socks5://p:1080\"; } );",
	     "t.conf:2: feeds[0].proxy: ", "unsupported scheme"},
	    {"feeds = ( { name = \"a\"; url = \"wss://h/\";\n proxy = \"http://p\"; } );",
	     "t.conf:2: feeds[0].proxy: ", "the proxy URL must name the port"},
	    {"feeds = ( { name = \"a\"; url = \"wss://h/\";\n proxy = \"http://p:0\"; } );",
	     "t.conf:2: feeds[0].proxy: ", "the proxy's port must be a number from 1 to 65535"},
	    {"feeds = ( { name = \"a\"; url = \"wss://h/\";\n proxy = \"http://u:p%zz@p:1\"; } );",
	     "t.conf:2: feeds[0].proxy: ", "not followed by two hex digits"},
	    {"feeds = ( { name = \"a\"; url = \"wss://h/\";\n proxy = \"http://u:${seq}@p:1\"; } "
	     ");",
	     "t.conf:2: feeds[0].proxy: ", "${seq}"},
	    {"feeds = ( { name = \"a\"; url = \"wss://h/\";\n"
	     " proxy = \"http://u:${env:WSBEAT_T_UNSET_PW}@p:1\"; } );",
	     "t.conf:2: feeds[0].proxy: ", "WSBEAT_T_UNSET_PW"},
	    {"feeds = ( { name = \"a\";\n url = \"wss://"
	     "hhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhh"
	     "hhhhhhhhhhhhhhhh:10000/\";\n proxy = \"http://p:1\"; } );",
	     "t.conf:2: feeds[0].url: ", "too long to go through a proxy"},
	};
	char err[512];
	struct cfg *c;

	(void)state;
	RUN_BAD(t);
	/* A secret source that expands to nothing is an error, not a direct connection. */
	setenv("WSBEAT_T_EMPTY_PROXY", "", 1);
	expect_err("feeds = ( { name = \"a\"; url = \"wss://h/\";\n"
	           " proxy = \"${env:WSBEAT_T_EMPTY_PROXY}\"; } );",
	           "t.conf:2: feeds[0].proxy: ", "is empty once its ${...} are filled in");
	unsetenv("WSBEAT_T_EMPTY_PROXY");
	/* No message quotes the password. */
	assert_int_equal(cfg_load_string("feeds = ( { name = \"a\"; url = \"wss://h/\"; proxy = "
	                                 "\"http://alice:SECRETPW@p:x\"; } );",
	                                 "t.conf", &c, err, sizeof(err)),
	                 -1);
	assert_non_null(strstr(err, "t.conf:1: feeds[0].proxy: "));
	assert_null(strstr(err, "SECRETPW"));
	assert_null(strstr(err, "alice"));
}

/* Errors in a long message must be truncated, not overflow. */
static void test_small_error_buffer(void **state)
{
	char err[16];
	struct cfg *c;

	(void)state;
	memset(err, 'x', sizeof(err));
	assert_int_equal(cfg_load_string("bogus_setting_name = 1;\n" FEED, "a-long-file-name.conf",
	                                 &c, err, sizeof(err)),
	                 -1);
	assert_int_equal(strlen(err), sizeof(err) - 1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_full_config),
	    cmocka_unit_test(test_builtin_defaults),
	    cmocka_unit_test(test_nested_merge),
	    cmocka_unit_test(test_parse_duration),
	    cmocka_unit_test(test_duration_forms_in_config),
	    cmocka_unit_test(test_duration_errors),
	    cmocka_unit_test(test_unknown_settings),
	    cmocka_unit_test(test_wrong_types),
	    cmocka_unit_test(test_out_of_range),
	    cmocka_unit_test(test_feed_errors),
	    cmocka_unit_test(test_header_errors),
	    cmocka_unit_test(test_cross_field_errors),
	    cmocka_unit_test(test_metrics_and_parse_errors),
	    cmocka_unit_test_setup_teardown(test_tls_files, tmp_setup, tmp_teardown),
	    cmocka_unit_test_setup_teardown(test_file_errors, tmp_setup, tmp_teardown),
	    cmocka_unit_test_setup_teardown(test_connect_command, tmp_setup, tmp_teardown),
	    cmocka_unit_test(test_rotation_settings),
	    cmocka_unit_test(test_feed_equal),
	    cmocka_unit_test(test_names_and_free),
	    cmocka_unit_test(test_proxy_setting),
	    cmocka_unit_test(test_proxy_errors),
	    cmocka_unit_test(test_small_error_buffer),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
