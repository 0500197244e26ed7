/* zinf: bounded streaming inflate of compressed messages (zlib). */
#include "wsbeat/zinf.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

/* Output is produced in steps of at most this much, so the bound is checked as it grows. */
#define ZINF_STEP 16384

struct zinf {
	z_stream zs;
	bool inited;  /* inflateInit2 has been called on zs */
	bool started; /* this message's format is known and zs is set for it */
	bool ended;   /* Z_STREAM_END seen */
	enum decompress mode;
	unsigned char head[2]; /* the first bytes, kept until the format is known */
	size_t n_head;
	const char *err;
};

struct zinf *zinf_new(void)
{
	return calloc(1, sizeof(struct zinf));
}

void zinf_free(struct zinf *z)
{
	if (!z)
		return;
	if (z->inited)
		inflateEnd(&z->zs);
	free(z);
}

void zinf_begin(struct zinf *z, enum decompress mode)
{
	z->mode = mode;
	z->started = z->ended = false;
	z->n_head = 0;
	z->err = NULL;
}

/* zlib's header: CM 8 (deflate), a window of at most 32 KiB, and the FCHECK bits. */
static bool is_zlib_header(const unsigned char *h)
{
	return (h[0] & 0x0f) == 8 && (h[0] >> 4) <= 7 && ((h[0] << 8) | h[1]) % 31 == 0;
}

/* Sets the stream up for the format the first two bytes show. */
static int start(struct zinf *z)
{
	bool gz = z->head[0] == 0x1f && z->head[1] == 0x8b;
	int wbits;

	if (z->mode == DEC_GZIP && !gz) {
		z->err = "not gzip data (decompress = \"gzip\")";
		return ZINF_CORRUPT;
	}
	if (gz && z->mode != DEC_DEFLATE)
		wbits = 15 + 16;
	else if (is_zlib_header(z->head))
		wbits = 15;
	else
		wbits = -15; /* raw deflate */
	if (!z->inited) {
		if (inflateInit2(&z->zs, wbits) != Z_OK)
			return ZINF_NOMEM;
		z->inited = true;
	} else if (inflateReset2(&z->zs, wbits) != Z_OK) {
		z->err = "cannot reset the inflater";
		return ZINF_CORRUPT;
	}
	z->started = true;
	return ZINF_OK;
}

static int inflate_some(struct zinf *z, const unsigned char *in, size_t len, struct mbuf *out,
                        size_t max)
{
	z->zs.next_in = (unsigned char *)in;
	z->zs.avail_in = (uInt)len;
	while (z->zs.avail_in > 0) {
		size_t room = max + 1 - out->len; /* one byte over the bound tells it is too big */
		int rc;
		if (z->ended) {
			z->err = "data after the end of the compressed stream";
			return ZINF_CORRUPT;
		}
		if (room > ZINF_STEP)
			room = ZINF_STEP;
		if (!mbuf_reserve(out, room))
			return ZINF_NOMEM;
		z->zs.next_out = (unsigned char *)out->p + out->len;
		z->zs.avail_out = (uInt)room;
		rc = inflate(&z->zs, Z_NO_FLUSH);
		out->len += room - z->zs.avail_out;
		out->p[out->len] = '\0';
		if (out->len > max)
			return ZINF_TOO_BIG;
		if (rc == Z_STREAM_END)
			z->ended = true;
		else if (rc != Z_OK && rc != Z_BUF_ERROR) {
			z->err = z->zs.msg ? z->zs.msg : "corrupt compressed data";
			return rc == Z_MEM_ERROR ? ZINF_NOMEM : ZINF_CORRUPT;
		}
	}
	return ZINF_OK;
}

int zinf_feed(struct zinf *z, const void *in, size_t len, struct mbuf *out, size_t max)
{
	const unsigned char *p = in;
	int rc;

	while (!z->started && len > 0) {
		z->head[z->n_head++] = *p++;
		len--;
		if (z->n_head == 2) {
			if ((rc = start(z)) != ZINF_OK ||
			    (rc = inflate_some(z, z->head, 2, out, max)) != ZINF_OK)
				return rc;
		}
	}
	return len ? inflate_some(z, p, len, out, max) : ZINF_OK;
}

int zinf_end(struct zinf *z)
{
	if (!z->started && z->n_head == 0)
		return ZINF_OK; /* an empty message */
	if (z->ended)
		return ZINF_OK;
	z->err = "truncated compressed data";
	return ZINF_CORRUPT;
}

const char *zinf_error(const struct zinf *z)
{
	return z->err ? z->err : "corrupt compressed data";
}
