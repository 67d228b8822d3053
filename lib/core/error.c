/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Per-thread error messages.
 *
 * Threading: the message buffer is thread-local, so concurrent callers never
 * see each other's messages and no locking is needed.  The log handler is
 * set once, before threads start, and read atomically.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "core/error.h"
#include "core/macros.h"

static _Thread_local char last_error[BC_ERROR_MAX];

int bc_set_error(int r, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(last_error, sizeof(last_error), fmt, ap);
	va_end(ap);
	/* One line only: callers print it as "blockcrypt: <message>". */
	for (char *p = last_error; *p; p++)
		if (*p == '\n')
			*p = ' ';
	return r;
}

/* The library's own name for it: not exported, so the library's calls
 * bind here, never to a program's symbol of the public name. */
int bci_error(int r, const char *fmt, ...) __attribute__((alias("bc_set_error")));

static void (*log_handler)(const char *line);

void bc_set_log_handler(void (*handler)(const char *line))
{
	__atomic_store_n(&log_handler, handler, __ATOMIC_RELEASE);
}

void bci_log(const char *fmt, ...)
{
	void (*h)(const char *) = __atomic_load_n(&log_handler, __ATOMIC_ACQUIRE);
	char line[BC_ERROR_MAX];
	va_list ap;

	if (!h)
		return;
	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	for (char *p = line; *p; p++)
		if (*p == '\n')
			*p = ' ';
	h(line);
}

void bci_error_clear(void)
{
	last_error[0] = '\0';
}

void bc_clear_error(void)
{
	bci_error_clear();
}

const char *bc_last_error(void)
{
	return last_error;
}

int bc_exit_code(int r)
{
	if (r >= 0)
		return BC_EXIT_OK;
	switch (-r) {
	case EPERM: case EKEYREJECTED:
		return BC_EXIT_WRONG_KEY;
	case EBADMSG: case ENOMEDIUM:
		return BC_EXIT_NOT_VOLUME;
	case ENOSPC: case EFBIG:
		return BC_EXIT_TOO_SMALL;
	case EACCES: case EROFS:
		return BC_EXIT_ACCESS;
	case EIO:
		return BC_EXIT_IO;
	case ENOENT: case ENXIO:
		return BC_EXIT_NOT_FOUND;
	case EBUSY:
		return BC_EXIT_BUSY;
	case ECANCELED:
		return BC_EXIT_CANCELED;
	case ENOTSUP:
		return BC_EXIT_UNSUPPORTED;
	case EINVAL:
		return BC_EXIT_USAGE;
	case ENODEV: case ENOKEY:
		return BC_EXIT_TOKEN;
	default:
		return BC_EXIT_FAILURE;
	}
}

int bc_errno_for_exit(int code)
{
	static const int map[] = {
		[BC_EXIT_USAGE] = EINVAL, [BC_EXIT_WRONG_KEY] = EPERM, [BC_EXIT_NOT_VOLUME] = EBADMSG,
		[BC_EXIT_TOO_SMALL] = ENOSPC, [BC_EXIT_ACCESS] = EACCES, [BC_EXIT_IO] = EIO,
		[BC_EXIT_NOT_FOUND] = ENOENT, [BC_EXIT_BUSY] = EBUSY, [BC_EXIT_CANCELED] = ECANCELED,
		[BC_EXIT_UNSUPPORTED] = ENOTSUP, [BC_EXIT_TOKEN] = ENODEV,
	};

	if (code > 0 && code < (int)ARRAY_SIZE(map) && map[code])
		return -map[code];
	return -EPROTO; /* exit code 1 */
}
