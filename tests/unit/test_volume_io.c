/* SPDX-License-Identifier: GPL-2.0-or-later */
/* The volume data API on a plain volume in a temporary file: unaligned
 * reads and writes against an in-memory model, concurrent partial-sector
 * writers on shared sectors (no lost updates), zeroes, discard, bounds,
 * and read-only refusal with the backing left untouched. */
#include <fcntl.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/evp.h>
#include <openssl/rand.h>

#include "blockcrypt.h"
#include "unit.h"

#define VOL_SIZE (8u << 20)
#define THREADS 8

static char path[256];
static uint8_t key[64];

static struct bc_volume *open_vol(const char *cipher, uint32_t ss, bool ro)
{
	struct bc_open_params p = { .type = BC_TYPE_PLAIN, .cipher = cipher, .sector_size = ss,
				    .offset = 8, .read_only = ro };
	struct bc_secret *k = NULL;
	struct bc_volume *v = NULL;

	CHECK_OK(bc_secret_from_bytes(key, sizeof(key), &k));
	CHECK_OK(bc_volume_open(path, &p, k, &v));
	bc_secret_free(k);
	return v;
}

static void file_hash(uint8_t out[32])
{
	int fd = open(path, O_RDONLY);
	EVP_MD_CTX *c = EVP_MD_CTX_new();
	uint8_t buf[65536];
	ssize_t n;
	unsigned len;

	EVP_DigestInit_ex(c, EVP_sha256(), NULL);
	while ((n = read(fd, buf, sizeof(buf))) > 0)
		EVP_DigestUpdate(c, buf, (size_t)n);
	EVP_DigestFinal_ex(c, out, &len);
	EVP_MD_CTX_free(c);
	close(fd);
}

static void model_test(const char *cipher, uint32_t ss)
{
	uint8_t *model = calloc(1, VOL_SIZE), *buf = malloc(VOL_SIZE);
	struct bc_volume *v = open_vol(cipher, ss, false);
	unsigned seed = 42;

	if (!v)
		return;
	CHECK(bc_volume_size(v) == VOL_SIZE);
	CHECK_OK(bc_volume_write_zeroes(v, VOL_SIZE, 0));
	for (int i = 0; i < 400; i++) {
		uint64_t off = (uint64_t)rand_r(&seed) % VOL_SIZE;
		size_t len = (size_t)rand_r(&seed) % (i % 10 == 0 ? 600000 : 9000) + 1;

		if (len > VOL_SIZE - off)
			len = VOL_SIZE - off;
		RAND_bytes(buf, (int)len);
		memcpy(model + off, buf, len);
		/* Every third write goes through the in-place (scratch) path. */
		if (i % 3 == 0)
			CHECK_OK(bc_volume_pwrite_inplace(v, buf, len, off));
		else
			CHECK_OK(bc_volume_pwrite(v, buf, len, off));
		if (i % 50 == 0) {
			uint64_t zoff = (uint64_t)rand_r(&seed) % (VOL_SIZE - 70000);

			CHECK_OK(bc_volume_write_zeroes(v, 70000, zoff));
			memset(model + zoff, 0, 70000);
		}
	}
	/* Read back with odd splits. */
	for (uint64_t off = 0; off < VOL_SIZE;) {
		size_t len = (size_t)rand_r(&seed) % 20000 + 1;

		if (len > VOL_SIZE - off)
			len = VOL_SIZE - off;
		CHECK_OK(bc_volume_pread(v, buf + off, len, off));
		off += len;
	}
	CHECK(memcmp(buf, model, VOL_SIZE) == 0);
	CHECK_OK(bc_volume_flush(v));
	bc_volume_close(v);

	/* Reopen: persisted. */
	v = open_vol(cipher, ss, true);
	if (v) {
		CHECK_OK(bc_volume_pread(v, buf, VOL_SIZE, 0));
		CHECK(memcmp(buf, model, VOL_SIZE) == 0);
		bc_volume_close(v);
	}
	free(model);
	free(buf);
	printf("# model test %s, %u-byte sectors: done\n", cipher, ss);
}

static void model_xts_512(void) { model_test("aes-xts-plain64", 512); }
static void model_xts_4096(void) { model_test("aes-xts-plain64", 4096); }
static void model_cbc_essiv_1024(void) { model_test("aes-cbc-essiv:sha256", 1024); }

struct writer {
	struct bc_volume *v;
	int id;
};

