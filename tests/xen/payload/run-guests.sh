#!/bin/bash
# run-guests.sh - the Xen test host payload's worker. run.sh starts it in dom0 (with the payload
# disk mounted at /mnt); it boots each guest listed in /mnt/guests under xentrace and collects
# its output. A guest whose results are complete from an earlier pass (its .times has attempts=)
# is not run again, so run.sh can restart this script after a crash and lose no finished work.
#
# /mnt/guests: one guest per line, '#' comments and blank lines ignored:
#   <name> <cfg> [timeout=SECONDS] [xtmask=0xMASK] [console=pv|serial|e9] [ready=REGEX]
#                [xl overrides...]
#   - <cfg> is an xl config, relative to /mnt unless absolute (e.g. hvm.cfg, pvh.cfg).
#   - The rest of the line is split like a shell command line. Words that are not timeout=,
#     xtmask=, console= or ready= are passed to `xl create` as config overrides, so quote them
#     for xl, e.g.
#       hy-hvm hvm.cfg timeout=300 'ready=^DONE$' 'kernel="/mnt/hykernel32.elf"' 'cmdline="bench=all"'
#   - name="<name>" is always added (so the domain can be found), and for type="hvm" configs
#     serial="file:/var/log/xen/<name>-serial.log".
#   - timeout: seconds to wait for the domain to go away (default $GUEST_TIMEOUT); then xl destroy.
#   - xtmask: xentrace event mask (default $XT_MASK = 0x080af000: TRC_GUEST | TRC_HVM | TRC_SCHED;
#     SCHED is what lets a parser attribute HVM exits to domains, via TRC_SCHED_SWITCH).
#     Bits 12-15 select subclasses in all classes at once: 0x080a9000 keeps HVM entry/exit (1),
#     SCHED runstate (1) and switch (8) records and guest records but drops the HVM handler
#     details (MSR/NPF/MMIO records: no EOI counts) and the credit2 scheduler's own records:
#     about 1/5 of the size.
#   - console: the guest's primary console, watched for boot timing (default: serial for
#     type="hvm" configs, pv otherwise):
#       pv      the PV console (hvc0), i.e. xenconsoled's log /var/log/xen/console/guest-<name>.log
#       serial  the HVM COM1 file /var/log/xen/<name>-serial.log (type="hvm" only)
#       e9      the Xen debug port 0xe9: the guest's "(dN)" lines in `xl dmesg`. xl dmesg is slow,
#               so it is polled only every $E9_POLL s: times are late by up to that much.
#   - ready: an extended regular expression (bash =~, unanchored); the first console line that
#     matches it marks the guest "ready", e.g. 'ready=^DONE$' (hykernel) or
#     'ready=HY-DOMU: Linux up' (tests/xen/domu-init).
#   While the domain runs, a file console is polled every $CONSOLE_POLL s (bash builtins only, no
#   process per poll) and, in the background, the domain's existence every 0.2 s; a line counts
#   when it is complete (newline seen), except a last unterminated line, which counts when the
#   domain is gone. Times are when a line became visible in dom0: for pv, when xenconsoled wrote
#   it to its log, which can be late if the guest prints a lot at once.
#
# Per guest, in /mnt/results:
#   <name>.trace           raw xentrace output (parse with tests/src/xentrace.rs)
#   <name>.console         all the guest's outputs: 0xe9 debug port lines (from `xl dmesg`), the HVM
#                          serial file, the PV console log (xenconsoled --log=guest)
#   <name>.out             the primary console's lines only, in order, without any prefix (for e9 the
#                          "(dN) [timestamp] " prefix is removed; CRs before line ends are dropped);
#                          at most $OUT_MAX_BYTES bytes
#   <name>.times           key=value: domid, status, epoch times of `xl create -p` start and
#                          return, of `xl unpause` and of the domain being gone; durations:
#                          create_seconds (building the paused domain), gone_seconds (xl create
#                          start to gone), run_seconds (unpause to gone); console (pv/serial/e9),
#                          ready_regex, first_line_seconds (xl create start to the first non-blank
#                          console line), ready_seconds (xl create start to the first line matching
#                          ready=); these two are empty if never seen. Seconds have 3 decimals.
#                          status: ok (went away by itself), timeout (destroyed), create-failed,
#                          not-gone (looked gone but was not; destroyed), no-config, bad-options.
#   <name>.xl-create.log   `xl -v create` output;  <name>.qemu-dm.log  device model log (HVM)
#   client=CMD: a command dom0 runs (in /mnt, env GUEST and RESULTS) once the guest is ready;
#   its output goes to <name>.client.log, its status to client_status= in <name>.times.
#   done=REGEX: the console line that says the guest finished (default: the ready= regex);
#   <name>.times records finished=yes|no.
#   retries=N: run a guest again (up to N times, default $RETRIES) when it ended by itself without
#   its done line: see died_early below.
# Exit status: 0 if every guest was created and went away by itself within its timeout.
set -euo pipefail

