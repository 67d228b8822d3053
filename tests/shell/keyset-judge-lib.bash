# SPDX-License-Identifier: GPL-2.0-or-later
# Shared by the key-update crash tests (crash-header-keys.sh on files,
# rbd-crash-header.sh on RBD images): the judge of what a killed add-key
# or change-key leaves behind.  The caller sets OP (add-key|change-key),
# PLAIN_SHA, DATA_SHA, BASE_STATE and FINAL_STATE, and has the
# passphrase files "old" and "new" in the current directory.  Source
# after functions.bash.  (Not a test itself.)

# slots IMG: active key slots, e.g. "0 1" (LUKS1 and LUKS2).
slots() {
	cryptsetup luksDump "$1" 2>/dev/null | awk '
		/^Key Slot [0-7]: ENABLED/ { sub(":", "", $3); s = s " " $3 }
		/^Keyslots:/ { ks = 1; next }
		ks && /^[^ \t]/ { ks = 0 }
		ks && /^  [0-9]+: / { sub(":", "", $1); s = s " " $1 }
		END { sub(/^ /, "", s); print s }'
}

# state IMG: "SLOT:WHO ..." where WHO is the passphrase (old/new) that
# cryptsetup opens that slot with, "-" for none; and checks blockcrypt
# agrees.  Works on copies: opening may repair a LUKS2 header.
state() {
	local img=$1 s who k out=() cs_ok bc_rc
	cp "$img" cs.img
	cp "$img" bc.img
	for s in $(slots cs.img); do
		who=-
		for k in old new; do
			if cryptsetup open --test-passphrase --key-slot "$s" --key-file "$k" cs.img 2>/dev/null; then
				[ "$who" = - ] || { echo "slot $s opens with both passphrases"; return 1; }
				who=$k
			fi
		done
		out+=("$s:$who")
	done
	for k in old new; do
		cs_ok=no
		case " ${out[*]} " in *":$k "*) cs_ok=yes ;; esac
		bc_rc=0
		bc cat bc.img --key-file "$k" >plain.out 2>cat.err || bc_rc=$?
		if [ "$bc_rc" = 0 ]; then
			[ "$cs_ok" = yes ] || { echo "blockcrypt opens with $k, cryptsetup does not"; return 1; }
			[ "$(sha plain.out)" = "$PLAIN_SHA" ] || { echo "blockcrypt with $k reads wrong data"; return 1; }
		else
			[ "$bc_rc" = 3 ] || { echo "blockcrypt cat with $k: exit $bc_rc: $(cat cat.err)"; return 1; }
			[ "$cs_ok" = no ] || { echo "cryptsetup opens with $k, blockcrypt does not: $(cat cat.err)"; return 1; }
		fi
	done
	echo "${out[*]}"
}

declare -A SEEN
# keyset STATE: the passphrases that open some slot, e.g. "old new".
keyset() {
	local k r=
	for k in old new; do
		case " $1 " in *":$k "*) r+=" $k" ;; esac
	done
	echo "${r# }"
}

# judge IMG LABEL: the crashed image is in an allowed state: the data area
# untouched, and the key set that before or after the operation, or (only
# change-key, whose new slot is written before the old one goes) both.
# add-key must match the before or after state exactly; change-key may
# leave a slot that no passphrase opens (libcryptsetup wipes the old slot's
# area before it drops the slot from the header): counted, not failed.
judge() {
	local img=$1 label=$2 st ks
	[ "$(data_sha "$img")" = "$DATA_SHA" ] || fail "$label: the data area changed"
	st=$(state "$img") || fail "$label: $st"
	ks=$(keyset "$st")
	[ -n "$ks" ] || fail "$label: no passphrase opens the volume (key slots '$st')"
	case "$st" in
	"$BASE_STATE" | "$FINAL_STATE") ;;
	*)
		[ "$OP" = change-key ] ||
			fail "$label: key slots '$st'; expected '$BASE_STATE' (before) or '$FINAL_STATE' (after)"
		[ "$ks" = "$(keyset "$BASE_STATE")" ] || [ "$ks" = "$(keyset "$FINAL_STATE")" ] || [ "$ks" = "old new" ] ||
			fail "$label: opens with '$ks' (key slots '$st')"
		;;
	esac
	SEEN[$st]=$((${SEEN[$st]:-0} + 1))
}
