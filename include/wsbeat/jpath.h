/*
 * jpath: a path into a JSON document, as written in matches and templates: dot-separated keys,
 * where a number indexes an array ("data.0.id", "1" for the second element of [chanId,"hb"]).
 * A numeric segment applied to an object is a key, so {"0": ...} is reachable too. Pure.
 */
#ifndef WSBEAT_JPATH_H
#define WSBEAT_JPATH_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

struct jpath_seg {
	const char *key; /* points into jpath.text; not NUL-terminated */
	size_t len;
	long idx; /* the segment as an array index, or -1 */
};

struct jpath {
	char *text; /* the path as written, NUL-terminated */
	struct jpath_seg *seg;
	size_t n;
};

/*
 * Compiles len bytes of text. Returns 0, or -1 with a reason in err (an empty path or an empty
 * segment such as "a..b"). Free with jpath_fini.
 */
int jpath_compile(const char *text, size_t len, struct jpath *out, char *err, size_t errlen);
void jpath_fini(struct jpath *p);

/* The value at p in root, or NULL when some segment is missing. */
json_t *jpath_get(const struct jpath *p, const json_t *root);

#endif
