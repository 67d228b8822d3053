/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * NBD transmission phase.
 *
 * Threading model: each connection is served by its own small set of
 * threads (bc_nbd_params.threads, default 4).  One of them at a time holds
 * the reader role: it reads a request header and its WRITE payload off the
 * socket.  What happens next depends on the request:
 *
 *  - A small request (under NBD_HANDOFF_MIN), or any request when no other
 *    thread is asleep: the reader gives up the role, waking one sleeping
 *    thread to take it, and runs the request itself.  Small requests thus
 *    cost no hand-off between threads on the hot path.  The wake-up is
 *    skipped when nothing else has arrived (the read-ahead is empty and
 *    the socket has no byte waiting) and small requests have been running
 *    in under NBD_LAZY_MAX_NS: then the reader reads on itself once it
 *    has replied.  A client with one request in flight (qd1) so costs no
 *    thread wake-up per request; a request that arrives meanwhile waits
 *    at most that short run.
 *    Having replied, such a reader polls the socket for the client's
 *    next request for up to NBD_ECHO_POLL_NS before it sleeps in read(2)
 *    (at most CPUs - 1 readers of the whole server at once), so that
 *    request needs no wake-up of a sleeping thread either.
 *  - A small WRITE followed in the read-ahead by more WRITEs, whole: the
 *    reader takes a few of them with it (a batch of NBD_BATCH_MAX, only
 *    while small requests run fast), runs them one after the other and
 *    sends all their replies in one write.  A client with many
 *    small WRITEs in flight so costs one send per batch instead of one
 *    per request, on our side and in the client's wake-ups.  The reader
 *    never waits for a batch to fill: it takes only what has arrived.
 *  - A big READ or WRITE while some thread sleeps: the reader queues it
 *    (with its buffer) for that thread and goes straight on reading.  Waking
 *    a thread takes 100-200 us on a VM, about as long as a 1 MiB payload
 *    takes to arrive; the reader must not pay that between payloads, or
 *    the client stalls on its full socket buffer.  For the same reason,
 *    while big WRITEs stream in, the reader polls the socket for a while
 *    before it sleeps, for as long as the data received pays for
 *    (NBD_POLL_NS_PER_BYTE).
 *
 * A thread that finishes a request runs a queued one, else takes the free
 * reader role, else sleeps on sched_wake.  A request is queued only while
 * more threads sleep than requests wait, so every queued request has a
 * thread, and the queue never holds more than threads - 1.
 *
 * Memory: a request holds a buffer from the server's pool (bci_nbd_buf_get)
 * from the moment its header is read until its reply is sent, and gives
 * it back then; idle threads, and a reader waiting for the next header,
 * hold none.  So a connection holds at most THREADS buffers (each request
 * rounded up to a power of two), plus the 64 KiB read-ahead, and all
 * connections together at most the server's budget: a reader that needs
 * more than is left waits in bci_nbd_buf_get, without reading further
 * requests (backpressure), until another request gives memory back.
 * While a thread sends a reply or receives a WRITE payload with a buffer,
 * it notes the time of each bit of progress in tx_busy_ns / rx_busy_ns,
 * so the server can cut off a client that stalls while others wait for
 * memory (bci_nbd_cut_stalled).  Replies go out under write_lock, in any
 * order, as the protocol allows; a client that stops reading them only
 * blocks its own threads.
 *
 * Replies are simple, or, once negotiated, structured: a READ's data goes
 * out as OFFSET_DATA chunks, with OFFSET_HOLE for each run of whole
 * aligned blocks (the volume's encryption sector, at least 512 bytes)
 * that read as zeros (one OFFSET_DATA chunk under NBD_CMD_FLAG_DF), the
 * last chunk flagged DONE; its errors are ERROR chunks.  BLOCK_STATUS
 * answers one BLOCK_STATUS chunk of at most NBD_MAX_EXTENTS extents
 * (one with NBD_CMD_FLAG_REQ_ONE).  One reply's chunks go out under
 * write_lock together.
 *
 * A reply is sent only after the data reached the backing with pwrite(),
 * and FLUSH is fdatasync() of the one shared backing descriptor, so a
 * FLUSH on any connection covers every write already acknowledged on any
 * connection: this is what makes NBD_FLAG_CAN_MULTI_CONN truthful.
 */
#include <endian.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "core/macros.h"
#include "nbd/nbd_internal.h"

/* A batch of small WRITEs run by one thread (see the threading model):
 * this many, or as many as run in NBD_LAZY_MAX_NS at the average pace of
 * small requests if fewer, so a slow backing gets no batches and keeps
 * every thread writing at once.  A batch is taken only when it waits
 * whole in the read-ahead: a deep queue of WRITEs, where replying at once
 * gains nothing.  Taking whatever followed (two WRITEs between READs)
 * held replies back from clients with few requests in flight: random
 * read/write at iodepth 8 lost 6-8% (bench/RESULTS.md), while random
 * WRITEs at iodepth 32 gained 7-12% either way.  More than 4 gained
 * nothing there, and needs a deeper queue to form. */
#define NBD_BATCH_MAX 4

struct serve_state {
	uint8_t *buf;     /* the current request's buffer, from the server's pool */
	size_t buf_len;
	/* Small WRITEs that followed the current one (itself a small WRITE)
	 * whole in the read-ahead: their payloads follow its payload in buf,
	 * and this thread runs them after it and sends the replies of all of
	 * them at once (see the threading model). */
	unsigned ntail;
	struct bci_nbd_request tail[NBD_BATCH_MAX - 1];
	uint32_t tail_err[NBD_BATCH_MAX - 1];
};

/* Requests at least this long go to a sleeping thread, if there is one,
 * while the reader reads on (see the threading model above). */
#define NBD_HANDOFF_MIN (128 << 10)

/* The reader keeps its role through a small request (see the threading
 * model) only while small requests take less than this on average. */
#define NBD_LAZY_MAX_NS (50 * 1000)

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

/* Polling the socket while big WRITEs stream in, instead of sleeping in
 * read(2) at once.  The rest of the stream is on its way, but the
 * client's socket send buffer (208 KiB by default) holds only a part of
 * it: each time the reader drains it, the client must be woken to fill it
 * again, and if the reader sleeps meanwhile, it must be woken too.  On a
 * VM each wake-up is an interrupt to a halted virtual CPU, tens of
 * microseconds; polling saves one of the two.
 *
 * Polling time is earned by data: every byte received adds
 * NBD_POLL_NS_PER_BYTE to a credit capped at NBD_POLL_MAX_NS, and time
 * spent polling is taken from it.  A client streaming at full speed keeps
 * the reader polling; one that trickles bytes, or stalls, earns next to
 * nothing, and the reader sleeps in read(2) as it would without polling. */
#define NBD_POLL_NS_PER_BYTE 1
#define NBD_POLL_MAX_NS (200 * 1000)

/* Polling for the next small request, after the reader answered one
 * itself (the client waits for each reply before it sends again: qd1).
 * A thread that sleeps in read(2) is woken by an interrupt to a halted
 * virtual CPU when the request arrives: measured at 40-50 us more per
 * request than polling on a 2-CPU VM (bench/RESULTS.md), against an
 * exchange that takes 15-20 us.  The client answers within this window or
 * the reader sleeps; polling readers are capped server-wide at the CPUs
 * less one (bc_nbd_server.echo_poll_max), so clients cannot make them
 * take every CPU, and a connection that went quiet costs this once. */
#define NBD_ECHO_POLL_NS (30 * 1000)

static inline void cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
	__builtin_ia32_pause();
#elif defined(__aarch64__)
	__asm__ __volatile__("yield");
#endif
}

