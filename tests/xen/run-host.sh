#!/bin/bash
# run-host.sh - boot the Xen test host (Xen 4.17 + Debian dom0, from build-host.sh) nested under
# QEMU 7.2 TCG, run a payload in dom0 and copy its results out.
#
# Usage: sudo tests/xen/run-host.sh [--no-xen] <payload-dir> <out-dir> [timeout-s]
#   --no-xen       boot the same image as plain Linux (the KVM test host, tests/kvm/): the dom0
#                  kernel and initrd straight from QEMU, console on ttyS0; hy-dom0-init skips the
#                  toolstack and runs /mnt/run.sh as usual (there, an L1 with nested KVM)
#   <payload-dir>  copied onto an ext4 disk (mkfs.ext4 -d) that dom0 mounts at /mnt; it must hold
#                  an executable run.sh (tests/xen/payload/run.sh, which starts the dom0 agent
#                  hy-agent on plan.json; the harness fills the rest: configs, kernels).
#                  hy-dom0-init runs /mnt/run.sh, which writes its results under /mnt/results.
#   <out-dir>      gets the files of /mnt/results, plus:
#                    host-console.log   QEMU's whole console (Xen, dom0, guests' 0xe9 lines), each
#                                       line prefixed with [seconds since QEMU's first output]
#                    host-steps.txt     when each boot step was reached (seconds)
#                    run.exit           exit status of run.sh (written by hy-dom0-init)
#                    host-freeze-l0.txt only when the host froze: the L0 QEMU's monitor on its CPU
#                                       (registers, local APIC, interrupt controllers)
#                  An existing <out-dir> must be empty or an earlier run-host.sh output (then it is
#                  emptied first).
#   [timeout-s]    bound for the whole QEMU run (default 600). run.sh gets 60 s less, so that a
#                  hanging payload is stopped by dom0 itself and its results are still saved.
# Exit status: 0 only if dom0 booted, run.sh exited 0 and the results were copied out.
#
# L0 settings (why each is needed; see qemu72.sh): QEMU 7.2 (10.0's TCG mis-reports nested CR reads),
# -cpu max,-smap (7.2 + SMAP crashes PV dom0), QEMU_MODULE_DIR, -L firmware paths, -nic none;
# -accel tcg (no usable KVM), q35, -smp 1 (two CPUs made the L0 resume guests with Xen's state
# now and then), -m 3G (dom0 gets 1 GiB, guests the rest).
# The dom0 disk is opened with snapshot=on: dom0's writes go to a temporary overlay, the cached
# image stays pristine and several runs can share it.
# QEMU runs under `flock /tmp/hy-qemu.lock` (one QEMU at a time on this machine) and `timeout`.
#
# Environment: HY_XEN_HOST=<dir>     use this host build instead of running build-host.sh
#              HY_QEMU=<binary>      L0 QEMU (default: tests/xen/qemu72.sh)
#              HY_PAYLOAD_MB=<n>     free space on the payload disk for results (default 512)
#              HY_LOCK_WAIT=<s>      how long to wait for the QEMU lock (default 3600)
#              HY_QEMU_LOCK=<file>   the lock itself (default /tmp/hy-qemu.lock; tests use their own)
#              HY_XEN_EXTRA="..."    extra Xen command line options
#              HY_TCG_THREAD=single|multi  TCG vCPU threading (default multi, see the README)
#              HY_L0_CPUS=1|2        CPUs of the nested host (default 1, see the README)
#              HY_L0_PIN=auto|off|<n> the host CPU all of QEMU's threads run on (default auto: the
#                                    first this script may use; why: at PIN= below)
#              HY_SILENCE_S=<s>      a console silent this long means the nested host froze
#                                    (default 300; QEMU is stopped and the run fails saying so)
set -euo pipefail
. "$(dirname "$0")/../lib/fail-step.sh"

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
LOCK=${HY_QEMU_LOCK:-/tmp/hy-qemu.lock}

log() { echo "run-host: $*" >&2; }
die() { echo "run-host: ERROR: $*" >&2; exit 1; }

NO_XEN=0
if [ "${1:-}" = --no-xen ]; then
    NO_XEN=1
    shift