/* Thread ID owns every byte whose index % THREADS == ID in the first 64
 * KiB and writes them as 1..3-byte writes, so every write is a partial-
 * sector read-modify-write racing the other threads on the same sectors. */
static void *writer_main(void *arg)
{
	struct writer *w = arg;
	uint8_t val = (uint8_t)(0x10 + w->id);

	for (uint64_t off = (uint64_t)w->id; off < 65536; off += THREADS) {
		if (bc_volume_pwrite(w->v, &val, 1, off) < 0)
			return (void *)1;
	}
	return NULL;
}

static void concurrency_test(void)
{
	struct bc_volume *v = open_vol("aes-xts-plain64", 4096, false);
	pthread_t t[THREADS];
	struct writer w[THREADS];
	uint8_t *buf = malloc(65536);
	int bad = 0;

	if (!v)
		return;
	CHECK_OK(bc_volume_write_zeroes(v, 65536, 0));
	for (int i = 0; i < THREADS; i++) {
		w[i] = (struct writer){ v, i };
		pthread_create(&t[i], NULL, writer_main, &w[i]);
	}
	for (int i = 0; i < THREADS; i++) {
		void *res;

		pthread_join(t[i], &res);
		CHECK(res == NULL);
	}
	CHECK_OK(bc_volume_pread(v, buf, 65536, 0));
	for (int i = 0; i < 65536; i++)
		if (buf[i] != 0x10 + i % THREADS)
			bad++;
	CHECK(bad == 0);
	if (bad)
		fprintf(stderr, "concurrency: %d bytes lost\n", bad);
	bc_volume_close(v);
	free(buf);
}

static void bounds_and_ro_test(void)
{
	struct bc_volume *v = open_vol("aes-xts-plain64", 512, false);
	uint8_t buf[4096] = { 1 }, h1[32], h2[32];
	struct stat st1, st2;

	if (!v)
		return;
	CHECK(bc_volume_pread(v, buf, 2, VOL_SIZE - 1) == -EINVAL);
	CHECK(bc_volume_pwrite(v, buf, 2, VOL_SIZE - 1) == -ENOSPC);
	CHECK(bc_volume_pread(v, buf, 1, UINT64_MAX) == -EINVAL);
	CHECK(bc_volume_pwrite(v, buf, 4096, UINT64_MAX - 100) == -ENOSPC);
	CHECK_OK(bc_volume_pread(v, buf, 0, VOL_SIZE));
	CHECK_OK(bc_volume_pwrite(v, buf, 1, VOL_SIZE - 1));

	/* Discard punches whole sectors only. */
	CHECK_OK(bc_volume_pwrite(v, buf, sizeof(buf), 0)); /* allocate */
	CHECK_OK(bc_volume_flush(v));
	stat(path, &st1);
	CHECK_OK(bc_volume_discard(v, 1u << 20, 0));
	stat(path, &st2);
	CHECK(st2.st_blocks < st1.st_blocks);
	bc_volume_close(v);

	file_hash(h1);
	v = open_vol("aes-xts-plain64", 512, true);
	if (!v)
		return;
	CHECK(bc_volume_pwrite(v, buf, 10, 0) == -EROFS);
	CHECK(bc_volume_write_zeroes(v, 10, 0) == -EROFS);
	CHECK(bc_volume_discard(v, 4096, 0) == -EROFS);
	CHECK_OK(bc_volume_pread(v, buf, 10, 0));
	bc_volume_close(v);
	file_hash(h2);
	CHECK(memcmp(h1, h2, 32) == 0);
}

int main(void)
{
	const char *dir = getenv("BC_TEST_TMPDIR");
	int fd;

	snprintf(path, sizeof(path), "%s/unit-volume-XXXXXX", dir ? dir : "/tmp");
	fd = mkstemp(path);
	if (fd < 0 || ftruncate(fd, VOL_SIZE + 4096) < 0) {
		perror("temp file");
		return 1;
	}
	close(fd);
	RAND_bytes(key, sizeof(key));
	RUN(model_xts_512, "random I/O vs a model: aes-xts-plain64, 512-byte sectors");
	RUN(model_xts_4096, "random I/O vs a model: aes-xts-plain64, 4096-byte sectors");
	RUN(model_cbc_essiv_1024, "random I/O vs a model: aes-cbc-essiv:sha256, 1024-byte sectors");
	RUN(concurrency_test, "concurrent partial-sector writers lose no update");
	RUN(bounds_and_ro_test, "bounds, discard, read-only refusal");
	unlink(path);
	return unit_done();
}
