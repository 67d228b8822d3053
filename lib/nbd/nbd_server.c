/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * NBD server: listening sockets, the accept loop, connection lifetimes,
 * the buffer pool and its memory budget.
 *
 * Threading model: one accept thread polls the listening sockets and a stop
 * pipe; every accepted client gets its own detached connection thread
 * (handshake, then it and a few helpers serve requests, see nbd_conn.c).
 * The server lock protects the connection list.  The accept thread also
 * enforces the limits on connections: it wakes up at the earliest
 * handshake deadline and shuts down (never closes: the connection's
 * thread does that after unlinking it) every connection past its
 * deadline; beyond max_conns it shuts down the oldest connection still in
 * its handshake, or else closes the new one at once; out of descriptors
 * (EMFILE, ENFILE) it does the same and pauses (5 ms, or 100 ms when no
 * connection could be closed) instead of spinning.  When the last client
 * leaves, its thread wakes the accept thread through the stop pipe, which
 * then empties the buffer cache and calls malloc_trim() (a connection must
 * not touch the server once it is unlinked).
 * bc_nbd_server_stop() shuts down every client socket for reading, which
 * makes each connection finish its requests and return, then (after a
 * grace period) cuts off clients that do not read their replies, and
 * waits until the list is empty.
 *
 * Buffers come from a pool under buf_lock with one budget (mem_max) for
 * everything handed out or cached.  A thread that needs more than is left
 * waits on mem_freed (every return broadcasts while someone waits); as it
 * waits it cuts off, once a second, connections whose transfers stalled
 * (bci_nbd_cut_stalled, under the server lock), so clients that never read
 * their replies cannot hold the budget forever.  Lock order: the server
 * lock is never taken under buf_lock.
 */
#include <errno.h>
#include <fcntl.h>
#include <arpa/inet.h>
#include <malloc.h>
#include <netdb.h>
#include <netinet/in.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "core/error.h"
#include "core/unix_socket.h"
#include "nbd/nbd_internal.h"

#define STOP_GRACE_SECONDS 5
/* At most one log line per kind this often (bci_nbd_log_limited). */
#define LOG_INTERVAL_NS (10 * 1000000000LL)
/* Out of descriptors, the accept thread sleeps this long, or only
 * ACCEPT_EVICT_MS when it closed a connection (whose thread closes its
 * descriptor a moment later). */
#define ACCEPT_BACKOFF_MS 100
#define ACCEPT_EVICT_MS 5
/* The default connection cap stays this far below the descriptor limit,
 * for the backing, the control socket, logs, libraries. */
#define FD_RESERVE 64

int64_t bci_nbd_now_ns(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return t.tv_sec * 1000000000LL + t.tv_nsec;
}

void bci_nbd_log_limited(struct bc_nbd_server *s, enum nbd_log_kind kind, const char *fmt, ...)
{
	struct bci_nbd_ratelog *l = &s->logs[kind];
	int64_t now = bci_nbd_now_ns();
	unsigned suppressed;
	char msg[BC_ERROR_MAX];
	va_list ap;

	pthread_mutex_lock(&s->log_lock);
	if (l->last_ns && now - l->last_ns < LOG_INTERVAL_NS) {
		l->suppressed++;
		pthread_mutex_unlock(&s->log_lock);
		return;
	}
	l->last_ns = now;
	suppressed = l->suppressed;
	l->suppressed = 0;
	pthread_mutex_unlock(&s->log_lock);
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (suppressed)
		bci_log("nbd %s: %s (%u more like it not logged)", s->export_name, msg, suppressed);
	else
		bci_log("nbd %s: %s", s->export_name, msg);
}

/* The CPUs this process may run on (1 if that cannot be known): polling
 * a socket only pays when the peer can run meanwhile. */
static int usable_cpus(void)
{
	cpu_set_t set;

	return sched_getaffinity(0, sizeof(set), &set) == 0 ? CPU_COUNT(&set) : 1;
}

/* BC_NBD_DEFAULT_MAX_CONNECTIONS, or fewer if the descriptor limit is
 * low: the cap, not EMFILE, should be what stops a flood.  (A cap asked
 * for explicitly is taken as it is.) */
