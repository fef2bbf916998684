#!/usr/bin/env python3
"""xt-trim.py - shrink a raw xentrace file into a small, still valid sample (for test data).

Usage: xt-trim.py IN OUT [--all-kinds] [--from-first-marker] [--until-last-marker]
                  [--cut-phase NAME:OPS:EVENT:WORD0]

By default only the records tests/src/xentrace.rs uses are kept: TRC_SCHED_SWITCH (0x2800a),
HVM VM exits (0x81002 / 0x81102, also with the nested flag 0x400), guest records
(0x0800f000 | event), TRC_LOST_RECORDS (0x1f001) and the exit details it decodes: MSR read/write
(0x8200c/0x8200d), NPF (0x82021), emulated MMIO read/write (0x82017/0x82217, also | 0x100).
Everything else is dropped (VM entries, runstate changes, scheduler internals, other HVM handler
details), and so are the switches between dom0 and the idle vCPUs (both sides domid 0 or 0x7fff):
dom0 is a PV domain without VM exits, so the exits are still attributed to the same domains.
  --all-kinds          keep records of every kind (use with the options below to cut the size)
  --from-first-marker  drop the records before the trace's first guest record (by TSC; e.g. an HVM
                       guest's hvmloader/SeaBIOS boot), except each pCPU's last switch before it,
                       which says what that pCPU runs when the first marker comes
  --until-last-marker  drop the records after the trace's last guest record (by TSC)
  --cut-phase NAME:OPS:EVENT:WORD0
                       keep only the first OPS operations of phase NAME (the first BEGIN marker
                       of that name and the END after it). Operation k starts with the k-th record
                       of id EVENT whose first extra word is WORD0 (an exit detail, e.g.
                       0x8200d:0x83f = the x2APIC SELF_IPI write); everything from the exit of the
                       (OPS+1)-th such record up to the exit that delivers the END marker is
                       dropped, except lost-record reports and each pCPU's last scheduler
                       switch in that range (what it runs when the phase ends), and the
                       BEGIN/END markers' iteration count is rewritten to OPS. So the sample's
                       phase is a real, shorter run of the same loop (the loop's tail is cut).

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
DETAILS = {0x8200C, 0x8200D, 0x82021, 0x82017, 0x82117, 0x82217, 0x82317}
GUEST_BEGIN, GUEST_END = 0x0800F100, 0x0800F101


def is_vmexit(ev):
    return (ev & ~0x500) == 0x81002


def is_guest(ev):
    return (ev & 0x0FFFF000) == 0x0800F000


def is_dom0_idle_switch(ev, raw):
    if ev != TRC_SCHED_SWITCH or len(raw) < 4 + 8 + 16:
        return False
    prev_dom, _, next_dom, _ = struct.unpack_from("<IIII", raw, 12)
    return prev_dom in DOM0_OR_IDLE and next_dom in DOM0_OR_IDLE


def marker_name(raw):
    """Phase name of a guest marker record (extra words 2.. , NUL padded)."""
    (h,) = struct.unpack_from("<I", raw, 0)
    n_extra, has_tsc = (h >> 28) & 7, h >> 31
    words = raw[4 + 8 * has_tsc:4 + 8 * has_tsc + 4 * n_extra]
    return words[8:].split(b"\0")[0].decode("ascii", "replace")


def set_iterations(raw, ops):
    """The marker record with its iteration count (extra words 0-1) replaced."""
    (h,) = struct.unpack_from("<I", raw, 0)
    n_extra, has_tsc = (h >> 28) & 7, h >> 31
    if n_extra < 2:
        raise ValueError("marker record without an iteration count")
    off = 4 + 8 * has_tsc
    return raw[:off] + struct.pack("<Q", ops) + raw[off + 8:]


def first_word(raw):
    (h,) = struct.unpack_from("<I", raw, 0)
    n_extra, has_tsc = (h >> 28) & 7, h >> 31
    return struct.unpack_from("<I", raw, 4 + 8 * has_tsc)[0] if n_extra else None


def parse_cut_spec(spec):
    """NAME:OPS:EVENT:WORD0 -> (name, ops, event, word0)."""
    try:
        name, ops, event, word0 = spec.split(":")
        return name, int(ops, 0), int(event, 0), int(word0, 0)
    except ValueError:
        sys.exit("--cut-phase wants NAME:OPS:EVENT:WORD0, e.g. interrupt:500:0x8200d:0x83f")


def cut_range(annotated, spec):
    """(ops, lo, hi, markers): drop window [lo, hi) of effective TSCs; markers = positions
    (window, index) of the phase's BEGIN and END records, whose iteration count gets rewritten."""
    name, ops, event, word0 = spec
    # Records in effective-TSC order (stable: window order, then position).
    flat = sorted(((eff, w, i, ev, raw) for w, (_, recs) in enumerate(annotated)
                   for i, (ev, eff, raw) in enumerate(recs)), key=lambda r: (r[0], r[1], r[2]))
    begin = end = None
    for eff, w, i, ev, raw in flat:
        if begin is None and ev == GUEST_BEGIN and marker_name(raw) == name:
            begin = (eff, w, i)
        elif begin is not None and ev == GUEST_END and marker_name(raw) == name:
            end = (eff, w, i)
            break
    if begin is None or end is None:
        sys.exit("--cut-phase: no complete phase %r in the trace" % name)
    starts = [eff for eff, w, i, ev, raw in flat
              if begin[0] <= eff < end[0] and ev == event and first_word(raw) == word0]
    if len(starts) <= ops:
        sys.exit("--cut-phase: phase %r has only %d operation starts, not more than %d"
                 % (name, len(starts), ops))
    return ops, starts[ops], end[0], {begin[1:], end[1:]}


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
    argv, args, opts, cut_spec = sys.argv[1:], [], set(), None
    while argv:
        a = argv.pop(0)
        if a == "--cut-phase" and argv:
            cut_spec = argv.pop(0)
        elif a.startswith("--"):
            opts.add(a)
        else:
            args.append(a)
    if len(args) != 2 or not opts <= OPTIONS:
        sys.exit(__doc__)
    if cut_spec is not None:
        cut_spec = parse_cut_spec(cut_spec)
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
    cut = cut_range(annotated, cut_spec) if cut_spec else None
    # Each pCPU's last switch inside the dropped part of a cut phase survives the cut.
    cut_switch = {}
    if cut is not None:
        for w, (cpu, recs) in enumerate(annotated):
            for i, (ev, eff, _) in enumerate(recs):
                if ev == TRC_SCHED_SWITCH and cut[1] <= eff < cut[2]:
                    cut_switch[cpu] = (w, i)

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
                    keep = (ev in (TRC_SCHED_SWITCH, TRC_LOST_RECORDS) or ev in DETAILS
                            or is_guest(ev) or is_vmexit(ev)) \
                        and not is_dom0_idle_switch(ev, raw)
                if lo is not None and eff < lo and last_switch.get(cpu) != (w, i):
                    keep = False
                if hi is not None and eff > hi:
                    keep = False
                if cut is not None:
                    ops, cut_lo, cut_hi, cut_markers = cut
                    if cut_lo <= eff < cut_hi and ev != TRC_LOST_RECORDS \
                            and cut_switch.get(cpu) != (w, i):
                        keep = False
                    if keep and (w, i) in cut_markers:
                        raw = set_iterations(raw, ops)
                if keep:
                    body += raw
                    kept += 1
            if body:
                f.write(struct.pack("<III", CPU_CHANGE_HEADER, cpu, len(body)))
                f.write(body)
    print("%s: kept %d of %d records" % (args[1], kept, sum(len(r) for _, r in windows)))


if __name__ == "__main__":
    main()
