/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The sector engine: byte-identical to Linux dm-crypt.
 *
 * The data area is split into sectors of sector_size bytes.  Sector i gets
 * an IV derived from s = i * (sector_size / 512) + iv_offset, or from
 * s >> log2(sector_size / 512) when iv_large_sectors is set (only plain
 * volumes opened with --iv-large-sectors; LUKS1 and LUKS2 always count
 * 512-byte units, see bci_luks_layout()):
 *   plain    s mod 2^32, little endian, zero padded to the block size
 *   plain64  s, 64-bit little endian, zero padded
 *   essiv    E_salt(plain64 IV) with salt = H(volume key), AES-ECB
 *   lofi     E_key(8 zero bytes || s as 64-bit little endian), AES-ECB under
 *            the volume key itself (illumos lofi; 512-byte sectors only)
 * XTS treats each sector as one data unit whose tweak is the IV; CBC chains
 * within the sector only.
 *
 * Cipher contexts are keyed once and re-initialised per sector with only a
 * new IV, so the hot path does no key schedule and no allocation.
 *
 * Why the provider path: with OpenSSL 3.0, EVP_CipherInit_ex2() asks the
 * provider for the IV length through an OSSL_PARAM lookup on every call
 * (string compares), which cost ~185 ns per sector here: 512-byte XTS
 * sectors ran at 0.38x of the cipher's own speed, 4096-byte ones at 0.80x
 * (bench-engine-speed).  So when the cipher comes from OpenSSL's "default"
 * provider we look its implementation up once through the public provider
 * API (OSSL_PROVIDER_get0_dispatch, OSSL_OP_CIPHER) and call its init and
 * update functions directly; those are what EVP itself calls.  Anything
 * unexpected (another provider, a missing function, a failed call at set-up)
 * keeps the plain EVP path, and tests compare both paths byte for byte.
 *
 * XTS goes one step further where the CPU has vector AES: xts_vaes.c takes
 * a whole run of sectors per call, two AES blocks per instruction (again
 * only in place of the default provider, and compared byte for byte).
 *
 * Threading: an engine is used by one thread at a time; callers keep a pool
 * of engines made with bci_sector_engine_dup().
 */
#include <endian.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <openssl/core_dispatch.h>
#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/params.h>
#include <openssl/provider.h>

#include "core/error.h"
#include "engine/sector_engine.h"
#include "engine/xts_vaes.h"

#define IV_SIZE 16

/* A cipher implementation as the provider exposes it. */
struct prov_cipher {
	EVP_CIPHER *cipher;  /* holds a reference on the provider */
	void *provctx;
	OSSL_FUNC_cipher_newctx_fn *newctx;
	OSSL_FUNC_cipher_freectx_fn *freectx;
	OSSL_FUNC_cipher_dupctx_fn *dupctx;
	OSSL_FUNC_cipher_encrypt_init_fn *einit;
	OSSL_FUNC_cipher_decrypt_init_fn *dinit;
	OSSL_FUNC_cipher_update_fn *update;
	OSSL_FUNC_cipher_set_ctx_params_fn *set_ctx_params;
};

struct bci_sector_engine {
	struct bci_sector_params p;
	unsigned iv_shift;          /* log2(sector_size / 512) */
	EVP_CIPHER_CTX *enc, *dec;  /* keyed with the volume key (EVP path only) */
	EVP_CIPHER_CTX *essiv;      /* IV cipher, ECB: keyed with H(volume key) for
				     * essiv, with the volume key for lofi */
	struct prov_cipher prov;    /* prov.cipher NULL: EVP path only */
	void *penc, *pdec;          /* provider contexts, keyed like enc/dec */
	struct bci_xts_vaes *vaes;   /* XTS keys for xts_vaes.c, or NULL */
};

static const char *evp_name(const struct bci_cipher_spec *s)
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

static bool name_listed(const char *names, const char *name)
{
	size_t n = strlen(name);

	for (const char *p = names; p && *p; p = strchr(p, ':') ? strchr(p, ':') + 1 : NULL)
		if (strncasecmp(p, name, n) == 0 && (p[n] == ':' || p[n] == '\0'))
			return true;
	return false;
}