static unsigned default_max_conns(void)
{
	struct rlimit rl;
	unsigned n = BC_NBD_DEFAULT_MAX_CONNECTIONS;

	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY &&
	    rl.rlim_cur < (rlim_t)n + 2 * FD_RESERVE)
		n = rl.rlim_cur > 2 * FD_RESERVE ? (unsigned)(rl.rlim_cur - FD_RESERVE) : (unsigned)(rl.rlim_cur / 2);
	return n ? n : 1;
}

int bc_nbd_server_new(struct bc_volume *v, const struct bc_nbd_params *p,
		      struct bc_nbd_server **out)
{
	struct bc_volume_info info;
	struct bc_nbd_server *s;
	int r;

	*out = NULL;
	if (p->max_memory && p->max_memory < BC_NBD_MIN_MAX_MEMORY)
		return bci_error(-EINVAL, "nbd: the memory budget must be at least %llu MiB (one largest request)",
				BC_NBD_MIN_MAX_MEMORY >> 20);
	s = calloc(1, sizeof(*s));
	if (!s)
		return bci_error(-ENOMEM, "nbd: out of memory");
	s->stop_pipe[0] = s->stop_pipe[1] = -1;
	pthread_mutex_init(&s->lock, NULL);
	pthread_mutex_init(&s->buf_lock, NULL);
	pthread_mutex_init(&s->log_lock, NULL);
	pthread_cond_init(&s->conn_gone, NULL);
	pthread_cond_init(&s->mem_freed, NULL);
	s->volume = v;
	s->params = *p;
	s->max_conns = p->max_connections ? p->max_connections : default_max_conns();
	s->echo_poll_max = usable_cpus() - 1;
	s->handshake_ns = (int64_t)(p->handshake_timeout ? p->handshake_timeout
							 : BC_NBD_DEFAULT_HANDSHAKE_TIMEOUT) * 1000000000LL;
	s->mem_max = p->max_memory ? p->max_memory : BC_NBD_DEFAULT_MAX_MEMORY;
	s->cache_max = s->mem_max / NBD_BUF_CACHE_SHARE;
	s->export_name = strdup(p->export_name ? p->export_name : "");
	s->description = p->description ? strdup(p->description) : NULL;
	if (!s->export_name || (p->description && !s->description)) {
		bc_nbd_server_free(s);
		return bci_error(-ENOMEM, "nbd: out of memory");
	}
	bc_volume_get_info(v, &info);
	s->params.read_only = p->read_only || info.read_only;
	s->pref_block = info.sector_size > 4096 ? info.sector_size : 4096;
	s->hole_block = info.sector_size > 512 ? info.sector_size : 512;
	s->tx_flags = NBD_FLAG_HAS_FLAGS | NBD_FLAG_SEND_FLUSH | NBD_FLAG_SEND_FUA |
		      NBD_FLAG_SEND_WRITE_ZEROES | NBD_FLAG_SEND_CACHE | NBD_FLAG_CAN_MULTI_CONN;
	if (s->params.read_only)
		s->tx_flags |= NBD_FLAG_READ_ONLY;
	if (p->allow_discards && !s->params.read_only)
		s->tx_flags |= NBD_FLAG_SEND_TRIM;
	s->params.allow_discards = p->allow_discards && !s->params.read_only;
	/* Our copies of the parameters must not point into the caller's. */
	s->params.export_name = s->export_name;
	s->params.description = s->description;
	s->params.tls_certificates = s->params.tls_psk_file = NULL;
	r = bci_nbd_tls_server_new(p, &s->tls);
	if (r < 0) {
		bc_nbd_server_free(s);
		return r;
	}
	if (pipe2(s->stop_pipe, O_CLOEXEC | O_NONBLOCK) < 0) {
		r = bci_error(-errno, "nbd: pipe: %s", strerror(errno));
		bc_nbd_server_free(s);
		return r;
	}
	/* Replies to vanished clients must not kill the process. */
	signal(SIGPIPE, SIG_IGN);
	*out = s;
	return 0;
}

