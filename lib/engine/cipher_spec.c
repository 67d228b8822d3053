/* SPDX-License-Identifier: GPL-2.0-or-later */
/* Parsing of dm-crypt cipher specifications.  Only what the sector engine
 * implements is accepted, so a volume we cannot decrypt byte-exactly is
 * refused up front instead of producing wrong data. */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "core/error.h"
#include "engine/cipher_spec.h"

/* The cipher names of illumos lofiadm -c (compared without case, as
 * lofiadm does): AES-CBC with lofi's own IV (docs/blockcrypt-lofi.7.md). */
static const struct {
	const char *name;
	uint32_t key_bits;
} lofi_names[] = {
	{ "aes-128-cbc", 128 },
	{ "aes-192-cbc", 192 },
	{ "aes-256-cbc", 256 },
};

static int parse_lofi(const char *spec, uint32_t key_bits, struct bci_cipher_spec *out)
{
	for (size_t i = 0; i < sizeof(lofi_names) / sizeof(lofi_names[0]); i++) {
		if (strcasecmp(spec, lofi_names[i].name))
			continue;
		if (key_bits && key_bits != lofi_names[i].key_bits)
			return bci_error(-EINVAL, "cipher %s: the name fixes the key size at %u bits, not %u",
					lofi_names[i].name, lofi_names[i].key_bits, key_bits);
		out->chain = BC_MODE_CBC;
		out->iv = BC_IV_LOFI;
		out->key_bytes = lofi_names[i].key_bits / 8;
		snprintf(out->cipher, sizeof(out->cipher), "aes");
		snprintf(out->mode, sizeof(out->mode), "cbc-lofi");
		snprintf(out->name, sizeof(out->name), "%s", lofi_names[i].name);
		return 1;
	}
	return 0;
}

int bci_cipher_spec_parse(const char *spec, uint32_t key_bits, struct bci_cipher_spec *out)
{
	char buf[sizeof(out->name)], *cipher, *chain, *iv, *save = NULL;
	int r;

	memset(out, 0, sizeof(*out));
	if (!spec)
		spec = BC_DEFAULT_CIPHER;
	r = parse_lofi(spec, key_bits, out);
	if (r != 0)
		return r < 0 ? r : 0;
	if (strlen(spec) >= sizeof(buf))
		return bci_error(-EINVAL, "cipher: invalid specification");
	strcpy(buf, spec);
	cipher = strtok_r(buf, "-", &save);
	chain = strtok_r(NULL, "-", &save);
	iv = strtok_r(NULL, "", &save);
	if (!cipher || !chain || !iv)
		return bci_error(-EINVAL, "cipher %s: expected CIPHER-MODE-IV, e.g. aes-xts-plain64", spec);
	if (strcmp(cipher, "aes"))
		return bci_error(-ENOTSUP, "cipher %s: only aes is supported", spec);
	if (!strcmp(chain, "xts"))
		out->chain = BC_MODE_XTS;
	else if (!strcmp(chain, "cbc"))
		out->chain = BC_MODE_CBC;
	else
		return bci_error(-ENOTSUP, "cipher %s: chaining mode %s is not supported (xts, cbc)", spec, chain);
	if (!strcmp(iv, "plain64"))
		out->iv = BC_IV_PLAIN64;
	else if (!strcmp(iv, "plain"))
		out->iv = BC_IV_PLAIN;
	else if (!strcmp(iv, "essiv:sha256")) {
		out->iv = BC_IV_ESSIV;
		strcpy(out->essiv_hash, "sha256");
	} else
		return bci_error(-ENOTSUP, "cipher %s: IV mode %s is not supported (plain64, plain, essiv:sha256)", spec, iv);

	if (!key_bits)
		key_bits = out->chain == BC_MODE_XTS ? BC_DEFAULT_XTS_KEY_BITS : BC_DEFAULT_CBC_KEY_BITS;
	if (out->chain == BC_MODE_XTS && key_bits != 256 && key_bits != 512)
		return bci_error(-EINVAL, "cipher %s: XTS key size must be 256 or 512 bits, not %u", spec, key_bits);
	if (out->chain == BC_MODE_CBC && key_bits != 128 && key_bits != 192 && key_bits != 256)
		return bci_error(-EINVAL, "cipher %s: CBC key size must be 128, 192 or 256 bits, not %u", spec, key_bits);
	out->key_bytes = key_bits / 8;
	snprintf(out->cipher, sizeof(out->cipher), "%s", cipher);
	snprintf(out->mode, sizeof(out->mode), "%s-%s", chain, iv);
	snprintf(out->name, sizeof(out->name), "%s-%s-%s", cipher, chain, iv);
	return 0;
}

int bc_cipher_key_bits(const char *cipher, uint32_t key_bits)
{
	struct bci_cipher_spec spec;
	int r = bci_cipher_spec_parse(cipher, key_bits, &spec);

	return r < 0 ? r : (int)(spec.key_bytes * 8);
}
