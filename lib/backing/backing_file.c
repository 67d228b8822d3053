/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Backings that are a regular file or a block device: positional I/O on
 * one file descriptor.  A block device opened for writing is opened with
 * O_EXCL, the kernel's own in-use check; the advisory locks of
 * backing_lock.c are taken by the caller, on the same inode.
 *
 * Threading: every operation but grow and close uses the shared file
 * descriptor with positional I/O only, so any number of threads may call
 * them at once.  (extent's lseek(SEEK_DATA/SEEK_HOLE) moves the shared
 * file offset, which nothing else uses.)
 *
 * Write size.  Linux (6.x) makes a page-cache folio as large as the
 * write that creates it, up to a few MiB: one 1 MiB pwrite() leaves 1 MiB
 * folios behind.  Where the page cache keeps one buffer head per block
 * (block devices, ext2/3/4), every later write into such a folio walks
 * all of its buffer heads, twice, so a 4 KiB write into a folio that a
 * 1 MiB write made costs 256 steps instead of one, and write-back of the
 * folio moves all of it.  Measured here (kernel 6.18, a loop device and
 * an ext4 file): random 4 KiB writes after a pass of 1 MiB writes ran at
 * a third of their speed, __block_write_begin_int on top of the profile.
 * Read-ahead makes such folios too (up to 2 MiB after a sequential
 * read).  So on those backings writes go to the kernel in pieces of at
 * most BUFFER_HEAD_WRITE_MAX, and read-ahead is off (POSIX_FADV_RANDOM:
 * a read fills the page cache with the pages it asks for, in small
 * folios).  Sequential writes lose nothing measurable (16 calls per MiB);
 * sequential reads come in big requests from the client, which does its
 * own read-ahead, as a file system on dm-crypt does above the device.
 * File systems that track blocks per folio in a bitmap (xfs, btrfs,
 * tmpfs) are not affected and keep both.
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/falloc.h>
#include <linux/fs.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <unistd.h>

#include "backing/backing.h"
#include "backing/backing_lock.h"
#include "core/error.h"
#include "core/macros.h"

struct file_backing {
	struct bci_backing b;
	int fd;
	bool is_blockdev;
	size_t write_max; /* bytes per pwrite() call (see "Write size" above) */
};

/* See "Write size" above: 64 KiB measured best of 16, 64 and 256 KiB. */
#define BUFFER_HEAD_WRITE_MAX ((size_t)64 << 10)
#define EXT234_SUPER_MAGIC 0xEF53 /* ext2, ext3 and ext4 share it */

/* How many bytes one pwrite() on FD may carry: small pieces where the
 * page cache keeps buffer heads, whole requests elsewhere (SIZE_MAX). */
static size_t write_max_of(int fd, bool is_blockdev)
{
	struct statfs sfs;

	if (is_blockdev || (fstatfs(fd, &sfs) == 0 && sfs.f_type == EXT234_SUPER_MAGIC))
		return BUFFER_HEAD_WRITE_MAX;
	return SIZE_MAX;
}

static int file_fd(const struct bci_backing *b)
{
	return container_of(b, struct file_backing, b)->fd;
}

static int fd_size(int fd, uint64_t *size, bool *is_blockdev)
{
	struct stat st;

	if (fstat(fd, &st) < 0)
		return -errno;
	*is_blockdev = S_ISBLK(st.st_mode);
	if (*is_blockdev)
		return ioctl(fd, BLKGETSIZE64, size) < 0 ? -errno : 0;
	*size = (uint64_t)st.st_size;
	return 0;
}

int bci_path_size(const char *path, uint64_t *size, bool *is_blockdev)
{
	int fd, r;

	if (bc_backing_is_rbd(path)) {
		*is_blockdev = true; /* its size is the image's, not ours to extend */
		return bci_rbd_size(path, size);
	}
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return bci_error(bci_errno_access(errno), "%s: %s", path, strerror(errno));
	r = fd_size(fd, size, is_blockdev);
	close(fd);
	return r < 0 ? bci_error(r, "%s: cannot get size: %s", path, strerror(-r)) : 0;
}

static int file_size(struct bci_backing *b, uint64_t *size)
{
	bool blk;
	int r = fd_size(file_fd(b), size, &blk);

	return r < 0 ? bci_error(r, "backing: cannot get size: %s", strerror(-r)) : 0;
}

static int file_grow(struct bci_backing *b, uint64_t size)
{
	struct file_backing *f = container_of(b, struct file_backing, b);
	uint64_t now;
	int r;

	if (f->is_blockdev)
		return bci_error(-ENOTSUP, "backing: a block device cannot be grown");
	r = file_size(b, &now);
	if (r < 0 || now >= size)
		return r;
	if (ftruncate(f->fd, (off_t)size) < 0)
		return bci_error(errno == EFBIG ? -ENOSPC : -errno, "backing: cannot grow to %llu bytes: %s",
				(unsigned long long)size, strerror(errno));
	return 0;
}