export PATH=$PATH:/usr/lib/xen-4.17/bin
MNT=${HY_RUN_MNT:-/mnt}               # overridable only for testing this script outside dom0
RES=$MNT/results
GUESTS=$MNT/guests
GUEST_TIMEOUT=${GUEST_TIMEOUT:-120}
XT_MASK=${XT_MASK:-0x080af000}
RETRIES=${RETRIES:-3}
BRIDGE_IP=${BRIDGE_IP:-10.0.0.1/24}           # re-runs of a guest that dies before its ready line (see died_early)
XT_PAGES=${XT_PAGES:-256}           # trace buffer pages per pCPU
CONSOLE_DIR=${HY_RUN_CONSOLE_DIR:-/var/log/xen/console}   # hy-dom0-init starts xenconsoled --log=guest --log-dir=this
XEN_LOG_DIR=${HY_RUN_XEN_LOG_DIR:-/var/log/xen}
CONSOLE_POLL=${CONSOLE_POLL:-0.03}  # seconds between polls of a file console
E9_POLL=${E9_POLL:-0.5}             # seconds between `xl dmesg` polls (console=e9)
OUT_MAX_BYTES=${OUT_MAX_BYTES:-16777216}
POLL_MAX_LINES=2000                 # console lines handled per poll (keeps the loop responsive)

say() { echo "HY-RUN: $*"; }
now() { echo "$EPOCHREALTIME"; }
dt() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.3f", a - b }'; }
# Like dt, but empty if $1 is empty (an event that never happened).
dt_opt() { if [ -n "$1" ]; then dt "$1" "$2"; fi; }
# xl_domid NAME: `xl domid NAME`, bounded: under the nested L0 xl now and then crashes or hangs.
xl_domid() { timeout -k 2 10 xl domid "$1" 2>/dev/null; }
# domain_state NAME: prints "yes" if domain NAME exists, "no" if xl says it does not, "unknown"
# if xl could not tell.
domain_state() {
    local rc=0
    xl_domid "$1" >/dev/null || rc=$?
    case $rc in
        0) echo yes ;;
        124 | 134 | 135 | 136 | 137 | 139) echo unknown ;;   # timed out, aborted, crashed
        *) echo no ;;
    esac
}
exists() { [ "$(domain_state "$1")" != no ]; }
# get_domid NAME: the domain id (xl domid, retried: it fails now and then), or nothing.
get_domid() {
    local k id
    for k in 1 2 3 4 5; do
        id=$(xl_domid "$1") && [ -n "$id" ] && { echo "$id"; return 0; }
        sleep 0.1
    done
    return 0
}
# watch_domain NAME FLAG: polls (every 0.2 s) until domain NAME is gone, then writes the epoch
# time of the first failed check into FLAG. Run in the background: `xl domid` takes ~0.3 s in the
# nested dom0, too slow to sit in the console polling loop. Only xl's own "no such domain"
# counts, and it too is wrong now and then while the domain runs, so "gone" needs 3 in a row.
watch_domain() {
    local misses=0 t=""
    while [ "$misses" -lt 3 ]; do
        case $(domain_state "$1") in
            yes) misses=0 t="" ;;
            no)
                misses=$((misses + 1))
                [ -n "$t" ] || t=$EPOCHREALTIME
                [ "$misses" -lt 3 ] || break
                ;;
        esac
        sleep 0.2
    done
    echo "$t" >"$2.tmp" && mv "$2.tmp" "$2"
}
secs_to_us() { awk -v s="$1" 'BEGIN { printf "%d", s * 1000000 }'; }

