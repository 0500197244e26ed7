/*
 * tmpl: message templates, as written in heartbeat.payload, on_open messages, replies[].send,
 * header values, the URL query and the values of matches:
 *
 *   ${seq}          this connection's heartbeat number (1, 2, ...)
 *   ${now_ms}       Unix time in milliseconds; ${now_s} in seconds; ${now_ms+N} and
 *                   ${now_s-N} add or take N of the same unit (an expiry: ${now_ms+10000})
 *   ${now_iso}      RFC 3339 UTC with milliseconds, 2026-12-03T09:14:52.919Z
 *   ${uuid}         a random (version 4) UUID
 *   ${json:PATH}    the JSON text of the value at PATH in the message being answered
 *   ${env:NAME}     the environment variable NAME          \
 *   ${credential:NAME} the file NAME in $CREDENTIALS_DIRECTORY  } secrets, read at load
 *   ${file:PATH}    the file PATH (relative to the config)  /
 *   $$              a literal $
 *   ${hmac_sha256_hex(KEY, MSG)}  the HMAC of the template MSG under KEY, a secret source
 *                   written credential:NAME, env:NAME or file:PATH; also _base64, and
 *                   hmac_sha384_* and hmac_sha512_* (OpenSSL). MSG starts after the comma and
 *                   the spaces that follow it, and may hold ${...} of its own.
 *
 * Secret sources are read when the template is compiled (config load or reload): a missing one
 * is an error then, never at send time. A file's one trailing newline is dropped. Every time
 * variable of one expansion is the same instant, inside an HMAC's MSG too, so a signed ${now_s}
 * matches the ${now_s} sent beside it. A variable ends at its first '}', except a function's:
 * braces balance inside its arguments (a JSON body may be signed), and it ends at the '}' that
 * balances its own "${". Pure: no sockets, no logging.
 */
#ifndef WSBEAT_TMPL_H
#define WSBEAT_TMPL_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "wsbeat/jpath.h"
#include "wsbeat/mbuf.h"

/* What a place allows, as a mask for tmpl_compile. */
enum {
	TMPL_SEQ = 1 << 0,    /* ${seq} */
	TMPL_TIME = 1 << 1,   /* ${now_ms}, ${now_s}, ${now_iso}, ${uuid} */
	TMPL_JSON = 1 << 2,   /* ${json:PATH} */
	TMPL_SECRET = 1 << 3, /* ${env:}, ${credential:}, ${file:}, ${hmac_*(...)} */
	TMPL_ANY = TMPL_SEQ | TMPL_TIME | TMPL_JSON | TMPL_SECRET,
};

enum tmpl_kind { TP_LIT, TP_SEQ, TP_NOW_MS, TP_NOW_S, TP_NOW_ISO, TP_UUID, TP_JSON, TP_HMAC };

struct tmpl;

struct tmpl_part {
	enum tmpl_kind kind;
	bool secret;      /* TP_LIT read from a secret source; TP_HMAC always */
	unsigned char fn; /* TP_HMAC: which function (tmpl.c's table) */
	char *text;       /* TP_LIT: the bytes; TP_HMAC: the key */
	size_t len;
	int64_t offset_us; /* TP_NOW_MS, TP_NOW_S: ${now_ms+N} */
	struct jpath path; /* TP_JSON */
	struct tmpl *msg;  /* TP_HMAC: the message signed (a template that varies) */
};

struct tmpl {
	char *src; /* as written: safe to show, it holds no secret value */
	struct tmpl_part *parts;
	size_t n;
	unsigned uses; /* TMPL_* of what it contains */
	bool secret;   /* some part came from a secret source */
	/* The text when nothing varies between expansions (no ${seq}, time or json), else NULL. */
	char *flat;
	size_t flat_len;
};

/* Where secret sources are found. */
struct tmpl_env {
	const char *basedir;  /* relative ${file:} paths; NULL = as given */
	const char *cred_dir; /* $CREDENTIALS_DIRECTORY, NULL when unset */
};

/*
 * Compiles len bytes of src. allowed: the TMPL_* this place accepts. Returns 0 and a template
 * (free with tmpl_free), or -1 with a reason in err that names the ${...} at fault but never a
 * secret's value.
 */
int tmpl_compile(const char *src, size_t len, unsigned allowed, const struct tmpl_env *env,
                 struct tmpl **out, char *err, size_t errlen);
void tmpl_free(struct tmpl *t);

/* A template that is the literal text s (len bytes), flat; secret marks it as one (never
 * shown). NULL when memory ran out. */
struct tmpl *tmpl_new_literal(const char *s, size_t len, bool secret);

/* Same source and same secret values (a changed credential file counts as a change). */
bool tmpl_equal(const struct tmpl *a, const struct tmpl *b);

/* True when some part (literal or secret) holds one of the bytes of set. An HMAC's key and
 * message are not looked at: what it writes is hex or base64. */
bool tmpl_has_byte(const struct tmpl *t, const char *set);

/* What one expansion needs. */
struct tmpl_ctx {
	uint64_t seq;
	int64_t now_real_us;                   /* CLOCK_REALTIME, µs: one instant per expansion */
	const json_t *msg;                     /* for ${json:PATH}; NULL = none */
	void (*random)(void *buf, size_t len); /* for ${uuid} */
	const char *missing;                   /* set by tmpl_expand: the ${json:} path not found */
};

/*
 * Appends the expansion of t to out. Returns 0, or -1 when a ${json:PATH} is not in c->msg
 * (c->missing names it; out is left as it was) or memory ran out (out->oom).
 */
int tmpl_expand(const struct tmpl *t, struct tmpl_ctx *c, struct mbuf *out);

/* Writes v in compact JSON: integers exactly, reals (nested ones too) in the shortest form that
 * reads back the same, laid out as JavaScript writes numbers (100, 0.000001, 1e+21, 1e-7);
 * object members in their order. Appends to out; a NULL v writes nothing. */
void tmpl_put_json(struct mbuf *out, const json_t *v);

#endif
