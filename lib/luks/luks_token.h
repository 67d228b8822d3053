/* SPDX-License-Identifier: GPL-2.0-or-later */
/* Token-based unlocking shared by the volume open path and the plugin. */
#ifndef BC_LUKS_TOKEN_H
#define BC_LUKS_TOKEN_H

#include <libcryptsetup.h>

#include "blockcrypt.h"
#include "luks/token_json.h"

/* Try every supported token; on success KEY holds the volume key
 * (*KEY_SIZE bytes) and the key slot is returned. */
int bci_luks_token_unlock(struct crypt_device *cd, const char *path, const struct bc_unlock *u,
			 struct bc_secret *key, size_t *key_size);

/* Recover the key slot passphrase of token T (ours or systemd-pkcs11),
 * asking U->get_pin for a PIN when the token needs one. */
int bci_luks_token_passphrase(struct crypt_device *cd, const struct bci_token *t,
			     const struct bc_unlock *u, struct bc_secret **pass_out);

#endif
