#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
# The bash completion (data/completion/blockcrypt), driven in a real
# interactive bash as readline would drive it (COMP_WORDS, COMP_CWORD,
# COMP_LINE, COMP_POINT set, the function registered for blockcrypt
# called), with bash-completion's helpers loaded and without them:
# commands, each command's own options only (read from the binary's
# --help), option values (--type, --cipher, --pbkdf), files for FILE
# arguments and directories for DIR ones, attached names (list --json)
# for detach, tab file names for attach --from-tab (--tab FILE earlier on
# the line).  The completion runs 'blockcrypt' from PATH.  The build
# installs the script where bash-completion looks for it.
. "$(dirname "$0")/functions.bash"

SCRIPT=$TESTS_DIR/../data/completion/blockcrypt
BASH_COMPLETION=/usr/share/bash-completion/bash_completion
[ -r "$SCRIPT" ] || fail "no completion script at $SCRIPT"

# blockcrypt on PATH is the binary under test.
mkdir bin
ln -s "$(cd "$(dirname "$BLOCKCRYPT")" && pwd)/$(basename "$BLOCKCRYPT")" bin/blockcrypt
export PATH="$TEST_TMP/bin:$PATH"

# Two attached volumes, a tab file, and a directory of files to complete.
new_volume a.img key
cp a.img b.img
bc attach a.img --name vol-one --key-file key >/dev/null || fail "attach vol-one failed"
bc attach b.img --name vol-two --key-file key >/dev/null || fail "attach vol-two failed"
printf '# NAME BACKING KEY OPTIONS\ntabone /dev/null none plain\n\n  tabtwo\t/x.img /k luks\r\n#gone /y\n' >my.tab
mkdir work work/subdir
touch work/k1 work/k2.txt work/other
TAB=$TEST_TMP/my.tab