static int file_pread(struct bci_backing *b, void *buf, size_t len, uint64_t off)
{
	const int fd = file_fd(b);
	uint8_t *p = buf;

	while (len) {
		ssize_t n = pread(fd, p, len, (off_t)off);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return bci_error(-errno, "backing: read at %llu: %s", (unsigned long long)off, strerror(errno));
		if (n == 0)
			return bci_error(-EIO, "backing: read at %llu: unexpected end of file (truncated?)",
					(unsigned long long)off);
		p += n;
		off += (uint64_t)n;
		len -= (size_t)n;
	}
	return 0;
}

static int file_pwrite(struct bci_backing *b, const void *buf, size_t len, uint64_t off)
{
	const struct file_backing *f = container_of(b, struct file_backing, b);
	const uint8_t *p = buf;

	while (len) {
		ssize_t n = pwrite(f->fd, p, len < f->write_max ? len : f->write_max, (off_t)off);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return bci_error(errno == ENOSPC || errno == EDQUOT ? -ENOSPC : -errno,
					"backing: write at %llu: %s", (unsigned long long)off, strerror(errno));
		p += n;
		off += (uint64_t)n;
		len -= (size_t)n;
	}
	return 0;
}

static int file_flush(struct bci_backing *b)
{
	if (fdatasync(file_fd(b)) == 0)
		return 0;
	return errno == ENOSPC || errno == EDQUOT ? -ENOSPC : -errno;
}

static int file_discard(struct bci_backing *b, uint64_t len, uint64_t off)
{
	struct file_backing *f = container_of(b, struct file_backing, b);

	if (f->is_blockdev) {
		uint64_t range[2] = { off, len };

		if (ioctl(f->fd, BLKDISCARD, range) < 0 && errno != EOPNOTSUPP)
			return bci_error(-errno, "backing: discard: %s", strerror(errno));
		return 0;
	}
	if (fallocate(f->fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, (off_t)off, (off_t)len) < 0 &&
	    errno != EOPNOTSUPP)
		return bci_error(-errno, "backing: discard: %s", strerror(errno));
	return 0;
}

/* SEEK_DATA/SEEK_HOLE on a regular file (a file system without them
 * reports the whole file as data).  Block devices report data. */
static int file_extent(struct bci_backing *b, uint64_t off, bool *hole, uint64_t *end)
{
	struct file_backing *f = container_of(b, struct file_backing, b);
	off_t d, h;

	if (f->is_blockdev || off > INT64_MAX)
		return -ENOTSUP;
	d = lseek(f->fd, (off_t)off, SEEK_DATA);
	if (d < 0 && errno == ENXIO) { /* a hole up to the end of the file, or past it */
		*hole = true;
		*end = UINT64_MAX;
		return 0;
	}
	if (d < 0)
		return -errno;
	if ((uint64_t)d > off) {
		*hole = true;
		*end = (uint64_t)d;
		return 0;
	}
	h = lseek(f->fd, (off_t)off, SEEK_HOLE);
	if (h < 0)
		return -errno;
	*hole = false;
	*end = (uint64_t)h;
	return 0;
}

static void file_close(struct bci_backing *b)
{
	struct file_backing *f = container_of(b, struct file_backing, b);

	if (f->fd >= 0)
		close(f->fd);
	free(f);
}

static const struct bci_backing_ops file_ops = {
	.pread = file_pread,
	.pwrite = file_pwrite,
	.flush = file_flush,
	.discard = file_discard,
	.extent = file_extent,
	.size = file_size,
	.grow = file_grow,
	.close = file_close,
};

int bci_backing_file_open(const char *path, bool read_only, struct bci_backing **out)
{
	struct file_backing *f;
	struct stat st;
	int fd, r;

	*out = NULL;
	r = bc_backing_check_type(path);
	if (r < 0)
		return r;
	/* O_EXCL on a block device for writing: the kernel's own in-use check
	 * (a mounted file system, dm, another exclusive opener). */
	fd = open(path, (read_only ? O_RDONLY : O_RDWR) | O_CLOEXEC | O_NOCTTY);
	if (fd >= 0 && !read_only && fstat(fd, &st) == 0 && S_ISBLK(st.st_mode)) {
		close(fd);
		fd = open(path, O_RDWR | O_EXCL | O_CLOEXEC);
		if (fd < 0 && errno == EBUSY)
			return bci_error(-EBUSY, "%s: block device in use (mounted, mapped or opened exclusively)", path);
	}
	if (fd < 0)
		return bci_error(bci_errno_access(errno), "%s: %s", path, strerror(errno));
	if (fstat(fd, &st) < 0 || (!S_ISREG(st.st_mode) && !S_ISBLK(st.st_mode))) {
		r = bci_error(-EINVAL, "%s: not a regular file or block device", path);
		goto out;
	}
	f = calloc(1, sizeof(*f));
	if (!f) {
		r = bci_error(-ENOMEM, "backing: out of memory");
		goto out;
	}
	f->b.ops = &file_ops;
	f->b.read_only = read_only;
	f->fd = fd;
	f->is_blockdev = S_ISBLK(st.st_mode);
	f->write_max = write_max_of(fd, f->is_blockdev);
	if (f->write_max != SIZE_MAX) /* buffer heads: no large folios from read-ahead */
		(void)posix_fadvise(fd, 0, 0, POSIX_FADV_RANDOM);
	*out = &f->b;
	return 0;
out:
	close(fd);
	return r;
}
