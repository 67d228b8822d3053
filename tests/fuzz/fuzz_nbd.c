/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * libFuzzer harness: the NBD server (lib/nbd), handshake and request
 * stream, through the public API.
 *
 * Input: one byte choosing the export variant (below), then everything a
 * client sends, from its flags after the server's greeting to the end.
 * Bits 0-1 of that byte choose the export, bit 2 adds TLS (pre-shared
 * keys): then every option before STARTTLS but ABORT must be refused with
 * ERR_TLS_REQD (EXPORT_NAME: hang up), and STARTTLS is acknowledged; the
 * TLS handshake itself cannot succeed here (the streams are not sockets
 * and the fuzzer cannot forge one), so the server must then hang up.
 * LLVMFuzzerInitialize opens a 1 MiB plain volume on a memfd once, twice
 * (read-write and read-only), and makes one server per variant with one
 * thread per connection, so requests run in order and replies come back
 * in order.  Each input is written to a memfd, served with
 * bc_nbd_server_serve_fds() (EOF ends the session), and the server's
 * output, also a memfd, is then checked against a model of the protocol
 * walked along the same input:
 *   - framing: greeting, option replies with the right magic and option,
 *     the EXPORT_NAME reply (124 zeroes unless NO_ZEROES), simple replies
 *     with the request's cookie, in order, READ data of the right length,
 *     nothing after the server should have hung up;
 *   - option haggling: malformed INFO/GO -> ERR_INVALID, unknown export ->
 *     ERR_UNKNOWN, good ones -> INFO_EXPORT (size, flags), block sizes,
 *     the name and description when asked, ACK; LIST; ABORT;
 *     STRUCTURED_REPLY (ACK, ERR_INVALID with data); LIST/SET_META_CONTEXT
 *     (ERR_INVALID before STRUCTURED_REPLY or when malformed, ERR_TOO_BIG
 *     for a query over 4096 bytes, ERR_UNKNOWN for another export, else
 *     base:allocation when a query names it -- LIST also for "base:" or
 *     no query -- and ACK); SEND_DF exactly with structured replies;
 *     other options -> an error; with TLS, the refusals above;
 *   - requests: valid ones succeed, invalid ones (out of range, unknown
 *     command or flag, writes on a read-only export, TRIM without
 *     discards, BLOCK_STATUS without a context or of length 0, DF without
 *     structured replies) fail with an NBD error code;
 *   - structured replies (READ, BLOCK_STATUS, and errors once negotiated):
 *     chunks with the cookie, the last one DONE, READ content chunks in
 *     order covering the request exactly (one OFFSET_DATA with DF),
 *     OFFSET_HOLE only where the data reads as zeros, error chunks with
 *     an NBD error; BLOCK_STATUS one chunk of the selected context's ID,
 *     1 to NBD_MAX_EXTENTS nonzero extents (1 with REQ_ONE) within the
 *     request, flags 0 or HOLE|ZERO, and HOLE|ZERO only over zeros;
 *   - data: a READ returns what earlier WRITE / WRITE_ZEROES of the same
 *     input put there, and zeros over the whole sectors a TRIM punched
 *     (zero ciphertext reads as zeros; partial sectors keep their data).
 * A failed check aborts with a message (libFuzzer keeps the input).
 */
#include <endian.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "blockcrypt.h"
#include "nbd/nbd_proto.h"

#include "fuzz_common.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define VOL_SIZE (1u << 20)
#define SECTOR 512u

struct variant {
	const char *export_name, *description;
	bool ro_param, ro_volume, discards;
	struct bc_nbd_server *srv, *srv_tls;
};

/* data[0] & 3 picks one; data[0] & 4 its TLS twin. */
static struct variant variants[4] = {
	{ "fuzz", "a fuzzed volume", false, false, false, NULL, NULL },
	{ "fuzz", NULL, false, false, true, NULL, NULL },            /* discards */
	{ "fuzz", "read-only export", true, false, true, NULL, NULL }, /* discards refused: read-only */
	{ NULL, NULL, false, true, true, NULL, NULL },               /* read-only volume, default export only */
};

static int in_fd = -1, out_fd = -1;
static uint8_t shadow[VOL_SIZE];    /* what the volume holds where gen[] == cur_gen */
static uint32_t gen[VOL_SIZE];
static uint32_t cur_gen;
static uint32_t known_lo, known_hi; /* this input wrote only in [known_lo, known_hi) */

