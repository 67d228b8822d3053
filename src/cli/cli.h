/* SPDX-License-Identifier: GPL-2.0-or-later */
/* Shared pieces of the command-line tool: option parsing, key input,
 * confirmation and progress.  Each subcommand lives in its own
 * src/commands/cmd_*.c; the options themselves are declared in
 * src/attach/options.h. */
#ifndef BC_CLI_H
#define BC_CLI_H

#include <stdbool.h>
#include <stdint.h>

#include <json-c/json.h>

#include "blockcrypt.h"
#include "attach/config.h"
#include "attach/options.h"

/* The values of the options (declared in attach/options.h).  Those an
 * attachment needs are struct attach_config's, reachable both one by one
 * (o->threads) and as the struct handed to the attach service (o->cfg). */
struct cli_opts {
	union {
		struct attach_config cfg;
		struct {
			ATTACH_CONFIG_FIELDS
		};
	};
	const char *new_key_file;
	bool batch, json, no_wipe, progress, no_progress, progress_json, iv_large_sectors, break_lock, verbose;
	const char *label;
	bool foreground, all, force;
	const char *token, *tab, *from_tab;
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
	enum cmd_id id;      /* which options it takes: attach/options.h */
	int min_args, max_args;
	int (*run)(struct cli_opts *o);
	/* The first argument is a backing store: checked to be a regular file
	 * or block device before anything opens it, and locked with these
	 * BC_LOCK_* bits for the whole command (0: the command locks by
	 * itself, e.g. attach hands its lock to the daemon). */
	bool takes_backing;
	unsigned locks;
};

/* Every --json output carries "version": BC_JSON_VERSION (blockcrypt(8),
 * JSON OUTPUT): within one version fields are only ever added; a field
 * removed, renamed or changed in meaning makes the next version. */
#define BC_JSON_VERSION 1

/* Print O (an object, or an array of objects: each gets the field) to
 * standard output as --json does, with "version"; takes O's reference. */
void cli_print_json(json_object *o);

/* Parse argv for command C; prints help and exits for --help. */
int cli_parse(const struct cli_command *c, int argc, char **argv, struct cli_opts *o);

/* Obtain a key: from FILE when given ("-" = stdin), else by prompting on
 * the terminal (twice when CONFIRM).  Refuses to prompt in --batch mode. */
int cli_get_key(const struct cli_opts *o, const char *file, const char *prompt,
		bool confirm, struct bc_secret **out);
/* Ask for "YES" on the terminal unless --batch. */
int cli_confirm(const struct cli_opts *o, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Progress callback printing to stderr (when a tty, or with --progress,
 * or as JSON lines with --progress-json): bytes, rate and ETA, the clock
 * starting at the first call (make it with DONE 0 when the data I/O
 * starts, so a key derivation before it does not count).  TOTAL 0: not
 * known (no percentage, no ETA). */
int cli_progress(uint64_t done, uint64_t total, void *user);
/* State for cli_progress, or NULL when progress should not be shown;
 * WHAT says what is done ("Wiping", "Writing", "Reading"), DEVICE what on. */
void *cli_progress_state(const struct cli_opts *o, const char *what, const char *device);
/* PIN for a token: --pin-file, else a no-echo prompt (not in --batch). */
int cli_get_pin(void *user, const char *token_label, struct bc_secret **out);
/* Open a volume for data access with the command's key options. */
int cli_open_volume(struct cli_opts *o, const char *backing, bool read_only, struct bc_volume **out);

/* Load the volume's LUKS header, then read an existing key and a new one
 * (asked twice when prompted); for add-key and change-key. */
int cli_load_old_new(struct cli_opts *o, const char *old_prompt, const char *new_prompt,
		     struct bc_luks **l, struct bc_secret **old, struct bc_secret **new_pass);

#define _cleanup_volume_ __attribute__((cleanup(cli_volume_closep)))
static inline void cli_volume_closep(struct bc_volume **v) { bc_volume_close(*v); }
#define _cleanup_luks_ __attribute__((cleanup(cli_luks_freep)))
static inline void cli_luks_freep(struct bc_luks **l) { bc_luks_free(*l); }
#define _cleanup_key_ __attribute__((cleanup(cli_secret_freep)))
static inline void cli_secret_freep(struct bc_secret **s) { bc_secret_free(*s); }

#endif
