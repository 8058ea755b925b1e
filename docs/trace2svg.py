#!/usr/bin/env python3
"""Draw a weft trace (Chrome trace-event JSON, weft/obs.h) as an SVG timeline.

    trace2svg.py TRACE.json [-o OUT.svg] [--from-ms A] [--to-ms B]
                 [--width PX] [--title TEXT]

The file is the one Perfetto (ui.perfetto.dev) and chrome://tracing open;
the picture imitates Perfetto's view of it, for pages and CI machines that
have no browser:

  - one lane per thread track, in the writer's order (worker 0..N-1, then
    the io thread), with the "B"/"E" slices as boxes nested by depth: tasks
    coloured by a hash of their name (labelled where wide enough), "parked"
    slices grey, the io thread's batches (submit, reap, timers) like tasks;
  - under each lane, the "wait" async slices that began on that track, as
    thin bars (from the suspension to the resume, which may be elsewhere);
  - a lane "io ops" with every "io" async slice (an I/O operation from its
    submission to its completion) as thin bars;
  - a time axis in milliseconds since the pool was created, a title and a
    legend of the names that take the most time.

--from-ms/--to-ms draw a window of the trace (the default is all of it);
--width is the picture's width in pixels. Large traces (100k+ events) stay
drawable: in every row, runs of slices narrower than a pixel merge into one
box (coloured by the name that takes most of its time), and what is still
narrower than half a pixel is left out. Python 3 standard library only.
"""

import argparse
import collections
import json
import sys
import zlib
from xml.sax.saxutils import escape

# Layout, in pixels.
LABEL_W = 112  # the lane names on the left
MARGIN_R = 12
TITLE_H = 26
AXIS_H = 24
ROW_H = 15  # one depth of slices
BAR_H = 4  # one row of wait / io bars
BAR_GAP = 1
LANE_GAP = 8
MAX_BAR_ROWS = 8  # wait / io rows per lane; the rest overlap in the last
FONT = "font-family:Roboto,Helvetica,Arial,sans-serif"
CHAR_W = 5.6  # the width of a character at font-size 10, about

PARKED = "#c4c4c4"
MIXED = "#66707c"


def colour(name):
    """A stable colour for a name (Perfetto hashes names to hues too)."""
    if name == "parked":
        return PARKED
    h = zlib.crc32(str(name).encode())
    hue = h % 360
    sat = 45 + (h >> 9) % 25
    lum = 52 + (h >> 17) % 14
    return "hsl(%d,%d%%,%d%%)" % (hue, sat, lum)


class Trace:
    """The slices of a trace: per tid, and the async ones."""

    def __init__(self, data):
        evs = data["traceEvents"] if isinstance(data, dict) else data
        self.names = {}  # tid -> thread name
        self.sort = {}  # tid -> sort index
        self.process = None
        self.slices = collections.defaultdict(list)  # tid -> [(b,e,d,name)]
        self.waits = []  # (b, e, name, tid it began on)
        self.ios = []  # (b, e, name)
        self.other_async = collections.Counter()
        self.t_min = self.t_max = None
        per_tid = collections.defaultdict(list)
        asyncs = []
        for i, ev in enumerate(evs):
            if not isinstance(ev, dict):
                continue
            ph = ev.get("ph")
            if ph == "M":
                args = ev.get("args") or {}
                if ev.get("name") == "thread_name":
                    self.names[ev.get("tid")] = str(args.get("name"))
                elif ev.get("name") == "thread_sort_index":
                    self.sort[ev.get("tid")] = args.get("sort_index", 0)
                elif ev.get("name") == "process_name":
                    self.process = args.get("name")
                continue
            ts = ev.get("ts")
            if not isinstance(ts, (int, float)):
                continue
            self.t_min = ts if self.t_min is None else min(self.t_min, ts)
            self.t_max = ts if self.t_max is None else max(self.t_max, ts)
            if ph in ("B", "E"):
                per_tid[ev.get("tid")].append((ts, i, ph, ev.get("name")))
            elif ph == "X":
                dur = ev.get("dur") or 0
                per_tid[ev.get("tid")].append((ts, i, "B", ev.get("name")))
                per_tid[ev.get("tid")].append((ts + dur, i, "E", None))
                self.t_max = max(self.t_max, ts + dur)
            elif ph in ("b", "e"):
                asyncs.append((ts, i, ph, ev))
        if self.t_min is None:
            self.t_min = self.t_max = 0.0
        for tid, lst in per_tid.items():
            lst.sort(key=lambda t: (t[0], t[1]))
            stack, out = [], self.slices[tid]
            for ts, _, ph, name in lst:
                if ph == "B":
                    stack.append((ts, name))
                elif stack:
                    b, n = stack.pop()
                    out.append((b, ts, len(stack), n))
            while stack:  # unended: to the end of the trace
                b, n = stack.pop()
                out.append((b, self.t_max, len(stack), n))
            out.sort()
        asyncs.sort(key=lambda t: (t[0], t[1]))
        open_ = {}
        for ts, _, ph, ev in asyncs:
            key = (ev.get("cat"), str(ev.get("id", ev.get("id2"))))
            if ph == "b":
                open_[key] = (ts, ev)
                continue
            if key not in open_:
                continue
            b, bev = open_.pop(key)
            self.add_async(key[0], b, ts, bev)
        for key, (b, bev) in open_.items():
            self.add_async(key[0], b, self.t_max, bev)
        self.waits.sort()
        self.ios.sort()

    def add_async(self, cat, b, e, bev):
        name = bev.get("name", cat)
        if cat == "io":
            self.ios.append((b, e, name))
        elif cat == "wait":
            self.waits.append((b, e, name, bev.get("tid")))
        else:
            self.other_async[cat] += 1

    def tracks(self):
        tids = set(self.names) | set(self.slices)
        tids |= {t for _, _, _, t in self.waits}
        return sorted(tids, key=lambda t: (self.sort.get(t, 1 << 30),
                                           str(t)))