mkdir -p "$RES"

# A pass that restarts after a crash finds the last pass's xentrace still holding the trace
# buffers: stop it, or this pass's traces stay empty.
if pkill -INT -x xentrace 2>/dev/null; then
    say "WARNING: stopped a xentrace left over from an earlier pass"
    sleep 1
    pkill -KILL -x xentrace 2>/dev/null || true
fi

# The guests' network: bridge xenbr0, dom0 at $BRIDGE_IP (a vif=['bridge=xenbr0,...'] override
# puts a guest on it). Made once; a later pass finds it.
if ! ip link show xenbr0 >/dev/null 2>&1; then
    ip link add xenbr0 type bridge && ip addr add "$BRIDGE_IP" dev xenbr0 && ip link set xenbr0 up \
        || say "WARNING: could not set up bridge xenbr0"
fi
[ -r "$GUESTS" ] || { say "ERROR: no $GUESTS (lines: <name> <cfg> [timeout=S] [xtmask=M] [console=C] [ready=RE] [xl overrides])"; exit 2; }

# nap SECONDS: sleep without starting a process (read with a timeout on a FIFO nobody writes).
SLEEP_FIFO=$(mktemp -u /tmp/hy-run-nap.XXXXXX)
mkfifo "$SLEEP_FIFO"
exec {NAP_FD}<>"$SLEEP_FIFO"
rm -f "$SLEEP_FIFO"
nap() { read -r -t "$1" -u "$NAP_FD" _ || true; }
E9_POLL_US=$(secs_to_us "$E9_POLL")

# --- console watching -------------------------------------------------------------------------
# State of the guest being watched (run_guest resets it).
CON_FD=""          # fd of the console file, once it exists
CON_PART=""        # unterminated tail read so far
CON_READY_RE=""    # ready= regex ("" = none)
CON_FIRST=""       # epoch time the first non-blank line was seen
CON_READY=""       # epoch time the first line matching CON_READY_RE was seen
CON_DONE=0         # 1 when nothing more is to be learned from the console
E9_SEEN=0          # `xl dmesg` lines already looked at (console=e9)
E9_PREFIX_RE='^\(d[0-9]+\) (\[[^]]*\] )?(.*)$'

# con_line LINE TIME: one complete console line, seen at TIME.
con_line() {
    local line=${1%$'\r'}
    if [ -z "$CON_FIRST" ] && [[ $line == *[![:space:]]* ]]; then
        CON_FIRST=$2
    fi
    if [ -n "$CON_READY_RE" ] && [ -z "$CON_READY" ] && [[ $line =~ $CON_READY_RE ]]; then
        CON_READY=$2
    fi
    if [ -n "$CON_FIRST" ] && { [ -z "$CON_READY_RE" ] || [ -n "$CON_READY" ]; }; then
        CON_DONE=1
    fi
}

