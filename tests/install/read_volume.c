/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * What any program using libblockcrypt would write: install-pkgconfig.sh
 * builds it with `cc $(pkg-config --cflags --libs blockcrypt)` against an
 * installed library and runs it.
 *   read_volume BACKING KEYFILE OFFSET LENGTH   LENGTH bytes of the volume
 *                                               (read-only) to stdout
 *   read_volume --version    "MAJOR.MINOR.MICRO STRING" of the headers,
 *                            then bc_version() of the library
 * A failure prints "read_volume: MESSAGE" and exits with bc_exit_code().
 */
#include <blockcrypt.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>

int main(int argc, char **argv)
{
	struct bc_open_params p = { .type = BC_TYPE_AUTO, .read_only = true };
	struct bc_secret *key = NULL;
	struct bc_volume *v = NULL;
	char *buf = NULL;
	size_t len;
	int r;

	if (argc == 2) {
		printf("%d.%d.%d %s %s\n", BC_VERSION_MAJOR, BC_VERSION_MINOR, BC_VERSION_MICRO,
		       BC_VERSION_STRING, bc_version());
		return 0;
	}
	if (argc != 5) {
		fprintf(stderr, "usage: read_volume BACKING KEYFILE OFFSET LENGTH | --version\n");
		return BC_EXIT_USAGE;
	}
	len = strtoull(argv[4], NULL, 0);
	r = bc_secret_from_file(argv[2], &key);
	if (r >= 0)
		r = bc_volume_open(argv[1], &p, key, &v);
	if (r >= 0 && !(buf = malloc(len)))
		r = -ENOMEM;
	if (r >= 0)
		r = bc_volume_pread(v, buf, len, strtoull(argv[3], NULL, 0));
	if (r >= 0 && fwrite(buf, 1, len, stdout) != len)
		r = -EIO;
	if (r < 0)
		fprintf(stderr, "read_volume: %s\n", bc_last_error());
	free(buf);
	bc_volume_close(v);
	bc_secret_free(key);
	return r < 0 ? bc_exit_code(r) : 0;
}
