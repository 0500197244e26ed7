/* Unit tests for json: the escape of every byte, UTF-8 validation (valid sequences pass,
 * invalid bytes become \u00XX), measured lengths equal written lengths, a decode round trip of
 * random bytes, and base64 against RFC 4648's vectors. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "wsbeat/json.h"
#include "wsbeat/rng.h"

/* Escapes n bytes into a NUL-terminated string, checking the measured length on the way. */
static char *esc(const void *src, size_t n)
{
	size_t want = json_escape(NULL, src, n);
	char *out = malloc(want + 1);

	assert_non_null(out);
	assert_int_equal(json_escape(out, src, n), want);
	assert_true(want <= 6 * n);
	out[want] = '\0';
	return out;
}

static void assert_esc(const char *src, size_t n, const char *want)
{
	char *got = esc(src, n);

	assert_string_equal(got, want);
	free(got);
}

/* What one byte on its own must become, written independently of the encoder. */
static void expected_single(unsigned c, char *out)
{
	const char *named[256] = {['\b'] = "\\b", ['\f'] = "\\f", ['\n'] = "\\n", ['\r'] = "\\r",
	                          ['\t'] = "\\t", ['"'] = "\\\"", ['\\'] = "\\\\"};

	if (named[c])
		strcpy(out, named[c]);
	else if (c < 0x20 || c >= 0x7f)
		sprintf(out, "\\u%04x", c);
	else
		sprintf(out, "%c", c);
}

static void test_every_byte_alone(void **state)
{
	char want[8];

	for (unsigned c = 0; c < 256; c++) {
		char b = (char)c;
		expected_single(c, want);
		assert_esc(&b, 1, want);
	}
}

/* 0x00..0xff in one string: no two neighbours form valid UTF-8, so it is the concatenation. */
static void test_all_bytes_in_one(void **state)
{
	char src[256], want[256 * 6 + 1] = "", one[8], *got;

	for (unsigned c = 0; c < 256; c++) {
		src[c] = (char)c;
		expected_single(c, one);
		strcat(want, one);
	}
	got = esc(src, sizeof(src));
	assert_string_equal(got, want);
	free(got);
}

static void test_valid_utf8_passes(void **state)
{
	static const char *const ok[] = {
	    "plain ascii",
	    "caf\xc3\xa9",                                      /* U+00E9 */
	    "\xc2\x80\xdf\xbf",                                 /* U+0080, U+07FF */
	    "\xe0\xa0\x80\xe2\x82\xac\xed\x9f\xbf",             /* U+0800, U+20AC, U+D7FF */
	    "\xee\x80\x80\xef\xbf\xbd\xef\xbf\xbf",             /* U+E000, U+FFFD, U+FFFF */
	    "\xf0\x90\x80\x80\xf0\x9d\x84\x9e\xf4\x8f\xbf\xbf", /* U+10000, U+1D11E, U+10FFFF */
	    "\xe2\x80\xa8 /",                                   /* U+2028 and '/' need no escape */
	};

	for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++)
		assert_esc(ok[i], strlen(ok[i]), ok[i]);
}

static void test_invalid_utf8(void **state)
{
	/* overlong forms */
	assert_esc("\xc0\xaf", 2, "\\u00c0\\u00af");
	assert_esc("\xc1\xbf", 2, "\\u00c1\\u00bf");
	assert_esc("\xe0\x80\xaf", 3, "\\u00e0\\u0080\\u00af");
	assert_esc("\xe0\x9f\xbf", 3, "\\u00e0\\u009f\\u00bf");
	assert_esc("\xf0\x8f\xbf\xbf", 4, "\\u00f0\\u008f\\u00bf\\u00bf");
	/* surrogates U+D800 and U+DFFF */
	assert_esc("\xed\xa0\x80", 3, "\\u00ed\\u00a0\\u0080");
	assert_esc("\xed\xbf\xbf", 3, "\\u00ed\\u00bf\\u00bf");
	/* above U+10FFFF, and bytes that never appear */
	assert_esc("\xf4\x90\x80\x80", 4, "\\u00f4\\u0090\\u0080\\u0080");
	assert_esc("\xf5\x80\x80\x80", 4, "\\u00f5\\u0080\\u0080\\u0080");
	assert_esc("\xfe\xff", 2, "\\u00fe\\u00ff");
	/* lone continuation byte, truncated sequences, a sequence cut by ASCII */
	assert_esc("a\x80z", 3, "a\\u0080z");
	assert_esc("\xe2\x82", 2, "\\u00e2\\u0082");
	assert_esc("\xf0\x9d\x84", 3, "\\u00f0\\u009d\\u0084");
	assert_esc("\xe2\x82"
	           "A\xe2\x82\xac",
	           6, "\\u00e2\\u0082A\xe2\x82\xac");
	/* a valid sequence right after an invalid byte survives */
	assert_esc("\xff\xc3\xa9", 3, "\\u00ff\xc3\xa9");
}

