/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Staged headers: libcryptsetup on backings it cannot open (see
 * header_stage.h).
 *
 * The header area of an RBD image is copied into an anonymous in-memory
 * file (memfd) as long as the image, sparse, and libcryptsetup is given
 * /proc/self/fd/N: it reads and writes the copy as it would a file.  What
 * it changed goes back to the image when its handle is freed after a
 * success (bci_luks_free_cd), block by block, in the order that keeps one
 * usable header at every instant, should the process die half-way:
 *
 *   1. key slot material that the new header uses (a new or changed slot:
 *      unused by the old header, so writing it first changes nothing yet);
 *   2. the primary header (LUKS1: its only header) -- flush;
 *   3. the LUKS2 secondary header -- flush;
 *   4. everything else: material of slots the new header no longer uses
 *      (wiped only once no header points at it), and any other change.
 *
 * A crash before 2 completes leaves the old header (both copies, where
 * two); between 2 and 3, libcryptsetup finds the two LUKS2 copies
 * differing and takes the one with the higher sequence id, the new one;
 * after 3 the change is whole.  After a failure the copy is restored from
 * the last committed state, so nothing of a failed change ever reaches
 * the image.
 *
 * Threading: the list of stages is guarded by stages_lock; a stage is
 * used by one libcryptsetup handle at a time (the commands run one header
 * operation at a time).
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/falloc.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "backing/backing.h"
#include "core/error.h"
#include "luks/header_stage.h"
#include "luks/luks.h"

#define STAGE_BLOCK 4096u
/* Staged at first: both LUKS2 header copies at their largest (2 x 4 MiB)
 * and libcryptsetup's default data offset (16 MiB). */
#define STAGE_FIRST (16u << 20)
/* A header area beyond this is refused (a custom --offset far out). */
#define STAGE_MAX (1u << 30)

struct stage {
	struct stage *next;
	char *path;                /* the backing, "rbd:..." */
	char device[40];           /* /proc/self/fd/N */
	struct bci_backing *backing; /* read-only: reads the header area */
	int fd;                    /* the memfd */
	uint64_t size;             /* of the image (and the memfd) */
	uint8_t *committed;        /* what the image holds over [0, len) */
	size_t len;
	bool broken;               /* a write-back failed half-way */
};

static pthread_mutex_t stages_lock = PTHREAD_MUTEX_INITIALIZER;
static struct stage *stages;

static int fd_read_all(int fd, uint8_t *buf, size_t len, uint64_t off)
{
	while (len) {
		ssize_t n = pread(fd, buf, len, (off_t)off);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return n < 0 ? -errno : -EIO;
		buf += n;
		off += (uint64_t)n;
		len -= (size_t)n;
	}
	return 0;
}

static int fd_write_all(int fd, const uint8_t *buf, size_t len, uint64_t off)
{
	while (len) {
		ssize_t n = pwrite(fd, buf, len, (off_t)off);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		buf += n;
		off += (uint64_t)n;
		len -= (size_t)n;
	}
	return 0;
}

/* Stage [S->len, LEN) too. */
static int stage_extend(struct stage *s, size_t len)
{
	uint8_t *grown;
	int r;

	if (len <= s->len)
		return 0;
	if (len > STAGE_MAX)
		return bci_error(-ENOTSUP, "%s: header area of %zu bytes: larger than blockcrypt stages (%u)",
				s->path, len, STAGE_MAX);
	grown = realloc(s->committed, len);
	if (!grown)
		return bci_error(-ENOMEM, "out of memory");
	s->committed = grown;
	r = bci_backing_pread(s->backing, grown + s->len, len - s->len, s->len);
	if (r < 0)
		return r;
	r = fd_write_all(s->fd, grown + s->len, len - s->len, s->len);
	if (r < 0)
		return bci_error(r, "%s: cannot stage the header: %s", s->path, strerror(-r));
	s->len = len;
	return 0;
}

static void stage_free(struct stage *s)
{
	if (!s)
		return;
	if (s->fd >= 0)
		close(s->fd);
	bci_backing_close(s->backing);
	free(s->committed);
	free(s->path);
	free(s);
}

static struct stage *find_locked(const char *path, const char *device)
{
	for (struct stage *s = stages; s; s = s->next)
		if ((path && !strcmp(s->path, path)) || (device && !strcmp(s->device, device)))
			return s;
	return NULL;
}

