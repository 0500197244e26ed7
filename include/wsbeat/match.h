/*
 * match: whether a received message is the one a setting waits for (heartbeat.expect, on_open
 * waits, replies[].when). A match is one string or a list of strings that must all hold:
 *
 *   json:PATH=VALUE   the message is JSON and the value at PATH equals VALUE: a JSON string
 *                     compared as text, a number numerically, true/false/null literally
 *   json:PATH         the message is JSON and PATH is present
 *   contains:TEXT     the message contains TEXT
 *   equals:TEXT       the message is exactly TEXT
 *   anything else     the message is exactly that string
 *
 * VALUE and TEXT are templates (tmpl.h) with ${seq} and secret sources only (no time, ${uuid} or
 * ${json:}: a test has nothing to expand them with); ${seq} is the number of the beat awaited. A
 * message is parsed as JSON at most once, and only after a cheap test on its raw bytes says it
 * could match (every key of the path, and a string VALUE, must appear in it; only JSON escapes
 * could hide them, so a message without a backslash that lacks one cannot match): busy feeds do not
 * pay a parse per message. Malformed JSON is simply no match. Pure.
 */
#ifndef WSBEAT_MATCH_H
#define WSBEAT_MATCH_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "wsbeat/jpath.h"
#include "wsbeat/tmpl.h"

enum match_kind { MK_JSON_EQ, MK_JSON_HAS, MK_CONTAINS, MK_EQUALS };

struct match_clause {
	enum match_kind kind;
	struct jpath path;  /* MK_JSON_* */
	struct tmpl *value; /* MK_JSON_EQ, MK_CONTAINS, MK_EQUALS */
};

/* A byte string that every matching message contains. */
struct match_needle {
	const char *s; /* points into a clause's path or value */
	size_t len;
	bool quoted; /* a key: it appears between double quotes */
};

struct match {
	char *text; /* as written, the clauses joined by " and ": for logs (no secret values) */
	struct match_clause *c;
	size_t n;
	struct match_needle *needles;
	size_t n_needles;
	bool json;    /* some clause needs the parsed document */
	bool dynamic; /* some value uses ${seq} */
};

/*
 * Compiles n strings (all must hold). allowed: the TMPL_* the values may use (only TMPL_SEQ and
 * TMPL_SECRET are ever granted). Returns 0 and a match (free with match_free), or -1 with a reason
 * in err.
 */
int match_compile(const char *const *srcs, size_t n, unsigned allowed, const struct tmpl_env *env,
                  struct match **out, char *err, size_t errlen);
void match_free(struct match *m);
bool match_equal(const struct match *a, const struct match *b);

/* A received message under classification: parsed lazily, at most once. */
struct match_msg {
	const char *data;
	size_t len;
	json_t *doc; /* NULL until parsed; stays NULL when it is not JSON */
	bool parsed;
	signed char has_backslash; /* -1 = not looked yet */
};

void match_msg_init(struct match_msg *mm, const void *data, size_t len);
/* The parsed document, or NULL when the message is not JSON. Parses on first use. */
json_t *match_msg_json(struct match_msg *mm);
void match_msg_fini(struct match_msg *mm);

/* True when mm satisfies every clause of m; seq is what ${seq} stands for. */
bool match_test(const struct match *m, struct match_msg *mm, uint64_t seq);

#endif
