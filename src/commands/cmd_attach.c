/* SPDX-License-Identifier: GPL-2.0-or-later */
/* blockcrypt attach: unlock a volume and serve it (NBD, optionally FUSE)
 * from a daemon; the equivalent of lofiadm -a / cryptsetup open. */
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "blockcrypt.h"
#include "commands/commands.h"
#include "attach/control.h"
#include "attach/daemon.h"
#include "attach/runtime.h"
#include "attach/tab.h"

/* The backing's file name without its extension, with anything a name
 * may not hold replaced by '_' (left as long as it is, for
 * rt_valid_name() to refuse rather than truncate). */
static void default_name(const char *backing, char *out, size_t size)
{
	char tmp[PATH_MAX];
	char *base, *dot;

	snprintf(tmp, sizeof(tmp), "%s", backing);
	if (bc_backing_is_rbd(tmp)) {
		/* rbd:POOL/IMAGE@SNAP:...: the image's name */
		tmp[4 + strcspn(tmp + 4, ":@")] = '\0';
		base = strrchr(tmp, '/') ? strrchr(tmp, '/') + 1 : tmp + 4;
	} else {
		base = basename(tmp);
		dot = strrchr(base, '.');
		if (dot && dot != base)
			*dot = '\0';
	}
	snprintf(out, size, "%s", base);
	for (char *p = out; *p; p++)
		if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
		      *p == '.' || *p == '_' || *p == '-'))
			*p = '_';
}

/* IN percent-encoded as an NBD URI's query value (RFC 3986): unreserved
 * characters and '/' as they are, every other byte as %XX, so a socket
 * path with a space, '&' or '%' gives a URI that libnbd and qemu read
 * back as that path.  OUT holds at least 3 * strlen(IN) + 1 bytes. */
static void uri_escape(const char *in, char *out)
{
	static const char hex[] = "0123456789ABCDEF";

	for (const unsigned char *c = (const unsigned char *)in; *c; c++) {
		if ((*c >= 'A' && *c <= 'Z') || (*c >= 'a' && *c <= 'z') || (*c >= '0' && *c <= '9') ||
		    strchr("-._~/", *c)) {
			*out++ = (char)*c;
		} else {
			*out++ = '%';
			*out++ = hex[*c >> 4];
			*out++ = hex[*c & 15];
		}
	}
	*out = '\0';
}

/* "ADDR:PORT", "[V6]:PORT" or ":PORT" (all addresses). */
static int parse_listen(struct daemon *d)
{
	const char *s = d->cfg.listen, *colon;
	int r;

	if (s[0] == '[') {
		const char *end = strchr(s, ']');

		if (!end || end[1] != ':')
			return bc_set_error(-EINVAL, "--listen %s: expected [ADDR]:PORT", s);
		snprintf(d->listen_host, sizeof(d->listen_host), "%.*s", (int)(end - s - 1), s + 1);
		colon = end + 1;
	} else {
		colon = strrchr(s, ':');
		if (!colon)
			return bc_set_error(-EINVAL, "--listen %s: expected ADDR:PORT", s);
		snprintf(d->listen_host, sizeof(d->listen_host), "%.*s", (int)(colon - s), s);
	}
	snprintf(d->listen_port, sizeof(d->listen_port), "%s", colon + 1);
	if (!d->listen_port[0] || strspn(d->listen_port, "0123456789") != strlen(d->listen_port))
		return bc_set_error(-EINVAL, "--listen %s: bad port", s);
	if (d->cfg.insecure || d->cfg.tls_certificates || d->cfg.tls_psk)
		return 0;
	/* Plaintext only where every address the name resolves to (and so
	 * every address the daemon binds, which checks again) is loopback:
	 * the text of a name says nothing ("127.lan.example"). */
	d->loopback_only = true;
	r = bc_nbd_tcp_loopback(d->listen_host, d->listen_port);
	if (r < 0)
		return r;
	if (!r)
		return bc_set_error(-EINVAL, "--listen %s: not a loopback address: give --tls-certificates DIR or "
				"--tls-psk FILE (or --insecure to serve the plaintext unauthenticated)", s);
	return 0;
}

