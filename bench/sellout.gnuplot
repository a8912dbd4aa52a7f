# The sellout chart of bench/run: throughput and p99 latency second by second, from the timeline
# `boxoffice loadgen --timeline` writes (second, requests, holds made, p50 ms, p99 ms).
#   gnuplot -e "data='FILE.dat'; out='FILE.png'; title='...'" bench/sellout.gnuplot
set terminal pngcairo size 1100,600 font "sans,10"
set output out
set title title
set xlabel "seconds since the sale opened"
set ylabel "per second"
set y2label "p99 latency (ms)"
set y2tics
set ytics nomirror
set key top right
set grid
plot data using 1:2 with lines lw 2 title "requests/s", \
     data using 1:3 with lines lw 2 title "holds made/s", \
     data using 1:5 axes x1y2 with lines lw 1 dt 2 title "p99 ms (right)"
