#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
# blockcrypt benchmark: the same data served by
#   nbdkit-null   nbdkit null plugin (writes dropped, reads zeros): no storage and
#                 no crypto, so what fio and the socket carry on their own
#   nbdkit-file   nbdkit file plugin on the plaintext image (no crypto: the ceiling)
#   nbdkit-luks   nbdkit file plugin + luks filter on a LUKS1 copy
#   qemu-nbd      qemu-nbd (driver=luks) on another LUKS1 copy
#   bc-luks1      blockcrypt attach of a third LUKS1 copy
#   bc-luks2-4k   blockcrypt attach of a LUKS2 volume with 4096-byte sectors
# all on Unix sockets (or, with --tcp, TCP on 127.0.0.1), measured with fio's nbd engine (seq read/write 1M,
# rand read/write 4k at iodepth 32, rand read 4k at iodepth 1 for latency),
# plus the FUSE file (blockcrypt attach --fuse vs nbdfuse of nbdkit-file),
# raw AES-XTS speed (openssl speed, and blockcrypt's own sector engine through
# bench-engine-speed), the blockcrypt daemon's memory under
# load, and a fio write+verify (crc32c) job per blockcrypt server.
#
# Every server runs for the whole measurement, and the servers take turns
# job by job, in a rotating order, for --rounds rounds: on a shared VM the
# machine's speed drifts (hypervisor steal), and this way every ratio
# compares runs made seconds apart.  Tables show the median round.
#
# --backing picks where the images live (default: every one this machine
# offers, one after the other, each an interleaved run of its own):
#   tmpfs   the group above, images in /dev/shm
#   ext4    nbdkit-file and bc-luks2-4k, images as files on ext4: the disk
#           directory itself if it is on ext4 (--disk-dir, default build/
#           of this tree), else a fresh ext4 on a loop device over a file
#           there
#   xfs     the same on xfs
#   loop    the same, each image a loop device (losetup, buffered) over a
#           file in the disk directory: the servers get block devices
# On ext4, xfs and loop the same jobs run against the unencrypted nbdkit
# file plugin and blockcrypt on the same backing, plus rand write 4k qd1.
#
# --rbd measures instead (and only) the RBD group, on one throw-away Ceph
# cluster (tests/ceph/cluster.sh: one mon, mgr and bluestore OSD, its block
# file in the work directory, so on tmpfs by default):
#   rbd-plain          qemu-nbd, qemu's rbd driver, an unencrypted image
#   rbd-luks2-librbd   qemu-nbd, qemu's rbd driver with librbd's own LUKS2
#                      encryption (rbd encryption format IMG luks2;
#                      encrypt.format=luks2 in qemu): aes-xts-plain64, 512-bit
#                      key, 4096-byte sectors
#   bc-rbd             blockcrypt attach rbd:rbd/IMG, LUKS2 with the same
#                      cipher, key size and sectors
# with the same NBD jobs, rotation and rounds.  librbd's cache is off for all
# three: qemu-nbd --cache=none (qemu's rbd driver then sets rbd_cache=false)
# and "rbd cache = false" in the bench's ceph.conf, which every client reads;
# each server's own setting is read back from its admin socket into the
# report.  The data goes in through librbd (python3-rbd; for the LUKS2 image
# with its encryption loaded) and through blockcrypt write, and every export
# is read back and compared with it before the measured jobs.
#
#   bench/run.sh [--size 1G] [--runtime 5] [--rounds 3] [--quick] [options]
#   bench/run.sh --backing ext4,xfs [--disk-dir DIR] [options]
#   bench/run.sh --rbd [--size 1G] [--quick] [options]
#
# Nothing is installed: a missing tool stops the run with a message.
# Output: tables on stdout, raw numbers in bench/last-run.json (tmpfs),
# bench/last-run-BACKING.json (ext4, xfs, loop), bench/last-run-rbd.json
# (--rbd); or --json with one backing.
set -euo pipefail

BENCH_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO_DIR=$(cd "$BENCH_DIR/.." && pwd)
# shellcheck source=bench/copy-blockcrypt.bash
. "$BENCH_DIR/copy-blockcrypt.bash"

usage() {
	cat <<EOF
Usage: bench/run.sh [OPTIONS]

  --size SIZE        data size of every image (default 1G; --quick: 256M); K/M/G suffixes
  --runtime SEC      seconds per fio job, after --ramp (default 5; --quick: 1)
  --ramp SEC         fio ramp_time per job, not measured (default 1; --quick: 0.5)
  --rounds N         rounds of interleaved jobs; the median round is reported (default 3; --quick: 1)
  --quick            short run (~1 min): --size 256M --runtime 1 --ramp 0.5 --rounds 1, smaller verify job
  --conns N          NBD connections (fio numjobs) per job, same for every server (default 1)
  --tcp              serve NBD over TCP on 127.0.0.1 (fio's own default transport) instead of Unix sockets
  --bc-threads N     blockcrypt attach --threads (default: blockcrypt's own default)
  --blockcrypt PATH  binary to test (default \$BLOCKCRYPT or build/src/blockcrypt; it is copied first)
  --backing LIST     tmpfs, ext4, xfs, loop, comma-separated (default: all this machine offers), each
                     measured on its own, one after the other
  --disk-dir DIR     with ext4, xfs, loop: where the image files (or the loop-mounted file systems'
                     files) go (default: $REPO_DIR/build/bench-disk; on the disk, not tmpfs)
  --workdir DIR      where logs, sockets (and tmpfs images) live (default: a new directory in /dev/shm)
  --json FILE        raw results, with one backing (default bench/last-run.json for tmpfs,
                     bench/last-run-BACKING.json for the others, bench/last-run-rbd.json with --rbd)
  --perf             also profile the blockcrypt daemons with perf during seq write and rand read qd32
  --rbd              only the RBD group (rbd-plain, rbd-luks2-librbd, bc-rbd) on a Ceph cluster of its own,
                     started in the work directory and stopped at the end; not the tmpfs servers or FUSE
  --rbd-servers LIST with --rbd: only these of the RBD servers (comma-separated; default all three)
  --osd-size SIZE    with --rbd: the OSD's sparse block file (default 4 x --size + 4G, at least 10G)
  --keep             keep the work directory (images, fio JSON, logs)
  --help             this text
EOF
}

# ---------------------------------------------------------------- options
SIZE_ARG="" RUNTIME="" RAMP="" ROUNDS="" QUICK=0 TCP=0 CONNS=1 BC_THREADS="" WORKDIR_ARG="" PERF=0 KEEP=0
RBD=0 RBD_SERVERS_ARG="" OSD_SIZE_ARG="" BACKING_ARG="" DISK_DIR_ARG=""
ORIG_ARGS=("$@")
JSON_OUT=""
BC_SRC=${BLOCKCRYPT:-$REPO_DIR/build/src/blockcrypt}
while [ $# -gt 0 ]; do
	case $1 in
	--size) SIZE_ARG=$2; shift 2 ;;
	--runtime) RUNTIME=$2; shift 2 ;;
	--ramp) RAMP=$2; shift 2 ;;
	--rounds) ROUNDS=$2; shift 2 ;;
	--quick) QUICK=1; shift ;;
	--conns) CONNS=$2; shift 2 ;;
	--tcp) TCP=1; shift ;;
	--bc-threads) BC_THREADS=$2; shift 2 ;;
	--blockcrypt) BC_SRC=$2; shift 2 ;;
	--workdir) WORKDIR_ARG=$2; shift 2 ;;
	--json) JSON_OUT=$2; shift 2 ;;
	--perf) PERF=1; shift ;;
	--keep) KEEP=1; shift ;;
	--rbd) RBD=1; shift ;;
	--rbd-servers) RBD_SERVERS_ARG=$2; shift 2 ;;
	--osd-size) OSD_SIZE_ARG=$2; shift 2 ;;
	--backing) BACKING_ARG=$2; shift 2 ;;
	--disk-dir) DISK_DIR_ARG=$2; shift 2 ;;
	-h|--help) usage; exit 0 ;;
	*) echo "bench: unknown option: $1 (see --help)" >&2; exit 2 ;;
	esac
