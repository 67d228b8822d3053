/* Option parsing and interactive helpers shared by all subcommands. */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"
#include "attach/number.h"
#include "core/error.h"
#include "core/secret.h"

enum {
	O_NEW_KEY_FILE = 256, O_BATCH, O_JSON, O_TYPE, O_CIPHER, O_KEY_SIZE, O_SECTOR_SIZE,
	O_LABEL, O_SIZE, O_NO_WIPE, O_PBKDF, O_ITER_TIME, O_PBKDF_MEMORY, O_PBKDF_PARALLEL,
	O_KEY_SLOT, O_OFFSET, O_SKIP, O_HASH, O_IV_LARGE, O_READ_ONLY, O_PROGRESS,
	O_NO_PROGRESS, O_KEY_FILE, O_HELP, O_NAME, O_SOCKET, O_LISTEN, O_FUSE, O_DISCARDS,
	O_FOREGROUND, O_THREADS, O_INSECURE, O_ALL, O_FORCE, O_PBKDF_ITER, O_TOKEN, O_KEY_LEN,
	O_MODULE, O_PIN_FILE, O_PKCS11, O_TOKEN_ONLY, O_TOKEN_ID, O_TAB, O_FROM_TAB,
	O_TLS_CERTS, O_TLS_PSK, O_TLS_VERIFY, O_MAX_CONNECTIONS, O_HANDSHAKE_TIMEOUT, O_MAX_MEMORY,
};

struct opt_def {
	struct option lo;
	unsigned group;         /* 0 = always accepted */
	const char *arg, *help;
};

