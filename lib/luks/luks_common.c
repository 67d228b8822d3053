/*
 * libcryptsetup glue: logging and error translation.
 *
 * Threading: libcryptsetup reports errors through a process-wide log
 * callback; we keep the last error line per thread, so each thread's
 * failure message names its own cause.
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <fcntl.h>
#include <string.h>
#include <unistd.h>

#include "core/error.h"
#include "engine/cipher_spec.h"
#include "luks/luks.h"

static _Thread_local char last_cs_error[256];
static pthread_once_t init_once = PTHREAD_ONCE_INIT;

static void log_cb(int level, const char *msg, void *usrptr)
{
	size_t n;

	(void)usrptr;
	switch (level) {
	case CRYPT_LOG_NORMAL:
		/* Only dumps print at this level; they go to stdout. */
		fputs(msg, stdout);
		break;
	case CRYPT_LOG_ERROR:
		snprintf(last_cs_error, sizeof(last_cs_error), "%s", msg);
		n = strlen(last_cs_error);
		while (n && (last_cs_error[n - 1] == '\n' || last_cs_error[n - 1] == '.'))
			last_cs_error[--n] = '\0';
		break;
	case CRYPT_LOG_DEBUG:
	case CRYPT_LOG_DEBUG_JSON:
		fprintf(stderr, "# %s\n", msg);
		break;
	default:
		break;
	}
}

static void do_init(void)
{
	crypt_set_log_callback(NULL, log_cb, NULL);
}

void bc_luks_init(void)
{
	pthread_once(&init_once, do_init);
	last_cs_error[0] = '\0';
}

int bc_luks_fail(int r, const char *path, const char *context)
{
	if (last_cs_error[0])
		return bc_error(r, "%s: %s: %s", path, context, last_cs_error);
	return bc_error(r, "%s: %s: %s", path, context, strerror(-r));
}

int bc_luks_init_cd(const char *path, struct crypt_device **out)
{
	int r;

	bc_luks_init();
	*out = NULL;
	r = crypt_init(out, path);
	if (r == -ENOTBLK || r == -ENOENT)
		return bc_error(-ENOENT, "%s: no such file or device", path);
	if (r < 0)
		return bc_luks_fail(r == -EPERM ? -EACCES : r, path, "cannot open");
	return 0;
}

int bc_luks_load_cd(const char *path, enum bc_volume_type type, struct crypt_device **out)
{
	const char *want = type == BC_TYPE_LUKS1 ? CRYPT_LUKS1 :
			   type == BC_TYPE_LUKS2 ? CRYPT_LUKS2 : CRYPT_LUKS;
	struct crypt_device *cd = NULL;
	int r;

	*out = NULL;
	r = bc_luks_init_cd(path, &cd);
	if (r < 0)
		return r;
	r = crypt_load(cd, want, NULL);
	if (r < 0) {
		bool regular = !crypt_get_device_name(cd) || strncmp(crypt_get_device_name(cd), "/dev/", 5);

		crypt_free(cd);
		if (strstr(last_cs_error, "too small"))
			return bc_error(-ENOSPC, "%s: too small for its LUKS header (truncated?)", path);
		/* A short read of a regular file is a truncated or absent
		 * header, not a failing disk. */
		if (r == -EINVAL || r == -ENXIO || (r == -EIO && regular))
			/* libcryptsetup found no header it could use */
			return bc_error(-EBADMSG, "%s: not a %s volume, or its headers are damaged",
					path, type == BC_TYPE_AUTO ? "LUKS" : bc_volume_type_name(type));
		if (r == -EPERM || r == -EACCES)
			return bc_luks_fail(-EACCES, path, "cannot read header");
		return bc_luks_fail(r, path, "cannot load header");
	}
	*out = cd;
	return 0;
}

int bc_luks_layout(struct crypt_device *cd, struct bc_volume_info *info)
{
	const char *type = crypt_get_type(cd), *uuid, *label;
	uint32_t req = 0;

	info->type = !strcmp(type, CRYPT_LUKS1) ? BC_TYPE_LUKS1 : BC_TYPE_LUKS2;
	if (crypt_persistent_flags_get(cd, CRYPT_FLAGS_REQUIREMENTS, &req) == 0 && req)
		return bc_error(-ENOTSUP, "%s: header carries requirements (0x%x: reencryption in progress or an unknown feature); refusing",
				crypt_get_device_name(cd), req);
	struct crypt_params_integrity ip = { 0 };

	if (crypt_get_integrity_info(cd, &ip) == 0 && ip.tag_size)
		return bc_error(-ENOTSUP, "%s: authenticated (integrity) volumes are not supported",
				crypt_get_device_name(cd));
	snprintf(info->cipher, sizeof(info->cipher), "%s-%s", crypt_get_cipher(cd), crypt_get_cipher_mode(cd));
	info->key_bits = (uint32_t)crypt_get_volume_key_size(cd) * 8;
	{
		/* Refuse up front what the sector engine cannot do byte-exactly. */
		struct bc_cipher_spec spec;

		if (bc_cipher_spec_parse(info->cipher, info->key_bits, &spec) < 0)
			return bc_error(-ENOTSUP, "%s: cipher %s (%u-bit key) is not supported (aes xts/cbc only)",
					crypt_get_device_name(cd), info->cipher, info->key_bits);
	}
	info->sector_size = (uint32_t)crypt_get_sector_size(cd);
	/* LUKS1 and LUKS2 both count IVs in 512-byte units, whatever the
	 * encryption sector size (cryptsetup maps LUKS2 without the dm-crypt
	 * iv_large_sectors option); tests/shell/luks2-reencrypt-oracle.sh
	 * checks this against data cryptsetup itself encrypted. */
	info->iv_large_sectors = false;
	info->data_offset = crypt_get_data_offset(cd) * 512;
	info->iv_offset = crypt_get_iv_offset(cd);
	uuid = crypt_get_uuid(cd);
	label = info->type == BC_TYPE_LUKS2 ? crypt_get_label(cd) : NULL;
	snprintf(info->uuid, sizeof(info->uuid), "%s", uuid ? uuid : "");
	snprintf(info->label, sizeof(info->label), "%s", label ? label : "");
	return 0;
}

