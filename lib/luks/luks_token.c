/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * PKCS#11 key slots: enrolment, removal, and unlocking through LUKS2
 * tokens of type "blockcrypt-pkcs11" (ours) and "systemd-pkcs11"
 * (systemd-cryptenroll's).
 *
 * Our token (JSON form in token_json.c) holds a 32-byte random secret,
 * AES-GCM-wrapped by an AES key that never leaves the token.  The GCM additional data is "blockcrypt-pkcs11:" + the volume UUID, so a
 * token copied to another volume does not authenticate.  Key slot N's
 * passphrase is the secret as 64 hex digits; being 256 random bits it
 * needs no slow KDF, so the slot uses PBKDF2 at the minimum cost (as
 * systemd-cryptenroll does for its tokens).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>
#include <openssl/rand.h>

#include "core/error.h"
#include "core/secret.h"
#include "luks/luks.h"
#include "luks/luks_token.h"
#include "luks/token_json.h"
#include "token/pkcs11.h"

#define SECRET_BYTES 32
#define AAD_PREFIX "blockcrypt-pkcs11:"
/* The GCM additional data: AAD_PREFIX and the volume UUID. */
#define AAD_MAX (sizeof(AAD_PREFIX) + sizeof(((struct bc_volume_info *)0)->uuid))

static int b64_encode(const uint8_t *in, size_t len, char *out, size_t size)
{
	if (size < 4 * ((len + 2) / 3) + 1)
		return -EINVAL;
	EVP_EncodeBlock((unsigned char *)out, in, (int)len);
	return 0;
}

static void to_hex(const uint8_t *in, size_t len, uint8_t *out)
{
	static const char digits[] = "0123456789abcdef";

	for (size_t i = 0; i < len; i++) {
		out[2 * i] = (uint8_t)digits[in[i] >> 4];
		out[2 * i + 1] = (uint8_t)digits[in[i] & 15];
	}
}

static void make_aad(struct crypt_device *cd, char *aad, size_t size)
{
	const char *uuid = crypt_get_uuid(cd);

	snprintf(aad, size, AAD_PREFIX "%s", uuid ? uuid : "");
}

static int enroll_pkcs11(struct bc_luks *l, const struct bc_secret *existing, const char *uri_in,
			  const char *module, const struct bc_secret *pin)
{
	struct bc_unlock u = { .pkcs11_module = module };
	struct crypt_pbkdf_type fast = { .type = CRYPT_KDF_PBKDF2, .hash = "sha256", .iterations = 1000,
					 .flags = CRYPT_PBKDF_NO_BENCHMARK };
	_cleanup_secret_ struct bc_secret *secret = NULL, *pass = NULL;
	struct bci_p11 *p = NULL;
	struct bci_token t = { .kind = BC_TOKEN_BLOCKCRYPT };
	size_t wrapped_len = sizeof(t.blob);
	char aad[AAD_MAX], *uri = NULL, *json = NULL;
	int r, slot = -1, token;

	if (strcmp(crypt_get_type(l->cd), CRYPT_LUKS2))
		return bci_error(-ENOTSUP, "%s: token enrolment needs LUKS2", l->path);
	r = bci_p11_normalize_uri(uri_in, &uri);
	if (r < 0)
		return r;
	if (strlen(uri) >= sizeof(t.uri)) {
		r = bci_error(-EINVAL, "enroll: PKCS#11 URI too long");
		goto out;
	}
	strcpy(t.uri, uri);
	r = bci_p11_open_key(uri, &u, pin, BC_P11_AES_KEY, &p);
	if (r < 0)
		goto out;
	r = bc_secret_new(SECRET_BYTES, &secret);
	if (r == 0)
		r = bc_secret_new(2 * SECRET_BYTES, &pass);
	if (r < 0)
		goto out;
	if (RAND_priv_bytes(bc_secret_buf(secret), SECRET_BYTES) != 1 || RAND_bytes(t.iv, sizeof(t.iv)) != 1) {
		r = bci_error(-EIO, "enroll: random number generator failed");
		goto out;
	}
	bc_secret_set_len(secret, SECRET_BYTES);
	to_hex(bc_secret_data(secret), SECRET_BYTES, bc_secret_buf(pass));
	bc_secret_set_len(pass, 2 * SECRET_BYTES);

	make_aad(l->cd, aad, sizeof(aad));
	r = bci_p11_gcm(p, true, t.iv, aad, strlen(aad), bc_secret_data(secret), SECRET_BYTES,
		       t.blob, &wrapped_len);
	if (r < 0)
		goto out;
	t.blob_len = wrapped_len;
	if (wrapped_len != BC_TOKEN_WRAPPED_BYTES) {
		r = bci_error(-EIO, "enroll: token returned %zu bytes for AES-GCM", wrapped_len);
		goto out;
	}
	/* Unlocking with EXISTING runs the existing slots' KDFs: refuse
	 * absurd costs first.  Then touch the header: the key slot, then
	 * its token. */
	r = bci_luks_check_keyslots(l->cd, l->path);
	if (r < 0)
		goto out;
	r = crypt_set_pbkdf_type(l->cd, &fast);
	if (r < 0) {
		r = bci_luks_fail(r, l->path, "pbkdf");
		goto out;
	}
	slot = crypt_keyslot_add_by_passphrase(l->cd, CRYPT_ANY_SLOT,
					       (const char *)bc_secret_data(existing), bc_secret_len(existing),
					       (const char *)bc_secret_data(pass), bc_secret_len(pass));
	if (slot < 0) {
		r = slot == -EPERM || slot == -ENOENT ?
			bci_error(-EPERM, "%s: no key slot accepts this passphrase", l->path) :
			bci_luks_fail(slot, l->path, "cannot add key slot");
		slot = -1;
		goto out;
	}
	t.keyslot = slot;
	r = bci_token_encode(&t, &json);
	if (r < 0)
		goto out;
	token = crypt_token_json_set(l->cd, CRYPT_ANY_TOKEN, json);
	if (token < 0) {
		r = bci_luks_fail(token, l->path, "cannot store token");
		goto out;
	}
	slot = -1; /* kept */
	r = token;
out:
	if (slot >= 0)
		crypt_keyslot_destroy(l->cd, slot); /* roll back a slot without its token */
	free(json);
	bci_p11_close(p);
	explicit_bzero(&t, sizeof(t));
	free(uri);
	return r;
}

static int unenroll_pkcs11(struct bc_luks *l, int token_id)
{
	int removed = 0;

	for (int id = 0; id < BC_LUKS2_TOKENS; id++) {
		const char *json = NULL;
		struct bci_token t;
		int r;

		if ((token_id >= 0 && id != token_id) || crypt_token_json_get(l->cd, id, &json) < 0)
			continue;
		r = bci_token_decode(json, strlen(json), &t);
		if (r == -EBADMSG)
			return bci_error(r, "%s: token %d: %s (remove it with cryptsetup token remove)",
					l->path, id, bc_last_error());
		if (r < 0 || t.kind != BC_TOKEN_BLOCKCRYPT) {
			if (token_id >= 0)
				return bci_error(-EINVAL, "%s: token %d is not a %s token", l->path, id, BC_TOKEN_TYPE);
			continue;
		}
		if (crypt_token_json_set(l->cd, id, NULL) < 0)
			return bci_luks_fail(-EIO, l->path, "cannot remove token");
		if (crypt_keyslot_destroy(l->cd, t.keyslot) < 0)
			return bci_luks_fail(-EIO, l->path, "cannot destroy the token's key slot");
		removed++;
	}
	if (!removed)
		return bci_error(-ENOENT, "%s: no %s token%s", l->path, BC_TOKEN_TYPE,
				token_id >= 0 ? " with that id" : "s enrolled");
	return removed;
}

int bci_luks_token_passphrase(struct crypt_device *cd, const struct bci_token *t,
			     const struct bc_unlock *u, struct bc_secret **pass_out)
{
	struct bci_p11 *p = NULL;
	_cleanup_secret_ struct bc_secret *plain = NULL;
	struct bc_secret *pass = NULL;
	size_t plain_len = BC_TOKEN_BLOB_MAX;
	int r;

	*pass_out = NULL;
	r = bc_secret_new(plain_len, &plain);
	if (r < 0)
		return r;
	if (t->kind == BC_TOKEN_BLOCKCRYPT) {
		char aad[AAD_MAX];

		r = bci_p11_open_key(t->uri, u, NULL, BC_P11_AES_KEY, &p);
		if (r < 0)
			return r;
		make_aad(cd, aad, sizeof(aad));
		r = bci_p11_gcm(p, false, t->iv, aad, strlen(aad), t->blob, t->blob_len,
			       bc_secret_buf(plain), &plain_len);
		bci_p11_close(p);
		/* Tokens report a failed GCM tag in different ways (softhsm2:
		 * CKR_GENERAL_ERROR): any unwrap failure means a wrong key. */
		if (r < 0 && r != -ENODEV)
			return bci_error(-EPERM, "token: the key %s does not unwrap this volume's secret (another key, or a copied header)",
					t->uri);
		if (r < 0)
			return r;
		if (plain_len != SECRET_BYTES)
			return bci_error(-EBADMSG, "token: unwrapped secret has the wrong size");
		r = bc_secret_new(2 * SECRET_BYTES, &pass);
		if (r < 0)
			return r;
		to_hex(bc_secret_data(plain), SECRET_BYTES, bc_secret_buf(pass));
		bc_secret_set_len(pass, 2 * SECRET_BYTES);
	} else {
		/* systemd-pkcs11: RSA-encrypted key; the slot passphrase is
		 * its base64 encoding. */
		r = bci_p11_open_key(t->uri, u, NULL, BC_P11_RSA_PRIVATE_KEY, &p);
		if (r < 0)
			return r;
		r = bci_p11_rsa_decrypt(p, t->blob, t->blob_len, bc_secret_buf(plain), &plain_len);
		bci_p11_close(p);
		if (r < 0)
			return r;
		r = bc_secret_new(4 * ((plain_len + 2) / 3) + 1, &pass);
		if (r < 0)
			return r;
		b64_encode(bc_secret_data(plain), plain_len, (char *)bc_secret_buf(pass), bc_secret_capacity(pass) + 1);
		bc_secret_set_len(pass, strlen((const char *)bc_secret_data(pass)));
	}
	*pass_out = pass;
	return 0;
}

int bci_luks_token_unlock(struct crypt_device *cd, const char *path, const struct bc_unlock *u,
			 struct bc_secret *key, size_t *key_size)
{
	int r = -ENOENT, tried = 0;

	for (int id = 0; id < BC_LUKS2_TOKENS; id++) {
		_cleanup_secret_ struct bc_secret *pass = NULL;
		const char *json = NULL;
		struct bci_token t;
		int d, slot;

		if (crypt_token_json_get(cd, id, &json) < 0)
			continue;
		d = bci_token_decode(json, strlen(json), &t);
		if (d == -ENOENT)
			continue;  /* some other kind of token */
		tried++;
		r = d < 0 ? d : bci_luks_token_passphrase(cd, &t, u, &pass);
		slot = t.keyslot;
		explicit_bzero(&t, sizeof(t));
		if (r < 0)
			continue; /* keep the error; another token may work */
		r = crypt_volume_key_get(cd, slot, (char *)bc_secret_buf(key), key_size,
					 (const char *)bc_secret_data(pass), bc_secret_len(pass));
		if (r >= 0)
			return r;
		r = bci_error(-EPERM, "%s: token %d did not open key slot %d", path, id, slot);
	}
	if (!tried)
		return bci_error(-ENOENT, "%s: no PKCS#11 token is enrolled", path);
	return r;
}

/* The public entry points: each change reaches a staged header's backing
 * (an RBD image) as a whole, or not at all. */
int bc_luks_enroll_pkcs11(struct bc_luks *l, const struct bc_secret *existing, const char *uri_in,
			  const char *module, const struct bc_secret *pin)
{
	return bci_luks_commit(l->cd, enroll_pkcs11(l, existing, uri_in, module, pin));
}

int bc_luks_unenroll_pkcs11(struct bc_luks *l, int token_id)
{
	return bci_luks_commit(l->cd, unenroll_pkcs11(l, token_id));
}
