/* Unit tests for tmpl: parsing ($$, lone $, unknown and unterminated ${...}, the allowed mask),
 * every variable at a fixed instant, ${json:PATH} values and their absence, the secret
 * sources (env, credential, file) with their newline rule, size limit and errors that never
 * carry a secret's value, time offsets, and the HMAC functions (RFC 4231 known answers, one
 * instant per expansion, nesting, errors). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "wsbeat/tmpl.h"

/* 2026-12-03T09:14:52.919Z, with sub-millisecond digits that must be cut, not rounded. */
#define T0_US INT64_C(1796289292919999)

#define ENV_SECRET   "hunter2-env-value"
#define CRED_SECRET  "okx-cred-s3cr3t"
#define FILE_SECRET  "file-key-0xdeadbeef"
#define CRED_SECRET2 "okx-cred-rotated"

static char cred_dir[64], base_dir[64];
static struct tmpl_env env;
static struct mbuf out;

static void put_file(const char *dir, const char *name, const void *data, size_t len)
{
	char path[256];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	f = fopen(path, "wb");
	assert_non_null(f);
	assert_int_equal(fwrite(data, 1, len, f), len);
	assert_int_equal(fclose(f), 0);
}

static void put_str(const char *dir, const char *name, const char *s)
{
	put_file(dir, name, s, strlen(s));
}

static int setup(void **state)
{
	char sub[128];

	(void)state;
	strcpy(cred_dir, "/tmp/wsbeat-tmpl-cred-XXXXXX");
	strcpy(base_dir, "/tmp/wsbeat-tmpl-base-XXXXXX");
	if (!mkdtemp(cred_dir) || !mkdtemp(base_dir))
		return -1;
	snprintf(sub, sizeof(sub), "%s/sub", base_dir);
	if (mkdir(sub, 0700) != 0)
		return -1;
	put_str(cred_dir, "okx-secret", CRED_SECRET "\n");
	put_str(base_dir, "key.txt", FILE_SECRET "\n");
	put_str(base_dir, "sub/inner", "inner");
	env = (struct tmpl_env){.basedir = base_dir, .cred_dir = cred_dir};
	setenv("WSBEAT_TEST_SECRET", ENV_SECRET, 1);
	unsetenv("WSBEAT_TEST_UNSET");
	return 0;
}

static int teardown(void **state)
{
	char cmd[256];

	(void)state;
	mbuf_free(&out);
	snprintf(cmd, sizeof(cmd), "rm -rf '%s' '%s'", cred_dir, base_dir);
	return system(cmd) == 0 ? 0 : -1;
}

static struct tmpl *compile(const char *src, unsigned allowed)
{
	char err[512] = "";
	struct tmpl *t = NULL;

	if (tmpl_compile(src, strlen(src), allowed, &env, &t, err, sizeof(err)) != 0)
		fail_msg("%s: %s", src, err);
	assert_non_null(t);
	return t;
}

/* Compiles src expecting failure; returns the message (static) after checking want is in it. */
static const char *compile_err(const char *src, unsigned allowed, const struct tmpl_env *e,
                               const char *want)
{
	static char err[512];
	struct tmpl *t = (struct tmpl *)1;

	err[0] = '\0';
	if (tmpl_compile(src, strlen(src), allowed, e, &t, err, sizeof(err)) == 0)
		fail_msg("%s: compiled, expected \"%s\"", src, want);
	assert_null(t);
	if (!strstr(err, want))
		fail_msg("%s: got \"%s\", want \"%s\"", src, err, want);
	return err;
}

static void deterministic(void *buf, size_t len)
{
	for (size_t i = 0; i < len; i++)
		((unsigned char *)buf)[i] = (unsigned char)i;
}

static void all_ones(void *buf, size_t len)
{
	memset(buf, 0xff, len);
}

static const char *expand_ctx(const struct tmpl *t, struct tmpl_ctx *c)
{
	mbuf_reset(&out);
	mbuf_put(&out, "", 0);
	assert_int_equal(tmpl_expand(t, c, &out), 0);
	assert_false(out.oom);
	assert_int_equal(strlen(out.p), out.len);
	return out.p;
}

static const char *expand(const struct tmpl *t)
{
	struct tmpl_ctx c = {.seq = 42, .now_real_us = T0_US, .random = deterministic};

	return expand_ctx(t, &c);
}

/* Compiles with every variable allowed, expands with the fixed context. */
static void assert_expands(const char *src, const char *want)
{
	struct tmpl *t = compile(src, TMPL_ANY);

	assert_string_equal(expand(t), want);
	tmpl_free(t);
}

static void test_literals_and_dollars(void **state)
{
	(void)state;
	assert_expands("", "");
	assert_expands("ping", "ping");
	assert_expands("$$", "$");
	assert_expands("a$$b", "a$b");
	assert_expands("$$$$", "$$");
	assert_expands("$", "$");
	assert_expands("abc$", "abc$");
	assert_expands("$x $1 $}", "$x $1 $}");
	assert_expands("$${seq}", "${seq}");
	assert_expands("$$$${seq}", "$${seq}");
	assert_expands("$$$$${seq}", "$$42");
	assert_expands("$${seq}$", "${seq}$");
	assert_expands("{}", "{}");
	assert_expands("}{$", "}{$");

	/* a literal template needs nothing: allowed 0 takes it, it is flat */
	struct tmpl *t = NULL;
	char err[64];
	assert_int_equal(tmpl_compile("a$$b$", 5, 0, NULL, &t, err, sizeof(err)), 0);
	assert_non_null(t->flat);
	assert_int_equal(t->flat_len, 4);
	assert_string_equal(t->flat, "a$b$");
	assert_int_equal(t->uses, 0);
	assert_false(t->secret);
	assert_string_equal(t->src, "a$$b$");
	tmpl_free(t);
	tmpl_free(NULL);
}

