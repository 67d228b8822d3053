/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The attach daemon's main loop.
 *
 * Threading model: the main thread blocks SIGTERM/SIGINT/SIGHUP before any
 * other thread exists (so every thread inherits the mask) and then waits in
 * poll() on a signalfd and on a wake pipe.  Frontends run their own threads
 * (NBD accept and per-connection threads, the libfuse loop).  The
 * control thread (control.c) answers requests on the control socket,
 * calling the daemon_* functions below for what it reports; a detach
 * request that may proceed is handed to the main thread through the wake
 * pipe (daemon_detach), and only the main thread tears anything down.
 */
#include <errno.h>
#include <stddef.h>
#include <fcntl.h>
#include <malloc.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <json-c/json.h>

#include "blockcrypt.h"
#include "control.h"
#include "daemon.h"
#include "runtime.h"
#include "macros.h"

static int write_state(struct daemon *d);

/* The index of each in d->frontend_state[]. */
enum { FRONTEND_NBD, FRONTEND_FUSE };
static const struct frontend_ops *const frontends[] = {
	[FRONTEND_NBD] = &frontend_nbd, [FRONTEND_FUSE] = &frontend_fuse,
};
#define N_FRONTENDS ARRAY_SIZE(frontends)
_Static_assert(ARRAY_SIZE(frontends) == ARRAY_SIZE(((struct daemon *)0)->frontend_state),
	       "one state per frontend");

