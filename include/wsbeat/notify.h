/*
 * notify: talks to the service manager through sd_notify(3): READY, STATUS, RELOADING,
 * STOPPING and the watchdog. Every call is a no-op when $NOTIFY_SOCKET is not set.
 */
#ifndef WSBEAT_NOTIFY_H
#define WSBEAT_NOTIFY_H

#include <stdint.h>

/* Reads the environment once. */
void notify_init(void);

/* Watchdog period the manager expects (WATCHDOG_USEC), 0 when the watchdog is off. */
uint64_t notify_watchdog_usec(void);

void notify_ready(void);
void notify_reloading(void); /* RELOADING=1 with MONOTONIC_USEC */
void notify_stopping(void);
void notify_watchdog(void);
/* STATUS=<text>; the same text is not sent twice in a row. */
void notify_status(const char *text);

#endif
