/* SPDX-License-Identifier: GPL-2.0-or-later */
/* blockcrypt resize: an attached volume follows its grown backing online. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "blockcrypt.h"
#include "commands/commands.h"
#include "attach/control.h"
#include "attach/runtime.h"

int cmd_resize(struct cli_opts *o)
{
	const char *name = o->args[0];
	json_object *st = NULL;
	char why[BC_ERROR_MAX];
	uint64_t size;
	int r = rt_find(name, &st), code;

	if (r < 0)
		return r;
	json_object_put(st);
	r = control_resize(name, o->size != 0, o->size, &size, &code, why, sizeof(why));
	if (r < 0)
		return bc_set_error(r, "%s: daemon does not answer: %s", name, strerror(-r));
	if (r == 0) {
		if (o->json) {
			json_object *j = json_object_new_object();

			json_object_object_add(j, "name", json_object_new_string(name));
			json_object_object_add(j, "size", json_object_new_int64((int64_t)size));
			cli_print_json(j);
		} else
			fprintf(stderr, "%s: %llu bytes (%llu MiB)\n", name, (unsigned long long)size,
				(unsigned long long)size >> 20);
		return 0;
	}
	if (r == CONTROL_FAILED) {
		fprintf(stderr, "blockcrypt: %s: %s\n", name, why);
		exit(code);
	}
	return bc_set_error(-EIO, "%s: unexpected answer from daemon: %s", name, why);
}
