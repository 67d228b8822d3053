/* Minimal assertion helpers for the C unit tests: each CHECK counts, a
 * failure prints file:line and the expression, main returns unit_done(). */
#ifndef BC_TESTS_UNIT_H
#define BC_TESTS_UNIT_H

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>

static unsigned unit_passed, unit_failed;

#define CHECK(expr) do { \
	if (expr) { unit_passed++; } \
	else { unit_failed++; fprintf(stderr, "FAIL %s:%d: %s\n", __FILE__, __LINE__, #expr); } \
} while (0)

#define CHECK_OK(call) do { \
	int _r = (call); \
	if (_r >= 0) { unit_passed++; } \
	else { unit_failed++; fprintf(stderr, "FAIL %s:%d: %s = %d (%s)\n", __FILE__, __LINE__, #call, _r, bc_last_error()); } \
} while (0)

static inline int unit_done(void)
{
	printf("%u passed, %u failed\n", unit_passed, unit_failed);
	return unit_failed || !unit_passed ? 1 : 0;
}

#endif
