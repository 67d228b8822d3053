/* SPDX-License-Identifier: GPL-2.0-or-later */
/* blockcrypt erase: destroy every key slot. */
#include <stdio.h>

#include "commands/commands.h"

int cmd_erase(struct cli_opts *o)
{
	_cleanup_luks_ struct bc_luks *l = NULL;
	int r;

	r = bc_luks_load_detached(o->args[0], o->header, false, &l);
	if (r < 0)
		return r;
	r = cli_confirm(o, "This will destroy all key slots of %s: without a header backup its data is gone for good.",
			o->header ? o->header : o->args[0]);
	if (r < 0)
		return r;
	r = bc_luks_erase(l);
	if (r < 0)
		return r;
	fprintf(stderr, "%s: all key slots destroyed\n", o->header ? o->header : o->args[0]);
	return 0;
}
