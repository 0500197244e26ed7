/* Unit tests for backoff: exact delays, the cap, jitter bounds and HTTP status handling. */
#include <limits.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "wsbeat/backoff.h"
#include "wsbeat/rng.h"

#define HOUR_MS (3600 * 1000LL)

static const struct cfg_reconnect plain = {.initial_ms = 1000,
                                           .max_ms = 60000,
                                           .multiplier = 2.0,
                                           .jitter = 0.0,
                                           .stable_after_ms = 30000};

static void test_no_jitter_sequence(void **state)
{
	static const int64_t want[] = {1000, 2000, 4000, 8000, 16000, 32000, 60000, 60000, 60000};
	(void)state;

	for (unsigned k = 1; k <= sizeof(want) / sizeof(want[0]); k++)
		assert_int_equal(backoff_delay_ms(&plain, k, 0.0), want[k - 1]);
	/* k = 0 is treated as the first failure. */
	assert_int_equal(backoff_delay_ms(&plain, 0, 0.0), 1000);
}

static void test_r_zero_means_no_reduction(void **state)
{
	struct cfg_reconnect p = plain;
	(void)state;

	p.jitter = 0.5;
	for (unsigned k = 1; k <= 8; k++) {
		int64_t d = backoff_delay_ms(&plain, k, 0.0);
		assert_int_equal(backoff_delay_ms(&p, k, 0.0), d);
	}
	p.jitter = 1.0;
	assert_int_equal(backoff_delay_ms(&p, 3, 0.0), 4000);
}

static void test_fractional_multiplier(void **state)
{
	struct cfg_reconnect p = {.initial_ms = 1000, .max_ms = 10000, .multiplier = 1.5};
	static const int64_t want[] = {1000, 1500, 2250, 3375, 5063, 7594, 10000, 10000};
	(void)state;

	/* 1000 * 1.5^(k-1), rounded to the nearest millisecond, capped at 10 s. */
	for (unsigned k = 1; k <= sizeof(want) / sizeof(want[0]); k++)
		assert_int_equal(backoff_delay_ms(&p, k, 0.0), want[k - 1]);
}

static void test_multiplier_one_is_constant(void **state)
{
	struct cfg_reconnect p = {.initial_ms = 750, .max_ms = 60000, .multiplier = 1.0};
	(void)state;

	assert_int_equal(backoff_delay_ms(&p, 1, 0.0), 750);
	assert_int_equal(backoff_delay_ms(&p, 2, 0.0), 750);
	assert_int_equal(backoff_delay_ms(&p, 1000, 0.0), 750);
}

static void test_initial_equals_max(void **state)
{
	struct cfg_reconnect p = {.initial_ms = 5000, .max_ms = 5000, .multiplier = 3.0};
	(void)state;

	for (unsigned k = 1; k < 20; k++)
		assert_int_equal(backoff_delay_ms(&p, k, 0.0), 5000);
}

static void test_large_k_saturates(void **state)
{
	struct cfg_reconnect p = plain;
	(void)state;

	assert_int_equal(backoff_delay_ms(&p, 1000, 0.0), 60000);
	assert_int_equal(backoff_delay_ms(&p, UINT_MAX, 0.0), 60000);
	/* A large multiplier and a large max must not overflow either. */
	p.multiplier = 100.0;
	p.max_ms = 24 * HOUR_MS;
	assert_int_equal(backoff_delay_ms(&p, 1000, 0.0), 24 * HOUR_MS);
	assert_int_equal(backoff_delay_ms(&p, UINT_MAX, 0.0), 24 * HOUR_MS);
	p.jitter = 0.5;
	assert_int_equal(backoff_delay_ms(&p, 1000, 0.5), 18 * HOUR_MS);
}

static void test_jitter_exact(void **state)
{
	struct cfg_reconnect p = plain;
	(void)state;

	/* d - r * jitter * d */
	p.jitter = 0.5;
	assert_int_equal(backoff_delay_ms(&p, 1, 0.5), 750);
	assert_int_equal(backoff_delay_ms(&p, 4, 0.25), 7000);
	assert_int_equal(backoff_delay_ms(&p, 10, 0.5), 45000);
	p.jitter = 0.1;
	assert_int_equal(backoff_delay_ms(&p, 2, 0.5), 1900);
	/* Full jitter: anywhere in [0, d]. */
	p.jitter = 1.0;
	assert_int_equal(backoff_delay_ms(&p, 1, 0.5), 500);
	assert_int_equal(backoff_delay_ms(&p, 7, 0.75), 15000);
	assert_in_range(backoff_delay_ms(&p, 7, 0.9999999), 0, 1);
}

static void check_bounds(const struct cfg_reconnect *p, unsigned k, double r)
{
	int64_t d = backoff_delay_ms(&(struct cfg_reconnect){.initial_ms = p->initial_ms,
	                                                     .max_ms = p->max_ms,
	                                                     .multiplier = p->multiplier},
	                             k, 0.0);
	int64_t v = backoff_delay_ms(p, k, r);
	double lo = (double)d * (1.0 - p->jitter);

	/* Rounding to whole milliseconds may cost at most half of one. */
	if ((double)v < lo - 0.5 || v > d)
		fail_msg("k=%u r=%f jitter=%f: %lld not in [%f, %lld]", k, r, p->jitter,
		         (long long)v, lo, (long long)d);
}

