/* SPDX-License-Identifier: GPL-2.0-or-later */
/* Minimal assertion helpers for the C unit tests.  A test is a set of
 * named cases, one static function each, run from main by
 *	RUN(fn, "what it checks");
 * and main returns unit_done().  Each CHECK counts; a failure prints
 * file:line, the case and the expression, and the case is reported failed
 * by name when it ends. */
#ifndef BC_TESTS_UNIT_H
#define BC_TESTS_UNIT_H

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>

static unsigned unit_passed, unit_failed, unit_cases, unit_cases_failed;
static const char *unit_case = "(no case)";

#define CHECK(expr) do { \
	if (expr) { unit_passed++; } \
	else { unit_failed++; fprintf(stderr, "FAIL %s:%d: [%s] %s\n", __FILE__, __LINE__, unit_case, #expr); } \
} while (0)

#define CHECK_OK(call) do { \
	int _r = (call); \
	if (_r >= 0) { unit_passed++; } \
	else { unit_failed++; fprintf(stderr, "FAIL %s:%d: [%s] %s = %d (%s)\n", __FILE__, __LINE__, unit_case, #call, _r, bc_last_error()); } \
} while (0)

/* RUN(fn, what): run the case fn (void fn(void)); its failures name it. */
#define RUN(fn, what) unit_run(fn, #fn, what)

static inline void unit_run(void (*fn)(void), const char *name, const char *what)
{
	unsigned failed = unit_failed, passed = unit_passed;

	unit_case = name;
	fn();
	unit_case = "(no case)";
	unit_cases++;
	if (unit_failed != failed) {
		unit_cases_failed++;
		fprintf(stderr, "FAIL case %s (%s): %u of %u checks failed\n", name, what,
			unit_failed - failed, unit_failed - failed + unit_passed - passed);
	} else {
		printf("ok case %s (%s): %u checks\n", name, what, unit_passed - passed);
	}
}

static inline int unit_done(void)
{
	printf("# %u cases, %u failed\n", unit_cases, unit_cases_failed);
	printf("%u passed, %u failed\n", unit_passed, unit_failed);
	return unit_failed || !unit_passed ? 1 : 0;
}

#endif
