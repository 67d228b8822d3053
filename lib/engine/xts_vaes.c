/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * AES-XTS with vector AES instructions (VAES on 256-bit registers).
 *
 * Why this exists: OpenSSL 3.0 (Debian 12) runs XTS on 128-bit AES-NI and
 * takes one data unit per call.  On CPUs with VAES the same rounds run on
 * two blocks per instruction, and handling a run of sectors in one call
 * removes the per-sector set-up that makes 512-byte sectors ~30% slower
 * than 4096-byte ones (bench-engine-speed shows both paths side by side).
 * The sector engine uses this only for the XTS ciphers it would otherwise
 * hand to OpenSSL's default provider, never in place of another provider
 * (a FIPS one, say); tests check it byte for byte against OpenSSL and the
 * IEEE 1619 vectors.  AES instructions run in constant time, with no
 * tables in memory.
 *
 * XTS (IEEE 1619) for a data unit with tweak input IV:
 *   T_0 = AES_K2(IV),  T_{j+1} = T_j * x  in GF(2^128) mod x^128+x^7+x^2+x+1,
 *   C_j = AES_K1(P_j ^ T_j) ^ T_j
 * with byte 0 the least significant.  Units here are whole multiples of
 * 128 bytes (sectors of 512..4096 bytes), so there is never a partial block
 * and no ciphertext stealing.
 *
 * Layout: one step takes 8 blocks in four registers, tweaks [T_j, T_j+1],
 * [T_j+2, T_j+3], ...  The next step's tweaks are these times x^8: a one
 * byte shift left within each 128-bit lane, plus the byte shifted out times
 * 0x87 (a carry-less product of at most 15 bits: nothing left to reduce).
 *
 * Key hygiene: round keys live in secure memory.  Copies in registers and
 * on the stack are wiped at the end of every public call: vzeroall for the
 * vector registers (this code never touches ymm16-31, and it copies keys
 * with its own loop, not memcpy, which may use them), then a scrub of the
 * stack area the work ran in (at -O0, as in sanitizer builds, the
 * compiler spills every register variable there).  Both matter: the
 * dynamic linker's lazy binding saves all vector registers on the stack
 * (XSAVEC), and the hygiene tests found round keys in a core file that way.
 *
 * Threading: keys are read-only after bci_xts_vaes_new(); calls share them.
 */
#include <assert.h>
#include <cpuid.h>
#include <errno.h>
#include <immintrin.h>
#include <string.h>

#include "core/secret.h"
#include "engine/xts_vaes.h"

#define TARGET __attribute__((target("aes,pclmul,avx,avx2,vaes,vpclmulqdq")))
#define INLINE static inline __attribute__((always_inline)) TARGET
/* Register arrays below must be fully unrolled to stay in registers (when
 * optimising; see "Key hygiene" above). */
#define UNROLL _Pragma("GCC unroll 16")

#define MAX_ROUNDS 14
#define BLOCK 16
#define STEP 128           /* bytes per loop step: 8 blocks */
#define TWEAK_BATCH 8      /* units whose first tweaks are computed together */
/* Stack to scrub after a call: more than the frames below it use (a few
 * hundred bytes when optimising; at -O0 every variable has a stack slot). */
#ifdef __OPTIMIZE__
#define SCRUB_BYTES 2048
#else
#define SCRUB_BYTES 16384
#endif

struct bci_xts_vaes {
	__m256i enc[MAX_ROUNDS + 1];   /* K1 round keys, the same in both lanes */
	__m256i dec[MAX_ROUNDS + 1];   /* K1 decryption round keys */
	__m256i tweak[MAX_ROUNDS + 1]; /* K2 round keys */
	unsigned rounds;               /* 10 (AES-128) or 14 (AES-256) */
	void *alloc;                   /* what bci_secure_alloc returned */
};

/* Secure memory for one key set, aligned for the 32-byte registers. */
static struct bci_xts_vaes *keys_alloc(void)
{
	void *p = bci_secure_alloc(sizeof(struct bci_xts_vaes) + 32);
	struct bci_xts_vaes *k;

	if (!p)
		return NULL;
	k = (struct bci_xts_vaes *)(((uintptr_t)p + 31) & ~(uintptr_t)31);
	k->alloc = p;
	return k;
}