static int64_t elapsed_ns(const struct timespec *t0)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (t.tv_sec - t0->tv_sec) * 1000000000LL + (t.tv_nsec - t0->tv_nsec);
}

static void earn_poll_credit(struct bci_nbd_conn *c, ssize_t n)
{
	int64_t credit = c->poll_credit_ns + (int64_t)n * NBD_POLL_NS_PER_BYTE;

	c->poll_credit_ns = credit < NBD_POLL_MAX_NS ? credit : NBD_POLL_MAX_NS;
}

/* recv() without waiting, again and again for up to LIMIT_NS (the time
 * taken in *SPENT): what recv() gave, or -EAGAIN if nothing came. */
static ssize_t poll_socket(struct bci_nbd_conn *c, void *buf, size_t len, int64_t limit_ns, int64_t *spent)
{
	struct timespec t0;
	ssize_t n;

	clock_gettime(CLOCK_MONOTONIC, &t0);
	do {
		n = recv(c->in_fd, buf, len, MSG_DONTWAIT);
		*spent = elapsed_ns(&t0);
		if (n > 0)
			return n;
		if (n == 0)
			return -ECONNRESET;
		if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)
			return -errno;
		cpu_relax();
	} while (*spent < limit_ns);
	return -EAGAIN;
}

/* read_some() that first polls: while the client streams big WRITEs, for
 * as long as the credit allows, and after the reader answered a small
 * request itself, for NBD_ECHO_POLL_NS (see above). */
