/* SPDX-License-Identifier: GPL-2.0-or-later */
/* The library's version, as its headers' BC_VERSION_STRING was when it was
 * built: what a program runs with, which may be newer than what it was
 * built against. */
#include "blockcrypt.h"

const char *bc_version(void)
{
	return BC_VERSION_STRING;
}
