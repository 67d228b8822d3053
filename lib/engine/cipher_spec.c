/* SPDX-License-Identifier: GPL-2.0-or-later */
/* Parsing of dm-crypt cipher specifications.  Only what the sector engine
 * implements is accepted, so a volume we cannot decrypt byte-exactly is
 * refused up front instead of producing wrong data. */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "core/error.h"
#include "engine/cipher_spec.h"

int bci_cipher_spec_parse(const char *spec, uint32_t key_bits, struct bci_cipher_spec *out)
{
	char buf[sizeof(out->name)], *cipher, *chain, *iv, *save = NULL;

	memset(out, 0, sizeof(*out));
	if (!spec)
		spec = BC_DEFAULT_CIPHER;
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
