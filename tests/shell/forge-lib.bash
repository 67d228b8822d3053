# SPDX-License-Identifier: GPL-2.0-or-later
# Forged LUKS headers for the hostile-header-*.sh tests, through
# luks2_forge.py (both LUKS2 copies rewritten, checksums recomputed).
# Source it after functions.bash:
#   . "$(dirname "$0")/functions.bash"
#   . "$TESTS_DIR/shell/forge-lib.bash"     (functions.bash has cd-ed away)
# (Not a test itself: meson runs tests/shell/*.sh only.)

# $FORGE ARGS...: luks2_forge.py (show, set, luks1; see its docstring).
FORGE="/usr/bin/python3 $TESTS_DIR/shell/luks2_forge.py"

# cryptsetup_valid FILE: cryptsetup luksDump accepts FILE and rewrites
# nothing (its output is left in FILE.dump).
cryptsetup_valid() {
	local before
	before=$(sha "$1")
	cryptsetup luksDump "$1" >"$1.dump" 2>&1 || fail "$1: cryptsetup luksDump rejects it: $(cat "$1.dump")"
	[ "$(sha "$1")" = "$before" ] || fail "$1: cryptsetup luksDump rewrote the header"
}

# cryptsetup_rejects FILE: luksDump refuses it (and rewrites nothing).
cryptsetup_rejects() {
	local before
	before=$(sha "$1")
	! cryptsetup luksDump "$1" >/dev/null 2>&1 || fail "$1: expected cryptsetup luksDump to reject it"
	[ "$(sha "$1")" = "$before" ] || fail "$1: cryptsetup luksDump rewrote the header"
}

# forge_in_place FILE EDIT...: apply EDITs to both LUKS2 copies of FILE and
# check that both copies are valid (magic, offsets, checksums, same JSON).
forge_in_place() {
	local f=$1; shift
	$FORGE set "$f" "$@" || fail "forging $f failed"
	$FORGE show "$f" >/dev/null || fail "$f: the forged header copies are not both valid"
}

# forge_raw SRC DST EDIT...: DST = SRC with EDITs (both copies valid); what
# cryptsetup makes of it is the caller's business.
forge_raw() {
	local src=$1 dst=$2; shift 2
	cp "$src" "$dst"
	forge_in_place "$dst" "$@"
}

# forge SRC DST EDIT...: forge_raw, and cryptsetup accepts DST.
forge() {
	forge_raw "$@"
	cryptsetup_valid "$2"
}

# forge_luks1 FILE FIELD=VALUE...: edit FILE's LUKS1 header in place.
forge_luks1() { $FORGE luks1 "$@" || fail "forging LUKS1 header $1 failed"; }

# dump_says_unsupported LABEL FILE: `blockcrypt dump --json FILE` works
# and says "supported": false; else a problem.
dump_says_unsupported() {
	bc dump --json "$2" >dump.json 2>err || { problem "$1: dump --json failed: $(cat err)"; return 0; }
	/usr/bin/python3 -c 'import json,sys; sys.exit(json.load(open(sys.argv[1]))["supported"] is not False)' dump.json ||
		problem "$1: dump --json does not say \"supported\": false"
}

# refusal_checked LABEL WANT GOT REGEX: the command that exited GOT, its
# stderr in ./err, must have exited WANT with one line matching REGEX;
# each miss is a problem.
refusal_checked() {
	local label=$1 want=$2 got=$3 re=$4
	[ "$got" = "$want" ] || problem "$label: expected exit $want, got $got: $(cat err)"
	[ "$(wc -l <err)" = 1 ] || problem "$label: expected one error line, got: $(cat err)"
	grep -Eq -- "$re" err || problem "$label: message does not match /$re/: $(cat err)"
}

# nothing_attached LABEL: a problem if anything is attached.
nothing_attached() { [ -z "$(bc list)" ] || problem "$1: something is still attached: $(bc list)"; }
