/* SPDX-License-Identifier: GPL-2.0-or-later */
/* Option parsing and interactive helpers shared by all subcommands. */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <json-c/json.h>

#include "blockcrypt.h"
#include "cli.h"
#include "askpass.h"
#include "config.h"
#include "attach/number.h"
#include "attach/macros.h"

/* Where each option's value goes in struct cli_opts (attach/options.h:
 * the FIELD column), or BC_OPT_NO_FIELD. */
#define CFG(field) offsetof(struct cli_opts, field)
#define CLI(field) offsetof(struct cli_opts, field)
#define NONE BC_OPT_NO_FIELD
#define OFFSET(id, name, arg, kind, min, max, field, ...) [BC_OPT_##id] = field,
static const size_t cli_offset[BC_OPT_COUNT] = { BC_OPTIONS(OFFSET) };
#undef OFFSET
#undef CFG
#undef CLI
#undef NONE

/* getopt_long() values: above every character. */
#define OPT_VAL(id) (256 + (int)(id))

static void command_help(const struct cli_command *c, FILE *f)
{
	fprintf(f, "Usage: blockcrypt %s %s\n\n%s\n\nOptions:\n", c->name, c->synopsis, c->summary);
	for (size_t i = 0; i < BC_OPT_COUNT; i++) {
		const struct opt_decl *d = &opt_decls[i];
		char left[64];

		if (!d->name || !d->help || !opt_accepted(i, c->id))
			continue;
		snprintf(left, sizeof(left), "--%s%s%s", d->name, d->arg ? " " : "", d->arg ? d->arg : "");
		fprintf(f, "  %-26s %s\n", left, d->help);
	}
	fprintf(f, "\nSee blockcrypt(8) for exit codes and details.\n");
}

static int parse_u64(const char *name, const char *s, bool suffixes, uint64_t *out)
{
	switch (parse_number(s, suffixes, out)) {
	case 0:
		return 0;
	case -EINVAL:
		return bc_set_error(-EINVAL, "--%s: expected a number, got '%s'", name, s ? s : "");
	case -ERANGE:
		return bc_set_error(-EINVAL, "--%s: '%s' is too large", name, s);
	default:
		return bc_set_error(-EINVAL, "--%s: cannot parse '%s'", name, s);
	}
}

static int parse_u32(const char *name, const char *s, uint32_t *out)
{
	uint64_t v;
	int r = parse_u64(name, s, false, &v);

	if (r < 0)
		return r;
	if (v > UINT32_MAX)
		return bc_set_error(-EINVAL, "--%s: '%s' is too large", name, s);
	*out = (uint32_t)v;
	return 0;
}

/* Store ARG for option ID as its KIND says (attach/options.h). */
static int set_option(struct cli_opts *o, enum opt_id id, const char *arg)
{
	const struct opt_decl *d = &opt_decls[id];
	void *field = cli_offset[id] == BC_OPT_NO_FIELD ? NULL : (char *)o + cli_offset[id];

	switch (d->kind) {
	case BC_KIND_FLAG:
		*(bool *)field = true;
		return 0;
	case BC_KIND_STRING:
		*(const char **)field = arg;
		return 0;
	case BC_KIND_U32:
		return parse_u32(d->name, arg, field);
	case BC_KIND_U64:
	case BC_KIND_SIZE:
		return parse_u64(d->name, arg, d->kind == BC_KIND_SIZE, field);
	case BC_KIND_SPECIAL:
		break;
	}
	return 0;
}

/* A LUKS key slot or token number, 0 to 31. */
static int parse_slot(const char *name, const char *arg, int *out)
{
	uint64_t v;
	int r = parse_u64(name, arg, false, &v);

	if (r == 0 && v > 31)
		r = bc_set_error(-EINVAL, "--%s: %s is out of range", name, arg);
	*out = (int)v;
	return r;
}

/* What an option does beyond storing its value: the SPECIAL ones, and
 * the command line's own ranges. */
