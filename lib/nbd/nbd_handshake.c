/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * NBD fixed newstyle handshake and option haggling.
 *
 * Threading: runs on the connection's own thread before any request is
 * accepted, so nothing here is shared; only immutable server fields are
 * read.
 *
 * Every length the client sends is checked against what was actually
 * received before it is used; malformed options get NBD_REP_ERR_INVALID,
 * oversized ones are skipped (or, beyond NBD_MAX_OPT_DISCARD, end the
 * session), unknown ones get NBD_REP_ERR_UNSUP.  When the server has TLS,
 * nothing but STARTTLS and ABORT is answered before TLS is up.
 */
#include <endian.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "nbd/nbd_internal.h"

static int send_reply(struct bci_nbd_conn *c, uint32_t option, uint32_t type,
		      const void *data, uint32_t len)
{
	struct bci_nbd_wire_option_reply h = {
		.magic = htobe64(NBD_REP_MAGIC), .option = htobe32(option),
		.type = htobe32(type), .length = htobe32(len),
	};
	struct iovec iov[2] = { { &h, sizeof(h) }, { (void *)data, len } };

	return bci_nbd_writev_full(c, iov, len ? 2 : 1);
}

static int send_error(struct bci_nbd_conn *c, uint32_t option, uint32_t type, const char *msg)
{
	return send_reply(c, option, type, msg, (uint32_t)strlen(msg));
}

/* Transmission flags of this connection: NBD_FLAG_SEND_DF only with
 * structured replies. */
static uint16_t tx_flags(const struct bci_nbd_conn *c)
{
	return (uint16_t)(c->srv->tx_flags | (c->structured ? NBD_FLAG_SEND_DF : 0));
}

static uint32_t get_be32(const uint8_t *p)
{
	uint32_t v;

	memcpy(&v, p, 4);
	return be32toh(v);
}

static int send_info_export(struct bci_nbd_conn *c, uint32_t option)
{
	struct {
		uint16_t type;
		uint64_t size;
		uint16_t flags;
	} __attribute__((packed)) info = {
		htobe16(NBD_INFO_EXPORT), htobe64(bc_volume_size(c->srv->volume)), htobe16(tx_flags(c)),
	};

	return send_reply(c, option, NBD_REP_INFO, &info, sizeof(info));
}

static int send_info_string(struct bci_nbd_conn *c, uint32_t option, uint16_t type, const char *s)
{
	size_t n = strlen(s);
	uint8_t buf[2 + 1024];

	if (n > 1024)
		n = 1024;
	buf[0] = (uint8_t)(type >> 8);
	buf[1] = (uint8_t)type;
	memcpy(buf + 2, s, n);
	return send_reply(c, option, NBD_REP_INFO, buf, (uint32_t)(n + 2));
}

static int send_info_block_size(struct bci_nbd_conn *c, uint32_t option)
{
	struct {
		uint16_t type;
		uint32_t min, pref, max;
	} __attribute__((packed)) info = {
		htobe16(NBD_INFO_BLOCK_SIZE), htobe32(1), htobe32(c->srv->pref_block),
		htobe32(NBD_MAX_PAYLOAD),
	};

	return send_reply(c, option, NBD_REP_INFO, &info, sizeof(info));
}

static bool name_matches(const struct bc_nbd_server *s, const char *name, size_t len)
{
	return len == 0 || (len == strlen(s->export_name) && !memcmp(name, s->export_name, len));
}

/* NBD_OPT_INFO / NBD_OPT_GO.  Returns 1 when GO succeeded. */
static int opt_info_go(struct bci_nbd_conn *c, uint32_t option, const uint8_t *data, uint32_t len)
{
	uint32_t name_len;
	uint16_t nreq;
	bool want_name = false, want_desc = false;
	int r;

	if (len < 6)
		return send_error(c, option, NBD_REP_ERR_INVALID, "option data too short");
	name_len = get_be32(data);
	if (name_len > len - 6)
		return send_error(c, option, NBD_REP_ERR_INVALID, "export name length exceeds option data");
	memcpy(&nreq, data + 4 + name_len, 2);
	nreq = be16toh(nreq);
	if ((uint64_t)nreq * 2 != (uint64_t)len - 6 - name_len)
		return send_error(c, option, NBD_REP_ERR_INVALID, "information request count does not match length");
	if (!name_matches(c->srv, (const char *)data + 4, name_len))
		return send_error(c, option, NBD_REP_ERR_UNKNOWN, "no such export");
	for (uint16_t i = 0; i < nreq; i++) {
		uint16_t t;

		memcpy(&t, data + 6 + name_len + 2 * i, 2);
		t = be16toh(t);
		want_name |= t == NBD_INFO_NAME;
		want_desc |= t == NBD_INFO_DESCRIPTION;
	}
	r = send_info_export(c, option);
	if (r == 0)
		r = send_info_block_size(c, option); /* always: we accept byte-granular I/O */
	if (r == 0 && want_name)
		r = send_info_string(c, option, NBD_INFO_NAME, c->srv->export_name);
	if (r == 0 && want_desc && c->srv->description)
		r = send_info_string(c, option, NBD_INFO_DESCRIPTION, c->srv->description);
	if (r == 0)
		r = send_reply(c, option, NBD_REP_ACK, NULL, 0);
	if (r < 0)
		return r;
	return option == NBD_OPT_GO ? 1 : 0;
}