SMALL_PX = 1.5  # slices narrower than this merge with their neighbours


def aggregate(items, x_of, x0, x1):
    """Boxes for one row: items are (b, e, name) in time order. Returns
    [(px0, px1, name or None for mixed, count, b, e)].

    Slices narrower than SMALL_PX gather into clusters of about that
    width (with gaps under half a pixel), each coloured by the name with
    the most time in it (None when no name has 40%), so that a zoomed-out
    row reads as a density picture, as in Perfetto; neighbouring clusters
    of one name then join. Anything still narrower than half a pixel is
    left out."""
    out = []
    cur = None  # [px0, px1, {name: time}, count, b, e]
    for b, e, name in items:
        if e < x0 or b > x1:
            continue
        p0, p1 = x_of(max(b, x0)), x_of(min(e, x1))
        narrow = p1 - p0 < SMALL_PX
        if cur is not None and narrow and p0 - cur[1] < 0.5 and \
                cur[1] - cur[0] < SMALL_PX:
            cur[1] = max(cur[1], p1)
            cur[2][name] += e - b
            cur[3] += 1
            cur[5] = max(cur[5], e)
            continue
        if cur is not None:
            out.append(cur)
        w = collections.Counter()
        w[name] += e - b
        cur = [p0, p1, w, 1, b, e]
    if cur is not None:
        out.append(cur)
    boxes = []
    for p0, p1, w, n, b, e in out:
        name, t = w.most_common(1)[0]
        if n > 1 and t < 0.4 * sum(w.values()):
            name = None  # no name has most of it
        last = boxes[-1] if boxes else None
        if (last is not None and n > 1 and last[3] > 1 and
                last[2] == name and p0 - last[1] < 0.5):
            boxes[-1] = (last[0], max(last[1], p1), name, last[3] + n,
                         last[4], max(last[5], e))
            continue
        boxes.append((p0, p1, name, n, b, e))
    return [bx for bx in boxes if bx[1] - bx[0] >= 0.5]


def pack_rows(items, x_of, x0, x1, max_rows):
    """Spread bars (b, e, ...) over rows so that none overlaps (greedy, in
    pixels, at most max_rows: the rest share the last)."""
    rows_end = []
    rows = []
    for it in items:
        b, e = it[0], it[1]
        if e < x0 or b > x1:
            continue
        p0 = x_of(max(b, x0))
        p1 = x_of(min(e, x1))
        for r, end in enumerate(rows_end):
            if end <= p0:
                break
        else:
            if len(rows_end) < max_rows:
                rows_end.append(-1.0)
                rows.append([])
                r = len(rows_end) - 1
            else:
                r = min(range(len(rows_end)), key=rows_end.__getitem__)
        rows_end[r] = max(rows_end[r], p1 + 0.5)
        rows[r].append(it)
    return rows