static void prov_cipher_release(struct prov_cipher *pc)
{
	EVP_CIPHER_free(pc->cipher);
	memset(pc, 0, sizeof(*pc));
}

/* Find NAME's implementation in OpenSSL's default provider.  0 or -ENOENT. */
static int prov_cipher_find(const char *name, struct prov_cipher *pc)
{
	OSSL_FUNC_provider_query_operation_fn *query = NULL;
	const OSSL_ALGORITHM *alg = NULL;
	const OSSL_DISPATCH *d;
	const OSSL_PROVIDER *prov;
	int no_store = 0;

	memset(pc, 0, sizeof(*pc));
	pc->cipher = EVP_CIPHER_fetch(NULL, name, NULL);
	prov = pc->cipher ? EVP_CIPHER_get0_provider(pc->cipher) : NULL;
	if (!prov || strcmp(OSSL_PROVIDER_get0_name(prov), "default") != 0)
		goto none;
	pc->provctx = OSSL_PROVIDER_get0_provider_ctx(prov);
	for (d = OSSL_PROVIDER_get0_dispatch(prov); d && d->function_id; d++)
		if (d->function_id == OSSL_FUNC_PROVIDER_QUERY_OPERATION)
			query = OSSL_FUNC_provider_query_operation(d);
	if (query)
		alg = query(pc->provctx, OSSL_OP_CIPHER, &no_store);
	while (alg && alg->algorithm_names && !name_listed(alg->algorithm_names, name))
		alg++;
	if (!alg || !alg->algorithm_names)
		goto none;
	for (d = alg->implementation; d->function_id; d++) {
		switch (d->function_id) {
		case OSSL_FUNC_CIPHER_NEWCTX: pc->newctx = OSSL_FUNC_cipher_newctx(d); break;
		case OSSL_FUNC_CIPHER_FREECTX: pc->freectx = OSSL_FUNC_cipher_freectx(d); break;
		case OSSL_FUNC_CIPHER_DUPCTX: pc->dupctx = OSSL_FUNC_cipher_dupctx(d); break;
		case OSSL_FUNC_CIPHER_ENCRYPT_INIT: pc->einit = OSSL_FUNC_cipher_encrypt_init(d); break;
		case OSSL_FUNC_CIPHER_DECRYPT_INIT: pc->dinit = OSSL_FUNC_cipher_decrypt_init(d); break;
		case OSSL_FUNC_CIPHER_UPDATE: pc->update = OSSL_FUNC_cipher_update(d); break;
		case OSSL_FUNC_CIPHER_SET_CTX_PARAMS:
			pc->set_ctx_params = OSSL_FUNC_cipher_set_ctx_params(d);
			break;
		}
	}
	if (pc->newctx && pc->freectx && pc->dupctx && pc->einit && pc->dinit && pc->update &&
	    pc->set_ctx_params)
		return 0;
none:
	prov_cipher_release(pc);
	return -ENOENT;
}

/* A provider context keyed with KEY for one direction, padding off. */
static void *prov_keyed_ctx(const struct prov_cipher *pc, const uint8_t *key, size_t key_len,
			    int enc)
{
	unsigned int no_padding = 0;
	OSSL_PARAM params[] = {
		OSSL_PARAM_construct_uint(OSSL_CIPHER_PARAM_PADDING, &no_padding),
		OSSL_PARAM_construct_end(),
	};
	void *ctx = pc->newctx(pc->provctx);

	if (ctx && (!(enc ? pc->einit : pc->dinit)(ctx, key, key_len, NULL, 0, NULL) ||
		    !pc->set_ctx_params(ctx, params))) {
		pc->freectx(ctx);
		ctx = NULL;
	}
	return ctx;
}

/* Drop the provider path (the EVP contexts stay). */
static void prov_path_free(struct bci_sector_engine *e)
{
	if (e->prov.cipher) {
		if (e->penc)
			e->prov.freectx(e->penc);  /* the provider cleanses key schedules */
		if (e->pdec)
			e->prov.freectx(e->pdec);
	}
	e->penc = e->pdec = NULL;
	prov_cipher_release(&e->prov);
}

