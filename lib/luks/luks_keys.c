/* SPDX-License-Identifier: GPL-2.0-or-later */
/* Key slot management, dumps and header backup/restore/repair: thin,
 * checked wrappers over libcryptsetup with this library's error meanings. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <unistd.h>

#include <json-c/json.h>

#include "core/error.h"
#include "core/secret.h"
#include "luks/luks.h"

#define PASS(s) (const char *)bc_secret_data(s), bc_secret_len(s)

int bc_luks_load(const char *backing, bool read_only, struct bc_luks **out)
{
	return bc_luks_load_detached(backing, NULL, read_only, out);
}

int bc_luks_load_detached(const char *backing, const char *header, bool read_only,
			  struct bc_luks **out)
{
	const char *where = header ? header : backing;
	struct bc_luks *l;
	int r;

	*out = NULL;
	if (!read_only) {
		/* Header changes write the header file only. */
		r = bci_check_writable(where);
		if (r < 0)
			return r;
	}
	l = calloc(1, sizeof(*l));
	if (!l || !(l->path = strdup(where)) || !(l->data = strdup(backing)) ||
	    (header && !(l->header = strdup(header)))) {
		bc_luks_free(l);
		return bci_error(-ENOMEM, "out of memory");
	}
	r = bci_luks_load_cd_detached(backing, header, BC_TYPE_AUTO, &l->cd);
	/* Header changes are refused on headers we must not write (unknown
	 * requirements, unsupported layouts) before anything is derived. */
	if (r == 0 && !read_only)
		r = bci_luks_check_header_change(l->cd, where, "changing the header");
	if (r < 0) {
		bc_luks_free(l);
		return r;
	}
	*out = l;
	return 0;
}

void bc_luks_free(struct bc_luks *l)
{
	if (!l)
		return;
	bci_luks_free_cd(l->cd);
	free(l->path);
	free(l->data);
	free(l->header);
	free(l);
}

static int wrong_key(int r, struct bc_luks *l, const char *context)
{
	if (r == -EPERM || r == -ENOENT)
		return bci_error(-EPERM, "%s: no key slot accepts this passphrase", l->path);
	return bci_luks_fail(r, l->path, context);
}

int bc_luks_check_key(struct bc_luks *l, const struct bc_secret *pass)
{
	int r;

	bci_luks_init();
	r = bci_luks_check_keyslots(l->cd, l->path);  /* absurd KDF costs */
	if (r < 0)
		return r;
	r = crypt_activate_by_passphrase(l->cd, NULL, CRYPT_ANY_SLOT, PASS(pass), 0);
	return r < 0 ? wrong_key(r, l, "cannot unlock") : r;
}

int bc_luks_add_key(struct bc_luks *l, const struct bc_secret *existing,
		    const struct bc_secret *new_pass, int slot,
		    const struct bc_pbkdf_params *pbkdf)
{
	int r;

	bci_luks_init();
	if (slot >= crypt_keyslot_max(crypt_get_type(l->cd)))
		return bci_error(-EINVAL, "%s: key slot %d does not exist", l->path, slot);
	if (slot >= 0 && crypt_keyslot_status(l->cd, slot) != CRYPT_SLOT_INACTIVE)
		return bci_error(-EBUSY, "%s: key slot %d is in use", l->path, slot);
	r = bci_luks_set_pbkdf(l->cd, NULL, pbkdf);
	if (r < 0)
		return r;
	r = crypt_keyslot_add_by_passphrase(l->cd, slot < 0 ? CRYPT_ANY_SLOT : slot,
					    PASS(existing), PASS(new_pass));
	return bci_luks_commit(l->cd, r < 0 ? wrong_key(r, l, "cannot add key slot") : r);
}