fi
[ $# -ge 2 ] && [ $# -le 3 ] || die "usage: run-host.sh [--no-xen] <payload-dir> <out-dir> [timeout-s]"
PAYLOAD=$1
OUTDIR=$2
TMO=${3:-600}
[[ $TMO =~ ^[0-9]+$ ]] && [ "$TMO" -ge 60 ] || die "timeout must be a number of seconds >= 60"
[ -d "$PAYLOAD" ] || die "payload dir $PAYLOAD does not exist"
[ -x "$PAYLOAD/run.sh" ] || die "$PAYLOAD/run.sh is missing or not executable"
for t in mkfs.ext4 debugfs e2fsck flock timeout du awk taskset; do
    command -v "$t" >/dev/null || die "missing host tool '$t' (Debian: e2fsprogs, util-linux, coreutils)"
done

# --- out-dir: only ever empty a directory that an earlier run-host.sh made ----------------------
if [ -d "$OUTDIR" ] && [ -n "$(ls -A "$OUTDIR")" ]; then
    [ -e "$OUTDIR/.hy-run-host" ] || die "$OUTDIR is not empty and not an earlier run-host.sh output; refusing to overwrite it"
    find "$OUTDIR" -mindepth 1 -delete
fi
mkdir -p "$OUTDIR"
OUTDIR=$(cd "$OUTDIR" && pwd)
touch "$OUTDIR/.hy-run-host"
CONSOLE=$OUTDIR/host-console.log

# --- host build and L0 QEMU ---------------------------------------------------------------------
HOST=${HY_XEN_HOST:-}
if [ -z "$HOST" ]; then
    HOST=$("$HERE/build-host.sh") || die "build-host.sh failed"
fi
for f in boot/vmlinuz boot/initrd.img dom0.img $([ "$NO_XEN" = 1 ] || echo boot/xen); do
    [ -f "$HOST/$f" ] || die "host build $HOST has no $f (run tests/xen/build-host.sh)"
done
QEMU=${HY_QEMU:-}
if [ -z "$QEMU" ]; then
    QEMU=$("$HERE/qemu72.sh") || die "qemu72.sh failed"
fi
[ -x "$QEMU" ] || die "QEMU binary $QEMU not found"
# The unpacked 7.2 must load its own accelerator modules, not the installed QEMU's.
MODDIR=$(cd "$(dirname "$QEMU")/.." && pwd)/lib/x86_64-linux-gnu/qemu
[ -d "$MODDIR" ] && export QEMU_MODULE_DIR=$MODDIR

# --- payload disk -------------------------------------------------------------------------------
WORK=$(mktemp -d "${TMPDIR:-/tmp}/hy-run-host.XXXXXX")
trap 'rm -rf "$WORK"' EXIT
mkdir -p "$WORK/payload"
cp -a "$PAYLOAD/." "$WORK/payload/"
rm -rf "$WORK/payload/results"
mkdir -p "$WORK/payload/results"
PAYLOAD_MB=$(( $(du -sm "$WORK/payload" | cut -f1) + ${HY_PAYLOAD_MB:-512} ))
if ! mkfs.ext4 -q -F -L hypayload -d "$WORK/payload" "$WORK/payload.img" "${PAYLOAD_MB}M" \
    >"$WORK/mkfs.log" 2>&1; then
    cat "$WORK/mkfs.log" >&2
    die "mkfs.ext4 of the payload disk failed"
fi

# --- command lines ------------------------------------------------------------------------------
# The host's CPU count and TCG's vCPU threading (see tests/xen/README.md, "Guests that died
# early": with two CPUs the L0's nested SVM now and then resumes a guest with Xen's state; with
# one, no guest died in the measured boots).
TCG_THREAD=${HY_TCG_THREAD:-multi}
case $TCG_THREAD in single | multi) ;; *) die "HY_TCG_THREAD must be single or multi, not '$TCG_THREAD'" ;; esac
L0_CPUS=${HY_L0_CPUS:-1}
case $L0_CPUS in 1 | 2) ;; *) die "HY_L0_CPUS must be 1 or 2, not '$L0_CPUS'" ;; esac

