/* sd_notify(3) from libsystemd, guarded so a plain foreground run sends nothing. */
#include "wsbeat/notify.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <systemd/sd-daemon.h>
#include <time.h>

#include "wsbeat/log.h"

static bool enabled;
static uint64_t watchdog_usec;
static char last_status[256];

void notify_init(void)
{
	enabled = getenv("NOTIFY_SOCKET") != NULL;
	if (!enabled || sd_watchdog_enabled(0, &watchdog_usec) <= 0)
		watchdog_usec = 0;
}

uint64_t notify_watchdog_usec(void)
{
	return watchdog_usec;
}

static void notify_send(const char *state)
{
	if (enabled && sd_notify(0, state) < 0)
		log_debug("sd_notify(%s) failed", state);
}

void notify_ready(void)
{
	notify_send("READY=1");
}

void notify_reloading(void)
{
	struct timespec ts;
	char msg[64];

	clock_gettime(CLOCK_MONOTONIC, &ts);
	snprintf(msg, sizeof(msg), "RELOADING=1\nMONOTONIC_USEC=%llu",
	         (unsigned long long)ts.tv_sec * 1000000ULL +
	             (unsigned long long)ts.tv_nsec / 1000);
	notify_send(msg);
}

void notify_stopping(void)
{
	notify_send("STOPPING=1");
}

void notify_watchdog(void)
{
	notify_send("WATCHDOG=1");
}

void notify_status(const char *text)
{
	char msg[sizeof(last_status) + 8];

	if (!enabled || strcmp(text, last_status) == 0)
		return;
	snprintf(last_status, sizeof(last_status), "%s", text);
	snprintf(msg, sizeof(msg), "STATUS=%s", last_status);
	notify_send(msg);
}