int bc_luks_change_key(struct bc_luks *l, const struct bc_secret *old_pass,
		       const struct bc_secret *new_pass, const struct bc_pbkdf_params *pbkdf)
{
	int r;

	bci_luks_init();
	r = bci_luks_set_pbkdf(l->cd, NULL, pbkdf);
	if (r < 0)
		return r;
	/* libcryptsetup stores the new key in a free slot, commits the header,
	 * then destroys the old slot.  A crash in between leaves the old key,
	 * both keys, or the new key alone (the old slot may still be listed
	 * with its key material already wiped); never neither.  Shown by
	 * tests/shell/crash-header-keys.sh (kills at every write). */
	r = crypt_keyslot_change_by_passphrase(l->cd, CRYPT_ANY_SLOT, CRYPT_ANY_SLOT,
					       PASS(old_pass), PASS(new_pass));
	return bci_luks_commit(l->cd, r < 0 ? wrong_key(r, l, "cannot change key") : r);
}

int bc_luks_kill_slot(struct bc_luks *l, int slot)
{
	crypt_keyslot_info ki;
	int r;

	bci_luks_init();
	if (slot < 0 || slot >= crypt_keyslot_max(crypt_get_type(l->cd)))
		return bci_error(-EINVAL, "%s: key slot %d does not exist", l->path, slot);
	ki = crypt_keyslot_status(l->cd, slot);
	if (ki != CRYPT_SLOT_ACTIVE && ki != CRYPT_SLOT_ACTIVE_LAST && ki != CRYPT_SLOT_UNBOUND)
		return bci_error(-ENOENT, "%s: key slot %d is not in use", l->path, slot);
	r = crypt_keyslot_destroy(l->cd, slot);
	return bci_luks_commit(l->cd, r < 0 ? bci_luks_fail(r, l->path, "cannot destroy key slot") : 0);
}

int bc_luks_remove_key(struct bc_luks *l, const struct bc_secret *pass)
{
	int slot = bc_luks_check_key(l, pass);

	return slot < 0 ? slot : bc_luks_kill_slot(l, slot);
}

int bc_luks_active_slots(struct bc_luks *l)
{
	return bci_luks_count_slots(l->cd);
}

int bc_luks_erase(struct bc_luks *l)
{
	int max = crypt_keyslot_max(crypt_get_type(l->cd));

	for (int i = 0; i < max; i++) {
		crypt_keyslot_info ki = crypt_keyslot_status(l->cd, i);

		if (ki == CRYPT_SLOT_ACTIVE || ki == CRYPT_SLOT_ACTIVE_LAST || ki == CRYPT_SLOT_UNBOUND) {
			int r = bc_luks_kill_slot(l, i);

			if (r < 0)
				return r;
		}
	}
	return 0;
}

int bc_luks_dump_text(struct bc_luks *l)
{
	int r;

	r = bci_luks_dump(l->cd, l->path);
	return r < 0 ? bci_luks_fail(r, l->path, "dump") : 0;
}

static const char *slot_state(crypt_keyslot_info ki)
{
	switch (ki) {
	case CRYPT_SLOT_ACTIVE:
	case CRYPT_SLOT_ACTIVE_LAST: return "active";
	case CRYPT_SLOT_UNBOUND: return "unbound";
	case CRYPT_SLOT_INACTIVE: return "inactive";
	default: return "invalid";
	}
}