static void log_msg(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void log_msg(const char *fmt, ...)
{
	va_list ap;
	char ts[32];
	time_t now = time(NULL);

	strftime(ts, sizeof(ts), "%Y-%m-%dT%H:%M:%S", localtime(&now));
	fprintf(stderr, "%s blockcrypt[%d]: ", ts, (int)getpid());
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	fflush(stderr);
}

/* The library's log lines (a failed write-back, ...) go to our log. */
static void log_library_line(const char *line)
{
	log_msg("%s", line);
}

/* For a signal (SIGTERM: systemd stopping us, e.g. at shutdown)
 * connected NBD clients do not count: refusing would only end in SIGKILL
 * without a final flush, while a busy FUSE file keeps a mounted file
 * system alive. */
const char *daemon_busy(struct daemon *d, char *buf, size_t size, bool signal)
{
	for (size_t i = 0; i < N_FRONTENDS; i++) {
		const char *why;

		if (!frontends[i]->wanted(d) || (signal && i == FRONTEND_NBD))
			continue;
		why = frontends[i]->busy(d->frontend_state[i], buf, size);
		if (why)
			return why;
	}
	return NULL;
}

/* Connected clients or open handles of frontend I (0 when not running). */
static int users(struct daemon *d, size_t i)
{
	return d->frontend_state[i] ? (int)frontends[i]->users(d->frontend_state[i]) : 0;
}

json_object *daemon_status(struct daemon *d)
{
	json_object *o = json_object_new_object();

	json_object_object_add(o, "clients", json_object_new_int(users(d, FRONTEND_NBD)));
	json_object_object_add(o, "fuse_open", json_object_new_int(users(d, FRONTEND_FUSE)));
	return o;
}

const char *daemon_name(const struct daemon *d)
{
	return d->name;
}

void daemon_detach(struct daemon *d, bool force)
{
	d->force = force;
	(void)!write(d->wake_pipe[1], "d", 1);
}

int daemon_resize(struct daemon *d, bool have_size, uint64_t size, uint64_t *size_now)
{
	int r = bc_volume_resize(d->volume, size, have_size);

	if (r < 0)
		return r;
	d->info.size = bc_volume_size(d->volume);
	for (size_t i = 0; i < N_FRONTENDS; i++)
		if (d->frontend_state[i] && frontends[i]->resized)
			frontends[i]->resized(d->frontend_state[i]);
	write_state(d);
	log_msg("%s: resized to %llu bytes", d->name, (unsigned long long)d->info.size);
	*size_now = d->info.size;
	return 0;
}

static int write_state(struct daemon *d)
{
	json_object *o = json_object_new_object();
	int r;

	json_object_object_add(o, "name", json_object_new_string(d->name));
	json_object_object_add(o, "backing", json_object_new_string(d->backing));
	json_object_object_add(o, "header", d->header[0] ? json_object_new_string(d->header) : NULL);
	json_object_object_add(o, "type", json_object_new_string(bc_volume_type_name(d->info.type)));
	json_object_object_add(o, "cipher", json_object_new_string(d->info.cipher));
	json_object_object_add(o, "key_bits", json_object_new_int((int)d->info.key_bits));
	json_object_object_add(o, "size", json_object_new_int64((int64_t)d->info.size));
	json_object_object_add(o, "sector_size", json_object_new_int((int)d->info.sector_size));
	json_object_object_add(o, "uri", json_object_new_string(d->uri));
	json_object_object_add(o, "socket", d->socket_path[0] ? json_object_new_string(d->socket_path) : NULL);
	if (!d->socket_path[0]) {
		char listen[sizeof("[]:") + NI_MAXHOST + NI_MAXSERV];

		snprintf(listen, sizeof(listen), strchr(d->listen_host, ':') ? "[%s]:%s" : "%s:%s",
			 d->listen_host, d->listen_port);
		json_object_object_add(o, "listen", json_object_new_string(listen));
	} else {
		json_object_object_add(o, "listen", NULL);
	}
	json_object_object_add(o, "fuse_file", d->fuse_dir[0] ? json_object_new_string(d->fuse_file) : NULL);
	json_object_object_add(o, "pid", json_object_new_int((int)getpid()));
	json_object_object_add(o, "read_only", json_object_new_boolean(d->cfg.read_only));
	json_object_object_add(o, "discards", json_object_new_boolean(d->cfg.allow_discards));
	r = rt_write_state(d->name, o);
	json_object_put(o);
	return r;
}

/* systemd Type=notify readiness, without linking libsystemd. */
static void sd_notify_ready(void)
{
	const char *path = getenv("NOTIFY_SOCKET");
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	int fd;

	if (!path || (path[0] != '/' && path[0] != '@') || strlen(path) >= sizeof(sa.sun_path))
		return;
	memcpy(sa.sun_path, path, strlen(path));
	if (sa.sun_path[0] == '@')
		sa.sun_path[0] = '\0';
	fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return;
	(void)!sendto(fd, "READY=1", 7, MSG_NOSIGNAL, (struct sockaddr *)&sa,
		      (socklen_t)(offsetof(struct sockaddr_un, sun_path) + strlen(path)));
	close(fd);
}

static void report_ready(int ready_fd, int r)
{
	char msg[DAEMON_READY_MAX];

	if (ready_fd < 0)
		return;
	if (r == 0)
		snprintf(msg, sizeof(msg), "OK\n");
	else
		snprintf(msg, sizeof(msg), "ERR %d %s\n", bc_exit_code(r), bc_last_error());
	(void)!write(ready_fd, msg, strlen(msg));
	close(ready_fd);
}

static void teardown(struct daemon *d)
{
	/* NBD first: clients get their in-flight replies, then a clean close. */
	for (size_t i = 0; i < N_FRONTENDS; i++) {
		if (d->frontend_state[i] && !frontends[i]->stop(d->frontend_state[i]))
			d->abandoned = true;
		d->frontend_state[i] = NULL;
	}
	control_stop(d);
	if (bc_volume_flush(d->volume) < 0)
		log_msg("final flush failed: %s", bc_last_error());
	rt_remove(d->name);
	rt_release_name(d->name, d->name_fd);
	d->name_fd = -1;
}

int daemon_run(struct daemon *d, int ready_fd)
{
	struct pollfd pfd[2];
	sigset_t mask;
	int sfd, r = 0;
	char why[BC_ERROR_MAX];

	d->started = time(NULL);
	/* All our memory is locked (below): what malloc keeps stays resident.
	 * Every thread serving a client would get a malloc arena of its own,
	 * each keeping its peak: a few arenas are plenty for our few small
	 * allocations.  Locked pages cannot be given back from inside an
	 * arena (madvise fails on them), only unmapped: a fixed mmap
	 * threshold keeps every allocation of 64 KiB and up (per-connection
	 * buffers; the NBD request buffers are mapped directly) out of the
	 * arenas, so it is unmapped when freed (glibc's sliding threshold
	 * would move them into the arenas after the first free).  The NBD
	 * server calls malloc_trim() when its last client leaves. */
	mallopt(M_ARENA_MAX, 2);
	mallopt(M_MMAP_THRESHOLD, 64 << 10);
	/* On RBD, librbd copies every write into a buffer of its own, freed
	 * on completion: mapped afresh each time, that is a page fault,
	 * zeroing and locking per 4 KiB written -- most of the CPU a write
	 * costs.  Kept in the arenas instead, those buffers are reused; the
	 * price is that the arenas keep their peak (about the threads times
	 * the largest request in flight) locked until detach. */
	if (bc_backing_is_rbd(d->backing))
		mallopt(M_MMAP_THRESHOLD, 32 << 20);
	bc_set_log_handler(log_library_line);
	sigemptyset(&mask);
	sigaddset(&mask, SIGTERM);
	sigaddset(&mask, SIGINT);
	sigaddset(&mask, SIGHUP);
	pthread_sigmask(SIG_BLOCK, &mask, NULL);
	sfd = signalfd(-1, &mask, SFD_CLOEXEC);
	if (sfd < 0 || pipe2(d->wake_pipe, O_CLOEXEC) < 0) {
		r = bc_set_error(-errno, "daemon: %s", strerror(errno));
		report_ready(ready_fd, r);
		return bc_exit_code(r);
	}
	/* Keep every page we touch (key schedules included) out of swap. */
	r = bc_memory_lock_all();
	if (r < 0) {
		log_msg("warning: mlockall: %s", strerror(-r));
		r = 0;
	}

	for (size_t i = 0; i < N_FRONTENDS && r == 0; i++)
		if (frontends[i]->wanted(d))
			r = frontends[i]->start(d, &d->frontend_state[i]);
	if (r == 0)
		r = control_start(d);
	if (r == 0)
		r = write_state(d);
	if (r < 0) {
		report_ready(ready_fd, r);
		teardown(d);
		return bc_exit_code(r);
	}
	log_msg("%s: serving %s%s%s", d->name, d->uri, d->fuse_dir[0] ? " and " : "", d->fuse_file);
	if (ready_fd < 0) {
		/* Foreground (systemd): nobody else will run the hook; run it
		 * before READY=1 so units ordered after us find e.g. the pool
		 * imported.  The frontends' threads serve it meanwhile. */
		if (attach_hook_run(d, true) < 0)
			log_msg("%s", bc_last_error());
		sd_notify_ready();
	}
	report_ready(ready_fd, 0);

	pfd[0] = (struct pollfd){ .fd = sfd, .events = POLLIN };
	pfd[1] = (struct pollfd){ .fd = d->wake_pipe[0], .events = POLLIN };
	for (;;) {
		if (poll(pfd, 2, -1) < 0) {
			if (errno == EINTR)
				continue;
			break;
		}
		if (pfd[1].revents)
			break; /* detach accepted by the control thread */
		if (pfd[0].revents) {
			struct signalfd_siginfo si;
			const char *b;

			if (read(sfd, &si, sizeof(si)) != sizeof(si))
				continue;
			/* SIGTERM behaves as detach: a busy FUSE file is kept. */
			b = daemon_busy(d, why, sizeof(why), true);
			if (!b)
				break;
			log_msg("signal %u: not detaching: %s (use 'blockcrypt detach --force %s')",
				si.ssi_signo, b, d->name);
		}
	}
	log_msg("%s: detaching%s", d->name, d->force ? " (forced)" : "");
	teardown(d);
	close(sfd);
	if (d->abandoned) {
		/* Forced while the FUSE file was open: its kernel connection
		 * lives on until this process exits, and FUSE threads may still
		 * be inside the volume, so it cannot be freed.  Revoking it
		 * fails their next request and wipes the keys once the
		 * requests in flight are done; then exit. */
		if (bc_volume_revoke(d->volume, 5) < 0)
			log_msg("%s", bc_last_error());
		log_msg("%s: FUSE file was still in use; exiting", d->name);
		_exit(0);
	}
	return 0;
}

/* The after-attach command (tab file), e.g. zpool import -d DIR POOL. */
int attach_hook_run(const struct daemon *d, bool wait_for_it)
{
	pid_t pid;
	int status = 0;

	if (!d->cfg.after_attach)
		return 0;
	fflush(NULL);
	pid = fork();
	if (pid < 0)
		return bc_set_error(-errno, "%s: after-attach: fork: %s", d->name, strerror(errno));
	if (pid == 0) {
		setenv("BLOCKCRYPT_NAME", d->name, 1);
		setenv("BLOCKCRYPT_URI", d->uri, 1);
		setenv("BLOCKCRYPT_BACKING", d->backing, 1);
		if (d->header[0])
			setenv("BLOCKCRYPT_HEADER", d->header, 1);
		if (d->socket_path[0])
			setenv("BLOCKCRYPT_SOCKET", d->socket_path, 1);
		if (d->fuse_dir[0]) {
			setenv("BLOCKCRYPT_FUSE_DIR", d->fuse_dir, 1);
			setenv("BLOCKCRYPT_FUSE_FILE", d->fuse_file, 1);
		}
		execl("/bin/sh", "sh", "-c", d->cfg.after_attach, (char *)NULL);
		_exit(127);
	}
	if (!wait_for_it)
		return 0;
	if (waitpid(pid, &status, 0) < 0 || !WIFEXITED(status) || WEXITSTATUS(status))
		return bc_set_error(-EIO, "%s: attached, but the after-attach command failed (status %d): %s",
				d->name, WIFEXITED(status) ? WEXITSTATUS(status) : -1, d->cfg.after_attach);
	return 0;
}