static ssize_t read_streaming(struct bci_nbd_conn *c, void *buf, size_t len)
{
	struct bc_nbd_server *srv = c->srv;
	ssize_t n;

	if (c->can_poll && c->streaming && c->poll_credit_ns > 0) {
		int64_t spent = 0;

		n = poll_socket(c, buf, len, c->poll_credit_ns, &spent);
		c->poll_credit_ns -= spent;
		if (n != -EAGAIN) {
			if (n > 0)
				earn_poll_credit(c, n);
			return n;
		}
		c->poll_credit_ns = 0;
	} else if (c->can_poll && c->echo) {
		int64_t spent;
		bool mine = __atomic_add_fetch(&srv->echo_pollers, 1, __ATOMIC_RELAXED) <= srv->echo_poll_max;

		n = mine ? poll_socket(c, buf, len, NBD_ECHO_POLL_NS, &spent) : -EAGAIN;
		__atomic_sub_fetch(&srv->echo_pollers, 1, __ATOMIC_RELAXED);
		if (n != -EAGAIN)
			return n;
	}
	n = read_some(c->in_fd, buf, len);
	if (n > 0 && c->can_poll)
		earn_poll_credit(c, n);
	return n;
}

static int read_buffered(struct bci_nbd_conn *c, uint8_t *p, size_t len)
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
			n = read_streaming(c, p, len);
			if (n < 0)
				return (int)n;
			p += n;
			len -= (size_t)n;
			bci_nbd_busy_progress(&c->rx_busy_ns);
			continue;
		}
		n = read_streaming(c, c->rbuf, NBD_READAHEAD);
		if (n < 0)
			return (int)n;
		c->rpos = 0;
		c->rlen = (size_t)n;
		bci_nbd_busy_progress(&c->rx_busy_ns);
	}
	return 0;
}

int bci_nbd_read_full(struct bci_nbd_conn *c, void *buf, size_t len)
{
	uint8_t *p = buf;

	if (c->tls)
		return bci_nbd_tls_recv(c, buf, len);
	if (c->rbuf)
		return read_buffered(c, p, len);
	while (len) {
		ssize_t n = read_some(c->in_fd, p, len);

		if (n < 0)
			return (int)n;
		p += n;
		len -= (size_t)n;
		bci_nbd_busy_progress(&c->rx_busy_ns);
	}
	return 0;
}

