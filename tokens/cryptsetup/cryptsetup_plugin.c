/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * libcryptsetup external token plugin for "blockcrypt-pkcs11" tokens, so
 * that cryptsetup itself can unlock volumes enrolled with `blockcrypt
 * enroll` (cryptsetup open --token-only, luksDump shows the token).
 * Installed as libcryptsetup-token-blockcrypt-pkcs11.so in libcryptsetup's
 * token directory.  The same code as blockcrypt's own unlock path: the
 * token key unwraps the slot secret inside the token; cryptsetup receives
 * the slot passphrase in a buffer that we wipe when it is freed.
 *
 * It lives outside lib/ (as cryptsetup's own tokens/ and systemd's
 * cryptsetup-tokens/ do) because it sits above the library: it uses
 * lib/luks's token unlocking, which uses lib/token, and nothing in lib/
 * may know of it.
 *
 * Threading: called by libcryptsetup on the caller's thread; no state.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <libcryptsetup.h>

#include "config.h"
#include "core/secret.h"
#include "luks/luks_token.h"
#include "luks/token_json.h"

struct pin_arg {
	const char *pin;
	size_t len;
};

static int plugin_pin(void *user, const char *label, struct bc_secret **out)
{
	const struct pin_arg *a = user;

	(void)label;
	*out = NULL;
	if (!a->pin)
		return -ENOANO; /* tells libcryptsetup to ask for a PIN */
	return bc_secret_from_bytes(a->pin, a->len, out);
}

const char *cryptsetup_token_version(void);
int cryptsetup_token_open_pin(struct crypt_device *cd, int token, const char *pin, size_t pin_size,
			      char **buffer, size_t *buffer_len, void *usrptr);
int cryptsetup_token_open(struct crypt_device *cd, int token, char **buffer, size_t *buffer_len,
			  void *usrptr);
void cryptsetup_token_buffer_free(void *buffer, size_t buffer_len);
int cryptsetup_token_validate(struct crypt_device *cd, const char *json);
void cryptsetup_token_dump(struct crypt_device *cd, const char *json);

const char *cryptsetup_token_version(void)
{
	return BC_VERSION;
}

int cryptsetup_token_open_pin(struct crypt_device *cd, int token, const char *pin, size_t pin_size,
			      char **buffer, size_t *buffer_len, void *usrptr)
{
	struct pin_arg arg = { pin, pin_size };
	struct bc_unlock u = { .get_pin = plugin_pin, .user = &arg };
	struct bc_secret *pass = NULL;
	const char *json = NULL;
	struct bci_token t;
	int r;

	(void)usrptr;
	if (crypt_token_json_get(cd, token, &json) < 0 ||
	    bci_token_decode(json, strlen(json), &t) < 0 || t.kind != BC_TOKEN_BLOCKCRYPT)
		return -EINVAL;
	r = bci_luks_token_passphrase(cd, &t, &u, &pass);
	explicit_bzero(&t, sizeof(t));
	if (r < 0)
		/* -ENOANO: PIN missing or wrong, ask (again); -ENOENT: unusable. */
		return r == -EPERM || r == -ENOANO ? -ENOANO : -ENOENT;
	*buffer = malloc(bc_secret_len(pass));
	if (!*buffer) {
		bc_secret_free(pass);
		return -ENOMEM;
	}
	memcpy(*buffer, bc_secret_data(pass), bc_secret_len(pass));
	*buffer_len = bc_secret_len(pass);
	bc_secret_free(pass);
	return 0;
}

int cryptsetup_token_open(struct crypt_device *cd, int token, char **buffer, size_t *buffer_len,
			  void *usrptr)
{
	return cryptsetup_token_open_pin(cd, token, NULL, 0, buffer, buffer_len, usrptr);
}

void cryptsetup_token_buffer_free(void *buffer, size_t buffer_len)
{
	if (buffer)
		explicit_bzero(buffer, buffer_len);
	free(buffer);
}

int cryptsetup_token_validate(struct crypt_device *cd, const char *json)
{
	struct bci_token t;
	int r;

	(void)cd;
	r = bci_token_decode(json, strlen(json), &t);
	if (r == 0 && t.kind != BC_TOKEN_BLOCKCRYPT)
		r = -EINVAL;
	explicit_bzero(&t, sizeof(t));
	return r < 0 ? -EINVAL : 0;
}

void cryptsetup_token_dump(struct crypt_device *cd, const char *json)
{
	struct bci_token t;

	if (bci_token_decode(json, strlen(json), &t) == 0 && t.kind == BC_TOKEN_BLOCKCRYPT)
		crypt_logf(cd, CRYPT_LOG_NORMAL, "\tPKCS#11 URI: %s\n\tKey slot:    %d\n\tWrapping:    AES-GCM in the token\n",
			   t.uri, t.keyslot);
	explicit_bzero(&t, sizeof(t));
}
