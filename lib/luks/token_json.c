/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Token JSON <-> struct bci_token.
 *
 * The JSON comes from a LUKS2 header, i.e. from whoever last wrote the
 * disk: every field is checked for type, length and range here, so the
 * code that uses a struct bci_token never sees anything unchecked.
 *
 * Ours (binary values base64, RFC 4648 with padding):
 *   { "type": "blockcrypt-pkcs11", "keyslots": ["N"],
 *     "blockcrypt-pkcs11-uri": "pkcs11:...", "blockcrypt-wrap": "aes-gcm",
 *     "blockcrypt-iv": 12 bytes, "blockcrypt-secret": 48 bytes }
 * systemd-cryptenroll's:
 *   { "type": "systemd-pkcs11", "keyslots": ["N"],
 *     "pkcs11-uri": "pkcs11:...", "pkcs11-key": RSA-encrypted key }
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>
#include <openssl/evp.h>

#include "core/error.h"
#include "core/macros.h"
#include "luks/token_json.h"

/* Strict base64: length a multiple of 4, only the alphabet, '=' only as
 * the last one or two characters.  Returns the decoded length or -EINVAL. */
static int b64_decode(const char *in, uint8_t *out, size_t size)
{
	size_t len = strlen(in), pad = 0;
	uint8_t tmp[BC_TOKEN_BLOB_MAX + 3];
	int n;

	if (!len || len % 4 || len / 4 * 3 > sizeof(tmp))
		return -EINVAL;
	if (in[len - 1] == '=')
		pad = in[len - 2] == '=' ? 2 : 1;
	for (size_t i = 0; i < len - pad; i++)
		if (!strchr("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/", in[i]))
			return -EINVAL;
	n = EVP_DecodeBlock(tmp, (const unsigned char *)in, (int)len);
	if (n < 0 || (size_t)n < pad || (size_t)n - pad > size) {
		explicit_bzero(tmp, sizeof(tmp));
		return -EINVAL;
	}
	n -= (int)pad;
	memcpy(out, tmp, (size_t)n);
	explicit_bzero(tmp, sizeof(tmp));
	return n;
}

static const char *str_member(json_object *o, const char *key)
{
	json_object *v;

	return json_object_object_get_ex(o, key, &v) && json_object_is_type(v, json_type_string) ?
	       json_object_get_string(v) : NULL;
}

/* "keyslots": exactly one decimal string 0..BC_LUKS2_KEYSLOT_LAST (at
 * most two digits). */
static int keyslot_member(json_object *o)
{
	json_object *a, *v;
	const char *s;
	char *end;
	long n;

	if (!json_object_object_get_ex(o, "keyslots", &a) || !json_object_is_type(a, json_type_array) ||
	    json_object_array_length(a) != 1)
		return -EINVAL;
	v = json_object_array_get_idx(a, 0);
	if (!json_object_is_type(v, json_type_string))
		return -EINVAL;
	s = json_object_get_string(v);
	if (*s < '0' || *s > '9' || strlen(s) > 2)
		return -EINVAL;
	n = strtol(s, &end, 10);
	return *end || n > BC_LUKS2_KEYSLOT_LAST ? -EINVAL : (int)n;
}

static int copy_uri(const char *uri, char *out)
{
	size_t len = uri ? strlen(uri) : 0;

	if (len < 7 || len >= BC_TOKEN_URI_MAX || strncmp(uri, "pkcs11:", 7))
		return -EINVAL;
	memcpy(out, uri, len + 1);
	return 0;
}

