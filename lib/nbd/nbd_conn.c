/*
 * NBD transmission phase.
 *
 * Threading model: each connection has one reader thread (this file's
 * nbd_transmission) that parses requests, reads WRITE payloads and hands
 * every valid request to the shared worker pool.  Workers execute requests
 * against the volume (which is itself thread-safe) and send the reply under
 * the connection's write_lock, so replies may leave in any order, as the
 * protocol allows.  The reader bounds the work in flight per connection
 * (count and bytes) and waits for it to drain before the connection is
 * closed, so a job never outlives its connection.
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
#define MAX_INFLIGHT_BYTES (48u << 20)

struct nbd_job {
	struct nbd_conn *conn;
	struct nbd_request req;
	uint8_t *buf;   /* WRITE payload or READ result */
};

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

/* Send a simple reply (with DATA for a successful READ). */
static void send_simple(struct nbd_conn *c, uint64_t cookie, uint32_t err,
			const void *data, uint32_t len)
{
	struct nbd_wire_simple_reply h = {
		htobe32(NBD_SIMPLE_REPLY_MAGIC), htobe32(err), cookie, /* cookie is opaque: echo bytes */
	};
	struct iovec iov[2] = { { &h, sizeof(h) }, { (void *)data, len } };
	int r;

	pthread_mutex_lock(&c->write_lock);
	r = nbd_writev_full(c, iov, !err && len ? 2 : 1);
	pthread_mutex_unlock(&c->write_lock);
	if (r < 0) {
		/* The client is gone; make the reader stop. */
		pthread_mutex_lock(&c->lock);
		c->broken = true;
		pthread_mutex_unlock(&c->lock);
		shutdown(c->in_fd, SHUT_RDWR);
	}
}

static void job_done(struct nbd_job *j)
{
	struct nbd_conn *c = j->conn;
	uint64_t bytes = j->req.type == NBD_CMD_READ || j->req.type == NBD_CMD_WRITE ? j->req.length : 0;

	free(j->buf);
	free(j);
	pthread_mutex_lock(&c->lock);
	c->inflight--;
	c->inflight_bytes -= bytes;
	pthread_cond_broadcast(&c->drained);
	pthread_mutex_unlock(&c->lock);
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
		send_simple(c, q->cookie, nbd_errno(r), j->buf, q->length);
		job_done(j);
		return;
	case NBD_CMD_WRITE:
		r = bc_volume_pwrite(v, j->buf, q->length, q->offset);
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
	send_simple(c, q->cookie, nbd_errno(r), NULL, 0);
	job_done(j);
}

/* Check a request against the export; returns an NBD error or 0. */
static uint32_t validate(const struct bc_nbd_server *s, const struct nbd_request *q)
{
	uint16_t allowed = NBD_CMD_FLAG_FUA;
	bool in_range = q->offset <= s->size && q->length <= s->size - q->offset;

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

void nbd_transmission(struct nbd_conn *c)
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
		if (err) {
			/* A refused WRITE still carries its payload: skip it. */
			if (q.type == NBD_CMD_WRITE && nbd_discard(c->in_fd, q.length) < 0)
				break;
			send_simple(c, q.cookie, err, NULL, 0);
			continue;
		}
		if (q.length == 0 && q.type != NBD_CMD_FLUSH) {
			if (q.type == NBD_CMD_READ || q.type == NBD_CMD_WRITE || q.type == NBD_CMD_CACHE ||
			    q.type == NBD_CMD_TRIM || q.type == NBD_CMD_WRITE_ZEROES) {
				send_simple(c, q.cookie, 0, NULL, 0);
				continue;
			}
		}

		bytes = q.type == NBD_CMD_READ || q.type == NBD_CMD_WRITE ? q.length : 0;
		pthread_mutex_lock(&c->lock);
		while (!c->broken && (c->inflight >= MAX_INFLIGHT ||
				      (c->inflight && c->inflight_bytes + bytes > MAX_INFLIGHT_BYTES)))
			pthread_cond_wait(&c->drained, &c->lock);
		if (c->broken) {
			pthread_mutex_unlock(&c->lock);
			break;
		}
		c->inflight++;
		c->inflight_bytes += bytes;
		pthread_mutex_unlock(&c->lock);

		j = calloc(1, sizeof(*j));
		if (j && bytes)
			j->buf = malloc(bytes);
		if (!j || (bytes && !j->buf)) {
			if (j)
				free(j);
			pthread_mutex_lock(&c->lock);
			c->inflight--;
			c->inflight_bytes -= bytes;
			pthread_mutex_unlock(&c->lock);
			if (q.type == NBD_CMD_WRITE && nbd_discard(c->in_fd, q.length) < 0)
				break;
			send_simple(c, q.cookie, NBD_ENOMEM, NULL, 0);
			continue;
		}
		j->conn = c;
		j->req = q;
		if (q.type == NBD_CMD_WRITE && nbd_read_full(c->in_fd, j->buf, q.length) < 0) {
			/* Client vanished mid-write: nothing of it is applied. */
			job_done(j);
			break;
		}
		if (bc_worker_pool_submit(s->pool, execute, j) < 0) {
			send_simple(c, q.cookie, NBD_ENOMEM, NULL, 0);
			job_done(j);
		}
	}

	/* Let every job of this connection finish before it goes away. */
	pthread_mutex_lock(&c->lock);
	while (c->inflight)
		pthread_cond_wait(&c->drained, &c->lock);
	pthread_mutex_unlock(&c->lock);
}
