/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * PKCS#11 access through p11-kit, and the token operations of the public
 * API that need nothing else: bc_pkcs11_genkey() and token-derived keys
 * for plain volumes (bc_pkcs11_derive_plain_key()).
 *
 * Threading: a bci_p11 handle is used by one thread at a time (unlock and
 * enrolment are one-shot operations).  Module loading goes through p11-kit,
 * which reference-counts module initialisation per process.
 *
 * Errors use the library's errno meanings: -ENODEV no module/token, -ENOKEY
 * no such key, -EPERM wrong PIN, -EACCES PIN locked, -EBADMSG a wrapped
 * secret that does not authenticate, -EIO anything else from the token.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <p11-kit/p11-kit.h>
#include <p11-kit/pkcs11.h>
#include <p11-kit/uri.h>

#include "core/error.h"
#include "core/macros.h"
#include "core/secret.h"
#include "token/pkcs11.h"

/* The URI made from a lofi-style token name (longer ones are truncated). */
#define LOFI_URI_MAX 1024

struct bci_p11 {
	CK_FUNCTION_LIST **modules;  /* p11-kit's list, or NULL */
	CK_FUNCTION_LIST *module;    /* the one in use */
	bool single;                 /* loaded from an explicit path */
	CK_SESSION_HANDLE session;
	bool have_session;
	bool rw;                     /* read-write session (key generation) */
	CK_TOKEN_INFO token;
	CK_OBJECT_HANDLE key;
	P11KitUri *uri;
	char label[sizeof(((CK_TOKEN_INFO *)0)->label) + 1];
};

static int p11_fail(CK_RV rv, const char *what)
{
	switch (rv) {
	case CKR_PIN_INCORRECT:
		return bci_error(-EPERM, "pkcs11: %s: wrong PIN", what);
	case CKR_PIN_LOCKED:
		return bci_error(-EACCES, "pkcs11: %s: PIN locked", what);
	case CKR_ENCRYPTED_DATA_INVALID:
	case CKR_ENCRYPTED_DATA_LEN_RANGE:
		return bci_error(-EBADMSG, "pkcs11: %s: data does not authenticate with this key", what);
	case CKR_TOKEN_NOT_PRESENT:
	case CKR_DEVICE_REMOVED:
		return bci_error(-ENODEV, "pkcs11: %s: token not present", what);
	case CKR_KEY_FUNCTION_NOT_PERMITTED:
	case CKR_KEY_TYPE_INCONSISTENT:
	case CKR_MECHANISM_INVALID:
		return bci_error(-ENOTSUP, "pkcs11: %s: %s", what, p11_kit_strerror(rv));
	default:
		return bci_error(-EIO, "pkcs11: %s: %s", what, p11_kit_strerror(rv));
	}
}

/* Percent-encode VALUE into an RFC 7512 attribute. */
static void append_attr(char *buf, size_t size, const char *name, const char *value, size_t n)
{
	size_t len = strlen(buf);

	if (!n)
		return;
	len += (size_t)snprintf(buf + len, size - len, "%s%s=", buf[7] ? ";" : "", name);
	for (size_t i = 0; i < n && len + 4 < size; i++) {
		unsigned char c = (unsigned char)value[i];

		if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		    c == '-' || c == '.' || c == '_' || c == '~')
			buf[len++] = (char)c;
		else
			len += (size_t)snprintf(buf + len, size - len, "%%%02X", c);
	}
	buf[len] = '\0';
}

