/* helper: parsing and checking what a connect_command printed. */
#include "wsbeat/helper.h"

#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "wsbeat/tmpl.h"
#include "wsbeat/util.h"

static void wipe_free(char *s, size_t n)
{
	if (s)
		explicit_bzero(s, n);
	free(s);
}

void helper_out_free(struct helper_out *h)
{
	if (!h)
		return;
	/* url's strings share one block that starts at host; the path may hold a token. */
	if (h->url.host)
		explicit_bzero(h->url.path, strlen(h->url.path));
	url_fini(&h->url);
	for (size_t i = 0; i < h->n_headers; i++) {
		free(h->headers[i].name);
		wipe_free(h->headers[i].value, h->headers[i].value_len);
	}
	free(h->headers);
	for (size_t i = 0; h->on_open && i < h->n_on_open; i++)
		tmpl_free(h->on_open[i].send); /* wipes: each is secret */
	free(h->on_open);
	free(h);
}

/* jansson's own messages quote the text near the error: these never do. */
static const char *json_why(const json_error_t *e)
{
	switch (json_error_code(e)) {
	case json_error_invalid_utf8:
		return "it is not UTF-8";
	case json_error_premature_end_of_input:
		return "it ends before the JSON value does";
	case json_error_end_of_input_expected:
		return "something follows the JSON value";
	case json_error_null_character:
		return "a string holds \\u0000";
	case json_error_duplicate_key:
		return "an object has the same member twice";
	case json_error_numeric_overflow:
		return "a number is out of range";
	case json_error_stack_overflow:
		return "it nests too deep";
	case json_error_out_of_memory:
		return "out of memory";
	default:
		return "invalid JSON";
	}
}

static int take_url(struct helper_out *h, const json_t *v, char *err, size_t errlen)
{
	char why[160];

	if (!json_is_string(v))
		return errf(err, errlen, "\"url\" must be a string");
	/* url_parse's reason may quote a piece of the URL: not repeated here. */
	if (memchr(json_string_value(v), '\0', json_string_length(v)) ||
	    url_parse(json_string_value(v), &h->url, why, sizeof(why)) < 0)
		return errf(err, errlen, "\"url\" is not a ws:// or wss:// URL");
	h->has_url = true;
	return 0;
}

static int take_header(struct helper_header *hh, const char *name, const json_t *v, char *err,
                       size_t errlen)
{
	const char *s;
	size_t n;

	if (!cfg_is_token(name))
		return errf(err, errlen, "a name in \"headers\" is not an HTTP token");
	if (cfg_header_reserved(name))
		return errf(err, errlen,
		            "\"headers\" names one the handshake sets (Host, Upgrade, Connection, "
		            "Origin, Sec-WebSocket-*, Content-Length, Transfer-Encoding)");
	if (!json_is_string(v))
		return errf(err, errlen, "every value in \"headers\" must be a string");
	s = json_string_value(v);
	n = json_string_length(v);
	if (memchr(s, '\r', n) || memchr(s, '\n', n) || memchr(s, '\0', n))
		return errf(err, errlen, "a value in \"headers\" holds CR, LF or NUL");
	hh->name = strdup(name);
	hh->value = malloc(n + 1);
	if (!hh->name || !hh->value)
		return errf(err, errlen, "out of memory");
	memcpy(hh->value, s, n + 1);
	hh->value_len = n;
	return 0;
}

static int take_headers(struct helper_out *h, const json_t *v, char *err, size_t errlen)
{
	const char *name;
	json_t *val;
	size_t i = 0;

	if (!json_is_object(v))
		return errf(err, errlen, "\"headers\" must be an object {\"Name\": \"value\"}");
	if (json_object_size(v) > HELPER_MAX_ITEMS)
		return errf(err, errlen, "\"headers\" has more than %d members", HELPER_MAX_ITEMS);
	h->headers = calloc(json_object_size(v) + 1, sizeof(*h->headers));
	if (!h->headers)
		return errf(err, errlen, "out of memory");
	h->has_headers = true;
	json_object_foreach((json_t *)v, name, val)
	{
		for (size_t k = 0; k < i; k++)
			if (strcasecmp(h->headers[k].name, name) == 0)
				return errf(err, errlen,
				            "\"headers\" gives one name twice (names ignore case)");
		h->n_headers = i + 1;
		if (take_header(&h->headers[i++], name, val, err, errlen) < 0)
			return -1;
	}
	return 0;
}

