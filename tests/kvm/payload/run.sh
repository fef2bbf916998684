#!/bin/bash
# run.sh - the KVM test host's payload, run by hy-dom0-init in L1: the Xen host's image booted
# without Xen (tests/xen/run-host.sh --no-xen). It loads nested KVM, then runs each guest of
# /mnt/guests.txt as an L2 with Debian's QEMU under KVM, while L1's tracefs records the KVM
# events the harness counts (tests/src/kvmtrace/). Only starting things lives here; the
# harness (tests/src/kvm/) writes guests.txt and reads the results.
#
# /mnt/guests.txt: one guest a line, "<name> <timeout-s> <kernel command line...>".
# Results in /mnt/results: <name>.serial (COM1), <name>.trace (the trace text),
# <name>.exit (QEMU's exit status: isa-debug-exit gives 1 for success, 3 for failure;
# 124 = timed out), <name>.qemu.log, kvm.txt (the module's parameters).
# Console lines "HY-KVM: ..." mark the steps; a failure names its step.
set -uo pipefail
export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
R=/mnt/results
T=/sys/kernel/tracing
EVENTS="kvm_exit kvm_msr kvm_cpuid kvm_pv_eoi kvm_inj_virq"
say() { echo "HY-KVM: $*"; }
fail() { say "ERROR: step '$1': $2"; exit 1; }
mkdir -p "$R"

modprobe kvm_amd nested=1 || fail modprobe "modprobe kvm_amd nested=1 failed (does the L0 CPU offer SVM?)"
[ -c /dev/kvm ] || fail kvm "no /dev/kvm after loading kvm_amd"
for p in nested npt avic; do echo "$p=$(cat /sys/module/kvm_amd/parameters/$p 2>/dev/null)"; done >"$R/kvm.txt"
say "kvm_amd loaded: $(tr '\n' ' ' <"$R/kvm.txt")"

mountpoint -q "$T" || mount -t tracefs nodev "$T" || fail tracefs "cannot mount tracefs on $T"
echo 0 >"$T/tracing_on"
echo 131072 >"$T/buffer_size_kb" || fail tracefs "cannot size the trace buffer"
for e in $EVENTS; do
    echo 1 >"$T/events/kvm/$e/enable" || fail tracefs "cannot enable kvm:$e"
done
QEMU=$(command -v qemu-system-x86_64) || fail qemu "no qemu-system-x86_64 in L1 (host-packages.txt: qemu-system-x86)"
[ -r /mnt/hykernel.elf ] || fail payload "no /mnt/hykernel.elf"
[ -r /mnt/guests.txt ] || fail payload "no /mnt/guests.txt"

while read -r name tmo cmdline; do
    [ -n "$name" ] && [[ $name != \#* ]] || continue
    echo >"$T/trace"
    say "guest $name start: $cmdline"
    echo 1 >"$T/tracing_on"
    timeout -k 5 "$tmo" "$QEMU" -accel kvm -cpu host -m 128 -smp 1 -machine pc \
        -display none -monitor none -nic none -no-reboot \
        -serial "file:$R/$name.serial" -kernel /mnt/hykernel.elf -append "$cmdline" \
        -device isa-debug-exit,iobase=0xf4,iosize=0x04 </dev/null >"$R/$name.qemu.log" 2>&1
    rc=$?
    echo 0 >"$T/tracing_on"
    echo "$rc" >"$R/$name.exit"
    cp "$T/trace" "$R/$name.trace" || say "ERROR: step 'trace': cannot copy the trace of $name"
    say "guest $name exit=$rc"
done </mnt/guests.txt
say "all guests done"
