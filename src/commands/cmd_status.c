/* SPDX-License-Identifier: GPL-2.0-or-later */
/* blockcrypt status: one attached volume. */
#include <errno.h>
#include <stdio.h>

#include "blockcrypt.h"
#include "commands/commands.h"
#include "attach/control.h"
#include "attach/runtime.h"

int cmd_status(struct cli_opts *o)
{
	json_object *e = NULL;
	int r = rt_valid_name(o->args[0]);

	if (r == 0)
		r = control_entry(o->args[0], &e);
	if (r == -ENOENT)
		return bc_set_error(-ENOENT, "%s: not attached", o->args[0]);
	if (r < 0)
		return r;
	if (o->json) {
		cli_print_json(e);
		return 0;
	} else {
		json_object_object_foreach(e, key, val)
			printf("%-12s %s\n", key, val ? json_object_get_string(val) : "-");
	}
	json_object_put(e);
	return 0;
}
