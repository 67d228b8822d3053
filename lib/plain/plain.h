/* SPDX-License-Identifier: GPL-2.0-or-later */
/* Plain (headerless, dm-crypt plain mode) volumes: the layout comes from
 * the caller, the key from the secret as cryptsetup's plain mode makes
 * it. */
#ifndef BC_PLAIN_PLAIN_H
#define BC_PLAIN_PLAIN_H

#include "blockcrypt.h"

/* Derive the key from SECRET as P says (P->hash) and build the volume
 * with P's layout. */
int bci_plain_open_volume(const char *backing, const struct bc_open_params *p,
			 const struct bc_secret *secret, struct bc_volume **out);

#endif