static void test_controls_and_quotes(void **state)
{
	assert_esc("\"q\" \\ /", 7, "\\\"q\\\" \\\\ /");
	assert_esc("a\0b", 3, "a\\u0000b");
	assert_esc("\x1f\x7f\x1b[0m", 6, "\\u001f\\u007f\\u001b[0m");
	assert_esc("", 0, "");
	assert_int_equal(json_escape(NULL, "", 0), 0);
}

/* Reverses the escape, reading \u00XX as the byte XX: must give back the original bytes. */
static size_t unescape(const char *s, uint8_t *out)
{
	size_t n = 0;
	static const char from[] = "bfnrt\"\\", to[] = "\b\f\n\r\t\"\\";

	while (*s) {
		unsigned v;
		if (*s != '\\') {
			assert_true((uint8_t)*s >= 0x20 && *s != '"');
			out[n++] = (uint8_t)*s++;
		} else if (s[1] == 'u') {
			assert_int_equal(sscanf(s + 2, "%4x", &v), 1);
			assert_true(v < 0x100);
			out[n++] = (uint8_t)v;
			s += 6;
		} else {
			const char *p = strchr(from, s[1]);
			assert_non_null(p);
			out[n++] = (uint8_t)to[p - from];
			s += 2;
		}
	}
	return n;
}

static void test_random_round_trip(void **state)
{
	struct rng r;
	uint8_t src[64], back[64];

	rng_seed(&r, 42);
	for (int round = 0; round < 20000; round++) {
		size_t n = rng_next(&r) % sizeof(src);
		char *e;
		for (size_t i = 0; i < n; i++) {
			uint64_t x = rng_next(&r);
			/* Bias towards bytes that start or continue multi-byte sequences. */
			src[i] = (uint8_t)(x & 1 ? 0x80 | ((x >> 8) & 0x7f) : (x >> 8));
		}
		e = esc(src, n);
		assert_int_equal(unescape(e, back), n);
		assert_memory_equal(src, back, n);
		free(e);
	}
}

/*
 * The word-at-a-time scanner against its byte-by-byte definition: one odd byte at every
 * position of runs of every length and alignment, each byte value in turn.
 */
static void test_ascii_run(void **state)
{
	uint8_t buf[48];

	for (unsigned odd = 0; odd < 256; odd++)
		for (size_t off = 0; off < 8; off++)
			for (size_t len = 0; len + off <= sizeof(buf); len += 3)
				for (size_t at = 0; at <= len; at++) {
					memset(buf, 'a', sizeof(buf));
					if (at < len)
						buf[off + at] = (uint8_t)odd;
					assert_int_equal(ascii_run(buf + off, len),
					                 at < len && odd >= 0x80 ? at : len);
				}
}

static void assert_b64(const char *src, size_t n, const char *want)
{
	char out[64];
	size_t len = json_base64(out, src, n);

	assert_int_equal(len, json_base64(NULL, src, n));
	assert_int_equal(len, strlen(want));
	assert_memory_equal(out, want, len);
}

static void test_base64(void **state)
{
	/* RFC 4648 section 10, lengths 0 to 6 */
	assert_b64("foobar", 0, "");
	assert_b64("foobar", 1, "Zg==");
	assert_b64("foobar", 2, "Zm8=");
	assert_b64("foobar", 3, "Zm9v");
	assert_b64("foobar", 4, "Zm9vYg==");
	assert_b64("foobar", 5, "Zm9vYmE=");
	assert_b64("foobar", 6, "Zm9vYmFy");
	/* the last two letters of the alphabet, and NUL bytes */
	assert_b64("\xfb\xff\xbf", 3, "+/+/");
	assert_b64("\0\0\0\0", 4, "AAAAAA==");
	assert_int_equal(json_base64(NULL, NULL, 0), 0);
	assert_int_equal(json_base64(NULL, "x", 1000), 1336);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_every_byte_alone),    cmocka_unit_test(test_all_bytes_in_one),
	    cmocka_unit_test(test_valid_utf8_passes),   cmocka_unit_test(test_invalid_utf8),
	    cmocka_unit_test(test_controls_and_quotes), cmocka_unit_test(test_random_round_trip),
	    cmocka_unit_test(test_ascii_run),           cmocka_unit_test(test_base64),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