# poll_file FILE [final]: reads what was appended to FILE since the last poll (builtins only).
# With "final", an unterminated last line counts as a line too.
poll_file() {
    local file=$1 final=${2:-} line t n=0 max=$POLL_MAX_LINES
    [ "$CON_DONE" = 0 ] || return 0
    if [ -z "$CON_FD" ]; then
        [ -r "$file" ] || return 0
        command exec {CON_FD}<"$file" || { CON_FD=""; return 0; }
    fi
    [ -z "$final" ] || max=$((POLL_MAX_LINES * 50))
    t=$EPOCHREALTIME
    while [ $n -lt $max ]; do
        if IFS= read -r -u "$CON_FD" line; then
            con_line "$CON_PART$line" "$t"
            CON_PART=""
            [ "$CON_DONE" = 0 ] || return 0
        else
            CON_PART+=$line     # partial line at the end of the file (or nothing)
            break
        fi
        n=$((n + 1))
    done
    if [ -n "$final" ] && [ -n "$CON_PART" ]; then
        con_line "$CON_PART" "$t"
        CON_PART=""
    fi
}

# poll_e9 DOMID: new "(dDOMID)" lines of `xl dmesg` (Xen writes a 0xe9 line when it is complete).
poll_e9() {
    local domid=$1 t i l dmesg
    local -a lines=()
    [ "$CON_DONE" = 0 ] && [ -n "$domid" ] || return 0
    # No process substitution: dom0's /dev has no /dev/fd.
    dmesg=$(xl dmesg 2>/dev/null || true)
    [ -n "$dmesg" ] || return 0
    mapfile -t lines <<<"$dmesg"
    t=$EPOCHREALTIME
    # The ring was emptied before the guest started; if it shrank, it wrapped: look at it all.
    [ "${#lines[@]}" -ge "$E9_SEEN" ] || E9_SEEN=0
    for ((i = E9_SEEN; i < ${#lines[@]}; i++)); do
        l=${lines[i]}
        [[ $l == "(d$domid) "* ]] || continue
        [[ $l =~ $E9_PREFIX_RE ]] && con_line "${BASH_REMATCH[2]}" "$t"
        [ "$CON_DONE" = 0 ] || break
    done
    E9_SEEN=${#lines[@]}
}

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
    local tmo=$GUEST_TIMEOUT mask=$XT_MASK console="" ready="" client="" done_re="" a
    local -a overrides=("name=\"$name\"")
    for a in "$@"; do
        case $a in
            timeout=*) tmo=${a#timeout=} ;;
            xtmask=*) mask=${a#xtmask=} ;;
            console=*) console=${a#console=} ;;
            client=*) client=${a#client=} ;;
            done=*) done_re=${a#done=} ;;
            ready=*) ready=${a#ready=} ;;
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
    local bad=""
    [[ $tmo =~ ^[0-9]+$ ]] || bad="timeout=$tmo is not a number of seconds"
    case $console in "" | pv | serial | e9) ;; *) bad="console=$console is not pv, serial or e9" ;; esac
    if [ -n "$ready" ]; then
        local rc=0
        [[ "" =~ $ready ]] || rc=$?
        [ "$rc" != 2 ] || bad="ready=$ready is not a valid extended regular expression"
    fi
    if [ -n "$bad" ]; then
        say "ERROR: $name: $bad"
        printf 'name=%s\nstatus=bad-options\n' "$name" >"$out.times"
        return 1
    fi
    local type serial=$XEN_LOG_DIR/$name-serial.log pvlog=$CONSOLE_DIR/guest-$name.log
    type=$(sed -n 's/^[[:space:]]*type[[:space:]]*=[[:space:]]*"\([a-z]*\)".*/\1/p' "$cfg" | tail -n 1)
    [ "$type" = hvm ] && overrides+=("serial=\"file:$serial\"")
    if [ -z "$console" ]; then
        if [ "$type" = hvm ]; then console=serial; else console=pv; fi
    fi
    [ "$console" != serial ] || [ "$type" = hvm ] \
        || say "WARNING: $name: console=serial, but only type=\"hvm\" guests get a serial file"
    rm -f "$serial" "$pvlog"

    say "guest $name: cfg=$cfg type=${type:-?} timeout=${tmo}s xentrace mask=$mask console=$console" \
        "ready=${ready:-(none)}"
    # Keep the Xen console ring for the record, then empty it so `xl dmesg` shows only this guest.
    { echo "===== before guest $name"; xl dmesg -c; } >>"$RES/xen-dmesg-between-guests.txt" 2>&1 || true

    # Trace: -D discards what the buffers held before, -S = buffer pages per pCPU.
    xentrace -D -S "$XT_PAGES" -e "$mask" "$out.trace" &
    local xt=$!
    sleep 1   # let xentrace map the buffers and switch tracing on before the guest starts
    kill -0 "$xt" 2>/dev/null || say "WARNING: xentrace exited early; no trace for $name"

    CON_FD="" CON_PART="" CON_READY_RE=$ready CON_FIRST="" CON_READY="" CON_DONE=0 E9_SEEN=0
    local confile=""
    case $console in pv) confile=$pvlog ;; serial) confile=$serial ;; esac

    local t_start t_created t_unpaused t_gone status=ok domid=""
    t_start=$(now)
    # Create paused, so the domain id is known before the guest can run (and finish) at all.
    if xl -v create -p "$cfg" "${overrides[@]}" >"$out.xl-create.log" 2>&1; then
        t_created=$(now)
        domid=$(get_domid "$name")
        xl unpause "$name" || say "WARNING: xl unpause $name failed"
        t_unpaused=$(now)
        # Wait (bounded) for the domain to go away by itself, watching its console meanwhile.
        local deadline_us next_e9=0 now_us watcher gone_flag=/tmp/hy-run-$name.gone client_pid=""
        local next_check_us=0 checks_from_us gone_seen=""
        rm -f "$out.client.status"
        rm -f "$gone_flag"
        watch_domain "$name" "$gone_flag" &
        watcher=$!
        # Epoch microseconds: EPOCHREALTIME always has 6 decimals (no process needed).
        deadline_us=$(( ${t_start/./} + tmo * 1000000 ))
        checks_from_us=$(( ${t_start/./} + 60000000 ))
        t_gone=""
        while :; do
            now_us=${EPOCHREALTIME/./}
            if [ -n "$confile" ]; then
                poll_file "$confile"
            elif [ "$now_us" -ge "$next_e9" ]; then
                poll_e9 "$domid"
                next_e9=$(( ${EPOCHREALTIME/./} + E9_POLL_US ))
            fi
            # The client starts once the guest is ready, and runs beside it.
            if [ -n "$client" ] && [ -z "$client_pid" ] && [ -n "$CON_READY" ]; then
                say "guest $name: ready; starting its client: $client"
                ( cd "$MNT" && GUEST=$name RESULTS=$RES timeout -k 5 "$tmo" bash -c "$client" \
                    >"$out.client.log" 2>&1; echo "$?" >"$out.client.status" ) &
                client_pid=$!
            fi
            if [ -e "$gone_flag" ]; then
                read -r t_gone <"$gone_flag" || true
                break
            fi
            # Under the nested L0 a dom0 process now and then dies of memory corruption; if
            # it is the watcher, start another rather than wait out the timeout.
            if ! kill -0 "$watcher" 2>/dev/null && [ ! -e "$gone_flag" ]; then
                wait "$watcher" 2>/dev/null || true
                say "WARNING: $name: its domain watcher died; starting another"
                watch_domain "$name" "$gone_flag" &
                watcher=$!
            fi
            # A watcher can also hang (its xl, or the fork of one); check every 10 s here once
            # the console has said what it had to (an xl call stalls this loop ~0.3 s), and
            # believe two "no such domain" answers in a row.
            if { [ -n "$CON_READY" ] || [ "$now_us" -ge "$checks_from_us" ]; } && [ "$now_us" -ge "$next_check_us" ]; then
                next_check_us=$((now_us + 10000000))
                if [ "$(domain_state "$name")" != no ]; then
                    gone_seen=""
                elif [ -z "$gone_seen" ]; then
                    gone_seen=$EPOCHREALTIME
                else
                    say "WARNING: $name is gone, but its watcher did not see it go"
                    kill "$watcher" 2>/dev/null || true
                    t_gone=$gone_seen
                    break
                fi
            fi
            if [ "$now_us" -ge "$deadline_us" ]; then
                kill "$watcher" 2>/dev/null || true
                if exists "$name"; then
                    status=timeout
                    say "ERROR: $name still running after ${tmo}s, destroying it"
                    xl destroy "$name" || true
                else
                    say "WARNING: $name is gone, but its watcher did not see it go"
                fi
                break
            fi
            nap "$CONSOLE_POLL"
        done
        wait "$watcher" 2>/dev/null || true
        # The client ends with its guest (it is bounded by the guest's timeout too).
        if [ -n "$client_pid" ]; then
            local k=0
            while kill -0 "$client_pid" 2>/dev/null && [ "$k" -lt 100 ]; do nap 0.1; k=$((k + 1)); done
            kill "$client_pid" 2>/dev/null || true
            wait "$client_pid" 2>/dev/null || true
        fi
        rm -f "$gone_flag" "$gone_flag.tmp"
        [ -n "$t_gone" ] || t_gone=$(now)
        # Never let two guests overlap.
        if [ "$status" = ok ] && exists "$name"; then
            status=not-gone
            say "ERROR: $name seemed gone but still exists, destroying it"
            xl destroy "$name" || true
        fi
    else
        t_created=$(now)
        t_unpaused=$t_created
        t_gone=$t_created
        status=create-failed
        say "ERROR: xl create $name failed:"
        tail -n 15 "$out.xl-create.log" | sed 's/^/    | /'
    fi
    # Whatever the console still holds (a line may be cut short only at the very end).
    if [ -n "$confile" ]; then poll_file "$confile" final; else poll_e9 "$domid"; fi
    if [ -n "$CON_FD" ]; then exec {CON_FD}<&-; fi
    CON_FD=""
    stop_xentrace "$xt"

    # Console: 0xe9 lines of this domain, HVM serial, PV console.
    local e9lines=""
    if [ -n "$domid" ]; then e9lines=$(xl dmesg 2>/dev/null | grep -F "(d$domid) " || true); fi
    {
        echo "### debug port 0xe9 (xl dmesg lines of d${domid:-?})"
        [ -z "$e9lines" ] || printf '%s\n' "$e9lines"
        echo "### serial ($serial)"
        cat "$serial" 2>/dev/null || true
        echo "### PV console ($pvlog)"
        cat "$pvlog" 2>/dev/null || true
    } >"$out.console"
    # The primary console alone, without prefixes.
    {
        case $console in
            e9) [ -z "$e9lines" ] || printf '%s\n' "$e9lines" \
                    | sed -E 's/^\(d[0-9]+\) (\[[^]]*\] )?//' ;;
            *) sed 's/\r$//' "$confile" 2>/dev/null || true ;;
        esac
    } | head -c "$OUT_MAX_BYTES" >"$out.out" || true
    cp "$XEN_LOG_DIR/qemu-dm-$name.log" "$out.qemu-dm.log" 2>/dev/null || true

    local first_s ready_s
    first_s=$(dt_opt "$CON_FIRST" "$t_start")
    ready_s=$(dt_opt "$CON_READY" "$t_start")
    {
        echo "name=$name"
        echo "domid=$domid"
        echo "type=$type"
        echo "status=$status"
        echo "xentrace_mask=$mask"
        echo "console=$console"
        echo "ready_regex=$ready"
        echo "create_start=$t_start"
        echo "create_returned=$t_created"
        echo "unpaused=$t_unpaused"
        echo "domain_gone=$t_gone"
        echo "create_seconds=$(dt "$t_created" "$t_start")"
        echo "gone_seconds=$(dt "$t_gone" "$t_start")"
        echo "run_seconds=$(dt "$t_gone" "$t_unpaused")"
        echo "first_line_seconds=$first_s"
        echo "ready_seconds=$ready_s"
        [ -z "$client" ] || echo "client_status=$(cat "$out.client.status" 2>/dev/null || echo none)"
        # Finished: the done= line (default: the ready line) is on the console.
        local fin=${done_re:-$ready}
        if [ -n "$fin" ]; then
            if grep -Eq -- "$fin" "$out.out" 2>/dev/null; then echo "finished=yes"; else echo "finished=no"; fi
        fi
    } >"$out.times"
    say "guest $name: status=$status domid=${domid:-?} xl-create=$(dt "$t_created" "$t_start")s" \
        "first-line=${first_s:--}s ready=${ready_s:--}s" \
        "run=$(dt "$t_gone" "$t_unpaused")s gone=$(dt "$t_gone" "$t_start")s" \
        "trace=$(stat -c %s "$out.trace" 2>/dev/null || echo 0) bytes"
    if [ -n "$ready" ] && [ -z "$ready_s" ]; then
        say "WARNING: $name: no $console console line matched ready=$ready (see $name.console)"
    fi
    [ "$status" = ok ]
}

