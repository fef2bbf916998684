#!/bin/bash
# Build the xtguest test guest (a PVH-note ELF linked at 4 MiB) with nasm.
# Usage: tests/xen/guest/build.sh <out-dir> [extra nasm options, e.g. -DLOOPS=1000]
# Prints the path of the ELF. The same ELF boots as type="pvh" and as type="hvm" kernel=.
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
OUT=${1:?usage: build.sh <out-dir> [nasm options]}
shift
command -v nasm >/dev/null || { echo "build.sh: ERROR: nasm not found (apt-get install nasm)" >&2; exit 1; }
mkdir -p "$OUT"
nasm -f bin -Werror "$@" -o "$OUT/xtguest.elf" "$HERE/xtguest.asm"
echo "$OUT/xtguest.elf"
