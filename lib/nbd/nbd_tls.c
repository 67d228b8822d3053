/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * TLS for NBD connections (NBD_OPT_STARTTLS), with GnuTLS.
 *
 * Credentials are loaded once per server: X.509 from a directory laid out
 * as nbdkit and qemu-nbd expect (server-cert.pem, server-key.pem and, to
 * verify client certificates, ca-cert.pem), or pre-shared keys from a
 * psktool(1) file ("username:hexkey" lines).  When TLS is configured the
 * server requires it: every option before STARTTLS other than ABORT gets
 * NBD_REP_ERR_TLS_REQD (nbd_handshake.c).
 *
 * Threading: a session is created and handshaken on the connection's own
 * thread.  In the transmission phase one thread at a time receives (the
 * one holding the connection's reader role) and one thread at a time sends
 * (under write_lock); GnuTLS allows one sender and one receiver to use a session
 * concurrently, which is exactly this.
 */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <gnutls/gnutls.h>
#include <gnutls/x509.h>

#include "core/error.h"
#include "nbd/nbd_internal.h"

/* (The server's handshake deadline, --handshake-timeout, ends it sooner.) */
#define TLS_HANDSHAKE_TIMEOUT_MS 30000
/* TLS 1.2 and 1.3 only; PSK key exchanges added when PSK is in use. */
#define TLS_PRIORITY_X509 "NORMAL:-VERS-ALL:+VERS-TLS1.3:+VERS-TLS1.2"
#define TLS_PRIORITY_PSK TLS_PRIORITY_X509 ":+ECDHE-PSK:+DHE-PSK:+PSK"
/* A line of a psktool(1) key file: "username:hexkey". */
#define PSK_LINE_MAX 1024

struct bci_nbd_tls_server {
	gnutls_certificate_credentials_t x509;
	gnutls_psk_server_credentials_t psk;
	gnutls_priority_t priority;
	bool verify_peer;
};

static int tls_fail(int r, const char *context, int gerr)
{
	return bci_error(r, "tls: %s: %s", context, gnutls_strerror(gerr));
}

static bool readable_file(const char *path)
{
	return access(path, R_OK) == 0;
}

static int load_x509(struct bci_nbd_tls_server *t, const char *dir, bool verify_peer)
{
	char cert[PATH_MAX], key[PATH_MAX], ca[PATH_MAX];
	int g;

	if (snprintf(cert, sizeof(cert), "%s/server-cert.pem", dir) >= (int)sizeof(cert) ||
	    snprintf(key, sizeof(key), "%s/server-key.pem", dir) >= (int)sizeof(key) ||
	    snprintf(ca, sizeof(ca), "%s/ca-cert.pem", dir) >= (int)sizeof(ca))
		return bci_error(-ENAMETOOLONG, "tls: %s: path too long", dir);
	if (!readable_file(cert) || !readable_file(key))
		return bci_error(-ENOENT, "tls: %s must hold server-cert.pem and server-key.pem", dir);
	g = gnutls_certificate_allocate_credentials(&t->x509);
	if (g < 0)
		return tls_fail(-ENOMEM, "credentials", g);
	g = gnutls_certificate_set_x509_key_file(t->x509, cert, key, GNUTLS_X509_FMT_PEM);
	if (g < 0)
		return tls_fail(-EINVAL, "server-cert.pem/server-key.pem", g);
	if (readable_file(ca)) {
		g = gnutls_certificate_set_x509_trust_file(t->x509, ca, GNUTLS_X509_FMT_PEM);
		if (g < 0)
			return tls_fail(-EINVAL, "ca-cert.pem", g);
	} else if (verify_peer) {
		return bci_error(-ENOENT, "tls: verifying clients needs %s", ca);
	}
	t->verify_peer = verify_peer;
	return 0;
}

static int load_psk(struct bci_nbd_tls_server *t, const char *file)
{
	FILE *f = fopen(file, "re");
	char line[PSK_LINE_MAX];
	bool any = false;
	int g;

	/* GnuTLS reads the file on every handshake: check it once now so
	 * a typo fails at attach time, not at the first client. */
	if (!f)
		return bci_error(-errno, "tls: %s: %s", file, strerror(errno));
	while (fgets(line, sizeof(line), f)) {
		char *colon = strchr(line, ':');

		if (line[0] == '\n' || line[0] == '#')
			continue;
		if (!colon || colon == line || strspn(colon + 1, "0123456789abcdefABCDEF") < 2) {
			fclose(f);
			explicit_bzero(line, sizeof(line));
			return bci_error(-EINVAL, "tls: %s: expected username:hexkey lines (psktool format)", file);
		}
		any = true;
	}
	fclose(f);
	explicit_bzero(line, sizeof(line));
	if (!any)
		return bci_error(-EINVAL, "tls: %s: no keys", file);
	g = gnutls_psk_allocate_server_credentials(&t->psk);
	if (g < 0)
		return tls_fail(-ENOMEM, "credentials", g);
	g = gnutls_psk_set_server_credentials_file(t->psk, file);
	if (g < 0)
		return tls_fail(-EINVAL, file, g);
	return 0;
}

int bc_nbd_params_check_tls(const struct bc_nbd_params *p)
{
	if (p->tls_certificates && p->tls_psk_file)
		return bci_error(-EINVAL, "tls: give X.509 certificates (--tls-certificates) or a PSK file (--tls-psk), not both");
	if (p->tls_verify_peer && !p->tls_certificates)
		return bci_error(-EINVAL, "tls: verifying client certificates (--tls-verify-peer) needs --tls-certificates");
	return 0;
}

void bci_nbd_tls_server_free(struct bci_nbd_tls_server *t)
{
	if (!t)
		return;
	if (t->x509)
		gnutls_certificate_free_credentials(t->x509);
	if (t->psk)
		gnutls_psk_free_server_credentials(t->psk);
	if (t->priority)
		gnutls_priority_deinit(t->priority);
	free(t);
}

int bci_nbd_tls_server_new(const struct bc_nbd_params *p, struct bci_nbd_tls_server **out)
{
	struct bci_nbd_tls_server *t;
	int r, g;

	*out = NULL;
	r = bc_nbd_params_check_tls(p);
	if (r < 0 || (!p->tls_certificates && !p->tls_psk_file))
		return r;
	t = calloc(1, sizeof(*t));
	if (!t)
		return bci_error(-ENOMEM, "tls: out of memory");
	r = p->tls_certificates ? load_x509(t, p->tls_certificates, p->tls_verify_peer)
				: load_psk(t, p->tls_psk_file);
	if (r == 0) {
		g = gnutls_priority_init(&t->priority, t->psk ? TLS_PRIORITY_PSK : TLS_PRIORITY_X509, NULL);
		if (g < 0)
			r = tls_fail(-EINVAL, "priority", g);
	}
	if (r < 0) {
		bci_nbd_tls_server_free(t);
		return r;
	}
	*out = t;
	return 0;
}

/* Handshake on C's descriptors; on success C's I/O goes through TLS. */
int bci_nbd_tls_start(struct bci_nbd_conn *c)
{
	const struct bci_nbd_tls_server *t = c->srv->tls;
	gnutls_session_t s = NULL;
	int g;

	g = gnutls_init(&s, GNUTLS_SERVER);
	if (g < 0)
		return tls_fail(-ENOMEM, "session", g);
	g = gnutls_priority_set(s, t->priority);
	if (g == 0)
		g = t->psk ? gnutls_credentials_set(s, GNUTLS_CRD_PSK, t->psk)
			   : gnutls_credentials_set(s, GNUTLS_CRD_CERTIFICATE, t->x509);
	if (g < 0) {
		gnutls_deinit(s);
		return tls_fail(-EINVAL, "session", g);
	}
	if (t->x509)
		gnutls_certificate_server_set_request(s, t->verify_peer ? GNUTLS_CERT_REQUIRE
									: GNUTLS_CERT_IGNORE);
	gnutls_transport_set_int2(s, c->in_fd, c->out_fd);
	gnutls_handshake_set_timeout(s, TLS_HANDSHAKE_TIMEOUT_MS);
	do {
		g = gnutls_handshake(s);
	} while (g < 0 && !gnutls_error_is_fatal(g));
	if (g == 0 && t->verify_peer) {
		unsigned status = 0;

		g = gnutls_certificate_verify_peers2(s, &status);
		if (g == 0 && status)
			g = GNUTLS_E_CERTIFICATE_VERIFICATION_ERROR;
	}
	if (g < 0) {
		/* A wrong key, a port scanner or an attack: worth a log line,
		 * but never more than one per 10 s. */
		bci_nbd_log_limited(c->srv, NBD_LOG_TLS, "TLS handshake failed: %s", gnutls_strerror(g));
		gnutls_deinit(s);
		return tls_fail(-EACCES, "handshake", g);
	}
	c->tls = s;
	return 0;
}

int bci_nbd_tls_recv(struct bci_nbd_conn *c, void *buf, size_t len)
{
	uint8_t *p = buf;

	while (len) {
		ssize_t n = gnutls_record_recv(c->tls, p, len);

		if (n == GNUTLS_E_AGAIN || n == GNUTLS_E_INTERRUPTED)
			continue;
		if (n == 0 || n == GNUTLS_E_PREMATURE_TERMINATION)
			return -ECONNRESET;
		if (n < 0)
			return -EPROTO;
		p += n;
		len -= (size_t)n;
		bci_nbd_busy_progress(&c->rx_busy_ns);
	}
	return 0;
}

int bci_nbd_tls_sendv(struct bci_nbd_conn *c, const struct iovec *iov, int iovcnt)
{
	for (int i = 0; i < iovcnt; i++) {
		const uint8_t *p = iov[i].iov_base;
		size_t len = iov[i].iov_len;

		while (len) {
			ssize_t n = gnutls_record_send(c->tls, p, len);

			if (n == GNUTLS_E_AGAIN || n == GNUTLS_E_INTERRUPTED)
				continue;
			if (n < 0)
				return -EPIPE;
			p += n;
			len -= (size_t)n;
			bci_nbd_busy_progress(&c->tx_busy_ns);
		}
	}
	return 0;
}

void bci_nbd_tls_end(struct bci_nbd_conn *c)
{
	if (!c->tls)
		return;
	gnutls_deinit(c->tls);
	c->tls = NULL;
}
