/* Per-thread error messages: every failing function records one
 * "context: message" line and returns a negative errno. */
#ifndef BC_CORE_ERROR_H
#define BC_CORE_ERROR_H

#include "blockcrypt.h"

/* Record a message for this thread and return R (a negative errno). */
int bc_error(int r, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void bc_error_clear(void);

#endif