static void test_variables(void **state)
{
	(void)state;
	assert_expands("${seq}", "42");
	assert_expands("${now_ms}", "1796289292919");
	assert_expands("${now_s}", "1796289292");
	assert_expands("${now_iso}", "2026-12-03T09:14:52.919Z");
	assert_expands("${uuid}", "00010203-0405-4607-8809-0a0b0c0d0e0f");
	assert_expands("{\"id\":\"${seq}\",\"type\":\"ping\",\"ts\":${now_ms}}",
	               "{\"id\":\"42\",\"type\":\"ping\",\"ts\":1796289292919}");
	assert_expands("${seq}${seq}", "4242");

	struct tmpl *t = compile("${seq}", TMPL_SEQ);
	struct tmpl_ctx c = {.seq = UINT64_MAX};
	assert_string_equal(expand_ctx(t, &c), "18446744073709551615");
	c.seq = 0;
	assert_string_equal(expand_ctx(t, &c), "0");
	tmpl_free(t);
}

static void test_now_iso(void **state)
{
	static const struct {
		int64_t us;
		const char *iso;
	} cases[] = {
	    {0, "1970-01-01T00:00:00.000Z"},
	    {999, "1970-01-01T00:00:00.000Z"},
	    {1000, "1970-01-01T00:00:00.001Z"},
	    {INT64_C(1709251199999000), "2024-02-29T23:59:59.999Z"},
	    {INT64_C(1709251200000000), "2024-03-01T00:00:00.000Z"},
	    {INT64_C(4102444800000000), "2100-01-01T00:00:00.000Z"},
	};
	struct tmpl *t = compile("${now_iso}|${now_s}|${now_ms}", TMPL_TIME);

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct tmpl_ctx c = {.now_real_us = cases[i].us};
		char want[96];
		snprintf(want, sizeof(want), "%s|%lld|%lld", cases[i].iso,
		         (long long)(cases[i].us / 1000000), (long long)(cases[i].us / 1000));
		assert_string_equal(expand_ctx(t, &c), want);
	}
	tmpl_free(t);
}

static bool is_uuid_v4(const char *s)
{
	if (strlen(s) != 36)
		return false;
	for (int i = 0; i < 36; i++) {
		if (i == 8 || i == 13 || i == 18 || i == 23) {
			if (s[i] != '-')
				return false;
		} else if (!strchr("0123456789abcdef", s[i])) {
			return false;
		}
	}
	return s[14] == '4' && strchr("89ab", s[19]);
}

static void test_uuid(void **state)
{
	struct tmpl *t = compile("${uuid}", TMPL_TIME);
	struct tmpl_ctx c = {.random = all_ones};

	(void)state;
	assert_string_equal(expand_ctx(t, &c), "ffffffff-ffff-4fff-bfff-ffffffffffff");
	assert_true(is_uuid_v4(out.p));
	c.random = NULL; /* no source: still a well-formed v4 */
	assert_string_equal(expand_ctx(t, &c), "00000000-0000-4000-8000-000000000000");
	assert_true(is_uuid_v4(out.p));
	c.random = deterministic;
	assert_true(is_uuid_v4(expand_ctx(t, &c)));
	tmpl_free(t);
}

static void test_flat_and_dynamic(void **state)
{
	struct tmpl *t;

	(void)state;
	t = compile("{\"op\":\"ping\"}", TMPL_ANY);
	assert_non_null(t->flat);
	assert_int_equal(t->uses, 0);
	tmpl_free(t);

	static const struct {
		const char *src;
		unsigned uses;
	} dyn[] = {
	    {"${seq}", TMPL_SEQ},      {"${now_ms}", TMPL_TIME}, {"${now_s}", TMPL_TIME},
	    {"${now_iso}", TMPL_TIME}, {"${uuid}", TMPL_TIME},   {"${json:a}", TMPL_JSON},
	};
	for (size_t i = 0; i < sizeof(dyn) / sizeof(dyn[0]); i++) {
		t = compile(dyn[i].src, TMPL_ANY);
		assert_null(t->flat);
		assert_int_equal(t->uses, dyn[i].uses);
		tmpl_free(t);
	}

	/* secrets are read once, at compile: the template stays flat */
	t = compile("k=${env:WSBEAT_TEST_SECRET}", TMPL_SECRET);
	assert_non_null(t->flat);
	assert_string_equal(t->flat, "k=" ENV_SECRET);
	assert_true(t->secret);
	assert_int_equal(t->uses, TMPL_SECRET);
	assert_string_equal(t->src, "k=${env:WSBEAT_TEST_SECRET}");
	tmpl_free(t);

	/* a flat expansion appends */
	t = compile("b", 0);
	mbuf_reset(&out);
	mbuf_put(&out, "a", 1);
	struct tmpl_ctx c = {0};
	assert_int_equal(tmpl_expand(t, &c, &out), 0);
	assert_string_equal(out.p, "ab");
	tmpl_free(t);
}

static void test_allowed_mask(void **state)
{
	(void)state;
	compile_err("${seq}", TMPL_ANY & ~TMPL_SEQ, &env, "${seq} is not allowed here");
	compile_err("x${now_ms}", TMPL_SEQ, &env, "${now_ms} is not allowed here");
	compile_err("${now_s}", TMPL_SEQ | TMPL_JSON, &env, "${now_s} is not allowed here");
	compile_err("${now_iso}", 0, &env, "${now_iso} is not allowed here");
	compile_err("${uuid}", TMPL_SEQ | TMPL_SECRET, &env, "${uuid} is not allowed here");
	compile_err("${json:ping}", TMPL_SEQ | TMPL_TIME | TMPL_SECRET, &env,
	            "${json:ping} is only allowed in replies[].send");
	compile_err("${env:WSBEAT_TEST_SECRET}", TMPL_SEQ, &env,
	            "${env:WSBEAT_TEST_SECRET}: secret sources are not allowed here");
	compile_err("${credential:okx-secret}", TMPL_SEQ | TMPL_TIME | TMPL_JSON, &env,
	            "${credential:okx-secret}: secret sources are not allowed here");
	compile_err("${file:key.txt}", 0, &env,
	            "${file:key.txt}: secret sources are not allowed here");
	/* the mask is checked before the source: an unset variable is still "not allowed" */
	compile_err("${env:WSBEAT_TEST_UNSET}", 0, &env, "secret sources are not allowed here");
	/* the first fault is the one reported */
	compile_err("${seq}${now_ms}", TMPL_SEQ, &env, "${now_ms} is not allowed here");
}

