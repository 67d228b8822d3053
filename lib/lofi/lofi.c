/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * lofi encrypted images, as illumos lofi(4D) and lofiadm(8) make them
 * (docs/blockcrypt-lofi.7.md): a 512-byte CFLOFI header at byte 8192 that
 * gives only a format version and where the data starts; the cipher and
 * the key are not recorded, so they come from the caller as they come
 * from lofiadm's -c and -k.  The data is AES-CBC per 512-byte sector with
 * lofi's IV (BC_IV_LOFI in the sector engine).
 *
 * The on-disk header (struct lofi_disk_header) is only ever read into
 * memory and converted by header_from_disk(); the rest of the code sees
 * struct bci_lofi_header.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include <openssl/evp.h>

#include "backing/backing.h"
#include "core/error.h"
#include "core/macros.h"
#include "core/secret.h"
#include "engine/cipher_spec.h"
#include "lofi/lofi.h"
#include "volume/volume.h"

/* The header as it is on disk: big-endian numbers, no padding. */
struct lofi_disk_header {
	char magic[6];           /* "CFLOFI", no terminator */
	uint8_t version[2];      /* big endian */
	uint8_t reserved1[96];
	uint8_t data_sector[4];  /* big endian, 512-byte units */
	uint8_t pad[404];
} __attribute__((packed));

_Static_assert(sizeof(struct lofi_disk_header) == BCI_LOFI_HEADER_SIZE, "lofi header is one sector");

static const char lofi_magic[6] = { 'C', 'F', 'L', 'O', 'F', 'I' };

/* lofi writes data_sector 16 (the data area starts where the header is:
 * see the man page); fewer would put the image's first 8 KiB, which lofi
 * never encrypts, in the data area. */
#define LOFI_MIN_DATA_SECTOR 16u
/* lofiadm's passphrase key: PBKDF2-HMAC-SHA1, the passphrase as its own
 * salt, 1000 rounds, the largest AES key; passphrases of 8 bytes or more. */
#define LOFI_PBKDF2_ITERATIONS 1000
#define LOFI_PASSPHRASE_KEY_BYTES 32u
#define LOFI_MIN_PASSPHRASE 8u

static int header_from_disk(const struct lofi_disk_header *d, uint64_t image_size,
			    struct bci_lofi_header *out)
{
	uint64_t offset;

	memset(out, 0, sizeof(*out));
	if (memcmp(d->magic, lofi_magic, sizeof(lofi_magic)))
		return bci_error(-EBADMSG, "lofi: no CFLOFI header at byte %u (not a lofi encrypted image)",
				BCI_LOFI_HEADER_OFFSET);
	out->version = (uint16_t)(d->version[0] << 8 | d->version[1]);
	if (out->version != 0)
		return bci_error(-ENOTSUP, "lofi: header version %u is not supported (only 0)", out->version);
	if (!bci_all_zero(d->reserved1, sizeof(d->reserved1)) || !bci_all_zero(d->pad, sizeof(d->pad)))
		return bci_error(-ENOTSUP, "lofi: the header's reserved bytes are not zero (a newer lofi?)");
	out->data_sector = (uint32_t)d->data_sector[0] << 24 | (uint32_t)d->data_sector[1] << 16 |
			   (uint32_t)d->data_sector[2] << 8 | d->data_sector[3];
	if (out->data_sector < LOFI_MIN_DATA_SECTOR)
		return bci_error(-EBADMSG, "lofi: data sector %u is inside the image's first %u bytes",
				out->data_sector, LOFI_MIN_DATA_SECTOR * BCI_LOFI_SECTOR);
	/* A 32-bit count of 512-byte units cannot overflow 64 bits. */
	offset = (uint64_t)out->data_sector * BCI_LOFI_SECTOR;
	if (offset >= image_size)
		return bci_error(-ENOSPC, "lofi: data sector %u starts at byte %llu, past the image's end (%llu bytes)",
				out->data_sector, (unsigned long long)offset, (unsigned long long)image_size);
	out->data_offset = offset;
	return 0;
}

int bci_lofi_header_parse(const uint8_t *buf, size_t len, uint64_t image_size,
			  struct bci_lofi_header *out)
{
	struct lofi_disk_header d;

	memset(out, 0, sizeof(*out));
	if (len < sizeof(d))
		return bci_error(-ENOSPC, "lofi: header needs %zu bytes, got %zu", sizeof(d), len);
	if (image_size % BCI_LOFI_SECTOR)
		return bci_error(-EBADMSG, "lofi: image size %llu is not a multiple of %u",
				(unsigned long long)image_size, BCI_LOFI_SECTOR);
	memcpy(&d, buf, sizeof(d));
	return header_from_disk(&d, image_size, out);
}

int bci_lofi_header_read(const char *backing, struct bci_lofi_header *out)
{
	struct bci_backing *b = NULL;
	uint8_t buf[BCI_LOFI_HEADER_SIZE];
	uint64_t size = 0;
	int r;

	memset(out, 0, sizeof(*out));
	r = bci_backing_open(backing, true, &b);
	if (r < 0)
		goto out;
	r = bci_backing_size(b, &size);
	if (r < 0)
		goto out;
	if (size < (uint64_t)BCI_LOFI_HEADER_OFFSET + BCI_LOFI_HEADER_SIZE) {
		r = bci_error(-ENOSPC, "%s: lofi: %llu bytes is too small for an image (header at byte %u)",
			     backing, (unsigned long long)size, BCI_LOFI_HEADER_OFFSET);
		goto out;
	}
	r = bci_backing_pread(b, buf, sizeof(buf), BCI_LOFI_HEADER_OFFSET);
	if (r < 0)
		goto out;
	r = bci_lofi_header_parse(buf, sizeof(buf), size, out);
	if (r < 0) {
		char msg[BC_ERROR_MAX];

		snprintf(msg, sizeof(msg), "%s", bc_last_error());
		r = bci_error(r, "%s: %s", backing, msg);
	}
out:
	bci_backing_close(b);
	return r;
}

