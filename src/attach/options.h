/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Every option of blockcrypt, declared once: the command line's --NAME
 * and the tab file's KEY=VALUE (blockcrypt(8), blockcrypttab(5)).
 *
 * From this list come the getopt table, the option ids, which commands
 * accept which option, each command's --help, and the tab file's keys;
 * the values land in struct attach_config (config.h) or, for options of
 * the command line alone, in struct cli_opts (src/cli/cli.h).  HACKING.md
 * ("Adding a CLI or tab option") says how to add one.
 *
 * It lives in attach/ because the tab parser (tab.c) reads it; the CLI
 * reads it from above.  One row:
 *
 *   X(ID, NAME, ARG, KIND, MIN, MAX, FIELD, COMMANDS, TAB_KEY, HELP)
 *
 *   ID        BC_OPT_<ID>: the option in code (getopt value, switches)
 *   NAME      "long-name" for --long-name, or NULL (tab file only)
 *   ARG       the argument's name in --help, NULL for a flag
 *   KIND      FLAG (bool = true), STRING, U32, U64, SIZE (u64 with an
 *             optional K/M/G/T suffix), or SPECIAL (parsed by hand)
 *   MIN, MAX  numbers: the range a tab file may give (the command line
 *             checks its own ranges, with its own messages)
 *   FIELD     CFG(member) of struct attach_config, CLI(member) of struct
 *             cli_opts, or NONE (SPECIAL: the code stores it)
 *   COMMANDS  CMD(...) bits of the commands that accept it; 0: none
 *   TAB_KEY   "key" in the tab file, or NULL (needs a CFG field)
 *   HELP      the line in --help of each of COMMANDS; NULL: not shown
 *
 * One NAME may have several rows with disjoint COMMANDS, each with the
 * help text of its commands (--size means one thing to format, another
 * to resize).
 */
#ifndef BC_ATTACH_OPTIONS_H
#define BC_ATTACH_OPTIONS_H

#include <stddef.h>
#include <stdint.h>

#include "config.h"

/* The subcommands, as bits for the COMMANDS column. */
enum cmd_id {
	BC_CMD_FORMAT, BC_CMD_ADD_KEY, BC_CMD_REMOVE_KEY, BC_CMD_CHANGE_KEY, BC_CMD_DUMP,
	BC_CMD_HEADER_BACKUP, BC_CMD_HEADER_RESTORE, BC_CMD_REPAIR, BC_CMD_ERASE, BC_CMD_CAT,
	BC_CMD_WRITE, BC_CMD_ATTACH, BC_CMD_DETACH, BC_CMD_LIST, BC_CMD_RESIZE, BC_CMD_GENKEY,
	BC_CMD_ENROLL, BC_CMD_UNENROLL, BC_CMD_STATUS,
	BC_CMD_COUNT
};
#define CMD(c) (1u << BC_CMD_##c)
#define CMDS_ALL ((1u << BC_CMD_COUNT) - 1)
/* Commands that open a volume's data with a key (and so take plain
 * volumes' layout options and tokens). */
#define CMDS_OPEN (CMD(CAT) | CMD(WRITE) | CMD(ATTACH))
#define CMDS_KEY_FILE (CMD(FORMAT) | CMD(ADD_KEY) | CMD(REMOVE_KEY) | CMD(CHANGE_KEY) | CMDS_OPEN | CMD(ENROLL))
#define CMDS_TOKEN (CMDS_OPEN | CMD(GENKEY) | CMD(ENROLL) | CMD(UNENROLL))
#define CMDS_PBKDF (CMD(FORMAT) | CMD(ADD_KEY) | CMD(CHANGE_KEY))
/* Commands that may run long over data: progress on a terminal. */
#define CMDS_PROGRESS (CMD(FORMAT) | CMD(WRITE) | CMD(CAT))
#define CMDS_JSON (CMD(DUMP) | CMD(ATTACH) | CMD(LIST) | CMD(RESIZE) | CMD(STATUS))
#define CMDS_BATCH (CMD(FORMAT) | CMD(ADD_KEY) | CMD(REMOVE_KEY) | CMD(CHANGE_KEY) | CMD(HEADER_RESTORE) | \
		    CMD(ERASE) | CMDS_OPEN | CMD(GENKEY) | CMD(ENROLL) | CMD(UNENROLL))

