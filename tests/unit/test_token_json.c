/* SPDX-License-Identifier: GPL-2.0-or-later */
/* Token JSON decoding: what a hostile or damaged header can put there is
 * refused with -EBADMSG, other token types are left alone (-ENOENT), and
 * our own encoding decodes back to the same token. */
#include <string.h>

#include "blockcrypt.h"
#include "luks/token_json.h"
#include "unit.h"

#define URI "pkcs11:token=t;object=k"
#define IV "AAECAwQFBgcICQoL"  /* 12 bytes */
#define SEC "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8gISIjJCUmJygpKissLS4v"  /* 48 bytes */

static int decode(const char *json, struct bci_token *t)
{
	return bci_token_decode(json, strlen(json), t);
}

/* Ours, as enroll writes it, and encoded back. */
static void ours_round_trip(void)
{
	struct bci_token t, t2;
	char *json = NULL;

	CHECK_OK(decode("{\"type\":\"blockcrypt-pkcs11\",\"keyslots\":[\"3\"],\"blockcrypt-pkcs11-uri\":\"" URI
			"\",\"blockcrypt-wrap\":\"aes-gcm\",\"blockcrypt-iv\":\"" IV "\",\"blockcrypt-secret\":\"" SEC "\"}", &t));
	CHECK(t.kind == BC_TOKEN_BLOCKCRYPT && t.keyslot == 3 && !strcmp(t.uri, URI));
	CHECK(t.blob_len == 48 && t.blob[47] == 47 && t.iv[11] == 11);
	CHECK_OK(bci_token_encode(&t, &json));
	CHECK_OK(decode(json, &t2));
	CHECK(memcmp(&t, &t2, sizeof(t)) == 0);
	free(json);
}

/* systemd-cryptenroll's: decoded, never encoded. */
static void systemd_token(void)
{
	struct bci_token t;
	char *json = NULL;

	CHECK_OK(decode("{\"type\":\"systemd-pkcs11\",\"keyslots\":[\"12\"],\"pkcs11-uri\":\"" URI
			"\",\"pkcs11-key\":\"" SEC "\"}", &t));
	CHECK(t.kind == BC_TOKEN_SYSTEMD && t.keyslot == 12 && t.blob_len == 48);
	CHECK(bci_token_encode(&t, &json) == -EINVAL);
}

/* Not a PKCS#11 token: not ours to judge. */
static void other_token_types(void)
{
	struct bci_token t;

	CHECK(decode("{\"type\":\"systemd-tpm2\",\"keyslots\":[\"1\"]}", &t) == -ENOENT);
	CHECK(decode("{\"keyslots\":[\"1\"]}", &t) == -ENOENT);
}

/* Malformed JSON: each of these must be refused. */
static void malformed_json(void)
{
	struct bci_token t;

	static const char *bad[] = {
		"", "[]", "nul", "{\"type\":\"blockcrypt-pkcs11\"", "\"blockcrypt-pkcs11\"",
		"{\"type\":\"blockcrypt-pkcs11\",\"keyslots\":[\"3\"],\"blockcrypt-pkcs11-uri\":\"" URI
		"\",\"blockcrypt-wrap\":\"aes-gcm\",\"blockcrypt-iv\":\"" IV "\",\"blockcrypt-secret\":\"" SEC "\"} x",
	};
	for (unsigned i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		CHECK(bci_token_decode(bad[i], strlen(bad[i]), &t) == -EBADMSG);
}

/* A bad value in one field of our token: refused, saying so. */
static void malformed_fields(void)
{
	struct bci_token t;
	char buf[1024];

	static const struct { const char *slots, *uri, *wrap, *iv, *sec; } field[] = {
		{ "[\"abc\"]", URI, "aes-gcm", IV, SEC },      /* atoi would say 0 */
		{ "[\"-1\"]", URI, "aes-gcm", IV, SEC },
		{ "[\"32\"]", URI, "aes-gcm", IV, SEC },
		{ "[\"3x\"]", URI, "aes-gcm", IV, SEC },
		{ "[3]", URI, "aes-gcm", IV, SEC },
		{ "[]", URI, "aes-gcm", IV, SEC },
		{ "[\"1\",\"2\"]", URI, "aes-gcm", IV, SEC },
		{ "\"3\"", URI, "aes-gcm", IV, SEC },
		{ "[\"3\"]", "file:/etc/passwd", "aes-gcm", IV, SEC },
		{ "[\"3\"]", URI, "aes-cbc", IV, SEC },
		{ "[\"3\"]", URI, "aes-gcm", "AAECAwQFBgcICQo=", SEC },    /* 11 bytes */
		{ "[\"3\"]", URI, "aes-gcm", "AAECAwQFBgcICQoL!!!!", SEC },
		{ "[\"3\"]", URI, "aes-gcm", "AAEC=wQFBgcICQoL", SEC },   /* '=' inside */
		{ "[\"3\"]", URI, "aes-gcm", IV, "AAECAwQFBgcICQoL" },    /* 12 bytes */
		{ "[\"3\"]", URI, "aes-gcm", IV, "" },
	};
	for (unsigned i = 0; i < sizeof(field) / sizeof(field[0]); i++) {
		snprintf(buf, sizeof(buf), "{\"type\":\"blockcrypt-pkcs11\",\"keyslots\":%s,"
			 "\"blockcrypt-pkcs11-uri\":\"%s\",\"blockcrypt-wrap\":\"%s\",\"blockcrypt-iv\":\"%s\","
			 "\"blockcrypt-secret\":\"%s\"}", field[i].slots, field[i].uri, field[i].wrap,
			 field[i].iv, field[i].sec);
		if (decode(buf, &t) != -EBADMSG) {
			fprintf(stderr, "accepted: %s\n", buf);
			CHECK(0);
		} else {
			CHECK(strstr(bc_last_error(), "malformed blockcrypt-pkcs11 token") != NULL);
		}
	}
}

/* A systemd key too large for any RSA key we handle. */
static void systemd_key_too_large(void)
{
	struct bci_token t;
	char big[2000 * 4 / 3 + 8], buf[1024], *json;

	memset(big, 'A', sizeof(big) - 1);
	big[sizeof(big) - 1] = 0;
	big[(sizeof(big) - 1) / 4 * 4] = 0;
	snprintf(buf, sizeof(buf), "x");
	json = malloc(strlen(big) + 200);
	sprintf(json, "{\"type\":\"systemd-pkcs11\",\"keyslots\":[\"1\"],\"pkcs11-uri\":\"" URI
		"\",\"pkcs11-key\":\"%s\"}", big);
	CHECK(decode(json, &t) == -EBADMSG);
	free(json);
}

int main(void)
{
	RUN(ours_round_trip, "our token decodes, and encodes back to the same");
	RUN(systemd_token, "a systemd-pkcs11 token decodes, is not encoded");
	RUN(other_token_types, "other token types are left alone (-ENOENT)");
	RUN(malformed_json, "malformed JSON is refused (-EBADMSG)");
	RUN(malformed_fields, "a bad field of our token is refused (-EBADMSG)");
	RUN(systemd_key_too_large, "an oversized systemd key is refused");
	return unit_done();
}
