/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The control protocol (control.h): the daemon's server and the
 * commands' client, so that its strings are written in one place.
 *
 * Threading model (server): one control thread, started by
 * control_start(), accepts connections one at a time and answers them.
 * It only reads the daemon's state through daemon.h's functions; a
 * detach that may proceed is handed to the main thread (daemon_detach(),
 * through the wake pipe), and only the main thread tears anything down.
 * The thread keeps a spare descriptor (only it touches it) that it closes
 * when accept(2) fails for want of descriptors (NBD clients may take them
 * all), so detach works at the limit too; it leaves its loop only when
 * control_stop() shuts the listening socket down.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "blockcrypt.h"
#include "control.h"
#include "daemon.h"
#include "runtime.h"

#define REQ_STATUS "status"
#define REQ_DETACH "detach"
#define REQ_DETACH_FORCE "detach force"
#define REQ_RESIZE "resize"
#define REPLY_OK "ok"
#define REPLY_BUSY "busy: "
#define REPLY_ERROR "error"

/* How long a plain detach waits for users that are just leaving. */
#define DETACH_GRACE_MS 2000

/* ---------------------------------------------------------------- server */

struct control_server {
	int fd;
	int spare_fd;               /* /dev/null, closed to accept at the fd limit */
	pthread_t thread;
	bool running;
	struct daemon *d;
};

/* The reply to the request LINE, into REPLY. */
static void answer(struct daemon *d, const char *line, char *reply, size_t size)
{
	char why[BC_ERROR_MAX];

	if (!strcmp(line, REQ_STATUS)) {
		json_object *o = daemon_status(d);

		snprintf(reply, size, "%s\n", json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE));
		json_object_put(o);
	} else if (!strcmp(line, REQ_DETACH) || !strcmp(line, REQ_DETACH_FORCE)) {
		bool force = !strcmp(line, REQ_DETACH_FORCE);
		const char *b = force ? NULL : daemon_busy(d, why, sizeof(why), false);

		/* A client that just hung up, or a FUSE file just closed, is let
		 * go by the kernel and our threads a moment later: give them a
		 * grace period before calling the volume busy. */
		for (int i = 0; b && i < DETACH_GRACE_MS / 50; i++) {
			usleep(50 * 1000);
			b = daemon_busy(d, why, sizeof(why), false);
		}
		if (b) {
			snprintf(reply, size, REPLY_BUSY "%s\n", b);
		} else {
			snprintf(reply, size, REPLY_OK "\n");
			daemon_detach(d, force);
		}
	} else if (!strcmp(line, REQ_RESIZE) || !strncmp(line, REQ_RESIZE " ", strlen(REQ_RESIZE " "))) {
		bool have_size = line[strlen(REQ_RESIZE)] != '\0';
		unsigned long long want = have_size ? strtoull(line + strlen(REQ_RESIZE " "), NULL, 10) : 0;
		uint64_t size_now;
		int r = daemon_resize(d, have_size, want, &size_now);

		if (r == 0)
			snprintf(reply, size, REPLY_OK " %llu\n", (unsigned long long)size_now);
		else
			snprintf(reply, size, REPLY_ERROR " %d: %s\n", bc_exit_code(r), bc_last_error());
	} else {
		snprintf(reply, size, REPLY_ERROR ": unknown command\n");
	}
}

static void handle(struct daemon *d, int fd)
{
	char line[CONTROL_LINE_MAX] = "", reply[CONTROL_LINE_MAX];
	size_t got = 0;
	struct timeval tv = { 2, 0 };

	/* Read one whole line (the client may send it in pieces). */
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	while (got < sizeof(line) - 1 && !memchr(line, '\n', got)) {
		ssize_t n = read(fd, line + got, sizeof(line) - 1 - got);

		if (n <= 0)
			return;
		got += (size_t)n;
	}
	line[got] = '\0';
	line[strcspn(line, "\r\n")] = '\0';
	answer(d, line, reply, sizeof(reply));
	(void)!write(fd, reply, strlen(reply));
}

static void *control_main(void *arg)
{
	struct control_server *s = arg;

	for (;;) {
		int fd = accept4(s->fd, NULL, NULL, SOCK_CLOEXEC);

		if (fd < 0) {
			if (errno == EINVAL || errno == EBADF || errno == ENOTSOCK)
				break; /* listening socket shut down: we are exiting */
			if ((errno == EMFILE || errno == ENFILE) && s->spare_fd >= 0) {
				/* Out of descriptors: free ours and try again. */
				close(s->spare_fd);
				s->spare_fd = -1;
			} else if (errno != EINTR && errno != ECONNABORTED) {
				/* Out of memory or descriptors (the NBD accept
				 * thread, backing off, frees some): wait, never
				 * give up: detach must keep working. */
				usleep(100 * 1000);
			}
			continue;
		}
		handle(s->d, fd);
		close(fd);
		if (s->spare_fd < 0)
			s->spare_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
	}
	return NULL;
}

