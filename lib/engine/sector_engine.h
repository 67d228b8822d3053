/* SPDX-License-Identifier: GPL-2.0-or-later */
/* The sector engine: dm-crypt compatible encryption of whole sectors. */
#ifndef BC_ENGINE_SECTOR_ENGINE_H
#define BC_ENGINE_SECTOR_ENGINE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "engine/cipher_spec.h"

struct bci_sector_params {
	struct bci_cipher_spec spec;
	uint32_t sector_size;      /* 512, 1024, 2048 or 4096 */
	bool iv_large_sectors;     /* IV counts sector_size units (plain --iv-large-sectors only) */
	uint64_t iv_offset;        /* added to the IV sector, in 512-byte units */
};

/* One engine serves one thread at a time; make more with bci_sector_engine_dup. */
struct bci_sector_engine;

int bci_sector_engine_new(const struct bci_sector_params *p, const uint8_t *key,
			 struct bci_sector_engine **out);
/* BC_ENGINE_EVP_ONLY: never call the provider directly (tests, benchmarks).
 * BC_ENGINE_NO_VAES: XTS through OpenSSL even where the VAES code runs. */
#define BC_ENGINE_EVP_ONLY 1u
#define BC_ENGINE_NO_VAES 2u
int bci_sector_engine_new_ex(const struct bci_sector_params *p, const uint8_t *key,
			    unsigned flags, struct bci_sector_engine **out);
/* Which code encrypts: "vaes" (xts_vaes.c), "direct" (OpenSSL's provider
 * functions called directly) or "evp" (the EVP API). */
const char *bci_sector_engine_path(const struct bci_sector_engine *e);
/* Copy an engine's keyed state without needing the key again. */
int bci_sector_engine_dup(const struct bci_sector_engine *src, struct bci_sector_engine **out);
void bci_sector_engine_free(struct bci_sector_engine *e);

/* Encrypt/decrypt COUNT sectors starting at data-area sector SECTOR
 * (sector_size units).  DST may equal SRC. */
int bci_sector_encrypt(struct bci_sector_engine *e, uint8_t *dst, const uint8_t *src,
		      uint64_t sector, size_t count);
int bci_sector_decrypt(struct bci_sector_engine *e, uint8_t *dst, const uint8_t *src,
		      uint64_t sector, size_t count);

#endif
