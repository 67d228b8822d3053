/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The backing store: where the ciphertext lives.
 *
 * A backing is an object behind a small table of operations, so that
 * kinds other than a local file or block device (backing_file.c), such as
 * a Ceph RBD image, can be added as one more backing_*.c without the
 * volume layer above knowing.  What every kind shares (argument checks,
 * the sticky write-back error) is kept here, in backing.c, once.
 *
 * Threading: pread, pwrite, discard, size and flush may be called by any
 * number of threads at once on one backing; grow and close may not run
 * concurrently with anything else on it.
 */
#ifndef BC_BACKING_BACKING_H
#define BC_BACKING_BACKING_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "blockcrypt.h"

struct bci_backing;

/* What a kind of backing implements.  Every operation returns 0 or a
 * negative errno with a message recorded (bci_error), except flush: it
 * returns the bare negative errno (-ENOSPC for a full device or quota)
 * and bci_backing_flush() reports it. */
struct bci_backing_ops {
	/* Whole-range transfers: short reads past the end are -EIO. */
	int (*pread)(struct bci_backing *b, void *buf, size_t len, uint64_t off);
	int (*pwrite)(struct bci_backing *b, const void *buf, size_t len, uint64_t off);
	/* Make every completed write durable. */
	int (*flush)(struct bci_backing *b);
	/* Deallocate a range (LEN > 0); its contents are then undefined.
	 * Where the backing cannot, 0: a discard is only a hint. */
	int (*discard)(struct bci_backing *b, uint64_t len, uint64_t off);
	/* Allocation at OFF: *HOLE says whether OFF is in a hole (deallocated:
	 * reads as zeros), *END where that state ends (may be past the end of
	 * the backing: the caller clips).  NULL where the kind cannot tell:
	 * everything is data. */
	int (*extent)(struct bci_backing *b, uint64_t off, bool *hole, uint64_t *end);
	int (*size)(struct bci_backing *b, uint64_t *size);
	/* Make the backing at least SIZE bytes long; -ENOTSUP where its size
	 * is not ours to change (a block device). */
	int (*grow)(struct bci_backing *b, uint64_t size);
	/* Release everything and free B. */
	void (*close)(struct bci_backing *b);
};

/* The part every kind shares; a kind embeds it in its own structure. */
struct bci_backing {
	const struct bci_backing_ops *ops;
	bool read_only;
	/* bc_volume_resize() to a size past the end grows the backing (an RBD
	 * image, a volume of a pool: the ZVOL of the seed), where a file or a
	 * disk must be grown by its owner first. */
	bool grows_on_resize;
	/* The first failed write-back, as a negative errno; 0 while none has
	 * failed.  Sticky: see bci_backing_flush(). */
	int writeback_error;
};

/* Open PATH (a regular file or a block device; a block device opened for
 * writing is opened O_EXCL; or an RBD image, whose exclusive lock is taken
 * when opened for writing).  *OUT is freed by bci_backing_close(). */
int bci_backing_open(const char *path, bool read_only, struct bci_backing **out);
void bci_backing_close(struct bci_backing *b);
int bci_backing_size(struct bci_backing *b, uint64_t *size);
int bci_backing_grow(struct bci_backing *b, uint64_t size);
/* Whole-range transfers: short reads past the end are errors (-EIO). */
int bci_backing_pread(struct bci_backing *b, void *buf, size_t len, uint64_t off);
int bci_backing_pwrite(struct bci_backing *b, const void *buf, size_t len, uint64_t off);
/* Make writes durable.  Once this has failed, every later call fails too,
 * until the backing is closed: the kernel reports a lost write-back only
 * once per open file (and may have dropped the pages), so a later success
 * would claim durability for data that never reached the disk. */
int bci_backing_flush(struct bci_backing *b);
/* File: punch a hole; block device: BLKDISCARD.  LEN 0 does nothing. */
int bci_backing_discard(struct bci_backing *b, uint64_t len, uint64_t off);

/* Allocation at OFF (see bci_backing_ops.extent); a kind without it, or
 * one that fails, reports data up to UINT64_MAX. */
void bci_backing_extent(struct bci_backing *b, uint64_t off, bool *hole, uint64_t *end);

/* Size of a file or block device without keeping it open. */
int bci_path_size(const char *path, uint64_t *size, bool *is_blockdev);

/* The kinds, for bci_backing_open() only. */
int bci_backing_file_open(const char *path, bool read_only, struct bci_backing **out);
int bci_backing_rbd_open(const char *path, bool read_only, struct bci_backing **out);

/* Ceph RBD images (backing_rbd.c): PATH is "rbd:POOL/IMAGE..."; the
 * public ones (bc_backing_is_rbd, bc_rbd_*) are in blockcrypt.h. */
int bci_rbd_size(const char *path, uint64_t *size);
int bci_rbd_remove(const char *path);
/* Take the image's exclusive lock for as long as *OUT is held; -EBUSY
 * naming the holder when another client has it (see backing_rbd.c). */
int bci_rbd_lock(const char *path, void **out);
void bci_rbd_unlock(void *lock);

#endif
