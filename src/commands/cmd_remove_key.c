/* SPDX-License-Identifier: GPL-2.0-or-later */
/* blockcrypt remove-key: remove the slot a passphrase opens, or --key-slot N. */
#include <errno.h>
#include <stdio.h>

#include "blockcrypt.h"
#include "commands/commands.h"

int cmd_remove_key(struct cli_opts *o)
{
	_cleanup_luks_ struct bc_luks *l = NULL;
	_cleanup_key_ struct bc_secret *pass = NULL;
	int r, slot = o->key_slot;

	r = bc_luks_load_detached(o->args[0], o->header, false, &l);
	if (r < 0)
		return r;
	if (slot < 0) {
		r = cli_get_key(o, o->key_file, "Enter passphrase to be deleted: ", false, &pass);
		if (r < 0)
			return r;
		slot = bc_luks_check_key(l, pass);
		if (slot < 0)
			return slot;
	} else if (o->key_file) {
		return bc_set_error(-EINVAL, "remove-key: give either --key-file or --key-slot, not both");
	}
	if (bc_luks_active_slots(l) <= 1) {
		r = cli_confirm(o, "Key slot %d is the last one: removing it makes %s permanently inaccessible.",
				slot, o->args[0]);
		if (r < 0)
			return r;
	} else if (o->key_slot >= 0) {
		r = cli_confirm(o, "This will destroy key slot %d of %s.", slot, o->args[0]);
		if (r < 0)
			return r;
	}
	r = bc_luks_kill_slot(l, slot);
	if (r < 0)
		return r;
	fprintf(stderr, "%s: key slot %d removed\n", o->args[0], slot);
	return 0;
}