done
# Paths given relative to where we were started (we work inside the work directory).
abspath() { case $1 in /*) echo "$1" ;; *) echo "$PWD/$1" ;; esac; }
BC_SRC=$(abspath "$BC_SRC")
die() { echo "bench: $*" >&2; exit 1; }
log() { printf '[%s] %s\n' "$(date +%T)" "$*" >&2; }

# ---------------------------------------------------------------- backings
# backing_offered B: this machine can hold images on B (else why not, on stdout).
backing_offered() {
	case $1 in
	tmpfs) [ -d /dev/shm ] || echo "no /dev/shm" ;;
	ext4 | xfs)
		command -v "mkfs.$1" >/dev/null 2>&1 || echo "no mkfs.$1 (Debian: $([ "$1" = xfs ] && echo xfsprogs || echo e2fsprogs))"
		command -v losetup >/dev/null 2>&1 && [ -e /dev/loop-control ] || echo "no loop devices (losetup, /dev/loop-control)"
		[ "$(id -u)" = 0 ] || echo "not root (mounting a file system needs it)" ;;
	loop) command -v losetup >/dev/null 2>&1 && [ -e /dev/loop-control ] && [ "$(id -u)" = 0 ] ||
		echo "no loop devices (losetup, /dev/loop-control, root)" ;;
	*) echo "unknown backing (tmpfs, ext4, xfs, loop)" ;;
	esac
}
if [ $RBD = 1 ]; then
	[ -z "$BACKING_ARG$DISK_DIR_ARG" ] || die "--backing and --disk-dir do not go with --rbd"
	BACKING=rbd
else
	if [ -z "$BACKING_ARG" ]; then
		BACKINGS=()
		for b in tmpfs ext4 xfs loop; do
			why=$(backing_offered "$b")
			if [ -z "$why" ]; then BACKINGS+=("$b"); else log "note: backing $b not measured: $why"; fi
		done
	else
		IFS=, read -r -a BACKINGS <<<"$BACKING_ARG"
		for b in "${BACKINGS[@]}"; do
			why=$(backing_offered "$b")
			[ -z "$why" ] || die "--backing $b: $why"
		done
	fi
	[ ${#BACKINGS[@]} -gt 0 ] || die "no backing to measure"
	if [ ${#BACKINGS[@]} -gt 1 ]; then
		# One run per backing, one after the other; each its own JSON.
		[ -z "$JSON_OUT" ] || die "--json takes one backing; with several each goes to bench/last-run[-BACKING].json"
		rc=0
		for b in "${BACKINGS[@]}"; do
			log "=== backing $b"
			"$BASH" "${BASH_SOURCE[0]}" "${ORIG_ARGS[@]}" --backing "$b" || { rc=$?; log "backing $b: FAILED (exit $rc)"; }
		done
		exit $rc
	fi
	BACKING=${BACKINGS[0]}
fi
# Each group's numbers go to a file of their own.
[ -n "$JSON_OUT" ] || JSON_OUT=$BENCH_DIR/last-run$([ "$BACKING" = tmpfs ] || echo "-$BACKING").json
JSON_OUT=$(abspath "$JSON_OUT")
[ -z "$WORKDIR_ARG" ] || WORKDIR_ARG=$(abspath "$WORKDIR_ARG")
if [ $QUICK = 1 ]; then
	: "${SIZE_ARG:=256M}" "${RUNTIME:=1}" "${RAMP:=0.5}" "${ROUNDS:=1}"
	VERIFY_MAX=$((32 << 20))
else
	: "${SIZE_ARG:=1G}" "${RUNTIME:=5}" "${RAMP:=1}" "${ROUNDS:=3}"
	VERIFY_MAX=$((256 << 20))
fi

to_bytes() {
	local v=${1^^} m=1
	case $v in
	*K) m=1024; v=${v%K} ;; *M) m=$((1 << 20)); v=${v%M} ;;
	*G) m=$((1 << 30)); v=${v%G} ;; *T) m=$((1 << 40)); v=${v%T} ;;
	esac
	[[ $v =~ ^[0-9]+$ ]] || die "bad size: $1"
	echo $((v * m))
}
SIZE=$(to_bytes "$SIZE_ARG")
[ $((SIZE % (1 << 20))) = 0 ] && [ "$SIZE" -ge $((64 << 20)) ] || die "--size must be a multiple of 1M and at least 64M"
[[ $CONNS =~ ^[1-9][0-9]*$ ]] || die "--conns: a positive integer"
[[ $ROUNDS =~ ^[1-9][0-9]*$ ]] || die "--rounds: a positive integer"
[[ $RUNTIME =~ ^[0-9]+(\.[0-9]+)?$ ]] || die "--runtime: seconds"
[[ $RAMP =~ ^[0-9]+(\.[0-9]+)?$ ]] || die "--ramp: seconds"
[ $((SIZE / CONNS % (1 << 20))) = 0 ] || die "--size must split into 1M-aligned slices per connection"
VERIFY_SIZE=$((SIZE < VERIFY_MAX ? SIZE : VERIFY_MAX))
[ $((VERIFY_SIZE % CONNS)) = 0 ] || die "--conns must divide the verify size"
ms() { awk -v s="$1" 'BEGIN{printf "%d", s * 1000}'; }
RUNTIME_MS=$(ms "$RUNTIME") RAMP_MS=$(ms "$RAMP")
[ "$RUNTIME_MS" -gt 0 ] || die "--runtime must be > 0"
# The servers measured: the tmpfs group, or with --rbd the RBD group (or part of it).
RBD_ALL=(rbd-plain rbd-luks2-librbd bc-rbd)
if [ $RBD = 1 ]; then
	if [ -n "$RBD_SERVERS_ARG" ]; then
		IFS=, read -r -a SERVERS <<<"$RBD_SERVERS_ARG"
		for srv in "${SERVERS[@]}"; do
			[[ " ${RBD_ALL[*]} " == *" $srv "* ]] || die "--rbd-servers: unknown server '$srv' (${RBD_ALL[*]})"
		done
	else
		SERVERS=("${RBD_ALL[@]}")
	fi
	[ ${#SERVERS[@]} -gt 0 ] || die "--rbd-servers: no server"
	BC_SERVERS=()
	[[ " ${SERVERS[*]} " != *" bc-rbd "* ]] || BC_SERVERS=(bc-rbd)
	# Room for the three images (each at most SIZE + 16 MiB) and BlueStore's own data.
	OSD_SIZE=$(to_bytes "${OSD_SIZE_ARG:-$((4 * (SIZE >> 30) + 4))G}")
	[ "$OSD_SIZE" -ge $((10 << 30)) ] || OSD_SIZE=$((10 << 30))
else
	[ -z "$RBD_SERVERS_ARG$OSD_SIZE_ARG" ] || die "--rbd-servers and --osd-size go with --rbd"
	if [ "$BACKING" = tmpfs ]; then
		SERVERS=(nbdkit-null nbdkit-file nbdkit-luks qemu-nbd bc-luks1 bc-luks2-4k)
		BC_SERVERS=(bc-luks1 bc-luks2-4k)
	else
		# On a disk backing: blockcrypt against the plaintext on the same backing.
		SERVERS=(nbdkit-file bc-luks2-4k)
		BC_SERVERS=(bc-luks2-4k)
		DISK_DIR=$(abspath "${DISK_DIR_ARG:-$REPO_DIR/build/bench-disk}")
	fi
fi

# ---------------------------------------------------------------- tools
missing=()
tools=(fio qemu-nbd nbdinfo nbdcopy openssl python3 awk cmp getconf)
if [ $RBD = 1 ]; then
	tools+=(rbd ceph ceph-mon ceph-mgr ceph-osd)
	pkgs="fio qemu-utils qemu-block-extra libnbd-bin openssl python3 ceph ceph-common python3-rbd"
else
	tools+=(nbdkit qemu-img nbdfuse fusermount3 cryptsetup)
	pkgs="fio nbdkit qemu-utils libnbd-bin fuse3 cryptsetup-bin openssl python3"
	[ "$BACKING" = tmpfs ] || { tools+=(losetup mountpoint); pkgs+=" mount util-linux e2fsprogs xfsprogs"; }
fi
for c in "${tools[@]}"; do
	command -v "$c" >/dev/null 2>&1 || missing+=("$c")
done
[ ${#missing[@]} = 0 ] || die "missing tools: ${missing[*]} (Debian: $pkgs); nothing is installed by this script"
fio --enghelp 2>/dev/null | grep -qx '[[:space:]]*nbd' || die "this fio has no nbd ioengine (fio --enghelp)"
if [ $RBD = 1 ]; then
	# Debian's qemu-utils loads its rbd driver from qemu-block-extra.
	! qemu-nbd --image-opts driver=rbd,pool=rbd,image=none,conf=/dev/null 2>&1 </dev/null | grep -q "Unknown driver 'rbd'" ||
		die "qemu-nbd has no rbd block driver (Debian: qemu-block-extra)"
	# python3-rbd is built for Debian's own python3 only.
	/usr/bin/python3 -c 'import rados, rbd; rbd.Image.encryption_load' 2>/dev/null ||
		die "/usr/bin/python3 cannot import rados and rbd with encryption_load (Debian: python3-rbd)"
	[ -x "$REPO_DIR/tests/ceph/cluster.sh" ] || die "no $REPO_DIR/tests/ceph/cluster.sh"
else
	nbdkit file --dump-plugin >/dev/null 2>&1 || die "nbdkit has no file plugin (nbdkit file --dump-plugin)"
	nbdkit null --dump-plugin >/dev/null 2>&1 || die "nbdkit has no null plugin (nbdkit null --dump-plugin)"
	if [ "$BACKING" = tmpfs ]; then
		nbdkit file --filter=luks --help >/dev/null 2>&1 || die "nbdkit has no luks filter (nbdkit file --filter=luks --help)"
		[ -e /dev/fuse ] || die "/dev/fuse is missing (FUSE jobs need it)"
	fi
fi
[ -x "$BC_SRC" ] || die "blockcrypt binary not found: $BC_SRC (build it, or --blockcrypt PATH)"
if [ $PERF = 1 ] && ! command -v perf >/dev/null 2>&1; then die "--perf: perf is not installed"; fi
# Optional: with perf, count the servers' context switches per job.
PERF_STAT=0
if command -v perf >/dev/null 2>&1 && perf stat -x, -e context-switches -o /dev/null -- true >/dev/null 2>&1; then
	PERF_STAT=1
fi
[ "$(id -u)" = 0 ] || log "warning: not root; FUSE mounts and mlockall may need root"

# ---------------------------------------------------------------- work directory
if [ -n "$WORKDIR_ARG" ]; then
	mkdir -p "$WORKDIR_ARG"
	W=$(mktemp -d "$WORKDIR_ARG/blockcrypt-bench.XXXXXX")
else
	[ -d /dev/shm ] || die "no /dev/shm; give --workdir on a tmpfs or page-cached filesystem"
	W=$(mktemp -d /dev/shm/blockcrypt-bench.XXXXXX)
fi
W=$(cd "$W" && pwd)
if [ $RBD = 1 ]; then
	# The OSD's block file: three images and BlueStore's database, written sparsely.
	need=$((SIZE * 3 + (2 << 30))) what="the OSD's three images"
elif [ "$BACKING" != tmpfs ]; then
	need=$((64 << 20)) what="logs and sockets"
else
	need=$((SIZE * 5 + (64 << 20))) what="5 images"
fi
avail=$(($(df -Pk "$W" | awk 'NR==2{print $4}') * 1024))
if [ "$avail" -lt "$need" ]; then
	rmdir "$W"
	die "$W: $((avail >> 20)) MiB free, need $((need >> 20)) MiB ($what); use --workdir or a smaller --size"
fi
fstype=$(df -PT "$W" | awk 'NR==2{print $2}')
[ "$fstype" = tmpfs ] || [ "$BACKING" != tmpfs ] || log "note: $W is on $fstype, not tmpfs; images stay page-cached only if memory allows"

cd "$W"                              # fio and friends drop their files here, nowhere else
R=$W/results
mkdir -p "$R" "$W/run" "$W/sock" "$W/mnt-bc" "$W/mnt-nbdfuse"
export BLOCKCRYPT_RUN_DIR=$W/run     # private: detach/list here only see our volumes
# A copy (with its library): the tree's binary may be rebuilt during the run.
BC=$(copy_blockcrypt "$BC_SRC" "$W/blockcrypt") || die "cannot copy $BC_SRC"
PASS=$W/pass
printf 'blockcrypt bench passphrase' >"$PASS"
chmod 600 "$PASS"

# ---------------------------------------------------------------- cleanup
STARTED_PIDS=()     # nbdkit / qemu-nbd / nbdfuse / samplers we started and that still run
LOOPS=()            # loop devices we set up (disk backings)
DISK_MNT=""         # the file system we mounted (ext4, xfs on a loop device)
DISK_W=""           # our directory in the disk directory
disk_teardown() {
	local l
	[ -z "$DISK_MNT" ] || { umount "$DISK_MNT" 2>/dev/null || umount -l "$DISK_MNT"; DISK_MNT=""; }
	for l in "${LOOPS[@]}"; do losetup -d "$l" 2>/dev/null; done
	LOOPS=()
	[ -z "$DISK_W" ] || rm -rf "$DISK_W"
	DISK_W=""
}
ATTACHED=()         # blockcrypt names attached in our private run dir
CEPH_DIR=""         # with --rbd: the Ceph cluster we started, while it runs
OSD_PID=""          # and its OSD
cleanup() {
	local rc=$? p n m
	set +e
	cd /
	# nbdfuse goes by unmounting; blockcrypt's FUSE mount goes with its detach.
	mountpoint -q "$W/mnt-nbdfuse" 2>/dev/null && fusermount3 -u "$W/mnt-nbdfuse" 2>/dev/null
	for n in "${ATTACHED[@]}"; do "$BC" detach "$n" --force >/dev/null 2>&1; done
	for p in "${STARTED_PIDS[@]}"; do kill "$p" 2>/dev/null; done
	for m in "$W/mnt-nbdfuse" "$W/mnt-bc"; do mountpoint -q "$m" 2>/dev/null && fusermount3 -uz "$m" 2>/dev/null; done
	# The cluster goes after its clients.
	[ -z "$CEPH_DIR" ] || "$REPO_DIR/tests/ceph/cluster.sh" stop "$CEPH_DIR"
	# Disk backings: loop devices and mounts after their servers, then the files.
	disk_teardown
	if [ $KEEP = 1 ] || [ $rc != 0 ]; then
		# Keep the logs and fio output; the images are big, drop them.
		rm -f "$W"/*.img "$W/ceph/osd-block"
		echo "bench: work directory kept: $W" >&2
	else
		rm -rf "$W"
	fi
	exit $rc
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# stop_pid PID: end a process we started (by its id), wait for it, forget it.
stop_pid() {
	local p=$1 i keep=()
	kill "$p" 2>/dev/null || true
	for ((i = 0; i < 200; i++)); do kill -0 "$p" 2>/dev/null || break; sleep 0.05; done
	wait "$p" 2>/dev/null || true
	for i in "${STARTED_PIDS[@]}"; do [ "$i" = "$p" ] || keep+=("$i"); done
	STARTED_PIDS=("${keep[@]}")
}

meta() { printf '%s\t%s\n' "$1" "$2" >>"$R/meta.tsv"; }

T0=$(date +%s)
log "work directory $W ($fstype), size $((SIZE >> 20)) MiB, runtime ${RUNTIME}s + ramp ${RAMP}s, $CONNS connection(s) per job"

meta date "$(date -Is)"
meta host "$(hostname)"
meta nproc "$(nproc)"
meta cpu "$(awk -F': *' '/^model name/{print $2; exit}' /proc/cpuinfo)"
meta cpu_flags_aes "$(grep -qw aes /proc/cpuinfo && echo yes || echo no)"
meta cpu_flags_vaes "$(grep -qw vaes /proc/cpuinfo && echo yes || echo no)"
meta mem_total_kib "$(awk '/^MemTotal/{print $2}' /proc/meminfo)"
meta kernel "$(uname -r)"
meta loadavg_start "$(cut -d' ' -f1-3 /proc/loadavg)"
meta os "$(. /etc/os-release && echo "$PRETTY_NAME")"
meta workdir_fs "$fstype"
meta group "$BACKING"
meta servers "${SERVERS[*]}"
meta size_bytes "$SIZE"
meta runtime_s "$RUNTIME"
meta ramp_s "$RAMP"
meta rounds "$ROUNDS"
meta conns "$CONNS"
meta transport "$([ $TCP = 1 ] && echo "TCP, 127.0.0.1" || echo "Unix socket")"
meta quick "$QUICK"
meta verify_size_bytes "$VERIFY_SIZE"
meta bc_threads "${BC_THREADS:-default}"
meta perf_stat "$PERF_STAT"
meta blockcrypt_binary "$BC_SRC"
meta blockcrypt_sha256 "$(sha256sum "$BC" | cut -d' ' -f1)"
meta blockcrypt_git "$(git -C "$REPO_DIR" describe --always --dirty 2>/dev/null || echo unknown)"
meta fio_version "$(fio --version)"
[ $RBD = 1 ] || meta nbdkit_version "$(nbdkit --version | head -1)"
meta qemu_nbd_version "$(qemu-nbd --version | head -1)"
meta libnbd_version "$(nbdinfo --version 2>&1 | tail -1)"
meta openssl_version "$(openssl version)"
if [ $RBD = 1 ]; then
	meta ceph_version "$(ceph --version)"
	meta osd_size_bytes "$OSD_SIZE"
else
	meta cryptsetup_version "$(cryptsetup --version)"
fi

# ---------------------------------------------------------------- raw cipher speed
log "openssl speed -evp aes-256-xts (4096-byte blocks, one core)"
openssl speed -evp aes-256-xts -seconds 2 -bytes 4096 >"$R/openssl-enc.txt" 2>/dev/null || die "openssl speed failed"
openssl speed -evp aes-256-xts -decrypt -seconds 2 -bytes 4096 >"$R/openssl-dec.txt" 2>/dev/null || die "openssl speed -decrypt failed"
for d in enc dec; do
	k=$(awk 'tolower($1) == "aes-256-xts" {v=$2} END{sub(/k$/, "", v); print v}' "$R/openssl-$d.txt")
	[ -n "$k" ] || die "cannot parse openssl speed output ($R/openssl-$d.txt)"
	meta "openssl_xts_${d}_4k_kBps" "$k"
done

# The cipher speed of what blockcrypt itself runs (its sector engine, per
# sector, whichever path it picks on this CPU), from the same build.
ENGINE_SPEED=$(dirname "$BC_SRC")/../bench-engine-speed
if [ -x "$ENGINE_SPEED" ]; then
	log "blockcrypt sector engine speed (bench-engine-speed, one core)"
	"$ENGINE_SPEED" 0.3 >"$R/engine-speed.txt" 2>&1 || die "bench-engine-speed failed: $(tail -3 "$R/engine-speed.txt")"
	# The first line per sector size and direction is the engine's default path.
	while read -r ss path dir mibs; do
		meta "engine_xts_${ss}_${dir}_MiBps" "$mibs"
		meta "engine_xts_path" "$path"
	done < <(awk '$1 == "aes-xts-plain64" && $2 != "-" && !seen[$2 "/" $4]++ {print $2, $3, $4, $5}' "$R/engine-speed.txt")
else
	log "note: no bench-engine-speed next to $BC_SRC: the sector engine's own speed is not measured"
fi

# What storing a MiB costs on tmpfs: one pwrite(2) of 1 MiB into pages
# the file already has (fio psync, CPU per MiB).  Every encrypting server
# pays it on seq write and nbdkit-null does not; with the cipher's own
# cost it bounds what seq write can reach against nbdkit-null.
if [ "$BACKING" = tmpfs ] && [ $RBD = 0 ]; then
	log "page-cache write cost (fio psync 1M into $W)"
	fio --name=pwrite --filename="$W/pwrite-cost.img" --size=256M --ioengine=psync --rw=write --bs=1M \
		--overwrite=1 --time_based --runtime=2 --output-format=json --output="$R/pwrite-cost.json" >/dev/null 2>&1 ||
		die "fio psync write into $W failed"
	rm -f "$W/pwrite-cost.img"
	meta pwrite_1M_us_per_MiB "$(python3 -c 'import json, sys
j = json.load(open(sys.argv[1]))["jobs"][0]
print("%.1f" % ((j["usr_cpu"] + j["sys_cpu"]) / 100 * 1e6 / (j["write"]["bw"] / 1024)))' "$R/pwrite-cost.json")"
fi

# ---------------------------------------------------------------- images
# The plaintext is a deterministic pseudo-random stream (AES-CTR of zeros), so
# what a server returns can be compared with it without keeping a copy.
gen_plain() {
	head -c "$SIZE" /dev/zero |
		openssl enc -aes-128-ctr -nosalt -K 000102030405060708090a0b0c0d0e0f -iv 0 2>/dev/null
}
tmpfs_images() {
	log "creating images: plaintext, LUKS1 copy (cryptsetup luksFormat --type luks1 + blockcrypt write), LUKS2 4096-byte sectors"
	gen_plain >"$W/plain.img"
	[ "$(stat -c %s "$W/plain.img")" = "$SIZE" ] || die "plaintext image has the wrong size"
	# LUKS1: 2 MiB header + key material (payload offset 4096 sectors), aes-xts-plain64, 512-bit key.
	truncate -s $((SIZE + (2 << 20))) "$W/luks1.img"
	cryptsetup luksFormat --type luks1 --batch-mode --cipher aes-xts-plain64 --key-size 512 --hash sha256 \
		--pbkdf-force-iterations 1000 --key-file "$PASS" "$W/luks1.img" >"$R/luksformat.log" 2>&1 ||
		die "cryptsetup luksFormat failed: $(cat "$R/luksformat.log")"
	local off
	off=$(cryptsetup luksDump "$W/luks1.img" | awk '/^Payload offset:/{print $3 * 512}')
	[ $(($(stat -c %s "$W/luks1.img") - off)) = "$SIZE" ] || die "LUKS1 data area is not $SIZE bytes (payload offset $off)"
	"$BC" write "$W/luks1.img" --key-file "$PASS" --batch <"$W/plain.img" >/dev/null 2>"$R/write-luks1.log" ||
		die "blockcrypt write (LUKS1) failed: $(cat "$R/write-luks1.log")"
	# One copy per LUKS1 server: all of them serve at the same time.
	for c in nbdkit qemu; do cp --sparse=never "$W/luks1.img" "$W/luks1-$c.img"; done
	bc_format "$W/luks2.img" luks2
	"$BC" write "$W/luks2.img" --key-file "$PASS" --batch <"$W/plain.img" >/dev/null 2>"$R/write-luks2.log" ||
		die "blockcrypt write (LUKS2) failed: $(cat "$R/write-luks2.log")"
}

# disk_images: the plaintext and a LUKS2 copy on the disk backing
# ($BACKING), in our own directory of the disk directory; IMG_PLAIN and
# IMG_LUKS2 are what the servers get (files, or loop devices over them).
disk_images() {
	local fs dir dev need avail
	mkdir -p "$DISK_DIR" || die "cannot create $DISK_DIR"
	DISK_W=$(mktemp -d "$DISK_DIR/bench.XXXXXX") || die "cannot create a directory in $DISK_DIR"
	fs=$(df -PT "$DISK_W" | awk 'NR==2{print $2}')
	need=$((2 * SIZE + (1 << 30)))
	avail=$(($(df -Pk "$DISK_W" | awk 'NR==2{print $4}') * 1024))
	[ "$avail" -ge "$need" ] || die "$DISK_W: $((avail >> 20)) MiB free, need $((need >> 20)) MiB; use --disk-dir or a smaller --size"
	[ "$fs" != tmpfs ] || log "note: the disk directory $DISK_DIR is on tmpfs: this measures tmpfs again"
	dir=$DISK_W
	case $BACKING in
	ext4 | xfs)
		if [ "$fs" != "$BACKING" ]; then
			# A fresh file system of that kind on a loop device over a file on the disk.
			truncate -s "$need" "$DISK_W/fs.img"
			dev=$(losetup -f --show "$DISK_W/fs.img") || die "losetup failed"
			LOOPS+=("$dev")
			if [ "$BACKING" = ext4 ]; then mkfs.ext4 -q -F "$dev"; else mkfs.xfs -q -f "$dev"; fi >"$R/mkfs.log" 2>&1 ||
				die "mkfs.$BACKING failed: $(cat "$R/mkfs.log")"
			mkdir "$DISK_W/mnt"
			mount "$dev" "$DISK_W/mnt" || die "cannot mount the new $BACKING file system"
			DISK_MNT=$DISK_W/mnt dir=$DISK_W/mnt
			meta backing_how "a new $BACKING on loop device $dev over a file on $fs ($DISK_DIR)"
		else
			meta backing_how "files in $DISK_DIR ($fs on $(findmnt -no SOURCE -T "$DISK_W"))"
		fi
		meta backing_mount_options "$(findmnt -no OPTIONS -T "$dir")" ;;
	loop) meta backing_how "loop devices (buffered) over files in $DISK_DIR ($fs on $(findmnt -no SOURCE -T "$DISK_W"))" ;;
	esac
	log "creating images in $dir: plaintext, LUKS2 4096-byte sectors (blockcrypt format + write)"
	gen_plain >"$dir/plain.img"
	[ "$(stat -c %s "$dir/plain.img")" = "$SIZE" ] || die "plaintext image has the wrong size"
	bc_format "$dir/luks2.img" luks2
	"$BC" write "$dir/luks2.img" --key-file "$PASS" --batch <"$dir/plain.img" >/dev/null 2>"$R/write-luks2.log" ||
		die "blockcrypt write (LUKS2) failed: $(cat "$R/write-luks2.log")"
	IMG_PLAIN=$dir/plain.img IMG_LUKS2=$dir/luks2.img
	if [ "$BACKING" = loop ]; then
		IMG_PLAIN=$(losetup -f --show "$dir/plain.img") || die "losetup failed"
		LOOPS+=("$IMG_PLAIN")
		IMG_LUKS2=$(losetup -f --show "$dir/luks2.img") || die "losetup failed"
		LOOPS+=("$IMG_LUKS2")
	fi
	meta backing_fs "$fs"
	meta image_plain "$IMG_PLAIN"
	meta image_luks2 "$IMG_LUKS2"
	# What creating them left dirty goes to the disk now, not during the
	# jobs; then out of the page cache, so both servers start cold.  The
	# cache's folios keep the shape of the writes that made them (openssl's
	# small ones for the plaintext, blockcrypt write's 64 KiB pieces), and
	# on ext4 a 4k write costs a walk over every block of its folio: left
	# in place, the images would carry the tools' shapes, not the servers'
	# (RESULTS.md, #22 on ext4).
	sync
	/usr/bin/python3 - "$dir/plain.img" "$dir/luks2.img" <<'PY' || die "cannot drop the images from the page cache"
import os, sys
for path in sys.argv[1:]:
    fd = os.open(path, os.O_RDONLY)
    os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
    os.close(fd)
PY
}

# bc_format BACKING TAG: LUKS2, 4096-byte sectors, 16 MiB header (so SIZE of
# data); a cheap PBKDF2 slot (unlock cost is not what we measure).
bc_format() {
	"$BC" format "$1" --batch --key-file "$PASS" --size $((SIZE + (16 << 20))) --sector-size 4096 \
		--pbkdf pbkdf2 --pbkdf-force-iterations 1000 --no-wipe --no-progress >/dev/null 2>"$R/format-$2.log" ||
		die "blockcrypt format $1 failed: $(cat "$R/format-$2.log")"
}

# ---------------------------------------------------------------- RBD: the cluster and its images
# rbd_start: one throw-away cluster in $W/ceph, and the bench's ceph.conf
# ($W/ceph.conf): the cluster's, plus, for every client, no librbd cache
# and an admin socket per process (to read each server's settings back).
rbd_start() {
	log "starting a Ceph cluster in $W/ceph (OSD block file $((OSD_SIZE >> 30)) GiB, sparse)"
	"$REPO_DIR/tests/ceph/cluster.sh" start "$W/ceph" --osd-size "$OSD_SIZE" >"$R/ceph.env" 2>"$R/ceph-start.log" ||
		die "tests/ceph/cluster.sh start failed: $(cat "$R/ceph-start.log")"
	CEPH_DIR=$W/ceph
	local c
	c=$(sed -n 's/^CEPH_CONF=//p' "$R/ceph.env")
	[ -f "$c" ] || die "tests/ceph/cluster.sh start printed no CEPH_CONF: $(cat "$R/ceph.env")"
	{
		cat "$c"
		printf '\n# bench/run.sh: the same librbd settings for every server\n[client]\n'
		printf 'rbd cache = false\nadmin socket = %s/run/$name.$pid.asok\n' "$CEPH_DIR"
	} >"$W/ceph.conf"
	export CEPH_CONF=$W/ceph.conf         # rbd, blockcrypt and python3-rbd find the cluster through it
	OSD_PID=$(cat "$CEPH_DIR/run/osd.0.pid")
	meta ceph_setup_s $(($(date +%s) - T0))
}

# rbd_fill IMAGE [luks2]: the plaintext into IMAGE through librbd itself
# (python3-rbd; with luks2, through librbd's encryption, the passphrase
# from $PASS), 4 MiB writes, 8 in flight.
rbd_fill() {
	/usr/bin/python3 - "$CEPH_CONF" "$1" "${2:-}" "$PASS" "$SIZE" 3< <(gen_plain) <<'PY' ||
import os, sys, threading, rados, rbd
conf, name, fmt, passfile, size = sys.argv[1:6]
size, chunk, window = int(size), 4 << 20, threading.Semaphore(8)
errors = []
def done(comp):
    if comp.get_return_value() < 0:
        errors.append(comp.get_return_value())
    window.release()
src = os.fdopen(3, "rb")
with rados.Rados(conffile=conf) as cluster, cluster.open_ioctx("rbd") as io, rbd.Image(io, name) as img:
    if fmt == "luks2":
        with open(passfile) as f:
            img.encryption_load(rbd.RBD_ENCRYPTION_FORMAT_LUKS2, f.read())
    if img.size() != size:
        sys.exit("%s: data size %d, expected %d" % (name, img.size(), size))
    off = 0
    while off < size:
        data = src.read(chunk)
        if len(data) != chunk:
            sys.exit("%s: short plaintext at %d" % (name, off))
        window.acquire()
        img.aio_write(data, off, done)
        off += chunk
    for _ in range(8):
        window.acquire()
    img.flush()
if errors:
    sys.exit("%s: write failed: %d" % (name, errors[0]))
PY
		die "filling RBD image $1 failed"
}

rbd_images() {
	local srv img
	for srv in "${SERVERS[@]}"; do
		img=${RBD_IMAGE[$srv]}
		case $srv in
		rbd-plain)
			log "RBD image $img: plain, $((SIZE >> 20)) MiB, filled through librbd"
			rbd create --size "$((SIZE >> 20))M" "rbd/$img" 2>"$R/create-$img.log" || die "rbd create $img failed: $(cat "$R/create-$img.log")"
			rbd_fill "$img" ;;
		rbd-luks2-librbd)
			log "RBD image $img: rbd encryption format luks2, filled through librbd's encryption"
			rbd create --size "$(((SIZE >> 20) + 16))M" "rbd/$img" 2>"$R/create-$img.log" || die "rbd create $img failed: $(cat "$R/create-$img.log")"
			rbd encryption format "rbd/$img" luks2 "$PASS" 2>>"$R/create-$img.log" ||
				die "rbd encryption format $img luks2 failed: $(cat "$R/create-$img.log")"
			rbd_fill "$img" luks2 ;;
		bc-rbd)
			log "RBD image $img: blockcrypt format rbd:rbd/$img (LUKS2, 4096-byte sectors) + blockcrypt write"
			bc_format "rbd:rbd/$img" "$img"
			gen_plain | "$BC" write "rbd:rbd/$img" --key-file "$PASS" --batch >/dev/null 2>"$R/write-$img.log" ||
				die "blockcrypt write rbd:rbd/$img failed: $(cat "$R/write-$img.log")" ;;
		esac
		meta "rbd_info.$srv" "$(rbd info --format json "rbd/$img" | tr -d '\n')"
	done
}

declare -A RBD_IMAGE=([rbd-plain]=bench-plain [rbd-luks2-librbd]=bench-luks2 [bc-rbd]=bench-bc)
if [ $RBD = 1 ]; then
	rbd_start
	rbd_images
elif [ "$BACKING" = tmpfs ]; then
	tmpfs_images
else
	disk_images
fi
meta setup_s $(($(date +%s) - T0))

# ---------------------------------------------------------------- measurement helpers
CLK_TCK=$(getconf CLK_TCK)
# cpu_ticks PID...: utime+stime of all threads of the processes, in clock ticks.
cpu_ticks() {
	local p t=0 v
	for p in "$@"; do
		v=$(awk '{print $14 + $15}' "/proc/$p/stat" 2>/dev/null) || v=0
		t=$((t + v))
	done
	echo "$t"
}
# thread_ticks PID: "tid comm ticks" per thread.
thread_ticks() {
	local f
	for f in /proc/"$1"/task/*/stat; do
		awk '{ s = $0; sub(/^[^(]*\(/, "", s); c = s; sub(/\).*$/, "", c); sub(/^.*\) /, "", s);
		       split(s, a, " "); print FILENAME, c, a[12] + a[13] }' "$f" 2>/dev/null
	done | sed 's|^/proc/[0-9]*/task/\([0-9]*\)/stat|\1|' | tr ' ' '\t'
}

