/* SPDX-License-Identifier: GPL-2.0-or-later */
/* NBD frontend: the library's NBD server on a Unix socket or TCP.  Its
 * state is the server itself. */
#include <stdio.h>
#include <string.h>

#include "daemon.h"

static bool nbd_wanted(const struct daemon *d)
{
	(void)d;
	return true; /* always served: the socket is how clients reach us */
}

static int nbd_start(struct daemon *d, void **state)
{
	const struct attach_config *c = &d->cfg;
	struct bc_nbd_params p = {
		.export_name = d->name, .description = d->name, .read_only = c->read_only,
		.allow_discards = c->allow_discards, .threads = c->threads,
		.tls_certificates = c->tls_certificates, .tls_psk_file = c->tls_psk,
		.tls_verify_peer = c->tls_verify_peer, .loopback_only = d->loopback_only,
		.max_connections = c->max_connections, .handshake_timeout = c->handshake_timeout,
		.max_memory = c->max_memory,
	};
	struct bc_nbd_server *nbd = NULL;
	int r = bc_nbd_server_new(d->volume, &p, &nbd);

	*state = nbd;
	if (r < 0)
		return r;
	if (d->socket_path[0])
		r = bc_nbd_server_listen_unix(nbd, d->socket_path);
	else
		r = bc_nbd_server_listen_tcp(nbd, d->listen_host, d->listen_port);
	if (r == 0)
		r = bc_nbd_server_start(nbd);
	return r;
}

static unsigned nbd_users(void *state)
{
	return state ? bc_nbd_server_clients(state) : 0;
}

static const char *nbd_busy(void *state, char *buf, size_t size)
{
	/* A connected client (a mounted nbd device, a VM) would lose its disk:
	 * detach refuses unless forced.  Their requests in flight would still
	 * finish before a forced disconnect. */
	unsigned n = nbd_users(state);

	if (!n)
		return NULL;
	snprintf(buf, size, "%u NBD client%s connected", n, n == 1 ? "" : "s");
	return buf;
}

static bool nbd_stop(void *state)
{
	bc_nbd_server_free(state);
	return true;
}

const struct frontend_ops frontend_nbd = {
	.name = "nbd", .wanted = nbd_wanted, .start = nbd_start, .users = nbd_users,
	.busy = nbd_busy, .stop = nbd_stop,
};
