/* SPDX-License-Identifier: GPL-2.0-or-later */
/* AES-XTS on x86-64 vector AES (VAES, 256-bit lanes): many sectors per call. */
#ifndef BC_ENGINE_XTS_VAES_H
#define BC_ENGINE_XTS_VAES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Expanded keys for one XTS key (K1 for data, K2 for tweaks), in secure
 * memory.  Read-only once made, so any number of threads may share one. */
struct bci_xts_vaes;

/* True when the CPU and the kernel support what this code needs: AES-NI,
 * AVX2 with the YMM state enabled by the OS, VAES and VPCLMULQDQ. */
bool bci_xts_vaes_usable(void);

/* KEY is K1 || K2, KEY_BYTES 32 (AES-128-XTS) or 64 (AES-256-XTS).
 * 0, -ENOTSUP (CPU, key size) or -ENOMEM. */
int bci_xts_vaes_new(const uint8_t *key, size_t key_bytes, struct bci_xts_vaes **out);
/* A copy of K in its own secure memory. */
int bci_xts_vaes_dup(const struct bci_xts_vaes *k, struct bci_xts_vaes **out);
void bci_xts_vaes_free(struct bci_xts_vaes *k);

/* Encrypt (ENC != 0) or decrypt COUNT data units of UNIT bytes each (a
 * multiple of 128), unit i with the 16-byte tweak input IVS[i].  DST may
 * equal SRC but not overlap it otherwise. */
void bci_xts_vaes_crypt(const struct bci_xts_vaes *k, int enc, uint8_t *dst, const uint8_t *src,
		       size_t unit, const uint8_t (*ivs)[16], size_t count);

#endif
