/* IEEE 1619 XTS-AES known-answer vectors through the sector engine: the
 * vector's tweak is the dm-crypt plain64 IV of its data unit number, so
 * each 512-byte vector is one sector encrypted at sector = tweak. */
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
	struct bc_sector_params p = { .sector_size = 512, .iv_offset = iv_offset };
	struct bc_sector_engine *e = NULL, *copy = NULL;
	uint8_t out[512];
	int fits;
	uint64_t sector = tweak_sector(v->tweak, &fits) - iv_offset;

	CHECK(fits || v->dup_keys);
	CHECK_OK(bc_cipher_spec_parse("aes-xts-plain64", v->key_len * 8, &p.spec));
	if (v->dup_keys) {
		/* key1 == key2: OpenSSL 3 refuses it and so must we, loudly. */
		CHECK(bc_sector_engine_new_ex(&p, v->key, flags, &e) < 0);
		CHECK(strstr(bc_last_error(), "rejected") != NULL);
		printf("# %s: duplicate XTS key halves refused, as OpenSSL 3 requires\n", v->name);
		return;
	}
	CHECK_OK(bc_sector_engine_new_ex(&p, v->key, flags, &e));
	if (!e)
		return;
	CHECK(strcmp(bc_sector_engine_path(e), want_path) == 0);
	CHECK_OK(bc_sector_encrypt(e, out, v->pt, sector, 1));
	CHECK(memcmp(out, v->ct, 512) == 0);
	CHECK_OK(bc_sector_decrypt(e, out, v->ct, sector, 1));
	CHECK(memcmp(out, v->pt, 512) == 0);
	/* A duplicated engine (what each I/O thread uses) gives the same. */
	CHECK_OK(bc_sector_engine_dup(e, &copy));
	memcpy(out, v->pt, 512);
	CHECK_OK(bc_sector_encrypt(copy, out, out, sector, 1)); /* in place */
	CHECK(memcmp(out, v->ct, 512) == 0);
	bc_sector_engine_free(copy);
	bc_sector_engine_free(e);
	printf("# %s (iv_offset %llu, %s): ok\n", v->name, (unsigned long long)iv_offset, want_path);
}

/* Every path the engine has: the VAES code (where the CPU has it), the
 * provider functions, the EVP API. */
static void run_vector(const struct xts_vector *v, uint64_t iv_offset)
{
	if (bc_xts_vaes_usable())
		run_vector_path(v, iv_offset, 0, "vaes");
	else
		printf("# %s: THIS CPU HAS NO VAES: the VAES XTS code is NOT tested\n", v->name);
	run_vector_path(v, iv_offset, BC_ENGINE_NO_VAES, "direct");
	run_vector_path(v, iv_offset, BC_ENGINE_EVP_ONLY, "evp");
}

int main(void)
{
	unsigned used = 0;

	for (size_t i = 0; i < sizeof(xts_vectors) / sizeof(xts_vectors[0]); i++) {
		const struct xts_vector *v = &xts_vectors[i];

		if (v->dup_keys) {
			run_vector(v, 0);   /* checks the refusal */
			continue;
		}
		if (v->len != 512) {
			/* 32-byte data units are not a dm-crypt sector size. */
			printf("# %s: %u-byte data unit is not a sector size; not applicable\n", v->name, v->len);
			continue;
		}
		run_vector(v, 0);
		int fits;
		uint64_t s = tweak_sector(v->tweak, &fits);

		run_vector(v, s / 2); /* the same IV reached through iv_offset */
		used++;
	}
	CHECK(used >= 11);
	return unit_done();
}
