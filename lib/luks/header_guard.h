/* SPDX-License-Identifier: GPL-2.0-or-later */
/* A header change that fails leaves the header as it was. */
#ifndef BC_LUKS_HEADER_GUARD_H
#define BC_LUKS_HEADER_GUARD_H

#include <stdbool.h>

struct bci_header_guard;

/* Before a header change on PATH: keep a copy of the header area (up to
 * the data offset; all of a detached header file, --header) and, on a regular file, allocate that area so the
 * change cannot run out of space half-way (-ENOSPC, exit 5, before
 * anything is written).  *OUT is NULL when PATH holds no LUKS header
 * (then the change itself will refuse). */
int bci_header_guard_begin(const char *path, struct bci_header_guard **out);
/* After it: when FAILED, write back every 4 KiB block of the header area
 * that differs from the copy (libcryptsetup may have rewritten part of it
 * before failing, e.g. a new salt and key material when the disk filled
 * up), under libcryptsetup's own lock, and sync.  Frees G.  Returns how
 * many blocks it restored, or a negative errno (message set) when it
 * could not. */
int bci_header_guard_end(struct bci_header_guard *g, bool failed);

#endif
