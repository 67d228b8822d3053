/* SPDX-License-Identifier: GPL-2.0-or-later */
/* blockcrypt format: create a LUKS volume. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "blockcrypt.h"
#include "commands/commands.h"
#include "attach/runtime.h"
#include "attach/macros.h"

/* Lock BACKING for format (data and header), creating it empty first
 * when it does not exist (*CREATED then says so). */
static int lock_backing(const char *backing, uint64_t size, struct bc_backing_lock **lock, bool *created)
{
	int fd;

	if (bc_backing_is_rbd(backing)) {
		int r = size ? bc_rbd_create(backing, size) : -EEXIST;

		if (r < 0 && r != -EEXIST)
			return r;
		*created = r == 0;
		bc_clear_error();
		return bc_backing_lock(backing, BC_LOCK_DATA_WRITE | BC_LOCK_HEADER, rt_dir(), lock);
	}
	fd = open(backing, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (fd >= 0) {
		close(fd);
		*created = true;
	} else if (errno != EEXIST) {
		return bc_set_error(errno_access(errno), "%s: %s", backing, strerror(errno));
	}
	return bc_backing_lock(backing, BC_LOCK_DATA_WRITE | BC_LOCK_HEADER, rt_dir(), lock);
}

/* Create the detached header file HEADER when missing (*CREATED then
 * says so) and lock it as the backing is locked: two formats, or a format
 * and a key change, never write one header file at once. */
static int lock_header(const char *header, const char *backing, struct bc_backing_lock **lock, bool *created)
{
	int fd;

	if (bc_backing_same(header, backing))
		return bc_set_error(-EINVAL, "format: --header %s is the backing itself", header);
	if (bc_backing_is_rbd(header))
		return bc_set_error(-ENOTSUP, "%s: a detached header (--header) on an RBD image is not supported", header);
	fd = open(header, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (fd >= 0) {
		close(fd);
		*created = true;
	} else if (errno != EEXIST) {
		return bc_set_error(errno_access(errno), "%s: %s", header, strerror(errno));
	}
	return bc_backing_lock(header, BC_LOCK_DATA_WRITE | BC_LOCK_HEADER, rt_dir(), lock);
}

int cmd_format(struct cli_opts *o)
{
	const char *backing = o->args[0];
	struct bc_format_params p = {
		.type = o->type_set ? o->type : BC_TYPE_LUKS2, .cipher = o->cipher,
		.key_bits = o->key_bits, .sector_size = o->sector_size, .label = o->label,
		.pbkdf = o->pbkdf, .create_size = o->size, .wipe = !o->no_wipe, .header = o->header,
		.progress = cli_progress, .progress_user = cli_progress_state(o, "Wiping", o->args[0]),
	};
	_cleanup_key_ struct bc_secret *pass = NULL;
	struct bc_backing_lock *lock = NULL, *hlock = NULL;
	bool created = false, header_created = false;
	struct stat st;
	int r;

	if (p.type == BC_TYPE_AUTO)
		p.type = BC_TYPE_LUKS2;
	if (p.type == BC_TYPE_PLAIN)
		return bc_set_error(-EINVAL, "format: plain volumes have no header; use cat/write with --type plain");
	if (bc_backing_is_rbd(backing)) {
		r = bc_rbd_check(backing, NULL);
		if (r < 0 && (r != -ENOENT || !o->size)) {
			char why[BC_ERROR_MAX];

			snprintf(why, sizeof(why), "%s", bc_last_error());
			return r == -ENOENT ? bc_set_error(r, "%s (give --size to create the image)", why) : r;
		}
		if (r == 0) {
			r = cli_confirm(o, "This will overwrite data on %s irrevocably.", backing);
			if (r < 0)
				return r;
		}
	} else if (stat(backing, &st) < 0) {
		if (errno != ENOENT || !o->size)
			return bc_set_error(errno == ENOENT ? -ENOENT : -errno,
					"%s: does not exist (give --size to create a file)", backing);
	} else if (st.st_size > 0 || S_ISBLK(st.st_mode)) {
		r = cli_confirm(o, "This will overwrite data on %s irrevocably.", backing);
		if (r < 0)
			return r;
	}
	if (o->header && stat(o->header, &st) == 0 && (st.st_size > 0 || S_ISBLK(st.st_mode))) {
		r = cli_confirm(o, "This will overwrite the header file %s irrevocably.", o->header);
		if (r < 0)
			return r;
	}
	r = cli_get_key(o, o->key_file, "Enter passphrase for the new volume: ", true, &pass);
	if (r < 0)
		return r;
	r = lock_backing(backing, o->size, &lock, &created);
	if (r == 0 && o->header)
		r = lock_header(o->header, backing, &hlock, &header_created);
	if (r == 0)
		r = bc_format(backing, &p, pass);
	/* (The header file likewise, under its lock.) */
	if (r < 0 && header_created && hlock)
		unlink(o->header);
	bc_backing_unlock(hlock);
	/* A failed format leaves no file behind that it created (a full disk,
	 * an impossible --size, an interrupted wipe); the lock, still held,
	 * keeps anyone else from having opened it meanwhile. */
	if (r < 0 && created && lock && !bc_backing_is_rbd(backing))
		unlink(backing);
	bc_backing_unlock(lock);
	if (r < 0 && created && bc_backing_is_rbd(backing)) {
		/* Every handle closed first: an image with watchers stays. */
		bc_rbd_remove(backing);
	}
	if (r < 0)
		return r;
	fprintf(stderr, "%s: formatted as %s%s%s%s\n", backing, bc_volume_type_name(p.type),
		o->header ? " with its header in " : "", o->header ? o->header : "",
		p.wipe ? ", data area wiped" : " (data area not wiped)");
	return 0;
}
