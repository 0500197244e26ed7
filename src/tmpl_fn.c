/*
 * tmpl_fn: the template functions, ${hmac_sha256_hex(KEY, MSG)} and its kin. KEY is read like
 * any secret source when the template is compiled; MSG is a template of its own, expanded with
 * the same context (so the same instant) as the template around it, then signed with OpenSSL.
 * A MSG that never varies is signed once, at compile time, into a secret literal.
 */
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "tmpl_internal.h"

static const struct {
	const char *name;
	const EVP_MD *(*md)(void);
	bool base64;
} funcs[] = {
    {"hmac_sha256_hex", EVP_sha256, false}, {"hmac_sha256_base64", EVP_sha256, true},
    {"hmac_sha384_hex", EVP_sha384, false}, {"hmac_sha384_base64", EVP_sha384, true},
    {"hmac_sha512_hex", EVP_sha512, false}, {"hmac_sha512_base64", EVP_sha512, true},
};

static bool is_name_char(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
	       c == '_';
}

bool tmpl_is_call(const char *s, size_t len, size_t i)
{
	size_t k = i + 2;

	while (k < len && is_name_char(s[k]))
		k++;
	return k > i + 2 && k < len && s[k] == '(';
}

/* Appends HMAC(key, msg) in the function's encoding; out->oom on any failure. */
static void put_mac(struct mbuf *out, unsigned fn, const char *key, size_t klen, const char *msg,
                    size_t mlen)
{
	static const char hex[] = "0123456789abcdef";
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int n = 0;
	size_t need;

	/* Never NULL pointers: an empty key or message is still a valid HMAC input. */
	if (klen > INT32_MAX || !HMAC(funcs[fn].md(), key ? key : "", (int)klen,
	                              (const unsigned char *)(msg ? msg : ""), mlen, md, &n)) {
		out->oom = true;
		return;
	}
	need = funcs[fn].base64 ? 4 * ((n + 2) / 3) : 2 * (size_t)n;
	if (!mbuf_reserve(out, need))
		return;
	if (funcs[fn].base64) {
		EVP_EncodeBlock((unsigned char *)out->p + out->len, md, (int)n);
	} else {
		for (unsigned i = 0; i < n; i++) {
			out->p[out->len + 2 * i] = hex[md[i] >> 4];
			out->p[out->len + 2 * i + 1] = hex[md[i] & 15];
		}
	}
	out->len += need;
	out->p[out->len] = '\0';
	OPENSSL_cleanse(md, sizeof(md));
}

int tmpl_put_hmac(struct mbuf *out, const struct tmpl_part *p, struct tmpl_ctx *c)
{
	struct mbuf m = {0};
	int rc = -1;

	/* The message may hold secrets of its own: wiped after use. */
	if (tmpl_expand(p->msg, c, &m) == 0) {
		put_mac(out, p->fn, p->text, p->len, m.p, m.len);
		rc = out->oom ? -1 : 0;
	} else if (m.oom) {
		out->oom = true;
	}
	if (m.p)
		explicit_bzero(m.p, m.len);
	mbuf_free(&m);
	return rc;
}

static const char *trim(const char *s, const char *end, const char **tail)
{
	while (s < end && (*s == ' ' || *s == '\t'))
		s++;
	while (tail && *tail > s && ((*tail)[-1] == ' ' || (*tail)[-1] == '\t'))
		(*tail)--;
	return s;
}

/* Reads KEY ("credential:NAME", "env:NAME" or "file:PATH") into key. */
static int read_key(struct builder *b, const char *s, const char *end, const char *what,
                    struct mbuf *key)
{
	const char *colon;
	char src[16], *arg;
	size_t sl;
	int rc;

	s = trim(s, end, &end);
	colon = memchr(s, ':', (size_t)(end - s));
	sl = colon ? (size_t)(colon - s) : 0;
	if (!colon || sl >= sizeof(src))
		goto bad;
	memcpy(src, s, sl);
	src[sl] = '\0';
	if (strcmp(src, "credential") && strcmp(src, "env") && strcmp(src, "file"))
		goto bad;
	arg = strndup(colon + 1, (size_t)(end - colon - 1));
	if (!arg)
		return tmpl_fail(b, "out of memory");
	rc = tmpl_secret_value(b, src, arg, what, key);
	free(arg);
	return rc;
bad:
	return tmpl_fail(
	    b, "%s: KEY must be a secret source: credential:NAME, env:NAME or file:PATH", what);
}

/* The part for a function whose MSG varies, or the signature itself when it does not. */
static int add_call(struct builder *b, unsigned fn, struct mbuf *key, struct tmpl *msg)
{
	struct mbuf sig = {0};
	struct tmpl_part *p;
	int rc;

	b->t->uses |= msg->uses | TMPL_SECRET;
	b->t->secret = true;
	if (msg->flat) {
		put_mac(&sig, fn, key->p, key->len, msg->flat, msg->flat_len);
		rc =
		    sig.oom ? tmpl_fail(b, "out of memory") : tmpl_add_lit(b, sig.p, sig.len, true);
		if (sig.p)
			explicit_bzero(sig.p, sig.len);
		mbuf_free(&sig);
		tmpl_free(msg);
		return rc;
	}
	p = tmpl_add_part(b, TP_HMAC);
	if (!p) {
		tmpl_free(msg);
		return tmpl_fail(b, "out of memory");
	}
	p->fn = (unsigned char)fn;
	p->secret = true;
	p->msg = msg;
	p->text = key->p; /* the part owns the key now */
	p->len = key->len;
	*key = (struct mbuf){0};
	return 0;
}

int tmpl_function(struct builder *b, const char *inner, size_t n, const char *paren,
                  const char *what)
{
	const char *args = paren + 1, *end = inner + n - 1, *comma, *msg;
	size_t nl = (size_t)(paren - inner);
	unsigned fn = 0;
	struct mbuf key = {0};
	struct tmpl *m = NULL;
	int rc;

	while (fn < sizeof(funcs) / sizeof(funcs[0]) &&
	       (strlen(funcs[fn].name) != nl || memcmp(funcs[fn].name, inner, nl) != 0))
		fn++;
	if (fn == sizeof(funcs) / sizeof(funcs[0]))
		return 1;
	if (inner[n - 1] != ')')
		return tmpl_fail(b, "%s: a call ends with ')' right before the '}'", what);
	if (!(b->allowed & TMPL_SECRET))
		return tmpl_fail(
		    b, "%s: its KEY is a secret source, and those are not allowed here", what);
	if (b->depth >= TMPL_MAX_DEPTH)
		return tmpl_fail(b, "%s: functions nest at most %d deep", what, TMPL_MAX_DEPTH);
	comma = memchr(args, ',', (size_t)(end - args));
	if (!comma)
		return tmpl_fail(b, "%s: takes two arguments, KEY and MSG", what);
	if (read_key(b, args, comma, what, &key) < 0)
		goto fail;
	msg = trim(comma + 1, end, NULL);
	if (tmpl_compile_at(msg, (size_t)(end - msg), b->allowed, b->env, b->depth + 1, &m, b->err,
	                    b->errlen) < 0)
		goto fail;
	rc = add_call(b, fn, &key, m);
	if (key.p)
		explicit_bzero(key.p, key.len);
	mbuf_free(&key);
	return rc;
fail:
	if (key.p)
		explicit_bzero(key.p, key.len);
	mbuf_free(&key);
	return -1;
}