bool bci_xts_vaes_usable(void)
{
	unsigned a, b, c, d, xcr0_lo, xcr0_hi;

	if (!__get_cpuid(1, &a, &b, &c, &d))
		return false;
	if (!(c & bit_AES) || !(c & bit_PCLMUL) || !(c & bit_AVX) || !(c & bit_OSXSAVE))
		return false;
	/* The OS must save the XMM and YMM state across context switches. */
	__asm__ volatile("xgetbv" : "=a"(xcr0_lo), "=d"(xcr0_hi) : "c"(0));
	if ((xcr0_lo & 6) != 6 || __get_cpuid_max(0, NULL) < 7)
		return false;
	__cpuid_count(7, 0, a, b, c, d);
	return (b & bit_AVX2) && (c & bit_VAES) && (c & bit_VPCLMULQDQ);
}

/* ------------------------------------------------------------ key schedule */

INLINE __m128i expand_step(__m128i k, __m128i t)
{
	k = _mm_xor_si128(k, _mm_slli_si128(k, 4));
	k = _mm_xor_si128(k, _mm_slli_si128(k, 4));
	k = _mm_xor_si128(k, _mm_slli_si128(k, 4));
	return _mm_xor_si128(k, t);
}

/* FIPS 197 key expansion through AESKEYGENASSIST (the round constant must
 * be an immediate, hence the macros). */
#define KEYGEN(k, rcon, sel) _mm_shuffle_epi32(_mm_aeskeygenassist_si128((k), (rcon)), (sel))

static void TARGET expand_128(const uint8_t *key, __m128i rk[11])
{
	rk[0] = _mm_loadu_si128((const __m128i *)key);
#define R128(i, rcon) rk[i] = expand_step(rk[(i) - 1], KEYGEN(rk[(i) - 1], rcon, 0xff))
	R128(1, 0x01); R128(2, 0x02); R128(3, 0x04); R128(4, 0x08); R128(5, 0x10);
	R128(6, 0x20); R128(7, 0x40); R128(8, 0x80); R128(9, 0x1b); R128(10, 0x36);
#undef R128
}

static void TARGET expand_256(const uint8_t *key, __m128i rk[15])
{
	rk[0] = _mm_loadu_si128((const __m128i *)key);
	rk[1] = _mm_loadu_si128((const __m128i *)(key + 16));
	/* Even keys: RotWord+SubWord+rcon of the previous key's last word;
	 * odd keys: SubWord only. */
#define R256(i, rcon)                                                              \
	do {                                                                       \
		rk[i] = expand_step(rk[(i) - 2], KEYGEN(rk[(i) - 1], rcon, 0xff)); \
		if ((i) + 1 < 15)                                                  \
			rk[(i) + 1] = expand_step(rk[(i) - 1], KEYGEN(rk[i], 0, 0xaa)); \
	} while (0)
	R256(2, 0x01); R256(4, 0x02); R256(6, 0x04); R256(8, 0x08);
	R256(10, 0x10); R256(12, 0x20); R256(14, 0x40);
#undef R256
}

/* Expand one AES key of LEN bytes; returns the number of rounds. */
static unsigned TARGET expand(const uint8_t *key, size_t len, __m128i rk[MAX_ROUNDS + 1])
{
	if (len == 16) {
		expand_128(key, rk);
		return 10;
	}
	expand_256(key, rk);
	return 14;
}

static void TARGET broadcast(__m256i *dst, const __m128i *src, unsigned n)
{
	for (unsigned i = 0; i < n; i++)
		dst[i] = _mm256_broadcastsi128_si256(src[i]);
}

