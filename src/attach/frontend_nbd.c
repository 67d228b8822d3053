/* NBD frontend: the library's NBD server on a Unix socket or TCP. */
#include <stdio.h>
#include <string.h>

#include "daemon.h"

static bool nbd_wanted(const struct daemon *d)
{
	(void)d;
	return true; /* always served: the socket is how clients reach us */
}

static int nbd_start(struct daemon *d)
{
	struct bc_nbd_params p = {
		.export_name = d->name, .description = d->backing, .read_only = d->read_only,
		.allow_discards = d->allow_discards, .threads = d->threads,
		.tls_certificates = d->tls_certificates[0] ? d->tls_certificates : NULL,
		.tls_psk_file = d->tls_psk[0] ? d->tls_psk : NULL,
		.tls_verify_peer = d->tls_verify_peer, .loopback_only = d->loopback_only,
		.max_connections = d->max_connections, .handshake_timeout = d->handshake_timeout,
		.max_memory = d->max_memory,
	};
	int r = bc_nbd_server_new(d->volume, &p, &d->nbd);

	if (r < 0)
		return r;
	if (d->socket_path[0])
		r = bc_nbd_server_listen_unix(d->nbd, d->socket_path);
	else
		r = bc_nbd_server_listen_tcp(d->nbd, d->listen_host, d->listen_port);
	if (r == 0)
		r = bc_nbd_server_start(d->nbd);
	return r;
}

static unsigned nbd_users(struct daemon *d)
{
	return d->nbd ? bc_nbd_server_clients(d->nbd) : 0;
}

static const char *nbd_busy(struct daemon *d, char *buf, size_t size)
{
	/* A connected client (a mounted nbd device, a VM) would lose its disk:
	 * detach refuses unless forced.  Their requests in flight would still
	 * finish before a forced disconnect. */
	unsigned n = nbd_users(d);

	if (!n)
		return NULL;
	snprintf(buf, size, "%u NBD client%s connected", n, n == 1 ? "" : "s");
	return buf;
}

static void nbd_stop(struct daemon *d)
{
	bc_nbd_server_free(d->nbd);
	d->nbd = NULL;
}

const struct frontend_ops frontend_nbd = {
	.name = "nbd", .wanted = nbd_wanted, .start = nbd_start, .users = nbd_users,
	.busy = nbd_busy, .stop = nbd_stop,
};
