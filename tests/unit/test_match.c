/* Unit tests for match: every form against real exchanges' keep-alive messages, lists (all
 * must hold), how VALUE compares with JSON strings, numbers, true/false/null, array and object
 * paths, malformed JSON, the raw-byte pre-filter (a message that cannot match is never parsed;
 * escapes cannot hide a match), binary data and match_equal. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "wsbeat/match.h"

/* Real keep-alive answers, as the exchanges send them. */
#define BYBIT "{\"success\":true,\"ret_msg\":\"pong\",\"conn_id\":\"x\",\"op\":\"ping\"}"
#define KRAKEN                                                                                     \
	"{\"method\":\"pong\",\"req_id\":3,\"time_in\":\"2023-09-24T14:10:23.799685Z\","           \
	"\"time_out\":\"2023-09-24T14:10:23.799712Z\"}"
#define HTX      "{\"ping\":1492420473027}"
#define BITFINEX "[17470,\"hb\"]"
#define POLYGON  "[{\"ev\":\"status\",\"status\":\"auth_success\",\"message\":\"authenticated\"}]"
#define TRADE    "{\"topic\":\"publicTrade.BTCUSDT\",\"data\":[{\"p\":\"16578.50\",\"v\":\"0.001\"}]}"

#define SECRET "m4tch-s3cret-value"

static char cred_dir[64];
static struct tmpl_env env;

static int setup(void **state)
{
	char path[128];
	FILE *f;

	(void)state;
	strcpy(cred_dir, "/tmp/wsbeat-match-cred-XXXXXX");
	if (!mkdtemp(cred_dir))
		return -1;
	snprintf(path, sizeof(path), "%s/token", cred_dir);
	f = fopen(path, "w");
	if (!f || fputs(SECRET "\n", f) < 0 || fclose(f) != 0)
		return -1;
	env = (struct tmpl_env){.cred_dir = cred_dir};
	setenv("WSBEAT_TEST_MATCH", SECRET, 1);
	return 0;
}

static int teardown(void **state)
{
	char path[128];

	(void)state;
	snprintf(path, sizeof(path), "%s/token", cred_dir);
	unlink(path);
	return rmdir(cred_dir);
}

static struct match *compile_n(const char *const *srcs, size_t n)
{
	char err[256] = "";
	struct match *m = NULL;

	if (match_compile(srcs, n, TMPL_SEQ | TMPL_SECRET, &env, &m, err, sizeof(err)) != 0)
		fail_msg("%s: %s", n ? srcs[0] : "(none)", err);
	assert_non_null(m);
	return m;
}

static struct match *compile1(const char *src)
{
	return compile_n(&src, 1);
}

/* Tests len bytes of data; *parsed tells whether the message was parsed as JSON. */
static bool test_bytes(const struct match *m, const void *data, size_t len, uint64_t seq,
                       bool *parsed)
{
	struct match_msg mm;
	bool r;

	match_msg_init(&mm, data, len);
	r = match_test(m, &mm, seq);
	if (parsed)
		*parsed = mm.parsed;
	match_msg_fini(&mm);
	return r;
}

static bool matches_seq(const char *src, const char *msg, uint64_t seq)
{
	struct match *m = compile1(src);
	bool r = test_bytes(m, msg, strlen(msg), seq, NULL);

	match_free(m);
	return r;
}

static bool matches(const char *src, const char *msg)
{
	return matches_seq(src, msg, 1);
}

#define YES(src, msg)                                                                              \
	do {                                                                                       \
		if (!matches(src, msg))                                                            \
			fail_msg("%s should match %s", src, msg);                                  \
	} while (0)
#define NO(src, msg)                                                                               \
	do {                                                                                       \
		if (matches(src, msg))                                                             \
			fail_msg("%s should not match %s", src, msg);                              \
	} while (0)