def nice_step(span, want):
    raw = span / max(want, 1)
    k = 1.0
    while k * 10 <= raw:
        k *= 10
    while k > raw:
        k /= 10
    for m in (1, 2, 5, 10):
        if k * m >= raw:
            return k * m
    return k * 10


def fmt_ms(v, step):
    dec = 0
    s = step
    while s < 1 and dec < 6:
        s *= 10
        dec += 1
    return "%.*f" % (dec, v)


def fmt_dur(us):
    if us >= 1000:
        return "%.3f ms" % (us / 1e3)
    return "%.1f us" % us


def stroke(extra):
    """Say stroke="none" where no stroke is given (some renderers draw
    one)."""
    return extra if "stroke=" in extra else extra + ' stroke="none"'


class Svg:
    def __init__(self):
        self.parts = []

    def add(self, s):
        self.parts.append(s)

    def rect(self, x, y, w, h, fill, title=None, extra=""):
        t = "<title>%s</title>" % escape(title) if title else ""
        if t:
            self.add('<rect x="%.1f" y="%.1f" width="%.1f" height="%.1f" '
                     'fill="%s"%s>%s</rect>' %
                     (x, y, w, h, fill, stroke(extra), t))
        else:
            self.add('<rect x="%.1f" y="%.1f" width="%.1f" height="%.1f" '
                     'fill="%s"%s/>' %
                     (x, y, w, h, fill, stroke(extra)))

    def text(self, x, y, s, size=10, fill="#222", anchor="start",
             extra=""):
        self.add('<text x="%.1f" y="%.1f" font-size="%s" fill="%s" '
                 'text-anchor="%s"%s>%s</text>' %
                 (x, y, size, fill, anchor, extra, escape(str(s))))


def fit(name, width):
    """The label that fits in width pixels, or None."""
    room = int((width - 4) / CHAR_W)
    if room >= len(name):
        return name
    if room >= 4:
        return name[:room - 1] + "\u2026"
    return None


