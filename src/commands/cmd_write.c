/* SPDX-License-Identifier: GPL-2.0-or-later */
/* blockcrypt write: encrypt standard input onto the device from byte 0. */
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "blockcrypt.h"
#include "commands/commands.h"

#define STREAM_CHUNK (1u << 20)

/* Fill BUF as far as possible; returns bytes read (0 at end) or -errno. */
static ssize_t read_full(int fd, uint8_t *buf, size_t len)
{
	size_t got = 0;

	while (got < len) {
		ssize_t n = read(fd, buf + got, len - got);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return bc_set_error(-errno, "standard input: %s", strerror(errno));
		if (n == 0)
			break;
		got += (size_t)n;
	}
	return (ssize_t)got;
}

/* Input that fits in SPOOL_MAX is read whole before anything is written,
 * so a stream larger than the volume changes nothing.  Beyond that the
 * input streams, one chunk read ahead of the one written, and the chunk
 * that would not fit is never written (the message says how much was). */
#define SPOOL_MAX (64u << 20)

static int too_large(const char *path, uint64_t size, uint64_t written)
{
	if (!written)
		return bc_set_error(-ENOSPC, "%s: input is larger than the volume (%llu bytes); nothing written",
				path, (unsigned long long)size);
	return bc_set_error(-ENOSPC, "%s: input is larger than the volume (%llu bytes); its first %llu bytes "
			"were written before that showed, nothing beyond", path, (unsigned long long)size,
			(unsigned long long)written);
}

int cmd_write(struct cli_opts *o)
{
	_cleanup_volume_ struct bc_volume *v = NULL;
	struct stat st;
	uint8_t *buf = NULL;
	uint64_t size, off = 0, total = 0;
	size_t cap = 0, have;
	void *progress;
	ssize_t n;
	int r = 0;

	if (o->key_file && !strcmp(o->key_file, "-"))
		return bc_set_error(-EINVAL, "write: standard input carries the data; --key-file - is not possible");
	r = cli_open_volume(o, o->args[0], false, &v);
	if (r < 0)
		return r;
	size = bc_volume_size(v);
	/* Input from a file: refuse an oversized one before writing. */
	if (fstat(STDIN_FILENO, &st) == 0 && S_ISREG(st.st_mode)) {
		off_t pos = lseek(STDIN_FILENO, 0, SEEK_CUR);

		if (pos >= 0 && (uint64_t)(st.st_size - pos) > size)
			return too_large(o->args[0], size, 0);
		if (pos >= 0)
			total = (uint64_t)(st.st_size - pos);
	}
	progress = cli_progress_state(o, "Writing", o->args[0]);
	cli_progress(0, total, progress);
	/* Room for the whole volume plus one byte (to see an overflow), up
	 * to SPOOL_MAX; past that, the buffer holds two chunks. */
	cap = size < SPOOL_MAX ? (size_t)size + 1 : SPOOL_MAX;
	buf = malloc(cap);
	if (!buf)
		return bc_set_error(-ENOMEM, "out of memory");
	n = read_full(STDIN_FILENO, buf, cap);
	if (n < 0) {
		r = (int)n;
		goto out;
	}
	have = (size_t)n;
	for (;;) {
		bool eof = have < cap;
		size_t chunk;

		/* What is buffered must fit: decided before writing it. */
		if (have > size - off) {
			r = too_large(o->args[0], size, off);
			goto out;
		}
		/* At the end of the input write it all; while streaming keep one
		 * chunk back, so the last one is never written blindly. */
		chunk = eof ? have : have - STREAM_CHUNK;
		if (chunk) {
			r = bc_volume_pwrite(v, buf, chunk, off);
			if (r < 0)
				goto out;
			off += chunk;
			if (off != total)
				cli_progress(off, total, progress);
		}
		if (eof)
			break;
		memmove(buf, buf + chunk, have - chunk);
		have -= chunk;
		n = read_full(STDIN_FILENO, buf + have, cap - have);
		if (n < 0) {
			r = (int)n;
			goto out;
		}
		have += (size_t)n;
	}
	r = bc_volume_flush(v);
	/* The last line once the data is on the backing (a total not known
	 * before is the amount written). */
	if (r == 0 && off)
		cli_progress(off, off, progress);
out:
	explicit_bzero(buf, cap);
	free(buf);
	if (r == 0)
		fprintf(stderr, "%s: %llu bytes written\n", o->args[0], (unsigned long long)off);
	return r;
}
