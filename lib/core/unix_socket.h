/* SPDX-License-Identifier: GPL-2.0-or-later */
/* Listening Unix sockets that appear in the file system only once they
 * accept connections. */
#ifndef BC_CORE_UNIX_SOCKET_H
#define BC_CORE_UNIX_SOCKET_H

#include <stdbool.h>

/* Create a listening stream socket at PATH, mode 0600, close-on-exec.
 * The socket is bound and listening under a temporary name in the same
 * directory and then renamed to PATH, so a client that sees PATH can
 * connect at once (a bind-then-listen socket refuses connections in
 * between).  If REPLACE is false an existing PATH is an error (-EBUSY);
 * otherwise it is replaced.  Returns the descriptor or a negative errno
 * (with bc_last_error() set, "WHAT PATH: reason"). */
int bci_unix_listen(const char *path, int backlog, bool replace, const char *what);

#endif