static void test_unknown_and_unterminated(void **state)
{
	const char *e;

	(void)state;
	e = compile_err("${foo}", TMPL_ANY, &env, "unknown template ${foo} (known: ${seq}, ");
	assert_non_null(strstr(e, "$$ is a literal $"));
	compile_err("${}", TMPL_ANY, &env, "unknown template ${}");
	compile_err("${SEQ}", TMPL_ANY, &env, "unknown template ${SEQ}");
	compile_err("${ seq}", TMPL_ANY, &env, "unknown template ${ seq}");
	compile_err("${seq }", TMPL_ANY, &env, "unknown template ${seq }");
	compile_err("${now}", TMPL_ANY, &env, "unknown template ${now}");
	compile_err("${bogus:x}", TMPL_ANY, &env, "unknown template ${bogus:x}");
	compile_err("${:x}", TMPL_ANY, &env, "unknown template ${:x}");
	compile_err("${Env:HOME}", TMPL_ANY, &env, "unknown template ${Env:HOME}");
	compile_err("${a_very_long_variable_name_of_forty_chars}", TMPL_ANY, &env,
	            "unknown template ${a_very_long_variable_name_of_forty_chars}");
	compile_err("${", TMPL_ANY, &env, "unterminated \"${\" (a literal $ is written $$)");
	compile_err("abc${", TMPL_ANY, &env, "unterminated \"${\"");
	compile_err("${seq", TMPL_ANY, &env, "unterminated \"${\"");
	compile_err("${seq}${now_ms", TMPL_ANY, &env, "unterminated \"${\"");
	/* the first "}" closes: a nested ${ is part of the name */
	compile_err("${a${seq}}", TMPL_ANY, &env, "unknown template ${a${seq}");
	compile_err("${json:}", TMPL_ANY, &env, "empty JSON path");
	compile_err("${json:a..b}", TMPL_ANY, &env, "JSON path \"a..b\" has an empty segment");
	compile_err("${env:}", TMPL_ANY, &env, "${env:}: the name is missing");
	compile_err("${credential:}", TMPL_ANY, &env, "${credential:}: the name is missing");
	compile_err("${file:}", TMPL_ANY, &env, "${file:}: the name is missing");

	/* a NUL inside ${...} is refused, not cut: ${seq\0x} was ${seq}, ${env:A\0B} read A */
	static const struct {
		const char *src;
		size_t len;
	} nul[] = {{"${seq\0x}", 9},
	           {"${env:WSBEAT_TEST_SECRET\0x}", 28},
	           {"${json:a\0b}", 12},
	           {"${file:key.txt\0.bak}", 21}};
	for (size_t i = 0; i < sizeof(nul) / sizeof(nul[0]); i++) {
		char err[256] = "";
		struct tmpl *t = NULL;
		assert_int_equal(
		    tmpl_compile(nul[i].src, nul[i].len, TMPL_ANY, &env, &t, err, sizeof(err)), -1);
		assert_non_null(strstr(err, "a NUL byte inside ${"));
		assert_null(t);
	}
	/* outside ${...} a NUL is a literal byte */
	struct tmpl *t = NULL;
	char err[64];
	assert_int_equal(tmpl_compile("a\0b$$", 5, 0, NULL, &t, err, sizeof(err)), 0);
	assert_int_equal(t->flat_len, 4);
	assert_memory_equal(t->flat, "a\0b$", 4);
	tmpl_free(t);
}

static void test_env(void **state)
{
	(void)state;
	assert_expands("${env:WSBEAT_TEST_SECRET}", ENV_SECRET);
	assert_expands("[${env:WSBEAT_TEST_SECRET}:${seq}]", "[" ENV_SECRET ":42]");
	compile_err(
	    "${env:WSBEAT_TEST_UNSET}", TMPL_ANY, &env,
	    "${env:WSBEAT_TEST_UNSET}: the environment variable WSBEAT_TEST_UNSET is not set");
	/* set but empty is a value; an environment value keeps its newline */
	setenv("WSBEAT_TEST_EMPTY", "", 1);
	assert_expands("<${env:WSBEAT_TEST_EMPTY}>", "<>");
	setenv("WSBEAT_TEST_NL", "v\n", 1);
	assert_expands("${env:WSBEAT_TEST_NL}", "v\n");
	/* env needs no directories */
	struct tmpl *t = NULL;
	char err[128];
	assert_int_equal(
	    tmpl_compile("${env:WSBEAT_TEST_SECRET}", 25, TMPL_SECRET, NULL, &t, err, sizeof(err)),
	    0);
	assert_string_equal(t->flat, ENV_SECRET);
	tmpl_free(t);
	unsetenv("WSBEAT_TEST_EMPTY");
	unsetenv("WSBEAT_TEST_NL");
}

static void test_credential(void **state)
{
	struct tmpl_env nodir = {.basedir = base_dir};
	char want[256];

	(void)state;
	assert_expands("${credential:okx-secret}", CRED_SECRET);
	compile_err("${credential:a/b}", TMPL_ANY, &env,
	            "${credential:a/b}: a credential name is a file name, without '/'");
	compile_err("${credential:../okx-secret}", TMPL_ANY, &env, "without '/'");
	compile_err("${credential:.}", TMPL_ANY, &env, "without '/'");
	compile_err("${credential:..}", TMPL_ANY, &env, "without '/'");
	compile_err("${credential:okx-secret}", TMPL_ANY, &nodir,
	            "${credential:okx-secret}: $CREDENTIALS_DIRECTORY is not set (systemd sets it "
	            "for LoadCredential=)");
	compile_err("${credential:okx-secret}", TMPL_ANY, NULL,
	            "$CREDENTIALS_DIRECTORY is not set");
	snprintf(want, sizeof(want),
	         "${credential:nope}: cannot read %s/nope: No such file or directory", cred_dir);
	compile_err("${credential:nope}", TMPL_ANY, &env, want);
}

