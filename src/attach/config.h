/* What one attachment is asked to be: filled by the command line or by a
 * tab file line, and handed to the attach daemon. */
#ifndef BC_ATTACH_CONFIG_H
#define BC_ATTACH_CONFIG_H

/* --threads and the tab's threads=: the NBD server's per-connection
 * limit (more would be silently capped there, so they are refused). */
#define ATTACH_THREADS_MAX 64

#endif
