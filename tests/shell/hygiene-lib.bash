# SPDX-License-Identifier: GPL-2.0-or-later
# Shared by the hygiene-* tests (key material in memory and core files).
# Source after functions.bash.

# shellcheck disable=SC2034 # used by the tests that source this file
SCAN=(/usr/bin/python3 "$TESTS_DIR/shell/hygiene_scan.py")
# meson sets MALLOC_PERTURB_: glibc would then overwrite freed memory and
# hide key material that blockcrypt frees without wiping.
unset MALLOC_PERTURB_ MALLOC_CHECK_
trap 'exit 130' INT
trap 'exit 143' TERM
hexof() { od -An -v -tx1 "$1" | tr -d ' \n'; }
