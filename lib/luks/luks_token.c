/*
 * PKCS#11 key slots: enrolment, removal, and unlocking through LUKS2
 * tokens of type "blockcrypt-pkcs11" (ours) and "systemd-pkcs11"
 * (systemd-cryptenroll's), plus token-derived keys for plain volumes.
 *
 * Our token JSON (all binary values base64):
 *   { "type": "blockcrypt-pkcs11", "keyslots": ["N"],
 *     "blockcrypt-pkcs11-uri": "pkcs11:token=...;object=LABEL",
 *     "blockcrypt-wrap": "aes-gcm", "blockcrypt-iv": 12 bytes,
 *     "blockcrypt-secret": 32-byte secret encrypted + 16-byte tag }
 * The GCM additional data is "blockcrypt-pkcs11:" + the volume UUID, so a
 * token copied to another volume does not authenticate.  Key slot N's
 * passphrase is the secret as 64 hex digits; being 256 random bits it
 * needs no slow KDF, so the slot uses PBKDF2 at the minimum cost (as
 * systemd-cryptenroll does for its tokens).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>
#include <openssl/evp.h>
#include <openssl/rand.h>

#include "core/error.h"
#include "core/secret.h"
#include "luks/luks.h"
#include "luks/luks_token.h"
#include "token/pkcs11.h"

#define SECRET_BYTES 32
#define TAG_BYTES 16

static int b64_encode(const uint8_t *in, size_t len, char *out, size_t size)
{
	if (size < 4 * ((len + 2) / 3) + 1)
		return -EINVAL;
	EVP_EncodeBlock((unsigned char *)out, in, (int)len);
	return 0;
}

/* Strict base64 decode; returns the length or -EINVAL. */
static int b64_decode(const char *in, uint8_t *out, size_t size)
{
	size_t len = strlen(in);
	int n;

	if (!len || len % 4 || len / 4 * 3 > size)
		return -EINVAL;
	n = EVP_DecodeBlock(out, (const unsigned char *)in, (int)len);
	if (n < 0)
		return -EINVAL;
	if (in[len - 1] == '=')
		n--;
	if (in[len - 2] == '=')
		n--;
	return n;
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

	snprintf(aad, size, "blockcrypt-pkcs11:%s", uuid ? uuid : "");
}

/* Open the token URI names, log in (asking for a PIN if needed), select
 * the key of KIND. */
static int open_token(const char *uri, const struct bc_unlock *u, const struct bc_secret *pin,
		      enum bc_p11_key_kind kind, struct bc_p11 **out)
{
	struct bc_secret *asked = NULL;
	struct bc_p11 *p = NULL;
	int r;

	*out = NULL;
	r = bc_p11_open(uri, u ? u->pkcs11_module : NULL, false, &p);
	if (r < 0)
		return r;
	if (bc_p11_needs_login(p)) {
		if (!pin && u && u->get_pin) {
			r = u->get_pin(u->user, bc_p11_token_label(p), &asked);
			if (r < 0)
				goto out;
			pin = asked;
		}
		r = bc_p11_login(p, pin);
		if (r < 0)
			goto out;
	}
	r = bc_p11_find_key(p, kind);
out:
	bc_secret_free(asked);
	if (r < 0)
		bc_p11_close(p);
	else
		*out = p;
	return r;
}

