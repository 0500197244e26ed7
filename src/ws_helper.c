/*
 * The process side of connect_command, without ever blocking the loop: the helper is spawned
 * (posix_spawn: no shell, stdin /dev/null, every other descriptor of ours closed, the signal
 * mask and dispositions back to the defaults, a process group of its own), its stdout and
 * stderr pipes and a pidfd are adopted into the loop, and the pidfd says when it has exited;
 * it is reaped then, with waitpid(WNOHANG). A helper the feed gives up on (connect_timeout,
 * a stop) is killed with its whole process group (it may have started curl) and is reaped the
 * same way when it is gone, with nobody waiting for its answer. Nothing it prints is logged.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "wsbeat/helper.h"
#include "wsbeat/log.h"
#include "wsbeat/util.h"
#include "ws_internal.h"

extern char **environ;

/* stderr: read at most this many 4 KiB slices per wake-up, and at most this much in all. */
#define WS_HELPER_ERR_SLICE 4
#define WS_HELPER_ERR_MAX   (64 * 1024)

/* One helper process, from spawn to reaping. */
struct ws_helper {
	struct ws_helper *next;
	struct ws *w;
	struct feed *f; /* NULL once the feed has let go of it */
	pid_t pid;
	int pidfd, out_fd, err_fd; /* ours; -1 once closed */
	struct ws_watch *pid_watch, *out_watch, *err_watch;
	struct mbuf out;
	char err[HELPER_ERR_LINE * 2]; /* the start of stderr, up to its first newline */
	size_t err_len, err_total;
	bool err_done; /* the first line is complete: the rest of stderr is read and dropped */
	bool too_big;
};

static void close_fd(int *fd)
{
	if (*fd >= 0)
		close(*fd);
	*fd = -1;
}

/* Frees h; its watches must be gone already (ended, unwatched, or freed with the context). */
static void helper_free(struct ws_helper *h)
{
	close_fd(&h->pidfd);
	close_fd(&h->out_fd);
	close_fd(&h->err_fd);
	if (h->out.p)
		explicit_bzero(h->out.p, h->out.len);
	mbuf_free(&h->out);
	explicit_bzero(h->err, sizeof(h->err));
	free(h);
}

static void unlink_helper(struct ws_helper *h)
{
	for (struct ws_helper **p = &h->w->helpers; *p; p = &(*p)->next)
		if (*p == h) {
			*p = h->next;
			return;
		}
}

/* The whole process group: the helper and whatever it started that stayed in its group. */
static void kill_group(const struct ws_helper *h)
{
	if (kill(-h->pid, SIGKILL) < 0 && errno != ESRCH)
		log_warn("connect_command (pid %d): kill: %s", (int)h->pid, strerror(errno));
}

/* Reads what stdout has; false at its end (EOF, or too much: the helper is then killed). */
static bool read_out(struct ws_helper *h)
{
	for (;;) {
		ssize_t n;
		if (!mbuf_reserve(&h->out, 16384)) {
			h->too_big = true; /* no memory for it is as bad as too much of it */
			kill_group(h);
			return false;
		}
		n = read(h->out_fd, h->out.p + h->out.len, h->out.cap - h->out.len - 1);
		if (n < 0)
			return errno == EAGAIN || errno == EINTR;
		if (n == 0)
			return false;
		h->out.len += (size_t)n;
		h->out.p[h->out.len] = '\0';
		if (h->out.len > HELPER_OUT_MAX) {
			h->too_big = true;
			kill_group(h);
			return false;
		}
	}
}

/* Keeps the first line of stderr, drops the rest; false at its end. A helper that floods
 * stderr is read a slice at a time, so the loop turns meanwhile, and past WS_HELPER_ERR_MAX it
 * is not read any more (its next write fails: EPIPE, or SIGPIPE kills it). */
static bool read_err(struct ws_helper *h)
{
	char buf[4096];

	for (int slice = 0; slice < WS_HELPER_ERR_SLICE; slice++) {
		ssize_t n = read(h->err_fd, buf, sizeof(buf));
		if (n < 0)
			return errno == EAGAIN || errno == EINTR;
		if (n == 0 || (h->err_total += (size_t)n) > WS_HELPER_ERR_MAX)
			return false;
		for (ssize_t i = 0; i < n && !h->err_done; i++) {
			if (buf[i] == '\n' || h->err_len + 1 >= sizeof(h->err))
				h->err_done = true;
			else
				h->err[h->err_len++] = buf[i];
		}
	}
	return true; /* more next time round */
}

static void on_out(void *arg)
{
	struct ws_helper *h = arg;

	if (!read_out(h)) {
		ws_watch_end(h->out_watch);
		h->out_watch = NULL;
		close_fd(&h->out_fd);
	}
}

