/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * FUSE frontend: a directory holding one regular file, the decrypted
 * device, for losetup, zfs-fuse or plain reads and writes.
 *
 * Threading model: libfuse's multi-threaded loop runs in its own thread
 * and calls these operations from several worker threads at once; they go
 * straight to the thread-safe volume API.  The only shared state is the
 * open-handle count (atomic), which detach consults to refuse yanking a
 * file that is in use.  All of it is this frontend's state (struct
 * fuse_state), libfuse's private data.  Files are opened with direct_io so the kernel page
 * cache never holds a stale copy of data written through NBD.
 */
#define FUSE_USE_VERSION 31

#include <errno.h>
#include <fuse3/fuse.h>
#include <linux/falloc.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "blockcrypt.h"
#include "daemon.h"

struct fuse_state {
	struct daemon *d;
	struct fuse *fuse;
	pthread_t thread;
	bool mounted, looping;
	atomic_uint open_handles;
	char file_path[1 + RT_NAME_MAX + 1];   /* "/NAME" */
};

static struct fuse_state *ctx_state(void)
{
	return fuse_get_context()->private_data;
}

static struct daemon *ctx_daemon(void)
{
	return ctx_state()->d;
}

static bool is_file(const char *path)
{
	return !strcmp(path, ctx_state()->file_path);
}

static int op_getattr(const char *path, struct stat *st, struct fuse_file_info *fi)
{
	struct daemon *d = ctx_daemon();

	(void)fi;
	memset(st, 0, sizeof(*st));
	st->st_uid = getuid();
	st->st_gid = getgid();
	if (!strcmp(path, "/")) {
		st->st_mode = S_IFDIR | 0700;
		st->st_nlink = 2;
		return 0;
	}
	if (!is_file(path))
		return -ENOENT;
	st->st_mode = S_IFREG | (d->cfg.read_only ? 0400 : 0600);
	st->st_nlink = 1;
	st->st_size = (off_t)bc_volume_size(d->volume);
	st->st_blocks = (blkcnt_t)(bc_volume_size(d->volume) / 512);
	st->st_blksize = (blksize_t)d->info.sector_size;
	st->st_atime = st->st_mtime = st->st_ctime = d->started;
	return 0;
}

static int op_readdir(const char *path, void *buf, fuse_fill_dir_t fill, off_t off,
		      struct fuse_file_info *fi, enum fuse_readdir_flags flags)
{
	(void)off; (void)fi; (void)flags;
	if (strcmp(path, "/"))
		return -ENOTDIR;
	fill(buf, ".", NULL, 0, 0);
	fill(buf, "..", NULL, 0, 0);
	fill(buf, ctx_state()->file_path + 1, NULL, 0, 0);
	return 0;
}

static int op_open(const char *path, struct fuse_file_info *fi)
{
	struct daemon *d = ctx_daemon();

	if (!is_file(path))
		return -ENOENT;
	if (d->cfg.read_only && (fi->flags & O_ACCMODE) != O_RDONLY)
		return -EROFS;
	fi->direct_io = 1;
	atomic_fetch_add(&ctx_state()->open_handles, 1);
	return 0;
}

static int op_release(const char *path, struct fuse_file_info *fi)
{
	(void)path; (void)fi;
	atomic_fetch_sub(&ctx_state()->open_handles, 1);
	return 0;
}

static int op_read(const char *path, char *buf, size_t size, off_t off, struct fuse_file_info *fi)
{
	struct daemon *d = ctx_daemon();
	uint64_t end = bc_volume_size(d->volume);
	int r;

	(void)path; (void)fi;
	if (off < 0)
		return -EINVAL;
	if ((uint64_t)off >= end)
		return 0;
	if (size > end - (uint64_t)off)
		size = (size_t)(end - (uint64_t)off);
	r = bc_volume_pread(d->volume, buf, size, (uint64_t)off);
	return r < 0 ? r : (int)size;
}

static int op_write(const char *path, const char *buf, size_t size, off_t off,
		    struct fuse_file_info *fi)
{
	struct daemon *d = ctx_daemon();
	int r;

	(void)path; (void)fi;
	if (off < 0)
		return -EINVAL;
	if ((uint64_t)off >= bc_volume_size(d->volume) && size)
		return -ENOSPC;
	if (size > bc_volume_size(d->volume) - (uint64_t)off)
		size = (size_t)(bc_volume_size(d->volume) - (uint64_t)off);
	r = bc_volume_pwrite(d->volume, buf, size, (uint64_t)off);
	return r < 0 ? r : (int)size;
}

static int op_fsync(const char *path, int datasync, struct fuse_file_info *fi)
{
	(void)path; (void)datasync; (void)fi;
	return bc_volume_flush(ctx_daemon()->volume);
}

static int op_truncate(const char *path, off_t size, struct fuse_file_info *fi)
{
	struct daemon *d = ctx_daemon();

	(void)fi;
	if (!is_file(path))
		return -ENOENT;
	/* The device has a fixed size; O_TRUNC-style calls that keep it pass. */
	return (uint64_t)size == bc_volume_size(d->volume) ? 0 : -EPERM;
}