static int make_memfd(const char *name, off_t size)
{
	int fd = memfd_create(name, MFD_CLOEXEC);

	FUZZ_CHECK(fd >= 0, "memfd_create: %s", strerror(errno));
	FUZZ_CHECK(ftruncate(fd, size) == 0, "ftruncate: %s", strerror(errno));
	return fd;
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	static const uint8_t key[64] = "fixed 512-bit aes-xts-plain64 key for the nbd fuzz harness.....";
	static const char psk[] = "fuzz:000102030405060708090a0b0c0d0e0f\n";
	static char psk_path[64];
	struct bc_volume *rw = NULL, *ro = NULL;
	struct bc_secret *secret = NULL;
	char path[64];
	int backing = make_memfd("fuzz-nbd-backing", VOL_SIZE), psk_fd = make_memfd("fuzz-nbd-psk", 0), r;

	FUZZ_CHECK(write(psk_fd, psk, strlen(psk)) == (ssize_t)strlen(psk), "write: %s", strerror(errno));
	snprintf(psk_path, sizeof(psk_path), "/proc/self/fd/%d", psk_fd); /* stays open */

	snprintf(path, sizeof(path), "/proc/self/fd/%d", backing);
	FUZZ_CHECK(bc_secret_from_bytes(key, sizeof(key), &secret) == 0, "secret: %s", bc_last_error());
	r = bc_volume_open(path, &(struct bc_open_params){ .type = BC_TYPE_PLAIN }, secret, &rw);
	FUZZ_CHECK(r == 0, "cannot open the plain volume: %s", bc_last_error());
	r = bc_volume_open(path, &(struct bc_open_params){ .type = BC_TYPE_PLAIN, .read_only = true }, secret, &ro);
	FUZZ_CHECK(r == 0, "cannot open the plain volume read-only: %s", bc_last_error());
	bc_secret_free(secret);
	close(backing); /* the volumes hold their own descriptors */
	FUZZ_CHECK(bc_volume_size(rw) == VOL_SIZE && bc_volume_size(ro) == VOL_SIZE, "volume size");

	for (size_t i = 0; i < sizeof(variants) / sizeof(variants[0]); i++) {
		struct variant *v = &variants[i];
		struct bc_nbd_params p = {
			.export_name = v->export_name, .description = v->description,
			.read_only = v->ro_param, .allow_discards = v->discards, .threads = 1,
		};

		r = bc_nbd_server_new(v->ro_volume ? ro : rw, &p, &v->srv);
		FUZZ_CHECK(r == 0, "bc_nbd_server_new: %s", bc_last_error());
		p.tls_psk_file = psk_path;
		r = bc_nbd_server_new(v->ro_volume ? ro : rw, &p, &v->srv_tls);
		FUZZ_CHECK(r == 0, "bc_nbd_server_new with TLS: %s", bc_last_error());
	}
	in_fd = make_memfd("fuzz-nbd-in", 0);
	out_fd = make_memfd("fuzz-nbd-out", 0);
	/* The servers and volumes live until the process ends. */
	return 0;
}

/* ---- reading the two streams ------------------------------------------ */

struct cursor {
	const uint8_t *p;
	size_t len, pos;
};

static const uint8_t *take(struct cursor *c, uint64_t n)
{
	const uint8_t *r;

	if (c->len - c->pos < n)
		return NULL;
	r = c->p + c->pos;
	c->pos += (size_t)n;
	return r;
}

static uint16_t be16(const uint8_t *p) { uint16_t v; memcpy(&v, p, 2); return be16toh(v); }
static uint32_t be32(const uint8_t *p) { uint32_t v; memcpy(&v, p, 4); return be32toh(v); }
static uint64_t be64(const uint8_t *p) { uint64_t v; memcpy(&v, p, 8); return be64toh(v); }

struct session {
	const struct variant *v;
	struct cursor in, out;
	bool ro, trim, no_zeroes, tls;
	bool structured, meta; /* negotiated; meta: base:allocation selected */
	uint32_t meta_id;      /* the ID SET_META_CONTEXT gave it */
	const char *name;    /* the export name ("" = default only) */
};

static const uint8_t zeros[VOL_SIZE];

/* The next N bytes of server output, which must be there. */
static const uint8_t *out_take(struct session *s, uint64_t n, const char *what)
{
	const uint8_t *p = take(&s->out, n);

	FUZZ_CHECK(p, "server output ends at byte %zu, expected %llu bytes of %s (input at %zu)",
		   s->out.pos, (unsigned long long)n, what, s->in.pos);
	return p;
}

static void expect_end(struct session *s, const char *why)
{
	FUZZ_CHECK(s->out.pos == s->out.len, "server sent %zu more bytes after %s (input at %zu)",
		   s->out.len - s->out.pos, why, s->in.pos);
}