int bci_p11_normalize_uri(const char *in, char **out)
{
	const char *f[4];
	size_t n[4];
	const char *p = in;
	char buf[LOFI_URI_MAX] = "pkcs11:";

	*out = NULL;
	if (!strncmp(in, "pkcs11:", 7)) {
		*out = strdup(in);
		return *out ? 0 : bci_error(-ENOMEM, "out of memory");
	}
	/* lofi: token:manufacturer:serial:key (empty fields match anything) */
	for (int i = 0; i < 4; i++) {
		const char *colon = i < 3 ? strchr(p, ':') : NULL;

		if (i < 3 && !colon)
			return bci_error(-EINVAL, "token '%s': expected a pkcs11: URI or token:manufacturer:serial:key", in);
		f[i] = p;
		n[i] = colon ? (size_t)(colon - p) : strlen(p);
		p = colon ? colon + 1 : p + n[i];
	}
	append_attr(buf, sizeof(buf), "token", f[0], n[0]);
	append_attr(buf, sizeof(buf), "manufacturer", f[1], n[1]);
	append_attr(buf, sizeof(buf), "serial", f[2], n[2]);
	append_attr(buf, sizeof(buf), "object", f[3], n[3]);
	*out = strdup(buf);
	return *out ? 0 : bci_error(-ENOMEM, "out of memory");
}

static void copy_label(char *dst, const unsigned char *src, size_t n)
{
	memcpy(dst, src, n);
	dst[n] = '\0';
	for (size_t i = n; i > 0 && dst[i - 1] == ' '; i--)
		dst[i - 1] = '\0';
}

/* Try every slot of MODULE; on a match leave a session open in P. */
static int try_module(struct bci_p11 *p, CK_FUNCTION_LIST *m)
{
	CK_SLOT_ID slots[64];
	CK_ULONG nslots = 64;
	CK_RV rv;

	rv = m->C_GetSlotList(CK_TRUE, slots, &nslots);
	if (rv != CKR_OK)
		return 0;
	for (CK_ULONG i = 0; i < nslots; i++) {
		CK_TOKEN_INFO ti;

		if (m->C_GetTokenInfo(slots[i], &ti) != CKR_OK || !(ti.flags & CKF_TOKEN_INITIALIZED))
			continue;
		if (!p11_kit_uri_match_token_info(p->uri, &ti))
			continue;
		rv = m->C_OpenSession(slots[i], CKF_SERIAL_SESSION | (p->rw ? CKF_RW_SESSION : 0), NULL, NULL,
				      &p->session);
		if (rv != CKR_OK)
			return p11_fail(rv, "open session");
		p->have_session = true;
		p->module = m;
		p->token = ti;
		copy_label(p->label, ti.label, sizeof(ti.label));
		return 1;
	}
	return 0;
}

int bci_p11_open(const char *uri, const char *module_path, bool rw, struct bci_p11 **out)
{
	struct bci_p11 *p;
	int r = 0;

	*out = NULL;
	p = calloc(1, sizeof(*p));
	if (!p)
		return bci_error(-ENOMEM, "out of memory");
	p->rw = rw;
	p->uri = p11_kit_uri_new();
	r = p11_kit_uri_parse(uri, P11_KIT_URI_FOR_ANY, p->uri);
	if (r != P11_KIT_URI_OK) {
		r = bci_error(-EINVAL, "pkcs11: bad URI '%s': %s", uri, p11_kit_uri_message(r));
		goto fail;
	}
	if (module_path) {
		p->module = p11_kit_module_load(module_path, 0);
		if (!p->module || p11_kit_module_initialize(p->module) != CKR_OK) {
			if (p->module)
				p11_kit_module_release(p->module);
			p->module = NULL;
			r = bci_error(-ENODEV, "pkcs11: cannot load module %s", module_path);
			goto fail;
		}
		p->single = true;
		r = try_module(p, p->module);
	} else {
		p->modules = p11_kit_modules_load_and_initialize(0);
		if (!p->modules || !p->modules[0]) {
			r = bci_error(-ENODEV, "pkcs11: no PKCS#11 modules are registered with p11-kit (use --module)");
			goto fail;
		}
		for (int i = 0; p->modules[i] && r == 0; i++) {
			char *trust = p11_kit_config_option(p->modules[i], "trust-policy");
			bool is_trust = trust && !strcmp(trust, "yes");

			free(trust);
			/* Trust-policy modules hold CA certificates, never keys. */
			if (!is_trust)
				r = try_module(p, p->modules[i]);
		}
	}
	if (r < 0)
		goto fail;
	if (r == 0) {
		r = bci_error(-ENODEV, "pkcs11: no token matches %s", uri);
		goto fail;
	}
	*out = p;
	return 0;
fail:
	bci_p11_close(p);
	return r;
}

