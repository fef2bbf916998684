#!/usr/bin/env bash
# hykernel's front door: set up what is missing, build, boot the kernel, run its
# benchmarks and print the results table (also written to results/<host>-<mode>.json).
#
#   ./run.sh [--host qemu|xen|kvm|xen,kvm] [--mode auto|hvm|hybrid|pvh|pv|all] [--bench LIST] [--help]
set -euo pipefail
cd "$(dirname "$0")"
# shellcheck source=tests/lib/fail-step.sh
. tests/lib/fail-step.sh

usage() {
  cat <<'USAGE'
usage: ./run.sh [--host qemu|xen|kvm|xen,kvm] [--mode MODE] [--bench LIST] [--rounds N] [--boots N [--busy]]

  --host HOST     where to boot the kernel:
                    qemu  QEMU TCG on this machine (default)
                    xen   the project's Xen 4.17 test host, nested under QEMU TCG, built from
                          Debian's packages on first use (~3 min, cached in ~/.cache/hykernel);
                          every benchmark also gets its VM exits per operation, and boot time
                          is compared with a Linux PVH domU
                    kvm   the same image booted without Xen: the kernel runs as an L2 KVM
                          guest, every benchmark gets its exits per operation from L1's trace
                    xen,kvm  both, one after the other, each printing its own tables, then one
                          side-by-side view of both (results/side-by-side.json)
  --mode MODE     qemu: auto, hvm, all (= hvm)
                  xen:  hvm, hybrid, pvh, pv (classic PV), a comma list of them, or all: those four plus hybrid
                        with the per-vCPU upcall vector (without and with Viridian's APIC
                        assist), side by side, and with net the interrupt-load experiment
                        (default: hvm)
                  kvm:  hvm, hybrid (kvmclock + PV EOI), hvm,hybrid, or all: those two plus hybrid
                        with eoi=lapic
                  xen,kvm: all, or a comma list of hvm, hybrid, pvh, pv (KVM runs hvm
                        and hybrid of them; pvh and pv are Xen's columns only)
  --bench LIST    all (default), none, or a comma list of
                  cpuid,hypercall,clock,interrupt,evtchn,timer,mem_lat,mem_bw,mmu,net
  --rounds N      xen: interleaved rounds of each network guest (ours, Linux, ours, ...);
                  network figures are medians with min and max (default 5)
  --boots N       xen: instead of the benchmarks, boot each variant and the Linux peer N
                  times without retries and print how often each died, and why
  --busy          with --boots: one competing busy process on this machine meanwhile
  --help          this text

Installs missing prerequisites (QEMU >= 8, the Rust target), builds the kernel, boots it,
drives the network benchmarks from the host and prints a table.
USAGE
}

HOST=qemu MODE=hvm BENCH=all
EXTRA=()
while [ $# -gt 0 ]; do
  case "$1" in
    --host|--mode|--bench|--boots|--rounds)
      [ $# -ge 2 ] || { echo "run.sh: $1 needs a value" >&2; usage >&2; exit 2; }
      case "$1" in --host) HOST=$2 ;; --mode) MODE=$2 ;; --bench) BENCH=$2 ;; --boots|--rounds) EXTRA+=("$1" "$2") ;; esac
      shift 2 ;;
    --busy) EXTRA+=(--busy); shift ;;
    -h|--help) usage; exit 0 ;;
    *) echo "run.sh: unknown flag '$1'" >&2; usage >&2; exit 2 ;;
  esac
done
case "$HOST:$MODE" in
  qemu:auto|qemu:hvm|qemu:all|xen:all|kvm:all) ;;
  qemu:*) echo "run.sh: --mode $MODE: on --host qemu the modes are auto, hvm, all" >&2; exit 2 ;;
  xen:*) [[ "$MODE" =~ ^(hvm|hybrid|pvh|pv)(,(hvm|hybrid|pvh|pv))*$ ]] || {
    echo "run.sh: --mode $MODE: on --host xen the modes are all or a comma list of hvm, hybrid, pvh, pv" >&2; exit 2; } ;;
  kvm:*) [[ "$MODE" =~ ^(hvm|hybrid)(,(hvm|hybrid))*$ ]] || {
    echo "run.sh: --mode $MODE: on --host kvm the modes are all or a comma list of hvm, hybrid" >&2; exit 2; } ;;
  xen,kvm:all) ;;
  xen,kvm:*) [[ "$MODE" =~ ^(hvm|hybrid|pvh|pv)(,(hvm|hybrid|pvh|pv))*$ ]] || {
    echo "run.sh: --mode $MODE: on --host xen,kvm the modes are all or a comma list of hvm, hybrid, pvh, pv" >&2; exit 2; } ;;
  *) echo "run.sh: --host $HOST: unknown host (qemu, xen, kvm, or xen,kvm for both)" >&2; exit 2 ;;
esac
if [ "$HOST" != qemu ] && [ "$(id -u)" -ne 0 ]; then
  echo "run.sh: --host $HOST needs root (debootstrap, chroot and the host's disks)" >&2; exit 2
fi
[[ "$BENCH" =~ ^[a-z_,]+$ ]] || { echo "run.sh: --bench '$BENCH' is not a list of names" >&2; exit 2; }

hy_step "prerequisites (tests/setup.sh)"
if [ "$HOST" != qemu ]; then tests/setup.sh --xen; else tests/setup.sh; fi
hy_step "building the kernel and hyrun"
echo "==> building the kernel (release, x86_64-unknown-none) and the host driver" >&2
cargo build -q --release -p hykernel --target x86_64-unknown-none
cargo build -q --release -p hy-harness --bin hyrun
hy_step "hyrun --host $HOST --mode $MODE"
exec target/release/hyrun --host "$HOST" --mode "$MODE" --bench "$BENCH" "${EXTRA[@]}"
