/* SPDX-License-Identifier: GPL-2.0-or-later */
/* In-memory state of an unlocked volume, shared by the volume files. */
#ifndef BC_VOLUME_INTERNAL_H
#define BC_VOLUME_INTERNAL_H

#include <pthread.h>

#include "blockcrypt.h"
#include "backing/backing.h"
#include "engine/sector_engine.h"
#include "volume/range_lock.h"
#include "volume/volume.h"

/* Per-request working set: a keyed engine and a bounce buffer. */
#define BC_BOUNCE_SIZE (256u << 10)

struct bci_io_slot {
	struct bci_sector_engine *engine;
	uint8_t *bounce;
	struct bci_io_slot *next;
};

struct bc_volume {
	struct bci_backing *backing;
	struct bc_volume_info info;
	struct bci_sector_params sector;
	uint32_t sector_size;
	uint64_t fixed_size;       /* info.fixed_size: the size the header gives */
	struct bci_sector_engine *engine_template;
	pthread_mutex_t pool_lock;
	pthread_cond_t pool_cond;  /* slots_out reached 0 while revoked */
	struct bci_io_slot *free_slots;
	unsigned slots_out;        /* slots lent to requests */
	bool revoked;              /* bc_volume_revoke(): no more I/O */
	struct bci_range_lock write_lock;
	bool holds_keys;           /* counted in bci_secure_hold() */
};

/* Borrow a slot (-ENOMEM, or -ESHUTDOWN once revoked) and give it back. */
int bci_volume_slot_get(struct bc_volume *v, struct bci_io_slot **out);
void bci_volume_slot_put(struct bc_volume *v, struct bci_io_slot *s);

#endif
