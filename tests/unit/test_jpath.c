/* Unit tests for jpath: compiling dot-separated paths (segments, which ones are array indexes,
 * rejections) and looking them up in objects and arrays, including numeric keys on objects. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "wsbeat/jpath.h"

static json_t *load(const char *s)
{
	json_error_t e;
	json_t *v = json_loads(s, JSON_DECODE_ANY, &e);

	if (!v)
		fail_msg("%s: %s", s, e.text);
	return v;
}

/* The value at path in doc, compact, or "(missing)". */
static char *lookup(const char *path, const char *doc)
{
	static char buf[256];
	char err[128];
	struct jpath p;
	json_t *root = load(doc), *v;
	char *s;

	if (jpath_compile(path, strlen(path), &p, err, sizeof(err)) != 0)
		fail_msg("%s: %s", path, err);
	v = jpath_get(&p, root);
	s = v ? json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY) : NULL;
	snprintf(buf, sizeof(buf), "%s", s ? s : "(missing)");
	free(s);
	json_decref(root);
	jpath_fini(&p);
	return buf;
}

static void test_segments(void **state)
{
	char err[128];
	struct jpath p;

	(void)state;
	assert_int_equal(jpath_compile("data.0.id.01.1234567890.x", 25, &p, err, sizeof(err)), 0);
	assert_string_equal(p.text, "data.0.id.01.1234567890.x");
	assert_int_equal(p.n, 6);
	assert_int_equal(p.seg[0].len, 4);
	assert_memory_equal(p.seg[0].key, "data", 4);
	assert_int_equal(p.seg[0].idx, -1);
	assert_int_equal(p.seg[1].idx, 0);
	assert_int_equal(p.seg[2].idx, -1);
	assert_int_equal(p.seg[3].idx, -1); /* "01": a key only */
	assert_int_equal(p.seg[4].idx, -1); /* ten digits: a key only */
	assert_memory_equal(p.seg[5].key, "x", 1);
	jpath_fini(&p);
	jpath_fini(&p); /* zeroed: safe twice */

	/* len counts, not the NUL: a prefix of a longer string */
	assert_int_equal(jpath_compile("a.b.c", 3, &p, err, sizeof(err)), 0);
	assert_string_equal(p.text, "a.b");
	assert_int_equal(p.n, 2);
	jpath_fini(&p);
	assert_int_equal(jpath_compile("123456789", 9, &p, err, sizeof(err)), 0);
	assert_int_equal(p.seg[0].idx, 123456789);
	jpath_fini(&p);

	/* a NUL is a byte like any other: the segments cover all len bytes (this read past the
	 * copy when the text was strndup'ed) */
	assert_int_equal(jpath_compile("a\0b.cd", 6, &p, err, sizeof(err)), 0);
	assert_int_equal(p.n, 2);
	assert_int_equal(p.seg[0].len, 3);
	assert_memory_equal(p.seg[0].key, "a\0b", 3);
	assert_int_equal(p.seg[1].len, 2);
	assert_memory_equal(p.seg[1].key, "cd", 2);
	json_t *doc = json_pack("{s:{s:i}}", "a", "cd", 1);
	assert_null(jpath_get(&p, doc));
	json_decref(doc);
	jpath_fini(&p);
}

static void test_rejections(void **state)
{
	static const struct {
		const char *in, *why;
	} bad[] = {
	    {"", "empty JSON path"},
	    {".", "JSON path \".\" has an empty segment"},
	    {"a..b", "JSON path \"a..b\" has an empty segment"},
	    {".a", "has an empty segment"},
	    {"a.", "has an empty segment"},
	};
	char err[128];
	struct jpath p;

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		err[0] = '\0';
		assert_int_equal(jpath_compile(bad[i].in, strlen(bad[i].in), &p, err, sizeof(err)),
		                 -1);
		if (!strstr(err, bad[i].why))
			fail_msg("%s: got \"%s\", want \"%s\"", bad[i].in, err, bad[i].why);
		assert_null(p.text);
		assert_null(p.seg);
		jpath_fini(&p);
	}
}

static void test_lookup(void **state)
{
	(void)state;
	assert_string_equal(lookup("op", "{\"op\":\"ping\",\"x\":1}"), "\"ping\"");
	assert_string_equal(lookup("1", "[17470,\"hb\"]"), "\"hb\"");
	assert_string_equal(lookup("0", "[17470,\"hb\"]"), "17470");
	assert_string_equal(lookup("2", "[17470,\"hb\"]"), "(missing)");
	assert_string_equal(lookup("data.0.id", "{\"data\":[{\"id\":5},{\"id\":6}]}"), "5");
	assert_string_equal(lookup("data.1.id", "{\"data\":[{\"id\":5},{\"id\":6}]}"), "6");
	assert_string_equal(lookup("0.status", "[{\"ev\":\"status\",\"status\":\"auth_success\"}]"),
	                    "\"auth_success\"");
	/* a numeric segment on an object is a key */
	assert_string_equal(lookup("0", "{\"0\":\"zero\"}"), "\"zero\"");
	assert_string_equal(lookup("a.7", "{\"a\":{\"7\":null}}"), "null");
	/* a non-index segment on an array, a key on a scalar, a missing key */
	assert_string_equal(lookup("x", "[1,2]"), "(missing)");
	assert_string_equal(lookup("01", "[1,2]"), "(missing)");
	assert_string_equal(lookup("a.b", "{\"a\":3}"), "(missing)");
	assert_string_equal(lookup("a", "{\"b\":3}"), "(missing)");
	assert_string_equal(lookup("a", "\"a\""), "(missing)");
	/* present with a null or false value is present */
	assert_string_equal(lookup("a", "{\"a\":false}"), "false");
	/* keys are compared bytewise, escapes already decoded by the parser */
	assert_string_equal(lookup("op", "{\"\\u006fp\":1}"), "1");
	assert_string_equal(lookup("caf\xc3\xa9", "{\"caf\\u00e9\":2}"), "2");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_segments),
	    cmocka_unit_test(test_rejections),
	    cmocka_unit_test(test_lookup),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
