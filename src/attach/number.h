/* SPDX-License-Identifier: GPL-2.0-or-later */
/* Unsigned decimal numbers as the command line and the tab file take them. */
#ifndef BC_NUMBER_H
#define BC_NUMBER_H

#include <stdbool.h>
#include <stdint.h>

/* Parse S: digits only (no blanks or sign, which strtoull would take),
 * then, with SUFFIXES, an optional K, M, G or T (powers of 1024, either
 * case) followed by nothing, "B" or "iB".  0, or -EINVAL (not a number),
 * -EBADMSG (trailing junk or a bad suffix), -ERANGE (too large). */
int parse_number(const char *s, bool suffixes, uint64_t *out);

/* A plain volume's size: digits alone count 512-byte sectors (as
 * cryptsetup's --size), a number with a K/M/G/T suffix counts bytes and
 * must be a multiple of 512.  The size in bytes in *BYTES; errors as
 * parse_number(), and -EDOM (bytes not a multiple of 512). */
int parse_plain_size(const char *s, uint64_t *bytes);

#endif