# A guest that ended by itself without printing its done= line (default: its ready= line) may
# have died of the test host rather than of itself: on this nested L0 one boot in four to eight
# ends in a triple fault (QEMU 7.2's SVM emulation; see README). Such a guest is run again, up to
# retries=N times (default $RETRIES); each earlier attempt's files are kept as
# <name>.attempt<K>.<ext>, and <name>.times records attempts=.
died_early() {  # name
    local f=$RES/$1.times
    grep -qx 'status=ok' "$f" 2>/dev/null && grep -qx 'finished=no' "$f" 2>/dev/null
}

failed=0
while read -r -u 3 line; do
    line=${line%%#*}
    [ -n "${line// /}" ] || continue
    # Shell-style word splitting so quoted xl overrides (with spaces) survive.
    eval "set -- $line"
    [ $# -ge 2 ] || { say "ERROR: bad line in $GUESTS: $line"; failed=$((failed + 1)); continue; }
    retries=$RETRIES
    args=()
    for a in "$@"; do
        case $a in retries=*) retries=${a#retries=} ;; *) args+=("$a") ;; esac
    done
    [[ $retries =~ ^[0-9]+$ ]] || { say "ERROR: $1: retries=$retries is not a count"; failed=$((failed + 1)); continue; }
    if grep -q '^attempts=' "$RES/$1.times" 2>/dev/null; then
        say "guest $1: done in an earlier pass"
        grep -qx 'status=ok' "$RES/$1.times" || failed=$((failed + 1))
        continue
    fi
    if exists "$1"; then
        say "WARNING: $1 is left over from an interrupted pass; destroying it"
        xl destroy "$1" || true
    fi
    attempt=1
    while :; do
        rc=0
        run_guest "${args[@]}" || rc=$?
        if [ "$attempt" -le "$retries" ] && died_early "$1"; then
            say "WARNING: $1 ended without its ready line (attempt $attempt); running it again"
            for f in "$RES/$1".*; do
                case $f in *.attempt[0-9]*) continue ;; esac
                mv "$f" "$RES/$1.attempt$attempt.${f#"$RES/$1".}"
            done
            attempt=$((attempt + 1))
            continue
        fi
        echo "attempts=$attempt" >>"$RES/$1.times"
        [ "$rc" = 0 ] || failed=$((failed + 1))
        break
    done
done 3<"$GUESTS"

say "done, $failed guest(s) failed"
[ "$failed" = 0 ]
