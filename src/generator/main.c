/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * blockcrypt-generator: a systemd generator (systemd.generator(7)) that
 * makes one service per line of /etc/blockcrypttab, as
 * systemd-cryptsetup-generator does for /etc/crypttab.  Its units and
 * options are described in docs/blockcrypt-generator.8.md.
 *
 *   blockcrypt-generator [--tab FILE] NORMAL_DIR [EARLY_DIR LATE_DIR]
 *
 * systemd runs it at boot and at each daemon-reload, with the three
 * directories only; --tab (not in systemd's calling convention) is for
 * tests and for trying a tab file out.  Single-threaded, short-lived; its
 * messages go to stderr, which systemd sends to the kernel log.  A line
 * of the tab file that cannot be parsed, or whose unit cannot be made, is
 * reported and skipped: the others still get their units.
 */
#include <errno.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "blockcrypt.h"
#include "attach/tab.h"

#define PROG "blockcrypt-generator"
/* systemd's UNIT_NAME_MAX, the terminating NUL included. */
#define UNIT_NAME_MAX 256
#define TARGET "blockcrypt.target"
#define UNIT_PREFIX "blockcrypt-attach@"

/* ---- systemd's escaping (systemd.unit(5) "STRING ESCAPING") ------------ */

static bool plain_char(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
	       c == ':' || c == '_' || c == '.';
}

/* S as `systemd-escape` writes it ('/' becomes '-', a leading '.' and
 * anything but [A-Za-z0-9:_.] become \xNN), appended to OUT (SIZE bytes,
 * holding a string). */
static int escape_append(const char *s, char *out, size_t size)
{
	size_t n = strlen(out);

	for (const char *c = s; *c; c++) {
		int w;

		if (*c == '/')
			w = snprintf(out + n, size - n, "-");
		else if (plain_char(*c) && !(c == s && *c == '.'))
			w = snprintf(out + n, size - n, "%c", *c);
		else
			w = snprintf(out + n, size - n, "\\x%02x", (unsigned char)*c);
		if (w < 0 || (size_t)w >= size - n)
			return -ENAMETOOLONG;
		n += (size_t)w;
	}
	return 0;
}

/* The unit name of an absolute PATH with SUFFIX (".device"), as
 * `systemd-escape --path --suffix`: refused unless PATH is normalized
 * (no "//", no "." or ".." component, no trailing "/"). */
static int path_unit(const char *path, const char *suffix, char *out, size_t size)
{
	int r;

	if (path[0] != '/' || strstr(path, "//") || strstr(path, "/./") || strstr(path, "/../") ||
	    (strlen(path) > 1 && path[strlen(path) - 1] == '/'))
		return -EINVAL;
	{
		const char *last = strrchr(path, '/');

		if (!strcmp(last, "/.") || !strcmp(last, "/.."))
			return -EINVAL;
	}
	if (!path[1])
		return -EINVAL;  /* "/" is no device */
	out[0] = '\0';
	r = escape_append(path + 1, out, size);
	if (r == 0 && strlen(out) + strlen(suffix) >= size)
		r = -ENAMETOOLONG;
	if (r == 0)
		strcat(out, suffix);
	return r;
}

/* The service of tab entry NAME: blockcrypt-attach@NAME.service, NAME
 * escaped ("a-b" -> "a\x2db"). */
static int service_name(const char *name, char *out, size_t size)
{
	int r;

	if ((size_t)snprintf(out, size, "%s", UNIT_PREFIX) >= size)
		return -ENAMETOOLONG;
	r = escape_append(name, out, size);
	if (r == 0 && strlen(out) + strlen(".service") >= size)
		r = -ENAMETOOLONG;
	if (r == 0)
		strcat(out, ".service");
	return r;
}

/* A word of a unit file setting: '%' doubled (specifiers), with EXEC '$'
 * doubled too (ExecStart= expands variables), and quoted when it holds a
 * blank, a quote or a backslash. */
static void put_word(FILE *f, const char *s, bool exec)
{
	bool quote = !*s || strpbrk(s, " \t\"'\\");

	if (quote)
		fputc('"', f);
	for (const char *c = s; *c; c++) {
		if (*c == '%')
			fputs("%%", f);
		else if (exec && *c == '$')
			fputs("$$", f);
		else if (quote && (*c == '"' || *c == '\\'))
			fprintf(f, "\\%c", *c);
		else
			fputc(*c, f);
	}
	if (quote)
		fputc('"', f);
}

/* ---- files --------------------------------------------------------------- */

static int open_in(const char *dir, const char *sub, const char *name, FILE **out)
{
	char path[PATH_MAX];
	int n = sub ? snprintf(path, sizeof(path), "%s/%s", dir, sub) : 0;

	*out = NULL;
	if (n < 0 || (size_t)n >= sizeof(path))
		return bc_set_error(-ENAMETOOLONG, "%s/%s: path too long", dir, sub);
	if (sub && mkdir(path, 0755) < 0 && errno != EEXIST)
		return bc_set_error(-errno, "%s: %s", path, strerror(errno));
	n = snprintf(path, sizeof(path), "%s/%s%s%s", dir, sub ? sub : "", sub ? "/" : "", name);
	if (n < 0 || (size_t)n >= sizeof(path))
		return bc_set_error(-ENAMETOOLONG, "%s/%s: path too long", dir, name);
	*out = fopen(path, "we");
	if (!*out)
		return bc_set_error(-errno, "%s: %s", path, strerror(errno));
	return 0;
}

static int close_checked(FILE *f, const char *what)
{
	int r = ferror(f) ? -EIO : 0;

	if (fclose(f) != 0 && !r)
		r = -errno;
	return r < 0 ? bc_set_error(r, "%s: cannot write: %s", what, strerror(-r)) : 0;
}

/* DIR/WHO.DEP/UNIT -> ../UNIT (or TARGET_PATH when given). */
static int add_link(const char *dir, const char *who, const char *dep, const char *unit, const char *target_path)
{
	char path[PATH_MAX], target[PATH_MAX];
	int n = snprintf(path, sizeof(path), "%s/%s.%s", dir, who, dep);

	if (n < 0 || (size_t)n >= sizeof(path))
		return bc_set_error(-ENAMETOOLONG, "%s: path too long", dir);
	if (mkdir(path, 0755) < 0 && errno != EEXIST)
		return bc_set_error(-errno, "%s: %s", path, strerror(errno));
	n = snprintf(path, sizeof(path), "%s/%s.%s/%s", dir, who, dep, unit);
	if (n < 0 || (size_t)n >= sizeof(path))
		return bc_set_error(-ENAMETOOLONG, "%s: path too long", dir);
	snprintf(target, sizeof(target), "%s%s", target_path ? "" : "../", target_path ? target_path : unit);
	if (symlink(target, path) < 0 && errno != EEXIST)
		return bc_set_error(-errno, "%s: %s", path, strerror(errno));
	return 0;
}

/* ---- one entry ------------------------------------------------------------ */

/* A duration as systemd takes it ("10s", "1min 30s", "infinity"): digits,
 * letters, '.' and blanks only, which also keeps it one line of a unit. */
static bool duration_ok(const char *s)
{
	return *s && strspn(s, "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ. ") == strlen(s);
}

static bool is_device(const char *backing)
{
	return !strncmp(backing, "/dev/", 5);
}

/* RequiresMountsFor= PATH, when it is an absolute path (a relative one
 * depends on the directory attach runs in: nothing to order after). */
static void mounts_for(FILE *f, const char *path)
{
	if (!path || path[0] != '/')
		return;
	fputs("RequiresMountsFor=", f);
	put_word(f, path, false);
	fputc('\n', f);
}

static int write_entry(const char *dir, const char *tab, const struct tab_entry *e, bool *pulled)
{
	char unit[UNIT_NAME_MAX], device[UNIT_NAME_MAX] = "", what[PATH_MAX + 64];
	struct attach_config c;
	FILE *f = NULL;
	int r;

	tab_to_config(e, &c);
	r = service_name(e->name, unit, sizeof(unit));
	if (r < 0)
		return bc_set_error(r, "name too long for a unit name");
	if (is_device(e->backing)) {
		r = path_unit(e->backing, ".device", device, sizeof(device));
		if (r < 0)
			return bc_set_error(r, "%s: %s", e->backing, r == -EINVAL ? "not a normalized device path" :
					    "too long for a unit name");
	}
	if (c.device_timeout && !duration_ok(c.device_timeout))
		return bc_set_error(-EINVAL, "x-systemd.device-timeout=%s: not a duration (e.g. 30s, 2min)",
				    c.device_timeout);
	if (c.device_timeout && !device[0])
		fprintf(stderr, PROG ": %s:%d: %s: x-systemd.device-timeout= ignored: %s is not a device\n",
			tab, e->line, e->name, e->backing);

	r = open_in(dir, NULL, unit, &f);
	if (r < 0)
		return r;
	fprintf(f, "# Automatically generated by " PROG " from %s, line %d\n\n", tab, e->line);
	fputs("[Unit]\nDescription=blockcrypt encrypted volume ", f);
	put_word(f, e->name, false);
	fputs("\nDocumentation=man:blockcrypt-generator(8) man:blockcrypttab(5)\nSourcePath=", f);
	put_word(f, tab, false);
	fputs("\nDefaultDependencies=no\nIgnoreOnIsolate=true\n", f);
	fputs("Conflicts=umount.target\n", f);
	/* As systemd-cryptsetup: a nofail volume does not hold the target
	 * (and so the boot) up while its passphrase is awaited. */
	fprintf(f, "Before=%sumount.target\n", c.nofail ? "" : TARGET " ");
	/* A Ceph cluster, or an NBD server on a TCP address, needs the network. */
	if (bc_backing_is_rbd(e->backing) || c.listen)
		fputs("Wants=network-online.target\nAfter=network-online.target\n", f);
	if (device[0]) {
		fprintf(f, "BindsTo=%s\nAfter=%s\n", device, device);
	} else if (!bc_backing_is_rbd(e->backing)) {
		mounts_for(f, e->backing);
		/* A dataset mounted by zfs-mount.service has no mount unit. */
		fputs("After=zfs-mount.service\n", f);
	}
	mounts_for(f, c.key_file);
	mounts_for(f, c.header);
	mounts_for(f, c.pin_file);
	mounts_for(f, c.fuse_dir);
	mounts_for(f, c.tls_certificates);
	mounts_for(f, c.tls_psk);

	fputs("\n[Service]\nType=notify\nNotifyAccess=main\n", f);
	fprintf(f, "ExecStart=" BC_SBINDIR "/blockcrypt attach --from-tab %s --foreground", e->name);
	if (strcmp(tab, TAB_DEFAULT)) {
		fputs(" --tab ", f);
		put_word(f, tab, true);
	}
	fprintf(f, "\nExecStop=" BC_SBINDIR "/blockcrypt detach %s\n", e->name);
	/* A passphrase may be awaited for ever (timeout= limits it). */
	fputs("TimeoutStartSec=infinity\nTimeoutStopSec=90\n"
	      "# The daemon locks its memory and holds keys: keep it out of OOM kills.\n"
	      "OOMScoreAdjust=-500\nLimitMEMLOCK=infinity\nLimitNOFILE=65536\n", f);
	snprintf(what, sizeof(what), "%s/%s", dir, unit);
	r = close_checked(f, what);
	if (r < 0)
		return r;

	if (device[0] && c.device_timeout) {
		char sub[UNIT_NAME_MAX + 4];

		snprintf(sub, sizeof(sub), "%s.d", device);
		r = open_in(dir, sub, "40-device-timeout.conf", &f);
		if (r < 0)
			return r;
		fprintf(f, "# Automatically generated by " PROG " from %s, line %d\n\n[Unit]\n"
			"JobRunningTimeoutSec=%s\n", tab, e->line, c.device_timeout);
		snprintf(what, sizeof(what), "%s/%s/40-device-timeout.conf", dir, sub);
		r = close_checked(f, what);
		if (r < 0)
			return r;
	}
	if (c.noauto)
		return 0;
	*pulled = true;
	return add_link(dir, TARGET, c.nofail ? "wants" : "requires", unit, NULL);
}

int main(int argc, char **argv)
{
	const char *tab = TAB_DEFAULT;
	struct tab_entry *e = NULL;
	size_t n = 0;
	int errors = 0, failed = 0, r;
	bool pulled = false;

	if (argc >= 3 && !strcmp(argv[1], "--tab")) {
		tab = argv[2];
		argv += 2;
		argc -= 2;
	}
	if (argc != 2 && argc != 4) {
		fprintf(stderr, "usage: " PROG " [--tab FILE] NORMAL_DIR [EARLY_DIR LATE_DIR]\n");
		return 1;
	}
	umask(0022);
	r = tab_read(tab, &e, &n, &errors);
	if (r == -ENOENT)
		return 0;  /* no tab file: nothing to do */
	if (r < 0) {
		fprintf(stderr, PROG ": %s\n", bc_last_error());
		return 1;
	}
	for (size_t i = 0; i < n; i++) {
		r = write_entry(argv[1], tab, &e[i], &pulled);
		if (r < 0) {
			fprintf(stderr, PROG ": %s:%d: %s: %s\n", tab, e[i].line, e[i].name, bc_last_error());
			failed++;
		}
	}
	/* The target pulls the volumes in; something must pull the target. */
	if (pulled) {
		r = add_link(argv[1], "multi-user.target", "wants", TARGET, BC_UNITDIR "/" TARGET);
		if (r < 0) {
			fprintf(stderr, PROG ": %s\n", bc_last_error());
			failed++;
		}
	}
	tab_free(e, n);
	/* Lines skipped (reported above) are not the generator's failure. */
	return failed ? 1 : 0;
}
