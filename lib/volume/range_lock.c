/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Range locks for sector writes.
 *
 * Threading: all state is under one mutex; a waiter sleeps on the condition
 * variable until no held range overlaps its own.  The held set is tiny (one
 * entry per write in flight), so a linear scan is the fastest structure.
 */
#include <errno.h>
#include <stdlib.h>

#include "core/error.h"
#include "volume/range_lock.h"

void bci_range_lock_init(struct bci_range_lock *l)
{
	pthread_mutex_init(&l->mutex, NULL);
	pthread_cond_init(&l->released, NULL);
	l->held = NULL;
	l->nheld = l->capacity = 0;
}

void bci_range_lock_destroy(struct bci_range_lock *l)
{
	pthread_mutex_destroy(&l->mutex);
	pthread_cond_destroy(&l->released);
	free(l->held);
	l->held = NULL;
}

static int overlaps(const struct bci_range_lock *l, uint64_t first, uint64_t last)
{
	for (size_t i = 0; i < l->nheld; i++)
		if (l->held[i].first <= last && first <= l->held[i].last)
			return 1;
	return 0;
}

int bci_range_lock(struct bci_range_lock *l, uint64_t first, uint64_t last)
{
	int r = 0;

	pthread_mutex_lock(&l->mutex);
	while (overlaps(l, first, last))
		pthread_cond_wait(&l->released, &l->mutex);
	if (l->nheld == l->capacity) {
		size_t cap = l->capacity ? l->capacity * 2 : 16;
		struct bci_range *n = realloc(l->held, cap * sizeof(*n));

		if (!n) {
			r = bci_error(-ENOMEM, "range lock: out of memory");
			goto out;
		}
		l->held = n;
		l->capacity = cap;
	}
	l->held[l->nheld++] = (struct bci_range){ first, last };
out:
	pthread_mutex_unlock(&l->mutex);
	return r;
}

void bci_range_unlock(struct bci_range_lock *l, uint64_t first, uint64_t last)
{
	pthread_mutex_lock(&l->mutex);
	for (size_t i = 0; i < l->nheld; i++) {
		if (l->held[i].first == first && l->held[i].last == last) {
			l->held[i] = l->held[--l->nheld];
			break;
		}
	}
	pthread_cond_broadcast(&l->released);
	pthread_mutex_unlock(&l->mutex);
}
