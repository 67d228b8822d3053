#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
# Every shell file of the project passes shellcheck at severity warning:
# the tests (tests/shell/*.sh) and their helpers (*.bash, tests/ceph/*.sh),
# scripts/*.sh, bench/*.sh, .ci/run and the bash completion, as bash, following what they
# source (-x; the helpers are found next to the script or one level up, as
# "$(dirname "$0")/functions.bash" and "$TESTS_DIR/shell/*.bash" say).
# Any finding fails the test; a false positive is disabled on its line with
# a comment saying why, never by lowering the severity.  A control file with
# a known warning must fail the same command, so a shellcheck that checks
# nothing cannot pass.
. "$(dirname "$0")/functions.bash"
requires shellcheck

SC=(shellcheck --severity=warning --external-sources --shell=bash
	--source-path=SCRIPTDIR --source-path=SCRIPTDIR/.. --format=gcc)

# Control: an unused variable and an unquoted cd are warnings.
printf '#!/usr/bin/env bash\nunused=1\ncd $HOME\n' >control.sh
"${SC[@]}" control.sh >control.out 2>&1 && fail "shellcheck passed a file with known warnings"
grep -q 'SC2034' control.out || fail "shellcheck did not report the unused variable: $(cat control.out)"

ROOT=$(cd "$TESTS_DIR/.." && pwd)
files=()
for f in "$ROOT"/tests/shell/*.sh "$ROOT"/tests/shell/*.bash "$ROOT"/tests/ceph/*.sh "$ROOT"/scripts/*.sh "$ROOT"/bench/*.sh "$ROOT"/bench/*.bash "$ROOT"/.ci/run \
	"$ROOT"/tests/vm/vm.sh "$ROOT"/tests/vm/build-initramfs.sh "$ROOT"/data/completion/*; do
	[ -e "$f" ] && files+=("$f")
done
# The VM guest's scripts run under busybox sh (POSIX sh, not bash).
guest=("$ROOT"/tests/vm/init.sh "$ROOT"/tests/vm/guest-*.sh)
[ ${#guest[@]} -ge 3 ] || fail "only ${#guest[@]} guest scripts found under $ROOT/tests/vm"
[ ${#files[@]} -gt 50 ] || fail "only ${#files[@]} shell files found under $ROOT"
rc=0
(cd "$ROOT" && "${SC[@]}" "${files[@]#"$ROOT"/}") >sc.out 2>&1 || rc=$?
(cd "$ROOT" && "${SC[@]/--shell=bash/--shell=sh}" "${guest[@]#"$ROOT"/}") >>sc.out 2>&1 || rc=$?
[ "$rc" = 0 ] || fail "shellcheck: $(grep -c ': \(error\|warning\):' sc.out) finding(s) (exit $rc):
$(cat sc.out)"
note "shellcheck $(shellcheck --version | sed -n 's/^version: //p'): ${#files[@]} bash and ${#guest[@]} sh files, no finding at severity warning"
exit 0
