/* SPDX-License-Identifier: GPL-2.0-or-later */
/* NBD server internals shared by nbd_server.c, nbd_handshake.c and
 * nbd_conn.c. */
#ifndef BC_NBD_INTERNAL_H
#define BC_NBD_INTERNAL_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>

#include "blockcrypt.h"
#include "nbd/nbd_proto.h"

#define NBD_MAX_LISTEN 8
#define NBD_DEFAULT_CONN_THREADS 4     /* threads serving one connection */
#define NBD_MAX_CONN_THREADS 64
#define NBD_BUF_CLASSES 14              /* 4 KiB .. 32 MiB */
/* Stack of each connection's threads: address space only, but glibc keeps
 * the stacks of exited threads for reuse, up to 40 MiB of them, and what
 * their threads touched stays resident (the daemon locks its memory):
 * 1 MiB stacks keep 40 of them after a load, 256 KiB ones 160. */
#define NBD_THREAD_STACK (1 << 20)
#define NBD_BUF_CACHE_SHARE 4           /* up to 1/4 of the budget kept for reuse */
/* Under memory pressure, a client that has taken none of a reply (or sent
 * none of a WRITE payload) for this long is cut off: its buffer is worth
 * more to the requests waiting for memory. */
#define NBD_STALL_CUTOFF_SECONDS 5

/* Kinds of log lines, each rate-limited on its own (bci_nbd_log_limited). */
enum nbd_log_kind {
	NBD_LOG_CAP,               /* connection refused: --max-connections */
	NBD_LOG_ACCEPT,            /* accept(2) failed: out of descriptors */
	NBD_LOG_HANDSHAKE,         /* handshake timed out */
	NBD_LOG_TLS,               /* TLS handshake failed */
	NBD_LOG_IO,                /* I/O error returned to a client */
	NBD_LOG_FLUSH,             /* FLUSH (or FUA) failed */
	NBD_LOG_STALL,             /* stalled client cut off for memory */
	NBD_LOG_KINDS
};

struct bci_nbd_conn;
struct bci_nbd_tls_server;

struct bci_nbd_ratelog {
	int64_t last_ns;           /* when a line of this kind was last logged */
	unsigned suppressed;       /* lines dropped since */
};

/* A request read off the wire and handed to a sleeping thread to run,
 * with the buffer holding its WRITE payload (or to take its READ data). */
struct bci_nbd_job {
	struct bci_nbd_request q;
	uint32_t err;              /* NBD error found while reading it */
	uint8_t *buf;
	size_t buf_len;
};

struct bc_nbd_server {
	struct bc_volume *volume;
	struct bc_nbd_params params;
	char *export_name, *description;
	uint16_t tx_flags;
	uint32_t pref_block;
	uint32_t hole_block;       /* OFFSET_HOLE granularity: the encryption sector */
	struct bci_nbd_tls_server *tls; /* NULL: no TLS; else clients must use it */

	int listen_fds[NBD_MAX_LISTEN];
	char *unix_paths[NBD_MAX_LISTEN];
	unsigned nlisten;
	int stop_pipe[2];          /* wakes the accept thread: to stop, or to trim */
	pthread_t accept_thread;
	bool accepting;
	bool accept_stop;          /* (atomic) the wake-up is to stop */
	unsigned max_conns;
	int64_t handshake_ns;      /* handshake timeout */

	/* Request buffers, recycled by power-of-two size class so the hot
	 * path neither allocates nor faults in fresh pages, and the memory
	 * budget: mem_used counts every buffer handed out or cached, and never
	 * exceeds mem_max; a request that would exceed it waits on mem_freed
	 * (smaller size classes first, see bci_nbd_buf_get). */
	pthread_mutex_t buf_lock;
	pthread_cond_t mem_freed;
	void *buf_free[NBD_BUF_CLASSES];
	size_t buf_cached;
	size_t mem_used, mem_max, cache_max;
	unsigned mem_waiting[NBD_BUF_CLASSES];

	pthread_mutex_t log_lock;
	struct bci_nbd_ratelog logs[NBD_LOG_KINDS];

	pthread_mutex_t lock;      /* protects conns, nconns, nlive, nserving, stopping */
	pthread_cond_t conn_gone;
	struct bci_nbd_conn *conns;    /* newest first */
	unsigned nconns;
	unsigned nlive;            /* conns not yet cut off (see bci_nbd_conn.cut) */
	unsigned nserving;         /* conns past the handshake: the clients */
	bool stopping;

	/* Readers polling for a client's next small request (atomic), and how
	 * many may at once: the CPUs we may run on, less one (nbd_conn.c). */
	int echo_pollers;
	int echo_poll_max;
};

