/* SPDX-License-Identifier: GPL-2.0-or-later */
/* The runtime directory and the files in it (see runtime.h). */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "blockcrypt.h"
#include "runtime.h"
#include "macros.h"

/* The directory, absolute: the daemon changes to "/" after the fork, so
 * a relative $BLOCKCRYPT_RUN_DIR is resolved against the caller's working
 * directory on first use (attach uses it before forking). */
const char *rt_dir(void)
{
	static char abs[PATH_MAX];
	const char *d = getenv("BLOCKCRYPT_RUN_DIR");
	char cwd[PATH_MAX];

	if (abs[0])
		return abs;
	if (!d || !*d)
		d = "/run/blockcrypt";
	if (d[0] == '/' || !getcwd(cwd, sizeof(cwd)) ||
	    (size_t)snprintf(abs, sizeof(abs), "%s/%s", cwd, d) >= sizeof(abs))
		snprintf(abs, sizeof(abs), "%s", d); /* refused by open_dir() unless absolute */
	return abs;
}

/* Why NAME is not a valid name, or NULL: it becomes a file name in the
 * runtime directory, so never '/', never a leading '.' ("..", hidden
 * temporaries), never a control character, never truncated. */
static const char *name_problem(const char *name)
{
	size_t n = strlen(name);

	if (!n)
		return "empty";
	if (n > RT_NAME_MAX)
		return "longer than 64 bytes";
	if (name[0] == '.' || name[0] == '-')
		return "must not start with '.' or '-'";
	for (const char *p = name; *p; p++)
		if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
		      *p == '.' || *p == '_' || *p == '-'))
			return "use 1-64 letters, digits, '.', '_' or '-'";
	return NULL;
}

int rt_valid_name(const char *name)
{
	const char *why = name_problem(name);

	if (why)
		return bc_set_error(-EINVAL, "name '%.80s%s': %s", name, strlen(name) > 80 ? "..." : "", why);
	return 0;
}

/* May a directory owned by ST be trusted by us?  Ours or root's, and
 * writable by nobody else (a sticky directory such as /tmp is allowed as
 * a parent only: others cannot rename or remove what is ours in it). */
static int check_dir_stat(const char *path, const struct stat *st, bool target)
{
	uid_t me = geteuid();

	if (st->st_uid != me && st->st_uid != 0)
		return bc_set_error(-EACCES, "%s: owned by uid %u, not by you or root: refusing it as the runtime directory",
				path, (unsigned)st->st_uid);
	if (S_ISLNK(st->st_mode))
		return 0; /* a link of ours or root's: its target is checked as it is opened */
	if ((st->st_mode & (S_IWGRP | S_IWOTH)) && (target || !(st->st_mode & S_ISVTX)))
		return bc_set_error(-EACCES, "%s: writable by group or others (mode %04o): refusing it as the runtime directory",
				path, (unsigned)(st->st_mode & 07777));
	return 0;
}

/* Every parent of the (absolute) runtime directory, as ssh and sudo check
 * their files: someone who may replace a parent may replace the rest. */
static int check_parents(const char *dir)
{
	char path[PATH_MAX];
	struct stat st;
	char *slash;
	int r;

	snprintf(path, sizeof(path), "%s", dir);
	while ((slash = strrchr(path, '/'))) {
		slash[slash == path] = '\0'; /* "/a" -> "/", "/" -> "" */
		if (!path[0])
			break;
		if (lstat(path, &st) < 0) {
			if (errno == ENOENT)
				continue; /* created below, by mkdir -p or not at all */
			return bc_set_error(errno_access(errno), "%s: %s", path, strerror(errno));
		}
		r = check_dir_stat(path, &st, false);
		if (r < 0)
			return r;
		if (!strcmp(path, "/"))
			break;
	}
	return 0;
}

/* The runtime directory, opened once, trusted (see check_dir_stat) and
 * kept open (the daemon inherits it across its fork): every file in it is
 * opened relative to this descriptor, never through a symlink.  Without
 * CREATE a missing directory is -ENOENT, reported to nobody. */
static int rt_fd = -1;

