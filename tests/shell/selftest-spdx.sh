#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
# Every source file says its license (COPYING: GPL-2.0-or-later) in an
# SPDX line near its top, so a file copied out of the tree keeps it.
# Prove the check finds the files here and fails on a file without one.
. "$(dirname "$0")/functions.bash"
requires git

TOP=$(cd "$TESTS_DIR/.." && pwd)
TAG='SPDX-License-Identifier: GPL-2.0-or-later'

# missing_spdx DIR: the source files of DIR's git tree without the tag in
# their first 3 lines.
missing_spdx() {
	git -C "$1" ls-files -co --exclude-standard -- '*.c' '*.h' '*.sh' '*.bash' '*.py' \
		'*.sym' '*.toml' 'meson.build' '*/meson.build' '.ci/run' 'data/systemd/*' 'data/completion/*' |
		while read -r f; do
			[ -f "$1/$f" ] || continue
			head -3 "$1/$f" | grep -qF "$TAG" || echo "$f"
		done
}

missing_spdx "$TOP" >missing
[ ! -s missing ] || fail "files without an SPDX line: $(tr '\n' ' ' <missing)"
count=$(git -C "$TOP" ls-files -- '*.c' '*.h' '*.sh' | wc -l)
[ "$count" -gt 100 ] || fail "only $count source files found: the file list is wrong"

mkdir tree && git -C tree init -q
printf 'int x;\n' >tree/new.c
printf '/* %s */\nint y;\n' "$TAG" >tree/ok.c
git -C tree add -A
missing_spdx tree >missing
[ "$(cat missing)" = new.c ] || fail "the check did not flag exactly new.c: $(cat missing)"