/* Key size in bits of a raw key of LEN bytes (lofi takes the key file's
 * size), checked against the cipher name and --key-size if given. */
static int raw_key_bits(const struct bc_open_params *p, size_t len, uint32_t *bits)
{
	if (len != 16 && len != 24 && len != 32)
		return bci_error(-EINVAL, "lofi: key file holds %zu bytes; an AES key is 16, 24 or 32", len);
	*bits = (uint32_t)len * 8;
	if (p->key_bits && p->key_bits != *bits)
		return bci_error(-EINVAL, "lofi: --key-size %u does not match the %zu-byte key file",
				p->key_bits, len);
	return 0;
}

static int passphrase_key(const struct bc_secret *pass, struct bc_secret **out)
{
	struct bc_secret *key = NULL;
	const size_t len = bc_secret_len(pass);
	int r;

	*out = NULL;
	if (len < LOFI_MIN_PASSPHRASE || len > INT32_MAX)
		return bci_error(-EINVAL, "lofi: passphrase must be at least %u characters (as lofiadm requires)",
				LOFI_MIN_PASSPHRASE);
	r = bc_secret_new(LOFI_PASSPHRASE_KEY_BYTES, &key);
	if (r < 0)
		return r;
	if (!PKCS5_PBKDF2_HMAC((const char *)bc_secret_data(pass), (int)len, bc_secret_data(pass),
			       (int)len, LOFI_PBKDF2_ITERATIONS, EVP_sha1(),
			       LOFI_PASSPHRASE_KEY_BYTES, bc_secret_buf(key))) {
		bc_secret_free(key);
		return bci_error(-EIO, "lofi: passphrase key derivation failed");
	}
	bc_secret_set_len(key, LOFI_PASSPHRASE_KEY_BYTES);
	*out = key;
	return 0;
}

int bci_lofi_open_volume(const char *backing, const struct bc_open_params *p,
			 const struct bc_secret *secret, struct bc_volume **out)
{
	struct bc_volume_info info = { .type = BC_TYPE_LOFI, .keyslot = -1 };
	_cleanup_secret_ struct bc_secret *key = NULL;
	struct bci_lofi_layout l = { 0 };
	struct bci_cipher_spec spec;
	char name[16];
	int r;

	*out = NULL;
	if (!secret)
		return bci_error(-EINVAL, "lofi: a key file or a passphrase is needed");
	if (p->offset || p->skip || p->iv_large_sectors || (p->sector_size && p->sector_size != BCI_LOFI_SECTOR))
		return bci_error(-EINVAL, "lofi: --offset, --skip, --sector-size and --iv-large-sectors do not apply: the layout comes from the CFLOFI header");
	if (p->hash) {
		/* lofiadm -c without -k: the key comes from a passphrase. */
		if (p->key_bits && p->key_bits != LOFI_PASSPHRASE_KEY_BYTES * 8)
			return bci_error(-EINVAL, "lofi: a passphrase gives a 256-bit key, not --key-size %u",
					p->key_bits);
		l.key_bits = LOFI_PASSPHRASE_KEY_BYTES * 8;
	} else {
		r = raw_key_bits(p, bc_secret_len(secret), &l.key_bits);
		if (r < 0)
			return r;
	}
	if (p->cipher) {
		r = bci_cipher_spec_parse(p->cipher, 0, &spec);
		if (r < 0)
			return r;
		if (spec.iv != BC_IV_LOFI)
			return bci_error(-EINVAL, "lofi: cipher %s: lofi's are aes-128-cbc, aes-192-cbc, aes-256-cbc",
					p->cipher);
		/* lofi itself takes the key's size whatever -c says; a raw
		 * key that disagrees with the name is most likely the wrong file. */
		if (!p->hash && spec.key_bytes * 8 != l.key_bits)
			return bci_error(-EINVAL, "lofi: cipher %s needs a %u-byte key, the key file holds %u",
					spec.name, spec.key_bytes, l.key_bits / 8);
	}
	snprintf(name, sizeof(name), "aes-%u-cbc", l.key_bits);
	r = bci_cipher_spec_parse(name, l.key_bits, &spec);
	if (r < 0)
		return r;
	snprintf(l.cipher, sizeof(l.cipher), "%s", spec.name);

	r = bci_lofi_header_read(backing, &l.header);
	if (r < 0)
		return r;
	if (p->hash)
		r = passphrase_key(secret, &key);
	else
		r = bc_secret_from_bytes(bc_secret_data(secret), bc_secret_len(secret), &key);
	if (r < 0)
		return r;

	snprintf(info.cipher, sizeof(info.cipher), "%s", l.cipher);
	info.key_bits = l.key_bits;
	info.sector_size = BCI_LOFI_SECTOR;
	info.data_offset = l.header.data_offset;
	info.iv_offset = 0;
	if (p->size > UINT64_MAX / BCI_LOFI_SECTOR)
		return bci_error(-EINVAL, "lofi: size too large");
	info.size = p->size * BCI_LOFI_SECTOR;
	info.read_only = p->read_only;
	return bci_volume_create(backing, &info, bc_secret_data(key), out);
}
