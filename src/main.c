/* SPDX-License-Identifier: GPL-2.0-or-later */
/* blockcrypt: the command-line entry point; dispatches to one handler per
 * subcommand from the table below. */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "blockcrypt.h"
#include "cli/cli.h"
#include "commands/commands.h"
#include "config.h"
#include "attach/runtime.h"
#include "attach/macros.h"

static const struct cli_command commands[] = {
	{ "format", "BACKING", "Create a LUKS2 (or LUKS1) volume on BACKING; asks for the new passphrase twice.",
	  BC_CMD_FORMAT, 1, 1, cmd_format, true, 0 },
	{ "add-key", "VOLUME", "Add a passphrase in a free key slot (unlocking with an existing one).",
	  BC_CMD_ADD_KEY, 1, 1, cmd_add_key, true, BC_LOCK_HEADER },
	{ "remove-key", "VOLUME", "Remove the key slot that the given passphrase opens, or --key-slot N.",
	  BC_CMD_REMOVE_KEY, 1, 1, cmd_remove_key, true, BC_LOCK_DATA_WRITE | BC_LOCK_HEADER },
	{ "change-key", "VOLUME", "Replace a passphrase with a new one (same key slot).",
	  BC_CMD_CHANGE_KEY, 1, 1, cmd_change_key, true, BC_LOCK_HEADER },
	{ "dump", "VOLUME", "Show the header: cipher, sectors, key slots (never keys).",
	  BC_CMD_DUMP, 1, 1, cmd_dump, true, 0 },
	{ "header-backup", "VOLUME FILE", "Save the LUKS header and key slots to FILE (keep it safe: it opens the data).",
	  BC_CMD_HEADER_BACKUP, 2, 2, cmd_header_backup, true, 0 },
	{ "header-restore", "VOLUME FILE", "Replace the header of VOLUME with the backup in FILE.",
	  BC_CMD_HEADER_RESTORE, 2, 2, cmd_header_restore, true, BC_LOCK_DATA_WRITE | BC_LOCK_HEADER },
	{ "repair", "VOLUME", "Repair a LUKS header (e.g. restore a damaged primary LUKS2 header from its secondary copy).",
	  BC_CMD_REPAIR, 1, 1, cmd_repair, true, BC_LOCK_DATA_WRITE | BC_LOCK_HEADER },
	{ "erase", "VOLUME", "Destroy every key slot: the data becomes unrecoverable without a header backup.",
	  BC_CMD_ERASE, 1, 1, cmd_erase, true, BC_LOCK_DATA_WRITE | BC_LOCK_HEADER },
	{ "cat", "VOLUME", "Write the decrypted contents of VOLUME to standard output.",
	  BC_CMD_CAT, 1, 1, cmd_cat, true, BC_LOCK_DATA_READ },
	{ "write", "VOLUME", "Encrypt standard input onto VOLUME, from its first byte.",
	  BC_CMD_WRITE, 1, 1, cmd_write, true, BC_LOCK_DATA_WRITE },
	{ "attach", "VOLUME | --all | --from-tab NAME", "Unlock VOLUME and serve the decrypted device over NBD (and as a FUSE file).",
	  BC_CMD_ATTACH, 0, 1, cmd_attach, false, 0 },
	{ "detach", "NAME... | --all", "Flush, disconnect clients, unmount, wipe the key and stop serving.",
	  BC_CMD_DETACH, 0, 64, cmd_detach, false, 0 },
	{ "list", "", "List attached volumes.", BC_CMD_LIST, 0, 0, cmd_list, false, 0 },
	{ "resize", "NAME", "Grow an attached volume to its grown backing (shrink only with --size).",
	  BC_CMD_RESIZE, 1, 1, cmd_resize, false, 0 },
	{ "genkey", "--token TOKEN --label LABEL", "Create a non-extractable AES key in a PKCS#11 token.",
	  BC_CMD_GENKEY, 0, 0, cmd_genkey, false, 0 },
	{ "enroll", "VOLUME --pkcs11 URI", "Add a key slot unlocked by a PKCS#11 token key (LUKS2).",
	  BC_CMD_ENROLL, 1, 1, cmd_enroll, true, BC_LOCK_HEADER },
	{ "unenroll", "VOLUME", "Remove blockcrypt PKCS#11 tokens and their key slots.",
	  BC_CMD_UNENROLL, 1, 1, cmd_unenroll, true, BC_LOCK_HEADER },
	{ "status", "NAME", "Show one attached volume.", BC_CMD_STATUS, 1, 1, cmd_status, false, 0 },
};
#define N_COMMANDS ARRAY_SIZE(commands)

