/* SPDX-License-Identifier: GPL-2.0-or-later */
/* Memory for key material: page-aligned, mlock'd, excluded from core dumps,
 * wiped with explicit_bzero on free.  While any such allocation exists the
 * process is made non-dumpable (PR_SET_DUMPABLE 0). */
#ifndef BC_CORE_SECRET_H
#define BC_CORE_SECRET_H

#include <stddef.h>
#include <stdint.h>

#include "blockcrypt.h"

void *bci_secure_alloc(size_t size);
/* Mark key material held outside secure allocations (e.g. key schedules
 * inside OpenSSL contexts): the process stays non-dumpable until released. */
void bci_secure_hold(void);
void bci_secure_release(void);
void bci_secure_free(void *p);

#define _cleanup_secret_ __attribute__((cleanup(bci_secret_freep)))
static inline void bci_secret_freep(struct bc_secret **s)
{
	bc_secret_free(*s);
}

#endif