# All of QEMU's threads on one host CPU (HY_L0_PIN: auto = the first CPU this script may use,
# a CPU number, or off). QEMU 7.2's nested SVM clears a bit of the vCPU's interrupt requests
# at every #VMEXIT (and sets one at VMRUN) without the lock that its main loop holds when the
# APIC timer raises CPU_INTERRUPT_HARD; on two host CPUs at once the timer's bit is now and
# then lost, the vector waits in the L1's IRR for ever and the host freezes (host-freeze-l0.txt
# of such a boot: IF=1, the timer vector in IRR, nothing in service; see tests/xen/README.md).
# On one host CPU the two threads take turns, and an update compiled to one read-modify-write
# instruction cannot be split by a preemption.
PIN=${HY_L0_PIN:-auto}
PIN_CMD=()
if [ "$PIN" != off ]; then
    if [ "$PIN" = auto ]; then
        PIN=$(taskset -pc $$ | sed -n 's/.*: *\([0-9]*\).*/\1/p')
        [[ $PIN =~ ^[0-9]+$ ]] || die "could not read this process's CPU list (taskset -pc)"
    fi
    [[ $PIN =~ ^[0-9]+$ ]] || die "HY_L0_PIN must be auto, off or a CPU number, not '$PIN'"
    PIN_CMD=(taskset -c "$PIN")
fi
[ "$L0_CPUS" = 1 ] || [ "${#PIN_CMD[@]}" = 0 ] || log "note: HY_L0_CPUS=$L0_CPUS with QEMU pinned to CPU $PIN (HY_L0_PIN=off to spread it)"

PAYLOAD_TMO=$((TMO - 60))
[ "$PAYLOAD_TMO" -ge 30 ] || PAYLOAD_TMO=30
# No "noreboot": if Xen panics or dom0 crashes, Xen reboots and -no-reboot ends QEMU right away
# instead of waiting for the timeout.
XEN_CMD="console=com1 com1=115200,8n1 loglvl=all guest_loglvl=all console_timestamps=boot conring_size=1M"
XEN_CMD+=" dom0_mem=1024M,max:1024M dom0_max_vcpus=$L0_CPUS ${HY_XEN_EXTRA:-}"
# Multiboot modules are separated by ',' in -initrd, and a module's cmdline follows a space:
# so the dom0 cmdline must not contain a comma.
DOM0_CMD="console=hvc0 earlyprintk=xen root=/dev/vda rw init=/usr/local/sbin/hy-dom0-init"
DOM0_CMD+=" hy.poweroff hy.payload_timeout=$PAYLOAD_TMO"
[[ $DOM0_CMD != *,* ]] || die "dom0 cmdline must not contain ','"

QEMU_ARGS=(
    -L /usr/share/qemu -L /usr/share/seabios -nic none
    -accel "tcg,thread=$TCG_THREAD" -cpu max,-smap -smp "$L0_CPUS" -m 3G -machine q35
    -display none -serial stdio -no-reboot -pidfile "$WORK/qemu.pid"
    # The L0's monitor on two FIFOs (mon.in, mon.out): read only when the host froze, to
    # record where its CPU sat (host-freeze-l0.txt).
    -chardev "pipe,id=l0mon,path=$WORK/mon" -mon chardev=l0mon,mode=readline
)
if [ "$NO_XEN" = 1 ]; then
    # Plain Linux: the same kernel, initrd and root image, no hypervisor below it. Linux's
    # `panic=-1` reboots at once on a panic, which -no-reboot turns into QEMU's exit.
    L1_CMD="console=ttyS0 root=/dev/vda rw init=/usr/local/sbin/hy-dom0-init panic=-1"
    L1_CMD+=" hy.poweroff hy.payload_timeout=$PAYLOAD_TMO"
    QEMU_ARGS+=(-kernel "$HOST/boot/vmlinuz" -append "$L1_CMD" -initrd "$HOST/boot/initrd.img")
else
    QEMU_ARGS+=(-kernel "$HOST/boot/xen" -append "$XEN_CMD" -initrd "$HOST/boot/vmlinuz $DOM0_CMD,$HOST/boot/initrd.img")
fi
QEMU_ARGS+=(
    -drive "file=$HOST/dom0.img,if=virtio,format=raw,snapshot=on"
    -drive "file=$WORK/payload.img,if=virtio,format=raw"
)

