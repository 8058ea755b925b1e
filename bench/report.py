#!/usr/bin/env python3
"""report.py - turn the comparison rows of bench/report.sh into the report.

The benchmark programs append one row per (workload, system) to a CSV with
bench_report() (bench/bench_common.h):

    workload,size,system,workers,rounds,median_s,min_s,max_s,
    ratio_median,ratio_min,ratio_max,answer,ok

where ratio = the system's time / weft's time per interleaved round (> 1:
weft is faster). This script reads that CSV and writes:

  table      the terminal table: one row per workload, weft's time and each
             peer's ratio, the median over the rounds with the min-max spread
             on the line below (also written to report.txt, and as Markdown
             to report.md for docs/benchmarks.md)
  charts     with gnuplot: ratios.svg (every peer's ratio per workload, log
             scale, bars min-max) and, for a scaling run, scaling.svg (each
             system's speed relative to weft on 1 worker, against workers)
  check      --check: every row's answer was right, and every workload has
             a row for weft and for each peer the build has (--expect), so
             that a program that skipped a system cannot pass unnoticed

Only the Python standard library; gnuplot is optional (charts are skipped
with a message when it is missing, unless --need-charts).
"""

import argparse
import csv
import math
import os
import platform
import shutil
import subprocess
import sys
from collections import OrderedDict

# The workloads in the order of DESIGN.md section 8, with what they are.
WORKLOADS = OrderedDict([
    ("fib", "fork/join, a spawn per call"),
    ("skynet", "10-ary tree of tasks"),
    ("nqueens", "irregular fork/join"),
    ("uts", "unbalanced tree search"),
    ("submit", "tiny tasks from an outside thread"),
    ("map_cheap", "map, x*x+1"),
    ("map_heavy", "map, 20 x sin"),
    ("reads", "4 KiB random reads, page cache"),
    ("nop", "NOP round trips"),
    ("echo", "TCP echo, loopback"),
])

# Systems in column order; weft's own extra variants come first.
SYSTEMS = OrderedDict([
    ("weft_pfor", "weft pfor"),
    ("weft_thread", "weft thread"),
    ("serial", "serial"),
    ("mutex", "mutex pool"),
    ("openmp", "OpenMP"),
    ("tbb", "oneTBB"),
    ("libuv", "libuv"),
    ("liburing", "liburing"),
    ("pread", "pread pool"),
    ("fio", "fio"),
    ("epoll", "epoll"),
])

# Which peers each workload has (bench/report.sh --expect names the ones
# the build has; a workload must have a row for each of those).
PEERS = {
    "fib": ["serial", "openmp", "tbb"],
    "skynet": ["serial", "openmp", "tbb"],
    "nqueens": ["serial", "openmp", "tbb"],
    "uts": ["serial", "openmp", "tbb"],
    "submit": ["mutex", "openmp", "tbb", "libuv"],
    "map_cheap": ["serial", "openmp", "tbb"],
    "map_heavy": ["serial", "openmp", "tbb"],
    "reads": ["liburing", "pread", "fio"],
    "nop": ["liburing"],
    "echo": ["epoll"],
}
# The peers every build has (they are part of bench/ itself).
ALWAYS = {"serial", "mutex", "liburing", "pread", "epoll"}
# The workloads whose program is built only with liburing; the rest are
# the CPU workloads (two tables, so that each stays narrow).
IO_WORKLOADS = {"reads", "nop", "echo"}
CPU_WORKLOADS = set(WORKLOADS) - IO_WORKLOADS


def read_rows(path):
    with open(path, newline="") as f:
        rows = list(csv.DictReader(f))
    for r in rows:
        for k in ("median_s", "min_s", "max_s", "ratio_median", "ratio_min",
                  "ratio_max"):
            r[k] = float(r[k])
        r["workers"] = int(r["workers"])
        r["rounds"] = int(r["rounds"])
        r["ok"] = r["ok"].strip() == "1"
    return rows


def fmt_time(s):
    if s >= 1:
        return "%.3g s" % s
    if s >= 1e-3:
        return "%.3g ms" % (s * 1e3)
    if s >= 1e-6:
        return "%.3g us" % (s * 1e6)
    return "%.3g ns" % (s * 1e9)


