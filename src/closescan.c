/* closescan: the close code in a WebSocket client's receive stream (see closescan.h). */
#include "wsbeat/closescan.h"

enum {
	CS_HTTP,    /* in the upgrade answer, looking for its blank line */
	CS_HEADER,  /* in a frame header */
	CS_PAYLOAD, /* skipping a payload */
	CS_CODE,    /* in a close frame's payload, before the end of its two code bytes */
	CS_DONE,    /* a close frame was seen, or the stream is not a server's: stop */
};

#define OP_CLOSE 0x8

void closescan_start(struct closescan *s)
{
	*s = (struct closescan){.phase = CS_HTTP};
}

void closescan_idle(struct closescan *s)
{
	*s = (struct closescan){.phase = CS_DONE};
}

/* The current frame's header is complete and its payload is len bytes long. */
static void frame(struct closescan *s, uint64_t len)
{
	s->step = 0;
	if ((s->op & 0x0f) == OP_CLOSE) {
		/* One byte is not a valid close payload (lws answers it with 1002): no code. */
		if (len == 0)
			s->code = CLOSESCAN_NO_STATUS;
		s->left = 0;
		s->phase = len < 2 ? CS_DONE : CS_CODE;
		return;
	}
	s->left = len;
	s->phase = len ? CS_PAYLOAD : CS_HEADER;
}

void closescan_feed(struct closescan *s, const void *buf, size_t n)
{
	static const char blank[] = "\r\n\r\n";
	const unsigned char *p = buf, *end = p + n;

	while (p < end) {
		unsigned char c;

		switch (s->phase) {
		case CS_HTTP:
			c = *p++;
			s->step = c == (unsigned char)blank[s->step] ? s->step + 1 : c == '\r';
			if (s->step == 4) {
				s->step = 0;
				s->phase = CS_HEADER;
			}
			break;
		case CS_HEADER:
			/* A whole short frame (a PONG, a small message) in one step. */
			if (s->step == 0 && end - p >= 2 && p[1] < 126 &&
			    (p[0] & 0x0f) != OP_CLOSE) {
				size_t len = p[1], avail = (size_t)(end - p) - 2;
				if (len <= avail) {
					p += 2 + len;
				} else {
					s->left = len - avail;
					s->phase = CS_PAYLOAD;
					p = end;
				}
				break;
			}
			c = *p++;
			if (s->step == 0) {
				s->op = c;
				s->step = 1;
			} else if (s->step == 1) {
				unsigned l7 = c & 0x7f;
				if (c & 0x80) {
					/* Servers do not mask (RFC 6455 5.1); lws drops the
					 * connection. */
					s->phase = CS_DONE;
				} else if (l7 < 126) {
					frame(s, l7);
				} else {
					s->need = l7 == 126 ? 4 : 10;
					s->left = 0;
					s->step = 2;
				}
			} else {
				/* The extended length, big-endian. */
				s->left = s->left << 8 | c;
				if (++s->step == s->need)
					frame(s, s->left);
			}
			break;
		case CS_PAYLOAD: {
			size_t k = (size_t)(end - p);
			if (s->left < k)
				k = (size_t)s->left;
			p += k;
			s->left -= k;
			if (!s->left)
				s->phase = CS_HEADER;
			break;
		}
		case CS_CODE:
			s->left = s->left << 8 | *p++;
			if (++s->step == 2) {
				s->code = (uint16_t)s->left;
				s->phase = CS_DONE;
			}
			break;
		default:
			return;
		}
	}
}
