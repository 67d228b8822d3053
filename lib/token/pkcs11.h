/* SPDX-License-Identifier: GPL-2.0-or-later */
/* A thin PKCS#11 layer over p11-kit: find a token by RFC 7512 URI, log in,
 * find or make keys, and use them for the few operations blockcrypt needs.
 * Key material of token keys never leaves the token. */
#ifndef BC_TOKEN_PKCS11_H
#define BC_TOKEN_PKCS11_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "blockcrypt.h"

struct bci_p11;

/* Accept an RFC 7512 "pkcs11:" URI, or lofi's "token:manufacturer:serial:key"
 * spelling (empty fields match anything); returns a malloc'd URI. */
int bci_p11_normalize_uri(const char *in, char **out);
/* Open a session on the first initialized token matching URI, using the
 * module at MODULE_PATH, or every module p11-kit knows when NULL (trust
 * stores excepted); RW opens a read-write session (needed to create keys). */
int bci_p11_open(const char *uri, const char *module_path, bool rw, struct bci_p11 **out);
void bci_p11_close(struct bci_p11 *p);
const char *bci_p11_token_label(const struct bci_p11 *p);
bool bci_p11_needs_login(const struct bci_p11 *p);
/* -EPERM for a wrong PIN (exit code 3). */
int bci_p11_login(struct bci_p11 *p, const struct bc_secret *pin);

enum bci_p11_key_kind { BC_P11_AES_KEY, BC_P11_RSA_PRIVATE_KEY };
/* Select the key the URI names (object=/id=); -ENOKEY when absent. */
int bci_p11_find_key(struct bci_p11 *p, enum bci_p11_key_kind kind);
/* How many objects (after login: private ones too) carry LABEL. */
int bci_p11_count_label(struct bci_p11 *p, const char *label);
/* New non-extractable, sensitive AES key LABEL on the token. */
int bci_p11_generate_aes(struct bci_p11 *p, const char *label, unsigned bits);

/* All of the above in one: open the token URI names (with U's module),
 * log in with PIN, or one U->get_pin gives when PIN is NULL and the token
 * needs one, and select the key of KIND. */
int bci_p11_open_key(const char *uri, const struct bc_unlock *u, const struct bc_secret *pin,
		    enum bci_p11_key_kind kind, struct bci_p11 **out);

/* AES-GCM with the selected key: OUT gets ciphertext||tag (encrypt) or
 * plaintext (decrypt); -EBADMSG when authentication fails. */
int bci_p11_gcm(struct bci_p11 *p, bool encrypt, const uint8_t iv[12], const void *aad, size_t aad_len,
	       const uint8_t *in, size_t in_len, uint8_t *out, size_t *out_len);
/* AES-ECB encryption of whole blocks with the selected key. */
int bci_p11_ecb_encrypt(struct bci_p11 *p, const uint8_t *in, size_t len, uint8_t *out);
/* RSA PKCS#1 v1.5 decryption with the selected private key. */
int bci_p11_rsa_decrypt(struct bci_p11 *p, const uint8_t *in, size_t in_len, uint8_t *out, size_t *out_len);

#endif