static bool is_pow2(uint32_t x) { return x && !(x & (x - 1)); }

static bool name_ok(const struct session *s, const uint8_t *name, uint32_t len)
{
	return len == 0 || (len == strlen(s->name) && !memcmp(name, s->name, len));
}

static void check_tx_flags(const struct session *s, uint16_t f)
{
	FUZZ_CHECK(f & NBD_FLAG_HAS_FLAGS, "transmission flags without HAS_FLAGS: %#x", f);
	FUZZ_CHECK(!!(f & NBD_FLAG_READ_ONLY) == s->ro, "READ_ONLY flag %#x, read-only %d", f, s->ro);
	FUZZ_CHECK(!!(f & NBD_FLAG_SEND_TRIM) == s->trim, "SEND_TRIM flag %#x, discards %d", f, s->trim);
	FUZZ_CHECK((f & (NBD_FLAG_SEND_FLUSH | NBD_FLAG_SEND_FUA | NBD_FLAG_SEND_WRITE_ZEROES)) ==
		   (NBD_FLAG_SEND_FLUSH | NBD_FLAG_SEND_FUA | NBD_FLAG_SEND_WRITE_ZEROES),
		   "FLUSH, FUA or WRITE_ZEROES not advertised: %#x", f);
	FUZZ_CHECK(!!(f & NBD_FLAG_SEND_DF) == s->structured, "SEND_DF flag %#x, structured replies %d", f,
		   s->structured);
}

/* One option reply header (+ payload); returns its type. */
static uint32_t option_reply(struct session *s, uint32_t option, const uint8_t **payload, uint32_t *len)
{
	const uint8_t *h = out_take(s, 20, "an option reply");

	FUZZ_CHECK(be64(h) == NBD_REP_MAGIC, "option reply magic %#llx", (unsigned long long)be64(h));
	FUZZ_CHECK(be32(h + 8) == option, "reply for option %u while option %u is pending", be32(h + 8), option);
	*len = be32(h + 16);
	*payload = out_take(s, *len, "option reply data");
	return be32(h + 12);
}

/* NBD_OPT_INFO / NBD_OPT_GO; returns true when GO succeeded. */
static bool model_info_go(struct session *s, uint32_t option, const uint8_t *d, uint32_t len)
{
	bool valid = len >= 6, found = false, want_name = false, want_desc = false;
	bool saw_export = false, saw_block = false, saw_name = false, saw_desc = false;
	uint32_t name_len = 0, type, rlen;
	const uint8_t *r;

	if (valid) {
		name_len = be32(d);
		valid = name_len <= len - 6;
	}
	if (valid) {
		uint16_t nreq = be16(d + 4 + name_len);

		valid = (uint64_t)nreq * 2 == (uint64_t)len - 6 - name_len;
		for (uint16_t i = 0; valid && i < nreq; i++) {
			uint16_t t = be16(d + 6 + name_len + 2 * i);

			want_name |= t == NBD_INFO_NAME;
			want_desc |= t == NBD_INFO_DESCRIPTION;
		}
		found = valid && name_ok(s, d + 4, name_len);
	}
	while ((type = option_reply(s, option, &r, &rlen)) == NBD_REP_INFO) {
		FUZZ_CHECK(found, "NBD_REP_INFO for a malformed request or an unknown export");
		FUZZ_CHECK(rlen >= 2, "NBD_REP_INFO of %u bytes", rlen);
		switch (be16(r)) {
		case NBD_INFO_EXPORT:
			FUZZ_CHECK(rlen == 12, "INFO_EXPORT of %u bytes", rlen);
			FUZZ_CHECK(be64(r + 2) == VOL_SIZE, "INFO_EXPORT size %llu", (unsigned long long)be64(r + 2));
			check_tx_flags(s, be16(r + 10));
			saw_export = true;
			break;
		case NBD_INFO_BLOCK_SIZE: {
			uint32_t min, pref, max;

			FUZZ_CHECK(rlen == 14, "INFO_BLOCK_SIZE of %u bytes", rlen);
			min = be32(r + 2), pref = be32(r + 6), max = be32(r + 10);
			FUZZ_CHECK(is_pow2(min) && min <= 65536 && is_pow2(pref) && pref >= 512 && pref >= min &&
				   max >= min && max % min == 0, "block sizes %u %u %u", min, pref, max);
			saw_block = true;
			break;
		}
		case NBD_INFO_NAME:
			FUZZ_CHECK(rlen - 2 == strlen(s->name) && !memcmp(r + 2, s->name, rlen - 2),
				   "INFO_NAME is not the export name");
			saw_name = true;
			break;
		case NBD_INFO_DESCRIPTION:
			FUZZ_CHECK(s->v->description && rlen - 2 == strlen(s->v->description) &&
				   !memcmp(r + 2, s->v->description, rlen - 2), "INFO_DESCRIPTION is not the description");
			saw_desc = true;
			break;
		default:
			FUZZ_CHECK(false, "unknown NBD_REP_INFO type %u", be16(r));
		}
	}
	if (!valid) {
		FUZZ_CHECK(type == NBD_REP_ERR_INVALID, "malformed INFO/GO answered %#x, not ERR_INVALID", type);
		return false;
	}
	if (!found) {
		FUZZ_CHECK(type == NBD_REP_ERR_UNKNOWN, "INFO/GO of an unknown export answered %#x", type);
		return false;
	}
	FUZZ_CHECK(type == NBD_REP_ACK && rlen == 0, "good INFO/GO answered %#x (%u bytes)", type, rlen);
	FUZZ_CHECK(saw_export && saw_block, "INFO/GO without INFO_EXPORT or INFO_BLOCK_SIZE");
	FUZZ_CHECK(saw_name == want_name, "INFO_NAME sent %d, asked %d", saw_name, want_name);
	FUZZ_CHECK(saw_desc == (want_desc && s->v->description), "INFO_DESCRIPTION sent %d, asked %d",
		   saw_desc, want_desc);
	return option == NBD_OPT_GO;
}

