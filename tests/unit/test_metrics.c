/* Unit tests for metrics rendering and the status client's parser, table and fetch. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "wsbeat/metrics.h"
#include "wsbeat/version.h"
#include "wsbeat/status_client.h"

#define SEC 1000000LL

static struct cfg_feed cfg_a = {.name = "alpha", .url = {.display = "wss://a.example.com/ws"}};
static struct cfg_feed cfg_b = {.name = "beta", .url = {.display = "ws://b.example.com:8080/"}};
/* Set directly, not through feed_set_error: these feeds are never finished with feed_fini. */
static struct feed_detail detail_b = {.err = "connect: Connection refused"};
/* beta's previous attempt ended a minute ago; alpha's connection ended with 1001 an hour ago. */
static struct feed_last last_b = {.err = "connect: Connection refused",
                                  .at_real_us = 1764165600 * SEC - 60 * SEC};
static struct feed_last last_a = {.err = "the server closed the connection",
                                  .at_real_us = 1764165600 * SEC - 3600 * SEC};
static const struct metrics_now now_1000 = {.mono_us = 1000 * SEC, .real_us = 1764165600 * SEC};

/* alpha: open 12.5 s, three round trips; beta: in backoff with an error and a close code. */
static void make_feeds(struct feed *a, struct feed *b)
{
	memset(a, 0, sizeof(*a));
	memset(b, 0, sizeof(*b));
	a->cfg = &cfg_a;
	a->state = FEED_OPEN;
	a->state_since_us = 1000 * SEC - 12500000;
	a->stats = (struct feed_stats){.connects = 3,
	                               .connect_errors = 2,
	                               .disconnects = 2,
	                               .beats_sent = 40,
	                               .beats_answered = 39,
	                               .beat_timeouts = 1,
	                               .messages = 1234,
	                               .bytes = 567890,
	                               .keepalive = 77,
	                               .replies_sent = 12,
	                               .rotations = 5,
	                               .last_rtt_ms = 2.5,
	                               .last_msg_us = 1000 * SEC - 1500000};
	a->stats.rtt_buckets[0] = 1; /* <= 1 ms */
	a->stats.rtt_buckets[2] = 1; /* <= 5 ms */
	a->stats.rtt_count = 4;      /* one above 30 s: only in +Inf */
	a->stats.rtt_sum_s = 40.0085;
	a->last = &last_a;
	a->last_close_code = 1001;
	b->cfg = &cfg_b;
	b->state = FEED_BACKOFF;
	b->state_since_us = 1000 * SEC - 3 * SEC;
	b->failures = 3;
	b->close_code = 1006;
	b->last_close_code = 1006;
	b->stats.last_rtt_ms = -1;
	b->detail = &detail_b;
	b->last = &last_b;
}

static bool has_line(const char *text, const char *line)
{
	size_t n = strlen(line);

	for (const char *p = text; (p = strstr(p, line)) != NULL; p++)
		if ((p == text || p[-1] == '\n') && p[n] == '\n')
			return true;
	return false;
}

#define assert_line(text, line)                                                                    \
	do {                                                                                       \
		if (!has_line(text, line))                                                         \
			fail_msg("missing line: %s", line);                                        \
	} while (0)

static size_t count_prefix(const char *text, const char *prefix)
{
	size_t n = 0, len = strlen(prefix);

	for (const char *p = text; p && *p; p = strchr(p, '\n'), p = p ? p + 1 : p)
		n += strncmp(p, prefix, len) == 0;
	return n;
}

static char *render_prom(struct feed *const *feeds, size_t n)
{
	struct mbuf b = {0};

	assert_int_equal(metrics_render_prometheus(&b, feeds, n, 1000 * SEC, 1764165600 * SEC), 0);
	return b.p;
}

static void test_mbuf(void **state)
{
	struct mbuf b = {0};
	(void)state;

	for (int i = 0; i < 10000; i++)
		mbuf_printf(&b, "%d,", i % 10);
	mbuf_put(&b, "end", 3);
	assert_int_equal(b.len, 20003);
	assert_int_equal(strlen(b.p), 20003);
	assert_memory_equal(b.p, "0,1,2,", 6);
	assert_string_equal(b.p + 20000, "end");
	assert_false(b.oom);
	mbuf_free(&b);
	assert_null(b.p);
	mbuf_free(&b);
}

