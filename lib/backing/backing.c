/*
 * Backing store access.
 *
 * Threading: every function works on a shared file descriptor with
 * positional I/O only, so any number of threads may call them at once.
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/falloc.h>
#include <linux/fs.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/error.h"
#include "backing/backing.h"
#include "backing/backing_lock.h"

int bc_backing_open(const char *path, bool read_only, struct bc_backing *out)
{
	struct stat st;
	int fd;

	int r;

	out->fd = -1;
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
			return bc_error(-EBUSY, "%s: block device in use (mounted, mapped or opened exclusively)", path);
	}
	if (fd < 0)
		return bc_error(bc_errno_access(errno), "%s: %s", path, strerror(errno));
	if (fstat(fd, &st) < 0 || (!S_ISREG(st.st_mode) && !S_ISBLK(st.st_mode))) {
		close(fd);
		return bc_error(-EINVAL, "%s: not a regular file or block device", path);
	}
	out->fd = fd;
	out->is_blockdev = S_ISBLK(st.st_mode);
	out->read_only = read_only;
	out->writeback_error = 0;
	return 0;
}

void bc_backing_close(struct bc_backing *b)
{
	if (b->fd >= 0)
		close(b->fd);
	b->fd = -1;
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

int bc_backing_size(const struct bc_backing *b, uint64_t *size)
{
	bool blk;
	int r = fd_size(b->fd, size, &blk);

	return r < 0 ? bc_error(r, "backing: cannot get size: %s", strerror(-r)) : 0;
}

int bc_path_size(const char *path, uint64_t *size, bool *is_blockdev)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	int r;

	if (fd < 0)
		return bc_error(bc_errno_access(errno), "%s: %s", path, strerror(errno));
	r = fd_size(fd, size, is_blockdev);
	close(fd);
	return r < 0 ? bc_error(r, "%s: cannot get size: %s", path, strerror(-r)) : 0;
}

int bc_backing_pread(const struct bc_backing *b, void *buf, size_t len, uint64_t off)
{
	uint8_t *p = buf;

	while (len) {
		ssize_t n = pread(b->fd, p, len, (off_t)off);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return bc_error(-errno, "backing: read at %llu: %s", (unsigned long long)off, strerror(errno));
		if (n == 0)
			return bc_error(-EIO, "backing: read at %llu: unexpected end of file (truncated?)",
					(unsigned long long)off);
		p += n;
		off += (uint64_t)n;
		len -= (size_t)n;
	}
	return 0;
}

int bc_backing_pwrite(const struct bc_backing *b, const void *buf, size_t len, uint64_t off)
{
	const uint8_t *p = buf;

	while (len) {
		ssize_t n = pwrite(b->fd, p, len, (off_t)off);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return bc_error(errno == ENOSPC || errno == EDQUOT ? -ENOSPC : -errno,
					"backing: write at %llu: %s", (unsigned long long)off, strerror(errno));
		p += n;
		off += (uint64_t)n;
		len -= (size_t)n;
	}
	return 0;
}

int bc_backing_flush(struct bc_backing *b)
{
	int first = __atomic_load_n(&b->writeback_error, __ATOMIC_ACQUIRE), e = 0;

	if (!first) {
		if (fdatasync(b->fd) == 0)
			return 0;
		e = errno == ENOSPC || errno == EDQUOT ? -ENOSPC : -errno;
		/* Only the first failure is logged: later flushes fail quietly. */
		if (__atomic_compare_exchange_n(&b->writeback_error, &first, e, false, __ATOMIC_ACQ_REL,
						__ATOMIC_ACQUIRE)) {
			bc_log("backing: write-back failed: %s; data written before may be lost, "
			       "so every later flush fails until the volume is detached", strerror(-e));
			return bc_error(e, "backing: flush: %s (write-back failed; every later flush "
					"fails until the volume is detached)", strerror(-e));
		}
	}
	return bc_error(first ? first : e, "backing: an earlier write-back failed (%s): data written "
			"before may be lost; flushes fail until the volume is detached",
			strerror(-(first ? first : e)));
}

int bc_backing_discard(const struct bc_backing *b, uint64_t len, uint64_t off)
{
	if (!len)
		return 0;
	if (b->is_blockdev) {
		uint64_t range[2] = { off, len };

		if (ioctl(b->fd, BLKDISCARD, range) < 0 && errno != EOPNOTSUPP)
			return bc_error(-errno, "backing: discard: %s", strerror(errno));
		return 0;
	}
	if (fallocate(b->fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, (off_t)off, (off_t)len) < 0 &&
	    errno != EOPNOTSUPP)
		return bc_error(-errno, "backing: discard: %s", strerror(errno));
	return 0;
}