static unsigned buf_class(size_t len)
{
	unsigned c = 0;

	while (((size_t)4096 << c) < len)
		c++;
	return c;
}

/* Buffers are mapped and unmapped directly, not malloc()ed: the daemon
 * locks all its memory (mlockall), and malloc cannot give locked pages
 * back to the system (madvise(MADV_DONTNEED) fails on them), so freed
 * buffers would stay resident in its arenas for good; munmap() always
 * gives them back. */
static void buf_unmap(void *b, size_t size)
{
	munmap(b, size);
}

/* Free cached buffers (largest first) until SIZE more bytes fit in LIMIT,
 * or the cache is empty.  Under buf_lock. */
static void pool_shrink(struct bc_nbd_server *s, size_t size, size_t limit)
{
	for (unsigned c = NBD_BUF_CLASSES; c-- > 0 && s->mem_used + size > limit;) {
		while (s->buf_free[c] && s->mem_used + size > limit) {
			void *b = s->buf_free[c];

			s->buf_free[c] = *(void **)b;
			s->buf_cached -= (size_t)4096 << c;
			s->mem_used -= (size_t)4096 << c;
			/* Buffers held decrypted data and plaintext writes. */
			explicit_bzero(b, (size_t)4096 << c);
			buf_unmap(b, (size_t)4096 << c);
		}
	}
}

static bool smaller_waiting(const struct bc_nbd_server *s, unsigned c)
{
	for (unsigned i = 0; i < c; i++)
		if (s->mem_waiting[i])
			return true;
	return false;
}

static bool anyone_waiting(const struct bc_nbd_server *s)
{
	return smaller_waiting(s, NBD_BUF_CLASSES);
}

static void mem_release(struct bc_nbd_server *s, size_t size)
{
	pthread_mutex_lock(&s->buf_lock);
	s->mem_used -= size;
	if (anyone_waiting(s))
		pthread_cond_broadcast(&s->mem_freed);
	pthread_mutex_unlock(&s->buf_lock);
}

void *bci_nbd_buf_get(struct bc_nbd_server *s, size_t len)
{
	unsigned c = buf_class(len);
	size_t size = (size_t)4096 << c;
	void *b = NULL;

	if (c >= NBD_BUF_CLASSES)
		return NULL;
	pthread_mutex_lock(&s->buf_lock);
	for (;;) {
		struct timespec until;

		b = s->buf_free[c];
		if (b) { /* cached buffers are counted already */
			s->buf_free[c] = *(void **)b;
			s->buf_cached -= size;
			pthread_mutex_unlock(&s->buf_lock);
			return b;
		}
		/* Smaller requests go first: they finish soon and give back
		 * their memory, and one big request must not keep a dozen
		 * small ones (another client's, maybe) waiting. */
		if (!smaller_waiting(s, c)) {
			pool_shrink(s, size, s->mem_max);
			if (s->mem_used + size <= s->mem_max)
				break;
		}
		if (__atomic_load_n(&s->stopping, __ATOMIC_RELAXED)) {
			pthread_mutex_unlock(&s->buf_lock);
			return NULL;
		}
		/* Backpressure: this connection's reader waits here, so no
		 * more of its requests are read until memory comes back. */
		clock_gettime(CLOCK_REALTIME, &until);
		until.tv_sec += 1;
		s->mem_waiting[c]++;
		if (pthread_cond_timedwait(&s->mem_freed, &s->buf_lock, &until) == ETIMEDOUT) {
			pthread_mutex_unlock(&s->buf_lock);
			bci_nbd_cut_stalled(s);
			pthread_mutex_lock(&s->buf_lock);
		}
		s->mem_waiting[c]--;
	}
	s->mem_used += size;
	pthread_mutex_unlock(&s->buf_lock);
	b = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (b == MAP_FAILED) {
		mem_release(s, size);
		return NULL;
	}
	return b;
}

