/* SPDX-License-Identifier: GPL-2.0-or-later */
/* Tab file parsing.  Format per line (blank lines and # comments ignored):
 *   NAME  BACKING  KEY  [OPTIONS]
 * KEY: none or - (tokens, then a passphrase prompt), token (tokens only),
 * a key file path, or a pkcs11: URI (plain: key derived in the token;
 * LUKS2: unlock through enrolled tokens only).
 * OPTIONS: comma-separated; after-attach=COMMAND takes the rest of the
 * line, commas included, so it must come last. */
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "blockcrypt.h"
#include "runtime.h"
#include "number.h"
#include "options.h"
#include "tab.h"
#include "macros.h"

/* A message for *WHY (one per thread: the fuzzer's too). */
static const char *why_fmt(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static const char *why_fmt(const char *fmt, ...)
{
	static _Thread_local char why[96];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(why, sizeof(why), fmt, ap);
	va_end(ap);
	return why;
}

/* crypttab(5) options that only systemd (or Debian's cryptdisks) acts on,
 * or that tune dm-crypt's kernel threads: accepted, ignored, with a note
 * (systemd itself ignores what it does not know).  A prefix ends in '.'
 * or '-'. */
static const char *const ignored_options[] = {
	"x-systemd.", "x-initrd.", "_netdev", "same-cpu-crypt", "submit-from-crypt-cpus",
	"no-read-workqueue", "no-write-workqueue", "headless", "password-echo", "silent", "verify",
	"try-empty-password", "keyfile-erase", "keyfile-timeout", "link-volume-key", "token-timeout",
	"fido2-", "tpm2-", "initramfs", "noearly", "check", "checkargs", "loud", "quiet",
};

/* crypttab(5) options that ask for what blockcrypt does not do: a volume
 * type it cannot read, a device it would have to format on every boot,
 * a key it cannot get.  Attaching anyway would serve the wrong bytes, so
 * the line is refused. */
static const struct {
	const char *name, *why;
} refused_options[] = {
	{ "bitlk", "BitLocker volumes are not supported" },
	{ "fvault2", "FileVault2 volumes are not supported" },
	{ "tcrypt", "TrueCrypt/VeraCrypt volumes are not supported" },
	{ "tcrypt-hidden", "TrueCrypt/VeraCrypt volumes are not supported" },
	{ "tcrypt-system", "TrueCrypt/VeraCrypt volumes are not supported" },
	{ "tcrypt-veracrypt", "TrueCrypt/VeraCrypt volumes are not supported" },
	{ "tcrypt-keyfile", "TrueCrypt/VeraCrypt volumes are not supported" },
	{ "veracrypt-pim", "TrueCrypt/VeraCrypt volumes are not supported" },
	{ "loop-aes", "loop-AES volumes are not supported" },
	{ "swap", "blockcrypt does not make a swap device on every boot" },
	{ "tmp", "blockcrypt does not make a file system on every boot" },
	{ "keyscript", "key scripts are not supported (give a key file or a token)" },
	{ "integrity", "dm-integrity is not supported" },
};

/* The note *WHY for an option that is not blockcrypt's; 1 = go on
 * (ignored), -EINVAL = refuse the line. */
static int foreign_option(struct tab_entry *e, const char *opt, const char **why)
{
	for (size_t i = 0; i < ARRAY_SIZE(refused_options); i++)
		if (!strcmp(opt, refused_options[i].name)) {
			*why = why_fmt("%s: %s", opt, refused_options[i].why);
			return -EINVAL;
		}
	for (size_t i = 0; i < ARRAY_SIZE(ignored_options); i++) {
		const char *ign = ignored_options[i];
		size_t n = strlen(ign);

		if (ign[n - 1] == '.' || ign[n - 1] == '-' ? !strncmp(opt, ign, n) : !strcmp(opt, ign)) {
			*why = why_fmt("note: '%.60s' is for systemd or the kernel only, ignored", opt);
			return 1;
		}
	}
	/* Unknown.  A LUKS header catches a wrong layout; a plain volume
	 * cannot, so there a misspelt cipher= or offset= must not pass. */
	e->unknown_options++;
	*why = why_fmt("warning: unknown option '%.60s' ignored", opt);
	return 1;
}

/* A time span as systemd writes one ("90", "90s", "2min", "1h", "500ms"):
 * whole seconds, rounded up, in *OUT. */
static int parse_timespan(const char *s, uint64_t *out)
{
	static const struct { const char *unit; uint64_t ms; } units[] = {
		{ "", 1000 }, { "s", 1000 }, { "sec", 1000 }, { "ms", 1 }, { "m", 60000 }, { "min", 60000 },
		{ "h", 3600000 }, { "d", 86400000 },
	};
	size_t digits = strspn(s ? s : "", "0123456789");
	char num[24];
	uint64_t v;

	if (!digits || digits >= sizeof(num))
		return -EINVAL;
	memcpy(num, s, digits);
	num[digits] = '\0';
	if (parse_number(num, false, &v) < 0)
		return -EINVAL;
	for (size_t i = 0; i < ARRAY_SIZE(units); i++)
		if (!strcmp(s + digits, units[i].unit)) {
			if (v > UINT32_MAX)
				return -ERANGE;
			*out = (v * units[i].ms + 999) / 1000;
			return 0;
		}
	return -EINVAL;
}

/* The options that the list in options.h marks SPECIAL. */
static int special_option(struct tab_entry *e, enum opt_id id, const char *val, const char **why)
{
	uint64_t n;

	switch (id) {
	case BC_OPT_SIZE_PLAIN: /* data-size= */
		if (!val || parse_plain_size(val, &n) < 0) {
			*why = "data-size: give 512-byte sectors, or bytes with K, M, G, T (a multiple of 512)";
			return -EINVAL;
		}
		e->cfg.size = n;
		return 0;
	case BC_OPT_KEY_SLOT_OPEN:
		if (!val || parse_number(val, false, &n) < 0 || n > 31) {
			*why = "key-slot: give 0 to 31";
			return -EINVAL;
		}
		e->cfg.key_slot = (int)n;
		return 0;
	case BC_OPT_LUKS:
	case BC_OPT_LOFI:
		if (val) {
			*why = why_fmt("%s takes no value", opt_decls[id].tab_key);
			return -EINVAL;
		}
		e->cfg.type = id == BC_OPT_LUKS ? BC_TYPE_AUTO : BC_TYPE_LOFI;
		e->cfg.type_set = true;
		return 0;
	default:
		break;
	}
	*why = why_fmt("option '%.60s' is not for the tab file", opt_decls[id].tab_key);
	return -EINVAL;
}

/* KEY[=VALUE] of one option, by the list in options.h. */
static int set_option(struct tab_entry *e, char *opt, const char **why)
{
	char *val = strchr(opt, '=');
	const struct opt_decl *o = NULL;
	enum opt_id id;
	uint64_t n;
	void *field;

	if (val)
		*val++ = '\0';
	for (id = 0; id < BC_OPT_COUNT; id++)
		if (opt_decls[id].tab_key && !strcmp(opt, opt_decls[id].tab_key)) {
			o = &opt_decls[id];
			break;
		}
	if (!o)
		return foreign_option(e, opt, why);
	field = opt_cfg_field(o, &e->cfg);
	if (id == BC_OPT_TIMEOUT) {
		if (!val || parse_timespan(val, &n) < 0 || n > o->max) {
			*why = "timeout: give seconds (or a time span such as 90s, 2min)";
			return -EINVAL;
		}
		e->cfg.timeout = (uint32_t)n;
		return 0;
	}
	switch (o->kind) {
	case BC_KIND_FLAG:
		if (val) {
			*why = why_fmt("%s takes no value", o->tab_key);
			return -EINVAL;
		}
		if (id == BC_OPT_PLAIN) {
			e->cfg.type = BC_TYPE_PLAIN;
			e->cfg.type_set = true;
		} else {
			*(bool *)field = true;
		}
		return 0;
	case BC_KIND_STRING:
		if (!val || !*val) {
			*why = why_fmt("%s needs a value", o->tab_key);
			return -EINVAL;
		}
		free(*(char **)field);
		*(char **)field = strdup(val);
		return *(char **)field ? 0 : -ENOMEM;
	case BC_KIND_U32:
	case BC_KIND_U64:
	case BC_KIND_SIZE:
		if (id == BC_OPT_KEY_BITS_TAB && (parse_number(val, false, &n) < 0 || n > o->max)) {
			/* Where size= was the data size before crypttab's meaning. */
			*why = "size= is crypttab's key size in bits (e.g. 256); the data size is data-size=";
			return -EINVAL;
		}
		if (parse_number(val, o->kind == BC_KIND_SIZE, &n) < 0 || n < o->min || n > o->max) {
			*why = o->min ? why_fmt("%s: give %llu to %llu", o->tab_key, (unsigned long long)o->min,
						(unsigned long long)o->max) : why_fmt("bad number for %s", o->tab_key);
			return -EINVAL;
		}
		if (o->kind == BC_KIND_U32)
			*(uint32_t *)field = (uint32_t)n;
		else
			*(uint64_t *)field = n;
		return 0;
	case BC_KIND_SPECIAL:
		return special_option(e, id, val, why);
	}
	*why = why_fmt("option '%.60s' is not for the tab file", opt);
	return -EINVAL;
}

/* A control character other than TAB (a separator) in LINE. */
static bool has_control_char(const char *line)
{
	for (const unsigned char *c = (const unsigned char *)line; *c; c++)
		if ((*c < 0x20 && *c != '\t') || *c == 0x7f)
			return true;
	return false;
}

/* crypttab(5)'s device spellings: UUID=, LABEL=, PARTUUID=, PARTLABEL=
 * name a link udev makes; anything else is a path (or an rbd: spec). */
static char *backing_path(const char *backing)
{
	static const struct { const char *tag, *dir; } tags[] = {
		{ "UUID=", "/dev/disk/by-uuid/" }, { "LABEL=", "/dev/disk/by-label/" },
		{ "PARTUUID=", "/dev/disk/by-partuuid/" }, { "PARTLABEL=", "/dev/disk/by-partlabel/" },
	};
	char *out;

	for (size_t i = 0; i < ARRAY_SIZE(tags); i++) {
		size_t n = strlen(tags[i].tag);

		if (!strncmp(backing, tags[i].tag, n) && backing[n] && !strchr(backing + n, '/'))
			return asprintf(&out, "%s%s", tags[i].dir, backing + n) < 0 ? NULL : out;
	}
	return strdup(backing);
}

/* Does E give an option that only a plain volume's layout uses? */
static bool has_plain_layout(const struct tab_entry *e)
{
	const struct attach_config *c = &e->cfg;

	return c->cipher || c->hash || c->key_bits || c->offset || c->skip || c->size || c->sector_size;
}

static int parse_line(struct tab_entry *e, char *line, const char **why, FILE *msgs, const char *file)
{
	char *save = NULL, *opts, *tok, *hook, *name, *backing, *key;
	int r;

	/* Tokens point into LINE: E gets copies only, so freeing E is safe. */
	name = strtok_r(line, " \t", &save);
	backing = strtok_r(NULL, " \t", &save);
	key = strtok_r(NULL, " \t", &save);
	opts = strtok_r(NULL, "", &save);
	if (!name || !backing) {
		*why = "expected NAME BACKING [KEY [OPTIONS]]";
		return -EINVAL;
	}
	/* As crypttab(5): no KEY column is "none". */
	if (!key)
		key = "none";
	e->cfg.key_slot = -1;
	if (rt_valid_name(name) < 0) {
		*why = "invalid name (letters, digits, '.', '_', '-')";
		return -EINVAL;
	}
	e->name = strdup(name);
	e->backing = backing_path(backing);
	e->key = strdup(key);
	if (!e->name || !e->backing || !e->key)
		return -ENOMEM;
	e->cfg.token_only = !strcmp(e->key, "token");
	if (!opts)
		return 0;
	while (*opts == ' ' || *opts == '\t')
		opts++;
	hook = strstr(opts, "after-attach=");
	if (hook && (hook == opts || hook[-1] == ',')) {
		e->cfg.after_attach = strdup(hook + strlen("after-attach="));
		if (!e->cfg.after_attach)
			return -ENOMEM;
		if (!*e->cfg.after_attach) {
			*why = "after-attach needs a command";
			return -EINVAL;
		}
		*hook = '\0';
	}
	for (tok = strtok_r(opts, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
		size_t n = strlen(tok);

		while (n && (tok[n - 1] == ' ' || tok[n - 1] == '\t'))
			tok[--n] = '\0';
		if (!n)
			continue;
		r = set_option(e, tok, why);
		if (r < 0)
			return r;
		if (r > 0 && msgs)
			fprintf(msgs, "blockcrypt: %s:%d: %s\n", file, e->line, *why);
		*why = NULL;
	}
	if (e->unknown_options && ((e->cfg.type_set && e->cfg.type == BC_TYPE_PLAIN) ||
				   (!e->cfg.type_set && has_plain_layout(e)))) {
		*why = "unknown option on a plain volume's line: refused, as a misspelt layout option would "
		       "serve the wrong data";
		return -EINVAL;
	}
	return 0;
}

static void entry_free(struct tab_entry *e)
{
	free(e->name);
	free(e->backing);
	free(e->key);
	for (size_t i = 0; i < BC_OPT_COUNT; i++)
		if (opt_decls[i].tab_key && opt_decls[i].kind == BC_KIND_STRING)
			free(*(char **)opt_cfg_field(&opt_decls[i], &e->cfg));
	memset(e, 0, sizeof(*e));
}

/* The loop of tab_read() and tab_parse(): entries of F, messages (naming
 * FILE) to MSGS unless it is NULL. */
static void parse_stream(FILE *f, const char *file, FILE *msgs, struct tab_entry **entries,
			 size_t *count, int *errors)
{
	char *line = NULL;
	size_t cap = 0, n = 0;
	struct tab_entry *v = NULL;
	int lineno = 0;
	ssize_t len;

	while ((len = getline(&line, &cap, f)) > 0) {
		struct tab_entry e = { .line = ++lineno };
		const char *why = NULL;
		char *p = line;
		int r;

		if (line[len - 1] == '\n')
			line[--len] = '\0';
		/* A file edited on Windows: CRLF is a line end too. */
		if (len && line[len - 1] == '\r')
			line[--len] = '\0';
		while (*p == ' ' || *p == '\t')
			p++;
		if (memchr(line, '\0', (size_t)len)) {
			/* Would silently cut the line short (an option lost). */
			why = "NUL byte in the line";
			r = -EINVAL;
		} else if (has_control_char(line)) {
			/* A CR before the end, an escape: a value would hold it
			 * (listen=24\r), and no option value means one. */
			why = "control character in the line";
			r = -EINVAL;
		} else if (!*p || *p == '#') {
			continue;
		} else {
			r = parse_line(&e, p, &why, msgs, file);
		}
		if (r == 0 && tab_find(v, n, e.name)) {
			why = "duplicate name";
			r = -EINVAL;
		}
		if (r < 0) {
			if (msgs)
				fprintf(msgs, "blockcrypt: %s:%d: %s\n", file, lineno, why ? why : strerror(-r));
			(*errors)++;
			entry_free(&e);
			continue;
		}
		{
			struct tab_entry *nv = realloc(v, (n + 1) * sizeof(*v));

			if (!nv) {
				entry_free(&e);
				break;
			}
			v = nv;
			v[n++] = e;
		}
	}
	free(line);
	*entries = v;
	*count = n;
}

/* As root the tab file is a list of commands run as root (after-attach=)
 * and of key files: like sudoers, it and its directory must be root's and
 * writable by nobody else. */
static int check_trust(const char *file, int fd)
{
	char real[PATH_MAX], *dir;
	struct stat st;

	if (geteuid() != 0)
		return 0;
	if (fstat(fd, &st) < 0)
		return bc_set_error(-errno, "%s: %s", file, strerror(errno));
	if (st.st_uid != 0 || (st.st_mode & (S_IWGRP | S_IWOTH)))
		return bc_set_error(-EINVAL, "%s: owned by uid %u, mode %04o: refusing a tab file that anyone but root "
				"may change (chown root, chmod go-w)", file, (unsigned)st.st_uid,
				(unsigned)(st.st_mode & 07777));
	if (!realpath(file, real))
		return bc_set_error(-errno, "%s: %s", file, strerror(errno));
	dir = dirname(real);
	if (stat(dir, &st) < 0)
		return bc_set_error(-errno, "%s: %s", dir, strerror(errno));
	if (st.st_uid != 0 || (st.st_mode & (S_IWGRP | S_IWOTH)))
		return bc_set_error(-EINVAL, "%s: its directory %s is owned by uid %u, mode %04o: anyone but root "
				"could replace it (chown root, chmod go-w)", file, dir, (unsigned)st.st_uid,
				(unsigned)(st.st_mode & 07777));
	return 0;
}

int tab_read(const char *file, struct tab_entry **entries, size_t *count, int *errors)
{
	int fd = open(file, O_RDONLY | O_CLOEXEC | O_NOCTTY), r;
	FILE *f;

	*entries = NULL;
	*count = 0;
	*errors = 0;
	if (fd < 0)
		return bc_set_error(errno == ENOENT ? -ENOENT : -errno, "%s: %s", file, strerror(errno));
	r = check_trust(file, fd);
	if (r < 0 || !(f = fdopen(fd, "r"))) {
		close(fd);
		return r < 0 ? r : bc_set_error(-errno, "%s: %s", file, strerror(errno));
	}
	parse_stream(f, file, stderr, entries, count, errors);
	fclose(f);
	return 0;
}

int tab_parse(const char *buf, size_t len, const char *file, FILE *msgs,
	      struct tab_entry **entries, size_t *count, int *errors)
{
	FILE *f;

	*entries = NULL;
	*count = 0;
	*errors = 0;
	if (!len)
		return 0; /* fmemopen() wants at least one byte; nothing to parse anyway */
	f = fmemopen((void *)buf, len, "r");
	if (!f)
		return bc_set_error(-errno, "%s: %s", file, strerror(errno));
	parse_stream(f, file, msgs, entries, count, errors);
	fclose(f);
	return 0;
}

void tab_free(struct tab_entry *entries, size_t count)
{
	for (size_t i = 0; i < count; i++)
		entry_free(&entries[i]);
	free(entries);
}

const struct tab_entry *tab_find(const struct tab_entry *e, size_t count, const char *name)
{
	for (size_t i = 0; i < count; i++)
		if (!strcmp(e[i].name, name))
			return &e[i];
	return NULL;
}

void tab_to_config(const struct tab_entry *e, struct attach_config *c)
{
	bool plain = e->cfg.type_set && e->cfg.type == BC_TYPE_PLAIN;

	*c = e->cfg;
	c->name = e->name;
	/* No type given: as systemd-cryptsetup, LUKS if the backing has a
	 * LUKS header, else plain (decided when opening) -- but only when the
	 * line gives a plain layout option, so a LUKS volume whose header is
	 * damaged or not there yet is never opened as plain with defaults. */
	if (!e->cfg.type_set && !e->cfg.header && has_plain_layout(e)) {
		c->plain_fallback = true;
		plain = true; /* keep the layout options */
	}
	/* systemd-cryptsetup hashes a key file when hash= is given. */
	c->hash_key_file = plain;
	if (!strcmp(e->key, "none") || !strcmp(e->key, "-")) {
		c->key_file = NULL;
	} else if (!strcmp(e->key, "token")) {
		c->token_only = true;
	} else if (!strncmp(e->key, "pkcs11:", 7)) {
		if (plain)
			c->pkcs11 = e->key;
		else
			c->token_only = true;
	} else {
		c->key_file = e->key;
	}
	/* pkcs11-uri=: for LUKS, the enrolled tokens (tried first anyway);
	 * for plain, the token key the volume key is derived in. */
	if (c->pkcs11 && (!plain || c->plain_fallback || !strcmp(c->pkcs11, "auto")))
		c->pkcs11 = NULL;
	/* A lofi header names no cipher: cipher= stays (blockcrypt-lofi(7)). */
	if (e->cfg.type_set && e->cfg.type == BC_TYPE_LOFI) {
		c->hash = NULL;
		c->sector_size = 0;
		c->size = c->offset = c->skip = 0;
	} else if (!plain) {
		c->cipher = c->hash = NULL;
		c->key_bits = c->sector_size = 0;
		c->size = c->offset = c->skip = 0;
	}
}