static int stage_new(const char *path, struct stage **out)
{
	struct stage *s = calloc(1, sizeof(*s));
	int r;

	if (!s)
		return bci_error(-ENOMEM, "out of memory");
	s->fd = -1;
	if (!(s->path = strdup(path))) {
		r = bci_error(-ENOMEM, "out of memory");
		goto fail;
	}
	r = bci_backing_open(path, true, &s->backing);
	if (r < 0)
		goto fail;
	r = bci_backing_size(s->backing, &s->size);
	if (r < 0)
		goto fail;
	s->fd = memfd_create("blockcrypt-header", MFD_CLOEXEC);
	if (s->fd < 0 || ftruncate(s->fd, (off_t)s->size) < 0) {
		r = bci_error(-errno, "%s: cannot stage the header in memory: %s", path, strerror(errno));
		goto fail;
	}
	snprintf(s->device, sizeof(s->device), "/proc/self/fd/%d", s->fd);
	r = stage_extend(s, s->size < STAGE_FIRST ? (size_t)s->size : STAGE_FIRST);
	if (r < 0)
		goto fail;
	*out = s;
	return 0;
fail:
	stage_free(s);
	return r;
}

int bci_stage_device(const char *path, const char **device)
{
	struct stage *s;
	int r = 0;

	*device = path;
	if (!bc_backing_is_rbd(path))
		return 0;
	pthread_mutex_lock(&stages_lock);
	s = find_locked(path, NULL);
	if (!s) {
		static bool registered;

		r = stage_new(path, &s);
		if (r == 0) {
			s->next = stages;
			stages = s;
			/* A Ceph client left open at exit stays a watcher of the
			 * image in the cluster until it times out. */
			if (!registered)
				registered = atexit(bc_drop_staged_headers) == 0;
		}
	}
	if (r == 0 && s->broken)
		r = bci_error(-EIO, "%s: an earlier header write-back failed half-way; run the command again",
			     path);
	if (r == 0)
		*device = s->device;
	pthread_mutex_unlock(&stages_lock);
	return r;
}

int bci_stage_cover(const char *device, uint64_t len)
{
	struct stage *s;
	int r = 0;

	pthread_mutex_lock(&stages_lock);
	s = find_locked(NULL, device);
	if (s)
		r = stage_extend(s, len < s->size ? (size_t)len : (size_t)s->size);
	pthread_mutex_unlock(&stages_lock);
	return r;
}

/* The LUKS2 header size (one copy) if BUF starts with a LUKS2 header,
 * 4096 for LUKS1, else 0. */
static uint64_t header_copy_size(const uint8_t *buf, size_t len, bool *luks2)
{
	static const uint8_t magic[6] = { 'L', 'U', 'K', 'S', 0xba, 0xbe };
	uint64_t hdr = 0;

	*luks2 = false;
	if (len < STAGE_BLOCK || memcmp(buf, magic, sizeof(magic)))
		return 0;
	if (buf[6] == 0 && buf[7] == 1)
		return STAGE_BLOCK;
	if (buf[6] != 0 || buf[7] != 2)
		return 0;
	for (int i = 0; i < 8; i++)
		hdr = hdr << 8 | buf[8 + i];
	if (hdr < 16384 || hdr > (4u << 20) || (hdr & (hdr - 1)) || 2 * hdr > len)
		return 0;
	*luks2 = true;
	return hdr;
}

/* Mark in USED the blocks of every key slot area the header in S's copy
 * uses. */
static void used_areas(struct stage *s, uint8_t *used, size_t blocks)
{
	struct crypt_device *cd = NULL;

	if (crypt_init(&cd, s->device) < 0)
		return;
	if (crypt_load(cd, CRYPT_LUKS, NULL) == 0) {
		const char *type = crypt_get_type(cd);
		int max = crypt_keyslot_max(type);

		for (int slot = 0; slot < max; slot++) {
			uint64_t off, len;
			crypt_keyslot_info ki = crypt_keyslot_status(cd, slot);

			if (ki != CRYPT_SLOT_ACTIVE && ki != CRYPT_SLOT_ACTIVE_LAST)
				continue;
			if (crypt_keyslot_area(cd, slot, &off, &len) < 0)
				continue;
			for (uint64_t b = off / STAGE_BLOCK; b < blocks && b * STAGE_BLOCK < off + len; b++)
				used[b] = 1;
		}
	}
	crypt_free(cd);
}

/* Write back the blocks whose PHASE (see the top) is P; flush after. */
static int write_phase(struct stage *s, struct bci_backing *w, const uint8_t *now, const uint8_t *phase,
		       size_t blocks, uint8_t p)
{
	bool wrote = false;
	int r;

	for (size_t b = 0; b < blocks; b++) {
		size_t off = b * STAGE_BLOCK, n = s->len - off < STAGE_BLOCK ? s->len - off : STAGE_BLOCK;

		if (phase[b] != p)
			continue;
		r = bci_backing_pwrite(w, now + off, n, off);
		if (r < 0)
			return r;
		memcpy(s->committed + off, now + off, n);
		wrote = true;
	}
	return wrote ? bci_backing_flush(w) : 0;
}