static void test_exchanges(void **state)
{
	(void)state;
	YES("json:op=ping", BYBIT);
	YES("json:ret_msg=pong", BYBIT);
	YES("json:success=true", BYBIT);
	NO("json:success=false", BYBIT);
	YES("json:conn_id", BYBIT);
	NO("json:op=pong", BYBIT);

	YES("json:method=pong", KRAKEN);
	YES("json:req_id=3", KRAKEN);
	NO("json:req_id=4", KRAKEN);
	YES("json:time_out=2023-09-24T14:10:23.799712Z", KRAKEN);

	YES("json:ping", HTX);
	YES("json:ping=1492420473027", HTX);
	NO("json:pong", HTX);

	YES("json:1=hb", BITFINEX);
	YES("json:0=17470", BITFINEX);
	NO("json:2", BITFINEX);
	NO("json:1=hb", "[17470,\"te\",[1,2]]");

	YES("json:0.status=auth_success", POLYGON);
	NO("json:0.status=auth_failed", POLYGON);

	YES("pong", "pong"); /* OKX */
	NO("pong", "pong ");
	NO("pong", "PONG");
	NO("pong", "\"pong\"");
	NO("pong", "");
}

static void test_forms(void **state)
{
	(void)state;
	YES("equals:pong", "pong");
	NO("equals:pong", "pongg");
	NO("equals:pong", "pon");
	YES("equals:", "");
	NO("equals:", "x");
	YES("equals:json:op=x", "json:op=x"); /* the prefix names the form only once */
	YES("contains:pong", "{\"op\":\"pong\"}");
	YES("contains:pong", "pong");
	NO("contains:pong", "pon");
	YES("contains:", "");
	YES("contains:", "anything");
	YES("contains:\"op\":\"pong\"", "{\"op\":\"pong\"}");
	NO("contains:\"op\":\"pong\"", "{\"op\": \"pong\"}");
	/* anything without a known prefix is an exact string, colons and all */
	YES("ping:1", "ping:1");
	NO("ping:1", "ping:12");
	YES("JSON:op", "JSON:op");
	NO("JSON:op", "{\"op\":1}");
	YES("", "");
	NO("", " ");
	/* json:PATH is presence, whatever the value (null and false included) */
	YES("json:a", "{\"a\":null}");
	YES("json:a", "{\"a\":false}");
	YES("json:a", "{\"a\":{}}");
	NO("json:a", "{\"b\":{\"a\":1}}");
	/* the first '=' ends the path */
	YES("json:a=b=c", "{\"a\":\"b=c\"}");
	NO("json:a=b=c", "{\"a=b\":\"c\"}");
}

static void test_lists(void **state)
{
	const char *const srcs[] = {"json:type=pong", "json:id=${seq}"};
	struct match *m = compile_n(srcs, 2);
	const char *a = "{\"type\":\"pong\",\"id\":\"5\"}";

	(void)state;
	assert_string_equal(m->text, "json:type=pong and json:id=${seq}");
	assert_int_equal(m->n, 2);
	assert_true(m->json);
	assert_true(m->dynamic);
	assert_true(test_bytes(m, a, strlen(a), 5, NULL));
	assert_false(test_bytes(m, a, strlen(a), 4, NULL));
	a = "{\"type\":\"ping\",\"id\":\"5\"}";
	assert_false(test_bytes(m, a, strlen(a), 5, NULL));
	a = "{\"type\":\"pong\"}";
	assert_false(test_bytes(m, a, strlen(a), 5, NULL));
	match_free(m);

	/* mixed forms */
	const char *const mixed[] = {"contains:pong", "json:op", "equals:{\"op\":\"pong\"}"};
	m = compile_n(mixed, 3);
	assert_true(test_bytes(m, "{\"op\":\"pong\"}", 13, 1, NULL));
	assert_false(test_bytes(m, "{\"op\":\"pong\" }", 14, 1, NULL));
	match_free(m);

	/* an empty list holds for every message */
	m = compile_n(NULL, 0);
	assert_string_equal(m->text, "");
	assert_true(test_bytes(m, "x", 1, 1, NULL));
	assert_true(test_bytes(m, "", 0, 1, NULL));
	match_free(m);
	match_free(NULL);
}