static int take_on_open(struct helper_out *h, const json_t *v, char *err, size_t errlen)
{
	size_t n = json_array_size(v);

	if (!json_is_array(v))
		return errf(err, errlen, "\"on_open\" must be an array of strings");
	if (n > HELPER_MAX_ITEMS)
		return errf(err, errlen, "\"on_open\" has more than %d messages", HELPER_MAX_ITEMS);
	h->on_open = calloc(n + 1, sizeof(*h->on_open));
	if (!h->on_open)
		return errf(err, errlen, "out of memory");
	h->has_on_open = true;
	for (size_t i = 0; i < n; i++) {
		const json_t *m = json_array_get(v, i);
		if (!json_is_string(m))
			return errf(err, errlen, "\"on_open\"[%zu] is not a string", i);
		h->n_on_open = i + 1;
		h->on_open[i].send =
		    tmpl_new_literal(json_string_value(m), json_string_length(m), true);
		if (!h->on_open[i].send)
			return errf(err, errlen, "out of memory");
	}
	return 0;
}

static int take_expires(struct helper_out *h, const json_t *v, char *err, size_t errlen)
{
	double s = json_number_value(v);

	if (!json_is_number(v) || !isfinite(s) || s < 0 || s > HELPER_EXPIRES_MAX)
		return errf(err, errlen, "\"expires_in\" must be a number of seconds, 0 to %.0f",
		            HELPER_EXPIRES_MAX);
	h->expires_in_ms = (int64_t)llround(s * 1000.0);
	return 0;
}

static int take(struct helper_out *h, const json_t *o, char *err, size_t errlen)
{
	const char *key;
	json_t *v;
	int rc = 0;

	json_object_foreach((json_t *)o, key, v)
	{
		if (strcmp(key, "url") == 0)
			rc = take_url(h, v, err, errlen);
		else if (strcmp(key, "headers") == 0)
			rc = take_headers(h, v, err, errlen);
		else if (strcmp(key, "on_open") == 0)
			rc = take_on_open(h, v, err, errlen);
		else if (strcmp(key, "expires_in") == 0)
			rc = take_expires(h, v, err, errlen);
		else
			/* Not quoted: even a member's name is output, and output is secret. */
			rc = errf(err, errlen,
			          "an unknown member (the members are url, headers, on_open and "
			          "expires_in)");
		if (rc < 0)
			return -1;
	}
	return 0;
}

int helper_parse(const char *text, size_t len, struct helper_out **out, char *err, size_t errlen)
{
	struct helper_out *h;
	json_error_t e;
	json_t *o;
	size_t blank = 0;

	while (blank < len && strchr(" \t\r\n", text[blank]) && text[blank])
		blank++;
	*out = NULL;
	if (len > HELPER_OUT_MAX)
		return errf(err, errlen, "it printed more than %d bytes", HELPER_OUT_MAX);
	if (blank >= len)
		return errf(err, errlen, "it printed nothing on stdout");
	o = json_loadb(text, len, JSON_REJECT_DUPLICATES | JSON_DECODE_ANY, &e);
	if (!o)
		return errf(err, errlen, "its output is not JSON: %s (at byte %d)", json_why(&e),
		            e.position);
	if (!json_is_object(o)) {
		json_decref(o);
		return errf(err, errlen, "its output is not a JSON object {...}");
	}
	h = calloc(1, sizeof(*h));
	if (!h) {
		json_decref(o);
		return errf(err, errlen, "out of memory");
	}
	h->expires_in_ms = -1;
	if (take(h, o, err, errlen) < 0) {
		helper_out_free(h);
		h = NULL;
	}
	/* (jansson frees its own copies of the strings without wiping them, as libconfig does
	 * with the configuration's: the copies kept here are the ones wiped.) */
	json_decref(o);
	*out = h;
	return h ? 0 : -1;
}

size_t helper_clean_line(const char *in, size_t n, char *out, size_t size)
{
	size_t k = 0;

	if (size == 0)
		return 0;
	while (n && (*in == ' ' || *in == '\t')) {
		in++;
		n--;
	}
	for (size_t i = 0; i < n && in[i] != '\n' && in[i] != '\r' && k + 1 < size; i++) {
		unsigned char c = (unsigned char)in[i];
		out[k++] = c == '\t' ? ' ' : (c >= 0x20 && c < 0x7f) ? (char)c : '?';
	}
	while (k && out[k - 1] == ' ')
		k--;
	out[k] = '\0';
	return k;
}
