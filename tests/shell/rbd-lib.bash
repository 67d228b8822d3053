# SPDX-License-Identifier: GPL-2.0-or-later
# Shared by the rbd-* tests: blockcrypt volumes on Ceph RBD images.
# Source after functions.bash and requires_ceph.  (Not a test itself.)

# rbd_spec IMAGE: the blockcrypt backing that names IMAGE in $CEPH_POOL.
rbd_spec() { echo "rbd:$CEPH_POOL/$1"; }

# rbd_new_volume IMAGE KEYFILE [format args...]: a new image IMAGE made by
# `blockcrypt format --size` (LUKS2 unless told, fast KDF, VOLUME_SIZE or
# 32M).
rbd_new_volume() {
	local img=$1 key=$2; shift 2
	[ -e "$key" ] || printf 'test passphrase %s' "$RANDOM" >"$key"
	timeout 120 "$BLOCKCRYPT" format "$(rbd_spec "$img")" --batch --key-file "$key" --size "${VOLUME_SIZE:-32M}" \
		"${FAST_KDF[@]}" --no-progress "$@" >/dev/null 2>"$TEST_TMP/.format.err" ||
		fail "format $(rbd_spec "$img") failed: $(cat "$TEST_TMP/.format.err")"
}

# rbd_lock_owner IMAGE: the Ceph address of the client holding IMAGE's
# exclusive lock ("127.0.0.1:0/NONCE"), nothing if none.
rbd_lock_owner() {
	timeout 60 rbd lock ls --format json "$CEPH_POOL/$1" |
		/usr/bin/python3 -c 'import json,sys; l = json.load(sys.stdin); print(l[0]["address"] if l else "")'
}

# rbd_blocklisted ADDR: true if ADDR is on the cluster's blocklist.
# (The plain listing: its JSON is two arrays in a row.)
rbd_blocklisted() {
	timeout 60 ceph osd blocklist ls 2>/dev/null | awk -v a="$1" '$1 == a { found = 1 } END { exit !found }'
}

# rbd_drop_lock IMAGE: remove the lock a dead client left on IMAGE (Ceph
# blocklists that client, which also drops its watch, so the image can
# then be removed at once instead of after the watch times out).
rbd_drop_lock() {
	timeout 60 rbd lock ls --format json "$CEPH_POOL/$1" | /usr/bin/python3 -c '
import json, sys
for l in json.load(sys.stdin):
    print(l["id"] + "\t" + l["locker"])' | while IFS=$'\t' read -r id locker; do
		timeout 60 rbd lock rm "$CEPH_POOL/$1" "$id" "$locker" >/dev/null 2>&1 || true
	done
}

# now_ms: a monotonic-enough clock in milliseconds.
now_ms() { echo $(($(date +%s%N) / 1000000)); }