/* Write S's changes back in the crash-safe order. */
static int commit(struct stage *s)
{
	const size_t blocks = (s->len + STAGE_BLOCK - 1) / STAGE_BLOCK;
	struct bci_backing *w = NULL;
	uint8_t *now = NULL, *phase = NULL, *used = NULL;
	uint64_t hdr;
	bool luks2, any = false;
	off_t data, end = 0;
	int r;

	/* Anything libcryptsetup wrote past the staged part (a format with a
	 * far data offset) is staged first, as what the image must get. */
	for (off_t at = (off_t)s->len; (data = lseek(s->fd, at, SEEK_DATA)) >= 0;)
		at = end = lseek(s->fd, data, SEEK_HOLE);
	if (end > (off_t)s->len) {
		size_t old = s->len, n;
		uint8_t *tail;

		end = (end + STAGE_BLOCK - 1) / STAGE_BLOCK * STAGE_BLOCK;
		if ((uint64_t)end > s->size)
			end = (off_t)s->size;
		n = (size_t)end - old;
		tail = malloc(n);
		if (!tail)
			return bci_error(-ENOMEM, "out of memory");
		/* The image's own bytes become the committed state... */
		r = fd_read_all(s->fd, tail, n, old);
		if (r == 0)
			r = stage_extend(s, (size_t)end);
		/* ...and the copy gets back what libcryptsetup wrote. */
		if (r == 0)
			r = fd_write_all(s->fd, tail, n, old);
		free(tail);
		if (r < 0)
			return r;
	}
	now = malloc(s->len);
	phase = calloc(blocks, 1);
	used = calloc(blocks, 1);
	if (!now || !phase || !used) {
		r = bci_error(-ENOMEM, "out of memory");
		goto out;
	}
	r = fd_read_all(s->fd, now, s->len, 0);
	if (r < 0) {
		r = bci_error(r, "%s: cannot read the staged header: %s", s->path, strerror(-r));
		goto out;
	}
	hdr = header_copy_size(now, s->len, &luks2);
	if (hdr)
		used_areas(s, used, blocks);
	for (size_t b = 0; b < blocks; b++) {
		size_t off = b * STAGE_BLOCK, n = s->len - off < STAGE_BLOCK ? s->len - off : STAGE_BLOCK;

		if (!memcmp(now + off, s->committed + off, n))
			continue;
		any = true;
		if (off < hdr)
			phase[b] = 2;
		else if (luks2 && off < 2 * hdr)
			phase[b] = 3;
		else if (used[b])
			phase[b] = 1;
		else
			phase[b] = 4;
	}
	if (!any)
		goto out;
	r = bci_backing_open(s->path, false, &w);
	if (r < 0)
		goto out;
	s->broken = true;
	for (uint8_t p = 1; p <= 4 && r == 0; p++)
		r = write_phase(s, w, now, phase, blocks, p);
	if (r == 0)
		s->broken = false;
	else {
		char why[BC_ERROR_MAX];

		snprintf(why, sizeof(why), "%s", bc_last_error());
		r = bci_error(r, "%s: writing the header back failed half-way (%s); the image keeps a usable "
			     "header, run the command again", s->path, why);
	}
out:
	bci_backing_close(w);
	free(now);
	free(phase);
	free(used);
	return r;
}

/* Put back the last committed state into S's copy. */
static int revert(struct stage *s)
{
	int r = fd_write_all(s->fd, s->committed, s->len, 0);

	if (r == 0 && s->size > s->len &&
	    fallocate(s->fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, (off_t)s->len,
		      (off_t)(s->size - s->len)) < 0)
		r = -errno;
	if (r < 0) {
		s->broken = true;
		return bci_error(r, "%s: cannot restore the staged header: %s", s->path, strerror(-r));
	}
	return 0;
}

int bci_stage_finish(const char *device, bool ok)
{
	struct stage *s;
	int r = 0;

	if (!device)
		return 0;
	pthread_mutex_lock(&stages_lock);
	s = find_locked(NULL, device);
	if (s)
		r = ok ? commit(s) : revert(s);
	pthread_mutex_unlock(&stages_lock);
	return r;
}

static void stage_drop(const char *path)
{
	struct stage **p, *s = NULL;

	pthread_mutex_lock(&stages_lock);
	for (p = &stages; *p; p = &(*p)->next)
		if (!strcmp((*p)->path, path)) {
			s = *p;
			*p = s->next;
			break;
		}
	pthread_mutex_unlock(&stages_lock);
	stage_free(s);
}

/* Here rather than in backing/: a removed image must not leave a staged
 * copy of its header behind for a new image of the same name. */
int bc_rbd_remove(const char *path)
{
	stage_drop(path);
	return bci_rbd_remove(path);
}

void bc_drop_staged_headers(void)
{
	struct stage *s;

	pthread_mutex_lock(&stages_lock);
	s = stages;
	stages = NULL;
	pthread_mutex_unlock(&stages_lock);
	while (s) {
		struct stage *next = s->next;

		stage_free(s);
		s = next;
	}
}
