#!/usr/bin/env python3
"""Check a weft trace (Chrome trace-event JSON, weft/obs.h) for structure.

    trace_check.py FILE [--workers N] [--expect-task NAME ...]
                   [--expect-cat CAT ...] [--run EXE] [--quiet]

(the lists take several values, or the option again, or commas)

What weft_pool_trace_write() and WEFT_TRACE=<file> write, and what Perfetto
and chrome://tracing need from it:

  - the file is JSON with a "traceEvents" list, every event an object with
    "ph" and "pid" (and "ts" and "tid" where its phase needs them);
  - per track (tid), the "B"/"E" events taken in order of ts (file order
    for equal ts, as the importers keep it) nest and match: no "E" without
    an open "B", none left open at the end, E.ts >= B.ts;
  - every async begin "b" has its own end "e" with the same (cat, id),
    e.ts >= b.ts, no "e" without a "b", and no two "b" of one (cat, id)
    open at once (a reused id is fine once the first slice has ended);
  - "M" thread_name events name tid 0..N-1 "worker <i>" and tid N
    "io thread", and every event's tid is one of them;
  - each --expect-task NAME is the name of some "B" event, and each
    --expect-cat CAT the category of some "b" event.

--workers N checks that there are exactly N workers (otherwise N is taken
from the worker names). --run EXE first runs `EXE FILE` (a program that
writes a trace to the path it is given, such as trace_demo) and then checks
FILE; without FILE it uses a temporary file. An exit status of 77 from EXE
(skip) is passed on.

Prints a summary (events per track, slices, waits, I/O operations) and
exits 0, or prints the first violation and exits 1 (2 for usage errors).
Python 3 standard library only.
"""

import argparse
import collections
import json
import os
import subprocess
import sys
import tempfile

PROG = "trace_check"


class Violation(Exception):
    pass


def describe(ev, idx):
    """An event for a message: its position in the file and its JSON."""
    text = json.dumps(ev, separators=(",", ":"), sort_keys=True)
    if len(text) > 200:
        text = text[:200] + "..."
    return "event #%d %s" % (idx, text)


def is_num(x):
    return isinstance(x, (int, float)) and not isinstance(x, bool)