static void test_prometheus_families(void **state)
{
	struct feed a, b;
	struct feed *feeds[] = {&a, &b};
	char *t;
	(void)state;

	make_feeds(&a, &b);
	t = render_prom(feeds, 2);
	assert_line(t, "# HELP wsbeat_feed_up 1 when the feed's connection is open, else 0.");
	assert_line(t, "# TYPE wsbeat_feed_up gauge");
	assert_line(t, "wsbeat_feed_up{feed=\"alpha\"} 1");
	assert_line(t, "wsbeat_feed_up{feed=\"beta\"} 0");
	assert_line(t, "# TYPE wsbeat_connects_total counter");
	assert_line(t, "wsbeat_connects_total{feed=\"alpha\"} 3");
	assert_line(t, "wsbeat_connect_errors_total{feed=\"alpha\"} 2");
	assert_line(t, "wsbeat_disconnects_total{feed=\"alpha\"} 2");
	assert_line(t, "wsbeat_heartbeats_sent_total{feed=\"alpha\"} 40");
	assert_line(t, "wsbeat_heartbeat_timeouts_total{feed=\"alpha\"} 1");
	assert_line(t, "wsbeat_messages_received_total{feed=\"alpha\"} 1234");
	assert_line(t, "wsbeat_bytes_received_total{feed=\"alpha\"} 567890");
	assert_line(t, "wsbeat_bytes_received_total{feed=\"beta\"} 0");
	assert_line(t, "# TYPE wsbeat_keepalive_messages_total counter");
	assert_line(t, "wsbeat_keepalive_messages_total{feed=\"alpha\"} 77");
	assert_line(t, "wsbeat_replies_sent_total{feed=\"alpha\"} 12");
	assert_line(t, "wsbeat_replies_sent_total{feed=\"beta\"} 0");
	assert_line(t, "# TYPE wsbeat_rotations_total counter");
	assert_line(t, "wsbeat_rotations_total{feed=\"alpha\"} 5");
	assert_line(t, "wsbeat_rotations_total{feed=\"beta\"} 0");
	assert_line(t, "# TYPE wsbeat_last_message_timestamp_seconds gauge");
	assert_line(t, "# TYPE wsbeat_feeds gauge");
	assert_line(t, "wsbeat_feeds{state=\"idle\"} 0");
	assert_line(t, "wsbeat_feeds{state=\"open\"} 1");
	assert_line(t, "wsbeat_feeds{state=\"backoff\"} 1");
	assert_line(t, "wsbeat_feeds{state=\"stopped\"} 0");
	assert_int_equal(count_prefix(t, "wsbeat_feeds{"), FEED_NSTATES);
	/* Every family has exactly one HELP and one TYPE line. */
	assert_int_equal(count_prefix(t, "# HELP "), 14);
	assert_int_equal(count_prefix(t, "# TYPE "), 14);
	assert_int_equal(t[strlen(t) - 1], '\n');
	free(t);
}

static void test_prometheus_histogram(void **state)
{
	static const char *const want[] = {
	    "# TYPE wsbeat_heartbeat_rtt_seconds histogram",
	    "wsbeat_heartbeat_rtt_seconds_bucket{feed=\"alpha\",le=\"0.001\"} 1",
	    "wsbeat_heartbeat_rtt_seconds_bucket{feed=\"alpha\",le=\"0.0025\"} 1",
	    "wsbeat_heartbeat_rtt_seconds_bucket{feed=\"alpha\",le=\"0.005\"} 2",
	    "wsbeat_heartbeat_rtt_seconds_bucket{feed=\"alpha\",le=\"0.01\"} 2",
	    "wsbeat_heartbeat_rtt_seconds_bucket{feed=\"alpha\",le=\"1\"} 2",
	    "wsbeat_heartbeat_rtt_seconds_bucket{feed=\"alpha\",le=\"30\"} 2",
	    "wsbeat_heartbeat_rtt_seconds_bucket{feed=\"alpha\",le=\"+Inf\"} 4",
	    "wsbeat_heartbeat_rtt_seconds_sum{feed=\"alpha\"} 40.0085",
	    "wsbeat_heartbeat_rtt_seconds_count{feed=\"alpha\"} 4",
	    "wsbeat_heartbeat_rtt_seconds_bucket{feed=\"beta\",le=\"+Inf\"} 0",
	    "wsbeat_heartbeat_rtt_seconds_sum{feed=\"beta\"} 0",
	    "wsbeat_heartbeat_rtt_seconds_count{feed=\"beta\"} 0",
	};
	struct feed a, b;
	struct feed *feeds[] = {&a, &b};
	char *t;
	(void)state;

	make_feeds(&a, &b);
	t = render_prom(feeds, 2);
	for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++)
		assert_line(t, want[i]);
	assert_int_equal(count_prefix(t, "wsbeat_heartbeat_rtt_seconds_bucket{feed=\"alpha\""),
	                 FEED_RTT_BUCKETS + 1);
	free(t);
}