def render(tr, t0, t1, width, title):
    span = max(t1 - t0, 1e-3)
    plot_w = width - LABEL_W - MARGIN_R
    scale = plot_w / span

    def x_of(t):
        return LABEL_W + (t - t0) * scale

    svg = Svg()
    y = TITLE_H + AXIS_H
    body = []  # (kind, ...) drawn after we know the height
    totals = collections.Counter()  # name -> time in the window (tasks)
    lanes = []
    for tid in tr.tracks():
        sl = [s for s in tr.slices.get(tid, ()) if s[1] >= t0 and s[0] <= t1]
        depth = max((d for _, _, d, _ in sl), default=-1) + 1
        rows = []
        for d in range(depth):
            items = [(b, e, n) for b, e, dd, n in sl if dd == d]
            rows.append(aggregate(items, x_of, t0, t1))
            if d == 0:
                for b, e, n in items:
                    if n != "parked":
                        totals[n] += min(e, t1) - max(b, t0)
        waits = [w for w in tr.waits if w[3] == tid]
        wrows = pack_rows(waits, x_of, t0, t1, MAX_BAR_ROWS)
        lanes.append((tr.names.get(tid, "tid %s" % tid), tid, rows, wrows))
    io_rows = pack_rows(tr.ios, x_of, t0, t1, MAX_BAR_ROWS)

    # Lanes.
    for i, (name, tid, rows, wrows) in enumerate(lanes):
        h = max(len(rows), 1) * ROW_H + len(wrows) * (BAR_H + BAR_GAP)
        body.append(("band", y - LANE_GAP / 2, h + LANE_GAP, i % 2))
        body.append(("label", y, name, len(rows) or 1))
        for d, boxes in enumerate(rows):
            ry = y + d * ROW_H
            for p0, p1, n, cnt, b, e in boxes:
                body.append(("box", p0, ry, p1 - p0, n, cnt, b, e))
        wy = y + max(len(rows), 1) * ROW_H
        for r, items in enumerate(wrows):
            for p0, p1, n, cnt, b, e in aggregate(
                    [(w[0], w[1], w[2]) for w in items], x_of, t0, t1):
                body.append(("bar", p0, wy + r * (BAR_H + BAR_GAP),
                             max(p1 - p0, 0.5), n, cnt, b, e, "wait"))
        y += h + LANE_GAP
    # The io ops lane.
    h = max(len(io_rows), 1) * (BAR_H + BAR_GAP) + 6
    body.append(("band", y - LANE_GAP / 2, h + LANE_GAP, len(lanes) % 2))
    body.append(("label", y, "io ops", 0))
    for r, items in enumerate(io_rows):
        for p0, p1, n, cnt, b, e in aggregate(
                [(o[0], o[1], o[2]) for o in items], x_of, t0, t1):
            body.append(("bar", p0, y + 3 + r * (BAR_H + BAR_GAP),
                         max(p1 - p0, 0.5), n, cnt, b, e, "io"))
    if not tr.ios:
        body.append(("note", y + 8, "(none in this trace)"))
    y += h + LANE_GAP
    plot_bottom = y

    # The legend: the names with the most task time, the io operations,
    # then the fixed ones that appear.
    legend = [(n, colour(n)) for n, _ in totals.most_common(12)]
    ops = collections.Counter()
    for kind, *a in body:
        if kind == "bar" and a[-1] == "io" and a[3] is not None:
            ops["io " + str(a[3])] += 1
    legend += [(n, colour(n[3:])) for n, _ in ops.most_common(6)]
    if any(kind == "box" and a[3] == "parked" for kind, *a in body):
        legend.append(("parked", PARKED))
    if any(kind in ("box", "bar") and a[3] is None for kind, *a in body):
        legend.append(("many small slices, no name has 40%", MIXED))
    legend_y = y + 8
    lx, ly = LABEL_W, legend_y + 10
    legend_items = []
    for n, c in legend:
        w = 16 + len(str(n)) * CHAR_W + 14
        if lx + w > width - MARGIN_R:
            lx, ly = LABEL_W, ly + 16
        legend_items.append((lx, ly, n, c))
        lx += w
    bars_note_y = ly + 28
    height = bars_note_y + 10

    # Draw.
    svg.add('<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" '
            'viewBox="0 0 %d %d" style="%s">' %
            (width, height, width, height, FONT))
    svg.rect(0, 0, width, height, "#ffffff")
    svg.text(8, 17, title, size=13, fill="#111",
             extra=' font-weight="bold"')
    svg.text(width - MARGIN_R, 17, "%s .. %s ms, %s shown" %
             (fmt_ms(t0 / 1e3, 0.001), fmt_ms(t1 / 1e3, 0.001),
              fmt_dur(t1 - t0)), size=10, fill="#555", anchor="end")
    for kind, *a in body:
        if kind == "band" and a[2]:
            svg.rect(0, a[0], width, a[1], "#f6f7f9")
    # Axis and grid.
    step = nice_step(span / 1e3, max(plot_w // 110, 2))
    first = -(-(t0 / 1e3) // step) * step
    ax_y = TITLE_H + AXIS_H - 8
    svg.add('<line x1="%d" y1="%.1f" x2="%d" y2="%.1f" stroke="#888" '
            'stroke-width="1"/>' % (LABEL_W, ax_y, width - MARGIN_R, ax_y))
    k = 0
    while first + k * step <= t1 / 1e3 + step * 1e-9:
        v = first + k * step
        k += 1
        x = x_of(v * 1e3)
        svg.add('<line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f" '
                'stroke="#e2e2e2" stroke-width="1"/>' %
                (x, ax_y, x, plot_bottom))
        svg.add('<line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f" '
                'stroke="#888" stroke-width="1"/>' % (x, ax_y - 4, x, ax_y))
        lab = fmt_ms(v, step)
        half = len(lab) * CHAR_W * 0.45
        svg.text(min(max(x, LABEL_W + half), width - half - 2), ax_y - 6,
                 lab, size=9,
                 fill="#444", anchor="middle")
    svg.text(LABEL_W - 8, ax_y - 6, "ms", size=9, fill="#444", anchor="end")
    for kind, *a in body:
        if kind == "label":
            yy, name, nrows = a
            svg.text(8, yy + ROW_H - 4, name, size=11, fill="#111")
        elif kind == "note":
            svg.text(LABEL_W + 4, a[0] + 3, a[1], size=9, fill="#888")
        elif kind == "box":
            x, yy, w, n, cnt, b, e = a
            fill = MIXED if n is None else colour(n)
            if cnt > 1:
                tip = "%d slices (%s), %s .. %s ms" % (
                    cnt, "mixed" if n is None else "most time: " + str(n),
                    fmt_ms(b / 1e3, 0.001), fmt_ms(e / 1e3, 0.001))
            else:
                tip = "%s: %s, at %s ms" % (n, fmt_dur(e - b),
                                            fmt_ms(b / 1e3, 0.001))
            svg.rect(x, yy + 0.5, w, ROW_H - 1.5, fill, tip,
                     ' stroke="#ffffff" stroke-width="0.4"'
                     if cnt == 1 and w > 3 else "")
            if n is not None and cnt == 1 and w > 14:
                lab = fit(str(n), w)
                if lab:
                    svg.text(x + w / 2, yy + ROW_H - 4.5, lab, size=10,
                             fill="#333" if n == "parked" else "#fff",
                             anchor="middle",
                             extra=' style="pointer-events:none"')
        elif kind == "bar":
            x, yy, w, n, cnt, b, e, cat = a
            fill = MIXED if n is None else colour(n)
            if cnt > 1:
                tip = "%d %s (%s), %s .. %s ms" % (
                    cnt, "waits" if cat == "wait" else "io ops",
                    "mixed" if n is None else "most time: " + str(n),
                    fmt_ms(b / 1e3, 0.001), fmt_ms(e / 1e3, 0.001))
            else:
                tip = "%s %s: %s, at %s ms" % (
                    "wait of" if cat == "wait" else "io", n,
                    fmt_dur(e - b), fmt_ms(b / 1e3, 0.001))
            svg.rect(x, yy, w, BAR_H, fill, tip,
                     ' opacity="0.75"' if cat == "wait" else "")
    svg.add('<line x1="%d" y1="%.1f" x2="%d" y2="%.1f" stroke="#ccc"/>' %
            (LABEL_W, TITLE_H + AXIS_H - 8, LABEL_W, plot_bottom))
    # Legend.
    svg.text(8, legend_y + 19, "legend", size=10, fill="#555")
    for lx, ly, n, c in legend_items:
        svg.rect(lx, ly, 12, 10, c)
        svg.text(lx + 16, ly + 9, n, size=10)
    svg.text(LABEL_W, bars_note_y,
             "thin bars under a lane: waits that began there (suspension "
             "to resume, coloured by task); io ops: submission to "
             "completion, by operation", size=9, fill="#666")
    svg.add("</svg>")
    return "\n".join(svg.parts) + "\n"


def main(argv=None):
    ap = argparse.ArgumentParser(
        prog="trace2svg.py",
        description="Draw a weft trace (Chrome trace-event JSON) as SVG.")
    ap.add_argument("trace", help="the trace file (WEFT_TRACE, "
                    "weft_pool_trace_write())")
    ap.add_argument("-o", "--output", metavar="OUT.svg",
                    help="where to write the SVG (default: standard output)")
    ap.add_argument("--from-ms", type=float, metavar="MS",
                    help="start of the window, ms since the pool began")
    ap.add_argument("--to-ms", type=float, metavar="MS",
                    help="end of the window")
    ap.add_argument("--width", type=int, default=1200, metavar="PX",
                    help="picture width in pixels (default 1200)")
    ap.add_argument("--title", help="the title (default: the process name "
                    "and the file)")
    args = ap.parse_args(argv)
    if args.width < LABEL_W + MARGIN_R + 100:
        ap.error("--width must be at least %d" % (LABEL_W + MARGIN_R + 100))
    try:
        with open(args.trace, "rb") as f:
            data = json.load(f)
    except (OSError, ValueError) as e:
        print("trace2svg: %s: %s" % (args.trace, e), file=sys.stderr)
        return 1
    if not isinstance(data, (dict, list)) or (
            isinstance(data, dict) and
            not isinstance(data.get("traceEvents"), list)):
        print("trace2svg: %s: no traceEvents list" % args.trace,
              file=sys.stderr)
        return 1
    tr = Trace(data)
    t0 = tr.t_min if args.from_ms is None else args.from_ms * 1e3
    t1 = tr.t_max if args.to_ms is None else args.to_ms * 1e3
    if t1 <= t0:
        print("trace2svg: empty window (%.3f .. %.3f ms)" %
              (t0 / 1e3, t1 / 1e3), file=sys.stderr)
        return 1
    title = args.title or "%s \u2014 %s" % (tr.process or "trace",
                                             args.trace.split("/")[-1])
    out = render(tr, t0, t1, args.width, title)
    if args.output:
        with open(args.output, "w", encoding="utf-8") as f:
            f.write(out)
    else:
        sys.stdout.write(out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