void bci_nbd_buf_put(struct bc_nbd_server *s, void *buf, size_t len)
{
	unsigned c = buf_class(len);
	size_t size = (size_t)4096 << c;

	if (!buf)
		return;
	pthread_mutex_lock(&s->buf_lock);
	if (s->buf_cached + size <= s->cache_max) {
		*(void **)buf = s->buf_free[c];
		s->buf_free[c] = buf;
		s->buf_cached += size;
		buf = NULL;
	} else {
		s->mem_used -= size;
	}
	if (anyone_waiting(s))
		pthread_cond_broadcast(&s->mem_freed);
	pthread_mutex_unlock(&s->buf_lock);
	if (buf)
		buf_unmap(buf, size);
}

/* Give the cached buffers and malloc's free memory back to the system
 * (the daemon locks all its memory: what stays mapped stays resident). */
static void pool_drop(struct bc_nbd_server *s)
{
	pthread_mutex_lock(&s->buf_lock);
	if (!anyone_waiting(s))
		pool_shrink(s, 0, 0);
	pthread_mutex_unlock(&s->buf_lock);
	malloc_trim(0);
}

static int add_listener(struct bc_nbd_server *s, int fd, const char *unix_path)
{
	if (s->nlisten == NBD_MAX_LISTEN) {
		close(fd);
		return bci_error(-EINVAL, "nbd: too many listening sockets");
	}
	s->listen_fds[s->nlisten] = fd;
	s->unix_paths[s->nlisten] = unix_path ? strdup(unix_path) : NULL;
	s->nlisten++;
	return 0;
}

int bc_nbd_server_listen_unix(struct bc_nbd_server *s, const char *path)
{
	/* As many waiting connections as the kernel allows: a burst of
	 * clients (a VM host starting dozens of guests) must not overflow it. */
	int fd = bc_unix_listen(path, SOMAXCONN, false, "nbd");

	if (fd < 0)
		return fd;
	return add_listener(s, fd, path);
}

static bool addr_loopback(const struct sockaddr *sa)
{
	if (sa->sa_family == AF_INET)
		return (ntohl(((const struct sockaddr_in *)sa)->sin_addr.s_addr) >> 24) == 127;
	if (sa->sa_family == AF_INET6) {
		const struct in6_addr *a = &((const struct sockaddr_in6 *)sa)->sin6_addr;

		return IN6_IS_ADDR_LOOPBACK(a) || (IN6_IS_ADDR_V4MAPPED(a) && a->s6_addr[12] == 127);
	}
	return false;
}

/* 1 if every address of RES is loopback (and there is one), else 0. */
static int all_loopback(const struct addrinfo *res)
{
	for (const struct addrinfo *ai = res; ai; ai = ai->ai_next)
		if (!addr_loopback(ai->ai_addr))
			return 0;
	return res != NULL;
}

static int resolve(const char *host, const char *port, struct addrinfo **res)
{
	struct addrinfo hints = { .ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM,
				  .ai_flags = AI_PASSIVE | AI_NUMERICSERV };
	int r = getaddrinfo(host && *host ? host : NULL, port, &hints, res);

	if (r)
		return bci_error(-EINVAL, "nbd: %s:%s: %s", host && *host ? host : "*", port,
				r == EAI_SYSTEM ? strerror(errno) : gai_strerror(r));
	return 0;
}

int bc_nbd_tcp_loopback(const char *host, const char *port)
{
	struct addrinfo *res = NULL;
	int r = resolve(host, port, &res);

	if (r < 0)
		return r;
	r = all_loopback(res);
	freeaddrinfo(res);
	return r;
}

int bc_nbd_server_listen_tcp(struct bc_nbd_server *s, const char *host, const char *port)
{
	struct addrinfo *res = NULL, *ai;
	int r, n = 0, last_errno = 0;

	r = resolve(host, port, &res);
	if (r < 0)
		return r;
	/* Checked on the very addresses bound: a name may resolve otherwise
	 * now than when the caller checked it. */
	if (s->params.loopback_only && !all_loopback(res)) {
		freeaddrinfo(res);
		return bci_error(-EINVAL, "nbd: %s:%s: resolves to an address that is not loopback: "
				"plaintext export refused", host && *host ? host : "*", port);
	}
	for (ai = res; ai; ai = ai->ai_next) {
		int one = 1;
		int fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC, ai->ai_protocol);

		if (fd < 0)
			continue;
		setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
		if (ai->ai_family == AF_INET6)
			setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one));
		if (bind(fd, ai->ai_addr, ai->ai_addrlen) < 0 || listen(fd, SOMAXCONN) < 0) {
			last_errno = errno;
			close(fd);
			continue;
		}
		if (add_listener(s, fd, NULL) == 0)
			n++;
	}
	freeaddrinfo(res);
	if (!n)
		return bci_error(last_errno == EADDRINUSE ? -EBUSY : -(last_errno ? last_errno : EINVAL),
				"nbd: cannot listen on %s:%s: %s", host ? host : "*", port,
				strerror(last_errno ? last_errno : EINVAL));
	return 0;
}

