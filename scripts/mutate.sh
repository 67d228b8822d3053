#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
# Mutation testing of the guard tests (tests/mutation/README.md): plants each
# bug of tests/mutation/mutations.toml in a temporary copy of the repository
# and checks that the tests named for it fail.  Installs the test packages
# first (as root).  Arguments go to tests/mutation/mutate.py, e.g.
#   scripts/mutate.sh --list
#   scripts/mutate.sh --only 'iv-*' --only essiv-skipped
# Exit 0: every mutation caught; 1: a mutation survived or the catalog has
# an error; 2: the harness could not start (stale entry, baseline failed).
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
case " $* " in
*" --list "* | *" -h "* | *" --help "*) ;;
*) "$top/scripts/deps.sh" --test ;;
esac
exec python3 "$top/tests/mutation/mutate.py" "$@"