# Memory of every server, sampled every 100 ms while it serves, by one
# process (no fork per sample): "EPOCH VmRSS_KiB" lines in $R/SERVER.rss.
SAMPLER=""
start_sampler() { # SERVER=PID...
	python3 - "$R" "$@" <<'PY' &
import os, sys, time
rdir, pairs = sys.argv[1], [a.split("=", 1) for a in sys.argv[2:]]
outs = {srv: open(os.path.join(rdir, srv + ".rss"), "w", buffering=1) for srv, _ in pairs}
while pairs:
    now = time.time()
    for srv, pid in list(pairs):
        try:
            with open("/proc/%s/status" % pid) as f:
                kib = next(int(l.split()[1]) for l in f if l.startswith("VmRSS:"))
        except (OSError, StopIteration):
            pairs.remove([srv, pid])  # exited (or a zombie)
            continue
        outs[srv].write("%.3f %d\n" % (now, kib))
    time.sleep(0.1)
PY
	SAMPLER=$!; STARTED_PIDS+=("$SAMPLER")
}
stop_sampler() { # SERVER...
	local srv
	stop_pid "$SAMPLER"
	SAMPLER=""
	for srv in "$@"; do
		meta "rss.$srv.rss_peak_sampled_kib" "$(awk '$2 > m {m = $2} END{print m + 0}' "$R/$srv.rss")"
		meta "rss.$srv.samples" "$(wc -l <"$R/$srv.rss")"
	done
}
status_kib() { awk -v k="$2:" '$1 == k {print $2}' "/proc/$1/status"; }
# cpu_steal: "steal total" jiffies of the whole machine (hypervisor steal).
cpu_steal() { awk '$1 == "cpu" { t = 0; for (i = 2; i <= 9; i++) t += $i; print $9, t; exit }' /proc/stat; }

