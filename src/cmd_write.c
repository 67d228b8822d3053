/* blockcrypt write: encrypt standard input onto the device from byte 0. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli.h"
#include "core/error.h"

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
			return bc_error(-errno, "standard input: %s", strerror(errno));
		if (n == 0)
			break;
		got += (size_t)n;
	}
	return (ssize_t)got;
}

int cmd_write(struct cli_opts *o)
{
	_cleanup_volume_ struct bc_volume *v = NULL;
	struct stat st;
	uint8_t *buf;
	uint64_t size, off = 0;
	int r = 0;

	if (o->key_file && !strcmp(o->key_file, "-"))
		return bc_error(-EINVAL, "write: standard input carries the data; --key-file - is not possible");
	r = cli_open_volume(o, o->args[0], false, &v);
	if (r < 0)
		return r;
	size = bc_volume_size(v);
	/* Input from a file: refuse an oversized one before writing. */
	if (fstat(STDIN_FILENO, &st) == 0 && S_ISREG(st.st_mode)) {
		off_t pos = lseek(STDIN_FILENO, 0, SEEK_CUR);

		if (pos >= 0 && (uint64_t)(st.st_size - pos) > size)
			return bc_error(-ENOSPC, "%s: input (%llu bytes) is larger than the volume (%llu bytes); nothing written",
					o->args[0], (unsigned long long)(st.st_size - pos), (unsigned long long)size);
	}
	buf = malloc(STREAM_CHUNK);
	if (!buf)
		return bc_error(-ENOMEM, "out of memory");
	for (;;) {
		ssize_t n = read_full(STDIN_FILENO, buf, STREAM_CHUNK);

		if (n <= 0) {
			r = (int)n;
			break;
		}
		if ((uint64_t)n > size - off) {
			/* A stream cannot be measured in advance: fill the
			 * volume, then report what did not fit. */
			r = bc_volume_pwrite(v, buf, (size_t)(size - off), off);
			if (r == 0)
				r = bc_volume_flush(v);
			if (r == 0)
				r = bc_error(-ENOSPC, "%s: input is larger than the volume: its first %llu bytes were written, the rest was not",
					     o->args[0], (unsigned long long)size);
			break;
		}
		r = bc_volume_pwrite(v, buf, (size_t)n, off);
		if (r < 0)
			break;
		off += (uint64_t)n;
	}
	if (r == 0)
		r = bc_volume_flush(v);
	explicit_bzero(buf, STREAM_CHUNK);
	free(buf);
	if (r == 0)
		fprintf(stderr, "%s: %llu bytes written\n", o->args[0], (unsigned long long)off);
	return r;
}
