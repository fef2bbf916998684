#!/usr/bin/env bash
# Installs what building and running the kernel needs, if it is missing, saying what and
# why in one line each. Safe to re-run: it does nothing when everything is present.
#
#   tests/setup.sh          tools for the QEMU host (the default)
#   tests/setup.sh --xen    also what building and booting the Xen test host needs
#
# Needs root (or sudo) only when something must be installed.
set -euo pipefail
# shellcheck source=tests/lib/fail-step.sh
. "$(dirname "$0")/lib/fail-step.sh"

XEN=
case "${1:-}" in
  --xen) XEN=1 ;;
  "") ;;
  *) echo "setup: unknown flag '$1' (--xen)" >&2; exit 2 ;;
esac

say() { printf '==> %s\n' "$*" >&2; }
die() { printf 'setup: %s\n' "$*" >&2; exit 1; }

SUDO=()
if [ "$(id -u)" -ne 0 ]; then
  command -v sudo >/dev/null || NEED_ROOT=1
  SUDO=(sudo)
fi

apt_updated=
apt_install() { # apt_install [-t suite] package...
  [ -n "${NEED_ROOT:-}" ] && die "installing $* needs root (or sudo)"
  if [ -z "$apt_updated" ]; then
    "${SUDO[@]}" apt-get update -q >/dev/null || die "apt-get update failed"
    apt_updated=1
  fi
  DEBIAN_FRONTEND=noninteractive "${SUDO[@]}" apt-get install -y -q --no-install-recommends "$@" >/dev/null \
    || die "apt-get install $* failed"
}

# Rust and the bare-metal target.
hy_step "the Rust toolchain and the x86_64-unknown-none target"
command -v cargo >/dev/null || die "cargo not found: install Rust with rustup first (https://rustup.rs)"
if ! rustup target list --installed 2>/dev/null | grep -qx x86_64-unknown-none; then
  say "installing the Rust target x86_64-unknown-none (the kernel is built for bare metal)"
  rustup target add x86_64-unknown-none >/dev/null || die "rustup target add x86_64-unknown-none failed"
fi
if ! cargo clippy --version >/dev/null 2>&1; then
  say "installing clippy (the test suite lints the code)"
  rustup component add clippy rustfmt >/dev/null || die "rustup component add clippy failed"
fi

# QEMU >= 8: bookworm has 7.2, backports has 10.x.
hy_step "QEMU >= 8 (qemu-system-x86_64)"
# Prints nothing (and succeeds) when QEMU is missing, so a fresh machine goes on to install it.
qemu_major() {
  command -v qemu-system-x86_64 >/dev/null || return 0
  qemu-system-x86_64 --version 2>/dev/null | sed -n 's/^QEMU emulator version \([0-9]*\).*/\1/p' || true
}
major=$(qemu_major)
if [ -z "$major" ] || [ "$major" -lt 8 ]; then
  say "installing QEMU from bookworm-backports (found ${major:-none}; QEMU >= 8 emulates x2APIC under TCG)"
  src=/etc/apt/sources.list.d/debian.sources
  if [ -f "$src" ] && ! grep -q 'bookworm-backports' "$src"; then
    "${SUDO[@]}" sed -i '0,/^Suites: bookworm bookworm-updates$/s//& bookworm-backports/' "$src"
    apt_updated=
  fi
  grep -rqs 'bookworm-backports' /etc/apt/sources.list /etc/apt/sources.list.d/ \
    || die "no bookworm-backports entry in the apt sources; add one and re-run"
  apt_install -t bookworm-backports qemu-system-x86
  major=$(qemu_major)
  [ -n "$major" ] && [ "$major" -ge 8 ] || die "QEMU >= 8 still missing after the install"
fi

# Host networking for the guest (tap device, ping, nc-free checks).
hy_step "host networking tools (iproute2, ping)"
missing=()
command -v ip >/dev/null || missing+=(iproute2)
command -v ping >/dev/null || missing+=(iputils-ping)
if [ ${#missing[@]} -gt 0 ]; then
  say "installing ${missing[*]} (the host reaches the guest over a tap device and pings it)"
  apt_install "${missing[@]}"
fi

# The Xen test host: debootstrap builds dom0, e2fsprogs makes and reads its disks, objcopy
# makes the ELF32 copy of the kernel that qemu-xen loads, flock/timeout bound every run.
if [ -n "$XEN" ]; then
  hy_step "the Xen test host's build tools"
  missing=()
  for t in debootstrap:debootstrap mkfs.ext4:e2fsprogs debugfs:e2fsprogs objcopy:binutils xz:xz-utils \
           cpio:cpio flock:util-linux timeout:coreutils apt-get:apt; do
    command -v "${t%%:*}" >/dev/null || missing+=("${t#*:}")
  done
  if [ ${#missing[@]} -gt 0 ]; then
    say "installing $(printf '%s\n' "${missing[@]}" | sort -u | tr '\n' ' ')(to build and boot the Xen test host)"
    apt_install $(printf '%s\n' "${missing[@]}" | sort -u)
  fi
fi
exit 0
