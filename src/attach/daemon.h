/* The attach daemon: one unlocked volume served by one or more frontends
 * (NBD, FUSE) until detach or SIGTERM. */
#ifndef BC_DAEMON_H
#define BC_DAEMON_H

#include <pthread.h>
#include <stdbool.h>
#include <time.h>

#include "blockcrypt.h"

struct daemon;

/* A way of exposing the volume.  Only frontends that were asked for are
 * started; each keeps its own state in struct daemon. */
struct frontend_ops {
	const char *name;
	bool (*wanted)(const struct daemon *d);
	int (*start)(struct daemon *d);
	/* Connected clients (NBD) or open handles (FUSE). */
	unsigned (*users)(struct daemon *d);
	/* Human-readable reason why stopping would disrupt a user, or NULL. */
	const char *(*busy)(struct daemon *d, char *buf, size_t size);
	void (*stop)(struct daemon *d);
	/* The volume size changed (optional). */
	void (*resized)(struct daemon *d);
};

extern const struct frontend_ops frontend_nbd;
extern const struct frontend_ops frontend_fuse;

struct daemon {
	char name[65];
	char backing[4096];         /* canonical path */
	struct bc_volume *volume;
	struct bc_volume_info info;
	bool read_only, allow_discards;
	unsigned threads;
	unsigned max_connections, handshake_timeout; /* 0 = the library's default */
	uint64_t max_memory;

	/* NBD */
	char socket_path[108];      /* Unix socket, "" when --listen */
	char listen_host[256], listen_port[16];
	char uri[512];
	char tls_certificates[4096], tls_psk[4096]; /* absolute, "" = no TLS */
	bool tls_verify_peer;
	bool loopback_only;         /* plaintext TCP: bind loopback addresses only */
	struct bc_nbd_server *nbd;

	/* FUSE */
	char fuse_dir[4096];        /* "" when not requested */
	char fuse_file[4200];
	struct fuse_state *fuse;
	bool fuse_abandoned;
	time_t started;             /* shown as the FUSE file's times */
	const char *after_attach;   /* shell command run once serving */        /* forced off while open: exit, don't free */

	/* Held for as long as the volume is served: the backing's lock (data,
	 * exclusive or shared for read-only) and the name's claim on the
	 * runtime directory (runtime.h).  Both belong to open files that the
	 * forked daemon inherits; the attaching parent drops its copies. */
	struct bc_backing_lock *backing_lock;
	int name_fd;
	int fuse_dir_fd;            /* flock()ed: one volume per --fuse DIR */

	/* control */
	int ctl_fd;
	int spare_fd;               /* /dev/null, closed to accept at the fd limit */
	int wake_pipe[2];           /* control thread -> main loop */
	pthread_t ctl_thread;
	bool ctl_running;
	bool force;                 /* set by "detach force" */
};

/* Run the daemon (in the already-forked child, or in the foreground).
 * READY_FD, if >= 0, receives "OK" or "ERR <exit> <message>" once the
 * volume is being served.  Returns the process exit code. */
int daemon_run(struct daemon *d, int ready_fd);
/* Run D's after-attach command , waiting for it or not. */
int attach_hook_run(const struct daemon *d, bool wait_for_it);

#endif
