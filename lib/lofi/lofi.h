/* SPDX-License-Identifier: GPL-2.0-or-later */
/* Solaris/illumos lofi encrypted images (lofiadm -c): the CFLOFI header,
 * the key as lofiadm makes it, and the volume built from both.  The
 * format is described in docs/blockcrypt-lofi.7.md. */
#ifndef BC_LOFI_LOFI_H
#define BC_LOFI_LOFI_H

#include <stddef.h>
#include <stdint.h>

#include "blockcrypt.h"

/* The crypto header: one 512-byte block at byte 8192 of the image. */
#define BCI_LOFI_HEADER_OFFSET 8192u
#define BCI_LOFI_HEADER_SIZE 512u
#define BCI_LOFI_SECTOR 512u

/* What a valid header says, in host terms. */
struct bci_lofi_header {
	uint16_t version;      /* 0 */
	uint32_t data_sector;  /* start of the data area, 512-byte units */
	uint64_t data_offset;  /* the same in bytes */
};

/* Check the LEN bytes read at BCI_LOFI_HEADER_OFFSET of an image of
 * IMAGE_SIZE bytes and convert them.  -EBADMSG not a lofi image (no
 * CFLOFI magic, a data sector inside the first 8 KiB, a size that is not
 * whole sectors), -ENOTSUP a version or reserved bytes we do not know,
 * -ENOSPC a data area past the image's end. */
int bci_lofi_header_parse(const uint8_t *buf, size_t len, uint64_t image_size,
			  struct bci_lofi_header *out);

/* Read and check BACKING's header. */
int bci_lofi_header_read(const char *backing, struct bci_lofi_header *out);

/* The layout of a lofi volume: the header's, plus the cipher the key and
 * P->cipher give (lofi records no cipher). */
struct bci_lofi_layout {
	struct bci_lofi_header header;
	char cipher[64];       /* "aes-256-cbc" */
	uint32_t key_bits;
};

/* Open BACKING as lofi: SECRET is the raw key (P->hash NULL, lofiadm -k)
 * or a passphrase (P->hash set, to any name: lofiadm's derivation is
 * fixed, as for lofiadm without -k/-T). */
int bci_lofi_open_volume(const char *backing, const struct bc_open_params *p,
			 const struct bc_secret *secret, struct bc_volume **out);

#endif
