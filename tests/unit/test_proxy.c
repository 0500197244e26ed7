/* Unit tests for proxy: URL parsing, no_proxy, the environment, the choice, the answer. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "wsbeat/proxy.h"

struct good {
	const char *in;
	bool need_scheme;
	const char *host;
	unsigned port;
	const char *auth; /* NULL = none */
	const char *display;
	bool numeric;
};

static const struct good goods[] = {
    {"http://127.0.0.1:3128", true, "127.0.0.1", 3128, NULL, "127.0.0.1:3128", true},
    {"http://127.0.0.1:3128/", true, "127.0.0.1", 3128, NULL, "127.0.0.1:3128", true},
    {"HTTP://Proxy.Example:8080", true, "proxy.example", 8080, NULL, "proxy.example:8080", false},
    {"http://[::1]:3128", true, "::1", 3128, NULL, "[::1]:3128", true},
    {"http://user:pass@p:1", true, "p", 1, "user:pass", "p:1", false},
    {"http://user@p:1", true, "p", 1, "user:", "p:1", false},
    {"http://:pw@p:1", true, "p", 1, ":pw", "p:1", false},
    {"http://@p:1", true, "p", 1, NULL, "p:1", false},
    {"http://u%40x:p%3Aa%25ss@p:65535", true, "p", 65535, "u@x:p:a%ss", "p:65535", false},
    /* The last '@' ends the credentials: '@', '/' and ':' may stay unencoded in a password. */
    {"http://u:p@ss/w:rd@p:2", true, "p", 2, "u:p@ss/w:rd", "p:2", false},
    /* The environment may leave out the scheme, as curl allows. */
    {"proxy.corp:3128", false, "proxy.corp", 3128, NULL, "proxy.corp:3128", false},
    {"alice:secret@10.0.0.1:8080", false, "10.0.0.1", 8080, "alice:secret", "10.0.0.1:8080", true},
};

static void test_parse_good(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(goods) / sizeof(goods[0]); i++) {
		const struct good *g = &goods[i];
		struct proxy_url *p;
		char err[256] = "";

		if (proxy_parse(g->in, g->need_scheme, &p, err, sizeof(err)) != 0)
			fail_msg("%s: %s", g->in, err);
		assert_string_equal(p->host, g->host);
		assert_int_equal(p->port, g->port);
		if (g->auth)
			assert_string_equal(p->auth, g->auth);
		else
			assert_null(p->auth);
		assert_string_equal(p->display, g->display);
		assert_int_equal(p->numeric, g->numeric);
		proxy_url_free(p);
	}
}

struct bad {
	const char *in;
	bool need_scheme;
	const char *why; /* a part of the message */
};

static const struct bad bads[] = {
    {"", true, "is empty"},
    {"127.0.0.1:3128", true, "must start with http://"},
    {"https://p:443", true, "https:// proxies"},
    {"socks5://p:1080", true, "unsupported scheme"},
    {"socks5://p:1080", false, "unsupported scheme"},
    {"http://p", true, "must name the port"},
    {"http://p:", true, "must name the port"},
    {"http://[::1]", true, "must name the port"},
    {"http://p:0", true, "from 1 to 65535"},
    {"http://p:65536", true, "from 1 to 65535"},
    {"http://p:12ab", true, "from 1 to 65535"},
    {"http://:3128", true, "has no host"},
    {"http://::1:3128", true, "more than one ':'"},
    {"http://[::1:3128", true, "closing ']'"},
    {"http://[zz::1]:3128", true, "IPv6 address is not valid"},
    {"http://p!x:1", true, "not allowed in a host name"},
    {"http://p:1/path", true, "path, query or fragment"},
    {"http://p:1?q", true, "path, query or fragment"},
    {"http://p :1", true, "whitespace"},
    {"http://u:p\xc3\xa4@p:1", true, "non-ASCII"},
    {"http://u:p%4@p:1", true, "two hex digits"},
    {"http://u:p%zz@p:1", true, "two hex digits"},
    {"http://u:p%00@p:1", true, "%00"},
    {"http://u%3Ax:p@p:1", true, "must not contain ':'"},
};

static void test_parse_bad(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(bads) / sizeof(bads[0]); i++) {
		const struct bad *b = &bads[i];
		struct proxy_url *p = (void *)1;
		char err[256] = "";

		if (proxy_parse(b->in, b->need_scheme, &p, err, sizeof(err)) == 0)
			fail_msg("%s: accepted", b->in);
		assert_null(p);
		if (!strstr(err, b->why))
			fail_msg("%s: \"%s\" does not say \"%s\"", b->in, err, b->why);
	}
}