static int check_option(const struct cli_command *c, struct cli_opts *o, enum opt_id id, const char *arg)
{
	int r = 0;

	switch (id) {
	case BC_OPT_HELP:
		command_help(c, stdout);
		exit(0);
	case BC_OPT_TYPE:
		r = bc_volume_type_parse(arg, &o->type);
		o->type_set = true;
		break;
	case BC_OPT_KEY_SLOT:
	case BC_OPT_KEY_SLOT_OPEN:
		r = parse_slot(opt_decls[id].name, arg, &o->key_slot);
		break;
	case BC_OPT_SIZE_PLAIN:
		switch (parse_plain_size(arg, &o->size)) {
		case 0:
			break;
		case -EDOM:
			r = bc_set_error(-EINVAL, "--size %s: not a multiple of 512 bytes", arg);
			break;
		default:
			r = bc_set_error(-EINVAL, "--size: expected 512-byte sectors (or bytes with K, M, G, T), got '%s'",
				         arg);
		}
		break;
	case BC_OPT_VERSION:
		printf("blockcrypt %s\n", BC_VERSION);
		exit(0);
	case BC_OPT_TOKEN_ID:
	case BC_OPT_TOKEN_ID_ENROLL:
		r = parse_slot(opt_decls[id].name, arg, &o->token_id);
		break;
	case BC_OPT_THREADS:
		if (o->threads < 1 || o->threads > ATTACH_THREADS_MAX)
			r = bc_set_error(-EINVAL, "--threads %s: give 1 to %d", arg, ATTACH_THREADS_MAX);
		break;
	/* The upper bounds are the option rows' (the tab file's too); the
	 * command line also refuses 0, which a tab file takes as the default. */
	case BC_OPT_MAX_CONNECTIONS:
		if (o->max_connections < 1 || o->max_connections > opt_decls[id].max)
			r = bc_set_error(-EINVAL, "--max-connections: 1 to %llu",
				         (unsigned long long)opt_decls[id].max);
		break;
	case BC_OPT_HANDSHAKE_TIMEOUT:
		if (o->handshake_timeout < 1 || o->handshake_timeout > opt_decls[id].max)
			r = bc_set_error(-EINVAL, "--handshake-timeout: 1 to %llu seconds",
				         (unsigned long long)opt_decls[id].max);
		break;
	case BC_OPT_MAX_MEMORY:
		if (o->max_memory < BC_NBD_MIN_MAX_MEMORY)
			r = bc_set_error(-EINVAL, "--max-memory: at least 32M (one request of the largest size)");
		break;
	default:
		break;
	}
	return r;
}

/* cryptsetup's short options, each the same as the long one named. */
static const struct {
	char ch;
	const char *name;
} short_opts[] = {
	{ 'b', "size" }, { 'c', "cipher" }, { 'd', "key-file" }, { 'h', "hash" }, { 'l', "keyfile-size" },
	{ 'M', "type" }, { 'o', "offset" }, { 'p', "skip" }, { 'q', "batch" }, { 'r', "read-only" },
	{ 's', "key-size" }, { 'S', "key-slot" }, { 't', "timeout" }, { 'T', "tries" }, { 'v', "verbose" },
	{ 'V', "version" },
};

/* The option of command C called NAME, or -1. */
static int option_for(const struct cli_command *c, const char *name)
{
	for (size_t i = 0; i < BC_OPT_COUNT; i++)
		if (opt_decls[i].name && !strcmp(opt_decls[i].name, name) && opt_accepted(i, c->id))
			return (int)i;
	return -1;
}

/* Is --NAME (up to '=' or the end of ARG) an option of any command? */
static bool option_exists(const char *arg)
{
	size_t len = strcspn(arg, "=");

	for (size_t i = 0; i < BC_OPT_COUNT; i++)
		if (opt_decls[i].name && strlen(opt_decls[i].name) == len && !strncmp(opt_decls[i].name, arg, len))
			return true;
	return false;
}

