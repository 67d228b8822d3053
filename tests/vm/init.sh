#!/bin/sh
# SPDX-License-Identifier: GPL-2.0-or-later
# PID 1 of the VM tests' guest (tests/vm/build-initramfs.sh puts it in the
# initramfs as /init).  It mounts what a shell script needs, brings up the
# user-mode network (the host's 127.0.0.1 is 10.0.2.2), runs /vm/run.sh
# (appended by tests/vm/vm.sh), prints its exit status on the last line as
# BC-VM-EXIT:N, and powers the guest off.  Everything goes to the serial
# console, which the host keeps.
/bin/busybox --install -s /bin
export PATH=/usr/sbin:/usr/bin:/sbin:/bin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev 2>/dev/null
mkdir -p /dev/pts /run/cryptsetup /tmp
mount -t tmpfs tmpfs /run
mkdir -p /run/cryptsetup
mount -t tmpfs tmpfs /tmp
echo /bin/modprobe >/proc/sys/kernel/modprobe

for m in virtio_pci virtio_net virtio_blk; do modprobe "$m" 2>/dev/null; done
# The devices appear asynchronously once their drivers are in.
n=0
while [ ! -e /sys/class/net/eth0 ] && [ $n -lt 50 ]; do sleep 0.1; n=$((n + 1)); done
ip link set lo up
if [ -e /sys/class/net/eth0 ]; then
	ip link set eth0 up && ip addr add 10.0.2.15/24 dev eth0 && ip route add default via 10.0.2.2
else
	echo "init: no network device (eth0)"
fi

rc=127
if [ -f /vm/run.sh ]; then
	cd /vm && sh /vm/run.sh
	rc=$?
fi
sync
echo "BC-VM-EXIT:$rc"
poweroff -f
