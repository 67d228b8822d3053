/* SPDX-License-Identifier: GPL-2.0-or-later */
/* blockcrypt genkey: a non-extractable AES key in a PKCS#11 token
 * (pktool genkey keystore=pkcs11 label=L keytype=aes keylen=256). */
#include <errno.h>
#include <stdio.h>

#include "blockcrypt.h"
#include "commands/commands.h"

int cmd_genkey(struct cli_opts *o)
{
	_cleanup_key_ struct bc_secret *pin = NULL;
	int r;

	if (!o->token || !o->label)
		return bc_set_error(-EINVAL, "genkey: --token and --label are required");
	r = cli_get_pin(o, o->token, &pin);
	if (r < 0)
		return r;
	r = bc_pkcs11_genkey(o->token, o->module, pin, o->label, o->key_len ? o->key_len : 256);
	if (r < 0)
		return r;
	fprintf(stderr, "genkey: AES-%u key '%s' created (sensitive, not extractable)\n",
		o->key_len ? o->key_len : 256, o->label);
	return 0;
}
