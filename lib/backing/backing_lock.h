/* SPDX-License-Identifier: GPL-2.0-or-later */
/* Advisory locks on a backing store, by identity (the inode), not by path. */
#ifndef BC_BACKING_BACKING_LOCK_H
#define BC_BACKING_BACKING_LOCK_H

#include <stdbool.h>

/* The locks are public API (blockcrypt.h: bc_backing_lock and the
 * BC_LOCK_* bits); this header is what the library's own files include. */
#include "blockcrypt.h"

#endif