# run_fio SERVER JOB CPU_PIDS FIO_ARGS...: one measured fio job, round
# $ROUND.  The CPU time of CPU_PIDS (comma-separated: the serving
# processes) and the machine's steal time are recorded.  With BC_PID set
# (a blockcrypt daemon), its threads' CPU too, and with --perf a profile
# (first round only).  With OSD_PID set (--rbd), the Ceph OSD's CPU too.
BC_PID="" ROUND=1
run_fio() {
	local srv=$1 job=$2 pids=$3; shift 3
	local tag="$srv.$job.r$ROUND" t0 t1 c0 c1 s0 s1 o0=0 o1=0 perf_pid="" stat_pid="" window
	local out="$R/$tag.json"
	local -a pl
	IFS=, read -r -a pl <<<"$pids"
	window=$(awk -v a="$RUNTIME" -v b="$RAMP" 'BEGIN{print a + b}')
	[ -n "$BC_PID" ] && thread_ticks "$BC_PID" >"$R/$tag.threads0"
	if [ $PERF = 1 ] && [ "$ROUND" = 1 ] && [ -n "$BC_PID" ] && { [ "$job" = seqwrite ] || [ "$job" = randread ]; }; then
		perf record -F 499 -g -p "$BC_PID" -o "$W/perf-$srv-$job.data" -- sleep "$window" >/dev/null 2>&1 &
		perf_pid=$!
	fi
	if [ $PERF_STAT = 1 ]; then
		perf stat -x, -e context-switches,task-clock -p "$pids" -o "$R/$tag.perfstat" \
			-- sleep "$window" >/dev/null 2>&1 &
		stat_pid=$!
	fi
	c0=$(cpu_ticks "${pl[@]}")
	[ -z "$OSD_PID" ] || o0=$(cpu_ticks "$OSD_PID")
	s0=$(cpu_steal)
	t0=$(date +%s.%N)
	fio --output-format=json --output="$out" --name="$job" --group_reporting \
		--runtime="${RUNTIME_MS}ms" --ramp_time="${RAMP_MS}ms" --time_based "$@" >"$R/$tag.log" 2>&1 ||
		die "fio $job against $srv failed: $(tail -5 "$R/$tag.log")"
	t1=$(date +%s.%N)
	s1=$(cpu_steal)
	c1=$(cpu_ticks "${pl[@]}")
	[ -z "$OSD_PID" ] || o1=$(cpu_ticks "$OSD_PID")
	[ -n "$BC_PID" ] && thread_ticks "$BC_PID" >"$R/$tag.threads1"
	[ -n "$stat_pid" ] && { wait "$stat_pid" || true; }
	if [ -n "$perf_pid" ]; then
		wait "$perf_pid" || true
		perf report -i "$W/perf-$srv-$job.data" --stdio --no-children -g none --sort dso,symbol --percent-limit 1 \
			>"$R/perf-$srv-$job.txt" 2>/dev/null || true
	fi
	printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$srv" "$job" "$out" \
		"$(awk -v c=$((c1 - c0)) -v hz="$CLK_TCK" -v a="$t0" -v b="$t1" 'BEGIN{printf "%.1f", 100 * c / hz / (b - a)}')" \
		"$(awk -v a="$t0" -v b="$t1" 'BEGIN{printf "%.2f", b - a}')" "$t0" "$t1" "$ROUND" \
		"$(awk -v a="$s0" -v b="$s1" 'BEGIN{split(a, x, " "); split(b, y, " "); d = y[2] - x[2];
			printf "%.1f", (d > 0 ? 100 * (y[1] - x[1]) / d : 0)}')" \
		"$([ -z "$OSD_PID" ] || awk -v c=$((o1 - o0)) -v hz="$CLK_TCK" -v a="$t0" -v b="$t1" 'BEGIN{printf "%.1f", 100 * c / hz / (b - a)}')" \
		>>"$R/manifest.tsv"
}

