#!/bin/bash
# smoke.sh - smoke test of the Xen test host: boots the nasm test guest (tests/xen/guest/xtguest.asm)
# as a type="pvh" and as a type="hvm" (kernel=) domU under xentrace, and leaves the results
# (traces, consoles, times) in <out-dir>. Parse the traces with tests/src/xentrace.rs.
#
# Usage: sudo tests/xen/smoke.sh <out-dir> [loops-per-phase] [timeout-s]
#   loops-per-phase: iterations of each guest phase (default 10000), passed as cmdline loops=N
# Environment: XT_MASK=<mask> xentrace event mask for both guests (default: run.sh's default)
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
OUTDIR=${1:?usage: smoke.sh <out-dir> [loops-per-phase] [timeout-s]}
LOOPS=${2:-10000}
TMO=${3:-600}
[[ $LOOPS =~ ^[0-9]+$ ]] || { echo "smoke.sh: ERROR: loops must be a number" >&2; exit 1; }

P=$(mktemp -d "${TMPDIR:-/tmp}/hy-smoke.XXXXXX")
trap 'rm -rf "$P"' EXIT
"$HERE/guest/build.sh" "$P" >/dev/null
cp "$HERE/payload/run.sh" "$HERE/payload/run-guests.sh" "$HERE/pvh.cfg" "$HERE/hvm.cfg" "$P/"
MASK=${XT_MASK:+xtmask=$XT_MASK}
cat >"$P/guests" <<GUESTS
# name     cfg      run.sh options        xl overrides
xtg-pvh    pvh.cfg  timeout=120 $MASK  'kernel="/mnt/xtguest.elf"' 'cmdline="loops=$LOOPS"' 'memory=32'
xtg-hvm    hvm.cfg  timeout=180 $MASK  'kernel="/mnt/xtguest.elf"' 'cmdline="loops=$LOOPS"' 'memory=32'
GUESTS
exec "$HERE/run-host.sh" "$P" "$OUTDIR" "$TMO"