def fmt_time_range(lo, hi):
    """"8.0-8.5 ms": both ends in the unit of the upper one."""
    for scale, unit in ((1, "s"), (1e-3, "ms"), (1e-6, "us"), (1e-9, "ns")):
        if hi >= scale or unit == "ns":
            return "%.3g-%.3g %s" % (lo / scale, hi / scale, unit)


def fmt_ratio(x):
    if x >= 100:
        return "%.0fx" % x
    if x >= 10:
        return "%.1fx" % x
    return "%.2fx" % x


def fmt_spread(lo, hi):
    def one(x):
        return "%.0f" % x if x >= 100 else ("%.1f" % x if x >= 10 else "%.2f" % x)
    return "%s-%s" % (one(lo), one(hi))


def machine():
    model = "?"
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name") or line.startswith("Model"):
                    model = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return "%s, %d CPUs, Linux %s" % (model, os.cpu_count() or 0,
                                      platform.release())


def table(rows, workers, title, group=None):
    """The terminal table for the rows of one worker count (and, when
    @group is given, of those workloads only)."""
    sel = [r for r in rows if r["workers"] == workers and
           (group is None or r["workload"] in group)]
    workloads = [w for w in WORKLOADS if any(r["workload"] == w for r in sel)]
    workloads += sorted({r["workload"] for r in sel} - set(workloads))
    systems = [s for s in SYSTEMS if any(r["system"] == s for r in sel)]
    systems += sorted({r["system"] for r in sel} - set(systems) - {"weft"})
    by = {(r["workload"], r["system"]): r for r in sel}

    head = ["workload", "size", "weft"] + [SYSTEMS.get(s, s) for s in systems]
    lines = []
    for w in workloads:
        first = [w, "", "-"]
        second = ["", "", ""]
        wr = by.get((w, "weft"))
        any_row = next((r for r in sel if r["workload"] == w), None)
        first[1] = (wr or any_row)["size"]
        if wr:
            first[2] = fmt_time(wr["median_s"])
            second[2] = fmt_time_range(wr["min_s"], wr["max_s"])
        for s in systems:
            r = by.get((w, s))
            if not r:
                first.append("")
                second.append("")
                continue
            mark = "" if r["ok"] else " WRONG"
            first.append(fmt_ratio(r["ratio_median"]) + mark)
            second.append(fmt_spread(r["ratio_min"], r["ratio_max"]))
        lines.append(first)
        lines.append(second)
    if not lines:
        return [], head, lines
    widths = [max(len(x) for x in col) for col in zip(head, *lines)]
    out = [title, ""]
    fmt = lambda cells: "  ".join(c.ljust(wd) for c, wd in zip(cells, widths)).rstrip()
    out.append(fmt(head))
    out.append(fmt(["-" * wd for wd in widths]))
    out += [fmt(l) for l in lines]
    return out, head, lines


def markdown(head, lines):
    out = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for i in range(0, len(lines), 2):
        cells = []
        for a, b in zip(lines[i], lines[i + 1]):
            cells.append("%s (%s)" % (a, b) if a and b else a)
        out.append("| " + " | ".join(cells) + " |")
    return out


def gnuplot(script, name):
    if not shutil.which("gnuplot"):
        return False
    p = subprocess.run(["gnuplot"], input=script, text=True,
                       capture_output=True)
    if p.returncode:
        sys.stderr.write("report.py: gnuplot failed for %s:\n%s" %
                         (name, p.stderr))
        return False
    return True