int bc_luks_enroll_pkcs11(struct bc_luks *l, const struct bc_secret *existing, const char *uri_in,
			  const char *module, const struct bc_secret *pin)
{
	struct bc_unlock u = { .pkcs11_module = module };
	struct crypt_pbkdf_type fast = { .type = CRYPT_KDF_PBKDF2, .hash = "sha256", .iterations = 1000,
					 .flags = CRYPT_PBKDF_NO_BENCHMARK };
	_cleanup_secret_ struct bc_secret *secret = NULL, *pass = NULL;
	struct bc_p11 *p = NULL;
	uint8_t iv[12], wrapped[SECRET_BYTES + TAG_BYTES];
	size_t wrapped_len = sizeof(wrapped);
	char aad[80], iv64[32], wrapped64[80], slot_str[12], *uri = NULL;
	json_object *jobj = NULL, *slots;
	int r, slot = -1, token;

	if (strcmp(crypt_get_type(l->cd), CRYPT_LUKS2))
		return bc_error(-ENOTSUP, "%s: token enrolment needs LUKS2", l->path);
	r = bc_p11_normalize_uri(uri_in, &uri);
	if (r < 0)
		return r;
	r = open_token(uri, &u, pin, BC_P11_AES_KEY, &p);
	if (r < 0)
		goto out;
	r = bc_secret_new(SECRET_BYTES, &secret);
	if (r == 0)
		r = bc_secret_new(2 * SECRET_BYTES, &pass);
	if (r < 0)
		goto out;
	if (RAND_priv_bytes(bc_secret_buf(secret), SECRET_BYTES) != 1 || RAND_bytes(iv, sizeof(iv)) != 1) {
		r = bc_error(-EIO, "enroll: random number generator failed");
		goto out;
	}
	bc_secret_set_len(secret, SECRET_BYTES);
	to_hex(bc_secret_data(secret), SECRET_BYTES, bc_secret_buf(pass));
	bc_secret_set_len(pass, 2 * SECRET_BYTES);

	make_aad(l->cd, aad, sizeof(aad));
	r = bc_p11_gcm(p, true, iv, aad, strlen(aad), bc_secret_data(secret), SECRET_BYTES,
		       wrapped, &wrapped_len);
	if (r < 0)
		goto out;
	if (wrapped_len != sizeof(wrapped)) {
		r = bc_error(-EIO, "enroll: token returned %zu bytes for AES-GCM", wrapped_len);
		goto out;
	}
	/* Only now touch the header: first the key slot, then its token. */
	r = crypt_set_pbkdf_type(l->cd, &fast);
	if (r < 0) {
		r = bc_luks_fail(r, l->path, "pbkdf");
		goto out;
	}
	slot = crypt_keyslot_add_by_passphrase(l->cd, CRYPT_ANY_SLOT,
					       (const char *)bc_secret_data(existing), bc_secret_len(existing),
					       (const char *)bc_secret_data(pass), bc_secret_len(pass));
	if (slot < 0) {
		r = slot == -EPERM || slot == -ENOENT ?
			bc_error(-EPERM, "%s: no key slot accepts this passphrase", l->path) :
			bc_luks_fail(slot, l->path, "cannot add key slot");
		slot = -1;
		goto out;
	}
	b64_encode(iv, sizeof(iv), iv64, sizeof(iv64));
	b64_encode(wrapped, sizeof(wrapped), wrapped64, sizeof(wrapped64));
	snprintf(slot_str, sizeof(slot_str), "%d", slot);
	jobj = json_object_new_object();
	json_object_object_add(jobj, "type", json_object_new_string(BC_TOKEN_TYPE));
	slots = json_object_new_array();
	json_object_array_add(slots, json_object_new_string(slot_str));
	json_object_object_add(jobj, "keyslots", slots);
	json_object_object_add(jobj, "blockcrypt-pkcs11-uri", json_object_new_string(uri));
	json_object_object_add(jobj, "blockcrypt-wrap", json_object_new_string("aes-gcm"));
	json_object_object_add(jobj, "blockcrypt-iv", json_object_new_string(iv64));
	json_object_object_add(jobj, "blockcrypt-secret", json_object_new_string(wrapped64));
	token = crypt_token_json_set(l->cd, CRYPT_ANY_TOKEN,
				     json_object_to_json_string_ext(jobj, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE));
	if (token < 0) {
		r = bc_luks_fail(token, l->path, "cannot store token");
		goto out;
	}
	slot = -1; /* kept */
	r = token;
out:
	if (slot >= 0)
		crypt_keyslot_destroy(l->cd, slot); /* roll back a slot without its token */
	json_object_put(jobj);
	bc_p11_close(p);
	explicit_bzero(wrapped, sizeof(wrapped));
	free(uri);
	return r;
}

const char *bc_json_str(json_object *o, const char *key)
{
	json_object *v;

	return json_object_object_get_ex(o, key, &v) && json_object_is_type(v, json_type_string) ?
	       json_object_get_string(v) : NULL;
}

/* First key slot a token is bound to. */
int bc_luks_token_slot(json_object *o)
{
	json_object *a, *v;

	if (!json_object_object_get_ex(o, "keyslots", &a) || !json_object_is_type(a, json_type_array) ||
	    json_object_array_length(a) < 1)
		return -EINVAL;
	v = json_object_array_get_idx(a, 0);
	return json_object_is_type(v, json_type_string) ? atoi(json_object_get_string(v)) : -EINVAL;
}

