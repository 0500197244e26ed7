/* rttring: see rttring.h. Codes below 2048 are the microseconds themselves; above, the code
 * is (e + 1) * 1024 + (m - 1024) where us = m << e with m in [1024, 2048): monotonic, so a
 * larger code is always a longer round trip. */
#include "wsbeat/rttring.h"

uint16_t rtt_code(int64_t us)
{
	unsigned e = 0;

	if (us <= 0)
		return 0;
	if (us < 2048)
		return (uint16_t)us;
	while ((us >> e) >= 2048)
		e++;
	return (uint16_t)((e + 1) * 1024 + (unsigned)((us >> e) - 1024));
}

int64_t rtt_decode(uint16_t code)
{
	unsigned b;

	if (code > RTT_CODE_MAX)
		code = RTT_CODE_MAX;
	b = code >> 10;
	if (b < 2)
		return code;
	return (int64_t)(1024 + (code & 1023)) << (b - 1);
}

void rtt_ring_push(struct rtt_ring *r, int64_t rtt_us)
{
	r->code[r->head] = rtt_code(rtt_us);
	r->head = (uint8_t)((r->head + 1) % RTT_RING_N);
	if (r->n < RTT_RING_N)
		r->n++;
}

int64_t rtt_ring_get(const struct rtt_ring *r, unsigned i)
{
	unsigned oldest = (r->head + RTT_RING_N - r->n) % RTT_RING_N;

	return rtt_decode(r->code[(oldest + i) % RTT_RING_N]);
}
