/* Unit tests for helper: a connect_command's output parsed into url, headers, on_open and
 * expires_in; every rejection, none of whose messages quotes the output; and the stderr line
 * cleaning. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "wsbeat/helper.h"
#include "wsbeat/tmpl.h"

#define SECRET "tok-3f9a-SECRET"

static struct helper_out *parse_ok(const char *text)
{
	char err[256] = "";
	struct helper_out *h = NULL;

	if (helper_parse(text, strlen(text), &h, err, sizeof(err)) != 0)
		fail_msg("%s: %s", text, err);
	assert_non_null(h);
	return h;
}

/* Expects a rejection whose message holds want and nothing of the output's secret. */
static void parse_bad(const char *text, size_t len, const char *want)
{
	char err[256] = "";
	struct helper_out *h = (struct helper_out *)1;

	if (helper_parse(text, len, &h, err, sizeof(err)) == 0)
		fail_msg("%s: parsed, expected \"%s\"", text, want);
	assert_null(h);
	if (!strstr(err, want))
		fail_msg("%s: got \"%s\", want \"%s\"", text, err, want);
	assert_null(strstr(err, "SECRET"));
	assert_null(strstr(err, "garbage"));
}

static void bad(const char *text, const char *want)
{
	parse_bad(text, strlen(text), want);
}

static void test_full(void **state)
{
	struct helper_out *h;

	(void)state;
	h = parse_ok("{\"url\":\"wss://ws-api-spot.kucoin.com/?token=" SECRET "&connectId=7\","
	             "\"headers\":{\"X-MBX-APIKEY\":\"" SECRET "\",\"Authorization\":\"Bearer x\"},"
	             "\"on_open\":[\"{\\\"jwt\\\":\\\"" SECRET "\\\"}\",\"\"],"
	             "\"expires_in\":86400}\n");
	assert_true(h->has_url && h->has_headers && h->has_on_open);
	assert_string_equal(h->url.host, "ws-api-spot.kucoin.com");
	assert_true(h->url.tls);
	assert_int_equal(h->url.port, 443);
	assert_string_equal(h->url.path, "/?token=" SECRET "&connectId=7");
	assert_null(strstr(h->url.display, SECRET)); /* the query is never displayed */
	assert_int_equal(h->n_headers, 2);
	assert_string_equal(h->headers[0].name, "X-MBX-APIKEY");
	assert_string_equal(h->headers[0].value, SECRET);
	assert_int_equal(h->headers[0].value_len, strlen(SECRET));
	assert_int_equal(h->n_on_open, 2);
	assert_true(h->on_open[0].send->secret);
	assert_null(h->on_open[0].wait);
	assert_string_equal(h->on_open[0].send->flat, "{\"jwt\":\"" SECRET "\"}");
	assert_int_equal(h->on_open[1].send->flat_len, 0);
	assert_int_equal(h->expires_in_ms, 86400000);
	assert_int_equal(h->expires_at_us, 0);
	helper_out_free(h);
}

static void test_members_optional(void **state)
{
	struct helper_out *h;

	(void)state;
	h = parse_ok("  {}  ");
	assert_false(h->has_url || h->has_headers || h->has_on_open);
	assert_int_equal(h->expires_in_ms, -1);
	helper_out_free(h);
	/* empty ones still replace the feed's: no headers, no open sequence */
	h = parse_ok("{\"headers\":{},\"on_open\":[],\"expires_in\":0.25}");
	assert_true(h->has_headers && h->has_on_open);
	assert_int_equal(h->n_headers, 0);
	assert_int_equal(h->n_on_open, 0);
	assert_int_equal(h->expires_in_ms, 250);
	helper_out_free(h);
	h = parse_ok("{\"url\":\"ws://[::1]:9001/ws/" SECRET "\"}");
	assert_string_equal(h->url.host, "::1");
	assert_false(h->url.tls);
	helper_out_free(h);
	helper_out_free(NULL);
}

static void test_rejections(void **state)
{
	char big[HELPER_OUT_MAX + 2];

	(void)state;
	bad("", "printed nothing on stdout");
	bad(" \n\t", "printed nothing on stdout");
	bad("garbage " SECRET, "not JSON: invalid JSON (at byte");
	bad("{\"url\":\"" SECRET "\"", "ends before the JSON value does");
	bad("{} {\"garbage\":1}", "something follows the JSON value");
	bad("[\"" SECRET "\"]", "not a JSON object");
	bad("\"" SECRET "\"", "not a JSON object");
	bad("{\"url\":\"a\\u0000b\"}", "holds \\u0000");
	bad("{\"url\":\"\xff\"}", "not UTF-8");
	bad("{\"url\":1,\"url\":2}", "same member twice");
	bad("{\"garbage-" SECRET "\":1}", "an unknown member (the members are url, headers");
	bad("{\"url\":5}", "\"url\" must be a string");
	bad("{\"url\":\"https://x/" SECRET "\"}", "\"url\" is not a ws:// or wss:// URL");
	bad("{\"url\":\"wss://h/a b" SECRET "\"}", "not a ws:// or wss:// URL");
	bad("{\"headers\":[]}", "\"headers\" must be an object");
	bad("{\"headers\":{\"X\":1}}", "every value in \"headers\" must be a string");
	bad("{\"headers\":{\"X\":\"a\\r\\nEvil: " SECRET "\"}}", "holds CR, LF or NUL");
	bad("{\"headers\":{\"Bad Name\":\"v\"}}", "not an HTTP token");
	bad("{\"headers\":{\"host\":\"" SECRET "\"}}", "names one the handshake sets");
	bad("{\"headers\":{\"Sec-WebSocket-Key\":\"x\"}}", "names one the handshake sets");
	bad("{\"headers\":{\"X-A\":\"1\",\"x-a\":\"2\"}}", "one name twice");
	bad("{\"on_open\":\"" SECRET "\"}", "\"on_open\" must be an array of strings");
	bad("{\"on_open\":[\"a\",{\"wait\":\"x\"}]}", "\"on_open\"[1] is not a string");
	bad("{\"expires_in\":\"30\"}", "\"expires_in\" must be a number of seconds");
	bad("{\"expires_in\":-1}", "\"expires_in\" must be a number of seconds");
	bad("{\"expires_in\":1e300}", "\"expires_in\" must be a number of seconds");
	parse_bad("{\"url\":\"ws://h/\"}\0{", 19, "not JSON");
	memset(big, ' ', sizeof(big));
	big[0] = '{';
	big[sizeof(big) - 1] = '}';
	parse_bad(big, sizeof(big), "printed more than 65536 bytes");
}

static void test_clean_line(void **state)
{
	char out[16];

	(void)state;
	assert_int_equal(helper_clean_line("  token request failed\nmore", 27, out, sizeof(out)),
	                 15);
	assert_string_equal(out, "token request f");
	assert_int_equal(helper_clean_line("a\tb\x1b[31mc\r\nd", 12, out, sizeof(out)), 9);
	assert_string_equal(out, "a b?[31mc");
	assert_int_equal(helper_clean_line("\xc3\xa9 x  ", 6, out, sizeof(out)), 4);
	assert_string_equal(out, "?? x");
	assert_int_equal(helper_clean_line("\n", 1, out, sizeof(out)), 0);
	assert_string_equal(out, "");
	assert_int_equal(helper_clean_line("abc", 0, out, sizeof(out)), 0);
	assert_int_equal(helper_clean_line("abc", 3, out, 0), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_full),
	    cmocka_unit_test(test_members_optional),
	    cmocka_unit_test(test_rejections),
	    cmocka_unit_test(test_clean_line),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
