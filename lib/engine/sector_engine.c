/*
 * The sector engine: byte-identical to Linux dm-crypt.
 *
 * The data area is split into sectors of sector_size bytes.  Sector i gets
 * an IV derived from s = i * (sector_size / 512) + iv_offset, or from
 * s >> log2(sector_size / 512) when iv_large_sectors is set (LUKS2 with
 * sectors larger than 512 bytes):
 *   plain    s mod 2^32, little endian, zero padded to the block size
 *   plain64  s, 64-bit little endian, zero padded
 *   essiv    E_salt(plain64 IV) with salt = H(volume key), AES-ECB
 * XTS treats each sector as one data unit whose tweak is the IV; CBC chains
 * within the sector only.
 *
 * Cipher contexts are keyed once and re-initialised per sector with only a
 * new IV, so the hot path does no key schedule and no allocation.
 *
 * Threading: an engine is used by one thread at a time; callers keep a pool
 * of engines made with bc_sector_engine_dup().
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

#include "core/error.h"
#include "engine/sector_engine.h"

#define IV_SIZE 16

struct bc_sector_engine {
	struct bc_sector_params p;
	unsigned iv_shift;          /* log2(sector_size / 512) */
	EVP_CIPHER_CTX *enc, *dec;  /* keyed with the volume key */
	EVP_CIPHER_CTX *essiv;      /* keyed with H(volume key), ECB */
};

static const char *evp_name(const struct bc_cipher_spec *s)
{
	if (s->chain == BC_MODE_XTS)
		return s->key_bytes == 64 ? "AES-256-XTS" : "AES-128-XTS";
	switch (s->key_bytes) {
	case 16: return "AES-128-CBC";
	case 24: return "AES-192-CBC";
	default: return "AES-256-CBC";
	}
}

static EVP_CIPHER_CTX *keyed_ctx(const char *name, const uint8_t *key, int enc)
{
	EVP_CIPHER *cipher = EVP_CIPHER_fetch(NULL, name, NULL);
	EVP_CIPHER_CTX *ctx = NULL;

	if (!cipher)
		return NULL;
	ctx = EVP_CIPHER_CTX_new();
	if (ctx && (!EVP_CipherInit_ex2(ctx, cipher, key, NULL, enc, NULL) ||
		    !EVP_CIPHER_CTX_set_padding(ctx, 0))) {
		EVP_CIPHER_CTX_free(ctx);
		ctx = NULL;
	}
	EVP_CIPHER_free(cipher);
	return ctx;
}

void bc_sector_engine_free(struct bc_sector_engine *e)
{
	if (!e)
		return;
	EVP_CIPHER_CTX_free(e->enc);  /* OpenSSL cleanses key schedules */
	EVP_CIPHER_CTX_free(e->dec);
	EVP_CIPHER_CTX_free(e->essiv);
	free(e);
}

static int check_params(const struct bc_sector_params *p, unsigned *shift)
{
	uint32_t ss = p->sector_size;

	if (ss < 512 || ss > 4096 || (ss & (ss - 1)))
		return bc_error(-EINVAL, "sector size %u: must be 512, 1024, 2048 or 4096", ss);
	*shift = (unsigned)__builtin_ctz(ss / 512);
	if (p->iv_large_sectors && (p->iv_offset & ((1u << *shift) - 1)))
		return bc_error(-EINVAL, "IV offset %llu: must be a multiple of the sector size with large IVs",
				(unsigned long long)p->iv_offset);
	return 0;
}

int bc_sector_engine_new(const struct bc_sector_params *p, const uint8_t *key,
			 struct bc_sector_engine **out)
{
	struct bc_sector_engine *e;
	unsigned shift = 0;
	int r;

