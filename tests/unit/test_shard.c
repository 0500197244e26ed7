/* Unit tests for shard: parsing K/N, ownership (each feed exactly once, few moves from N to
 * N+1) and the per-shard metrics address. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "wsbeat/shard.h"

static void test_parse(void **state)
{
	unsigned k, n;
	(void)state;

	assert_int_equal(shard_parse("0/1", &k, &n), 0);
	assert_int_equal(k, 0);
	assert_int_equal(n, 1);
	assert_int_equal(shard_parse("3/4", &k, &n), 0);
	assert_int_equal(k, 3);
	assert_int_equal(shard_parse("4/4", &k, &n), -1);
	assert_int_equal(shard_parse("1/0", &k, &n), -1);
	assert_int_equal(shard_parse("1", &k, &n), -1);
	assert_int_equal(shard_parse("1/2x", &k, &n), -1);
	assert_int_equal(shard_parse("0/1025", &k, &n), -1);
}

static void test_each_feed_once_and_few_moves(void **state)
{
	char name[32];
	unsigned moved = 0;
	(void)state;

	for (int i = 0; i < 4000; i++) {
		unsigned owners = 0, s4, s5;
		snprintf(name, sizeof(name), "feed-%d", i);
		for (unsigned k = 0; k < 4; k++)
			owners += shard_owns(name, k, 4);
		assert_int_equal(owners, 1);
		s4 = shard_of(name, 4);
		s5 = shard_of(name, 5);
		if (s4 != s5) {
			assert_int_equal(s5, 4); /* only to the new shard */
			moved++;
		}
	}
	/* About a fifth moves to the fifth shard. */
	assert_true(moved > 600 && moved < 1000);
}

static void test_listen(void **state)
{
	char out[64], err[128];
	(void)state;

	assert_int_equal(shard_listen("127.0.0.1:9464", 0, out, sizeof(out), err, sizeof(err)), 0);
	assert_string_equal(out, "127.0.0.1:9464");
	assert_int_equal(shard_listen("127.0.0.1:9464", 3, out, sizeof(out), err, sizeof(err)), 0);
	assert_string_equal(out, "127.0.0.1:9467");
	assert_int_equal(shard_listen("[::1]:9464", 2, out, sizeof(out), err, sizeof(err)), 0);
	assert_string_equal(out, "[::1]:9466");
	assert_int_equal(shard_listen("127.0.0.1:65535", 1, out, sizeof(out), err, sizeof(err)),
	                 -1);
	assert_string_equal(err, "port 65535 plus shard 1 is beyond 65535");
	assert_int_equal(shard_listen("nonsense", 1, out, sizeof(out), err, sizeof(err)), -1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_parse),
	    cmocka_unit_test(test_each_feed_once_and_few_moves),
	    cmocka_unit_test(test_listen),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