/* LIST_META_CONTEXT / SET_META_CONTEXT (see the server's rules above). */
static void model_meta_context(struct session *s, uint32_t option, const uint8_t *d, uint32_t len)
{
	const bool list = option == NBD_OPT_LIST_META_CONTEXT;
	uint32_t want = NBD_REP_ACK, name_len = 0, nq = 0, pos = 0, type, rlen;
	bool match = false;
	const uint8_t *r;

	if (!list)
		s->meta = false;
	if (!s->structured || len < 8) {
		want = NBD_REP_ERR_INVALID;
	} else {
		name_len = be32(d);
		if (name_len > len - 8)
			want = NBD_REP_ERR_INVALID;
	}
	if (want == NBD_REP_ACK) {
		nq = be32(d + 4 + name_len);
		pos = 8 + name_len;
		if (nq > (len - pos) / 4) /* more queries than could fit */
			want = NBD_REP_ERR_INVALID;
		for (uint32_t i = 0; want == NBD_REP_ACK && i < nq; i++) {
			uint32_t ql;

			if (len - pos < 4) {
				want = NBD_REP_ERR_INVALID;
				break;
			}
			ql = be32(d + pos);
			pos += 4;
			if (ql > len - pos)
				want = NBD_REP_ERR_INVALID;
			else if (ql > NBD_MAX_STRING)
				want = NBD_REP_ERR_TOO_BIG;
			else
				match |= (ql == 15 && !memcmp(d + pos, "base:allocation", 15)) ||
					 (list && ql == 5 && !memcmp(d + pos, "base:", 5));
			pos += ql;
		}
		if (want == NBD_REP_ACK && pos != len)
			want = NBD_REP_ERR_INVALID;
		if (want == NBD_REP_ACK && !name_ok(s, d + 4, name_len))
			want = NBD_REP_ERR_UNKNOWN;
		match |= list && nq == 0;
	}
	type = option_reply(s, option, &r, &rlen);
	if (want == NBD_REP_ACK && match) {
		FUZZ_CHECK(type == NBD_REP_META_CONTEXT && rlen == 4 + 15 && !memcmp(r + 4, "base:allocation", 15),
			   "META_CONTEXT option %u: reply %#x (%u bytes), not base:allocation", option, type, rlen);
		FUZZ_CHECK(list || be32(r), "SET_META_CONTEXT gave base:allocation the ID 0");
		if (!list) {
			s->meta = true;
			s->meta_id = be32(r);
		}
		type = option_reply(s, option, &r, &rlen);
	}
	FUZZ_CHECK(type == want, "META_CONTEXT option %u answered %#x, expected %#x", option, type, want);
}

