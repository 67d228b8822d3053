/* SPDX-License-Identifier: GPL-2.0-or-later */
/* Listening Unix sockets, published atomically by rename(2). */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "core/error.h"
#include "core/unix_socket.h"

int bc_unix_listen(const char *path, int backlog, bool replace, const char *what)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	struct stat st;
	mode_t old;
	int fd, n, r;

	if (strlen(path) >= sizeof(sa.sun_path))
		return bci_error(-ENAMETOOLONG, "%s: socket path too long: %s", what, path);
	if (!replace && lstat(path, &st) == 0)
		return bci_error(-EBUSY, "%s %s: %s", what, path, strerror(EADDRINUSE));
	/* The temporary name: PATH.PID, or PATH itself when that does not fit
	 * (then the short bind-to-listen window remains). */
	n = snprintf(sa.sun_path, sizeof(sa.sun_path), "%s.%ld", path, (long)getpid());
	if (n < 0 || (size_t)n >= sizeof(sa.sun_path))
		strcpy(sa.sun_path, path);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return bci_error(-errno, "%s: socket: %s", what, strerror(errno));
	unlink(sa.sun_path); /* a temporary left by an earlier process with our pid */
	old = umask(0177);
	r = bind(fd, (struct sockaddr *)&sa, sizeof(sa));
	umask(old);
	if (r < 0 || listen(fd, backlog) < 0) {
		r = bci_error(errno == EADDRINUSE ? -EBUSY : -errno, "%s %s: %s", what, path, strerror(errno));
		goto out_close;
	}
	if (strcmp(sa.sun_path, path) && rename(sa.sun_path, path) < 0) {
		r = bci_error(-errno, "%s %s: %s", what, path, strerror(errno));
		unlink(sa.sun_path);
		goto out_close;
	}
	return fd;
out_close:
	close(fd);
	return r;
}
