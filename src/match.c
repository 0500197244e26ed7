/* match: compiled message matches with a raw-byte pre-filter before any JSON parse. */
#include "wsbeat/match.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Where dynamic values are expanded: one thread, and a value is used before the next. */
static struct mbuf scratch;

static int add_needle(struct match *m, const char *s, size_t len, bool quoted)
{
	struct match_needle *v = realloc(m->needles, (m->n_needles + 1) * sizeof(*v));

	if (!v)
		return -1;
	m->needles = v;
	v[m->n_needles++] = (struct match_needle){s, len, quoted};
	return 0;
}

/* Digits, sign, point and exponent only: its JSON text may be written another way (1e3). */
static bool looks_numeric(const char *s, size_t n)
{
	if (n == 0)
		return false;
	for (size_t i = 0; i < n; i++)
		if (!strchr("0123456789+-.eE", s[i]))
			return false;
	return true;
}

/* Bytes a JSON encoder must escape: the value's raw form would differ from its text. */
static bool needs_escape(const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (s[i] == '"' || s[i] == '\\' || (unsigned char)s[i] < 0x20)
			return true;
	return false;
}

/* What every matching message must contain, as raw bytes. */
static int clause_needles(struct match *m, const struct match_clause *c)
{
	const struct tmpl *v = c->value;

	if (c->kind == MK_CONTAINS && v->flat && v->flat_len)
		return add_needle(m, v->flat, v->flat_len, false);
	if (c->kind != MK_JSON_EQ && c->kind != MK_JSON_HAS)
		return 0;
	for (size_t i = 0; i < c->path.n; i++) {
		const struct jpath_seg *s = &c->path.seg[i];
		if (s->idx < 0 && !needs_escape(s->key, s->len) &&
		    add_needle(m, s->key, s->len, true) < 0)
			return -1;
	}
	if (c->kind == MK_JSON_EQ && v->flat && v->flat_len &&
	    !looks_numeric(v->flat, v->flat_len) && !needs_escape(v->flat, v->flat_len))
		return add_needle(m, v->flat, v->flat_len, false);
	return 0;
}

static int compile_clause(const char *src, unsigned allowed, const struct tmpl_env *env,
                          struct match_clause *c, char *err, size_t errlen)
{
	static const struct {
		const char *prefix;
		enum match_kind kind;
	} forms[] = {{"json:", MK_JSON_EQ}, {"contains:", MK_CONTAINS}, {"equals:", MK_EQUALS}};
	size_t len = strlen(src), skip = 0;
	const char *eq;

	*c = (struct match_clause){.kind = MK_EQUALS};
	for (size_t i = 0; i < sizeof(forms) / sizeof(forms[0]); i++) {
		size_t pl = strlen(forms[i].prefix);
		if (strncmp(src, forms[i].prefix, pl) == 0) {
			c->kind = forms[i].kind;
			skip = pl;
			break;
		}
	}
	/* match_test has a seq but no clock, random source or message to expand the others. */
	allowed &= TMPL_SEQ | TMPL_SECRET;
	if (c->kind != MK_JSON_EQ)
		return tmpl_compile(src + skip, len - skip, allowed, env, &c->value, err, errlen);
	src += skip;
	len -= skip;
	eq = memchr(src, '=', len);
	if (jpath_compile(src, eq ? (size_t)(eq - src) : len, &c->path, err, errlen) < 0)
		return -1;
	if (!eq) {
		c->kind = MK_JSON_HAS;
		return 0;
	}
	return tmpl_compile(eq + 1, len - (size_t)(eq - src) - 1, allowed, env, &c->value, err,
	                    errlen);
}

static void clause_fini(struct match_clause *c)
{
	jpath_fini(&c->path);
	tmpl_free(c->value);
}

static int join_text(struct match *m, const char *const *srcs, size_t n)
{
	struct mbuf t = {0};

	for (size_t i = 0; i < n; i++) {
		if (i)
			mbuf_put(&t, " and ", 5);
		mbuf_put(&t, srcs[i], strlen(srcs[i]));
	}
	if (!t.p)
		mbuf_put(&t, "", 0);
	m->text = t.p;
	return t.oom ? -1 : 0;
}

int match_compile(const char *const *srcs, size_t n, unsigned allowed, const struct tmpl_env *env,
                  struct match **out, char *err, size_t errlen)
{
	struct match *m = calloc(1, sizeof(*m));

	*out = NULL;
	if (!m || join_text(m, srcs, n) < 0 || !(m->c = calloc(n ? n : 1, sizeof(*m->c))))
		goto nomem;
	for (size_t i = 0; i < n; i++) {
		struct match_clause *c = &m->c[i];
		if (compile_clause(srcs[i], allowed, env, c, err, errlen) < 0) {
			m->n = i + 1;
			match_free(m);
			return -1;
		}
		m->n = i + 1;
		m->json |= c->kind == MK_JSON_EQ || c->kind == MK_JSON_HAS;
		m->dynamic |= c->value && (c->value->uses & TMPL_SEQ);
		if (clause_needles(m, c) < 0)
			goto nomem;
	}
	*out = m;
	return 0;
nomem:
	match_free(m);
	snprintf(err, errlen, "out of memory");
	return -1;
}

void match_free(struct match *m)
{
	if (!m)
		return;
	for (size_t i = 0; i < m->n; i++)
		clause_fini(&m->c[i]);
	free(m->c);
	free(m->needles);
	free(m->text);
	free(m);
}

