/* SPDX-License-Identifier: GPL-2.0-or-later */
/* The LUKS layer's internal interface: the glue around libcryptsetup (one
 * place that sets up its logging and turns its return codes into this
 * library's errno meanings, also used by lib/plain), the header checks,
 * and the two entry points lib/setup dispatches to. */
#ifndef BC_LUKS_H
#define BC_LUKS_H

#include <stdbool.h>

#include <libcryptsetup.h>

#include "blockcrypt.h"

/* Unlock a LUKS1/LUKS2 volume (P->type AUTO: either) with a token or
 * PASS, as P->unlock says, and build the volume. */
int bci_luks_open_volume(const char *backing, const struct bc_open_params *p,
			const struct bc_secret *pass, struct bc_volume **out);
/* bc_format() for LUKS1 and LUKS2 (P->type AUTO = LUKS2); P->header: a
 * detached header file, created when missing. */
int bci_luks_format(const char *backing, const struct bc_format_params *p,
		   const struct bc_secret *pass);

struct bc_luks {
	struct crypt_device *cd;
	char *path;     /* where the header is (messages): HEADER, or the backing */
	char *data;     /* the backing */
	char *header;   /* the detached header file, or NULL */
};

/* Install the log callback (once per process). */
void bci_luks_init(void);
/* crypt_dump to stdout, naming PATH as the device (not a staged copy). */
int bci_luks_dump(struct crypt_device *cd, const char *path);
/* Turn a libcryptsetup failure into an error record; the message combines
 * CONTEXT with libcryptsetup's own last error line when it gave one. */
int bci_luks_fail(int r, const char *path, const char *context);
/* crypt_init with our error meanings (a missing path is -ENOENT). */
int bci_luks_init_cd(const char *path, struct crypt_device **out);
/* The same for a header in the file HEADER (NULL: on PATH) with the data
 * on PATH (crypt_init_data_device).  A detached header must be a regular
 * file or a block device, and PATH not an RBD image (-ENOTSUP). */
int bci_luks_init_cd_detached(const char *path, const char *header, struct crypt_device **out);
/* Where CD's header is: its detached header file, else its device. */
const char *bci_luks_header_path(struct crypt_device *cd);
/* True when CD's header is detached from the data. */
bool bci_luks_detached(struct crypt_device *cd);
/* After a header operation on CD: a staged header (RBD, header_stage.h)
 * is written back when R >= 0, else its changes are forgotten.  Returns R,
 * or the write-back's error. */
int bci_luks_commit(struct crypt_device *cd, int r);
/* crypt_free, forgetting uncommitted changes of a staged header. */
void bci_luks_free_cd(struct crypt_device *cd);
/* crypt_init + crypt_load of a LUKS1/LUKS2 header (TYPE AUTO = either). */
int bci_luks_load_cd(const char *path, enum bc_volume_type type, struct crypt_device **out);
/* The same with a detached header file HEADER (NULL: on PATH); errors
 * about the header name HEADER. */
int bci_luks_load_cd_detached(const char *path, const char *header, enum bc_volume_type type,
			      struct crypt_device **out);
/* Fill a volume's layout from a loaded header; -ENOTSUP (with INFO still
 * filled) if blockcrypt must not use it: unsupported cipher or features,
 * an unencrypted data segment or key slot, a data segment inside the
 * header area, or key slots failing bci_luks_check_keyslots. */
int bci_luks_layout(struct crypt_device *cd, struct bc_volume_info *info);
/* Before anything derives a key from a loaded header: -ENOTSUP if a key
 * slot stores its key unencrypted (cipher_null) or a key slot or volume
 * key digest asks for more key derivation work or memory than allowed
 * (limits in luks_common.c).  Nothing is derived. */
int bci_luks_check_keyslots(struct crypt_device *cd, const char *path);
/* -ENOTSUP if the header has requirements this libcryptsetup does not
 * know: such a header is read-only (LUKS2 specification), so DOING (a
 * header change, or writing data) is refused. */
int bci_luks_check_header_change(struct crypt_device *cd, const char *path, const char *doing);
/* Slots currently holding a key. */
int bci_luks_count_slots(struct crypt_device *cd);
/* Fail with -EACCES/-EROFS (exit 6) unless PATH can be opened for
 * writing: checked before any header change so a read-only backing is
 * reported as such, not as whatever libcryptsetup's write failure says. */
int bci_check_writable(const char *path);
/* Validate PBKDF choices for TYPE before anything is written. */
int bci_luks_check_pbkdf(const char *type, const struct bc_pbkdf_params *p);
/* Apply PBKDF parameters (NULL or zero fields = defaults).  TYPE NULL means
 * CD is a loaded header about to get a new or changed key slot: refused
 * as bci_luks_check_keyslots says (the existing slots' KDFs run first). */
int bci_luks_set_pbkdf(struct crypt_device *cd, const char *type, const struct bc_pbkdf_params *p);

#endif
