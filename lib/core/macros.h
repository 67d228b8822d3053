/* SPDX-License-Identifier: GPL-2.0-or-later */
/* Small helpers every layer uses: element counts and the enclosing
 * structure of an embedded member. */
#ifndef BC_CORE_MACROS_H
#define BC_CORE_MACROS_H

#include <stddef.h>

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

#endif
