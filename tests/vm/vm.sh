#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
# Boot a guest kernel (tests/vm/build-initramfs.sh) and run one shell
# script in it:
#   tests/vm/vm.sh [--disk FILE]... [--file FILE]... [--timeout SEC]
#                  [--console FILE] [--mem MIB] SCRIPT
# SCRIPT runs as /vm/run.sh under busybox sh, as root, with each --file
# next to it in /vm and each --disk as /dev/vda, /dev/vdb, ... (raw, in
# that order).  The guest reaches the host's 127.0.0.1 as 10.0.2.2 (qemu
# user networking).  The guest's console (SCRIPT's output and the
# kernel's messages) goes to stdout once the guest is off, and to
# --console (default ./vm-console.log) as it comes.
#
# Exit status: SCRIPT's own, or 125 when the guest never said how SCRIPT
# ended (no kernel, no boot, a panic, --timeout reached); the console's
# last lines are then on stderr.
#
# BC_VM_DIR: where the guest is built (default: build/vm of this tree).
# BC_VM_ACCEL: tcg (default: on this project's CI machines /dev/kvm is a
# paravirtual hypervisor that cannot run a stock kernel) or kvm, for a
# host with hardware virtualization.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
die() { echo "vm.sh: $*" >&2; exit 125; }
disks=() files=() timeout=300 console=$PWD/vm-console.log mem=512
while [ $# -gt 0 ]; do
	case $1 in
	--disk) disks+=("$2"); shift 2 ;;
	--file) files+=("$2"); shift 2 ;;
	--timeout) timeout=$2; shift 2 ;;
	--console) console=$2; shift 2 ;;
	--mem) mem=$2; shift 2 ;;
	-h|--help) sed -n '3,21p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
	-*) die "unknown option $1" ;;
	*) break ;;
	esac
done
[ $# = 1 ] || die "give one guest script (see --help)"
script=$1
[ -f "$script" ] || die "no such script: $script"
qemu=$(command -v qemu-system-x86_64) || die "needs qemu-system-x86_64 (scripts/deps.sh --test)"

vmdir=${BC_VM_DIR:-$here/../../build/vm}
"$here/build-initramfs.sh" "$vmdir" || die "cannot build the guest (tests/vm/build-initramfs.sh)"

work=$(mktemp -d "${TMPDIR:-/tmp}/bc-vm.XXXXXX")
trap 'rm -rf "$work"' EXIT
mkdir "$work/vm"
cp "$script" "$work/vm/run.sh"
for f in "${files[@]}"; do cp "$f" "$work/vm/"; done
# A second cpio after the base one: the kernel unpacks both into one root.
(cd "$work" && find vm -print0 | cpio --null -o -H newc --quiet) | gzip -1 >"$work/extra.gz"
cat "$vmdir/initrd.gz" "$work/extra.gz" >"$work/initrd.gz"

case ${BC_VM_ACCEL:-tcg} in
tcg) accel=(-accel "tcg,thread=multi" -cpu max) ;;
kvm) accel=(-accel kvm -cpu host) ;;
*) die "BC_VM_ACCEL: tcg or kvm" ;;
esac
drives=()
for d in "${disks[@]}"; do
	[ -f "$d" ] || die "no such disk image: $d"
	drives+=(-drive "file=$d,format=raw,if=virtio,cache=writeback")
done

: >"$console"
rc=0
timeout --kill-after=10 "$timeout" "$qemu" "${accel[@]}" -m "$mem" -smp 2 -nodefaults -no-reboot \
	-display none -serial "file:$console" -monitor none \
	-kernel "$vmdir/vmlinuz" -initrd "$work/initrd.gz" \
	-append "console=ttyS0 quiet loglevel=3 panic=-1 rdinit=/init" \
	-netdev user,id=n0 -device virtio-net-pci,netdev=n0 \
	"${drives[@]}" </dev/null >"$work/qemu.out" 2>&1 || rc=$?

# The guest's own status is its last BC-VM-EXIT line.
tr -d '\r' <"$console" | grep -v '^BC-VM-EXIT:' || true
status=$(tr -d '\r' <"$console" | sed -n 's/^BC-VM-EXIT:\([0-9][0-9]*\)$/\1/p' | tail -n 1)
if [ -z "$status" ]; then
	{
		if [ "$rc" = 124 ] || [ "$rc" = 137 ]; then
			echo "vm.sh: the guest did not finish within $timeout s"
		else
			echo "vm.sh: the guest ended without a status (qemu exit $rc): $(tail -n 3 "$work/qemu.out" | tr '\n' ' ')"
		fi
		echo "vm.sh: last lines of the console ($console):"
		tr -d '\r' <"$console" | tail -n 20 | sed 's/^/  | /'
	} >&2
	exit 125
fi
exit "$status"
