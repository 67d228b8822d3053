/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * libcryptsetup glue: logging and error translation.
 *
 * Threading: libcryptsetup reports errors through a process-wide log
 * callback; we keep the last error line per thread, so each thread's
 * failure message names its own cause.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include <json-c/json.h>

#include "backing/backing.h"
#include "backing/backing_lock.h"
#include "core/error.h"
#include "engine/cipher_spec.h"
#include "luks/header_stage.h"
#include "luks/luks.h"

static _Thread_local char last_cs_error[BC_ERROR_MAX];
static pthread_once_t init_once = PTHREAD_ONCE_INIT;

/* USRPTR, when set: a struct dump_names, for a handle on a staged copy. */
struct dump_names {
	const char *device, *shown;
};

static void log_cb(int level, const char *msg, void *usrptr)
{
	const struct dump_names *names = usrptr;
	const char *at;
	size_t n;

	switch (level) {
	case CRYPT_LOG_NORMAL:
		/* Only dumps print at this level; they go to stdout, naming the
		 * backing, never the staged copy libcryptsetup reads. */
		if (names && (at = strstr(msg, names->device))) {
			fwrite(msg, 1, (size_t)(at - msg), stdout);
			fputs(names->shown, stdout);
			fputs(at + strlen(names->device), stdout);
		} else {
			fputs(msg, stdout);
		}
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

void bci_luks_init(void)
{
	pthread_once(&init_once, do_init);
	last_cs_error[0] = '\0';
}

int bci_luks_dump(struct crypt_device *cd, const char *path)
{
	struct dump_names names = { bci_luks_header_path(cd), path };
	int r;

	bci_luks_init();
	if (names.device && strcmp(names.device, path))
		crypt_set_log_callback(cd, log_cb, &names);
	r = crypt_dump(cd);
	crypt_set_log_callback(cd, log_cb, NULL);
	fflush(stdout);
	return r;
}

int bci_luks_fail(int r, const char *path, const char *context)
{
	if (last_cs_error[0])
		return bci_error(r, "%s: %s: %s", path, context, last_cs_error);
	return bci_error(r, "%s: %s: %s", path, context, strerror(-r));
}

int bci_luks_init_cd(const char *path, struct crypt_device **out)
{
	const char *device;
	int r;

	bci_luks_init();
	*out = NULL;
	r = bci_stage_device(path, &device);
	if (r < 0)
		return r;
	r = crypt_init(out, device);
	if (r == -ENOTBLK || r == -ENOENT)
		return bci_error(-ENOENT, "%s: no such file or device", path);
	if (r < 0)
		return bci_luks_fail(bci_errno_access(-r), path, "cannot open");
	return 0;
}

int bci_luks_init_cd_detached(const char *path, const char *header, struct crypt_device **out)
{
	int r;

	if (!header)
		return bci_luks_init_cd(path, out);
	bci_luks_init();
	*out = NULL;
	if (bc_backing_is_rbd(path) || bc_backing_is_rbd(header))
		return bci_error(-ENOTSUP, "%s: a detached header (--header) with an RBD image is not supported",
				bc_backing_is_rbd(header) ? header : path);
	/* Both must exist, and be what a header or data may be (a FIFO
	 * would hang libcryptsetup's open). */
	r = bc_backing_check_type(header);
	if (r == 0)
		r = bc_backing_check_type(path);
	if (r < 0)
		return r;
	r = crypt_init_data_device(out, header, path);
	if (r == -ENOTBLK || r == -ENOENT)
		return bci_error(-ENOENT, "%s: no such file or device", header);
	if (r < 0)
		return bci_luks_fail(bci_errno_access(-r), header, "cannot open");
	return 0;
}

const char *bci_luks_header_path(struct crypt_device *cd)
{
	const char *h = crypt_get_metadata_device_name(cd);

	return h ? h : crypt_get_device_name(cd);
}

bool bci_luks_detached(struct crypt_device *cd)
{
	return crypt_get_metadata_device_name(cd) != NULL;
}

int bci_luks_load_cd(const char *path, enum bc_volume_type type, struct crypt_device **out)
{
	return bci_luks_load_cd_detached(path, NULL, type, out);
}

int bci_luks_load_cd_detached(const char *path, const char *header, enum bc_volume_type type,
			      struct crypt_device **out)
{
	const char *want = type == BC_TYPE_LUKS1 ? CRYPT_LUKS1 :
			   type == BC_TYPE_LUKS2 ? CRYPT_LUKS2 : CRYPT_LUKS;
	const char *name = header ? header : path;
	struct crypt_device *cd = NULL;
	int r;

	*out = NULL;
	r = bci_luks_init_cd_detached(path, header, &cd);
	if (r < 0)
		return r;
	r = crypt_load(cd, want, NULL);
	if (r < 0) {
		const char *dev = bci_luks_header_path(cd);
		bool regular = !dev || strncmp(dev, "/dev/", 5);

		bci_luks_free_cd(cd);
		if (strstr(last_cs_error, "too small"))
			return bci_error(-ENOSPC, "%s: too small for its LUKS header (truncated?)", name);
		/* A short read of a regular file is a truncated or absent
		 * header, not a failing disk. */
		if (r == -EINVAL || r == -ENXIO || (r == -EIO && regular))
			/* libcryptsetup found no header it could use */
			return bci_error(-EBADMSG, "%s: not a %s %s, or its headers are damaged%s%s",
					name, type == BC_TYPE_AUTO ? "LUKS" : bc_volume_type_name(type),
					header ? "header file" : "volume",
					last_cs_error[0] ? ": " : "", last_cs_error);
		if (r == -EPERM || r == -EACCES)
			return bci_luks_fail(-EACCES, name, "cannot read header");
		return bci_luks_fail(r, name, "cannot load header");
	}
	/* libcryptsetup reads key slots later, from anywhere up to the data
	 * offset: a staged header needs all of that. */
	r = bci_stage_cover(crypt_get_device_name(cd), crypt_get_data_offset(cd) * 512);
	if (r < 0) {
		bci_luks_free_cd(cd);
		return r;
	}
	*out = cd;
	return 0;
}

int bci_luks_commit(struct crypt_device *cd, int r)
{
	/* (Nothing to do, and 0, where CD's device is not a staged copy.) */
	int w = cd ? bci_stage_finish(crypt_get_device_name(cd), r >= 0) : 0;

	return r < 0 ? r : w < 0 ? w : r;
}

void bci_luks_free_cd(struct crypt_device *cd)
{
	if (!cd)
		return;
	/* Whatever was not committed is forgotten. */
	bci_stage_finish(crypt_get_device_name(cd), false);
	crypt_free(cd);
}

/* ---- hostile headers ------------------------------------------------------
 *
 * libcryptsetup accepts some headers that are valid but that blockcrypt
 * must not use as they are: a key slot whose key is stored unencrypted
 * (cipher_null), key derivation costs that would take hours or more memory
 * than this process may use (checked before any derivation starts), a data
 * segment inside the header area (a detached-header layout: blockcrypt
 * would serve, and let clients overwrite, the header and key slots), and
 * requirements this libcryptsetup does not know (the LUKS2 specification:
 * such metadata is read-only).
 *
 * KDF cost limits, per key slot (and per volume key digest, which is
 * computed for every key slot tried).  cryptsetup's benchmark with the
 * default --iter-time (2 s) stays far below them; they admit about a
 * minute of --iter-time on a fast current CPU (PBKDF2-SHA256 at ~4.5
 * million iterations/s, Argon2 with 4 threads at ~4-6 GiB/s): at most
 * 2^28 PBKDF2 iterations; Argon2 time cost at most 2^14 (the benchmark
 * uses at least 64 MiB, ~5000 passes a minute) and time x memory at most
 * 2^28 KiB (256 GiB processed), at most 16 threads (cryptsetup writes at
 * most 4; each pass starts one thread per lane and slice), and memory at
 * most 4 GiB (the LUKS2 maximum), 3/4 of the RAM, and what the process's
 * rlimits and cgroup leave.  On a slow machine the worst admitted slot
 * takes a few minutes.
 */
#define KDF_PBKDF2_MAX_ITERATIONS	(UINT64_C(1) << 28)	/* 268435456 */
#define KDF_ARGON2_MAX_TIME		(UINT64_C(1) << 14)	/* 16384 passes */
#define KDF_ARGON2_MAX_WORK_KB		(UINT64_C(1) << 28)	/* time x memory: 256 GiB */
#define KDF_ARGON2_MAX_MEMORY_KB	(UINT64_C(4) << 20)	/* 4 GiB, libcryptsetup's maximum */
#define KDF_ARGON2_MAX_THREADS		16			/* cryptsetup writes at most 4 */
/* "key slot ID" or "volume key digest ID", for messages. */
#define KDF_WHAT_MAX 64
/* The names of a header's mandatory requirements, for messages. */
#define REQUIREMENT_NAMES_MAX 200

struct mem_limit {
	uint64_t kb;
	const char *why;
};

static void mem_lower(struct mem_limit *l, uint64_t bytes, const char *why)
{
	if (bytes / 1024 < l->kb) {
		l->kb = bytes / 1024;
		l->why = why;
	}
}

/* Field I (0 = total size, 5 = data + stack) of /proc/self/statm, bytes. */
static uint64_t statm_bytes(int i)
{
	unsigned long long v[7] = { 0 };
	FILE *f = fopen("/proc/self/statm", "re");

	if (!f)
		return 0;
	if (fscanf(f, "%llu %llu %llu %llu %llu %llu %llu", &v[0], &v[1], &v[2], &v[3], &v[4],
		   &v[5], &v[6]) != 7)
		v[i] = 0;
	fclose(f);
	return v[i] * (uint64_t)sysconf(_SC_PAGESIZE);
}

#define CGROUP_V1_MEMORY "/sys/fs/cgroup/memory"
#define CGROUP_V1_LIMIT "memory.limit_in_bytes"

/* The lowest memory limit of this process's cgroup and its ancestors
 * (v2 memory.max, v1 memory.limit_in_bytes); UINT64_MAX if none. */
static uint64_t cgroup_memory_limit(void)
{
	char line[PATH_MAX + 64], file[sizeof(CGROUP_V1_MEMORY) + PATH_MAX + sizeof(CGROUP_V1_LIMIT)];
	uint64_t limit = UINT64_MAX;
	FILE *f = fopen("/proc/self/cgroup", "re");

	if (!f)
		return limit;
	while (fgets(line, sizeof(line), f)) {
		char *ctrl = strchr(line, ':'), *path, *tok, *save = NULL;
		const char *base = NULL, *name = NULL;

		if (!ctrl || !(path = strchr(ctrl + 1, ':')))
			continue;
		*ctrl++ = '\0';
		*path++ = '\0';
		path[strcspn(path, "\n")] = '\0';
		if (!strcmp(line, "0") && !*ctrl) {
			base = "/sys/fs/cgroup";
			name = "memory.max";
		}
		for (tok = strtok_r(ctrl, ",", &save); tok && !base; tok = strtok_r(NULL, ",", &save))
			if (!strcmp(tok, "memory")) {
				base = CGROUP_V1_MEMORY;
				name = CGROUP_V1_LIMIT;
			}
		if (!base || path[0] != '/')
			continue;
		for (;;) {
			FILE *m;
			unsigned long long v;
			char *slash;

			snprintf(file, sizeof(file), "%s%s/%s", base, path, name);
			m = fopen(file, "re");
			if (m) {
				if (fscanf(m, "%llu", &v) == 1 && v < limit)
					limit = v; /* "max" does not scan */
				fclose(m);
			}
			slash = strrchr(path, '/');
			if (!slash || !path[0])
				break;
			*slash = '\0';
		}
	}
	fclose(f);
	return limit;
}

/* The most memory an Argon2 derivation in this process may use. */
static struct mem_limit kdf_memory_limit(void)
{
	struct mem_limit l = { KDF_ARGON2_MAX_MEMORY_KB, "the LUKS2 maximum" };
	long pages = sysconf(_SC_PHYS_PAGES), page = sysconf(_SC_PAGESIZE);
	struct rlimit rl;
	uint64_t used;

	/* cryptsetup creates key slots with at most half of the RAM; 3/4
	 * still opens a default (1 GiB) key slot on a machine with 1.5 GiB. */
	if (pages > 0 && page > 0)
		mem_lower(&l, (uint64_t)pages / 4 * 3 * (uint64_t)page, "3/4 of this machine's RAM");
	if (getrlimit(RLIMIT_AS, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY) {
		used = statm_bytes(0);
		mem_lower(&l, rl.rlim_cur > used ? rl.rlim_cur - used : 0,
			  "what is left under this process's address-space limit (ulimit -v)");
	}
	if (getrlimit(RLIMIT_DATA, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY) {
		used = statm_bytes(5);
		mem_lower(&l, rl.rlim_cur > used ? rl.rlim_cur - used : 0,
			  "what is left under this process's data-size limit (ulimit -d)");
	}
	mem_lower(&l, cgroup_memory_limit(), "this process's cgroup memory limit");
	return l;
}

#define REFUSE " (refusing before any key derivation)"

/* As libcryptsetup tells an unencrypted ("cipher_null") cipher spec. */
static bool null_cipher(const char *spec)
{
	return strstr(spec, "cipher_null") || !strcmp(spec, "null") || !strncmp(spec, "null-", 5);
}

/* One KDF (a key slot's, or a digest's when WHAT says so): its costs
 * against the limits above. */
static int check_kdf(const char *path, const char *what, const char *type, int64_t iterations,
		     int64_t memory_kb, int64_t threads, const struct mem_limit *mem)
{
	if (!strcmp(type, CRYPT_KDF_PBKDF2)) {
		if (iterations < 0 || (uint64_t)iterations > KDF_PBKDF2_MAX_ITERATIONS)
			return bci_error(-ENOTSUP, "%s: %s: pbkdf2 iteration count %lld is above the limit of %llu"
					REFUSE, path, what, (long long)iterations,
					(unsigned long long)KDF_PBKDF2_MAX_ITERATIONS);
		return 0;
	}
	if (strcmp(type, CRYPT_KDF_ARGON2I) && strcmp(type, CRYPT_KDF_ARGON2ID))
		return 0; /* libcryptsetup fails on it at once */
	if (memory_kb < 0 || (uint64_t)memory_kb > mem->kb)
		return bci_error(-ENOTSUP, "%s: %s: %s memory cost %lld KiB is more than %llu KiB, %s"
				REFUSE, path, what, type, (long long)memory_kb,
				(unsigned long long)mem->kb, mem->why);
	if (iterations < 0 || (uint64_t)iterations > KDF_ARGON2_MAX_TIME)
		return bci_error(-ENOTSUP, "%s: %s: %s time cost %lld is above the limit of %llu" REFUSE,
				path, what, type, (long long)iterations,
				(unsigned long long)KDF_ARGON2_MAX_TIME);
	if ((uint64_t)iterations * (uint64_t)memory_kb > KDF_ARGON2_MAX_WORK_KB)
		return bci_error(-ENOTSUP, "%s: %s: %s cost %lld passes over %lld KiB is above the limit of %llu KiB processed (256 GiB)"
				REFUSE, path, what, type, (long long)iterations, (long long)memory_kb,
				(unsigned long long)KDF_ARGON2_MAX_WORK_KB);
	if (threads < 0 || threads > KDF_ARGON2_MAX_THREADS)
		return bci_error(-ENOTSUP, "%s: %s: %s wants %lld threads, above the limit of %d" REFUSE,
				path, what, type, (long long)threads, KDF_ARGON2_MAX_THREADS);
	return 0;
}

static int64_t jint(json_object *o, const char *key)
{
	json_object *v;

	return json_object_object_get_ex(o, key, &v) ? json_object_get_int64(v) : 0;
}

static const char *jstr(json_object *o, const char *key)
{
	json_object *v;

	return json_object_object_get_ex(o, key, &v) ? json_object_get_string(v) : NULL;
}

static json_object *jobj(json_object *o, const char *key)
{
	json_object *v;

	return o && json_object_object_get_ex(o, key, &v) ? v : NULL;
}

/* The LUKS2 JSON metadata of CD, parsed (json_object_put it), or NULL. */
static json_object *luks2_meta(struct crypt_device *cd)
{
	const char *text = NULL;

	return crypt_dump_json(cd, &text, 0) < 0 || !text ? NULL : json_tokener_parse(text);
}

static int check_luks2_slots(const char *path, json_object *meta)
{
	struct mem_limit mem = kdf_memory_limit();
	json_object *keyslots = jobj(meta, "keyslots"), *digests = jobj(meta, "digests");
	char what[KDF_WHAT_MAX];
	int r;

	if (!json_object_is_type(keyslots, json_type_object) || !json_object_is_type(digests, json_type_object))
		return bci_error(-EBADMSG, "%s: LUKS2 metadata without keyslots or digests", path);
	json_object_object_foreach(keyslots, id, ks) {
		json_object *kdf = jobj(ks, "kdf"), *area = jobj(ks, "area");
		const char *enc = area ? jstr(area, "encryption") : NULL;
		const char *type = kdf ? jstr(kdf, "type") : NULL;

		if (enc && null_cipher(enc))
			return bci_error(-ENOTSUP, "%s: key slot %s stores the volume key unencrypted (area encryption %s); refusing",
					path, id, enc);
		if (!type)
			continue; /* not a key (a reencryption slot) */
		snprintf(what, sizeof(what), "key slot %s", id);
		r = check_kdf(path, what, type,
			      jint(kdf, !strcmp(type, CRYPT_KDF_PBKDF2) ? "iterations" : "time"),
			      jint(kdf, "memory"), jint(kdf, "cpus"), &mem);
		if (r < 0)
			return r;
	}
	json_object_object_foreach(digests, did, dg) {
		if (!jstr(dg, "type") || strcmp(jstr(dg, "type"), CRYPT_KDF_PBKDF2))
			continue;
		snprintf(what, sizeof(what), "volume key digest %s", did);
		r = check_kdf(path, what, CRYPT_KDF_PBKDF2, jint(dg, "iterations"), 0, 0, &mem);
		if (r < 0)
			return r;
	}
	return 0;
}

static int check_luks1_slots(struct crypt_device *cd, const char *path)
{
	struct mem_limit mem = kdf_memory_limit();
	unsigned char be[sizeof(uint32_t)];
	char what[KDF_WHAT_MAX];
	int fd, r;

	for (int i = 0; i < crypt_keyslot_max(CRYPT_LUKS1); i++) {
		struct crypt_pbkdf_type pbkdf;

		if (crypt_keyslot_status(cd, i) == CRYPT_SLOT_INACTIVE ||
		    crypt_keyslot_get_pbkdf(cd, i, &pbkdf) < 0)
			continue;
		snprintf(what, sizeof(what), "key slot %d", i);
		r = check_kdf(path, what, CRYPT_KDF_PBKDF2, pbkdf.iterations, 0, 0, &mem);
		if (r < 0)
			return r;
	}
	/* The volume key digest's iteration count (mkDigestIterations, a
	 * big-endian u32 at byte 164 of the LUKS1 header): libcryptsetup has
	 * no call that returns it, and it is run for every key slot tried. */
	fd = open(bci_luks_header_path(cd), O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return 0; /* the unlock reports it */
	r = pread(fd, be, sizeof(be), 164) == (ssize_t)sizeof(be);
	close(fd);
	if (!r)
		return 0;
	return check_kdf(path, "volume key digest", CRYPT_KDF_PBKDF2,
			 (int64_t)((uint32_t)be[0] << 24 | (uint32_t)be[1] << 16 | (uint32_t)be[2] << 8 | be[3]),
			 0, 0, &mem);
}

int bci_luks_check_keyslots(struct crypt_device *cd, const char *path)
{
	json_object *meta;
	int r;

	if (!strcmp(crypt_get_type(cd), CRYPT_LUKS1))
		return check_luks1_slots(cd, path);
	if (!(meta = luks2_meta(cd)))
		return bci_error(-EBADMSG, "%s: cannot read the LUKS2 metadata", path);
	r = check_luks2_slots(path, meta);
	json_object_put(meta);
	return r;
}

/* The names in config.requirements.mandatory, comma-separated. */
static void requirement_names(struct crypt_device *cd, char *buf, size_t size)
{
	json_object *meta, *list;
	size_t n = 0;

	buf[0] = '\0';
	if (!(meta = luks2_meta(cd)))
		return;
	list = jobj(jobj(jobj(meta, "config"), "requirements"), "mandatory");
	for (size_t i = 0; list && i < json_object_array_length(list) && n < size; i++)
		n += (size_t)snprintf(buf + n, size - n, "%s%s", i ? ", " : "",
				      json_object_get_string(json_object_array_get_idx(list, i)));
	json_object_put(meta);
}

int bci_luks_check_header_change(struct crypt_device *cd, const char *path, const char *doing)
{
	uint32_t req = 0;
	char names[REQUIREMENT_NAMES_MAX];

	if (crypt_persistent_flags_get(cd, CRYPT_FLAGS_REQUIREMENTS, &req) < 0 ||
	    !(req & CRYPT_REQUIREMENT_UNKNOWN))
		return 0;
	requirement_names(cd, names, sizeof(names));
	return bci_error(-ENOTSUP, "%s: header requires a feature unknown to this libcryptsetup (%s), so it is read-only: %s is refused",
			path, names[0] ? names : "?", doing);
}

int bci_luks_layout(struct crypt_device *cd, struct bc_volume_info *info)
{
	const char *type = crypt_get_type(cd), *uuid, *label, *path = bci_luks_header_path(cd);
	const char *cipher = crypt_get_cipher(cd), *mode = crypt_get_cipher_mode(cd);
	struct crypt_params_integrity ip = { 0 };
	struct bci_cipher_spec spec;
	uint64_t meta_size = 0, slots_size = 0, header_end;
	uint32_t req = 0;
	json_object *meta;
	const char *size;
	int r;

	info->type = !strcmp(type, CRYPT_LUKS1) ? BC_TYPE_LUKS1 : BC_TYPE_LUKS2;
	snprintf(info->cipher, sizeof(info->cipher), "%s%s%s", cipher ? cipher : "none",
		 mode && *mode ? "-" : "", mode ? mode : "");
	info->key_bits = (uint32_t)crypt_get_volume_key_size(cd) * 8;
	info->sector_size = (uint32_t)crypt_get_sector_size(cd);
	/* LUKS1 and LUKS2 both count IVs in 512-byte units, whatever the
	 * encryption sector size (cryptsetup maps LUKS2 without the dm-crypt
	 * iv_large_sectors option, which only plain volumes may ask for);
	 * tests/shell/interop-luks2-reencrypt-oracle.sh checks this, with
	 * 4096-byte sectors, against data cryptsetup itself encrypted. */
	info->iv_large_sectors = false;
	info->data_offset = crypt_get_data_offset(cd) * 512;
	info->iv_offset = crypt_get_iv_offset(cd);
	uuid = crypt_get_uuid(cd);
	label = info->type == BC_TYPE_LUKS2 ? crypt_get_label(cd) : NULL;
	snprintf(info->uuid, sizeof(info->uuid), "%s", uuid ? uuid : "");
	snprintf(info->label, sizeof(info->label), "%s", label ? label : "");

	/* What blockcrypt refuses; the fields above are filled either way
	 * (dump --json shows them with "supported": false). */
	if (crypt_persistent_flags_get(cd, CRYPT_FLAGS_REQUIREMENTS, &req) == 0 &&
	    (req & ~CRYPT_REQUIREMENT_UNKNOWN)) {
		char names[REQUIREMENT_NAMES_MAX];

		requirement_names(cd, names, sizeof(names));
		return bci_error(-ENOTSUP, "%s: header requires %s (0x%x: reencryption in progress?); refusing",
				path, names[0] ? names : "features blockcrypt lacks", req);
	}
	if (crypt_get_integrity_info(cd, &ip) == 0 && ip.tag_size)
		return bci_error(-ENOTSUP, "%s: authenticated (integrity) volumes are not supported", path);
	if (null_cipher(info->cipher))
		return bci_error(-ENOTSUP, "%s: the data segment is not encrypted (cipher %s); refusing",
				path, info->cipher);
	/* Refuse up front what the sector engine cannot do byte-exactly. */
	if (bci_cipher_spec_parse(info->cipher, info->key_bits, &spec) < 0 || spec.iv == BC_IV_LOFI)
		return bci_error(-ENOTSUP, "%s: cipher %s (%u-bit key) is not supported (aes xts/cbc only)",
				path, info->cipher, info->key_bits);
	/* libcryptsetup rejects a data offset inside the header area, except
	 * 0: the layout of a detached header, where the data is elsewhere.
	 * Unless the header was given as detached (--header), it is on the
	 * backing, so the data would include it. */
	if (!bci_luks_detached(cd) && crypt_get_metadata_size(cd, &meta_size, &slots_size) == 0) {
		header_end = (info->type == BC_TYPE_LUKS2 ? 2 * meta_size : meta_size) + slots_size;
		if (info->data_offset < header_end)
			return bci_error(-ENOTSUP, "%s: the data segment starts at byte %llu, inside the header and key slot area (bytes 0..%llu; a detached-header layout?); refusing",
					path, (unsigned long long)info->data_offset,
					(unsigned long long)header_end - 1);
	}
	if (info->type == BC_TYPE_LUKS1)
		return check_luks1_slots(cd, path);
	/* LUKS2: one parse of the metadata serves the segment size and the
	 * key slot checks.  A fixed-size data segment (not "dynamic") ends
	 * where it says. */
	if (!(meta = luks2_meta(cd)))
		return bci_error(-EBADMSG, "%s: cannot read the LUKS2 metadata", path);
	size = jstr(jobj(jobj(meta, "segments"), "0"), "size");
	if (size && strcmp(size, "dynamic")) {
		info->size = strtoull(size, NULL, 10);
		info->fixed_size = true;
	}
	r = check_luks2_slots(path, meta);
	json_object_put(meta);
	return r;
}

int bci_luks_count_slots(struct crypt_device *cd)
{
	int n = 0, max = crypt_keyslot_max(crypt_get_type(cd));

	for (int i = 0; i < max; i++) {
		crypt_keyslot_info ki = crypt_keyslot_status(cd, i);

		if (ki == CRYPT_SLOT_ACTIVE || ki == CRYPT_SLOT_ACTIVE_LAST)
			n++;
	}
	return n;
}

int bci_luks_check_pbkdf(const char *type, const struct bc_pbkdf_params *p)
{
	const char *kdf = p && p->type ? p->type : NULL;

	if (kdf && strcmp(kdf, CRYPT_KDF_PBKDF2) && strcmp(kdf, CRYPT_KDF_ARGON2I) &&
	    strcmp(kdf, CRYPT_KDF_ARGON2ID))
		return bci_error(-EINVAL, "pbkdf %s: expected argon2id, argon2i or pbkdf2", kdf);
	if (kdf && !strcmp(type, CRYPT_LUKS1) && strcmp(kdf, CRYPT_KDF_PBKDF2))
		return bci_error(-EINVAL, "pbkdf %s: LUKS1 supports only pbkdf2", kdf);
	/* Never write a key slot that blockcrypt itself would refuse. */
	if (p && p->iterations) {
		bool pbkdf2 = kdf ? !strcmp(kdf, CRYPT_KDF_PBKDF2) : !strcmp(type, CRYPT_LUKS1);
		uint64_t mem = p->max_memory_kb ? p->max_memory_kb : 32768;

		if (pbkdf2 && p->iterations > KDF_PBKDF2_MAX_ITERATIONS)
			return bci_error(-EINVAL, "pbkdf2: %u iterations: blockcrypt opens at most %llu",
					p->iterations, (unsigned long long)KDF_PBKDF2_MAX_ITERATIONS);
		if (!pbkdf2 && (p->iterations > KDF_ARGON2_MAX_TIME ||
				p->iterations * mem > KDF_ARGON2_MAX_WORK_KB))
			return bci_error(-EINVAL, "argon2: time cost %u with %llu KiB: blockcrypt opens at most time %llu and time x memory %llu KiB",
					p->iterations, (unsigned long long)mem,
					(unsigned long long)KDF_ARGON2_MAX_TIME,
					(unsigned long long)KDF_ARGON2_MAX_WORK_KB);
	}
	return 0;
}

int bci_luks_set_pbkdf(struct crypt_device *cd, const char *type, const struct bc_pbkdf_params *p)
{
	const struct crypt_pbkdf_type *def;
	struct crypt_pbkdf_type pbkdf;
	int r;

	if (!type) {
		const char *path = bci_luks_header_path(cd);

		type = crypt_get_type(cd);
		/* (Header changes on a read-only header were refused when it
		 * was loaded writable: bc_luks_load.) */
		r = bci_luks_check_keyslots(cd, path);
		if (r == 0)
			r = bci_luks_check_pbkdf(type, p);
		if (r < 0)
			return r;
	}
	def = crypt_get_pbkdf_default(type);
	if (!def)
		return bci_error(-EINVAL, "pbkdf: no default for this volume type");
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
		return bci_error(-EINVAL, "pbkdf %s: LUKS1 supports only pbkdf2", pbkdf.type);
	if (!strcmp(pbkdf.type, CRYPT_KDF_PBKDF2)) {
		pbkdf.max_memory_kb = 0;
		pbkdf.parallel_threads = 0;
	} else if (strcmp(pbkdf.type, CRYPT_KDF_ARGON2I) && strcmp(pbkdf.type, CRYPT_KDF_ARGON2ID)) {
		return bci_error(-EINVAL, "pbkdf %s: expected argon2id, argon2i or pbkdf2", pbkdf.type);
	}
	r = crypt_set_pbkdf_type(cd, &pbkdf);
	if (r < 0)
		return bci_luks_fail(-EINVAL, bci_luks_header_path(cd), "pbkdf parameters");
	return 0;
}

int bci_check_writable(const char *path)
{
	int fd;

	if (bc_backing_is_rbd(path)) {
		bool snapshot = false;
		int r = bc_rbd_check(path, &snapshot);

		return r < 0 ? r : snapshot ? bci_error(-EROFS, "%s: a snapshot is read-only", path) : 0;
	}
	fd = open(path, O_RDWR | O_CLOEXEC);

	if (fd < 0) {
		int e = errno;

		if (e == ENOENT)
			return bci_error(-ENOENT, "%s: no such file or device", path);
		return bci_error(e == EPERM || e == EACCES ? -EACCES : e == EROFS ? -EROFS : -e,
				"%s: cannot open for writing: %s", path, strerror(e));
	}
	close(fd);
	return 0;
}