int bci_nbd_writev_full(struct bci_nbd_conn *c, struct iovec *iov, int iovcnt)
{
	if (c->tls)
		return bci_nbd_tls_sendv(c, iov, iovcnt);
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
		bci_nbd_busy_progress(&c->tx_busy_ns);
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
static void conn_close(struct bci_nbd_conn *c, bool hard)
{
	__atomic_store_n(&c->closing, true, __ATOMIC_RELEASE);
	if (hard)
		__atomic_store_n(&c->dead, true, __ATOMIC_RELEASE);
	shutdown(c->in_fd, hard ? SHUT_RDWR : SHUT_RD);
}

/* Check a request against the export and what the connection
 * negotiated; returns an NBD error or 0. */
static uint32_t validate(const struct bci_nbd_conn *c, const struct bci_nbd_request *q)
{
	const struct bc_nbd_server *s = c->srv;
	uint16_t allowed = NBD_CMD_FLAG_FUA;
	uint64_t size = bc_volume_size(s->volume); /* may grow while we serve */
	bool in_range = q->offset <= size && q->length <= size - q->offset;

	switch (q->type) {
	case NBD_CMD_READ:
		if (q->length > NBD_MAX_PAYLOAD)
			return NBD_EINVAL;
		if (c->structured)
			allowed |= NBD_CMD_FLAG_DF;
		break;
	case NBD_CMD_BLOCK_STATUS:
		if (!c->meta_alloc || !q->length)
			return NBD_EINVAL;
		allowed |= NBD_CMD_FLAG_REQ_ONE;
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

int bci_nbd_discard(struct bci_nbd_conn *c, uint64_t len)
{
	uint8_t buf[16384];

	while (len) {
		size_t n = len < sizeof(buf) ? (size_t)len : sizeof(buf);
		int r = bci_nbd_read_full(c, buf, n);

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
	bci_nbd_buf_put(s, st->buf, st->buf_len);
	st->buf = bci_nbd_buf_get(s, len);
	st->buf_len = st->buf ? len : 0;
	return st->buf != NULL;
}

static const char *cmd_name(uint16_t type)
{
	switch (type) {
	case NBD_CMD_READ: return "READ";
	case NBD_CMD_WRITE: return "WRITE";
	case NBD_CMD_FLUSH: return "FLUSH";
	case NBD_CMD_TRIM: return "TRIM";
	case NBD_CMD_WRITE_ZEROES: return "WRITE_ZEROES";
	case NBD_CMD_BLOCK_STATUS: return "BLOCK_STATUS";
	default: return "request";
	}
}

/* An error goes back to the client: say so in the log too (rate-limited:
 * a dying disk must not flood it), with the volume's message. */
static void log_failure(struct bci_nbd_conn *c, const struct bci_nbd_request *q, int r, bool flush)
{
	if (flush)
		bci_nbd_log_limited(c->srv, NBD_LOG_FLUSH, "%s failed: %s", q->type == NBD_CMD_FLUSH ? "FLUSH" :
				"flush after a FUA write", bc_last_error());
	else
		bci_nbd_log_limited(c->srv, NBD_LOG_IO, "%s of %u bytes at %llu failed (%s): %s", cmd_name(q->type),
				q->length, (unsigned long long)q->offset, strerror(-r), bc_last_error());
}

/* Execute a validated request; returns the NBD error. */
static uint32_t execute(struct bci_nbd_conn *c, const struct bci_nbd_request *q, uint8_t *buf)
{
	struct bc_volume *v = c->srv->volume;
	bool fua = q->flags & NBD_CMD_FLAG_FUA;
	int r = 0;

	switch (q->type) {
	case NBD_CMD_READ:
		r = bc_volume_pread(v, buf, q->length, q->offset);
		if (r < 0)
			log_failure(c, q, r, false);
		return nbd_errno(r);
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
	if (r < 0) {
		log_failure(c, q, r, q->type == NBD_CMD_FLUSH);
	} else if (fua) {
		r = bc_volume_flush(v);
		if (r < 0)
			log_failure(c, q, r, true);
	}
	return nbd_errno(r);
}

/* Chunks of one structured reply, gathered and sent a batch at a time
 * (each chunk: header, offset/hole fields, data).  The last chunk is held
 * back until the next one, or the end, says whether it is the last
 * (NBD_REPLY_FLAG_DONE). */
#define CHUNK_BATCH 32
struct chunks {
	struct bci_nbd_conn *c;
	uint64_t cookie;
	unsigned n;                   /* chunks gathered, the last one held back */
	struct {
		struct bci_nbd_wire_chunk h;
		uint8_t fields[12];   /* offset, and a hole's length */
		const void *data;
		uint32_t data_len;
	} k[CHUNK_BATCH + 1];
	int r;
};

/* Send the first N gathered chunks; the one after them becomes the first. */
static void chunks_send(struct chunks *ch, unsigned n)
{
	struct iovec iov[3 * CHUNK_BATCH + 3];
	int niov = 0;

	for (unsigned i = 0; i < n; i++) {
		uint16_t type = be16toh(ch->k[i].h.type);

		iov[niov++] = (struct iovec){ &ch->k[i].h, sizeof(ch->k[i].h) };
		if (type == NBD_REPLY_TYPE_OFFSET_DATA) {
			iov[niov++] = (struct iovec){ ch->k[i].fields, 8 };
			iov[niov++] = (struct iovec){ (void *)ch->k[i].data, ch->k[i].data_len };
		} else if (type == NBD_REPLY_TYPE_OFFSET_HOLE) {
			iov[niov++] = (struct iovec){ ch->k[i].fields, 12 };
		} else if (ch->k[i].data_len) {
			iov[niov++] = (struct iovec){ (void *)ch->k[i].data, ch->k[i].data_len };
		}
	}
	if (ch->r == 0 && niov)
		ch->r = bci_nbd_writev_full(ch->c, iov, niov);
	memmove(&ch->k[0], &ch->k[n], (ch->n - n) * sizeof(ch->k[0]));
	ch->n -= n;
}

/* Gather a chunk: TYPE with DATA (payload after the offset fields for
 * content chunks; the whole payload for others). */
static void chunk_add(struct chunks *ch, uint16_t type, uint64_t offset, uint32_t hole,
		      const void *data, uint32_t data_len)
{
	uint32_t len = data_len;
	uint64_t be_off = htobe64(offset);
	uint32_t be_hole = htobe32(hole);

	if (type == NBD_REPLY_TYPE_OFFSET_DATA)
		len += 8;
	else if (type == NBD_REPLY_TYPE_OFFSET_HOLE)
		len = 12;
	if (ch->n == CHUNK_BATCH + 1)
		chunks_send(ch, CHUNK_BATCH);
	ch->k[ch->n].h = (struct bci_nbd_wire_chunk){ htobe32(NBD_STRUCTURED_REPLY_MAGIC), 0, htobe16(type),
						     ch->cookie, htobe32(len) };
	memcpy(ch->k[ch->n].fields, &be_off, 8);
	memcpy(ch->k[ch->n].fields + 8, &be_hole, 4);
	ch->k[ch->n].data = data;
	ch->k[ch->n].data_len = data_len;
	ch->n++;
}

/* Send what is gathered, the last chunk flagged DONE. */
static void chunks_done(struct chunks *ch)
{
	ch->k[ch->n - 1].h.flags = htobe16(NBD_REPLY_FLAG_DONE);
	chunks_send(ch, ch->n);
}

struct error_payload {
	uint32_t err;
	uint16_t len;
	char msg[64];
} __attribute__((packed));

/* The ERROR chunk for NBD error ERR (NBD errors are Linux errno values),
 * its payload in E. */
static void chunk_error(struct chunks *ch, uint32_t err, struct error_payload *e)
{
	size_t n = (size_t)snprintf(e->msg, sizeof(e->msg), "%s", strerror((int)err));

	e->err = htobe32(err);
	e->len = htobe16((uint16_t)n);
	chunk_add(ch, NBD_REPLY_TYPE_ERROR, 0, 0, e, (uint32_t)(6 + n));
}

/* A successful READ's content chunks: runs of whole aligned blocks of
 * zeros as OFFSET_HOLE, the rest as OFFSET_DATA. */
static void chunks_read(struct chunks *ch, const struct bci_nbd_request *q, const uint8_t *buf, uint32_t block)
{
	uint32_t pos = 0, start = 0;
	bool in_hole = false;

	while (pos < q->length) {
		uint64_t off = q->offset + pos;
		uint32_t n = block - (uint32_t)(off % block);
		bool zero;

		if (n > q->length - pos)
			n = q->length - pos;
		zero = n == block && bci_all_zero(buf + pos, n);
		if (pos && zero != in_hole) {
			if (in_hole)
				chunk_add(ch, NBD_REPLY_TYPE_OFFSET_HOLE, q->offset + start, pos - start, NULL, 0);
			else
				chunk_add(ch, NBD_REPLY_TYPE_OFFSET_DATA, q->offset + start, 0, buf + start, pos - start);
			start = pos;
		}
		in_hole = zero;
		pos += n;
	}
	if (in_hole)
		chunk_add(ch, NBD_REPLY_TYPE_OFFSET_HOLE, q->offset + start, pos - start, NULL, 0);
	else
		chunk_add(ch, NBD_REPLY_TYPE_OFFSET_DATA, q->offset + start, 0, buf + start, pos - start);
}

/* The allocation of Q's range as base:allocation extents into EXT (pairs
 * of length and flags, big-endian): at most NBD_MAX_EXTENTS, one with
 * REQ_ONE, adjacent runs of one state merged, never beyond the range.
 * Returns the number of extents, or an NBD error as its negative. */
static int block_status(struct bci_nbd_conn *c, const struct bci_nbd_request *q, uint32_t *ext)
{
	unsigned n = 0, max = q->flags & NBD_CMD_FLAG_REQ_ONE ? 1 : NBD_MAX_EXTENTS;
	uint64_t off = q->offset, left = q->length;

	while (left) {
		uint64_t len;
		bool hole;
		uint32_t flags;
		int r = bc_volume_extent(c->srv->volume, off, left, &len, &hole);

		if (r < 0) {
			if (n)
				break; /* shrunk meanwhile: what we have is right */
			log_failure(c, q, r, false);
			return -(int)nbd_errno(r);
		}
		flags = hole ? NBD_STATE_HOLE | NBD_STATE_ZERO : 0;
		if (n && be32toh(ext[2 * n - 1]) == flags) {
			ext[2 * n - 2] = htobe32(be32toh(ext[2 * n - 2]) + (uint32_t)len);
		} else {
			if (n == max)
				break;
			ext[2 * n] = htobe32((uint32_t)len);
			ext[2 * n + 1] = htobe32(flags);
			n++;
		}
		off += len;
		left -= len;
	}
	return (int)n;
}

/* The structured reply to Q (READ or BLOCK_STATUS, or any request with
 * an error), under write_lock. */
static int send_structured(struct bci_nbd_conn *c, const struct bci_nbd_request *q, uint32_t err,
			   const uint8_t *buf)
{
	struct chunks ch = { .c = c, .cookie = q->cookie };
	struct error_payload e;
	struct {
		uint32_t id;
		uint32_t ext[2 * NBD_MAX_EXTENTS];
	} bs; /* (no padding: all 32-bit) */
	int n;

	if (!err && q->type == NBD_CMD_BLOCK_STATUS) {
		n = block_status(c, q, bs.ext);
		if (n > 0) {
			bs.id = htobe32(NBD_META_ID_BASE_ALLOCATION);
			chunk_add(&ch, NBD_REPLY_TYPE_BLOCK_STATUS, 0, 0, &bs, (uint32_t)(4 + 8 * n));
		}
		err = n < 0 ? (uint32_t)-n : 0;
	} else if (!err && q->type == NBD_CMD_READ && q->length) {
		if (q->flags & NBD_CMD_FLAG_DF) /* one content chunk */
			chunk_add(&ch, NBD_REPLY_TYPE_OFFSET_DATA, q->offset, 0, buf, q->length);
		else
			chunks_read(&ch, q, buf, c->srv->hole_block);
	}
	if (err)
		chunk_error(&ch, err, &e);
	if (!ch.n)
		chunk_add(&ch, NBD_REPLY_TYPE_NONE, 0, 0, NULL, 0);
	chunks_done(&ch);
	return ch.r;
}

/* Send the reply to Q: structured for a READ or BLOCK_STATUS once
 * negotiated (and for errors then), else simple (with the data of a
 * successful READ). */
static void send_reply(struct bci_nbd_conn *c, const struct bci_nbd_request *q, uint32_t err, const uint8_t *buf)
{
	struct bci_nbd_wire_simple_reply h = { htobe32(NBD_SIMPLE_REPLY_MAGIC), htobe32(err), q->cookie };
	struct iovec iov[2] = { { &h, sizeof(h) }, { (void *)buf, q->type == NBD_CMD_READ ? q->length : 0 } };
	bool structured = c->structured &&
		(err || q->type == NBD_CMD_READ || q->type == NBD_CMD_BLOCK_STATUS);
	int r;

	pthread_mutex_lock(&c->write_lock);
	bci_nbd_busy_mark(&c->tx_busy_ns); /* (a reply always holds its request's buffer) */
	if (structured)
		r = send_structured(c, q, err, buf);
	else
		r = bci_nbd_writev_full(c, iov, !err && iov[1].iov_len ? 2 : 1);
	bci_nbd_busy_clear(&c->tx_busy_ns);
	pthread_mutex_unlock(&c->write_lock);
	if (r < 0)
		conn_close(c, true); /* the client is gone or hostile */
}

/* Read a request header into Q and check it (*ERR, an NBD error); the
 * caller holds the reader role.  Returns 1, or 0 when the connection is
 * done. */
static int read_header(struct bci_nbd_conn *c, struct bci_nbd_request *q, uint32_t *err)
{
	struct bci_nbd_wire_request w;

	*err = 0;
	if (__atomic_load_n(&c->closing, __ATOMIC_ACQUIRE))
		return 0;
	if (bci_nbd_read_full(c, &w, sizeof(w)) < 0 || be32toh(w.magic) != NBD_REQUEST_MAGIC)
		goto done; /* EOF, or cannot resynchronise: hard disconnect */
	q->flags = be16toh(w.flags);
	q->type = be16toh(w.type);
	q->cookie = w.cookie;
	q->offset = be64toh(w.offset);
	q->length = be32toh(w.length);
	if (q->type == NBD_CMD_DISC)
		goto done;
	*err = validate(c, q);
	return 1;
done:
	__atomic_store_n(&c->closing, true, __ATOMIC_RELEASE);
	return 0;
}

/* Read WRITE Q's payload into DST, or skip it if Q is refused (ERR):
 * a refused WRITE still carries its payload.  0 or -errno. */
static int read_payload(struct bci_nbd_conn *c, const struct bci_nbd_request *q, uint32_t err, uint8_t *dst)
{
	int r;

	if (err)
		return bci_nbd_discard(c, q->length);
	bci_nbd_busy_mark(&c->rx_busy_ns);
	r = bci_nbd_read_full(c, dst, q->length);
	bci_nbd_busy_clear(&c->rx_busy_ns);
	return r;
}

/* How many WRITEs a batch takes after the first: NBD_BATCH_MAX - 1, or
 * fewer so that all run in NBD_LAZY_MAX_NS at the average pace. */
static unsigned batch_room(const struct bci_nbd_conn *c)
{
	int64_t avg = __atomic_load_n(&c->small_run_ns, __ATOMIC_RELAXED);
	int64_t n = avg > 0 ? NBD_LAZY_MAX_NS / avg : NBD_BATCH_MAX;

	return n >= NBD_BATCH_MAX ? NBD_BATCH_MAX - 1 : n > 1 ? (unsigned)n - 1 : 0;
}

/* The tail of a batch: N WRITEs that wait whole, header and payload, in
 * the read-ahead after its next SKIP bytes, N = batch_room(): N, with
 * their payload bytes in *BYTES, or 0 if fewer wait.  Only the reader
 * calls it. */
static unsigned batch_tail(const struct bci_nbd_conn *c, size_t skip, size_t *bytes)
{
	struct bci_nbd_wire_request w;
	size_t pos = c->rpos + skip;
	unsigned n = 0, max = batch_room(c);

	*bytes = 0;
	if (skip > c->rlen - c->rpos)
		return 0;
	while (n < max && c->rlen - pos >= sizeof(w)) {
		uint32_t len;

		memcpy(&w, c->rbuf + pos, sizeof(w));
		len = be32toh(w.length);
		if (be32toh(w.magic) != NBD_REQUEST_MAGIC || be16toh(w.type) != NBD_CMD_WRITE ||
		    len > c->rlen - pos - sizeof(w))
			break;
		pos += sizeof(w) + len;
		*bytes += len;
		n++;
	}
	if (n < max)
		*bytes = n = 0;
	return n;
}

/* Read the next request (and a WRITE payload into ST); the caller holds
 * the reader role.  A small WRITE takes with it the tail of a batch, if
 * one waits whole behind it in the read-ahead (ST's tail).  Returns 1
 * with a request to run, 0 when the connection is done. */
static int read_request(struct bci_nbd_conn *c, struct serve_state *st, struct bci_nbd_request *q, uint32_t *err)
{
	size_t tail_bytes = 0;
	unsigned ntail = 0;
	uint8_t *p;

	st->ntail = 0;
	if (!read_header(c, q, err))
		return 0;
	if (!*err && q->type == NBD_CMD_WRITE && q->length < NBD_HANDOFF_MIN && c->rbuf)
		ntail = batch_tail(c, q->length, &tail_bytes);
	if (!*err && (q->type == NBD_CMD_READ || q->type == NBD_CMD_WRITE) && q->length + tail_bytes &&
	    !ensure_buf(c->srv, st, q->length + tail_bytes))
		*err = NBD_ENOMEM;
	c->streaming = q->type == NBD_CMD_WRITE && q->length >= NBD_HANDOFF_MIN;
	if (q->type != NBD_CMD_WRITE)
		return 1;
	if (read_payload(c, q, *err, st->buf) < 0)
		goto done; /* client vanished mid-write: nothing applied */
	if (*err || !ntail)
		return 1; /* (no buffer at all for a lone WRITE of length 0) */
	for (p = st->buf + q->length; st->ntail < ntail; st->ntail++) {
		struct bci_nbd_request *t = &st->tail[st->ntail];
		uint32_t *terr = &st->tail_err[st->ntail];

		if (!read_header(c, t, terr))
			break; /* closing: what we have still runs */
		if (read_payload(c, t, *terr, p) < 0)
			goto done;
		p += t->length;
	}
	return 1;
done:
	st->ntail = 0;
	__atomic_store_n(&c->closing, true, __ATOMIC_RELEASE);
	return 0;
}

/* A READ or WRITE that will run (no error yet). */
static bool is_data_io(const struct bci_nbd_request *q, uint32_t err)
{
	return !err && (q->type == NBD_CMD_READ || q->type == NBD_CMD_WRITE);
}

static bool is_small_io(const struct bci_nbd_request *q, uint32_t err)
{
	return is_data_io(q, err) && q->length < NBD_HANDOFF_MIN;
}

static bool is_big(const struct bci_nbd_request *q, uint32_t err)
{
	return is_data_io(q, err) && q->length >= NBD_HANDOFF_MIN;
}

/* Note that N small requests took the time since T0. */
static void note_small_run(struct bci_nbd_conn *c, const struct timespec *t0, unsigned n)
{
	/* Moving average over about 8 requests; races between threads only
	 * blur it. */
	int64_t avg = __atomic_load_n(&c->small_run_ns, __ATOMIC_RELAXED);

	__atomic_store_n(&c->small_run_ns, avg + (elapsed_ns(t0) / n - avg) / 8, __ATOMIC_RELAXED);
}

/* Run Q (no reply yet): its NBD error. */
static uint32_t run_only(struct bci_nbd_conn *c, const struct bci_nbd_request *q, uint32_t err, uint8_t *buf)
{
	if (!err && (q->length || q->type == NBD_CMD_FLUSH))
		err = execute(c, q, buf);
	return err;
}

static void run_request(struct bci_nbd_conn *c, const struct bci_nbd_request *q, uint32_t err, uint8_t *buf)
{
	struct timespec t0;
	bool timed = is_small_io(q, err);

	/* Nobody will read it: do not spend CPU and memory on a READ for a
	 * client that is gone (writes still run, as if it were there). */
	if (q->type == NBD_CMD_READ && __atomic_load_n(&c->dead, __ATOMIC_ACQUIRE))
		return;
	if (timed)
		clock_gettime(CLOCK_MONOTONIC, &t0);
	send_reply(c, q, run_only(c, q, err, buf), buf);
	if (timed)
		note_small_run(c, &t0, 1);
}

/* Run WRITE Q and the WRITEs of ST's tail, one after the other, and send
 * their replies in one write (each error reply on its own, once
 * structured replies are on: an ERROR chunk). */
static void run_batch(struct bci_nbd_conn *c, struct serve_state *st, const struct bci_nbd_request *q,
		      uint32_t err)
{
	struct bci_nbd_wire_simple_reply h[NBD_BATCH_MAX];
	struct iovec iov[NBD_BATCH_MAX];
	struct timespec t0;
	uint8_t *p = st->buf;
	int n = 0, r = 0;

	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (unsigned i = 0; i <= st->ntail; i++) {
		const struct bci_nbd_request *t = i ? &st->tail[i - 1] : q;
		uint32_t e = run_only(c, t, i ? st->tail_err[i - 1] : err, p);

		p += t->length;
		if (e && c->structured) {
			send_reply(c, t, e, NULL);
			continue;
		}
		h[n] = (struct bci_nbd_wire_simple_reply){ htobe32(NBD_SIMPLE_REPLY_MAGIC), htobe32(e), t->cookie };
		iov[n] = (struct iovec){ &h[n], sizeof(h[n]) };
		n++;
	}
	note_small_run(c, &t0, st->ntail + 1);
	st->ntail = 0;
	if (!n)
		return;
	pthread_mutex_lock(&c->write_lock);
	bci_nbd_busy_mark(&c->tx_busy_ns); /* (we hold the batch's buffer) */
	r = bci_nbd_writev_full(c, iov, n);
	bci_nbd_busy_clear(&c->tx_busy_ns);
	pthread_mutex_unlock(&c->write_lock);
	if (r < 0)
		conn_close(c, true); /* the client is gone or hostile */
}

/* May the reader keep its role while it runs small request Q (no thread
 * woken to read on)?  Only if nothing else has arrived and small requests
 * have been quick; see the threading model.  Called while the caller
 * still holds the role: the read-ahead is its alone. */
static bool keep_role(struct bci_nbd_conn *c, const struct bci_nbd_request *q, uint32_t err)
{
	int waiting_bytes = 0;

	if (!c->rbuf || !is_small_io(q, err) || c->rpos != c->rlen ||
	    __atomic_load_n(&c->small_run_ns, __ATOMIC_RELAXED) > NBD_LAZY_MAX_NS)
		return false;
	return ioctl(c->in_fd, FIONREAD, &waiting_bytes) == 0 && waiting_bytes == 0;
}

/* The reader role (taken under sched_lock): read requests, queueing big
 * ones for sleeping threads, until one is to be run by this thread
 * (returns 1 with it in Q) or the connection is done (0).  Either way the
 * role is given up. */
static int lead(struct bci_nbd_conn *c, struct serve_state *st, struct bci_nbd_request *q, uint32_t *err)
{
	for (;;) {
		int more = read_request(c, st, q, err);
		bool handed = false, wake, lazy = more && !st->ntail && keep_role(c, q, *err);

		/* Then we read on after replying, the next request's header and
		 * payload: poll first (read_streaming). */
		c->echo = lazy;

		pthread_mutex_lock(&c->sched_lock);
		if (more && is_big(q, *err) && c->npending < c->waiting) {
			struct bci_nbd_job *j = &c->pending[(c->pending_head + c->npending++) % NBD_MAX_CONN_THREADS];

			*j = (struct bci_nbd_job){ *q, *err, st->buf, st->buf_len };
			st->buf = NULL; /* the job owns it now */
			st->buf_len = 0;
			handed = wake = true;
		} else {
			c->reading = false;
			/* One of them reads on, unless we do after this one. */
			wake = c->waiting > c->npending && !lazy;
		}
		pthread_mutex_unlock(&c->sched_lock);
		/* Signalled after the unlock, so the thread woken need not wait
		 * for the lock: a sleeper checks the state under the lock before
		 * it sleeps, so it cannot miss this. */
		if (!more)
			pthread_cond_broadcast(&c->sched_wake); /* all of them: we are done */
		else if (wake)
			pthread_cond_signal(&c->sched_wake);
		if (!handed)
			return more;
	}
}

static void *serve_main(void *arg)
{
	struct bci_nbd_conn *c = arg;
	struct serve_state st = { 0 };
	struct bci_nbd_request q;
	uint32_t err;

	pthread_mutex_lock(&c->sched_lock);
	for (;;) {
		if (c->npending) {
			struct bci_nbd_job j = c->pending[c->pending_head];

			c->pending_head = (c->pending_head + 1) % NBD_MAX_CONN_THREADS;
			c->npending--;
			pthread_mutex_unlock(&c->sched_lock);
			run_request(c, &j.q, j.err, j.buf);
			bci_nbd_buf_put(c->srv, j.buf, j.buf_len); /* memory goes back with the reply */
		} else if (__atomic_load_n(&c->closing, __ATOMIC_ACQUIRE)) {
			break;
		} else if (!c->reading) {
			c->reading = true;
			pthread_mutex_unlock(&c->sched_lock);
			if (lead(c, &st, &q, &err)) {
				if (st.ntail)
					run_batch(c, &st, &q, err);
				else
					run_request(c, &q, err, st.buf);
			}
			/* Never sleep nor wait for the next request with a buffer:
			 * see the threading model. */
			bci_nbd_buf_put(c->srv, st.buf, st.buf_len);
			st.buf = NULL;
			st.buf_len = 0;
		} else {
			c->waiting++;
			pthread_cond_wait(&c->sched_wake, &c->sched_lock);
			c->waiting--;
			continue;
		}
		pthread_mutex_lock(&c->sched_lock);
	}
	pthread_cond_broadcast(&c->sched_wake); /* the others leave too */
	pthread_mutex_unlock(&c->sched_lock);
	bci_nbd_buf_put(c->srv, st.buf, st.buf_len);
	return NULL;
}

void bci_nbd_transmission(struct bci_nbd_conn *c)
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
	pthread_attr_setstacksize(&attr, NBD_THREAD_STACK);
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
