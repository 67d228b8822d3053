/* SPDX-License-Identifier: GPL-2.0-or-later */
/* blockcrypt cat: stream the decrypted device to standard output. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "blockcrypt.h"
#include "commands/commands.h"

#define STREAM_CHUNK (1u << 20)

static int write_all(int fd, const uint8_t *p, size_t len)
{
	while (len) {
		ssize_t n = write(fd, p, len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return bc_set_error(-errno, "standard output: %s", strerror(errno));
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

int cmd_cat(struct cli_opts *o)
{
	_cleanup_volume_ struct bc_volume *v = NULL;
	uint8_t *buf;
	uint64_t size, off;
	void *progress;
	int r;

	/* Decrypted binary on a terminal garbles it, and shows the data to
	 * whoever looks: asked for on purpose only. */
	if (isatty(STDOUT_FILENO) && !o->force)
		return bc_set_error(-EINVAL, "cat: standard output is a terminal: redirect it (> FILE, | CMD), "
				"or give --force");
	r = cli_open_volume(o, o->args[0], true, &v);
	if (r < 0)
		return r;
	buf = malloc(STREAM_CHUNK);
	if (!buf)
		return bc_set_error(-ENOMEM, "out of memory");
	size = bc_volume_size(v);
	progress = cli_progress_state(o, "Reading", o->args[0]);
	cli_progress(0, size, progress);
	for (off = 0; off < size; off += STREAM_CHUNK) {
		size_t n = size - off < STREAM_CHUNK ? (size_t)(size - off) : STREAM_CHUNK;

		r = bc_volume_pread(v, buf, n, off);
		if (r == 0)
			r = write_all(STDOUT_FILENO, buf, n);
		if (r < 0)
			break;
		cli_progress(off + n, size, progress);
	}
	explicit_bzero(buf, STREAM_CHUNK);
	free(buf);
	return r;
}