static void usage(FILE *f)
{
	fprintf(f, "Usage: blockcrypt COMMAND [OPTIONS] ARGS\n\n"
		"Encrypted block devices in userspace (LUKS2, LUKS1, plain; dm-crypt compatible).\n\n"
		"Commands:\n");
	for (size_t i = 0; i < N_COMMANDS; i++)
		fprintf(f, "  %-15s %s\n", commands[i].name, commands[i].summary);
	fprintf(f, "\nBACKING and VOLUME: a file, a block device, or a Ceph RBD image\n"
		"  rbd:POOL/IMAGE[@SNAP][:conf=PATH][:id=USER][:keyring=PATH] (see blockcrypt-rbd(7)).\n"
		"\nRun 'blockcrypt COMMAND --help' for a command's options; see blockcrypt(8).\n");
}

/* With --break-lock, the library's notes (whose lock it broke) reach the
 * user; otherwise a command's stderr is its one error line. */
static void log_to_stderr(const char *line)
{
	fprintf(stderr, "blockcrypt: %s\n", line);
}

/* Check and lock the backing (see struct cli_command), then run C.  The
 * lock is held until the command returns; a conflicting holder makes the
 * command fail at once with exit 9, before it reads or writes anything. */
static int run_command(const struct cli_command *c, struct cli_opts *o)
{
	struct bc_backing_lock *lock = NULL, *header_lock = NULL;
	struct bc_header_guard *guard = NULL;
	int r;

	bc_rbd_set_break_lock(o->break_lock);
	if (o->break_lock)
		bc_set_log_handler(log_to_stderr);
	if (c->takes_backing && o->nargs >= 1) {
		r = bc_backing_check_type(o->args[0]);
		/* format creates a backing that does not exist yet */
		if (r < 0 && !(r == -ENOENT && c->run == cmd_format))
			return r;
	}
	if (c->locks && o->nargs >= 1) {
		r = bc_backing_lock(o->args[0], c->locks, rt_dir(), &lock);
		if (r < 0)
			return r;
		/* A detached header file is locked as its backing is: the key
		 * slots live there. */
		if (o->header && !bc_backing_same(o->header, o->args[0])) {
			r = bc_backing_lock(o->header, c->locks, rt_dir(), &header_lock);
			if (r < 0)
				goto out;
		}
	}
	/* A header change that fails must change nothing (format is left
	 * out: it replaces the header on purpose, and removes a file it
	 * created if it fails). */
	if ((c->locks & BC_LOCK_HEADER) && c->run != cmd_format) {
		r = bc_header_guard_begin(o->header ? o->header : o->args[0], &guard);
		if (r < 0)
			goto out;
	}
	r = c->run(o);
	if (guard) {
		char why[BC_ERROR_MAX];
		int g;

		snprintf(why, sizeof(why), "%s", bc_last_error());
		g = bc_header_guard_end(guard, r < 0);
		if (g > 0)
			bc_set_error(r, "%s (header restored as it was)", why);
		else if (g < 0) {
			char restore[BC_ERROR_MAX];

			snprintf(restore, sizeof(restore), "%s", bc_last_error());
			r = bc_set_error(r < 0 ? r : g, "%s; %s", why, restore);
		}
		else if (r < 0)
			bc_set_error(r, "%s", why);
	}
out:
	bc_backing_unlock(header_lock);
	bc_backing_unlock(lock);
	return r;
}

int main(int argc, char **argv)
{
	struct cli_opts o;
	int r;

	if (argc < 2) {
		usage(stderr);
		return BC_EXIT_USAGE;
	}
	if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") || !strcmp(argv[1], "help")) {
		usage(stdout);
		return 0;
	}
	if (!strcmp(argv[1], "--version") || !strcmp(argv[1], "-V")) {
		printf("blockcrypt %s\n", BC_VERSION);
		return 0;
	}
	for (size_t i = 0; i < N_COMMANDS; i++) {
		if (strcmp(argv[1], commands[i].name))
			continue;
		r = cli_parse(&commands[i], argc - 1, argv + 1, &o);
		if (r == 0)
			r = run_command(&commands[i], &o);
		if (r < 0) {
			fprintf(stderr, "blockcrypt: %s\n", bc_last_error()[0] ? bc_last_error() : "failed");
			return bc_exit_code(r);
		}
		if (o.verbose)
			fputs("Command successful.\n", stderr);
		return 0;
	}
	fprintf(stderr, "blockcrypt: unknown command '%s' (see blockcrypt --help)\n", argv[1]);
	return BC_EXIT_USAGE;
}
