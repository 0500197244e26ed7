/* Unit tests for tls_sni_allowed: no IP literal in the SNI (RFC 6066 section 3). */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "wsbeat/tls.h"

static void test_names_are_sent(void **state)
{
	/* "1.2.3" is not a dotted quad for inet_pton: a (strange) name. */
	static const char *const names[] = {"example.com",     "localhost",          "a",
	                                    "1.2.3.4.example", "stream.binance.com", "1.2.3",
	                                    "[example.com]"};
	(void)state;
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
		assert_true(tls_sni_allowed(names[i]));
}

static void test_addresses_are_not(void **state)
{
	static const char *const addrs[] = {
	    "127.0.0.1",     "10.0.0.255",       "::1", "[::1]", "2001:db8::1",
	    "[2001:db8::1]", "::ffff:192.0.2.1", "",    NULL};
	(void)state;
	for (size_t i = 0; i < sizeof(addrs) / sizeof(addrs[0]); i++)
		assert_false(tls_sni_allowed(addrs[i]));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_names_are_sent),
	    cmocka_unit_test(test_addresses_are_not),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
