/* Token-based unlocking shared by the volume open path and the plugin. */
#ifndef BC_LUKS_TOKEN_H
#define BC_LUKS_TOKEN_H

#include <json-c/json.h>
#include <libcryptsetup.h>

#include "blockcrypt.h"

#define BC_TOKEN_TYPE "blockcrypt-pkcs11"

/* Try every supported token; on success KEY holds the volume key
 * (*KEY_SIZE bytes) and the key slot is returned. */
int bc_luks_token_unlock(struct crypt_device *cd, const char *path, const struct bc_unlock *u,
			 struct bc_secret *key, size_t *key_size);

/* Recover the key slot passphrase of token JSON O of TYPE (ours or
 * "systemd-pkcs11"), asking U->get_pin for a PIN when the token needs one. */
int bc_luks_token_passphrase(struct crypt_device *cd, json_object *o, const char *type,
			     const struct bc_unlock *u, struct bc_secret **pass_out);
/* First key slot a token JSON is bound to, or -EINVAL. */
int bc_luks_token_slot(json_object *o);
/* String member KEY of O, or NULL. */
const char *bc_json_str(json_object *o, const char *key);

#endif