/* A Unix stream socket moves at most the sender's SO_SNDBUF (208 KiB by
 * default) before the sender must wait for the reader: a 1 MiB READ reply
 * then takes five sleep/wake-up round trips.  A larger send buffer lets a
 * reply go out in one.  (Kernel memory, charged only while data waits;
 * SO_SNDBUFFORCE needs CAP_NET_ADMIN, otherwise wmem_max caps it.  TCP is
 * left to its own autotuning, which a fixed SO_SNDBUF would switch off.) */
#define NBD_UNIX_SNDBUF (4 << 20)
static void unix_conn_tune(int fd)
{
	int v = NBD_UNIX_SNDBUF;

	if (setsockopt(fd, SOL_SOCKET, SO_SNDBUFFORCE, &v, sizeof(v)) < 0)
		setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &v, sizeof(v));
}

static void conn_unlink(struct bci_nbd_conn *c)
{
	struct bc_nbd_server *s = c->srv;

	pthread_mutex_lock(&s->lock);
	if (c->prev)
		c->prev->next = c->next;
	else
		s->conns = c->next;
	if (c->next)
		c->next->prev = c->prev;
	s->nconns--;
	if (!c->cut)
		s->nlive--;
	if (!c->in_handshake)
		s->nserving--;
	/* The last client left: the accept thread gives memory back (we must
	 * not touch the server after unlinking; the pipe is open while we hold
	 * the lock and the server is not stopping). */
	if (!s->nconns && !s->stopping)
		(void)!write(s->stop_pipe[1], "t", 1);
	pthread_cond_broadcast(&s->conn_gone);
	pthread_mutex_unlock(&s->lock);
}

/* Shut C down for good (it no longer counts against max_conns); its own
 * thread notices, unlinks and closes it.  Under the server lock. */
static void conn_cut_locked(struct bci_nbd_conn *c)
{
	if (c->cut)
		return;
	c->cut = true;
	c->srv->nlive--;
	shutdown(c->in_fd, SHUT_RDWR);
}

/* The handshake is over: from now on the deadline does not apply.  False
 * if the connection was cut meanwhile. */
static bool conn_handshake_done(struct bci_nbd_conn *c)
{
	struct bc_nbd_server *s = c->srv;
	bool ok;

	pthread_mutex_lock(&s->lock);
	if (c->in_handshake) { /* (never, for bc_nbd_server_serve_fds) */
		c->in_handshake = false;
		s->nserving++;
	}
	ok = !c->cut;
	pthread_mutex_unlock(&s->lock);
	return ok;
}

static void conn_run(struct bci_nbd_conn *c)
{
	if (bci_nbd_handshake(c) == 1 && conn_handshake_done(c))
		bci_nbd_transmission(c);
}

void bci_nbd_cut_stalled(struct bc_nbd_server *s)
{
	int64_t now = bci_nbd_now_ns(), limit = NBD_STALL_CUTOFF_SECONDS * 1000000000LL;
	unsigned n = 0;

	pthread_mutex_lock(&s->lock);
	for (struct bci_nbd_conn *c = s->conns; c; c = c->next) {
		int64_t tx = __atomic_load_n(&c->tx_busy_ns, __ATOMIC_RELAXED);
		int64_t rx = __atomic_load_n(&c->rx_busy_ns, __ATOMIC_RELAXED);

		if (!c->cut && ((tx && now - tx >= limit) || (rx && now - rx >= limit))) {
			conn_cut_locked(c);
			n++;
		}
	}
	pthread_mutex_unlock(&s->lock);
	if (n)
		bci_nbd_log_limited(s, NBD_LOG_STALL, "out of memory budget (%zu MiB): disconnected %u client%s "
				"that took no reply data (or sent no payload) for %d s",
				s->mem_max >> 20, n, n == 1 ? "" : "s", NBD_STALL_CUTOFF_SECONDS);
}

