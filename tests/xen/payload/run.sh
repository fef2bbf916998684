#!/bin/bash
# run.sh - Xen test host payload. Runs inside dom0 (hy-dom0-init starts it with the payload disk
# mounted at /mnt); boots each guest listed in /mnt/guests under xentrace and collects its output.
#
# /mnt/guests: one guest per line, '#' comments and blank lines ignored:
#   <name> <cfg> [timeout=SECONDS] [xtmask=0xMASK] [xl overrides...]
#   - <cfg> is an xl config, relative to /mnt unless absolute (e.g. hvm.cfg, pvh.cfg).
#   - The rest of the line is split like a shell command line. Words that are not timeout= or
#     xtmask= are passed to `xl create` as config overrides, so quote them for xl, e.g.
#       hy-hvm hvm.cfg timeout=300 'kernel="/mnt/hykernel.elf"' 'cmdline="mode=hvm bench=all"'
#   - name="<name>" is always added (so the domain can be found), and for type="hvm" configs
#     serial="file:/var/log/xen/<name>-serial.log".
#   - timeout: seconds to wait for the domain to go away (default $GUEST_TIMEOUT); then xl destroy.
#   - xtmask: xentrace event mask (default $XT_MASK = 0x080af000: TRC_GUEST | TRC_HVM | TRC_SCHED;
#     SCHED is what lets a parser attribute HVM exits to domains, via TRC_SCHED_SWITCH).
#     Bits 12-15 select subclasses in all classes at once: 0x080a9000 keeps HVM entry/exit (1),
#     SCHED runstate (1) and switch (8) records and guest records but drops the HVM handler
#     details and the credit2 scheduler's own records: about 1/5 of the size.
#
# Per guest, in /mnt/results:
#   <name>.trace           raw xentrace output (parse with tests/src/xentrace.rs)
#   <name>.console         the guest's output: 0xe9 debug port lines (from `xl dmesg`), the HVM
#                          serial file, the PV console log (xenconsoled --log=guest)
#   <name>.times           key=value: domid, status, epoch times of `xl create -p` start and
#                          return, of `xl unpause` and of the domain being gone; durations:
#                          create_seconds (building the paused domain), gone_seconds (xl create
#                          start to gone), run_seconds (unpause to gone)
#   <name>.xl-create.log   `xl -v create` output;  <name>.qemu-dm.log  device model log (HVM)
# Exit status: 0 if every guest was created and went away by itself within its timeout.
set -euo pipefail

export PATH=$PATH:/usr/lib/xen-4.17/bin
MNT=/mnt
RES=$MNT/results
GUESTS=$MNT/guests
GUEST_TIMEOUT=${GUEST_TIMEOUT:-120}
XT_MASK=${XT_MASK:-0x080af000}
XT_PAGES=${XT_PAGES:-256}           # trace buffer pages per pCPU
CONSOLE_DIR=/var/log/xen/console    # hy-dom0-init starts xenconsoled --log=guest --log-dir=this

say() { echo "HY-RUN: $*"; }
now() { echo "$EPOCHREALTIME"; }
dt() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.3f", a - b }'; }
exists() { xl domid "$1" >/dev/null 2>&1; }

mkdir -p "$RES"
[ -r "$GUESTS" ] || { say "ERROR: no $GUESTS (lines: <name> <cfg> [timeout=S] [xtmask=M] [xl overrides])"; exit 2; }

# Stop a background xentrace politely (SIGINT flushes its buffers), bounded.
stop_xentrace() {  # pid
    local pid=$1 k=0
    kill -INT "$pid" 2>/dev/null || return 0
    while kill -0 "$pid" 2>/dev/null; do
        sleep 0.2
        k=$((k + 1))
        if [ $k -ge 100 ]; then
            say "WARNING: xentrace $pid ignores SIGINT, killing it"
            kill -KILL "$pid" 2>/dev/null || true
            break
        fi
    done
    wait "$pid" 2>/dev/null || true
}