# NBD_JOBS: name, label, fio arguments (besides the connection ones).
NBD_JOBS=(seqread seqwrite randread randwrite randread-qd1 randwrite-qd1)
declare -A JOB_LABEL=([seqread]="seq read 1M qd32" [seqwrite]="seq write 1M qd32" [randread]="rand read 4k qd32"
	[randwrite]="rand write 4k qd32" [randread-qd1]="rand read 4k qd1 (latency)"
	[randwrite-qd1]="rand write 4k qd1 (latency)")
declare -A JOB_ARGS=([seqread]="--rw=read --bs=1M --iodepth=32" [seqwrite]="--rw=write --bs=1M --iodepth=32"
	[randread]="--rw=randread --bs=4k --iodepth=32 --norandommap --randrepeat=0"
	[randwrite]="--rw=randwrite --bs=4k --iodepth=32 --norandommap --randrepeat=0"
	[randread-qd1]="--rw=randread --bs=4k --iodepth=1 --norandommap --randrepeat=0"
	[randwrite-qd1]="--rw=randwrite --bs=4k --iodepth=1 --norandommap --randrepeat=0")

# nbd_job SERVER JOB: one of the NBD jobs against SERVER's export.
nbd_job() {
	local srv=$1 job=$2 slice=$((SIZE / CONNS))
	local -a args
	read -r -a args <<<"${JOB_ARGS[$job]}"
	BC_PID=${BC_PIDS[$srv]:-}
	log "round $ROUND: $srv: ${JOB_LABEL[$job]}"
	run_fio "$srv" "$job" "${SRV_PIDS[$srv]}" --ioengine=nbd "--uri=${SRV_URI[$srv]}" --numjobs="$CONNS" \
		--size="$slice" --offset_increment="$slice" "${args[@]}"
	BC_PID=""
}

