#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
# The man pages the build makes from docs/*.md (pandoc): each renders with
# `man -l` on an 80-column terminal with its title, its NAME line and its
# sections (docs' "## X" headings, all of them), keeps option names whole
# (--key-file, not an en dash), and passes groff with every warning on
# (tbl, -ww): a table wider than the terminal, a line that cannot be
# broken, a bad request or escape is a failure.  A broken page proves the
# lint fails.
. "$(dirname "$0")/functions.bash"
requires man groff python3

TOP=$(cd "$TESTS_DIR/.." && pwd)
BUILD=$(cd "$(dirname "$BLOCKCRYPT")/.." && pwd)
export LC_ALL=C.UTF-8 MANWIDTH=80 MAN_KEEP_FORMATTING=

lint() { # PAGE: groff's warnings (tbl + man, nroff, 80 columns), none expected
	groff -ww -t -man -z -Tutf8 "$1" 2>&1
}
render() { man -l "$1" 2>render.err | col -bx; } # PAGE: the page as text, as man shows it

declare -A words=(
	[blockcrypt.8]='--key-file --tab --batch attach detach crypttab'
	[blockcrypttab.5]='crypttab noauto nofail --from-tab --tab /etc/blockcrypttab'
	[blockcrypt-rbd.7]='--break-lock rbd:'
	[blockcrypt-lofi.7]='lofiadm CFLOFI aes-256-cbc'
	[blockcrypt-generator.8]='blockcrypttab blockcrypt.target --from-tab'
)
for page in "${!words[@]}"; do
	src=$TOP/docs/$page.md
	built=$BUILD/$page
	[ -s "$built" ] || { problem "$page was not built ($built)"; continue; }
	name=${page%.*} sec=${page##*.}
	render "$built" >"$page.txt" || problem "man -l $page failed: $(cat render.err)"
	[ ! -s render.err ] || problem "man -l $page complains: $(cat render.err)"
	head -1 "$page.txt" | grep -Eiq "^$name\($sec\) +blockcrypt manual +$name\($sec\)\$" ||
		problem "$page: title line is '$(head -1 "$page.txt")'"
	grep -Eq "^ +$name +[-—]+ +[a-zA-Z]" "$page.txt" || problem "$page: no NAME line '$name — ...'"
	# Every "## HEADING" of the Markdown is a section of the page.
	grep -E '^## ' "$src" | sed 's/^## //' >headings
	[ "$(wc -l <headings)" -ge 3 ] || problem "$src: only $(wc -l <headings) sections"
	while read -r h; do
		grep -qxF "$h" "$page.txt" || problem "$page: section '$h' missing"
	done <headings
	grep -qx 'NAME' "$page.txt" || problem "$page: no NAME section"
	for w in ${words[$page]}; do
		grep -qF -- "$w" "$page.txt" || problem "$page: '$w' does not appear"
	done
	# Options keep their two hyphens (no smart dashes), nothing leaks as markup.
	grep -n -- '–[a-z]' "$page.txt" >dashes && problem "$page: en dash for an option's --: $(head -3 dashes)"
	grep -n '\\f\[\|^\.[A-Z][A-Z] \|](http\|`' "$page.txt" >markup && problem "$page: unrendered markup: $(head -3 markup)"
	lint "$built" >lint.out
	[ ! -s lint.out ] || problem "$page: groff warns: $(cat lint.out)"
done
[ "$(printf '%s\n' "$BUILD"/*.[578] | wc -l)" = "${#words[@]}" ] || problem "pages built: $(ls "$BUILD"/*.[578]), expected ${!words[*]}"
# Both synopses carry the commands.
grep -q '^SYNOPSIS' blockcrypt.8.txt || problem "blockcrypt(8) has no SYNOPSIS"
grep -q '^OPTIONS' blockcrypt.8.txt || problem "blockcrypt(8) has no OPTIONS"

# The lint can fail: a table too wide for the terminal, an unknown request.
python3 - "$BUILD/blockcrypt.8" broken.8 <<'EOF'
import re, sys
s = open(sys.argv[1]).read()
s, n = re.subn(r'lw\([0-9.]+n\)', 'lw(40n)', s, count=3)
assert n == 3, n
open(sys.argv[2], 'w').write(s + '.NOSUCHMACRO x\n\\f[Q]bad font\n')
EOF
lint broken.8 >lint.out
grep -q 'table wider than line width' lint.out || problem "groff did not report a too-wide table: $(cat lint.out)"
grep -qi 'macro\|NOSUCHMACRO\|font' lint.out || problem "groff did not report a bad request or font: $(cat lint.out)"
check_problems
