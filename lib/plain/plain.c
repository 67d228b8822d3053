/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Plain volumes: no header, so the layout is what the caller says (in
 * cryptsetup's plain-mode units) and the key is the secret itself (a key
 * file, or a token-derived key) or a passphrase hashed exactly as
 * cryptsetup's plain mode hashes it.  For that hash we ask libcryptsetup
 * itself, so the two can never disagree; the glue that reports its errors
 * is lib/luks's (luks/luks.h), the only thing used from there.
 */
#include <errno.h>
#include <stdio.h>

#include "core/error.h"
#include "core/secret.h"
#include "engine/cipher_spec.h"
#include "luks/luks.h"
#include "plain/plain.h"
#include "volume/volume.h"

/* Offsets and sizes of plain volumes count 512-byte sectors (cryptsetup's
 * --offset, --skip, --size), whatever the encryption sector size. */
#define PLAIN_UNIT 512u

/* The key for SECRET: as it is (P->hash NULL), or hashed with P->hash. */
static int derive_key(const char *backing, const struct bc_open_params *p,
		      const struct bc_secret *secret, uint32_t key_bytes,
		      struct bc_secret **key_out)
{
	struct crypt_device *cd = NULL;
	struct crypt_params_plain params = { .hash = p->hash };
	struct bci_cipher_spec spec;
	struct bc_secret *key = NULL;
	size_t key_size = key_bytes;
	int r;

	*key_out = NULL;
	if (!p->hash) {
		/* A key file is the key itself, as with cryptsetup --key-file. */
		if (bc_secret_len(secret) < key_bytes)
			return bci_error(-EINVAL, "plain: key file holds %zu bytes, the cipher needs %u",
					bc_secret_len(secret), key_bytes);
		return bc_secret_from_bytes(bc_secret_data(secret), key_bytes, key_out);
	}
	/* A passphrase is hashed exactly as cryptsetup's plain mode does. */
	bci_luks_init();
	r = bci_cipher_spec_parse(p->cipher ? p->cipher : BC_DEFAULT_PLAIN_CIPHER, key_bytes * 8, &spec);
	if (r < 0)
		return r;
	r = bci_luks_init_cd(backing, &cd);
	if (r < 0)
		return r;
	r = crypt_format(cd, CRYPT_PLAIN, spec.cipher, spec.mode, NULL, NULL, key_bytes, &params);
	if (r < 0) {
		r = bci_luks_fail(-EINVAL, backing, "plain parameters");
		goto out;
	}
	r = bc_secret_new(key_bytes, &key);
	if (r < 0)
		goto out;
	r = crypt_volume_key_get(cd, CRYPT_ANY_SLOT, (char *)bc_secret_buf(key), &key_size,
				 (const char *)bc_secret_data(secret), bc_secret_len(secret));
	if (r < 0) {
		r = bci_luks_fail(-EINVAL, backing, "plain key derivation");
		goto out;
	}
	bc_secret_set_len(key, key_size);
	*key_out = key;
	key = NULL;
	r = 0;
out:
	bc_secret_free(key);
	bci_luks_free_cd(cd);
	return r;
}

int bc_plain_key_bits(const char *cipher, uint32_t key_bits)
{
	struct bci_cipher_spec spec;
	int r;

	if (!cipher)
		cipher = BC_DEFAULT_PLAIN_CIPHER;
	if (key_bits)
		return bc_cipher_key_bits(cipher, key_bits);
	/* Only lofi's names fix the size (aes-256-cbc); for dm-crypt's
	 * cryptsetup plain takes 256 bits. */
	r = bci_cipher_spec_parse(cipher, 0, &spec);
	if (r < 0)
		return r;
	if (spec.iv == BC_IV_LOFI)
		return (int)(spec.key_bytes * 8);
	return bc_cipher_key_bits(cipher, BC_DEFAULT_PLAIN_KEY_BITS);
}

int bci_plain_open_volume(const char *backing, const struct bc_open_params *p,
			 const struct bc_secret *secret, struct bc_volume **out)
{
	struct bc_volume_info info = { .type = BC_TYPE_PLAIN, .keyslot = -1 };
	struct bci_cipher_spec spec;
	_cleanup_secret_ struct bc_secret *key = NULL;
	int r;

	*out = NULL;
	r = bc_plain_key_bits(p->cipher, p->key_bits);
	if (r < 0)
		return r;
	r = bci_cipher_spec_parse(p->cipher ? p->cipher : BC_DEFAULT_PLAIN_CIPHER, (uint32_t)r, &spec);
	if (r < 0)
		return r;
	snprintf(info.cipher, sizeof(info.cipher), "%s", spec.name);
	info.key_bits = spec.key_bytes * 8;
	info.sector_size = p->sector_size ? p->sector_size : PLAIN_UNIT;
	info.iv_large_sectors = p->iv_large_sectors;
	if (p->offset > UINT64_MAX / PLAIN_UNIT || p->size > UINT64_MAX / PLAIN_UNIT)
		return bci_error(-EINVAL, "plain: offset or size too large");
	info.data_offset = p->offset * PLAIN_UNIT;
	info.iv_offset = p->skip;
	info.size = p->size * PLAIN_UNIT;
	info.read_only = p->read_only;
	if (info.data_offset % info.sector_size)
		return bci_error(-EINVAL, "plain: offset must be a multiple of the sector size");
	r = derive_key(backing, p, secret, spec.key_bytes, &key);
	if (r < 0)
		return r;
	return bci_volume_create(backing, &info, bc_secret_data(key), out);
}
