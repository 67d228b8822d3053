/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Advisory locks on a backing store (see backing_lock.h).
 *
 * Open file description (OFD) locks, fcntl(F_OFD_SETLK), on two bytes far
 * beyond anything a header or data area uses (the lock range need not
 * exist in the file): one for the data, one for the header.  They are
 * keyed by the inode, so a hard link, a symlink, a bind mount or another
 * runtime directory all meet the same lock; they belong to the open file,
 * so the attach daemon keeps the lock its parent took across fork(); and
 * the kernel drops them when the last descriptor goes, so a kill -9 frees
 * them at once.  They do not interact with the flock() locks libcryptsetup
 * takes on image files around its own metadata updates (Linux keeps the
 * two kinds apart), so we never deadlock against libcryptsetup in our own
 * process, and cryptsetup still serialises with us through those.
 *
 * Threading: a lock object is used by one thread; nothing is shared.
 */
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include <json-c/json.h>

#include "backing/backing.h"
#include "backing/backing_lock.h"
#include "core/error.h"

/* A line of /proc/PID/fdinfo/FD: a lock line is far shorter. */
#define FDINFO_LINE_MAX 256
/* A command name (the kernel's are at most 16 bytes) or our stand-in. */
#define COMM_MAX 64

/* "bc" in ASCII: far past qemu's image locks (bytes 100-300). */
#define LOCK_BASE 0x62630000LL
#define LOCK_DATA_BYTE (LOCK_BASE + 0)
#define LOCK_HEADER_BYTE (LOCK_BASE + 1)

struct bc_backing_lock {
	int fd;
	void *rbd; /* an RBD image's exclusive lock */
};

int bc_backing_check_type(const char *path)
{
	struct stat st;

	if (bc_backing_is_rbd(path))
		return bc_rbd_check(path, NULL);
	/* stat() first: open() of a FIFO would wait for a writer forever. */
	if (stat(path, &st) < 0)
		return bci_error(bci_errno_access(errno), "%s: %s", path, strerror(errno));
	if (!S_ISREG(st.st_mode) && !S_ISBLK(st.st_mode))
		return bci_error(-EINVAL, "%s: not a regular file or block device (%s)", path,
				S_ISFIFO(st.st_mode) ? "a FIFO" : S_ISCHR(st.st_mode) ? "a character device" :
				S_ISDIR(st.st_mode) ? "a directory" : S_ISSOCK(st.st_mode) ? "a socket" :
				"another kind of file");
	return 0;
}

bool bc_backing_same(const char *a, const char *b)
{
	struct stat sa, sb;

	if (bc_backing_is_rbd(a) || bc_backing_is_rbd(b))
		return !strcmp(a, b);
	return stat(a, &sa) == 0 && stat(b, &sb) == 0 && sa.st_dev == sb.st_dev && sa.st_ino == sb.st_ino;
}

/* The pid of a process holding an OFD lock on DEV:INO over BYTE, from
 * /proc/PID/fdinfo (OFD locks report no owner pid through F_OFD_GETLK). */
static pid_t find_holder(dev_t dev, ino_t ino, long long byte)
{
	DIR *proc = opendir("/proc");
	struct dirent *p;
	pid_t found = 0, self = getpid();

	if (!proc)
		return 0;
	while (!found && (p = readdir(proc))) {
		char path[sizeof("/proc//fdinfo/") + 2 * NAME_MAX], line[FDINFO_LINE_MAX];
		struct dirent *f;
		DIR *fds;

		if (!isdigit((unsigned char)p->d_name[0]) || atoi(p->d_name) == self)
			continue;
		snprintf(path, sizeof(path), "/proc/%s/fdinfo", p->d_name);
		fds = opendir(path);
		if (!fds)
			continue;
		while (!found && (f = readdir(fds))) {
			FILE *in;

			if (!isdigit((unsigned char)f->d_name[0]))
				continue;
			snprintf(path, sizeof(path), "/proc/%s/fdinfo/%s", p->d_name, f->d_name);
			in = fopen(path, "r");
			if (!in)
				continue;
			while (fgets(line, sizeof(line), in)) {
				unsigned maj, min;
				unsigned long long i;
				long long start, end;
				char *s = strstr(line, "OFDLCK");

				if (!s || !(s = strstr(s, " -1 ")) ||
				    sscanf(s + 4, "%x:%x:%llu %lld %lld", &maj, &min, &i, &start, &end) != 5)
					continue;
				if (makedev(maj, min) == dev && i == (unsigned long long)ino &&
				    start <= byte && byte <= end) {
					found = (pid_t)atoi(p->d_name);
					break;
				}
			}
			fclose(in);
		}
		closedir(fds);
	}
	closedir(proc);
	return found;
}