/* The handshake; returns true when the session enters transmission. */
static bool model_handshake(struct session *s)
{
	const uint8_t *h = out_take(s, 18, "the greeting"), *cf;

	FUZZ_CHECK(be64(h) == NBD_MAGIC && be64(h + 8) == NBD_IHAVEOPT, "bad greeting");
	FUZZ_CHECK(be16(h + 16) & NBD_FLAG_FIXED_NEWSTYLE, "greeting without FIXED_NEWSTYLE");
	cf = take(&s->in, 4);
	if (!cf || (be32(cf) & ~(uint32_t)(NBD_FLAG_C_FIXED_NEWSTYLE | NBD_FLAG_C_NO_ZEROES)))
		return false; /* EOF, or unknown client flags: hang up */
	s->no_zeroes = be32(cf) & NBD_FLAG_C_NO_ZEROES;

	for (;;) {
		const uint8_t *oh = take(&s->in, 16), *d, *r;
		uint32_t option, len, type, rlen;

		if (!oh || be64(oh) != NBD_IHAVEOPT)
			return false;
		option = be32(oh + 8);
		len = be32(oh + 12);
		if (len > NBD_MAX_OPT_DISCARD)
			return false;
		d = take(&s->in, len);
		if (!d)
			return false; /* EOF inside the option data */
		if (len > NBD_MAX_OPT_DATA) {
			type = option_reply(s, option, &r, &rlen);
			FUZZ_CHECK(type & (UINT32_C(1) << 31), "oversized option answered %#x", type);
			continue;
		}
		if (s->tls && option != NBD_OPT_STARTTLS && option != NBD_OPT_ABORT) {
			if (option == NBD_OPT_EXPORT_NAME)
				return false; /* cannot be refused: hang up */
			type = option_reply(s, option, &r, &rlen);
			FUZZ_CHECK(type == NBD_REP_ERR_TLS_REQD, "option %u before STARTTLS answered %#x", option, type);
			continue;
		}
		switch (option) {
		case NBD_OPT_EXPORT_NAME:
			if (!name_ok(s, d, len))
				return false; /* the only way to refuse */
			r = out_take(s, s->no_zeroes ? 10 : 134, "the EXPORT_NAME reply");
			FUZZ_CHECK(be64(r) == VOL_SIZE, "EXPORT_NAME size %llu", (unsigned long long)be64(r));
			check_tx_flags(s, be16(r + 8));
			for (int i = 10; i < (s->no_zeroes ? 10 : 134); i++)
				FUZZ_CHECK(!r[i], "EXPORT_NAME padding not zero");
			return true;
		case NBD_OPT_ABORT:
			type = option_reply(s, option, &r, &rlen);
			FUZZ_CHECK(type == NBD_REP_ACK && rlen == 0, "ABORT answered %#x", type);
			return false;
		case NBD_OPT_LIST:
			type = option_reply(s, option, &r, &rlen);
			if (len) {
				FUZZ_CHECK(type == NBD_REP_ERR_INVALID, "LIST with data answered %#x", type);
				break;
			}
			FUZZ_CHECK(type == NBD_REP_SERVER && rlen >= 4 && be32(r) == strlen(s->name) &&
				   rlen - 4 >= be32(r) && !memcmp(r + 4, s->name, be32(r)),
				   "LIST: not one NBD_REP_SERVER with the export name");
			type = option_reply(s, option, &r, &rlen);
			FUZZ_CHECK(type == NBD_REP_ACK && rlen == 0, "LIST not ended by ACK: %#x", type);
			break;
		case NBD_OPT_INFO:
		case NBD_OPT_GO:
			if (model_info_go(s, option, d, len))
				return true;
			break;
		case NBD_OPT_STARTTLS:
			type = option_reply(s, option, &r, &rlen);
			if (!s->tls || len) {
				FUZZ_CHECK(type & (UINT32_C(1) << 31), "STARTTLS%s answered %#x, not an error",
					   len ? " with data" : " without TLS", type);
				break;
			}
			FUZZ_CHECK(type == NBD_REP_ACK && rlen == 0, "STARTTLS answered %#x, not ACK", type);
			return false; /* no TLS client here: the handshake fails, hang up */
		case NBD_OPT_STRUCTURED_REPLY:
			type = option_reply(s, option, &r, &rlen);
			FUZZ_CHECK(type == (len ? NBD_REP_ERR_INVALID : NBD_REP_ACK), "STRUCTURED_REPLY%s answered %#x",
				   len ? " with data" : "", type);
			s->structured |= !len;
			break;
		case NBD_OPT_LIST_META_CONTEXT:
		case NBD_OPT_SET_META_CONTEXT:
			model_meta_context(s, option, d, len);
			break;
		default: /* unknown */
			type = option_reply(s, option, &r, &rlen);
			FUZZ_CHECK(type & (UINT32_C(1) << 31), "option %u answered %#x, not an error", option, type);
			break;
		}
	}
}

static bool is_nbd_error(uint32_t e)
{
	switch (e) {
	case NBD_EPERM: case NBD_EIO: case NBD_ENOMEM: case NBD_EINVAL: case NBD_ENOSPC:
	case NBD_EOVERFLOW: case NBD_ENOTSUP: case NBD_ESHUTDOWN:
		return true;
	}
	return false;
}

