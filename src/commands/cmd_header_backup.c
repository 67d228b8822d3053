/* SPDX-License-Identifier: GPL-2.0-or-later */
/* blockcrypt header-backup: save the LUKS header to a file. */
#include <stdio.h>

#include "commands/commands.h"

int cmd_header_backup(struct cli_opts *o)
{
	_cleanup_luks_ struct bc_luks *l = NULL;
	int r;

	r = bc_luks_load_detached(o->args[0], o->header, true, &l);
	if (r < 0)
		return r;
	r = bc_luks_header_backup(l, o->args[1]);
	if (r < 0)
		return r;
	fprintf(stderr, "%s: header saved to %s\n", o->args[0], o->args[1]);
	return 0;
}
