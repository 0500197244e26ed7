/* rttring: the last heartbeat round trips of a feed, for the status page's sparkline. Pure.
 *
 * 64 samples in 130 bytes, kept in the feed itself: each is a 16-bit code of the round trip in
 * microseconds, exact below 2.048 ms and within 0.1 % above (10 bits of mantissa), up to
 * INT64_MAX us, so a sparkline of a 200 ms link and one of a 20 us loopback are both true. */
#ifndef WSBEAT_RTTRING_H
#define WSBEAT_RTTRING_H

#include <stdint.h>

#define RTT_RING_N 64
/* The code of INT64_MAX us (e = 52); larger codes decode as this one. */
#define RTT_CODE_MAX ((52 + 1) * 1024 + 1023)

struct rtt_ring {
	uint16_t code[RTT_RING_N];
	uint8_t head; /* where the next sample goes */
	uint8_t n;    /* samples held, at most RTT_RING_N */
};

/* Appends a round trip (microseconds; negative counts as 0), dropping the oldest when full. */
void rtt_ring_push(struct rtt_ring *r, int64_t rtt_us);

/* The i-th sample held, oldest first (0 <= i < r->n), in microseconds. */
int64_t rtt_ring_get(const struct rtt_ring *r, unsigned i);

/* The 16-bit code of a round trip and back (exposed for the unit test). */
uint16_t rtt_code(int64_t us);
int64_t rtt_decode(uint16_t code);

#endif
