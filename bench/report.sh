#!/bin/sh
# report.sh - build and run every weft benchmark, one after the other, and
# print a summary. The rows of all of them go to <build>/bench/results.csv
# (benchmark,variant,metric,value), the full tables to <build>/bench/*.log.
#
#   bench/report.sh                 quick sizes (about a minute on 2 cores)
#   bench/report.sh --full          the full sizes (several minutes)
#   bench/report.sh -C DIR          use build directory DIR (default: build)
#   bench/report.sh --workers N     worker count for every pool
#   bench/report.sh --no-build      run what is built (ninja bench-report)
#
# The figures are ratios against baselines measured in the same run; a
# missed target is reported, not a failure. The script fails only when a
# benchmark does (a wrong result, or it could not run).
set -eu

here=$(cd "$(dirname "$0")" && pwd)
root=$(dirname "$here")
build="$root/build"
mode=--quick
workers=
build_first=1

while [ $# -gt 0 ]; do
	case "$1" in
	--full) mode=--full ;;
	--quick) mode=--quick ;;
	-C) shift; build=$1 ;;
	--workers) shift; workers="--workers $1" ;;
	--no-build) build_first=0 ;;
	-h|--help) sed -n '2,14p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
	*) echo "report.sh: unknown argument $1" >&2; exit 2 ;;
	esac
	shift
done

programs="bench_submit bench_map bench_idle bench_fib bench_switch bench_async"
if [ "$build_first" = 1 ]; then
	if [ ! -f "$build/build.ninja" ]; then
		meson setup "$build" "$root"
	fi
	if [ ! -d "$build/bench" ]; then
		echo "report.sh: $build has no benchmarks; reconfigure with -Dbench=true" >&2
		exit 2
	fi
	# bench_io is built only with liburing (bench/meson.build): run it
	# where the build has it.
	if ninja -C "$build" -t targets all 2>/dev/null |
		grep -q '^bench/bench_io:'; then
		programs="$programs bench_io"
	fi
	targets=
	for p in $programs; do targets="$targets bench/$p"; done
	# shellcheck disable=SC2086
	ninja -C "$build" $targets
fi

if [ "$build_first" = 0 ] && [ -x "$build/bench/bench_io" ]; then
	programs="$programs bench_io"
fi

out="$build/bench"
csv="$out/results.csv"
rm -f "$csv"
status=0
for p in $programs; do
	echo "==== $p $mode $workers"
	# shellcheck disable=SC2086
	if ! "$out/$p" $mode $workers --csv "$csv" >"$out/$p.log" 2>&1; then
		status=1
		echo "report.sh: $p FAILED" >&2
	fi
	cat "$out/$p.log"
	echo
done

echo "==== summary ($csv)"
awk -F, '
NR == 1 { next }
$2 == "target" {
	if ($3 ~ /_met$/) {
		met[$1 "," substr($3, 1, length($3) - 4)] = $4
	} else {
		order[++n] = $1 "," $3
		val[$1 "," $3] = $4
	}
	next
}
$2 == "env" {
	printf "%-13s %-28s %-24s %12.4g\n", $1, "(machine)", $3, $4
	next
}
$3 ~ /_median$/ {
	printf "%-13s %-28s %-24s %12.4g\n", $1, $2, substr($3, 1, length($3) - 7), $4
}
END {
	printf "\n%-13s %-52s %12s  %s\n", "benchmark", "target", "measured", "result"
	for (i = 1; i <= n; i++) {
		k = order[i]
		split(k, a, ",")
		r = (met[k] == "1") ? "MET" : "MISSED"
		printf "%-13s %-52s %12.4g  %s\n", a[1], a[2], val[k], r
		if (r == "MISSED") missed++
	}
	printf "\n%d of %d targets met\n", n - missed, n
}' "$csv"

# The chart of the ratios, when gnuplot is there (.ci/deps bench installs
# it).
if command -v gnuplot >/dev/null 2>&1; then
	sh "$here/chart.sh" "$csv" "$out/ratios.svg" || status=1
fi
exit $status