run_guest() {  # name cfg [args...]
    local name=$1 cfg=$2
    shift 2
    local tmo=$GUEST_TIMEOUT mask=$XT_MASK a
    local -a overrides=("name=\"$name\"")
    for a in "$@"; do
        case $a in
            timeout=*) tmo=${a#timeout=} ;;
            xtmask=*) mask=${a#xtmask=} ;;
            *) overrides+=("$a") ;;
        esac
    done
    case $cfg in /*) ;; *) cfg=$MNT/$cfg ;; esac
    local out=$RES/$name
    if [ ! -r "$cfg" ]; then
        say "ERROR: $name: no config $cfg"
        printf 'name=%s\nstatus=no-config\n' "$name" >"$out.times"
        return 1
    fi
    local type serial=/var/log/xen/$name-serial.log
    type=$(sed -n 's/^[[:space:]]*type[[:space:]]*=[[:space:]]*"\([a-z]*\)".*/\1/p' "$cfg" | tail -n 1)
    [ "$type" = hvm ] && overrides+=("serial=\"file:$serial\"")
    rm -f "$serial" "$CONSOLE_DIR/guest-$name.log"

    say "guest $name: cfg=$cfg type=${type:-?} timeout=${tmo}s xentrace mask=$mask"
    # Keep the Xen console ring for the record, then empty it so `xl dmesg` shows only this guest.
    { echo "===== before guest $name"; xl dmesg -c; } >>"$RES/xen-dmesg-between-guests.txt" 2>&1 || true

    # Trace: -D discards what the buffers held before, -S = buffer pages per pCPU.
    xentrace -D -S "$XT_PAGES" -e "$mask" "$out.trace" &
    local xt=$!
    sleep 1   # let xentrace map the buffers and switch tracing on before the guest starts
    kill -0 "$xt" 2>/dev/null || say "WARNING: xentrace exited early; no trace for $name"

    local t_start t_created t_unpaused t_gone status=ok domid=""
    t_start=$(now)
    # Create paused, so the domain id is known before the guest can run (and finish) at all.
    if xl -v create -p "$cfg" "${overrides[@]}" >"$out.xl-create.log" 2>&1; then
        t_created=$(now)
        domid=$(xl domid "$name" 2>/dev/null || true)
        xl unpause "$name" || say "WARNING: xl unpause $name failed"
        t_unpaused=$(now)
        # Wait (bounded) for the domain to go away by itself.
        local deadline
        deadline=$(awk -v s="$t_start" -v t="$tmo" 'BEGIN { printf "%d", s + t }')
        while exists "$name"; do
            if [ "${EPOCHSECONDS}" -ge "$deadline" ]; then
                status=timeout
                say "ERROR: $name still running after ${tmo}s, destroying it"
                xl destroy "$name" || true
                break
            fi
            sleep 0.2
        done
        t_gone=$(now)
    else
        t_created=$(now)
        t_unpaused=$t_created
        t_gone=$t_created
        status=create-failed
        say "ERROR: xl create $name failed:"
        tail -n 15 "$out.xl-create.log" | sed 's/^/    | /'
    fi
    stop_xentrace "$xt"

    # Console: 0xe9 lines of this domain, HVM serial, PV console.
    {
        echo "### debug port 0xe9 (xl dmesg lines of d${domid:-?})"
        if [ -n "$domid" ]; then xl dmesg 2>/dev/null | grep -F "(d$domid)" || true; fi
        echo "### serial ($serial)"
        cat "$serial" 2>/dev/null || true
        echo "### PV console ($CONSOLE_DIR/guest-$name.log)"
        cat "$CONSOLE_DIR/guest-$name.log" 2>/dev/null || true
    } >"$out.console"
    cp "/var/log/xen/qemu-dm-$name.log" "$out.qemu-dm.log" 2>/dev/null || true

    {
        echo "name=$name"
        echo "domid=$domid"
        echo "type=$type"
        echo "status=$status"
        echo "xentrace_mask=$mask"
        echo "create_start=$t_start"
        echo "create_returned=$t_created"
        echo "unpaused=$t_unpaused"
        echo "domain_gone=$t_gone"
        echo "create_seconds=$(dt "$t_created" "$t_start")"
        echo "gone_seconds=$(dt "$t_gone" "$t_start")"
        echo "run_seconds=$(dt "$t_gone" "$t_unpaused")"
    } >"$out.times"
    say "guest $name: status=$status domid=${domid:-?} xl-create=$(dt "$t_created" "$t_start")s" \
        "run=$(dt "$t_gone" "$t_unpaused")s" \
        "gone=$(dt "$t_gone" "$t_start")s trace=$(stat -c %s "$out.trace" 2>/dev/null || echo 0) bytes"
    [ "$status" = ok ]
}

failed=0
while read -r -u 3 line; do
    line=${line%%#*}
    [ -n "${line// /}" ] || continue
    # Shell-style word splitting so quoted xl overrides (with spaces) survive.
    eval "set -- $line"
    [ $# -ge 2 ] || { say "ERROR: bad line in $GUESTS: $line"; failed=$((failed + 1)); continue; }
    run_guest "$@" || failed=$((failed + 1))
done 3<"$GUESTS"

say "done, $failed guest(s) failed"
[ "$failed" = 0 ]