static void test_file(void **state)
{
	struct tmpl_env nobase = {.cred_dir = cred_dir};
	char src[256], want[256];

	(void)state;
	assert_expands("${file:key.txt}", FILE_SECRET);
	assert_expands("${file:sub/inner}", "inner");
	/* an absolute path ignores the base directory */
	snprintf(src, sizeof(src), "${file:%s/okx-secret}", cred_dir);
	assert_expands(src, CRED_SECRET);
	struct tmpl *t = NULL;
	char err[256];
	assert_int_equal(tmpl_compile(src, strlen(src), TMPL_SECRET, &nobase, &t, err, sizeof(err)),
	                 0);
	assert_string_equal(t->flat, CRED_SECRET);
	tmpl_free(t);
	snprintf(want, sizeof(want), "${file:missing.txt}: cannot read %s/missing.txt: ", base_dir);
	compile_err("${file:missing.txt}", TMPL_ANY, &env, want);
	/* without a base directory a relative path is taken as given (here: from the cwd) */
	compile_err("${file:wsbeat-no-such-file}", TMPL_ANY, &nobase,
	            "cannot read wsbeat-no-such-file: No such file or directory");

	/* a directory opens but cannot be read: an error, not an empty secret */
	snprintf(want, sizeof(want), "${file:sub}: cannot read %s/sub: Is a directory", base_dir);
	compile_err("${file:sub}", TMPL_ANY, &env, want);
	compile_err("${file:/}", TMPL_ANY, &env, "${file:/}: cannot read /: Is a directory");
	/* a path that does not fit is refused, never cut to another file's name */
	char *longsrc = malloc(8192);
	assert_non_null(longsrc);
	strcpy(longsrc, "${file:");
	for (int i = 0; i < 2100; i++)
		strcat(longsrc, "./");
	strcat(longsrc, "key.txt}");
	compile_err(longsrc, TMPL_ANY, &env, ": the path is too long");
	free(longsrc);
}

static void test_newlines(void **state)
{
	static const struct {
		const char *content, *want;
	} cases[] = {
	    {"v", "v"},
	    {"v\n", "v"},
	    {"v\r\n", "v"},
	    {"v\n\n", "v\n"},
	    {"v\r\n\r\n", "v\r\n"},
	    {"v\r", "v\r"},
	    {"v\n\r\n", "v\n"},
	    {"\n", ""},
	    {"\r\n", ""},
	    {"", ""},
	    {"a\nb\n", "a\nb"},
	    {"\n\n", "\n"},
	};

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		put_str(cred_dir, "nl", cases[i].content);
		struct tmpl *t = compile("<${credential:nl}>", TMPL_SECRET);
		char want[32];
		snprintf(want, sizeof(want), "<%s>", cases[i].want);
		assert_string_equal(t->flat, want);
		assert_int_equal(t->flat_len, strlen(want));
		tmpl_free(t);
	}
}

static void test_size_limit(void **state)
{
	size_t max = 64 * 1024;
	char *big = malloc(max + 2);
	struct tmpl *t;

	(void)state;
	assert_non_null(big);
	memset(big, 'A', max + 2);
	put_file(cred_dir, "big", big, max);
	t = compile("${credential:big}", TMPL_SECRET);
	assert_int_equal(t->flat_len, max);
	tmpl_free(t);

	put_file(cred_dir, "big", big, max + 1);
	compile_err("${credential:big}", TMPL_SECRET, &env, "is larger than 65536 bytes");
	/* the limit is on the file: a full-size value with its newline is too much */
	big[max] = '\n';
	put_file(cred_dir, "big", big, max + 1);
	compile_err("${credential:big}", TMPL_SECRET, &env, "is larger than 65536 bytes");
	put_file(cred_dir, "big", big, max + 2);
	compile_err("${file:big}", TMPL_SECRET, &(struct tmpl_env){.basedir = cred_dir},
	            "${file:big}: ");
	free(big);
}

static void assert_no_secret(const char *err)
{
	static const char *const values[] = {ENV_SECRET, CRED_SECRET, FILE_SECRET,
	                                     "hunter2",  "s3cr3t",    "deadbeef"};

	for (size_t i = 0; i < sizeof(values) / sizeof(values[0]); i++)
		if (strstr(err, values[i]))
			fail_msg("error \"%s\" shows a secret", err);
}

/* Every failure after secrets were read, and every failure about a secret source. */
static void test_errors_hide_secrets(void **state)
{
	static const char *const srcs[] = {
	    "${env:WSBEAT_TEST_SECRET}${credential:okx-secret}${file:key.txt}${nope}",
	    "${env:WSBEAT_TEST_SECRET}${credential:okx-secret}${file:key.txt}${",
	    "${env:WSBEAT_TEST_SECRET}${credential:okx-secret}${file:key.txt}${json:}",
	    "${env:WSBEAT_TEST_SECRET}${credential:okx-secret}${file:key.txt}${json:a..b}",
	    "${env:WSBEAT_TEST_SECRET}${credential:okx-secret}${env:WSBEAT_TEST_UNSET}",
	    "${file:key.txt}${credential:missing}",
	    "${credential:okx-secret}${credential:a/b}",
	    "${credential:okx-secret}${file:key.txt}${file:nope}",
	    "${credential:okx-secret}${seq}",
	    "${credential:okx-secret}${json:x}",
	};
	char err[512];
	struct tmpl *t;

	(void)state;
	for (size_t i = 0; i < sizeof(srcs) / sizeof(srcs[0]); i++) {
		unsigned allowed = i >= 8 ? TMPL_SECRET : TMPL_ANY;
		err[0] = '\0';
		assert_int_equal(
		    tmpl_compile(srcs[i], strlen(srcs[i]), allowed, &env, &t, err, sizeof(err)),
		    -1);
		assert_true(err[0] != '\0');
		assert_no_secret(err);
	}
	/* what a template shows of itself (src) is the source, never a value */
	t = compile("${env:WSBEAT_TEST_SECRET}${credential:okx-secret}${file:key.txt}", TMPL_ANY);
	assert_no_secret(t->src);
	assert_string_equal(t->flat, ENV_SECRET CRED_SECRET FILE_SECRET);
	tmpl_free(t);
}

