/* Reconnect delays: capped exponential growth with downward jitter. */
#include "wsbeat/backoff.h"

#define RETRY_AFTER_CAP_MS (3600 * 1000LL)

int64_t backoff_delay_ms(const struct cfg_reconnect *p, unsigned k, double r)
{
	double d = (double)p->initial_ms;

	/* Grow step by step so a large k saturates at max instead of overflowing. */
	for (unsigned i = 1; i < k && d < (double)p->max_ms && p->multiplier > 1; i++)
		d *= p->multiplier;
	if (d > (double)p->max_ms)
		d = (double)p->max_ms;
	if (r < 0)
		r = 0;
	if (r >= 1)
		r = 0.999999;
	d -= d * p->jitter * r;
	return (int64_t)(d + 0.5);
}

int backoff_status_is_permanent(int status)
{
	return status == 401 || status == 403 || status == 404;
}

bool backoff_close_is_planned(int code)
{
	return code == 1012 || code == 1013;
}

int64_t backoff_for_status(const struct cfg_reconnect *p, int status, int64_t retry_after_ms,
                           int64_t policy_ms)
{
	if (backoff_status_is_permanent(status))
		return p->max_ms;
	if ((status == 429 || status == 503) && retry_after_ms >= 0) {
		if (retry_after_ms > RETRY_AFTER_CAP_MS)
			retry_after_ms = RETRY_AFTER_CAP_MS;
		return retry_after_ms > policy_ms ? retry_after_ms : policy_ms;
	}
	return policy_ms;
}