static void conn_free(struct bci_nbd_conn *c)
{
	bci_nbd_tls_end(c);
	pthread_mutex_destroy(&c->sched_lock);
	pthread_cond_destroy(&c->sched_wake);
	pthread_mutex_destroy(&c->write_lock);
	free(c);
}

static struct bci_nbd_conn *conn_new(struct bc_nbd_server *s, int in_fd, int out_fd)
{
	struct bci_nbd_conn *c = calloc(1, sizeof(*c));
	pthread_mutexattr_t ma;
	struct stat st;

	if (!c)
		return NULL;
	c->srv = s;
	c->in_fd = in_fd;
	c->out_fd = out_fd;
	c->out_is_socket = fstat(out_fd, &st) == 0 && S_ISSOCK(st.st_mode);
	c->can_poll = fstat(in_fd, &st) == 0 && S_ISSOCK(st.st_mode) && s->echo_poll_max > 0;
	c->handshake_deadline = bci_nbd_now_ns() + s->handshake_ns;
	/* Both locks are held for a few instructions or one send: spinning a
	 * little before sleeping spares most contended takers a futex sleep
	 * and wake-up, tens of microseconds on a VM. */
	pthread_mutexattr_init(&ma);
	pthread_mutexattr_settype(&ma, PTHREAD_MUTEX_ADAPTIVE_NP);
	pthread_mutex_init(&c->sched_lock, &ma);
	pthread_mutex_init(&c->write_lock, &ma);
	pthread_mutexattr_destroy(&ma);
	pthread_cond_init(&c->sched_wake, NULL);
	return c;
}

/* Register C; fails when the server is stopping. */
static int conn_link(struct bci_nbd_conn *c)
{
	struct bc_nbd_server *s = c->srv;
	int r = 0;

	pthread_mutex_lock(&s->lock);
	if (s->stopping) {
		r = -ESHUTDOWN;
	} else {
		c->next = s->conns;
		if (s->conns)
			s->conns->prev = c;
		s->conns = c;
		s->nconns++;
		s->nlive++;
		if (!c->in_handshake)
			s->nserving++; /* bc_nbd_server_serve_fds */
	}
	pthread_mutex_unlock(&s->lock);
	return r;
}

static void *conn_thread(void *arg)
{
	struct bci_nbd_conn *c = arg;

	conn_run(c);
	/* Unlink before closing so bc_nbd_server_stop() never shuts down a
	 * descriptor number that has been reused. */
	conn_unlink(c);
	close(c->in_fd);
	conn_free(c);
	return NULL;
}

/* Shut down every connection past its handshake deadline; returns the
 * milliseconds until the next deadline (-1: none). */
static int expire_handshakes(struct bc_nbd_server *s)
{
	int64_t now = bci_nbd_now_ns(), next = INT64_MAX;
	unsigned n = 0;

	pthread_mutex_lock(&s->lock);
	for (struct bci_nbd_conn *c = s->conns; c; c = c->next) {
		if (!c->in_handshake || c->cut)
			continue;
		if (c->handshake_deadline <= now) {
			conn_cut_locked(c);
			n++;
		} else if (c->handshake_deadline < next) {
			next = c->handshake_deadline;
		}
	}
	pthread_mutex_unlock(&s->lock);
	if (n)
		bci_nbd_log_limited(s, NBD_LOG_HANDSHAKE, "closed %u connection%s that did not finish the handshake within %lld s",
				n, n == 1 ? "" : "s", (long long)(s->handshake_ns / 1000000000LL));
	return next == INT64_MAX ? -1 : (int)((next - now) / 1000000 + 1);
}