/* TLS options, made absolute (the daemon runs in "/") and checked early. */
static int set_tls(struct daemon *d)
{
	struct attach_config *c = &d->cfg;
	const struct bc_nbd_params p = {
		.tls_certificates = c->tls_certificates, .tls_psk_file = c->tls_psk,
		.tls_verify_peer = c->tls_verify_peer,
	};
	const char **given = c->tls_certificates ? &c->tls_certificates : &c->tls_psk;
	int r = bc_nbd_params_check_tls(&p);

	if (r < 0 || !*given)
		return r;
	d->tls_path = realpath(*given, NULL);
	if (!d->tls_path)
		return bc_set_error(errno == ENOENT ? -ENOENT : -errno, "%s: %s", *given, strerror(errno));
	*given = d->tls_path;
	return 0;
}

/* A leftover socket file from a crashed daemon may be replaced; a live one not. */
static int check_socket_path(const char *path)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	struct stat st;
	int fd, r;

	if (lstat(path, &st) < 0)
		return 0;
	if (!S_ISSOCK(st.st_mode))
		return bc_set_error(-EEXIST, "%s: exists and is not a socket", path);
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", path);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	r = fd >= 0 ? connect(fd, (struct sockaddr *)&sa, sizeof(sa)) : -1;
	if (fd >= 0)
		close(fd);
	if (r == 0)
		return bc_set_error(-EBUSY, "%s: a server is already listening there", path);
	unlink(path);
	return 0;
}

/* One volume per --fuse DIR: a second mount there would hide the first
 * volume's file, and detaching either would yank the other's.  The flock
 * on the directory itself (taken before the mount-point check, so two
 * attaches racing for one DIR meet on it) is held by the daemon. */
static int claim_fuse_dir(struct daemon *d)
{
	struct statx stx;
	int fd = open(d->fuse_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);

	if (fd < 0)
		return bc_set_error(errno == ENOTDIR ? -EINVAL : -errno, "--fuse %s: %s", d->fuse_dir, strerror(errno));
	if (flock(fd, LOCK_EX | LOCK_NB) < 0) {
		close(fd);
		return bc_set_error(-EBUSY, "--fuse %s: another attached volume uses this directory", d->fuse_dir);
	}
	if (statx(fd, "", AT_EMPTY_PATH, STATX_BASIC_STATS, &stx) == 0 &&
	    (stx.stx_attributes_mask & STATX_ATTR_MOUNT_ROOT) && (stx.stx_attributes & STATX_ATTR_MOUNT_ROOT)) {
		close(fd);
		return bc_set_error(-EBUSY, "--fuse %s: already a mount point (unmount it, or give another directory)",
				d->fuse_dir);
	}
	d->fuse_dir_fd = fd;
	return 0;
}

static int print_result(const struct cli_opts *o, const struct daemon *d)
{
	if (o->json) {
		json_object *st = NULL;

		control_entry(d->name, &st);
		cli_print_json(st ? st : json_object_new_object());
		return 0;
	}
	printf("%s\n", d->uri);
	if (d->fuse_dir[0])
		printf("%s\n", d->fuse_file);
	return 0;
}

static int run_hook(const struct daemon *d)
{
	return attach_hook_run(d, true);
}