static int open_dir(bool create)
{
	const char *dir = rt_dir();
	struct stat st;
	int fd, r;

	if (rt_fd >= 0)
		return rt_fd;
	if (dir[0] != '/')
		return bc_set_error(-EINVAL, "BLOCKCRYPT_RUN_DIR %s: not an absolute path", dir);
	r = check_parents(dir);
	if (r < 0)
		return r;
	if (create && mkdir(dir, 0700) < 0 && errno != EEXIST)
		return bc_set_error(errno_access(errno), "%s: %s", dir, strerror(errno));
	fd = open(dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0) {
		if (errno == ENOENT && !create)
			return -ENOENT;
		if (errno == ELOOP || errno == ENOTDIR)
			return bc_set_error(-EACCES, "%s: not a directory (a symlink?): refusing it as the runtime directory", dir);
		if (errno == EACCES || errno == EPERM)
			return bc_set_error(-EACCES, "%s: permission denied (volumes attached by another user?)", dir);
		return bc_set_error(-errno, "%s: %s", dir, strerror(errno));
	}
	if (fstat(fd, &st) < 0) {
		r = bc_set_error(-errno, "%s: %s", dir, strerror(errno));
		goto out;
	}
	r = check_dir_stat(dir, &st, true);
	if (r < 0)
		goto out;
	rt_fd = fd;
	return fd;
out:
	close(fd);
	return r;
}

int rt_ensure_dir(void)
{
	int r = open_dir(true);

	return r < 0 ? r : 0;
}

/* NAME.SUFFIX into BUF (a file name in the runtime directory); -EINVAL
 * for an invalid name, even if a caller forgot to check it. */
static int file_name(char *buf, size_t size, const char *name, const char *suffix)
{
	if (name_problem(name))
		return rt_valid_name(name);
	if ((size_t)snprintf(buf, size, "%s.%s", name, suffix) >= size)
		return bc_set_error(-ENAMETOOLONG, "%s.%s: name too long", name, suffix);
	return 0;
}

int rt_path(char *buf, size_t size, const char *name, const char *suffix)
{
	char file[RT_NAME_MAX + 16];
	int r = file_name(file, sizeof(file), name, suffix);

	if (r < 0)
		return r;
	if ((size_t)snprintf(buf, size, "%s/%s", rt_dir(), file) >= size)
		return bc_set_error(-ENAMETOOLONG, "runtime path too long");
	return 0;
}

/* openat() of NAME.SUFFIX: never through a symlink; -errno, unreported. */
static int open_file(const char *name, const char *suffix, int flags, mode_t mode)
{
	char file[RT_NAME_MAX + 16];
	int dfd = open_dir(false), fd;

	if (dfd < 0)
		return dfd;
	if (file_name(file, sizeof(file), name, suffix) < 0)
		return -EINVAL;
	fd = openat(dfd, file, flags | O_NOFOLLOW | O_CLOEXEC, mode);
	return fd < 0 ? -errno : fd;
}

static void unlink_file(const char *name, const char *suffix)
{
	char file[RT_NAME_MAX + 16];
	int dfd = open_dir(false);

	if (dfd >= 0 && file_name(file, sizeof(file), name, suffix) == 0)
		unlinkat(dfd, file, 0);
}

/* Is NAME.SUFFIX a file of type TYPE (S_IFSOCK, ...) itself, no symlink? */
static bool file_is(const char *name, const char *suffix, mode_t type)
{
	char file[RT_NAME_MAX + 16];
	int dfd = open_dir(false);
	struct stat st;

	return dfd >= 0 && file_name(file, sizeof(file), name, suffix) == 0 &&
	       fstatat(dfd, file, &st, AT_SYMLINK_NOFOLLOW) == 0 && (st.st_mode & S_IFMT) == type;
}

int rt_open_log(const char *name)
{
	struct stat st;
	int fd = open_file(name, "log", O_WRONLY | O_CREAT | O_APPEND | O_NONBLOCK, 0600);

	if (fd >= 0 && (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode))) {
		close(fd);
		fd = -EINVAL;
	}
	if (fd < 0)
		return bc_set_error(fd == -ELOOP || fd == -EINVAL ? -EINVAL : fd, "%s/%s.log: %s", rt_dir(), name,
				fd == -ELOOP || fd == -EINVAL ? "not a regular file (a symlink?): remove it" : strerror(-fd));
	return fd;
}

/* State files are small: anything larger is not ours. */
#define STATE_MAX (64 * 1024)

int rt_state(const char *name, json_object **out)
{
	char buf[STATE_MAX + 1];
	struct stat st;
	size_t got = 0;
	ssize_t n;
	int fd, r;

	*out = NULL;
	r = rt_valid_name(name);
	if (r < 0)
		return r;
	fd = open_dir(false);
	if (fd < 0)
		return fd; /* -ENOENT (nothing attached) or reported */
	fd = open_file(name, "json", O_RDONLY | O_NONBLOCK, 0);
	if (fd == -ENOENT)
		return -ENOENT;
	if (fd == -EACCES || fd == -EPERM)
		return bc_set_error(-EACCES, "%s: permission denied (attached by another user?)", name);
	if (fd < 0 && fd != -ELOOP)
		return bc_set_error(fd, "%s/%s.json: %s", rt_dir(), name, strerror(-fd));
	if (fd == -ELOOP || fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) || st.st_size > STATE_MAX) {
		r = bc_set_error(-EINVAL, "%s/%s.json: not a state file (a symlink, or not a regular file)", rt_dir(), name);
		goto out;
	}
	while (got < STATE_MAX && (n = read(fd, buf + got, STATE_MAX - got)) > 0)
		got += (size_t)n;
	buf[got] = '\0';
	*out = json_tokener_parse(buf);
	r = *out && json_object_is_type(*out, json_type_object) ? 0 :
	    bc_set_error(-EINVAL, "%s/%s.json: not a state file", rt_dir(), name);
	if (r < 0) {
		json_object_put(*out);
		*out = NULL;
	}