static void test_prometheus_timestamp(void **state)
{
	struct feed a, b;
	struct feed *feeds[] = {&a, &b};
	struct mbuf m = {0};
	(void)state;

	make_feeds(&a, &b);
	/* The last message came 1.5 s before now (monotonic), so 1.5 s before now (real). */
	assert_int_equal(metrics_render_prometheus(&m, feeds, 2, 1000 * SEC, 1764165600123456LL),
	                 0);
	assert_line(m.p, "wsbeat_last_message_timestamp_seconds{feed=\"alpha\"} 1764165598.623");
	assert_null(strstr(m.p, "wsbeat_last_message_timestamp_seconds{feed=\"beta\"}"));
	mbuf_free(&m);
}

static void test_label_escaping(void **state)
{
	struct cfg_feed odd = {.name = "a\"b\\c\nd", .url = {.display = "ws://h/"}};
	struct feed f = {.cfg = &odd, .state = FEED_OPEN};
	struct feed *feeds[] = {&f};
	char *t;
	(void)state;

	t = render_prom(feeds, 1);
	assert_line(t, "wsbeat_feed_up{feed=\"a\\\"b\\\\c\\nd\"} 1");
	assert_line(t,
	            "wsbeat_heartbeat_rtt_seconds_bucket{feed=\"a\\\"b\\\\c\\nd\",le=\"0.25\"} 0");
	free(t);
}

/* The build and the start time, with the label values escaped. */
static void test_process_families(void **state)
{
	struct mbuf b = {0};
	(void)state;

	metrics_process(&b, "4.1.6-\"x\"", 1764165600123456LL);
	assert_string_equal(b.p,
	                    "# HELP wsbeat_build_info Always 1: the version of wsbeat and of the "
	                    "libwebsockets it runs on.\n"
	                    "# TYPE wsbeat_build_info gauge\n"
	                    "wsbeat_build_info{version=\"" WSBEAT_VERSION
	                    "\",libwebsockets=\"4.1.6-\\\"x\\\"\"} 1\n"
	                    "# HELP process_start_time_seconds Start time of the process since "
	                    "the Unix epoch in seconds.\n"
	                    "# TYPE process_start_time_seconds gauge\n"
	                    "process_start_time_seconds 1764165600.123\n");
	mbuf_free(&b);
}

/* One line per hosts entry and gauge, after the feeds; nothing without entries. */
static void test_host_gauges(void **state)
{
	static const struct connq_limit lim[] = {{"*.okx.com", 3, 30}, {"127.0.0.1", 0, 4}};
	struct timerq tq;
	struct connq q;
	struct connq_hosts hs;
	struct connq_node n[3] = {{.host = 1}, {.host = 1}, {.host = 2}};
	struct mbuf b = {0};
	(void)state;

	tq_init(&tq, 0, NULL, NULL);
	assert_int_equal(connq_init(&q, &tq, 100, NULL, 0), 0);
	metrics_hosts(&b, &q);
	assert_int_equal(b.len, 0);
	assert_int_equal(connq_hosts_new(&hs, &tq, lim, 2), 0);
	connq_hosts_install(&q, &hs);
	connq_hosts_done(&q, 0);
	for (int i = 0; i < 3; i++)
		connq_push(&q, &n[i], 0);
	q.hosts.v[2].conns = 4;
	metrics_hosts(&b, &q);
	mbuf_put(&b, "", 1);
	assert_string_equal(
	    b.p,
	    "# HELP wsbeat_host_waiting Feeds waiting to connect to the hosts of a hosts entry.\n"
	    "# TYPE wsbeat_host_waiting gauge\n"
	    "wsbeat_host_waiting{host=\"*.okx.com\"} 2\n"
	    "wsbeat_host_waiting{host=\"127.0.0.1\"} 1\n"
	    "# HELP wsbeat_host_connections Connections open or in progress to the hosts of a "
	    "hosts entry.\n"
	    "# TYPE wsbeat_host_connections gauge\n"
	    "wsbeat_host_connections{host=\"*.okx.com\"} 0\n"
	    "wsbeat_host_connections{host=\"127.0.0.1\"} 4\n");
	q.hosts.v[2].conns = 0;
	mbuf_free(&b);
	connq_fini(&q);
	tq_fini(&tq);
}

