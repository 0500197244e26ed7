/* Unit tests for status_page: the embedded template (each placeholder once, one script and one
 * style element, a policy that names their hashes), rows problem-first, HTML escaping, the
 * history columns, slicing (any budget renders the same page) and durations. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "wsbeat/status_page.h"

#define SEC 1000000LL

static size_t count(const char *hay, const char *needle)
{
	size_t n = 0;

	for (const char *p = hay; (p = strstr(p, needle)) != NULL; p += strlen(needle))
		n++;
	return n;
}

static void test_template_shape(void **state)
{
	size_t len;
	const char *t = status_page_template(&len);
	(void)state;

	assert_int_equal(strlen(t), len);
	assert_int_equal(count(t, "@SUMMARY@"), 1);
	assert_int_equal(count(t, "@GENERATED@"), 1);
	assert_int_equal(count(t, "@ROWS@"), 1);
	/* The policy hashes the one script and the one style element, written without attributes.
	 */
	assert_int_equal(count(t, "<script"), 1);
	assert_int_equal(count(t, "<script>"), 1);
	assert_int_equal(count(t, "<style"), 1);
	assert_int_equal(count(t, "<style>"), 1);
	/* Nothing the policy would block: no inline handlers or style attributes, nothing remote.
	 */
	assert_null(strstr(t, " style=\""));
	assert_null(strstr(t, " onclick="));
	assert_null(strstr(t, " onload="));
	assert_null(strstr(t, "src=\"http"));
	assert_null(strstr(t, "href=\"http"));
	assert_null(strstr(t, "url(http"));
	assert_null(strstr(t, "@import"));
}

static void test_csp(void **state)
{
	const char *csp = status_page_csp();
	(void)state;

	assert_non_null(csp);
	assert_non_null(strstr(csp, "default-src 'none'"));
	assert_non_null(strstr(csp, "script-src 'sha256-"));
	assert_non_null(strstr(csp, "style-src 'sha256-"));
	assert_non_null(strstr(csp, "connect-src 'self'"));
	assert_null(strstr(csp, "unsafe"));
	/* Computed once. */
	assert_ptr_equal(status_page_csp(), csp);
}

static struct cfg_feed cfg[4] = {
    {.name = "good", .url = {.display = "wss://a.example/ws"}},
    {.name = "bad<&>\"'", .url = {.display = "ws://b.example/"}},
    {.name = "good2", .url = {.display = "wss://c.example/"}},
    {.name = "refused", .url = {.display = "ws://127.0.0.1:1/"}},
};
static struct feed_last last_bad = {.err = "HTTP 401 <script>", .at_real_us = 1000 * SEC};

static void make(struct feed f[4])
{
	static const enum feed_state st[4] = {FEED_OPEN, FEED_BACKOFF, FEED_OPEN, FEED_CONNECTING};

	memset(f, 0, 4 * sizeof(*f));
	for (int i = 0; i < 4; i++) {
		f[i].cfg = &cfg[i];
		f[i].state = st[i];
		f[i].state_since_us = 500 * SEC;
		f[i].stats.last_rtt_ms = -1;
	}
	f[0].stats.last_rtt_ms = 1.25;
	f[0].stats.connects = 3;
	f[1].last = &last_bad;
	f[1].last_close_code = 1008;
	f[1].failures = 2;
}

static char *render(struct feed f[4], size_t budget)
{
	struct feed *v[4] = {&f[0], &f[1], &f[2], &f[3]};
	struct metrics_now now = {.mono_us = 512 * SEC, .real_us = 1060 * SEC};
	struct status_page_cursor c = {0};
	struct mbuf m = {0};
	int rc, turns = 0;

	while ((rc = status_page_step(&c, &m, v, 4, &now, budget)) == 0)
		turns++;
	assert_int_equal(rc, 1);
	if (budget == 1)
		assert_true(turns >= 7); /* two passes over four feeds, one feed a turn */
	return m.p;
}