/* Room for one more connection (FULL: the connection cap, else the
 * descriptor limit): shut down the oldest connection still in its
 * handshake, which has had the longest to finish it, so a flood of idle
 * connections cannot lock out clients that complete it.  Returns false if
 * every connection is past its handshake. */
static bool evict_oldest_handshake(struct bc_nbd_server *s)
{
	struct bci_nbd_conn *oldest = NULL;

	pthread_mutex_lock(&s->lock);
	for (struct bci_nbd_conn *c = s->conns; c; c = c->next) /* newest first */
		if (c->in_handshake && !c->cut)
			oldest = c;
	if (oldest)
		conn_cut_locked(oldest);
	pthread_mutex_unlock(&s->lock);
	return oldest != NULL;
}

static bool at_capacity(struct bc_nbd_server *s)
{
	bool full;

	pthread_mutex_lock(&s->lock);
	full = s->nlive >= s->max_conns;
	pthread_mutex_unlock(&s->lock);
	return full;
}

static void accept_one(struct bc_nbd_server *s, unsigned i, int *backoff_ms)
{
	pthread_attr_t attr;
	pthread_t t;
	struct bci_nbd_conn *c;
	int fd = accept4(s->listen_fds[i], NULL, NULL, SOCK_CLOEXEC);

	if (fd < 0) {
		if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM) {
			/* The connection stays queued: without a pause, poll()
			 * would report it again at once, forever. */
			bool evicted = evict_oldest_handshake(s);

			int ms = evicted ? ACCEPT_EVICT_MS : ACCEPT_BACKOFF_MS;

			bci_nbd_log_limited(s, NBD_LOG_ACCEPT, "accept: %s (%s); pausing %d ms", strerror(errno),
					evicted ? "closed the oldest connection still in its handshake"
						: "no connection in its handshake to close", ms);
			if (ms > *backoff_ms)
				*backoff_ms = ms;
		}
		return;
	}
	if (at_capacity(s)) {
		bool evicted = evict_oldest_handshake(s);

		bci_nbd_log_limited(s, NBD_LOG_CAP, "%u connections (--max-connections): %s", s->max_conns,
				evicted ? "closed the oldest one still in its handshake" : "refused a new one");
		if (!evicted) {
			close(fd);
			return;
		}
	}
	if (s->unix_paths[i])
		unix_conn_tune(fd);
	c = conn_new(s, fd, fd);
	if (c)
		c->in_handshake = true;
	if (!c || conn_link(c) < 0) {
		if (c)
			conn_free(c);
		close(fd);
		return;
	}
	pthread_attr_init(&attr);
	pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
	pthread_attr_setstacksize(&attr, NBD_THREAD_STACK);
	if (pthread_create(&t, &attr, conn_thread, c) != 0) {
		conn_unlink(c);
		conn_free(c);
		close(fd);
	}
	pthread_attr_destroy(&attr);
}

static void *accept_main(void *arg)
{
	struct bc_nbd_server *s = arg;
	struct pollfd pfd[NBD_MAX_LISTEN + 1];

	for (unsigned i = 0; i < s->nlisten; i++)
		pfd[i] = (struct pollfd){ .fd = s->listen_fds[i], .events = POLLIN };
	pfd[s->nlisten] = (struct pollfd){ .fd = s->stop_pipe[0], .events = POLLIN };
	for (;;) {
		int backoff_ms = 0;
		int timeout = expire_handshakes(s);

		if (poll(pfd, s->nlisten + 1, timeout) < 0) {
			if (errno == EINTR)
				continue;
			break;
		}
		if (pfd[s->nlisten].revents) {
			char b[64];

			if (__atomic_load_n(&s->accept_stop, __ATOMIC_ACQUIRE))
				break;
			(void)!read(s->stop_pipe[0], b, sizeof(b));
			pool_drop(s); /* the last client left */
			continue;
		}
		for (unsigned i = 0; i < s->nlisten; i++)
			if (pfd[i].revents & POLLIN)
				accept_one(s, i, &backoff_ms);
		/* Sleep, but wake for the stop pipe. */
		if (backoff_ms) {
			poll(&pfd[s->nlisten], 1, backoff_ms);
			if (__atomic_load_n(&s->accept_stop, __ATOMIC_ACQUIRE))
				break;
		}
	}
	return NULL;
}