def chart_ratios(rows, workers, out_dir, title):
    sel = [r for r in rows if r["workers"] == workers and r["system"] != "weft"]
    workloads = [w for w in WORKLOADS if any(r["workload"] == w for r in sel)]
    systems = [s for s in SYSTEMS if any(r["system"] == s for r in sel)]
    if not workloads or not systems:
        return None
    by = {(r["workload"], r["system"]): r for r in sel}
    dat = os.path.join(out_dir, "ratios.dat")
    with open(dat, "w") as f:
        f.write("workload " + " ".join("%s %s_min %s_max" % (s, s, s)
                                       for s in systems) + "\n")
        for w in workloads:
            cells = [w]
            for s in systems:
                r = by.get((w, s))
                cells += (["%g" % r["ratio_median"], "%g" % r["ratio_min"],
                           "%g" % r["ratio_max"]] if r else ["?", "?", "?"])
            f.write(" ".join(cells) + "\n")
    svg = os.path.join(out_dir, "ratios.svg")
    # gnuplot's word() splits on spaces: multi-word names get underscores.
    names = " ".join(SYSTEMS.get(s, s).replace(" ", "_") for s in systems)
    script = """
set terminal svg size 1100,560 dynamic font "sans,11" background rgb "white"
set output "%s"
set termoption noenhanced
set title "%s"
set datafile missing "?"
set style data histogram
set style histogram errorbars gap 2 lw 1
set style fill solid 0.7 border -1
set boxwidth 0.9
set logscale y
set yrange [0.1:*]
set ylabel "peer's time / weft's time (> 1: weft faster), log scale"
set grid ytics
set key outside right top vertical
set xtics scale 0 nomirror
names = '%s'
plot for [i=1:%d] "%s" using (column(3*i-1)):(column(3*i)):(column(3*i+1)):xtic(1) \\
     skip 1 title word(names, i), 1 with lines lc rgb "#c03030" dt 2 lw 2 notitle
""" % (svg, title, names, len(systems), dat)
    return svg if gnuplot(script, svg) else None


def chart_scaling(rows, out_dir, title):
    """Speed relative to weft on 1 worker: t(weft, 1 worker) / t(system, w)."""
    counts = sorted({r["workers"] for r in rows})
    if len(counts) < 2:
        return None
    workloads = [w for w in WORKLOADS if any(r["workload"] == w for r in rows)]
    panels = []
    for w in workloads:
        base = [r for r in rows if r["workload"] == w and r["system"] == "weft"
                and r["workers"] == counts[0]]
        if not base:
            continue
        b = base[0]["median_s"]
        systems = [s for s in ["weft"] + list(SYSTEMS)
                   if any(r["workload"] == w and r["system"] == s for r in rows)]
        dat = os.path.join(out_dir, "scaling-%s.dat" % w)
        with open(dat, "w") as f:
            for s in systems:
                f.write("# %s\n" % s)
                for c in counts:
                    r = [x for x in rows if x["workload"] == w and
                         x["system"] == s and x["workers"] == c]
                    if r and r[0]["median_s"] > 0:
                        f.write("%d %g\n" % (c, b / r[0]["median_s"]))
                f.write("\n\n")
        panels.append((w, systems, dat))
    if not panels:
        return None
    cols = 3
    nrows = (len(panels) + cols - 1) // cols
    svg = os.path.join(out_dir, "scaling.svg")
    lines = ['set terminal svg size %d,%d dynamic font "sans,10" background rgb "white"'
             % (1200, 330 * nrows),
             'set output "%s"' % svg, "set termoption noenhanced",
             'set multiplot layout %d,%d title "%s"' % (nrows, cols, title),
             "set grid", "set key left top font ',8'",
             "set xlabel 'workers'", "set ylabel 'speed vs weft on %d worker'" % counts[0],
             "set xrange [%d:%d]" % (counts[0], counts[-1]),
             "set xtics 1" if counts[-1] - counts[0] <= 8 else "set xtics auto",
             "set yrange [0:*]"]
    for w, systems, dat in panels:
        lines.append("set title '%s'" % w.replace("_", " "))
        plots = []
        for i, s in enumerate(systems):
            plots.append("'%s' index %d using 1:2 with linespoints title '%s'"
                         % (dat, i, SYSTEMS.get(s, s)))
        lines.append("plot " + ", ".join(plots))
    lines.append("unset multiplot")
    return svg if gnuplot("\n".join(lines) + "\n", svg) else None


def load_lines(results):
    """What bench_load_end() recorded: the CPUs other processes used while
    each program ran (variant "env" rows of the --csv file)."""
    load = OrderedDict()
    try:
        with open(results, newline="") as f:
            for r in csv.DictReader(f):
                if r["variant"] == "env":
                    load.setdefault(r["benchmark"], {})[r["metric"]] = float(r["value"])
    except (OSError, KeyError, ValueError):
        return []
    if not load:
        return []
    busy = [p for p, m in load.items()
            if m.get("other_processes_cpus", 0) + m.get("stolen_cpus", 0) > 0.25]
    out = ["Load while the programs ran (CPUs used by other processes, "
           "stolen by the hypervisor): " +
           ", ".join("%s %.2f/%.2f" % (p, m.get("other_processes_cpus", 0),
                                       m.get("stolen_cpus", 0))
                     for p, m in load.items())]
    if busy:
        out.append("WARNING: the machine was busy during %s; those figures "
                   "are unreliable (rerun on an idle machine)" % ", ".join(busy))
    return out


