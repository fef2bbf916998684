#!/bin/bash
# qemu72.sh - unpack Debian bookworm's QEMU 7.2 privately and print the path of its
# qemu-system-x86_64 binary on stdout (progress messages go to stderr).
#
# Why: the Xen test host (run-host.sh) runs Xen + dom0 nested under QEMU TCG. QEMU 10.0's new
# x86 instruction decoder reports every `mov %crN,reg` of a nested SVM guest as a CR0-read exit,
# so Xen hands a 64-bit guest's page-fault handler CR2 = 0 and the guest dies. Bookworm's 7.2
# does not have that decoder. Nothing is installed system-wide: the .debs are fetched with
# `apt-get download` and unpacked with `dpkg -x` into the cache directory.
#
# Running the unpacked 7.2 needs (run-host.sh does all of this):
#   QEMU_MODULE_DIR=<dir>/usr/lib/x86_64-linux-gnu/qemu  (else the installed 10.0 modules are tried)
#   -L /usr/share/qemu -L /usr/share/seabios              (firmware comes from the installed packages)
#   -nic none                                              (q35's default NIC wants efi-e1000e.rom)
#   -cpu max,-smap                                         (with SMAP, Xen's PV dom0 faults at once)
#
# Usage: tests/xen/qemu72.sh            -> prints e.g. ~/.cache/hykernel/qemu-7.2/usr/bin/qemu-system-x86_64
# Environment: QEMU72_VERSION=<debian version> forces a version (default: the newest 1:7.2* apt knows)
#              HY_CACHE=<dir> cache root (default ~/.cache/hykernel)
# Idempotent: a second run only checks the stamp file and prints the path.
set -euo pipefail
. "$(dirname "$0")/../lib/fail-step.sh"

CACHE=${HY_CACHE:-$HOME/.cache/hykernel}
DEST=$CACHE/qemu-7.2
BIN=$DEST/usr/bin/qemu-system-x86_64
STAMP=$DEST/.version
PKGS=(qemu-system-x86 qemu-system-common)

log() { echo "qemu72: $*" >&2; }
die() { echo "qemu72: ERROR: $*" >&2; exit 1; }

# The 7.2 builds come from bookworm itself (bookworm, -updates or -security); the system's
# sources also carry bookworm-backports (10.0), so select the version explicitly instead of
# trusting the candidate. Pick the highest "1:7.2..." version listed by apt-cache madison.
pick_version() {
    local best="" v
    while read -r v; do
        if [ -z "$best" ] || dpkg --compare-versions "$v" gt "$best"; then best=$v; fi
    done < <(apt-cache madison qemu-system-x86 | awk -F'|' '{gsub(/ /,"",$2); print $2}' | grep '^1:7\.2' || true)
    echo "$best"
}

for t in apt-get apt-cache dpkg dpkg-deb; do
    command -v "$t" >/dev/null || die "missing host tool '$t' (this script needs a Debian/apt host)"
done

VER=${QEMU72_VERSION:-$(pick_version)}
[ -n "$VER" ] || die "apt knows no 1:7.2 version of qemu-system-x86; is bookworm in the apt sources (apt-get update)?"

if [ -x "$BIN" ] && [ "$(cat "$STAMP" 2>/dev/null)" = "$VER" ]; then
    echo "$BIN"
    exit 0
fi

log "unpacking QEMU $VER into $DEST (apt-get download + dpkg -x, nothing gets installed)"
mkdir -p "$CACHE"
STAGE=$(mktemp -d "$CACHE/.qemu72.XXXXXX")
trap 'rm -rf "$STAGE"' EXIT
mkdir -p "$STAGE/debs" "$STAGE/root"
(
    cd "$STAGE/debs"
    # As root, apt-get warns that the download runs unsandboxed (user _apt); that is harmless.
    apt-get download -q "${PKGS[@]/%/=$VER}" >&2
) || die "apt-get download of ${PKGS[*]} version $VER failed"
for deb in "$STAGE"/debs/*.deb; do
    dpkg -x "$deb" "$STAGE/root"
done
[ -x "$STAGE/root/usr/bin/qemu-system-x86_64" ] || die "no usr/bin/qemu-system-x86_64 in the unpacked packages"
echo "$VER" > "$STAGE/root/.version"

# Replace any older unpack atomically enough for a cache (one writer at a time is assumed).
rm -rf "$DEST"
mv "$STAGE/root" "$DEST"

# Sanity check: the binary must run with the host's shared libraries.
if ! QEMU_MODULE_DIR=$DEST/usr/lib/x86_64-linux-gnu/qemu "$BIN" --version >/dev/null 2>&1; then
    die "$BIN does not run (missing shared libraries? try: ldd $BIN)"
fi
log "$("$BIN" --version | head -1)"
echo "$BIN"
