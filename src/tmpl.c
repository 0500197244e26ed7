/* tmpl: compiling and expanding message templates. */
#include "wsbeat/tmpl.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "wsbeat/json.h"

#include "tmpl_internal.h"

/* A secret file larger than this is a mistake (a key, a token or a JWT is far smaller). */
#define TMPL_SECRET_MAX (64 * 1024)
/* ${now_ms+N}: N up to about 31 years in either unit. */
#define TMPL_OFFSET_MAX_S INT64_C(1000000000)

static const struct {
	const char *name;
	enum tmpl_kind kind;
	unsigned allow;
} vars[] = {
    {"seq", TP_SEQ, TMPL_SEQ},      {"now_ms", TP_NOW_MS, TMPL_TIME},
    {"now_s", TP_NOW_S, TMPL_TIME}, {"now_iso", TP_NOW_ISO, TMPL_TIME},
    {"uuid", TP_UUID, TMPL_TIME},
};

int tmpl_fail(struct builder *b, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(b->err, b->errlen, fmt, ap);
	va_end(ap);
	return -1;
}

struct tmpl_part *tmpl_add_part(struct builder *b, enum tmpl_kind kind)
{
	struct tmpl *t = b->t;
	struct tmpl_part *v = realloc(t->parts, (t->n + 1) * sizeof(*v));

	if (!v)
		return NULL;
	t->parts = v;
	v[t->n] = (struct tmpl_part){.kind = kind};
	return &v[t->n++];
}

/* Appends literal bytes, merging with a preceding literal of the same secrecy. */
int tmpl_add_lit(struct builder *b, const char *s, size_t n, bool secret)
{
	struct tmpl *t = b->t;
	struct tmpl_part *p = t->n ? &t->parts[t->n - 1] : NULL;
	char *m;

	if (n == 0)
		return 0;
	if (!p || p->kind != TP_LIT || p->secret != secret) {
		p = tmpl_add_part(b, TP_LIT);
		if (!p)
			return tmpl_fail(b, "out of memory");
		p->secret = secret;
	}
	m = realloc(p->text, p->len + n + 1);
	if (!m)
		return tmpl_fail(b, "out of memory");
	memcpy(m + p->len, s, n);
	p->len += n;
	m[p->len] = '\0';
	p->text = m;
	t->secret |= secret;
	return 0;
}

/* Reads a secret file whole: at most TMPL_SECRET_MAX, one trailing newline dropped. */
static int read_secret(struct builder *b, const char *what, const char *path, struct mbuf *out)
{
	char buf[TMPL_SECRET_MAX + 1];
	size_t n = 0;
	ssize_t r = 0;
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK), rc = 0, e;

	if (fd < 0)
		return tmpl_fail(b, "%s: cannot read %s: %s", what, path, strerror(errno));
	while (n < sizeof(buf) && (r = read(fd, buf + n, sizeof(buf) - n)) > 0)
		n += (size_t)r;
	e = errno;
	close(fd);
	/* A failed read (a directory: EISDIR) is an error, not an empty secret. */
	if (r < 0)
		rc = tmpl_fail(b, "%s: cannot read %s: %s", what, path, strerror(e));
	else if (n > TMPL_SECRET_MAX)
		rc = tmpl_fail(b, "%s: %s is larger than %d bytes", what, path, TMPL_SECRET_MAX);
	else if (n && buf[n - 1] == '\n')
		mbuf_put(out, buf, n - 1 - (n > 1 && buf[n - 2] == '\r'));
	else
		mbuf_put(out, buf, n);
	explicit_bzero(buf, n);
	if (rc == 0 && out->oom)
		rc = tmpl_fail(b, "out of memory");
	return rc;
}

/* Where a credential or file source is read; a path too long for path is an error, since a
 * truncated one could name another file. */
