/*
 * NBD transmission phase.
 *
 * Threading model: each connection has a reader thread (this file's
 * nbd_transmission) that parses requests, reads WRITE payloads and hands
 * every valid request to the shared worker pool, and a writer thread that
 * owns the socket's sending side.  Workers execute requests against the
 * volume (itself thread-safe) and queue the reply for the writer, so
 * replies leave in any order, as the protocol allows, and a client that
 * stops reading its replies only ever blocks its own writer, never a
 * worker serving someone else.  A request counts as in flight until its
 * reply has been sent; the reader stops reading requests while a
 * connection has too much in flight (count or bytes), which bounds the
 * memory a client can pin.  The reader waits for everything in flight
 * before the connection is torn down, so nothing outlives it.
 *
 * A reply is sent only after the data reached the backing with pwrite(),
 * and FLUSH is fdatasync() of the one shared backing descriptor, so a
 * FLUSH on any connection covers every write already acknowledged on any
 * connection: this is what makes NBD_FLAG_CAN_MULTI_CONN truthful.
 */
#include <endian.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "nbd/nbd_internal.h"

#define MAX_INFLIGHT 64
#define MAX_INFLIGHT_BYTES (16u << 20) /* beyond one request; bounds RSS per client */

struct nbd_job {
	struct nbd_conn *conn;
	struct nbd_request req;
	uint8_t *buf;   /* WRITE payload or READ result */
};

/* A reply waiting for the writer; JOB (if any) is released once sent. */
struct nbd_reply {
	struct nbd_reply *next;
	struct nbd_wire_simple_reply hdr;
	uint32_t len;             /* READ payload length (in job->buf) */
	size_t sent;              /* bytes of header + payload already sent */
	struct nbd_job *job;
};

/* The unsent part of R as an iovec; returns the count. */
static int reply_iov(const struct nbd_reply *r, struct iovec iov[2])
{
	size_t skip = r->sent;
	int n = 0;

	if (skip < sizeof(r->hdr))
		iov[n++] = (struct iovec){ (uint8_t *)&r->hdr + skip, sizeof(r->hdr) - skip };
	skip = skip > sizeof(r->hdr) ? skip - sizeof(r->hdr) : 0;
	if (r->len > skip)
		iov[n++] = (struct iovec){ r->job->buf + skip, r->len - skip };
	return n;
}

/* Send what the socket takes now, never blocking: 1 = all sent, 0 = the
 * socket is full (R->sent tells how far we got), -1 = the client is gone. */
static int try_send(struct nbd_conn *c, struct nbd_reply *r)
{
	for (;;) {
		struct iovec iov[2];
		struct msghdr m = { .msg_iov = iov };
		ssize_t n;

		m.msg_iovlen = (size_t)reply_iov(r, iov);
		if (!m.msg_iovlen)
			return 1;
		n = sendmsg(c->out_fd, &m, MSG_NOSIGNAL | MSG_DONTWAIT);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return errno == EAGAIN || errno == EWOULDBLOCK ? 0 : -1;
		r->sent += (size_t)n;
	}
}

