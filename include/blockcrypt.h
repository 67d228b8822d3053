/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * blockcrypt — encrypted block devices in userspace.
 *
 * Public library interface.  Every function that can fail returns 0 (or a
 * non-negative count) on success and a negative errno value on failure; the
 * calling thread can then read a one-line "context: message" description with
 * bc_last_error().  Handles are opaque.
 *
 * Errno values carry a stable meaning across the library (the command-line
 * tool maps them to exit codes, see bc_exit_code()):
 *   -EPERM      no key slot / token accepted the key (wrong passphrase)
 *   -EBADMSG    the backing holds no usable volume header (not a volume, or
 *               every header copy is damaged)
 *   -ENOSPC     the backing is too small (for the header, or for the data)
 *   -EACCES     the backing cannot be opened as asked (permissions, read-only)
 *   -EROFS      a write was attempted on a read-only volume
 *   -ENOENT     the backing (or a key file) does not exist
 *   -EIO        an I/O error on the backing
 *   -EINVAL     invalid arguments (bad cipher spec, sizes, ...)
 *   -ECANCELED  the user declined a confirmation
 *   -ENOTSUP    a header or option this build cannot handle
 */
#ifndef BLOCKCRYPT_H
#define BLOCKCRYPT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "blockcrypt-version.h" /* BC_VERSION_MAJOR, _MINOR, _MICRO, _STRING */

