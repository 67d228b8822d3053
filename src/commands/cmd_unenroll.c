/* SPDX-License-Identifier: GPL-2.0-or-later */
/* blockcrypt unenroll: remove our PKCS#11 tokens and their key slots. */
#include <stdio.h>

#include "commands/commands.h"

int cmd_unenroll(struct cli_opts *o)
{
	_cleanup_luks_ struct bc_luks *l = NULL;
	int r;

	r = bc_luks_load_detached(o->args[0], o->header, false, &l);
	if (r < 0)
		return r;
	if (bc_luks_active_slots(l) <= 1) {
		r = cli_confirm(o, "Removing the token would leave %s without any key slot.", o->args[0]);
		if (r < 0)
			return r;
	}
	r = bc_luks_unenroll_pkcs11(l, o->token_id);
	if (r < 0)
		return r;
	fprintf(stderr, "%s: %d token%s and key slot%s removed\n", o->args[0], r, r == 1 ? "" : "s",
		r == 1 ? "" : "s");
	return 0;
}
