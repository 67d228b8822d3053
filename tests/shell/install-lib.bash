# SPDX-License-Identifier: GPL-2.0-or-later
# Helpers of the install-*.sh tests (source functions.bash first).
#   BUILD                      the meson build tree of the binary under test
#   opt BUILD NAME             the value of meson option NAME in BUILD
#   install_build_under_test DESTDIR
#                              `meson install --destdir --no-rebuild` of BUILD,
#                              which must be up to date (meson test builds it)
BUILD=$(cd "$(dirname "$BLOCKCRYPT")/.." && pwd)
[ -d "$BUILD/meson-private" ] || fail "no meson build tree at $BUILD (from \$BLOCKCRYPT=$BLOCKCRYPT)"

opt() {
	meson introspect "$1" --buildoptions |
		python3 -c 'import json, sys; print(*[o["value"] for o in json.load(sys.stdin) if o["name"] == sys.argv[1]])' "$2"
}

install_build_under_test() {
	# Installing must not need a build: a tree that is not up to date would
	# install stale files.
	ninja -C "$BUILD" -n >ninja.out 2>&1 || fail "ninja -n failed: $(cat ninja.out)"
	grep -q 'no work to do' ninja.out || fail "$BUILD is not up to date, meson install --no-rebuild would install stale files: $(tail -5 ninja.out)"
	meson install -C "$BUILD" --destdir "$1" --no-rebuild >install.out 2>&1 ||
		fail "meson install --destdir --no-rebuild failed: $(tail -20 install.out)"
}
