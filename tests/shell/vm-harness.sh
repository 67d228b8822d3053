#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
# The VM harness (tests/vm/vm.sh) can fail (issue #16): a guest script
# with a deliberately wrong expectation comes back as that script's exit
# status with the guest's output, and a guest that cannot boot (a broken
# kernel image) is exit 125 with the console's last lines, not a pass.
# On the way, what the harness promises the other VM tests: the guest runs
# the kernel the harness built, the files given with --file are in /vm, a
# --disk is /dev/vda, and the modules the tests need load.
. "$(dirname "$0")/functions.bash"
requires sha256sum
. "$TESTS_DIR/shell/vm-lib.bash"

printf 'the content the guest must see\n' >given.txt
truncate -s 4M disk.img
printf 'DISK-MARKER' | dd of=disk.img conv=notrunc status=none
cat >guest.sh <<'EOF'
echo "kernel $(uname -r)"
echo "given $(sha256sum </vm/given.txt | cut -d' ' -f1)"
echo "disk $(dd if=/dev/vda bs=11 count=1 2>/dev/null)"
for m in nbd dm_crypt dm_integrity loop; do modprobe "$m" && echo "module $m"; done
want=0000000000000000000000000000000000000000000000000000000000000000
got=$(echo 'deliberately wrong expectation' | sha256sum | cut -d' ' -f1)
[ "$got" = "$want" ] || { echo "FAIL: expected $want, got $got"; exit 3; }
echo "the wrong expectation held"
EOF
vm_run --timeout 300 --file given.txt --disk "$TEST_TMP/disk.img" guest.sh
[ "$VM_RC" = 3 ] || { vm_show; fail "the guest's failing script came back as exit $VM_RC, want 3"; }
grep -q '^FAIL: expected 0000' vm.out || { vm_show; fail "the guest's failure message is not in the output"; }
! grep -q 'the wrong expectation held' vm.out || fail "the guest went on past its failure"
kver=$(cat "$BC_VM_DIR/kernel-version")
grep -qx "kernel $kver" vm.out || { vm_show; problem "the guest did not run kernel $kver"; }
grep -qx "given $(sha given.txt)" vm.out || { vm_show; problem "the --file did not reach /vm intact"; }
grep -qx "disk DISK-MARKER" vm.out || { vm_show; problem "the --disk is not /dev/vda in the guest"; }
for m in nbd dm_crypt dm_integrity loop; do
	grep -qx "module $m" vm.out || problem "module $m did not load in the guest"
done

# A guest that cannot boot: the same guest with a broken kernel image.
mkdir broken
cp -a "$BC_VM_DIR/." broken/
head -c 65536 "$BC_VM_DIR/vmlinuz" >broken/vmlinuz
echo 'exit 0' >ok.sh
rc=0
BC_VM_DIR=$TEST_TMP/broken "$VM_SH" --timeout 120 --console broken.log ok.sh >broken.out 2>broken.err || rc=$?
note "broken kernel: exit $rc: $(head -n 1 broken.err)"
[ "$rc" = 125 ] || fail "a guest that cannot boot gave exit $rc, want 125"
grep -q 'without a status\|did not finish' broken.err || fail "no clear message for a guest that cannot boot: $(cat broken.err)"
check_problems
