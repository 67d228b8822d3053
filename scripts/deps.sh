#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
# Install the Debian packages blockcrypt needs to build (and, with --test,
# to run its test suite).  The build needs librbd and librados for the RBD
# backing store; the Ceph daemons that tests/ceph/cluster.sh runs are in
# the --test group.  Only missing packages are installed, so this is quick
# when everything is present.  The build also needs pandoc (the man pages
# are made from docs/*.md); the install tests read them with man and groff.
# Needs root (apt-get).
set -euo pipefail

build_pkgs=(gcc meson ninja-build pkg-config pandoc libcryptsetup-dev libssl-dev libjson-c-dev libfuse3-dev fuse3 libp11-kit-dev libgnutls28-dev
	librbd-dev librados-dev)
test_pkgs=(cryptsetup-bin qemu-utils qemu-block-extra python3 python3-cryptography e2fsprogs shellcheck
	libnbd-bin nbdkit nbdfuse fio zfs-fuse btrfs-progs python3-libnbd util-linux
	softhsm2 opensc p11-kit gnutls-bin openssl systemd iproute2 strace gdb
	clang libclang-rt-dev llvm
	ceph-mon ceph-mgr ceph-osd ceph-common python3-rados python3-rbd
	qemu-system-x86 busybox-static nbd-client cpio kmod bash-completion man-db groff-base)

pkgs=("${build_pkgs[@]}")
[ "${1:-}" = "--test" ] && pkgs+=("${test_pkgs[@]}")

missing=()
for p in "${pkgs[@]}"; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
	if [ "$(id -u)" != 0 ]; then
		echo "blockcrypt: missing packages: ${missing[*]} (run as root to install them)" >&2
		exit 1
	fi
	echo "Installing: ${missing[*]}" >&2
	export DEBIAN_FRONTEND=noninteractive
	apt-get update -q >/dev/null
	apt-get install -y -q --no-install-recommends "${missing[@]}" >/dev/null
	# The zfs-fuse package may start its system daemon; the tests and the
	# demo run their own (one per machine), so stop the packaged one.
	if [[ " ${missing[*]} " == *" zfs-fuse "* ]]; then
		service zfs-fuse stop >/dev/null 2>&1 || true
	fi
fi

# The VM tests' guest kernel (tests/vm/build-initramfs.sh): Debian's cloud
# kernel package, downloaded and kept here, never installed (the host's
# /boot stays as it is).
if [ "${1:-}" = "--test" ]; then
	vm_cache=/var/cache/blockcrypt/vm
	if ! ls "$vm_cache"/linux-image-*-cloud-amd64_*.deb >/dev/null 2>&1; then
		if [ "$(id -u)" != 0 ]; then
			echo "blockcrypt: the VM tests need a cloud kernel package in $vm_cache (run as root to download it)" >&2
			exit 1
		fi
		kpkg=$(apt-cache depends linux-image-cloud-amd64 2>/dev/null | awk '/Depends: linux-image-/ {print $2; exit}')
		if [ -z "$kpkg" ]; then
			apt-get update -q >/dev/null
			kpkg=$(apt-cache depends linux-image-cloud-amd64 | awk '/Depends: linux-image-/ {print $2; exit}')
		fi
		[ -n "$kpkg" ] || { echo "blockcrypt: cannot find the cloud kernel package (linux-image-cloud-amd64)" >&2; exit 1; }
		mkdir -p "$vm_cache"
		echo "Downloading $kpkg to $vm_cache (the VM tests' guest kernel)" >&2
		(cd "$vm_cache" && apt-get download -q "$kpkg" >/dev/null 2>&1) ||
			{ echo "blockcrypt: cannot download $kpkg" >&2; exit 1; }
	fi
fi
