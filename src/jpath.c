/* jpath: dot-separated paths into JSON values (jansson). */
#include "wsbeat/jpath.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* "0", "17": an array index; "01", "-1", "" and anything longer than 9 digits are keys only. */
static long as_index(const char *s, size_t n)
{
	long v = 0;

	if (n == 0 || n > 9 || (n > 1 && s[0] == '0'))
		return -1;
	for (size_t i = 0; i < n; i++) {
		if (s[i] < '0' || s[i] > '9')
			return -1;
		v = v * 10 + (s[i] - '0');
	}
	return v;
}

int jpath_compile(const char *text, size_t len, struct jpath *out, char *err, size_t errlen)
{
	size_t n = 1, k = 0;
	const char *p, *end;

	*out = (struct jpath){0};
	if (len == 0) {
		snprintf(err, errlen, "empty JSON path");
		return -1;
	}
	for (size_t i = 0; i < len; i++)
		n += text[i] == '.';
	/* Copied by length, not strndup: the segments below index len bytes of the copy. */
	out->text = malloc(len + 1);
	out->seg = calloc(n, sizeof(*out->seg));
	if (!out->text || !out->seg) {
		jpath_fini(out);
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	memcpy(out->text, text, len);
	out->text[len] = '\0';
	for (p = out->text, end = out->text + len; k < n; k++) {
		const char *dot = memchr(p, '.', (size_t)(end - p));
		size_t sl = dot ? (size_t)(dot - p) : (size_t)(end - p);
		if (sl == 0) {
			snprintf(err, errlen, "JSON path \"%.*s\" has an empty segment", (int)len,
			         text);
			jpath_fini(out);
			return -1;
		}
		out->seg[k] = (struct jpath_seg){p, sl, as_index(p, sl)};
		p += sl + 1;
	}
	out->n = n;
	return 0;
}

void jpath_fini(struct jpath *p)
{
	free(p->text);
	free(p->seg);
	*p = (struct jpath){0};
}

json_t *jpath_get(const struct jpath *p, const json_t *root)
{
	json_t *v = (json_t *)root;

	for (size_t i = 0; v && i < p->n; i++) {
		const struct jpath_seg *s = &p->seg[i];
		if (json_is_object(v))
			v = json_object_getn(v, s->key, s->len);
		else if (json_is_array(v) && s->idx >= 0)
			v = json_array_get(v, (size_t)s->idx);
		else
			v = NULL;
	}
	return v;
}
