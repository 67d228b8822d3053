/* Exclusive locks on ranges of sectors: writers to overlapping ranges run
 * one after another, writers to disjoint ranges run in parallel. */
#ifndef BC_VOLUME_RANGE_LOCK_H
#define BC_VOLUME_RANGE_LOCK_H

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>

struct bc_range { uint64_t first, last; };

struct bc_range_lock {
	pthread_mutex_t mutex;
	pthread_cond_t released;
	struct bc_range *held;
	size_t nheld, capacity;
};

void bc_range_lock_init(struct bc_range_lock *l);
void bc_range_lock_destroy(struct bc_range_lock *l);
/* Inclusive range [first, last]. */
int bc_range_lock(struct bc_range_lock *l, uint64_t first, uint64_t last);
void bc_range_unlock(struct bc_range_lock *l, uint64_t first, uint64_t last);

#endif
