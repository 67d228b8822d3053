/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Creating a volume from its key and layout (the formats above find
 * those: lib/luks, lib/plain; lib/setup picks one), closing, revoking and
 * resizing it; the pool of per-request working sets.
 *
 * Threading: after bci_volume_create() returns, the volume is shared by any
 * number of I/O threads.  Each request borrows a bci_io_slot (keyed engine +
 * bounce buffer) from a free list under pool_lock, so no cipher context is
 * ever used by two threads and nothing is allocated per sector.
 * bc_volume_revoke() waits (on pool_cond) until every slot is back.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/error.h"
#include "core/macros.h"
#include "core/secret.h"
#include "volume/volume_internal.h"

const char *bc_volume_type_name(enum bc_volume_type t)
{
	switch (t) {
	case BC_TYPE_LUKS1: return "luks1";
	case BC_TYPE_LUKS2: return "luks2";
	case BC_TYPE_PLAIN: return "plain";
	case BC_TYPE_LOFI: return "lofi";
	default: return "auto";
	}
}

int bc_volume_type_parse(const char *name, enum bc_volume_type *out)
{
	static const enum bc_volume_type all[] = { BC_TYPE_AUTO, BC_TYPE_LUKS1, BC_TYPE_LUKS2, BC_TYPE_PLAIN,
						     BC_TYPE_LOFI };

	for (size_t i = 0; i < ARRAY_SIZE(all); i++) {
		if (!strcmp(name, bc_volume_type_name(all[i]))) {
			*out = all[i];
			return 0;
		}
	}
	if (!strcmp(name, "luks")) {
		*out = BC_TYPE_AUTO;
		return 0;
	}
	return bci_error(-EINVAL, "type %s: expected luks2, luks1, luks, plain or lofi", name);
}

static void slot_free(struct bci_io_slot *s)
{
	if (!s)
		return;
	bci_sector_engine_free(s->engine);
	if (s->bounce)
		explicit_bzero(s->bounce, BC_BOUNCE_SIZE);
	free(s->bounce);
	free(s);
}

int bci_volume_slot_get(struct bc_volume *v, struct bci_io_slot **out)
{
	struct bci_io_slot *s;
	bool revoked;

	*out = NULL;
	pthread_mutex_lock(&v->pool_lock);
	revoked = v->revoked;
	s = revoked ? NULL : v->free_slots;
	if (s)
		v->free_slots = s->next;
	if (!revoked)
		v->slots_out++;
	pthread_mutex_unlock(&v->pool_lock);
	if (revoked)
		return bci_error(-ESHUTDOWN, "volume: detached");
	if (!s) {
		s = calloc(1, sizeof(*s));
		if (s)
			s->bounce = aligned_alloc(4096, BC_BOUNCE_SIZE);
		if (!s || !s->bounce || bci_sector_engine_dup(v->engine_template, &s->engine) < 0) {
			slot_free(s);
			bci_volume_slot_put(v, NULL);
			return bci_error(-ENOMEM, "volume: out of memory for an I/O slot");
		}
	}
	*out = s;
	return 0;
}

void bci_volume_slot_put(struct bc_volume *v, struct bci_io_slot *s)
{
	pthread_mutex_lock(&v->pool_lock);
	if (s) {
		s->next = v->free_slots;
		v->free_slots = s;
	}
	if (--v->slots_out == 0 && v->revoked)
		pthread_cond_broadcast(&v->pool_cond);
	pthread_mutex_unlock(&v->pool_lock);
}

/* Free every pooled slot and the template: this wipes the key schedules. */
static void drop_keys(struct bc_volume *v)
{
	struct bci_io_slot *s;

	while ((s = v->free_slots)) {
		v->free_slots = s->next;
		slot_free(s);
	}
	bci_sector_engine_free(v->engine_template);
	v->engine_template = NULL;
}

int bc_volume_revoke(struct bc_volume *v, unsigned timeout_s)
{
	struct timespec deadline;
	int r = 0;

	clock_gettime(CLOCK_REALTIME, &deadline);
	deadline.tv_sec += timeout_s;
	pthread_mutex_lock(&v->pool_lock);
	v->revoked = true;
	while (v->slots_out && r == 0)
		r = pthread_cond_timedwait(&v->pool_cond, &v->pool_lock, &deadline);
	if (v->slots_out) {
		r = bci_error(-EBUSY, "volume: %u request(s) still running; keys not wiped", v->slots_out);
	} else {
		drop_keys(v);
		r = 0;
	}
	pthread_mutex_unlock(&v->pool_lock);
	return r;
}

