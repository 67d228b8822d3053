/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * What one attachment is asked to be: struct attach_config, filled by the
 * command line (src/cli) or by a tab file line (tab.c), and handed to the
 * attach daemon.  Which option sets which field is declared once, in
 * options.h.  Strings point into argv or into the tab entry: they must
 * outlive the daemon's use of them (they do: the daemon runs inside the
 * attach call, in the forked child).
 */
#ifndef BC_ATTACH_CONFIG_H
#define BC_ATTACH_CONFIG_H

#include <stdbool.h>
#include <stdint.h>

#include "blockcrypt.h"
#include "macros.h"

/* --threads and the tab's threads=: the NBD server's per-connection
 * limit (more would be silently capped there, so they are refused). */
#define ATTACH_THREADS_MAX 64
/* The default on RBD: each thread waits for its request's round trip to
 * the OSDs (a millisecond, where a local file answers in microseconds),
 * so as many requests are in flight as the clients' queue depth needs. */
#define ATTACH_RBD_THREADS 32

/* The fields, as a list, so that struct cli_opts can hold them as its own
 * (o->threads) and as one struct attach_config (o->cfg) at once. */
#define ATTACH_CONFIG_FIELDS \
	const char *name;                 /* NULL: from the backing's file name */ \
	/* the key */ \
	const char *key_file, *pkcs11, *pin_file, *module; \
	uint64_t keyfile_offset;          /* bytes of the key file skipped */ \
	uint32_t keyfile_size;            /* bytes of it read; 0 = all */ \
	bool hash_key_file;               /* plain, crypttab: hash= hashes a key file too */ \
	bool plain_fallback;              /* crypttab, no type: plain unless LUKS */ \
	bool token_only; \
	int key_slot;                     /* LUKS: try only this slot; -1 = any */ \
	uint32_t tries;                   /* passphrase prompts; 0 = default (3) */ \
	uint32_t timeout;                 /* seconds a prompt waits; 0 = forever */ \
	/* the volume (plain: its layout) */ \
	bool type_set; \
	enum bc_volume_type type; \
	const char *header;               /* detached LUKS header file */ \
	const char *cipher, *hash; \
	uint32_t key_bits, sector_size; \
	uint64_t size, offset, skip; \
	bool read_only, allow_discards; \
	/* NBD */ \
	const char *socket, *listen, *tls_certificates, *tls_psk; \
	bool tls_verify_peer, insecure; \
	uint32_t threads, max_connections, handshake_timeout; /* 0 = default */ \
	uint64_t max_memory;                                   /* 0 = default */ \
	/* FUSE */ \
	const char *fuse_dir; \
	/* the tab file's own */ \
	const char *after_attach;         /* shell command run once serving */ \
	bool noauto, nofail; \
	const char *device_timeout;       /* x-systemd.device-timeout=, for the generator */

struct attach_config {
	ATTACH_CONFIG_FIELDS
};

#endif
