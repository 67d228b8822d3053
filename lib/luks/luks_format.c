/* SPDX-License-Identifier: GPL-2.0-or-later */
/* Creating LUKS volumes.  The header is libcryptsetup's; we choose the
 * defaults, check the backing before anything is written, and optionally
 * wipe the data area through our own sector engine. */
#include <errno.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <string.h>
#include <unistd.h>

#include <openssl/rand.h>

#include "backing/backing.h"
#include "backing/backing_lock.h"
#include "core/error.h"
#include "core/secret.h"
#include "engine/cipher_spec.h"
#include "luks/luks.h"
#include "volume/volume.h"

#define LUKS2_DEFAULT_DATA_OFFSET (16u << 20)
#define LUKS1_MAX_DATA_OFFSET (2u << 20)
#define WIPE_CHUNK (4u << 20)
#define HEADER_FILE_MIN 4096

static int create_file(const char *path, uint64_t size)
{
	struct stat st;
	int fd, r = 0;

	if (bc_backing_is_rbd(path)) {
		struct bci_backing *b = NULL;

		/* The caller created a missing image; an existing one grows. */
		r = bci_backing_open(path, false, &b);
		if (r == 0)
			r = bci_backing_grow(b, size);
		bci_backing_close(b);
		return r;
	}
	fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	if (fd < 0)
		return bci_error(bci_errno_access(errno), "%s: %s", path, strerror(errno));
	if (fstat(fd, &st) == 0 && S_ISREG(st.st_mode) && (uint64_t)st.st_size < size &&
	    ftruncate(fd, (off_t)size) < 0)
		r = bci_error(errno == EFBIG ? -ENOSPC : -errno, "%s: cannot grow to %llu bytes: %s",
			     path, (unsigned long long)size, strerror(errno));
	close(fd);
	return r;
}

/* Allocate the header area of a file up front: on a full file system the
 * format then fails here, with ENOSPC, not half-way through libcryptsetup's
 * writes (which report it as a generic I/O error). */
static int reserve_header(const char *path, uint64_t len)
{
	int fd = open(path, O_RDWR | O_CLOEXEC), r = 0;

	if (fd < 0)
		return 0; /* libcryptsetup will meet (and report) the same */
	if (fallocate(fd, FALLOC_FL_KEEP_SIZE, 0, (off_t)len) < 0 && errno != EOPNOTSUPP)
		r = errno == ENOSPC || errno == EDQUOT ?
			bci_error(-ENOSPC, "%s: no space left on the file system for the header (%llu bytes)",
				 path, (unsigned long long)len) :
			bci_error(-errno, "%s: cannot allocate the header area: %s", path, strerror(errno));
	close(fd);
	return r;
}

/* A detached header file: created (0600) when missing, as cryptsetup
 * luksFormat --header does; else a regular file or a block device that
 * can be written. */