int bci_volume_create(const char *backing, const struct bc_volume_info *info,
		     const uint8_t *key, struct bc_volume **out)
{
	struct bc_volume *v;
	uint64_t backing_size;
	int r;

	*out = NULL;
	v = calloc(1, sizeof(*v));
	if (!v)
		return bci_error(-ENOMEM, "volume: out of memory");
	pthread_mutex_init(&v->pool_lock, NULL);
	pthread_cond_init(&v->pool_cond, NULL);
	bci_range_lock_init(&v->write_lock);
	v->info = *info;

	r = bci_cipher_spec_parse(info->cipher, info->key_bits, &v->sector.spec);
	if (r < 0)
		goto fail;
	v->sector.sector_size = info->sector_size;
	v->sector.iv_large_sectors = info->iv_large_sectors;
	v->sector.iv_offset = info->iv_offset;
	v->sector_size = info->sector_size;
	/* From here on key schedules exist in cipher contexts. */
	bci_secure_hold();
	v->holds_keys = true;
	r = bci_sector_engine_new(&v->sector, key, &v->engine_template);
	if (r < 0)
		goto fail;

	r = bci_backing_open(backing, info->read_only, &v->backing);
	if (r < 0)
		goto fail;
	r = bci_backing_size(v->backing, &backing_size);
	if (r < 0)
		goto fail;
	if (backing_size <= info->data_offset) {
		r = bci_error(-ENOSPC, "%s: backing (%llu bytes) has no data area: the data starts at byte %llu (truncated?)",
			     backing, (unsigned long long)backing_size, (unsigned long long)info->data_offset);
		goto fail;
	}
	if (!info->size || info->size > backing_size - info->data_offset)
		v->info.size = backing_size - info->data_offset;
	v->info.size -= v->info.size % info->sector_size;
	/* A size the header fixes must fit; other sizes are a most. */
	if (info->fixed_size && v->info.size < info->size) {
		r = bci_error(-ENOSPC, "%s: the data segment is %llu bytes but the backing holds only %llu after the header (truncated?)",
			     backing, (unsigned long long)info->size, (unsigned long long)v->info.size);
		goto fail;
	}
	v->fixed_size = v->info.size;
	if (!v->info.size) {
		r = bci_error(-ENOSPC, "%s: data area is smaller than one %u-byte sector",
			     backing, info->sector_size);
		goto fail;
	}
	*out = v;
	return 0;
fail:
	bc_volume_close(v);
	return r;
}

void bc_volume_close(struct bc_volume *v)
{
	if (!v)
		return;
	drop_keys(v);
	bci_backing_close(v->backing);
	bci_range_lock_destroy(&v->write_lock);
	pthread_mutex_destroy(&v->pool_lock);
	pthread_cond_destroy(&v->pool_cond);
	if (v->holds_keys)
		bci_secure_release();
	explicit_bzero(v, sizeof(*v));
	free(v);
}

void bc_volume_get_info(const struct bc_volume *v, struct bc_volume_info *out)
{
	*out = v->info;
	out->size = bc_volume_size(v);
}

uint64_t bc_volume_size(const struct bc_volume *v)
{
	return __atomic_load_n(&v->info.size, __ATOMIC_ACQUIRE);
}

int bc_volume_resize(struct bc_volume *v, uint64_t new_size, bool allow_shrink)
{
	uint64_t backing_size, old = bc_volume_size(v), limit;
	int r = bci_backing_size(v->backing, &backing_size);

	if (r < 0)
		return r;
	if (backing_size <= v->info.data_offset)
		return bci_error(-ENOSPC, "resize: the backing no longer reaches the data area");
	limit = backing_size - v->info.data_offset;
	limit -= limit % v->sector_size;
	/* A size written in the header is the most there is. */
	if (v->info.fixed_size && limit > v->fixed_size)
		limit = v->fixed_size;
	if (!new_size)
		new_size = limit;
	/* A backing that is a volume of a pool (RBD) grows on request: the
	 * data area past the header, as the new size asks. */
	if (new_size > limit && v->backing->grows_on_resize && !v->info.fixed_size &&
	    new_size % v->sector_size == 0 && new_size <= UINT64_MAX - v->info.data_offset) {
		r = bci_backing_grow(v->backing, v->info.data_offset + new_size);
		if (r < 0)
			return r;
		limit = new_size;
	}
	if (new_size % v->sector_size)
		return bci_error(-EINVAL, "resize: %llu is not a multiple of the %u-byte sector size",
				(unsigned long long)new_size, v->sector_size);
	if (new_size > limit)
		return bci_error(-ENOSPC, "resize: %llu bytes do not fit in the backing (at most %llu)",
				(unsigned long long)new_size, (unsigned long long)limit);
	if (!new_size)
		return bci_error(-EINVAL, "resize: a volume cannot be empty");
	if (new_size < old && !allow_shrink)
		return bci_error(-EINVAL, "resize: the backing is smaller than the volume (%llu < %llu bytes); "
				"shrinking needs an explicit --size", (unsigned long long)new_size,
				(unsigned long long)old);
	/* I/O threads read the size without a lock: publish it atomically. */
	__atomic_store_n(&v->info.size, new_size, __ATOMIC_RELEASE);
	return 0;
}
