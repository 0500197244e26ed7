/*
 * The file sink: appends to a path, creating it 0640. Opened non-blocking so that a FIFO
 * without a reader fails instead of freezing the loop (regular files ignore the flag).
 * Reopened by path after logrotate has renamed the file, which needs a writable directory.
 */
#include "sink_internal.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define FILE_FLAGS (O_WRONLY | O_APPEND | O_CLOEXEC | O_NOCTTY | O_NONBLOCK)

/* The directory part of path ("." when there is none) into dir. */
static void dir_of(const char *path, char *dir, size_t dirlen)
{
	const char *slash = strrchr(path, '/');

	if (!slash)
		snprintf(dir, dirlen, ".");
	else if (slash == path)
		snprintf(dir, dirlen, "/");
	else
		snprintf(dir, dirlen, "%.*s", (int)(slash - path), path);
}

static int check_dir(const char *path, const char *dir, char *err, size_t errlen)
{
	struct stat st;

	if (stat(dir, &st) < 0) {
		if (errno == ENOENT)
			snprintf(err, errlen, "sink.path %s: directory %s does not exist", path,
			         dir);
		else
			snprintf(err, errlen, "sink.path %s: directory %s: %s", path, dir,
			         strerror(errno));
		return -1;
	}
	if (!S_ISDIR(st.st_mode)) {
		snprintf(err, errlen, "sink.path %s: %s is not a directory", path, dir);
		return -1;
	}
	/* Reopening after rotation creates the file again, so the directory must be writable. */
	if (access(dir, W_OK | X_OK) < 0) {
		snprintf(err, errlen, "sink.path %s: directory %s is not writable (%s)", path, dir,
		         strerror(errno));
		return -1;
	}
	return 0;
}

static int file_check(const struct cfg_sink *c, char *err, size_t errlen)
{
	char dir[4096];
	struct stat st;
	int fd;

	if (!c->path || !c->path[0]) {
		snprintf(err, errlen, "sink.path: required when sink type is \"file\"");
		return -1;
	}
	dir_of(c->path, dir, sizeof(dir));
	if (check_dir(c->path, dir, err, errlen) < 0)
		return -1;
	if (stat(c->path, &st) < 0) {
		if (errno == ENOENT)
			return 0; /* will be created; the directory is writable */
		snprintf(err, errlen, "sink.path %s: %s", c->path, strerror(errno));
		return -1;
	}
	if (S_ISDIR(st.st_mode)) {
		snprintf(err, errlen, "sink.path %s: is a directory", c->path);
		return -1;
	}
	/* Opening without O_CREAT or O_TRUNC changes nothing but proves we may append. */
	fd = open(c->path, FILE_FLAGS);
	if (fd < 0) {
		snprintf(err, errlen, "sink.path %s: cannot append to the file (%s)", c->path,
		         strerror(errno));
		return -1;
	}
	close(fd);
	return 0;
}

static int file_open(struct sink *s, char *err, size_t errlen)
{
	struct cfg_sink c = {.type = SINK_FILE, .path = s->path};
	struct stat st;
	int fd, e;

	if (!s->path)
		return file_check(&c, err, errlen);
	fd = open(s->path, FILE_FLAGS | O_CREAT, 0640);
	e = errno;

	if (fd < 0) {
		/* The checks say why in words an operator can act on; errno is the fallback. */
		if (file_check(&c, err, errlen) == 0)
			snprintf(err, errlen, "sink.path %s: cannot open (%s)", s->path,
			         strerror(e));
		errno = e;
		return -1;
	}
	if (fstat(fd, &st) == 0) {
		s->dev = st.st_dev;
		s->ino = st.st_ino;
	}
	return fd;
}

static void file_close(struct sink *s, int fd)
{
	close(fd);
}

const struct sink_ops sink_file_ops = {
    .type = SINK_FILE,
    .name = "file",
    .check = file_check,
    .open = file_open,
    .close = file_close,
    .reopen = true,
};
