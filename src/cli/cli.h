/* Shared pieces of the command-line tool: option parsing, key input,
 * confirmation and progress.  Each subcommand lives in its own cmd_*.c. */
#ifndef BC_CLI_H
#define BC_CLI_H

#include <stdbool.h>
#include <stdint.h>

#include "blockcrypt.h"
#include "attach/config.h"

/* Options a subcommand may accept (bit mask). */
enum {
	OPT_KEY_FILE = 1u << 0,
	OPT_NEW_KEY_FILE = 1u << 1,
	OPT_BATCH = 1u << 2,
	OPT_JSON = 1u << 3,
	OPT_TYPE = 1u << 4,
	OPT_FORMAT = 1u << 5,    /* cipher, key-size, sector-size, label, size, wipe */
	OPT_PBKDF = 1u << 6,     /* pbkdf, iter-time, pbkdf-memory, pbkdf-parallel */
	OPT_KEY_SLOT = 1u << 7,
	OPT_PLAIN = 1u << 8,     /* cipher, key-size, sector-size, offset, skip, size, hash */
	OPT_READ_ONLY = 1u << 9,
	OPT_PROGRESS = 1u << 10,
	OPT_ATTACH = 1u << 11,   /* name, socket, listen, fuse, discards, foreground, threads */
	OPT_DETACH = 1u << 12,   /* all, force */
	OPT_TOKEN = 1u << 13,    /* module, pin-file, token-only, pkcs11 (plain) */
	OPT_GENKEY = 1u << 14,   /* token, label, key-len */
	OPT_ENROLL = 1u << 15,   /* pkcs11, token-id */
	OPT_SIZE = 1u << 16,     /* size alone (resize) */
};

struct cli_opts {
	const char *key_file, *new_key_file;
	bool batch, json, read_only, no_wipe, progress, no_progress, iv_large_sectors;
	bool type_set;
	enum bc_volume_type type;
	const char *cipher, *label, *hash;
	uint32_t key_bits, sector_size;
	uint64_t size, offset, skip;
	int key_slot;            /* -1 = any */
	const char *name, *socket, *listen, *fuse_dir;
	bool allow_discards, foreground, insecure, all, force;
	const char *tls_certificates, *tls_psk;
	bool tls_verify_peer;
	uint32_t threads;
	uint32_t max_connections, handshake_timeout; /* 0 = default */
	uint64_t max_memory;                         /* 0 = default */
	const char *token, *module, *pin_file, *pkcs11;
	const char *tab, *from_tab;
	bool token_only;
	uint32_t key_len;
	int token_id;            /* -1 = any */
	struct bc_pbkdf_params pbkdf;
	char **args;             /* positional arguments */
	int nargs;
};

struct cli_command {
	const char *name;
	const char *synopsis;    /* after "blockcrypt NAME " */
	const char *summary;
	unsigned options;
	int min_args, max_args;
	int (*run)(struct cli_opts *o);
	/* The first argument is a backing store: checked to be a regular file
	 * or block device before anything opens it, and locked with these
	 * BC_LOCK_* bits for the whole command (0: the command locks by
	 * itself, e.g. attach hands its lock to the daemon). */
	bool takes_backing;
	unsigned locks;
};

/* Parse argv for command C; prints help and exits for --help. */
int cli_parse(const struct cli_command *c, int argc, char **argv, struct cli_opts *o);

/* Obtain a key: from FILE when given ("-" = stdin), else by prompting on
 * the terminal (twice when CONFIRM).  Refuses to prompt in --batch mode. */
int cli_get_key(const struct cli_opts *o, const char *file, const char *prompt,
		bool confirm, struct bc_secret **out);
/* Ask for "YES" on the terminal unless --batch. */
int cli_confirm(const struct cli_opts *o, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Progress callback printing to stderr (when a tty, or with --progress). */
int cli_progress(uint64_t done, uint64_t total, void *user);
/* State for cli_progress, or NULL when progress should not be shown. */
void *cli_progress_state(const struct cli_opts *o);
/* PIN for a token: --pin-file, else a no-echo prompt (not in --batch). */
int cli_get_pin(void *user, const char *token_label, struct bc_secret **out);
/* Open a volume for data access with the command's key options. */
int cli_open_volume(struct cli_opts *o, const char *backing, bool read_only, struct bc_volume **out);

/* Load the volume's LUKS header, then read an existing key and a new one
 * (asked twice when prompted); for add-key and change-key. */
int cli_load_old_new(struct cli_opts *o, const char *old_prompt, const char *new_prompt,
		     struct bc_luks **l, struct bc_secret **old, struct bc_secret **new_pass);

/* Subcommand table (main.c) and handlers. */
int cmd_format(struct cli_opts *o);
int cmd_add_key(struct cli_opts *o);
int cmd_remove_key(struct cli_opts *o);
int cmd_change_key(struct cli_opts *o);
int cmd_dump(struct cli_opts *o);
int cmd_header_backup(struct cli_opts *o);
int cmd_header_restore(struct cli_opts *o);
int cmd_repair(struct cli_opts *o);
int cmd_erase(struct cli_opts *o);
int cmd_cat(struct cli_opts *o);
int cmd_write(struct cli_opts *o);
int cmd_attach(struct cli_opts *o);
int cmd_detach(struct cli_opts *o);
int cmd_list(struct cli_opts *o);
int cmd_status(struct cli_opts *o);
int cmd_genkey(struct cli_opts *o);
int cmd_resize(struct cli_opts *o);
int cmd_enroll(struct cli_opts *o);
int cmd_unenroll(struct cli_opts *o);

#define _cleanup_volume_ __attribute__((cleanup(cli_volume_closep)))
static inline void cli_volume_closep(struct bc_volume **v) { bc_volume_close(*v); }
#define _cleanup_luks_ __attribute__((cleanup(cli_luks_freep)))
static inline void cli_luks_freep(struct bc_luks **l) { bc_luks_free(*l); }
#define _cleanup_key_ __attribute__((cleanup(cli_secret_freep)))
static inline void cli_secret_freep(struct bc_secret **s) { bc_secret_free(*s); }

#endif