static int opt_export_name(struct bci_nbd_conn *c, const uint8_t *data, uint32_t len)
{
	struct {
		uint64_t size;
		uint16_t flags;
		uint8_t zeroes[124];
	} __attribute__((packed)) reply = { htobe64(bc_volume_size(c->srv->volume)), htobe16(tx_flags(c)), { 0 } };
	struct iovec iov = { &reply, c->no_zeroes ? 10 : sizeof(reply) };
	int r;

	if (!name_matches(c->srv, (const char *)data, len))
		return -ENOENT; /* the protocol has no way to refuse: hang up */
	r = bci_nbd_writev_full(c, &iov, 1);
	return r < 0 ? r : 1;
}

static int opt_list(struct bci_nbd_conn *c, uint32_t len)
{
	size_t n = strlen(c->srv->export_name);
	uint8_t buf[4 + 4096];
	uint32_t be = htobe32((uint32_t)n);
	int r;

	if (len)
		return send_error(c, NBD_OPT_LIST, NBD_REP_ERR_INVALID, "LIST takes no data");
	if (n > 4096)
		n = 4096;
	memcpy(buf, &be, 4);
	memcpy(buf + 4, c->srv->export_name, n);
	r = send_reply(c, NBD_OPT_LIST, NBD_REP_SERVER, buf, (uint32_t)(4 + n));
	return r < 0 ? r : send_reply(c, NBD_OPT_LIST, NBD_REP_ACK, NULL, 0);
}

static int opt_structured_reply(struct bci_nbd_conn *c, uint32_t len)
{
	if (len)
		return send_error(c, NBD_OPT_STRUCTURED_REPLY, NBD_REP_ERR_INVALID, "STRUCTURED_REPLY takes no data");
	c->structured = true;
	return send_reply(c, NBD_OPT_STRUCTURED_REPLY, NBD_REP_ACK, NULL, 0);
}

/* Does QUERY select base:allocation?  LIST also takes the namespace
 * alone ("base:") for all its contexts. */
static bool query_selects(const uint8_t *q, uint32_t len, bool list)
{
	static const char ctx[] = NBD_META_BASE_ALLOCATION;
	const uint32_t ns = sizeof("base:") - 1;

	if (len == sizeof(ctx) - 1 && !memcmp(q, ctx, len))
		return true;
	return list && len == ns && !memcmp(q, ctx, ns);
}

/* NBD_OPT_LIST_META_CONTEXT / NBD_OPT_SET_META_CONTEXT.  Data: a 32-bit
 * export name length and the name, a 32-bit query count, then each query
 * as a 32-bit length and the string.  All of it is checked before SET
 * changes anything; SET always replaces the selection (an error leaves
 * none). */
static int opt_meta_context(struct bci_nbd_conn *c, uint32_t option, const uint8_t *data, uint32_t len)
{
	const bool list = option == NBD_OPT_LIST_META_CONTEXT;
	static const char ctx[] = NBD_META_BASE_ALLOCATION;
	uint8_t reply[4 + sizeof(ctx) - 1];
	uint32_t name_len, nq, pos, id;
	bool match = false;
	int r;

	if (!list)
		c->meta_alloc = false;
	if (!c->structured)
		return send_error(c, option, NBD_REP_ERR_INVALID, "negotiate structured replies first");
	if (len < 8)
		return send_error(c, option, NBD_REP_ERR_INVALID, "option data too short");
	name_len = get_be32(data);
	if (name_len > len - 8)
		return send_error(c, option, NBD_REP_ERR_INVALID, "export name length exceeds option data");
	nq = get_be32(data + 4 + name_len);
	pos = 8 + name_len;
	if (nq > (len - pos) / 4)
		return send_error(c, option, NBD_REP_ERR_INVALID, "query count exceeds option data");
	for (uint32_t i = 0; i < nq; i++) {
		uint32_t qlen;

		if (len - pos < 4)
			return send_error(c, option, NBD_REP_ERR_INVALID, "query length exceeds option data");
		qlen = get_be32(data + pos);
		pos += 4;
		if (qlen > len - pos)
			return send_error(c, option, NBD_REP_ERR_INVALID, "query exceeds option data");
		if (qlen > NBD_MAX_STRING)
			return send_error(c, option, NBD_REP_ERR_TOO_BIG, "query too long");
		match |= query_selects(data + pos, qlen, list);
		pos += qlen;
	}
	if (pos != len)
		return send_error(c, option, NBD_REP_ERR_INVALID, "trailing option data");
	if (!name_matches(c->srv, (const char *)data + 4, name_len))
		return send_error(c, option, NBD_REP_ERR_UNKNOWN, "no such export");
	if (list && nq == 0)
		match = true; /* no query: every context */
	if (match) {
		id = htobe32(list ? 0 : NBD_META_ID_BASE_ALLOCATION);
		memcpy(reply, &id, 4);
		memcpy(reply + 4, ctx, sizeof(ctx) - 1);
		r = send_reply(c, option, NBD_REP_META_CONTEXT, reply, sizeof(reply));
		if (r < 0)
			return r;
		c->meta_alloc |= !list;
	}
	return send_reply(c, option, NBD_REP_ACK, NULL, 0);
}