static void on_err(void *arg)
{
	struct ws_helper *h = arg;

	if (!read_err(h)) {
		ws_watch_end(h->err_watch);
		h->err_watch = NULL;
		close_fd(&h->err_fd);
	}
}

/* The helper has exited and is reaped: the rest of its output, then its answer to the feed. */
static void finish(struct ws_helper *h, int status)
{
	char line[HELPER_ERR_LINE];
	struct feed *f = h->f;

	/* Whatever it wrote before exiting is in the pipes now. */
	if (h->out_fd >= 0)
		read_out(h);
	if (h->err_fd >= 0)
		read_err(h);
	ws_unwatch(h->out_watch);
	ws_unwatch(h->err_watch);
	h->out_watch = h->err_watch = NULL;
	helper_clean_line(h->err, h->err_len, line, sizeof(line));
	unlink_helper(h);
	h->f = NULL;
	if (f) {
		struct helper_result r = {.status = status,
		                          .out = h->out.p ? h->out.p : "",
		                          .out_len = h->out.len,
		                          .too_big = h->too_big,
		                          .err_line = line};
		feed_on_helper_done(f, &r, mono_us());
	}
	helper_free(h);
}

static void on_exit_ready(void *arg)
{
	struct ws_helper *h = arg;
	int status;
	pid_t r;

	/* The leader is a zombie until reaped, so its group id cannot be reused yet: whatever it
	 * left running in the group goes first. */
	kill_group(h);
	r = waitpid(h->pid, &status, WNOHANG);
	if (r == 0 || (r < 0 && errno == EINTR))
		return; /* not yet: the pidfd stays readable until it is */
	if (r < 0)
		status = W_EXITCODE(127, 0); /* reaped elsewhere: cannot happen, but never hang */
	ws_watch_end(h->pid_watch);
	h->pid_watch = NULL;
	finish(h, status);
}

/* WSBEAT_FEED, WSBEAT_ATTEMPT and WSBEAT_URL on top of our environment (minus any earlier
 * values of those). The strings are allocated at the end of the returned block. */
static char **helper_env(const struct feed *f, const char *url)
{
	size_t n = 0, k = 0, extra = strlen(f->cfg->name) + strlen(url) + 64;
	char **env, *p;

	while (environ[n])
		n++;
	env = malloc((n + 4) * sizeof(*env) + extra);
	if (!env)
		return NULL;
	for (size_t i = 0; i < n; i++)
		if (strncmp(environ[i], "WSBEAT_FEED=", 12) &&
		    strncmp(environ[i], "WSBEAT_URL=", 11) &&
		    strncmp(environ[i], "WSBEAT_ATTEMPT=", 15))
			env[k++] = environ[i];
	p = (char *)(env + n + 4);
	env[k++] = p;
	p += sprintf(p, "WSBEAT_FEED=%s", f->cfg->name) + 1;
	env[k++] = p;
	p += sprintf(p, "WSBEAT_ATTEMPT=%u", f->failures + 1) + 1;
	env[k++] = p;
	sprintf(p, "WSBEAT_URL=%s", url);
	env[k] = NULL;
	return env;
}

/* The feed's own URL as it would dial it now (its query's templates expanded). */
static char *feed_url_text(struct feed *f)
{
	const struct url *u = &f->cfg->url;
	const char *path = u->path;
	size_t n = 0;
	char *s;

	if (f->cfg->url_path && !(path = feed_expand(f, f->cfg->url_path, &n)))
		return NULL;
	if (asprintf(&s, "%s://%s%s", u->tls ? "wss" : "ws", u->host_header, path) < 0)
		return NULL;
	return s;
}

static int spawn(struct ws_helper *h, char *const argv[], char **env, int out_w, int err_w)
{
	posix_spawn_file_actions_t fa;
	posix_spawnattr_t at;
	sigset_t none, all;
	int rc;

	sigemptyset(&none);
	sigfillset(&all);
	sigdelset(&all, SIGKILL);
	sigdelset(&all, SIGSTOP);
	posix_spawn_file_actions_init(&fa);
	posix_spawnattr_init(&at);
	posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
	posix_spawn_file_actions_adddup2(&fa, out_w, 1);
	posix_spawn_file_actions_adddup2(&fa, err_w, 2);
	/* Feeds' sockets and everything else of ours stay out of the helper. */
	posix_spawn_file_actions_addclosefrom_np(&fa, 3);
	/* We block SIGTERM, SIGHUP, ... (they come through a signalfd) and ignore SIGPIPE: the
	 * helper must start with neither. */
	posix_spawnattr_setsigmask(&at, &none);
	posix_spawnattr_setsigdefault(&at, &all);
	posix_spawnattr_setpgroup(&at, 0);
	posix_spawnattr_setflags(&at, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF |
	                                  POSIX_SPAWN_SETPGROUP);
	rc = posix_spawn(&h->pid, argv[0], &fa, &at, argv, env);
	posix_spawn_file_actions_destroy(&fa);
	posix_spawnattr_destroy(&at);
	return rc;
}