int nbd_read_full(int fd, void *buf, size_t len)
{
	uint8_t *p = buf;

	while (len) {
		ssize_t n = read(fd, p, len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		if (n == 0)
			return -ECONNRESET;
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

int nbd_writev_full(struct nbd_conn *c, struct iovec *iov, int iovcnt)
{
	while (iovcnt > 0) {
		ssize_t n;

		if (c->out_is_socket) {
			struct msghdr m = { .msg_iov = iov, .msg_iovlen = (size_t)iovcnt };

			n = sendmsg(c->out_fd, &m, MSG_NOSIGNAL);
		} else {
			n = writev(c->out_fd, iov, iovcnt);
		}
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		while (iovcnt > 0 && (size_t)n >= iov->iov_len) {
			n -= (ssize_t)iov->iov_len;
			iov++;
			iovcnt--;
		}
		if (iovcnt > 0) {
			iov->iov_base = (uint8_t *)iov->iov_base + n;
			iov->iov_len -= (size_t)n;
		}
	}
	return 0;
}

static uint32_t nbd_errno(int r)
{
	switch (-r) {
	case 0: return 0;
	case EPERM: case EROFS: case EACCES: return NBD_EPERM;
	case ENOSPC: case EDQUOT: case EFBIG: return NBD_ENOSPC;
	case EINVAL: return NBD_EINVAL;
	case ENOMEM: return NBD_ENOMEM;
	case EOVERFLOW: return NBD_EOVERFLOW;
	case ENOTSUP: return NBD_ENOTSUP;
	case ESHUTDOWN: return NBD_ESHUTDOWN;
	default: return NBD_EIO;
	}
}

static void release(struct nbd_conn *c, uint64_t bytes)
{
	pthread_mutex_lock(&c->lock);
	c->inflight--;
	c->inflight_bytes -= bytes;
	pthread_cond_broadcast(&c->drained);
	pthread_mutex_unlock(&c->lock);
}

static uint64_t job_bytes(const struct nbd_job *j)
{
	return j->req.type == NBD_CMD_READ || j->req.type == NBD_CMD_WRITE ? j->req.length : 0;
}

static void job_free(struct nbd_job *j)
{
	nbd_buf_put(j->conn->srv, j->buf, j->req.length);
	free(j);
}

/* Free a reply that has been sent (or dropped) and release its slot. */
static void finish_reply(struct nbd_conn *c, struct nbd_reply *r)
{
	uint64_t bytes = r->job ? job_bytes(r->job) : 0;

	if (r->job)
		job_free(r->job);
	free(r);
	release(c, bytes);
}

/* Queue a simple reply; with JOB, a successful READ sends JOB's buffer.
 * The in-flight slot of the request is released once the reply is sent.
 * Without JOB the reply still counts: the caller reserved a slot. */
static void send_simple(struct nbd_conn *c, uint64_t cookie, uint32_t err, struct nbd_job *job,
			uint32_t len)
{
	struct nbd_reply *r = calloc(1, sizeof(*r));
	uint64_t bytes;

	if (!r) {
		/* Cannot even queue a reply: give up on this client. */
		pthread_mutex_lock(&c->lock);
		c->broken = true;
		pthread_cond_broadcast(&c->drained);
		pthread_mutex_unlock(&c->lock);
		shutdown(c->in_fd, SHUT_RDWR);
		bytes = job ? job_bytes(job) : 0;
		if (job)
			job_free(job);
		release(c, bytes);
		return;
	}
	r->hdr = (struct nbd_wire_simple_reply){ htobe32(NBD_SIMPLE_REPLY_MAGIC), htobe32(err), cookie };
	r->len = err ? 0 : len;
	r->job = job;
	pthread_mutex_lock(&c->lock);
	if (c->out_is_socket && !c->replies && !c->sending && !c->broken) {
		/* Fast path: the wire is idle, send from this thread without
		 * blocking; only what the socket will not take goes to the
		 * writer thread (saving a thread hand-off per request). */
		int sent;

		c->sending = true;
		pthread_mutex_unlock(&c->lock);
		sent = try_send(c, r);
		pthread_mutex_lock(&c->lock);
		c->sending = false;
		if (sent != 0) {
			if (sent < 0)
				c->broken = true;
			pthread_cond_signal(&c->reply_ready);
			pthread_mutex_unlock(&c->lock);
			if (sent < 0)
				shutdown(c->in_fd, SHUT_RDWR);
			finish_reply(c, r);
			return;
		}
		r->next = c->replies; /* partly sent: it must go out first */
		c->replies = r;
		if (!c->replies_tail)
			c->replies_tail = r;
		pthread_cond_signal(&c->reply_ready);
		pthread_mutex_unlock(&c->lock);
		return;
	}
	if (c->replies_tail)
		c->replies_tail->next = r;
	else
		c->replies = r;
	c->replies_tail = r;
	pthread_cond_signal(&c->reply_ready);
	pthread_mutex_unlock(&c->lock);
}

static void *writer_main(void *arg)
{
	struct nbd_conn *c = arg;

	pthread_mutex_lock(&c->lock);
	for (;;) {
		struct nbd_reply *r;

		/* A worker may be sending on the fast path: wait for it. */
		while ((!c->replies || c->sending) && !(c->writer_stop && !c->replies && !c->sending))
			pthread_cond_wait(&c->reply_ready, &c->lock);
		if (!c->replies)
			break;
		r = c->replies;
		c->replies = r->next;
		if (!c->replies)
			c->replies_tail = NULL;
		c->sending = true;
		pthread_mutex_unlock(&c->lock);

		if (!c->broken) {
			struct iovec iov[2];
			int n = reply_iov(r, iov);

			if (n && nbd_writev_full(c, iov, n) < 0) {
				/* The client is gone or hostile: stop reading it too. */
				pthread_mutex_lock(&c->lock);
				c->broken = true;
				pthread_mutex_unlock(&c->lock);
				shutdown(c->in_fd, SHUT_RDWR);
			}
		}
		pthread_mutex_lock(&c->lock);
		c->sending = false;
		pthread_mutex_unlock(&c->lock);
		finish_reply(c, r);
		pthread_mutex_lock(&c->lock);
	}
	pthread_mutex_unlock(&c->lock);
	return NULL;
}

static void execute(void *arg)
{
	struct nbd_job *j = arg;
	struct nbd_conn *c = j->conn;
	struct bc_volume *v = c->srv->volume;
	const struct nbd_request *q = &j->req;
	bool fua = q->flags & NBD_CMD_FLAG_FUA;
	int r = 0;

	switch (q->type) {
	case NBD_CMD_READ:
		r = bc_volume_pread(v, j->buf, q->length, q->offset);
		send_simple(c, q->cookie, nbd_errno(r), j, q->length);
		return;
	case NBD_CMD_WRITE:
		r = bc_volume_pwrite_inplace(v, j->buf, q->length, q->offset);
		break;
	case NBD_CMD_WRITE_ZEROES:
		r = bc_volume_write_zeroes(v, q->length, q->offset);
		break;
	case NBD_CMD_TRIM:
		r = bc_volume_discard(v, q->length, q->offset);
		break;
	case NBD_CMD_FLUSH:
		r = bc_volume_flush(v);
		fua = false;
		break;
	case NBD_CMD_CACHE:
		/* A hint only; the backing's page cache serves repeated reads. */
		break;
	}
	if (r == 0 && fua)
		r = bc_volume_flush(v);
	send_simple(c, q->cookie, nbd_errno(r), j, 0);
}

/* Check a request against the export; returns an NBD error or 0. */
static uint32_t validate(const struct bc_nbd_server *s, const struct nbd_request *q)
{
	uint16_t allowed = NBD_CMD_FLAG_FUA;
	uint64_t size = bc_volume_size(s->volume); /* may grow while we serve */
	bool in_range = q->offset <= size && q->length <= size - q->offset;

	switch (q->type) {
	case NBD_CMD_READ:
		if (q->length > NBD_MAX_PAYLOAD)
			return NBD_EINVAL;
		break;
	case NBD_CMD_WRITE:
		if (q->length > NBD_MAX_PAYLOAD)
			return NBD_EINVAL;
		if (s->params.read_only)
			return NBD_EPERM;
		if (!in_range)
			return NBD_ENOSPC;
		break;
	case NBD_CMD_WRITE_ZEROES:
		allowed |= NBD_CMD_FLAG_NO_HOLE;
		if (s->params.read_only)
			return NBD_EPERM;
		if (!in_range)
			return NBD_ENOSPC;
		break;
	case NBD_CMD_TRIM:
		if (!s->params.allow_discards)
			return NBD_EINVAL;
		if (s->params.read_only)
			return NBD_EPERM;
		break;
	case NBD_CMD_FLUSH:
		if (q->offset || q->length)
			return NBD_EINVAL;
		return q->flags & ~allowed ? NBD_EINVAL : 0;
	case NBD_CMD_CACHE:
		break;
	default:
		return NBD_EINVAL;
	}
	if (q->flags & ~allowed)
		return NBD_EINVAL;
	return in_range ? 0 : NBD_EINVAL;
}

int nbd_discard(int fd, uint64_t len)
{
	uint8_t buf[16384];

	while (len) {
		size_t n = len < sizeof(buf) ? (size_t)len : sizeof(buf);
		int r = nbd_read_full(fd, buf, n);

		if (r < 0)
			return r;
		len -= n;
	}
	return 0;
}

/* Reserve an in-flight slot of BYTES; false when the connection broke. */
static bool reserve(struct nbd_conn *c, uint64_t bytes)
{
	bool ok;

	pthread_mutex_lock(&c->lock);
	while (!c->broken && (c->inflight >= MAX_INFLIGHT ||
			      (c->inflight && c->inflight_bytes + bytes > MAX_INFLIGHT_BYTES)))
		pthread_cond_wait(&c->drained, &c->lock);
	ok = !c->broken;
	if (ok) {
		c->inflight++;
		c->inflight_bytes += bytes;
	}
	pthread_mutex_unlock(&c->lock);
	return ok;
}

static void serve_requests(struct nbd_conn *c)
{
	struct bc_nbd_server *s = c->srv;

	for (;;) {
		struct nbd_wire_request w;
		struct nbd_request q;
		struct nbd_job *j;
		uint32_t err;
		uint64_t bytes;

		if (nbd_read_full(c->in_fd, &w, sizeof(w)) < 0)
			break;
		if (be32toh(w.magic) != NBD_REQUEST_MAGIC)
			break; /* cannot resynchronise: hard disconnect */
		q.flags = be16toh(w.flags);
		q.type = be16toh(w.type);
		q.cookie = w.cookie;
		q.offset = be64toh(w.offset);
		q.length = be32toh(w.length);
		if (q.type == NBD_CMD_DISC)
			break;

		err = validate(s, &q);
		bytes = !err && (q.type == NBD_CMD_READ || q.type == NBD_CMD_WRITE) ? q.length : 0;
		if (!reserve(c, bytes))
			break;
		if (err || (q.length == 0 && q.type != NBD_CMD_FLUSH)) {
			/* A refused WRITE still carries its payload: skip it. */
			if (err && q.type == NBD_CMD_WRITE && nbd_discard(c->in_fd, q.length) < 0) {
				release(c, 0);
				break;
			}
			send_simple(c, q.cookie, err, NULL, 0);
			continue;
		}
		j = calloc(1, sizeof(*j));
		if (j && bytes)
			j->buf = nbd_buf_get(s, bytes);
		if (!j || (bytes && !j->buf)) {
			free(j);
			release(c, bytes);
			if (q.type == NBD_CMD_WRITE && nbd_discard(c->in_fd, q.length) < 0)
				break;
			if (reserve(c, 0))
				send_simple(c, q.cookie, NBD_ENOMEM, NULL, 0);
			continue;
		}
		j->conn = c;
		j->req = q;
		if (q.type == NBD_CMD_WRITE && nbd_read_full(c->in_fd, j->buf, q.length) < 0) {
			/* Client vanished mid-write: nothing of it is applied. */
			job_free(j);
			release(c, bytes);
			break;
		}
		if (bc_worker_pool_submit(s->pool, execute, j) < 0)
			send_simple(c, q.cookie, NBD_ENOMEM, j, 0);
	}
}

void nbd_transmission(struct nbd_conn *c)
{
	pthread_attr_t attr;
	int r;

	pthread_attr_init(&attr);
	pthread_attr_setstacksize(&attr, 256 << 10);
	r = pthread_create(&c->writer, &attr, writer_main, c);
	pthread_attr_destroy(&attr);
	if (r != 0)
		return;
	serve_requests(c);

	/* Let every request of this connection be answered (or dropped, if
	 * the client is gone) before the connection goes away. */
	pthread_mutex_lock(&c->lock);
	while (c->inflight)
		pthread_cond_wait(&c->drained, &c->lock);
	c->writer_stop = true;
	pthread_cond_signal(&c->reply_ready);
	pthread_mutex_unlock(&c->lock);
	pthread_join(c->writer, NULL);
}
