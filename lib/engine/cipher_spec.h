/* SPDX-License-Identifier: GPL-2.0-or-later */
/* dm-crypt cipher specifications ("aes-xts-plain64", "aes-cbc-essiv:sha256")
 * parsed into what the sector engine needs. */
#ifndef BC_ENGINE_CIPHER_SPEC_H
#define BC_ENGINE_CIPHER_SPEC_H

#include <stdint.h>

#include "blockcrypt.h"

enum bci_chain_mode { BC_MODE_XTS, BC_MODE_CBC };
/* BC_IV_LOFI: Solaris/illumos lofi's IV, AES-ECB under the volume key of
 * 8 zero bytes then the 64-bit little-endian sector number (512-byte
 * units); only with the lofi names aes-128-cbc, aes-192-cbc, aes-256-cbc. */
enum bci_iv_mode { BC_IV_PLAIN, BC_IV_PLAIN64, BC_IV_ESSIV, BC_IV_LOFI };

struct bci_cipher_spec {
	char name[64];          /* canonical "aes-xts-plain64" */
	char cipher[16];        /* "aes" */
	char mode[48];          /* "xts-plain64", as libcryptsetup names it */
	enum bci_chain_mode chain;
	enum bci_iv_mode iv;
	char essiv_hash[16];    /* "sha256" for essiv */
	uint32_t key_bytes;     /* whole volume key */
};

/* Parse SPEC (NULL = BC_DEFAULT_CIPHER); KEY_BITS 0 picks the cipher's
 * default (BC_DEFAULT_XTS_KEY_BITS, BC_DEFAULT_CBC_KEY_BITS).  lofi's
 * names ("aes-256-cbc", any case) carry their key size: KEY_BITS must be 0
 * or that size. */
int bci_cipher_spec_parse(const char *spec, uint32_t key_bits, struct bci_cipher_spec *out);

#endif
