/*
 * sink internals shared by the registry (sink.c) and the sink types (sink_<type>.c). A sink
 * type is a const struct sink_ops; adding one is one more file and one line in sink.c's table.
 */
#ifndef WSBEAT_SINK_INTERNAL_H
#define WSBEAT_SINK_INTERNAL_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "wsbeat/sink.h"

struct sink {
	struct sink *next; /* in the registry's list */
	struct sinks *ss;
	const struct sink_ops *ops;
	char *path; /* file sinks: what is opened (and reopened); NULL otherwise */
	char *name; /* for logs: the path, or the type name */
	unsigned refs;
	int fd;
	int saved_flags; /* stdout: file status flags to restore at close; -1 if untouched */
	dev_t dev;       /* identity of what fd refers to, so two paths to one file share */
	ino_t ino;

	char *buf; /* pending bytes are buf[off, len) */
	size_t off, len, cap;
	bool partial;     /* the last byte written was not the end of a record */
	int64_t due_us;   /* when the flush timer should next look at this sink; TQ_NEVER = idle */
	int64_t retry_us; /* back-off after EAGAIN, doubled while the destination stays full */

	int last_errno; /* last write error not yet reported */
	uint64_t drops_unreported;
	int64_t last_report_us;
	struct sink_stats st;
};

struct sink_ops {
	enum sink_type type;
	const char *name;
	/* Checks c without keeping anything open: 0, or -1 with a reason in err. */
	int (*check)(const struct cfg_sink *c, char *err, size_t errlen);
	/*
	 * Opens the destination of s (s->path for files) and returns a non-blocking-safe fd,
	 * or -1 with a reason in err. NULL for types that need no sink (discard).
	 */
	int (*open)(struct sink *s, char *err, size_t errlen);
	/* Releases fd, which open returned for s. */
	void (*close)(struct sink *s, int fd);
	/* Whether sinks_reopen_all opens the destination again (files after rotation). */
	bool reopen;
};

extern const struct sink_ops sink_stdout_ops;
extern const struct sink_ops sink_file_ops;

#endif