int bci_token_decode(const char *json, size_t len, struct bci_token *out)
{
	json_tokener *tok = json_tokener_new();
	json_object *o = NULL;
	const char *type, *what = NULL;
	int n, r = 0;

	memset(out, 0, sizeof(*out));
	if (!tok)
		return bci_error(-ENOMEM, "token: out of memory");
	if (len > 0 && len <= INT32_MAX)
		o = json_tokener_parse_ex(tok, json, (int)len);
	/* Trailing bytes after the object are malformed too. */
	if (!o || json_tokener_get_error(tok) != json_tokener_success ||
	    json_tokener_get_parse_end(tok) != len || !json_object_is_type(o, json_type_object)) {
		what = "not a JSON object";
		goto out;
	}
	type = str_member(o, "type");
	if (!type || (strcmp(type, BC_TOKEN_TYPE) && strcmp(type, BC_TOKEN_SYSTEMD_TYPE))) {
		r = -ENOENT;
		goto out;
	}
	out->kind = strcmp(type, BC_TOKEN_TYPE) ? BC_TOKEN_SYSTEMD : BC_TOKEN_BLOCKCRYPT;
	out->keyslot = keyslot_member(o);
	if (out->keyslot < 0) {
		what = "\"keyslots\" must name one key slot 0.." BC_STRINGIFY(BC_LUKS2_KEYSLOT_LAST);
		goto out;
	}
	if (out->kind == BC_TOKEN_BLOCKCRYPT) {
		const char *wrap = str_member(o, "blockcrypt-wrap"), *iv64 = str_member(o, "blockcrypt-iv");
		const char *sec64 = str_member(o, "blockcrypt-secret");

		if (copy_uri(str_member(o, "blockcrypt-pkcs11-uri"), out->uri) < 0)
			what = "bad or missing blockcrypt-pkcs11-uri";
		else if (!wrap || strcmp(wrap, "aes-gcm"))
			what = "blockcrypt-wrap must be aes-gcm";
		else if (!iv64 || b64_decode(iv64, out->iv, sizeof(out->iv)) != BC_TOKEN_IV_BYTES)
			what = "blockcrypt-iv must be 12 bytes of base64";
		else if (!sec64 || (n = b64_decode(sec64, out->blob, sizeof(out->blob))) != BC_TOKEN_WRAPPED_BYTES)
			what = "blockcrypt-secret must be 48 bytes of base64";
		else
			out->blob_len = BC_TOKEN_WRAPPED_BYTES;
	} else {
		const char *key64 = str_member(o, "pkcs11-key");

		if (copy_uri(str_member(o, "pkcs11-uri"), out->uri) < 0)
			what = "bad or missing pkcs11-uri";
		else if (!key64 || (n = b64_decode(key64, out->blob, sizeof(out->blob))) <= 0)
			what = "pkcs11-key must be base64, at most 1024 bytes";
		else
			out->blob_len = (size_t)n;
	}
out:
	if (what && r == 0)
		r = bci_error(-EBADMSG, "token: malformed %s token: %s", out->kind == BC_TOKEN_SYSTEMD ?
			     BC_TOKEN_SYSTEMD_TYPE : BC_TOKEN_TYPE, what);
	json_object_put(o);
	json_tokener_free(tok);
	if (r < 0)
		explicit_bzero(out, sizeof(*out));
	return r;
}

int bci_token_encode(const struct bci_token *t, char **json_out)
{
	char iv64[4 * ((BC_TOKEN_IV_BYTES + 2) / 3) + 1];
	char sec64[4 * ((BC_TOKEN_WRAPPED_BYTES + 2) / 3) + 1];
	char slot[sizeof(BC_STRINGIFY(BC_LUKS2_KEYSLOT_LAST))];
	json_object *o, *slots;
	int r = 0;

	*json_out = NULL;
	if (t->kind != BC_TOKEN_BLOCKCRYPT || t->blob_len != BC_TOKEN_WRAPPED_BYTES ||
	    t->keyslot < 0 || t->keyslot > BC_LUKS2_KEYSLOT_LAST)
		return bci_error(-EINVAL, "token: cannot encode this token");
	EVP_EncodeBlock((unsigned char *)iv64, t->iv, BC_TOKEN_IV_BYTES);
	EVP_EncodeBlock((unsigned char *)sec64, t->blob, BC_TOKEN_WRAPPED_BYTES);
	snprintf(slot, sizeof(slot), "%d", t->keyslot);
	o = json_object_new_object();
	slots = json_object_new_array();
	if (!o || !slots) {
		json_object_put(slots);
		r = bci_error(-ENOMEM, "token: out of memory");
		goto out;
	}
	json_object_object_add(o, "type", json_object_new_string(BC_TOKEN_TYPE));
	json_object_array_add(slots, json_object_new_string(slot));
	json_object_object_add(o, "keyslots", slots);
	json_object_object_add(o, "blockcrypt-pkcs11-uri", json_object_new_string(t->uri));
	json_object_object_add(o, "blockcrypt-wrap", json_object_new_string("aes-gcm"));
	json_object_object_add(o, "blockcrypt-iv", json_object_new_string(iv64));
	json_object_object_add(o, "blockcrypt-secret", json_object_new_string(sec64));
	*json_out = strdup(json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN |
							  JSON_C_TO_STRING_NOSLASHESCAPE));
	if (!*json_out)
		r = bci_error(-ENOMEM, "token: out of memory");
out:
	json_object_put(o);
	return r;
}