int cli_parse(const struct cli_command *c, int argc, char **argv, struct cli_opts *o)
{
	struct option longopts[BC_OPT_COUNT + 1];
	char shortopts[2 * ARRAY_SIZE(short_opts) + 1] = "";
	int short_id[128];
	size_t n = 0, len = 0;
	int ch, r = 0;

	for (size_t i = 0; i < ARRAY_SIZE(short_id); i++)
		short_id[i] = -1;
	for (size_t i = 0; i < ARRAY_SIZE(short_opts); i++) {
		int id = option_for(c, short_opts[i].name);

		short_id[(unsigned char)short_opts[i].ch] = id;
		if (id < 0)
			continue;
		shortopts[len++] = short_opts[i].ch;
		if (opt_decls[id].arg)
			shortopts[len++] = ':';
	}

	memset(o, 0, sizeof(*o));
	o->key_slot = -1;
	o->token_id = -1;
	/* Only the command's own options: any other is "not valid here". */
	for (size_t i = 0; i < BC_OPT_COUNT; i++)
		if (opt_decls[i].name && opt_accepted(i, c->id))
			longopts[n++] = (struct option){ opt_decls[i].name,
				opt_decls[i].arg ? required_argument : no_argument, NULL, OPT_VAL(i) };
	memset(&longopts[n], 0, sizeof(longopts[n]));

	opterr = 0;
	optind = 1;
	while ((ch = getopt_long(argc, argv, shortopts, longopts, NULL)) != -1) {
		if (ch > 0 && ch < 128 && ch != '?' && ch != ':' && short_id[ch] >= 0)
			ch = OPT_VAL(short_id[ch]);
		if (ch >= OPT_VAL(0) && ch < OPT_VAL(BC_OPT_COUNT)) {
			enum opt_id id = (enum opt_id)(ch - OPT_VAL(0));

			r = set_option(o, id, optarg);
			if (r == 0)
				r = check_option(c, o, id, optarg);
		} else if (optopt >= 256 && optopt < OPT_VAL(BC_OPT_COUNT)) {
			r = bc_set_error(-EINVAL, "%s: option --%s needs an argument", c->name,
				     opt_decls[optopt - OPT_VAL(0)].name);
		} else if (optopt > 0 && optopt < 128 && short_id[optopt] >= 0) {
			r = bc_set_error(-EINVAL, "%s: option -%c needs an argument", c->name, optopt);
		} else if (optopt == 0 && argv[optind - 1] && !strncmp(argv[optind - 1], "--", 2) &&
			   option_exists(argv[optind - 1] + 2)) {
			r = bc_set_error(-EINVAL, "%s: option %s is not valid here (see blockcrypt %s --help)",
				     c->name, argv[optind - 1], c->name);
		} else if (optopt == 0 && argv[optind - 1]) {
			r = bc_set_error(-EINVAL, "%s: unknown option %s (see blockcrypt %s --help)", c->name,
				     argv[optind - 1], c->name);
		} else {
			r = bc_set_error(-EINVAL, "%s: unknown option -%c (see blockcrypt %s --help)", c->name,
				     optopt, c->name);
		}
		if (r < 0)
			return r;
	}
	/* Options may follow the positional arguments too. */
	o->args = argv + optind;
	o->nargs = argc - optind;
	if (o->nargs < c->min_args || o->nargs > c->max_args)
		return bc_set_error(-EINVAL, "usage: blockcrypt %s %s", c->name, c->synopsis);
	if (o->type_set && o->type != BC_TYPE_PLAIN && opt_accepted(BC_OPT_OFFSET, c->id) &&
	    (o->offset || o->skip || o->hash || o->iv_large_sectors))
		return bc_set_error(-EINVAL, "%s: --offset, --skip, --hash and --iv-large-sectors need --type plain", c->name);
	return 0;
}