# --- console filter: timestamp every line into the log, show the milestones -------------------
# Times are seconds since QEMU's first console line (Xen's banner, ~0.3 s after QEMU starts).
# A running host prints something every few seconds (Xen, dom0, the agent's progress, the
# guests' consoles); one silent for HY_SILENCE_S froze (seen once: QEMU idle, its vCPU thread
# asleep, no timer ever waking it), so QEMU is stopped instead of waiting for the timeout.
SILENCE=${HY_SILENCE_S:-300}
[[ $SILENCE =~ ^[0-9]+$ ]] && [ "$SILENCE" -ge 1 ] || die "HY_SILENCE_S must be a number of seconds >= 1"
console_filter() {
    local line t0="" us t rc
    while true; do
        if IFS= read -r -t "$SILENCE" line; then
            :
        else
            rc=$?
            if [ "$rc" -gt 128 ]; then
                # Silence counts from QEMU's first line: before it, flock may wait a long
                # time for the lock, which is no freeze.
                if [ -n "$t0" ]; then frozen; fi
                continue
            fi
            [ -n "$line" ] || break
        fi
        us=${EPOCHREALTIME/./}          # microseconds, without forking
        [ -n "$t0" ] || t0=$us
        us=$((us - t0))
        printf -v t '%5d.%02d' $((us / 1000000)) $((us % 1000000 / 10000))
        line=${line%$'\r'}
        printf '[%s] %s\n' "$t" "$line" >>"$CONSOLE"
        case $line in
            *HY-DOM0:* | *HY-RUN:* | *HY-AGENT:* | *HY-INITRD:* | *HY-KVM:* | *"Xen version"* | *Panic* | *"Kernel panic"* | *"Dom0 crashed"* | \
            *"qemu-system-x86_64:"*)
                echo "  [$t] $line" >&2 ;;
        esac
    done
}

# Where the frozen host's CPUs sit, from the L0's monitor: registers (RIP, IF, HLT), the local
# APIC (is a timer armed, an interrupt pending?), twice 2 s apart, into host-freeze-l0.txt.
freeze_state() {
    local out=$OUTDIR/host-freeze-l0.txt i
    # (timeout: opening the FIFO waits for a reader, and an L0 that is not QEMU has none)
    for i in 1 2; do
        timeout 5 bash -c 'printf "info cpus\ninfo registers -a\ninfo lapic\ninfo pic\ninfo irq\n" >"$1"' _ "$WORK/mon.in" \
            2>/dev/null || return 0
        sleep 2
    done
    # (the monitor's line editing echoes each command with terminal escapes: dropped)
    sed 's/\x1b\[[0-9;]*[A-Za-z]//g' "$WORK/monitor.log" >"$out" 2>/dev/null || true
    echo "[ silent ] run-host: the L0's view of the frozen host (registers, local APIC): $out" >>"$CONSOLE"
}

# The console was silent for $SILENCE s: mark the run and stop QEMU (once).
frozen() {
    [ -e "$WORK/frozen" ] && return
    : >"$WORK/frozen"
    echo "[ silent ] run-host: the host's console was silent for ${SILENCE}s: stopping QEMU" >>"$CONSOLE"
    log "the host's console was silent for ${SILENCE}s: the nested host froze; stopping QEMU"
    freeze_state
    local pid i
    pid=$(cat "$WORK/qemu.pid" 2>/dev/null) && [ -n "$pid" ] || return 0
    kill "$pid" 2>/dev/null || return 0
    # A frozen QEMU may not act on SIGTERM (seen on the KVM host: its vCPU thread asleep,
    # shutdown waiting for it); give it 10 s, then SIGKILL.
    for i in 1 2 3 4 5 6 7 8 9 10; do
        kill -0 "$pid" 2>/dev/null || return 0
        sleep 1
    done
    echo "[ silent ] run-host: QEMU did not stop on SIGTERM within 10 s: SIGKILL" >>"$CONSOLE"
    kill -9 "$pid" 2>/dev/null || true
}

if ! flock -n "$LOCK" true; then
    log "waiting for the QEMU lock $LOCK (another QEMU is running; up to ${HY_LOCK_WAIT:-3600}s)"