static void test_status_roundtrip(void **state)
{
	struct feed a, b;
	struct feed *feeds[] = {&a, &b};
	struct mbuf m = {0};
	struct status_doc d;
	char err[200];
	(void)state;

	make_feeds(&a, &b);
	assert_int_equal(metrics_render_status(&m, feeds, 2, &now_1000), 0);
	assert_int_equal(status_client_parse(m.p, m.len, &d, err, sizeof(err)), 0);
	assert_int_equal(d.n_feeds, 2);
	assert_string_equal(d.feeds[0].name, "alpha");
	assert_string_equal(d.feeds[0].url, "wss://a.example.com/ws");
	assert_string_equal(d.feeds[0].state, "open");
	assert_float_equal(d.feeds[0].in_state_s, 12.5, 1e-9);
	assert_int_equal(d.feeds[0].attempt, 1);
	assert_float_equal(d.feeds[0].rtt_ms, 2.5, 1e-9);
	assert_float_equal(d.feeds[0].last_message_age_s, 1.5, 1e-9);
	assert_int_equal(d.feeds[0].connects, 3);
	assert_int_equal(d.feeds[0].reconnects, 2);
	/* Open again, it still says why its last connection ended, and when. */
	assert_string_equal(d.feeds[0].last_error, "the server closed the connection");
	assert_int_equal(d.feeds[0].close_code, 1001);
	assert_float_equal(d.feeds[0].last_error_age_s, 3600.0, 1e-9);
	assert_string_equal(d.feeds[1].state, "backoff");
	assert_int_equal(d.feeds[1].attempt, 4);
	assert_true(d.feeds[1].rtt_ms < 0);
	assert_true(d.feeds[1].last_message_age_s < 0);
	assert_int_equal(d.feeds[1].reconnects, 0);
	assert_string_equal(d.feeds[1].last_error, "connect: Connection refused");
	assert_float_equal(d.feeds[1].last_error_age_s, 60.0, 1e-9);
	assert_int_equal(d.feeds[1].close_code, 1006);
	assert_true(d.has_counts);
	assert_int_equal(d.counts[FEED_OPEN], 1);
	assert_int_equal(d.counts[FEED_BACKOFF], 1);
	assert_int_equal(d.counts[FEED_IDLE], 0);
	status_client_doc_fini(&d);
	mbuf_free(&m);
}

static void test_status_exact_and_escapes(void **state)
{
	struct cfg_feed c = {.name = "x", .url = {.display = "ws://h/"}};
	/* A quote, a backslash, a tab, an escape byte, valid UTF-8 and one invalid byte. */
	struct feed_detail detail = {.err = "say \"hi\"\\\t\x1b caf\xc3\xa9 \xff!"};
	struct feed f = {
	    .cfg = &c, .state = FEED_CLOSING, .state_since_us = 990 * SEC, .detail = &detail};
	struct feed *feeds[] = {&f};
	struct mbuf m = {0};
	struct status_doc d;
	char err[200];
	(void)state;

	f.stats.last_rtt_ms = -1;
	assert_int_equal(metrics_render_status(&m, feeds, 1, &now_1000), 0);
	assert_string_equal(
	    m.p,
	    "{\"version\":\"" WSBEAT_VERSION "\",\"generated_at\":\"2025-11-26T14:00:00.000Z\","
	    "\"shard\":null,\n"
	    "\"feeds\":[{\"name\":\"x\",\"url\":\"ws://h/\",\"state\":\"closing\","
	    "\"in_state_s\":10.000,\"attempt\":1,\"rtt_ms\":null,\"rtt_recent_ms\":[],"
	    "\"last_message_age_s\":null,\"connects\":0,\"reconnects\":0,"
	    "\"last_error\":\"say \\\"hi\\\"\\\\\\u0009\\u001b caf\xc3\xa9 \\ufffd!\","
	    "\"last_error_at\":\"2025-11-26T13:59:50.000Z\",\"last_error_age_s\":10.000,"
	    "\"close_code\":null}],\n\"counts\":{\"idle\":0,\"resolving\":0,\"connecting\":0,"
	    "\"open\":0,\"closing\":1,\"backoff\":0,\"stopped\":0}}\n");
	assert_int_equal(status_client_parse(m.p, m.len, &d, err, sizeof(err)), 0);
	assert_string_equal(d.feeds[0].last_error, "say \"hi\"\\\t\x1b caf\xc3\xa9 \xef\xbf\xbd!");
	status_client_doc_fini(&d);
	mbuf_free(&m);
}

