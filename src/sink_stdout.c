/*
 * The stdout sink. A pipe or socket is switched to O_NONBLOCK so a slow reader cannot stall the
 * loop (the flag is shared with every process holding the same open file, which for a pipe we
 * own is acceptable) and restored at close. A tty or regular file is never touched: other
 * programs sharing it would see EAGAIN, and writes to them do not block for long.
 */
#include "sink_internal.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static int stdout_check(const struct cfg_sink *c, char *err, size_t errlen)
{
	struct stat st;

	if (fstat(STDOUT_FILENO, &st) < 0) {
		snprintf(err, errlen, "sink stdout: standard output is not open (%s)",
		         strerror(errno));
		return -1;
	}
	return 0;
}

static int stdout_open(struct sink *s, char *err, size_t errlen)
{
	struct stat st;
	int fl;

	if (stdout_check(NULL, err, errlen) < 0)
		return -1;
	fstat(STDOUT_FILENO, &st);
	s->dev = st.st_dev;
	s->ino = st.st_ino;
	s->saved_flags = -1;
	if (!S_ISFIFO(st.st_mode) && !S_ISSOCK(st.st_mode))
		return STDOUT_FILENO;
	fl = fcntl(STDOUT_FILENO, F_GETFL);
	if (fl >= 0 && !(fl & O_NONBLOCK) && fcntl(STDOUT_FILENO, F_SETFL, fl | O_NONBLOCK) == 0)
		s->saved_flags = fl;
	return STDOUT_FILENO;
}

static void stdout_close(struct sink *s, int fd)
{
	/* stdout stays open for the rest of the process; only our flag change is undone. */
	if (s->saved_flags >= 0)
		fcntl(fd, F_SETFL, s->saved_flags);
	s->saved_flags = -1;
}

const struct sink_ops sink_stdout_ops = {
    .type = SINK_STDOUT,
    .name = "stdout",
    .check = stdout_check,
    .open = stdout_open,
    .close = stdout_close,
    .reopen = false,
};