def check(rows, expect):
    """Every answer right, and every workload has weft and its peers."""
    errors = []
    for r in rows:
        if not r["ok"]:
            errors.append("%s on %s (%d workers): wrong answer %s" %
                          (r["workload"], r["system"], r["workers"], r["answer"]))
    have = {(r["workload"], r["system"]) for r in rows}
    for w, peers in PEERS.items():
        if w in IO_WORKLOADS and "io" not in expect:
            continue
        for s in ["weft"] + peers:
            if s != "weft" and s not in ALWAYS and s not in expect:
                continue
            if (w, s) not in have:
                errors.append("%s: no row for %s" % (w, s))
    return errors


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("csv", help="the comparison rows (bench_report())")
    ap.add_argument("--out", help="directory for report.txt/.md and charts")
    ap.add_argument("--mode", default="quick")
    ap.add_argument("--check", action="store_true",
                    help="fail unless every answer is right and every peer ran")
    ap.add_argument("--expect", default="",
                    help="comma-separated optional peers the build has "
                         "(openmp,tbb,libuv,fio,io)")
    ap.add_argument("--no-charts", action="store_true")
    ap.add_argument("--results",
                    help="the programs' --csv rows, for the machine's load")
    args = ap.parse_args()

    rows = read_rows(args.csv)
    if not rows:
        sys.exit("report.py: no rows in %s" % args.csv)
    out_dir = args.out or os.path.dirname(os.path.abspath(args.csv))
    counts = sorted({r["workers"] for r in rows})
    main_workers = counts[-1]
    md = []
    text = ["weft against its peers, %s sizes. Each cell: the peer's time / "
            "weft's time (> 1: weft is faster), the median of interleaved "
            "rounds, with their min-max below; weft's own time per run in "
            "its column." % args.mode, "Machine: " + machine(), ""]
    if args.results:
        text += load_lines(args.results) + [""]
    for c in counts:
        for name, group in (("CPU", CPU_WORKLOADS), ("I/O", IO_WORKLOADS)):
            title = "%s workloads, %d worker%s:" % (name, c, "" if c == 1 else "s")
            t, head, lines = table(rows, c, title, group)
            if not t:
                continue
            text += t + [""]
            md += [title, ""] + markdown(head, lines) + [""]
    print("\n".join(text))
    with open(os.path.join(out_dir, "report.txt"), "w") as f:
        f.write("\n".join(text) + "\n")
    with open(os.path.join(out_dir, "report.md"), "w") as f:
        f.write("Machine: %s\n\n" % machine() +
                ("\n".join(load_lines(args.results)) + "\n\n"
                 if args.results else "") + "\n".join(md) + "\n")

    if not args.no_charts:
        if not shutil.which("gnuplot"):
            print("report.py: no gnuplot, so no charts (.ci/deps bench installs it)")
        else:
            svg = chart_ratios(rows, main_workers, out_dir,
                               "weft vs peers, %d workers, %s sizes (bars: min-max over rounds)"
                               % (main_workers, args.mode))
            if svg:
                print("chart: %s" % svg)
            svg = chart_scaling(rows, out_dir,
                                "scaling, %s sizes: speed relative to weft on %d worker"
                                % (args.mode, counts[0]))
            if svg:
                print("chart: %s" % svg)

    wrong = [r for r in rows if not r["ok"]]
    if args.check:
        errors = check(rows, set(filter(None, args.expect.split(","))))
        for e in errors:
            print("report.py: CHECK FAILED: %s" % e)
        if errors:
            sys.exit(1)
        print("report.py: check passed: %d rows, every answer right, every "
              "expected peer present" % len(rows))
    elif wrong:
        for r in wrong:
            print("report.py: WRONG answer: %s on %s" % (r["workload"], r["system"]))
        sys.exit(1)


if __name__ == "__main__":
    main()
