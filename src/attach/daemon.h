/* SPDX-License-Identifier: GPL-2.0-or-later */
/* The attach daemon: one unlocked volume served by one or more frontends
 * (NBD, FUSE) until detach or SIGTERM. */
#ifndef BC_DAEMON_H
#define BC_DAEMON_H

#include <limits.h>
#include <netdb.h>
#include <pthread.h>
#include <stdbool.h>
#include <time.h>

#include <json-c/json.h>

#include "blockcrypt.h"
#include "config.h"
#include "macros.h"
#include "runtime.h"

struct daemon;

/* A way of exposing the volume.  Only frontends that were asked for are
 * started; what a running frontend needs (its server, its threads) is
 * its own STATE, which the daemon only hands back to it. */
struct frontend_ops {
	const char *name;
	bool (*wanted)(const struct daemon *d);
	/* Start serving D; *STATE is set even on failure (stop frees it). */
	int (*start)(struct daemon *d, void **state);
	/* Connected clients (NBD) or open handles (FUSE). */
	unsigned (*users)(void *state);
	/* Human-readable reason why stopping would disrupt a user, or NULL. */
	const char *(*busy)(void *state, char *buf, size_t size);
	/* Stop and free STATE.  False when its threads could not be stopped
	 * (a forced detach of a FUSE file in use): the process must exit
	 * without freeing the volume. */
	bool (*stop)(void *state);
	/* The volume size changed (optional). */
	void (*resized)(void *state);
};

extern const struct frontend_ops frontend_nbd;
extern const struct frontend_ops frontend_fuse;

/* Where an attachment is served, for the state file, list and hooks:
 * nbd+unix:///NAME?socket=PATH or nbds://[HOST]:PORT/NAME (RFC 3986: PATH
 * percent-encoded, so up to three bytes for each of its own). */
#define DAEMON_URI_MAX (sizeof("nbds+unix:///?socket=") + RT_NAME_MAX + 3 * SUN_PATH_SIZE + \
			sizeof("nbds://[]:/") + NI_MAXHOST + NI_MAXSERV)

struct daemon {
	struct attach_config cfg;   /* as asked, but the TLS path is tls_path */
	char *tls_path;             /* --tls-certificates or --tls-psk, absolute */
	char name[RT_NAME_MAX + 1];
	char backing[PATH_MAX];     /* canonical path */
	char header[PATH_MAX];      /* detached LUKS header, canonical; "" if none */
	struct bc_volume *volume;
	struct bc_volume_info info;
	time_t started;             /* shown as the FUSE file's times */

	/* Where it is served (resolved by the attach command before the
	 * daemon starts, so that errors reach the user). */
	char socket_path[SUN_PATH_SIZE]; /* NBD Unix socket, "" with --listen */
	char listen_host[NI_MAXHOST], listen_port[NI_MAXSERV];
	bool loopback_only;         /* plaintext TCP: bind loopback addresses only */
	char uri[DAEMON_URI_MAX];
	char fuse_dir[PATH_MAX];    /* absolute; "" when not asked for */
	char fuse_file[PATH_MAX + 1 + RT_NAME_MAX];

	/* Held for as long as the volume is served: the backing's lock (data,
	 * exclusive or shared for read-only) and the name's claim on the
	 * runtime directory (runtime.h).  Both belong to open files that the
	 * forked daemon inherits; the attaching parent drops its copies. */
	struct bc_backing_lock *backing_lock;
	struct bc_backing_lock *header_lock; /* a detached header's, locked alike */
	int name_fd;
	int fuse_dir_fd;            /* flock()ed: one volume per --fuse DIR */

	/* The daemon's own (daemon.c, control.c). */
	void *frontend_state[2];    /* by index in daemon.c's frontends[] */
	bool abandoned;             /* a frontend could not stop: exit, don't free */
	struct control_server *ctl;
	int wake_pipe[2];           /* control thread -> main loop */
	bool force;                 /* set by "detach force" */
};

/* Run the daemon (in the already-forked child, or in the foreground).
 * READY_FD, if >= 0, receives daemon_ready_line() once the volume is
 * being served (or has failed to be).  Returns the process exit code. */
int daemon_run(struct daemon *d, int ready_fd);
/* Run D's after-attach command, waiting for it or not. */
int attach_hook_run(const struct daemon *d, bool wait_for_it);

/* The ready line: "OK", or "ERR <exit> <message>" with one error message
 * (core/error.h); the attaching parent reads it into a buffer this big. */
#define DAEMON_READY_MAX (sizeof("ERR -2147483648 \n") + BC_ERROR_MAX)

/* For the control server (control.c), from its thread. */
const char *daemon_name(const struct daemon *d);
json_object *daemon_status(struct daemon *d);
/* Why a detach must not proceed now, or NULL (SIGNAL: asked by a signal). */
const char *daemon_busy(struct daemon *d, char *buf, size_t size, bool signal);
int daemon_resize(struct daemon *d, bool have_size, uint64_t size, uint64_t *size_now);
/* Hand a detach to the main thread. */
void daemon_detach(struct daemon *d, bool force);

#endif
