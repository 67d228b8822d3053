/* SPDX-License-Identifier: GPL-2.0-or-later */
/* blockcrypt change-key: replace a passphrase. */
#include <stdio.h>

#include "commands/commands.h"

int cmd_change_key(struct cli_opts *o)
{
	_cleanup_luks_ struct bc_luks *l = NULL;
	_cleanup_key_ struct bc_secret *old = NULL, *new_pass = NULL;
	int r;

	r = cli_load_old_new(o, "Enter passphrase to be changed: ", "Enter new passphrase: ", &l, &old, &new_pass);
	if (r < 0)
		return r;
	r = bc_luks_change_key(l, old, new_pass, &o->pbkdf);
	if (r < 0)
		return r;
	fprintf(stderr, "%s: key slot %d changed\n", o->args[0], r);
	return 0;
}
