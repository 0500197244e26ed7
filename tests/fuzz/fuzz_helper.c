/*
 * libFuzzer target: helper_parse (a connect_command's stdout) and helper_clean_line (the first
 * line of its stderr). Input: the helper's output, as printed.
 *
 * Properties: no crash, no leak; a failure has a message and no result, and no message ever
 * holds a byte of the output (checked with a marker that no message of ours contains); a
 * result holds only what an attempt may use: a ws/wss URL, header names that are HTTP tokens
 * the handshake does not own, values without CR, LF or NUL, at most HELPER_MAX_ITEMS headers
 * and messages, each message a flat secret template; the cleaned line is printable ASCII,
 * shorter than its buffer, without blanks at either end.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "wsbeat/helper.h"
#include "wsbeat/tmpl.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_result(const struct helper_out *h)
{
	if (h->has_url && (!h->url.host || !h->url.path || h->url.port == 0))
		abort();
	if (h->n_headers > HELPER_MAX_ITEMS || h->n_on_open > HELPER_MAX_ITEMS)
		abort();
	if (h->expires_in_ms < -1 || h->expires_at_us != 0)
		abort();
	for (size_t i = 0; i < h->n_headers; i++) {
		const struct helper_header *x = &h->headers[i];
		if (!cfg_is_token(x->name) || cfg_header_reserved(x->name) ||
		    strlen(x->value) != x->value_len || strpbrk(x->value, "\r\n"))
			abort();
	}
	for (size_t i = 0; i < h->n_on_open; i++) {
		const struct tmpl *t = h->on_open[i].send;
		if (!t || !t->secret || !t->flat || h->on_open[i].wait)
			abort();
	}
}

static void check_line(const uint8_t *data, size_t size)
{
	char line[HELPER_ERR_LINE];
	size_t n = helper_clean_line((const char *)data, size, line, sizeof(line));

	if (n >= sizeof(line) || strlen(line) != n)
		abort();
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)line[i] < 0x20 || (unsigned char)line[i] >= 0x7f)
			abort();
	if (n && (line[0] == ' ' || line[n - 1] == ' '))
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char err[256] = "";
	struct helper_out *h = (struct helper_out *)1;
	char *text = malloc(size + 1);
	int rc;

	if (!text)
		return 0;
	/* The shell's buffer is NUL-terminated after the output; the parser takes the length. */
	memcpy(text, data, size);
	text[size] = '\0';
	rc = helper_parse(text, size, &h, err, sizeof(err));
	if ((rc == 0) != (h != NULL) || (rc != 0 && !err[0]))
		abort();
	/* "Zq" never appears in a message of ours: any in err came from the output. */
	if (strstr(err, "Zq"))
		abort();
	if (h)
		check_result(h);
	helper_out_free(h);
	check_line(data, size);
	free(text);
	return 0;
}