static void test_equal(void **state)
{
	struct tmpl *a, *b;
	const char *src = "{\"sign\":\"${credential:okx-secret}\",\"id\":${seq}}";

	(void)state;
	a = compile(src, TMPL_ANY);
	b = compile(src, TMPL_ANY);
	assert_true(tmpl_equal(a, b));
	assert_true(tmpl_equal(a, a));
	tmpl_free(b);

	/* the credential file changed: same source, a different template */
	put_str(cred_dir, "okx-secret", CRED_SECRET2 "\n");
	b = compile(src, TMPL_ANY);
	assert_false(tmpl_equal(a, b));
	tmpl_free(b);
	put_str(cred_dir, "okx-secret", CRED_SECRET "\r\n"); /* same value, other newline */
	b = compile(src, TMPL_ANY);
	assert_true(tmpl_equal(a, b));
	tmpl_free(b);
	tmpl_free(a);
	put_str(cred_dir, "okx-secret", CRED_SECRET "\n");

	/* an environment value changed, or became empty */
	a = compile("${env:WSBEAT_TEST_SECRET}", TMPL_SECRET);
	setenv("WSBEAT_TEST_SECRET", ENV_SECRET "x", 1);
	b = compile("${env:WSBEAT_TEST_SECRET}", TMPL_SECRET);
	assert_false(tmpl_equal(a, b));
	tmpl_free(b);
	setenv("WSBEAT_TEST_SECRET", "", 1);
	b = compile("${env:WSBEAT_TEST_SECRET}", TMPL_SECRET);
	assert_false(tmpl_equal(a, b));
	assert_false(tmpl_equal(b, a));
	tmpl_free(b);
	setenv("WSBEAT_TEST_SECRET", ENV_SECRET, 1);
	tmpl_free(a);

	/* different sources that expand alike still differ; NULL equals only NULL */
	a = compile("${seq}", TMPL_ANY);
	b = compile("${seq} ", TMPL_ANY);
	assert_false(tmpl_equal(a, b));
	assert_false(tmpl_equal(a, NULL));
	assert_false(tmpl_equal(NULL, a));
	assert_true(tmpl_equal(NULL, NULL));
	tmpl_free(b);
	b = compile("$$", TMPL_ANY);
	struct tmpl *c = compile("$", TMPL_ANY);
	assert_false(tmpl_equal(b, c));
	tmpl_free(c);
	tmpl_free(b);
	tmpl_free(a);
}

static void test_has_byte(void **state)
{
	struct tmpl *t;

	(void)state;
	t = compile("a\rb", 0);
	assert_true(tmpl_has_byte(t, "\r\n"));
	assert_false(tmpl_has_byte(t, "\n"));
	tmpl_free(t);
	t = compile("${seq}${now_iso}${json:a}", TMPL_ANY);
	assert_false(tmpl_has_byte(t, "\r\n:-"));
	tmpl_free(t);
	setenv("WSBEAT_TEST_NL", "x\ny", 1);
	t = compile("ok ${env:WSBEAT_TEST_NL}", TMPL_SECRET);
	assert_true(tmpl_has_byte(t, "\n"));
	assert_false(tmpl_has_byte(t, "\r"));
	tmpl_free(t);
	unsetenv("WSBEAT_TEST_NL");

	/* a NUL byte (a binary secret, a length-delimited literal) is in no set: strchr found it
	 * in every one, its own terminator */
	put_file(cred_dir, "bin", "a\0b", 3);
	t = compile("${credential:bin}", TMPL_SECRET);
	assert_int_equal(t->flat_len, 3);
	assert_false(tmpl_has_byte(t, "\r\n"));
	assert_false(tmpl_has_byte(t, ""));
	assert_true(tmpl_has_byte(t, "b"));
	tmpl_free(t);
	char err[64];
	assert_int_equal(tmpl_compile("x\0", 2, 0, NULL, &t, err, sizeof(err)), 0);
	assert_false(tmpl_has_byte(t, "\r\n"));
	tmpl_free(t);
}

static const char msg_text[] =
    "{\"i\":-42,\"big\":9223372036854775807,\"min\":-9223372036854775808,\"r\":0.1,"
    "\"r2\":1e300,\"r3\":100.0,\"r4\":-0.0,\"r5\":1.5e-7,\"r6\":0.30000000000000004,"
    "\"r7\":123456789.125,\"s\":\"a\\\"b\\u00e9\\n\\/\",\"o\":{\"k\":[1,\"x\",null,true,false]},"
    "\"t\":true,\"f\":false,\"n\":null,\"e\":{},\"a\":[],\"ping\":1492420473027,"
    "\"nested\":{\"x\":0.1,\"y\":[1.5,100.0,1e21,1e-7,-2.5e-5]},"
    "\"keys\":{\"z\":1,\"a\\\"b\":\"\\u0001\\t\",\"m\":{}}}";

static void assert_json(const json_t *msg, const char *path, const char *want)
{
	char src[64];
	struct tmpl *t;
	struct tmpl_ctx c = {.msg = msg};

	snprintf(src, sizeof(src), "${json:%s}", path);
	t = compile(src, TMPL_JSON);
	assert_string_equal(expand_ctx(t, &c), want);
	assert_null(c.missing);
	tmpl_free(t);
}

static void test_json_values(void **state)
{
	json_error_t e;
	json_t *msg = json_loads(msg_text, 0, &e);

	(void)state;
	assert_non_null(msg);
	assert_json(msg, "i", "-42");
	assert_json(msg, "big", "9223372036854775807");
	assert_json(msg, "min", "-9223372036854775808");
	assert_json(msg, "r", "0.1");
	assert_json(msg, "r2", "1e+300");
	assert_json(msg, "r3", "100");
	assert_json(msg, "r4", "-0");
	assert_json(msg, "r5", "1.5e-7");
	assert_json(msg, "r6", "0.30000000000000004");
	assert_json(msg, "r7", "123456789.125");
	assert_json(msg, "s", "\"a\\\"b\xc3\xa9\\n/\"");
	assert_json(msg, "o", "{\"k\":[1,\"x\",null,true,false]}");
	assert_json(msg, "o.k", "[1,\"x\",null,true,false]");
	assert_json(msg, "o.k.1", "\"x\"");
	assert_json(msg, "t", "true");
	assert_json(msg, "f", "false");
	assert_json(msg, "n", "null");
	assert_json(msg, "e", "{}");
	assert_json(msg, "a", "[]");
	/* reals inside containers are shortest too (json_dumpb wrote 0.10000000000000001) */
	assert_json(msg, "nested", "{\"x\":0.1,\"y\":[1.5,100,1e+21,1e-7,-0.000025]}");
	assert_json(msg, "keys", "{\"z\":1,\"a\\\"b\":\"\\u0001\\t\",\"m\":{}}");

	/* HTX: {"ping":N} is answered with {"pong":N}, N verbatim */
	struct tmpl *t = compile("{\"pong\":${json:ping}}", TMPL_JSON);
	struct tmpl_ctx c = {.msg = msg};
	assert_string_equal(expand_ctx(t, &c), "{\"pong\":1492420473027}");
	tmpl_free(t);
	json_decref(msg);
}