struct cmp {
	const char *src, *msg;
	uint64_t seq;
	bool want;
};

static void run_cmp(const struct cmp *c, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (matches_seq(c[i].src, c[i].msg, c[i].seq) != c[i].want)
			fail_msg("%s on %s (seq %llu): want %s", c[i].src, c[i].msg,
			         (unsigned long long)c[i].seq, c[i].want ? "match" : "no match");
}

static void test_values(void **state)
{
	static const struct cmp c[] = {
	    /* ${seq}: a number numerically, a string as text */
	    {"json:id=${seq}", "{\"id\":7}", 7, true},
	    {"json:id=${seq}", "{\"id\":\"7\"}", 7, true},
	    {"json:id=${seq}", "{\"id\":7}", 6, false},
	    {"json:id=${seq}", "{\"id\":\"7\"}", 6, false},
	    {"json:id=${seq}", "{\"id\":7.0}", 7, true},
	    {"json:id=${seq}", "{\"id\":7e0}", 7, true},
	    {"json:id=${seq}", "{\"id\":70}", 7, false},
	    {"json:id=${seq}", "{\"id\":\"07\"}", 7, false},
	    {"json:id=${seq}", "{\"id\":\"7.0\"}", 7, false},
	    {"json:id=${seq}", "{\"id\":true}", 1, false},
	    {"json:id=${seq}", "{\"id\":null}", 1, false},
	    {"json:id=${seq}", "{\"id\":[7]}", 7, false},
	    {"json:id=${seq}", "{\"id\":18446744073709551615}", UINT64_MAX, false},
	    /* numbers written in VALUE */
	    {"json:a=7.0", "{\"a\":7}", 1, true},
	    {"json:a=1e3", "{\"a\":1000}", 1, true},
	    {"json:a=1E3", "{\"a\":1000.0}", 1, true},
	    {"json:a=-0", "{\"a\":0}", 1, true},
	    {"json:a=0.1", "{\"a\":0.1}", 1, true},
	    {"json:a=0.10", "{\"a\":0.1}", 1, true},
	    {"json:a=0.1", "{\"a\":0.2}", 1, false},
	    {"json:a=9223372036854775807", "{\"a\":9223372036854775807}", 1, true},
	    {"json:a=9223372036854775806", "{\"a\":9223372036854775807}", 1, false},
	    {"json:a=-9223372036854775808", "{\"a\":-9223372036854775808}", 1, true},
	    {"json:a=0x10", "{\"a\":16}", 1, false},
	    {"json:a= 7", "{\"a\":7}", 1, false},
	    {"json:a=7 ", "{\"a\":7}", 1, false},
	    {"json:a=inf", "{\"a\":1e308}", 1, false},
	    {"json:a=nan", "{\"a\":\"nan\"}", 1, true},
	    {"json:a=", "{\"a\":0}", 1, false},
	    /* true, false, null: literally, or as the text of a string */
	    {"json:a=true", "{\"a\":true}", 1, true},
	    {"json:a=true", "{\"a\":\"true\"}", 1, true},
	    {"json:a=true", "{\"a\":1}", 1, false},
	    {"json:a=true", "{\"a\":false}", 1, false},
	    {"json:a=True", "{\"a\":true}", 1, false},
	    {"json:a=false", "{\"a\":false}", 1, true},
	    {"json:a=false", "{\"a\":0}", 1, false},
	    {"json:a=false", "{\"a\":null}", 1, false},
	    {"json:a=null", "{\"a\":null}", 1, true},
	    {"json:a=null", "{\"a\":\"null\"}", 1, true},
	    {"json:a=null", "{}", 1, false},
	    {"json:a=1", "{\"a\":true}", 1, false},
	    /* strings as text, bytewise */
	    {"json:a=", "{\"a\":\"\"}", 1, true},
	    {"json:a=", "{\"a\":null}", 1, false},
	    {"json:a=pong", "{\"a\":\"Pong\"}", 1, false},
	    {"json:a=caf\xc3\xa9", "{\"a\":\"caf\\u00e9\"}", 1, true},
	    {"json:a=caf\xc3\xa9", "{\"a\":\"caf\xc3\xa9\"}", 1, true},
	    /* objects and arrays never equal a VALUE */
	    {"json:a=x", "{\"a\":{\"x\":1}}", 1, false},
	    {"json:a=x", "{\"a\":[\"x\"]}", 1, false},
	    {"json:a={}", "{\"a\":{}}", 1, false},
	};

	(void)state;
	run_cmp(c, sizeof(c) / sizeof(c[0]));
}