static int opt_starttls(struct bci_nbd_conn *c, uint32_t len)
{
	int r;

	if (!c->srv->tls)
		return send_error(c, NBD_OPT_STARTTLS, NBD_REP_ERR_POLICY, "TLS is not enabled on this export");
	if (c->tls)
		return send_error(c, NBD_OPT_STARTTLS, NBD_REP_ERR_INVALID, "TLS is already in use");
	if (len)
		return send_error(c, NBD_OPT_STARTTLS, NBD_REP_ERR_INVALID, "STARTTLS takes no data");
	r = send_reply(c, NBD_OPT_STARTTLS, NBD_REP_ACK, NULL, 0);
	c->structured = c->meta_alloc = false; /* negotiated in the clear: again */
	/* A failed handshake leaves the stream unusable: hang up. */
	return r < 0 ? r : bci_nbd_tls_start(c);
}

int bci_nbd_handshake(struct bci_nbd_conn *c)
{
	struct {
		uint64_t magic, ihaveopt;
		uint16_t flags;
	} __attribute__((packed)) hello = {
		htobe64(NBD_MAGIC), htobe64(NBD_IHAVEOPT),
		htobe16(NBD_FLAG_FIXED_NEWSTYLE | NBD_FLAG_NO_ZEROES),
	};
	struct iovec iov = { &hello, sizeof(hello) };
	uint32_t cflags;
	uint8_t *data = NULL;
	int r;

	r = bci_nbd_writev_full(c, &iov, 1);
	if (r < 0)
		return r;
	r = bci_nbd_read_full(c, &cflags, 4);
	if (r < 0)
		return r;
	cflags = be32toh(cflags);
	if (cflags & ~(uint32_t)(NBD_FLAG_C_FIXED_NEWSTYLE | NBD_FLAG_C_NO_ZEROES))
		return -EPROTO; /* the spec says: drop the connection */
	c->no_zeroes = cflags & NBD_FLAG_C_NO_ZEROES;
	data = malloc(NBD_MAX_OPT_DATA);
	if (!data)
		return -ENOMEM;

	for (;;) {
		struct bci_nbd_wire_option h;
		uint32_t option, len;

		r = bci_nbd_read_full(c, &h, sizeof(h));
		if (r < 0)
			break;
		if (be64toh(h.magic) != NBD_IHAVEOPT) {
			r = -EPROTO;
			break;
		}
		option = be32toh(h.option);
		len = be32toh(h.length);
		if (len > NBD_MAX_OPT_DATA) {
			if (len > NBD_MAX_OPT_DISCARD) {
				r = -EPROTO; /* deemed a denial of service */
				break;
			}
			r = bci_nbd_discard(c, len);
			if (r == 0)
				r = send_error(c, option, NBD_REP_ERR_TOO_BIG, "option data too large");
			if (r < 0)
				break;
			continue;
		}
		r = bci_nbd_read_full(c, data, len);
		if (r < 0)
			break;
		if (c->srv->tls && !c->tls && option != NBD_OPT_STARTTLS && option != NBD_OPT_ABORT) {
			if (option == NBD_OPT_EXPORT_NAME) {
				r = -EACCES; /* no way to refuse it: hang up */
				break;
			}
			r = send_error(c, option, NBD_REP_ERR_TLS_REQD, "TLS is required: use STARTTLS");
			if (r != 0)
				break;
			continue;
		}
		switch (option) {
		case NBD_OPT_EXPORT_NAME:
			r = opt_export_name(c, data, len);
			break;
		case NBD_OPT_ABORT:
			send_reply(c, option, NBD_REP_ACK, NULL, 0);
			r = 0;
			goto out;
		case NBD_OPT_LIST:
			r = opt_list(c, len);
			break;
		case NBD_OPT_INFO:
		case NBD_OPT_GO:
			r = opt_info_go(c, option, data, len);
			break;
		case NBD_OPT_STARTTLS:
			r = opt_starttls(c, len);
			break;
		case NBD_OPT_STRUCTURED_REPLY:
			r = opt_structured_reply(c, len);
			break;
		case NBD_OPT_LIST_META_CONTEXT:
		case NBD_OPT_SET_META_CONTEXT:
			r = opt_meta_context(c, option, data, len);
			break;
		default:
			r = send_error(c, option, NBD_REP_ERR_UNSUP, "option not supported");
			break;
		}
		if (r != 0)
			break;
	}
out:
	free(data);
	return r;
}