/* Reals: the shortest text that reads back as the same double. */
static void test_put_real_shortest(void **state)
{
	static const double vals[] = {
	    0.1,     1.0 / 3, 2.5,  1e21, 1e-300, 5e-324, 1.7976931348623157e308,
	    123.456, -7.25,   4.35, 0.3};
	struct mbuf m = {0};

	(void)state;
	for (size_t i = 0; i < sizeof(vals) / sizeof(vals[0]); i++) {
		json_t *v = json_real(vals[i]);
		char shorter[400];
		int digits = 0;
		bool lead = true;
		mbuf_reset(&m);
		tmpl_put_json(&m, v);
		assert_true(strtod(m.p, NULL) == vals[i]);
		/* significant digits: those of the mantissa after any leading zeros */
		for (const char *p = m.p; *p && *p != 'e'; p++) {
			lead &= *p == '0' || *p == '.' || *p == '-';
			digits += !lead && *p >= '0' && *p <= '9';
		}
		/* one significant digit fewer no longer reads back */
		if (digits > 1) {
			snprintf(shorter, sizeof(shorter), "%.*g", digits - 1, vals[i]);
			assert_false(strtod(shorter, NULL) == vals[i]);
		}
		json_decref(v);
	}

	/* and written as JavaScript writes them: fixed from 1e-6 up to 1e21 (but below 2^63 for
	 * whole numbers), else exponent */
	static const struct {
		double d;
		const char *js;
	} js[] = {
	    {0.0, "0"},
	    {-0.0, "-0"},
	    {100.0, "100"},
	    {1700000000.0, "1700000000"},
	    {1e20, "1e+20"}, /* 2^63 or more: no integer literal */
	    {9223372036854774784.0, "9223372036854775000"},
	    {1e21, "1e+21"},
	    {123456789012345678901.0, "1.2345678901234568e+20"},
	    {9223372036854775808.0, "9.223372036854776e+18"},
	    {1e-6, "0.000001"},
	    {1e-7, "1e-7"},
	    {-2.5e-5, "-0.000025"},
	    {123e-20, "1.23e-18"},
	    {5e-324, "5e-324"},
	    {1.7976931348623157e308, "1.7976931348623157e+308"},
	    {0.30000000000000004, "0.30000000000000004"},
	    {-340192.25357949035, "-340192.25357949035"},
	    {4.35, "4.35"},
	};
	for (size_t i = 0; i < sizeof(js) / sizeof(js[0]); i++) {
		json_t *v = json_real(js[i].d);
		mbuf_reset(&m);
		tmpl_put_json(&m, v);
		assert_string_equal(m.p, js[i].js);
		/* what we write, a 64-bit JSON parser reads */
		json_error_t e;
		json_t *back = json_loads(m.p, JSON_DECODE_ANY, &e);
		assert_non_null(back);
		assert_true(json_number_value(back) == js[i].d);
		json_decref(back);
		json_decref(v);
	}
	/* no value, nothing written */
	mbuf_reset(&m);
	tmpl_put_json(&m, NULL);
	assert_int_equal(m.len, 0);
	mbuf_free(&m);
}

static void test_json_missing(void **state)
{
	json_error_t e;
	json_t *msg = json_loads("{\"y\":1,\"arr\":[0]}", 0, &e);
	struct tmpl *t = compile("a${seq}${json:x}b", TMPL_ANY);
	struct tmpl_ctx c = {.seq = 3, .msg = msg};

	(void)state;
	mbuf_reset(&out);
	mbuf_put(&out, "prefix", 6);
	assert_int_equal(tmpl_expand(t, &c, &out), -1);
	assert_string_equal(c.missing, "x");
	assert_int_equal(out.len, 6);
	assert_string_equal(out.p, "prefix");
	assert_false(out.oom);

	/* no message at all */
	c = (struct tmpl_ctx){.seq = 3};
	assert_int_equal(tmpl_expand(t, &c, &out), -1);
	assert_string_equal(c.missing, "x");
	assert_string_equal(out.p, "prefix");
	tmpl_free(t);

	/* an empty buffer stays empty; the second of two paths is the one named */
	t = compile("${json:y}${json:arr.1}", TMPL_JSON);
	struct mbuf empty = {0};
	c = (struct tmpl_ctx){.msg = msg};
	assert_int_equal(tmpl_expand(t, &c, &empty), -1);
	assert_string_equal(c.missing, "arr.1");
	assert_int_equal(empty.len, 0);
	assert_true(!empty.p || empty.p[0] == '\0');
	mbuf_free(&empty);
	tmpl_free(t);
	json_decref(msg);
}

/* RFC 4231 known answers: test cases 1 (a 20-byte key of 0x0b), 2 ("Jefe") and 6 (a 131-byte
 * key, longer than the block: hashed first), each through all six functions. The message never
 * varies, so each signature is computed at compile time into a secret literal. */
static const struct {
	const char *key_file, *msg, *fn, *want;
} rfc4231[] = {
    {"tc1", "Hi There", "hmac_sha256_hex",
     "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7"},
    {"tc1", "Hi There", "hmac_sha384_hex",
     "afd03944d84895626b0825f4ab46907f15f9dadbe4101ec682aa034c7cebc59cfaea9ea9076ede7f4af152e8"
     "b2fa9cb6"},
    {"tc1", "Hi There", "hmac_sha512_hex",
     "87aa7cdea5ef619d4ff0b4241a1d6cb02379f4e2ce4ec2787ad0b30545e17cdedaa833b7d6b8a702038b274e"
     "aea3f4e4be9d914eeb61f1702e696c203a126854"},
    {"tc1", "Hi There", "hmac_sha256_base64", "sDRMYdjbOFNcqK/OrwvxK4gdwgDJgz2nJuk3bC4yz/c="},
    {"tc2", "what do ya want for nothing?", "hmac_sha256_hex",
     "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"},
    {"tc2", "what do ya want for nothing?", "hmac_sha384_base64",
     "r0XS43ZIQDFhf3jStYprG5x+9GT1oBtH5C7Dc2MiRF6OIkDKXmnix4syOez6shZJ"},
    {"tc2", "what do ya want for nothing?", "hmac_sha512_base64",
     "Fkt6e/z4GeLjlfvnO1bgo4e9ZCIugx/WECcM1+olBVSXWL91wFqZSm0DT2X48Ob9yuqxo01Ka0tjbgcKOLznNw=="},
    {"tc6", "Test Using Larger Than Block-Size Key - Hash Key First", "hmac_sha256_hex",
     "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54"},
    {"tc6", "Test Using Larger Than Block-Size Key - Hash Key First", "hmac_sha384_hex",
     "4ece084485813e9088d2c63a041bc5b44f9ef1012a2b588f3cd11f05033ac4c60c2ef6ab4030fe8296248df1"
     "63f44952"},
    {"tc6", "Test Using Larger Than Block-Size Key - Hash Key First", "hmac_sha512_hex",
     "80b24263c7c1a3ebb71493c1dd7be8b49b46d1f41b4aeec1121b013783f8f3526b56d037e05f2598bd0fd221"
     "5d6a1e5295e64f73f63f0aec8b915a985d786598"},
};