int control_start(struct daemon *d)
{
	char path[SUN_PATH_SIZE];
	struct control_server *s;

	if (rt_path(path, sizeof(path), daemon_name(d), "ctl") < 0)
		return -ENAMETOOLONG;
	s = calloc(1, sizeof(*s));
	if (!s)
		return bc_set_error(-ENOMEM, "control socket: out of memory");
	s->d = d;
	s->spare_fd = -1;
	d->ctl = s;
	s->fd = bc_unix_listen(path, 8, true, "control socket");
	if (s->fd < 0)
		return s->fd;
	s->spare_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
	if (pthread_create(&s->thread, NULL, control_main, s) != 0)
		return bc_set_error(-EAGAIN, "control socket: cannot start thread");
	s->running = true;
	return 0;
}

void control_stop(struct daemon *d)
{
	struct control_server *s = d->ctl;

	if (!s)
		return;
	if (s->running) {
		shutdown(s->fd, SHUT_RDWR);
		pthread_join(s->thread, NULL);
	}
	if (s->fd >= 0)
		close(s->fd);
	if (s->spare_fd >= 0)
		close(s->spare_fd);
	free(s);
	d->ctl = NULL;
}

/* ---------------------------------------------------------------- client */

/* Send REQUEST to NAME's control socket and read the one-line reply
 * into BUF (without its newline); -errno on failure. */
static int exchange(const char *name, const char *request, char *buf, size_t size)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	struct pollfd pfd;
	char line[CONTROL_LINE_MAX];
	size_t got = 0;
	int fd, r;

	if (rt_path(sa.sun_path, sizeof(sa.sun_path), name, "ctl") < 0)
		return -ENAMETOOLONG;
	/* connect() would follow a symlink planted in its place. */
	if (!rt_is_socket(name, "ctl"))
		return -ECONNREFUSED;
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	snprintf(line, sizeof(line), "%s\n", request);
	/* One send: the daemon answers as soon as it has the whole line. */
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 ||
	    send(fd, line, strlen(line), MSG_NOSIGNAL) < 0) {
		r = -errno;
		close(fd);
		return r;
	}
	pfd = (struct pollfd){ .fd = fd, .events = POLLIN };
	while (got + 1 < size) {
		ssize_t n;

		r = poll(&pfd, 1, CONTROL_TIMEOUT_MS);
		if (r <= 0) {
			close(fd);
			return r == 0 ? -ETIMEDOUT : -errno;
		}
		n = read(fd, buf + got, size - 1 - got);
		if (n <= 0)
			break;
		got += (size_t)n;
		if (memchr(buf + got - (size_t)n, '\n', (size_t)n))
			break;
	}
	close(fd);
	buf[got] = '\0';
	if (got && buf[got - 1] == '\n')
		buf[got - 1] = '\0';
	return got ? 0 : -ECONNRESET;
}

int control_status(const char *name, json_object **live)
{
	char reply[CONTROL_LINE_MAX];
	int r = exchange(name, REQ_STATUS, reply, sizeof(reply));

	*live = NULL;
	if (r < 0)
		return r;
	*live = json_tokener_parse(reply);
	return *live ? 0 : -EBADMSG;
}

int control_detach(const char *name, bool force, char *why, size_t size)
{
	char reply[CONTROL_LINE_MAX];
	int r = exchange(name, force ? REQ_DETACH_FORCE : REQ_DETACH, reply, sizeof(reply));

	if (r < 0)
		return r;
	if (!strcmp(reply, REPLY_OK))
		return 0;
	if (!strncmp(reply, REPLY_BUSY, strlen(REPLY_BUSY))) {
		snprintf(why, size, "%s", reply + strlen(REPLY_BUSY));
		return CONTROL_BUSY;
	}
	snprintf(why, size, "%s", reply);
	return CONTROL_UNEXPECTED;
}

int control_resize(const char *name, bool have_size, uint64_t size, uint64_t *new_size,
		   int *exit_code, char *why, size_t why_size)
{
	char request[sizeof(REQ_RESIZE " ") + 20], reply[CONTROL_LINE_MAX];
	int r;

	if (have_size)
		snprintf(request, sizeof(request), REQ_RESIZE " %llu", (unsigned long long)size);
	else
		snprintf(request, sizeof(request), REQ_RESIZE);
	r = exchange(name, request, reply, sizeof(reply));
	if (r < 0)
		return r;
	if (!strncmp(reply, REPLY_OK " ", strlen(REPLY_OK " "))) {
		*new_size = strtoull(reply + strlen(REPLY_OK " "), NULL, 10);
		return 0;
	}
	if (sscanf(reply, REPLY_ERROR " %d:", exit_code) == 1) {
		const char *msg = strchr(reply, ':');

		snprintf(why, why_size, "%s", msg ? msg + 2 : reply);
		return CONTROL_FAILED;
	}
	snprintf(why, why_size, "%s", reply);
	return CONTROL_UNEXPECTED;
}

int control_entry(const char *name, json_object **entry)
{
	json_object *st, *live;
	int r = rt_attached(name, &st);

	*entry = NULL;
	if (r < 0)
		return r;
	/* The live fields (clients, fuse_open) come from the daemon itself;
	 * "responding" says whether it answered, so a stalled daemon shows as
	 * such instead of as an entry that merely lacks fields. */
	if (control_status(name, &live) == 0) {
		json_object_object_foreach(live, key, val)
			json_object_object_add(st, key, json_object_get(val));
		json_object_put(live);
		json_object_object_add(st, "responding", json_object_new_boolean(1));
	} else {
		json_object_object_add(st, "responding", json_object_new_boolean(0));
	}
	*entry = st;
	return 0;
}
