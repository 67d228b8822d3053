/* SPDX-License-Identifier: GPL-2.0-or-later */
/* blockcrypt detach: ask attach daemons to stop, and wait until they have. */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "blockcrypt.h"
#include "commands/commands.h"
#include "attach/control.h"
#include "attach/runtime.h"

#define DETACH_WAIT_MS 60000

static int detach_one(const struct cli_opts *o, const char *name)
{
	json_object *st = NULL, *pid_obj;
	char why[BC_ERROR_MAX];
	pid_t pid = 0;
	int r = rt_find(name, &st);

	if (r < 0)
		return r;
	if (json_object_object_get_ex(st, "pid", &pid_obj))
		pid = (pid_t)json_object_get_int(pid_obj);
	json_object_put(st);

	r = control_detach(name, o->force, why, sizeof(why));
	if (r == -EACCES || r == -EPERM)
		return bc_set_error(-EACCES, "%s: permission denied (attached by another user?)", name);
	if (r < 0) {
		if (!o->force)
			return bc_set_error(r, "%s: daemon (pid %d) does not answer: %s (try --force)",
					name, (int)pid, strerror(-r));
		kill(pid, SIGTERM);
	} else if (r == CONTROL_BUSY) {
		return bc_set_error(-EBUSY, "%s: busy: %s; unmount/detach its users or use --force", name, why);
	} else if (r != 0) {
		return bc_set_error(-EIO, "%s: unexpected answer from daemon: %s", name, why);
	}
	for (int waited = 0; rt_pid_running(pid, false); waited += 20) {
		struct timespec ts = { 0, 20 * 1000 * 1000 };

		if (waited >= DETACH_WAIT_MS)
			return bc_set_error(-ETIMEDOUT, "%s: daemon (pid %d) still running after %d s",
					name, (int)pid, DETACH_WAIT_MS / 1000);
		nanosleep(&ts, NULL);
	}
	/* The daemon removed its files; if it could not (killed after a
	 * timeout), clear them -- unless a new daemon has claimed the name
	 * meanwhile (rt_alive() removes only under the claim). */
	rt_alive(name, NULL);
	fprintf(stderr, "%s: detached\n", name);
	return 0;
}

int cmd_detach(struct cli_opts *o)
{
	char **names = NULL;
	size_t n = 0;
	int r = 0, first_error = 0;

	if (o->all == (o->nargs > 0))
		return bc_set_error(-EINVAL, "detach: give NAME... or --all");
	if (o->all) {
		r = rt_list_names(&names, &n);
		if (r < 0)
			return r;
	}
	for (size_t i = 0; i < (o->all ? n : (size_t)o->nargs); i++) {
		const char *name = o->all ? names[i] : o->args[i];

		if (o->all) {
			json_object *st = NULL;

			if (rt_attached(name, &st) < 0)
				continue;
			json_object_put(st);
		}
		r = detach_one(o, name);
		if (r < 0 && !o->all && o->nargs == 1)
			return r;
		if (r < 0) {
			/* Report this one, carry on with the others. */
			fprintf(stderr, "blockcrypt: %s\n", bc_last_error());
			if (!first_error)
				first_error = r;
		}
	}
	for (size_t i = 0; i < n; i++)
		free(names[i]);
	free(names);
	if (first_error) {
		bc_set_error(first_error, "detach: %s", o->all ? "some volumes were not detached" : "failed");
		return first_error;
	}
	return 0;
}
