/* SPDX-License-Identifier: GPL-2.0-or-later */
/* IEEE 1619 XTS-AES known-answer vectors through the sector engine: the
 * vector's tweak is its data unit sequence number as 16 little-endian bytes,
 * which is the dm-crypt plain64 IV of 512-byte sector number (sector +
 * iv_offset).  So each 512-byte vector with sequence number s must come out
 * of one sector encrypted at sector = s - iv_offset for any iv_offset <= s:
 * 0 (the plain case), s (the whole IV from the offset) and a split of s
 * between the two, which tests that the offset is really added.  Vectors
 * with consecutive sequence numbers under the same key also go through one
 * two-sector call (the batched IV path) at sector 0 with iv_offset = s. */
#include <string.h>

#include "blockcrypt.h"
#include "engine/sector_engine.h"
#include "engine/xts_vaes.h"
#include "unit.h"
#include "xts_vectors.h"

static uint64_t tweak_sector(const unsigned char tweak[16], int *fits)
{
	uint64_t s = 0;

	*fits = 1;
	for (int i = 0; i < 8; i++)
		s |= (uint64_t)tweak[i] << (8 * i);
	for (int i = 8; i < 16; i++)
		if (tweak[i])
			*fits = 0;
	return s;
}

static void run_vector_path(const struct xts_vector *v, uint64_t iv_offset, unsigned flags,
			    const char *want_path)
{
	struct bci_sector_params p = { .sector_size = 512, .iv_offset = iv_offset };
	struct bci_sector_engine *e = NULL, *copy = NULL;
	uint8_t out[512];
	int fits;
	uint64_t sector = tweak_sector(v->tweak, &fits) - iv_offset;

	CHECK(fits || v->dup_keys);
	CHECK_OK(bci_cipher_spec_parse("aes-xts-plain64", v->key_len * 8, &p.spec));
	if (v->dup_keys) {
		/* key1 == key2: OpenSSL 3 refuses it and so must we, loudly. */
		CHECK(bci_sector_engine_new_ex(&p, v->key, flags, &e) < 0);
		CHECK(strstr(bc_last_error(), "rejected") != NULL);
		printf("# %s: duplicate XTS key halves refused, as OpenSSL 3 requires\n", v->name);
		return;
	}
	CHECK_OK(bci_sector_engine_new_ex(&p, v->key, flags, &e));
	if (!e)
		return;
	CHECK(strcmp(bci_sector_engine_path(e), want_path) == 0);
	CHECK_OK(bci_sector_encrypt(e, out, v->pt, sector, 1));
	CHECK(memcmp(out, v->ct, 512) == 0);
	CHECK_OK(bci_sector_decrypt(e, out, v->ct, sector, 1));
	CHECK(memcmp(out, v->pt, 512) == 0);
	/* A duplicated engine (what each I/O thread uses) gives the same. */
	CHECK_OK(bci_sector_engine_dup(e, &copy));
	memcpy(out, v->pt, 512);
	CHECK_OK(bci_sector_encrypt(copy, out, out, sector, 1)); /* in place */
	CHECK(memcmp(out, v->ct, 512) == 0);
	bci_sector_engine_free(copy);
	bci_sector_engine_free(e);
	printf("# %s (iv_offset %llu, %s): ok\n", v->name, (unsigned long long)iv_offset, want_path);
}

/* Every path the engine has: the VAES code (where the CPU has it), the
 * provider functions, the EVP API. */
static void run_vector(const struct xts_vector *v, uint64_t iv_offset)
{
	if (bci_xts_vaes_usable())
		run_vector_path(v, iv_offset, 0, "vaes");
	else
		printf("# %s: THIS CPU HAS NO VAES: the VAES XTS code is NOT tested\n", v->name);
	run_vector_path(v, iv_offset, BC_ENGINE_NO_VAES, "direct");
	run_vector_path(v, iv_offset, BC_ENGINE_EVP_ONLY, "evp");
}

/* V and W (sequence numbers s and s + 1, same key) as sectors 0 and 1 of
 * one call, with iv_offset = s: each sector's IV is its own number plus the
 * offset, also when the IVs are made for a whole run of sectors at once. */