static int secret_path(struct builder *b, const char *name, const char *arg, const char *what,
                       char *path, size_t size)
{
	int n;

	if (strcmp(name, "credential") == 0) {
		if (strchr(arg, '/') || strcmp(arg, ".") == 0 || strcmp(arg, "..") == 0)
			return tmpl_fail(b, "%s: a credential name is a file name, without '/'",
			                 what);
		if (!b->env || !b->env->cred_dir)
			return tmpl_fail(
			    b,
			    "%s: $CREDENTIALS_DIRECTORY is not set (systemd sets it for "
			    "LoadCredential=)",
			    what);
		n = snprintf(path, size, "%s/%s", b->env->cred_dir, arg);
	} else if (arg[0] != '/' && b->env && b->env->basedir) {
		n = snprintf(path, size, "%s/%s", b->env->basedir, arg);
	} else {
		n = snprintf(path, size, "%s", arg);
	}
	if (n < 0 || (size_t)n >= size)
		return tmpl_fail(b, "%s: the path is too long", what);
	return 0;
}

int tmpl_secret_value(struct builder *b, const char *name, const char *arg, const char *what,
                      struct mbuf *out)
{
	char path[4096];
	const char *v;

	if (!(b->allowed & TMPL_SECRET))
		return tmpl_fail(b, "%s: secret sources are not allowed here", what);
	if (!*arg)
		return tmpl_fail(b, "%s: the name is missing", what);
	mbuf_reserve(out, 0);
	if (strcmp(name, "env") == 0) {
		v = getenv(arg);
		if (!v)
			return tmpl_fail(b, "%s: the environment variable %s is not set", what,
			                 arg);
		mbuf_put(out, v, strlen(v));
		return out->oom ? tmpl_fail(b, "out of memory") : 0;
	}
	if (secret_path(b, name, arg, what, path, sizeof(path)) < 0)
		return -1;
	return read_secret(b, what, path, out);
}

static int secret_source(struct builder *b, const char *name, const char *arg, const char *what)
{
	struct mbuf v = {0};
	int rc = tmpl_secret_value(b, name, arg, what, &v);

	if (rc == 0)
		rc = tmpl_add_lit(b, v.p, v.len, true);
	if (v.p)
		explicit_bzero(v.p, v.len);
	mbuf_free(&v);
	return rc;
}

/* ${now_ms+N}, ${now_s-N}: 0 and the offset in µs, or -1 when name is not such a variable. */
static int time_offset(const char *name, enum tmpl_kind *kind, int64_t *us)
{
	const char *sign = strpbrk(name, "+-");
	size_t bl = sign ? (size_t)(sign - name) : 0;
	int64_t unit, max, v = 0;

	if (bl == 6 && memcmp(name, "now_ms", 6) == 0) {
		*kind = TP_NOW_MS;
		unit = 1000;
	} else if (bl == 5 && memcmp(name, "now_s", 5) == 0) {
		*kind = TP_NOW_S;
		unit = 1000000;
	} else {
		return -1;
	}
	max = TMPL_OFFSET_MAX_S * (1000000 / unit);
	if (!sign[1])
		return -1;
	for (const char *p = sign + 1; *p; p++) {
		if (*p < '0' || *p > '9')
			return -1;
		v = v * 10 + (*p - '0');
		if (v > max)
			return -1;
	}
	*us = (*sign == '-' ? -v : v) * unit;
	return 0;
}

