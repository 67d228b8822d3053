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

#include "core/error.h"
#include "runtime.h"
#include "number.h"
#include "options.h"
#include "tab.h"

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
	if (!o) {
		*why = why_fmt("unknown option '%.60s'", opt);
		return -EINVAL;
	}
	field = opt_cfg_field(o, &e->cfg);
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
		break;
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

static int parse_line(struct tab_entry *e, char *line, const char **why)
{
	char *save = NULL, *opts, *tok, *hook, *name, *backing, *key;
	int r;

	/* Tokens point into LINE: E gets copies only, so freeing E is safe. */
	name = strtok_r(line, " \t", &save);
	backing = strtok_r(NULL, " \t", &save);
	key = strtok_r(NULL, " \t", &save);
	opts = strtok_r(NULL, "", &save);
	if (!name || !backing || !key) {
		*why = "expected NAME BACKING KEY [OPTIONS]";
		return -EINVAL;
	}
	if (rt_valid_name(name) < 0) {
		*why = "invalid name (letters, digits, '.', '_', '-')";
		return -EINVAL;
	}
	e->name = strdup(name);
	e->backing = strdup(backing);
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
			r = parse_line(&e, p, &why);
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
		return bci_error(-errno, "%s: %s", file, strerror(errno));
	if (st.st_uid != 0 || (st.st_mode & (S_IWGRP | S_IWOTH)))
		return bci_error(-EINVAL, "%s: owned by uid %u, mode %04o: refusing a tab file that anyone but root "
				"may change (chown root, chmod go-w)", file, (unsigned)st.st_uid,
				(unsigned)(st.st_mode & 07777));
	if (!realpath(file, real))
		return bci_error(-errno, "%s: %s", file, strerror(errno));
	dir = dirname(real);
	if (stat(dir, &st) < 0)
		return bci_error(-errno, "%s: %s", dir, strerror(errno));
	if (st.st_uid != 0 || (st.st_mode & (S_IWGRP | S_IWOTH)))
		return bci_error(-EINVAL, "%s: its directory %s is owned by uid %u, mode %04o: anyone but root "
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
		return bci_error(errno == ENOENT ? -ENOENT : -errno, "%s: %s", file, strerror(errno));
	r = check_trust(file, fd);
	if (r < 0 || !(f = fdopen(fd, "r"))) {
		close(fd);
		return r < 0 ? r : bci_error(-errno, "%s: %s", file, strerror(errno));
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
		return bci_error(-errno, "%s: %s", file, strerror(errno));
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
	if (!plain) {
		c->cipher = c->hash = NULL;
		c->key_bits = c->sector_size = 0;
		c->size = c->offset = c->skip = 0;
	}
}