static int run_detached(struct cli_opts *o, struct daemon *d)
{
	char log_path[PATH_MAX], line[DAEMON_READY_MAX] = "";
	int pipefd[2], status = 0, code, log_fd;
	ssize_t n, got = 0;
	pid_t pid;

	if (rt_path(log_path, sizeof(log_path), d->name, "log") < 0)
		return -ENAMETOOLONG;
	/* Opened here, where a refusal (a symlink planted as NAME.log) can
	 * still be reported, and never through a symlink. */
	log_fd = rt_open_log(d->name);
	if (log_fd < 0)
		return log_fd;
	if (pipe2(pipefd, O_CLOEXEC) < 0) {
		close(log_fd);
		return bc_set_error(-EIO, "attach: cannot set up the daemon");
	}
	fflush(NULL);
	bc_rbd_before_fork();
	pid = fork();
	if (pid < 0) {
		close(log_fd);
		return bc_set_error(-errno, "attach: fork: %s", strerror(errno));
	}
	if (pid == 0) {
		int fd;

		close(pipefd[0]);
		/* A new Ceph client: the parent's is not in this process. */
		code = bc_rbd_after_fork_child();
		if (code < 0) {
			dprintf(pipefd[1], "ERR %d %s\n", bc_exit_code(code), bc_last_error());
			_exit(1);
		}
		setsid();
		if (chdir("/") < 0) { /* keep going: nothing depends on the cwd */ }
		fd = open("/dev/null", O_RDWR);
		dup2(fd, STDIN_FILENO);
		dup2(fd, STDOUT_FILENO);
		dup2(log_fd, STDERR_FILENO);
		close(log_fd);
		code = daemon_run(d, pipefd[1]);
		bc_volume_close(d->volume);
		/* (An RBD image's lock is not the kernel's to drop at exit.) */
		bc_backing_unlock(d->backing_lock);
		bc_backing_unlock(d->header_lock);
		_exit(code);
	}
	close(pipefd[1]);
	close(log_fd);
	/* The parent's copy of the key schedules goes now, and so do its
	 * descriptors of the locks the daemon holds (or later attaches of
	 * attach --all would inherit them, and hold them beyond a detach). */
	bc_volume_close(d->volume);
	d->volume = NULL;
	bc_backing_unlock(d->backing_lock);
	d->backing_lock = NULL;
	bc_backing_unlock(d->header_lock);
	d->header_lock = NULL;
	close(d->name_fd);
	d->name_fd = -1;
	if (d->fuse_dir_fd >= 0)
		close(d->fuse_dir_fd);
	d->fuse_dir_fd = -1;
	while ((size_t)got < sizeof(line) - 1 &&
	       (n = read(pipefd[0], line + got, sizeof(line) - 1 - (size_t)got)) > 0)
		got += n;
	close(pipefd[0]);
	line[got] = '\0';
	line[strcspn(line, "\n")] = '\0';
	if (!strcmp(line, "OK")) {
		print_result(o, d);
		return run_hook(d);
	}
	if (sscanf(line, "ERR %d", &code) == 1) {
		const char *msg = strchr(line + 4, ' ');

		waitpid(pid, &status, 0);
		return bc_set_error(bc_errno_for_exit(code), "%s", msg ? msg + 1 : "attach failed");
	}
	waitpid(pid, &status, 0);
	return bc_set_error(-EIO, "attach: the daemon exited before serving (see %s)", log_path);
}

static void free_daemonp(struct daemon **d)
{
	if (*d) {
		/* (set only when attach failed before the daemon took over) */
		bc_volume_close((*d)->volume);
		bc_backing_unlock((*d)->backing_lock);
		bc_backing_unlock((*d)->header_lock);
		rt_release_name((*d)->name, (*d)->name_fd);
		if ((*d)->fuse_dir_fd >= 0)
			close((*d)->fuse_dir_fd);
		free((*d)->tls_path);
	}
	free(*d);
}