class Checker:
    def __init__(self, data, workers=None):
        self.data = data
        self.want_workers = workers
        self.violations = []  # (message) in the order found
        self.notes = []
        # Filled by run():
        self.events = []
        self.thread_names = {}  # tid -> name
        self.nworkers = 0
        self.io_tid = None
        self.per_tid = collections.Counter()
        self.slices = collections.Counter()  # tid -> completed B/E slices
        self.depth = collections.Counter()  # tid -> deepest nesting
        self.busy = collections.Counter()  # tid -> time in outermost tasks
        self.idle = collections.Counter()  # tid -> time in "parked" slices
        self.b_names = collections.Counter()  # name -> B count
        self.b_names_tid = collections.defaultdict(collections.Counter)
        self.async_done = collections.defaultdict(list)  # cat -> [(name, dur)]
        self.async_cats = collections.Counter()  # cat -> b count
        self.span = (None, None)
        self.by_ph = collections.Counter()

    def fail(self, msg):
        self.violations.append(msg)

    # -- the whole check ------------------------------------------------

    def run(self):
        data = self.data
        if not isinstance(data, dict):
            raise Violation("the top level is a %s, not an object with "
                            "\"traceEvents\"" % type(data).__name__)
        evs = data.get("traceEvents")
        if not isinstance(evs, list):
            raise Violation("\"traceEvents\" is %s, not a list" %
                            ("missing" if evs is None
                             else "a " + type(evs).__name__))
        self.events = evs
        self.check_fields()
        self.check_threads()
        self.check_slices()
        self.check_async()

    def check_fields(self):
        lo = hi = None
        for i, ev in enumerate(self.events):
            if not isinstance(ev, dict):
                self.fail("%s is not an object" % describe(ev, i))
                continue
            ph = ev.get("ph")
            if not isinstance(ph, str) or not ph:
                self.fail("%s has no \"ph\"" % describe(ev, i))
                continue
            if "pid" not in ev:
                self.fail("%s has no \"pid\"" % describe(ev, i))
            self.by_ph[ph] += 1
            if ph == "M":
                continue
            ts = ev.get("ts")
            if not is_num(ts):
                self.fail("%s has no numeric \"ts\"" % describe(ev, i))
                continue
            if ts < 0:
                self.fail("%s has a negative ts" % describe(ev, i))
            lo = ts if lo is None else min(lo, ts)
            hi = ts if hi is None else max(hi, ts)
            if ph in "BEXbei" and "tid" not in ev:
                self.fail("%s has no \"tid\"" % describe(ev, i))
            if ph == "B" and not isinstance(ev.get("name"), str):
                self.fail("%s (a begin) has no name" % describe(ev, i))
            if ph in "be":
                if "id" not in ev and "id2" not in ev:
                    self.fail("%s (async) has no \"id\"" % describe(ev, i))
                if not isinstance(ev.get("cat"), str):
                    self.fail("%s (async) has no \"cat\"" % describe(ev, i))
            if "tid" in ev:
                self.per_tid[ev["tid"]] += 1
        self.span = (lo, hi)

    def check_threads(self):
        for i, ev in enumerate(self.events):
            if (isinstance(ev, dict) and ev.get("ph") == "M" and
                    ev.get("name") == "thread_name"):
                tid = ev.get("tid")
                name = (ev.get("args") or {}).get("name")
                if tid is None or not isinstance(name, str):
                    self.fail("%s: thread_name without tid or args.name" %
                              describe(ev, i))
                    continue
                if tid in self.thread_names and \
                        self.thread_names[tid] != name:
                    self.fail("%s: tid %s named twice (%r before)" %
                              (describe(ev, i), tid,
                               self.thread_names[tid]))
                self.thread_names[tid] = name
        workers = {}
        io = []
        for tid, name in self.thread_names.items():
            if name == "io thread":
                io.append(tid)
            elif name.startswith("worker "):
                try:
                    workers[int(name[7:])] = tid
                except ValueError:
                    pass
        n = self.want_workers
        if n is None:
            n = (max(workers) + 1) if workers else 0
        self.nworkers = n
        if n == 0:
            self.fail("no thread_name metadata for any worker "
                      "(\"worker 0\"...)")
        for i in range(n):
            if i not in workers:
                self.fail("no thread_name metadata for \"worker %d\"" % i)
            elif workers[i] != i:
                self.fail("\"worker %d\" is tid %s, want tid %d" %
                          (i, workers[i], i))
        extra = sorted(i for i in workers if i >= n)
        if extra:
            self.fail("thread_name metadata for worker %d, but --workers %d"
                      % (extra[0], n))
        if not io:
            self.fail("no thread_name metadata for \"io thread\"")
        else:
            self.io_tid = io[0]
            if len(io) > 1:
                self.fail("\"io thread\" names %d tids" % len(io))
            elif io[0] != n:
                self.fail("\"io thread\" is tid %s, want tid %d (after the "
                          "%d workers)" % (io[0], n, n))
        for i, ev in enumerate(self.events):
            if (isinstance(ev, dict) and ev.get("ph") != "M" and
                    "tid" in ev and ev["tid"] not in self.thread_names):
                self.fail("%s is on tid %s, which no thread_name names" %
                          (describe(ev, i), ev["tid"]))
                break

    def check_slices(self):
        tracks = collections.defaultdict(list)
        runs = collections.defaultdict(list)  # args.task -> [(b, e, tid)]
        for i, ev in enumerate(self.events):
            if (isinstance(ev, dict) and ev.get("ph") in ("B", "E") and
                    is_num(ev.get("ts"))):
                tracks[ev.get("tid")].append((ev["ts"], i, ev))
        for tid in sorted(tracks, key=str):
            evs = tracks[tid]
            evs.sort(key=lambda t: (t[0], t[1]))  # stable by file order
            stack = []
            for ts, i, ev in evs:
                if ev["ph"] == "B":
                    stack.append((ts, i, ev))
                    self.depth[tid] = max(self.depth[tid], len(stack))
                    self.b_names[ev.get("name")] += 1
                    self.b_names_tid[tid][ev.get("name")] += 1
                    continue
                if not stack:
                    self.fail("tid %s: %s ends a slice, but none is open" %
                              (tid, describe(ev, i)))
                    continue
                bts, bi, bev = stack.pop()
                if ts < bts:
                    self.fail("tid %s: %s ends before its begin %s" %
                              (tid, describe(ev, i), describe(bev, bi)))
                if "name" in ev and ev["name"] != bev.get("name"):
                    self.fail("tid %s: %s is named unlike its begin %s" %
                              (tid, describe(ev, i), describe(bev, bi)))
                self.slices[tid] += 1
                if not stack:
                    if bev.get("name") == "parked":
                        self.idle[tid] += ts - bts
                    else:
                        self.busy[tid] += ts - bts
                task = (bev.get("args") or {}).get("task")
                if task not in (None, "0x0"):
                    runs[task].append((bts, ts, tid))
            if stack:
                bts, bi, bev = stack[-1]
                self.fail("tid %s: %d slice(s) left open at the end, the "
                          "innermost %s" % (tid, len(stack),
                                            describe(bev, bi)))
        # One task runs in one place at a time. Not a violation: a
        # future's address may be reused by a task that starts while the
        # worker that ran the old one has yet to record its end.
        both = 0
        for task, rs in runs.items():
            rs.sort()
            for (b0, e0, t0), (b1, e1, t1) in zip(rs, rs[1:]):
                if b1 < e0 and t0 != t1:
                    both += 1
                    if both == 1:
                        first = (task, t0, b0, e0, t1, b1)
        if both:
            self.notes.append(
                "%d time(s) a task (args.task) is on two tracks at once, "
                "the first %s on tid %s %.3f..%.3f and tid %s from %.3f "
                "(a reused future address?)" % ((both,) + first))

    def check_async(self):
        evs = []
        for i, ev in enumerate(self.events):
            if (isinstance(ev, dict) and ev.get("ph") in ("b", "e") and
                    is_num(ev.get("ts"))):
                evs.append((ev["ts"], i, ev))
        evs.sort(key=lambda t: (t[0], t[1]))
        open_ = {}
        reused = 0
        seen = set()
        for ts, i, ev in evs:
            key = (ev.get("cat"), str(ev.get("id", ev.get("id2"))))
            if ev["ph"] == "b":
                self.async_cats[key[0]] += 1
                if key in open_:
                    _, bi, bev = open_[key]
                    self.fail("%s begins (cat %r, id %s) while %s with the "
                              "same (cat, id) is still open" %
                              (describe(ev, i), key[0], key[1],
                               describe(bev, bi)))
                    continue
                if key in seen:
                    reused += 1
                seen.add(key)
                open_[key] = (ts, i, ev)
                continue
            if key not in open_:
                self.fail("%s ends (cat %r, id %s), which no open \"b\" "
                          "began" % (describe(ev, i), key[0], key[1]))
                continue
            bts, bi, bev = open_.pop(key)
            if ts < bts:
                self.fail("%s ends before its begin %s" %
                          (describe(ev, i), describe(bev, bi)))
            self.async_done[key[0]].append((bev.get("name"), ts - bts,
                                            bev.get("tid"), ev.get("tid")))
        if open_:
            bts, bi, bev = min(open_.values(), key=lambda t: t[1])
            self.fail("%d async slice(s) never end, the first %s" %
                      (len(open_), describe(bev, bi)))
        if reused:
            self.notes.append("%d async id(s) reused after their first "
                              "slice ended" % reused)

    # -- expectations ---------------------------------------------------

    def expect(self, tasks, cats):
        for name in tasks:
            if not self.b_names.get(name):
                near = sorted(n for n in self.b_names
                              if isinstance(n, str) and
                              (name in n or n in name))
                self.fail("no slice named %r (B events)%s" %
                          (name, "; similar: " + ", ".join(near[:5])
                           if near else ""))
        for cat in cats:
            if not self.async_cats.get(cat):
                self.fail("no async slice (\"b\") of category %r; "
                          "categories seen: %s" %
                          (cat, ", ".join(sorted(map(str, self.async_cats)))
                           or "none"))

    # -- the summary ----------------------------------------------------

    def summary(self, path, out):
        lo, hi = self.span
        p = lambda *a: print(*a, file=out)
        p("%s: %s: %d events (%s), %.3f ms" %
          (PROG, path, len(self.events),
           ", ".join("%s %d" % kv for kv in sorted(self.by_ph.items())),
           ((hi - lo) / 1e3) if lo is not None else 0.0))
        tids = sorted(set(self.thread_names) | set(self.per_tid), key=str)
        for tid in tids:
            name = self.thread_names.get(tid, "?")
            names = self.b_names_tid.get(tid, {})
            top = sorted(((c, n) for n, c in names.items()),
                         key=lambda t: (-t[0], str(t[1])))[:4]
            p("  %-10s tid %-3s events %7d  slices %6d  depth %2d  "
              "busy %8.3f ms  parked %8.3f ms%s" %
              (name, tid, self.per_tid.get(tid, 0), self.slices.get(tid, 0),
               self.depth.get(tid, 0), self.busy.get(tid, 0) / 1e3,
               self.idle.get(tid, 0) / 1e3,
               ("  [" + ", ".join("%s x%d" % (n, c) for c, n in top) + "]")
               if top else ""))
        for cat in sorted(self.async_done, key=str):
            done = self.async_done[cat]
            total = sum(d for _, d, _, _ in done)
            moved = sum(1 for _, _, bt, et in done if bt != et)
            by = collections.Counter(n for n, _, _, _ in done)
            label = {"wait": "waits", "io": "io ops"}.get(cat, cat)
            p("  %-7s %6d  total %9.3f ms  mean %8.3f us  max %8.3f us"
              "%s  [%s]" %
              (label, len(done), total / 1e3,
               total / len(done) if done else 0.0,
               max((d for _, d, _, _ in done), default=0.0),
               ("  ended on another tid %d" % moved) if moved else "",
               ", ".join("%s x%d" % (n, c) for n, c in by.most_common(4))))
        for cat in ("wait", "io"):
            if cat not in self.async_done:
                p("  %-7s %6d" % ({"wait": "waits", "io": "io ops"}[cat], 0))
        for n in self.notes:
            p("  note: %s" % n)