int bc_luks_count_slots(struct crypt_device *cd)
{
	int n = 0, max = crypt_keyslot_max(crypt_get_type(cd));

	for (int i = 0; i < max; i++) {
		crypt_keyslot_info ki = crypt_keyslot_status(cd, i);

		if (ki == CRYPT_SLOT_ACTIVE || ki == CRYPT_SLOT_ACTIVE_LAST)
			n++;
	}
	return n;
}

int bc_luks_check_pbkdf(const char *type, const struct bc_pbkdf_params *p)
{
	const char *kdf = p && p->type ? p->type : NULL;

	if (kdf && strcmp(kdf, CRYPT_KDF_PBKDF2) && strcmp(kdf, CRYPT_KDF_ARGON2I) &&
	    strcmp(kdf, CRYPT_KDF_ARGON2ID))
		return bc_error(-EINVAL, "pbkdf %s: expected argon2id, argon2i or pbkdf2", kdf);
	if (kdf && !strcmp(type, CRYPT_LUKS1) && strcmp(kdf, CRYPT_KDF_PBKDF2))
		return bc_error(-EINVAL, "pbkdf %s: LUKS1 supports only pbkdf2", kdf);
	return 0;
}

int bc_luks_set_pbkdf(struct crypt_device *cd, const char *type, const struct bc_pbkdf_params *p)
{
	const struct crypt_pbkdf_type *def;
	struct crypt_pbkdf_type pbkdf;
	int r;

	if (!type)
		type = crypt_get_type(cd);
	def = crypt_get_pbkdf_default(type);
	if (!def)
		return bc_error(-EINVAL, "pbkdf: no default for this volume type");
	pbkdf = *def;
	if (p) {
		if (p->type)
			pbkdf.type = p->type;
		if (p->hash)
			pbkdf.hash = p->hash;
		if (p->iter_time_ms)
			pbkdf.time_ms = p->iter_time_ms;
		if (p->max_memory_kb)
			pbkdf.max_memory_kb = p->max_memory_kb;
		if (p->parallel)
			pbkdf.parallel_threads = p->parallel;
		if (p->iterations) {
			pbkdf.iterations = p->iterations;
			pbkdf.flags |= CRYPT_PBKDF_NO_BENCHMARK;
			if (!p->max_memory_kb && strcmp(pbkdf.type, CRYPT_KDF_PBKDF2))
				pbkdf.max_memory_kb = 32768; /* no benchmark: a fixed, modest cost */
		}
	}
	if (!strcmp(type, CRYPT_LUKS1) && strcmp(pbkdf.type, CRYPT_KDF_PBKDF2))
		return bc_error(-EINVAL, "pbkdf %s: LUKS1 supports only pbkdf2", pbkdf.type);
	if (!strcmp(pbkdf.type, CRYPT_KDF_PBKDF2)) {
		pbkdf.max_memory_kb = 0;
		pbkdf.parallel_threads = 0;
	} else if (strcmp(pbkdf.type, CRYPT_KDF_ARGON2I) && strcmp(pbkdf.type, CRYPT_KDF_ARGON2ID)) {
		return bc_error(-EINVAL, "pbkdf %s: expected argon2id, argon2i or pbkdf2", pbkdf.type);
	}
	r = crypt_set_pbkdf_type(cd, &pbkdf);
	if (r < 0)
		return bc_luks_fail(-EINVAL, crypt_get_device_name(cd), "pbkdf parameters");
	return 0;
}

int bc_check_writable(const char *path)
{
	int fd = open(path, O_RDWR | O_CLOEXEC);

	if (fd < 0) {
		int e = errno;

		if (e == ENOENT)
			return bc_error(-ENOENT, "%s: no such file or device", path);
		return bc_error(e == EPERM || e == EACCES ? -EACCES : e == EROFS ? -EROFS : -e,
				"%s: cannot open for writing: %s", path, strerror(e));
	}
	close(fd);
	return 0;
}
