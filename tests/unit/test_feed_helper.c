/*
 * Unit tests for the connect_command step of the feed state machine (feed_helper.c), through
 * the recording fake shell: the helper runs in `resolving` under its own deadline, its answer
 * replaces url, headers and on_open for the attempt (and is wiped when the attempt ends), every
 * way it can fail is a connect_error naming it, and nothing it printed reaches a log record.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>

#include <cmocka.h>

#include "fake_shell.h"
#include "wsbeat/helper.h"

#define SEC 1000000LL
#define MS  1000LL

#define TOKEN "tok-SECRET-41"

static struct fake k;
static char prog[] = "/usr/lib/wsbeat/helpers/login";
static char *argv[] = {prog, NULL};

static int setup(void **state)
{
	(void)state;
	fake_init(&k);
	k.cfg.connect_command = argv;
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	fake_fini(&k);
	return 0;
}

/* The feed started and granted: its helper is running. */
static void to_helper(void)
{
	fake_feed_init(&k);
	feed_start(&k.f, k.now);
	fake_advance(&k, k.now);
	assert_int_equal(k.f.state, FEED_RESOLVING);
	assert_true(k.f.helper_running);
	assert_int_equal(k.n_run_helper, 1);
	assert_int_equal(k.n_resolve + k.n_connect, 0);
	fake_assert_timers(&k, true, false, false, false);
	assert_int_equal(k.f.t_state.deadline_us, k.now + 10 * SEC);
}

static void answer(int status, const char *out, const char *err_line)
{
	struct helper_result r = {
	    .status = status, .out = out, .out_len = strlen(out), .err_line = err_line};

	feed_on_helper_done(&k.f, &r, k.now);
}

/* The retry delay the feed armed, in ms from now. */
static int64_t backoff_ms(void)
{
	assert_int_equal(k.f.state, FEED_BACKOFF);
	fake_assert_timers(&k, true, false, false, false);
	return (k.f.t_state.deadline_us - k.now) / MS;
}

static bool logs_hold(const char *s)
{
	return fake_log_count(&k, s, NULL) > 0;
}

static void test_answer_replaces_url(void **state)
{
	(void)state;
	log_set_level(LOG_LVL_DEBUG);
	to_helper();
	assert_int_equal(fake_log_count(&k, "event=connecting", "state=resolving"), 1);
	k.now += 300 * MS;
	answer(0, "{\"url\":\"ws://127.0.0.2:9001/ws?token=" TOKEN "\",\"expires_in\":30}", "");
	/* numeric: straight to connecting, with a connect_timeout of its own */
	assert_int_equal(k.f.state, FEED_CONNECTING);
	assert_false(k.f.helper_running);
	assert_int_equal(k.n_connect, 1);
	assert_int_equal(k.n_resolve, 0);
	assert_int_equal(k.f.t_state.deadline_us, k.now + 10 * SEC);
	assert_string_equal(feed_url(&k.f)->host, "127.0.0.2");
	assert_string_equal(feed_url(&k.f)->path, "/ws?token=" TOKEN);
	assert_int_equal(feed_credentials_expire_us(&k.f), k.now + 30 * SEC);
	assert_int_equal(fake_log_count(&k, "event=connect_command", "ms=300 url=replaced"), 1);
	assert_int_equal(fake_log_count(&k, "expires_in_ms=30000", NULL), 1);
	fake_to_open(&k);
	assert_int_equal(feed_credentials_expire_us(&k.f), k.now + 30 * SEC); /* kept while open */
	/* the connection ends: what the helper gave is gone with it */
	feed_on_gone(&k.f, k.now, "lost");
	assert_null(k.f.helper);
	assert_int_equal(feed_credentials_expire_us(&k.f), 0);
	assert_ptr_equal(feed_url(&k.f), &k.cfg.url);
	assert_false(logs_hold(TOKEN));
	/* and the next attempt runs the helper again */
	fake_advance(&k, k.f.t_state.deadline_us);
	assert_int_equal(k.n_run_helper, 2);
	assert_int_equal(k.f.state, FEED_RESOLVING);
	log_set_level(LOG_LVL_INFO);
}

static void test_answer_named_host_resolves(void **state)
{
	(void)state;
	to_helper();
	k.now += 50 * MS;
	answer(0, "{\"url\":\"wss://ws-api-spot.kucoin.com/?token=" TOKEN "\"}", "");
	assert_int_equal(k.f.state, FEED_RESOLVING);
	assert_int_equal(k.n_resolve, 1);
	assert_int_equal(k.f.t_state.deadline_us, k.now + 10 * SEC);
	assert_int_equal(feed_credentials_expire_us(&k.f), 0);
	/* a DNS failure names the helper's host, never its query */
	feed_on_resolved(&k.f, &(struct dns_result){.error = "no such name"}, k.now);
	assert_int_equal(fake_log_count(&k, "event=connect_error",
	                                "cannot resolve ws-api-spot.kucoin.com: no such name"),
	                 1);
	assert_false(logs_hold(TOKEN));
}

static void test_empty_answer_keeps_the_feed_settings(void **state)
{
	(void)state;
	to_helper();
	answer(0, "{}\n", "");
	assert_int_equal(k.f.state, FEED_CONNECTING);
	assert_ptr_equal(feed_url(&k.f), &k.cfg.url);
	assert_non_null(k.f.helper);
}