static int op_fallocate(const char *path, int mode, off_t off, off_t len, struct fuse_file_info *fi)
{
	struct daemon *d = ctx_daemon();

	(void)path; (void)fi;
	if (mode == (FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE)) {
		if (!d->cfg.allow_discards)
			return -EOPNOTSUPP;
		return bc_volume_discard(d->volume, (uint64_t)len, (uint64_t)off);
	}
	if (mode == 0 && off >= 0 && len >= 0 && (uint64_t)off + (uint64_t)len <= bc_volume_size(d->volume))
		return 0; /* already allocated: the device has a fixed size */
	return -EOPNOTSUPP;
}

static void *op_init(struct fuse_conn_info *conn, struct fuse_config *cfg)
{
	(void)conn;
	cfg->direct_io = 1;
	cfg->attr_timeout = 1;
	cfg->entry_timeout = 1;
	return fuse_get_context()->private_data;
}

static const struct fuse_operations ops = {
	.init = op_init, .getattr = op_getattr, .readdir = op_readdir, .open = op_open,
	.release = op_release, .read = op_read, .write = op_write, .fsync = op_fsync,
	.truncate = op_truncate, .fallocate = op_fallocate,
};

static void *loop_main(void *arg)
{
	struct fuse_state *fs = arg;

	fuse_loop_mt(fs->fuse, 0);
	return NULL;
}

static bool fuse_wanted(const struct daemon *d)
{
	return d->fuse_dir[0] != '\0';
}

static int fuse_start(struct daemon *d, void **state)
{
	char *argv[] = { "blockcrypt", "-o", "default_permissions,fsname=blockcrypt,subtype=blockcrypt", NULL };
	struct fuse_args args = FUSE_ARGS_INIT(3, argv);
	struct fuse_state *fs;
	struct stat st;

	*state = NULL;
	if (stat(d->fuse_dir, &st) < 0 || !S_ISDIR(st.st_mode))
		return bc_set_error(-ENOENT, "fuse: %s is not a directory", d->fuse_dir);
	fs = calloc(1, sizeof(*fs));
	if (!fs)
		return bc_set_error(-ENOMEM, "fuse: out of memory");
	*state = fs;
	fs->d = d;
	snprintf(fs->file_path, sizeof(fs->file_path), "/%s", d->name);
	fs->fuse = fuse_new(&args, &ops, sizeof(ops), fs);
	fuse_opt_free_args(&args); /* fuse_new may have copied and extended them */
	if (!fs->fuse)
		return bc_set_error(-EIO, "fuse: cannot create the session (is libfuse3/fuse3 installed?)");
	if (fuse_mount(fs->fuse, d->fuse_dir) != 0)
		return bc_set_error(-EIO, "fuse: cannot mount on %s (is /dev/fuse available?)", d->fuse_dir);
	fs->mounted = true;
	if (pthread_create(&fs->thread, NULL, loop_main, fs) != 0)
		return bc_set_error(-EAGAIN, "fuse: cannot start the loop thread");
	fs->looping = true;
	return 0;
}

static unsigned fuse_users(void *state)
{
	struct fuse_state *fs = state;

	return fs ? atomic_load(&fs->open_handles) : 0;
}

static const char *fuse_busy(void *state, char *buf, size_t size)
{
	struct fuse_state *fs = state;
	unsigned n = fuse_users(fs);

	if (!n)
		return NULL;
	snprintf(buf, size, "%s is open (%u handle%s; a loop device or pool may use it)",
		 fs->d->fuse_file, n, n == 1 ? "" : "s");
	return buf;
}

static bool fuse_stop(void *state)
{
	struct fuse_state *fs = state;

	if (!fs)
		return true;
	if (fs->looping) {
		fuse_exit(fs->fuse);
	}
	if (fs->mounted)
		fuse_unmount(fs->fuse); /* lazy: makes the loop return once unused */
	if (atomic_load(&fs->open_handles)) {
		/* Forced detach of a file still held open (a loop device...):
		 * the FUSE connection stays up until our process exits, so the
		 * loop threads cannot be joined; the daemon exits instead. */
		return false;
	}
	if (fs->looping)
		pthread_join(fs->thread, NULL);
	if (fs->fuse)
		fuse_destroy(fs->fuse);
	free(fs);
	return true;
}

static void fuse_resized(void *state)
{
	struct fuse_state *fs = state;

	/* Drop the kernel's cached size now rather than after attr_timeout. */
	if (fs->looping)
		fuse_invalidate_path(fs->fuse, fs->file_path);
}

const struct frontend_ops frontend_fuse = {
	.name = "fuse", .wanted = fuse_wanted, .start = fuse_start, .users = fuse_users,
	.busy = fuse_busy, .stop = fuse_stop, .resized = fuse_resized,
};