# The driver: complete LINE (the cursor at its end) in an interactive bash
# and print COMPREPLY, one a line.  MODE "bc" loads bash-completion first.
cat >driver.bash <<'EOF'
mode=$1 line=$2
[ "$mode" = bc ] && . /usr/share/bash-completion/bash_completion
. "$SCRIPT"
spec=$(complete -p blockcrypt) || { echo "no completion registered for blockcrypt" >&2; exit 2; }
fn=${spec#*-F }
fn=${fn%% *}
# COMP_WORDS as readline splits them: at blanks, and '=' and ':' are words.
l=${line//=/ = }
l=${l//:/ : }
read -ra COMP_WORDS <<<"$l"
[ "${line: -1}" = " " ] && COMP_WORDS+=("")
COMP_CWORD=$((${#COMP_WORDS[@]} - 1))
COMP_LINE=$line
COMP_POINT=${#line}
COMPREPLY=()
"$fn" blockcrypt "${COMP_WORDS[COMP_CWORD]}" "${COMP_WORDS[COMP_CWORD - 1]}"
printf '%s\n' "${COMPREPLY[@]}" | sort
EOF
export SCRIPT

# complete MODE LINE: the completions of LINE (sorted, blank-separated),
# run in $TEST_TMP/work; anything on stderr but the notes of an
# interactive bash without a terminal is a failure.
complete_line() {
	local out
	out=$(cd work && bash --norc --noprofile -i "$TEST_TMP/driver.bash" "$1" "$2" 2>"$TEST_TMP/drv.err") ||
		fail "[$1] '$2': the driver failed: $(cat "$TEST_TMP/drv.err")"
	if grep -v -e 'cannot set terminal process group' -e 'no job control in this shell' \
		"$TEST_TMP/drv.err" >"$TEST_TMP/drv.err2"; then
		problem "[$1] '$2': errors on stderr: $(cat "$TEST_TMP/drv.err2")"
	fi
	echo $out
}

# expect MODE LINE WANT: the completions of LINE are exactly WANT.
expect() {
	local got
	got=$(complete_line "$1" "$2")
	[ "$got" = "$3" ] || problem "[$1] '$2': got '$got', expected '$3'"
}
# expect_has MODE LINE WORD...: the completions of LINE include each WORD.
expect_has() {
	local got w m=$1 l=$2; shift 2
	got=" $(complete_line "$m" "$l") "
	for w in "$@"; do
		[[ $got == *" $w "* ]] || problem "[$m] '$l': '$w' missing from '$got'"
	done
}
# expect_lacks MODE LINE WORD...: the completions of LINE include no WORD.
expect_lacks() {
	local got w m=$1 l=$2; shift 2
	got=" $(complete_line "$m" "$l") "
	for w in "$@"; do
		[[ $got != *" $w "* ]] || problem "[$m] '$l': '$w' should not be offered: '$got'"
	done
}

modes=(plain)
if [ -r "$BASH_COMPLETION" ]; then
	modes+=(bc)
else
	problem "bash-completion is not installed ($BASH_COMPLETION): only the plain mode was tested"
fi

for m in "${modes[@]}"; do
	# Commands: all of them from the binary's --help, prefixes narrow.
	expect "$m" "blockcrypt de" "detach"
	expect "$m" "blockcrypt re" "remove-key repair resize"
	expect_has "$m" "blockcrypt " format attach detach list status header-backup unenroll
	expect "$m" "blockcrypt --he" "--help"
	# Options: the command's own, and only those.
	expect "$m" "blockcrypt format --ty" "--type"
	expect "$m" "blockcrypt cat vol --key-f" "--key-file"
	expect "$m" "blockcrypt detach --ci" ""
	expect "$m" "blockcrypt detach --" "--all --force --help --verbose --version"
	expect_has "$m" "blockcrypt attach --" --from-tab --tab --fuse --key-file --name
	expect_lacks "$m" "blockcrypt list --" --key-file --type --all
	# Option values.
	expect_has "$m" "blockcrypt cat --type " luks2 luks1 luks plain lofi
	expect "$m" "blockcrypt format --type lu" "luks luks1 luks2"
	expect "$m" "blockcrypt format --pbkdf " "argon2i argon2id pbkdf2"
	expect "$m" "blockcrypt attach --cipher aes-x" "aes-xts-plain aes-xts-plain64"
	expect_has "$m" "blockcrypt format --cipher " aes-xts-plain64 aes-cbc-essiv:sha256 aes-256-cbc
	expect "$m" "blockcrypt format --cipher aes-cbc-e" "aes-cbc-essiv:sha256"
	# (readline replaces what follows the ':')
	expect "$m" "blockcrypt format --cipher aes-cbc-essiv:s" "sha256"
	expect "$m" "blockcrypt format --type=lu" "luks luks1 luks2"
	expect_lacks "$m" "blockcrypt detach --force --cipher " aes-xts-plain64 aes-cbc-essiv:sha256
	# Files for FILE arguments, directories for DIR ones.
	expect "$m" "blockcrypt cat vol --key-file " "k1 k2.txt other subdir"
	expect "$m" "blockcrypt cat vol --key-file k" "k1 k2.txt"
	expect "$m" "blockcrypt add-key vol --new-key-file o" "other"
	expect "$m" "blockcrypt attach vol --fuse " "subdir"
	expect "$m" "blockcrypt dump " "k1 k2.txt other subdir"
	expect "$m" "blockcrypt header-backup vol k2" "k2.txt"
	# Attached names, not those already given.
	expect "$m" "blockcrypt detach " "vol-one vol-two"
	expect "$m" "blockcrypt detach vol-one " "vol-two"
	expect "$m" "blockcrypt status vol-t" "vol-two"
	expect "$m" "blockcrypt resize " "vol-one vol-two"
	# Tab names: --tab FILE earlier on the line, else /etc/blockcrypttab.
	expect "$m" "blockcrypt attach --tab $TAB --from-tab " "tabone tabtwo"
	expect "$m" "blockcrypt attach --tab=$TAB --from-tab tabt" "tabtwo"
	if [ ! -e /etc/blockcrypttab ]; then
		expect "$m" "blockcrypt attach --from-tab " ""
	fi
done

# The completion follows the binary on PATH: none there, no completion.
rm bin/blockcrypt
expect plain "blockcrypt de" ""
expect plain "blockcrypt detach " ""

# The build installs the script into bash-completion's directory.
BUILD=$(cd "$(dirname "$BLOCKCRYPT")/.." && pwd)
if [ -d "$BUILD/meson-info" ] && command -v meson >/dev/null; then
	meson introspect --installed "$BUILD" >installed.json || fail "meson introspect --installed failed"
	python3 - installed.json <<'PY' || problem "the build does not install data/completion/blockcrypt as .../bash-completion/completions/blockcrypt: $(cat installed.json)"
import json, sys
m = json.load(open(sys.argv[1]))
sys.exit(0 if any(s.endswith("/data/completion/blockcrypt") and d.endswith("/bash-completion/completions/blockcrypt")
                  for s, d in m.items()) else 1)
PY
else
	note "$BLOCKCRYPT is not in a meson build tree: the install location was not checked"
fi
check_problems
exit 0
