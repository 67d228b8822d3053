#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
# The URI attach prints (and list, status and after-attach= hooks show)
# is percent-encoded (RFC 3986): a socket path holding a space, '&', '%',
# '?', '#' or a non-ASCII byte gives a URI that nbdinfo and qemu-img open,
# and that decodes back to the path.  The export's description (what
# NBD_OPT_INFO tells any client) is the volume's name, not the backing's
# path.
. "$(dirname "$0")/functions.bash"
requires nbdinfo qemu-img /usr/bin/python3

VOLUME_SIZE=20M new_volume vol.img key
dir="$TEST_TMP/so me&od%d?#dir-é"
mkdir "$dir"
bc attach vol.img --key-file key --socket "$dir/v.sock" >uri 2>err || fail "attach --socket with odd characters failed: $(cat err)"
cleanup_fn "bc detach vol 2>/dev/null"
uri=$(head -n1 uri)
note "URI: $uri"
case $uri in *' '*|*'&'*|*'#'*|*'é'*) fail "the URI is not percent-encoded: $uri" ;; esac
/usr/bin/python3 -c 'import sys, urllib.parse as u; q = u.parse_qs(u.urlsplit(sys.argv[1]).query); sys.exit(0 if q["socket"] == [sys.argv[2]] else 1)' \
	"$uri" "$dir/v.sock" || fail "the URI's socket= does not decode to the socket path: $uri"
[ "$(nbdinfo --size "$uri")" = "$(bc status vol --json | /usr/bin/python3 -c 'import json,sys; print(json.load(sys.stdin)["size"])')" ] ||
	fail "nbdinfo cannot use the URI: $uri"
qemu-img info --output=json "$uri" >qi.json 2>qi.err || fail "qemu-img cannot open the URI: $(cat qi.err)"
# The export's description is its name: no client learns the backing's path.
nbdinfo --json "$uri" >info.json || fail "nbdinfo --json failed"
/usr/bin/python3 -c 'import json,sys; e=json.load(open(sys.argv[1]))["exports"][0]; sys.exit(0 if e.get("description") == "vol" else 1)' info.json ||
	fail "the export description is not the name: $(cat info.json)"
grep -q "vol.img" info.json && fail "nbdinfo shows the backing's path: $(cat info.json)"
[ "$(bc list --json | /usr/bin/python3 -c 'import json,sys; print(json.load(sys.stdin)[0]["uri"])')" = "$uri" ] ||
	fail "list --json shows another URI than attach printed"
bc detach vol 2>/dev/null || fail "detach failed"
exit 0