/* A variable without ':' (${seq}, ${now_ms}, ${now_ms+N}, ...). */
static int plain_variable(struct builder *b, const char *name, const char *what)
{
	struct tmpl_part *p;
	enum tmpl_kind kind;
	int64_t off;

	for (size_t i = 0; i < sizeof(vars) / sizeof(vars[0]); i++) {
		if (strcmp(name, vars[i].name) != 0)
			continue;
		if (!(b->allowed & vars[i].allow))
			return tmpl_fail(b, "%s is not allowed here", what);
		b->t->uses |= vars[i].allow;
		return tmpl_add_part(b, vars[i].kind) ? 0 : tmpl_fail(b, "out of memory");
	}
	if (time_offset(name, &kind, &off) == 0) {
		if (!(b->allowed & TMPL_TIME))
			return tmpl_fail(b, "%s is not allowed here", what);
		b->t->uses |= TMPL_TIME;
		p = tmpl_add_part(b, kind);
		if (!p)
			return tmpl_fail(b, "out of memory");
		p->offset_us = off;
		return 0;
	}
	return tmpl_fail(b,
	                 "unknown template %s (known: ${seq}, ${now_ms}, ${now_s}, ${now_ms+N}, "
	                 "${now_iso}, ${uuid}, ${json:PATH}, ${env:NAME}, ${credential:NAME}, "
	                 "${file:PATH}, ${hmac_sha256_hex(KEY, MSG)} and the other hmac_*; $$ is "
	                 "a literal $)",
	                 what);
}

/* One ${...}: inner is what stands between the braces. */
static int variable(struct builder *b, const char *inner, size_t n)
{
	char what[96], name[32];
	const char *colon = memchr(inner, ':', n), *paren = memchr(inner, '(', n);
	size_t nl = colon ? (size_t)(colon - inner) : n;
	struct tmpl_part *p;
	char *arg;
	int rc;

	snprintf(what, sizeof(what), "${%.*s}", (int)(n > 80 ? 80 : n), inner);
	/* Names are compared and opened as C strings: a NUL would cut them short unseen. */
	if (memchr(inner, '\0', n))
		return tmpl_fail(b, "a NUL byte inside %s", what);
	if (paren && (!colon || paren < colon)) {
		rc = tmpl_function(b, inner, n, paren, what);
		if (rc <= 0)
			return rc;
		return tmpl_fail(b,
		                 "unknown function %s (known: hmac_sha256_hex, hmac_sha256_base64, "
		                 "hmac_sha384_hex, hmac_sha384_base64, hmac_sha512_hex, "
		                 "hmac_sha512_base64)",
		                 what);
	}
	if (nl >= sizeof(name))
		return tmpl_fail(b, "unknown template %s", what);
	memcpy(name, inner, nl);
	name[nl] = '\0';
	if (!colon)
		return plain_variable(b, name, what);
	if (strcmp(name, "json") == 0) {
		if (!(b->allowed & TMPL_JSON))
			return tmpl_fail(b, "%s is only allowed in replies[].send", what);
		p = tmpl_add_part(b, TP_JSON);
		if (!p)
			return tmpl_fail(b, "out of memory");
		b->t->uses |= TMPL_JSON;
		if (jpath_compile(colon + 1, n - nl - 1, &p->path, b->err, b->errlen) < 0)
			return -1;
		return 0;
	}
	if (strcmp(name, "env") && strcmp(name, "credential") && strcmp(name, "file"))
		return tmpl_fail(b, "unknown template %s", what);
	arg = strndup(colon + 1, n - nl - 1);
	if (!arg)
		return tmpl_fail(b, "out of memory");
	b->t->uses |= TMPL_SECRET;
	rc = secret_source(b, name, arg, what);
	free(arg);
	return rc;
}

/*
 * Where the ${ at s[i] ends. A variable ends at its first '}' (as it always has). A function's
 * arguments may hold variables of their own, and JSON: there braces balance, and the call
 * ends at the '}' that balances its own "${" ($$ is a literal $ as everywhere).
 */
static const char *closing(const char *s, size_t len, size_t i)
{
	size_t depth = 0;

	if (!tmpl_is_call(s, len, i))
		return memchr(s + i + 2, '}', len - i - 2);
	for (size_t k = i + 1; k < len; k++) {
		if (s[k] == '$' && k + 1 < len && s[k + 1] == '$')
			k++;
		else if (s[k] == '{')
			depth++;
		else if (s[k] == '}' && --depth == 0)
			return s + k;
	}
	return NULL;
}