/* The password agents' Id= for what O opens (src/cli/askpass.h):
 * "blockcrypt:NAME" (--name, the tab entry's), else "blockcrypt:BACKING";
 * NULL when neither is known. */
static const char *ask_id(const struct cli_opts *o, char *buf, size_t size)
{
	const char *what = o->name ? o->name : o->nargs > 0 ? o->args[0] : NULL;

	if (!what)
		return NULL;
	snprintf(buf, size, "blockcrypt:%s", what);
	return buf;
}

int cli_get_key(const struct cli_opts *o, const char *file, const char *prompt,
		bool confirm, struct bc_secret **out)
{
	struct bc_secret *again = NULL;
	char id[PATH_MAX + 16];
	int r;

	*out = NULL;
	/* --keyfile-offset/--keyfile-size are --key-file's, not --new-key-file's. */
	if (file)
		return file == o->key_file ? bc_secret_from_file_range(file, o->keyfile_offset, o->keyfile_size, out) :
					     bc_secret_from_file(file, out);
	if (o->batch)
		return bc_set_error(-EINVAL, "--batch given but no key file: use --key-file (prompting is disabled)");
	r = cli_ask_password(prompt, ask_id(o, id, sizeof(id)), o->timeout, out);
	if (r < 0 || !confirm)
		return r;
	r = cli_ask_password("Verify passphrase: ", ask_id(o, id, sizeof(id)), o->timeout, &again);
	if (r < 0)
		goto fail;
	if (bc_secret_len(again) != bc_secret_len(*out) ||
	    !bc_secret_equal(again, *out)) {
		r = bc_set_error(-EINVAL, "passphrases do not match");
		goto fail;
	}
	bc_secret_free(again);
	return 0;
fail:
	bc_secret_free(again);
	bc_secret_free(*out);
	*out = NULL;
	return r;
}

int cli_confirm(const struct cli_opts *o, const char *fmt, ...)
{
	char answer[16] = "";
	va_list ap;
	FILE *tty;
	int r = -ECANCELED;

	if (o->batch)
		return 0;
	tty = fopen("/dev/tty", "r+");
	if (!tty)
		return bc_set_error(-ECANCELED, "confirmation needed but there is no terminal (use --batch)");
	fputs("WARNING!\n========\n", tty);
	va_start(ap, fmt);
	vfprintf(tty, fmt, ap);
	va_end(ap);
	fputs("\n\nAre you sure? (Type 'yes' in capital letters): ", tty);
	fflush(tty);
	if (fgets(answer, sizeof(answer), tty) && !strcmp(answer, "YES\n"))
		r = 0;
	fclose(tty);
	return r < 0 ? bc_set_error(r, "operation cancelled") : 0;
}

struct progress_state {
	const char *what, *device;
	bool json, started, shown;
	struct timespec start;
	int last_permille;
	uint64_t last_ms;
};

static uint64_t elapsed_ms(const struct timespec *from)
{
	struct timespec now;

	clock_gettime(CLOCK_MONOTONIC, &now);
	return (uint64_t)(now.tv_sec - from->tv_sec) * 1000 + (uint64_t)(now.tv_nsec / 1000000) -
	       (uint64_t)(from->tv_nsec / 1000000);
}

void cli_print_json(json_object *o)
{
	bool array = json_object_is_type(o, json_type_array);
	size_t n = array ? json_object_array_length(o) : 1;

	for (size_t i = 0; i < n; i++) {
		json_object *e = array ? json_object_array_get_idx(o, i) : o;

		if (json_object_is_type(e, json_type_object))
			json_object_object_add(e, "version", json_object_new_int(BC_JSON_VERSION));
	}
	printf("%s\n", json_object_to_json_string_ext(o, JSON_C_TO_STRING_PRETTY | JSON_C_TO_STRING_NOSLASHESCAPE));
	json_object_put(o);
}

/* One --progress-json line, with cryptsetup's keys (numbers as strings,
 * as cryptsetup writes them). */
