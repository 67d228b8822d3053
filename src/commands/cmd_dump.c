/* SPDX-License-Identifier: GPL-2.0-or-later */
/* blockcrypt dump: show the header, as text or JSON. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>

#include "blockcrypt.h"
#include "commands/commands.h"

int cmd_dump(struct cli_opts *o)
{
	_cleanup_luks_ struct bc_luks *l = NULL;
	char *json = NULL;
	json_object *j;
	int r;

	r = bc_luks_load_detached(o->args[0], o->header, true, &l);
	if (r < 0)
		return r;
	if (!o->json)
		return bc_luks_dump_text(l);
	r = bc_luks_dump_json(l, &json);
	if (r < 0)
		return r;
	j = json_tokener_parse(json);
	free(json);
	if (!j)
		return bc_set_error(-EIO, "dump: the header's JSON could not be read back");
	cli_print_json(j);
	return 0;
}
