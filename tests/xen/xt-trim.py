#!/usr/bin/env python3
"""xt-trim.py - shrink a raw xentrace file into a small, still valid sample (for test data).

Usage: xt-trim.py IN OUT [--all-kinds] [--from-first-marker] [--until-last-marker]

By default only the records tests/src/xentrace.rs uses are kept: TRC_SCHED_SWITCH (0x2800a),
HVM VM exits (0x81002 / 0x81102, also with the nested flag 0x400), guest records
(0x0800f000 | event) and TRC_LOST_RECORDS (0x1f001). Everything else is dropped (VM entries,
runstate changes, scheduler internals, HVM handler details), and so are the switches between dom0
and the idle vCPUs (both sides domid 0 or 0x7fff): dom0 is a PV domain without VM exits, so the
exits are still attributed to the same domains.
  --all-kinds          keep records of every kind (use with the options below to cut the size)
  --from-first-marker  drop the records before the trace's first guest record (by TSC; e.g. an HVM
                       guest's hvmloader/SeaBIOS boot), except each pCPU's last switch before it,
                       which says what that pCPU runs when the first marker comes
  --until-last-marker  drop the records after the trace's last guest record (by TSC)

The output keeps xentrace's layout: each input window (TRC_TRACE_CPU_CHANGE + records of one
pCPU) becomes a window holding the kept records, with its size recomputed; empty windows are
left out. A file that does not parse completely is refused.
"""
import struct
import sys

CPU_CHANGE_HEADER = 0x0001F003 | (2 << 28)
TRC_SCHED_SWITCH = 0x0002800A
TRC_LOST_RECORDS = 0x0001F001
DOM0_OR_IDLE = (0, 0x7FFF)
OPTIONS = {"--all-kinds", "--from-first-marker", "--until-last-marker"}


def is_vmexit(ev):
    return (ev & ~0x500) == 0x81002


def is_guest(ev):
    return (ev & 0x0FFFF000) == 0x0800F000


def is_dom0_idle_switch(ev, raw):
    if ev != TRC_SCHED_SWITCH or len(raw) < 4 + 8 + 16:
        return False
    prev_dom, _, next_dom, _ = struct.unpack_from("<IIII", raw, 12)
    return prev_dom in DOM0_OR_IDLE and next_dom in DOM0_OR_IDLE


def read_windows(data):
    """Return [(cpu, [(event, tsc or None, raw bytes)])], one entry per window; raise ValueError if malformed."""
    windows, pos = [], 0
    while pos < len(data):
        if pos + 12 > len(data):
            raise ValueError("truncated window header at byte %d" % pos)
        header, cpu, size = struct.unpack_from("<III", data, pos)
        if header != CPU_CHANGE_HEADER:
            raise ValueError("bad window header %#x at byte %d" % (header, pos))
        start, end = pos + 12, pos + 12 + size
        if end > len(data):
            raise ValueError("window at byte %d overruns the file" % pos)
        recs, r = [], start
        while r < end:
            (h,) = struct.unpack_from("<I", data, r)
            n_extra, has_tsc = (h >> 28) & 7, h >> 31
            rsize = 4 + 8 * has_tsc + 4 * n_extra
            if r + rsize > end:
                raise ValueError("record at byte %d overruns its window" % r)
            tsc = struct.unpack_from("<Q", data, r + 4)[0] if has_tsc else None
            recs.append((h & 0x0FFFFFFF, tsc, data[r:r + rsize]))
            r += rsize
        windows.append((cpu, recs))
        pos = end
    return windows


def main():
    args = [a for a in sys.argv[1:] if not a.startswith("--")]
    opts = {a for a in sys.argv[1:] if a.startswith("--")}
    if len(args) != 2 or not opts <= OPTIONS:
        sys.exit(__doc__)
    windows = read_windows(open(args[0], "rb").read())

    # Effective TSC of each record: its own, else the last one seen on its pCPU.
    last, annotated, markers = {}, [], []
    for cpu, recs in windows:
        out = []
        for ev, tsc, raw in recs:
            if tsc is not None:
                last[cpu] = tsc
            eff = last.get(cpu, 0)
            if is_guest(ev):
                markers.append(eff)
            out.append((ev, eff, raw))
        annotated.append((cpu, out))
    lo = min(markers) if markers and "--from-first-marker" in opts else None
    hi = max(markers) if markers and "--until-last-marker" in opts else None

    # Each pCPU's last switch before the first marker (window, index) survives the cut.
    last_switch = {}
    if lo is not None:
        for w, (cpu, recs) in enumerate(annotated):
            for i, (ev, eff, _) in enumerate(recs):
                if ev == TRC_SCHED_SWITCH and eff < lo:
                    last_switch[cpu] = (w, i)

    kept = 0
    with open(args[1], "wb") as f:
        for w, (cpu, recs) in enumerate(annotated):
            body = b""
            for i, (ev, eff, raw) in enumerate(recs):
                if "--all-kinds" in opts:
                    keep = True
                else:
                    keep = (ev in (TRC_SCHED_SWITCH, TRC_LOST_RECORDS) or is_guest(ev) or is_vmexit(ev)) \
                        and not is_dom0_idle_switch(ev, raw)
                if lo is not None and eff < lo and last_switch.get(cpu) != (w, i):
                    keep = False
                if hi is not None and eff > hi:
                    keep = False
                if keep:
                    body += raw
                    kept += 1
            if body:
                f.write(struct.pack("<III", CPU_CHANGE_HEADER, cpu, len(body)))
                f.write(body)
    print("%s: kept %d of %d records" % (args[1], kept, sum(len(r) for _, r in windows)))


if __name__ == "__main__":
    main()
