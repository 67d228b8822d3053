/* Small helpers for sizes, so that buffers are sized by what they hold
 * rather than by literals. */
#ifndef BC_ATTACH_MACROS_H
#define BC_ATTACH_MACROS_H

#include <sys/un.h>

#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))
/* The longest socket path (a sockaddr_un's, with its NUL). */
#define SUN_PATH_SIZE sizeof(((struct sockaddr_un *)0)->sun_path)

#endif
