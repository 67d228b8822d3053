/* SPDX-License-Identifier: GPL-2.0-or-later */
/* blockcrypt dump: show the header, as text or JSON. */
#include <stdio.h>
#include <stdlib.h>

#include "commands/commands.h"

int cmd_dump(struct cli_opts *o)
{
	_cleanup_luks_ struct bc_luks *l = NULL;
	char *json = NULL;
	int r;

	r = bc_luks_load_detached(o->args[0], o->header, true, &l);
	if (r < 0)
		return r;
	if (!o->json)
		return bc_luks_dump_text(l);
	r = bc_luks_dump_json(l, &json);
	if (r < 0)
		return r;
	printf("%s\n", json);
	free(json);
	return 0;
}
