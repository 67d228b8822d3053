#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
# Options that only a plain (headerless) volume uses are refused for a LUKS
# volume with exit 2 and one line naming the option, never silently
# ignored: `write --offset 10` used to write at byte 0, `attach --size 1M`
# to serve the whole device.  Nothing is written and nothing attached.
# With --type plain the same options are used.
. "$(dirname "$0")/functions.bash"
new_volume vol.img key
BEFORE=$(sha vol.img)
head -c 4096 /dev/urandom >data
for opt in "--offset 10" "--skip 8" "--size 1M" "--cipher aes-cbc-essiv:sha256" "--key-size 256" \
	"--sector-size 4096" "--hash sha512" "--iv-large-sectors"; do
	for cmd in "write vol.img" "cat vol.img" "attach vol.img"; do
		# shellcheck disable=SC2086
		expect_exit 2 bc $cmd --key-file key $opt <data
		[[ "$ERR" == *"${opt%% *} applies to --type plain only"* ]] || fail "$cmd $opt: unexpected message: $ERR"
	done
done
note "e.g.: $ERR"
[ "$(sha vol.img)" = "$BEFORE" ] || fail "a refused command changed the volume"
[ -z "$(bc list)" ] || fail "a refused attach left a volume attached"
# The same options on a plain volume are honoured: --offset 8 moves the data.
head -c 64 /dev/urandom >raw.key
truncate -s 1M plain.img
bc write plain.img --type plain --cipher aes-xts-plain64 --key-size 512 --key-file raw.key --offset 8 --size 8192 <data ||
	fail "write with plain options failed"
[ "$(head -c 4096 plain.img | tr -d '\0' | wc -c)" = 0 ] || fail "--offset 8 did not leave the first 4096 bytes alone"
[ "$(tail -c +4097 plain.img | head -c 4096 | tr -d '\0' | wc -c)" -gt 0 ] || fail "--offset 8 wrote nothing at byte 4096"
exit 0