	*out = NULL;
	r = check_params(p, &shift);
	if (r < 0)
		return r;
	e = calloc(1, sizeof(*e));
	if (!e)
		return bc_error(-ENOMEM, "sector engine: out of memory");
	e->p = *p;
	e->iv_shift = shift;
	e->enc = keyed_ctx(evp_name(&p->spec), key, 1);
	e->dec = keyed_ctx(evp_name(&p->spec), key, 0);
	if (!e->enc || !e->dec) {
		/* OpenSSL 3 refuses XTS keys whose two halves are equal. */
		r = bc_error(-EINVAL, "sector engine: OpenSSL rejected the %s key", p->spec.name);
		goto fail;
	}
	if (p->spec.iv == BC_IV_ESSIV) {
		uint8_t salt[EVP_MAX_MD_SIZE];
		unsigned salt_len = 0;

		if (!EVP_Digest(key, p->spec.key_bytes, salt, &salt_len, EVP_sha256(), NULL)) {
			r = bc_error(-EINVAL, "sector engine: ESSIV hash failed");
			goto fail;
		}
		e->essiv = keyed_ctx("AES-256-ECB", salt, 1);
		explicit_bzero(salt, sizeof(salt));
		if (!e->essiv) {
			r = bc_error(-EINVAL, "sector engine: ESSIV cipher setup failed");
			goto fail;
		}
	}
	*out = e;
	return 0;
fail:
	bc_sector_engine_free(e);
	return r;
}

static EVP_CIPHER_CTX *dup_ctx(const EVP_CIPHER_CTX *src)
{
	EVP_CIPHER_CTX *c;

	if (!src)
		return NULL;
	c = EVP_CIPHER_CTX_new();
	if (c && !EVP_CIPHER_CTX_copy(c, src)) {
		EVP_CIPHER_CTX_free(c);
		c = NULL;
	}
	return c;
}

int bc_sector_engine_dup(const struct bc_sector_engine *src, struct bc_sector_engine **out)
{
	struct bc_sector_engine *e = calloc(1, sizeof(*e));

	*out = NULL;
	if (!e)
		return bc_error(-ENOMEM, "sector engine: out of memory");
	e->p = src->p;
	e->iv_shift = src->iv_shift;
	e->enc = dup_ctx(src->enc);
	e->dec = dup_ctx(src->dec);
	e->essiv = dup_ctx(src->essiv);
	if (!e->enc || !e->dec || (src->essiv && !e->essiv)) {
		bc_sector_engine_free(e);
		return bc_error(-ENOMEM, "sector engine: cannot copy cipher context");
	}
	*out = e;
	return 0;
}

static int make_iv(struct bc_sector_engine *e, uint64_t sector, uint8_t iv[IV_SIZE])
{
	uint64_t s = (sector << e->iv_shift) + e->p.iv_offset;
	int outl;

	if (e->p.iv_large_sectors)
		s >>= e->iv_shift;
	if (e->p.spec.iv == BC_IV_PLAIN)
		s &= 0xffffffffu;
	memset(iv, 0, IV_SIZE);
	for (int i = 0; i < 8; i++)
		iv[i] = (uint8_t)(s >> (8 * i));
	if (e->p.spec.iv == BC_IV_ESSIV &&
	    !EVP_CipherUpdate(e->essiv, iv, &outl, iv, IV_SIZE))
		return -EIO;
	return 0;
}

static int crypt_sectors(struct bc_sector_engine *e, EVP_CIPHER_CTX *ctx, uint8_t *dst,
			 const uint8_t *src, uint64_t sector, size_t count)
{
	const int ss = (int)e->p.sector_size;
	uint8_t iv[IV_SIZE];
	int outl, r = 0;

	for (size_t i = 0; i < count; i++, sector++, src += ss, dst += ss) {
		if (make_iv(e, sector, iv) < 0 ||
		    !EVP_CipherInit_ex2(ctx, NULL, NULL, iv, -1, NULL) ||
		    !EVP_CipherUpdate(ctx, dst, &outl, src, ss) || outl != ss) {
			r = bc_error(-EIO, "sector engine: cipher failure at sector %llu",
				     (unsigned long long)sector);
			break;
		}
	}
	explicit_bzero(iv, sizeof(iv));
	return r;
}

int bc_sector_encrypt(struct bc_sector_engine *e, uint8_t *dst, const uint8_t *src,
		      uint64_t sector, size_t count)
{
	return crypt_sectors(e, e->enc, dst, src, sector, count);
}

int bc_sector_decrypt(struct bc_sector_engine *e, uint8_t *dst, const uint8_t *src,
		      uint64_t sector, size_t count)
{
	return crypt_sectors(e, e->dec, dst, src, sector, count);
}
