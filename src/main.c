/* blockcrypt: the command-line entry point; dispatches to one handler per
 * subcommand from the table below. */
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "config.h"

static const struct cli_command commands[] = {
	{ "format", "BACKING", "Create a LUKS2 (or LUKS1) volume on BACKING; asks for the new passphrase twice.",
	  OPT_KEY_FILE | OPT_BATCH | OPT_TYPE | OPT_FORMAT | OPT_PBKDF | OPT_PROGRESS, 1, 1, cmd_format },
	{ "add-key", "VOLUME", "Add a passphrase in a free key slot (unlocking with an existing one).",
	  OPT_KEY_FILE | OPT_NEW_KEY_FILE | OPT_BATCH | OPT_PBKDF | OPT_KEY_SLOT, 1, 1, cmd_add_key },
	{ "remove-key", "VOLUME", "Remove the key slot that the given passphrase opens, or --key-slot N.",
	  OPT_KEY_FILE | OPT_BATCH | OPT_KEY_SLOT, 1, 1, cmd_remove_key },
	{ "change-key", "VOLUME", "Replace a passphrase with a new one (same key slot).",
	  OPT_KEY_FILE | OPT_NEW_KEY_FILE | OPT_BATCH | OPT_PBKDF, 1, 1, cmd_change_key },
	{ "dump", "VOLUME", "Show the header: cipher, sectors, key slots (never keys).",
	  OPT_JSON, 1, 1, cmd_dump },
	{ "header-backup", "VOLUME FILE", "Save the LUKS header and key slots to FILE (keep it safe: it opens the data).",
	  0, 2, 2, cmd_header_backup },
	{ "header-restore", "VOLUME FILE", "Replace the header of VOLUME with the backup in FILE.",
	  OPT_BATCH, 2, 2, cmd_header_restore },
	{ "repair", "VOLUME", "Repair a LUKS header (e.g. restore a damaged primary LUKS2 header from its secondary copy).",
	  0, 1, 1, cmd_repair },
	{ "erase", "VOLUME", "Destroy every key slot: the data becomes unrecoverable without a header backup.",
	  OPT_BATCH, 1, 1, cmd_erase },
	{ "cat", "VOLUME", "Write the decrypted contents of VOLUME to standard output.",
	  OPT_KEY_FILE | OPT_BATCH | OPT_TYPE | OPT_PLAIN | OPT_TOKEN, 1, 1, cmd_cat },
	{ "write", "VOLUME", "Encrypt standard input onto VOLUME, from its first byte.",
	  OPT_KEY_FILE | OPT_BATCH | OPT_TYPE | OPT_PLAIN | OPT_TOKEN, 1, 1, cmd_write },
	{ "attach", "VOLUME | --all | --from-tab NAME", "Unlock VOLUME and serve the decrypted device over NBD (and as a FUSE file).",
	  OPT_KEY_FILE | OPT_BATCH | OPT_TYPE | OPT_PLAIN | OPT_READ_ONLY | OPT_ATTACH | OPT_JSON | OPT_TOKEN, 0, 1, cmd_attach },
	{ "detach", "NAME... | --all", "Flush, disconnect clients, unmount, wipe the key and stop serving.",
	  OPT_DETACH, 0, 64, cmd_detach },
	{ "list", "", "List attached volumes.", OPT_JSON, 0, 0, cmd_list },
	{ "resize", "NAME", "Grow an attached volume to its grown backing (shrink only with --size).",
	  OPT_SIZE | OPT_JSON, 1, 1, cmd_resize },
	{ "genkey", "--token TOKEN --label LABEL", "Create a non-extractable AES key in a PKCS#11 token.",
	  OPT_GENKEY | OPT_BATCH, 0, 0, cmd_genkey },
	{ "enroll", "VOLUME --pkcs11 URI", "Add a key slot unlocked by a PKCS#11 token key (LUKS2).",
	  OPT_ENROLL | OPT_KEY_FILE | OPT_BATCH, 1, 1, cmd_enroll },
	{ "unenroll", "VOLUME", "Remove blockcrypt PKCS#11 tokens and their key slots.",
	  OPT_ENROLL | OPT_BATCH, 1, 1, cmd_unenroll },
	{ "status", "NAME", "Show one attached volume.", OPT_JSON, 1, 1, cmd_status },
};
#define N_COMMANDS (sizeof(commands) / sizeof(commands[0]))

static void usage(FILE *f)
{
	fprintf(f, "Usage: blockcrypt COMMAND [OPTIONS] ARGS\n\n"
		"Encrypted block devices in userspace (LUKS2, LUKS1, plain; dm-crypt compatible).\n\n"
		"Commands:\n");
	for (size_t i = 0; i < N_COMMANDS; i++)
		fprintf(f, "  %-15s %s\n", commands[i].name, commands[i].summary);
	fprintf(f, "\nRun 'blockcrypt COMMAND --help' for a command's options; see blockcrypt(8).\n");
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
	if (!strcmp(argv[1], "--version")) {
		printf("blockcrypt %s\n", BC_VERSION);
		return 0;
	}
	for (size_t i = 0; i < N_COMMANDS; i++) {
		if (strcmp(argv[1], commands[i].name))
			continue;
		r = cli_parse(&commands[i], argc - 1, argv + 1, &o);
		if (r == 0)
			r = commands[i].run(&o);
		if (r < 0) {
			fprintf(stderr, "blockcrypt: %s\n", bc_last_error()[0] ? bc_last_error() : "failed");
			return bc_exit_code(r);
		}
		return 0;
	}
	fprintf(stderr, "blockcrypt: unknown command '%s' (see blockcrypt --help)\n", argv[1]);
	return BC_EXIT_USAGE;
}