static void test_paths(void **state)
{
	static const struct cmp c[] = {
	    {"json:1=hb", BITFINEX, 1, true},
	    {"json:1", BITFINEX, 1, true},
	    {"json:01", BITFINEX, 1, false}, /* not an index */
	    {"json:1.x", BITFINEX, 1, false},
	    {"json:data.0.p=16578.50", TRADE, 1, true},
	    {"json:data.0.p=16578.5", TRADE, 1, false}, /* a string: text, not number */
	    {"json:data.1.p", TRADE, 1, false},
	    {"json:data.p", TRADE, 1, false},
	    {"json:data.0.v=0.001", TRADE, 1, true},
	    {"json:0=zero", "{\"0\":\"zero\"}", 1, true},
	    {"json:a.1=one", "{\"a\":{\"1\":\"one\"}}", 1, true},
	    {"json:a.1=one", "{\"a\":[\"zero\",\"one\"]}", 1, true},
	    {"json:a.b.c", "{\"a\":{\"b\":{\"c\":0}}}", 1, true},
	    {"json:a.b.c", "{\"a\":{\"b\":0}}", 1, false},
	    {"json:a.b.c", "{\"a\":\"b.c\"}", 1, false},
	    {"json:a", "[{\"a\":1}]", 1, false},
	    {"json:0", "7", 1, false},
	};

	(void)state;
	run_cmp(c, sizeof(c) / sizeof(c[0]));
}

static void test_not_json(void **state)
{
	(void)state;
	NO("json:op", "{\"op\":");
	NO("json:op", "{\"op\":1} trailing");
	NO("json:op", "{\"op\":1}{\"op\":2}");
	NO("json:op=pong", "{op:\"pong\"}");
	NO("json:op=pong", "{\"op\":'pong'}");
	NO("json:op", "{\"op\":\"\xff\"}"); /* not UTF-8 */
	NO("json:op", "");
	NO("json:op", "pong");
	/* a bare JSON scalar is a document, with no keys */
	NO("json:0", "\"op\"");
	/* contains: does not care */
	YES("contains:\"op\"", "{\"op\":");
	/* a NUL inside a JSON string is fine */
	YES("json:op", "{\"op\":\"a\\u0000b\"}");
}

