#!/bin/sh
# chart.sh CSV SVG - draw every ratio of a report's CSV against its
# baseline (weft vs the mutex pool, weft vs OpenMP, weft vs oneTBB) as a bar
# chart: the median, with the min..max spread of the rounds as error bars,
# and a dashed line at 1 (above it, weft is faster). The y axis turns
# logarithmic when a ratio passes 20 (the fork/join peers). Needs gnuplot;
# report.sh calls it when gnuplot is installed.
set -eu

csv=$1
svg=$2
dat=${svg%.svg}.dat

awk -F, '
NR == 1 { next }
$3 ~ /^(ratio_vs_mutex|vs_openmp|vs_tbb)_(median|min|max)$/ {
	base = $3; sub(/_(median|min|max)$/, "", base)
	k = $1 " " $2 " " base
	stat = $3; sub(/^.*_/, "", stat)
	if (!(k in seen)) { seen[k] = 1; order[++n] = k; what[k] = base }
	v[k "," stat] = $4
}
END {
	for (i = 1; i <= n; i++) {
		k = order[i]
		split(k, a, " ")
		peer = what[k] == "vs_tbb" ? " / oneTBB" : " / mutex pool"
		label = a[2] (what[k] == "vs_openmp" ? " / OpenMP" : peer)
		gsub(/_/, " ", label)
		printf "\"%s\" %g %g %g\n", label, v[k ",median"], v[k ",min"], v[k ",max"]
	}
}' "$csv" >"$dat"

if [ ! -s "$dat" ]; then
	echo "chart.sh: no ratios in $csv" >&2
	exit 1
fi
yscale='set yrange [0:*]'
if awk '$NF > 20 { big = 1 } END { exit !big }' "$dat"; then
	yscale='set logscale y; set yrange [0.1:*]'
fi

gnuplot <<EOF
set terminal svg size 960,520 dynamic font "sans,11" background rgb "white"
set output "$svg"
set title "weft against its baselines, measured in the same run (> 1: weft faster; bars: min..max over rounds)"
set style data histogram
set style histogram errorbars gap 1 lw 1
set style fill solid 0.6 border -1
set boxwidth 0.8
set bmargin 9
set rmargin 14
set xtics rotate by -35 scale 0 nomirror
set ylabel "ratio, median of rounds"
$yscale
set grid ytics
set key off
plot "$dat" using 2:3:4:xtic(1) lc rgb "#4878a8", 1 with lines lc rgb "#c03030" dt 2 lw 2
EOF
echo "chart: $svg"