static void test_parse_accepts(void **state)
{
	static const char doc[] =
	    " {\"version\": [1, 2.5e3, -0.25E-2, true, false, null, {\"a\": {\"b\": []}}],\n"
	    "  \"feeds\" : [ { \"name\" : \"\\u00e9\\ud83d\\ude00\\/\\b\\f\\n\\r\\t\", "
	    "\"extra\":{},"
	    "  \"state\":\"idle\", \"attempt\": 7, \"close_code\": 1000, \"rtt_ms\": 0 } ] } \r\n";
	struct status_doc d;
	char err[200];
	(void)state;

	assert_int_equal(status_client_parse(doc, strlen(doc), &d, err, sizeof(err)), 0);
	assert_int_equal(d.n_feeds, 1);
	assert_string_equal(d.feeds[0].name, "\xc3\xa9\xf0\x9f\x98\x80/\b\f\n\r\t");
	assert_int_equal(d.feeds[0].attempt, 7);
	assert_int_equal(d.feeds[0].close_code, 1000);
	assert_float_equal(d.feeds[0].rtt_ms, 0, 0);
	assert_null(d.feeds[0].url);
	assert_false(d.has_counts);
	status_client_doc_fini(&d);
}

static void test_parse_rejects(void **state)
{
	/* Syntax errors come with jansson's offset, shape errors with the member's path. */
	static const struct {
		const char *doc, *why;
	} bad[] = {
	    {"", "at offset 0: '[' or '{' expected"},
	    {"   ", "at offset 3: "},
	    {"[]", ": the document is not an object"},
	    {"{}", ": no \"feeds\" array"},
	    {"{\"feeds\":[]", "at offset 11: '}' expected"},
	    {"{\"feeds\":[]} x", "at offset 14: end of file expected"},
	    {"{\"feeds\":[],}", "at offset 13: "},
	    {"{\"feeds\":[{\"name\":\"a\",\"state\":\"open\"},]}", "at offset 39: "},
	    {"{\"feeds\":[{\"name\":\"a\"}]}", ": feeds[0] has no \"name\" or \"state\""},
	    {"{\"feeds\":[{\"state\":\"a\"}]}", ": feeds[0] has no \"name\" or \"state\""},
	    {"{\"feeds\":[{\"name\":\"a\nb\",\"state\":\"x\"}]}", "at offset 20: "},
	    {"{\"feeds\":[{\"name\":\"a\\q\",\"state\":\"x\"}]}", "invalid escape"},
	    {"{\"feeds\":[{\"name\":\"\\ud800\",\"state\":\"x\"}]}", "invalid Unicode"},
	    {"{\"feeds\":[{\"name\":\"\\udc00\",\"state\":\"x\"}]}", "invalid Unicode"},
	    {"{\"feeds\":[{\"name\":\"\\u12G4\",\"state\":\"x\"}]}", "invalid escape"},
	    {"{\"feeds\":[{\"name\":\"\\u0000\",\"state\":\"x\"}]}", "at offset 26: "},
	    {"{\"feeds\":[{\"name\":\"caf\xff\",\"state\":\"x\"}]}", "at offset "},
	    {"{\"feeds\":[{\"name\":\"abc", "at offset 22: "},
	    {"{\"feeds\":[{\"name\":1,\"state\":\"x\"}]}", ": feeds[0].name is not a string"},
	    {"{\"feeds\":[{\"name\":\"a\",\"state\":\"x\",\"attempt\":-1}]}",
	     ": feeds[0].attempt is not a count"},
	    {"{\"feeds\":[{\"name\":\"a\",\"state\":\"x\",\"attempt\":1.5}]}",
	     ": feeds[0].attempt is not a count"},
	    {"{\"feeds\":[{\"name\":\"a\",\"state\":\"x\"},{\"name\":\"b\",\"state\":\"x\","
	     "\"connects\":true}]}",
	     ": feeds[1].connects is not a count"},
	    {"{\"feeds\":[{\"name\":\"a\",\"state\":\"x\",\"close_code\":70000}]}",
	     ": feeds[0].close_code is out of range"},
	    {"{\"feeds\":[{\"name\":\"a\",\"state\":\"x\",\"rtt_ms\":\"1\"}]}",
	     ": feeds[0].rtt_ms is not a number"},
	    {"{\"feeds\":[1]}", ": feeds[0] is not an object"},
	    {"{\"feeds\":[],\"x\":01}", "at offset 17: "},
	    {"{\"feeds\":[],\"x\":1.}", "at offset 18: "},
	    {"{\"feeds\":[],\"x\":-}", "at offset 17: "},
	    {"{\"feeds\":[],\"x\":1e}", "at offset 18: "},
	    {"{\"feeds\":[],\"x\":.5}", "at offset 17: "},
	    {"{\"feeds\":[],\"x\":+1}", "at offset 17: "},
	    {"{\"feeds\":[],\"x\":NaN}", "at offset 19: "},
	    {"{\"feeds\":[],\"x\":nul}", "at offset 19: "},
	    {"{\"feeds\":[],\"x\":tru}", "at offset 19: "},
	    {"{\"feeds\":[],\"x\":'a'}", "at offset 17: "},
	    {"{\"feeds\":[] \"x\":1}", "at offset 15: "},
	    {"{\"feeds\" [] }", "at offset 10: ':' expected"},
	    {"{\"feeds\":[],\"feeds\":[]}", "duplicate object key"},
	    {"{\"feeds\":[{\"name\":\"a\",\"name\":\"b\",\"state\":\"x\"}]}",
	     "duplicate object key"},
	    {"{\"feeds\":[],\"counts\":{\"open\":\"1\"}}", ": counts.open is not a count"},
	    {"{\"feeds\":[],\"counts\":{\"open\":-1}}", ": counts.open is not a count"},
	    {"{\"feeds\":[],\"counts\":null}", ": \"counts\" is not an object"},
	    {"{\"feeds\":{}}", ": no \"feeds\" array"},
	    {"{\"feeds\":null}", ": no \"feeds\" array"},
	    {"{feeds:[]}", "at offset 6: "},
	};
	char deep[5000], err[200];
	struct status_doc d;
	(void)state;

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		err[0] = '\0';
		if (status_client_parse(bad[i].doc, strlen(bad[i].doc), &d, err, sizeof(err)) == 0)
			fail_msg("accepted: %s", bad[i].doc);
		if (strncmp(err, "malformed status JSON", 21) != 0 || !strstr(err, bad[i].why))
			fail_msg("%s: got \"%s\", want \"%s\"", bad[i].doc, err, bad[i].why);
		assert_null(d.feeds);
		assert_int_equal(d.n_feeds, 0);
	}
	/* Nesting is bounded (jansson stops at 2048), so hostile input cannot exhaust the stack. */
	memset(deep, '[', sizeof(deep));
	memcpy(deep, "{\"x\":", 5);
	assert_int_equal(status_client_parse(deep, sizeof(deep), &d, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "depth"));
	/* The length bounds the input: no NUL terminator is needed or trusted. */
	assert_int_equal(status_client_parse("{\"feeds\":[]}xyz", 12, &d, err, sizeof(err)), 0);
	assert_int_equal(status_client_parse("{\"feeds\":[]}", 11, &d, err, sizeof(err)), -1);
}

