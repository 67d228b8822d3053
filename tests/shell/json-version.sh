#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
# Every --json output carries "version": 1 (blockcrypt(8), JSON OUTPUT),
# through the one JSON writer: dump, attach, status, list (each element of
# its array) and resize, whose output used to be formatted by hand.  Each
# output is valid JSON with the fields the man page names.
. "$(dirname "$0")/functions.bash"
requires /usr/bin/python3

VOLUME_SIZE=20M new_volume vol.img key
# has FILE PYTHON-EXPR: the JSON in FILE (as j) satisfies EXPR.
has() {
	/usr/bin/python3 -c 'import json,sys; j=json.load(open(sys.argv[1])); sys.exit(0 if eval(sys.argv[2]) else 1)' "$1" "$2" ||
		fail "$1: not $2: $(cat "$1")"
}
bc dump vol.img --json >dump.json || fail "dump --json failed"
has dump.json 'j["version"] == 1 and "uuid" in j'
bc attach vol.img --key-file key --json >attach.json 2>err || fail "attach --json failed: $(cat err)"
cleanup_fn "bc detach vol 2>/dev/null"
has attach.json 'j["version"] == 1 and j["name"] == "vol"'
bc status vol --json >status.json || fail "status --json failed"
has status.json 'j["version"] == 1 and j["name"] == "vol"'
bc list --json >list.json || fail "list --json failed"
has list.json 'len(j) == 1 and j[0]["version"] == 1 and j[0]["name"] == "vol"'
truncate -s 24M vol.img
bc resize vol --json >resize.json 2>err || fail "resize --json failed: $(cat err)"
has resize.json 'j == {"name": "vol", "size": j["size"], "version": 1} and j["size"] > 0'
bc detach vol || fail "detach failed"
exit 0