static void progress_json(const struct progress_state *st, uint64_t done, uint64_t total, double rate,
			  uint64_t eta_ms, uint64_t ms)
{
	json_object *o = json_object_new_object();
	char num[32];

	json_object_object_add(o, "device", json_object_new_string(st->device));
#define ADD(key, fmt, v) \
	snprintf(num, sizeof(num), fmt, v); \
	json_object_object_add(o, key, json_object_new_string(num))
	ADD("device_bytes", "%llu", (unsigned long long)done);
	ADD("device_size", "%llu", (unsigned long long)total);
	ADD("speed", "%.0f", rate);
	ADD("eta_ms", "%llu", (unsigned long long)eta_ms);
	ADD("time_ms", "%llu", (unsigned long long)ms);
#undef ADD
	fprintf(stderr, "%s\n", json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE));
	json_object_put(o);
}

int cli_progress(uint64_t done, uint64_t total, void *user)
{
	struct progress_state *st = user;
	uint64_t ms, eta_ms = 0;
	bool last = total && done == total;
	double rate;
	int permille;

	if (!st)
		return 0;
	if (!st->started) {
		clock_gettime(CLOCK_MONOTONIC, &st->start);
		st->started = true;
	}
	ms = elapsed_ms(&st->start);
	permille = total ? (int)(done * 1000 / total) : -1;
	/* Human with a total: at each 0.1 %; JSON, or no total: at most once
	 * a second; the last one always. */
	if (!last && (st->json || !total) && st->shown && ms < st->last_ms + 1000)
		return 0;
	if (!last && !st->json && total && permille == st->last_permille)
		return 0;
	st->shown = true;
	st->last_permille = permille;
	st->last_ms = ms;
	rate = ms ? (double)done * 1000.0 / (double)ms : 0.0;
	if (total && rate > 0 && done < total)
		eta_ms = (uint64_t)((double)(total - done) * 1000.0 / rate);
	if (st->json)
		progress_json(st, done, total, rate, eta_ms, ms);
	else if (total)
		fprintf(stderr, "\r%s: %5.1f%%  %llu/%llu MiB  %.1f MiB/s  ETA %llu:%02llu%s", st->what,
			permille / 10.0, (unsigned long long)(done >> 20), (unsigned long long)(total >> 20),
			rate / (1 << 20), (unsigned long long)(eta_ms / 60000), (unsigned long long)(eta_ms / 1000 % 60),
			last ? "\n" : "");
	else
		fprintf(stderr, "\r%s: %llu MiB  %.1f MiB/s", st->what, (unsigned long long)(done >> 20),
			rate / (1 << 20));
	return 0;
}

void *cli_progress_state(const struct cli_opts *o, const char *what, const char *device)
{
	static struct progress_state st;

	if (!o->progress_json && (o->no_progress || (!o->progress && !isatty(STDERR_FILENO))))
		return NULL;
	st = (struct progress_state){ .what = what, .device = device, .json = o->progress_json,
				      .last_permille = -1 };
	return &st;
}

int cli_get_pin(void *user, const char *token_label, struct bc_secret **out)
{
	const struct cli_opts *o = user;
	char prompt[128], id[PATH_MAX + 16];
	int r;

	*out = NULL;
	if (o->pin_file) {
		r = bc_secret_from_file(o->pin_file, out);
		if (r < 0)
			return bc_set_error(r, "--pin-file %s: %s", o->pin_file,
					r == -EINVAL ? "empty or too large" : strerror(-r));
		if (bc_secret_len(*out) && bc_secret_data(*out)[bc_secret_len(*out) - 1] == '\n')
			bc_secret_set_len(*out, bc_secret_len(*out) - 1);
		return 0;
	}
	if (o->batch)
		return bc_set_error(-EINVAL, "token '%s' needs a PIN: use --pin-file (--batch disables prompts)", token_label);
	snprintf(prompt, sizeof(prompt), "Enter PIN for token '%s': ", token_label);
	return cli_ask_password(prompt, ask_id(o, id, sizeof(id)), o->timeout, out);
}

