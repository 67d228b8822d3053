/* Runtime directory and control-socket client (see runtime.h). */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "core/error.h"
#include "runtime.h"

const char *rt_dir(void)
{
	const char *d = getenv("BLOCKCRYPT_RUN_DIR");

	return d && *d ? d : "/run/blockcrypt";
}

int rt_ensure_dir(void)
{
	if (mkdir(rt_dir(), 0700) < 0 && errno != EEXIST)
		return bc_error(bc_errno_access(errno), "%s: %s", rt_dir(), strerror(errno));
	return 0;
}

int rt_valid_name(const char *name)
{
	size_t n = strlen(name);

	if (!n || n > 64 || name[0] == '.' || name[0] == '-')
		return bc_error(-EINVAL, "name '%s': use 1-64 letters, digits, '.', '_' or '-'", name);
	for (const char *p = name; *p; p++)
		if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
		      *p == '.' || *p == '_' || *p == '-'))
			return bc_error(-EINVAL, "name '%s': use 1-64 letters, digits, '.', '_' or '-'", name);
	return 0;
}

int rt_path(char *buf, size_t size, const char *name, const char *suffix)
{
	if ((size_t)snprintf(buf, size, "%s/%s.%s", rt_dir(), name, suffix) >= size)
		return bc_error(-ENAMETOOLONG, "runtime path too long");
	return 0;
}

json_object *rt_read_state(const char *name)
{
	char path[512];

	if (rt_path(path, sizeof(path), name, "json") < 0)
		return NULL;
	return json_object_from_file(path);
}

int rt_write_state(const char *name, json_object *state)
{
	char path[512], tmp[520];

	if (rt_path(path, sizeof(path), name, "json") < 0)
		return -ENAMETOOLONG;
	snprintf(tmp, sizeof(tmp), "%s.tmp", path);
	if (json_object_to_file_ext(tmp, state, JSON_C_TO_STRING_PRETTY | JSON_C_TO_STRING_NOSLASHESCAPE) < 0 || rename(tmp, path) < 0) {
		unlink(tmp);
		return bc_error(-EIO, "%s: cannot write state", path);
	}
	return 0;
}

void rt_remove(const char *name)
{
	static const char *const suffixes[] = { "json", "ctl" };
	json_object *st = rt_read_state(name), *sock;
	char path[512];

	/* The NBD socket is ours only if it lives in the runtime directory. */
	if (st && json_object_object_get_ex(st, "socket", &sock)) {
		const char *p = json_object_get_string(sock);

		if (p && !strncmp(p, rt_dir(), strlen(rt_dir())))
			unlink(p);
	}
	json_object_put(st);
	for (size_t i = 0; i < sizeof(suffixes) / sizeof(suffixes[0]); i++)
		if (rt_path(path, sizeof(path), name, suffixes[i]) == 0)
			unlink(path);
}

