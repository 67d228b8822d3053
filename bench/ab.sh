#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
# A/B of two blockcrypt binaries on the same machine, minutes apart:
#   bench/ab.sh [--rounds N] [--runtime SEC] [--size SIZE] A_BINARY B_BINARY
# Each binary attaches its own copy of one LUKS2 image (4096-byte sectors,
# on tmpfs), and fio (ioengine=nbd) runs each job against A and B in turn,
# in alternating order, for --rounds rounds.  The table gives each
# binary's median and the B/A ratio of the medians, and the spread of the
# per-round B/A ratios, which is the noise to judge the ratio by.
# bench/run.sh compares blockcrypt with its peers; this compares two
# builds of blockcrypt (e.g. before and after a refactor).
set -euo pipefail

# shellcheck source=bench/copy-blockcrypt.bash
. "$(dirname "${BASH_SOURCE[0]}")/copy-blockcrypt.bash"
ROUNDS=5 RUNTIME=5 SIZE=1G
die() { echo "ab.sh: $*" >&2; exit 1; }
while [ $# -gt 0 ]; do
	case $1 in
	--rounds) ROUNDS=$2; shift 2 ;;
	--runtime) RUNTIME=$2; shift 2 ;;
	--size) SIZE=$2; shift 2 ;;
	-h|--help) sed -n '3,12p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
	-*) die "unknown option $1" ;;
	*) break ;;
	esac
done
[ $# = 2 ] || die "give two blockcrypt binaries (see --help)"
[[ $ROUNDS =~ ^[1-9][0-9]*$ ]] || die "--rounds: a positive integer"
for t in fio cryptsetup python3; do command -v $t >/dev/null || die "needs $t"; done
fio --enghelp 2>/dev/null | grep -qw nbd || die "fio has no nbd engine (Debian: fio >= 3.33 with libnbd)"

W=$(mktemp -d /dev/shm/blockcrypt-ab.XXXXXX)
export BLOCKCRYPT_RUN_DIR=$W/run
mkdir -p "$W/run" && chmod 700 "$W/run"
cleanup() {
	for n in a b; do [ -x "$W/bc-$n" ] && "$W/bc-$n" detach "$n" --force >/dev/null 2>&1 || true; done
	rm -rf "$W"
}
trap cleanup EXIT
ln -s "$(copy_blockcrypt "$1" "$W/a")" "$W/bc-a" && ln -s "$(copy_blockcrypt "$2" "$W/b")" "$W/bc-b" ||
	die "cannot copy the binaries"

head -c 32 /dev/urandom >"$W/key"
truncate -s "$SIZE" "$W/a.img"
cryptsetup luksFormat -q --type luks2 --sector-size 4096 --pbkdf pbkdf2 --pbkdf-force-iterations 1000 \
	--key-file "$W/key" "$W/a.img"
cp "$W/a.img" "$W/b.img"
for n in a b; do
	"$W/bc-$n" attach "$W/$n.img" --key-file "$W/key" --batch --name "$n" >"$W/$n.log" 2>&1 ||
		die "attach of $n failed: $(cat "$W/$n.log")"
done

declare -A JOBS=([seqwrite]="--rw=write --bs=1M --iodepth=32" [seqread]="--rw=read --bs=1M --iodepth=32"
	[randread]="--rw=randread --bs=4k --iodepth=32 --norandommap --randrepeat=0"
	[randwrite]="--rw=randwrite --bs=4k --iodepth=32 --norandommap --randrepeat=0")
ORDER=(seqread seqwrite randread randwrite)

# run_job NAME JOB ROUND: print "JOB ROUND NAME VALUE" (MiB/s or IOPS).
run_job() {
	local n=$1 job=$2 r=$3 out
	local -a args
	read -r -a args <<<"${JOBS[$job]}"
	out=$W/$n-$job-$r.json
	fio --output-format=json --output="$out" --name="$job" --ioengine=nbd \
		--uri="nbd+unix:///$n?socket=$W/run/$n.sock" --size="$SIZE" --runtime="$RUNTIME" \
		--ramp_time=1 --time_based "${args[@]}" >/dev/null
	python3 - "$out" "$job" "$r" "$n" <<'EOF'
import json, sys
j = json.load(open(sys.argv[1]))["jobs"][0]
side = j["write"] if "write" in sys.argv[2] else j["read"]
val = side["bw"] / 1024 if sys.argv[2].startswith("seq") else side["iops"]
print(sys.argv[2], sys.argv[3], sys.argv[4], f"{val:.1f}")
EOF
}

for ((r = 1; r <= ROUNDS; r++)); do
	for job in "${ORDER[@]}"; do
		if ((r % 2)); then pair=(a b); else pair=(b a); fi
		for n in "${pair[@]}"; do run_job "$n" "$job" "$r"; done
	done
	echo "round $r of $ROUNDS done" >&2
done >"$W/results.txt"

python3 - "$W/results.txt" "$1" "$2" <<'EOF'
import statistics, sys
rows = [l.split() for l in open(sys.argv[1])]
vals = {}
for job, r, n, v in rows:
    vals.setdefault(job, {}).setdefault(n, {})[int(r)] = float(v)
print(f"A = {sys.argv[2]}\nB = {sys.argv[3]}\n")
print("| job | A median | B median | B/A | per-round B/A (min-max) |")
print("|---|---|---|---|---|")
units = {"seqread": "MiB/s", "seqwrite": "MiB/s", "randread": "IOPS", "randwrite": "IOPS"}
for job in ["seqread", "seqwrite", "randread", "randwrite"]:
    a, b = vals[job]["a"], vals[job]["b"]
    ma, mb = statistics.median(a.values()), statistics.median(b.values())
    per = [b[r] / a[r] for r in a if r in b and a[r] > 0]
    print(f"| {job} | {ma:.0f} {units[job]} | {mb:.0f} {units[job]} | {mb / ma:.2f}x | "
          f"{min(per):.2f}-{max(per):.2f} |")
EOF
