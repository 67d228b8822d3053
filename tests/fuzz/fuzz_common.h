/* SPDX-License-Identifier: GPL-2.0-or-later */
/* Shared by the fuzz harnesses: a failed property check is a crash, so
 * libFuzzer stops and keeps the input that broke it. */
#ifndef BC_FUZZ_COMMON_H
#define BC_FUZZ_COMMON_H

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>

#define FUZZ_CHECK(cond, ...) do { \
	if (!(cond)) { \
		fprintf(stderr, "FUZZ CHECK FAILED at %s:%d: ", __FILE__, __LINE__); \
		fprintf(stderr, __VA_ARGS__); \
		fputc('\n', stderr); \
		abort(); \
	} \
} while (0)

#endif