static void test_hmac_rfc4231(void **state)
{
	unsigned char tc1[20], tc6[131];
	char src[256];
	struct tmpl *t;

	(void)state;
	memset(tc1, 0x0b, sizeof(tc1));
	memset(tc6, 0xaa, sizeof(tc6));
	put_file(base_dir, "tc1", tc1, sizeof(tc1));
	put_str(base_dir, "tc2", "Jefe");
	put_file(base_dir, "tc6", tc6, sizeof(tc6));
	for (size_t i = 0; i < sizeof(rfc4231) / sizeof(rfc4231[0]); i++) {
		snprintf(src, sizeof(src), "${%s(file:%s, %s)}", rfc4231[i].fn, rfc4231[i].key_file,
		         rfc4231[i].msg);
		t = compile(src, TMPL_SECRET);
		assert_non_null(t->flat);
		assert_true(t->secret);
		assert_int_equal(t->uses, TMPL_SECRET);
		assert_string_equal(expand(t), rfc4231[i].want);
		tmpl_free(t);
	}
	/* the same through a message that varies (computed at each expansion) */
	t = compile("${hmac_sha512_hex(file:tc2, ${seq}:what do ya want for nothing?)}", TMPL_ANY);
	assert_null(t->flat);
	assert_int_equal(t->uses, TMPL_SEQ | TMPL_SECRET);
	assert_string_equal(expand(t),
	                    "aa8fcdd1857e7ec95b5064fef2a77cc5e1231daa71255fe1b4c4614a156c46e9"
	                    "7f89a53976ad8b3fc2629317e7266a01b9e6c549c56cafdac2742df52b84f073");
	tmpl_free(t);
	/* an empty key and an empty message are valid input */
	put_str(base_dir, "empty", "");
	t = compile("${hmac_sha256_hex(file:empty,)}", TMPL_SECRET);
	assert_string_equal(expand(t),
	                    "b613679a0814d9ec772f95d778c35fc5ff1697c493715653c6c712144292c5ad");
	tmpl_free(t);
}

/* OKX's login: the signed ${now_s} is the one sent beside it (one instant per expansion). */
static void test_hmac_one_instant(void **state)
{
	struct tmpl *t;

	(void)state;
	t = compile("{\"timestamp\":\"${now_s}\",\"sign\":\"${hmac_sha256_base64(credential:okx-"
	            "secret, ${now_s}GET/users/self/verify)}\"}",
	            TMPL_TIME | TMPL_SECRET);
	assert_true(t->secret);
	assert_int_equal(t->uses, TMPL_TIME | TMPL_SECRET);
	assert_string_equal(expand(t), "{\"timestamp\":\"1796289292\",\"sign\":"
	                               "\"dGsmOsl705SJwdhZi1hPbR1f/8TxaDIYSBhOVilkr+8=\"}");
	tmpl_free(t);
	assert_expands(
	    "${now_ms}:${hmac_sha256_hex(env:WSBEAT_TEST_SECRET, ${now_ms})}",
	    "1796289292919:41191ebbd44e20fa07e458c55e73ba5c0b02ae710f6d9684b5ed1261c7d254c5");
	assert_expands("${hmac_sha384_base64(env:WSBEAT_TEST_SECRET,\t${now_ms})}",
	               "ja6sB0EDMdcy4bbRKqmL9GPXLCInkRUhb6/+AxHCnlnns6xbdmKU+Lf9dZiSIi/P");
	/* functions nest; the inner one is signed with the same instant too */
	assert_expands("${hmac_sha256_hex( env:WSBEAT_TEST_SECRET , ${hmac_sha256_hex(env:WSBEAT_"
	               "TEST_SECRET, x)})}",
	               "2f4a16629951f1b53b5cef2d11021588652939a4ad8d613a33410bf703dc0fba");
}

static void test_time_offsets(void **state)
{
	(void)state;
	assert_expands("${now_ms+10000}", "1796289302919");
	assert_expands("${now_ms-919}/${now_s+60}/${now_s-0}",
	               "1796289292000/1796289352/1796289292");
	compile_err("${now_ms+}", TMPL_ANY, &env, "unknown template ${now_ms+}");
	compile_err("${now_ms+1x}", TMPL_ANY, &env, "unknown template");
	compile_err("${now_ms+ 1}", TMPL_ANY, &env, "unknown template");
	compile_err("${now_iso+1}", TMPL_ANY, &env, "unknown template");
	compile_err("${now_s+99999999999999999999}", TMPL_ANY, &env, "unknown template");
	compile_err("${now_ms+5}", TMPL_SEQ, &env, "${now_ms+5} is not allowed here");
}

