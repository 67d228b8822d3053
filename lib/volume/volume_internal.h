/* In-memory state of an unlocked volume, shared by the volume files. */
#ifndef BC_VOLUME_INTERNAL_H
#define BC_VOLUME_INTERNAL_H

#include <pthread.h>

#include "blockcrypt.h"
#include "engine/sector_engine.h"
#include "backing/backing.h"
#include "volume/range_lock.h"

/* Per-request working set: a keyed engine and a bounce buffer. */
#define BC_BOUNCE_SIZE (256u << 10)

struct bc_io_slot {
	struct bc_sector_engine *engine;
	uint8_t *bounce;
	struct bc_io_slot *next;
};

struct bc_volume {
	struct bc_backing *backing;
	struct bc_volume_info info;
	struct bc_sector_params sector;
	uint32_t sector_size;
	uint64_t fixed_size;       /* info.fixed_size: the size the header gives */
	struct bc_sector_engine *engine_template;
	pthread_mutex_t pool_lock;
	pthread_cond_t pool_cond;  /* slots_out reached 0 while revoked */
	struct bc_io_slot *free_slots;
	unsigned slots_out;        /* slots lent to requests */
	bool revoked;              /* bc_volume_revoke(): no more I/O */
	struct bc_range_lock write_lock;
	bool holds_keys;           /* counted in bc_secure_hold() */
};

/* Build a volume from a volume key and the layout in INFO (cipher,
 * key_bits, sector_size, iv_large_sectors, data_offset, iv_offset; size 0
 * means "up to the end of the backing").  KEY is not kept. */
int bc_volume_create(const char *backing, const struct bc_volume_info *info,
		     const uint8_t *key, struct bc_volume **out);

/* Borrow a slot (-ENOMEM, or -ESHUTDOWN once revoked) and give it back. */
int bc_volume_slot_get(struct bc_volume *v, struct bc_io_slot **out);
void bc_volume_slot_put(struct bc_volume *v, struct bc_io_slot *s);

/* LUKS: unlock with a passphrase and build the volume (lib/luks). */
int bc_luks_open_volume(const char *backing, const struct bc_open_params *p,
			const struct bc_secret *pass, struct bc_volume **out);
/* Plain: derive the key from the secret (lib/luks, via libcryptsetup). */
int bc_plain_derive_key(const char *backing, const struct bc_open_params *p,
			const struct bc_secret *secret, uint32_t key_bytes,
			struct bc_secret **key_out);

#endif
