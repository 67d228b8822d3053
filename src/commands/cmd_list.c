/* SPDX-License-Identifier: GPL-2.0-or-later */
/* blockcrypt list: attached volumes, as a table or JSON. */
#include <stdio.h>
#include <stdlib.h>

#include "commands/commands.h"
#include "attach/control.h"
#include "attach/runtime.h"

static const char *str(json_object *o, const char *key)
{
	json_object *v;

	return json_object_object_get_ex(o, key, &v) && v ? json_object_get_string(v) : "-";
}

static long long num(json_object *o, const char *key)
{
	json_object *v;

	return json_object_object_get_ex(o, key, &v) ? (long long)json_object_get_int64(v) : 0;
}

int cmd_list(struct cli_opts *o)
{
	json_object *all = json_object_new_array();
	char **names = NULL;
	size_t n = 0;
	int r = rt_list_names(&names, &n);

	for (size_t i = 0; i < n; i++) {
		json_object *e = NULL;

		/* A state file that is not one (a symlink, garbage) is skipped. */
		if (r == 0 && control_entry(names[i], &e) == 0)
			json_object_array_add(all, e);
		free(names[i]);
	}
	free(names);
	if (r < 0) {
		json_object_put(all);
		return r;
	}
	if (o->json) {
		cli_print_json(all);
		return 0;
	} else if (json_object_array_length(all)) {
		printf("%-16s %-6s %-22s %10s %6s %3s %7s %7s  %s\n", "NAME", "TYPE", "CIPHER", "SIZE(MiB)",
		       "SECTOR", "RO", "CLIENTS", "PID", "EXPORT");
		for (size_t i = 0; i < json_object_array_length(all); i++) {
			json_object *e = json_object_array_get_idx(all, i);

			printf("%-16s %-6s %-22s %10lld %6lld %3s %7lld %7lld  %s%s%s\n", str(e, "name"),
			       str(e, "type"), str(e, "cipher"), num(e, "size") >> 20, num(e, "sector_size"),
			       num(e, "read_only") ? "yes" : "no", num(e, "clients"), num(e, "pid"), str(e, "uri"),
			       str(e, "fuse_file")[0] != '-' ? "  " : "",
			       str(e, "fuse_file")[0] != '-' ? str(e, "fuse_file") : "");
		}
	}
	json_object_put(all);
	return 0;
}
