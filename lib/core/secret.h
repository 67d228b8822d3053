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
/* Lock every page of the process, now and later (touched pages only, so
 * thread stacks are not pre-faulted): for processes whose heap holds key
 * schedules or plaintext.  0 or -errno (e.g. over RLIMIT_MEMLOCK). */
int bci_memory_lock_all(void);
void bci_secure_free(void *p);
/* Shrink the recorded length of a secret (bytes past it are wiped). */
void bci_secret_truncate(struct bc_secret *s, size_t len);
/* Allocate an empty secret with room for CAPACITY bytes (length 0). */
int bci_secret_new(size_t capacity, struct bc_secret **out);
uint8_t *bci_secret_buf(struct bc_secret *s);
size_t bci_secret_capacity(const struct bc_secret *s);
void bci_secret_set_len(struct bc_secret *s, size_t len);

/* bc_secret_prompt() that gives up (-ETIME) after TIMEOUT_S seconds
 * without a finished line; 0: waits for ever. */
int bci_secret_prompt_timeout(const char *prompt, uint32_t timeout_s, struct bc_secret **out);

/* Constant-time equality of two secrets. */
int bci_secret_equal(const struct bc_secret *a, const struct bc_secret *b);

#define _cleanup_secret_ __attribute__((cleanup(bci_secret_freep)))
static inline void bci_secret_freep(struct bc_secret **s)
{
	bc_secret_free(*s);
}

#endif