/* No message ever quotes the text: the password must not show up in a log or --check. */
static void test_errors_never_quote(void **state)
{
	static const char *const ins[] = {
	    "http://alice:SECRETPW@p",       "http://alice:SECRETPW@p:99999",
	    "http://alice:SECRETPW",         "https://alice:SECRETPW@p:1",
	    "http://alice:SECRET%zzPW@p:1",  "ftp://alice:SECRETPW@p:1",
	    "http://alice:SECRETPW@p:1/x/y", "alice:SECRETPW",
	};
	(void)state;
	for (size_t i = 0; i < sizeof(ins) / sizeof(ins[0]); i++) {
		struct proxy_url *p;
		char err[256] = "";

		assert_int_equal(proxy_parse(ins[i], true, &p, err, sizeof(err)), -1);
		if (strstr(err, "SECRET") || strstr(err, "alice"))
			fail_msg("%s: message quotes it: %s", ins[i], err);
	}
}

static void test_auth_limit(void **state)
{
	char in[256], user[PROXY_AUTH_MAX + 2];
	struct proxy_url *p;
	char err[256];

	(void)state;
	/* PROXY_AUTH_MAX bytes of "user:password" fit, one more does not. */
	memset(user, 'u', PROXY_AUTH_MAX - 3);
	user[PROXY_AUTH_MAX - 3] = '\0';
	snprintf(in, sizeof(in), "http://%s:pw@p:1", user);
	assert_int_equal(proxy_parse(in, true, &p, err, sizeof(err)), 0);
	assert_int_equal(strlen(p->auth), PROXY_AUTH_MAX);
	proxy_url_free(p);
	/* Percent-encoded bytes count once. */
	snprintf(in, sizeof(in), "http://%s:p%%41@p:1", user);
	assert_int_equal(proxy_parse(in, true, &p, err, sizeof(err)), 0);
	assert_string_equal(p->auth + PROXY_AUTH_MAX - 3, ":pA");
	proxy_url_free(p);
	snprintf(in, sizeof(in), "http://%s:pwx@p:1", user);
	assert_int_equal(proxy_parse(in, true, &p, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "too long"));
}

static void test_equal(void **state)
{
	struct proxy_url *a, *b, *c, *d;
	char err[128];

	(void)state;
	assert_int_equal(proxy_parse("http://u:p@h:1", true, &a, err, sizeof(err)), 0);
	assert_int_equal(proxy_parse("http://u:p@H:1/", true, &b, err, sizeof(err)), 0);
	assert_int_equal(proxy_parse("http://u:q@h:1", true, &c, err, sizeof(err)), 0);
	assert_int_equal(proxy_parse("http://h:1", true, &d, err, sizeof(err)), 0);
	assert_true(proxy_url_equal(a, b));
	assert_false(proxy_url_equal(a, c)); /* a new password restarts the feed */
	assert_false(proxy_url_equal(a, d));
	assert_false(proxy_url_equal(a, NULL));
	assert_true(proxy_url_equal(NULL, NULL));
	proxy_url_free(a);
	proxy_url_free(b);
	proxy_url_free(c);
	proxy_url_free(d);
	proxy_url_free(NULL);
}

struct np {
	const char *list, *host;
	unsigned port;
	bool match;
};

static const struct np nps[] = {
    {"*", "anything.example", 443, true},
    {"", "example.com", 443, false},
    {"example.com", "example.com", 443, true},
    {"example.com", "EXAMPLE.com", 443, true},
    {"example.com", "ws.example.com", 443, true},
    {".example.com", "ws.example.com", 443, true},
    {".example.com", "example.com", 443, true},
    {"example.com.", "example.com", 443, true},
    {"example.com", "example.com.", 443, true},
    {"example.com", "badexample.com", 443, false},
    {"ws.example.com", "example.com", 443, false},
    {"foo, example.com ,bar", "a.example.com", 443, true},
    {"foo,,bar", "example.com", 443, false},
    {"example.com:443", "example.com", 443, true},
    {"example.com:443", "example.com", 9443, false},
    {"example.com:x", "example.com", 443, false},
    {"example.com:", "example.com", 443, false},
    {"127.0.0.1", "127.0.0.1", 80, true},
    {"127.0.0.1", "127.0.0.2", 80, false},
    {"0.0.1", "127.0.0.1", 80, false}, /* addresses are never suffixes */
    {"127.0.0.1:8080", "127.0.0.1", 8080, true},
    {"127.0.0.1:8080", "127.0.0.1", 80, false},
    {"::1", "::1", 80, true},
    {"0:0::1", "::1", 80, true},
    {"[::1]", "::1", 80, true},
    {"[::1]:80", "::1", 80, true},
    {"[::1]:80", "::1", 81, false},
    {"localhost", "127.0.0.1", 80, false},
    {"a.com, *", "b.com", 80, true},
    {"*.example.com", "ws.example.com", 443, false}, /* curl: no wildcards but "*" alone */
};

