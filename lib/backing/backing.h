/* The backing store: a regular file or a block device holding ciphertext. */
#ifndef BC_BACKING_BACKING_H
#define BC_BACKING_BACKING_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct bc_backing {
	int fd;
	bool is_blockdev;
	bool read_only;
	/* The first failed write-back (fdatasync), as a negative errno; 0
	 * while none has failed.  Sticky: see bc_backing_flush(). */
	int writeback_error;
};

int bc_backing_open(const char *path, bool read_only, struct bc_backing *out);
void bc_backing_close(struct bc_backing *b);
int bc_backing_size(const struct bc_backing *b, uint64_t *size);
/* Size of a path without keeping it open. */
int bc_path_size(const char *path, uint64_t *size, bool *is_blockdev);
/* Whole-range transfers: short reads past the end are errors (-EIO). */
int bc_backing_pread(const struct bc_backing *b, void *buf, size_t len, uint64_t off);
int bc_backing_pwrite(const struct bc_backing *b, const void *buf, size_t len, uint64_t off);
/* fdatasync().  Once one has failed, every later call fails too, until
 * the backing is closed: the kernel reports a lost write-back only once
 * per open file (and may have dropped the pages), so a later success
 * would claim durability for data that never reached the disk. */
int bc_backing_flush(struct bc_backing *b);
int bc_backing_discard(const struct bc_backing *b, uint64_t len, uint64_t off);

#endif
