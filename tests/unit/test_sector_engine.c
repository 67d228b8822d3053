/* SPDX-License-Identifier: GPL-2.0-or-later */
/* Sector engine properties that the KAT vectors do not reach: IV modes
 * (plain vs plain64 beyond 2^32, ESSIV computed by hand from its
 * definition), large-sector IV counting, sizes, and argument checks. */
#include <stdio.h>
#include <string.h>

#include <openssl/evp.h>
#include <openssl/rand.h>

#include "blockcrypt.h"
#include "engine/sector_engine.h"
#include "engine/xts_vaes.h"
#include "unit.h"

static struct bci_sector_engine *make(const char *spec, unsigned bits, uint32_t ss, bool large,
				     uint64_t iv_offset, const uint8_t *key)
{
	struct bci_sector_params p = { .sector_size = ss, .iv_large_sectors = large, .iv_offset = iv_offset };
	struct bci_sector_engine *e = NULL;

	CHECK_OK(bci_cipher_spec_parse(spec, bits, &p.spec));
	CHECK_OK(bci_sector_engine_new(&p, key, &e));
	return e;
}

/* CBC-encrypt one sector with an explicit IV, straight from OpenSSL. */
static void cbc_ref(const uint8_t *key, int key_len, const uint8_t iv[16], const uint8_t *in,
		    uint8_t *out, int len)
{
	EVP_CIPHER_CTX *c = EVP_CIPHER_CTX_new();
	const EVP_CIPHER *ci = key_len == 32 ? EVP_aes_256_cbc() : EVP_aes_128_cbc();
	int n;

	EVP_EncryptInit_ex(c, ci, NULL, key, iv);
	EVP_CIPHER_CTX_set_padding(c, 0);
	EVP_EncryptUpdate(c, out, &n, in, len);
	EVP_CIPHER_CTX_free(c);
}

static void le64_iv(uint64_t s, uint8_t iv[16])
{
	memset(iv, 0, 16);
	for (int i = 0; i < 8; i++)
		iv[i] = (uint8_t)(s >> (8 * i));
}

/* What the kernel says of the CPU (/proc/cpuinfo flags, which also leave
 * out AVX when the OS does not save its state). */
static bool cpu_has_vaes(void)
{
	static const char *const need[] = { " aes", " pclmulqdq", " avx", " avx2", " vaes", " vpclmulqdq" };
	char line[8192];
	bool ok = false;
	FILE *f = fopen("/proc/cpuinfo", "r");

	if (!f)
		return false;
	while (fgets(line, sizeof(line), f)) {
		if (strncmp(line, "flags", 5) != 0)
			continue;
		ok = true;
		for (unsigned i = 0; i < sizeof(need) / sizeof(need[0]); i++) {
			size_t n = strlen(need[i]);
			const char *p = line;

			while ((p = strstr(p, need[i])) && p[n] != ' ' && p[n] != '\n')
				p += n;
			ok = ok && p;
		}
		break;
	}
	fclose(f);
	return ok;
}

static uint8_t key[64], data[4 * 4096];

/* plain64 CBC: sector s of 512 bytes uses IV = LE64(s). */
static void cbc_plain64(void)
{
	uint8_t a[4 * 4096], b[4096], iv[16];
	struct bci_sector_engine *e;

	e = make("aes-cbc-plain64", 256, 512, false, 0, key);
	CHECK_OK(bci_sector_encrypt(e, a, data, 0x123456789ull, 1));
	le64_iv(0x123456789ull, iv);
	cbc_ref(key, 32, iv, data, b, 512);
	CHECK(memcmp(a, b, 512) == 0);
	bci_sector_engine_free(e);
}

/* plain truncates to 32 bits: sector 2^32+5 encrypts like sector 5. */
static void cbc_plain_truncates(void)
{
	uint8_t a[4 * 4096];
	struct bci_sector_engine *e;

	e = make("aes-cbc-plain", 256, 512, false, 0, key);
	CHECK_OK(bci_sector_encrypt(e, a, data, (1ull << 32) + 5, 1));
	CHECK_OK(bci_sector_encrypt(e, a + 512, data, 5, 1));
	CHECK(memcmp(a, a + 512, 512) == 0);
	bci_sector_engine_free(e);
}

