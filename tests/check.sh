#!/usr/bin/env bash
# Runs every test of the project; the README's test command and what CI runs.
#
#  1. prerequisites (tests/setup.sh)
#  2. formatting and clippy, host crates and the kernel target, warnings as errors
#  3. host unit tests: xen-iface, arch, drivers, the kernel's pure modules, the harness
#  4. the kernel image and its Xen notes (tests/tests/pv_image.rs), then boot tests under
#     QEMU TCG (tests/tests/qemu_boot.rs)
#  5. the Xen test host (built once, cached in ~/.cache/hykernel), and the kernel as Xen
#     HVM and PVH domUs on it (tests/tests/xen_host.rs). Needs root; HY_SKIP_XEN=1 skips
#     it explicitly.
#  6. the KVM test host (the same image without Xen) and the kernel as an L2 KVM guest in
#     hvm and hybrid mode (tests/tests/kvm_host.rs). Needs root; skipped with the Xen tests,
#     or alone with HY_SKIP_KVM=1.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=tests/lib/fail-step.sh
. tests/lib/fail-step.sh
step() { hy_step "$*"; printf '\n==> %s\n' "$*" >&2; }

step "prerequisites"
if [ -n "${HY_SKIP_XEN:-}" ]; then tests/setup.sh; else tests/setup.sh --xen; fi

step "format and lints"
cargo fmt --all --check
cargo clippy -q --workspace --all-targets -- -D warnings
cargo clippy -q -p hykernel --target x86_64-unknown-none -- -D warnings

step "host unit tests"
cargo test -q --workspace --exclude hy-harness
cargo test -q -p hy-harness --lib --bins

step "the dom0 agent against fake xl and xentrace"
cargo test -q -p hy-harness --test agent

step "run-host.sh stops a nested host whose console went silent"
cargo test -q -p hy-harness --test run_host

step "setup on a machine without QEMU: installs it or names it"
cargo test -q -p hy-harness --test setup

step "kernel image"
cargo build -q --release -p hykernel --target x86_64-unknown-none
cargo test -q -p hy-harness --test pv_image

step "boot tests under QEMU TCG"
cargo test -q -p hy-harness --test qemu_boot -- --test-threads=1

if [ -n "${HY_SKIP_XEN:-}" ]; then
  step "Xen host tests SKIPPED (HY_SKIP_XEN is set)"
else
  [ "$(id -u)" -eq 0 ] || { echo "check: the Xen host tests need root (or set HY_SKIP_XEN=1 to skip them)" >&2; exit 1; }
  step "Xen test host, and the kernel as HVM and PVH domUs on it"
  cargo test -q -p hy-harness --test xen_host -- --test-threads=1
  step "PV I/O on the Xen host: netfront, the emulated NIC and a Linux peer, driven from dom0"
  cargo test -q -p hy-harness --test xen_net -- --test-threads=1
  if [ -n "${HY_SKIP_KVM:-}" ]; then
    step "KVM host tests SKIPPED (HY_SKIP_KVM is set)"
  else
    step "KVM test host: the kernel as an L2 KVM guest, hvm and hybrid (kvmclock, PV EOI)"
    cargo test -q -p hy-harness --test kvm_host -- --test-threads=1
  fi
fi

step "all tests passed"
