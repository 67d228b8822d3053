/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Header guard (see header_guard.h).
 *
 * libcryptsetup writes a LUKS2 header update as: key slot area, then the
 * two metadata copies in turn, each checksummed -- safe against a crash,
 * but a write that fails half-way (ENOSPC on a sparse image, EIO) leaves
 * whatever it got through, e.g. a new salt and key material in an unused
 * slot area, and reports a generic I/O error.  The guard turns that into
 * "nothing changed": an up-front allocation catches a full file system
 * before anything is written, and a byte copy taken before the change
 * restores what a failed change wrote.
 *
 * Threading: a guard belongs to one thread.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "backing/backing.h"
#include "core/error.h"
#include "luks/header_guard.h"
#include "luks/luks.h"

/* Larger header areas (a custom --luks2-keyslots-size) are not copied. */
#define GUARD_MAX (64u << 20)
#define GUARD_BLOCK 4096u

struct bc_header_guard {
	char *path;
	uint8_t *copy;
	size_t len;
};

static int read_all(int fd, uint8_t *buf, size_t len)
{
	size_t done = 0;

	while (done < len) {
		ssize_t n = pread(fd, buf + done, len - done, (off_t)done);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return n < 0 ? -errno : -EIO;
		done += (size_t)n;
	}
	return 0;
}

static void guard_free(struct bc_header_guard *g)
{
	if (!g)
		return;
	if (g->copy)
		explicit_bzero(g->copy, g->len);
	free(g->copy);
	free(g->path);
	free(g);
}

int bc_header_guard_begin(const char *path, struct bc_header_guard **out)
{
	struct crypt_device *cd = NULL;
	struct bc_header_guard *g = NULL;
	uint64_t len;
	struct stat st = { 0 };
	int fd = -1, r;

	*out = NULL;
	/* A staged header (RBD) is its own guard: nothing of a failed change
	 * leaves memory (header_stage.c). */
	if (bc_backing_is_rbd(path))
		return 0;
	bci_luks_init();
	if (bci_luks_load_cd(path, BC_TYPE_AUTO, &cd) < 0) {
		bci_error_clear();
		return 0;
	}
	len = crypt_get_data_offset(cd) * 512;
	bci_luks_free_cd(cd);
	fd = open(path, O_RDWR | O_CLOEXEC);
	if (fd < 0)
		return 0; /* the change will meet (and report) the same */
	/* A detached header file (--header): its data offset is 0, or counts
	 * on another device; the whole file is the header area. */
	if (fstat(fd, &st) == 0 && S_ISREG(st.st_mode) && (!len || len > (uint64_t)st.st_size))
		len = (uint64_t)st.st_size;
	if (!len || len > GUARD_MAX) {
		r = 0;
		goto out;
	}
	g = calloc(1, sizeof(*g));
	if (!g || !(g->copy = malloc(len)) || !(g->path = strdup(path))) {
		r = bci_error(-ENOMEM, "out of memory");
		goto out;
	}
	g->len = len;
	r = read_all(fd, g->copy, len);
	if (r < 0) {
		r = bci_error(r == -EIO ? -EIO : r, "%s: cannot read the header area: %s", path, strerror(-r));
		goto out;
	}
	if (S_ISREG(st.st_mode) &&
	    fallocate(fd, FALLOC_FL_KEEP_SIZE, 0, (off_t)len) < 0 && errno != EOPNOTSUPP) {
		r = errno == ENOSPC || errno == EDQUOT ?
			bci_error(-ENOSPC, "%s: no space left on the file system for the header's key slot area "
				 "(%llu bytes); nothing was changed", path, (unsigned long long)len) :
			bci_error(-errno, "%s: cannot allocate the header area: %s", path, strerror(errno));
		goto out;
	}
	*out = g;
	g = NULL;
	r = 0;
out:
	if (fd >= 0)
		close(fd);
	guard_free(g);
	return r;
}

int bc_header_guard_end(struct bc_header_guard *g, bool failed)
{
	uint8_t *now = NULL;
	int fd = -1, r = 0, restored = 0;

	if (!g || !failed)
		goto out;
	now = malloc(g->len);
	fd = open(g->path, O_RDWR | O_CLOEXEC);
	if (!now || fd < 0) {
		r = bci_error(fd < 0 ? -errno : -ENOMEM, "%s: cannot restore the header: %s", g->path,
			     strerror(fd < 0 ? errno : ENOMEM));
		goto out;
	}
	/* libcryptsetup's lock on image files: cryptsetup waits for us. */
	while (flock(fd, LOCK_EX) < 0 && errno == EINTR)
		;
	r = read_all(fd, now, g->len);
	for (size_t off = 0; r == 0 && off < g->len; off += GUARD_BLOCK) {
		size_t n = g->len - off < GUARD_BLOCK ? g->len - off : GUARD_BLOCK;

		if (!memcmp(now + off, g->copy + off, n))
			continue;
		if (pwrite(fd, g->copy + off, n, (off_t)off) != (ssize_t)n)
			r = -(errno ? errno : EIO);
		restored++;
	}
	if (r == 0 && restored && fdatasync(fd) < 0)
		r = -errno;
	if (r < 0)
		r = bci_error(r, "%s: the change failed, and restoring the header failed too: %s", g->path,
			     strerror(-r));
	else
		r = restored;
out:
	if (fd >= 0)
		close(fd);
	free(now);
	guard_free(g);
	return r;
}