static void run_pair_path(const struct xts_vector *v, const struct xts_vector *w,
			  unsigned flags, const char *want_path)
{
	int fits;
	struct bci_sector_params p = { .sector_size = 512, .iv_offset = tweak_sector(v->tweak, &fits) };
	struct bci_sector_engine *e = NULL;
	uint8_t in[1024], out[1024], want[1024];

	CHECK(fits);
	CHECK_OK(bci_cipher_spec_parse("aes-xts-plain64", v->key_len * 8, &p.spec));
	CHECK_OK(bci_sector_engine_new_ex(&p, v->key, flags, &e));
	if (!e)
		return;
	CHECK(strcmp(bci_sector_engine_path(e), want_path) == 0);
	memcpy(in, v->pt, 512);
	memcpy(in + 512, w->pt, 512);
	memcpy(want, v->ct, 512);
	memcpy(want + 512, w->ct, 512);
	CHECK_OK(bci_sector_encrypt(e, out, in, 0, 2));
	CHECK(memcmp(out, want, 1024) == 0);
	CHECK_OK(bci_sector_decrypt(e, out, want, 0, 2));
	CHECK(memcmp(out, in, 1024) == 0);
	bci_sector_engine_free(e);
	printf("# %s + %s (sectors 0-1, iv_offset %llu, %s): ok\n", v->name, w->name,
	       (unsigned long long)p.iv_offset, want_path);
}

static void run_pair(const struct xts_vector *v, const struct xts_vector *w)
{
	if (bci_xts_vaes_usable())
		run_pair_path(v, w, 0, "vaes");
	run_pair_path(v, w, BC_ENGINE_NO_VAES, "direct");
	run_pair_path(v, w, BC_ENGINE_EVP_ONLY, "evp");
}

/* Each 512-byte vector at its own sector and through IV offsets (and the
 * duplicate-key vectors refused). */
static void each_vector(void)
{
	const size_t n = sizeof(xts_vectors) / sizeof(xts_vectors[0]);
	unsigned used = 0, with_offset = 0;

	for (size_t i = 0; i < n; i++) {
		const struct xts_vector *v = &xts_vectors[i];
		int fits;
		uint64_t s;

		if (v->dup_keys) {
			run_vector(v, 0);   /* checks the refusal */
			continue;
		}
		if (v->len != 512) {
			/* 32-byte data units are not a dm-crypt sector size. */
			printf("# %s: %u-byte data unit is not a sector size; not applicable\n", v->name, v->len);
			continue;
		}
		s = tweak_sector(v->tweak, &fits);
		run_vector(v, 0);             /* sector s */
		used++;
		if (s == 0) {
			/* Sequence number 0 is sector 0 with offset 0, nothing else. */
			printf("# %s: data unit 0: no non-zero IV offset reaches it\n", v->name);
			continue;
		}
		run_vector(v, s);             /* sector 0 */
		if (s > 1)
			run_vector(v, s - s / 2); /* sector s / 2 */
		with_offset++;
	}
	CHECK(used >= 11);
	/* Every 512-byte vector but vector 4 (data unit 0) through an offset. */
	CHECK(with_offset >= 10);
}

/* Consecutive vectors under one key as two sectors of one call. */
static void vector_pairs(void)
{
	const size_t n = sizeof(xts_vectors) / sizeof(xts_vectors[0]);
	unsigned pairs = 0;

	for (size_t i = 0; i + 1 < n; i++) {
		const struct xts_vector *v = &xts_vectors[i], *w = &xts_vectors[i + 1];
		int fv, fw;

		if (v->dup_keys || w->dup_keys || v->len != 512 || w->len != 512 ||
		    v->key_len != w->key_len || memcmp(v->key, w->key, v->key_len) ||
		    tweak_sector(w->tweak, &fw) != tweak_sector(v->tweak, &fv) + 1)
			continue;
		run_pair(v, w);
		pairs++;
	}
	/* 4+5, 5+6, 7+8, 8+9. */
	CHECK(pairs >= 4);
}

int main(void)
{
	RUN(each_vector, "every IEEE 1619 vector, at its sector and through IV offsets");
	RUN(vector_pairs, "consecutive vectors as one two-sector call");
	return unit_done();
}