bool rt_pid_running(pid_t pid, bool want_blockcrypt)
{
	char path[64], buf[512];
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
static int claim_once(const char *path)
{
	struct stat a, b;
	struct flock fl;
	int fd = open(path, O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0600);
	int r;

	if (fd < 0)
		return bc_error(bc_errno_access(errno), "%s: %s", path, strerror(errno));
	r = claim_lock(fd, F_WRLCK, F_OFD_SETLK, &fl);
	if (r == 0 && (fstat(fd, &a) < 0 || stat(path, &b) < 0 || a.st_ino != b.st_ino || a.st_dev != b.st_dev))
		r = -EAGAIN;
	if (r < 0) {
		close(fd);
		return r == -EAGAIN ? r : bc_error(r, "%s: cannot lock: %s", path, strerror(-r));
	}
	return fd;
}

static int claim_name_once(const char *name)
{
	char path[512];

	if (rt_path(path, sizeof(path), name, "lock") < 0)
		return -ENAMETOOLONG;
	return claim_once(path);
}

int rt_claim_name(const char *name)
{
	char path[512];
	int fd;

	if (rt_path(path, sizeof(path), name, "lock") < 0)
		return -ENAMETOOLONG;
	/* A holder that is not a daemon (list clearing a stale entry) lets go
	 * within milliseconds; a daemon never does. */
	for (int i = 0; i < 50; i++) {
		fd = claim_once(path);
		if (fd != -EAGAIN)
			return fd;
		usleep(20000);
	}
	return bc_error(-EBUSY, "%s: already attached (see blockcrypt status %s)", name, name);
}

void rt_release_name(const char *name, int fd)
{
	char path[512];

	if (fd < 0)
		return;
	/* Unlinked while still held: a later claimant that opened the old
	 * file notices (claim_once) and opens the path again. */
	if (rt_path(path, sizeof(path), name, "lock") == 0)
		unlink(path);
	close(fd);
}

bool rt_name_claimed(const char *name)
{
	char path[512];
	struct flock fl;
	int fd, r;

	if (rt_path(path, sizeof(path), name, "lock") < 0)
		return false;
	fd = open(path, O_RDWR | O_NOFOLLOW | O_CLOEXEC);
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

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

int rt_list_names(char ***names, size_t *count)
{
	DIR *d = opendir(rt_dir());
	struct dirent *e;
	char **v = NULL;
	size_t n = 0;

	*names = NULL;
	*count = 0;
	if (!d)
		return errno == ENOENT ? 0 : bc_error(-errno, "%s: %s", rt_dir(), strerror(errno));
	while ((e = readdir(d))) {
		size_t len = strlen(e->d_name);
		char **nv;

		if (len <= 5 || strcmp(e->d_name + len - 5, ".json"))
			continue;
		nv = realloc(v, (n + 1) * sizeof(*v));
		if (!nv)
			break;
		v = nv;
		v[n] = strndup(e->d_name, len - 5);
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

int rt_control(const char *name, const char *command, char *buf, size_t size, int timeout_ms)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	struct pollfd pfd;
	char line[128];
	size_t got = 0;
	int fd, r;

	if (rt_path(sa.sun_path, sizeof(sa.sun_path), name, "ctl") < 0)
		return -ENAMETOOLONG;
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	snprintf(line, sizeof(line), "%s\n", command);
	/* One send: the daemon answers as soon as it has the whole line. */
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 ||
	    send(fd, line, strlen(line), MSG_NOSIGNAL) < 0) {
		r = -errno;
		close(fd);
		return r;
	}
	pfd = (struct pollfd){ .fd = fd, .events = POLLIN };
	while (got + 1 < size) {
		ssize_t n;

		r = poll(&pfd, 1, timeout_ms);
		if (r <= 0) {
			close(fd);
			return r == 0 ? -ETIMEDOUT : -errno;
		}
		n = read(fd, buf + got, size - 1 - got);
		if (n <= 0)
			break;
		got += (size_t)n;
		if (memchr(buf + got - (size_t)n, '\n', (size_t)n))
			break;
	}
	close(fd);
	buf[got] = '\0';
	if (got && buf[got - 1] == '\n')
		buf[got - 1] = '\0';
	return got ? 0 : -ECONNRESET;
}

json_object *rt_entry(const char *name)
{
	json_object *st = rt_read_state(name), *live;
	char buf[512];

	if (!st)
		return NULL;
	if (!rt_alive(name, st)) {
		json_object_put(st);
		return NULL;
	}
	/* The live fields (clients, fuse_open) come from the daemon itself;
	 * "responding" says whether it answered, so a stalled daemon shows as
	 * such instead of as an entry that merely lacks fields. */
	if (rt_control(name, "status", buf, sizeof(buf), RT_CONTROL_TIMEOUT_MS) == 0 &&
	    (live = json_tokener_parse(buf))) {
		json_object_object_foreach(live, key, val)
			json_object_object_add(st, key, json_object_get(val));
		json_object_put(live);
		json_object_object_add(st, "responding", json_object_new_boolean(1));
	} else {
		json_object_object_add(st, "responding", json_object_new_boolean(0));
	}
	return st;
}
