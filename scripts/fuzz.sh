#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
# Build the libFuzzer harnesses (tests/fuzz, clang, ASan+UBSan) and fuzz
# each target for a bounded time, starting from a copy of its corpus in
# tests/fuzz/corpus/TARGET (the repository's corpus is never changed,
# unless --merge).  Any crash, leak, UB, failed harness check or timeout
# fails the run; the reproducer's path is printed.
#
#   scripts/fuzz.sh [OPTIONS] [TARGET...] [-- LIBFUZZER-ARGS...]
#     --time SECONDS   fuzzing time per target (default 20, or $BC_FUZZ_TIME)
#     --regress        only run every corpus input once (no fuzzing)
#     --merge          afterwards, add the inputs that reach code the corpus
#                      does not to tests/fuzz/corpus/TARGET (review them)
#     --build-dir DIR  (default build-fuzz)
#     --list           print the targets and exit
#   TARGET: fuzz-nbd, fuzz-tab, fuzz-token-json (default: all).
#
# Long runs by hand: scripts/fuzz.sh --time 600 fuzz-nbd
# Reproduce a crash: build-fuzz/tests/fuzz/TARGET FILE
set -uo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top" || exit 1

all_targets=(fuzz-nbd fuzz-tab fuzz-token-json)
declare -A dict=([fuzz-nbd]=nbd.dict [fuzz-tab]=tab.dict [fuzz-token-json]=token-json.dict)
time_per=${BC_FUZZ_TIME:-20}
build="build-fuzz"
regress=0 merge=0
targets=() extra=()

usage() { sed -n '2,/^$/s/^# \{0,1\}//p' "$0" >&2; exit 2; }
while [ $# -gt 0 ]; do
	case $1 in
	--time) [ $# -ge 2 ] || usage; time_per=$2; shift 2 ;;
	--time=*) time_per=${1#*=}; shift ;;
	--regress) regress=1; shift ;;
	--merge) merge=1; shift ;;
	--build-dir) [ $# -ge 2 ] || usage; build=$2; shift 2 ;;
	--build-dir=*) build=${1#*=}; shift ;;
	--list) printf '%s\n' "${all_targets[@]}"; exit 0 ;;
	--help|-h) usage ;;
	--) shift; extra=("$@"); break ;;
	-*) echo "fuzz.sh: unknown option $1" >&2; usage ;;
	*) [ -n "${dict[$1]:-}" ] || { echo "fuzz.sh: unknown target $1 (--list)" >&2; exit 2; }
	   targets+=("$1"); shift ;;
	esac
done
[[ "$time_per" =~ ^[0-9]+$ ]] && [ "$time_per" -gt 0 ] || { echo "fuzz.sh: --time wants seconds > 0" >&2; exit 2; }
[ ${#targets[@]} -gt 0 ] || targets=("${all_targets[@]}")

# ---- build --------------------------------------------------------------
command -v clang >/dev/null || { echo "fuzz.sh: clang is not installed (scripts/deps.sh --test installs it)" >&2; exit 1; }
if [ ! -f "$build/build.ninja" ]; then
	CC=clang meson setup "$build" -Dfuzzing=true >"$top/.fuzz-setup.log" 2>&1 ||
		{ cat "$top/.fuzz-setup.log" >&2; rm -f "$top/.fuzz-setup.log"; echo "fuzz.sh: meson setup $build failed" >&2; exit 1; }
	rm -f "$top/.fuzz-setup.log"
elif ! meson introspect "$build" --buildoptions | python3 -c 'import json, sys
sys.exit(not any(o["name"] == "fuzzing" and o["value"] is True for o in json.load(sys.stdin)))'; then
	meson configure "$build" -Dfuzzing=true >/dev/null || { echo "fuzz.sh: cannot enable fuzzing in $build" >&2; exit 1; }
fi
if ! ninja -C "$build" "${targets[@]/#/tests/fuzz/}" >"$build/fuzz-build.log" 2>&1; then
	tail -n 30 "$build/fuzz-build.log" >&2
	echo "fuzz.sh: build failed (full log: $build/fuzz-build.log)" >&2
	exit 1
fi

# ---- run ----------------------------------------------------------------
# Sanitizer settings unless the caller has their own; symbolized stacks
# need llvm-symbolizer (package llvm) on PATH.
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1}
mkdir -p "$build/fuzz-artifacts"
failed=()
for t in "${targets[@]}"; do
	exe="$build/tests/fuzz/$t"
	seeds="tests/fuzz/corpus/$t"
	art=$(mktemp -d "$build/fuzz-artifacts/$t.XXXXXX")
	art=$(cd "$art" && pwd)
	log="$art/log"
	mkdir -p "$art/corpus"
	cp -a "$seeds/." "$art/corpus/"
	args=(-dict="tests/fuzz/${dict[$t]}" -artifact_prefix="$art/" -timeout=30 -rss_limit_mb=4096
	      -print_final_stats=1)
	if [ "$regress" = 1 ]; then
		args+=(-runs=0)
		what="every corpus input once"
	else
		args+=(-max_total_time="$time_per")
		what="$time_per s"
	fi
	echo "=== $t: $what, corpus $seeds ($(find "$seeds" -type f | wc -l) inputs)"
	rc=0
	"$exe" "${args[@]}" "${extra[@]}" "$art/corpus" >"$log" 2>&1 || rc=$?
	repro=$(find "$art" -maxdepth 1 -type f \( -name 'crash-*' -o -name 'leak-*' -o -name 'timeout-*' \
		-o -name 'oom-*' -o -name 'mismatch-*' \) | sort)
	if [ "$rc" != 0 ] || [ -n "$repro" ]; then
		grep -E 'FUZZ CHECK FAILED|ERROR: (AddressSanitizer|LeakSanitizer|libFuzzer)|runtime error:|SUMMARY:' "$log" |
			head -n 5 >&2
		echo "FAIL: $t (exit $rc); log: $log" >&2
		for f in $repro; do
			echo "  reproducer: $f" >&2
			echo "  rerun:      $exe $f" >&2
		done
		[ -n "$repro" ] || echo "  (no reproducer written; see the log)" >&2
		failed+=("$t")
		continue
	fi
	grep -E '^stat::number_of_executed_units|^stat::average_exec_per_sec' "$log" |
		sed 's/^stat::/  /' | tr -s ' '
	grep -E '#[0-9]+.*(DONE|INITED).*cov:' "$log" | tail -n 1 | sed 's/^/  /'
	if [ "$merge" = 1 ]; then
		before=$(find "$seeds" -type f | wc -l)
		# New edges only (not hit counts): keeps the repository's corpus small.
		"$exe" -merge=1 -use_counters=0 "$seeds" "$art/corpus" >"$art/merge.log" 2>&1 ||
			{ echo "FAIL: $t: merge failed, see $art/merge.log" >&2; failed+=("$t"); continue; }
		echo "  merged: $(( $(find "$seeds" -type f | wc -l) - before )) new input(s) in $seeds"
	fi
	echo "ok: $t"
	rm -rf "$art" # nothing to keep
done

if [ ${#failed[@]} -gt 0 ]; then
	echo "fuzz: FAILED: ${failed[*]}" >&2
	exit 1
fi
echo "fuzz: all ${#targets[@]} target(s) ok"
