/* SPDX-License-Identifier: GPL-2.0-or-later */
/* LUKS2 token JSON for PKCS#11 key slots: the on-disk form, converted to
 * and from struct bci_token in this one place (and fuzzed: tests/fuzz). */
#ifndef BC_LUKS_TOKEN_JSON_H
#define BC_LUKS_TOKEN_JSON_H

#include <stddef.h>
#include <stdint.h>

#define BC_TOKEN_TYPE "blockcrypt-pkcs11"
#define BC_TOKEN_SYSTEMD_TYPE "systemd-pkcs11"
#define BC_TOKEN_IV_BYTES 12
#define BC_TOKEN_WRAPPED_BYTES 48  /* 32-byte secret + 16-byte GCM tag */
#define BC_TOKEN_BLOB_MAX 1024     /* systemd: RSA-encrypted key, <= 8192-bit */
#define BC_TOKEN_URI_MAX 4096
/* LUKS2 key slots are numbered 0..31, tokens too (libcryptsetup's
 * LUKS2_KEYSLOTS_MAX and LUKS2_TOKENS_MAX are 32). */
#define BC_LUKS2_KEYSLOT_LAST 31
#define BC_LUKS2_TOKENS 32

enum bci_token_kind {
	BC_TOKEN_BLOCKCRYPT,  /* ours: AES-GCM secret wrapped by a token AES key */
	BC_TOKEN_SYSTEMD,     /* systemd-cryptenroll: RSA-encrypted key */
};

struct bci_token {
	enum bci_token_kind kind;
	int keyslot;                      /* 0..BC_LUKS2_KEYSLOT_LAST */
	char uri[BC_TOKEN_URI_MAX];       /* PKCS#11 URI, NUL terminated */
	uint8_t iv[BC_TOKEN_IV_BYTES];    /* ours only */
	uint8_t blob[BC_TOKEN_BLOB_MAX];  /* ours: wrapped secret; systemd: encrypted key */
	size_t blob_len;
};

/* Parse token JSON.  0; -ENOENT for a token type that is not PKCS#11
 * (not ours to judge); -EBADMSG for a malformed one, with a message. */
int bci_token_decode(const char *json, size_t len, struct bci_token *out);
/* Our token as JSON (malloc'd string).  Only BC_TOKEN_BLOCKCRYPT. */
int bci_token_encode(const struct bci_token *t, char **json_out);

#endif
