/* SPDX-License-Identifier: GPL-2.0-or-later */
/* blockcrypt repair: let libcryptsetup repair a damaged header. */
#include <stdio.h>

#include "commands/commands.h"

int cmd_repair(struct cli_opts *o)
{
	int r = bc_header_repair(o->args[0], o->header);

	if (r < 0)
		return r;
	fprintf(stderr, "%s: header checked and repaired where needed\n", o->args[0]);
	return 0;
}