void bci_sector_engine_free(struct bci_sector_engine *e)
{
	if (!e)
		return;
	prov_path_free(e);
	bci_xts_vaes_free(e->vaes);
	EVP_CIPHER_CTX_free(e->enc);  /* OpenSSL cleanses key schedules */
	EVP_CIPHER_CTX_free(e->dec);
	EVP_CIPHER_CTX_free(e->essiv);
	free(e);
}

static const char *ecb_name(uint32_t key_bytes)
{
	return key_bytes == 16 ? "AES-128-ECB" : key_bytes == 24 ? "AES-192-ECB" : "AES-256-ECB";
}

static int check_params(const struct bci_sector_params *p, unsigned *shift)
{
	uint32_t ss = p->sector_size;

	if (ss < 512 || ss > 4096 || (ss & (ss - 1)))
		return bci_error(-EINVAL, "sector size %u: must be 512, 1024, 2048 or 4096", ss);
	if (p->spec.iv == BC_IV_LOFI && (ss != 512 || p->iv_large_sectors))
		return bci_error(-EINVAL, "cipher %s: lofi encrypts 512-byte sectors only, not %u",
				p->spec.name, ss);
	*shift = (unsigned)__builtin_ctz(ss / 512);
	if (p->iv_large_sectors && (p->iv_offset & ((1u << *shift) - 1)))
		return bci_error(-EINVAL, "IV offset %llu: must be a multiple of the sector size with large IVs",
				(unsigned long long)p->iv_offset);
	return 0;
}

int bci_sector_engine_new(const struct bci_sector_params *p, const uint8_t *key,
			 struct bci_sector_engine **out)
{
	return bci_sector_engine_new_ex(p, key, 0, out);
}

int bci_sector_engine_new_ex(const struct bci_sector_params *p, const uint8_t *key,
			    unsigned flags, struct bci_sector_engine **out)
{
	struct bci_sector_engine *e;
	unsigned shift = 0;
	int r;

	*out = NULL;
	r = check_params(p, &shift);
	if (r < 0)
		return r;
	e = calloc(1, sizeof(*e));
	if (!e)
		return bci_error(-ENOMEM, "sector engine: out of memory");
	e->p = *p;
	e->iv_shift = shift;
	e->enc = keyed_ctx(evp_name(&p->spec), key, 1);
	e->dec = keyed_ctx(evp_name(&p->spec), key, 0);
	if (!e->enc || !e->dec) {
		/* OpenSSL 3 refuses XTS keys whose two halves are equal. */
		r = bci_error(-EINVAL, "sector engine: OpenSSL rejected the %s key", p->spec.name);
		goto fail;
	}
	if (p->spec.iv == BC_IV_ESSIV) {
		uint8_t salt[EVP_MAX_MD_SIZE];
		unsigned salt_len = 0;

		if (!EVP_Digest(key, p->spec.key_bytes, salt, &salt_len, EVP_sha256(), NULL)) {
			r = bci_error(-EINVAL, "sector engine: ESSIV hash failed");
			goto fail;
		}
		e->essiv = keyed_ctx("AES-256-ECB", salt, 1);
		explicit_bzero(salt, sizeof(salt));
		if (!e->essiv) {
			r = bci_error(-EINVAL, "sector engine: ESSIV cipher setup failed");
			goto fail;
		}
	}
	if (p->spec.iv == BC_IV_LOFI) {
		e->essiv = keyed_ctx(ecb_name(p->spec.key_bytes), key, 1);
		if (!e->essiv) {
			r = bci_error(-EINVAL, "sector engine: lofi IV cipher setup failed");
			goto fail;
		}
	}
	if (!(flags & BC_ENGINE_EVP_ONLY) && prov_cipher_find(evp_name(&p->spec), &e->prov) == 0) {
		e->penc = prov_keyed_ctx(&e->prov, key, p->spec.key_bytes, 1);
		e->pdec = prov_keyed_ctx(&e->prov, key, p->spec.key_bytes, 0);
		if (!e->penc || !e->pdec) {
			prov_path_free(e);
		} else {
			/* One keyed pair per engine: the EVP one only checked the key. */
			EVP_CIPHER_CTX_free(e->enc);
			EVP_CIPHER_CTX_free(e->dec);
			e->enc = e->dec = NULL;
		}
	}
	/* Vector AES for XTS, in place of the default provider only. */
	if (p->spec.chain == BC_MODE_XTS && e->prov.cipher && !(flags & BC_ENGINE_NO_VAES) &&
	    bci_xts_vaes_new(key, p->spec.key_bytes, &e->vaes) == 0)
		prov_path_free(e);
	*out = e;
	return 0;
fail:
	bci_sector_engine_free(e);
	return r;
}

