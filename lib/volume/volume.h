/* SPDX-License-Identifier: GPL-2.0-or-later */
/* Building a volume from its key and layout: the one entry point of the
 * volume layer for the formats above it (lib/luks, lib/plain), which
 * find the key and the layout in their own ways. */
#ifndef BC_VOLUME_VOLUME_H
#define BC_VOLUME_VOLUME_H

#include <stdint.h>

#include "blockcrypt.h"

/* Build a volume from a volume key and the layout in INFO (cipher,
 * key_bits, sector_size, iv_large_sectors, data_offset, iv_offset; size 0
 * means "up to the end of the backing").  KEY is not kept. */
int bci_volume_create(const char *backing, const struct bc_volume_info *info,
		     const uint8_t *key, struct bc_volume **out);

#endif
