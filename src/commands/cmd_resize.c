/* blockcrypt resize: an attached volume follows its grown backing online. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "core/error.h"
#include "attach/runtime.h"

int cmd_resize(struct cli_opts *o)
{
	const char *name = o->args[0];
	json_object *st = NULL;
	char cmd[64], reply[600];
	int r = rt_valid_name(name), code;

	if (r == 0)
		r = rt_attached(name, &st);
	if (r == -ENOENT)
		return bc_error(-ENOENT, "%s: not attached", name);
	if (r < 0)
		return r;
	json_object_put(st);
	if (o->size)
		snprintf(cmd, sizeof(cmd), "resize %llu", (unsigned long long)o->size);
	else
		snprintf(cmd, sizeof(cmd), "resize");
	r = rt_control(name, cmd, reply, sizeof(reply), RT_CONTROL_TIMEOUT_MS);
	if (r < 0)
		return bc_error(r, "%s: daemon does not answer: %s", name, strerror(-r));
	if (!strncmp(reply, "ok ", 3)) {
		unsigned long long size = strtoull(reply + 3, NULL, 10);

		if (o->json)
			printf("{\"name\": \"%s\", \"size\": %llu}\n", name, size);
		else
			fprintf(stderr, "%s: %llu bytes (%llu MiB)\n", name, size, size >> 20);
		return 0;
	}
	if (sscanf(reply, "error %d:", &code) == 1) {
		const char *msg = strchr(reply, ':');

		fprintf(stderr, "blockcrypt: %s: %s\n", name, msg ? msg + 2 : reply);
		exit(code);
	}
	return bc_error(-EIO, "%s: unexpected answer from daemon: %s", name, reply);
}