const char *bci_sector_engine_path(const struct bci_sector_engine *e)
{
	return e->vaes ? "vaes" : e->prov.cipher ? "direct" : "evp";
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

int bci_sector_engine_dup(const struct bci_sector_engine *src, struct bci_sector_engine **out)
{
	struct bci_sector_engine *e = calloc(1, sizeof(*e));

	*out = NULL;
	if (!e)
		return bci_error(-ENOMEM, "sector engine: out of memory");
	e->p = src->p;
	e->iv_shift = src->iv_shift;
	if (src->vaes) {
		if (bci_xts_vaes_dup(src->vaes, &e->vaes) < 0)
			e->vaes = NULL;
	} else if (src->prov.cipher && EVP_CIPHER_up_ref(src->prov.cipher)) {
		e->prov = src->prov;
		e->penc = e->prov.dupctx(src->penc);
		e->pdec = e->prov.dupctx(src->pdec);
	} else {
		e->enc = dup_ctx(src->enc);
		e->dec = dup_ctx(src->dec);
	}
	e->essiv = dup_ctx(src->essiv);
	if (!(src->vaes ? e->vaes != NULL : e->prov.cipher ? e->penc && e->pdec : e->enc && e->dec) ||
	    (src->essiv && !e->essiv)) {
		bci_sector_engine_free(e);
		return bci_error(-ENOMEM, "sector engine: cannot copy cipher context");
	}
	*out = e;
	return 0;
}

/* The plain IV of SECTOR (ESSIV encrypts it afterwards): the sector
 * number in 512-byte units (or sector-size units with iv_large_sectors)
 * plus the IV offset, as a 64-bit little-endian number (plain: 32 bits),
 * then zeros. */
static inline void plain_iv(const struct bci_sector_engine *e, uint64_t sector, uint8_t iv[IV_SIZE])
{
	uint64_t s = (sector << e->iv_shift) + e->p.iv_offset;
	const uint64_t zero = 0;

	if (e->p.iv_large_sectors)
		s >>= e->iv_shift;
	if (e->p.spec.iv == BC_IV_PLAIN)
		s &= 0xffffffffu;
	s = htole64(s);
	memcpy(iv, &s, 8);
	memcpy(iv + 8, &zero, 8);
}

/* lofi's IV input: 8 zero bytes, then the sector number (512-byte units,
 * plus the IV offset) as 64-bit little endian; encrypted afterwards. */
static inline void lofi_iv(const struct bci_sector_engine *e, uint64_t sector, uint8_t iv[IV_SIZE])
{
	const uint64_t s = htole64(sector + e->p.iv_offset);
	const uint64_t zero = 0;

	memcpy(iv, &zero, 8);
	memcpy(iv + 8, &s, 8);
}

static int make_iv(struct bci_sector_engine *e, uint64_t sector, uint8_t iv[IV_SIZE])
{
	int outl;

	if (e->p.spec.iv == BC_IV_LOFI)
		lofi_iv(e, sector, iv);
	else
		plain_iv(e, sector, iv);
	if ((e->p.spec.iv == BC_IV_ESSIV || e->p.spec.iv == BC_IV_LOFI) &&
	    !EVP_CipherUpdate(e->essiv, iv, &outl, iv, IV_SIZE))
		return -EIO;
	return 0;
}

/* One sector through the provider's own functions (see the top comment). */
static bool crypt_one_direct(struct bci_sector_engine *e, int enc, uint8_t *dst,
			     const uint8_t *src, const uint8_t iv[IV_SIZE])
{
	const size_t ss = e->p.sector_size;
	void *ctx = enc ? e->penc : e->pdec;
	size_t outl = 0;

	return (enc ? e->prov.einit : e->prov.dinit)(ctx, NULL, 0, iv, IV_SIZE, NULL) &&
	       e->prov.update(ctx, dst, &outl, ss, src, ss) && outl == ss;
}

static bool crypt_one_evp(struct bci_sector_engine *e, int enc, uint8_t *dst, const uint8_t *src,
			  const uint8_t iv[IV_SIZE])
{
	EVP_CIPHER_CTX *ctx = enc ? e->enc : e->dec;
	const int ss = (int)e->p.sector_size;
	int outl = 0;

	return EVP_CipherInit_ex2(ctx, NULL, NULL, iv, -1, NULL) &&
	       EVP_CipherUpdate(ctx, dst, &outl, src, ss) && outl == ss;
}

static int cipher_failure(uint64_t sector)
{
	return bci_error(-EIO, "sector engine: cipher failure at sector %llu", (unsigned long long)sector);
}

/* XTS through xts_vaes.c: IVs for a run of sectors, then one call. */
#define IV_BATCH 64
static int crypt_sectors_vaes(struct bci_sector_engine *e, int enc, uint8_t *dst,
			      const uint8_t *src, uint64_t sector, size_t count)
{
	const size_t ss = e->p.sector_size;
	uint8_t ivs[IV_BATCH][IV_SIZE];
	size_t used = 0;  /* IV slots written, to wipe (ESSIV IVs are key-derived) */
	int r = 0;

	while (count) {
		size_t n = count < IV_BATCH ? count : IV_BATCH;

		used = n > used ? n : used;
		/* Without ESSIV the IVs are plain numbers, built inline: a
		 * make_iv() call per sector was ~12% of the time with 512-byte
		 * sectors. */
		if (e->p.spec.iv == BC_IV_ESSIV) {
			for (size_t i = 0; i < n && r == 0; i++)
				if (make_iv(e, sector + i, ivs[i]) < 0)
					r = cipher_failure(sector + i);
		} else {
			for (size_t i = 0; i < n; i++)
				plain_iv(e, sector + i, ivs[i]);
		}
		if (r < 0)
			break;
		bci_xts_vaes_crypt(e->vaes, enc, dst, src, ss, (const uint8_t (*)[IV_SIZE])ivs, n);
		sector += n;
		count -= n;
		src += n * ss;
		dst += n * ss;
	}
	explicit_bzero(ivs, used * IV_SIZE);
	return r;
}

static int crypt_sectors(struct bci_sector_engine *e, int enc, uint8_t *dst, const uint8_t *src,
			 uint64_t sector, size_t count)
{
	const size_t ss = e->p.sector_size;
	const bool direct = e->prov.cipher != NULL;
	uint8_t iv[IV_SIZE];
	int r = 0;

	if (e->vaes)
		return crypt_sectors_vaes(e, enc, dst, src, sector, count);
	for (size_t i = 0; i < count; i++, sector++, src += ss, dst += ss) {
		if (make_iv(e, sector, iv) < 0 ||
		    !(direct ? crypt_one_direct : crypt_one_evp)(e, enc, dst, src, iv)) {
			r = cipher_failure(sector);
			break;
		}
	}
	explicit_bzero(iv, sizeof(iv));
	return r;
}

int bci_sector_encrypt(struct bci_sector_engine *e, uint8_t *dst, const uint8_t *src,
		      uint64_t sector, size_t count)
{
	return crypt_sectors(e, 1, dst, src, sector, count);
}

int bci_sector_decrypt(struct bci_sector_engine *e, uint8_t *dst, const uint8_t *src,
		      uint64_t sector, size_t count)
{
	return crypt_sectors(e, 0, dst, src, sector, count);
}