bool match_equal(const struct match *a, const struct match *b)
{
	if (!a || !b)
		return a == b;
	if (a->n != b->n || strcmp(a->text, b->text) != 0)
		return false;
	/* The joined text alone is ambiguous ("x and y", "z" against "x", "y and z"), so each
	 * clause is compared too: its form, its path and its value with the secrets read. */
	for (size_t i = 0; i < a->n; i++) {
		const struct match_clause *x = &a->c[i], *y = &b->c[i];
		if (x->kind != y->kind || !x->path.text != !y->path.text ||
		    (x->path.text && strcmp(x->path.text, y->path.text) != 0) ||
		    !tmpl_equal(x->value, y->value))
			return false;
	}
	return true;
}

void match_msg_init(struct match_msg *mm, const void *data, size_t len)
{
	*mm = (struct match_msg){.data = data, .len = len, .has_backslash = -1};
}

json_t *match_msg_json(struct match_msg *mm)
{
	json_error_t e;

	if (!mm->parsed) {
		mm->parsed = true;
		mm->doc = json_loadb(mm->data, mm->len, JSON_DECODE_ANY | JSON_ALLOW_NUL, &e);
	}
	return mm->doc;
}

void match_msg_fini(struct match_msg *mm)
{
	json_decref(mm->doc);
	mm->doc = NULL;
}

static bool contains(const struct match_msg *mm, const char *s, size_t n)
{
	return n == 0 || memmem(mm->data, mm->len, s, n) != NULL;
}

/* `"key"`, without building the quoted string. */
static bool contains_quoted(const struct match_msg *mm, const char *s, size_t n)
{
	const char *p = mm->data, *end = mm->data + mm->len;

	while ((p = memmem(p, (size_t)(end - p), s, n)) != NULL) {
		if (p > mm->data && p[-1] == '"' && p + n < end && p[n] == '"')
			return true;
		p++;
	}
	return false;
}

/* False only when no message with these bytes can satisfy m. */
static bool could_match(const struct match *m, struct match_msg *mm)
{
	for (size_t i = 0; i < m->n_needles; i++) {
		const struct match_needle *nd = &m->needles[i];
		if (nd->quoted ? contains_quoted(mm, nd->s, nd->len) : contains(mm, nd->s, nd->len))
			continue;
		/* JSON escapes (\u0070) could spell it otherwise, but only with a backslash. */
		if (mm->has_backslash < 0)
			mm->has_backslash = memchr(mm->data, '\\', mm->len) != NULL;
		if (!mm->has_backslash)
			return false;
	}
	return true;
}

/* A number written in VALUE; false when it is not one. */
static bool parse_number(const char *s, size_t n, double *d, long long *ll, bool *is_int)
{
	char buf[64], *end;

	if (n == 0 || n >= sizeof(buf))
		return false;
	memcpy(buf, s, n);
	buf[n] = '\0';
	errno = 0;
	*ll = strtoll(buf, &end, 10);
	*is_int = !*end && !errno;
	*d = strtod(buf, &end);
	/* looks_numeric also keeps out what strtod would take: spaces, hex, inf, nan. */
	return !*end && looks_numeric(buf, n);
}

static bool value_eq(const json_t *v, const char *s, size_t n)
{
	double d;
	long long ll;
	bool is_int;

	switch (json_typeof(v)) {
	case JSON_STRING:
		return json_string_length(v) == n && memcmp(json_string_value(v), s, n) == 0;
	case JSON_INTEGER:
		if (!parse_number(s, n, &d, &ll, &is_int))
			return false;
		return is_int ? json_integer_value(v) == ll : (double)json_integer_value(v) == d;
	case JSON_REAL:
		return parse_number(s, n, &d, &ll, &is_int) && json_real_value(v) == d;
	case JSON_TRUE:
		return n == 4 && memcmp(s, "true", 4) == 0;
	case JSON_FALSE:
		return n == 5 && memcmp(s, "false", 5) == 0;
	case JSON_NULL:
		return n == 4 && memcmp(s, "null", 4) == 0;
	default:
		return false;
	}
}

/* The clause's value as text for this test: its flat form, or expanded for seq. */
static bool value_text(const struct tmpl *t, uint64_t seq, const char **s, size_t *n)
{
	struct tmpl_ctx c = {.seq = seq};

	if (t->flat) {
		*s = t->flat;
		*n = t->flat_len;
		return true;
	}
	mbuf_reset(&scratch);
	if (tmpl_expand(t, &c, &scratch) < 0)
		return false;
	*s = scratch.p;
	*n = scratch.len;
	return true;
}

static bool clause_holds(const struct match_clause *c, struct match_msg *mm, uint64_t seq)
{
	const char *s;
	size_t n;
	json_t *v = NULL;

	if (c->kind == MK_JSON_HAS || c->kind == MK_JSON_EQ) {
		json_t *doc = match_msg_json(mm);
		v = doc ? jpath_get(&c->path, doc) : NULL;
		if (!v || c->kind == MK_JSON_HAS)
			return v != NULL;
	}
	if (!value_text(c->value, seq, &s, &n))
		return false;
	switch (c->kind) {
	case MK_EQUALS:
		return mm->len == n && (n == 0 || memcmp(mm->data, s, n) == 0);
	case MK_CONTAINS:
		return contains(mm, s, n);
	case MK_JSON_EQ:
		return value_eq(v, s, n);
	case MK_JSON_HAS:
		break;
	}
	return false;
}

bool match_test(const struct match *m, struct match_msg *mm, uint64_t seq)
{
	if (!could_match(m, mm))
		return false;
	for (size_t i = 0; i < m->n; i++)
		if (!clause_holds(&m->c[i], mm, seq))
			return false;
	return true;
}
