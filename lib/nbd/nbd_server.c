/*
 * NBD server: listening sockets, the accept loop and connection lifetimes.
 *
 * Threading model: one accept thread polls the listening sockets and a stop
 * pipe; every accepted client gets its own detached connection thread
 * (handshake, then it and a few helpers serve requests, see nbd_conn.c).
 * The server lock protects the connection list; bc_nbd_server_stop()
 * shuts down every client socket for reading, which makes each connection
 * finish its requests and return, then (after a grace period) cuts off
 * clients that do not read their replies, and waits until the list is
 * empty.
 */
#include <errno.h>
#include <fcntl.h>
#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "core/error.h"
#include "core/unix_socket.h"
#include "nbd/nbd_internal.h"

#define STOP_GRACE_SECONDS 5

int bc_nbd_server_new(struct bc_volume *v, const struct bc_nbd_params *p,
		      struct bc_nbd_server **out)
{
	struct bc_volume_info info;
	struct bc_nbd_server *s;
	int r;

	*out = NULL;
	s = calloc(1, sizeof(*s));
	if (!s)
		return bc_error(-ENOMEM, "nbd: out of memory");
	s->stop_pipe[0] = s->stop_pipe[1] = -1;
	pthread_mutex_init(&s->lock, NULL);
	pthread_mutex_init(&s->buf_lock, NULL);
	pthread_cond_init(&s->conn_gone, NULL);
	s->volume = v;
	s->params = *p;
	s->export_name = strdup(p->export_name ? p->export_name : "");
	s->description = p->description ? strdup(p->description) : NULL;
	if (!s->export_name || (p->description && !s->description)) {
		bc_nbd_server_free(s);
		return bc_error(-ENOMEM, "nbd: out of memory");
	}
	bc_volume_get_info(v, &info);
	s->params.read_only = p->read_only || info.read_only;
	s->pref_block = info.sector_size > 4096 ? info.sector_size : 4096;
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
	r = nbd_tls_server_new(p, &s->tls);
	if (r < 0) {
		bc_nbd_server_free(s);
		return r;
	}
	if (pipe2(s->stop_pipe, O_CLOEXEC) < 0) {
		r = bc_error(-errno, "nbd: pipe: %s", strerror(errno));
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

void *nbd_buf_get(struct bc_nbd_server *s, size_t len)
{
	unsigned c = buf_class(len);
	void *b = NULL;

	if (c >= NBD_BUF_CLASSES)
		return NULL;
	pthread_mutex_lock(&s->buf_lock);
	b = s->buf_free[c];
	if (b) {
		s->buf_free[c] = *(void **)b;
		s->buf_cached -= (size_t)4096 << c;
	}
	pthread_mutex_unlock(&s->buf_lock);
	return b ? b : aligned_alloc(4096, (size_t)4096 << c);
}

void nbd_buf_put(struct bc_nbd_server *s, void *buf, size_t len)
{
	unsigned c = buf_class(len);
	size_t size = (size_t)4096 << c;

	if (!buf)
		return;
	pthread_mutex_lock(&s->buf_lock);
	if (s->buf_cached + size <= NBD_BUF_CACHE_MAX) {
		*(void **)buf = s->buf_free[c];
		s->buf_free[c] = buf;
		s->buf_cached += size;
		buf = NULL;
	}
	pthread_mutex_unlock(&s->buf_lock);
	free(buf);
}

static int add_listener(struct bc_nbd_server *s, int fd, const char *unix_path)
{
	if (s->nlisten == NBD_MAX_LISTEN) {
		close(fd);
		return bc_error(-EINVAL, "nbd: too many listening sockets");
	}
	s->listen_fds[s->nlisten] = fd;
	s->unix_paths[s->nlisten] = unix_path ? strdup(unix_path) : NULL;
	s->nlisten++;
	return 0;
}

int bc_nbd_server_listen_unix(struct bc_nbd_server *s, const char *path)
{
	int fd = bc_unix_listen(path, 64, false, "nbd");

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
		return bc_error(-EINVAL, "nbd: %s:%s: %s", host && *host ? host : "*", port,
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
		return bc_error(-EINVAL, "nbd: %s:%s: resolves to an address that is not loopback: "
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
		if (bind(fd, ai->ai_addr, ai->ai_addrlen) < 0 || listen(fd, 64) < 0) {
			last_errno = errno;
			close(fd);
			continue;
		}
		if (add_listener(s, fd, NULL) == 0)
			n++;
	}
	freeaddrinfo(res);
	if (!n)
		return bc_error(last_errno == EADDRINUSE ? -EBUSY : -(last_errno ? last_errno : EINVAL),
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

static void conn_unlink(struct nbd_conn *c)
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
	pthread_cond_broadcast(&s->conn_gone);
	pthread_mutex_unlock(&s->lock);
}

static void conn_run(struct nbd_conn *c)
{
	if (nbd_handshake(c) == 1)
		nbd_transmission(c);
}

static void conn_free(struct nbd_conn *c)
{
	nbd_tls_end(c);
	pthread_mutex_destroy(&c->sched_lock);
	pthread_cond_destroy(&c->sched_wake);
	pthread_mutex_destroy(&c->write_lock);
	free(c);
}

/* Polling a socket only pays when the peer can run meanwhile. */
static bool more_than_one_cpu(void)
{
	cpu_set_t set;

	return sched_getaffinity(0, sizeof(set), &set) == 0 && CPU_COUNT(&set) > 1;
}

static struct nbd_conn *conn_new(struct bc_nbd_server *s, int in_fd, int out_fd)
{
	struct nbd_conn *c = calloc(1, sizeof(*c));
	struct stat st;

	if (!c)
		return NULL;
	c->srv = s;
	c->in_fd = in_fd;
	c->out_fd = out_fd;
	c->out_is_socket = fstat(out_fd, &st) == 0 && S_ISSOCK(st.st_mode);
	c->can_poll = fstat(in_fd, &st) == 0 && S_ISSOCK(st.st_mode) && more_than_one_cpu();
	pthread_mutex_init(&c->sched_lock, NULL);
	pthread_cond_init(&c->sched_wake, NULL);
	pthread_mutex_init(&c->write_lock, NULL);
	return c;
}

/* Register C; fails when the server is stopping. */
static int conn_link(struct nbd_conn *c)
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
	}
	pthread_mutex_unlock(&s->lock);
	return r;
}

static void *conn_thread(void *arg)
{
	struct nbd_conn *c = arg;

	conn_run(c);
	/* Unlink before closing so bc_nbd_server_stop() never shuts down a
	 * descriptor number that has been reused. */
	conn_unlink(c);
	close(c->in_fd);
	conn_free(c);
	return NULL;
}

static void *accept_main(void *arg)
{
	struct bc_nbd_server *s = arg;
	struct pollfd pfd[NBD_MAX_LISTEN + 1];

	for (unsigned i = 0; i < s->nlisten; i++)
		pfd[i] = (struct pollfd){ .fd = s->listen_fds[i], .events = POLLIN };
	pfd[s->nlisten] = (struct pollfd){ .fd = s->stop_pipe[0], .events = POLLIN };
	for (;;) {
		if (poll(pfd, s->nlisten + 1, -1) < 0) {
			if (errno == EINTR)
				continue;
			break;
		}
		if (pfd[s->nlisten].revents)
			break;
		for (unsigned i = 0; i < s->nlisten; i++) {
			pthread_attr_t attr;
			pthread_t t;
			struct nbd_conn *c;
			int fd;

			if (!(pfd[i].revents & POLLIN))
				continue;
			fd = accept4(s->listen_fds[i], NULL, NULL, SOCK_CLOEXEC);
			if (fd < 0)
				continue;
			if (s->unix_paths[i])
				unix_conn_tune(fd);
			c = conn_new(s, fd, fd);
			if (!c || conn_link(c) < 0) {
				if (c)
					conn_free(c);
				close(fd);
				continue;
			}
			pthread_attr_init(&attr);
			pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
			pthread_attr_setstacksize(&attr, 256 << 10);
			if (pthread_create(&t, &attr, conn_thread, c) != 0) {
				conn_unlink(c);
				conn_free(c);
				close(fd);
			}
			pthread_attr_destroy(&attr);
		}
	}
	return NULL;
}

int bc_nbd_server_start(struct bc_nbd_server *s)
{
	if (!s->nlisten)
		return bc_error(-EINVAL, "nbd: nothing to listen on");
	if (pthread_create(&s->accept_thread, NULL, accept_main, s) != 0)
		return bc_error(-EAGAIN, "nbd: cannot start the accept thread");
	s->accepting = true;
	return 0;
}

int bc_nbd_server_serve_fds(struct bc_nbd_server *s, int in_fd, int out_fd)
{
	struct nbd_conn *c = conn_new(s, in_fd, out_fd);
	int r;

	if (!c)
		return bc_error(-ENOMEM, "nbd: out of memory");
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
	n = s->nconns;
	pthread_mutex_unlock(&s->lock);
	return n;
}

void bc_nbd_server_stop(struct bc_nbd_server *s)
{
	if (s->accepting) {
		(void)!write(s->stop_pipe[1], "x", 1);
		pthread_join(s->accept_thread, NULL);
		s->accepting = false;
	}
	pthread_mutex_lock(&s->lock);
	s->stopping = true;
	/* Readers stop; replies in flight still go out... */
	for (struct nbd_conn *c = s->conns; c; c = c->next)
		shutdown(c->in_fd, SHUT_RD);
	if (s->nconns) {
		struct timespec deadline;

		clock_gettime(CLOCK_REALTIME, &deadline);
		deadline.tv_sec += STOP_GRACE_SECONDS;
		while (s->nconns && pthread_cond_timedwait(&s->conn_gone, &s->lock, &deadline) == 0)
			;
	}
	/* ...unless a client does not read them: then cut it off. */
	for (struct nbd_conn *c = s->conns; c; c = c->next)
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
			free(b);
		}
	}
	nbd_tls_server_free(s->tls);
	pthread_mutex_destroy(&s->buf_lock);
	pthread_mutex_destroy(&s->lock);
	pthread_cond_destroy(&s->conn_gone);
	free(s->export_name);
	free(s->description);
	free(s);
}