static void test_prefilter(void **state)
{
	struct match *m = compile1("json:op=pong");
	bool parsed;
	const char *s;

	(void)state;
	/* busy data lacking the key is rejected from its bytes */
	assert_false(test_bytes(m, TRADE, strlen(TRADE), 1, &parsed));
	assert_false(parsed);
	s = "{\"x\":\"pong\"}"; /* the value but not the key */
	assert_false(test_bytes(m, s, strlen(s), 1, &parsed));
	assert_false(parsed);
	s = "{\"xop\":\"pong\",\"opx\":1}"; /* op, but never as "op" */
	assert_false(test_bytes(m, s, strlen(s), 1, &parsed));
	assert_false(parsed);
	s = "{\"op\":\"ping\"}"; /* the key but not the value */
	assert_false(test_bytes(m, s, strlen(s), 1, &parsed));
	assert_false(parsed);
	s = "{\"op\":\"pong\"}";
	assert_true(test_bytes(m, s, strlen(s), 1, &parsed));
	assert_true(parsed);
	/* escapes spell the key or the value otherwise: still a match */
	s = "{\"\\u006fp\":\"pong\"}";
	assert_true(test_bytes(m, s, strlen(s), 1, &parsed));
	assert_true(parsed);
	s = "{\"op\":\"p\\u006fng\"}";
	assert_true(test_bytes(m, s, strlen(s), 1, NULL));
	s = "{\"\\u006f\\u0070\":\"\\u0070ong\"}";
	assert_true(test_bytes(m, s, strlen(s), 1, NULL));
	match_free(m);

	/* a number VALUE has no needle (1e3 is 1000); an index has none (it is no key) */
	m = compile1("json:1=hb");
	assert_false(test_bytes(m, "[1,\"te\"]", 8, 1, &parsed));
	assert_false(parsed);
	assert_true(test_bytes(m, "[1,\"hb\"]", 8, 1, NULL));
	match_free(m);
	YES("json:id=1000", "{\"id\":1e3}");
	YES("json:id=1e3", "{\"id\":1000}");
	YES("json:a\"b", "{\"a\\\"b\":1}"); /* a key that needs escaping is no needle */
	YES("json:a=x\"y", "{\"a\":\"x\\\"y\"}");

	/* contains: never parses, whatever it finds */
	m = compile1("contains:pong");
	assert_false(test_bytes(m, TRADE, strlen(TRADE), 1, &parsed));
	assert_false(parsed);
	assert_true(test_bytes(m, "{\"op\":\"pong\"}", 13, 1, &parsed));
	assert_false(parsed);
	match_free(m);
}

/* One parse serves every clause and every match tested on the same message. */
static void test_parse_once(void **state)
{
	const char *const srcs[] = {"json:method=pong", "json:req_id=3", "json:time_in"};
	struct match *a = compile_n(srcs, 3), *b = compile1("json:method");
	struct match_msg mm;
	json_t *doc;

	(void)state;
	match_msg_init(&mm, KRAKEN, strlen(KRAKEN));
	assert_int_equal(mm.has_backslash, -1);
	assert_true(match_test(a, &mm, 1));
	assert_true(mm.parsed);
	doc = mm.doc;
	assert_non_null(doc);
	assert_true(match_test(b, &mm, 1));
	assert_ptr_equal(mm.doc, doc);
	assert_ptr_equal(match_msg_json(&mm), doc);
	match_msg_fini(&mm);
	assert_null(mm.doc);

	/* not JSON: parsed once, stays NULL */
	match_msg_init(&mm, "pong", 4);
	assert_null(match_msg_json(&mm));
	assert_true(mm.parsed);
	assert_false(match_test(b, &mm, 1));
	match_msg_fini(&mm);
	match_free(a);
	match_free(b);
}

static void test_binary(void **state)
{
	static const char data[] = "\x00\x01pong\x00\xff\xfe\x00";
	size_t len = sizeof(data) - 1;
	struct match *m;

	(void)state;
	m = compile1("contains:pong");
	assert_true(test_bytes(m, data, len, 1, NULL));
	assert_false(test_bytes(m, data, 4, 1, NULL));
	match_free(m);
	m = compile1("contains:\xff\xfe");
	assert_true(test_bytes(m, data, len, 1, NULL));
	match_free(m);
	m = compile1("equals:pong");
	assert_true(test_bytes(m, "pong", 4, 1, NULL));
	assert_false(test_bytes(m, "pong\0", 5, 1, NULL));
	assert_false(test_bytes(m, "\0pong", 5, 1, NULL));
	assert_false(test_bytes(m, data, len, 1, NULL));
	match_free(m);
	m = compile1("pong");
	assert_false(test_bytes(m, data + 2, 5, 1, NULL));
	assert_true(test_bytes(m, data + 2, 4, 1, NULL));
	match_free(m);
	m = compile1("contains:");
	assert_true(test_bytes(m, data, len, 1, NULL));
	assert_true(test_bytes(m, NULL, 0, 1, NULL));
	match_free(m);
	/* a NUL outside a JSON string is not JSON */
	m = compile1("json:a");
	assert_false(test_bytes(m, "{\"a\":1}\0", 8, 1, NULL));
	assert_true(test_bytes(m, "{\"a\":1}", 7, 1, NULL));
	match_free(m);
}