# fuse_job ROW FILE CPU_PIDS JOB: seq read or write 1M on a FUSE file.
fuse_job() {
	local row=$1 file=$2 pids=$3 job=$4 direct=1 engine=libaio
	if ! dd if="$file" of=/dev/null bs=1M count=1 iflag=direct status=none 2>/dev/null; then
		direct=0 engine=psync
	fi
	if [ "$ROUND" = 1 ] && [ "$job" = seqread ]; then
		[ $direct = 1 ] || log "$row: $file does not support O_DIRECT; buffered psync instead"
		meta "fuse_direct.$row" "$direct"
		meta "fuse_engine.$row" "$engine"
	fi
	local -a common=(--filename="$file" --ioengine="$engine" --direct="$direct" --numjobs=1 --size="$SIZE")
	[ $engine = libaio ] && common+=(--iodepth=8)
	log "round $ROUND: $row: FUSE ${JOB_LABEL[$job]%% qd32} ($engine, direct=$direct)"
	run_fio "$row" "$job" "$pids" "${common[@]}" --rw="$([ "$job" = seqread ] && echo read || echo write)" --bs=1M
}

# readback SERVER URI: the whole export must equal the plaintext (before any write job).
readback() {
	local t0
	t0=$(date +%s.%N)
	if cmp -s <(nbdcopy --no-extents "$2" - 2>"$R/$1.nbdcopy.err") <(gen_plain); then
		meta "window.$1.readback" "$t0 $(date +%s.%N)"
		meta "readback.$1" ok
		log "$1: readback of the whole export matches the plaintext ($(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN{printf "%.1f", b - a}') s)"
	else
		meta "readback.$1" MISMATCH
		die "$1: the served data differs from the plaintext ($(cat "$R/$1.nbdcopy.err"))"
	fi
}