void bci_p11_close(struct bci_p11 *p)
{
	if (!p)
		return;
	if (p->have_session)
		p->module->C_CloseSession(p->session);
	if (p->single && p->module) {
		p11_kit_module_finalize(p->module);
		p11_kit_module_release(p->module);
	}
	if (p->modules)
		p11_kit_modules_finalize_and_release(p->modules);
	if (p->uri)
		p11_kit_uri_free(p->uri);
	free(p);
}

const char *bci_p11_token_label(const struct bci_p11 *p)
{
	return p->label;
}

bool bci_p11_needs_login(const struct bci_p11 *p)
{
	return (p->token.flags & CKF_LOGIN_REQUIRED) != 0;
}

int bci_p11_login(struct bci_p11 *p, const struct bc_secret *pin)
{
	CK_RV rv;

	if (p->token.flags & CKF_PROTECTED_AUTHENTICATION_PATH)
		rv = p->module->C_Login(p->session, CKU_USER, NULL, 0);
	else if (!pin)
		return bci_error(-EPERM, "pkcs11: token '%s' needs a PIN", p->label);
	else
		rv = p->module->C_Login(p->session, CKU_USER, (CK_UTF8CHAR *)bc_secret_data(pin),
					bc_secret_len(pin));
	if (rv == CKR_USER_ALREADY_LOGGED_IN)
		rv = CKR_OK;
	return rv == CKR_OK ? 0 : p11_fail(rv, p->label);
}

int bci_p11_find_key(struct bci_p11 *p, enum bci_p11_key_kind kind)
{
	CK_OBJECT_CLASS cls = kind == BC_P11_AES_KEY ? CKO_SECRET_KEY : CKO_PRIVATE_KEY;
	CK_KEY_TYPE kt = kind == BC_P11_AES_KEY ? CKK_AES : CKK_RSA;
	CK_ATTRIBUTE tmpl[4] = {
		{ CKA_CLASS, &cls, sizeof(cls) },
		{ CKA_KEY_TYPE, &kt, sizeof(kt) },
	};
	CK_ATTRIBUTE *label = p11_kit_uri_get_attribute(p->uri, CKA_LABEL);
	CK_ATTRIBUTE *id = p11_kit_uri_get_attribute(p->uri, CKA_ID);
	CK_OBJECT_HANDLE found[2];
	CK_ULONG n = 0, count = 2;
	CK_RV rv;

	if (label)
		tmpl[count++] = *label;
	if (id)
		tmpl[count++] = *id;
	if (!label && !id)
		return bci_error(-EINVAL, "pkcs11: the URI names no key (add ;object=LABEL or ;id=...)");
	rv = p->module->C_FindObjectsInit(p->session, tmpl, count);
	if (rv == CKR_OK) {
		rv = p->module->C_FindObjects(p->session, found, 2, &n);
		p->module->C_FindObjectsFinal(p->session);
	}
	if (rv != CKR_OK)
		return p11_fail(rv, "find key");
	if (n == 0)
		return bci_error(-ENOKEY, "pkcs11: token '%s' has no %s key %s%.*s",
				p->label, kind == BC_P11_AES_KEY ? "AES" : "RSA private",
				label ? "labelled " : "with the given id",
				label ? (int)label->ulValueLen : 0, label ? (const char *)label->pValue : "");
	if (n > 1)
		return bci_error(-EINVAL, "pkcs11: the URI matches several keys on token '%s'; add ;id=", p->label);
	p->key = found[0];
	return 0;
}