static int attach_one(struct cli_opts *o)
{
	__attribute__((cleanup(free_daemonp))) struct daemon *d = NULL;
	char real[PATH_MAX], name[PATH_MAX];
	bool tls;
	int r;

	d = calloc(1, sizeof(*d));
	if (!d)
		return bc_set_error(-ENOMEM, "out of memory");
	d->name_fd = -1;
	d->fuse_dir_fd = -1;
	if (bc_backing_is_rbd(o->args[0])) {
		if (strlen(o->args[0]) >= sizeof(d->backing))
			return bc_set_error(-ENAMETOOLONG, "%s: too long", o->args[0]);
		snprintf(real, sizeof(real), "%s", o->args[0]);
	} else if (!realpath(o->args[0], real))
		return bc_set_error(errno == ENOENT ? -ENOENT : -errno, "%s: %s", o->args[0], strerror(errno));
	snprintf(d->backing, sizeof(d->backing), "%s", real);
	/* The detached header, canonical too: the daemon runs in "/", and
	 * the state file shows it. */
	if (o->header && (bc_backing_is_rbd(o->header) || !realpath(o->header, d->header)))
		return bc_set_error(bc_backing_is_rbd(o->header) ? -ENOTSUP : errno == ENOENT ? -ENOENT : -errno,
				"--header %s: %s", o->header, bc_backing_is_rbd(o->header) ?
				"a detached header on an RBD image is not supported" : strerror(errno));
	/* Checked before it is copied: a long name is refused, not cut. */
	default_name(real, name, sizeof(name));
	r = rt_valid_name(o->name ? o->name : name);
	if (r < 0 && !o->name) {
		char msg[BC_ERROR_MAX];

		snprintf(msg, sizeof(msg), "%s", bc_last_error());
		return bc_set_error(r, "%s (give --name NAME)", msg);
	}
	if (r < 0)
		return r;
	/* Validated: at most RT_NAME_MAX bytes, so it fits d->name. */
	memcpy(d->name, o->name ? o->name : name, strlen(o->name ? o->name : name) + 1);
	d->cfg = o->cfg;
	d->cfg.header = d->header[0] ? d->header : NULL;
	if (!d->cfg.threads && bc_backing_is_rbd(d->backing))
		d->cfg.threads = ATTACH_RBD_THREADS;
	if (o->socket && o->listen)
		return bc_set_error(-EINVAL, "attach: give --socket or --listen, not both");
	r = set_tls(d);
	if (r < 0)
		return r;
	tls = d->tls_path != NULL;
	if (o->listen) {
		r = parse_listen(d);
		if (r < 0)
			return r;
		snprintf(d->uri, sizeof(d->uri), strchr(d->listen_host, ':') ? "%s://[%s]:%s/%s" : "%s://%s:%s/%s",
			 tls ? "nbds" : "nbd", d->listen_host, d->listen_port, d->name);
	} else {
		char path[PATH_MAX];

		if (o->socket && o->socket[0] != '/') {
			char cwd[PATH_MAX];

			/* The daemon runs in "/": make the path absolute now. */
			if (!getcwd(cwd, sizeof(cwd)) ||
			    (size_t)snprintf(path, sizeof(path), "%s/%s", cwd, o->socket) >= sizeof(path))
				return bc_set_error(-ENAMETOOLONG, "--socket %s: path too long", o->socket);
		} else if (o->socket)
			snprintf(path, sizeof(path), "%s", o->socket);
		else if (rt_path(path, sizeof(path), d->name, "sock") < 0)
			return -ENAMETOOLONG;
		if (strlen(path) >= sizeof(d->socket_path))
			return bc_set_error(-ENAMETOOLONG, "%s: socket path too long", path);
		memcpy(d->socket_path, path, strlen(path) + 1);
		{
			char escaped[3 * sizeof(d->socket_path) + 1];

			/* (the name is letters, digits, '.', '_', '-': nothing to escape) */
			uri_escape(d->socket_path, escaped);
			snprintf(d->uri, sizeof(d->uri), "%s+unix:///%s?socket=%s", tls ? "nbds" : "nbd", d->name,
				 escaped);
		}
	}
	if (o->fuse_dir) {
		struct stat st;

		if (stat(o->fuse_dir, &st) < 0 && errno == ENOTCONN)
			umount2(o->fuse_dir, MNT_DETACH); /* left by a killed daemon */
		if (!realpath(o->fuse_dir, real))
			return bc_set_error(-ENOENT, "--fuse %s: %s", o->fuse_dir, strerror(errno));
		snprintf(d->fuse_dir, sizeof(d->fuse_dir), "%s", real);
		snprintf(d->fuse_file, sizeof(d->fuse_file), "%s/%s", d->fuse_dir, d->name);
	}
	/* The name first: whoever claims it owns every file of that name in
	 * the runtime directory, so what is there now is a dead daemon's. */
	r = rt_ensure_dir();
	if (r < 0)
		return r;
	r = rt_claim_name(d->name);
	if (r < 0)
		return r;
	d->name_fd = r;
	rt_remove(d->name);
	if (d->socket_path[0]) {
		r = check_socket_path(d->socket_path);
		if (r < 0)
			return r;
	}
	if (d->fuse_dir[0]) {
		r = claim_fuse_dir(d);
		if (r < 0)
			return r;
	}

	r = bc_backing_lock(d->backing, o->read_only ? BC_LOCK_DATA_READ : BC_LOCK_DATA_WRITE, rt_dir(),
			    &d->backing_lock);
	if (r < 0)
		return r;
	if (d->header[0] && !bc_backing_same(d->header, d->backing)) {
		r = bc_backing_lock(d->header, o->read_only ? BC_LOCK_DATA_READ : BC_LOCK_DATA_WRITE, rt_dir(),
				    &d->header_lock);
		if (r < 0)
			return r;
	}
	r = cli_open_volume(o, d->backing, o->read_only, &d->volume);
	if (r < 0)
		return r;
	/* The header was needed to unlock; the daemon serves data only, and
	 * holds no staged header copy (RBD) or its Ceph client. */
	bc_drop_staged_headers();
	bc_volume_get_info(d->volume, &d->info);
	if (o->foreground) {
		print_result(o, d);
		fflush(stdout);
		r = daemon_run(d, -1);
		bc_volume_close(d->volume);
		bc_backing_unlock(d->backing_lock);
		bc_backing_unlock(d->header_lock);
		exit(r);
	}
	return run_detached(o, d);
}

