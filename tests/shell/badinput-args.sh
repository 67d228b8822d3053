#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
# Bad command lines exit 2 with one line on stderr and touch nothing: unknown
# command or option, an option of another command, missing or extra
# arguments, bad numbers (--key-size 123, --sector-size 3000, --key-slot 99,
# --size 20Q, ...), --batch without a key file.  Invalid format options are
# rejected before a new backing file is created.  Confirmations: with no
# controlling terminal (setsid, stdin /dev/null) and no --batch, erase,
# remove-key of the last slot, header-restore and format over data exit 10;
# on a terminal, answering anything but YES exits 10 too.  The volume stays
# byte-identical throughout.
. "$(dirname "$0")/functions.bash"
requires sha256sum setsid /usr/bin/python3

printf 'args key' >key
printf 'args key 2' >key2
bc format vol --batch --key-file key --size 20M "${FAST_KDF[@]}" >/dev/null 2>&1
bc header-backup vol hdr 2>/dev/null
VOL_SHA=$(sha vol)
random_file data 4096
touch err before.ls after.ls

# usage CMDLINE: exit 2, one line, vol untouched, nothing new created.
usage() {
	local got=0
	ls >before.ls
	"$BLOCKCRYPT" "$@" <data >/dev/null 2>err || got=$?
	[ "$got" = 2 ] || problem "blockcrypt $*: expected exit 2, got $got: $(cat err)"
	[ -s err ] || problem "blockcrypt $*: no error message"
	[ "$(wc -l <err)" -le 1 ] || problem "blockcrypt $*: expected one error line, got: $(cat err)"
	[ "$(sha vol)" = "$VOL_SHA" ] || fail "blockcrypt $*: modified the volume"
	ls >after.ls
	cmp -s before.ls after.ls || problem "blockcrypt $*: created $(comm -13 before.ls after.ls | tr '\n' ' ')"
	rm -f new
}

# Commands, options, arguments.
usage frobnicate vol
usage --frobnicate
usage cat vol --key-file key --frobnicate
usage write vol --key-file key --no-such-option
usage format new --size 20M --batch --key-file key --bogus
usage dump vol --key-file key            # valid option, wrong command
usage erase vol --batch --key-slot 0
usage cat --key-file key                 # missing VOLUME
usage cat vol vol --key-file key         # extra argument
usage header-backup vol                  # missing FILE
usage cat vol --key-file                 # option without its value
# No command at all: exit 2 (the usage text may take several lines).
got=0; "$BLOCKCRYPT" >out 2>err || got=$?
[ "$got" = 2 ] || problem "blockcrypt with no arguments: expected exit 2, got $got"
[ -s err ] || problem "blockcrypt with no arguments: nothing on stderr"

# Bad values.
usage format new --size 20M --batch --key-file key --key-size 123
usage format new --size 20M --batch --key-file key --cipher aes-cbc-essiv:sha256 --key-size 512
usage format new --size 20M --batch --key-file key --sector-size 3000
usage format new --size 20M --batch --key-file key --sector-size 8192
usage format new --size 20M --batch --key-file key --type luks1 --sector-size 4096
usage format new --size 20M --batch --key-file key --type luks3
usage format new --size 20M --batch --key-file key --pbkdf scrypt
usage format new --size 20M --batch --key-file key --type luks1 --pbkdf argon2id
usage format new --size 20M --batch --key-file key --iter-time abc
usage format new --size 20Q --batch --key-file key
usage format vol --batch --key-file key --key-size 123
usage format vol --batch --key-file key --sector-size 3000
usage add-key vol --key-file key --new-key-file key2 --key-slot 99
usage add-key vol --key-file key --new-key-file key2 --key-slot -1
usage remove-key vol --key-slot x --batch
usage cat vol --key-file key --type plain --key-size 123
# strtoull would skip the blank and wrap the sign: ' -2' is not a number.
usage cat vol --key-file key --type plain --skip ' -2'
usage cat vol --key-file key --type plain --offset '+8'
usage attach vol --key-file key --threads ' 7'
usage write vol --key-file -             # stdin carries the data

# --batch never prompts: a missing key file is a usage error.
usage cat vol --batch
usage write vol --batch
usage add-key vol --batch --key-file key   # no --new-key-file
usage add-key vol --batch --new-key-file key2
usage change-key vol --batch --key-file key
usage remove-key vol --batch
usage format new --size 20M --batch

# Confirmations without a controlling terminal: exit 10, nothing changed.
declined() {
	local got=0
	setsid -w "$BLOCKCRYPT" "$@" </dev/null >/dev/null 2>err || got=$?
	[ "$got" = 10 ] || problem "no tty: blockcrypt $*: expected exit 10, got $got: $(cat err)"
	[ "$(wc -l <err)" = 1 ] || problem "no tty: blockcrypt $*: expected one error line, got: $(cat err)"
	[ "$(sha vol)" = "$VOL_SHA" ] || fail "no tty: blockcrypt $*: modified the volume"
}
declined erase vol
declined remove-key vol --key-slot 0
declined remove-key vol --key-file key     # the last slot
declined header-restore vol hdr
declined format vol --key-file key2 "${FAST_KDF[@]}"
note "no tty: $(cat err)"

# On a terminal, any answer but YES declines.
cat >answer.py <<'EOF'
import os, pty, select, sys
answer, argv = sys.argv[1].encode(), sys.argv[2:]
pid, fd = pty.fork()
if pid == 0:
    os.execv(argv[0], argv)
out, sent = b"", False
while True:
    r, _, _ = select.select([fd], [], [], 20)
    if not r:
        os.kill(pid, 9)  # hung: fail (by signal) instead of waiting forever
        break
    try:
        d = os.read(fd, 4096)
    except OSError:
        break
    if not d:
        break
    out += d
    if not sent and out.rstrip(b" ").endswith(b":"):
        os.write(fd, answer + b"\n")
        sent = True
_, st = os.waitpid(pid, 0)
sys.stderr.write(out.decode(errors="replace"))
sys.exit(os.waitstatus_to_exitcode(st))
EOF
for answer in no yes y ''; do
	for cmd in "erase vol" "remove-key vol --key-slot 0" "header-restore vol hdr"; do
		got=0; /usr/bin/python3 answer.py "$answer" "$BLOCKCRYPT" $cmd >/dev/null 2>err || got=$?
		[ "$got" = 10 ] || problem "tty, answer '$answer': blockcrypt $cmd: expected exit 10, got $got: $(tail -n 1 err)"
		[ "$(sha vol)" = "$VOL_SHA" ] || fail "tty, answer '$answer': blockcrypt $cmd: modified the volume"
	done
done
# ... and YES goes ahead (so the refusals above were real refusals).
/usr/bin/python3 answer.py YES "$BLOCKCRYPT" erase vol >/dev/null 2>err || problem "tty, answer YES: erase failed: $(tail -n 1 err)"
[ "$(sha vol)" != "$VOL_SHA" ] || problem "tty, answer YES: erase did not change the volume"
expect_exit 3 bc cat vol --key-file key

check_problems
exit 0