int bc_luks_unenroll_pkcs11(struct bc_luks *l, int token_id)
{
	int removed = 0;

	for (int id = 0; id < 32; id++) {
		const char *json = NULL;
		json_object *o;
		const char *type;
		int slot;

		if ((token_id >= 0 && id != token_id) || crypt_token_json_get(l->cd, id, &json) < 0)
			continue;
		o = json_tokener_parse(json);
		type = o ? bc_json_str(o, "type") : NULL;
		if (!type || strcmp(type, BC_TOKEN_TYPE)) {
			json_object_put(o);
			if (token_id >= 0)
				return bc_error(-EINVAL, "%s: token %d is not a %s token", l->path, id, BC_TOKEN_TYPE);
			continue;
		}
		slot = bc_luks_token_slot(o);
		json_object_put(o);
		if (crypt_token_json_set(l->cd, id, NULL) < 0)
			return bc_luks_fail(-EIO, l->path, "cannot remove token");
		if (slot >= 0 && crypt_keyslot_destroy(l->cd, slot) < 0)
			return bc_luks_fail(-EIO, l->path, "cannot destroy the token's key slot");
		removed++;
	}
	if (!removed)
		return bc_error(-ENOENT, "%s: no %s token%s", l->path, BC_TOKEN_TYPE,
				token_id >= 0 ? " with that id" : "s enrolled");
	return removed;
}