static void test_duration(void **state)
{
	static const struct {
		double s;
		const char *want;
	} cases[] = {{0, "0s"},       {-5, "0s"},        {3, "3s"},        {59.9, "59s"},
	             {60, "1m00s"},   {312, "5m12s"},    {3599, "59m59s"}, {3600, "1h00m"},
	             {7380, "2h03m"}, {86399, "23h59m"}, {86400, "1d00h"}, {370800, "4d07h"}};
	char buf[32];
	(void)state;

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		status_client_duration(cases[i].s, buf, sizeof(buf));
		assert_string_equal(buf, cases[i].want);
	}
}

static const char table_json[] =
    "{\"feeds\":["
    "{\"name\":\"binance\",\"url\":\"wss://x/\",\"state\":\"open\",\"in_state_s\":312.5,"
    "\"attempt\":1,\"rtt_ms\":1.234,\"last_message_age_s\":0.2,\"connects\":3,\"reconnects\":2,"
    "\"last_error\":null,\"close_code\":null},"
    "{\"name\":\"okx\",\"url\":\"wss://y/\",\"state\":\"backoff\",\"in_state_s\":7380,"
    "\"attempt\":4,\"rtt_ms\":null,\"last_message_age_s\":null,\"connects\":0,\"reconnects\":0,"
    "\"last_error\":\"connect: refused\",\"close_code\":1006},"
    "{\"name\":\"k\",\"url\":\"ws://z/\",\"state\":\"connecting\",\"in_state_s\":3,"
    "\"attempt\":2,\"rtt_ms\":45.6,\"last_message_age_s\":90061,\"connects\":1,\"reconnects\":0,"
    "\"last_error\":\"bad\\u001b[2Jbyte\",\"close_code\":null}],"
    "\"counts\":{\"idle\":0,\"resolving\":0,\"connecting\":1,\"open\":1,\"closing\":0,"
    "\"backoff\":1,\"stopped\":0}}";

static void test_table(void **state)
{
	static const char want[] =
	    "NAME     STATE       FOR    ATTEMPT  RTT    LAST-MSG  RECONN  LAST-ERROR\n"
	    "binance  open        5m12s  1        1.2ms  0s        2       -\n"
	    "okx      backoff     2h03m  4        -      -         0       connect: refused (close "
	    "1006)\n"
	    "k        connecting  3s     2        46ms   1d01h     0       bad?[2Jbyte\n"
	    "1/3 feeds open, 1 connecting, 1 in backoff\n";
	struct mbuf m = {0};
	char err[200];
	(void)state;

	assert_int_equal(
	    status_client_render(table_json, strlen(table_json), false, &m, err, sizeof(err)), 0);
	assert_string_equal(m.p, want);
	mbuf_free(&m);
}

