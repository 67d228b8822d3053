/* SPDX-License-Identifier: GPL-2.0-or-later */
/* blockcrypt header-restore: put a header backup back on a volume. */
#include <stdio.h>

#include "commands/commands.h"

int cmd_header_restore(struct cli_opts *o)
{
	int r = cli_confirm(o, "This will overwrite the header and key slots of %s with %s.",
			    o->args[0], o->args[1]);

	if (r < 0)
		return r;
	r = bc_header_restore(o->args[0], o->header, o->args[1]);
	if (r < 0)
		return r;
	fprintf(stderr, "%s: header restored from %s\n", o->args[0], o->args[1]);
	return 0;
}
