/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Secure memory for keys and passphrases.
 *
 * Each allocation is its own anonymous mapping so that mlock() and
 * MADV_DONTDUMP apply to exactly the secret's pages and nothing else shares
 * them.  A small header in front of the data records the mapping size.
 *
 * Threading: allocations are independent; the process-wide count of live
 * secrets (which drives PR_SET_DUMPABLE) is protected by a mutex.
 */
#include <errno.h>
#include <pthread.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <unistd.h>

#include <openssl/crypto.h>

#include "core/error.h"
#include "core/secret.h"

struct secure_hdr {
	size_t map_size;
	size_t size;
};

static pthread_mutex_t dumpable_lock = PTHREAD_MUTEX_INITIALIZER;
static unsigned long live_secrets;
static int saved_dumpable = -1;

static void secrets_held(int delta)
{
	pthread_mutex_lock(&dumpable_lock);
	if (delta > 0 && live_secrets++ == 0) {
		saved_dumpable = prctl(PR_GET_DUMPABLE, 0, 0, 0, 0);
		prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);
	} else if (delta < 0 && --live_secrets == 0) {
		if (saved_dumpable > 0)
			prctl(PR_SET_DUMPABLE, saved_dumpable, 0, 0, 0);
	}
	pthread_mutex_unlock(&dumpable_lock);
}

void bci_secure_hold(void)
{
	secrets_held(+1);
}

void bci_secure_release(void)
{
	secrets_held(-1);
}

int bc_memory_lock_all(void)
{
	return mlockall(MCL_CURRENT | MCL_FUTURE | MCL_ONFAULT) < 0 ? -errno : 0;
}

void *bci_secure_alloc(size_t size)
{
	size_t page = (size_t)sysconf(_SC_PAGESIZE);
	size_t map_size;
	struct secure_hdr *h;

	if (size > SIZE_MAX - sizeof(*h) - page)
		return NULL;
	map_size = (size + sizeof(*h) + page - 1) / page * page;
	h = mmap(NULL, map_size, PROT_READ | PROT_WRITE,
		 MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (h == MAP_FAILED)
		return NULL;
	/* Keep going if mlock fails (RLIMIT_MEMLOCK): the data is still
	 * wiped and excluded from dumps; status reports VmLck. */
	(void)mlock(h, map_size);
	(void)madvise(h, map_size, MADV_DONTDUMP);
	h->map_size = map_size;
	h->size = size;
	secrets_held(+1);
	return h + 1;
}

void bci_secure_free(void *p)
{
	struct secure_hdr *h;
	size_t map_size;

	if (!p)
		return;
	h = (struct secure_hdr *)p - 1;
	map_size = h->map_size;
	explicit_bzero(h, map_size);
	munlock(h, map_size);
	munmap(h, map_size);
	secrets_held(-1);
}

struct bc_secret {
	size_t len;
	size_t capacity;
	uint8_t data[];
};

int bc_secret_new(size_t capacity, struct bc_secret **out)
{
	struct bc_secret *s;

	*out = NULL;
	if (capacity > SIZE_MAX - sizeof(*s) - 1)
		return bci_error(-ENOMEM, "secret: too large");
	/* One spare byte so text consumers can rely on a NUL terminator. */
	s = bci_secure_alloc(sizeof(*s) + capacity + 1);
	if (!s)
		return bci_error(-ENOMEM, "secret: cannot allocate locked memory");
	s->len = 0;
	s->capacity = capacity;
	*out = s;
	return 0;
}

int bc_secret_from_bytes(const void *data, size_t len, struct bc_secret **out)
{
	int r = bc_secret_new(len, out);

	if (r < 0)
		return r;
	memcpy((*out)->data, data, len);
	(*out)->len = len;
	return 0;
}

const uint8_t *bc_secret_data(const struct bc_secret *s)
{
	return s->data;
}

uint8_t *bc_secret_buf(struct bc_secret *s)
{
	return s->data;
}

size_t bc_secret_len(const struct bc_secret *s)
{
	return s->len;
}

size_t bc_secret_capacity(const struct bc_secret *s)
{
	return s->capacity;
}

int bc_secret_set_len(struct bc_secret *s, size_t len)
{
	if (len > s->capacity)
		return bci_error(-EINVAL, "secret: length %zu beyond its capacity %zu", len, s->capacity);
	if (len < s->len)
		explicit_bzero(s->data + len, s->len - len);
	s->len = len;
	return 0;
}

int bc_secret_equal(const struct bc_secret *a, const struct bc_secret *b)
{
	if (a->len != b->len)
		return 0;
	return CRYPTO_memcmp(a->data, b->data, a->len) == 0;
}

void bc_secret_free(struct bc_secret *s)
{
	bci_secure_free(s);
}
