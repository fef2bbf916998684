#!/bin/bash
# run.sh - the KVM test host's payload, run by hy-dom0-init in L1: the Xen host's image booted
# without Xen (tests/xen/run-host.sh --no-xen). It loads nested KVM, then runs each guest of
# /mnt/guests.txt as an L2 with Debian's QEMU under KVM, while L1's tracefs records the KVM
# events the harness counts (tests/src/kvmtrace/). Only starting things lives here; the
# harness (tests/src/kvm/) writes guests.txt and reads the results.
#
# /mnt/guests.txt: one guest a line, "<name> <timeout-s> <kind> <mac> <kernel command line...>";
# kind "hykernel" (/mnt/hykernel.elf) or "linux" (the Linux peer: /mnt/domu/vmlinuz and
# /mnt/domu/initrd-kvm.cpio.gz); mac "-" for no NIC, else the guest gets virtio-net on a tap
# bridged to hybr0 (10.0.0.1/24) and "hy-agent drive" runs /mnt/net/<name>.json against it.
# Results in /mnt/results: <name>.serial (COM1), <name>.trace (the trace text),
# <name>.exit (QEMU's exit status: isa-debug-exit gives 1 for success, 3 for failure, a
# Linux poweroff 0; 124 = timed out), <name>.qemu.log, <name>.net.json (the drive's report),
# kvm.txt (the module's parameters).
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
[ -r /mnt/guests.txt ] || fail payload "no /mnt/guests.txt"

if awk '$4 != "-" { f = 1 } END { exit !f }' /mnt/guests.txt; then
    [ -x /mnt/hy-agent ] || fail payload "no /mnt/hy-agent for the network guests"
    modprobe tun || fail network "modprobe tun failed"
    ip link add hybr0 type bridge && ip addr add 10.0.0.1/24 dev hybr0 && ip link set hybr0 up ||
        fail network "cannot bring up bridge hybr0 with 10.0.0.1/24"
    say "bridge hybr0 up"
fi

while read -r name tmo kind mac cmdline; do
    [ -n "$name" ] && [[ $name != \#* ]] || continue
    case $kind in
        hykernel) image=/mnt/hykernel.elf boot=(-m 128 -device isa-debug-exit,iobase=0xf4,iosize=0x04) ;;
        linux) image=/mnt/domu/vmlinuz boot=(-m 256 -initrd /mnt/domu/initrd-kvm.cpio.gz) ;;
        *) fail guests "guest $name: unknown kind '$kind'" ;;
    esac
    [ -r "$image" ] || fail payload "no $image for guest $name"
    nic=(-nic none)
    if [ "$mac" != - ]; then
        ip tuntap add dev hytap0 mode tap && ip link set hytap0 master hybr0 && ip link set hytap0 up ||
            fail network "cannot add tap hytap0 to hybr0 for $name"
        nic=(-netdev tap,id=n0,ifname=hytap0,script=no,downscript=no,vhost=off
            -device "virtio-net-pci,netdev=n0,mac=$mac")
    fi
    echo >"$T/trace"
    rm -f "$R/$name.serial"
    say "guest $name start: $kind $cmdline"
    echo 1 >"$T/tracing_on"
    timeout -k 5 "$tmo" "$QEMU" -accel kvm -cpu host -smp 1 -machine pc \
        -display none -monitor none -no-reboot "${nic[@]}" "${boot[@]}" -kernel "$image" \
        -serial "file:$R/$name.serial" -append "$cmdline" </dev/null >"$R/$name.qemu.log" 2>&1 &
    qemu=$!
    if [ "$mac" != - ]; then
        /mnt/hy-agent drive "/mnt/net/$name.json" "$R/$name.serial" "$R/$name.net.json" "$tmo" "$qemu" ||
            say "ERROR: step 'drive': the network drive of $name failed (its report: $name.net.json)"
    fi
    wait "$qemu"
    rc=$?
    echo 0 >"$T/tracing_on"
    [ "$mac" != - ] && ip link del hytap0
    echo "$rc" >"$R/$name.exit"
    cp "$T/trace" "$R/$name.trace" || say "ERROR: step 'trace': cannot copy the trace of $name"
    say "guest $name exit=$rc"
done </mnt/guests.txt
say "all guests done"