struct bci_nbd_conn {
	struct bc_nbd_server *srv;
	int in_fd, out_fd;
	bool out_is_socket;
	bool can_poll;            /* in_fd is a socket, and we have CPUs to spare */
	bool no_zeroes;
	/* Negotiated in the handshake, read-only afterwards: structured
	 * replies, and the base:allocation context selected (which needs
	 * them). */
	bool structured, meta_alloc;
	void *tls;                    /* gnutls_session_t after STARTTLS */
	pthread_mutex_t write_lock;   /* one reply on the wire at a time */
	bool closing;                 /* DISC, EOF or a dead client (atomic) */
	bool dead;                    /* a reply could not be sent (atomic) */
	/* Who reads the request stream, and the requests handed over by
	 * it; see the threading model in nbd_conn.c.  Under sched_lock. */
	pthread_mutex_t sched_lock;
	pthread_cond_t sched_wake;
	bool reading;                 /* a thread holds the reader role */
	unsigned waiting;             /* threads asleep on sched_wake */
	unsigned npending, pending_head;
	struct bci_nbd_job pending[NBD_MAX_CONN_THREADS]; /* ring; npending <= waiting */
	/* Read-ahead of the request stream, transmission phase without TLS
	 * only (so no byte meant for a TLS handshake is ever taken): one
	 * read(2) picks up many small requests.  Only the reader touches it. */
	uint8_t *rbuf;
	size_t rpos, rlen;
	bool streaming;               /* the last request was a big WRITE */
	bool echo;                    /* the reader answered a small request itself */
	/* Average time to run a small READ or WRITE, ns (atomic, relaxed):
	 * whether the reader may keep its role while it runs one. */
	int64_t small_run_ns;
	int64_t poll_credit_ns;       /* polling time earned by data received */
	struct bci_nbd_conn *next, *prev; /* server list, under srv->lock */
	/* Under srv->lock: still in the handshake (the accept thread closes
	 * it at handshake_deadline), and cut off by the server (shut down; no
	 * longer counted against max_conns). */
	bool in_handshake, cut;
	int64_t handshake_deadline;
	/* Monotonic ns of the last progress of a reply being sent (tx) or a
	 * WRITE payload being received (rx) while it holds a buffer; 0 when
	 * none is (atomic: read by bci_nbd_cut_stalled). */
	int64_t tx_busy_ns, rx_busy_ns;
};

/* Whole-buffer I/O on the connection, through TLS once negotiated;
 * 0 or -errno (-ECONNRESET at EOF). */
int bci_nbd_read_full(struct bci_nbd_conn *c, void *buf, size_t len);
int bci_nbd_writev_full(struct bci_nbd_conn *c, struct iovec *iov, int iovcnt);
/* Read and drop LEN bytes (a payload we refuse). */
int bci_nbd_discard(struct bci_nbd_conn *c, uint64_t len);

/* TLS (nbd_tls.c): server credentials from the parameters (*OUT stays
 * NULL when TLS is not asked for), per-connection session and I/O. */
int bci_nbd_tls_server_new(const struct bc_nbd_params *p, struct bci_nbd_tls_server **out);
void bci_nbd_tls_server_free(struct bci_nbd_tls_server *t);
int bci_nbd_tls_start(struct bci_nbd_conn *c);
int bci_nbd_tls_recv(struct bci_nbd_conn *c, void *buf, size_t len);
int bci_nbd_tls_sendv(struct bci_nbd_conn *c, const struct iovec *iov, int iovcnt);
void bci_nbd_tls_end(struct bci_nbd_conn *c);

/* Buffers of at least LEN bytes (4 KiB aligned), and their return.
 * bci_nbd_buf_get waits while the memory budget is used up; NULL when LEN is
 * too large, the server stops, or malloc fails. */
void *bci_nbd_buf_get(struct bc_nbd_server *s, size_t len);
void bci_nbd_buf_put(struct bc_nbd_server *s, void *buf, size_t len);

int64_t bci_nbd_now_ns(void);
/* Mark progress of a buffer-holding transfer (*SLOT is tx_busy_ns or
 * rx_busy_ns): started (or progressed), and finished. */
static inline void bci_nbd_busy_mark(int64_t *slot)
{
	__atomic_store_n(slot, bci_nbd_now_ns(), __ATOMIC_RELAXED);
}
static inline void bci_nbd_busy_progress(int64_t *slot)
{
	if (__atomic_load_n(slot, __ATOMIC_RELAXED))
		bci_nbd_busy_mark(slot);
}
static inline void bci_nbd_busy_clear(int64_t *slot)
{
	__atomic_store_n(slot, 0, __ATOMIC_RELAXED);
}
/* Cut off clients whose transfers have stalled (NBD_STALL_CUTOFF_SECONDS). */
void bci_nbd_cut_stalled(struct bc_nbd_server *s);
/* bci_log() at most one line of KIND per 10 s, counting the others. */
void bci_nbd_log_limited(struct bc_nbd_server *s, enum nbd_log_kind kind, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* Option haggling; returns 1 to enter transmission, 0 to close quietly,
 * or -errno. */
int bci_nbd_handshake(struct bci_nbd_conn *c);
/* Transmission phase until the client disconnects. */
void bci_nbd_transmission(struct bci_nbd_conn *c);

#endif
