#!/bin/sh
# report.sh - the benchmark report: weft against the pools people use.
#
#   bench/report.sh                 quick sizes (under 3 minutes on 2 cores)
#   bench/report.sh --full          the full sizes (about 7 minutes on 2 cores)
#   bench/report.sh --tiny          tiny sizes, one round: checks answers only
#   bench/report.sh --scaling [L]   the CPU workloads at 1..N workers (L: a
#                                   list such as "1 2 4 8 16"; default every
#                                   count from 1 to the CPUs, or powers of two
#                                   and N past 8), charted
#   bench/report.sh --workers N     worker count for every pool (default: all)
#   bench/report.sh -C DIR          build directory (default: build)
#   bench/report.sh --out DIR       where results go (default: DIR/bench/report)
#   bench/report.sh --no-build      run what is built (ninja bench-report)
#   bench/report.sh --no-targets    skip the programs that only measure
#                                   weft's own targets (switch, async, idle)
#   bench/report.sh --check --expect LIST
#                                   fail unless every answer is right and
#                                   every workload ran on weft and on each
#                                   peer the build has (LIST: openmp,tbb,
#                                   libuv,fio,io); the answer test uses it
#
# Each program runs weft and its peers in interleaved rounds in one process
# and appends a row per (workload, system) to <out>/report.csv; report.py
# prints the table (weft's time, each peer as its time / weft's time, median
# and min-max of the rounds), writes report.txt, report.md and the charts
# (ratios.svg, and scaling.svg for --scaling) with gnuplot. Each program's
# own output goes to <out>/<program>.log, their target rows to results.csv.
# The script fails when a program does (a wrong answer exits 1) or a check
# fails; a missed speed target is reported, never a failure.
set -eu

here=$(cd "$(dirname "$0")" && pwd)
root=$(dirname "$here")
build="$root/build"
mode=--quick
workers=
build_first=1
scaling=
scaling_list=
targets=1
out=
check=
expect=

while [ $# -gt 0 ]; do
	case "$1" in
	--full) mode=--full ;;
	--quick) mode=--quick ;;
	--tiny) mode=--tiny ;;
	--scaling)
		scaling=1
		case "${2-}" in
		[0-9]*) shift; scaling_list=$1 ;;
		esac ;;
	-C) shift; build=$1 ;;
	--out) shift; out=$1 ;;
	--workers) shift; workers=$1 ;;
	--no-build) build_first=0 ;;
	--no-targets) targets=0 ;;
	--check) check=--check ;;
	--expect) shift; expect=$1 ;;
	-h|--help) sed -n '2,33p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
	*) echo "report.sh: unknown argument $1" >&2; exit 2 ;;
	esac
	shift
done

# The programs that compare weft with peers, and those that measure only
# weft's own targets (milestones 0.1-0.2: a context switch, awaits and
# suspended tasks' memory, idle CPU; 0.5: what observability costs).
compare="bench_fib bench_tree bench_submit bench_map"
cpu_programs="$compare"
own="bench_switch bench_async bench_idle bench_obs"
[ "$mode" = --tiny ] && targets=0
[ -n "$scaling" ] && targets=0

have_io=0
if [ "$build_first" = 1 ]; then
	if [ ! -f "$build/build.ninja" ]; then
		meson setup "$build" "$root"
	fi
	if [ ! -d "$build/bench" ]; then
		echo "report.sh: $build has no benchmarks; reconfigure with -Dbench=true" >&2
		exit 2
	fi
	# bench_io is built only with liburing (bench/meson.build).
	if ninja -C "$build" -t targets all 2>/dev/null |
		grep -q '^bench/bench_io:'; then
		have_io=1
	fi
	t=
	for p in $compare $own bench_io; do
		[ "$p" = bench_io ] && [ $have_io = 0 ] && continue
		t="$t bench/$p"
	done
	# shellcheck disable=SC2086
	ninja -C "$build" $t
elif [ -x "$build/bench/bench_io" ]; then
	have_io=1
fi
[ $have_io = 1 ] && compare="$compare bench_io"

out=${out:-$build/bench/report}
mkdir -p "$out"
csv="$out/report.csv"
rm -f "$csv" "$out/results.csv"