static void __attribute__((noinline)) TARGET keys_init(struct bci_xts_vaes *k, const uint8_t *key,
							size_t key_bytes)
{
	__m128i rk[MAX_ROUNDS + 1], dk[MAX_ROUNDS + 1];
	const size_t half = key_bytes / 2;
	unsigned nr = expand(key, half, rk);

	k->rounds = nr;
	broadcast(k->enc, rk, nr + 1);
	/* Equivalent inverse cipher: reversed keys, InvMixColumns inside. */
	dk[0] = rk[nr];
	for (unsigned i = 1; i < nr; i++)
		dk[i] = _mm_aesimc_si128(rk[nr - i]);
	dk[nr] = rk[0];
	broadcast(k->dec, dk, nr + 1);
	expand(key + half, half, rk);
	broadcast(k->tweak, rk, nr + 1);
	_mm256_zeroall();  /* before any call: see "Key hygiene" */
	explicit_bzero(rk, sizeof(rk));
	explicit_bzero(dk, sizeof(dk));
}

/* Overwrite the stack just below the caller's frame, where the function it
 * called last ran (see "Key hygiene"). */
static void __attribute__((noinline)) scrub_stack(void)
{
	uint8_t area[SCRUB_BYTES];

	explicit_bzero(area, sizeof(area));
	__asm__ volatile("" : : "r"(area) : "memory");
}

int bci_xts_vaes_new(const uint8_t *key, size_t key_bytes, struct bci_xts_vaes **out)
{
	struct bci_xts_vaes *k;

	*out = NULL;
	if ((key_bytes != 32 && key_bytes != 64) || !bci_xts_vaes_usable())
		return -ENOTSUP;
	k = keys_alloc();
	if (!k)
		return -ENOMEM;
	keys_init(k, key, key_bytes);
	scrub_stack();
	*out = k;
	return 0;
}

void bci_xts_vaes_free(struct bci_xts_vaes *k)
{
	if (k)
		bci_secure_free(k->alloc);  /* wipes */
}

/* ------------------------------------------------------------------- XTS */

/* Both lanes times x^K, 1 <= K <= 8: a K-bit shift of each 128-bit lane
 * (carrying from the low into the high half), plus the K bits shifted out
 * times 0x87 (at most 15 bits, nothing left to reduce). */
INLINE __m256i mul_xk(__m256i t, int k)
{
	const __m256i poly = _mm256_set_epi64x(0, 0x87, 0, 0x87);
	__m256i out = _mm256_srli_epi64(t, 64 - k);  /* top K bits of each half */

	t = _mm256_xor_si256(_mm256_slli_epi64(t, k), _mm256_bslli_epi128(out, 8));
	return _mm256_xor_si256(t, _mm256_clmulepi64_epi128(_mm256_bsrli_epi128(out, 8), poly, 0x00));
}

/* Both lanes times x^8 (see the top comment): mul_xk(t, 8) in whole bytes,
 * half the instructions, for the inner loop. */
INLINE __m256i mul_x8(__m256i t)
{
	const __m256i poly = _mm256_set_epi64x(0, 0x87, 0, 0x87);

	return _mm256_xor_si256(_mm256_bslli_epi128(t, 1),
				_mm256_clmulepi64_epi128(_mm256_bsrli_epi128(t, 15), poly, 0x00));
}

/* Four registers (8 blocks) through NR rounds with keys RK. */
INLINE void rounds4(const __m256i *rk, unsigned nr, int enc, __m256i x[4])
{
	UNROLL for (int i = 0; i < 4; i++)
		x[i] = _mm256_xor_si256(x[i], rk[0]);
	UNROLL for (unsigned r = 1; r < nr; r++)
		UNROLL for (int i = 0; i < 4; i++)
			x[i] = enc ? _mm256_aesenc_epi128(x[i], rk[r]) : _mm256_aesdec_epi128(x[i], rk[r]);
	UNROLL for (int i = 0; i < 4; i++)
		x[i] = enc ? _mm256_aesenclast_epi128(x[i], rk[nr]) : _mm256_aesdeclast_epi128(x[i], rk[nr]);
}