static void test_no_proxy(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(nps) / sizeof(nps[0]); i++) {
		const struct np *t = &nps[i];

		if (proxy_no_proxy_match(t->list, t->host, (uint16_t)t->port) != t->match)
			fail_msg("no_proxy=\"%s\" host %s port %u: want %s", t->list, t->host,
			         t->port, t->match ? "match" : "no match");
	}
	assert_false(proxy_no_proxy_match(NULL, "a", 1));
}

/* A fake environment for proxy_env_load. */
static const char *const *fake_env;

static char *fake_getenv(const char *name)
{
	for (const char *const *e = fake_env; *e; e += 2)
		if (strcmp(e[0], name) == 0)
			return (char *)e[1];
	return NULL;
}

static char warned[1024];

static void on_warn(void *arg, const char *msg)
{
	(void)arg;
	snprintf(warned + strlen(warned), sizeof(warned) - strlen(warned), "%s\n", msg);
}

static void load(const char *const *env, struct proxy_env *e)
{
	fake_env = env;
	warned[0] = '\0';
	assert_int_equal(proxy_env_load(e, fake_getenv, on_warn, NULL), 0);
}

static void test_env_lower_first(void **state)
{
	static const char *const env[] = {"https_proxy", "http://a:1", "HTTPS_PROXY",
	                                  "http://b:2",  "HTTP_PROXY", "http://c:3",
	                                  "NO_PROXY",    "x.test",     NULL};
	struct proxy_env e;

	(void)state;
	load(env, &e);
	assert_string_equal(e.https->display, "a:1");
	assert_string_equal(e.https_var, "https_proxy");
	assert_string_equal(e.http->display, "c:3");
	assert_string_equal(e.http_var, "HTTP_PROXY");
	assert_string_equal(e.no_proxy, "x.test");
	assert_string_equal(warned, "");
	proxy_env_fini(&e);
}

static void test_env_empty_is_unset(void **state)
{
	static const char *const env[] = {"https_proxy", "", "HTTPS_PROXY", "b:2", "http_proxy", "",
	                                  "no_proxy",    "", NULL};
	struct proxy_env e;

	(void)state;
	load(env, &e);
	assert_string_equal(e.https->display, "b:2");
	assert_string_equal(e.https_var, "HTTPS_PROXY");
	assert_null(e.http);
	assert_null(e.http_var);
	assert_null(e.no_proxy);
	proxy_env_fini(&e);
}

static void test_env_bad_warns_without_value(void **state)
{
	static const char *const env[] = {"https_proxy", "https://alice:SECRETPW@p:1", "http_proxy",
	                                  "http://alice:SECRETPW@p", NULL};
	struct proxy_env e;

	(void)state;
	load(env, &e);
	assert_null(e.https);
	assert_null(e.http);
	assert_non_null(strstr(warned, "ignoring the environment variable https_proxy"));
	assert_non_null(strstr(warned, "ignoring the environment variable http_proxy"));
	assert_non_null(strstr(warned, "must name the port"));
	assert_null(strstr(warned, "SECRET"));
	assert_null(strstr(warned, "alice"));
	proxy_env_fini(&e);
}

static void test_choose(void **state)
{
	static const char *const env[] = {"https_proxy", "http://s:1",  "http_proxy", "http://p:2",
	                                  "no_proxy",    "direct.test", NULL};
	struct proxy_url *own;
	struct proxy_env e;
	struct url ws, wss, skip;
	char err[128];

	(void)state;
	load(env, &e);
	assert_int_equal(url_parse("ws://feed.test/", &ws, err, sizeof(err)), 0);
	assert_int_equal(url_parse("wss://feed.test/", &wss, err, sizeof(err)), 0);
	assert_int_equal(url_parse("wss://a.direct.test/", &skip, err, sizeof(err)), 0);
	assert_int_equal(proxy_parse("http://own:3", true, &own, err, sizeof(err)), 0);
	{
		struct proxy_setting env_mode = {PROXY_ENV, NULL};
		struct proxy_setting direct = {PROXY_DIRECT, NULL};
		struct proxy_setting mine = {PROXY_URL, own};

		assert_string_equal(proxy_choose(&env_mode, &e, &ws)->display, "p:2");
		assert_string_equal(proxy_choose(&env_mode, &e, &wss)->display, "s:1");
		assert_null(proxy_choose(&env_mode, &e, &skip));
		assert_null(proxy_choose(&env_mode, NULL, &wss));
		assert_null(proxy_choose(&direct, &e, &wss));
		/* The feed's own proxy is used whatever no_proxy says. */
		assert_ptr_equal(proxy_choose(&mine, &e, &skip), own);
	}
	proxy_url_free(own);
	url_fini(&ws);
	url_fini(&wss);
	url_fini(&skip);
	proxy_env_fini(&e);
}