check_size() { # SERVER URI
	local s
	s=$(nbdinfo --size "$2" 2>"$R/$1.nbdinfo.err") || die "$1: nbdinfo failed: $(cat "$R/$1.nbdinfo.err")"
	[ "$s" = "$SIZE" ] || die "$1: export size $s, expected $SIZE"
}

wait_socket() { # SOCKET PID
	local i
	for ((i = 0; i < 200; i++)); do
		[ -S "$1" ] && return 0
		kill -0 "$2" 2>/dev/null || return 1
		sleep 0.05
	done
	return 1
}

# ---------------------------------------------------------------- servers
# All of them start now and serve until the end; between their turns they
# are idle.
S=$W/sock
declare -A SRV_PIDS SRV_URI BC_PIDS

wait_file() { # FILE: it exists and is not empty (within 10 s)
	local i
	for ((i = 0; i < 200; i++)); do [ -s "$1" ] && return 0; sleep 0.05; done
	return 1
}

# With --tcp every server listens on its own port of 127.0.0.1: PORT[SERVER].
declare -A PORT
if [ $TCP = 1 ]; then
	port=$((20000 + $$ % 20000))
	for srv in "${SERVERS[@]}"; do PORT[$srv]=$port; port=$((port + 1)); done
fi
# wait_listen SERVER PID: the server's socket or TCP port accepts connections.
wait_listen() {
	local i
	[ $TCP = 1 ] || { wait_socket "$S/$1.sock" "$2"; return; }
	for ((i = 0; i < 200; i++)); do
		(exec 3<>"/dev/tcp/127.0.0.1/${PORT[$1]}") 2>/dev/null && return 0
		kill -0 "$2" 2>/dev/null || return 1
		sleep 0.05
	done
	return 1
}

# nbdkit_server SERVER PLUGIN [plugin and filter args...]
nbdkit_server() {
	local srv=$1; shift
	local -a listen=(-U "$S/$srv.sock")
	[ $TCP = 0 ] || listen=(-i 127.0.0.1 -p "${PORT[$srv]}")
	nbdkit "${listen[@]}" -P "$W/$srv.pid" "$@" 2>"$R/$srv.log" ||
		die "$srv failed: $(cat "$R/$srv.log")"
	# nbdkit's parent may exit before the background child writes the pid file.
	wait_file "$W/$srv.pid" || die "$srv: no pid file $W/$srv.pid: $(cat "$R/$srv.log")"
	SRV_PIDS[$srv]=$(cat "$W/$srv.pid"); STARTED_PIDS+=("${SRV_PIDS[$srv]}")
	wait_listen "$srv" "${SRV_PIDS[$srv]}" || die "$srv: not listening"
	SRV_URI[$srv]="nbd+unix:///?socket=$S/$srv.sock"
	[ $TCP = 0 ] || SRV_URI[$srv]="nbd://127.0.0.1:${PORT[$srv]}/"
}
# qemu_server SERVER [qemu-nbd args...]: qemu-nbd, forked, serving until we stop it.
qemu_server() {
	local srv=$1; shift
	local -a listen=(-k "$S/$srv.sock")
	[ $TCP = 0 ] || listen=(-b 127.0.0.1 -p "${PORT[$srv]}")
	qemu-nbd --fork --persistent --shared=$((CONNS + 8)) --pid-file="$W/$srv.pid" "${listen[@]}" "$@" \
		>"$R/$srv.log" 2>&1 || die "$srv (qemu-nbd) failed: $(cat "$R/$srv.log")"
	wait_file "$W/$srv.pid" || die "$srv: no pid file: $(cat "$R/$srv.log")"
	SRV_PIDS[$srv]=$(cat "$W/$srv.pid"); STARTED_PIDS+=("${SRV_PIDS[$srv]}")
	wait_listen "$srv" "${SRV_PIDS[$srv]}" || die "$srv: not listening"
	SRV_URI[$srv]="nbd+unix:///?socket=$S/$srv.sock"
	[ $TCP = 0 ] || SRV_URI[$srv]="nbd://127.0.0.1:${PORT[$srv]}/"
}

bc_server() { # SERVER IMAGE [attach args...]
	local srv=$1 img=$2 pid; shift 2
	local -a extra=("$@")
	[ -n "$BC_THREADS" ] && extra+=(--threads "$BC_THREADS")
	[ $TCP = 0 ] || extra+=(--listen "127.0.0.1:${PORT[$srv]}")
	"$BC" attach "$img" --key-file "$PASS" --batch --name "$srv" "${extra[@]}" >"$R/$srv.attach.log" 2>&1 ||
		die "blockcrypt attach $srv failed: $(cat "$R/$srv.attach.log")"
	ATTACHED+=("$srv")
	pid=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["pid"])' "$BLOCKCRYPT_RUN_DIR/$srv.json")
	[ -r "/proc/$pid/status" ] || die "$srv: daemon pid $pid not running"
	SRV_PIDS[$srv]=$pid BC_PIDS[$srv]=$pid
	SRV_URI[$srv]="nbd+unix:///$srv?socket=$BLOCKCRYPT_RUN_DIR/$srv.sock"
	[ $TCP = 0 ] || SRV_URI[$srv]="nbd://127.0.0.1:${PORT[$srv]}/$srv"
	meta "bc_pid.$srv" "$pid"
	meta "bc_threads_count.$srv" "$(status_kib "$pid" Threads)"
	meta "rss.$srv.hwm_after_attach_kib" "$(status_kib "$pid" VmHWM)"
	meta "rss.$srv.rss_after_attach_kib" "$(status_kib "$pid" VmRSS)"
}
# rbd_cache_of SERVER: rbd_cache as the server's librbd has it, from the
# admin socket the bench's ceph.conf gives every client process.
rbd_cache_of() {
	local pid=${SRV_PIDS[$1]} a i
	for ((i = 0; i < 100; i++)); do
		for a in "$CEPH_DIR/run/"*".$pid.asok"; do
			[ -S "$a" ] || continue
			ceph --admin-daemon "$a" config get rbd_cache 2>/dev/null |
				/usr/bin/python3 -c 'import json, sys; print(json.load(sys.stdin)["rbd_cache"])' 2>/dev/null && return
		done
		sleep 0.05
	done
	echo unknown
}

