#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
# Make corpus/fuzz-nbd/real-*: sessions of real NBD clients (libnbd's
# nbdinfo, nbdsh and nbdcopy, qemu-io, qemu-img) with `blockcrypt attach`,
# recorded by nbd_capture.py.  The volume is a 1 MiB plain one named
# "fuzz", like the harness's, so the requests are valid there too.
# Not a test; run by hand when the corpus needs new real sessions:
#   BLOCKCRYPT=build-fuzz/src/blockcrypt tests/fuzz/capture-real.sh
set -euo pipefail
: "${BLOCKCRYPT:?BLOCKCRYPT must point at a built blockcrypt}"
BLOCKCRYPT=$(realpath "$BLOCKCRYPT")
here=$(cd "$(dirname "$0")" && pwd)
out="$here/corpus/fuzz-nbd"
tmp=$(mktemp -d /tmp/bc-capture.XXXXXX)
export BLOCKCRYPT_RUN_DIR="$tmp/run"
cleanup() {
	[ -z "${proxy:-}" ] || kill "$proxy" 2>/dev/null || true
	"$BLOCKCRYPT" detach fuzz --force >/dev/null 2>&1 || true
	rm -rf "$tmp"
}
trap cleanup EXIT
cd "$tmp"

head -c 1M /dev/zero >fuzz.img
head -c 64 /dev/urandom >key
"$BLOCKCRYPT" attach fuzz.img --type plain --key-file key --name fuzz --allow-discards \
	--socket "$tmp/server.sock" --threads 1 >/dev/null
/usr/bin/python3 "$here/nbd_capture.py" "$tmp/proxy.sock" "$tmp/server.sock" "$tmp/cap" 1 &
proxy=$!
for _ in $(seq 50); do [ -S "$tmp/proxy.sock" ] && break; sleep 0.1; done
uri="nbd+unix:///fuzz?socket=$tmp/proxy.sock"
n=0
session() { # NAME CMD...: run one client, keep what it sent as real-NAME
	local name=$1 before f; shift
	before=$(find "$tmp" -maxdepth 1 -name 'cap-*' | wc -l)
	"$@" >/dev/null 2>"$tmp/client.err" || { echo "client failed: $*: $(tail -n 1 "$tmp/client.err")" >&2; exit 1; }
	sleep 0.3
	for f in $(find "$tmp" -maxdepth 1 -name 'cap-*' | sort -t- -k3 -n | tail -n +$((before + 1))); do
		n=$((n + 1))
		cp "$f" "$out/real-$name-$n"
	done
}

session nbdinfo nbdinfo "$uri"
session nbdinfo-list nbdinfo --list "nbd+unix://?socket=$tmp/proxy.sock"
session nbdinfo-size nbdinfo --size "$uri"
session qemu-img-info qemu-img info "$uri"
session qemu-io qemu-io -f raw "$uri" \
	-c 'write -P 0xab 0 4k' -c 'read -P 0xab 0 4k' -c 'write -P 0x5a 4097 3000' \
	-c 'read -P 0x5a 4097 3000' -c 'flush' -c 'write -z 16k 8k' -c 'read -P 0 16k 8k' \
	-c 'discard 64k 16k' -c 'write -f -P 0x11 1020k 4k' -c 'readv 0 512 512 1k'
session nbdcopy-out nbdcopy --request-size=65536 "$uri" "$tmp/copy.raw"
py() { /usr/bin/python3 -c "import nbd, sys; uri, sock = sys.argv[1:3]; h = nbd.NBD()
$1" "$uri" "$tmp/proxy.sock"; }
session libnbd-ops py '
h.connect_uri(uri)
h.pwrite(b"x" * 1000, 511)
assert h.pread(1000, 511) == b"x" * 1000
h.pwrite(b"y" * 512, 4096, nbd.CMD_FLAG_FUA)
h.zero(4096, 8192)
h.zero(4096, 12288, nbd.CMD_FLAG_NO_HOLE)
h.trim(4096, 32768)
h.cache(65536, 0)
h.flush()
h.pread(1, (1 << 20) - 1)
h.shutdown()'
session libnbd-opts py '
h.set_opt_mode(True)
h.set_tls(nbd.TLS_ALLOW)
h.set_request_structured_replies(True)
h.add_meta_context("base:allocation")
h.connect_uri(uri)
h.opt_list(lambda name, desc: 0)
h.opt_info()
h.opt_abort()'
session libnbd-export-name py '
h.set_handshake_flags(0)
h.set_export_name("fuzz")
h.connect_unix(sock)
h.pread(4096, 8192)
h.shutdown()'
session libnbd-no-zeroes py '
h.set_handshake_flags(nbd.HANDSHAKE_FLAG_FIXED_NEWSTYLE | nbd.HANDSHAKE_FLAG_NO_ZEROES)
h.set_opt_mode(True)
h.set_export_name("fuzz")
h.connect_unix(sock)
h.opt_info()
h.opt_go()
h.pread(512, 0)
h.shutdown()'
echo "wrote $n sessions to $out (real-*)"
