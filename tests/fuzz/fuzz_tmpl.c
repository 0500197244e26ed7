/*
 * libFuzzer target: tmpl_compile and tmpl_expand (with jpath underneath, and the HMAC
 * functions with their nested templates). Input: one byte whose
 * low 4 bits are the allowed mask (TMPL_*; 'O' = all), then the template source up to the first
 * '\n', then the message its ${json:PATH} are looked up in (JSON or not).
 *
 * Secret sources read only files this target wrote: the base and credential directory is
 * ./fuzz-tmpl-secrets (run.sh runs targets in build/fuzz), and a template whose ${file:...}
 * holds a '/' is compiled without TMPL_SECRET, so no path can leave that directory (".." is a
 * directory, which fails to read). ${env:} reads the process environment.
 *
 * Properties: no crash, no leak; a failed compile has a message and no template, and no error
 * ever holds a secret's value; a template uses nothing the mask refused, is flat exactly when
 * nothing varies, and compiles again to an equal one; expansion is deterministic for a fixed
 * context, leaves the buffer as it was when a ${json:} path is missing, and a flat template
 * expands to its flat text whatever the context; tmpl_has_byte agrees with the flat text;
 * tmpl_put_json of the message reads back as an equal JSON value.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "wsbeat/tmpl.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define DIR "fuzz-tmpl-secrets"

/* Values that must never appear in an error message. */
static const char *const secrets[] = {"k3y-SECRET-file", "cr3d-SECRET-crlf", "3nv-SECRET-var"};
static const struct tmpl_env env = {.basedir = DIR, .cred_dir = DIR};

static void put(const char *name, const char *data, size_t len)
{
	FILE *f = fopen(name, "wb");

	if (!f || fwrite(data, 1, len, f) != len || fclose(f) != 0)
		abort();
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	static char big[64 * 1024 + 1];

	(void)argc;
	(void)argv;
	if (mkdir(DIR, 0700) != 0 && access(DIR, W_OK) != 0)
		abort();
	put(DIR "/key", "k3y-SECRET-file\n", 16);
	put(DIR "/crlf", "cr3d-SECRET-crlf\r\n", 18);
	put(DIR "/empty", "", 0);
	put(DIR "/nul", "a\0b\n", 4);
	memset(big, 'B', sizeof(big));
	put(DIR "/big", big, sizeof(big));
	setenv("WSBEAT_FUZZ_SECRET", "3nv-SECRET-var", 1);
	return 0;
}

/* A ${file:...} (or an HMAC's file:KEY) whose path has a '/' could name any file: such sources
 * get no TMPL_SECRET. Any "file:" counts, whatever stands before it. */
static bool file_path_escapes(const char *s, size_t n)
{
	const char *end = s + n, *p = s;

	while ((p = memmem(p, (size_t)(end - p), "file:", 5)) != NULL) {
		const char *close = memchr(p, '}', (size_t)(end - p));
		if (memchr(p, '/', (size_t)((close ? close : end) - p)))
			return true;
		p += 5;
	}
	return false;
}

/* An error may quote the source, so a value is only a leak when the source did not hold it. */
static void check_err(int rc, const struct tmpl *t, const char *err, const char *src, size_t n)
{
	if ((rc == 0) != (t != NULL) || (rc != 0 && !err[0]))
		abort();
	for (size_t i = 0; i < sizeof(secrets) / sizeof(secrets[0]); i++)
		if (strstr(err, secrets[i]) && !memmem(src, n, secrets[i], strlen(secrets[i])))
			abort();
}

static void expand_twice(const struct tmpl *t, const json_t *msg, uint64_t seq)
{
	struct tmpl_ctx c = {.seq = seq, .now_real_us = INT64_C(1796289292919999), .msg = msg};
	struct mbuf a = {0}, b = {0};
	int ra, rb;

	mbuf_put(&a, "pre", 3);
	mbuf_put(&b, "pre", 3);
	ra = tmpl_expand(t, &c, &a);
	rb = tmpl_expand(t, &c, &b);
	if (ra != rb || a.len != b.len || memcmp(a.p, b.p, a.len) != 0 || a.p[a.len] != '\0')
		abort();
	if (ra != 0 && !a.oom && (a.len != 3 || !c.missing || !(t->uses & TMPL_JSON)))
		abort();
	if (t->flat &&
	    (ra != 0 || a.len != 3 + t->flat_len || memcmp(a.p + 3, t->flat, t->flat_len) != 0))
		abort();
	mbuf_free(&a);
	mbuf_free(&b);
}