#ifdef __cplusplus
extern "C" {
#endif

/* ---- the library ---------------------------------------------------------
 * Linked as libblockcrypt.so.0 (pkg-config --cflags --libs blockcrypt).
 * The soname changes only when a function or structure here changes in a
 * way that breaks programs built before; additions keep it. */

/* The version of the library running ("MAJOR.MINOR.MICRO"), which may be
 * newer than the headers' BC_VERSION_STRING a program was built with. */
const char *bc_version(void);

/* ---- errors ------------------------------------------------------------ */

/* Longest message bc_last_error() returns, in bytes with its NUL: a buffer
 * of this size holds any of them. */
#define BC_ERROR_MAX 512

/* Message describing the last failure in this thread ("" if none). */
const char *bc_last_error(void);
/* Record a message for this thread, as the library does for its own
 * failures, and return NEGATIVE_ERRNO: for a program that reports its own
 * checks the same way, and for the callbacks given to this library
 * (get_pin, get_passphrase), whose message then is what bc_last_error()
 * says after the call that ran them fails.  One line (newlines become
 * spaces), cut to BC_ERROR_MAX - 1 bytes; never put a secret in it. */
int bc_set_error(int negative_errno, const char *fmt, ...)
#if defined(__GNUC__)
	__attribute__((format(printf, 2, 3)))
#endif
	;
/* Forget this thread's message: bc_last_error() then returns "". */
void bc_clear_error(void);

/* Exit codes of the command-line tool (documented in blockcrypt(8)). */
enum bc_exit {
	BC_EXIT_OK = 0,
	BC_EXIT_FAILURE = 1,     /* anything not listed below */
	BC_EXIT_USAGE = 2,       /* bad command line */
	BC_EXIT_WRONG_KEY = 3,   /* no key slot accepted the key */
	BC_EXIT_NOT_VOLUME = 4,  /* no valid header: not a volume, or damaged */
	BC_EXIT_TOO_SMALL = 5,   /* backing too small or truncated */
	BC_EXIT_ACCESS = 6,      /* backing not accessible / read-only */
	BC_EXIT_IO = 7,          /* I/O error on the backing */
	BC_EXIT_NOT_FOUND = 8,   /* backing or key file does not exist */
	BC_EXIT_BUSY = 9,        /* in use */
	BC_EXIT_CANCELED = 10,   /* user declined a confirmation */
	BC_EXIT_UNSUPPORTED = 11,/* unsupported header feature or option */
	BC_EXIT_TOKEN = 12,      /* token, module or token key not found */
};

/* Events that need an operator's attention but are not a caller's error
 * (a write-back to the backing failed, so data acknowledged earlier may be
 * lost): one line each, passed to the handler set here, from whichever
 * thread saw them.  Without a handler they are dropped. */
void bc_set_log_handler(void (*handler)(const char *line));

/* Map a negative errno returned by this library to an exit code. */
int bc_exit_code(int negative_errno);
/* The inverse: a negative errno that bc_exit_code() maps to CODE. */
int bc_errno_for_exit(int code);

/* ---- secrets (passphrases, key files, volume keys) ---------------------
 * Secrets live in mlock'd, MADV_DONTDUMP memory and are wiped on free.
 * While any secret exists the process is not dumpable.                     */

struct bc_secret;

/* Read a whole key file (at most 8 MiB); "-" reads standard input. */
int bc_secret_from_file(const char *path, struct bc_secret **out);
/* The same for SIZE bytes (0: all, at most 8 MiB) after the first OFFSET
 * bytes of PATH, as cryptsetup's --keyfile-offset and --keyfile-size:
 * fewer than SIZE bytes there is an error. */
int bc_secret_from_file_range(const char *path, uint64_t offset, size_t size, struct bc_secret **out);
int bc_secret_from_bytes(const void *data, size_t len, struct bc_secret **out);
/* Read one line from the terminal without echo (prompt on the tty). */
int bc_secret_prompt(const char *prompt, struct bc_secret **out);
const uint8_t *bc_secret_data(const struct bc_secret *s);
size_t bc_secret_len(const struct bc_secret *s);
void bc_secret_free(struct bc_secret *s);
/* bc_secret_prompt() that gives up with -ETIME after TIMEOUT_S seconds
 * without a finished line; 0 waits for ever. */
int bc_secret_prompt_timeout(const char *prompt, uint32_t timeout_s, struct bc_secret **out);
/* For a secret a program receives by itself (a socket, a pipe): an empty
 * one (length 0) with room for CAPACITY bytes, filled in place through
 * bc_secret_buf() (CAPACITY bytes, and one more that stays NUL) and
 * given its length with bc_secret_set_len(), so it never passes through
 * ordinary memory. */
int bc_secret_new(size_t capacity, struct bc_secret **out);
uint8_t *bc_secret_buf(struct bc_secret *s);
size_t bc_secret_capacity(const struct bc_secret *s);
/* Set the length (at most the capacity, else -EINVAL); bytes past a
 * shorter length are wiped. */
int bc_secret_set_len(struct bc_secret *s, size_t len);
/* 1 if A and B hold the same bytes, 0 if not; the time taken depends on
 * the lengths only. */
int bc_secret_equal(const struct bc_secret *a, const struct bc_secret *b);
/* Lock every page of the process, now and later (mlockall; touched pages
 * only, so thread stacks are not pre-faulted): for a program whose heap
 * holds an open volume's key schedules or plaintext, after the key
 * derivation (whose memory cost may exceed the lock limit).  0, or a
 * negative errno (e.g. over RLIMIT_MEMLOCK) with no message set. */
int bc_memory_lock_all(void);

/* ---- volume formats ---------------------------------------------------- */

enum bc_volume_type {
	BC_TYPE_AUTO = 0, /* detect LUKS1 or LUKS2 */
	BC_TYPE_LUKS1,
	BC_TYPE_LUKS2,
	BC_TYPE_PLAIN,    /* headerless (dm-crypt plain / lofi style) */
	BC_TYPE_LOFI,     /* illumos lofi encrypted image (CFLOFI header) */
};

const char *bc_volume_type_name(enum bc_volume_type t);
int bc_volume_type_parse(const char *name, enum bc_volume_type *out);

/* Progress report for long operations; return non-zero to abort. */
typedef int (*bc_progress_fn)(uint64_t done, uint64_t total, void *user);

struct bc_pbkdf_params {
	const char *type;        /* "argon2id" (default), "argon2i", "pbkdf2" */
	uint32_t iter_time_ms;   /* 0 = libcryptsetup default */
	uint32_t max_memory_kb;  /* argon2 only; 0 = default */
	uint32_t parallel;       /* argon2 only; 0 = default */
	uint32_t iterations;     /* fixed cost, no benchmark; 0 = benchmark */
	const char *hash;        /* pbkdf2 hash, 0 = sha256 */
};

/* The cipher and key sizes used when none is given (as cryptsetup's). */
#define BC_DEFAULT_CIPHER "aes-xts-plain64"
#define BC_DEFAULT_XTS_KEY_BITS 512u
#define BC_DEFAULT_CBC_KEY_BITS 256u

/* The volume key size in bits for CIPHER (NULL = the default) when
 * KEY_BITS is 0, or KEY_BITS checked against it; negative errno if the
 * cipher or the size is not supported. */
int bc_cipher_key_bits(const char *cipher, uint32_t key_bits);

/* Plain volumes take cryptsetup's plain-mode defaults (Debian 12's
 * cryptsetup 2.6: aes-cbc-essiv:sha256, a 256-bit key whatever the
 * cipher, passphrases hashed with ripemd160), so a headerless volume made
 * by `cryptsetup open --type plain` opens here with the same options. */
#define BC_DEFAULT_PLAIN_CIPHER "aes-cbc-essiv:sha256"
#define BC_DEFAULT_PLAIN_KEY_BITS 256u
#define BC_DEFAULT_PLAIN_HASH "ripemd160"

/* As bc_cipher_key_bits() with the plain defaults: CIPHER NULL is
 * BC_DEFAULT_PLAIN_CIPHER, KEY_BITS 0 is BC_DEFAULT_PLAIN_KEY_BITS unless
 * the cipher's name fixes the size (lofi's aes-256-cbc). */
int bc_plain_key_bits(const char *cipher, uint32_t key_bits);

struct bc_format_params {
	enum bc_volume_type type;  /* LUKS1 or LUKS2 (AUTO = LUKS2) */
	const char *cipher;        /* e.g. "aes-xts-plain64" (default) */
	uint32_t key_bits;         /* 0 = default for the cipher */
	uint32_t sector_size;      /* 0 = 4096 for LUKS2 when possible, else 512 */
	const char *label;         /* LUKS2 only */
	struct bc_pbkdf_params pbkdf;
	uint64_t create_size;      /* create/extend a regular file to this size */
	/* Detached header: the header goes to this file (created when
	 * missing, as cryptsetup luksFormat --header does) and the data starts
	 * at byte 0 of the backing.  NULL: the header is on the backing. */
	const char *header;
	bool wipe;                 /* write encrypted zeros over the data area */
	bc_progress_fn progress;
	void *progress_user;
};

/* Create a new LUKS volume on BACKING with PASSPHRASE in key slot 0. */
int bc_format(const char *backing, const struct bc_format_params *p,
	      const struct bc_secret *passphrase);

/* ---- opening volumes and the data API ---------------------------------- */

/* How to unlock when tokens may be involved (LUKS2): enrolled PKCS#11
 * tokens (ours, "blockcrypt-pkcs11", and systemd-cryptenroll's
 * "systemd-pkcs11") are tried first, asking get_pin for a PIN; then the
 * passphrase (the KEY argument, or get_passphrase) unless token_only. */
struct bc_unlock {
	bool use_tokens;
	bool token_only;
	const char *pkcs11_module;     /* NULL: every module p11-kit knows */
	int (*get_pin)(void *user, const char *token_label, struct bc_secret **pin);
	int (*get_passphrase)(void *user, struct bc_secret **pass);
	void *user;
};

struct bc_open_params {
	enum bc_volume_type type;  /* AUTO for LUKS */
	bool read_only;
	const struct bc_unlock *unlock; /* NULL: passphrase (KEY) only */
	/* LUKS only: */
	const char *header;        /* detached header file; NULL: on the backing */
	bool key_slot_set;         /* try the passphrase on KEY_SLOT only */
	int key_slot;
	/* PLAIN only (units and defaults as in cryptsetup's plain mode): */
	const char *cipher;        /* default BC_DEFAULT_PLAIN_CIPHER */
	uint32_t key_bits;         /* default BC_DEFAULT_PLAIN_KEY_BITS */
	uint32_t sector_size;      /* default 512 */
	bool iv_large_sectors;     /* IV counts sector_size units, not 512 */
	uint64_t offset;           /* data start, in 512-byte sectors */
	uint64_t skip;             /* IV offset, in 512-byte sectors */
	uint64_t size;             /* data size in 512-byte sectors; 0 = to end */
	/* How the plain key is derived from the secret: NULL = the secret is
	 * the raw key (a key file, as cryptsetup --key-file); else a hash name
	 * applied to a passphrase as cryptsetup plain --hash does.  LOFI: any
	 * non-NULL value says the secret is a passphrase (lofiadm's PBKDF2). */
	const char *hash;
};

struct bc_volume;

struct bc_volume_info {
	enum bc_volume_type type;
	char cipher[64];            /* e.g. "aes-xts-plain64" */
	uint32_t key_bits;
	uint32_t sector_size;
	bool iv_large_sectors;
	uint64_t data_offset;       /* bytes from the start of the backing */
	uint64_t iv_offset;         /* in 512-byte sectors */
	uint64_t size;              /* decrypted size in bytes */
	bool fixed_size;            /* the header fixes the size (LUKS2 segment) */
	bool read_only;
	char uuid[40];              /* "" for plain */
	char label[48];
	int keyslot;                /* key slot that unlocked it, -1 for plain */
};

int bc_volume_open(const char *backing, const struct bc_open_params *p,
		   const struct bc_secret *key, struct bc_volume **out);
void bc_volume_close(struct bc_volume *v);
/* Refuse all further I/O (-ESHUTDOWN), wait up to TIMEOUT_S for requests
 * in flight, then wipe the keys, without freeing V: for a process that
 * must exit while other threads may still hold V (a forced detach of a
 * FUSE file in use).  -EBUSY if requests were still running. */
int bc_volume_revoke(struct bc_volume *v, unsigned timeout_s);
void bc_volume_get_info(const struct bc_volume *v, struct bc_volume_info *out);
uint64_t bc_volume_size(const struct bc_volume *v);
/* Follow a grown (or, with ALLOW_SHRINK, shrunk) backing while in use:
 * NEW_SIZE 0 = everything the backing now holds.  Safe during I/O. */
int bc_volume_resize(struct bc_volume *v, uint64_t new_size, bool allow_shrink);

/* Byte-granular I/O of the decrypted device.  The whole range is
 * transferred or an error is returned.  Safe to call from many threads at
 * once; overlapping writes are serialized per sector range so that a
 * partial-sector write never loses a concurrent write to the same sector. */
int bc_volume_pread(struct bc_volume *v, void *buf, size_t len, uint64_t offset);
int bc_volume_pwrite(struct bc_volume *v, const void *buf, size_t len, uint64_t offset);
/* Like bc_volume_pwrite, but BUF is scratch: whole sectors are encrypted
 * in it, in place, and written with one call (its contents are undefined
 * afterwards).  Saves a copy on the server's hot path. */
int bc_volume_pwrite_inplace(struct bc_volume *v, void *buf, size_t len, uint64_t offset);
int bc_volume_write_zeroes(struct bc_volume *v, uint64_t len, uint64_t offset);
int bc_volume_flush(struct bc_volume *v);
/* Pass a discard to the backing for the whole sectors inside the range
 * (file: punch a hole; block device: BLKDISCARD).  A sector whose
 * ciphertext is all zero bytes (a hole in a file, a never-written or
 * zeroing-discarded area) reads as zeros, where dm-crypt reads
 * pseudo-random data; other discarded sectors read as whatever the
 * backing then holds, decrypted. */
int bc_volume_discard(struct bc_volume *v, uint64_t len, uint64_t offset);
/* Allocation of the decrypted device: the run at OFFSET (within the size;
 * at most MAX > 0 bytes) that is all hole (*HOLE: whole encryption
 * sectors that are holes in a file backing, so they read as zeros) or all
 * data (anything else, and every other kind of backing); its length in
 * *LEN (never 0). */
int bc_volume_extent(struct bc_volume *v, uint64_t offset, uint64_t max, uint64_t *len, bool *hole);

/* ---- backing stores: kinds, identity, locks ----------------------------
 * A backing is a regular file, a block device, or a Ceph RBD image named
 * "rbd:POOL/IMAGE[@SNAPSHOT][:OPTION=VALUE...]" (blockcrypt-rbd(7)). */

/* True when BACKING names an RBD image (by its form; nothing is opened). */
bool bc_backing_is_rbd(const char *backing);
/* 0 when BACKING is a regular file, a block device or a reachable RBD
 * image; -ENOENT when it does not exist, -EINVAL (with a message) for
 * anything else, so a FIFO or a directory is refused before it is
 * opened. */
int bc_backing_check_type(const char *backing);
/* True when A and B are the same file (inode) however named; false when
 * either cannot be stat()ed.  A detached header that is the backing
 * itself is no detached header, and must not be locked twice. */
bool bc_backing_same(const char *a, const char *b);

/* What a program does to a backing, as lock bits for bc_backing_lock():
 *   BC_LOCK_DATA_READ   reads the data area (cat, read-only attach): shared
 *   BC_LOCK_DATA_WRITE  writes the data area or destroys the header (write,
 *                       read-write attach, format, erase, header-restore,
 *                       repair, remove-key): exclusive against readers and
 *                       writers of the data
 *   BC_LOCK_HEADER      rewrites the header (every key operation):
 *                       exclusive against other header writers only, so
 *                       keys can change while the volume is attached, as
 *                       with cryptsetup and dm-crypt
 * Every program that honours them (blockcrypt itself, its daemons) keeps
 * the one-writer rule of blockcrypt(8) with every other. */
enum {
	BC_LOCK_DATA_READ = 1u << 0,
	BC_LOCK_DATA_WRITE = 1u << 1,
	BC_LOCK_HEADER = 1u << 2,
};

struct bc_backing_lock;

/* Take the locks in WHAT on BACKING without waiting.  -EBUSY (message
 * naming the holder: "PATH is attached as 'NAME', pid N" or "PATH is in
 * use by COMM, pid N") when another open file holds a conflicting one;
 * -EACCES/-EROFS when a writer's lock cannot be had because the backing
 * cannot be opened for writing; -EINVAL for anything but a regular file,
 * a block device or an RBD image (whose exclusive lock is taken).  The
 * locks are by identity (OFD locks on the inode, O_EXCL on a block
 * device), not by path; they belong to the open file, not the process:
 * they follow it across fork() and end with its last descriptor, at the
 * latest when the process dies.  RUNTIME_DIR (may be NULL) is searched for
 * the state file of a holding daemon, to name it. */
int bc_backing_lock(const char *backing, unsigned what, const char *runtime_dir,
		    struct bc_backing_lock **out);
void bc_backing_unlock(struct bc_backing_lock *l);   /* NULL: nothing */

/* ---- Ceph RBD images ---------------------------------------------------- */

/* 0 when the image exists and can be reached; *READ_ONLY (may be NULL)
 * says it is a snapshot. */
int bc_rbd_check(const char *backing, bool *read_only);
/* Create the image, SIZE bytes (-EEXIST when it exists). */
int bc_rbd_create(const char *backing, uint64_t size);
/* Remove the image (and forget a header copy staged for it); it must have
 * no other client, this process's open handles included. */
int bc_rbd_remove(const char *backing);
/* ON: an image's exclusive lock held by another client is broken (that
 * client is blocklisted) instead of refused (attach --break-lock). */
void bc_rbd_set_break_lock(bool on);
/* Around fork(): librados threads do not survive in a child, so every
 * Ceph client is shut down before it, and the child connects anew (and
 * takes back its image locks); the parent may only close what it had. */
void bc_rbd_before_fork(void);
int bc_rbd_after_fork_child(void);
/* Forget every header copy staged to open or change an RBD volume (and
 * close its Ceph connection): for a program that keeps only the data
 * path of an open volume, e.g. a server.  Also run at exit. */
void bc_drop_staged_headers(void);

/* ---- key slots (LUKS) -------------------------------------------------- */

struct bc_luks;   /* a LUKS header handle without an unlocked data path */

int bc_luks_load(const char *backing, bool read_only, struct bc_luks **out);
/* The same with a detached header: the header (and so every key slot) is
 * in the file HEADER, BACKING holds the data only.  HEADER NULL: as
 * bc_luks_load. */
int bc_luks_load_detached(const char *backing, const char *header, bool read_only,
			  struct bc_luks **out);
void bc_luks_free(struct bc_luks *l);
/* Returns the slot number that accepted the passphrase. */
int bc_luks_check_key(struct bc_luks *l, const struct bc_secret *pass);
int bc_luks_add_key(struct bc_luks *l, const struct bc_secret *existing,
		    const struct bc_secret *new_pass, int slot,
		    const struct bc_pbkdf_params *pbkdf);
int bc_luks_change_key(struct bc_luks *l, const struct bc_secret *old_pass,
		       const struct bc_secret *new_pass,
		       const struct bc_pbkdf_params *pbkdf);
int bc_luks_remove_key(struct bc_luks *l, const struct bc_secret *pass);
int bc_luks_kill_slot(struct bc_luks *l, int slot);
int bc_luks_active_slots(struct bc_luks *l);       /* count */
int bc_luks_erase(struct bc_luks *l);              /* destroy every key slot */
/* Human dump, as cryptsetup luksDump prints it, to stdout. */
int bc_luks_dump_text(struct bc_luks *l);
/* JSON dump (newly allocated string, caller frees). */
int bc_luks_dump_json(struct bc_luks *l, char **json_out);
int bc_luks_header_backup(struct bc_luks *l, const char *file);

/* Enrol a PKCS#11 token: a random secret, wrapped (AES-GCM) by the AES key
 * the URI names inside the token, goes in a LUKS2 token of type
 * "blockcrypt-pkcs11" bound to a new key slot opened by that secret.
 * Returns the token id. */
int bc_luks_enroll_pkcs11(struct bc_luks *l, const struct bc_secret *existing, const char *uri,
			  const char *module, const struct bc_secret *pin);
/* Remove blockcrypt-pkcs11 tokens (TOKEN_ID, or all when < 0) and their
 * key slots; returns how many were removed. */
int bc_luks_unenroll_pkcs11(struct bc_luks *l, int token_id);
/* Create a non-extractable AES key LABEL in the token URI names. */
int bc_pkcs11_genkey(const char *uri, const char *module, const struct bc_secret *pin,
		     const char *label, unsigned bits);
/* Plain volumes keyed by a token: derive KEY_BYTES of volume key inside
 * the token (see docs: AES-ECB of fixed counter blocks under the token
 * key), never extracting the token key. */
int bc_pkcs11_derive_plain_key(const char *uri, const char *module, const struct bc_secret *pin,
			       size_t key_bytes, struct bc_secret **key_out);

/* A header change that fails leaves the header as it was: before it,
 * bc_header_guard_begin() keeps a copy of HEADER's header area (up to the
 * data offset; all of a detached header file) and, on a regular file,
 * allocates that area, so the change cannot run out of space half-way
 * (-ENOSPC before anything is written).  *OUT is NULL when HEADER holds
 * no LUKS header (the change itself will then refuse).  After it,
 * bc_header_guard_end() with FAILED writes back every 4 KiB block that
 * differs from the copy, under libcryptsetup's lock, and syncs; it frees
 * G (NULL: nothing) and returns how many blocks it restored, or a
 * negative errno (message set) when it could not. */
struct bc_header_guard;
int bc_header_guard_begin(const char *header, struct bc_header_guard **out);
int bc_header_guard_end(struct bc_header_guard *g, bool failed);

/* HEADER: the detached header file to restore or repair, NULL when the
 * header is on BACKING. */
int bc_header_restore(const char *backing, const char *header, const char *file);
int bc_header_repair(const char *backing, const char *header);

/* ---- NBD server ------------------------------------------------------
 * Serves one volume as one export over the NBD protocol (fixed newstyle;
 * simple or structured replies, the base:allocation metadata context).
 * Each connection is served by a few threads that take
 * turns reading requests and run them in parallel.  The volume must
 * outlive the server. */

struct bc_nbd_params {
	const char *export_name;   /* also reachable as the default "" export */
	const char *description;   /* optional, for NBD_INFO_DESCRIPTION */
	bool read_only;
	bool allow_discards;       /* advertise TRIM and pass it to the backing */
	unsigned threads;          /* threads per connection; 0 = default (4) */
	/* TLS (NBD STARTTLS), then required of every client: X.509 from a
	 * directory holding server-cert.pem, server-key.pem and (to verify
	 * client certificates) ca-cert.pem, or pre-shared keys from a
	 * psktool(1) file.  At most one of the two. */
	const char *tls_certificates;
	const char *tls_psk_file;
	bool tls_verify_peer;      /* X.509: require a client certificate from the CA */
	/* TCP: refuse to listen unless every address the host resolves to is
	 * loopback (a plaintext export must not leave the machine). */
	bool loopback_only;
	/* Limits against clients that hog the server (0 = the default). */
	unsigned max_connections;  /* connections at once (128); beyond, new ones are closed */
	unsigned handshake_timeout; /* seconds to finish the handshake, TLS included (10) */
	uint64_t max_memory;       /* bytes for request and reply buffers (256 MiB, >= 32 MiB) */
};

#define BC_NBD_DEFAULT_MAX_CONNECTIONS 128
#define BC_NBD_DEFAULT_HANDSHAKE_TIMEOUT 10
#define BC_NBD_DEFAULT_MAX_MEMORY (256ull << 20)
#define BC_NBD_MIN_MAX_MEMORY (32ull << 20) /* one request of the largest size */

struct bc_nbd_server;

int bc_nbd_server_new(struct bc_volume *v, const struct bc_nbd_params *p,
		      struct bc_nbd_server **out);
/* The checks bc_nbd_server_new makes of the TLS parameters' combination
 * (not of the files), for callers that want to refuse early. */
int bc_nbd_params_check_tls(const struct bc_nbd_params *p);
/* Listen on a Unix socket (created with mode 0600) or a TCP address. */
int bc_nbd_server_listen_unix(struct bc_nbd_server *s, const char *path);
int bc_nbd_server_listen_tcp(struct bc_nbd_server *s, const char *host, const char *port);
/* 1 if HOST (empty: every address) resolves for PORT to loopback
 * addresses only (127.0.0.0/8, ::1, IPv4-mapped 127.x), 0 if to any other,
 * -EINVAL (reported) if it does not resolve. */
int bc_nbd_tcp_loopback(const char *host, const char *port);
/* A listening Unix stream socket at PATH, mode 0600, close-on-exec, that
 * appears in the file system only once it accepts connections (bound and
 * listening under a temporary name, then renamed).  REPLACE false: an
 * existing PATH is -EBUSY.  Returns the descriptor, or a negative errno
 * with the message "WHAT PATH: reason". */
int bc_unix_listen(const char *path, int backlog, bool replace, const char *what);
/* Accept connections in a background thread. */
int bc_nbd_server_start(struct bc_nbd_server *s);
/* Serve a single client on already-open descriptors until it disconnects
 * (e.g. stdin/stdout); returns when that client is gone. */
int bc_nbd_server_serve_fds(struct bc_nbd_server *s, int in_fd, int out_fd);
/* Connections past the handshake (those in it do not use the export). */
unsigned bc_nbd_server_clients(struct bc_nbd_server *s);
/* Stop accepting, finish in-flight requests, disconnect every client. */
void bc_nbd_server_stop(struct bc_nbd_server *s);
void bc_nbd_server_free(struct bc_nbd_server *s);

#ifdef __cplusplus
}
#endif
#endif /* BLOCKCRYPT_H */
