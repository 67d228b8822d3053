/* SPDX-License-Identifier: GPL-2.0-or-later */
/* Small helpers every layer uses: element counts, the enclosing
 * structure of an embedded member, and a test for zero bytes. */
#ifndef BC_CORE_MACROS_H
#define BC_CORE_MACROS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

/* Elements in an array (not a pointer: the compiler refuses those). */
#define ARRAY_SIZE(a) \
	(sizeof(a) / sizeof((a)[0]) + \
	 0 * sizeof(char[1 - 2 * __builtin_types_compatible_p(__typeof__(a), __typeof__(&(a)[0]))]))

/* X, macro-expanded, as a string literal. */
#define BC_STRINGIFY(x) BC_STRINGIFY_(x)
#define BC_STRINGIFY_(x) #x

/* The structure of type TYPE whose MEMBER PTR points at. */
#define container_of(ptr, type, member) \
	((type *)(void *)((char *)(ptr) - offsetof(type, member)))

/* Whether the LEN bytes at P are all zero.  Stops at the first nonzero
 * word: on ciphertext or real data that is almost always the first. */
static inline bool bci_all_zero(const void *p, size_t len)
{
	const unsigned char *b = p;
	uint64_t w;

	for (; len >= sizeof(w); b += sizeof(w), len -= sizeof(w)) {
		memcpy(&w, b, sizeof(w));
		if (w)
			return false;
	}
	while (len--)
		if (*b++)
			return false;
	return true;
}

#endif
