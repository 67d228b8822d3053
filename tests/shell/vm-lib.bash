# SPDX-License-Identifier: GPL-2.0-or-later
# Shared by the VM tests (tests/shell/vm-*.sh): a real Linux kernel in a
# qemu guest (tests/vm/vm.sh) as NBD client and dm-crypt oracle.  Source
# after functions.bash.  A VM test fails, never skips, when the guest
# cannot run: the kernel is the point of the test.

VM_SH=$TESTS_DIR/vm/vm.sh
# The guest is built once per build directory (tests/vm/build-initramfs.sh
# keeps it until its inputs change).
BC_VM_DIR=${BC_VM_DIR:-$(cd "$(dirname "$BLOCKCRYPT")/.." && pwd)/vm}
export BC_VM_DIR
for t in qemu-system-x86_64 busybox cpio depmod; do
	command -v "$t" >/dev/null || fail "the VM tests need $t (scripts/deps.sh --test installs it)"
done

# vm_run VM.SH-ARGS... GUEST-SCRIPT: boot the guest and run the script;
# its console is in $TEST_TMP/vm.out, its exit status in $VM_RC.  A guest
# that never said how its script ended (vm.sh exit 125) fails the test.
vm_run() {
	local t0=$SECONDS
	VM_RC=0
	"$VM_SH" --console "$TEST_TMP/vm-console.log" "$@" >"$TEST_TMP/vm.out" 2>"$TEST_TMP/vm.err" || VM_RC=$?
	note "guest ran for $((SECONDS - t0)) s, exit $VM_RC"
	[ "$VM_RC" != 125 ] || fail "the guest did not run: $(cat "$TEST_TMP/vm.err")"
}

# vm_show: the guest's console, for a failure message.
vm_show() { sed 's/^/  guest| /' "$TEST_TMP/vm.out" >&2; }