static void test_templates_in_values(void **state)
{
	struct match *m;

	(void)state;
	m = compile1("contains:\"seq\":${seq},");
	assert_true(m->dynamic);
	assert_false(m->json);
	assert_true(test_bytes(m, "{\"seq\":12,\"x\":1}", 17, 12, NULL));
	assert_false(test_bytes(m, "{\"seq\":12,\"x\":1}", 17, 1, NULL));
	match_free(m);
	m = compile1("equals:pong ${seq}");
	assert_true(test_bytes(m, "pong 3", 6, 3, NULL));
	assert_false(test_bytes(m, "pong 3", 6, 33, NULL));
	match_free(m);
	m = compile1("${seq}");
	assert_true(test_bytes(m, "18446744073709551615", 20, UINT64_MAX, NULL));
	match_free(m);
	/* $$ in a value */
	YES("equals:$$5", "$5");
	YES("json:a=$$", "{\"a\":\"$\"}");
	/* secret sources are read at compile time */
	m = compile1("json:token=${credential:token}");
	assert_false(m->dynamic);
	assert_true(m->json);
	assert_null(strstr(m->text, SECRET));
	assert_true(test_bytes(m, "{\"token\":\"" SECRET "\"}", 30, 1, NULL));
	match_free(m);
	YES("equals:${env:WSBEAT_TEST_MATCH}", SECRET);
	m = compile1("json:a");
	assert_false(m->dynamic);
	assert_true(m->json);
	match_free(m);
}

static void compile_fails(const char *const *srcs, size_t n, unsigned allowed, const char *want)
{
	char err[256] = "";
	struct match *m = (struct match *)1;

	if (match_compile(srcs, n, allowed, &env, &m, err, sizeof(err)) == 0)
		fail_msg("%s: compiled, expected \"%s\"", srcs[n - 1], want);
	assert_null(m);
	if (!strstr(err, want))
		fail_msg("%s: got \"%s\", want \"%s\"", srcs[n - 1], err, want);
	assert_null(strstr(err, SECRET));
}

static void test_compile_errors(void **state)
{
	static const struct {
		const char *src, *why;
	} bad[] = {
	    {"json:", "empty JSON path"},
	    {"json:=x", "empty JSON path"},
	    {"json:a..b=1", "JSON path \"a..b\" has an empty segment"},
	    {"json:a.", "has an empty segment"},
	    {"json:a=${json:b}", "${json:b} is only allowed in replies[].send"},
	    {"contains:${json:b}", "${json:b} is only allowed in replies[].send"},
	    {"json:a=${nope}", "unknown template ${nope}"},
	    {"contains:${", "unterminated \"${\""},
	    {"equals:${seq", "unterminated \"${\""},
	    {"${bogus}", "unknown template ${bogus}"},
	    {"json:a=${env:WSBEAT_TEST_UNSET_X}", "WSBEAT_TEST_UNSET_X is not set"},
	    {"json:a=${credential:nope}", "${credential:nope}: cannot read"},
	};
	const char *list[3];

	(void)state;
	unsetenv("WSBEAT_TEST_UNSET_X");
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		compile_fails(&bad[i].src, 1, TMPL_SEQ | TMPL_SECRET, bad[i].why);
		/* after good clauses that read secrets: the same error, no value shown */
		list[0] = "json:a=${credential:token}";
		list[1] = "equals:${env:WSBEAT_TEST_MATCH}";
		list[2] = bad[i].src;
		compile_fails(list, 3, TMPL_SEQ | TMPL_SECRET, bad[i].why);
	}
	/* what the place allows */
	list[0] = "json:id=${seq}";
	compile_fails(list, 1, TMPL_SECRET, "${seq} is not allowed here");
	list[0] = "equals:${credential:token}";
	compile_fails(list, 1, TMPL_SEQ, "secret sources are not allowed here");
	/* TMPL_JSON is never granted to a match, even when asked for */
	list[0] = "json:a=${json:b}";
	compile_fails(list, 1, TMPL_ANY, "${json:b} is only allowed in replies[].send");
	/* nor time or ${uuid}: match_test has no clock, so ${now_s} stood for 0 */
	static const char *const timed[] = {"json:t=${now_s}", "contains:${now_ms}",
	                                    "equals:${now_iso}", "${uuid}"};
	for (size_t i = 0; i < sizeof(timed) / sizeof(timed[0]); i++)
		compile_fails(&timed[i], 1, TMPL_ANY, "} is not allowed here");
}

