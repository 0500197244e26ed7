/* Unit tests for url: accepted forms, their renderings, and every rejection. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "wsbeat/url.h"

struct good {
	const char *in;
	bool tls;
	const char *host;
	unsigned port;
	const char *path;
	const char *host_header;
	const char *display;
};

static const struct good goods[] = {
    {"ws://example.com", false, "example.com", 80, "/", "example.com", "ws://example.com/"},
    {"wss://example.com", true, "example.com", 443, "/", "example.com", "wss://example.com/"},
    {"WSS://Example.COM/Stream", true, "example.com", 443, "/Stream", "example.com",
     "wss://example.com/Stream"},
    {"wS://h:8080/a/b", false, "h", 8080, "/a/b", "h:8080", "ws://h:8080/a/b"},
    {"ws://h:80/", false, "h", 80, "/", "h", "ws://h/"},
    {"wss://h:443/x", true, "h", 443, "/x", "h", "wss://h/x"},
    {"wss://h:80/x", true, "h", 80, "/x", "h:80", "wss://h:80/x"},
    {"ws://h:65535", false, "h", 65535, "/", "h:65535", "ws://h:65535/"},
    {"ws://h/p?token=secret&x=1", false, "h", 80, "/p?token=secret&x=1", "h", "ws://h/p"},
    {"ws://h?token=secret", false, "h", 80, "/?token=secret", "h", "ws://h/"},
    {"wss://user:pass@h.example/ws", true, "h.example", 443, "/ws", "h.example",
     "wss://h.example/ws"},
    {"wss://a@b@h:9000/", true, "h", 9000, "/", "h:9000", "wss://h:9000/"},
    {"ws://[::1]:9001/ws", false, "::1", 9001, "/ws", "[::1]:9001", "ws://[::1]:9001/ws"},
    {"wss://[2001:DB8::1]/", true, "2001:db8::1", 443, "/", "[2001:db8::1]",
     "wss://[2001:db8::1]/"},
    {"ws://127.0.0.1:1/", false, "127.0.0.1", 1, "/", "127.0.0.1:1", "ws://127.0.0.1:1/"},
    {"ws://my_host-1.example~x/", false, "my_host-1.example~x", 80, "/", "my_host-1.example~x",
     "ws://my_host-1.example~x/"},
};

static void test_good_urls(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(goods) / sizeof(goods[0]); i++) {
		const struct good *g = &goods[i];
		char err[128] = "";
		struct url u;

		if (url_parse(g->in, &u, err, sizeof(err)) != 0)
			fail_msg("%s: %s", g->in, err);
		assert_int_equal(u.tls, g->tls);
		assert_string_equal(u.host, g->host);
		assert_int_equal(u.port, g->port);
		assert_string_equal(u.path, g->path);
		assert_string_equal(u.host_header, g->host_header);
		assert_string_equal(u.display, g->display);
		url_fini(&u);
	}
}

struct bad {
	const char *in;
	const char *why; /* substring of the error */
};

static const struct bad bads[] = {
    {"", "empty URL"},
    {"example.com/ws", "must start with ws:// or wss://"},
    {"://h/", "must start with ws:// or wss://"},
    {"http://h/", "unsupported URL scheme 'http'"},
    {"https://h/", "unsupported URL scheme 'https'"},
    {"wsx://h/", "unsupported URL scheme 'wsx'"},
    {"ws:/h/", "must start with ws:// or wss://"},
    {"ws://", "empty host"},
    {"ws:///path", "empty host"},
    {"ws://:80/", "empty host"},
    {"ws://user@/", "empty host"},
    {"ws://h:/", "empty port"},
    {"ws://h:0/", "port 0"},
    {"ws://h:65536/", "out of range"},
    {"ws://h:99999999999/", "out of range"},
    {"ws://h:8o/", "not a number"},
    {"ws://h:-1/", "not a number"},
    {"ws://h/p#frag", "fragment"},
    {"ws://h/#", "fragment"},
    {"ws://h/a b", "whitespace"},
    {" ws://h/", "whitespace"},
    {"ws://h/\t", "whitespace"},
    {"ws://h/\r\nX: y", "whitespace or a control"},
    {"ws://h/\x7f", "control"},
    {"ws://h\x01/", "control"},
    {"ws://h\xc3\xa9/", "non-ASCII"},
    {"ws://[::1/", "closing ']'"},
    {"ws://[::1]x/", "unexpected 'x'"},
    {"ws://[zz::1]/", "invalid IPv6"},
    {"ws://[]/", "empty host"},
    {"ws://h%41/", "invalid character '%'"},
    {"ws://a:b:c/", "not a number"},
};