fi
log "booting $([ "$NO_XEN" = 1 ] && echo "Linux without Xen (the KVM host's L1)" || echo "Xen + dom0") under $QEMU (timeout ${TMO}s, payload timeout ${PAYLOAD_TMO}s, ${PIN_CMD[*]:-not pinned})"
log "console log: $CONSOLE"
echo "# $QEMU ${QEMU_ARGS[*]}" >"$CONSOLE"
# The monitor's FIFOs (QEMU opens both read-write, so neither side blocks), drained from the
# start so that QEMU never waits on a full pipe.
mkfifo "$WORK/mon.in" "$WORK/mon.out"
cat "$WORK/mon.out" >"$WORK/monitor.log" 2>/dev/null &
MON_READER=$!
T_START=$SECONDS
set +e
flock -w "${HY_LOCK_WAIT:-3600}" -E 75 "$LOCK" \
    "${PIN_CMD[@]}" timeout -k 10 "$TMO" "$QEMU" "${QEMU_ARGS[@]}" </dev/null 2>&1 | console_filter
QRC=${PIPESTATUS[0]}
kill "$MON_READER" 2>/dev/null || true
set -e
log "QEMU ended after $((SECONDS - T_START)) s (exit $QRC)"

# --- which boot step was reached ----------------------------------------------------------------
# name|extended regex of the console line that shows the step was reached
STEPS=(
    "xen-boot|\(XEN\) .*Xen version"
    "dom0-kernel|Linux version"
    "dom0-root|EXT4-fs \(vda\): mounted"
    "dom0-init|HY-DOM0: init started"
    "toolstack|HY-DOM0: toolstack up"
    "payload-start|HY-DOM0: payload start"
    "payload-end|HY-DOM0: payload exit="
    "poweroff|HY-DOM0: powering off"
)
if [ "$NO_XEN" = 1 ]; then
    # No hypervisor and no toolstack: the steps of plain Linux.
    STEPS=("${STEPS[@]:1:3}" "${STEPS[@]:5}")
fi
LAST_STEP=qemu-start
NEXT_STEP=none
: >"$OUTDIR/host-steps.txt"
for s in "${STEPS[@]}"; do
    name=${s%%|*}
    pat=${s#*|}
    hit=$(grep -m 1 -E -- "$pat" "$CONSOLE" || true)
    if [ -z "$hit" ]; then
        NEXT_STEP=$name
        break
    fi
    LAST_STEP=$name
    echo "$name $(echo "$hit" | sed -n 's/^\[ *\([0-9.]*\)\].*/\1/p')" >>"$OUTDIR/host-steps.txt"
done
log "steps reached (s since first console line): $(tr '\n' ' ' <"$OUTDIR/host-steps.txt")"

# --- copy the results out (works on a dirty file system too: e2fsck replays the journal) --------
if [ -s "$WORK/payload.img" ]; then
    e2fsck -fy "$WORK/payload.img" >"$WORK/e2fsck.log" 2>&1 || true
    mkdir -p "$WORK/extract"
    if debugfs -R "rdump /results $WORK/extract" "$WORK/payload.img" >"$WORK/debugfs.log" 2>&1 \
        && [ -d "$WORK/extract/results" ]; then
        cp -a "$WORK/extract/results/." "$OUTDIR/"
    else
        log "WARNING: could not copy /results off the payload disk:"
        sed 's/^/    | /' "$WORK/debugfs.log" >&2
    fi
fi

# --- verdict ------------------------------------------------------------------------------------
fail() {
    local what=$1
    echo "run-host: ERROR: $what" >&2
    echo "run-host:   last step reached: '$LAST_STEP', next step: '$NEXT_STEP'; console log: $CONSOLE" >&2
    grep -E '^\[.*(Panic|Kernel panic|Dom0 crashed|qemu-system-x86_64:|HY-INITRD: ERROR|HY-DOM0: ERROR|HY-RUN: ERROR)' "$CONSOLE" \
        | head -n 10 | sed 's/^/    | /' >&2 || true
    exit 1
}
if [ -e "$WORK/frozen" ]; then
    # Frozen after dom0 powered off with the payload done: the results are complete (the
    # L0 QEMU once sat idle at Xen's "Entering ACPI S5 state" instead of exiting).
    if [ "$LAST_STEP" = poweroff ] && [ "$(cat "$OUTDIR/run.exit" 2>/dev/null)" = 0 ]; then
        log "WARNING: QEMU did not exit after the host powered off (silent for ${SILENCE}s, stopped); the payload had finished"
        QRC=0
    else
        fail "the nested host froze: its console was silent for ${SILENCE}s (QEMU idle), QEMU stopped"
    fi
fi
case $QRC in
    0) ;;
    75) fail "could not get the QEMU lock $LOCK within ${HY_LOCK_WAIT:-3600}s" ;;
    124 | 137) fail "timed out after ${TMO}s waiting for step '$NEXT_STEP'" ;;
    *) fail "QEMU exited with status $QRC" ;;
esac
[ -f "$OUTDIR/run.exit" ] || fail "dom0 powered off without finishing the payload (no run.exit)"
RUN_EXIT=$(cat "$OUTDIR/run.exit")
[ "$RUN_EXIT" = 0 ] || fail "payload run.sh failed with exit status $RUN_EXIT (124 = payload timeout); results in $OUTDIR"
log "OK: results in $OUTDIR"