/* A pipe whose read end (ours) does not block and whose write end (the helper's) does. */
static int helper_pipe(int fds[2])
{
	if (pipe2(fds, O_CLOEXEC) < 0)
		return -1;
	if (fcntl(fds[0], F_SETFL, O_NONBLOCK) < 0) {
		close(fds[0]);
		close(fds[1]);
		return -1;
	}
	return 0;
}

/* Watches the helper's pipes and exit; -1 (errno set) when the loop cannot take them. */
static int watch(struct ws_helper *h)
{
	h->pidfd = (int)syscall(SYS_pidfd_open, h->pid, 0);
	if (h->pidfd < 0)
		return -1;
	h->out_watch = ws_watch_fd(h->w, h->out_fd, on_out, h);
	h->err_watch = h->out_watch ? ws_watch_fd(h->w, h->err_fd, on_err, h) : NULL;
	h->pid_watch = h->err_watch ? ws_watch_fd(h->w, h->pidfd, on_exit_ready, h) : NULL;
	return h->pid_watch ? 0 : -1;
}

/* A helper that could not be watched: killed and reaped at once (a blocking wait, but after
 * SIGKILL it is a matter of microseconds, and only on this failure). */
static void abandon(struct ws_helper *h)
{
	ws_unwatch(h->out_watch);
	ws_unwatch(h->err_watch);
	ws_unwatch(h->pid_watch);
	kill_group(h);
	while (waitpid(h->pid, NULL, 0) < 0 && errno == EINTR)
		;
	helper_free(h);
}

static int start(struct ws_helper *h, struct feed *f, char **env)
{
	int out[2] = {-1, -1}, err[2] = {-1, -1}, rc, e;
	char *const *argv = f->cfg->connect_command;

	if (helper_pipe(out) < 0 || helper_pipe(err) < 0) {
		e = errno;
		close_fd(&out[0]);
		close_fd(&out[1]);
		feed_set_error(f, "connect_command %s: cannot make a pipe: %s", argv[0],
		               strerror(e));
		return -1;
	}
	h->out_fd = out[0];
	h->err_fd = err[0];
	rc = spawn(h, argv, env, out[1], err[1]);
	close(out[1]);
	close(err[1]);
	if (rc != 0) {
		feed_set_error(f, "connect_command %s cannot run: %s", argv[0], strerror(rc));
		return -1;
	}
	if (watch(h) < 0) {
		e = errno;
		feed_set_error(f, "connect_command %s: cannot watch it: %s", argv[0], strerror(e));
		return -2;
	}
	return 0;
}

int ws_run_helper(struct feed *f)
{
	struct ws *w = f->env->shell_arg;
	struct ws_helper *h = calloc(1, sizeof(*h));
	char *url = h ? feed_url_text(f) : NULL, **env = url ? helper_env(f, url) : NULL;
	int rc;

	if (!env) {
		free(url);
		free(h);
		feed_set_error(f, "connect_command %s: out of memory", f->cfg->connect_command[0]);
		return -1;
	}
	*h = (struct ws_helper){.w = w, .f = f, .pid = -1, .pidfd = -1, .out_fd = -1, .err_fd = -1};
	rc = start(h, f, env);
	free(env);
	free(url);
	if (rc == -2)
		abandon(h);
	else if (rc < 0)
		helper_free(h);
	if (rc < 0)
		return -1;
	h->next = w->helpers;
	w->helpers = h;
	return 0;
}

void ws_cancel_helper(struct feed *f, char *line, size_t size)
{
	struct ws *w = f->env->shell_arg;

	if (size)
		line[0] = '\0';
	for (struct ws_helper *h = w->helpers; h; h = h->next)
		if (h->f == f) {
			h->f = NULL; /* reaped later, answering nobody */
			kill_group(h);
			if (size && h->err_fd >= 0)
				read_err(h); /* what it said before hanging */
			helper_clean_line(h->err, h->err_len, line, size);
			return;
		}
}

void ws_helpers_free(struct ws *w)
{
	while (w->helpers) {
		struct ws_helper *h = w->helpers;
		w->helpers = h->next;
		/* The context is gone and took the watches with it. */
		h->out_watch = h->err_watch = h->pid_watch = NULL;
		kill_group(h);
		while (waitpid(h->pid, NULL, 0) < 0 && errno == EINTR)
			;
		helper_free(h);
	}
}
