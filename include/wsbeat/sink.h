/*
 * sink: where a feed's received messages go. Sinks are chosen by name from a table of
 * operations (discard, stdout, file), so adding one is one more file. Feeds that name the same
 * destination share one sink; every record is one complete line, so records of different feeds
 * never interleave within a line.
 *
 * Records never block the loop: they are appended to a bounded in-memory buffer which is
 * written out in bounded chunks from a timer (regular files cannot be polled). When the buffer
 * is full, records are dropped, counted and reported in the log (once per second at most).
 * sinks_flush_all writes everything out at shutdown.
 *
 * File format (one JSON object per line, see design.md §2):
 *   {"ts":"2026-11-26T14:00:00.123456Z","feed":"okx","conn":3,"type":"text","data":"..."}
 *   {"ts":"…","feed":"okx","conn":3,"type":"binary","data":"<base64>"}
 *   {"ts":"…","feed":"okx","conn":3,"event":"open","url":"wss://host/path"}
 *   {"ts":"…","feed":"okx","conn":3,"event":"closed","code":1006,"reason":"connection lost"}
 * Text data is a JSON string: ", \ and control characters escaped; invalid UTF-8 bytes as \u00XX.
 */
#ifndef WSBEAT_SINK_H
#define WSBEAT_SINK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "wsbeat/cfg.h"
#include "wsbeat/timerq.h"

/* Bound on what one sink may hold in memory before it drops records. */
#define SINK_BUFFER_MAX (8u * 1024 * 1024)
/* Pending bytes are written this much per write(2)... */
#define SINK_WRITE_CHUNK (256u * 1024)
/* ...for at most this long per sink per timer tick, so that a slow disk cannot stall the loop. */
#define SINK_TICK_BUDGET_US 2000

struct sink;
struct sinks;

struct sink_stats {
	uint64_t records, bytes_written, dropped_records;
};

/* Creates the registry; its one flush timer lives in tq (room reserved here). NULL on ENOMEM. */
struct sinks *sinks_new(struct timerq *tq);
/*
 * Flushes what is still buffered (blocking, at most 1 s; call sinks_flush_all first for a
 * longer bound) and frees every sink, also those not yet put: free the feeds first. Call
 * before tq is finalised. NULL is a no-op.
 */
void sinks_free(struct sinks *ss);

/*
 * Checks that a sink configuration can be opened (directory exists and is writable, file can
 * be created or appended to) without keeping anything open. 0, or -1 with a reason in err.
 * Used by --check and at start.
 */
int sink_check(const struct cfg_sink *c, char *err, size_t errlen);

/*
 * Returns the sink for c, opening it or sharing an existing one (by type and path, or by the
 * file's device and inode when two paths name one file); NULL with a reason in err. For type
 * discard returns NULL with err[0] == '\0': discard needs no sink. Every successful get is
 * matched by one sink_put; the last put frees the sink once its buffer has been written out.
 */
struct sink *sinks_get(struct sinks *ss, const struct cfg_sink *c, char *err, size_t errlen);
void sink_put(struct sink *s);

/*
 * Records. ts_real_us is CLOCK_REALTIME in microseconds. Each is appended whole to the buffer
 * or dropped whole and counted; none blocks or calls back. s NULL (discard) is a no-op.
 * url should be the redacted form (no credentials or query string); NULL url or reason allowed.
 */
void sink_message(struct sink *s, int64_t ts_real_us, const char *feed, unsigned conn, bool binary,
                  const void *data, size_t len);
void sink_open_record(struct sink *s, int64_t ts_real_us, const char *feed, unsigned conn,
                      const char *url);
void sink_closed_record(struct sink *s, int64_t ts_real_us, const char *feed, unsigned conn,
                        int code, const char *reason);

/*
 * Reopens every file sink by path (SIGUSR1, after logrotate renamed the files). The rest of a
 * partly written record still goes to the old file; everything else buffered to the new one.
 * A sink that cannot be reopened logs why and keeps writing to its old file.
 */
void sinks_reopen_all(struct sinks *ss);
/*
 * Writes out everything buffered, blocking (poll on pipes) for at most timeout_ms; for
 * SIGTERM. 0 if all was written, -1 if something is still buffered.
 */
int sinks_flush_all(struct sinks *ss, int timeout_ms);

/* Counters of s (records accepted, bytes written, records dropped); NULL for s NULL. */
const struct sink_stats *sink_stats(const struct sink *s);
/* Bytes buffered in s and not yet written; 0 for s NULL. */
size_t sink_pending(const struct sink *s);

#endif
