/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Sector engine throughput, without any I/O: how fast blockcrypt encrypts
 * and decrypts a 1 MiB buffer for each cipher and sector size, next to one
 * EVP call over the whole buffer (the cipher's own speed, as `openssl
 * speed -evp` reports it).  The difference is the per-sector cost: IV
 * set-up and the EVP call overhead.
 *
 * Each case runs through every path the engine has: for XTS on a CPU with
 * vector AES our own VAES code (what blockcrypt uses there), OpenSSL's
 * provider functions called directly (what it uses otherwise) and
 * EVP_CipherInit_ex2 per sector (the fallback).
 *
 * Usage: bench-engine-speed [SECONDS_PER_CASE]   (default 0.5)
 * Prints one line per case: cipher, sector size, path, direction, MiB/s and
 * the ratio to the raw cipher.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/evp.h>

#include "engine/cipher_spec.h"
#include "engine/sector_engine.h"

#define BUF_SIZE (1u << 20)

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* MiB/s of one EVP call per 1 MiB buffer with a fixed IV (XTS: one huge unit). */
static double raw_speed(const char *evp, const uint8_t *key, uint8_t *buf, double secs)
{
	EVP_CIPHER *c = EVP_CIPHER_fetch(NULL, evp, NULL);
	EVP_CIPHER_CTX *ctx = EVP_CIPHER_CTX_new();
	uint8_t iv[16] = { 1 };
	double t0 = now(), t;
	size_t bytes = 0;
	int outl;

	if (!c || !ctx || !EVP_CipherInit_ex2(ctx, c, key, iv, 1, NULL))
		return 0;
	EVP_CIPHER_CTX_set_padding(ctx, 0);
	do {
		EVP_CipherInit_ex2(ctx, NULL, NULL, iv, -1, NULL);
		EVP_CipherUpdate(ctx, buf, &outl, buf, BUF_SIZE);
		bytes += BUF_SIZE;
	} while ((t = now() - t0) < secs);
	EVP_CIPHER_CTX_free(ctx);
	EVP_CIPHER_free(c);
	return (double)bytes / t / (1 << 20);
}

static double engine_speed(struct bci_sector_engine *e, uint32_t ss, int enc, uint8_t *buf,
			   double secs)
{
	double t0 = now(), t;
	size_t bytes = 0;
	uint64_t sector = 0;

	do {
		int r = enc ? bci_sector_encrypt(e, buf, buf, sector, BUF_SIZE / ss)
			    : bci_sector_decrypt(e, buf, buf, sector, BUF_SIZE / ss);
		if (r < 0)
			return 0;
		sector += BUF_SIZE / ss;
		bytes += BUF_SIZE;
	} while ((t = now() - t0) < secs);
	return (double)bytes / t / (1 << 20);
}

int main(int argc, char **argv)
{
	static const struct {
		const char *spec, *evp;
		unsigned key_bytes;
	} cases[] = {
		{ "aes-xts-plain64", "AES-256-XTS", 64 },
		{ "aes-cbc-essiv:sha256", "AES-256-CBC", 32 },
		{ "aes-cbc-plain64", "AES-256-CBC", 32 },
	};
	static const uint32_t sizes[] = { 512, 4096 };
	double secs = argc > 1 ? atof(argv[1]) : 0.5;
	uint8_t key[64], *buf = aligned_alloc(4096, BUF_SIZE);

	if (!buf || secs <= 0)
		return 2;
	for (unsigned i = 0; i < sizeof(key); i++)
		key[i] = (uint8_t)(i * 7 + 1);
	memset(buf, 0x5a, BUF_SIZE);
	printf("%-22s %6s %-7s %-7s %10s %8s\n", "cipher", "sector", "path", "dir", "MiB/s", "vs raw");
	for (unsigned c = 0; c < sizeof(cases) / sizeof(cases[0]); c++) {
		double raw = raw_speed(cases[c].evp, key, buf, secs);

		printf("%-22s %6s %-7s %-7s %10.0f %8s\n", cases[c].spec, "-", "raw", "encrypt", raw,
		       "1.00");
		for (unsigned k = 0; k < 3 * sizeof(sizes) / sizeof(sizes[0]); k++) {
			static const unsigned variant[] = { 0, BC_ENGINE_NO_VAES, BC_ENGINE_EVP_ONLY };
			unsigned s = k / 3;
			struct bci_sector_params p = { .sector_size = sizes[s], .iv_large_sectors = false };
			struct bci_sector_engine *e = NULL;

			if (bci_cipher_spec_parse(cases[c].spec, cases[c].key_bytes * 8, &p.spec) < 0 ||
			    bci_sector_engine_new_ex(&p, key, variant[k % 3], &e) < 0) {
				fprintf(stderr, "%s: cannot set up the engine\n", cases[c].spec);
				return 1;
			}
			/* Without VAES (or for CBC) the first two variants are one path. */
			if (k % 3 == 1 && strcmp(bci_sector_engine_path(e), "direct") == 0 &&
			    strcmp(cases[c].spec, "aes-xts-plain64") != 0) {
				bci_sector_engine_free(e);
				continue;
			}
			for (int enc = 1; enc >= 0; enc--) {
				double v = engine_speed(e, sizes[s], enc, buf, secs);

				printf("%-22s %6u %-7s %-7s %10.0f %8.2f\n", cases[c].spec, sizes[s],
				       bci_sector_engine_path(e), enc ? "encrypt" : "decrypt", v,
				       raw > 0 ? v / raw : 0);
			}
			bci_sector_engine_free(e);
		}
	}
	free(buf);
	return 0;
}