static int parse(struct builder *b, const char *s, size_t len)
{
	size_t i = 0, lit = 0;

	while (i < len) {
		const char *close;
		if (s[i] != '$' || i + 1 >= len || (s[i + 1] != '$' && s[i + 1] != '{')) {
			i++;
			continue;
		}
		if (tmpl_add_lit(b, s + lit, i - lit, false) < 0)
			return -1;
		if (s[i + 1] == '$') {
			if (tmpl_add_lit(b, "$", 1, false) < 0)
				return -1;
			i += 2;
		} else {
			close = closing(s, len, i);
			if (!close)
				return tmpl_fail(b,
				                 "unterminated \"${\" (a literal $ is written $$)");
			if (variable(b, s + i + 2, (size_t)(close - s - i - 2)) < 0)
				return -1;
			i = (size_t)(close - s) + 1;
		}
		lit = i;
	}
	return tmpl_add_lit(b, s + lit, len - lit, false);
}

/* A template whose expansion never varies is kept as one flat text. */
static int flatten(struct builder *b)
{
	struct tmpl *t = b->t;
	struct mbuf m = {0};

	if (t->uses & (TMPL_SEQ | TMPL_TIME | TMPL_JSON))
		return 0;
	mbuf_reserve(&m, 0);
	for (size_t i = 0; i < t->n; i++)
		mbuf_put(&m, t->parts[i].text, t->parts[i].len);
	if (m.oom) {
		mbuf_free(&m);
		return tmpl_fail(b, "out of memory");
	}
	t->flat = m.p;
	t->flat_len = m.len;
	return 0;
}

