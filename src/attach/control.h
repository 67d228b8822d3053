/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The control protocol: how list, status, detach and resize talk to an
 * attach daemon, over its control socket RUNDIR/NAME.ctl (runtime.h).
 * One connection carries one request line and one reply line:
 *
 *   status           -> {"clients":N,"fuse_open":N}  (JSON, one line)
 *   detach           -> ok | busy: WHY
 *   detach force     -> ok
 *   resize [BYTES]   -> ok SIZE | error EXIT: MESSAGE
 *   anything else    -> error: unknown command
 *
 * Both sides are here: the client functions for the commands, the
 * server (a thread of the daemon) for daemon.c.  Nothing else knows the
 * strings.
 */
#ifndef BC_ATTACH_CONTROL_H
#define BC_ATTACH_CONTROL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <json-c/json.h>

#include "blockcrypt.h"

/* A request or reply line, newline and NUL included: a reply carries at
 * most one error message (BC_ERROR_MAX) behind a short prefix. */
#define CONTROL_LINE_MAX (BC_ERROR_MAX + 32)

/* How long a command waits for the daemon's answer: generous, since a
 * daemon under heavy I/O (or a sanitizer build) can be slow to answer. */
#define CONTROL_TIMEOUT_MS 10000

/* Replies of the client functions beyond 0 (done) and -errno (no
 * answer: the daemon is gone, stuck or not ours; not reported). */
enum {
	CONTROL_BUSY = 1,        /* detach refused: the reason is in WHY */
	CONTROL_FAILED,          /* the daemon tried and failed: *EXIT_CODE, message in WHY */
	CONTROL_UNEXPECTED,      /* not a reply of the protocol: it is in WHY */
};

/* The daemon's live status (clients, fuse_open) as a JSON object. */
int control_status(const char *name, json_object **live);
/* Ask NAME's daemon to detach (FORCE: even if it is in use).  0: it is
 * detaching; CONTROL_BUSY or CONTROL_UNEXPECTED with WHY filled. */
int control_detach(const char *name, bool force, char *why, size_t size);
/* Ask NAME's daemon to follow its backing's size, or to take SIZE bytes
 * when HAVE_SIZE.  0 with *NEW_SIZE; CONTROL_FAILED with *EXIT_CODE and
 * WHY; CONTROL_UNEXPECTED with WHY. */
int control_resize(const char *name, bool have_size, uint64_t size, uint64_t *new_size,
		   int *exit_code, char *why, size_t why_size);

/* State of an attached NAME merged with the daemon's live status
 * (clients, fuse_open, and "responding": whether the daemon answered
 * within CONTROL_TIMEOUT_MS); as rt_attached() otherwise. */
int control_entry(const char *name, json_object **entry);

/* The server, in the daemon (daemon.h says what it asks of it). */
struct daemon;
int control_start(struct daemon *d);
void control_stop(struct daemon *d);

#endif