#define BC_OPTIONS(X) \
	X(KEY_FILE, "key-file", "FILE", STRING, 0, 0, CFG(key_file), CMDS_KEY_FILE, NULL, \
	  "read the key (passphrase) from FILE, byte for byte; - = stdin") \
	X(NEW_KEY_FILE, "new-key-file", "FILE", STRING, 0, 0, CLI(new_key_file), CMD(ADD_KEY) | CMD(CHANGE_KEY), NULL, \
	  "read the new key from FILE") \
	X(NEW_KEYFILE, "new-keyfile", "FILE", STRING, 0, 0, CLI(new_key_file), CMD(ADD_KEY) | CMD(CHANGE_KEY), NULL, \
	  NULL /* cryptsetup's name for --new-key-file */) \
	X(KEYFILE_OFFSET, "keyfile-offset", "BYTES", U64, 0, UINT64_MAX, CFG(keyfile_offset), CMDS_KEY_FILE, \
	  "keyfile-offset", "skip BYTES at the start of the key file") \
	X(KEYFILE_SIZE, "keyfile-size", "BYTES", U32, 0, 8u << 20, CFG(keyfile_size), CMDS_KEY_FILE, "keyfile-size", \
	  "read at most BYTES of the key file (default: all of it)") \
	X(TRIES, "tries", "N", U32, 0, 1000, CFG(tries), CMDS_OPEN, "tries", \
	  "passphrase attempts when prompting (default 3, 0 = no limit)") \
	X(TIMEOUT, "timeout", "SECONDS", U32, 0, 86400, CFG(timeout), CMDS_OPEN, "timeout", \
	  "give up a passphrase prompt after SECONDS (default 0: wait)") \
	X(HEADER, "header", "FILE", STRING, 0, 0, CFG(header), \
	  CMD(FORMAT) | CMDS_OPEN | CMD(ADD_KEY) | CMD(REMOVE_KEY) | CMD(CHANGE_KEY) | CMD(DUMP) | \
	  CMD(HEADER_BACKUP) | CMD(HEADER_RESTORE) | CMD(REPAIR) | CMD(ERASE) | CMD(ENROLL) | CMD(UNENROLL), "header", \
	  "detached LUKS header FILE: the backing holds the data only") \
	X(TYPE, "type", "TYPE", SPECIAL, 0, 0, NONE, CMD(FORMAT) | CMDS_OPEN, NULL, \
	  "luks2 (default for format), luks1, plain (headerless), or lofi (Solaris lofi crypto)") \
	X(CIPHER, "cipher", "SPEC", STRING, 0, 0, CFG(cipher), CMD(FORMAT) | CMDS_OPEN, "cipher", \
	  "aes-xts-plain64 (default), aes-cbc-essiv:sha256, aes-cbc-plain64, ...") \
	X(KEY_SIZE, "key-size", "BITS", U32, 0, 4096, CFG(key_bits), CMD(FORMAT) | CMDS_OPEN, "key-size", \
	  "volume key size (XTS: 512 default or 256; CBC: 256 default, 192, 128)") \
	X(SECTOR_SIZE, "sector-size", "BYTES", U32, 0, 4096, CFG(sector_size), CMD(FORMAT) | CMDS_OPEN, "sector-size", \
	  "encryption sector: 512..4096 (LUKS2 default 4096 when the size allows)") \
	X(LABEL, "label", "LABEL", STRING, 0, 0, CLI(label), CMD(FORMAT), NULL, \
	  "LUKS2 label") \
	X(TOKEN_LABEL, "label", "LABEL", STRING, 0, 0, CLI(label), CMD(GENKEY), NULL, \
	  "label of the new token key") \
	X(TOKEN, "token", "TOKEN", STRING, 0, 0, CLI(token), CMD(GENKEY), NULL, \
	  "PKCS#11 token: pkcs11:token=NAME (RFC 7512) or lofi's token:manufacturer:serial:") \
	X(KEY_LEN, "key-len", "BITS", U32, 0, 0, CLI(key_len), CMD(GENKEY), NULL, \
	  "AES key length: 256 (default), 192, 128") \
	X(PKCS11, "pkcs11", "URI", STRING, 0, 0, CFG(pkcs11), CMD(ENROLL), NULL, \
	  "token key to wrap the slot secret") \
	X(PKCS11_PLAIN, "pkcs11", "URI", STRING, 0, 0, CFG(pkcs11), CMDS_OPEN, NULL, \
	  "plain volumes: derive the key in the token") \
	X(PKCS11_UNENROLL, "pkcs11", "URI", STRING, 0, 0, CFG(pkcs11), CMD(UNENROLL), NULL, \
	  NULL /* accepted, unused: unenroll always took it */) \
	X(TOKEN_ID, "token-id", "N", SPECIAL, 0, 0, NONE, CMD(UNENROLL), NULL, \
	  "only this LUKS2 token") \
	X(TOKEN_ID_ENROLL, "token-id", "N", SPECIAL, 0, 0, NONE, CMD(ENROLL), NULL, \
	  NULL /* accepted, unused: enroll always took it */) \
	X(MODULE, "module", "PATH", STRING, 0, 0, CFG(module), CMDS_TOKEN, "module", \
	  "PKCS#11 module (default: every module registered with p11-kit)") \
	X(PIN_FILE, "pin-file", "FILE", STRING, 0, 0, CFG(pin_file), CMDS_TOKEN, "pin-file", \
	  "read the token PIN from FILE (one trailing newline ignored)") \
	X(TOKEN_ONLY, "token-only", NULL, FLAG, 0, 0, CFG(token_only), CMDS_OPEN, NULL, \
	  "unlock only with an enrolled token, never ask for a passphrase") \
	X(SIZE, "size", "BYTES", SIZE, 0, 0, CFG(size), CMD(FORMAT), NULL, \
	  "create or extend the backing file to BYTES (K, M, G, T)") \
	X(SIZE_PLAIN, "size", "SECTORS", SPECIAL, 0, UINT64_MAX, CFG(size), CMDS_OPEN, "data-size", \
	  "plain: data size in 512-byte sectors (as cryptsetup --size), or bytes with K, M, G, T") \
	X(SIZE_RESIZE, "size", "BYTES", SIZE, 0, 0, CFG(size), CMD(RESIZE), NULL, \
	  "new size, may shrink (K, M, G, T); on RBD, grows the image when needed") \
	X(NO_WIPE, "no-wipe", NULL, FLAG, 0, 0, CLI(no_wipe), CMD(FORMAT), NULL, \
	  "do not overwrite the data area with encrypted zeros") \
	X(PBKDF, "pbkdf", "KDF", STRING, 0, 0, CLI(pbkdf.type), CMDS_PBKDF, NULL, \
	  "argon2id (LUKS2 default), argon2i, pbkdf2 (LUKS1)") \
	X(ITER_TIME, "iter-time", "MS", U32, 0, 0, CLI(pbkdf.iter_time_ms), CMDS_PBKDF, NULL, \
	  "time to spend in key derivation when setting a key") \
	X(PBKDF_MEMORY, "pbkdf-memory", "KIB", U32, 0, 0, CLI(pbkdf.max_memory_kb), CMDS_PBKDF, NULL, \
	  "argon2 memory cost limit") \
	X(PBKDF_PARALLEL, "pbkdf-parallel", "N", U32, 0, 0, CLI(pbkdf.parallel), CMDS_PBKDF, NULL, \
	  "argon2 threads") \
	X(PBKDF_ITER, "pbkdf-force-iterations", "N", U32, 0, 0, CLI(pbkdf.iterations), CMDS_PBKDF, NULL, \
	  "fixed KDF cost instead of a benchmark (pbkdf2: iterations; argon2: passes)") \
	X(KEY_SLOT, "key-slot", "N", SPECIAL, 0, 0, NONE, CMD(ADD_KEY) | CMD(REMOVE_KEY), NULL, \
	  "key slot number") \
	X(KEY_SLOT_OPEN, "key-slot", "N", SPECIAL, 0, 31, NONE, CMDS_OPEN, "key-slot", \
	  "LUKS: try only key slot N with the passphrase") \
	X(OFFSET, "offset", "SECTORS", U64, 0, UINT64_MAX / 512, CFG(offset), CMDS_OPEN, "offset", \
	  "plain: data start in 512-byte sectors (as cryptsetup --offset)") \
	X(SKIP, "skip", "SECTORS", U64, 0, UINT64_MAX, CFG(skip), CMDS_OPEN, "skip", \
	  "plain: IV offset in 512-byte sectors (as cryptsetup --skip)") \
	X(HASH, "hash", "HASH", STRING, 0, 0, CFG(hash), CMDS_OPEN, "hash", \
	  "plain: hash a prompted passphrase into the key (default sha256); key files are used raw") \
	X(IV_LARGE, "iv-large-sectors", NULL, FLAG, 0, 0, CLI(iv_large_sectors), CMDS_OPEN, NULL, \
	  "plain: count IVs in sector-size units") \
	X(READ_ONLY, "read-only", NULL, FLAG, 0, 0, CFG(read_only), CMD(ATTACH), "read-only", \
	  "open read-only") \
	X(NAME, "name", "NAME", STRING, 0, 0, CFG(name), CMD(ATTACH), NULL, \
	  "name of the attachment (default: the backing file name without extension)") \
	X(SOCKET, "socket", "PATH", STRING, 0, 0, CFG(socket), CMD(ATTACH), "socket", \
	  "NBD Unix socket (default RUNDIR/NAME.sock, mode 0600)") \
	X(LISTEN, "listen", "ADDR:PORT", STRING, 0, 0, CFG(listen), CMD(ATTACH), "listen", \
	  "serve NBD over TCP instead (e.g. 127.0.0.1:10809, [::1]:10809)") \
	X(TLS_CERTS, "tls-certificates", "DIR", STRING, 0, 0, CFG(tls_certificates), CMD(ATTACH), "tls-certificates", \
	  "require NBD TLS with the X.509 server-cert.pem, server-key.pem (and ca-cert.pem) in DIR") \
	X(TLS_PSK, "tls-psk", "FILE", STRING, 0, 0, CFG(tls_psk), CMD(ATTACH), "tls-psk", \
	  "require NBD TLS with the pre-shared keys in FILE (psktool format: user:hexkey)") \
	X(TLS_VERIFY, "tls-verify-peer", NULL, FLAG, 0, 0, CFG(tls_verify_peer), CMD(ATTACH), "tls-verify-peer", \
	  "with --tls-certificates: clients need a certificate signed by DIR/ca-cert.pem") \
	X(INSECURE, "insecure", NULL, FLAG, 0, 0, CFG(insecure), CMD(ATTACH), "insecure", \
	  "allow --listen on a non-loopback address without TLS") \
	X(FUSE, "fuse", "DIR", STRING, 0, 0, CFG(fuse_dir), CMD(ATTACH), "fuse", \
	  "also mount DIR with one file, DIR/NAME, that is the decrypted device") \
	X(DISCARDS, "allow-discards", NULL, FLAG, 0, 0, CFG(allow_discards), CMD(ATTACH), "discard", \
	  "pass TRIM/punch-hole to the backing (reveals which blocks are unused)") \
	X(FOREGROUND, "foreground", NULL, FLAG, 0, 0, CLI(foreground), CMD(ATTACH), NULL, \
	  "stay in the foreground, log to stderr (for systemd and debugging)") \
	X(THREADS, "threads", "N", U32, 1, ATTACH_THREADS_MAX, CFG(threads), CMD(ATTACH), "threads", \
	  "threads serving each NBD connection (default 4, at most 64)") \
	X(MAX_CONNECTIONS, "max-connections", "N", U32, 0, 1000000, CFG(max_connections), CMD(ATTACH), "max-connections", \
	  "NBD connections at once (default 128); more are closed at once") \
	X(HANDSHAKE_TIMEOUT, "handshake-timeout", "SECONDS", U32, 0, 86400, CFG(handshake_timeout), CMD(ATTACH), \
	  "handshake-timeout", \
	  "close NBD connections that have not finished the handshake (TLS included) by then (default 10)") \
	X(MAX_MEMORY, "max-memory", "BYTES", SIZE, 0, UINT64_MAX, CFG(max_memory), CMD(ATTACH), "max-memory", \
	  "memory for NBD request and reply buffers, all clients together (default 256M, at least 32M)") \
	X(ALL_TAB, "all", NULL, FLAG, 0, 0, CLI(all), CMD(ATTACH), NULL, \
	  "every tab file entry (but noauto)") \
	X(ALL_ATTACHED, "all", NULL, FLAG, 0, 0, CLI(all), CMD(DETACH), NULL, \
	  "every attached volume") \
	X(TAB, "tab", "FILE", STRING, 0, 0, CLI(tab), CMD(ATTACH), NULL, \
	  "tab file (default /etc/blockcrypttab)") \
	X(FROM_TAB, "from-tab", "NAME", STRING, 0, 0, CLI(from_tab), CMD(ATTACH), NULL, \
	  "attach the tab file entry NAME (as blockcrypt@NAME.service does)") \
	X(BREAK_LOCK, "break-lock", NULL, FLAG, 0, 0, CLI(break_lock), CMD(ATTACH) | CMD(WRITE), NULL, \
	  "RBD: take the image's lock from another client that holds it (a dead one: it is blocklisted)") \
	X(FORCE, "force", NULL, FLAG, 0, 0, CLI(force), CMD(DETACH), NULL, \
	  "detach even if the FUSE file is in use (its users get I/O errors)") \
	X(FORCE_CAT, "force", NULL, FLAG, 0, 0, CLI(force), CMD(CAT), NULL, \
	  "write the decrypted bytes to standard output even when it is a terminal") \
	X(JSON, "json", NULL, FLAG, 0, 0, CLI(json), CMDS_JSON, NULL, \
	  "machine-readable output") \
	X(BATCH, "batch", NULL, FLAG, 0, 0, CLI(batch), CMDS_BATCH, NULL, \
	  "never ask: no confirmations, no prompts (keys must come from files)") \
	X(BATCH_MODE, "batch-mode", NULL, FLAG, 0, 0, CLI(batch), CMDS_BATCH, NULL, \
	  NULL /* cryptsetup's name for --batch */) \
	X(PROGRESS, "progress", NULL, FLAG, 0, 0, CLI(progress), CMDS_PROGRESS, NULL, \
	  "show progress even when stderr is not a terminal") \
	X(NO_PROGRESS, "no-progress", NULL, FLAG, 0, 0, CLI(no_progress), CMDS_PROGRESS, NULL, \
	  "never show progress") \
	X(PROGRESS_JSON, "progress-json", NULL, FLAG, 0, 0, CLI(progress_json), CMDS_PROGRESS, NULL, \
	  "progress as JSON lines on stderr (as cryptsetup --progress-json)") \
	X(HELP, "help", NULL, SPECIAL, 0, 0, NONE, CMDS_ALL, NULL, \
	  "show this help") \
	X(VERSION, "version", NULL, SPECIAL, 0, 0, NONE, CMDS_ALL, NULL, \
	  "print blockcrypt's version") \
	X(VERBOSE, "verbose", NULL, FLAG, 0, 0, CLI(verbose), CMDS_ALL, NULL, \
	  "say \"Command successful.\" at the end (as cryptsetup -v)") \
	X(PLAIN, NULL, NULL, FLAG, 0, 0, NONE, 0, "plain", \
	  "a plain (headerless) volume: the layout options apply") \
	X(READONLY, "readonly", NULL, FLAG, 0, 0, CFG(read_only), CMD(ATTACH), "readonly", \
	  NULL /* cryptsetup's spelling of --read-only */) \
	X(NOAUTO, NULL, NULL, FLAG, 0, 0, CFG(noauto), 0, "noauto", \
	  "not attached by attach --all") \
	X(NOFAIL, NULL, NULL, FLAG, 0, 0, CFG(nofail), 0, "nofail", \
	  "a failure to attach is reported but is not an error of attach --all") \
	X(KEY_BITS_TAB, NULL, NULL, U32, 0, 4096, CFG(key_bits), 0, "size", \
	  "crypttab: the key size in bits") \
	X(LUKS, NULL, NULL, SPECIAL, 0, 0, NONE, 0, "luks", \
	  "crypttab: the volume must be LUKS (1 or 2)") \
	X(LOFI, NULL, NULL, SPECIAL, 0, 0, NONE, 0, "lofi", \
	  "a Solaris lofi crypto volume (blockcrypt-lofi(7)); cipher= is needed") \
	X(PKCS11_URI, NULL, NULL, STRING, 0, 0, CFG(pkcs11), 0, "pkcs11-uri", \
	  "crypttab: the PKCS#11 token (auto: any)") \
	X(DEVICE_TIMEOUT, NULL, NULL, STRING, 0, 0, CFG(device_timeout), 0, "x-systemd.device-timeout", \
	  "how long the generated unit waits for the backing device") \
	X(AFTER_ATTACH, NULL, NULL, STRING, 0, 0, CFG(after_attach), 0, "after-attach", \
	  "shell command run once serving; takes the rest of the line")

#define BC_OPT_ENUM_(id, ...) BC_OPT_##id,
enum opt_id { BC_OPTIONS(BC_OPT_ENUM_) BC_OPT_COUNT };
#undef BC_OPT_ENUM_

enum opt_kind { BC_KIND_FLAG, BC_KIND_STRING, BC_KIND_U32, BC_KIND_U64, BC_KIND_SIZE, BC_KIND_SPECIAL };

/* One row of the list, as data. */
struct opt_decl {
	const char *name, *arg, *tab_key, *help;
	enum opt_kind kind;
	uint64_t min, max;
	size_t cfg_offset;      /* of the value in struct attach_config, or BC_OPT_NO_FIELD */
	unsigned commands;
};
#define BC_OPT_NO_FIELD ((size_t)-1)

/* Indexed by enum opt_id. */
extern const struct opt_decl opt_decls[BC_OPT_COUNT];

/* Does command CMD accept option ID? */
static inline int opt_accepted(enum opt_id id, enum cmd_id cmd)
{
	return (opt_decls[id].commands >> cmd) & 1;
}

/* Where option O's value is in C, or NULL (not a struct attach_config
 * field). */
void *opt_cfg_field(const struct opt_decl *o, struct attach_config *c);

#endif