int bc_nbd_server_start(struct bc_nbd_server *s)
{
	if (!s->nlisten)
		return bci_error(-EINVAL, "nbd: nothing to listen on");
	if (pthread_create(&s->accept_thread, NULL, accept_main, s) != 0)
		return bci_error(-EAGAIN, "nbd: cannot start the accept thread");
	s->accepting = true;
	return 0;
}

int bc_nbd_server_serve_fds(struct bc_nbd_server *s, int in_fd, int out_fd)
{
	struct bci_nbd_conn *c = conn_new(s, in_fd, out_fd);
	int r;

	if (!c)
		return bci_error(-ENOMEM, "nbd: out of memory");
	r = conn_link(c);
	if (r == 0) {
		conn_run(c);
		conn_unlink(c);
	}
	conn_free(c);
	return r;
}

unsigned bc_nbd_server_clients(struct bc_nbd_server *s)
{
	unsigned n;

	pthread_mutex_lock(&s->lock);
	n = s->nserving; /* a connection still in its handshake uses nothing yet */
	pthread_mutex_unlock(&s->lock);
	return n;
}

void bc_nbd_server_stop(struct bc_nbd_server *s)
{
	if (s->accepting) {
		__atomic_store_n(&s->accept_stop, true, __ATOMIC_RELEASE);
		(void)!write(s->stop_pipe[1], "x", 1);
		pthread_join(s->accept_thread, NULL);
		s->accepting = false;
	}
	pthread_mutex_lock(&s->lock);
	__atomic_store_n(&s->stopping, true, __ATOMIC_RELAXED); /* bci_nbd_buf_get reads it unlocked */
	/* Threads waiting for memory give up (their connections stop)... */
	pthread_mutex_lock(&s->buf_lock);
	pthread_cond_broadcast(&s->mem_freed);
	pthread_mutex_unlock(&s->buf_lock);
	/* ...readers stop; replies in flight still go out... */
	for (struct bci_nbd_conn *c = s->conns; c; c = c->next)
		shutdown(c->in_fd, SHUT_RD);
	if (s->nconns) {
		struct timespec deadline;

		clock_gettime(CLOCK_REALTIME, &deadline);
		deadline.tv_sec += STOP_GRACE_SECONDS;
		while (s->nconns && pthread_cond_timedwait(&s->conn_gone, &s->lock, &deadline) == 0)
			;
	}
	/* ...unless a client does not read them: then cut it off. */
	for (struct bci_nbd_conn *c = s->conns; c; c = c->next)
		shutdown(c->in_fd, SHUT_RDWR);
	while (s->nconns)
		pthread_cond_wait(&s->conn_gone, &s->lock);
	pthread_mutex_unlock(&s->lock);
}

void bc_nbd_server_free(struct bc_nbd_server *s)
{
	if (!s)
		return;
	bc_nbd_server_stop(s);
	for (unsigned i = 0; i < s->nlisten; i++) {
		close(s->listen_fds[i]);
		if (s->unix_paths[i])
			unlink(s->unix_paths[i]);
		free(s->unix_paths[i]);
	}
	if (s->stop_pipe[0] >= 0) {
		close(s->stop_pipe[0]);
		close(s->stop_pipe[1]);
	}
	for (unsigned c = 0; c < NBD_BUF_CLASSES; c++) {
		while (s->buf_free[c]) {
			void *b = s->buf_free[c];

			s->buf_free[c] = *(void **)b;
			/* Buffers held decrypted data and plaintext writes. */
			explicit_bzero(b, (size_t)4096 << c);
			buf_unmap(b, (size_t)4096 << c);
		}
	}
	bci_nbd_tls_server_free(s->tls);
	pthread_mutex_destroy(&s->buf_lock);
	pthread_mutex_destroy(&s->log_lock);
	pthread_cond_destroy(&s->mem_freed);
	pthread_mutex_destroy(&s->lock);
	pthread_cond_destroy(&s->conn_gone);
	free(s->export_name);
	free(s->description);
	free(s);
}
