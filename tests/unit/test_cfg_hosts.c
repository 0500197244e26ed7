/*
 * Unit tests for the hosts setting (cfg_hosts.c): entries parsed, defaults, which entry a host
 * matches (wildcards, case, first match wins), and every error with its FILE:LINE.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "wsbeat/cfg.h"

#include "cfg_helpers.h"

#define FEED "feeds = ( { name = \"a\"; url = \"wss://h/\"; } );\n"

static void test_entries(void **state)
{
	struct cfg *c;
	(void)state;

	c = load_ok(FEED);
	assert_int_equal(c->n_hosts, 0);
	assert_int_equal(cfg_host_find(c, "h"), -1);
	cfg_free(c);

	c = load_ok("hosts = (\n"
	            "  { match = \"*.OKX.com\"; max_connects_per_second = 3; max_connections = 30; "
	            "},\n"
	            "  { match = \"127.0.0.1\"; max_connections = 5; },\n"
	            "  { match = \"b?.example.[ab]\"; max_connects_per_second = 1000000; }\n"
	            ");\n" FEED);
	assert_int_equal(c->n_hosts, 3);
	assert_string_equal(c->hosts[0].match, "*.okx.com"); /* lower case */
	assert_int_equal(c->hosts[0].max_connects_per_second, 3);
	assert_int_equal(c->hosts[0].max_connections, 30);
	assert_int_equal(c->hosts[0].line, 2);
	assert_int_equal(c->hosts[1].max_connects_per_second, 0); /* unset: no per-host rate */
	assert_int_equal(c->hosts[1].max_connections, 5);
	assert_int_equal(c->hosts[2].max_connections, 0); /* unset: no cap */
	assert_int_equal(c->hosts[2].line, 4);
	cfg_free(c);
	/* An empty list is no entries. */
	c = load_ok("hosts = ();\n" FEED);
	assert_int_equal(c->n_hosts, 0);
	cfg_free(c);
}

static void test_find(void **state)
{
	struct cfg *c;
	(void)state;

	c = load_ok("hosts = (\n"
	            "  { match = \"ws.okx.com\"; max_connects_per_second = 5; },\n"
	            "  { match = \"*.okx.com\"; max_connects_per_second = 3; },\n"
	            "  { match = \"127.0.0.1\"; max_connections = 5; },\n"
	            "  { match = \"::1\"; max_connections = 5; },\n"
	            "  { match = \"feed-[0-9].test\"; max_connections = 5; },\n"
	            "  { match = \"*\"; max_connects_per_second = 50; }\n"
	            ");\n" FEED);
	/* First match wins: the specific entry before the wildcard one. */
	assert_int_equal(cfg_host_find(c, "ws.okx.com"), 0);
	assert_int_equal(cfg_host_find(c, "wsaws.okx.com"), 1);
	assert_int_equal(cfg_host_find(c, "a.b.okx.com"), 1);   /* '*' crosses dots */
	assert_int_equal(cfg_host_find(c, "WSAWS.OKX.COM"), 1); /* any case */
	assert_int_equal(cfg_host_find(c, "okx.com"), 5);       /* "*." needs a label */
	assert_int_equal(cfg_host_find(c, "127.0.0.1"), 2);
	assert_int_equal(cfg_host_find(c, "127.0.0.10"), 5);
	assert_int_equal(cfg_host_find(c, "::1"), 3);
	assert_int_equal(cfg_host_find(c, "feed-7.test"), 4);
	assert_int_equal(cfg_host_find(c, "feed-x.test"), 5);
	cfg_free(c);
}

static void test_errors(void **state)
{
	(void)state;

	expect_err("hosts = { match = \"x\"; };\n" FEED, "t.conf:1: hosts: ", "must be a list");
	expect_err("hosts = [ \"x\" ];\n" FEED, "t.conf:1: hosts: ", "must be a list");
	expect_err("hosts = ( \"x\" );\n" FEED,
	           "t.conf:1: hosts[0]: ", "must be a group { match = ...; ... }, not a string");
	expect_err("hosts = (\n  { max_connections = 3; }\n);\n" FEED,
	           "t.conf:2: hosts[0]: ", "missing required setting 'match'");
	expect_err("hosts = ( { match = \"\"; max_connections = 3; } );\n" FEED,
	           "t.conf:1: hosts[0].match: ", "must not be empty");
	expect_err("hosts = ( { match = 3; max_connections = 3; } );\n" FEED,
	           "t.conf:1: hosts[0].match: ", "must be a string, not an integer");
	expect_err("hosts = ( { match = \"ws.okx.com/x\"; max_connections = 3; } );\n" FEED,
	           "t.conf:1: hosts[0].match: ", "must be a host name or address");
	expect_err("hosts = ( { match = \"a b\"; max_connections = 3; } );\n" FEED,
	           "t.conf:1: hosts[0].match: ", "must be a host name or address");
	expect_err("hosts = (\n  { match = \"x\";\n    max_connects_per_second = 0; }\n);\n" FEED,
	           "t.conf:3: hosts[0].max_connects_per_second: ", "must be >= 1 (got 0)");
	expect_err(
	    "hosts = ( { match = \"x\"; max_connects_per_second = 1000001; } );\n" FEED,
	    "t.conf:1: hosts[0].max_connects_per_second: ", "must be <= 1000000 (got 1000001)");
	expect_err("hosts = ( { match = \"x\"; max_connects_per_second = 2.5; } );\n" FEED,
	           "t.conf:1: hosts[0].max_connects_per_second: ",
	           "must be an integer, not a decimal number");
	expect_err("hosts = ( { match = \"x\"; max_connections = 0; } );\n" FEED,
	           "t.conf:1: hosts[0].max_connections: ", "must be >= 1 (got 0)");
	expect_err("hosts = ( { match = \"x\"; max_connections = -1; } );\n" FEED,
	           "t.conf:1: hosts[0].max_connections: ", "must be >= 1 (got -1)");
	expect_err("hosts = (\n  { match = \"x\"; }\n);\n" FEED, "t.conf:2: hosts[0]: ",
	           "sets no limit: give max_connects_per_second, max_connections or both");
	expect_err("hosts = (\n  { match = \"x\"; max_conections = 3; }\n);\n" FEED,
	           "t.conf:2: hosts[0]: ",
	           "unknown setting 'max_conections'; did you mean 'max_connections'?");
	expect_err("hosts = (\n  { match = \"X.test\"; max_connections = 3; },\n"
	           "  { match = \"x.TEST\"; max_connections = 4; }\n);\n" FEED,
	           "t.conf:3: hosts[1].match: ",
	           "\"x.test\" is already hosts[0] (line 2); the first entry that matches wins");
	expect_err("hots = ();\n" FEED, "t.conf:1: ", "did you mean 'hosts'?");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_entries),
	    cmocka_unit_test(test_find),
	    cmocka_unit_test(test_errors),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
