/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Backing store access: what every kind of backing shares.  The kind's
 * own operations (backing_file.c) do the I/O; here are the checks made
 * once for all of them, and the sticky write-back error, so that no kind
 * can forget it.
 *
 * Threading: every function may be called by any number of threads at
 * once, except bci_backing_grow() and bci_backing_close(); the write-back
 * error is read and set with atomics.
 */
#include <errno.h>
#include <string.h>

#include "backing/backing.h"
#include "core/error.h"

int bci_backing_open(const char *path, bool read_only, struct bci_backing **out)
{
	*out = NULL;
	if (bc_backing_is_rbd(path))
		return bci_backing_rbd_open(path, read_only, out);
	return bci_backing_file_open(path, read_only, out);
}

void bci_backing_close(struct bci_backing *b)
{
	if (b)
		b->ops->close(b);
}

int bci_backing_size(struct bci_backing *b, uint64_t *size)
{
	return b->ops->size(b, size);
}

int bci_backing_grow(struct bci_backing *b, uint64_t size)
{
	if (b->read_only)
		return bci_error(-EROFS, "backing: opened read-only");
	return b->ops->grow(b, size);
}

int bci_backing_pread(struct bci_backing *b, void *buf, size_t len, uint64_t off)
{
	return b->ops->pread(b, buf, len, off);
}

int bci_backing_pwrite(struct bci_backing *b, const void *buf, size_t len, uint64_t off)
{
	return b->ops->pwrite(b, buf, len, off);
}

int bci_backing_flush(struct bci_backing *b)
{
	int first = __atomic_load_n(&b->writeback_error, __ATOMIC_ACQUIRE), e = 0;

	if (!first) {
		e = b->ops->flush(b);
		if (e == 0)
			return 0;
		/* Only the first failure is logged: later flushes fail quietly. */
		if (__atomic_compare_exchange_n(&b->writeback_error, &first, e, false, __ATOMIC_ACQ_REL,
						__ATOMIC_ACQUIRE)) {
			bci_log("backing: write-back failed: %s; data written before may be lost, "
			       "so every later flush fails until the volume is detached", strerror(-e));
			return bci_error(e, "backing: flush: %s (write-back failed; every later flush "
					"fails until the volume is detached)", strerror(-e));
		}
	}
	return bci_error(first ? first : e, "backing: an earlier write-back failed (%s): data written "
			"before may be lost; flushes fail until the volume is detached",
			strerror(-(first ? first : e)));
}

int bci_backing_discard(struct bci_backing *b, uint64_t len, uint64_t off)
{
	if (!len)
		return 0;
	return b->ops->discard(b, len, off);
}

void bci_backing_extent(struct bci_backing *b, uint64_t off, bool *hole, uint64_t *end)
{
	if (!b->ops->extent || b->ops->extent(b, off, hole, end) < 0 || *end <= off) {
		*hole = false;
		*end = UINT64_MAX;
	}
}
