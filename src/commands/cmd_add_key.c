/* SPDX-License-Identifier: GPL-2.0-or-later */
/* blockcrypt add-key: add a passphrase in a free key slot. */
#include <stdio.h>

#include "commands/commands.h"

int cmd_add_key(struct cli_opts *o)
{
	_cleanup_luks_ struct bc_luks *l = NULL;
	_cleanup_key_ struct bc_secret *old = NULL, *new_pass = NULL;
	int r;

	r = cli_load_old_new(o, "Enter any existing passphrase: ", "Enter new passphrase for key slot: ", &l, &old, &new_pass);
	if (r < 0)
		return r;
	r = bc_luks_add_key(l, old, new_pass, o->key_slot, &o->pbkdf);
	if (r < 0)
		return r;
	fprintf(stderr, "%s: key slot %d added\n", o->args[0], r);
	return 0;
}
