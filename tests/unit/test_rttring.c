/* Unit tests for rttring: the 16-bit round-trip code (exact, then within 0.1 %, monotonic,
 * saturating) and the ring (order, wrap-around, size). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "wsbeat/rttring.h"

static void test_small_values_are_exact(void **state)
{
	(void)state;
	for (int64_t us = 0; us < 2048; us++)
		assert_int_equal(rtt_decode(rtt_code(us)), us);
	assert_int_equal(rtt_code(-5), 0);
}

static void test_large_values_within_a_thousandth(void **state)
{
	(void)state;
	/* 2 ms to 20 minutes, in steps of about 0.7 %. */
	for (int64_t us = 2048; us < 1200LL * 1000 * 1000; us += us / 137 + 1) {
		int64_t back = rtt_decode(rtt_code(us));
		assert_true(back <= us);
		assert_true((double)(us - back) <= (double)us / 1024.0);
	}
	/* The boundaries of each exponent decode exactly. */
	for (unsigned e = 0; e < 30; e++) {
		int64_t lo = (int64_t)1024 << e;
		if (lo >= 2048)
			assert_int_equal(rtt_decode(rtt_code(lo)), lo);
	}
}

static void test_codes_are_monotonic_and_saturate(void **state)
{
	uint16_t prev = 0;
	(void)state;

	for (int64_t us = 1; us < (1LL << 42); us += us / 50 + 1) {
		uint16_t c = rtt_code(us);
		assert_true(c >= prev);
		prev = c;
	}
	assert_int_equal(rtt_code(INT64_MAX), RTT_CODE_MAX);
	assert_true(rtt_decode(RTT_CODE_MAX) > (1LL << 62));
	/* A code that was never produced still decodes without overflow. */
	assert_int_equal(rtt_decode(UINT16_MAX), rtt_decode(RTT_CODE_MAX));
}

static void test_ring_keeps_the_newest_in_order(void **state)
{
	struct rtt_ring r = {0};
	(void)state;

	assert_int_equal(r.n, 0);
	rtt_ring_push(&r, 10);
	rtt_ring_push(&r, 20);
	assert_int_equal(r.n, 2);
	assert_int_equal(rtt_ring_get(&r, 0), 10);
	assert_int_equal(rtt_ring_get(&r, 1), 20);
	for (int64_t i = 0; i < 3 * RTT_RING_N + 5; i++)
		rtt_ring_push(&r, 100 + i);
	assert_int_equal(r.n, RTT_RING_N);
	for (unsigned i = 0; i < RTT_RING_N; i++)
		assert_int_equal(rtt_ring_get(&r, i), 100 + 2 * RTT_RING_N + 5 + i);
}

static void test_ring_is_small(void **state)
{
	(void)state;
	/* The per-feed budget of issue #17 is 256 bytes. */
	assert_true(sizeof(struct rtt_ring) <= 136);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_small_values_are_exact),
	    cmocka_unit_test(test_large_values_within_a_thousandth),
	    cmocka_unit_test(test_codes_are_monotonic_and_saturate),
	    cmocka_unit_test(test_ring_keeps_the_newest_in_order),
	    cmocka_unit_test(test_ring_is_small),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