/* ESSIV by its definition: IV = AES-256-ECB_{SHA256(key)}(LE64(s)). */
static void cbc_essiv(void)
{
	uint8_t a[4 * 4096], b[4096], iv[16], salt[32];
	struct bci_sector_engine *e;
	unsigned n;

	e = make("aes-cbc-essiv:sha256", 256, 512, false, 0, key);
	CHECK_OK(bci_sector_encrypt(e, a, data, 77, 1));
	EVP_Digest(key, 32, salt, &n, EVP_sha256(), NULL);
	{
		EVP_CIPHER_CTX *c = EVP_CIPHER_CTX_new();
		uint8_t plain_iv[16];
		int outl;

		le64_iv(77, plain_iv);
		EVP_EncryptInit_ex(c, EVP_aes_256_ecb(), NULL, salt, NULL);
		EVP_CIPHER_CTX_set_padding(c, 0);
		EVP_EncryptUpdate(c, iv, &outl, plain_iv, 16);
		EVP_CIPHER_CTX_free(c);
	}
	cbc_ref(key, 32, iv, data, b, 512);
	CHECK(memcmp(a, b, 512) == 0);
	CHECK_OK(bci_sector_decrypt(e, a, a, 77, 1));
	CHECK(memcmp(a, data, 512) == 0);
	bci_sector_engine_free(e);
}

/* 4096-byte sectors, 512-unit IVs (LUKS1/LUKS2): sector 3 uses IV 24,
 * and with iv_large_sectors (plain option) it uses IV 3. */
static void large_sector_ivs(void)
{
	uint8_t a[4 * 4096], b[4096], iv[16];
	struct bci_sector_engine *e;

	e = make("aes-cbc-plain64", 256, 4096, false, 0, key);
	CHECK_OK(bci_sector_encrypt(e, a, data, 3, 1));
	le64_iv(24, iv);
	cbc_ref(key, 32, iv, data, b, 4096);
	CHECK(memcmp(a, b, 4096) == 0);
	bci_sector_engine_free(e);
	e = make("aes-cbc-plain64", 256, 4096, true, 16, key);
	CHECK_OK(bci_sector_encrypt(e, a, data, 3, 1));
	le64_iv(3 + 2, iv); /* iv_offset 16 x 512 bytes = 2 large sectors */
	cbc_ref(key, 32, iv, data, b, 4096);
	CHECK(memcmp(a, b, 4096) == 0);
	bci_sector_engine_free(e);
}

/* Multi-sector calls equal sector-by-sector calls, for every size. */
static void multi_sector_calls(void)
{
	uint8_t a[4 * 4096], b[4096];
	struct bci_sector_engine *e;

	for (uint32_t ss = 512; ss <= 4096; ss *= 2) {
		size_t cnt = sizeof(data) / ss;

		e = make("aes-xts-plain64", 512, ss, false, 0, key);
		CHECK_OK(bci_sector_encrypt(e, a, data, 10, cnt));
		for (size_t i = 0; i < cnt; i++) {
			CHECK_OK(bci_sector_encrypt(e, b, data + i * ss, 10 + i, 1));
			CHECK(memcmp(a + i * ss, b, ss) == 0);
		}
		CHECK_OK(bci_sector_decrypt(e, a, a, 10, cnt));
		CHECK(memcmp(a, data, sizeof(data)) == 0);
		bci_sector_engine_free(e);
	}
}

/* With 512-byte sectors, iv_offset 8 at sector 10 == sector 18. */
static void xts_iv_offset(void)
{
	uint8_t a[4 * 4096], b[4096];
	struct bci_sector_engine *e, *e2;

	e = make("aes-xts-plain64", 512, 512, false, 8, key);
	e2 = make("aes-xts-plain64", 512, 512, false, 0, key);
	CHECK_OK(bci_sector_encrypt(e, a, data, 10, 1));
	CHECK_OK(bci_sector_encrypt(e2, b, data, 18, 1));
	CHECK(memcmp(a, b, 512) == 0);
	bci_sector_engine_free(e);
	bci_sector_engine_free(e2);
}

/* Every path gives the same bytes for every cipher, IV mode and sector
 * size, also after bci_sector_engine_dup and with sector numbers past
 * 2^32: the default engine (VAES code for XTS where the CPU has it,
 * else OpenSSL's provider functions), the provider path with VAES
 * turned off, and the EVP API. */