static void test_on_open_replaced(void **state)
{
	struct cfg_step steps[2];
	const char *waits[] = {"json:type=welcome"};
	(void)state;

	/* the feed's sequence waits; the helper's has messages only: open at the upgrade */
	steps[0] = (struct cfg_step){.wait = fake_match(&k, waits, 1)};
	steps[1] = (struct cfg_step){.send = fake_tmpl(&k, "feed-sub", 8)};
	k.cfg.on_open = steps;
	k.cfg.n_on_open = 2;
	k.cfg.open_after = 1;
	to_helper();
	answer(0, "{\"on_open\":[\"{\\\"jwt\\\":\\\"" TOKEN "\\\"}\",\"second\"]}", "");
	assert_int_equal(k.f.state, FEED_CONNECTING);
	log_set_level(LOG_LVL_DEBUG);
	feed_on_open(&k.f, k.now);
	assert_int_equal(k.f.state, FEED_OPEN);
	fake_pump(&k);
	assert_int_equal(k.n_frames, 2);
	assert_int_equal(k.frames[0].src, SRC_ON_OPEN);
	assert_memory_equal(k.frames[0].data, "{\"jwt\":\"" TOKEN "\"}", k.frames[0].len);
	assert_memory_equal(k.frames[1].data, "second", 6);
	/* sent, and logged without its text: it is a secret */
	assert_int_equal(fake_log_count(&k, "sent on_open[0]", "it holds a secret"), 1);
	assert_false(logs_hold(TOKEN));
	log_set_level(LOG_LVL_INFO);
}

static void test_failures(void **state)
{
	static const struct {
		int status;
		const char *out, *err, *want;
	} cases[] = {
	    {W_EXITCODE(1, 0), "", "token request failed (HTTP 401)",
	     "reason=\"connect_command /usr/lib/wsbeat/helpers/login exited with status 1: token "
	     "request failed (HTTP 401)\""},
	    {W_EXITCODE(2, 0), "{\"url\":\"" TOKEN "\"}", "",
	     "reason=\"connect_command /usr/lib/wsbeat/helpers/login exited with status 2\""},
	    {SIGSEGV, "", "", "was killed by signal 11"},
	    {0, "garbage " TOKEN, "", "login: its output is not JSON: invalid JSON (at byte"},
	    {0, "", "why: no key", "login: it printed nothing on stdout: why: no key"},
	    {0, "{\"url\":\"https://x/" TOKEN "\"}", "", "is not a ws:// or wss:// URL"},
	    {0, "{\"headers\":{\"Host\":\"" TOKEN "\"}}", "", "names one the handshake sets"},
	};
	(void)state;

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		fake_fini(&k);
		setup(NULL);
		to_helper();
		answer(cases[i].status, cases[i].out, cases[i].err);
		assert_int_equal(backoff_ms(), 1000);
		assert_int_equal(k.f.stats.connect_errors, 1);
		assert_null(k.f.helper);
		assert_int_equal(k.n_resolve + k.n_connect, 0);
		if (fake_log_count(&k, "event=connect_error", cases[i].want) != 1)
			fail_msg("case %zu: no connect_error with %s\n%s", i, cases[i].want,
			         k.n_log ? k.log[k.n_log - 2] : "");
		assert_false(logs_hold(TOKEN));
	}
	/* too much output: killed by the shell, said so */
	fake_fini(&k);
	setup(NULL);
	to_helper();
	feed_on_helper_done(
	    &k.f, &(struct helper_result){.status = SIGKILL, .too_big = true, .out = ""}, k.now);
	assert_int_equal(fake_log_count(&k, "event=connect_error", "printed more than 65536 bytes"),
	                 1);
	/* a helper that cannot run at all */
	fake_fini(&k);
	setup(NULL);
	k.run_helper_ret = -1;
	fake_feed_init(&k);
	feed_start(&k.f, k.now);
	fake_advance(&k, k.now);
	assert_int_equal(backoff_ms(), 1000);
	assert_false(k.f.helper_running);
	assert_int_equal(fake_log_count(&k, "event=connect_error", "cannot run: Permission denied"),
	                 1);
}

static void test_timeout_kills(void **state)
{
	int64_t deadline;
	(void)state;

	to_helper();
	deadline = k.f.t_state.deadline_us;
	fake_advance(&k, deadline - 1);
	assert_int_equal(k.n_cancel_helper, 0);
	fake_advance(&k, deadline);
	assert_int_equal(k.n_cancel_helper, 1);
	assert_false(k.f.helper_running);
	assert_int_equal(backoff_ms(), 1000);
	assert_int_equal(fake_log_count(&k, "event=connect_error",
	                                "connect_command /usr/lib/wsbeat/helpers/login did not "
	                                "answer within 10000 ms (killed): waiting for the vault"),
	                 1);
	/* a late answer (the shell never sends one after cancel) would change nothing */
	answer(0, "{}", "");
	assert_int_equal(k.f.state, FEED_BACKOFF);
	assert_int_equal(k.n_connect, 0);
}

static void test_stop_while_running(void **state)
{
	(void)state;
	to_helper();
	feed_stop(&k.f, k.now);
	assert_int_equal(k.f.state, FEED_STOPPED);
	assert_int_equal(k.n_cancel_helper, 1);
	assert_int_equal(k.n_cancel_resolve, 0);
	assert_int_equal(k.n_stopped, 1);
	/* a second stop, and the fini, cancel nothing more */
	feed_stop(&k.f, k.now);
	assert_int_equal(k.n_cancel_helper, 1);
}

int main(void)
{
#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)
	const struct CMUnitTest tests[] = {
	    T(test_answer_replaces_url),
	    T(test_answer_named_host_resolves),
	    T(test_empty_answer_keeps_the_feed_settings),
	    T(test_on_open_replaced),
	    T(test_failures),
	    T(test_timeout_kills),
	    T(test_stop_while_running),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
