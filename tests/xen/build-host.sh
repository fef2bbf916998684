#!/bin/bash
# build-host.sh - build the Xen 4.17 + Debian 12 dom0 test host from Debian's own packages and
# print the directory holding it on stdout (progress and errors go to stderr).
#
# The host is built with debootstrap into a root filesystem; the boot files are copied out of it:
#   <dir>/boot/xen          Xen 4.17, gunzipped (QEMU's multiboot loader cannot load the .gz)
#   <dir>/boot/vmlinuz      dom0 kernel (Debian 6.1)
#   <dir>/boot/initrd.img   dom0 initrd: static busybox + the modules for a virtio ext4 root disk,
#                           /init = tests/xen/initrd-init (Debian's udev-based initrd costs ~10 s per boot)
#   <dir>/dom0.img          dom0 root filesystem (ext4, made with mkfs.ext4 -d, no loop mounts)
#   <dir>/domu/             the same kernel for Linux domU peers: vmlinuz (PV/HVM), vmlinux
#                           (uncompressed, for type="pvh"), modules/, initrd.cpio.gz (busybox,
#                           iperf3, xen-netfront; PID 1 = tests/xen/domu-init)
#   <dir>/host.env          versions of the main components
#   <dir>/logs/NN-<step>.log  output of each build step
#   <dir>/rootfs/           the debootstrap tree the images were made from (kept for later use)
# The dom0 runs tests/xen/dom0-init as PID 1 (installed as /usr/local/sbin/hy-dom0-init).
#
# <dir> is ~/.cache/hykernel/xen-host-<key>, where <key> hashes this script, dom0-init, initrd-init,
# domu-init and host-packages.txt: changing any of them builds a new host, the same inputs reuse the cache.
# An interrupted build resumes at the first unfinished step. Takes about 2-5 minutes.
#
# Usage: sudo tests/xen/build-host.sh     (needs root: debootstrap and chroot)
# Environment: HY_CACHE=<dir>  cache root (default ~/.cache/hykernel)
#              MIRROR=<url>    Debian mirror (default: the first one in the host's apt sources)
set -euo pipefail
. "$(dirname "$0")/../lib/fail-step.sh"

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
CACHE=${HY_CACHE:-$HOME/.cache/hykernel}
SUITE=bookworm
PKG_LIST=$HERE/host-packages.txt
INPUTS=("$HERE/build-host.sh" "$HERE/dom0-init" "$HERE/initrd-init" "$HERE/domu-init" "$PKG_LIST")

log() { echo "build-host: $*" >&2; }
die() { echo "build-host: ERROR: $*" >&2; exit 1; }

# ---------------------------------------------------------------------------------------------
# Preconditions
# ---------------------------------------------------------------------------------------------
[ "$(id -u)" = 0 ] || die "must run as root (debootstrap and chroot need it)"
for f in "${INPUTS[@]}"; do [ -r "$f" ] || die "missing input file $f"; done

missing=()
for t in debootstrap chroot mount umount mountpoint mkfs.ext4 zcat gzip xz cpio sha256sum \
         find grep sed awk flock; do
    command -v "$t" >/dev/null || missing+=("$t")