static void test_hmac_errors(void **state)
{
	const char *e;

	(void)state;
	compile_err("${hmac_md5_hex(env:WSBEAT_TEST_SECRET, x)}", TMPL_ANY, &env,
	            "unknown function ${hmac_md5_hex(");
	compile_err("${hmac_sha256_hex(env:WSBEAT_TEST_SECRET)}", TMPL_ANY, &env,
	            "takes two arguments, KEY and MSG");
	compile_err("${hmac_sha256_hex(okx-secret, x)}", TMPL_ANY, &env,
	            "KEY must be a secret source: credential:NAME, env:NAME or file:PATH");
	compile_err("${hmac_sha256_hex(seq:1, x)}", TMPL_ANY, &env, "KEY must be a secret source");
	compile_err("${hmac_sha256_hex(env:WSBEAT_TEST_SECRET, x) }", TMPL_ANY, &env,
	            "a call ends with ')'");
	compile_err("${hmac_sha256_hex(env:WSBEAT_TEST_SECRET, x)}", TMPL_TIME | TMPL_SEQ, &env,
	            "not allowed here");
	compile_err("${hmac_sha256_hex(env:WSBEAT_TEST_UNSET, x)}", TMPL_ANY, &env,
	            "the environment variable WSBEAT_TEST_UNSET is not set");
	compile_err("${hmac_sha256_hex(credential:nope, x)}", TMPL_ANY, &env, "cannot read");
	/* the message is a template of its own, held to the same mask */
	compile_err("${hmac_sha256_hex(env:WSBEAT_TEST_SECRET, ${seq})}", TMPL_TIME | TMPL_SECRET,
	            &env, "${seq} is not allowed here");
	compile_err("${hmac_sha256_hex(env:WSBEAT_TEST_SECRET, ${bogus})}", TMPL_ANY, &env,
	            "unknown template ${bogus}");
	/* a '}' inside the message belongs to its own ${...}: here one is left open */
	compile_err("${hmac_sha256_hex(env:WSBEAT_TEST_SECRET, ${now_s)}", TMPL_ANY, &env,
	            "unterminated");
	compile_err(
	    "${hmac_sha256_hex(env:WSBEAT_TEST_SECRET, ${hmac_sha256_hex(env:WSBEAT_TEST_SECRET, "
	    "${hmac_sha256_hex(env:WSBEAT_TEST_SECRET, "
	    "${hmac_sha256_hex(env:WSBEAT_TEST_SECRET, ${hmac_sha256_hex(env:WSBEAT_TEST_SECRET, "
	    "x)})})})})}",
	    TMPL_ANY, &env, "functions nest at most 4 deep");
	/* no error ever carries the key */
	e = compile_err("${hmac_sha256_hex(credential:okx-secret, ${nope})}", TMPL_ANY, &env,
	                "unknown template ${nope}");
	assert_null(strstr(e, CRED_SECRET));
	/* braces balance inside a call (a JSON body can be signed), $$ is a literal $ */
	assert_expands("${hmac_sha256_hex(env:WSBEAT_TEST_SECRET, {\"t\":${now_s}}$$)}${seq}",
	               "484abe534fb2047c8f7fb2e3115b92a63143dee3e7d0e6e7dab8b1d094853c19"
	               "42");
	compile_err("${hmac_sha256_hex(env:WSBEAT_TEST_SECRET, })}", TMPL_ANY, &env,
	            "a call ends with ')'");
	/* a variable that is not a call still ends at its first '}' */
	compile_err("${env:A{B}", TMPL_ANY, &env, "the environment variable A{B is not set");
}

static void test_hmac_parts(void **state)
{
	json_error_t je;
	json_t *msg = json_loads("{\"a\":1}", 0, &je);
	struct tmpl *t, *u;
	struct tmpl_ctx c = {.msg = msg};

	(void)state;
	/* a missing ${json:} inside the message fails the whole expansion, buffer untouched */
	t = compile("x${hmac_sha256_hex(env:WSBEAT_TEST_SECRET, ${json:b})}", TMPL_ANY);
	mbuf_reset(&out);
	mbuf_put(&out, "pre", 3);
	assert_int_equal(tmpl_expand(t, &c, &out), -1);
	assert_string_equal(c.missing, "b");
	assert_string_equal(out.p, "pre");
	tmpl_free(t);
	/* the key and message are not what is written: no CR or LF can come out of a signature */
	setenv("WSBEAT_TEST_NL", "x\ny", 1);
	t = compile("${hmac_sha256_hex(env:WSBEAT_TEST_NL, \r${seq})}", TMPL_ANY);
	assert_false(tmpl_has_byte(t, "\r\n"));
	/* a changed key is a changed template */
	u = compile("${hmac_sha256_hex(env:WSBEAT_TEST_NL, \r${seq})}", TMPL_ANY);
	assert_true(tmpl_equal(t, u));
	tmpl_free(u);
	setenv("WSBEAT_TEST_NL", "x\nz", 1);
	u = compile("${hmac_sha256_hex(env:WSBEAT_TEST_NL, \r${seq})}", TMPL_ANY);
	assert_false(tmpl_equal(t, u));
	tmpl_free(u);
	tmpl_free(t);
	unsetenv("WSBEAT_TEST_NL");
	json_decref(msg);
	/* a literal template, as a connect_command's on_open message becomes */
	t = tmpl_new_literal("tok\r\n", 5, true);
	assert_non_null(t);
	assert_true(t->secret);
	assert_int_equal(t->flat_len, 5);
	assert_true(tmpl_has_byte(t, "\n"));
	assert_string_equal(t->src, "(secret)");
	u = tmpl_new_literal("tok\r\n", 5, true);
	assert_true(tmpl_equal(t, u));
	tmpl_free(u);
	tmpl_free(t);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_literals_and_dollars),
	    cmocka_unit_test(test_variables),
	    cmocka_unit_test(test_now_iso),
	    cmocka_unit_test(test_uuid),
	    cmocka_unit_test(test_flat_and_dynamic),
	    cmocka_unit_test(test_allowed_mask),
	    cmocka_unit_test(test_unknown_and_unterminated),
	    cmocka_unit_test(test_env),
	    cmocka_unit_test(test_credential),
	    cmocka_unit_test(test_file),
	    cmocka_unit_test(test_newlines),
	    cmocka_unit_test(test_size_limit),
	    cmocka_unit_test(test_errors_hide_secrets),
	    cmocka_unit_test(test_equal),
	    cmocka_unit_test(test_has_byte),
	    cmocka_unit_test(test_json_values),
	    cmocka_unit_test(test_put_real_shortest),
	    cmocka_unit_test(test_json_missing),
	    cmocka_unit_test(test_hmac_rfc4231),
	    cmocka_unit_test(test_hmac_one_instant),
	    cmocka_unit_test(test_time_offsets),
	    cmocka_unit_test(test_hmac_errors),
	    cmocka_unit_test(test_hmac_parts),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