static void all_paths_agree(void)
{
	uint8_t a[4 * 4096], b2[4 * 4096];
	static const struct { const char *spec; unsigned bits; } all[] = {
		{ "aes-xts-plain64", 512 }, { "aes-xts-plain64", 256 },
		{ "aes-xts-plain", 512 }, { "aes-cbc-essiv:sha256", 256 },
		{ "aes-cbc-plain64", 256 }, { "aes-cbc-plain64", 128 },
		{ "aes-cbc-plain", 192 }, { "aes-xts-essiv:sha256", 512 },
	};
	const char *xts_path = bci_xts_vaes_usable() ? "vaes" : "direct";

	/* The detection agrees with the kernel's view of the CPU. */
	CHECK(bci_xts_vaes_usable() == cpu_has_vaes());
	if (!bci_xts_vaes_usable())
		printf("# THIS CPU HAS NO VAES/VPCLMULQDQ: the VAES XTS code is NOT tested here\n");
	for (unsigned i = 0; i < sizeof(all) / sizeof(all[0]); i++) {
		for (uint32_t ss = 512; ss <= 4096; ss *= 2) {
			struct bci_sector_params p = { .sector_size = ss };
			struct bci_sector_engine *fast = NULL, *prov = NULL, *evp = NULL, *copy = NULL;
			uint64_t first = (1ull << 32) - 2;
			size_t cnt = sizeof(data) / ss;
			bool xts = strstr(all[i].spec, "-xts-") != NULL;

			CHECK_OK(bci_cipher_spec_parse(all[i].spec, all[i].bits, &p.spec));
			CHECK_OK(bci_sector_engine_new(&p, key, &fast));
			CHECK_OK(bci_sector_engine_new_ex(&p, key, BC_ENGINE_NO_VAES, &prov));
			CHECK_OK(bci_sector_engine_new_ex(&p, key, BC_ENGINE_EVP_ONLY, &evp));
			CHECK_OK(bci_sector_engine_dup(fast, &copy));
			if (!fast || !prov || !evp || !copy)
				continue;
			CHECK(strcmp(bci_sector_engine_path(fast), xts ? xts_path : "direct") == 0);
			CHECK(strcmp(bci_sector_engine_path(copy), bci_sector_engine_path(fast)) == 0);
			CHECK(strcmp(bci_sector_engine_path(prov), "direct") == 0);
			CHECK(strcmp(bci_sector_engine_path(evp), "evp") == 0);
			CHECK_OK(bci_sector_encrypt(fast, a, data, first, cnt));
			CHECK_OK(bci_sector_encrypt(evp, b2, data, first, cnt));
			CHECK(memcmp(a, b2, sizeof(data)) == 0);
			CHECK_OK(bci_sector_encrypt(prov, b2, data, first, cnt));
			CHECK(memcmp(a, b2, sizeof(data)) == 0);
			CHECK_OK(bci_sector_decrypt(copy, a, a, first, cnt));
			CHECK(memcmp(a, data, sizeof(data)) == 0);
			CHECK_OK(bci_sector_decrypt(evp, b2, b2, first, cnt));
			CHECK(memcmp(b2, data, sizeof(data)) == 0);
			bci_sector_engine_free(fast);
			bci_sector_engine_free(prov);
			bci_sector_engine_free(evp);
			bci_sector_engine_free(copy);
		}
	}
}

/* The VAES code against OpenSSL on random input: AES-128 and AES-256
 * keys, every sector size, runs of 1..150 sectors (across its batches
 * of 8 tweaks and 64 IVs), unaligned buffers, in place and not, random
 * start sectors and IV offsets. */