static void test_table_color_and_summary(void **state)
{
	static const char doc[] = "{\"feeds\":[{\"name\":\"a\",\"state\":\"open\"},"
	                          "{\"name\":\"b\",\"state\":\"stopped\"},"
	                          "{\"name\":\"c\",\"state\":\"backoff\"}]}";
	struct mbuf m = {0};
	char err[200];
	(void)state;

	assert_int_equal(status_client_render(doc, strlen(doc), true, &m, err, sizeof(err)), 0);
	assert_non_null(strstr(m.p, "\na     \033[32mopen\033[0m     0s"));
	assert_non_null(strstr(m.p, "\nb     \033[31mstopped\033[0m  0s"));
	assert_non_null(strstr(m.p, "\nc     \033[33mbackoff\033[0m  0s"));
	/* Without a "counts" object the summary counts the listed feeds. */
	assert_non_null(strstr(m.p, "\n1/3 feeds open, 1 in backoff, 1 stopped\n"));
	mbuf_free(&m);
	assert_int_equal(status_client_render("{\"feeds\":[]}", 12, false, &m, err, sizeof(err)),
	                 0);
	assert_string_equal(m.p, "NAME  STATE  FOR  ATTEMPT  RTT  LAST-MSG  RECONN  LAST-ERROR\n"
	                         "0/0 feeds open\n");
	mbuf_free(&m);
	assert_int_equal(status_client_render("{\"feeds\":", 9, false, &m, err, sizeof(err)), -1);
	mbuf_free(&m);
}

static void test_ten_thousand_feeds(void **state)
{
	enum { N = 10000 };
	struct cfg_feed *cfgs = calloc(N, sizeof(*cfgs));
	struct feed *fs = calloc(N, sizeof(*fs)), **ptrs = calloc(N, sizeof(*ptrs));
	char(*names)[16] = calloc(N, sizeof(*names));
	struct mbuf prom = {0}, st = {0}, tbl = {0};
	struct status_doc d;
	char err[200];
	(void)state;

	assert_non_null(cfgs);
	assert_non_null(fs);
	assert_non_null(ptrs);
	assert_non_null(names);
	for (size_t i = 0; i < N; i++) {
		snprintf(names[i], sizeof(names[i]), "feed%05zu", i);
		cfgs[i] = (struct cfg_feed){.name = names[i], .url = {.display = "ws://h/"}};
		fs[i] = (struct feed){.cfg = &cfgs[i], .state = i % 10 ? FEED_OPEN : FEED_BACKOFF};
		fs[i].stats.last_rtt_ms = -1;
		ptrs[i] = &fs[i];
	}
	assert_int_equal(metrics_render_prometheus(&prom, ptrs, N, 1000 * SEC, 1764165600 * SEC),
	                 0);
	assert_int_equal(count_prefix(prom.p, "wsbeat_feed_up{"), N);
	assert_int_equal(count_prefix(prom.p, "wsbeat_heartbeat_rtt_seconds_bucket{"),
	                 N * (FEED_RTT_BUCKETS + 1));
	assert_line(prom.p, "wsbeat_feeds{state=\"open\"} 9000");
	assert_line(prom.p, "wsbeat_feeds{state=\"backoff\"} 1000");
	assert_int_equal(metrics_render_status(&st, ptrs, N, &now_1000), 0);
	assert_int_equal(status_client_parse(st.p, st.len, &d, err, sizeof(err)), 0);
	assert_int_equal(d.n_feeds, N);
	assert_string_equal(d.feeds[N - 1].name, "feed09999");
	assert_int_equal(d.counts[FEED_OPEN], 9000);
	status_client_doc_fini(&d);
	assert_int_equal(status_client_render(st.p, st.len, false, &tbl, err, sizeof(err)), 0);
	assert_int_equal(count_prefix(tbl.p, "feed"), N);
	assert_non_null(strstr(tbl.p, "\n9000/10000 feeds open, 1000 in backoff\n"));
	mbuf_free(&prom);
	mbuf_free(&st);
	mbuf_free(&tbl);
	free(names);
	free(ptrs);
	free(fs);
	free(cfgs);
}

