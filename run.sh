#!/usr/bin/env bash
# hykernel's front door: set up what is missing, build, boot the kernel, run its
# benchmarks and print the results table (also written to results/<host>-<mode>.json).
#
#   ./run.sh [--host qemu] [--mode auto|hvm|all] [--bench LIST] [--help]
set -euo pipefail
cd "$(dirname "$0")"

usage() {
  cat <<'USAGE'
usage: ./run.sh [--host qemu] [--mode MODE] [--bench LIST]

  --host qemu     where to boot the kernel: QEMU TCG on this machine (default)
  --mode MODE     auto, hvm, or all (default: hvm; on QEMU all modes mean hvm)
  --bench LIST    all (default), none, or a comma list of
                  cpuid,clock,interrupt,timer,mem_lat,mem_bw,net
  --help          this text

Installs missing prerequisites (QEMU >= 8, the Rust target), builds the kernel, boots it,
drives the network benchmarks from the host and prints a table.
USAGE
}

HOST=qemu MODE=hvm BENCH=all
while [ $# -gt 0 ]; do
  case "$1" in
    --host|--mode|--bench)
      [ $# -ge 2 ] || { echo "run.sh: $1 needs a value" >&2; usage >&2; exit 2; }
      case "$1" in --host) HOST=$2 ;; --mode) MODE=$2 ;; --bench) BENCH=$2 ;; esac
      shift 2 ;;
    -h|--help) usage; exit 0 ;;
    *) echo "run.sh: unknown flag '$1'" >&2; usage >&2; exit 2 ;;
  esac
done
case "$HOST" in qemu) ;; *) echo "run.sh: --host $HOST: unknown host (qemu)" >&2; exit 2 ;; esac
case "$MODE" in auto|hvm|all) ;; *) echo "run.sh: --mode $MODE: on QEMU the modes are auto, hvm, all" >&2; exit 2 ;; esac
[[ "$BENCH" =~ ^[a-z_,]+$ ]] || { echo "run.sh: --bench '$BENCH' is not a list of names" >&2; exit 2; }

tests/setup.sh
echo "==> building the kernel (release, x86_64-unknown-none) and the host driver" >&2
cargo build -q --release -p hykernel --target x86_64-unknown-none
cargo build -q --release -p hy-harness --bin hyrun
exec target/release/hyrun --host "$HOST" --mode "$MODE" --bench "$BENCH"
