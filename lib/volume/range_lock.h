/* SPDX-License-Identifier: GPL-2.0-or-later */
/* Exclusive locks on ranges of sectors: writers to overlapping ranges run
 * one after another, writers to disjoint ranges run in parallel. */
#ifndef BC_VOLUME_RANGE_LOCK_H
#define BC_VOLUME_RANGE_LOCK_H

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>

struct bci_range { uint64_t first, last; };

struct bci_range_lock {
	pthread_mutex_t mutex;
	pthread_cond_t released;
	struct bci_range *held;
	size_t nheld, capacity;
};

void bci_range_lock_init(struct bci_range_lock *l);
void bci_range_lock_destroy(struct bci_range_lock *l);
/* Inclusive range [first, last]. */
int bci_range_lock(struct bci_range_lock *l, uint64_t first, uint64_t last);
void bci_range_unlock(struct bci_range_lock *l, uint64_t first, uint64_t last);

#endif