int bc_luks_token_passphrase(struct crypt_device *cd, json_object *o, const char *type,
			     const struct bc_unlock *u, struct bc_secret **pass_out)
{
	struct bc_p11 *p = NULL;
	_cleanup_secret_ struct bc_secret *plain = NULL;
	struct bc_secret *pass = NULL;
	uint8_t buf[1024];
	size_t plain_len;
	int r, n;

	*pass_out = NULL;
	r = bc_secret_new(sizeof(buf), &plain);
	if (r < 0)
		return r;
	plain_len = sizeof(buf);
	if (!strcmp(type, BC_TOKEN_TYPE)) {
		const char *uri = bc_json_str(o, "blockcrypt-pkcs11-uri");
		const char *iv64 = bc_json_str(o, "blockcrypt-iv"), *sec64 = bc_json_str(o, "blockcrypt-secret");
		uint8_t iv[16];
		char aad[80];

		if (!uri || !iv64 || !sec64 || b64_decode(iv64, iv, sizeof(iv)) != 12 ||
		    (n = b64_decode(sec64, buf, sizeof(buf))) != SECRET_BYTES + TAG_BYTES)
			return bc_error(-EBADMSG, "token: malformed %s token", BC_TOKEN_TYPE);
		r = open_token(uri, u, NULL, BC_P11_AES_KEY, &p);
		if (r < 0)
			return r;
		make_aad(cd, aad, sizeof(aad));
		r = bc_p11_gcm(p, false, iv, aad, strlen(aad), buf, (size_t)n, bc_secret_buf(plain), &plain_len);
		bc_p11_close(p);
		/* Tokens report a failed GCM tag in different ways (softhsm2:
		 * CKR_GENERAL_ERROR): any unwrap failure means a wrong key. */
		if (r < 0 && r != -ENODEV)
			return bc_error(-EPERM, "token: the key %s does not unwrap this volume's secret (another key, or a copied header)",
					uri);
		if (r < 0)
			return r;
		if (plain_len != SECRET_BYTES)
			return bc_error(-EBADMSG, "token: unwrapped secret has the wrong size");
		r = bc_secret_new(2 * SECRET_BYTES, &pass);
		if (r < 0)
			return r;
		to_hex(bc_secret_data(plain), SECRET_BYTES, bc_secret_buf(pass));
		bc_secret_set_len(pass, 2 * SECRET_BYTES);
	} else {
		/* systemd-pkcs11: RSA-encrypted key; the slot passphrase is
		 * its base64 encoding. */
		const char *uri = bc_json_str(o, "pkcs11-uri"), *key64 = bc_json_str(o, "pkcs11-key");

		if (!uri || !key64 || (n = b64_decode(key64, buf, sizeof(buf))) <= 0)
			return bc_error(-EBADMSG, "token: malformed systemd-pkcs11 token");
		r = open_token(uri, u, NULL, BC_P11_RSA_PRIVATE_KEY, &p);
		if (r < 0)
			return r;
		r = bc_p11_rsa_decrypt(p, buf, (size_t)n, bc_secret_buf(plain), &plain_len);
		bc_p11_close(p);
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

int bc_luks_token_unlock(struct crypt_device *cd, const char *path, const struct bc_unlock *u,
			 struct bc_secret *key, size_t *key_size)
{
	int r = -ENOENT, tried = 0;

	for (int id = 0; id < 32; id++) {
		const char *json = NULL, *type;
		json_object *o;
		_cleanup_secret_ struct bc_secret *pass = NULL;
		int slot;

		if (crypt_token_json_get(cd, id, &json) < 0)
			continue;
		o = json_tokener_parse(json);
		type = o ? bc_json_str(o, "type") : NULL;
		if (!type || (strcmp(type, BC_TOKEN_TYPE) && strcmp(type, "systemd-pkcs11"))) {
			json_object_put(o);
			continue;
		}
		tried++;
		slot = bc_luks_token_slot(o);
		r = bc_luks_token_passphrase(cd, o, type, u, &pass);
		json_object_put(o);
		if (r < 0)
			continue; /* keep the error; another token may work */
		r = crypt_volume_key_get(cd, slot, (char *)bc_secret_buf(key), key_size,
					 (const char *)bc_secret_data(pass), bc_secret_len(pass));
		if (r >= 0)
			return r;
		r = bc_error(-EPERM, "%s: token %d did not open key slot %d", path, id, slot);
	}
	if (!tried)
		return bc_error(-ENOENT, "%s: no PKCS#11 token is enrolled", path);
	return r;
}

int bc_pkcs11_genkey(const char *uri_in, const char *module, const struct bc_secret *pin,
		     const char *label, unsigned bits)
{
	struct bc_unlock u = { .pkcs11_module = module };
	struct bc_p11 *p = NULL;
	char *uri = NULL;
	int r;

	r = bc_p11_normalize_uri(uri_in, &uri);
	if (r < 0)
		return r;
	r = bc_p11_open(uri, u.pkcs11_module, true, &p);
	if (r == 0 && bc_p11_needs_login(p))
		r = bc_p11_login(p, pin);
	if (r == 0) {
		/* Refuse to make a second key under the same label. */
		r = bc_p11_count_label(p, label);
		if (r > 0)
			r = bc_error(-EEXIST, "genkey: token '%s' already has a key labelled %s",
				     bc_p11_token_label(p), label);
	}
	if (r == 0)
		r = bc_p11_generate_aes(p, label, bits);
	bc_p11_close(p);
	free(uri);
	return r;
}

int bc_pkcs11_derive_plain_key(const char *uri_in, const char *module, const struct bc_secret *pin,
			       size_t key_bytes, struct bc_secret **key_out)
{
	struct bc_unlock u = { .pkcs11_module = module };
	struct bc_p11 *p = NULL;
	struct bc_secret *key = NULL;
	uint8_t blocks[64];
	char *uri = NULL;
	int r;

	*key_out = NULL;
	if (key_bytes > sizeof(blocks) || key_bytes % 16)
		return bc_error(-EINVAL, "plain: token-derived keys are 128..512 bits in 128-bit steps");
	r = bc_p11_normalize_uri(uri_in, &uri);
	if (r == 0)
		r = open_token(uri, &u, pin, BC_P11_AES_KEY, &p);
	free(uri);
	if (r < 0)
		return r;
	/* Block i = "blockcrypt-plain" with its last byte XORed with i:
	 * key = AES-ECB_K(B_0) || AES-ECB_K(B_1) || ... (see the man page). */
	for (size_t i = 0; i < key_bytes / 16; i++) {
		memcpy(blocks + 16 * i, "blockcrypt-plain", 16);
		blocks[16 * i + 15] ^= (uint8_t)i;
	}
	r = bc_secret_new(key_bytes, &key);
	if (r == 0)
		r = bc_p11_ecb_encrypt(p, blocks, key_bytes, bc_secret_buf(key));
	bc_p11_close(p);
	if (r < 0) {
		bc_secret_free(key);
		return r;
	}
	bc_secret_set_len(key, key_bytes);
	*key_out = key;
	return 0;
}