static void test_equal(void **state)
{
	const char *const a[] = {"json:type=pong", "json:id=${seq}"};
	const char *const b[] = {"json:id=${seq}", "json:type=pong"};
	struct match *x = compile_n(a, 2), *y = compile_n(a, 2), *z = compile_n(b, 2);
	char path[128];
	FILE *f;

	(void)state;
	assert_true(match_equal(x, y));
	assert_true(match_equal(x, x));
	assert_false(match_equal(x, z)); /* order is part of the text, as written */
	assert_false(match_equal(x, NULL));
	assert_false(match_equal(NULL, x));
	assert_true(match_equal(NULL, NULL));
	match_free(y);
	y = compile_n(a, 1);
	assert_false(match_equal(x, y));
	match_free(y);
	match_free(z);
	match_free(x);

	/* the same joined text cut into other clauses: json: clauses have no value to tell
	 * them apart, only their paths */
	const char *const c1[] = {"json:a and json:b", "json:c"};
	const char *const c2[] = {"json:a", "json:b and json:c"};
	x = compile_n(c1, 2);
	y = compile_n(c2, 2);
	assert_string_equal(x->text, y->text);
	assert_false(match_equal(x, y));
	assert_false(match_equal(y, x));
	match_free(y);
	match_free(x);
	const char *const c3[] = {"json:a and json:b=1", "json:c"};
	const char *const c4[] = {"json:a", "json:b=1 and json:c"};
	x = compile_n(c3, 2);
	y = compile_n(c4, 2);
	assert_false(match_equal(x, y));
	match_free(y);
	match_free(x);

	/* the same text with a changed credential is a different match */
	x = compile1("json:token=${credential:token}");
	y = compile1("json:token=${credential:token}");
	assert_true(match_equal(x, y));
	match_free(y);
	snprintf(path, sizeof(path), "%s/token", cred_dir);
	f = fopen(path, "w");
	assert_non_null(f);
	fputs("rotated\n", f);
	fclose(f);
	y = compile1("json:token=${credential:token}");
	assert_false(match_equal(x, y));
	match_free(y);
	match_free(x);
	f = fopen(path, "w");
	assert_non_null(f);
	fputs(SECRET "\n", f);
	fclose(f);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_exchanges),      cmocka_unit_test(test_forms),
	    cmocka_unit_test(test_lists),          cmocka_unit_test(test_values),
	    cmocka_unit_test(test_paths),          cmocka_unit_test(test_not_json),
	    cmocka_unit_test(test_prefilter),      cmocka_unit_test(test_parse_once),
	    cmocka_unit_test(test_binary),         cmocka_unit_test(test_templates_in_values),
	    cmocka_unit_test(test_compile_errors), cmocka_unit_test(test_equal),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