out:
	if (fd >= 0)
		close(fd);
	return r;
}

json_object *rt_read_state(const char *name)
{
	json_object *st;

	return rt_state(name, &st) == 0 ? st : NULL;
}

/* Written to a fresh temporary (O_EXCL, never through a symlink, mode
 * 0600) and renamed over NAME.json, so readers see the old or the new. */
int rt_write_state(const char *name, json_object *state)
{
	const char *text = json_object_to_json_string_ext(state, JSON_C_TO_STRING_PRETTY | JSON_C_TO_STRING_NOSLASHESCAPE);
	char file[RT_NAME_MAX + 16], tmp[RT_NAME_MAX + 48];
	int dfd = open_dir(false), fd = -1, r;
	size_t len = strlen(text), done = 0;
	static unsigned seq;

	if (dfd < 0)
		return dfd == -ENOENT ? bc_set_error(-ENOENT, "%s: no runtime directory", rt_dir()) : dfd;
	r = file_name(file, sizeof(file), name, "json");
	if (r < 0)
		return r;
	for (int i = 0; i < 100 && fd < 0; i++) {
		snprintf(tmp, sizeof(tmp), ".%s.%ld.%u", file, (long)getpid(), seq++);
		fd = openat(dfd, tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
		if (fd < 0 && errno != EEXIST)
			break;
	}
	if (fd < 0)
		return bc_set_error(errno_access(errno), "%s/%s: cannot write state: %s", rt_dir(), file, strerror(errno));
	while (done < len) {
		ssize_t n = write(fd, text + done, len - done);

		if (n <= 0) {
			r = bc_set_error(-EIO, "%s/%s: cannot write state: %s", rt_dir(), file, strerror(n < 0 ? errno : EIO));
			goto out;
		}
		done += (size_t)n;
	}
	if (renameat(dfd, tmp, dfd, file) < 0) {
		r = bc_set_error(-EIO, "%s/%s: cannot write state: %s", rt_dir(), file, strerror(errno));
		goto out;
	}
	r = 0;
out:
	close(fd);
	if (r < 0)
		unlinkat(dfd, tmp, 0);
	return r;
}

/* By name only: a path read from a state file is never trusted (anyone
 * who could write the file would choose what root deletes).  An NBD socket
 * elsewhere (--socket) is removed by the daemon that created it. */
void rt_remove(const char *name)
{
	static const char *const suffixes[] = { "json", "ctl", "sock" };

	for (size_t i = 0; i < sizeof(suffixes) / sizeof(suffixes[0]); i++)
		unlink_file(name, suffixes[i]);
}

bool rt_pid_running(pid_t pid, bool want_blockcrypt)
{
	/* "/proc/PID/stat"; of the file, up to the state after "(comm)" */
	char path[sizeof("/proc//stat") + 3 * sizeof(int)], buf[512];
	const char *end;
	size_t n;
	FILE *f;

	if (pid <= 0 || kill(pid, 0) < 0)
		return false;
	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	f = fopen(path, "r");
	if (!f)
		return false;
	n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[n] = '\0';
	/* "PID (comm) STATE ...": a zombie has exited, it is just not reaped. */
	end = strrchr(buf, ')');
	if (!end || end[1] != ' ' || end[2] == 'Z' || end[2] == 'X')
		return false;
	return !want_blockcrypt || strstr(buf, "(blockcrypt)") != NULL;
}

/* The name claim: an OFD write lock on NAME.lock, held by the daemon for
 * as long as it serves (see runtime.h). */
static int claim_lock(int fd, short type, int cmd, struct flock *fl)
{
	*fl = (struct flock){ .l_type = type, .l_whence = SEEK_SET, .l_start = 0, .l_len = 1 };
	while (fcntl(fd, cmd, fl) < 0) {
		if (errno != EINTR)
			return -errno;
	}
	return 0;
}

/* Try once: a locked descriptor of NAME.lock that is still the file at
 * that path (a holder that exited may have unlinked it after we opened
 * it), or -EAGAIN. */
static int claim_name_once(const char *name)
{
	char file[RT_NAME_MAX + 16];
	struct stat a, b;
	struct flock fl;
	int dfd = open_dir(false), fd, r;

	if (dfd < 0)
		return dfd == -ENOENT ? bc_set_error(-ENOENT, "%s: no runtime directory", rt_dir()) : dfd;
	r = file_name(file, sizeof(file), name, "lock");
	if (r < 0)
		return r;
	fd = openat(dfd, file, O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (fd < 0)
		return bc_set_error(errno_access(errno), "%s/%s: %s", rt_dir(), file, strerror(errno));
	r = claim_lock(fd, F_WRLCK, F_OFD_SETLK, &fl);
	if (r == 0 && (fstat(fd, &a) < 0 || fstatat(dfd, file, &b, AT_SYMLINK_NOFOLLOW) < 0 ||
		       a.st_ino != b.st_ino || a.st_dev != b.st_dev))
		r = -EAGAIN;
	if (r < 0) {
		close(fd);
		return r == -EAGAIN ? r : bc_set_error(r, "%s/%s: cannot lock: %s", rt_dir(), file, strerror(-r));
	}
	return fd;
}

int rt_claim_name(const char *name)
{
	int fd;

	/* A holder that is not a daemon (list clearing a stale entry) lets go
	 * within milliseconds; a daemon never does. */
	for (int i = 0; i < 50; i++) {
		fd = claim_name_once(name);
		if (fd != -EAGAIN)
			return fd;
		usleep(20000);
	}
	return bc_set_error(-EBUSY, "%s: already attached (see blockcrypt status %s)", name, name);
}

void rt_release_name(const char *name, int fd)
{
	if (fd < 0)
		return;
	/* Unlinked while still held: a later claimant that opened the old
	 * file notices (claim_name_once) and opens the path again. */
	unlink_file(name, "lock");
	close(fd);
}

bool rt_name_claimed(const char *name)
{
	struct flock fl;
	int fd, r;

	fd = open_file(name, "lock", O_RDWR, 0);
	if (fd < 0)
		return false;
	r = claim_lock(fd, F_WRLCK, F_OFD_GETLK, &fl);
	close(fd);
	return r == 0 && fl.l_type != F_UNLCK;
}

bool rt_alive(const char *name, json_object *state)
{
	int fd;

	(void)state;
	if (rt_name_claimed(name))
		return true;
	/* A crashed or killed daemon: clear its stale entry, but only while
	 * holding the claim ourselves, so an attach that claims the name
	 * meanwhile never loses its fresh files to us. */
	fd = claim_name_once(name);
	if (fd >= 0) {
		rt_remove(name);
		rt_release_name(name, fd);
	}
	return false;
}

int rt_attached(const char *name, json_object **state)
{
	int r = rt_state(name, state);

	if (r < 0)
		return r;
	if (!rt_alive(name, *state)) {
		json_object_put(*state);
		*state = NULL;
		return -ENOENT;
	}
	return 0;
}

int rt_find(const char *name, json_object **state)
{
	int r = rt_valid_name(name);

	if (r == 0)
		r = rt_attached(name, state);
	if (r == -ENOENT)
		return bc_set_error(-ENOENT, "%s: not attached", name);
	return r;
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

int rt_list_names(char ***names, size_t *count)
{
	int dfd = open_dir(false), fd;
	struct dirent *e;
	char **v = NULL;
	size_t n = 0;
	DIR *d;

	*names = NULL;
	*count = 0;
	if (dfd < 0)
		return dfd == -ENOENT ? 0 : dfd;
	/* A descriptor of its own: readdir moves its offset. */
	fd = openat(dfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	d = fd >= 0 ? fdopendir(fd) : NULL;
	if (!d) {
		if (fd >= 0)
			close(fd);
		return bc_set_error(errno_access(errno), "%s: %s", rt_dir(), strerror(errno));
	}
	while ((e = readdir(d))) {
		size_t len = strlen(e->d_name);
		char **nv;

		if (len <= 5 || strcmp(e->d_name + len - 5, ".json"))
			continue;
		e->d_name[len - 5] = '\0';
		if (name_problem(e->d_name))
			continue; /* not a name attach could have written */
		nv = realloc(v, (n + 1) * sizeof(*v));
		if (!nv)
			break;
		v = nv;
		v[n] = strdup(e->d_name);
		if (v[n])
			n++;
	}
	closedir(d);
	if (n)
		qsort(v, n, sizeof(*v), cmp_str);
	*names = v;
	*count = n;
	return 0;
}

bool rt_is_socket(const char *name, const char *suffix)
{
	return file_is(name, suffix, S_IFSOCK);
}