def main(argv=None):
    ap = argparse.ArgumentParser(
        prog="trace_check.py",
        description="Check a weft trace (Chrome trace-event JSON).")
    ap.add_argument("file", nargs="?",
                    help="the trace; with --run, where EXE writes it")
    ap.add_argument("--workers", type=int, metavar="N",
                    help="the pool has exactly N workers")
    ap.add_argument("--expect-task", action="extend", nargs="+", default=[],
                    metavar="NAME", help="a B slice named NAME must exist")
    ap.add_argument("--expect-cat", action="extend", nargs="+", default=[],
                    metavar="CAT",
                    help="an async (b) slice of category CAT must exist")
    ap.add_argument("--run", metavar="EXE",
                    help="first run `EXE FILE` to write the trace")
    ap.add_argument("--quiet", action="store_true",
                    help="print only violations")
    args = ap.parse_args(argv)
    if not args.file and not args.run:
        ap.error("a FILE is needed (or --run EXE)")
    if args.workers is not None and args.workers < 1:
        ap.error("--workers must be at least 1")
    # "--expect-cat wait io", "--expect-cat wait --expect-cat io" and
    # "--expect-cat wait,io" all work.
    split = lambda xs: [y for x in xs for y in x.split(",") if y]
    tasks, cats = split(args.expect_task), split(args.expect_cat)

    path, tmp = args.file, None
    try:
        if args.run:
            if not path:
                fd, tmp = tempfile.mkstemp(prefix="weft-trace-",
                                           suffix=".json")
                os.close(fd)
                path = tmp
            try:
                r = subprocess.run([args.run, path])
            except OSError as e:
                print("%s: FAIL: cannot run %s: %s" % (PROG, args.run, e),
                      file=sys.stderr)
                return 1
            if r.returncode == 77:
                print("%s: SKIP: %s exited 77" % (PROG, args.run))
                return 77
            if r.returncode != 0:
                print("%s: FAIL: %s %s exited with status %d" %
                      (PROG, args.run, path, r.returncode), file=sys.stderr)
                return 1
        return check_file(path, args.workers, tasks, cats, args.quiet)
    finally:
        if tmp:
            os.unlink(tmp)


