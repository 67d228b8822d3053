/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The dispatch layer, as cryptsetup's lib/setup.c is above its luks1,
 * luks2 and plain code: the public calls that work on any kind of volume
 * pick the format here (LUKS, plain, lofi), so the formats below know
 * nothing of each other and the volume layer knows nothing of formats.
 */
#include <errno.h>

#include "core/error.h"
#include "lofi/lofi.h"
#include "luks/luks.h"
#include "plain/plain.h"

int bc_volume_open(const char *backing, const struct bc_open_params *p,
		   const struct bc_secret *key, struct bc_volume **out)
{
	static const struct bc_open_params defaults = { .type = BC_TYPE_AUTO };

	*out = NULL;
	if (!p)
		p = &defaults;
	if ((p->type == BC_TYPE_PLAIN || p->type == BC_TYPE_LOFI) && (p->header || p->key_slot_set))
		return bci_error(-EINVAL, "%s: %s volumes have no LUKS header or key slots (--%s is for LUKS)",
				backing, p->type == BC_TYPE_LOFI ? "lofi" : "plain", p->header ? "header" : "key-slot");
	if (p->type == BC_TYPE_PLAIN)
		return bci_plain_open_volume(backing, p, key, out);
	if (p->type == BC_TYPE_LOFI)
		return bci_lofi_open_volume(backing, p, key, out);
	return bci_luks_open_volume(backing, p, key, out);
}

int bc_format(const char *backing, const struct bc_format_params *p,
	      const struct bc_secret *pass)
{
	if (p->type == BC_TYPE_PLAIN)
		return bci_error(-EINVAL, "format: plain volumes have no header to format");
	if (p->type == BC_TYPE_LOFI)
		return bci_error(-ENOTSUP, "format: lofi images are made by lofiadm -c (see blockcrypt-lofi(7))");
	return bci_luks_format(backing, p, pass);
}
