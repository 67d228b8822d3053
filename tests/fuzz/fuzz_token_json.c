/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * libFuzzer harness: LUKS2 token JSON (lib/luks/token_json.c).
 *
 * The input is the token JSON as it would come out of a LUKS2 header
 * (bci_token_decode() gets the bytes and their length, no terminator).
 * Besides the sanitizers it checks:
 *   - the result is 0, -ENOENT (not a PKCS#11 token) or -EBADMSG (with a
 *     "token: " message), and a failed decode leaves the struct zeroed;
 *   - a decoded token is sane: key slot 0..31, a "pkcs11:" URI that fits,
 *     blob length 48 for ours and 1..1024 for systemd's;
 *   - ours re-encodes with bci_token_encode() and that JSON decodes to the
 *     same struct; systemd's is refused by bci_token_encode().
 */
#include <errno.h>
#include <stdint.h>
#include <string.h>

#include "blockcrypt.h"
#include "luks/token_json.h"

#include "fuzz_common.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static bool all_zero(const void *p, size_t n)
{
	const uint8_t *b = p;

	for (size_t i = 0; i < n; i++)
		if (b[i])
			return false;
	return true;
}

static void check_same(const struct bci_token *a, const struct bci_token *b, const char *json)
{
	FUZZ_CHECK(a->kind == b->kind && a->keyslot == b->keyslot, "round trip changed kind or key slot: %s", json);
	FUZZ_CHECK(!strcmp(a->uri, b->uri), "round trip changed the URI: '%s' -> '%s'", a->uri, b->uri);
	FUZZ_CHECK(!memcmp(a->iv, b->iv, sizeof(a->iv)), "round trip changed the IV: %s", json);
	FUZZ_CHECK(a->blob_len == b->blob_len && !memcmp(a->blob, b->blob, a->blob_len),
		   "round trip changed the wrapped secret: %s", json);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct bci_token t, again; /* 5 KiB each: keep them off the stack */
	char *json = NULL;
	int r;

	r = bci_token_decode((const char *)data, size, &t);
	FUZZ_CHECK(r == 0 || r == -ENOENT || r == -EBADMSG, "bci_token_decode returned %d", r);
	if (r == -EBADMSG)
		FUZZ_CHECK(!strncmp(bc_last_error(), "token: ", 7), "bad message: '%s'", bc_last_error());
	if (r < 0) {
		FUZZ_CHECK(all_zero(&t, sizeof(t)), "failed decode left data in the struct");
		return 0;
	}
	FUZZ_CHECK(t.keyslot >= 0 && t.keyslot <= 31, "key slot %d", t.keyslot);
	FUZZ_CHECK(memchr(t.uri, '\0', sizeof(t.uri)) && !strncmp(t.uri, "pkcs11:", 7), "bad URI");
	if (t.kind == BC_TOKEN_SYSTEMD) {
		FUZZ_CHECK(t.blob_len >= 1 && t.blob_len <= BC_TOKEN_BLOB_MAX, "systemd blob of %zu bytes", t.blob_len);
		r = bci_token_encode(&t, &json);
		FUZZ_CHECK(r == -EINVAL && !json, "bci_token_encode accepted a systemd token: %d", r);
		return 0;
	}
	FUZZ_CHECK(t.kind == BC_TOKEN_BLOCKCRYPT, "unknown kind %d", (int)t.kind);
	FUZZ_CHECK(t.blob_len == BC_TOKEN_WRAPPED_BYTES, "wrapped secret of %zu bytes", t.blob_len);

	r = bci_token_encode(&t, &json);
	FUZZ_CHECK(r == 0 && json, "bci_token_encode failed on a decoded token: %d (%s)", r, bc_last_error());
	r = bci_token_decode(json, strlen(json), &again);
	FUZZ_CHECK(r == 0, "our own encoding does not decode: %d (%s): %s", r, bc_last_error(), json);
	check_same(&t, &again, json);
	free(json);
	return 0;
}