static void check_template(const char *src, size_t n, unsigned allowed, const struct tmpl *t,
                           const json_t *msg)
{
	char err[512] = "";
	struct tmpl *u = NULL;
	bool crlf = false;

	if ((t->uses & ~allowed) || !t->src || (!t->flat != !!(t->uses & ~(unsigned)TMPL_SECRET)))
		abort();
	if (tmpl_compile(src, n, allowed, &env, &u, err, sizeof(err)) != 0 || !tmpl_equal(t, u))
		abort();
	tmpl_free(u);
	expand_twice(t, msg, 7);
	expand_twice(t, NULL, UINT64_MAX);
	if (t->flat) {
		crlf = memchr(t->flat, '\r', t->flat_len) || memchr(t->flat, '\n', t->flat_len);
		if (tmpl_has_byte(t, "\r\n") != crlf)
			abort();
	}
}

/* json_equal, but numbers compare by value: a real 100.0 is written 100 and reads back as an
 * integer. */
static bool same(const json_t *a, const json_t *b)
{
	if (!a || !b)
		return a == b;
	if (json_is_number(a) && json_is_number(b))
		return json_is_integer(a) && json_is_integer(b)
		           ? json_integer_value(a) == json_integer_value(b)
		           : json_number_value(a) == json_number_value(b);
	if (json_typeof(a) != json_typeof(b))
		return false;
	if (json_is_array(a)) {
		if (json_array_size(a) != json_array_size(b))
			return false;
		for (size_t i = 0; i < json_array_size(a); i++)
			if (!same(json_array_get(a, i), json_array_get(b, i)))
				return false;
		return true;
	}
	if (json_is_object(a)) {
		if (json_object_size(a) != json_object_size(b))
			return false;
		for (void *it = json_object_iter((json_t *)a); it;
		     it = json_object_iter_next((json_t *)a, it))
			if (!same(json_object_iter_value(it),
			          json_object_getn(b, json_object_iter_key(it),
			                           json_object_iter_key_len(it))))
				return false;
		return true;
	}
	return json_equal(a, b);
}

/* tmpl_put_json writes JSON that reads back as the same value. */
static void check_put_json(const json_t *msg)
{
	struct mbuf m = {0};
	json_error_t e;
	json_t *back;

	tmpl_put_json(&m, msg);
	if (m.oom)
		return;
	back = json_loadb(m.p, m.len, JSON_DECODE_ANY | JSON_ALLOW_NUL, &e);
	if (!back || !same(back, msg))
		abort();
	json_decref(back);
	mbuf_free(&m);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *src = (const char *)data + 1, *nl;
	size_t n;
	unsigned allowed;
	char err[512] = "";
	struct tmpl *t = NULL;
	json_error_t e;
	json_t *msg;
	int rc;

	if (size < 1 || size > 1 << 16)
		return 0;
	allowed = data[0] & TMPL_ANY;
	nl = memchr(src, '\n', size - 1);
	n = nl ? (size_t)(nl - src) : size - 1;
	if (file_path_escapes(src, n))
		allowed &= ~(unsigned)TMPL_SECRET;
	msg = nl ? json_loadb(nl + 1, size - 2 - n, JSON_DECODE_ANY | JSON_ALLOW_NUL, &e) : NULL;

	rc = tmpl_compile(src, n, allowed, &env, &t, err, sizeof(err));
	check_err(rc, t, err, src, n);
	if (rc == 0)
		check_template(src, n, allowed, t, msg);
	tmpl_free(t);
	if (msg)
		check_put_json(msg);
	json_decref(msg);
	return 0;
}