/* One data unit whose first tweak is T0. */
INLINE void crypt_unit(const __m256i *rk, unsigned nr, int enc, uint8_t *dst, const uint8_t *src,
		       size_t unit, __m128i t0)
{
	__m256i tw[4], x[4];

	/* [T0, T1] (T0 in both lanes, the high one times x), then the other
	 * pairs from it in parallel. */
	tw[0] = _mm256_broadcastsi128_si256(t0);
	tw[0] = _mm256_blend_epi32(tw[0], mul_xk(tw[0], 1), 0xf0);
	tw[1] = mul_xk(tw[0], 2);
	tw[2] = mul_xk(tw[0], 4);
	tw[3] = mul_xk(tw[0], 6);
	for (size_t off = 0; off < unit; off += STEP) {
		UNROLL for (int i = 0; i < 4; i++)
			x[i] = _mm256_xor_si256(_mm256_loadu_si256((const __m256i *)(src + off + 32 * i)),
						tw[i]);
		rounds4(rk, nr, enc, x);
		UNROLL for (int i = 0; i < 4; i++) {
			_mm256_storeu_si256((__m256i *)(dst + off + 32 * i), _mm256_xor_si256(x[i], tw[i]));
			tw[i] = mul_x8(tw[i]);
		}
	}
}

/* First tweaks of up to TWEAK_BATCH units: AES_K2(IV), eight at a time. */
INLINE void first_tweaks(const struct bci_xts_vaes *k, const uint8_t (*ivs)[16], size_t n,
			 __m128i out[TWEAK_BATCH])
{
	uint8_t in[TWEAK_BATCH][BLOCK] __attribute__((aligned(32))) = { { 0 } };
	__m256i x[4];

	memcpy(in, ivs, n * BLOCK);
	UNROLL for (int i = 0; i < 4; i++)
		x[i] = _mm256_load_si256((const __m256i *)in[2 * i]);
	if (k->rounds == 10)
		rounds4(k->tweak, 10, 1, x);
	else
		rounds4(k->tweak, 14, 1, x);
	UNROLL for (int i = 0; i < 4; i++) {
		out[2 * i] = _mm256_castsi256_si128(x[i]);
		out[2 * i + 1] = _mm256_extracti128_si256(x[i], 1);
	}
}

static void __attribute__((noinline)) TARGET crypt_units(const struct bci_xts_vaes *k, int enc,
							  uint8_t *dst, const uint8_t *src,
							  size_t unit, const uint8_t (*ivs)[16],
							  size_t count)
{
	const __m256i *rk = enc ? k->enc : k->dec;
	__m128i t0[TWEAK_BATCH];

	for (size_t done = 0; done < count;) {
		size_t n = count - done < TWEAK_BATCH ? count - done : TWEAK_BATCH;

		first_tweaks(k, ivs + done, n, t0);
		for (size_t i = 0; i < n; i++, done++, src += unit, dst += unit) {
			/* Four variants, so the round count and direction are
			 * constants inside the loop. */
			if (k->rounds == 14)
				enc ? crypt_unit(rk, 14, 1, dst, src, unit, t0[i])
				    : crypt_unit(rk, 14, 0, dst, src, unit, t0[i]);
			else
				enc ? crypt_unit(rk, 10, 1, dst, src, unit, t0[i])
				    : crypt_unit(rk, 10, 0, dst, src, unit, t0[i]);
		}
	}
	_mm256_zeroall();  /* before any call: see "Key hygiene" */
}

void bci_xts_vaes_crypt(const struct bci_xts_vaes *k, int enc, uint8_t *dst, const uint8_t *src,
		       size_t unit, const uint8_t (*ivs)[16], size_t count)
{
	assert(unit % STEP == 0);
	crypt_units(k, enc, dst, src, unit, ivs, count);
	scrub_stack();
}

/* Our own copy loop: glibc's memcpy may go through ymm16-31, which
 * vzeroall leaves alone. */
static void __attribute__((noinline)) TARGET copy_keys(struct bci_xts_vaes *dst,
						       const struct bci_xts_vaes *src)
{
	for (unsigned i = 0; i <= MAX_ROUNDS; i++) {
		dst->enc[i] = src->enc[i];
		dst->dec[i] = src->dec[i];
		dst->tweak[i] = src->tweak[i];
		__asm__ volatile("" : : : "memory");  /* keeps it a loop, not memcpy */
	}
	dst->rounds = src->rounds;
	_mm256_zeroall();
}

int bci_xts_vaes_dup(const struct bci_xts_vaes *src, struct bci_xts_vaes **out)
{
	struct bci_xts_vaes *k = keys_alloc();

	*out = k;
	if (!k)
		return -ENOMEM;
	copy_keys(k, src);
	return 0;
}