/* The shadow's byte loops are the harness's own work, not the server's:
 * no coverage tracing there (it would cost most of the time). */
#define NO_COVERAGE __attribute__((no_sanitize("coverage", "address"), noinline))

NO_COVERAGE static void forget(uint32_t off, uint32_t len)
{
	for (uint32_t i = off; i < off + len; i++)
		gen[i] = 0;
}

/* WRITE (DATA) or WRITE_ZEROES (DATA NULL) of LEN bytes at OFF succeeded. */
NO_COVERAGE static void remember(uint32_t off, uint32_t len, const uint8_t *data)
{
	if (data)
		memcpy(shadow + off, data, len);
	else
		memset(shadow + off, 0, len);
	for (uint32_t i = off; i < off + len; i++)
		gen[i] = cur_gen;
	if (known_lo >= known_hi) {
		known_lo = off;
		known_hi = off + len;
	} else {
		known_lo = off < known_lo ? off : known_lo;
		known_hi = off + len > known_hi ? off + len : known_hi;
	}
}

/* The first byte of a READ of LEN bytes at OFF that differs from what
 * this input wrote there, or -1. */
NO_COVERAGE static int64_t read_mismatch(uint32_t off, uint32_t len, const uint8_t *data)
{
	uint32_t i, end = len;

	/* Only where this input wrote. */
	if (off >= known_hi || off + len <= known_lo)
		return -1;
	i = known_lo > off ? known_lo - off : 0;
	end = known_hi < off + len ? known_hi - off : len;
	while (i < end) {
		uint32_t start;

		while (i < end && gen[off + i] != cur_gen)
			i++;
		start = i;
		while (i < end && gen[off + i] == cur_gen)
			i++;
		if (memcmp(data + start, shadow + off + start, i - start))
			for (uint32_t k = start; k < i; k++)
				if (data[k] != shadow[off + k])
					return (int64_t)off + k;
	}
	return -1;
}

/* A READ's DATA for LEN bytes at OFF must hold what this input wrote. */
static void check_read(uint64_t off, uint32_t len, const uint8_t *data)
{
	int64_t bad = read_mismatch((uint32_t)off, len, data);

	FUZZ_CHECK(bad < 0, "READ of %u bytes at %llu: byte %lld is %#x, was written as %#x",
		   len, (unsigned long long)off, (long long)bad, data[bad - (int64_t)off], shadow[bad]);
}

/* The structured reply to request Q (whose EXPECT is as in
 * model_transmission); returns its NBD error, 0 for success. */
