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
#define NBD_BUF_CACHE_MAX (16u << 20)   /* bytes kept for reuse */

struct nbd_conn;
struct nbd_tls_server;

/* A request read off the wire and handed to a sleeping thread to run,
 * with the buffer holding its WRITE payload (or to take its READ data). */
struct nbd_job {
	struct nbd_request q;
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
	struct nbd_tls_server *tls; /* NULL: no TLS; else clients must use it */

	int listen_fds[NBD_MAX_LISTEN];
	char *unix_paths[NBD_MAX_LISTEN];
	unsigned nlisten;
	int stop_pipe[2];          /* wakes the accept thread */
	pthread_t accept_thread;
	bool accepting;

	/* Request buffers, recycled by power-of-two size class so the hot
	 * path neither allocates nor faults in fresh pages. */
	pthread_mutex_t buf_lock;
	void *buf_free[NBD_BUF_CLASSES];
	size_t buf_cached;

	pthread_mutex_t lock;      /* protects conns, nconns, stopping */
	pthread_cond_t conn_gone;
	struct nbd_conn *conns;
	unsigned nconns;
	bool stopping;
};

struct nbd_conn {
	struct bc_nbd_server *srv;
	int in_fd, out_fd;
	bool out_is_socket;
	bool can_poll;            /* in_fd is a socket, and we have CPUs to spare */
	bool no_zeroes;
	void *tls;                    /* gnutls_session_t after STARTTLS */
	pthread_mutex_t write_lock;   /* one reply on the wire at a time */
	bool closing;                 /* DISC, EOF or a dead client (atomic) */
	/* Who reads the request stream, and the requests handed over by
	 * it; see the threading model in nbd_conn.c.  Under sched_lock. */
	pthread_mutex_t sched_lock;
	pthread_cond_t sched_wake;
	bool reading;                 /* a thread holds the reader role */
	unsigned waiting;             /* threads asleep on sched_wake */
	unsigned npending, pending_head;
	struct nbd_job pending[NBD_MAX_CONN_THREADS]; /* ring; npending <= waiting */
	/* Read-ahead of the request stream, transmission phase without TLS
	 * only (so no byte meant for a TLS handshake is ever taken): one
	 * read(2) picks up many small requests.  Only the reader touches it. */
	uint8_t *rbuf;
	size_t rpos, rlen;
	bool streaming;               /* the last request was a big WRITE */
	int64_t poll_credit_ns;       /* polling time earned by data received */
	struct nbd_conn *next, *prev; /* server list, under srv->lock */
};

/* Whole-buffer I/O on the connection, through TLS once negotiated;
 * 0 or -errno (-ECONNRESET at EOF). */
int nbd_read_full(struct nbd_conn *c, void *buf, size_t len);
int nbd_writev_full(struct nbd_conn *c, struct iovec *iov, int iovcnt);
/* Read and drop LEN bytes (a payload we refuse). */
int nbd_discard(struct nbd_conn *c, uint64_t len);

/* TLS (nbd_tls.c): server credentials from the parameters (*OUT stays
 * NULL when TLS is not asked for), per-connection session and I/O. */
int nbd_tls_server_new(const struct bc_nbd_params *p, struct nbd_tls_server **out);
void nbd_tls_server_free(struct nbd_tls_server *t);
int nbd_tls_start(struct nbd_conn *c);
int nbd_tls_recv(struct nbd_conn *c, void *buf, size_t len);
int nbd_tls_sendv(struct nbd_conn *c, const struct iovec *iov, int iovcnt);
void nbd_tls_end(struct nbd_conn *c);

/* Buffers of at least LEN bytes (4 KiB aligned), and their return. */
void *nbd_buf_get(struct bc_nbd_server *s, size_t len);
void nbd_buf_put(struct bc_nbd_server *s, void *buf, size_t len);

/* Option haggling; returns 1 to enter transmission, 0 to close quietly,
 * or -errno. */
int nbd_handshake(struct nbd_conn *c);
/* Transmission phase until the client disconnects. */
void nbd_transmission(struct nbd_conn *c);

#endif
