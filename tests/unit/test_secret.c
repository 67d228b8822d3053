/* SPDX-License-Identifier: GPL-2.0-or-later */
/* Key hygiene: secrets live in locked memory, the process is not dumpable
 * while a secret exists or a volume is open, and dumpable again after. */
#include <fcntl.h>
#include <string.h>
#include <sys/prctl.h>
#include <unistd.h>

#include "blockcrypt.h"
#include "core/secret.h"
#include "unit.h"

static long status_kb(const char *field)
{
	char buf[4096], *p;
	int fd = open("/proc/self/status", O_RDONLY);
	ssize_t n = read(fd, buf, sizeof(buf) - 1);

	close(fd);
	if (n <= 0)
		return -1;
	buf[n] = '\0';
	p = strstr(buf, field);
	return p ? strtol(p + strlen(field) + 1, NULL, 10) : -1;
}

/* A secret lives in locked memory; the process is not dumpable while any
 * secret exists, and dumpable again once the last is freed. */
static void secret_locked_not_dumpable(void)
{
	struct bc_secret *s = NULL, *t = NULL;

	CHECK(prctl(PR_GET_DUMPABLE) == 1);
	CHECK_OK(bc_secret_from_bytes("hunter2", 7, &s));
	CHECK(prctl(PR_GET_DUMPABLE) == 0);
#ifndef __SANITIZE_ADDRESS__
	CHECK(status_kb("VmLck:") > 0);
#else
	/* ASan turns mlock() into a no-op; the normal build checks this. */
	printf("# ASan build: VmLck not checked (ASan ignores mlock)\n");
#endif
	CHECK_OK(bc_secret_from_bytes("hunter2", 7, &t));
	CHECK(bc_secret_equal(s, t));
	bc_secret_free(t);
	CHECK_OK(bc_secret_from_bytes("hunter3", 7, &t));
	CHECK(!bc_secret_equal(s, t));
	bc_secret_free(t);
	CHECK(prctl(PR_GET_DUMPABLE) == 0); /* s still alive */
	bc_secret_free(s);
	CHECK(prctl(PR_GET_DUMPABLE) == 1);
	CHECK(status_kb("VmLck:") == 0);
}

/* A volume keeps key schedules: not dumpable while it is open. */
static void open_volume_not_dumpable(void)
{
	struct bc_secret *s = NULL;
	struct bc_volume *v = NULL;
	struct bc_open_params p = { .type = BC_TYPE_PLAIN, .cipher = "aes-xts-plain64" };
	char path[] = "/tmp/unit-secret-XXXXXX";
	uint8_t key[64];
	int fd;

	fd = mkstemp(path);
	CHECK(fd >= 0 && ftruncate(fd, 1 << 20) == 0);
	close(fd);
	for (int i = 0; i < 64; i++)
		key[i] = (uint8_t)(i * 7 + 1);
	CHECK_OK(bc_secret_from_bytes(key, sizeof(key), &s));
	CHECK_OK(bc_volume_open(path, &p, s, &v));
	bc_secret_free(s);
	CHECK(v != NULL);
	CHECK(prctl(PR_GET_DUMPABLE) == 0);
	bc_volume_close(v);
	CHECK(prctl(PR_GET_DUMPABLE) == 1);
	unlink(path);
}

int main(void)
{
	RUN(secret_locked_not_dumpable, "secrets are mlocked; not dumpable while one exists");
	RUN(open_volume_not_dumpable, "not dumpable while a volume is open");
	return unit_done();
}
