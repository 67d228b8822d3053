/* SPDX-License-Identifier: GPL-2.0-or-later */
/* blockcrypt enroll: a key slot whose secret is wrapped by a token key. */
#include <errno.h>
#include <stdio.h>

#include "blockcrypt.h"
#include "commands/commands.h"

int cmd_enroll(struct cli_opts *o)
{
	_cleanup_luks_ struct bc_luks *l = NULL;
	_cleanup_key_ struct bc_secret *pass = NULL, *pin = NULL;
	int r;

	if (!o->pkcs11)
		return bc_set_error(-EINVAL, "enroll: --pkcs11 URI is required");
	r = bc_luks_load_detached(o->args[0], o->header, false, &l);
	if (r < 0)
		return r;
	r = cli_get_key(o, o->key_file, "Enter any existing passphrase: ", false, &pass);
	if (r < 0)
		return r;
	r = cli_get_pin(o, o->pkcs11, &pin);
	if (r < 0)
		return r;
	r = bc_luks_enroll_pkcs11(l, pass, o->pkcs11, o->module, pin);
	if (r < 0)
		return r;
	fprintf(stderr, "%s: token %d enrolled\n", o->args[0], r);
	return 0;
}