ncpu=$(getconf _NPROCESSORS_ONLN 2>/dev/null || echo 1)
if [ -n "$scaling" ]; then
	if [ -z "$scaling_list" ]; then
		max=${workers:-$ncpu}
		if [ "$max" -le 8 ]; then
			scaling_list=$(seq 1 "$max" | tr '\n' ' ')
		else
			scaling_list="1 2 4"
			w=6
			while [ $w -lt "$max" ]; do
				scaling_list="$scaling_list $w"
				w=$((w + 2))
			done
			scaling_list="$scaling_list $max"
		fi
	fi
	runs=
	for w in $scaling_list; do
		for p in $cpu_programs; do runs="$runs $p:$w"; done
	done
else
	runs=
	for p in $compare; do runs="$runs $p:${workers:-0}"; done
	if [ $targets = 1 ]; then
		for p in $own; do runs="$runs $p:${workers:-0}"; done
	fi
fi

# Progress: one line per program, rewritten every second on a terminal.
tty=0
[ -t 1 ] && tty=1
total=$(echo $runs | wc -w)
i=0
status=0
t_all=$(date +%s)
for run in $runs; do
	i=$((i + 1))
	p=${run%%:*}
	w=${run#*:}
	wopt=
	[ "$w" != 0 ] && wopt="--workers $w"
	log="$out/$p.log"
	[ -n "$scaling" ] && log="$out/$p-w$w.log"
	label="[$i/$total] $p $mode${wopt:+ $wopt}"
	t0=$(date +%s)
	# shellcheck disable=SC2086
	"$build/bench/$p" $mode $wopt --report "$csv" --csv "$out/results.csv" \
		>"$log" 2>&1 &
	pid=$!
	if [ $tty = 1 ]; then
		while kill -0 $pid 2>/dev/null; do
			printf '\r%s  %ds ' "$label" $(($(date +%s) - t0))
			sleep 1
		done
	else
		echo "$label"
	fi
	rc=0
	wait $pid || rc=$?
	dt=$(($(date +%s) - t0))
	if [ $rc = 0 ]; then
		r="done in ${dt}s"
	elif [ $rc = 77 ]; then
		r="skipped: it cannot run here (see $log)"
	else
		r="FAILED (exit $rc, see $log)"
		status=1
	fi
	if [ $tty = 1 ]; then printf '\r%s  %s\n' "$label" "$r"; else echo "  $r"; fi
	if [ $rc != 0 ] && [ $rc != 77 ]; then
		grep -E 'WRONG|wrong|FAIL|error' "$log" | head -5 >&2 || true
	fi
done
echo "all programs: $(($(date +%s) - t_all))s; logs in $out/"
echo

if [ ! -s "$csv" ]; then
	echo "report.sh: no comparison rows were written" >&2
	exit 1
fi
modename=${mode#--}
# shellcheck disable=SC2086
python3 "$here/report.py" "$csv" --out "$out" --mode "$modename" \
	--results "$out/results.csv" \
	$check ${expect:+--expect "$expect"} || status=1

# Weft's own targets (each program prints MET or MISSED for its targets;
# tiny sizes and scaling runs measure nothing a target is about).
if [ "$mode" != --tiny ] && [ -z "$scaling" ] && [ -s "$out/results.csv" ] &&
	grep -q ',target,' "$out/results.csv"; then
	echo
	awk -F, '
	NR == 1 { next }
	$2 == "target" {
		if ($3 ~ /_met$/) {
			met[$1 "," substr($3, 1, length($3) - 4)] = $4
		} else {
			order[++n] = $1 "," $3
			val[$1 "," $3] = $4
		}
	}
	END {
		printf "%-13s %-52s %12s  %s\n", "program", "weft target", "measured", "result"
		for (i = 1; i <= n; i++) {
			k = order[i]
			split(k, a, ",")
			r = (met[k] == "1") ? "MET" : "MISSED"
			printf "%-13s %-52s %12.4g  %s\n", a[1], a[2], val[k], r
			if (r == "MISSED") missed++
		}
		printf "%d of %d targets met\n", n - missed, n
	}' "$out/results.csv"
fi
echo
echo "results: $csv (rows), $out/report.txt, $out/report.md$( [ -f "$out/ratios.svg" ] && echo ", $out/ratios.svg")$( [ -f "$out/scaling.svg" ] && echo ", $out/scaling.svg")"
exit $status