int bci_p11_count_label(struct bci_p11 *p, const char *label)
{
	CK_ATTRIBUTE tmpl[] = { { CKA_LABEL, (void *)label, strlen(label) } };
	CK_OBJECT_HANDLE found[16];
	CK_ULONG n = 0;
	CK_RV rv = p->module->C_FindObjectsInit(p->session, tmpl, 1);

	if (rv == CKR_OK) {
		rv = p->module->C_FindObjects(p->session, found, 16, &n);
		p->module->C_FindObjectsFinal(p->session);
	}
	return rv == CKR_OK ? (int)n : p11_fail(rv, "find objects");
}

int bci_p11_generate_aes(struct bci_p11 *p, const char *label, unsigned bits)
{
	CK_MECHANISM mech = { CKM_AES_KEY_GEN, NULL, 0 };
	CK_OBJECT_CLASS cls = CKO_SECRET_KEY;
	CK_KEY_TYPE kt = CKK_AES;
	CK_ULONG len = bits / 8;
	CK_BBOOL yes = CK_TRUE, no = CK_FALSE;
	CK_ATTRIBUTE tmpl[] = {
		{ CKA_CLASS, &cls, sizeof(cls) },
		{ CKA_KEY_TYPE, &kt, sizeof(kt) },
		{ CKA_VALUE_LEN, &len, sizeof(len) },
		{ CKA_LABEL, (void *)label, strlen(label) },
		{ CKA_TOKEN, &yes, sizeof(yes) },
		{ CKA_PRIVATE, &yes, sizeof(yes) },
		{ CKA_SENSITIVE, &yes, sizeof(yes) },
		{ CKA_EXTRACTABLE, &no, sizeof(no) },
		{ CKA_ENCRYPT, &yes, sizeof(yes) },
		{ CKA_DECRYPT, &yes, sizeof(yes) },
		{ CKA_WRAP, &yes, sizeof(yes) },
		{ CKA_UNWRAP, &yes, sizeof(yes) },
	};
	CK_RV rv;

	if (bits != 128 && bits != 192 && bits != 256)
		return bci_error(-EINVAL, "genkey: AES key length must be 128, 192 or 256 bits");
	rv = p->module->C_GenerateKey(p->session, &mech, tmpl, ARRAY_SIZE(tmpl), &p->key);
	return rv == CKR_OK ? 0 : p11_fail(rv, "generate key");
}

int bci_p11_gcm(struct bci_p11 *p, bool encrypt, const uint8_t iv[12], const void *aad, size_t aad_len,
	       const uint8_t *in, size_t in_len, uint8_t *out, size_t *out_len)
{
	CK_GCM_PARAMS gcm = {
		.pIv = (CK_BYTE *)iv, .ulIvLen = 12, .ulIvBits = 96,
		.pAAD = (CK_BYTE *)aad, .ulAADLen = aad_len, .ulTagBits = 128,
	};
	CK_MECHANISM mech = { CKM_AES_GCM, &gcm, sizeof(gcm) };
	CK_ULONG n = *out_len;
	CK_RV rv;

	if (encrypt) {
		rv = p->module->C_EncryptInit(p->session, &mech, p->key);
		if (rv == CKR_OK)
			rv = p->module->C_Encrypt(p->session, (CK_BYTE *)in, in_len, out, &n);
	} else {
		rv = p->module->C_DecryptInit(p->session, &mech, p->key);
		if (rv == CKR_OK)
			rv = p->module->C_Decrypt(p->session, (CK_BYTE *)in, in_len, out, &n);
	}
	if (rv != CKR_OK)
		return p11_fail(rv, encrypt ? "wrap secret" : "unwrap secret");
	*out_len = n;
	return 0;
}

