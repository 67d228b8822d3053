/* SPDX-License-Identifier: GPL-2.0-or-later */
/* Sizes the attach service needs beyond lib/core/macros.h, so that
 * buffers are sized by what they hold rather than by literals. */
#ifndef BC_ATTACH_MACROS_H
#define BC_ATTACH_MACROS_H

#include <sys/un.h>

#include "core/macros.h"  /* ARRAY_SIZE */

/* The longest socket path (a sockaddr_un's, with its NUL). */
#define SUN_PATH_SIZE sizeof(((struct sockaddr_un *)0)->sun_path)

#endif