static void test_jitter_bounds_random(void **state)
{
	static const double jitters[] = {0.0, 0.1, 0.5, 0.9, 1.0};
	struct rng rng;
	(void)state;

	rng_seed(&rng, 42);
	for (size_t j = 0; j < sizeof(jitters) / sizeof(jitters[0]); j++) {
		struct cfg_reconnect p = plain;
		p.jitter = jitters[j];
		for (int i = 0; i < 20000; i++) {
			unsigned k = 1 + (unsigned)(rng_next(&rng) % 12);
			check_bounds(&p, k, rng_unit(&rng));
		}
		check_bounds(&p, 5, 0.0);
		check_bounds(&p, 5, 0.99999999);
	}
}

static void test_close_planned(void **state)
{
	static const int planned[] = {1012, 1013};
	static const int not_planned[] = {1000, 1001, 1002, 1006, 1011, 1014, 1015, 4000};

	(void)state;
	for (size_t i = 0; i < sizeof(planned) / sizeof(planned[0]); i++)
		assert_true(backoff_close_is_planned(planned[i]));
	for (size_t i = 0; i < sizeof(not_planned) / sizeof(not_planned[0]); i++)
		assert_false(backoff_close_is_planned(not_planned[i]));
}

static void test_status_permanent(void **state)
{
	(void)state;

	assert_true(backoff_status_is_permanent(401));
	assert_true(backoff_status_is_permanent(403));
	assert_true(backoff_status_is_permanent(404));
	assert_false(backoff_status_is_permanent(0));
	assert_false(backoff_status_is_permanent(400));
	assert_false(backoff_status_is_permanent(429));
	assert_false(backoff_status_is_permanent(500));
	assert_false(backoff_status_is_permanent(503));

	/* Permanent statuses wait the maximum whatever the policy said or Retry-After. */
	assert_int_equal(backoff_for_status(&plain, 401, -1, 1000), 60000);
	assert_int_equal(backoff_for_status(&plain, 403, -1, 4000), 60000);
	assert_int_equal(backoff_for_status(&plain, 404, 5000, 2000), 60000);
	assert_int_equal(backoff_for_status(&plain, 404, 2 * HOUR_MS, 2000), 60000);
}

static void test_status_retry_after(void **state)
{
	(void)state;

	/* At least Retry-After, at least the policy. */
	assert_int_equal(backoff_for_status(&plain, 429, 30000, 1000), 30000);
	assert_int_equal(backoff_for_status(&plain, 503, 30000, 1000), 30000);
	assert_int_equal(backoff_for_status(&plain, 429, 500, 8000), 8000);
	assert_int_equal(backoff_for_status(&plain, 503, 0, 8000), 8000);
	assert_int_equal(backoff_for_status(&plain, 429, 8000, 8000), 8000);
	/* Beyond max is allowed for Retry-After, but never beyond one hour. */
	assert_int_equal(backoff_for_status(&plain, 429, 120000, 1000), 120000);
	assert_int_equal(backoff_for_status(&plain, 429, HOUR_MS, 1000), HOUR_MS);
	assert_int_equal(backoff_for_status(&plain, 429, HOUR_MS + 1, 1000), HOUR_MS);
	assert_int_equal(backoff_for_status(&plain, 503, 24 * HOUR_MS, 1000), HOUR_MS);
	assert_int_equal(backoff_for_status(&plain, 503, INT64_MAX, 1000), HOUR_MS);
}

static void test_status_unchanged(void **state)
{
	static const int others[] = {0, 200, 301, 400, 402, 408, 500, 502, 504};
	(void)state;

	/* 429/503 without Retry-After keep the policy's delay. */
	assert_int_equal(backoff_for_status(&plain, 429, -1, 1234), 1234);
	assert_int_equal(backoff_for_status(&plain, 503, -1, 1234), 1234);
	/* Any other status ignores Retry-After. */
	for (size_t i = 0; i < sizeof(others) / sizeof(others[0]); i++) {
		assert_int_equal(backoff_for_status(&plain, others[i], -1, 1234), 1234);
		assert_int_equal(backoff_for_status(&plain, others[i], 30000, 1234), 1234);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_no_jitter_sequence),
	    cmocka_unit_test(test_r_zero_means_no_reduction),
	    cmocka_unit_test(test_fractional_multiplier),
	    cmocka_unit_test(test_multiplier_one_is_constant),
	    cmocka_unit_test(test_initial_equals_max),
	    cmocka_unit_test(test_large_k_saturates),
	    cmocka_unit_test(test_jitter_exact),
	    cmocka_unit_test(test_jitter_bounds_random),
	    cmocka_unit_test(test_status_permanent),
	    cmocka_unit_test(test_close_planned),
	    cmocka_unit_test(test_status_retry_after),
	    cmocka_unit_test(test_status_unchanged),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