int bci_p11_ecb_encrypt(struct bci_p11 *p, const uint8_t *in, size_t len, uint8_t *out)
{
	CK_MECHANISM mech = { CKM_AES_ECB, NULL, 0 };
	CK_ULONG n = len;
	CK_RV rv = p->module->C_EncryptInit(p->session, &mech, p->key);

	if (rv == CKR_OK)
		rv = p->module->C_Encrypt(p->session, (CK_BYTE *)in, len, out, &n);
	return rv == CKR_OK && n == len ? 0 : p11_fail(rv, "derive key");
}

int bci_p11_rsa_decrypt(struct bci_p11 *p, const uint8_t *in, size_t in_len, uint8_t *out, size_t *out_len)
{
	CK_MECHANISM mech = { CKM_RSA_PKCS, NULL, 0 };
	CK_ULONG n = *out_len;
	CK_RV rv = p->module->C_DecryptInit(p->session, &mech, p->key);

	if (rv == CKR_OK)
		rv = p->module->C_Decrypt(p->session, (CK_BYTE *)in, in_len, out, &n);
	if (rv != CKR_OK)
		return p11_fail(rv, "decrypt");
	*out_len = n;
	return 0;
}

/* ---- built on the calls above ---- */

int bci_p11_open_key(const char *uri, const struct bc_unlock *u, const struct bc_secret *pin,
		    enum bci_p11_key_kind kind, struct bci_p11 **out)
{
	struct bc_secret *asked = NULL;
	struct bci_p11 *p = NULL;
	int r;

	*out = NULL;
	r = bci_p11_open(uri, u ? u->pkcs11_module : NULL, false, &p);
	if (r < 0)
		return r;
	if (bci_p11_needs_login(p)) {
		if (!pin && u && u->get_pin) {
			r = u->get_pin(u->user, bci_p11_token_label(p), &asked);
			if (r < 0)
				goto out;
			pin = asked;
		}
		r = bci_p11_login(p, pin);
		if (r < 0)
			goto out;
	}
	r = bci_p11_find_key(p, kind);
out:
	bc_secret_free(asked);
	if (r < 0)
		bci_p11_close(p);
	else
		*out = p;
	return r;
}

int bc_pkcs11_genkey(const char *uri_in, const char *module, const struct bc_secret *pin,
		     const char *label, unsigned bits)
{
	struct bci_p11 *p = NULL;
	char *uri = NULL;
	int r;

	r = bci_p11_normalize_uri(uri_in, &uri);
	if (r < 0)
		return r;
	r = bci_p11_open(uri, module, true, &p);
	if (r == 0 && bci_p11_needs_login(p))
		r = bci_p11_login(p, pin);
	if (r == 0) {
		/* Refuse to make a second key under the same label. */
		r = bci_p11_count_label(p, label);
		if (r > 0)
			r = bci_error(-EEXIST, "genkey: token '%s' already has a key labelled %s",
				     bci_p11_token_label(p), label);
	}
	if (r == 0)
		r = bci_p11_generate_aes(p, label, bits);
	bci_p11_close(p);
	free(uri);
	return r;
}

int bc_pkcs11_derive_plain_key(const char *uri_in, const char *module, const struct bc_secret *pin,
			       size_t key_bytes, struct bc_secret **key_out)
{
	struct bc_unlock u = { .pkcs11_module = module };
	struct bci_p11 *p = NULL;
	struct bc_secret *key = NULL;
	uint8_t blocks[64];
	char *uri = NULL;
	int r;

	*key_out = NULL;
	if (key_bytes > sizeof(blocks) || key_bytes % 16)
		return bci_error(-EINVAL, "plain: token-derived keys are 128..512 bits in 128-bit steps");
	r = bci_p11_normalize_uri(uri_in, &uri);
	if (r == 0)
		r = bci_p11_open_key(uri, &u, pin, BC_P11_AES_KEY, &p);
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
		r = bci_p11_ecb_encrypt(p, blocks, key_bytes, bc_secret_buf(key));
	bci_p11_close(p);
	if (r < 0) {
		bc_secret_free(key);
		return r;
	}
	bc_secret_set_len(key, key_bytes);
	*key_out = key;
	return 0;
}
