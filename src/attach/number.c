/* SPDX-License-Identifier: GPL-2.0-or-later */
/* Unsigned decimal numbers with optional binary suffixes. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "number.h"

int parse_number(const char *s, bool suffixes, uint64_t *out)
{
	char *end;
	unsigned long long v;
	uint64_t mult = 1;

	if (!s || *s < '0' || *s > '9')
		return -EINVAL;
	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno)
		return -EINVAL;
	if (*end && suffixes) {
		switch (*end++) {
		case 'k': case 'K': mult = 1ull << 10; break;
		case 'm': case 'M': mult = 1ull << 20; break;
		case 'g': case 'G': mult = 1ull << 30; break;
		case 't': case 'T': mult = 1ull << 40; break;
		default: return -EBADMSG;
		}
		if (!strcmp(end, "iB") || !strcmp(end, "B"))
			end += strlen(end);
	}
	if (*end)
		return -EBADMSG;
	if (v > UINT64_MAX / mult)
		return -ERANGE;
	*out = v * mult;
	return 0;
}

int parse_plain_size(const char *s, uint64_t *bytes)
{
	uint64_t v;
	int r = parse_number(s, true, &v);

	if (r < 0)
		return r;
	if (!s[strspn(s, "0123456789")]) {
		/* digits alone: 512-byte sectors */
		if (v > UINT64_MAX / 512)
			return -ERANGE;
		v *= 512;
	} else if (v % 512) {
		return -EDOM;
	}
	*bytes = v;
	return 0;
}
