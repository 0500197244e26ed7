/* JSON string escaping with UTF-8 validation, and base64: the encoders the capture file needs. */
#include "wsbeat/json.h"

#include <stdint.h>
#include <string.h>

/*
 * Length of the valid UTF-8 sequence at p (1 to 4), or 0 when the byte at p does not start
 * one. Follows Unicode table 3-7, which rules out overlong forms, surrogates and values above
 * U+10FFFF by narrowing the range of the second byte.
 */
static size_t utf8_seq_len(const uint8_t *p, size_t n)
{
	uint8_t c = p[0], lo = 0x80, hi = 0xbf;
	size_t need;

	if (c < 0x80)
		return 1;
	if (c >= 0xc2 && c <= 0xdf)
		need = 2;
	else if (c >= 0xe0 && c <= 0xef)
		need = 3;
	else if (c >= 0xf0 && c <= 0xf4)
		need = 4;
	else
		return 0;
	if (c == 0xe0)
		lo = 0xa0;
	else if (c == 0xed)
		hi = 0x9f;
	else if (c == 0xf0)
		lo = 0x90;
	else if (c == 0xf4)
		hi = 0x8f;
	if (n < need || p[1] < lo || p[1] > hi)
		return 0;
	for (size_t i = 2; i < need; i++)
		if (p[i] < 0x80 || p[i] > 0xbf)
			return 0;
	return need;
}

/* The short escape for c ('n' for '\n', ...), or 0 when c needs none or the \u form. */
static char short_escape(uint8_t c)
{
	switch (c) {
	case '"':
		return '"';
	case '\\':
		return '\\';
	case '\b':
		return 'b';
	case '\f':
		return 'f';
	case '\n':
		return 'n';
	case '\r':
		return 'r';
	case '\t':
		return 't';
	default:
		return 0;
	}
}

/* Writes the escape of one byte (2 or 6 bytes) when dst is not NULL; returns its length. */
static size_t escape_byte(char *dst, uint8_t c)
{
	static const char hex[] = "0123456789abcdef";
	char e = short_escape(c);

	if (e) {
		if (dst) {
			dst[0] = '\\';
			dst[1] = e;
		}
		return 2;
	}
	if (dst)
		memcpy(dst, (const char[]){'\\', 'u', '0', '0', hex[c >> 4], hex[c & 15]}, 6);
	return 6;
}

#define HIGHS 0x8080808080808080ull

size_t ascii_run(const void *src, size_t len)
{
	const uint8_t *p = src;
	size_t i = 0;

	for (uint64_t w; i + 8 <= len; i += 8) {
		memcpy(&w, p + i, sizeof(w));
		if (w & HIGHS)
			break;
	}
	while (i < len && p[i] < 0x80)
		i++;
	return i;
}

/*
 * What json_escape writes for each ASCII byte: 1 (the byte), 2 (\" \\ \b \t \n \f \r) or 6
 * (\u00XX); 0 for the bytes from 0x80, which start or continue UTF-8 sequences. JSON text is
 * full of quotes, so runs of plain bytes are short: a table lookup per byte beats scanning
 * for runs.
 */
static const uint8_t out_len[256] = {
    6, 6, 6, 6, 6, 6, 6, 6, 2, 2, 2, 6, 2, 2, 6, 6, /* 0x00 */
    6, 6, 6, 6, 6, 6, 6, 6, 6, 6, 6, 6, 6, 6, 6, 6, /* 0x10 */
    1, 1, 2, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, /* 0x20 " */
    1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, /* 0x30 */
    1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, /* 0x40 */
    1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 2, 1, 1, 1, /* 0x50 \ */
    1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, /* 0x60 */
    1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 6, /* 0x70 DEL; 0x80-0xff: 0 */
};

size_t json_escape(char *dst, const void *src, size_t len)
{
	const uint8_t *p = src;
	size_t i = 0, out = 0;

	while (i < len) {
		uint8_t c = p[i], k = out_len[c];

		if (k == 1) {
			if (dst)
				dst[out] = (char)c;
			out++;
			i++;
			continue;
		}
		if (k) {
			out += dst ? escape_byte(dst + out, c) : k;
			i++;
			continue;
		}
		size_t n = utf8_seq_len(p + i, len - i);

		if (n == 0) { /* not part of a valid sequence */
			out += escape_byte(dst ? dst + out : NULL, p[i]);
			i++;
			continue;
		}
		if (dst)
			memcpy(dst + out, p + i, n);
		out += n;
		i += n;
	}
	return out;
}

size_t json_base64(char *dst, const void *src, size_t len)
{
	static const char abc[] =
	    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
	const uint8_t *p = src;
	size_t out = 0;

	if (!dst)
		return (len + 2) / 3 * 4;
	for (size_t i = 0; i < len; i += 3) {
		size_t left = len - i;
		uint32_t v = (uint32_t)p[i] << 16;

		if (left > 1)
			v |= (uint32_t)p[i + 1] << 8;
		if (left > 2)
			v |= p[i + 2];
		dst[out++] = abc[v >> 18];
		dst[out++] = abc[(v >> 12) & 63];
		dst[out++] = left > 1 ? abc[(v >> 6) & 63] : '=';
		dst[out++] = left > 2 ? abc[v & 63] : '=';
	}
	return out;
}
