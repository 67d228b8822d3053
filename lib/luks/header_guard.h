/* SPDX-License-Identifier: GPL-2.0-or-later */
/* A header change that fails leaves the header as it was. */
#ifndef BC_LUKS_HEADER_GUARD_H
#define BC_LUKS_HEADER_GUARD_H

#include <stdbool.h>

/* bc_header_guard_begin and bc_header_guard_end are public API
 * (blockcrypt.h). */
#include "blockcrypt.h"

#endif
