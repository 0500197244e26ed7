/*
 * json: small pure encoders for building JSON text: string escaping of arbitrary bytes and
 * base64. Both write into a caller's buffer and can be asked for the exact length first (pass
 * dst = NULL), so a caller can size or reserve space before encoding. No allocation, no I/O.
 */
#ifndef WSBEAT_JSON_H
#define WSBEAT_JSON_H

#include <stddef.h>

/*
 * Escapes len bytes of src as the inside of a JSON string (no surrounding quotes) into dst and
 * returns the number of bytes written; dst NULL only computes that number. Valid UTF-8 passes
 * through unchanged; '"' and '\\' are backslash-escaped; control characters (0x00-0x1f, 0x7f)
 * become \b \f \n \r \t or \u00XX; every byte that is not part of a valid UTF-8 sequence
 * (overlong forms, surrogates, code points above U+10FFFF, truncated sequences) becomes \u00XX.
 * The output is never longer than 6 * len.
 */
size_t json_escape(char *dst, const void *src, size_t len);

/* Length of the leading run of ASCII bytes (below 0x80); 8 bytes at a time. */
size_t ascii_run(const void *src, size_t len);

/*
 * Encodes len bytes of src as base64 (RFC 4648, standard alphabet, '=' padding) into dst and
 * returns the number of bytes written, 4 * ceil(len / 3); dst NULL only computes that number.
 * No terminating NUL is written.
 */
size_t json_base64(char *dst, const void *src, size_t len);

#endif
