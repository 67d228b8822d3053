/*
 * Backing store access: what every kind of backing shares.  The kind's
 * own operations (backing_file.c) do the I/O; here are the checks made
 * once for all of them, and the sticky write-back error, so that no kind
 * can forget it.
 *
 * Threading: every function may be called by any number of threads at
 * once, except bc_backing_grow() and bc_backing_close(); the write-back
 * error is read and set with atomics.
 */
#include <errno.h>
#include <string.h>

#include "backing/backing.h"
#include "core/error.h"

int bc_backing_open(const char *path, bool read_only, struct bc_backing **out)
{
	*out = NULL;
	/* The one kind there is; others will be told apart by PATH. */
	return bc_backing_file_open(path, read_only, out);
}

void bc_backing_close(struct bc_backing *b)
{
	if (b)
		b->ops->close(b);
}

int bc_backing_size(struct bc_backing *b, uint64_t *size)
{
	return b->ops->size(b, size);
}

int bc_backing_grow(struct bc_backing *b, uint64_t size)
{
	if (b->read_only)
		return bc_error(-EROFS, "backing: opened read-only");
	return b->ops->grow(b, size);
}

int bc_backing_pread(struct bc_backing *b, void *buf, size_t len, uint64_t off)
{
	return b->ops->pread(b, buf, len, off);
}

int bc_backing_pwrite(struct bc_backing *b, const void *buf, size_t len, uint64_t off)
{
	return b->ops->pwrite(b, buf, len, off);
}

int bc_backing_flush(struct bc_backing *b)
{
	int first = __atomic_load_n(&b->writeback_error, __ATOMIC_ACQUIRE), e = 0;

	if (!first) {
		e = b->ops->flush(b);
		if (e == 0)
			return 0;
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

int bc_backing_discard(struct bc_backing *b, uint64_t len, uint64_t off)
{
	if (!len)
		return 0;
	return b->ops->discard(b, len, off);
}
