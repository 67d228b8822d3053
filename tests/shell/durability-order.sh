#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
# FLUSH, FUA and WRITE replies are ordered after the backing I/O they
# promise, seen directly in the backing's own log rather than inferred from
# what survives a crash, so a server that breaks the order is caught every
# time, not when a kill happens to land in a narrow window:
#  (a) a WRITE reply (plain or FUA) only after the backing write carrying its
#      data has returned;
#  (b) a FUA WRITE reply only after a backing flush that began after that
#      backing write returned;
#  (c) a FLUSH reply only after a backing flush that began after the FLUSH
#      was sent.
#
# The backing: the image served by nbdkit's file plugin behind its log
# filter (one line per request entering and leaving, written as it happens)
# and delay filter (every backing write takes $DELAY_MS ms), exposed as a
# regular file by nbdfuse; the blockcrypt daemon serves that file.  The
# client (durability_order.py) notes the log's length when it sends each
# request and when it sees the reply, so every verdict is causal: a correct
# server cannot fail, whatever the scheduling.  A reply sent before the
# pwrite() arrives $DELAY_MS ms before the backing write's log line exists.
# FLUSH and FUA are tested in phases where nothing else flushes the backing
# (the plain phase proves no flush happens on its own), so a FLUSH or FUA
# that does not reach the backing leaves no flush at all to be found.
#
# Before the volume is attached, a control write straight to the nbdfuse
# file proves that pwrite() there returns only after nbdkit logged the
# write done (no write-back cache between the daemon and nbdkit: otherwise
# (a) would prove nothing), and fdatasync() is a backing flush.  The
# checker proves it can fail (live: rule (b) on the plain phase's writes;
# and on logs doctored around requests that passed) and that it checked
# enough requests.  LUKS2 with 4096-byte sectors (unaligned writes are
# read-modify-written) and LUKS1 (512-byte sectors, another data offset).
. "$(dirname "$0")/functions.bash"
requires cryptsetup nbdkit nbdfuse fusermount3
requires_python_nbd
requires_fuse
nbdkit --filter=log --filter=delay null 1M --run true >/dev/null 2>&1 ||
	skip "needs nbdkit's log and delay filters (nbdkit-plugin-... packages)"
ORDER=(/usr/bin/python3 "$TESTS_DIR/shell/durability_order.py")
SEED=${DURABILITY_SEED:-$(( $(od -An -N2 -tu2 /dev/urandom) ))}
note "seed $SEED (DURABILITY_SEED=$SEED repeats this run's requests)"
# Wide enough that a client seeing a premature reply has read the log long
# before the backing write ends, even on a loaded machine; every write of
# the test must miss it for a premature reply to go unseen.
DELAY_MS=50

. "$TESTS_DIR/shell/disk-lib.bash"

# start_disk IMG LOG: $MNT/disk is IMG, every request logged to LOG, every
# write delayed.  The log filter comes first, so it sees the requests as
# nbdfuse sends them and logs a write's return after the delay.
start_disk() {
	disk_start --filter=log --filter=delay file "$1" logfile="$2" delay-write="${DELAY_MS}ms"
}

# daemon_state NAME: "PID alive" or "PID gone", for failure messages.
daemon_state() {
	local pid
	pid=$(state_pid "$BLOCKCRYPT_RUN_DIR/$1.json" 2>/dev/null) || { echo "without a runtime entry"; return; }
	kill -0 "$pid" 2>/dev/null && echo "$pid alive" || echo "$pid gone"
}

TOTALS=(0 0 0)

# run_case NAME VOLUME_SIZE FORMAT_ARGS...
run_case() {
	local name=$1 size=$2 off ss uri stats w f l
	shift 2
	VOLUME_SIZE=$size new_volume "$name.img" key "$@"
	off=$(data_offset "$name.img")
	ss=$(sector_size "$name.img")
	[ -n "$off" ] && [ "$off" -gt 0 ] || fail "$name: no data offset from cryptsetup"
	start_disk "$name.img" "$name.log"
	"${ORDER[@]}" sanity "$MNT/disk" "$name.log" --offset "$off" --min-delay-ms "$DELAY_MS" 2>py.err ||
		fail "$name: $(cat py.err)"
	grep '^#' py.err >&2 || true
	uri=$(bc attach "$MNT/disk" --key-file key --name "$name" 2>attach.err) ||
		fail "$name: attach of the logged disk failed: $(cat attach.err)"
	note "$name: data offset $off, $ss-byte sectors"
	timeout 120 "${ORDER[@]}" run "$uri" "$name.log" --data-offset "$off" \
		--backing-size "$(stat -c %s "$name.img")" --seed "$SEED" --stats "$name.json" 2>py.err ||
		fail "$name: $(cat py.err) (daemon $(daemon_state "$name"); its log: $(tail -5 "$BLOCKCRYPT_RUN_DIR/$name.log" 2>&1))"
	grep '^#' py.err >&2 || true
	bc detach "$name" >/dev/null 2>detach.err || fail "$name: detach failed: $(cat detach.err)"
	disk_stop
	stats=$(/usr/bin/python3 -c 'import json,sys; s=json.load(open(sys.argv[1])); print(s["writes_checked"], s["fua_checked"], s["flushes_checked"])' "$name.json")
	read -r w f l <<<"$stats"
	TOTALS=($((TOTALS[0] + w)) $((TOTALS[1] + f)) $((TOTALS[2] + l)))
	cryptsetup open --test-passphrase --key-file key "$name.img" ||
		fail "$name: cryptsetup no longer opens the volume"
	rm -f "$name.img"
}

run_case luks2-4k 24M --sector-size 4096
run_case luks1 10M --type luks1
note "checked ${TOTALS[0]} WRITE replies (${TOTALS[1]} with FUA) and ${TOTALS[2]} FLUSH replies"
# Each case checks its own minimum; this guards the whole run.
[ "${TOTALS[0]}" -ge 120 ] && [ "${TOTALS[1]}" -ge 20 ] && [ "${TOTALS[2]}" -ge 20 ] ||
	fail "too few requests checked: ${TOTALS[*]}"
exit 0