static uint32_t structured_reply(struct session *s, const uint8_t *q, const uint8_t *cookie, int expect)
{
	uint16_t flags = be16(q + 4), type = be16(q + 6);
	uint64_t off = be64(q + 16), pos = off;
	uint32_t len = be32(q + 24), err = 0, content = 0, statuses = 0;
	bool done = false;

	while (!done) {
		const uint8_t *h = out_take(s, 20, "a structured reply chunk"), *p;
		uint16_t ctype = be16(h + 6);
		uint32_t clen = be32(h + 16);

		FUZZ_CHECK(be32(h) == NBD_STRUCTURED_REPLY_MAGIC, "chunk magic %#x", be32(h));
		FUZZ_CHECK(!memcmp(h + 8, cookie, 8), "chunk cookie is not the request's");
		FUZZ_CHECK(!(be16(h + 4) & ~NBD_REPLY_FLAG_DONE), "chunk flags %#x", be16(h + 4));
		done = be16(h + 4) & NBD_REPLY_FLAG_DONE;
		p = out_take(s, clen, "chunk payload");
		switch (ctype) {
		case NBD_REPLY_TYPE_NONE:
			FUZZ_CHECK(done && clen == 0, "NONE chunk of %u bytes, done %d", clen, done);
			break;
		case NBD_REPLY_TYPE_ERROR:
		case NBD_REPLY_TYPE_ERROR_OFFSET:
			FUZZ_CHECK(clen >= 6 && 6u + be16(p + 4) <= clen, "error chunk of %u bytes", clen);
			err = be32(p);
			FUZZ_CHECK(is_nbd_error(err), "error chunk with error %u", err);
			break;
		case NBD_REPLY_TYPE_OFFSET_DATA:
		case NBD_REPLY_TYPE_OFFSET_HOLE: {
			uint32_t n = ctype == NBD_REPLY_TYPE_OFFSET_HOLE ? (clen == 12 ? be32(p + 8) : 0) : clen - 8;

			FUZZ_CHECK(type == NBD_CMD_READ && !err, "content chunk for command %u (error %u)", type, err);
			FUZZ_CHECK(clen >= 9 && n > 0, "content chunk type %u of %u bytes", ctype, clen);
			FUZZ_CHECK(be64(p) == pos && n <= off + len - pos, "content chunk at %llu+%u, expected at %llu of %llu+%u",
				   (unsigned long long)be64(p), n, (unsigned long long)pos, (unsigned long long)off, len);
			FUZZ_CHECK(!(flags & NBD_CMD_FLAG_DF) || (ctype == NBD_REPLY_TYPE_OFFSET_DATA && content == 0),
				   "DF read fragmented or a hole");
			check_read(pos, n, ctype == NBD_REPLY_TYPE_OFFSET_HOLE ? zeros : p + 8);
			pos += n;
			content++;
			break;
		}
		case NBD_REPLY_TYPE_BLOCK_STATUS: {
			uint32_t n = (clen - 4) / 8, sum = 0;

			FUZZ_CHECK(type == NBD_CMD_BLOCK_STATUS && statuses++ == 0, "BLOCK_STATUS chunk for %u", type);
			FUZZ_CHECK(clen >= 12 && (clen - 4) % 8 == 0 && n <= NBD_MAX_EXTENTS, "BLOCK_STATUS of %u bytes", clen);
			FUZZ_CHECK(!(flags & NBD_CMD_FLAG_REQ_ONE) || n == 1, "REQ_ONE answered %u extents", n);
			FUZZ_CHECK(be32(p) == s->meta_id, "BLOCK_STATUS for context %u, not %u", be32(p), s->meta_id);
			for (uint32_t i = 0; i < n; i++) {
				uint32_t elen = be32(p + 4 + 8 * i), ef = be32(p + 8 + 8 * i);

				FUZZ_CHECK(elen && elen <= len - sum, "extent %u of %u bytes (%u of %u so far)", i, elen, sum, len);
				FUZZ_CHECK(ef == 0 || ef == (NBD_STATE_HOLE | NBD_STATE_ZERO), "extent flags %#x", ef);
				if (ef)
					check_read(off + sum, elen, zeros);
				sum += elen;
			}
			break;
		}
		default:
			FUZZ_CHECK(false, "unknown chunk type %u", ctype);
		}
	}
	if (type == NBD_CMD_READ && !err)
		FUZZ_CHECK(pos == off + len, "READ chunks cover %llu of %u bytes", (unsigned long long)(pos - off), len);
	if (type == NBD_CMD_BLOCK_STATUS && !err)
		FUZZ_CHECK(statuses == 1, "successful BLOCK_STATUS without its chunk");
	(void)expect;
	return err;
}

