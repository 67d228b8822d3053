/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Staged headers: libcryptsetup opens files and block devices only.  For a
 * backing it cannot open (an RBD image), the header area is staged in an
 * in-memory file that libcryptsetup works on, and written back to the
 * backing after each successful operation, in a crash-safe order (see
 * header_stage.c).  The functions of luks_common.c call these; nothing
 * else needs to.
 */
#ifndef BC_LUKS_HEADER_STAGE_H
#define BC_LUKS_HEADER_STAGE_H

#include <stdbool.h>
#include <stdint.h>

#include "blockcrypt.h"

/* The device libcryptsetup is to open for PATH: PATH itself, or for an
 * RBD image its staged copy (staged on first use, kept until the process
 * ends, bc_rbd_remove() or bc_drop_staged_headers()). */
int bci_stage_device(const char *path, const char **device);
/* Make sure the first LEN bytes of the backing behind DEVICE (a staged
 * copy; anything else: nothing to do) are staged: libcryptsetup reads key
 * slots lazily, up to the data offset. */
int bci_stage_cover(const char *device, uint64_t len);
/* After libcryptsetup is done with DEVICE: when OK, write its changes
 * back; else forget them.  0 when DEVICE is not a staged copy. */
int bci_stage_finish(const char *device, bool ok);

#endif