static const struct opt_def opt_defs[] = {
	{ { "key-file", required_argument, NULL, O_KEY_FILE }, OPT_KEY_FILE, "FILE",
	  "read the key (passphrase) from FILE, byte for byte; - = stdin" },
	{ { "new-key-file", required_argument, NULL, O_NEW_KEY_FILE }, OPT_NEW_KEY_FILE, "FILE",
	  "read the new key from FILE" },
	{ { "type", required_argument, NULL, O_TYPE }, OPT_TYPE, "TYPE",
	  "luks2 (default for format), luks1, or plain (headerless)" },
	{ { "cipher", required_argument, NULL, O_CIPHER }, OPT_FORMAT | OPT_PLAIN, "SPEC",
	  "aes-xts-plain64 (default), aes-cbc-essiv:sha256, aes-cbc-plain64, ..." },
	{ { "key-size", required_argument, NULL, O_KEY_SIZE }, OPT_FORMAT | OPT_PLAIN, "BITS",
	  "volume key size (XTS: 512 default or 256; CBC: 256 default, 192, 128)" },
	{ { "sector-size", required_argument, NULL, O_SECTOR_SIZE }, OPT_FORMAT | OPT_PLAIN, "BYTES",
	  "encryption sector: 512..4096 (LUKS2 default 4096 when the size allows)" },
	{ { "label", required_argument, NULL, O_LABEL }, OPT_FORMAT | OPT_GENKEY, "LABEL",
	  "format: LUKS2 label; genkey: label of the new token key" },
	{ { "token", required_argument, NULL, O_TOKEN }, OPT_GENKEY, "TOKEN",
	  "PKCS#11 token: pkcs11:token=NAME (RFC 7512) or lofi's token:manufacturer:serial:" },
	{ { "key-len", required_argument, NULL, O_KEY_LEN }, OPT_GENKEY, "BITS", "AES key length: 256 (default), 192, 128" },
	{ { "pkcs11", required_argument, NULL, O_PKCS11 }, OPT_ENROLL | OPT_TOKEN, "URI",
	  "enroll: token key to wrap the slot secret; plain volumes: derive the key in the token" },
	{ { "token-id", required_argument, NULL, O_TOKEN_ID }, OPT_ENROLL, "N", "unenroll: only this LUKS2 token" },
	{ { "module", required_argument, NULL, O_MODULE }, OPT_TOKEN | OPT_GENKEY | OPT_ENROLL, "PATH",
	  "PKCS#11 module (default: every module registered with p11-kit)" },
	{ { "pin-file", required_argument, NULL, O_PIN_FILE }, OPT_TOKEN | OPT_GENKEY | OPT_ENROLL, "FILE",
	  "read the token PIN from FILE (one trailing newline ignored)" },
	{ { "token-only", no_argument, NULL, O_TOKEN_ONLY }, OPT_TOKEN, NULL,
	  "unlock only with an enrolled token, never ask for a passphrase" },
	{ { "size", required_argument, NULL, O_SIZE }, OPT_FORMAT | OPT_PLAIN | OPT_SIZE, "BYTES",
	  "format: create/extend the backing file; plain: data size; resize: new size, may shrink (K,M,G,T)" },
	{ { "no-wipe", no_argument, NULL, O_NO_WIPE }, OPT_FORMAT, NULL,
	  "do not overwrite the data area with encrypted zeros" },
	{ { "pbkdf", required_argument, NULL, O_PBKDF }, OPT_PBKDF, "KDF",
	  "argon2id (LUKS2 default), argon2i, pbkdf2 (LUKS1)" },
	{ { "iter-time", required_argument, NULL, O_ITER_TIME }, OPT_PBKDF, "MS",
	  "time to spend in key derivation when setting a key" },
	{ { "pbkdf-memory", required_argument, NULL, O_PBKDF_MEMORY }, OPT_PBKDF, "KIB",
	  "argon2 memory cost limit" },
	{ { "pbkdf-parallel", required_argument, NULL, O_PBKDF_PARALLEL }, OPT_PBKDF, "N",
	  "argon2 threads" },
	{ { "pbkdf-force-iterations", required_argument, NULL, O_PBKDF_ITER }, OPT_PBKDF, "N",
	  "fixed KDF cost instead of a benchmark (pbkdf2: iterations; argon2: passes)" },
	{ { "key-slot", required_argument, NULL, O_KEY_SLOT }, OPT_KEY_SLOT, "N", "key slot number" },
	{ { "offset", required_argument, NULL, O_OFFSET }, OPT_PLAIN, "SECTORS",
	  "plain: data start in 512-byte sectors (as cryptsetup --offset)" },
	{ { "skip", required_argument, NULL, O_SKIP }, OPT_PLAIN, "SECTORS",
	  "plain: IV offset in 512-byte sectors (as cryptsetup --skip)" },
	{ { "hash", required_argument, NULL, O_HASH }, OPT_PLAIN, "HASH",
	  "plain: hash a prompted passphrase into the key (default sha256); key files are used raw" },
	{ { "iv-large-sectors", no_argument, NULL, O_IV_LARGE }, OPT_PLAIN, NULL,
	  "plain: count IVs in sector-size units" },
	{ { "read-only", no_argument, NULL, O_READ_ONLY }, OPT_READ_ONLY, NULL, "open read-only" },
	{ { "name", required_argument, NULL, O_NAME }, OPT_ATTACH, "NAME",
	  "name of the attachment (default: the backing file name without extension)" },
	{ { "socket", required_argument, NULL, O_SOCKET }, OPT_ATTACH, "PATH",
	  "NBD Unix socket (default RUNDIR/NAME.sock, mode 0600)" },
	{ { "listen", required_argument, NULL, O_LISTEN }, OPT_ATTACH, "ADDR:PORT",
	  "serve NBD over TCP instead (e.g. 127.0.0.1:10809, [::1]:10809)" },
	{ { "tls-certificates", required_argument, NULL, O_TLS_CERTS }, OPT_ATTACH, "DIR",
	  "require NBD TLS with the X.509 server-cert.pem, server-key.pem (and ca-cert.pem) in DIR" },
	{ { "tls-psk", required_argument, NULL, O_TLS_PSK }, OPT_ATTACH, "FILE",
	  "require NBD TLS with the pre-shared keys in FILE (psktool format: user:hexkey)" },
	{ { "tls-verify-peer", no_argument, NULL, O_TLS_VERIFY }, OPT_ATTACH, NULL,
	  "with --tls-certificates: clients need a certificate signed by DIR/ca-cert.pem" },
	{ { "insecure", no_argument, NULL, O_INSECURE }, OPT_ATTACH, NULL,
	  "allow --listen on a non-loopback address without TLS" },
	{ { "fuse", required_argument, NULL, O_FUSE }, OPT_ATTACH, "DIR",
	  "also mount DIR with one file, DIR/NAME, that is the decrypted device" },
	{ { "allow-discards", no_argument, NULL, O_DISCARDS }, OPT_ATTACH, NULL,
	  "pass TRIM/punch-hole to the backing (reveals which blocks are unused)" },
	{ { "foreground", no_argument, NULL, O_FOREGROUND }, OPT_ATTACH, NULL,
	  "stay in the foreground, log to stderr (for systemd and debugging)" },
	{ { "threads", required_argument, NULL, O_THREADS }, OPT_ATTACH, "N", "threads serving each NBD connection (default 4, at most 64)" },
	{ { "max-connections", required_argument, NULL, O_MAX_CONNECTIONS }, OPT_ATTACH, "N",
	  "NBD connections at once (default 128); more are closed at once" },
	{ { "handshake-timeout", required_argument, NULL, O_HANDSHAKE_TIMEOUT }, OPT_ATTACH, "SECONDS",
	  "close NBD connections that have not finished the handshake (TLS included) by then (default 10)" },
	{ { "max-memory", required_argument, NULL, O_MAX_MEMORY }, OPT_ATTACH, "BYTES",
	  "memory for NBD request and reply buffers, all clients together (default 256M, at least 32M)" },
	{ { "all", no_argument, NULL, O_ALL }, OPT_DETACH | OPT_ATTACH, NULL,
	  "attach: every tab file entry (but noauto); detach: every attached volume" },
	{ { "tab", required_argument, NULL, O_TAB }, OPT_ATTACH, "FILE", "tab file (default /etc/blockcrypttab)" },
	{ { "from-tab", required_argument, NULL, O_FROM_TAB }, OPT_ATTACH, "NAME",
	  "attach the tab file entry NAME (as blockcrypt@NAME.service does)" },
	{ { "force", no_argument, NULL, O_FORCE }, OPT_DETACH, NULL,
	  "detach even if the FUSE file is in use (its users get I/O errors)" },
	{ { "json", no_argument, NULL, O_JSON }, OPT_JSON, NULL, "machine-readable output" },
	{ { "batch", no_argument, NULL, O_BATCH }, OPT_BATCH, NULL,
	  "never ask: no confirmations, no prompts (keys must come from files)" },
	{ { "batch-mode", no_argument, NULL, O_BATCH }, OPT_BATCH, NULL, NULL },
	{ { "progress", no_argument, NULL, O_PROGRESS }, OPT_PROGRESS, NULL, "show progress even when stderr is not a terminal" },
	{ { "no-progress", no_argument, NULL, O_NO_PROGRESS }, OPT_PROGRESS, NULL, "never show progress" },
	{ { "help", no_argument, NULL, O_HELP }, 0, NULL, "show this help" },
};
#define N_OPTS (sizeof(opt_defs) / sizeof(opt_defs[0]))

