/* Unit tests for closescan: the close code found in a server's byte stream, however the stream
 * is cut into reads. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "wsbeat/closescan.h"

#define ANSWER                                                                                     \
	"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"        \
	"Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\r\n"

struct stream {
	unsigned char b[70000 + 512];
	size_t n;
};

static void put(struct stream *s, const void *p, size_t n)
{
	assert_true(s->n + n <= sizeof(s->b));
	memcpy(s->b + s->n, p, n);
	s->n += n;
}

/* An unmasked frame (server to client) with a payload of len bytes of fill. */
static void put_frame(struct stream *s, unsigned char b0, size_t len, unsigned char fill)
{
	unsigned char h[10];
	size_t hn = 2;

	h[0] = b0;
	if (len < 126) {
		h[1] = (unsigned char)len;
	} else if (len < 65536) {
		h[1] = 126;
		h[2] = (unsigned char)(len >> 8);
		h[3] = (unsigned char)len;
		hn = 4;
	} else {
		h[1] = 127;
		for (int i = 0; i < 8; i++)
			h[2 + i] = (unsigned char)((uint64_t)len >> (56 - 8 * i));
		hn = 10;
	}
	put(s, h, hn);
	assert_true(s->n + len <= sizeof(s->b));
	memset(s->b + s->n, fill, len);
	s->n += len;
}

static void put_close(struct stream *s, unsigned code, const char *reason)
{
	unsigned char p[2] = {(unsigned char)(code >> 8), (unsigned char)code};
	unsigned char h[2] = {0x88, (unsigned char)(2 + strlen(reason))};

	put(s, h, 2);
	put(s, p, 2);
	put(s, reason, strlen(reason));
}

/* The stream's code, fed in pieces of `step` bytes (0: all at once). */
static unsigned scan(const struct stream *st, size_t step)
{
	struct closescan s = {0};

	closescan_start(&s);
	if (!step)
		step = st->n ? st->n : 1;
	for (size_t i = 0; i < st->n; i += step)
		closescan_feed(&s, st->b + i, st->n - i < step ? st->n - i : step);
	return closescan_code(&s);
}

/* Every cut into reads gives the same answer as one read. */
static void assert_code(const struct stream *st, unsigned want)
{
	static const size_t steps[] = {0, 1, 2, 3, 5, 7, 64, 1000};

	for (size_t i = 0; i < sizeof(steps) / sizeof(steps[0]); i++)
		assert_int_equal(scan(st, steps[i]), want);
}

static struct stream st;

static void test_close_after_messages(void **state)
{
	(void)state;
	st.n = 0;
	put(&st, ANSWER, strlen(ANSWER));
	put_frame(&st, 0x81, 5, 'a');      /* text */
	put_frame(&st, 0x82, 300, 0x88);   /* binary, 16-bit length, close-looking payload */
	put_frame(&st, 0x89, 4, 0x88);     /* PING */
	put_frame(&st, 0x01, 10, 'b');     /* a fragment ... */
	put_frame(&st, 0x8a, 0, 0);        /* ... a PONG between fragments ... */
	put_frame(&st, 0x80, 70000, 0x88); /* ... the last one, 64-bit length */
	put_close(&st, 1012, "service restart");
	assert_code(&st, 1012);
}

static void test_first_close_wins(void **state)
{
	(void)state;
	st.n = 0;
	put(&st, ANSWER, strlen(ANSWER));
	put_close(&st, 1013, "");
	put_close(&st, 1000, "later");
	assert_code(&st, 1013);
}

static void test_no_close_yet(void **state)
{
	(void)state;
	st.n = 0;
	put(&st, ANSWER, strlen(ANSWER));
	put_frame(&st, 0x81, 3, 'x');
	assert_code(&st, CLOSESCAN_NONE);
	/* The code's first byte only. */
	put(&st, "\x88\x02\x03", 3);
	assert_code(&st, CLOSESCAN_NONE);
	put(&st, "\xf4", 1);
	assert_code(&st, 1012);
}

static void test_close_without_code(void **state)
{
	(void)state;
	st.n = 0;
	put(&st, ANSWER, strlen(ANSWER));
	put_frame(&st, 0x88, 0, 0);
	assert_code(&st, CLOSESCAN_NO_STATUS);
	/* One byte is not a close payload. */
	st.n = 0;
	put(&st, ANSWER, strlen(ANSWER));
	put_frame(&st, 0x88, 1, 3);
	assert_code(&st, CLOSESCAN_NONE);
}

/* The answer's bytes are never taken for frames, whatever they hold ("\r\n\r" inside). */
static void test_answer_is_skipped(void **state)
{
	static const char odd[] = "HTTP/1.1 101 OK\r\nX: \r\n\rx\r\r\n\r\n";

	(void)state;
	st.n = 0;
	put(&st, odd, strlen(odd));
	put_close(&st, 1014, "bad gateway");
	assert_code(&st, 1014);
	/* Nothing before the blank line counts. */
	st.n = 0;
	put(&st, "HTTP/1.1 101 OK\r\n", 17);
	put_close(&st, 1012, "");
	assert_code(&st, CLOSESCAN_NONE);
}

/* A masked frame is not a server's (lws drops the connection): the scan stops. */
static void test_masked_stops(void **state)
{
	(void)state;
	st.n = 0;
	put(&st, ANSWER, strlen(ANSWER));
	put(&st, "\x81\x81\x01\x02\x03\x04x", 7);
	put_close(&st, 1012, "");
	assert_code(&st, CLOSESCAN_NONE);
}

/* Starting again forgets the last connection's stream; idle looks at nothing. */
static void test_restart(void **state)
{
	struct closescan s = {0};

	(void)state;
	st.n = 0;
	put(&st, ANSWER, strlen(ANSWER));
	put_close(&st, 1013, "");
	closescan_start(&s);
	closescan_feed(&s, st.b, st.n);
	assert_int_equal(closescan_code(&s), 1013);
	closescan_start(&s);
	assert_int_equal(closescan_code(&s), CLOSESCAN_NONE);
	closescan_idle(&s);
	closescan_feed(&s, st.b, st.n);
	assert_int_equal(closescan_code(&s), CLOSESCAN_NONE);
	closescan_start(&s);
	closescan_feed(&s, ANSWER, strlen(ANSWER));
	closescan_feed(&s, "\x88\x02\x03\xe8", 4);
	assert_int_equal(closescan_code(&s), 1000);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_close_after_messages),
	    cmocka_unit_test(test_first_close_wins),
	    cmocka_unit_test(test_no_close_yet),
	    cmocka_unit_test(test_close_without_code),
	    cmocka_unit_test(test_answer_is_skipped),
	    cmocka_unit_test(test_masked_stops),
	    cmocka_unit_test(test_restart),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
