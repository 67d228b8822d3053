#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
# Build the guest for the VM tests: a Debian cloud kernel and a small
# initramfs, from Debian packages, into OUTDIR (normally build/vm):
#   tests/vm/build-initramfs.sh OUTDIR
# OUTDIR gets vmlinuz, initrd.gz and kernel-version.  Nothing is built
# again while the inputs are the same (the kernel package, this script,
# init.sh, and the host binaries copied in).
#
# The kernel comes from linux-image-*-cloud-amd64: its .deb is unpacked,
# not installed, so the host's /boot stays as it is.  scripts/deps.sh
# --test downloads it to /var/cache/blockcrypt/vm (BC_VM_KERNEL_DEB names
# another).  The guest's userland is busybox (static) plus the host's own
# nbd-client, cryptsetup, integritysetup, e2fsprogs, blkdiscard and dd
# (as /hostbin/NAME) with the shared libraries they load; and the kernel modules for NBD,
# device-mapper (crypt, integrity), virtio, ext4 and the crypto they use,
# with a depmod index so that the kernel's own requests for crypto modules
# ("crypto-xts(aes)") are met by busybox modprobe.
set -euo pipefail

die() { echo "build-initramfs.sh: $*" >&2; exit 1; }
[ $# = 1 ] || die "usage: build-initramfs.sh OUTDIR"
out=$1
here=$(cd "$(dirname "$0")" && pwd)
mkdir -p "$out"
out=$(cd "$out" && pwd)

deb=${BC_VM_KERNEL_DEB:-}
if [ -z "$deb" ]; then
	deb=$(find /var/cache/blockcrypt/vm -maxdepth 1 -name 'linux-image-*-cloud-amd64_*.deb' 2>/dev/null | sort -V | tail -n 1)
fi
[ -n "$deb" ] && [ -f "$deb" ] ||
	die "no cloud kernel package (run scripts/deps.sh --test, or set BC_VM_KERNEL_DEB to a linux-image-*-cloud-amd64 .deb)"

for t in busybox cpio gzip depmod dpkg-deb ldd; do
	command -v "$t" >/dev/null || die "needs $t (scripts/deps.sh --test installs it)"
done
busybox=$(command -v busybox)
ldd "$busybox" >/dev/null 2>&1 && die "$busybox is not static (install busybox-static)"

# Host programs the guest runs (with their libraries).
progs=(nbd-client cryptsetup integritysetup mke2fs e2fsck blkdiscard dd)
paths=()
for p in "${progs[@]}"; do
	x=$(command -v "$p") || die "needs $p on the host (scripts/deps.sh --test)"
	paths+=("$(readlink -f "$x")")
done

# The stamp: what the result depends on.
stamp=$( {
	sha256sum "$deb" "$0" "$here/init.sh" "$busybox" "${paths[@]}"
} | sha256sum | cut -d' ' -f1)
if [ -f "$out/stamp" ] && [ "$(cat "$out/stamp")" = "$stamp" ] && [ -f "$out/initrd.gz" ] && [ -f "$out/vmlinuz" ]; then
	exit 0
fi
rm -f "$out/stamp"

kdir=$out/kernel
rm -rf "$kdir"
dpkg-deb -x "$deb" "$kdir" || die "cannot unpack $deb"
kver=$(ls "$kdir/lib/modules")
[ "$(echo "$kver" | wc -w)" = 1 ] || die "expected one kernel version in $deb, found: $kver"
cp "$kdir/boot/vmlinuz-$kver" "$out/vmlinuz"

root=$out/root
rm -rf "$root"
mkdir -p "$root"/{bin,sbin,usr/bin,usr/sbin,lib,lib64,etc,proc,sys,dev,run,tmp,mnt,vm}
cp "$busybox" "$root/bin/busybox"
# busybox applets are linked at boot (init.sh); sh is needed to run it.
ln -s busybox "$root/bin/sh"

# copy_with_libs FILE: FILE and every shared library it loads, each at its
# own path (ld.so's default paths then find them in the guest).
copy_with_libs() {
	local f=$1 lib
	install -D -m 755 "$f" "$root$f"
	while read -r lib; do
		[ -e "$root$lib" ] && continue
		install -D -m 755 "$(readlink -f "$lib")" "$root$lib"
	done < <(ldd "$f" | awk '$2 == "=>" && $3 ~ /^\// {print $3} $1 ~ /^\// {print $1}')
}
for p in "${paths[@]}"; do copy_with_libs "$p"; done
# The names the tests use: /hostbin/NAME.  busybox sh runs its own applet
# of a name (mke2fs, dd, blkdiscard) before anything in PATH, so the guest
# scripts call the host's programs by these paths.
mkdir -p "$root/hostbin"
for i in "${!progs[@]}"; do ln -s "${paths[$i]}" "$root/hostbin/${progs[$i]}"; done

# Kernel modules: whole subtrees (the crypto a dm-crypt table names is
# loaded on demand), then depmod over what the guest has.
mdir=lib/modules/$kver
mkdir -p "$root/$mdir"
cp "$kdir/$mdir"/modules.builtin* "$kdir/$mdir/modules.order" "$root/$mdir/"
for sub in kernel/crypto kernel/arch/x86/crypto kernel/lib kernel/drivers/md kernel/drivers/block \
	kernel/drivers/virtio kernel/drivers/net/virtio_net.ko kernel/drivers/net/net_failover.ko \
	kernel/net/core/failover.ko kernel/fs/ext4 kernel/fs/jbd2 kernel/fs/mbcache.ko kernel/drivers/char/tpm; do
	[ -e "$kdir/$mdir/$sub" ] || continue
	mkdir -p "$root/$mdir/$(dirname "$sub")"
	cp -a "$kdir/$mdir/$sub" "$root/$mdir/$(dirname "$sub")/"
done
depmod -b "$root" "$kver" || die "depmod failed"

install -m 755 "$here/init.sh" "$root/init"
echo "$kver" >"$out/kernel-version"

(cd "$root" && find . -print0 | cpio --null -o -H newc --quiet) | gzip -1 >"$out/initrd.gz.new"
mv "$out/initrd.gz.new" "$out/initrd.gz"
rm -rf "$kdir"
echo "$stamp" >"$out/stamp"