static void command_help(const struct cli_command *c, FILE *f)
{
	fprintf(f, "Usage: blockcrypt %s %s\n\n%s\n\nOptions:\n", c->name, c->synopsis, c->summary);
	for (size_t i = 0; i < N_OPTS; i++) {
		const struct opt_def *d = &opt_defs[i];
		char left[64];

		if ((d->group && !(d->group & c->options)) || !d->help)
			continue;
		snprintf(left, sizeof(left), "--%s%s%s", d->lo.name, d->arg ? " " : "", d->arg ? d->arg : "");
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
		return bc_error(-EINVAL, "--%s: expected a number, got '%s'", name, s ? s : "");
	case -ERANGE:
		return bc_error(-EINVAL, "--%s: '%s' is too large", name, s);
	default:
		return bc_error(-EINVAL, "--%s: cannot parse '%s'", name, s);
	}
}

static int parse_u32(const char *name, const char *s, uint32_t *out)
{
	uint64_t v;
	int r = parse_u64(name, s, false, &v);

	if (r < 0)
		return r;
	if (v > UINT32_MAX)
		return bc_error(-EINVAL, "--%s: '%s' is too large", name, s);
	*out = (uint32_t)v;
	return 0;
}

int cli_parse(const struct cli_command *c, int argc, char **argv, struct cli_opts *o)
{
	struct option longopts[N_OPTS + 1];
	size_t n = 0;
	uint64_t v;
	int ch, r = 0;

	memset(o, 0, sizeof(*o));
	o->key_slot = -1;
	o->token_id = -1;
	for (size_t i = 0; i < N_OPTS; i++)
		if (!opt_defs[i].group || (opt_defs[i].group & c->options))
			longopts[n++] = opt_defs[i].lo;
	memset(&longopts[n], 0, sizeof(longopts[n]));

	opterr = 0;
	optind = 1;
	while ((ch = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
		switch (ch) {
		case O_HELP: command_help(c, stdout); exit(0);
		case O_KEY_FILE: o->key_file = optarg; break;
		case O_NEW_KEY_FILE: o->new_key_file = optarg; break;
		case O_BATCH: o->batch = true; break;
		case O_JSON: o->json = true; break;
		case O_TYPE: r = bc_volume_type_parse(optarg, &o->type); o->type_set = true; break;
		case O_CIPHER: o->cipher = optarg; break;
		case O_KEY_SIZE: r = parse_u32("key-size", optarg, &o->key_bits); break;
		case O_SECTOR_SIZE: r = parse_u32("sector-size", optarg, &o->sector_size); break;
		case O_LABEL: o->label = optarg; break;
		case O_SIZE: r = parse_u64("size", optarg, true, &o->size); break;
		case O_NO_WIPE: o->no_wipe = true; break;
		case O_PBKDF: o->pbkdf.type = optarg; break;
		case O_ITER_TIME: r = parse_u32("iter-time", optarg, &o->pbkdf.iter_time_ms); break;
		case O_PBKDF_MEMORY: r = parse_u32("pbkdf-memory", optarg, &o->pbkdf.max_memory_kb); break;
		case O_PBKDF_PARALLEL: r = parse_u32("pbkdf-parallel", optarg, &o->pbkdf.parallel); break;
		case O_PBKDF_ITER: r = parse_u32("pbkdf-force-iterations", optarg, &o->pbkdf.iterations); break;
		case O_KEY_SLOT:
			r = parse_u64("key-slot", optarg, false, &v);
			if (r == 0 && v > 31)
				r = bc_error(-EINVAL, "--key-slot: %s is out of range", optarg);
			o->key_slot = (int)v;
			break;
		case O_OFFSET: r = parse_u64("offset", optarg, false, &o->offset); break;
		case O_SKIP: r = parse_u64("skip", optarg, false, &o->skip); break;
		case O_HASH: o->hash = optarg; break;
		case O_IV_LARGE: o->iv_large_sectors = true; break;
		case O_READ_ONLY: o->read_only = true; break;
		case O_PROGRESS: o->progress = true; break;
		case O_NO_PROGRESS: o->no_progress = true; break;
		case O_NAME: o->name = optarg; break;
		case O_SOCKET: o->socket = optarg; break;
		case O_LISTEN: o->listen = optarg; break;
		case O_INSECURE: o->insecure = true; break;
		case O_TLS_CERTS: o->tls_certificates = optarg; break;
		case O_TLS_PSK: o->tls_psk = optarg; break;
		case O_TLS_VERIFY: o->tls_verify_peer = true; break;
		case O_FUSE: o->fuse_dir = optarg; break;
		case O_DISCARDS: o->allow_discards = true; break;
		case O_FOREGROUND: o->foreground = true; break;
		case O_THREADS:
			r = parse_u32("threads", optarg, &o->threads);
			if (r == 0 && (o->threads < 1 || o->threads > ATTACH_THREADS_MAX))
				r = bc_error(-EINVAL, "--threads %s: give 1 to %d", optarg, ATTACH_THREADS_MAX);
			break;
		case O_MAX_CONNECTIONS:
			r = parse_u32("max-connections", optarg, &o->max_connections);
			if (r == 0 && (o->max_connections < 1 || o->max_connections > 1000000))
				r = bc_error(-EINVAL, "--max-connections: 1 to 1000000");
			break;
		case O_HANDSHAKE_TIMEOUT:
			r = parse_u32("handshake-timeout", optarg, &o->handshake_timeout);
			if (r == 0 && (o->handshake_timeout < 1 || o->handshake_timeout > 86400))
				r = bc_error(-EINVAL, "--handshake-timeout: 1 to 86400 seconds");
			break;
		case O_MAX_MEMORY:
			r = parse_u64("max-memory", optarg, true, &o->max_memory);
			if (r == 0 && o->max_memory < BC_NBD_MIN_MAX_MEMORY)
				r = bc_error(-EINVAL, "--max-memory: at least 32M (one request of the largest size)");
			break;
		case O_ALL: o->all = true; break;
		case O_TAB: o->tab = optarg; break;
		case O_FROM_TAB: o->from_tab = optarg; break;
		case O_TOKEN: o->token = optarg; break;
		case O_KEY_LEN: r = parse_u32("key-len", optarg, &o->key_len); break;
		case O_MODULE: o->module = optarg; break;
		case O_PIN_FILE: o->pin_file = optarg; break;
		case O_PKCS11: o->pkcs11 = optarg; break;
		case O_TOKEN_ONLY: o->token_only = true; break;
		case O_TOKEN_ID:
			r = parse_u64("token-id", optarg, false, &v);
			if (r == 0 && v > 31)
				r = bc_error(-EINVAL, "--token-id: %s is out of range", optarg);
			o->token_id = (int)v;
			break;
		case O_FORCE: o->force = true; break;
		default:
			if (optopt >= 256 || (optopt == 0 && argv[optind - 1]))
				r = bc_error(-EINVAL, "%s: option %s is not valid here (see blockcrypt %s --help)",
					     c->name, argv[optind - 1], c->name);
			else
				r = bc_error(-EINVAL, "%s: unknown option -%c", c->name, optopt);
		}
		if (r < 0)
			return r;
	}
	/* Options may follow the positional arguments too. */
	o->args = argv + optind;
	o->nargs = argc - optind;
	if (o->nargs < c->min_args || o->nargs > c->max_args)
		return bc_error(-EINVAL, "usage: blockcrypt %s %s", c->name, c->synopsis);
	if (o->type_set && o->type != BC_TYPE_PLAIN && (c->options & OPT_PLAIN) &&
	    (o->offset || o->skip || o->hash || o->iv_large_sectors))
		return bc_error(-EINVAL, "%s: --offset, --skip, --hash and --iv-large-sectors need --type plain", c->name);
	if (o->size % 512 && (c->options & OPT_PLAIN))
		return bc_error(-EINVAL, "--size must be a multiple of 512 bytes");
	return 0;
}

int cli_get_key(const struct cli_opts *o, const char *file, const char *prompt,
		bool confirm, struct bc_secret **out)
{
	struct bc_secret *again = NULL;
	int r;

	*out = NULL;
	if (file)
		return bc_secret_from_file(file, out);
	if (o->batch)
		return bc_error(-EINVAL, "--batch given but no key file: use --key-file (prompting is disabled)");
	r = bc_secret_prompt(prompt, out);
	if (r < 0 || !confirm)
		return r;
	r = bc_secret_prompt("Verify passphrase: ", &again);
	if (r < 0)
		goto fail;
	if (bc_secret_len(again) != bc_secret_len(*out) ||
	    !bc_secret_equal(again, *out)) {
		r = bc_error(-EINVAL, "passphrases do not match");
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
		return bc_error(-ECANCELED, "confirmation needed but there is no terminal (use --batch)");
	fputs("WARNING!\n========\n", tty);
	va_start(ap, fmt);
	vfprintf(tty, fmt, ap);
	va_end(ap);
	fputs("\n\nAre you sure? (Type 'yes' in capital letters): ", tty);
	fflush(tty);
	if (fgets(answer, sizeof(answer), tty) && !strcmp(answer, "YES\n"))
		r = 0;
	fclose(tty);
	return r < 0 ? bc_error(r, "operation cancelled") : 0;
}

struct progress_state {
	struct timespec start;
	int last_permille;
};

int cli_progress(uint64_t done, uint64_t total, void *user)
{
	struct progress_state *st = user;
	struct timespec now;
	double secs;
	int permille;

	if (!st)
		return 0;
	permille = total ? (int)(done * 1000 / total) : 1000;
	if (permille == st->last_permille && done != total)
		return 0;
	st->last_permille = permille;
	clock_gettime(CLOCK_MONOTONIC, &now);
	secs = (double)(now.tv_sec - st->start.tv_sec) + (double)(now.tv_nsec - st->start.tv_nsec) / 1e9;
	fprintf(stderr, "\rWiping: %5.1f%%  %llu/%llu MiB  %.1f MiB/s%s", permille / 10.0,
		(unsigned long long)(done >> 20), (unsigned long long)(total >> 20),
		secs > 0 ? (double)done / (1 << 20) / secs : 0.0, done == total ? "\n" : "");
	return 0;
}

void *cli_progress_state(const struct cli_opts *o)
{
	static struct progress_state st;

	if (o->no_progress || (!o->progress && !isatty(STDERR_FILENO)))
		return NULL;
	clock_gettime(CLOCK_MONOTONIC, &st.start);
	st.last_permille = -1;
	return &st;
}

int cli_get_pin(void *user, const char *token_label, struct bc_secret **out)
{
	const struct cli_opts *o = user;
	char prompt[128];
	int r;

	*out = NULL;
	if (o->pin_file) {
		r = bc_secret_from_file(o->pin_file, out);
		if (r < 0)
			return bc_error(r, "--pin-file %s: %s", o->pin_file,
					r == -EINVAL ? "empty or too large" : strerror(-r));
		if (bc_secret_len(*out) && bc_secret_data(*out)[bc_secret_len(*out) - 1] == '\n')
			bc_secret_truncate(*out, bc_secret_len(*out) - 1);
		return 0;
	}
	if (o->batch)
		return bc_error(-EINVAL, "token '%s' needs a PIN: use --pin-file (--batch disables prompts)", token_label);
	snprintf(prompt, sizeof(prompt), "Enter PIN for token '%s': ", token_label);
	return bc_secret_prompt(prompt, out);
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
	};
	_cleanup_key_ struct bc_secret *key = NULL, *pin = NULL;
	int r;

	if (o->type != BC_TYPE_PLAIN) {
		/* Silently ignoring one would read or write the wrong place. */
		const char *opt = plain_only_option(o);

		if (opt)
			return bc_error(-EINVAL, "%s applies to --type plain only: a LUKS volume's layout comes from its header",
					opt);
		if (o->pkcs11)
			return bc_error(-EINVAL, "--pkcs11 keys plain volumes; a LUKS2 volume unlocks with its enrolled tokens (--pin-file, --token-only)");
		return bc_volume_open(backing, &p, NULL, out);
	}
	if (o->pkcs11) {
		/* lofi-style: the volume key is derived inside the token. */
		int bits = bc_cipher_key_bits(o->cipher, o->key_bits);

		if (bits < 0)
			return bits;
		if (o->key_file)
			return bc_error(-EINVAL, "plain: give --pkcs11 or --key-file, not both");
		r = cli_get_pin(o, o->pkcs11, &pin);
		if (r < 0)
			return r;
		r = bc_pkcs11_derive_plain_key(o->pkcs11, o->module, pin, bits / 8, &key);
		if (r < 0)
			return r;
		p.key_bits = bits;
		return bc_volume_open(backing, &p, key, out);
	}
	/* A key file is the raw key; a typed passphrase is hashed. */
	p.hash = o->key_file ? o->hash : (o->hash ? o->hash : "sha256");
	r = cli_get_key(o, o->key_file, "Enter passphrase: ", false, &key);
	if (r < 0)
		return r;
	return bc_volume_open(backing, &p, key, out);
}

int cli_load_old_new(struct cli_opts *o, const char *old_prompt, const char *new_prompt,
		     struct bc_luks **l, struct bc_secret **old, struct bc_secret **new_pass)
{
	int r = bc_luks_load(o->args[0], false, l);

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