static void test_rows(void **state)
{
	struct feed f[4];
	char *page;
	const char *bad, *refused, *good, *good2;
	(void)state;

	make(f);
	page = render(f, 500);
	assert_null(strstr(page, "@ROWS@"));
	assert_non_null(strstr(page, "2/4 open, 1 in backoff, 1 connecting"));
	assert_non_null(strstr(page, "1970-01-01T00:17:40Z"));
	/* Problem feeds first, each group in configuration order. */
	bad = strstr(page, "data-state=\"backoff\"");
	refused = strstr(page, "data-name=\"refused\"");
	good = strstr(page, "data-name=\"good\"");
	good2 = strstr(page, "data-name=\"good2\"");
	assert_true(bad && refused && good && good2);
	assert_true(bad < refused && refused < good && good < good2);
	/* Escaped, never markup. */
	assert_non_null(strstr(page, "data-name=\"bad&lt;&amp;&gt;&quot;&#39;\""));
	assert_non_null(strstr(page, "HTTP 401 &lt;script&gt;<div class=\"when\">1 min ago"));
	assert_null(strstr(page, "HTTP 401 <script>"));
	assert_non_null(strstr(page, "<td class=\"c-close\">1008</td>"));
	assert_non_null(strstr(page, "<td class=\"c-attempt\">3</td>"));
	assert_non_null(strstr(page, "<td class=\"c-rtt\">1.25 ms</td>"));
	assert_non_null(strstr(page, "<td class=\"c-rec\">2</td>"));
	assert_non_null(strstr(page, "<td class=\"c-in\">12.0 s</td>"));
	free(page);
}

static void test_any_budget_renders_the_same(void **state)
{
	struct feed f[4];
	char *whole, *sliced;
	(void)state;

	make(f);
	whole = render(f, SIZE_MAX);
	sliced = render(f, 1);
	assert_string_equal(whole, sliced);
	free(whole);
	free(sliced);
}

/* Beyond STATUS_PAGE_MAX_ROWS the page says how many it left out, problem feeds kept. */
static void test_row_cap(void **state)
{
	size_t n = STATUS_PAGE_MAX_ROWS + 3;
	struct feed *f = calloc(n, sizeof(*f));
	struct feed **v = calloc(n, sizeof(*v));
	struct metrics_now now = {.mono_us = 512 * SEC, .real_us = 1060 * SEC};
	struct status_page_cursor c = {0};
	struct mbuf m = {0};
	(void)state;

	assert_non_null(f);
	assert_non_null(v);
	for (size_t i = 0; i < n; i++) {
		f[i].cfg = &cfg[0];
		f[i].state =
		    i == n - 1 ? FEED_BACKOFF : FEED_OPEN; /* the last one is the problem */
		f[i].stats.last_rtt_ms = -1;
		v[i] = &f[i];
	}
	while (status_page_step(&c, &m, v, n, &now, 100) == 0)
		;
	assert_int_equal(count(m.p, "<tr class=\"st-"), STATUS_PAGE_MAX_ROWS);
	assert_int_equal(count(m.p, "data-state=\"backoff\""), 1);
	assert_non_null(strstr(m.p, "3 more feeds are not listed here"));
	assert_true(strstr(m.p, "data-state=\"backoff\"") < strstr(m.p, "data-state=\"open\""));
	mbuf_free(&m);
	free(v);
	free(f);
}

static void test_durations(void **state)
{
	char b[32];
	(void)state;

	status_page_duration(-1, b, sizeof(b));
	assert_string_equal(b, "0.0 s");
	status_page_duration(12.34, b, sizeof(b));
	assert_string_equal(b, "12.3 s");
	status_page_duration(60, b, sizeof(b));
	assert_string_equal(b, "1 min");
	status_page_duration(599, b, sizeof(b));
	assert_string_equal(b, "9 min");
	status_page_duration(2.5 * 3600, b, sizeof(b));
	assert_string_equal(b, "2.5 h");
	status_page_duration(3 * 86400, b, sizeof(b));
	assert_string_equal(b, "3.0 d");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_template_shape),
	    cmocka_unit_test(test_csp),
	    cmocka_unit_test(test_rows),
	    cmocka_unit_test(test_any_budget_renders_the_same),
	    cmocka_unit_test(test_row_cap),
	    cmocka_unit_test(test_durations),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