static void vaes_vs_openssl(void)
{
	static uint8_t big[150 * 4096 + 64], ref[150 * 4096 + 64], out[150 * 4096 + 64];
	unsigned runs = 0;

	if (!bci_xts_vaes_usable()) {
		printf("# no VAES: nothing to compare with OpenSSL\n");
		return;
	}

	for (unsigned t = 0; t < 200; t++) {
		struct bci_sector_params p = { 0 };
		struct bci_sector_engine *v = NULL, *o = NULL;
		uint32_t rnd[6];
		size_t cnt, shift, len;
		uint64_t first;

		RAND_bytes((uint8_t *)rnd, sizeof(rnd));
		RAND_bytes(key, sizeof(key));
		p.sector_size = 512u << (rnd[0] % 4);
		p.iv_offset = rnd[1] % 3 ? 0 : rnd[1];
		CHECK_OK(bci_cipher_spec_parse(rnd[2] % 2 ? "aes-xts-plain64" : "aes-xts-plain",
					      rnd[2] & 2 ? 256 : 512, &p.spec));
		cnt = 1 + rnd[3] % 150;
		shift = rnd[4] % 33;
		first = rnd[5] % 4 ? rnd[5] : ((uint64_t)rnd[5] << 32) | rnd[4];
		len = cnt * p.sector_size;
		RAND_bytes(big, (int)(len + shift));
		CHECK_OK(bci_sector_engine_new(&p, key, &v));
		CHECK_OK(bci_sector_engine_new_ex(&p, key, BC_ENGINE_NO_VAES, &o));
		if (!v || !o)
			break;
		CHECK(strcmp(bci_sector_engine_path(v), "vaes") == 0);
		CHECK_OK(bci_sector_encrypt(o, ref, big + shift, first, cnt));
		if (t % 2) {
			memcpy(out + shift, big + shift, len);
			CHECK_OK(bci_sector_encrypt(v, out + shift, out + shift, first, cnt));
		} else {
			CHECK_OK(bci_sector_encrypt(v, out + shift, big + shift, first, cnt));
		}
		CHECK(memcmp(out + shift, ref, len) == 0);
		CHECK_OK(bci_sector_decrypt(v, ref + 1, out + shift, first, cnt));
		CHECK(memcmp(ref + 1, big + shift, len) == 0);
		bci_sector_engine_free(v);
		bci_sector_engine_free(o);
		runs++;
	}
	CHECK(runs == 200);
	printf("# VAES XTS == OpenSSL XTS on %u random runs\n", runs);
}

/* Specs and sizes the engine must refuse. */
static void refused_specs(void)
{
	struct bci_sector_engine *e;
	struct bci_cipher_spec spec;

	CHECK(bci_cipher_spec_parse("serpent-xts-plain64", 0, &spec) == -ENOTSUP);
	CHECK(bci_cipher_spec_parse("aes-ecb", 0, &spec) < 0);
	CHECK(bci_cipher_spec_parse("aes-xts-plain64", 384, &spec) == -EINVAL);
	CHECK(bci_cipher_spec_parse("aes-cbc-essiv:md5", 256, &spec) == -ENOTSUP);
	CHECK(bci_cipher_spec_parse("cipher_null-ecb", 0, &spec) < 0);
	CHECK_OK(bci_cipher_spec_parse("aes-xts-plain64", 0, &spec));
	CHECK(spec.key_bytes == 64);
	{
		struct bci_sector_params p = { .spec = spec, .sector_size = 1000 };
		CHECK(bci_sector_engine_new(&p, key, &e) == -EINVAL);
		p.sector_size = 4096;
		p.iv_large_sectors = true;
		p.iv_offset = 3; /* not a multiple of 8 */
		CHECK(bci_sector_engine_new(&p, key, &e) == -EINVAL);
	}
}

int main(void)
{
	RAND_bytes(key, sizeof(key));
	RAND_bytes(data, sizeof(data));
	RUN(cbc_plain64, "aes-cbc-plain64: IV = LE64(sector)");
	RUN(cbc_plain_truncates, "aes-cbc-plain: the IV is the sector mod 2^32");
	RUN(cbc_essiv, "aes-cbc-essiv:sha256 by its definition");
	RUN(large_sector_ivs, "4096-byte sectors: 512-byte IV units, iv_large_sectors");
	RUN(multi_sector_calls, "multi-sector calls equal sector-by-sector calls");
	RUN(xts_iv_offset, "iv_offset adds to the sector number");
	RUN(all_paths_agree, "VAES, provider and EVP paths agree for every spec");
	RUN(vaes_vs_openssl, "the VAES code equals OpenSSL on random runs");
	RUN(refused_specs, "unsupported specs and sizes are refused");
	return unit_done();
}