/* Transmission: requests in, replies out, in order. */
static void model_transmission(struct session *s)
{
	const uint8_t *q;

	while ((q = take(&s->in, 28)) != NULL && be32(q) == NBD_REQUEST_MAGIC) {
		uint16_t flags = be16(q + 4), type = be16(q + 6);
		const uint8_t *cookie = q + 8, *payload = NULL, *h;
		uint64_t off = be64(q + 16);
		uint32_t len = be32(q + 24), err;
		bool in_range = off <= VOL_SIZE && len <= VOL_SIZE - off;
		uint16_t allowed = NBD_CMD_FLAG_FUA | (type == NBD_CMD_WRITE_ZEROES ? NBD_CMD_FLAG_NO_HOLE : 0) |
			(type == NBD_CMD_READ && s->structured ? NBD_CMD_FLAG_DF : 0) |
			(type == NBD_CMD_BLOCK_STATUS ? NBD_CMD_FLAG_REQ_ONE : 0);
		bool good_flags = !(flags & ~allowed);
		int expect; /* 1: must succeed, 0: must fail, -1: either */

		if (type == NBD_CMD_DISC)
			break;
		if (type == NBD_CMD_WRITE && !(payload = take(&s->in, len)))
			break; /* EOF inside the payload: no reply, nothing written */
		switch (type) {
		case NBD_CMD_READ:
		case NBD_CMD_CACHE:
			expect = in_range && good_flags;
			break;
		case NBD_CMD_WRITE:
		case NBD_CMD_WRITE_ZEROES:
			expect = !s->ro && in_range && good_flags;
			break;
		case NBD_CMD_TRIM:
			expect = s->trim && in_range && good_flags;
			break;
		case NBD_CMD_FLUSH:
			expect = !good_flags ? 0 : off || len ? -1 : 1;
			break;
		case NBD_CMD_BLOCK_STATUS:
			expect = s->meta && len && in_range && good_flags;
			break;
		default:
			expect = 0;
			break;
		}
		if (len == 0 && type != NBD_CMD_FLUSH && expect != 0)
			expect = -1; /* zero-length requests: the spec leaves it open */

		if (s->structured && (type == NBD_CMD_READ || type == NBD_CMD_BLOCK_STATUS || expect == 0)) {
			err = structured_reply(s, q, cookie, expect);
		} else {
			h = out_take(s, 4, "a reply");
			if (s->structured && be32(h) == NBD_STRUCTURED_REPLY_MAGIC) {
				s->out.pos -= 4; /* an error that may come either way */
				err = structured_reply(s, q, cookie, expect);
			} else {
				h = out_take(s, 12, "a simple reply") - 4;
				FUZZ_CHECK(be32(h) == NBD_SIMPLE_REPLY_MAGIC, "simple reply magic %#x", be32(h));
				FUZZ_CHECK(!memcmp(h + 8, cookie, 8), "reply cookie is not the request's (replies out of order?)");
				err = be32(h + 4);
				if (type == NBD_CMD_READ && !err)
					check_read(off, len, out_take(s, len, "READ data"));
			}
		}
		FUZZ_CHECK(!err || is_nbd_error(err), "reply error %u is no NBD error", err);
		FUZZ_CHECK(expect != 1 || !err, "valid command %u (flags %#x, %u bytes at %llu) failed: error %u",
			   type, flags, len, (unsigned long long)off, err);
		FUZZ_CHECK(expect != 0 || err, "invalid command %u (flags %#x, %u bytes at %llu, read-only %d, trim %d) succeeded",
			   type, flags, len, (unsigned long long)off, s->ro, s->trim);

		switch (type) {
		case NBD_CMD_WRITE:
		case NBD_CMD_WRITE_ZEROES:
			if (!err)
				remember((uint32_t)off, len, payload);
			else if (in_range)
				forget((uint32_t)off, len); /* failed for another reason: unknown */
			break;
		case NBD_CMD_TRIM:
			if (!err) { /* whole sectors punched: zero ciphertext, read as zeros */
				uint32_t first = ((uint32_t)off + SECTOR - 1) / SECTOR * SECTOR;
				uint32_t end = ((uint32_t)off + len) / SECTOR * SECTOR;

				if (end > first)
					remember(first, end - first, NULL);
			} else if (in_range && len) {
				uint32_t first = (uint32_t)off / SECTOR * SECTOR;

				forget(first, ((uint32_t)off + len + SECTOR - 1) / SECTOR * SECTOR - first);
			}
			break;
		}
	}
	expect_end(s, "the last request it could serve");
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct session s = { 0 };
	struct bc_nbd_server *srv;
	struct stat st;
	void *out = NULL;
	int r;

	if (size < 1)
		return 0;
	s.v = &variants[data[0] & 3];
	s.name = s.v->export_name ? s.v->export_name : "";
	s.ro = s.v->ro_param || s.v->ro_volume;
	s.trim = s.v->discards && !s.ro;
	s.tls = data[0] & 4;
	s.in = (struct cursor){ data + 1, size - 1, 0 };
	cur_gen++;
	known_lo = known_hi = 0;

	FUZZ_CHECK(ftruncate(in_fd, 0) == 0 && ftruncate(out_fd, 0) == 0, "ftruncate: %s", strerror(errno));
	FUZZ_CHECK(pwrite(in_fd, data + 1, size - 1, 0) == (ssize_t)(size - 1), "pwrite: %s", strerror(errno));
	FUZZ_CHECK(lseek(in_fd, 0, SEEK_SET) == 0 && lseek(out_fd, 0, SEEK_SET) == 0, "lseek: %s", strerror(errno));

	srv = s.tls ? s.v->srv_tls : s.v->srv;
	r = bc_nbd_server_serve_fds(srv, in_fd, out_fd);
	FUZZ_CHECK(r == 0, "bc_nbd_server_serve_fds: %d (%s)", r, bc_last_error());
	FUZZ_CHECK(bc_nbd_server_clients(srv) == 0, "a connection is still registered");

	FUZZ_CHECK(fstat(out_fd, &st) == 0, "fstat: %s", strerror(errno));
	if (st.st_size) {
		out = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_SHARED, out_fd, 0);
		FUZZ_CHECK(out != MAP_FAILED, "mmap: %s", strerror(errno));
	}
	s.out = (struct cursor){ out, (size_t)st.st_size, 0 };
	if (model_handshake(&s))
		model_transmission(&s);
	else
		expect_end(&s, "the handshake ended");
	if (out)
		munmap(out, (size_t)st.st_size);
	return 0;
}
