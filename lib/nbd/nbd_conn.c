/*
 * NBD transmission phase.
 *
 * Threading model: each connection is served by its own small set of
 * threads (bc_nbd_params.threads, default 4).  They take turns on the
 * socket: a thread holds read_lock while it reads one request header and
 * its WRITE payload, then releases it, executes the request against the
 * volume (itself thread-safe) and sends the reply under write_lock.  So
 * requests of one connection run in parallel and replies leave in any
 * order, as the protocol allows, with no hand-off between threads on the
 * hot path.  A client that stops reading its replies only blocks its own
 * threads; memory per connection is bounded by threads x request size.
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

struct serve_state {
	uint8_t *buf;     /* request buffer, recycled through the server */
	size_t buf_len;
};

/* Read-ahead buffer size: about 15 small (4 KiB) WRITE requests.  Reads
 * at least this long go straight to the caller's buffer. */
#define NBD_READAHEAD (64 << 10)

/* read(2) that retries EINTR and maps EOF to -ECONNRESET. */
static ssize_t read_some(int fd, void *buf, size_t len)
{
	for (;;) {
		ssize_t n = read(fd, buf, len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		return n ? n : -ECONNRESET;
	}
}

static int read_buffered(struct nbd_conn *c, uint8_t *p, size_t len)
{
	while (len) {
		size_t have = c->rlen - c->rpos;
		ssize_t n;

		if (have) {
			size_t k = have < len ? have : len;

			memcpy(p, c->rbuf + c->rpos, k);
			c->rpos += k;
			p += k;
			len -= k;
			continue;
		}
		if (len >= NBD_READAHEAD) {
			n = read_some(c->in_fd, p, len);
			if (n < 0)
				return (int)n;
			p += n;
			len -= (size_t)n;
			continue;
		}
		n = read_some(c->in_fd, c->rbuf, NBD_READAHEAD);
		if (n < 0)
			return (int)n;
		c->rpos = 0;
		c->rlen = (size_t)n;
	}
	return 0;
}

int nbd_read_full(struct nbd_conn *c, void *buf, size_t len)
{
	uint8_t *p = buf;

	if (c->tls)
		return nbd_tls_recv(c, buf, len);
	if (c->rbuf)
		return read_buffered(c, p, len);
	while (len) {
		ssize_t n = read_some(c->in_fd, p, len);

		if (n < 0)
			return (int)n;
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

int nbd_writev_full(struct nbd_conn *c, struct iovec *iov, int iovcnt)
{
	if (c->tls)
		return nbd_tls_sendv(c, iov, iovcnt);
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

/* Mark the connection finished: every thread stops at its next request. */
static void conn_close(struct nbd_conn *c, bool hard)
{
	__atomic_store_n(&c->closing, true, __ATOMIC_RELEASE);
	shutdown(c->in_fd, hard ? SHUT_RDWR : SHUT_RD);
}

/* Send a simple reply (with DATA for a successful READ). */
static void send_simple(struct nbd_conn *c, uint64_t cookie, uint32_t err, const void *data, uint32_t len)
{
	struct nbd_wire_simple_reply h = { htobe32(NBD_SIMPLE_REPLY_MAGIC), htobe32(err), cookie };
	struct iovec iov[2] = { { &h, sizeof(h) }, { (void *)data, len } };
	int r;

	pthread_mutex_lock(&c->write_lock);
	r = nbd_writev_full(c, iov, !err && len ? 2 : 1);
	pthread_mutex_unlock(&c->write_lock);
	if (r < 0)
		conn_close(c, true); /* the client is gone or hostile */
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

int nbd_discard(struct nbd_conn *c, uint64_t len)
{
	uint8_t buf[16384];

	while (len) {
		size_t n = len < sizeof(buf) ? (size_t)len : sizeof(buf);
		int r = nbd_read_full(c, buf, n);

		if (r < 0)
			return r;
		len -= n;
	}
	return 0;
}

/* Make ST's buffer at least LEN bytes. */
static bool ensure_buf(struct bc_nbd_server *s, struct serve_state *st, size_t len)
{
	if (st->buf && st->buf_len >= len)
		return true;
	nbd_buf_put(s, st->buf, st->buf_len);
	st->buf = nbd_buf_get(s, len);
	st->buf_len = st->buf ? len : 0;
	return st->buf != NULL;
}

/* Execute a validated request; returns the NBD error. */
static uint32_t execute(struct nbd_conn *c, const struct nbd_request *q, uint8_t *buf)
{
	struct bc_volume *v = c->srv->volume;
	bool fua = q->flags & NBD_CMD_FLAG_FUA;
	int r = 0;

	switch (q->type) {
	case NBD_CMD_READ:
		return nbd_errno(bc_volume_pread(v, buf, q->length, q->offset));
	case NBD_CMD_WRITE:
		r = bc_volume_pwrite_inplace(v, buf, q->length, q->offset);
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
	return nbd_errno(r);
}

/* Read the next request (and a WRITE payload into ST) under read_lock.
 * Returns 1 with a request to run, 0 when the connection is done. */
static int next_request(struct nbd_conn *c, struct serve_state *st, struct nbd_request *q, uint32_t *err)
{
	struct nbd_wire_request w;
	int r = 0;

	pthread_mutex_lock(&c->read_lock);
	if (__atomic_load_n(&c->closing, __ATOMIC_ACQUIRE))
		goto out;
	if (nbd_read_full(c, &w, sizeof(w)) < 0 || be32toh(w.magic) != NBD_REQUEST_MAGIC)
		goto done; /* EOF, or cannot resynchronise: hard disconnect */
	q->flags = be16toh(w.flags);
	q->type = be16toh(w.type);
	q->cookie = w.cookie;
	q->offset = be64toh(w.offset);
	q->length = be32toh(w.length);
	if (q->type == NBD_CMD_DISC)
		goto done;
	*err = validate(c->srv, q);
	if (!*err && (q->type == NBD_CMD_READ || q->type == NBD_CMD_WRITE) && q->length &&
	    !ensure_buf(c->srv, st, q->length))
		*err = NBD_ENOMEM;
	if (q->type == NBD_CMD_WRITE) {
		/* A refused WRITE still carries its payload: skip it. */
		if (*err ? nbd_discard(c, q->length) < 0 :
			   nbd_read_full(c, st->buf, q->length) < 0)
			goto done; /* client vanished mid-write: nothing applied */
	}
	r = 1;
	goto out;
done:
	__atomic_store_n(&c->closing, true, __ATOMIC_RELEASE);
out:
	pthread_mutex_unlock(&c->read_lock);
	return r;
}

static void *serve_main(void *arg)
{
	struct nbd_conn *c = arg;
	struct serve_state st = { 0 };
	struct nbd_request q;
	uint32_t err = 0;

	while (next_request(c, &st, &q, &err)) {
		if (!err && (q.length || q.type == NBD_CMD_FLUSH))
			err = execute(c, &q, st.buf);
		send_simple(c, q.cookie, err, st.buf, q.type == NBD_CMD_READ ? q.length : 0);
		err = 0;
	}
	nbd_buf_put(c->srv, st.buf, st.buf_len);
	return NULL;
}

void nbd_transmission(struct nbd_conn *c)
{
	unsigned n = c->srv->params.threads ? c->srv->params.threads : NBD_DEFAULT_CONN_THREADS;
	pthread_t extra[NBD_MAX_CONN_THREADS];
	pthread_attr_t attr;
	unsigned started = 0;

	if (n > NBD_MAX_CONN_THREADS)
		n = NBD_MAX_CONN_THREADS;
	if (!c->tls) /* without it, requests are read unbuffered: slower, still right */
		c->rbuf = malloc(NBD_READAHEAD);
	pthread_attr_init(&attr);
	pthread_attr_setstacksize(&attr, 256 << 10);
	for (unsigned i = 1; i < n; i++)
		if (pthread_create(&extra[started], &attr, serve_main, c) == 0)
			started++;
	pthread_attr_destroy(&attr);
	serve_main(c);
	for (unsigned i = 0; i < started; i++)
		pthread_join(extra[i], NULL);
	free(c->rbuf);
	c->rbuf = NULL;
}
