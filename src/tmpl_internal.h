/*
 * Private to tmpl.c (variables, secrets, expansion) and tmpl_fn.c (the HMAC functions): the
 * compiler's state and the pieces both halves build templates with.
 */
#ifndef WSBEAT_TMPL_INTERNAL_H
#define WSBEAT_TMPL_INTERNAL_H

#include "wsbeat/tmpl.h"

/* How deep functions may nest inside each other's arguments. */
#define TMPL_MAX_DEPTH 4

struct builder {
	struct tmpl *t;
	const struct tmpl_env *env;
	unsigned allowed;
	int depth; /* 0 for a template as written; +1 inside each function's arguments */
	char *err;
	size_t errlen;
};

int tmpl_fail(struct builder *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
struct tmpl_part *tmpl_add_part(struct builder *b, enum tmpl_kind kind);
int tmpl_add_lit(struct builder *b, const char *s, size_t n, bool secret);

/* Reads the secret source NAME:ARG (env, credential or file) into out; what names it in
 * errors. The caller wipes and frees out. */
int tmpl_secret_value(struct builder *b, const char *name, const char *arg, const char *what,
                      struct mbuf *out);

/* Compiles src as a template of its own at depth (a function's MSG). */
int tmpl_compile_at(const char *src, size_t len, unsigned allowed, const struct tmpl_env *env,
                    int depth, struct tmpl **out, char *err, size_t errlen);

/* A function ${name(ARGS)}: inner is what stands between the braces, name ends at paren.
 * Returns 1 when name is not a function (the caller reports it), else 0 or -1. */
int tmpl_function(struct builder *b, const char *inner, size_t n, const char *paren,
                  const char *what);

/* Appends what a TP_HMAC part writes for context c: 0, or -1 (c->missing set, or out->oom). */
int tmpl_put_hmac(struct mbuf *out, const struct tmpl_part *p, struct tmpl_ctx *c);

/* True when the ${ at s[i] opens a function call: letters, digits and '_', then '('. */
bool tmpl_is_call(const char *s, size_t len, size_t i);

#endif
