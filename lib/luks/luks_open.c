/* SPDX-License-Identifier: GPL-2.0-or-later */
/* Unlocking LUKS volumes through libcryptsetup, with a passphrase or a
 * token.  The volume key only ever lives in secure memory and is dropped
 * as soon as the sector engine is keyed. */
#include <errno.h>
#include <string.h>

#include "core/error.h"
#include "core/secret.h"
#include "luks/luks.h"
#include "luks/luks_token.h"
#include "volume/volume.h"

/* Get the volume key into KEY with PASS, trying key slot SLOT only (or
 * any, CRYPT_ANY_SLOT); returns the key slot used. */
static int unlock_key(struct crypt_device *cd, const char *path, int slot, const struct bc_secret *pass,
		      struct bc_secret *key, size_t *key_size)
{
	crypt_keyslot_info ki;
	int r;

	if (bci_luks_count_slots(cd) == 0)
		return bci_error(-EPERM, "%s: no key slot is in use (volume erased?)", path);
	if (slot != CRYPT_ANY_SLOT) {
		if (slot < 0 || slot >= crypt_keyslot_max(crypt_get_type(cd)))
			return bci_error(-EINVAL, "%s: key slot %d does not exist (%s has %d)", path, slot,
					crypt_get_type(cd), crypt_keyslot_max(crypt_get_type(cd)));
		ki = crypt_keyslot_status(cd, slot);
		if (ki != CRYPT_SLOT_ACTIVE && ki != CRYPT_SLOT_ACTIVE_LAST)
			return bci_error(-EPERM, "%s: key slot %d is not in use", path, slot);
	}
	r = crypt_volume_key_get(cd, slot, (char *)bc_secret_buf(key), key_size,
				 (const char *)bc_secret_data(pass), bc_secret_len(pass));
	if (r < 0) {
		if ((r == -EPERM || r == -ENOENT) && slot != CRYPT_ANY_SLOT)
			return bci_error(-EPERM, "%s: key slot %d does not accept this passphrase", path, slot);
		if (r == -EPERM || r == -ENOENT)
			return bci_error(-EPERM, "%s: no key slot accepts this passphrase", path);
		if (r == -ENOMEM)
			return bci_luks_fail(-ENOMEM, path, "key derivation needs more memory than allowed");
		return bci_luks_fail(r == -EINVAL ? -EBADMSG : r, path, "cannot unlock key slot");
	}
	return r;
}

int bci_luks_open_volume(const char *backing, const struct bc_open_params *p,
			const struct bc_secret *pass, struct bc_volume **out)
{
	const struct bc_unlock *u = p->unlock;
	const char *where = p->header ? p->header : backing;
	struct crypt_device *cd = NULL;
	struct bc_volume_info info = { 0 };
	_cleanup_secret_ struct bc_secret *key = NULL, *asked = NULL;
	size_t key_size;
	int r, slot = -ENOENT;

	*out = NULL;
	r = bci_luks_load_cd_detached(backing, p->header, p->type, &cd);
	if (r < 0)
		return r;
	r = bci_luks_layout(cd, &info);
	if (r < 0)
		goto out;
	if (!p->read_only) {
		r = bci_luks_check_header_change(cd, where, "writing data (attach --read-only works)");
		if (r < 0)
			goto out;
	}
	key_size = (size_t)crypt_get_volume_key_size(cd);
	r = bc_secret_new(key_size, &key);
	if (r < 0)
		goto out;
	if (u && u->token_only && info.type != BC_TYPE_LUKS2) {
		r = bci_error(-ENOENT, "%s: a %s volume cannot hold tokens (--token-only)", where,
			     bc_volume_type_name(info.type));
		goto out;
	}
	if (u && u->use_tokens && info.type == BC_TYPE_LUKS2) {
		slot = bci_luks_token_unlock(cd, where, u, key, &key_size);
		if (slot < 0 && (u->token_only || (!pass && !u->get_passphrase))) {
			r = slot;
			goto out;
		}
	}
	if (slot < 0) {
		if (!pass && u && u->get_passphrase) {
			r = u->get_passphrase(u->user, &asked);
			if (r < 0)
				goto out;
			pass = asked;
		}
		if (!pass) {
			r = bci_error(-EINVAL, "%s: no passphrase given", where);
			goto out;
		}
		slot = unlock_key(cd, where, p->key_slot_set ? p->key_slot : CRYPT_ANY_SLOT, pass, key,
				  &key_size);
		if (slot < 0) {
			r = slot;
			goto out;
		}
	}
	bc_secret_set_len(key, key_size);
	info.keyslot = slot;
	info.read_only = p->read_only;
	bci_luks_free_cd(cd);
	cd = NULL;
	r = bci_volume_create(backing, &info, bc_secret_data(key), out);
out:
	bci_luks_free_cd(cd);
	return r;
}