static int prepare_header_file(const char *header)
{
	struct stat st;
	int fd, r;

	if (bc_backing_is_rbd(header))
		return bci_error(-ENOTSUP, "%s: a detached header (--header) on an RBD image is not supported", header);
	fd = open(header, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (fd < 0 && errno != EEXIST)
		return bci_error(bci_errno_access(errno), "%s: cannot create the header file: %s", header,
				strerror(errno));
	if (fd < 0) {
		r = bc_backing_check_type(header);
		if (r < 0)
			return r;
		r = bci_check_writable(header);
		if (r < 0)
			return r;
		fd = open(header, O_RDWR | O_CLOEXEC);
		if (fd < 0)
			return bci_error(bci_errno_access(errno), "%s: %s", header, strerror(errno));
	}
	/* libcryptsetup grows a header file as it writes, but refuses one
	 * smaller than a header's first block (cryptsetup makes it that). */
	r = 0;
	if (fstat(fd, &st) == 0 && S_ISREG(st.st_mode) && st.st_size < HEADER_FILE_MIN &&
	    ftruncate(fd, HEADER_FILE_MIN) < 0)
		r = bci_error(errno == EFBIG ? -ENOSPC : -errno, "%s: cannot grow the header file: %s", header,
			     strerror(errno));
	close(fd);
	return r;
}

static int wipe_data_area(const char *backing, const struct bc_volume_info *layout,
			  const uint8_t *key, const struct bc_format_params *p)
{
	struct bc_volume *v = NULL;
	uint64_t size, done = 0;
	int r;

	r = bci_volume_create(backing, layout, key, &v);
	if (r < 0)
		return r;
	size = bc_volume_size(v);
	/* The progress clock starts here, with the data I/O, not before the
	 * key derivation. */
	if (p->progress && p->progress(0, size, p->progress_user))
		r = bci_error(-ECANCELED, "format: wipe interrupted");
	while (r == 0 && done < size) {
		uint64_t n = size - done < WIPE_CHUNK ? size - done : WIPE_CHUNK;

		r = bc_volume_write_zeroes(v, n, done);
		if (r < 0)
			goto out;
		done += n;
		if (p->progress && p->progress(done, size, p->progress_user)) {
			r = bci_error(-ECANCELED, "format: wipe interrupted");
			goto out;
		}
	}
	r = bc_volume_flush(v);
out:
	bc_volume_close(v);
	return r;
}

int bci_luks_format(const char *backing, const struct bc_format_params *p,
		   const struct bc_secret *pass)
{
	const bool luks1 = p->type == BC_TYPE_LUKS1;
	const char *type = luks1 ? CRYPT_LUKS1 : CRYPT_LUKS2;
	struct crypt_params_luks1 params1 = { .hash = "sha256" };
	struct crypt_params_luks2 params2 = { .label = p->label };
	struct crypt_device *cd = NULL;
	struct bc_volume_info layout = { 0 };
	struct bci_cipher_spec spec;
	_cleanup_secret_ struct bc_secret *key = NULL;
	struct stat hst, bst;
	uint64_t size, need;
	uint32_t ss;
	bool blk = false;  /* stays false when the file does not exist yet */
	bool rbd;
	int r;

	bci_luks_init();
	if (luks1 && p->label)
		return bci_error(-EINVAL, "format: LUKS1 has no label");
	r = bci_cipher_spec_parse(p->cipher, p->key_bits, &spec);
	if (r < 0)
		return r;
	/* dm-crypt has no lofi IVs: such a LUKS volume would open nowhere else. */
	if (spec.iv == BC_IV_LOFI)
		return bci_error(-EINVAL, "format: %s is lofi's cipher (blockcrypt-lofi(7)); LUKS takes dm-crypt's, "
				"e.g. aes-cbc-essiv:sha256", p->cipher);
	r = bci_luks_check_pbkdf(type, &p->pbkdf);
	if (r < 0)
		return r;
	ss = p->sector_size;
	if (ss && (ss < 512 || ss > 4096 || (ss & (ss - 1))))
		return bci_error(-EINVAL, "format: sector size %u: must be 512, 1024, 2048 or 4096", ss);
	if (luks1 && ss > 512)
		return bci_error(-EINVAL, "format: LUKS1 supports only 512-byte sectors");

	if (p->header) {
		if (bc_backing_is_rbd(backing))
			return bci_error(-ENOTSUP, "%s: a detached header (--header) with an RBD image is not supported",
					backing);
		if (stat(p->header, &hst) == 0 && stat(backing, &bst) == 0 && hst.st_dev == bst.st_dev &&
		    hst.st_ino == bst.st_ino)
			return bci_error(-EINVAL, "format: --header %s is the backing itself", p->header);
	}
	/* Work out the final size before creating or growing anything. */
	r = bci_path_size(backing, &size, &blk);
	if (r == -ENOENT && p->create_size)
		size = 0;
	else if (r < 0)
		return r;
	/* An RBD image grows like a file; it is thin, so nothing to reserve. */
	rbd = bc_backing_is_rbd(backing);
	if (rbd)
		blk = false;
	else if (!blk) {
		r = bci_check_writable(backing);
		if (r < 0)
			return r;
	}
	if (p->create_size > size) {
		if (blk)
			return bci_error(-EINVAL, "format: --size applies to files, %s is a block device", backing);
		size = p->create_size;
	}
	if (!ss)
		ss = !luks1 && size % 4096 == 0 ? 4096 : 512;
	if (size % ss)
		return bci_error(-EINVAL, "format: backing size %llu is not a multiple of the %u-byte sector size",
				(unsigned long long)size, ss);
	/* Refuse before writing anything: libcryptsetup would only warn.  A
	 * detached header leaves the whole backing to the data (offset 0). */
	need = (p->header ? 0 : luks1 ? LUKS1_MAX_DATA_OFFSET : LUKS2_DEFAULT_DATA_OFFSET) + ss;
	if (size < need)
		return bci_error(-ENOSPC, "%s: backing is %llu bytes; a %s volume needs at least %llu (%s)",
				backing, (unsigned long long)size, luks1 ? "LUKS1" : "LUKS2",
				(unsigned long long)need, p->header ? "one sector" : "header + one sector");
	if (p->header) {
		r = prepare_header_file(p->header);
		if (r < 0)
			return r;
	}
	if (p->create_size) {
		r = create_file(backing, p->create_size);
		if (r < 0)
			return r;
	}
	if (p->header) {
		r = reserve_header(p->header, luks1 ? LUKS1_MAX_DATA_OFFSET : LUKS2_DEFAULT_DATA_OFFSET);
		if (r < 0)
			return r;
	} else if (!blk && !rbd) {
		r = reserve_header(backing, need - ss);
		if (r < 0)
			return r;
	}
	params2.sector_size = ss;

	r = bc_secret_new(spec.key_bytes, &key);
	if (r < 0)
		return r;
	if (RAND_priv_bytes(bc_secret_buf(key), (int)spec.key_bytes) != 1)
		return bci_error(-EIO, "format: random number generator failed");
	bc_secret_set_len(key, spec.key_bytes);
	if (spec.chain == BC_MODE_XTS &&
	    !memcmp(bc_secret_data(key), bc_secret_data(key) + spec.key_bytes / 2, spec.key_bytes / 2))
		return bci_error(-EIO, "format: random number generator returned a degenerate key");

	r = bci_luks_init_cd_detached(backing, p->header, &cd);
	if (r < 0)
		return r;
	r = bci_luks_set_pbkdf(cd, type, &p->pbkdf);
	if (r < 0)
		goto out;
	r = crypt_format(cd, type, spec.cipher, spec.mode, NULL, (const char *)bc_secret_data(key),
			 spec.key_bytes, luks1 ? (void *)&params1 : (void *)&params2);
	if (r < 0) {
		r = bci_luks_fail(bci_errno_access(-r), p->header ? p->header : backing, "cannot write header");
		goto out;
	}
	r = crypt_keyslot_add_by_volume_key(cd, CRYPT_ANY_SLOT, (const char *)bc_secret_data(key),
					    spec.key_bytes, (const char *)bc_secret_data(pass),
					    bc_secret_len(pass));
	if (r < 0) {
		r = bci_luks_fail(r, p->header ? p->header : backing, "cannot add key slot");
		goto out;
	}
	r = bci_luks_layout(cd, &layout);
	if (r < 0)
		goto out;
	r = bci_luks_commit(cd, r);
	if (r < 0)
		goto out;
	bci_luks_free_cd(cd);
	cd = NULL;
	if (p->wipe)
		r = wipe_data_area(backing, &layout, bc_secret_data(key), p);
	else
		r = 0;
out:
	bci_luks_free_cd(cd);
	return r;
}