int tmpl_compile_at(const char *src, size_t len, unsigned allowed, const struct tmpl_env *env,
                    int depth, struct tmpl **out, char *err, size_t errlen)
{
	struct tmpl *t = calloc(1, sizeof(*t));
	struct builder b = {t, env, allowed, depth, err, errlen};

	*out = NULL;
	if (!t || !(t->src = strndup(src, len))) {
		free(t);
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	if (parse(&b, src, len) < 0 || flatten(&b) < 0) {
		tmpl_free(t);
		return -1;
	}
	*out = t;
	return 0;
}

int tmpl_compile(const char *src, size_t len, unsigned allowed, const struct tmpl_env *env,
                 struct tmpl **out, char *err, size_t errlen)
{
	return tmpl_compile_at(src, len, allowed, env, 0, out, err, errlen);
}

struct tmpl *tmpl_new_literal(const char *s, size_t len, bool secret)
{
	struct tmpl *t = calloc(1, sizeof(*t));
	char err[32];
	struct builder b = {t, NULL, 0, 0, err, sizeof(err)};

	if (!t)
		return NULL;
	/* The source shown for it is never its text: that may be a secret. */
	t->src = strdup(secret ? "(secret)" : "(literal)");
	t->secret = secret; /* even when empty */
	if (!t->src || tmpl_add_lit(&b, s, len, secret) < 0 || flatten(&b) < 0) {
		tmpl_free(t);
		return NULL;
	}
	return t;
}

void tmpl_free(struct tmpl *t)
{
	if (!t)
		return;
	for (size_t i = 0; i < t->n; i++) {
		struct tmpl_part *p = &t->parts[i];
		if (p->secret && p->text)
			explicit_bzero(p->text, p->len);
		free(p->text);
		jpath_fini(&p->path);
		tmpl_free(p->msg);
	}
	if (t->secret && t->flat)
		explicit_bzero(t->flat, t->flat_len);
	free(t->flat);
	free(t->parts);
	free(t->src);
	free(t);
}

bool tmpl_equal(const struct tmpl *a, const struct tmpl *b)
{
	if (!a || !b)
		return a == b;
	if (strcmp(a->src, b->src) != 0 || a->n != b->n || a->flat_len != b->flat_len ||
	    (a->flat_len && memcmp(a->flat, b->flat, a->flat_len)))
		return false;
	for (size_t i = 0; i < a->n; i++) {
		const struct tmpl_part *x = &a->parts[i], *y = &b->parts[i];
		if (x->kind != y->kind || x->len != y->len ||
		    (x->len && memcmp(x->text, y->text, x->len)) || !tmpl_equal(x->msg, y->msg))
			return false;
	}
	return true;
}

bool tmpl_has_byte(const struct tmpl *t, const char *set)
{
	size_t n = strlen(set);

	/* memchr, not strchr: strchr finds a NUL byte in every set (its terminator). */
	for (size_t i = 0; i < t->n; i++)
		for (size_t k = 0; t->parts[i].kind != TP_HMAC && k < t->parts[i].len; k++)
			if (memchr(set, t->parts[i].text[k], n))
				return true;
	return false;
}

/* The fewest significant digits (into digits, no point) that read back as d, and the decimal
 * exponent of the first one: 0.0125 gives "125" and -2. */
static int shortest_digits(double d, char *digits, int *exp)
{
	char buf[40], *p = buf, *e;
	int nd = 0;

	for (int prec = 1;; prec++) {
		snprintf(buf, sizeof(buf), "%.*e", prec - 1, d);
		if (prec == 17 || strtod(buf, NULL) == d)
			break;
	}
	e = strchr(buf, 'e');
	*exp = (int)strtol(e + 1, NULL, 10);
	for (p += *p == '-'; p < e; p++)
		if (*p != '.')
			digits[nd++] = *p;
	while (nd > 1 && digits[nd - 1] == '0')
		nd--;
	return nd;
}

/* A double as JavaScript writes it (Number.prototype.toString, as JSON.stringify and Go's
 * encoding/json do), so an echoed value reads like what the server sent: the shortest digits
 * that read back the same, in fixed notation from 1e-6 to below 1e21, else with an exponent.
 * One exception: a whole number of 2^63 or more keeps its exponent, since parsers with 64-bit
 * integers (jansson among them) reject a longer integer literal. */
static void put_real(struct mbuf *out, double d)
{
	static const char zeros[] = "000000000000000000000";
	char dg[20];
	int exp, nd, n;

	if (!isfinite(d)) {
		mbuf_put(out, "null", 4);
		return;
	}
	nd = shortest_digits(d, dg, &exp);
	n = exp + 1; /* where the decimal point goes, counted in digits */
	if (signbit(d))
		mbuf_put(out, "-", 1);
	if (nd <= n && n <= 21 && fabs(d) < 0x1p63) {
		mbuf_put(out, dg, (size_t)nd);
		mbuf_put(out, zeros, (size_t)(n - nd));
	} else if (0 < n && n <= 21 && nd > n) {
		mbuf_printf(out, "%.*s.%.*s", n, dg, nd - n, dg + n);
	} else if (-6 < n && n <= 0) {
		mbuf_put(out, "0.", 2);
		mbuf_put(out, zeros, (size_t)-n);
		mbuf_put(out, dg, (size_t)nd);
	} else {
		mbuf_printf(out, "%c%s%.*se%+d", dg[0], nd > 1 ? "." : "", nd - 1, dg + 1, n - 1);
	}
}

static void put_string(struct mbuf *out, const char *s, size_t len)
{
	size_t n = json_escape(NULL, s, len);

	if (!mbuf_reserve(out, n + 2))
		return;
	out->p[out->len++] = '"';
	out->len += json_escape(out->p + out->len, s, len);
	out->p[out->len++] = '"';
	out->p[out->len] = '\0';
}

static void put_array(struct mbuf *out, const json_t *v)
{
	mbuf_put(out, "[", 1);
	for (size_t i = 0; i < json_array_size(v); i++) {
		if (i)
			mbuf_put(out, ",", 1);
		tmpl_put_json(out, json_array_get(v, i));
	}
	mbuf_put(out, "]", 1);
}

static void put_object(struct mbuf *out, const json_t *v)
{
	json_t *o = (json_t *)v; /* jansson's iterators take a non-const object */

	mbuf_put(out, "{", 1);
	for (void *it = json_object_iter(o); it; it = json_object_iter_next(o, it)) {
		if (it != json_object_iter(o))
			mbuf_put(out, ",", 1);
		put_string(out, json_object_iter_key(it), json_object_iter_key_len(it));
		mbuf_put(out, ":", 1);
		tmpl_put_json(out, json_object_iter_value(it));
	}
	mbuf_put(out, "}", 1);
}

/* Written here rather than by json_dumpb so that reals inside objects and arrays come out in
 * their shortest form too (jansson writes 0.1 as 0.10000000000000001). */
void tmpl_put_json(struct mbuf *out, const json_t *v)
{
	if (!v)
		return;
	switch (json_typeof(v)) {
	case JSON_OBJECT:
		put_object(out, v);
		break;
	case JSON_ARRAY:
		put_array(out, v);
		break;
	case JSON_STRING:
		put_string(out, json_string_value(v), json_string_length(v));
		break;
	case JSON_INTEGER:
		mbuf_printf(out, "%" JSON_INTEGER_FORMAT, json_integer_value(v));
		break;
	case JSON_REAL:
		put_real(out, json_real_value(v));
		break;
	case JSON_TRUE:
		mbuf_put(out, "true", 4);
		break;
	case JSON_FALSE:
		mbuf_put(out, "false", 5);
		break;
	case JSON_NULL:
		mbuf_put(out, "null", 4);
		break;
	}
}

static void put_iso(struct mbuf *out, int64_t us)
{
	time_t secs = (time_t)(us / 1000000);
	struct tm tm;

	gmtime_r(&secs, &tm);
	mbuf_printf(out, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900, tm.tm_mon + 1,
	            tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, (int)(us % 1000000 / 1000));
}

static void put_uuid(struct mbuf *out, struct tmpl_ctx *c)
{
	unsigned char u[16] = {0};

	if (c->random)
		c->random(u, sizeof(u));
	u[6] = (unsigned char)((u[6] & 0x0f) | 0x40); /* version 4 */
	u[8] = (unsigned char)((u[8] & 0x3f) | 0x80); /* RFC 4122 variant */
	mbuf_printf(out, "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x",
	            u[0], u[1], u[2], u[3], u[4], u[5], u[6], u[7], u[8], u[9], u[10], u[11], u[12],
	            u[13], u[14], u[15]);
}

int tmpl_expand(const struct tmpl *t, struct tmpl_ctx *c, struct mbuf *out)
{
	size_t mark = out->len;

	if (t->flat) {
		mbuf_put(out, t->flat, t->flat_len);
		return out->oom ? -1 : 0;
	}
	for (size_t i = 0; i < t->n; i++) {
		const struct tmpl_part *p = &t->parts[i];
		const json_t *v;
		switch (p->kind) {
		case TP_LIT:
			mbuf_put(out, p->text, p->len);
			break;
		case TP_SEQ:
			mbuf_printf(out, "%" PRIu64, c->seq);
			break;
		case TP_NOW_MS:
			mbuf_printf(out, "%" PRId64, (c->now_real_us + p->offset_us) / 1000);
			break;
		case TP_NOW_S:
			mbuf_printf(out, "%" PRId64, (c->now_real_us + p->offset_us) / 1000000);
			break;
		case TP_NOW_ISO:
			put_iso(out, c->now_real_us);
			break;
		case TP_UUID:
			put_uuid(out, c);
			break;
		case TP_JSON:
			v = c->msg ? jpath_get(&p->path, c->msg) : NULL;
			if (!v) {
				c->missing = p->path.text;
				out->len = mark;
				if (out->p)
					out->p[mark] = '\0';
				return -1;
			}
			tmpl_put_json(out, v);
			break;
		case TP_HMAC:
			if (tmpl_put_hmac(out, p, c) < 0 && !out->oom) {
				out->len = mark;
				if (out->p)
					out->p[mark] = '\0';
				return -1;
			}
			break;
		}
	}
	return out->oom ? -1 : 0;
}