static int ask_passphrase(void *user, struct bc_secret **out)
{
	const struct cli_opts *o = user;

	return cli_get_key(o, o->key_file, "Enter passphrase: ", false, out);
}

/* The first option given that only a plain volume uses, or NULL. */
static const char *plain_only_option(const struct cli_opts *o)
{
	return o->cipher ? "--cipher" : o->key_bits ? "--key-size" : o->sector_size ? "--sector-size" :
	       o->offset ? "--offset" : o->skip ? "--skip" : o->size ? "--size" : o->hash ? "--hash" :
	       o->iv_large_sectors ? "--iv-large-sectors" : NULL;
}

/* A plain volume's key as cryptsetup's plain mode takes it: a key file is
 * the raw key (its first key-size bytes after --keyfile-offset), a typed
 * passphrase or one read from stdin is hashed (--hash, default
 * ripemd160; "plain": not hashed).  A crypttab line (o->hash_key_file)
 * is systemd-cryptsetup's: hash= applies to its key file too, and then
 * all of it (or keyfile-size= bytes) is hashed. */
static int open_plain(struct cli_opts *o, const char *backing, struct bc_open_params *p, struct bc_volume **out)
{
	_cleanup_key_ struct bc_secret *key = NULL;
	const char *hash = o->hash ? o->hash : BC_DEFAULT_PLAIN_HASH;
	int bits = bc_plain_key_bits(o->cipher, o->key_bits), r;
	bool raw = o->key_file && strcmp(o->key_file, "-") && !(o->hash_key_file && o->hash);

	if (bits < 0)
		return bits;
	if (raw)
		hash = NULL;
	else if (!strcmp(hash, "plain"))
		hash = NULL;
	if (raw)
		r = bc_secret_from_file_range(o->key_file, o->keyfile_offset, (size_t)bits / 8, &key);
	else
		r = cli_get_key(o, o->key_file, "Enter passphrase: ", false, &key);
	if (r < 0)
		return r;
	p->key_bits = (uint32_t)bits;
	p->hash = hash;
	return bc_volume_open(backing, p, key, out);
}

/* lofi (blockcrypt-lofi(7)): a key file is the raw key, all of it, as
 * lofiadm -k reads it; without one, lofiadm's passphrase. */
static int open_lofi(struct cli_opts *o, const char *backing, struct bc_open_params *p, struct bc_volume **out)
{
	_cleanup_key_ struct bc_secret *key = NULL;
	int r;

	if (o->keyfile_offset)
		return bc_set_error(-EINVAL, "lofi: --keyfile-offset does not apply: the whole key file is the key");
	r = cli_get_key(o, o->key_file, "Enter passphrase: ", false, &key);
	if (r < 0)
		return r;
	p->hash = o->key_file ? NULL : "lofiadm";
	return bc_volume_open(backing, p, key, out);
}