static void test_bad_urls(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(bads) / sizeof(bads[0]); i++) {
		char err[128] = "";
		struct url u;

		if (url_parse(bads[i].in, &u, err, sizeof(err)) != -1)
			fail_msg("accepted bad URL #%zu '%s'", i, bads[i].in);
		if (!strstr(err, bads[i].why))
			fail_msg("#%zu: error '%s' lacks '%s'", i, err, bads[i].why);
		/* A failed parse leaves nothing to free, and url_fini must still be safe. */
		assert_null(u.host);
		url_fini(&u);
	}
}

static void test_long_host(void **state)
{
	char in[400], err[128];
	struct url u;

	(void)state;
	memset(in, 'a', sizeof(in));
	memcpy(in, "ws://", 5);
	in[5 + 256] = '\0';
	assert_int_equal(url_parse(in, &u, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "longer than"));
	in[5 + 255] = '\0';
	assert_int_equal(url_parse(in, &u, err, sizeof(err)), 0);
	assert_int_equal(strlen(u.host), 255);
	url_fini(&u);
}

/* The display form is what logs show: it must never carry a credential. */
static void test_display_hides_secrets(void **state)
{
	char err[128];
	struct url u;

	(void)state;
	assert_int_equal(url_parse("wss://alice:s3cret@feed.example:8443/v1/ws?apikey=TOPSECRET",
	                           &u, err, sizeof(err)),
	                 0);
	assert_null(strstr(u.display, "s3cret"));
	assert_null(strstr(u.display, "alice"));
	assert_null(strstr(u.display, "TOPSECRET"));
	assert_null(strstr(u.host_header, "alice"));
	assert_string_equal(u.display, "wss://feed.example:8443/v1/ws");
	assert_string_equal(u.path, "/v1/ws?apikey=TOPSECRET");
	url_fini(&u);
}

static void test_numeric_host(void **state)
{
	char err[128];
	struct url u = {0};

	(void)state;
	assert_false(url_host_is_numeric(&u));
	assert_int_equal(url_parse("ws://10.1.2.3/", &u, err, sizeof(err)), 0);
	assert_true(url_host_is_numeric(&u));
	url_fini(&u);
	assert_int_equal(url_parse("ws://[fe80::1]/", &u, err, sizeof(err)), 0);
	assert_true(url_host_is_numeric(&u));
	url_fini(&u);
	assert_int_equal(url_parse("ws://example.com/", &u, err, sizeof(err)), 0);
	assert_false(url_host_is_numeric(&u));
	url_fini(&u);
	assert_int_equal(url_parse("ws://1.2.3/", &u, err, sizeof(err)), 0);
	assert_false(url_host_is_numeric(&u));
	url_fini(&u);
}

static void test_fini_twice(void **state)
{
	char err[128];
	struct url u;

	(void)state;
	assert_int_equal(url_parse("ws://h/", &u, err, sizeof(err)), 0);
	url_fini(&u);
	url_fini(&u);
}

static void test_hostport(void **state)
{
	char host[64], err[128];
	uint16_t port;

	(void)state;
	assert_int_equal(
	    url_parse_hostport("127.0.0.1:9464", host, sizeof(host), &port, err, sizeof(err)), 0);
	assert_string_equal(host, "127.0.0.1");
	assert_int_equal(port, 9464);
	assert_int_equal(url_parse_hostport("[::1]:1", host, sizeof(host), &port, err, sizeof(err)),
	                 0);
	assert_string_equal(host, "::1");
	assert_int_equal(port, 1);
	assert_int_equal(
	    url_parse_hostport("LocalHost:80", host, sizeof(host), &port, err, sizeof(err)), 0);
	assert_string_equal(host, "localhost");
	assert_int_equal(
	    url_parse_hostport("127.0.0.1", host, sizeof(host), &port, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "missing ':PORT'"));
	assert_int_equal(url_parse_hostport(":9464", host, sizeof(host), &port, err, sizeof(err)),
	                 -1);
	assert_int_equal(url_parse_hostport("h:0", host, sizeof(host), &port, err, sizeof(err)),
	                 -1);
	assert_int_equal(url_parse_hostport("h:70000", host, sizeof(host), &port, err, sizeof(err)),
	                 -1);
	assert_int_equal(url_parse_hostport("h :1", host, sizeof(host), &port, err, sizeof(err)),
	                 -1);
	assert_int_equal(url_parse_hostport("abcdef:1", host, 4, &port, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "too long"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_good_urls),    cmocka_unit_test(test_bad_urls),
	    cmocka_unit_test(test_long_host),    cmocka_unit_test(test_display_hides_secrets),
	    cmocka_unit_test(test_numeric_host), cmocka_unit_test(test_fini_twice),
	    cmocka_unit_test(test_hostport),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