int bc_luks_dump_json(struct bc_luks *l, char **json_out)
{
	struct crypt_device *cd = l->cd;
	struct bc_volume_info info = { 0 };
	json_object *root, *slots;
	const char *metadata = NULL;
	int r, max;

	*json_out = NULL;
	bci_luks_init();
	r = bci_luks_layout(cd, &info);
	if (r < 0 && r != -ENOTSUP)
		return r;
	root = json_object_new_object();
	json_object_object_add(root, "device", json_object_new_string(l->data));
	if (l->header)
		json_object_object_add(root, "header", json_object_new_string(l->header));
	json_object_object_add(root, "type", json_object_new_string(bc_volume_type_name(info.type)));
	json_object_object_add(root, "uuid", json_object_new_string(info.uuid));
	if (info.type == BC_TYPE_LUKS2)
		json_object_object_add(root, "label", json_object_new_string(info.label));
	json_object_object_add(root, "cipher", json_object_new_string(info.cipher));
	json_object_object_add(root, "key_bits", json_object_new_int(info.key_bits));
	json_object_object_add(root, "sector_size", json_object_new_int(info.sector_size));
	json_object_object_add(root, "data_offset", json_object_new_int64((int64_t)info.data_offset));
	json_object_object_add(root, "supported", json_object_new_boolean(r == 0));
	slots = json_object_new_array();
	max = crypt_keyslot_max(crypt_get_type(cd));
	for (int i = 0; i < max; i++) {
		crypt_keyslot_info ki = crypt_keyslot_status(cd, i);
		json_object *s;

		if (ki == CRYPT_SLOT_INACTIVE || ki == CRYPT_SLOT_INVALID)
			continue;
		s = json_object_new_object();
		json_object_object_add(s, "slot", json_object_new_int(i));
		json_object_object_add(s, "state", json_object_new_string(slot_state(ki)));
		json_object_array_add(slots, s);
	}
	json_object_object_add(root, "keyslots", slots);
	/* LUKS2: the header's own JSON area, verbatim, for tooling. */
	if (info.type == BC_TYPE_LUKS2 && crypt_dump_json(cd, &metadata, 0) == 0 && metadata) {
		json_object *m = json_tokener_parse(metadata);

		if (m)
			json_object_object_add(root, "metadata", m);
	}
	*json_out = strdup(json_object_to_json_string_ext(root, JSON_C_TO_STRING_PRETTY |
							  JSON_C_TO_STRING_NOSLASHESCAPE));
	json_object_put(root);
	return *json_out ? 0 : bci_error(-ENOMEM, "out of memory");
}

int bc_luks_header_backup(struct bc_luks *l, const char *file)
{
	int r;

	bci_luks_init();
	if (access(file, F_OK) == 0)
		return bci_error(-EEXIST, "%s: already exists; refusing to overwrite a backup", file);
	/* Find out now whether FILE can be created, with a clear error. */
	r = open(file, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (r < 0)
		return bci_error(bci_errno_access(errno),
				"%s: cannot create: %s", file, strerror(errno));
	close(r);
	unlink(file);
	r = crypt_header_backup(l->cd, NULL, file);
	return r < 0 ? bci_luks_fail(r, l->path, "header backup") : 0;
}

/* Run OP on a backing (or on its detached HEADER) without loading its
 * (possibly damaged) header. */
static int on_raw_backing(const char *backing, const char *header, const char *what,
			  int (*op)(struct crypt_device *cd, const void *arg), const void *arg)
{
	struct crypt_device *cd = NULL;
	int r = bci_luks_init_cd_detached(backing, header, &cd);

	if (r < 0)
		return r;
	r = op(cd, arg);
	if (r < 0)
		r = bci_luks_fail(r == -EINVAL ? -EBADMSG : r, header ? header : backing, what);
	r = bci_luks_commit(cd, r);
	bci_luks_free_cd(cd);
	return r;
}

static int restore_op(struct crypt_device *cd, const void *file)
{
	return crypt_header_restore(cd, NULL, file);
}

static int repair_op(struct crypt_device *cd, const void *unused)
{
	(void)unused;
	return crypt_repair(cd, NULL, NULL);
}

int bc_header_restore(const char *backing, const char *header, const char *file)
{
	int r;

	if (access(file, R_OK) < 0)
		return bci_error(-errno, "%s: %s", file, strerror(errno));
	r = bci_check_writable(header ? header : backing);
	if (r < 0)
		return r;
	return on_raw_backing(backing, header, "header restore", restore_op, file);
}

int bc_header_repair(const char *backing, const char *header)
{
	int r = bci_check_writable(header ? header : backing);

	if (r < 0)
		return r;
	return on_raw_backing(backing, header, "repair", repair_op, NULL);
}