static int open_volume(struct cli_opts *o, const char *backing, bool read_only, struct bc_volume **out)
{
	struct bc_unlock u = {
		/* A key file given without a PIN file means "use the key file". */
		.use_tokens = o->pin_file || !o->key_file || o->token_only,
		.token_only = o->token_only, .pkcs11_module = o->module,
		.get_pin = cli_get_pin, .get_passphrase = ask_passphrase, .user = o,
	};
	struct bc_open_params p = {
		.type = o->type, .read_only = read_only, .cipher = o->cipher, .key_bits = o->key_bits,
		.sector_size = o->sector_size, .iv_large_sectors = o->iv_large_sectors,
		.offset = o->offset, .skip = o->skip, .size = o->size / 512, .unlock = &u,
		.header = o->header, .key_slot_set = o->key_slot >= 0, .key_slot = o->key_slot,
	};
	_cleanup_key_ struct bc_secret *key = NULL, *pin = NULL;
	int r;

	if (o->plain_fallback && !o->type_set) {
		/* A crypttab line with plain options but no type: plain when
		 * the backing has no LUKS header, as systemd-cryptsetup does. */
		struct bc_luks *l = NULL;

		r = bc_luks_load(backing, true, &l);
		bc_luks_free(l);
		if (r == -EBADMSG)
			p.type = o->type = BC_TYPE_PLAIN;
		else if (r < 0)
			return r;
	}
	if (o->type != BC_TYPE_PLAIN && o->type != BC_TYPE_LOFI) {
		/* Silently ignoring one would read or write the wrong place. */
		const char *opt = plain_only_option(o);

		if (opt)
			return bc_set_error(-EINVAL, "%s applies to --type plain only: a LUKS volume's layout comes from its header",
					opt);
		if (o->pkcs11)
			return bc_set_error(-EINVAL, "--pkcs11 keys plain volumes; a LUKS2 volume unlocks with its enrolled tokens (--pin-file, --token-only)");
		/* A wrong typed passphrase may be typed again, --tries times
		 * in all (0: no limit), as cryptsetup does. */
		for (uint32_t attempt = 1;; attempt++) {
			r = bc_volume_open(backing, &p, NULL, out);
			if (r != -EPERM || o->key_file || o->batch || o->token_only || attempt == (o->tries ? o->tries : 3))
				return r;
			fprintf(stderr, "blockcrypt: %s\n", bc_last_error());
		}
	}
	/* Refused before any key is asked for (the library refuses too). */
	if (o->header || o->key_slot >= 0)
		return bc_set_error(-EINVAL, "--%s is for LUKS volumes: a %s volume has no LUKS header or key slots",
				o->header ? "header" : "key-slot", bc_volume_type_name(o->type));
	if (o->pkcs11 && o->type == BC_TYPE_LOFI)
		return bc_set_error(-ENOTSUP, "lofi: --pkcs11 derives a key, lofiadm -T reads one; put the token key's value in a --key-file (blockcrypt-lofi(7))");
	if (o->pkcs11) {
		/* lofi-style: the volume key is derived inside the token. */
		int bits = bc_plain_key_bits(o->cipher, o->key_bits);

		if (bits < 0)
			return bits;
		if (o->key_file)
			return bc_set_error(-EINVAL, "plain: give --pkcs11 or --key-file, not both");
		r = cli_get_pin(o, o->pkcs11, &pin);
		if (r < 0)
			return r;
		r = bc_pkcs11_derive_plain_key(o->pkcs11, o->module, pin, bits / 8, &key);
		if (r < 0)
			return r;
		p.key_bits = bits;
		return bc_volume_open(backing, &p, key, out);
	}
	if (o->type == BC_TYPE_LOFI)
		return open_lofi(o, backing, &p, out);
	return open_plain(o, backing, &p, out);
}

int cli_load_old_new(struct cli_opts *o, const char *old_prompt, const char *new_prompt,
		     struct bc_luks **l, struct bc_secret **old, struct bc_secret **new_pass)
{
	int r = bc_luks_load_detached(o->args[0], o->header, false, l);

	if (r < 0)
		return r;
	r = cli_get_key(o, o->key_file, old_prompt, false, old);
	if (r < 0)
		return r;
	return cli_get_key(o, o->new_key_file, new_prompt, true, new_pass);
}

int cli_open_volume(struct cli_opts *o, const char *backing, bool read_only, struct bc_volume **out)
{
	int r = open_volume(o, backing, read_only, out), l;

	/* The volume's key schedules (OpenSSL contexts on the ordinary heap)
	 * and the plaintext buffers to come must not be swapped out.  Done
	 * after the key derivation so a large Argon2 cost is not bound by the
	 * lock limit.  The daemon does the same after its fork. */
	if (r == 0 && (l = bc_memory_lock_all()) < 0)
		fprintf(stderr, "blockcrypt: warning: cannot lock memory (%s): keys may be swapped out\n",
			strerror(-l));
	return r;
}
