/*
 * libFuzzer target: match_compile and match_test (with tmpl and jpath underneath). Input: the
 * match strings, one a line, up to the first empty line; the rest is the message (any bytes).
 * Each string is compiled as a C string (a NUL ends it, as in a config). Values may use ${seq}
 * and the secret sources, read from ./fuzz-match-secrets (run.sh runs targets in build/fuzz);
 * a ${file:...} holding a '/' makes the whole match compile without TMPL_SECRET, so no path
 * leaves that directory.
 *
 * Properties: no crash, no leak; a failed compile has a message, no match and no secret's value
 * in it; a match equals itself compiled again; match_test gives the same answer as a reference
 * that parses the message first and cannot skip a clause on the pre-filter's word (has_backslash
 * forced, so every needle is "maybe"): the pre-filter never changes a result, only saves parses;
 * a message is parsed at most once however many tests run on it; a json: match that holds had a
 * JSON document; a match without ${seq} gives the same answer for every seq.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "wsbeat/match.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define DIR     "fuzz-match-secrets"
#define SECRET1 "t0ken-SECRET-value"
#define SECRET2 "3nv-SECRET-match"
#define MAXN    16

static const struct tmpl_env env = {.basedir = DIR, .cred_dir = DIR};

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	FILE *f;

	(void)argc;
	(void)argv;
	if (mkdir(DIR, 0700) != 0 && access(DIR, W_OK) != 0)
		abort();
	f = fopen(DIR "/token", "w");
	if (!f || fputs(SECRET1 "\n", f) < 0 || fclose(f) != 0)
		abort();
	setenv("WSBEAT_FUZZ_MATCH", SECRET2, 1);
	return 0;
}

/* Splits the input into up to MAXN NUL-terminated strings (in buf) and the message. */
static size_t split(const char *data, size_t size, char *buf, char **srcs, const char **msg,
                    size_t *msglen)
{
	size_t n = 0, i = 0;

	memcpy(buf, data, size);
	buf[size] = '\0';
	*msg = data + size;
	*msglen = 0;
	while (i < size && n < MAXN) {
		char *nl = memchr(buf + i, '\n', size - i);
		if (nl == buf + i) { /* the empty line: the message follows */
			*msg = data + i + 1;
			*msglen = size - i - 1;
			break;
		}
		srcs[n++] = buf + i;
		if (!nl)
			break;
		*nl = '\0';
		i = (size_t)(nl - buf) + 1;
	}
	return n;
}

static unsigned allowed_for(char *const *srcs, size_t n)
{
	for (size_t i = 0; i < n; i++)
		for (const char *p = srcs[i]; (p = strstr(p, "${file:")) != NULL; p += 7) {
			const char *close = strchr(p, '}');
			const char *slash = strchr(p, '/');
			if (slash && (!close || slash < close))
				return TMPL_SEQ;
		}
	return TMPL_SEQ | TMPL_SECRET;
}

/* What match_test must say: the document parsed first, no needle able to rule a message out. */
static bool reference(const struct match *m, const char *msg, size_t len, uint64_t seq)
{
	struct match_msg mm;
	bool r;

	match_msg_init(&mm, msg, len);
	(void)match_msg_json(&mm);
	mm.has_backslash = 1;
	r = match_test(m, &mm, seq);
	match_msg_fini(&mm);
	return r;
}

static void check_match(const struct match *m, char *const *srcs, size_t n, unsigned allowed,
                        const char *msg, size_t len)
{
	static const uint64_t seqs[] = {0, 1, 7, UINT64_MAX};
	struct match *again = NULL;
	struct match_msg mm;
	char err[256];
	bool first = false;
	json_t *doc = NULL;

	if (match_compile((const char *const *)srcs, n, allowed, &env, &again, err, sizeof(err)) !=
	        0 ||
	    !match_equal(m, again))
		abort();
	match_free(again);
	match_msg_init(&mm, msg, len);
	for (size_t i = 0; i < sizeof(seqs) / sizeof(seqs[0]); i++) {
		bool r = match_test(m, &mm, seqs[i]);
		if (r != reference(m, msg, len, seqs[i]) || (r && m->json && !mm.doc))
			abort();
		if (i == 0)
			first = r;
		else if (!m->dynamic && r != first)
			abort();
		if (mm.parsed && doc && mm.doc != doc) /* parsed twice */
			abort();
		doc = mm.doc;
	}
	match_msg_fini(&mm);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *buf, *srcs[MAXN], err[256];
	const char *msg;
	size_t n, len;
	unsigned allowed;
	struct match *m = NULL;
	int rc;

	if (size > 1 << 16)
		return 0;
	buf = malloc(size + 1);
	if (!buf)
		return 0;
	n = split((const char *)data, size, buf, srcs, &msg, &len);
	allowed = allowed_for(srcs, n);
	err[0] = '\0';
	rc = match_compile((const char *const *)srcs, n, allowed, &env, &m, err, sizeof(err));
	if ((rc == 0) != (m != NULL) || (rc != 0 && !err[0]))
		abort();
	/* an error may quote the match as written: a value leaks only if the input lacked it */
	if ((strstr(err, SECRET1) && !memmem(data, size, SECRET1, strlen(SECRET1))) ||
	    (strstr(err, SECRET2) && !memmem(data, size, SECRET2, strlen(SECRET2))))
		abort();
	if (rc == 0) {
		/* the message in a copy of its own: a read past its end is caught */
		char *copy = malloc(len ? len : 1);
		if (copy) {
			memcpy(copy, msg, len);
			check_match(m, srcs, n, allowed, copy, len);
			free(copy);
		}
	}
	match_free(m);
	free(buf);
	return 0;
}
