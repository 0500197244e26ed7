/* backoff: reconnect delays. Pure: the caller passes the randomness in. */
#ifndef WSBEAT_BACKOFF_H
#define WSBEAT_BACKOFF_H

#include <stdbool.h>
#include <stdint.h>

#include "wsbeat/cfg.h"

/*
 * Delay after the k-th consecutive failure (k >= 1; k = 0 is treated as 1):
 * d = min(max, initial * multiplier^(k-1)), then jittered down by r * jitter * d,
 * where r is uniform in [0, 1). The result is in [d * (1 - jitter), d], in milliseconds.
 */
int64_t backoff_delay_ms(const struct cfg_reconnect *p, unsigned k, double r);

/*
 * Delay after a handshake answered with HTTP status (0 = none): 401/403/404 wait p->max_ms,
 * 429/503 with a Retry-After of retry_after_ms (>= 0) wait at least that (capped at one hour).
 * Otherwise returns policy_ms unchanged.
 */
int64_t backoff_for_status(const struct cfg_reconnect *p, int status, int64_t retry_after_ms,
                           int64_t policy_ms);

/* True when status is one a retry will not fix by itself (401, 403, 404). */
int backoff_status_is_permanent(int status);

/* True for a close code the server sends when it ends a connection on purpose and is itself
 * healthy: 1012 (service restart) and 1013 (try again later), RFC 6455 section 7.4.1 and the
 * IANA registry. Such a close counts no failure. */
bool backoff_close_is_planned(int code);

#endif