FUSE_ROWS=()
if [ $RBD = 1 ]; then
	# Both qemu peers: cache=none, so qemu sets rbd_cache=false (as the bench's ceph.conf does for blockcrypt).
	for srv in "${SERVERS[@]}"; do
		img=${RBD_IMAGE[$srv]}
		case $srv in
		rbd-plain) qemu_server "$srv" --cache=none --image-opts driver=rbd,pool=rbd,image="$img",conf="$CEPH_CONF" ;;
		rbd-luks2-librbd)
			qemu_server "$srv" --cache=none --object secret,id=sec0,file="$PASS" \
				--image-opts driver=rbd,pool=rbd,image="$img",conf="$CEPH_CONF",encrypt.format=luks2,encrypt.key-secret=sec0 ;;
		bc-rbd) bc_server "$srv" "rbd:rbd/$img" ;;
		esac
		meta "rbd_cache.$srv" "$(rbd_cache_of "$srv")"
	done
	meta qemu_nbd_cache none
elif [ "$BACKING" != tmpfs ]; then
	nbdkit_server nbdkit-file file file="$IMG_PLAIN"
	bc_server bc-luks2-4k "$IMG_LUKS2"
else
	nbdkit_server nbdkit-null null size="$SIZE"
	nbdkit_server nbdkit-file file file="$W/plain.img"
	nbdkit_server nbdkit-luks file file="$W/luks1-nbdkit.img" --filter=luks passphrase=+"$PASS"
	qemu_server qemu-nbd --object secret,id=s,file="$PASS" --image-opts driver=luks,key-secret=s,file.filename="$W/luks1-qemu.img"
	bc_server bc-luks1 "$W/luks1.img"
	bc_server bc-luks2-4k "$W/luks2.img" --fuse "$W/mnt-bc"

	# nbdfuse of the plaintext export: the FUSE counterpart of nbdkit-file.
	nbdfuse -P "$W/nbdfuse.pid" "$W/mnt-nbdfuse/plain" "${SRV_URI[nbdkit-file]}" >"$R/nbdfuse.log" 2>&1 &
	FPID=$!; STARTED_PIDS+=("$FPID")
	for ((i = 0; i < 200; i++)); do [ -s "$W/nbdfuse.pid" ] && break; kill -0 "$FPID" 2>/dev/null || break; sleep 0.05; done
	[ -s "$W/nbdfuse.pid" ] || die "nbdfuse did not start: $(cat "$R/nbdfuse.log")"
	declare -A FUSE_FILE=([nbdfuse-nbdkit-file]="$W/mnt-nbdfuse/plain" [fuse-bc-luks2-4k]="$W/mnt-bc/bc-luks2-4k")
	declare -A FUSE_PIDS=([nbdfuse-nbdkit-file]="$FPID,${SRV_PIDS[nbdkit-file]}" [fuse-bc-luks2-4k]="${SRV_PIDS[bc-luks2-4k]}")
	FUSE_ROWS=(nbdfuse-nbdkit-file fuse-bc-luks2-4k)
fi

samples=()
for srv in "${SERVERS[@]}"; do samples+=("$srv=${SRV_PIDS[$srv]}"); done
start_sampler "${samples[@]}"
for srv in "${SERVERS[@]}"; do
	meta "uri.$srv" "${SRV_URI[$srv]}"
	check_size "$srv" "${SRV_URI[$srv]}"
	# The null plugin has no data to read back.
	[ "$srv" = nbdkit-null ] || readback "$srv" "${SRV_URI[$srv]}"
done

# ---------------------------------------------------------------- measured rounds
# Job by job, every server in turn; the order rotates by one each round.
for ((ROUND = 1; ROUND <= ROUNDS; ROUND++)); do
	order=("${SERVERS[@]:$(((ROUND - 1) % ${#SERVERS[@]}))}" "${SERVERS[@]:0:$(((ROUND - 1) % ${#SERVERS[@]}))}")
	for job in "${NBD_JOBS[@]}"; do
		for srv in "${order[@]}"; do nbd_job "$srv" "$job"; done
	done
	[ ${#FUSE_ROWS[@]} -gt 0 ] || continue
	frows=("${FUSE_ROWS[@]}")
	[ $((ROUND % 2)) = 1 ] || frows=("${FUSE_ROWS[1]}" "${FUSE_ROWS[0]}")
	for job in seqread seqwrite; do
		for row in "${frows[@]}"; do fuse_job "$row" "${FUSE_FILE[$row]}" "${FUSE_PIDS[$row]}" "$job"; done
	done
done
ROUND=1
if [ ${#FUSE_ROWS[@]} -gt 0 ]; then
	fusermount3 -u "$W/mnt-nbdfuse" || die "cannot unmount nbdfuse"
	stop_pid "$FPID"
fi

# ---------------------------------------------------------------- blockcrypt: verify, memory stress
bc_verify() { # SERVER: write + verify (crc32c), 512-byte granular sizes/offsets, 32 in flight
	local srv=$1 uri=${SRV_URI[$1]} slice=$((VERIFY_SIZE / CONNS))
	log "$srv: write + verify (crc32c), $((VERIFY_SIZE >> 20)) MiB, bs 512..128k, qd32"
	local t0=$EPOCHREALTIME
	fio --output-format=json --output="$R/$srv.verify.json" --name=verify --ioengine=nbd --uri="$uri" \
		--numjobs="$CONNS" --size="$slice" --offset_increment="$slice" --rw=randwrite --bsrange=512-128k \
		--iodepth=32 --verify=crc32c --do_verify=1 --verify_fatal=1 --verify_dump=0 --verify_state_save=0 --randseed=4242 \
		>"$R/$srv.verify.log" 2>&1 || { meta "verify.$srv" FAIL; die "$srv: fio verify FAILED: $(tail -5 "$R/$srv.verify.log")"; }
	meta "window.$srv.verify" "$t0 $EPOCHREALTIME"
	if python3 "$BENCH_DIR/report.py" verify "$R/$srv.verify.json" "$slice"; then
		meta "verify.$srv" pass
	else
		meta "verify.$srv" FAIL
		die "$srv: fio verify did not write and verify everything"
	fi
}

bc_stress() { # SERVER: memory under 4 connections x qd32 x 1M writes (each on its own quarter)
	local srv=$1 slice=$((SIZE / 4 / (1 << 20) * (1 << 20)))
	log "$srv: memory stress: seq write 1M qd32 on 4 connections"
	BC_PID=${BC_PIDS[$srv]}
	run_fio "$srv" seqwrite-4conn "$BC_PID" --ioengine=nbd --uri="${SRV_URI[$srv]}" \
		--numjobs=4 --size="$slice" --offset_increment="$slice" --rw=write --bs=1M --iodepth=32
	BC_PID=""
}

for srv in "${BC_SERVERS[@]}"; do
	bc_verify "$srv"
	bc_stress "$srv"
	meta "rss.$srv.hwm_end_kib" "$(status_kib "${BC_PIDS[$srv]}" VmHWM)"
	meta "rss.$srv.rss_end_kib" "$(status_kib "${BC_PIDS[$srv]}" VmRSS)"
done
stop_sampler "${SERVERS[@]}"
for srv in "${BC_SERVERS[@]}"; do
	"$BC" detach "$srv" >>"$R/$srv.attach.log" 2>&1 || die "blockcrypt detach $srv failed: $(tail -1 "$R/$srv.attach.log")"
done
ATTACHED=()
# The peers: every server that is not a blockcrypt daemon.
for srv in "${SERVERS[@]}"; do [ -n "${BC_PIDS[$srv]:-}" ] || stop_pid "${SRV_PIDS[$srv]}"; done
if [ -n "$CEPH_DIR" ]; then
	"$REPO_DIR/tests/ceph/cluster.sh" stop "$CEPH_DIR" || die "tests/ceph/cluster.sh stop failed"
	CEPH_DIR=""
fi

meta total_s $(($(date +%s) - T0))
meta loadavg_end "$(cut -d' ' -f1-3 /proc/loadavg)"
# ---------------------------------------------------------------- report
mkdir -p "$(dirname "$JSON_OUT")"
python3 "$BENCH_DIR/report.py" report "$R" "$JSON_OUT"
log "raw numbers: $JSON_OUT; total $(($(date +%s) - T0)) s"