/* A one-shot HTTP server in a child process; returns its port. */
static int serve_once(const char *response, pid_t *pid)
{
	struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	socklen_t sl = sizeof(sa);
	int ls = socket(AF_INET, SOCK_STREAM, 0);

	assert_true(ls >= 0);
	assert_int_equal(bind(ls, (struct sockaddr *)&sa, sizeof(sa)), 0);
	assert_int_equal(listen(ls, 1), 0);
	assert_int_equal(getsockname(ls, (struct sockaddr *)&sa, &sl), 0);
	*pid = fork();
	assert_true(*pid >= 0);
	if (*pid == 0) {
		char req[1024];
		int c = accept(ls, NULL, NULL);
		ssize_t n = recv(c, req, sizeof(req) - 1, 0);

		alarm(10);
		if (n > 0 && strncmp(req, "GET /status HTTP/1.0\r\n", 22) == 0)
			(void)!write(c, response, strlen(response));
		/* With a Content-Length the server stays open: the client must stop by itself. */
		while (strstr(response, "Content-Length") && recv(c, req, sizeof(req), 0) > 0)
			continue;
		_exit(0);
	}
	close(ls);
	return ntohs(sa.sin_port);
}

static int run_against(const char *response, char *out, size_t outlen, char *err, size_t el)
{
	char addr[64];
	pid_t pid;
	int rc, st;
	FILE *f = fmemopen(out, outlen, "w");

	snprintf(addr, sizeof(addr), "127.0.0.1:%d", serve_once(response, &pid));
	rc = status_client_run(addr, f, false, err, el);
	fclose(f);
	waitpid(pid, &st, 0);
	return rc;
}

static void test_run(void **state)
{
	static const char body[] = "{\"feeds\":[{\"name\":\"a\",\"state\":\"open\"}]}";
	char resp[512], out[512] = "", err[200];
	(void)state;

	snprintf(
	    resp, sizeof(resp),
	    "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %zu\r\n\r\n%s",
	    strlen(body), body);
	assert_int_equal(run_against(resp, out, sizeof(out), err, sizeof(err)), 0);
	assert_string_equal(out, "NAME  STATE  FOR  ATTEMPT  RTT  LAST-MSG  RECONN  LAST-ERROR\n"
	                         "a     open   0s   0        -    -         0       -\n"
	                         "1/1 feeds open\n");
	/* Without a Content-Length the body ends when the server closes. */
	memset(out, 0, sizeof(out));
	snprintf(resp, sizeof(resp), "HTTP/1.0 200 OK\r\n\r\n%s", body);
	assert_int_equal(run_against(resp, out, sizeof(out), err, sizeof(err)), 0);
	assert_non_null(strstr(out, "\n1/1 feeds open\n"));
	assert_int_equal(run_against("HTTP/1.0 404 Not Found\r\nContent-Length: 0\r\n\r\n", out,
	                             sizeof(out), err, sizeof(err)),
	                 -1);
	assert_string_equal(err, "server answered HTTP/1.0 404 Not Found");
	assert_int_equal(status_client_run("nonsense", stdout, false, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "bad metrics address"));
}

static void test_run_refused(void **state)
{
	struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	socklen_t sl = sizeof(sa);
	int s = socket(AF_INET, SOCK_STREAM, 0);
	char addr[64], err[200];
	(void)state;

	/* A port that was just free is almost surely still closed. */
	assert_int_equal(bind(s, (struct sockaddr *)&sa, sizeof(sa)), 0);
	assert_int_equal(getsockname(s, (struct sockaddr *)&sa, &sl), 0);
	close(s);
	snprintf(addr, sizeof(addr), "127.0.0.1:%d", ntohs(sa.sin_port));
	assert_int_equal(status_client_run(addr, stdout, false, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "cannot connect to 127.0.0.1:"));
	assert_non_null(strstr(err, "Connection refused"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_mbuf),
	    cmocka_unit_test(test_prometheus_families),
	    cmocka_unit_test(test_prometheus_histogram),
	    cmocka_unit_test(test_prometheus_timestamp),
	    cmocka_unit_test(test_label_escaping),
	    cmocka_unit_test(test_host_gauges),
	    cmocka_unit_test(test_status_roundtrip),
	    cmocka_unit_test(test_process_families),
	    cmocka_unit_test(test_status_exact_and_escapes),
	    cmocka_unit_test(test_parse_accepts),
	    cmocka_unit_test(test_parse_rejects),
	    cmocka_unit_test(test_duration),
	    cmocka_unit_test(test_table),
	    cmocka_unit_test(test_table_color_and_summary),
	    cmocka_unit_test(test_ten_thousand_feeds),
	    cmocka_unit_test(test_run),
	    cmocka_unit_test(test_run_refused),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
