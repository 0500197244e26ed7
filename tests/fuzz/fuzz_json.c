/*
 * libFuzzer target: json_escape and json_base64. Properties, on arbitrary bytes:
 *  - the length pass (dst NULL) equals what is written, and json_escape writes at most 6 * len;
 *  - the escaped text is valid JSON string content: no raw control character, no bare '"', a
 *    backslash only in a complete escape, every non-ASCII byte part of valid UTF-8;
 *  - round trip: decoding it, with \u00XX standing for the byte XX (how json.h says invalid
 *    bytes and control characters are written), gives back exactly the input bytes;
 *  - base64: 4 * ceil(len / 3) bytes of the standard alphabet with '=' padding, decoding to
 *    the input.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "wsbeat/json.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Length of the valid UTF-8 sequence at s (2..4 bytes), or 0. */
static size_t utf8_seq(const uint8_t *s, size_t n)
{
	uint32_t cp, min;
	size_t len;
	if ((s[0] & 0xE0) == 0xC0)
		len = 2, cp = s[0] & 0x1F, min = 0x80;
	else if ((s[0] & 0xF0) == 0xE0)
		len = 3, cp = s[0] & 0x0F, min = 0x800;
	else if ((s[0] & 0xF8) == 0xF0)
		len = 4, cp = s[0] & 0x07, min = 0x10000;
	else
		return 0;
	if (n < len)
		return 0;
	for (size_t i = 1; i < len; i++) {
		if ((s[i] & 0xC0) != 0x80)
			return 0;
		cp = (cp << 6) | (s[i] & 0x3F);
	}
	if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
		return 0;
	return len;
}

static int hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* Decodes escaped JSON string content; returns the decoded length or -1 if not valid. */
static long unescape(const char *e, size_t n, uint8_t *out)
{
	size_t i = 0, o = 0;
	while (i < n) {
		uint8_t c = (uint8_t)e[i];
		if (c < 0x20 || c == 0x7f || c == '"')
			return -1;
		if (c >= 0x80) {
			size_t l = utf8_seq((const uint8_t *)e + i, n - i);
			if (!l)
				return -1;
			memcpy(out + o, e + i, l);
			o += l, i += l;
			continue;
		}
		if (c != '\\') {
			out[o++] = c, i++;
			continue;
		}
		if (i + 1 >= n)
			return -1;
		switch (e[i + 1]) {
		case '"':
			out[o++] = '"';
			break;
		case '\\':
			out[o++] = '\\';
			break;
		case '/':
			out[o++] = '/';
			break;
		case 'b':
			out[o++] = '\b';
			break;
		case 'f':
			out[o++] = '\f';
			break;
		case 'n':
			out[o++] = '\n';
			break;
		case 'r':
			out[o++] = '\r';
			break;
		case 't':
			out[o++] = '\t';
			break;
		case 'u': {
			if (i + 6 > n || e[i + 2] != '0' || e[i + 3] != '0')
				return -1; /* json.h: only \u00XX is ever written */
			int h = hexval(e[i + 4]), l = hexval(e[i + 5]);
			if (h < 0 || l < 0)
				return -1;
			out[o++] = (uint8_t)(h << 4 | l);
			i += 6;
			continue;
		}
		default:
			return -1;
		}
		i += 2;
	}
	return (long)o;
}

static int b64val(char c)
{
	static const char a[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
	const char *p = c ? strchr(a, c) : NULL;
	return p ? (int)(p - a) : -1;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size > 1 << 16)
		return 0;
	size_t want = json_escape(NULL, data, size);
	if (want > 6 * size)
		abort();
	char *esc = malloc(want + 1);
	uint8_t *back = malloc(size + 1);
	if (!esc || !back)
		abort();
	if (json_escape(esc, data, size) != want)
		abort();
	long n = unescape(esc, want, back);
	if (n != (long)size || memcmp(back, data, size) != 0)
		abort();

	size_t bl = json_base64(NULL, data, size);
	if (bl != 4 * ((size + 2) / 3))
		abort();
	char *b64 = malloc(bl + 1);
	if (!b64 || json_base64(b64, data, size) != bl)
		abort();
	size_t o = 0;
	for (size_t i = 0; i < bl; i += 4) {
		int v[4];
		for (int k = 0; k < 4; k++)
			v[k] = b64[i + k] == '=' && i + 4 == bl && k >= 2 ? 0 : b64val(b64[i + k]);
		if (v[0] < 0 || v[1] < 0 || v[2] < 0 || v[3] < 0)
			abort();
		uint32_t w = (uint32_t)(v[0] << 18 | v[1] << 12 | v[2] << 6 | v[3]);
		uint8_t t[3] = {(uint8_t)(w >> 16), (uint8_t)(w >> 8), (uint8_t)w};
		size_t take = size - o < 3 ? size - o : 3;
		if (memcmp(t, data + o, take) != 0)
			abort();
		/* padding exactly where the input ran out */
		if ((take < 3 && b64[i + 3] != '=') || (take < 2 && b64[i + 2] != '=') ||
		    (take == 3 && (b64[i + 2] == '=' || b64[i + 3] == '=')))
			abort();
		o += take;
	}
	if (o != size)
		abort();
	free(b64);
	free(esc);
	free(back);
	return 0;
}