static void test_connect_target(void **state)
{
	struct url u;
	char buf[300], err[128], text[400], host[200];

	(void)state;
	assert_int_equal(url_parse("wss://feed.test:9443/x", &u, err, sizeof(err)), 0);
	assert_int_equal(proxy_connect_target(&u, buf, sizeof(buf)), 0);
	assert_string_equal(buf, "feed.test");
	url_fini(&u);
	assert_int_equal(url_parse("ws://[::1]:80/", &u, err, sizeof(err)), 0);
	assert_int_equal(proxy_connect_target(&u, buf, sizeof(buf)), 0);
	assert_string_equal(buf, "[::1]");
	url_fini(&u);
	/* Host and port together: PROXY_TARGET_MAX characters fit, one more does not. */
	memset(host, 'h', PROXY_TARGET_MAX - 3);
	host[PROXY_TARGET_MAX - 3] = '\0';
	snprintf(text, sizeof(text), "wss://%s/", host);
	assert_int_equal(url_parse(text, &u, err, sizeof(err)), 0);
	assert_int_equal(proxy_connect_target(&u, buf, sizeof(buf)), 0);
	url_fini(&u);
	snprintf(text, sizeof(text), "wss://%s:1000/", host);
	assert_int_equal(url_parse(text, &u, err, sizeof(err)), 0);
	assert_int_equal(proxy_connect_target(&u, buf, sizeof(buf)), -1);
	url_fini(&u);
}

static int answer(const char *s, char *phrase, size_t len)
{
	return proxy_read_answer(s, (ssize_t)strlen(s), phrase, len);
}

static void test_read_answer(void **state)
{
	char ph[128];

	(void)state;
	assert_int_equal(answer("HTTP/1.0 200 Connection established\r\n\r\n", ph, sizeof(ph)),
	                 200);
	assert_string_equal(ph, "Connection established");
	assert_int_equal(
	    answer("HTTP/1.1 407 Proxy Authentication Required\r\nServer: x\r\n", ph, sizeof(ph)),
	    407);
	assert_string_equal(ph, "Proxy Authentication Required");
	assert_int_equal(answer("HTTP/1.1 403\r\n\r\n", ph, sizeof(ph)), 403);
	assert_string_equal(ph, "");
	assert_int_equal(answer("HTTP/1.1 502 Bad\x01Gateway\r\n", ph, sizeof(ph)), 502);
	assert_string_equal(ph, "Bad.Gateway");
	assert_int_equal(answer("HTTP/1.1 200", ph, sizeof(ph)), 200);
	assert_int_equal(answer("SSH-2.0-OpenSSH_9.2\r\n", ph, sizeof(ph)), 0);
	assert_non_null(strstr(ph, "not HTTP (21 bytes: \"SSH-2.0-OpenSSH_9.2\")"));
	assert_int_equal(answer("HTTP/1.1 20", ph, sizeof(ph)), 0);
	assert_int_equal(answer("HTTP/2 200 \r\n", ph, sizeof(ph)), 0);
	assert_int_equal(answer("HTTP/1.1 099 x\r\n", ph, sizeof(ph)), 0);
	assert_int_equal(proxy_read_answer("", 0, ph, sizeof(ph)), 0);
	assert_string_equal(ph, "closed the connection without answering the CONNECT");
	assert_int_equal(proxy_read_answer("\x16\x03\x01\x00", 4, ph, sizeof(ph)), 0);
	assert_non_null(strstr(ph, "(4 bytes: \"....\")"));
	/* A long phrase is cut. */
	assert_int_equal(
	    answer("HTTP/1.1 500 "
	           "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"
	           "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx\r\n",
	           ph, sizeof(ph)),
	    500);
	assert_int_equal(strlen(ph), 64);
}

static void test_permanent(void **state)
{
	(void)state;
	assert_true(proxy_status_is_permanent(407));
	assert_true(proxy_status_is_permanent(403));
	assert_true(proxy_status_is_permanent(401)); /* tinyproxy's answer to a wrong password */
	assert_false(proxy_status_is_permanent(500));
	assert_false(proxy_status_is_permanent(502));
	assert_false(proxy_status_is_permanent(404));
	assert_false(proxy_status_is_permanent(0));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_parse_good),
	    cmocka_unit_test(test_parse_bad),
	    cmocka_unit_test(test_errors_never_quote),
	    cmocka_unit_test(test_auth_limit),
	    cmocka_unit_test(test_equal),
	    cmocka_unit_test(test_no_proxy),
	    cmocka_unit_test(test_env_lower_first),
	    cmocka_unit_test(test_env_empty_is_unset),
	    cmocka_unit_test(test_env_bad_warns_without_value),
	    cmocka_unit_test(test_choose),
	    cmocka_unit_test(test_connect_target),
	    cmocka_unit_test(test_read_answer),
	    cmocka_unit_test(test_permanent),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
