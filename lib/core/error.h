/* SPDX-License-Identifier: GPL-2.0-or-later */
/* Per-thread error messages: every failing function records one
 * "context: message" line and returns a negative errno. */
#ifndef BC_CORE_ERROR_H
#define BC_CORE_ERROR_H

#include <errno.h>

#include "blockcrypt.h"

/* Record a message for this thread and return R (a negative errno). */
int bci_error(int r, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void bci_error_clear(void);
/* A negative errno for the kernel's E: EPERM ("operation not permitted",
 * e.g. an immutable file) becomes -EACCES, since this library reserves
 * -EPERM for "wrong key" (exit code 3); everything else as it is. */
static inline int bci_errno_access(int e)
{
	return e == EPERM ? -EACCES : -e;
}

/* Pass one line to the log handler (bc_set_log_handler), if any. */
void bci_log(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

#endif
