#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
# A LUKS2 header with a mandatory requirement nobody knows
# (config.requirements.mandatory = ["x-future-feature"], both copies
# rewritten with correct checksums).  libcryptsetup loads it, still gives
# out the volume key, but refuses header changes; the LUKS2 specification
# says such metadata is read-only.  So: attach --read-only works (status
# says read-only, NBD reads return the data written before the header was
# changed, an NBD write is refused with EPERM and the data reads back
# unchanged), cat works; a writable attach, write, add-key and change-key
# exit 11 with one line naming the requirement; dump works and says
# "supported": true.  The backing is byte-identical at the end.
# (remove-key and erase: hostile-header-keyops.sh.)
. "$(dirname "$0")/functions.bash"
requires cryptsetup sha256sum cmp nbdcopy /usr/bin/python3
requires_python_nbd

. "$TESTS_DIR/shell/forge-lib.bash"

printf 'requirement' >key
printf 'new key' >newkey
random_file data $((1024 * 1024))
bc format vol --batch --key-file key --size 20M --no-progress "${FAST_KDF[@]}" >/dev/null 2>&1 || fail "format failed"
bc write vol --key-file key <data 2>/dev/null || fail "write failed"
forge_in_place vol 'config.requirements={"mandatory":["x-future-feature"]}'

# cryptsetup accepts the header, knows the requirement is unmet, and still
# gives out the volume key (what a read-only attach relies on).
before=$(sha vol)
cryptsetup luksDump vol >dump.txt 2>&1 || fail "cryptsetup luksDump rejects the header: $(cat dump.txt)"
grep -Eq '^Requirements:[[:space:]]*x-future-feature' dump.txt || fail "luksDump does not show the requirement"
cryptsetup open --test-passphrase --key-file key vol || fail "cryptsetup does not accept the passphrase"
[ "$(sha vol)" = "$before" ] || fail "cryptsetup rewrote the header"

# refused LABEL CMD...: exit 11, one line naming the requirement.
refused() {
	local label=$1 got=0; shift
	timeout 60 "$BLOCKCRYPT" "$@" <data >out 2>err || got=$?
	note "$label: exit $got: $(cat err)"
	refusal_checked "$label" 11 "$got" 'x-future-feature'
}
refused "attach (writable)" attach vol --key-file key
grep -q -- '--read-only' err || problem "attach: the message does not say that --read-only works: $(cat err)"
[ -z "$(bc list)" ] || problem "writable attach left something attached: $(bc list)"
refused "write" write vol --key-file key
refused "add-key" add-key vol --key-file key --new-key-file newkey "${FAST_KDF[@]}"
refused "change-key" change-key vol --key-file key --new-key-file newkey "${FAST_KDF[@]}"

# Read-only access works and gives the right data.
bc cat vol --key-file key 2>err | head -c $((1024 * 1024)) >out || true
cmp -s out data || problem "cat gives the wrong data: $(cat err)"
bc attach vol --key-file key --read-only >/dev/null 2>err || fail "attach --read-only failed: $(cat err)"
bc status vol --json >status.json || problem "status failed"
/usr/bin/python3 -c 'import json,sys; sys.exit(json.load(open(sys.argv[1]))["read_only"] is not True)' status.json ||
	problem "status does not say read-only: $(cat status.json)"
uri=$(nbd_uri vol)
nbdcopy "$uri" nbd.bin || problem "nbdcopy from the read-only export failed"
cmp -s <(head -c $((1024 * 1024)) nbd.bin) data || problem "NBD read gives the wrong data"
# The server answers a WRITE to a read-only export with NBD_EPERM
# (lib/nbd/nbd_conn.c); any other error (the connection failing, libnbd
# refusing locally) proves nothing.  The data must read back unchanged on
# the same connection.
/usr/bin/python3 - "$uri" data <<'PY' || problem "an NBD write to the read-only export was not refused with EPERM, or changed the data"
import sys, nbd
from nbd_client import connect, errname
want = open(sys.argv[2], "rb").read(8192)
h = connect(sys.argv[1], strict=0)   # send it even though the export says read-only
if not h.is_read_only():
    sys.exit("FAIL: the export does not advertise NBD_FLAG_READ_ONLY")
try:
    h.pwrite(b"x" * 4096, 0)
except nbd.Error as e:
    name = errname(e)
    if "command failed" not in (e.string or "") or name != "EPERM":
        sys.exit("FAIL: the write failed, but not with the server's EPERM: errno %s (%s)"
                 % (e.errno, e.string))
    print("# NBD write refused: %s" % e.string, file=sys.stderr)
else:
    sys.exit("FAIL: the server accepted a write to the read-only export")
if bytes(h.pread(8192, 0)) != want:
    sys.exit("FAIL: after the refused write the export reads other data")
h.shutdown()
PY
bc detach vol 2>err || problem "detach failed: $(cat err)"

bc dump vol >/dev/null 2>err || problem "dump failed: $(cat err)"
bc dump --json vol >dump.json 2>err || problem "dump --json failed: $(cat err)"
/usr/bin/python3 -c 'import json,sys; sys.exit(json.load(open(sys.argv[1]))["supported"] is not True)' dump.json ||
	problem "dump --json does not say \"supported\": true (it can be read)"
[ "$(sha vol)" = "$before" ] || problem "the backing was modified"

check_problems
exit 0