/* The name under which PID serves a volume in RUNTIME_DIR, if any. */
static int daemon_name(const char *runtime_dir, pid_t pid, char *name, size_t size)
{
	DIR *d = runtime_dir ? opendir(runtime_dir) : NULL;
	struct dirent *e;
	int found = 0;

	if (!d)
		return 0;
	while (!found && (e = readdir(d))) {
		size_t len = strlen(e->d_name);
		char path[PATH_MAX];
		json_object *st, *v;

		if (len <= 5 || strcmp(e->d_name + len - 5, ".json") || e->d_name[0] == '.')
			continue;
		if ((size_t)snprintf(path, sizeof(path), "%s/%s", runtime_dir, e->d_name) >= sizeof(path))
			continue;
		st = json_object_from_file(path);
		if (st && json_object_object_get_ex(st, "pid", &v) && json_object_get_int(v) == pid) {
			snprintf(name, size, "%.*s", (int)(len - 5), e->d_name);
			found = 1;
		}
		json_object_put(st);
	}
	closedir(d);
	return found;
}

static int busy_error(const char *path, const struct stat *st, long long byte, const char *runtime_dir)
{
	pid_t pid = find_holder(st->st_dev, st->st_ino, byte);
	char name[NAME_MAX + 1], comm[COMM_MAX] = "another process";
	FILE *f;

	if (!pid)
		return bci_error(-EBUSY, "%s is in use by another process", path);
	if (daemon_name(runtime_dir, pid, name, sizeof(name)))
		return bci_error(-EBUSY, "%s is attached as '%s', pid %d", path, name, (int)pid);
	snprintf(name, sizeof(name), "/proc/%d/comm", (int)pid);
	if ((f = fopen(name, "r"))) {
		if (fgets(comm, sizeof(comm), f))
			comm[strcspn(comm, "\n")] = '\0';
		fclose(f);
	}
	return bci_error(-EBUSY, "%s is in use by %s, pid %d", path, comm, (int)pid);
}

static int set_lock(int fd, short type, long long byte)
{
	struct flock fl = { .l_type = type, .l_whence = SEEK_SET, .l_start = byte, .l_len = 1 };

	for (;;) {
		if (fcntl(fd, F_OFD_SETLK, &fl) == 0)
			return 0;
		if (errno != EINTR)
			return -errno;
	}
}

/* On RBD the one lock is the image's exclusive lock, held by one client in
 * the whole cluster: a reader takes none (a snapshot, or data that may
 * change under it, as with a file read while attached elsewhere). */
static int rbd_lock(const char *path, bool write, struct bc_backing_lock **out)
{
	struct bc_backing_lock *l = calloc(1, sizeof(*l));
	int r;

	if (!l)
		return bci_error(-ENOMEM, "out of memory");
	l->fd = -1;
	r = write ? bci_rbd_lock(path, &l->rbd) : bc_rbd_check(path, NULL);
	if (r < 0) {
		free(l);
		return r;
	}
	*out = l;
	return 0;
}

int bc_backing_lock(const char *path, unsigned what, const char *runtime_dir,
		    struct bc_backing_lock **out)
{
	bool write = what & (BC_LOCK_DATA_WRITE | BC_LOCK_HEADER);
	struct bc_backing_lock *l = NULL;
	struct stat st;
	int fd = -1, r;

	*out = NULL;
	if (bc_backing_is_rbd(path))
		return rbd_lock(path, write, out);
	r = bc_backing_check_type(path);
	if (r < 0)
		return r;
	/* A write lock needs a descriptor open for writing; one that cannot
	 * be had is the same access error the write itself would meet. */
	fd = open(path, (write ? O_RDWR : O_RDONLY) | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
	if (fd < 0)
		return bci_error(bci_errno_access(errno), "%s: cannot open%s: %s", path,
				write ? " for writing" : "", strerror(errno));
	if (fstat(fd, &st) < 0) {
		r = bci_error(-errno, "%s: %s", path, strerror(errno));
		goto out;
	}
	if (what & (BC_LOCK_DATA_READ | BC_LOCK_DATA_WRITE)) {
		r = set_lock(fd, what & BC_LOCK_DATA_WRITE ? F_WRLCK : F_RDLCK, LOCK_DATA_BYTE);
		if (r == -EAGAIN) {
			r = busy_error(path, &st, LOCK_DATA_BYTE, runtime_dir);
			goto out;
		}
		if (r < 0) {
			r = bci_error(r, "%s: cannot lock: %s", path, strerror(-r));
			goto out;
		}
	}
	if (what & BC_LOCK_HEADER) {
		r = set_lock(fd, F_WRLCK, LOCK_HEADER_BYTE);
		if (r == -EAGAIN) {
			char why[BC_ERROR_MAX];

			r = busy_error(path, &st, LOCK_HEADER_BYTE, runtime_dir);
			snprintf(why, sizeof(why), "%s", bc_last_error());
			bci_error(r, "%s (changing its header)", why);
			goto out;
		}
		if (r < 0) {
			r = bci_error(r, "%s: cannot lock: %s", path, strerror(-r));
			goto out;
		}
	}
	l = calloc(1, sizeof(*l));
	if (!l) {
		r = bci_error(-ENOMEM, "out of memory");
		goto out;
	}
	l->fd = fd;
	fd = -1;
	*out = l;
	r = 0;
out:
	if (fd >= 0)
		close(fd);
	return r;
}

void bc_backing_unlock(struct bc_backing_lock *l)
{
	if (!l)
		return;
	if (l->fd >= 0)
		close(l->fd);
	bci_rbd_unlock(l->rbd);
	free(l);
}