def check_file(path, workers, tasks, cats, quiet=False):
    try:
        with open(path, "rb") as f:
            data = json.load(f)
    except OSError as e:
        print("%s: FAIL: cannot read %s: %s" % (PROG, path, e.strerror),
              file=sys.stderr)
        return 1
    except ValueError as e:  # JSONDecodeError, UnicodeDecodeError
        print("%s: FAIL: %s is not valid JSON: %s" % (PROG, path, e),
              file=sys.stderr)
        return 1
    c = Checker(data, workers)
    try:
        c.run()
        c.expect(tasks, cats)
    except Violation as v:
        print("%s: FAIL: %s: %s" % (PROG, path, v), file=sys.stderr)
        return 1
    if not quiet:
        c.summary(path, sys.stdout)
        sys.stdout.flush()
    if c.violations:
        print("%s: FAIL: %s: %s" % (PROG, path, c.violations[0]),
              file=sys.stderr)
        for v in c.violations[1:4]:
            print("  also: %s" % v, file=sys.stderr)
        if len(c.violations) > 4:
            print("  ... and %d more" % (len(c.violations) - 4),
                  file=sys.stderr)
        return 1
    if not quiet:
        print("%s: OK" % PROG)
    return 0


if __name__ == "__main__":
    sys.exit(main())
