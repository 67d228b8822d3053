# SPDX-License-Identifier: GPL-2.0-or-later
# Sourced by bench/run.sh and bench/ab.sh.
#
# copy_blockcrypt SRC DIR: copy the blockcrypt binary SRC to DIR/bin/
# blockcrypt, with the libblockcrypt.so.0 it loads beside DIR/bin, and
# print the copy's path.  A binary from the build tree finds its library
# at $ORIGIN/.. (its RUNPATH), so the copy finds the copied one there and
# a rebuild of the tree during the run changes neither; an installed
# binary's RUNPATH names its library directory, and it loads that one.
copy_blockcrypt() {
	local src=$1 dir=$2 lib
	mkdir -p "$dir/bin" || return 1
	cp "$src" "$dir/bin/blockcrypt" || return 1
	lib=$(ldd "$src" | awk '$1 ~ /^libblockcrypt\.so/ && $3 ~ /^\// { print $3 }')
	if [ -n "$lib" ]; then
		cp "$lib" "$dir/$(basename "$(ldd "$src" | awk '$1 ~ /^libblockcrypt\.so/ { print $1 }')")" || return 1
	fi
	echo "$dir/bin/blockcrypt"
}
