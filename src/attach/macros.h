/* SPDX-License-Identifier: GPL-2.0-or-later */
/* Helpers of the programs (src/), which use the library through
 * blockcrypt.h alone: sizes, so that buffers are sized by what they hold
 * rather than by literals, and errno conventions. */
#ifndef BC_ATTACH_MACROS_H
#define BC_ATTACH_MACROS_H

#include <errno.h>
#include <sys/un.h>

/* Elements of array A (a compile error for a pointer). */
#define ARRAY_SIZE(a) \
	(sizeof(a) / sizeof((a)[0]) + \
	 0 * sizeof(char[1 - 2 * __builtin_types_compatible_p(__typeof__(a), __typeof__(&(a)[0]))]))

/* The longest socket path (a sockaddr_un's, with its NUL). */
#define SUN_PATH_SIZE sizeof(((struct sockaddr_un *)0)->sun_path)

/* A negative errno for the kernel's E as blockcrypt.h's errno values mean
 * it: EPERM ("operation not permitted", e.g. an immutable file) becomes
 * -EACCES, since -EPERM means a wrong key (exit code 3). */
static inline int errno_access(int e)
{
	return e == EPERM ? -EACCES : -e;
}

#endif