static int attach_tab(struct cli_opts *o)
{
	const char *file = o->tab ? o->tab : TAB_DEFAULT;
	struct tab_entry *e = NULL;
	size_t n = 0;
	int errors = 0, r, first = 0;

	r = tab_read(file, &e, &n, &errors);
	if (r < 0)
		return r;
	if (o->from_tab) {
		const struct tab_entry *t = tab_find(e, n, o->from_tab);

		if (!t) {
			r = bc_set_error(-ENOENT, "%s: no entry named %s%s", file, o->from_tab,
				     errors ? " (some lines have errors, see above)" : "");
		} else {
			struct cli_opts one = *o;
			char *backing = t->backing;

			tab_to_config(t, &one.cfg);
			one.args = &backing;
			one.nargs = 1;
			r = attach_one(&one);
			if (r < 0) {
				char msg[BC_ERROR_MAX];

				snprintf(msg, sizeof(msg), "%s", bc_last_error());
				bc_set_error(r, "%s:%d: %s: %s", file, t->line, t->name, msg);
			}
		}
		tab_free(e, n);
		return r;
	}
	for (size_t i = 0; i < n; i++) {
		struct cli_opts one = *o;
		json_object *st;
		bool alive;

		if (e[i].cfg.noauto)
			continue;
		st = NULL;
		alive = rt_attached(e[i].name, &st) == 0;
		json_object_put(st);
		if (alive) {
			fprintf(stderr, "%s: already attached\n", e[i].name);
			continue;
		}
		tab_to_config(&e[i], &one.cfg);
		one.args = &e[i].backing;
		one.nargs = 1;
		/* One volume failing (wrong key, missing token) must not stop
		 * the others: report it with its line and go on. */
		r = attach_one(&one);
		if (r < 0) {
			/* nofail (crypttab): said, but not a failure of the whole. */
			fprintf(stderr, "blockcrypt: %s:%d: %s: %s%s\n", file, e[i].line, e[i].name, bc_last_error(),
				e[i].cfg.nofail ? " (nofail: going on)" : "");
			if (!first && !e[i].cfg.nofail)
				first = r;
		}
	}
	tab_free(e, n);
	if (first || errors)
		return bc_set_error(first ? first : -EINVAL, "attach --all: %s", first ? "some volumes were not attached" :
				"the tab file has errors (see above)");
	return 0;
}

int cmd_attach(struct cli_opts *o)
{
	if (o->all || o->from_tab) {
		if (o->nargs || (o->all && o->from_tab))
			return bc_set_error(-EINVAL, "attach: give VOLUME, --all or --from-tab NAME");
		return attach_tab(o);
	}
	if (o->nargs != 1)
		return bc_set_error(-EINVAL, "usage: blockcrypt attach VOLUME | --all | --from-tab NAME");
	return attach_one(o);
}
