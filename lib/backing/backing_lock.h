/* SPDX-License-Identifier: GPL-2.0-or-later */
/* Advisory locks on a backing store, by identity (the inode), not by path. */
#ifndef BC_BACKING_BACKING_LOCK_H
#define BC_BACKING_BACKING_LOCK_H

#include <stdbool.h>

/* What a command does to a backing, as lock bits:
 *   BC_LOCK_DATA_READ   reads the data area (cat, read-only attach): shared
 *   BC_LOCK_DATA_WRITE  writes the data area or destroys the header (write,
 *                       read-write attach, format, erase, header-restore,
 *                       repair, remove-key): exclusive against readers and
 *                       writers of the data
 *   BC_LOCK_HEADER      rewrites the header (every key operation):
 *                       exclusive against other header writers only, so
 *                       keys can change while the volume is attached, as
 *                       with cryptsetup and dm-crypt */
enum {
	BC_LOCK_DATA_READ = 1u << 0,
	BC_LOCK_DATA_WRITE = 1u << 1,
	BC_LOCK_HEADER = 1u << 2,
};

struct bci_backing_lock;

/* Take the locks in WHAT on PATH without waiting.  -EBUSY (message naming
 * the holder: "PATH is attached as 'NAME', pid N" or "PATH is in use by
 * COMM, pid N") when another open file holds a conflicting one; -EACCES/
 * -EROFS when a writer's lock cannot be had because the backing cannot be
 * opened for writing; -EINVAL for anything but a regular file or a block
 * device (checked before opening, so a FIFO cannot hang us).  The locks
 * belong to the open file, not to the process: they follow it across
 * fork() and end with the last descriptor, at the latest when the process
 * dies, kill -9 included.  RUNTIME_DIR (may be NULL) is searched for the
 * state file of a holding daemon to name it. */
int bci_backing_lock(const char *path, unsigned what, const char *runtime_dir,
		    struct bci_backing_lock **out);
void bci_backing_unlock(struct bci_backing_lock *l);

/* True when A and B are the same file (inode), however named; false when
 * either cannot be stat()ed.  A detached header (--header) that is the
 * backing itself is no detached header, and must not be locked twice. */
bool bci_backing_same(const char *a, const char *b);

/* Check that PATH is a regular file or a block device (-EINVAL with a
 * one-line message otherwise; -ENOENT when it does not exist). */
int bci_backing_check_type(const char *path);

#endif