done
[ ${#missing[@]} = 0 ] || die "missing host tools: ${missing[*]}
  (on Debian: apt-get install debootstrap e2fsprogs xz-utils cpio coreutils util-linux)"

# Cache key: names and contents of all inputs.
KEY=$(for f in "${INPUTS[@]}"; do echo "== $(basename "$f")"; cat "$f"; done | sha256sum | cut -c1-16)
OUT=$CACHE/xen-host-$KEY
R=$OUT/rootfs
LOGS=$OUT/logs
mkdir -p "$CACHE"

# One build per key at a time (a second caller waits, then finds the finished host).
exec 9>"$CACHE/xen-host-$KEY.lock"
flock -w 1800 9 || die "another build of $OUT is still running (lock $CACHE/xen-host-$KEY.lock)"

if [ -e "$OUT/.complete" ]; then
    echo "$OUT"
    exit 0
fi
mkdir -p "$LOGS"
log "building the Xen test host in $OUT (key $KEY; logs in $LOGS)"
others=$(find "$CACHE" -maxdepth 1 -name 'xen-host-*' -type d ! -path "$OUT" | tr '\n' ' ')
[ -z "$others" ] || log "note: older host builds can be removed: $others"

# ---------------------------------------------------------------------------------------------
# Helpers
# ---------------------------------------------------------------------------------------------
# Debian mirror: $MIRROR, else the first URI of the host's deb822 or one-line apt sources.
find_mirror() {
    local m=${MIRROR:-}
    if [ -z "$m" ] && [ -r /etc/apt/sources.list.d/debian.sources ]; then
        m=$(awk '/^URIs:/ && $2 !~ /security/ {print $2; exit}' /etc/apt/sources.list.d/debian.sources)
    fi
    if [ -z "$m" ] && [ -r /etc/apt/sources.list ]; then
        m=$(awk '$1 == "deb" && $2 !~ /security/ {print ($2 ~ /^\[/ ? $3 : $2); exit}' /etc/apt/sources.list)
    fi
    [ -n "$m" ] || die "no Debian mirror found in the apt sources; set MIRROR=<url>"
    echo "$m"
}

# Packages of one stage from host-packages.txt, comma- or space-separated.
packages() {  # stage
    sed 's/#.*//' "$PKG_LIST" | awk -v s="$1" '$1 == s {print $2}' | tr '\n' ' ' | sed 's/ $//'
}

# Unmount everything this script may have mounted inside the rootfs.
umount_chroot() {
    local m
    for m in dev/pts dev sys proc; do
        if mountpoint -q "$R/$m" 2>/dev/null; then umount "$R/$m" || umount -l "$R/$m"; fi
    done
}

# Refuse to touch a rootfs that still has anything mounted under it (rm -rf would follow a /dev bind).
assert_no_mounts() {
    if awk -v r="$R" '$2 == r || index($2, r "/") == 1 {found=1} END {exit !found}' /proc/self/mounts; then
        die "something is still mounted under $R; unmount it first (see /proc/self/mounts)"
    fi
}

mount_chroot() {
    mount -t proc proc "$R/proc"
    mount -t sysfs sys "$R/sys"
    mount --bind /dev "$R/dev"
    mount --bind /dev/pts "$R/dev/pts"
}

in_chroot() { chroot "$R" env DEBIAN_FRONTEND=noninteractive LC_ALL=C.UTF-8 "$@"; }

# step <name> <why> <function>: run a build step once, log its output, stop with the log's tail on error.
STEP_NO=0
step() {
    local name=$1 why=$2 fn=$3 log rc t0
    STEP_NO=$((STEP_NO + 1))
    log=$LOGS/$(printf '%02d' "$STEP_NO")-$name.log
    if [ -e "$OUT/.done-$name" ]; then
        log "[$STEP_NO] $name: already done"
        return 0
    fi
    log "[$STEP_NO] $name: $why"
    t0=$SECONDS
    set +e
    ( set -euo pipefail; "$fn" ) >"$log" 2>&1
    rc=$?
    set -e
    if [ "$rc" != 0 ]; then
        umount_chroot 2>/dev/null || true
        echo "build-host: ERROR: step '$name' failed (exit $rc); log: $log" >&2
        tail -n 15 "$log" | sed 's/^/    | /' >&2
        exit 1
    fi
    touch "$OUT/.done-$name"
    log "    ok in $((SECONDS - t0)) s"
}

trap 'umount_chroot 2>/dev/null || true' EXIT

# ---------------------------------------------------------------------------------------------
# Steps (each is a function run by `step` in a subshell with errexit)
# ---------------------------------------------------------------------------------------------
do_debootstrap() {
    umount_chroot
    assert_no_mounts
    rm -rf "$R"
    local mirror include
    mirror=$(find_mirror)
    include=$(packages debootstrap | tr ' ' ',')
    echo "mirror: $mirror"
    echo "include: $include"
    debootstrap --include="$include" "$SUITE" "$R" "$mirror"
}

do_apt_install() {
    # Keep package maintainer scripts from starting daemons inside the chroot.
    printf '#!/bin/sh\nexit 101\n' >"$R/usr/sbin/policy-rc.d"
    chmod 755 "$R/usr/sbin/policy-rc.d"
    mount_chroot
    in_chroot apt-get update
    # shellcheck disable=SC2046  # word splitting of the package list is intended
    in_chroot apt-get install -y --no-install-recommends $(packages apt)
    in_chroot apt-get clean
    umount_chroot
}

do_configure() {
    install -m 755 "$HERE/dom0-init" "$R/usr/local/sbin/hy-dom0-init"
    echo dom0 >"$R/etc/hostname"
    echo '/dev/vda / ext4 defaults 0 1' >"$R/etc/fstab"
    in_chroot passwd -d root
    # busybox-static provides the static busybox both initrds are built from.
    if ldd "$R/bin/busybox" >/dev/null 2>&1; then
        echo "$R/bin/busybox is not statically linked (is busybox-static in host-packages.txt?)"
        return 1
    fi
}

# Modules (paths relative to lib/modules/<kver>) needed to mount an ext4 root on virtio-blk, in
# load order: each module's dependencies from modules.dep come first.
DOM0_ROOT_MODULES=(virtio_pci virtio_blk crc32c_generic ext4)
module_closure() {  # kver module...
    local dep=$R/lib/modules/$1/modules.dep
    shift
    awk -v want="$*" '
        { sub(":", "", $1); path = $1; n = split(path, p, "/"); name = p[n]; sub(/\.ko.*$/, "", name)
          byname[name] = path; deps[path] = ""; for (i = 2; i <= NF; i++) deps[path] = deps[path] " " $i }
        function visit(path,   d, k, i) {
            if (path in seen) return; seen[path] = 1
            k = split(deps[path], d, " "); for (i = k; i >= 1; i--) visit(d[i])
            print path }
        END { k = split(want, w, " ")
              for (i = 1; i <= k; i++) { if (!(w[i] in byname)) { print "unknown module " w[i] > "/dev/stderr"; exit 1 }
                                         visit(byname[w[i]]) } }' "$dep"
}

make_dom0_initrd() {  # kver out
    local kver=$1 out=$2 tmp m
    tmp=$(mktemp -d)
    mkdir -p "$tmp/bin" "$tmp/lib/modules"
    cp "$R/bin/busybox" "$tmp/bin/busybox"
    install -m 755 "$HERE/initrd-init" "$tmp/init"
    module_closure "$kver" "${DOM0_ROOT_MODULES[@]}" >"$tmp/order"
    : >"$tmp/lib/modules/modules.order"
    while read -r m; do
        cp "$R/lib/modules/$kver/$m" "$tmp/lib/modules/"
        basename "$m" >>"$tmp/lib/modules/modules.order"
    done <"$tmp/order"
    rm "$tmp/order"
    echo "dom0 initrd modules: $(tr '\n' ' ' <"$tmp/lib/modules/modules.order")"
    (cd "$tmp" && find . | cpio -o -H newc --quiet | gzip -6) >"$out"
    rm -rf "$tmp"
}

do_boot_files() {
    mkdir -p "$OUT/boot"
    local xen kernel kver
    xen=$(ls "$R"/boot/xen-4.17*-amd64.gz | head -n 1)
    kernel=$(ls "$R"/boot/vmlinuz-*-amd64 | sort -V | tail -n 1)
    kver=${kernel##*/vmlinuz-}
    [ -f "$xen" ] && [ -f "$kernel" ] && [ -d "$R/lib/modules/$kver" ]
    zcat "$xen" >"$OUT/boot/xen.tmp" && mv "$OUT/boot/xen.tmp" "$OUT/boot/xen"
    cp "$kernel" "$OUT/boot/vmlinuz"
    make_dom0_initrd "$kver" "$OUT/boot/initrd.img"
    ls -la "$OUT/boot"
}

do_domu_files() {
    local D=$OUT/domu kver off M tmp
    rm -rf "$D"
    mkdir -p "$D/modules"
    kver=$(ls "$R/lib/modules" | sort -V | tail -n 1)
    cp "$OUT/boot/vmlinuz" "$D/vmlinuz"
    # type="pvh" needs the uncompressed ELF (it carries the PHYS32_ENTRY note): find the xz stream
    # inside the bzImage and unpack it, as the kernel's scripts/extract-vmlinux does.
    off=$(LC_ALL=C grep -obUaP '\xfd\x37\x7a\x58\x5a\x00' "$D/vmlinuz" | head -n 1 | cut -d: -f1)
    [ -n "$off" ] || { echo "no xz stream in vmlinuz"; return 1; }
    tail -c +$((off + 1)) "$D/vmlinuz" | xz -dcq >"$D/vmlinux" 2>/dev/null || true  # trailing data: xz complains
    head -c 4 "$D/vmlinux" | grep -q 'ELF' || { echo "extracted vmlinux is not an ELF"; return 1; }
    M=$R/lib/modules/$kver/kernel/drivers/net
    cp "$M/xen-netfront.ko" "$D/modules/"
    echo "$kver" >"$D/kernel-version"
    # Busybox initramfs (static busybox from the rootfs' busybox-static).
    tmp=$(mktemp -d)
    mkdir -p "$tmp"/{bin,dev,proc,sys,tmp,lib64,lib/modules,lib/x86_64-linux-gnu}
    cp "$R/bin/busybox" "$tmp/bin/busybox"
    cp "$R/usr/bin/iperf3" "$tmp/bin/"
    local lib
    for lib in $(in_chroot ldd /usr/bin/iperf3 | awk '/=>/ {print $3}'); do
        cp -L "$R$lib" "$tmp/lib/x86_64-linux-gnu/"
    done
    cp -L "$R/lib64/ld-linux-x86-64.so.2" "$tmp/lib64/"
    cp "$D/modules/xen-netfront.ko" "$tmp/lib/modules/"
    install -m 755 "$HERE/domu-init" "$tmp/init"
    (cd "$tmp" && find . | cpio -o -H newc --quiet | gzip -6) >"$D/initrd.cpio.gz"
    rm -rf "$tmp"
    ls -la "$D"
}

do_dom0_image() {
    # Size: the tree plus 1 GiB of room for logs, guest images and traces written in dom0.
    local mb
    mb=$(( $(du -sm "$R" | cut -f1) + 1024 ))
    rm -f "$OUT/dom0.img.tmp"
    mkfs.ext4 -q -F -L dom0root -d "$R" "$OUT/dom0.img.tmp" "${mb}M"
    mv "$OUT/dom0.img.tmp" "$OUT/dom0.img"
    ls -la "$OUT/dom0.img"
}

do_manifest() {
    {
        echo "HY_XEN_HOST_KEY=$KEY"
        echo "HY_SUITE=$SUITE"
        in_chroot dpkg-query -W -f='${Package}=${Version}\n' \
            xen-hypervisor-4.17-amd64 xen-utils-4.17 qemu-system-xen seabios linux-image-amd64 |
            awk -F= '{k = toupper($1); gsub(/[-.]/, "_", k); print "HY_VERSION_" k "=" $2}'
        echo "HY_DOM0_KERNEL=$(ls "$R/lib/modules" | sort -V | tail -n 1)"
    } >"$OUT/host.env"
    cat "$OUT/host.env"
}

step debootstrap "debootstrap $SUITE with Xen, the dom0 kernel and the toolstack (the slow part, ~2 min)" do_debootstrap
step apt-install "install the HVM device model (qemu-system-xen), SeaBIOS and python3 in the chroot" do_apt_install
step configure "install hy-dom0-init as PID 1, hostname, fstab, passwordless root" do_configure
step boot-files "copy Xen (gunzipped for QEMU's multiboot loader) and the dom0 kernel, make a small dom0 initrd" do_boot_files
step domu-files "extract the kernel and a busybox initramfs for Linux domU peers" do_domu_files
step dom0-image "make dom0.img from the tree with mkfs.ext4 -d (no loop mount)" do_dom0_image
step manifest "record component versions in host.env" do_manifest

touch "$OUT/.complete"
log "host ready: $OUT"
echo "$OUT"
