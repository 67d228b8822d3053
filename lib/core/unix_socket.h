/* SPDX-License-Identifier: GPL-2.0-or-later */
/* Listening Unix sockets that appear in the file system only once they
 * accept connections. */
#ifndef BC_CORE_UNIX_SOCKET_H
#define BC_CORE_UNIX_SOCKET_H

#include <stdbool.h>

/* bc_unix_listen() is public API (blockcrypt.h). */
#include "blockcrypt.h"

#endif
